/* Implementation of the libc-only helpers declared in util.h. */
#define _GNU_SOURCE
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

char **strv_free(char **v) {
  if (v)
    for (char **p = v; *p; p++)
      free(*p);
  free(v);
  return NULL;
}

size_t strv_length(char *const *v) {
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

int strv_push(char ***v, char *s) {
  size_t n = strv_length(*v);
  char **nv = realloc(*v, (n + 2) * sizeof(char *));
  if (!nv) {
    free(s);
    return -ENOMEM;
  }
  nv[n] = s;
  nv[n + 1] = NULL;
  *v = nv;
  return 0;
}

int strv_extend(char ***v, const char *s) {
  char *c = strdup(s);
  if (!c)
    return -ENOMEM;
  return strv_push(v, c);
}

bool strv_contains(char *const *v, const char *s) {
  for (size_t i = 0; v && v[i]; i++)
    if (STREQ(v[i], s))
      return true;
  return false;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

void strv_sort(char **v) {
  size_t n = strv_length(v);
  if (n > 1)
    qsort(v, n, sizeof(char *), cmp_str);
}

char *strjoin_path(const char *a, const char *b) {
  if (!a || b[0] == '/')
    return strdup(b);
  size_t la = strlen(a);
  while (la > 1 && a[la - 1] == '/')
    la--;
  char *r;
  if (asprintf(&r, "%.*s/%s", (int)la, a, b) < 0)
    return NULL;
  return r;
}

bool startswith(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool endswith(const char *s, const char *suffix) {
  size_t ls = strlen(s), lx = strlen(suffix);
  return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

char *strstrip(char *s) {
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
    s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
    s[--n] = '\0';
  return s;
}

size_t levenshtein(const char *a, const char *b, size_t limit) {
  size_t la = strlen(a), lb = strlen(b);
  if ((la > lb ? la - lb : lb - la) > limit)
    return limit + 1;
  size_t *row = malloc((lb + 1) * sizeof(size_t));
  if (!row)
    return limit + 1;
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t prev = row[0], best = i;
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t cur = row[j];
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      size_t v = MIN(MIN(row[j] + 1, row[j - 1] + 1), prev + cost);
      row[j] = v;
      prev = cur;
      best = MIN(best, v);
    }
    if (best > limit) {
      free(row);
      return limit + 1;
    }
  }
  size_t d = row[lb];
  free(row);
  return d;
}

char *kgb_strdup_printf(const char *fmt, ...) {
  va_list ap;
  char *r;
  va_start(ap, fmt);
  int n = vasprintf(&r, fmt, ap);
  va_end(ap);
  return n < 0 ? NULL : r;
}

char *format_size(char *buf, size_t size, uint64_t bytes, enum format_size_style style) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  const uint64_t kib = 1024, mib = kib << 10, gib = mib << 10;
  switch (style) {
  case FORMAT_SIZE_UNIT: {
    size_t u = 0;
    while (u + 1 < ELEMENTSOF(units) && bytes >= (kib << (10 * u)))
      u++;
    snprintf(buf, size, "%" PRIu64 " %s", bytes >> (10 * u), units[u]);
    break;
  }
  case FORMAT_SIZE_LIMIT:
    if (bytes >= gib && bytes % gib == 0)
      snprintf(buf, size, "%" PRIu64 " GiB", bytes >> 30);
    else if (bytes >= mib)
      snprintf(buf, size, "%" PRIu64 " MiB", bytes >> 20);
    else
      snprintf(buf, size, "%" PRIu64 " bytes", bytes);
    break;
  case FORMAT_SIZE_DECIMAL:
  default:
    if (bytes >= gib)
      snprintf(buf, size, "%.2f GiB", (double)bytes / (double)gib);
    else if (bytes >= mib)
      snprintf(buf, size, "%.1f MiB", (double)bytes / (double)mib);
    else
      snprintf(buf, size, "%.1f KiB", (double)bytes / (double)kib);
    break;
  }
  return buf;
}

/* The next numeric component of a version; *p moves past it and its dot, or to the end when
 * anything else follows (a suffix ends the comparison). */
static unsigned long long version_component(const char **p) {
  char *end;
  unsigned long long n = strtoull(*p, &end, 10);
  *p = *end == '.' ? end + 1 : end + strlen(end);
  return n;
}

static int compare_versions(const char *a, const char *b, bool series) {
  while (*a || *b) {
    if (series && !*b)
      return 0;
    unsigned long long x = version_component(&a), y = version_component(&b);
    if (x != y)
      return x < y ? -1 : 1;
  }
  return 0;
}

int version_compare(const char *a, const char *b) { return compare_versions(a, b, false); }

int version_compare_series(const char *a, const char *series) {
  return compare_versions(a, series, true);
}

const char *file_type_name(mode_t mode) {
  switch (mode & S_IFMT) {
  case S_IFIFO:
    return "a FIFO";
  case S_IFSOCK:
    return "a socket";
  case S_IFCHR:
    return "a character device";
  case S_IFBLK:
    return "a block device";
  case S_IFDIR:
    return "a directory";
  case S_IFLNK:
    return "a symbolic link";
  default:
    return "a regular file";
  }
}

const char *file_error_reason(const char *path, int err, size_t max) {
  static __thread char buf[160];
  struct stat st;
  bool known = path && stat(path, &st) == 0;
  if (err == -EISDIR || (err == -ENOTSUP && known && !S_ISREG(st.st_mode))) {
    snprintf(buf, sizeof(buf), "it is %s, not a regular file",
             known ? file_type_name(st.st_mode) : "a directory");
    return buf;
  }
  if (err == -EFBIG) {
    snprintf(buf, sizeof(buf), "it is larger than %s", FORMAT_SIZE(max, FORMAT_SIZE_LIMIT));
    return buf;
  }
  if (err == -EACCES && known && S_ISREG(st.st_mode) && !(st.st_mode & 0222)) {
    snprintf(buf, sizeof(buf),
             "it is read-only (mode %04o): make it writable (chmod u+w) if it should be replaced",
             (unsigned)(st.st_mode & 07777));
    return buf;
  }
  snprintf(buf, sizeof(buf), "%s", strerror(err < 0 ? -err : err));
  return buf;
}

/* 0 for a regular file, else the errno open_regular_file gives for that kind */
static int regular_or_error(mode_t mode) {
  return S_ISREG(mode) ? 0 : S_ISDIR(mode) ? -EISDIR : -ENOTSUP;
}

int open_regular_file(const char *path, size_t max, struct stat *ret_st) {
  /* Opening a device can act on it (a tape rewinds, a watchdog arms): look first. The
   * descriptor's own fstat below is what counts, should path change in between. */
  struct stat st;
  if (stat(path, &st) < 0)
    return -errno;
  int r = regular_or_error(st.st_mode);
  if (r < 0)
    return r;
  /* O_NONBLOCK: a FIFO swapped in after the stat must not block the open */
  _cleanup_close_ int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return -errno;
  if (fstat(fd, &st) < 0)
    return -errno;
  if ((r = regular_or_error(st.st_mode)) < 0)
    return r;
  if ((uint64_t)st.st_size > (uint64_t)max)
    return -EFBIG;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
    return -errno;
  if (ret_st)
    *ret_st = st;
  return TAKE_FD(fd);
}

int read_full_file_max(const char *path, size_t max, char **ret, size_t *ret_len) {
  struct stat st;
  _cleanup_close_ int fd = open_regular_file(path, max, &st);
  if (fd < 0)
    return fd;
  /* procfs and sysfs files say 0 or 4096 whatever they hold: grow as needed */
  size_t cap = MAX((size_t)st.st_size + 1, (size_t)4096), len = 0;
  cap = MIN(cap, max == SIZE_MAX ? max : max + 2);
  _cleanup_free_ char *buf = malloc(cap);
  if (!buf)
    return -ENOMEM;
  for (;;) {
    if (len + 1 >= cap) {
      if (len > max)
        return -EFBIG; /* it grew while we read */
      size_t ncap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
      ncap = MIN(ncap, max == SIZE_MAX ? max : max + 2);
      char *nb = realloc(buf, ncap);
      if (!nb)
        return -ENOMEM;
      buf = nb;
      cap = ncap;
    }
    ssize_t n = read(fd, buf + len, cap - len - 1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  if (len > max)
    return -EFBIG;
  buf[len] = '\0';
  if (ret_len)
    *ret_len = len;
  *ret = TAKE_PTR(buf);
  return 0;
}

int read_full_file(const char *path, char **ret, size_t *ret_len) {
  return read_full_file_max(path, READ_TEXT_MAX, ret, ret_len);
}

int write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
  _cleanup_free_ char *tmp = kgb_strdup_printf("%s.tmp.XXXXXX", path);
  if (!tmp)
    return -ENOMEM;
  _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int r = write_all(fd, data, len);
  if (r == 0 && fchmod(fd, mode) < 0)
    r = -errno;
  if (r == 0 && fsync(fd) < 0)
    r = -errno;
  if (r == 0 && close(TAKE_FD(fd)) < 0)
    r = -errno;
  if (r == 0 && rename(tmp, path) < 0)
    r = -errno;
  if (r < 0)
    unlink(tmp);
  return r;
}

/* ---- outputs a person names ---- */

int copy_file_metadata(int src_fd, int dst_fd) {
  struct stat st;
  if (fstat(src_fd, &st) < 0)
    return -errno;
  /* EPERM: a person replacing a file they may write but do not own; it becomes theirs, as
   * with any editor */
  if (fchown(dst_fd, st.st_uid, st.st_gid) < 0 && errno != EPERM)
    return -errno;
  /* after fchown, which clears set-user-ID and set-group-ID bits */
  if (fchmod(dst_fd, st.st_mode & 07777) < 0)
    return -errno;
  ssize_t size = flistxattr(src_fd, NULL, 0);
  if (size < 0)
    return errno == ENOTSUP ? 0 : -errno;
  if (size == 0)
    return 0;
  _cleanup_free_ char *names = malloc((size_t)size);
  if (!names)
    return -ENOMEM;
  size = flistxattr(src_fd, names, (size_t)size);
  if (size < 0)
    return -errno;
  for (char *name = names; name < names + size; name += strlen(name) + 1) {
    ssize_t vlen = fgetxattr(src_fd, name, NULL, 0);
    if (vlen < 0)
      return -errno;
    _cleanup_free_ char *value = malloc((size_t)vlen + 1);
    if (!value)
      return -ENOMEM;
    vlen = fgetxattr(src_fd, name, value, (size_t)vlen);
    if (vlen < 0)
      return -errno;
    if (fsetxattr(dst_fd, name, value, (size_t)vlen, 0) < 0 &&
        !(errno == EPERM && !startswith(name, "user.")))
      return -errno; /* only the privileged namespaces may be beyond an unprivileged user */
  }
  return 0;
}

/* The descriptor /dev/stdout, /dev/stderr, /dev/fd/N or /proc/self/fd/N names, or -1. */
static int named_descriptor(const char *path) {
  const char *n = NULL;
  if (STREQ(path, "/dev/stdout"))
    return STDOUT_FILENO;
  if (STREQ(path, "/dev/stderr"))
    return STDERR_FILENO;
  if (startswith(path, "/dev/fd/"))
    n = path + strlen("/dev/fd/");
  else if (startswith(path, "/proc/self/fd/"))
    n = path + strlen("/proc/self/fd/");
  if (!n || !*n || strspn(n, "0123456789") != strlen(n) || strlen(n) > 6)
    return -1;
  int fd = atoi(n);
  return fcntl(fd, F_GETFD) < 0 ? -1 : fd;
}

/* The final target of path when path is a symbolic link (which may dangle), else path. */
static int resolve_links(const char *path, char **ret) {
  _cleanup_free_ char *p = strdup(path);
  if (!p)
    return -ENOMEM;
  for (int hops = 0;; hops++) {
    struct stat st;
    bool found = lstat(p, &st) == 0;
    if (!found && errno != ENOENT)
      return -errno;
    if (!found || !S_ISLNK(st.st_mode)) {
      *ret = TAKE_PTR(p);
      return 0;
    }
    if (hops >= 40)
      return -ELOOP;
    char target[PATH_MAX];
    ssize_t n = readlink(p, target, sizeof(target) - 1);
    if (n < 0)
      return -errno;
    target[n] = '\0';
    char *slash = strrchr(p, '/');
    char *next = target[0] == '/' || !slash
                     ? strdup(target)
                     : kgb_strdup_printf("%.*s/%s", (int)(slash - p), p, target);
    if (!next)
      return -ENOMEM;
    free(p);
    p = next;
  }
}

void output_file_release(struct output_file *o) {
  if (o->fd >= 0 && !o->borrowed)
    close(o->fd);
  if (o->tmp)
    unlink(o->tmp);
  free(o->tmp);
  free(o->path);
  *o = (struct output_file){.fd = -1};
}

int output_file_open(const char *path, mode_t mode, struct output_file *ret) {
  _cleanup_(output_file_release) struct output_file o = {.fd = -1};
  int fd = named_descriptor(path);
  if (fd >= 0) {
    o.fd = fd;
    o.borrowed = true;
    if (!(o.path = strdup(path)))
      return -ENOMEM;
    *ret = o;
    o = (struct output_file){.fd = -1};
    return 0;
  }
  int r = resolve_links(path, &o.path);
  if (r < 0)
    return r;
  struct stat st;
  bool exists = stat(o.path, &st) == 0;
  if (!exists) {
    if (errno != ENOENT)
      return -errno;
  } else if (S_ISDIR(st.st_mode)) {
    return -EISDIR;
  } else if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
    o.fd = open(o.path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (o.fd < 0)
      return -errno;
    *ret = o;
    o = (struct output_file){.fd = -1};
    return 0;
  } else if (!S_ISREG(st.st_mode)) {
    return -ENOTSUP;
  } else if (!(st.st_mode & 0222)) {
    return -EACCES;
  }
  if (!(o.tmp = kgb_strdup_printf("%s.tmp.XXXXXX", o.path)))
    return -ENOMEM;
  o.fd = mkostemp(o.tmp, O_CLOEXEC);
  if (o.fd < 0) {
    r = -errno;
    free(TAKE_PTR(o.tmp));
    return r;
  }
  if (exists) {
    _cleanup_close_ int old = open(o.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (old < 0)
      return -errno;
    if ((r = copy_file_metadata(old, o.fd)) < 0)
      return r;
  } else if (fchmod(o.fd, mode) < 0) {
    return -errno;
  }
  *ret = o;
  o = (struct output_file){.fd = -1};
  return 0;
}

int output_file_commit(struct output_file *o) {
  int r = 0;
  if (o->tmp) {
    if (fsync(o->fd) < 0)
      r = -errno;
    if (close(TAKE_FD(o->fd)) < 0 && r == 0)
      r = -errno;
    if (r == 0 && rename(o->tmp, o->path) < 0)
      r = -errno;
    if (r == 0)
      free(TAKE_PTR(o->tmp));
  } else if (!o->borrowed) {
    if (close(TAKE_FD(o->fd)) < 0)
      r = -errno;
  }
  output_file_release(o);
  return r;
}

int write_file_output(const char *path, const void *data, size_t len, mode_t mode) {
  _cleanup_(output_file_release) struct output_file o = {.fd = -1};
  int r = output_file_open(path, mode, &o);
  if (r < 0)
    return r;
  r = write_all(o.fd, data, len);
  if (r < 0)
    return r;
  return output_file_commit(&o);
}

static int copy_fd(int in, int out) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(in, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    if (n == 0)
      return 0;
    int r = write_all(out, buf, (size_t)n);
    if (r < 0)
      return r;
  }
}

int copy_file_output(const char *src, const char *dst, mode_t mode) {
  _cleanup_close_ int in = open_regular_file(src, SIZE_MAX, NULL);
  if (in < 0)
    return in;
  _cleanup_(output_file_release) struct output_file o = {.fd = -1};
  int r = output_file_open(dst, mode, &o);
  if (r < 0)
    return r;
  r = copy_fd(in, o.fd);
  if (r < 0)
    return r;
  return output_file_commit(&o);
}

int readdir_sorted(const char *path, unsigned flags, readdir_filter_fn filter, void *userdata,
                   char ***ret) {
  DIR *d = opendir(path);
  if (!d)
    return -errno;
  _cleanup_strv_free_ char **names = calloc(1, sizeof(char *));
  int r = names ? 0 : -ENOMEM;
  struct dirent *de;
  while (r >= 0 && (errno = 0, de = readdir(d))) {
    const char *n = de->d_name;
    if (STREQ(n, ".") || STREQ(n, "..") || ((flags & READDIR_NO_HIDDEN) && n[0] == '.'))
      continue;
    if (!filter || filter(dirfd(d), n, userdata))
      r = strv_extend(&names, n);
  }
  if (r >= 0 && errno)
    r = -errno;
  closedir(d);
  if (r < 0)
    return r;
  strv_sort(names);
  *ret = TAKE_PTR(names);
  return 0;
}

int mkdir_p(const char *path, mode_t mode) {
  _cleanup_free_ char *p = strdup(path);
  if (!p)
    return -ENOMEM;
  for (char *s = p + 1; *s; s++) {
    if (*s != '/')
      continue;
    *s = '\0';
    if (mkdir(p, mode) < 0 && errno != EEXIST)
      return -errno;
    *s = '/';
  }
  if (mkdir(p, mode) < 0 && errno != EEXIST)
    return -errno;
  return is_dir(p) ? 0 : -ENOTDIR;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (flag == FTW_DP)
    return rmdir(p) < 0 ? -1 : 0;
  return unlink(p) < 0 ? -1 : 0;
}

int rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) < 0)
    return errno == ENOENT ? 0 : -errno;
  if (!S_ISDIR(st.st_mode))
    return unlink(path) < 0 ? -errno : 0;
  if (nftw(path, rm_one, 64, FTW_DEPTH | FTW_PHYS) < 0)
    return -errno;
  return 0;
}

