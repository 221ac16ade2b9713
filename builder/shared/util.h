/* Strings, string vectors, paths and files: libc-only helpers for every layer. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* NULL-terminated vector of owned strings. */
char **strv_free(char **v);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free)
#define _cleanup_strv_free_ _cleanup_(strv_freep)
size_t strv_length(char *const *v);
int strv_push(char ***v, char *s);         /* takes s, even on failure */
int strv_extend(char ***v, const char *s); /* copies s */
bool strv_contains(char *const *v, const char *s);
/* Sorts a NULL-terminated vector in place by strcmp (byte order, whatever the locale); NULL is
 * an empty vector. */
void strv_sort(char **v);

char *strjoin_path(const char *a, const char *b); /* a/b, or b when b is absolute */
bool startswith(const char *s, const char *prefix);
bool endswith(const char *s, const char *suffix);
char *strstrip(char *s); /* in place, returns s advanced past leading space */
size_t levenshtein(const char *a, const char *b, size_t limit);
char *kgb_strdup_printf(const char *fmt, ...) _printf_(1, 2);

/* Sizes in binary units, in the style the message needs. */
enum format_size_style {
  /* "32 GiB", "16 KiB", "128 B": rounded down to the largest unit it reaches (B to TiB), for
   * sizes that are powers of two, such as PCI BARs */
  FORMAT_SIZE_UNIT,
  /* "16 MiB", "1536 MiB", "10 bytes": for caps and byte counts in messages: bytes below 1 MiB,
   * MiB rounded down above, GiB only when whole */
  FORMAT_SIZE_LIMIT,
  /* "1.25 GiB", "3.5 MiB", "0.2 KiB": two decimals in GiB, one in MiB and KiB (never bytes),
   * for the contents of a tree or an image */
  FORMAT_SIZE_DECIMAL,
};
#define FORMAT_SIZE_MAX 32 /* holds any size in any style */
/* Writes bytes into buf (size FORMAT_SIZE_MAX holds any) and returns buf. */
char *format_size(char *buf, size_t size, uint64_t bytes, enum format_size_style style);
/* format_size into a buffer that lives until the end of the enclosing block, for an argument:
 * kgb_info(ctx, "%s", FORMAT_SIZE(n, FORMAT_SIZE_LIMIT)). */
#define FORMAT_SIZE(bytes, style)                                                                  \
  format_size((char[FORMAT_SIZE_MAX]){0}, FORMAT_SIZE_MAX, (bytes), (style))

/* Compares dotted versions as kernels and the allow-list write them, numerically, component
 * by component: "6.1" < "6.1.5" < "6.10", "6.1" == "6.1.0". A component's non-numeric tail
 * ("-rc1", "-amd64", "+") ends the comparison there: "6.1.0-17-amd64" == "6.1". Returns <0, 0
 * or >0 as strcmp. */
int version_compare(const char *a, const char *b);
/* version_compare over the components series has: 0 when a lies within the series ("6.1.192"
 * within "6.1"), else the order of a against it. */
int version_compare_series(const char *a, const char *series);

/* ---- files a person or a host hands us ----
 *
 * Every reader of a file named on the command line, in a profile or on the host goes through
 * open_regular_file(): a FIFO would block the open (or the first read) forever, a device such
 * as /dev/zero never ends, a directory makes stdio and libconfig fail in odd ways. They are all
 * refused before a byte is read, and a size cap bounds the memory a read can take.
 * Errors: -EISDIR (a directory), -ENOTSUP (a FIFO, socket or device: file_error_reason()
 * says which), -EFBIG (larger than max), or the errno of stat/open. */

/* The cap for text: fragments, profiles, TOML, Kconfig files, sysfs and procfs files. */
#define READ_TEXT_MAX ((size_t)16 << 20)

struct stat;

/* Opens path read-only when it is a regular file of at most max bytes; the descriptor is
 * blocking. ret_st (may be NULL) receives its fstat. Returns the descriptor or -errno. */
int open_regular_file(const char *path, size_t max, struct stat *ret_st);
/* Reads a whole regular file of at most max bytes (the file may also not grow past max while
 * it is read); the buffer is NUL-terminated. Returns 0 or -errno as open_regular_file. */
int read_full_file_max(const char *path, size_t max, char **ret, size_t *ret_len);
/* read_full_file_max with READ_TEXT_MAX. */
int read_full_file(const char *path, char **ret, size_t *ret_len);
/* Why a file helper refused path, worded to follow a colon ("cannot read '%s': %s"): "it is
 * a FIFO, not a regular file", "it is larger than 16 MiB", "it is read-only (mode 0444) ...",
 * else strerror. It looks at path again to say what kind of file it is; max is the cap that was
 * given (for -EFBIG). The text lives in a per-thread buffer until the next call. */
