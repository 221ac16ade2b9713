/* Strings, string vectors, paths and files: libc-only helpers for every layer. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
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

char *strjoin_path(const char *a, const char *b); /* a/b, or b when b is absolute */
bool startswith(const char *s, const char *prefix);
bool endswith(const char *s, const char *suffix);
char *strstrip(char *s); /* in place, returns s advanced past leading space */
size_t levenshtein(const char *a, const char *b, size_t limit);
char *kgb_strdup_printf(const char *fmt, ...) _printf_(1, 2);

/* Reads a whole file; the buffer is NUL-terminated. Returns 0 or -errno. */
int read_full_file(const char *path, char **ret, size_t *ret_len);
/* Writes data to path through path.tmp.XXXXXX + fsync + rename. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
int mkdir_p(const char *path, mode_t mode);
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