bool is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Copies [off, end) of in to the same offsets of out: copy_file_range, else pread/pwrite. */
static int copy_range(int in, int out, off_t off, off_t end) {
  bool plain = false;
  while (off < end) {
    size_t want = (size_t)MIN(end - off, (off_t)1 << 30);
    ssize_t n;
    if (!plain) {
      loff_t a = off, b = off;
      n = copy_file_range(in, &a, out, &b, want, 0);
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
        plain = true; /* file systems without it */
        continue;
      }
    } else {
      char buf[65536];
      n = pread(in, buf, MIN(want, sizeof(buf)), off);
      if (n > 0 && pwrite(out, buf, (size_t)n, off) != n)
        return errno ? -errno : -EIO;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    if (n == 0)
      return -EIO; /* the file shrank under us */
    off += n;
  }
  return 0;
}

/* The data of in, hole by hole (a sparse image stays sparse and only its data is copied),
 * or all of it where the file system cannot say where the holes are. */
static int copy_contents(int in, int out) {
  struct stat st;
  if (fstat(in, &st) < 0)
    return -errno;
  off_t size = st.st_size, pos = 0;
  while (pos < size) {
    off_t data = lseek(in, pos, SEEK_DATA);
    if (data < 0 && errno == ENXIO)
      break; /* only a hole is left */
    if (data < 0)
      return copy_range(in, out, pos, size); /* no SEEK_DATA here */
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0)
      return copy_range(in, out, data, size);
    int r = copy_range(in, out, data, MIN(hole, size));
    if (r < 0)
      return r;
    pos = hole;
  }
  return ftruncate(out, size) < 0 ? -errno : 0;
}