const char *file_error_reason(const char *path, int err, size_t max);
/* "a FIFO", "a socket", "a character device", "a block device", "a directory", "a symbolic
 * link" or "a regular file". */
const char *file_type_name(mode_t mode);

/* Writes data to path through path.tmp.XXXXXX + fsync + rename: for files of our own (work
 * directory, stages, caches), where path is never anything but a regular file of ours. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* ---- outputs a person names (-o FILE, a drop-in) ----
 *
 * A person who writes `-o /dev/null`, `-o /dev/stdout` or `-o link` means that device, that
 * stream or the link's target; renaming a temporary file over the path would replace the
 * device node, break the stdout link and cut the symbolic link. So:
 *   - a path that does not exist, or a regular file, is replaced atomically (temporary file in
 *     the same directory + fsync + rename); a regular file being replaced keeps its owner,
 *     group, mode and extended attributes (SELinux labels, ACLs), and a read-only one (no w bit
 *     in its mode) is refused with -EACCES, not silently rewritten;
 *   - a symbolic link is followed and its final target handled by these rules (the link
 *     stays);
 *   - /dev/stdout, /dev/stderr, /dev/fd/N and /proc/self/fd/N write to that descriptor of
 *     this process as it is (a shell's `>>` keeps appending);
 *   - a character device or a FIFO is written in place (opened O_WRONLY without O_CREAT or
 *     O_TRUNC; a FIFO waits for its reader, as a shell's `>` does);
 *   - a directory (-EISDIR), a block device or a socket (-ENOTSUP) is refused.
 * Hard links to a replaced regular file keep the old content: the file gets a new inode. */
struct output_file {
  int fd;        /* write here */
  char *path;    /* what is written: the symbolic link's target */
  char *tmp;     /* the temporary file renamed over path, NULL when written in place */
  bool borrowed; /* fd is one of this process's (stdout...): not closed */
};
int output_file_open(const char *path, mode_t mode, struct output_file *ret);
/* fsync + rename for a replaced file; in place, nothing more. Releases o in both cases. */
int output_file_commit(struct output_file *o);
/* Closes o and removes its temporary file when it was not committed. */
void output_file_release(struct output_file *o);
int write_file_output(const char *path, const void *data, size_t len, mode_t mode);
int copy_file_output(const char *src, const char *dst, mode_t mode);
/* Gives dst_fd the owner, group, mode and extended attributes of src_fd. */
int copy_file_metadata(int src_fd, int dst_fd);
/* Writes all of len bytes to fd, retrying short writes and EINTR. */
int write_all(int fd, const void *data, size_t len);
int mkdir_p(const char *path, mode_t mode);

/* ---- directory listings ----
 *
 * One way to list a directory (systemd's readdir_all): the names, sorted by strcmp so that
 * anything derived from them (keys, manifests, reports) does not depend on the file system's
 * order, "." and ".." left out. */
enum {
  READDIR_NO_HIDDEN = 1 << 0, /* leave out every name starting with a dot */
};
/* Keeps name (an entry of the directory open as dir_fd, for fstatat) when it returns true. */
typedef bool (*readdir_filter_fn)(int dir_fd, const char *name, void *userdata);
/* The sorted names in path that flags and filter (may be NULL) keep, as a NULL-terminated
 * vector: empty, never NULL, when none is. Returns 0, -ENOMEM, or the -errno of opendir or
 * readdir (-ENOENT and -ENOTDIR for a missing directory: callers to whom that means "empty"
 * say so). */
int readdir_sorted(const char *path, unsigned flags, readdir_filter_fn filter, void *userdata,
                   char ***ret);
int rm_rf(const char *path);
bool is_dir(const char *path);
bool is_file(const char *path);

/* Copies a regular file through dst.tmp.XXXXXX + rename (copy_file_range when possible). */
int copy_file_atomic(const char *src, const char *dst, mode_t mode);
/* Finds an executable in $PATH; returns its path or NULL. */
char *find_program(const char *name);

/* CLOCK_MONOTONIC in seconds, for durations. */
double monotonic_seconds(void);
/* The first line of a file without its newline, or NULL. */
char *read_first_line(const char *path);
/* The last `lines` lines of a file (for showing the end of a log), or "" when unreadable. */
char *file_tail(const char *path, int lines);
/* True when both files can be read and have the same bytes. */
bool files_equal(const char *a, const char *b);
/* copy_file_atomic unless dst already has src's size, mode and modification time (which the
 * copy gives it), as rsync decides: re-installing an unchanged multi-MiB image is free.
 * Returns 1 when it copied, 0 when dst was already current. */
int copy_file_if_changed(const char *src, const char *dst, mode_t mode);