int copy_file_atomic(const char *src, const char *dst, mode_t mode) {
  _cleanup_close_ int in = open_regular_file(src, SIZE_MAX, NULL);
  if (in < 0)
    return in;
  _cleanup_free_ char *tmp = kgb_strdup_printf("%s.tmp.XXXXXX", dst);
  if (!tmp)
    return -ENOMEM;
  _cleanup_close_ int out = mkostemp(tmp, O_CLOEXEC);
  if (out < 0)
    return -errno;
  int r = copy_contents(in, out);
  if (r == 0 && fchmod(out, mode) < 0)
    r = -errno;
  if (r == 0 && close(TAKE_FD(out)) < 0)
    r = -errno;
  if (r == 0 && rename(tmp, dst) < 0)
    r = -errno;
  if (r < 0)
    unlink(tmp);
  return r;
}

char *find_program(const char *name) {
  const char *path = getenv("PATH");
  if (strchr(name, '/'))
    return access(name, X_OK) == 0 ? strdup(name) : NULL;
  if (!path)
    path = "/usr/local/bin:/usr/bin:/bin";
  while (*path) {
    size_t n = strcspn(path, ":");
    char *p = kgb_strdup_printf("%.*s/%s", (int)n, path, name);
    if (p && access(p, X_OK) == 0 && is_file(p))
      return p;
    free(p);
    path += n;
    if (*path == ':')
      path++;
  }
  return NULL;
}

double monotonic_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *read_first_line(const char *path) {
  char *text = NULL;
  if (read_full_file(path, &text, NULL) < 0)
    return NULL;
  text[strcspn(text, "\n")] = '\0';
  return text;
}

char *file_tail(const char *path, int lines) {
  /* a build log can be gigabytes: the end of it is enough to show some lines */
  const size_t window = (size_t)1 << 20;
  struct stat st;
  _cleanup_close_ int fd = path ? open_regular_file(path, SIZE_MAX, &st) : -1;
  if (fd < 0)
    return strdup("");
  off_t start = st.st_size > (off_t)window ? st.st_size - (off_t)window : 0;
  _cleanup_free_ char *text = malloc(window + 1);
  if (!text)
    return NULL;
  ssize_t n = pread(fd, text, window, start);
  if (n < 0)
    return strdup("");
  size_t len = (size_t)n;
  text[len] = '\0';
  size_t i = len;
  while (i > 0 && lines > 0)
    if (text[--i] == '\n' && i + 1 < len)
      lines--;
  return strdup(text + (i ? i + 1 : 0));
}

bool files_equal(const char *a, const char *b) {
  /* streamed, any size: kernels and images are compared too */
  _cleanup_close_ int x = open_regular_file(a, SIZE_MAX, NULL);
  _cleanup_close_ int y = open_regular_file(b, SIZE_MAX, NULL);
  struct stat sx, sy;
  if (x < 0 || y < 0 || fstat(x, &sx) < 0 || fstat(y, &sy) < 0 || sx.st_size != sy.st_size)
    return false;
  char bx[65536], by[65536];
  for (;;) {
    ssize_t nx = read(x, bx, sizeof(bx));
    if (nx < 0 && errno == EINTR)
      continue;
    if (nx <= 0)
      return nx == 0 && read(y, by, 1) == 0;
    /* the same count from y, whatever its reads return */
    ssize_t got = 0;
    while (got < nx) {
      ssize_t ny = read(y, by + got, (size_t)(nx - got));
      if (ny < 0 && errno == EINTR)
        continue;
      if (ny <= 0)
        return false;
      got += ny;
    }
    if (memcmp(bx, by, (size_t)nx) != 0)
      return false;
  }
}

int copy_file_if_changed(const char *src, const char *dst, mode_t mode) {
  struct stat s, d;
  if (stat(src, &s) < 0)
    return -errno;
  if (lstat(dst, &d) == 0 && S_ISREG(d.st_mode) && d.st_size == s.st_size &&
      (d.st_mode & 07777) == mode && d.st_mtim.tv_sec == s.st_mtim.tv_sec &&
      d.st_mtim.tv_nsec == s.st_mtim.tv_nsec)
    return 0;
  int r = copy_file_atomic(src, dst, mode);
  if (r < 0)
    return r;
  struct timespec times[2] = {s.st_atim, s.st_mtim};
  if (utimensat(AT_FDCWD, dst, times, 0) < 0)
    return -errno;
  return 1;
}
