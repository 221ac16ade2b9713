/* Implementation of the libc-only helpers declared in util.h. */
#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int read_full_file(const char *path, char **ret, size_t *ret_len) {
  _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  struct stat st;
  if (fstat(fd, &st) < 0)
    return -errno;
  if (S_ISDIR(st.st_mode))
    return -EISDIR;
  size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096, len = 0;
  _cleanup_free_ char *buf = malloc(cap);
  if (!buf)
    return -ENOMEM;
  for (;;) {
    if (len + 1 >= cap) {
      char *nb = realloc(buf, cap * 2);
      if (!nb)
        return -ENOMEM;
      buf = nb;
      cap *= 2;
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
  buf[len] = '\0';
  if (ret_len)
    *ret_len = len;
  *ret = TAKE_PTR(buf);
  return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
  _cleanup_free_ char *tmp = kgb_strdup_printf("%s.tmp.XXXXXX", path);
  if (!tmp)
    return -ENOMEM;
  _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int r = 0;
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      r = -errno;
      break;
    }
    p += n;
    len -= (size_t)n;
  }
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

int copy_file_atomic(const char *src, const char *dst, mode_t mode) {
  _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0)
    return -errno;
  _cleanup_free_ char *tmp = kgb_strdup_printf("%s.tmp.XXXXXX", dst);
  if (!tmp)
    return -ENOMEM;
  _cleanup_close_ int out = mkostemp(tmp, O_CLOEXEC);
  if (out < 0)
    return -errno;
  int r = 0;
  for (;;) {
    ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
    if (n == 0)
      break;
    if (n > 0)
      continue;
    if (errno == EINTR)
      continue;
    if (errno != EXDEV && errno != ENOSYS && errno != EINVAL) {
      r = -errno;
      break;
    }
    /* fall back to read/write for file systems without copy_file_range */
    char buf[65536];
    ssize_t k;
    while ((k = read(in, buf, sizeof(buf))) > 0)
      if (write(out, buf, (size_t)k) != k) {
        r = -errno ? -errno : -EIO;
        break;
      }
    if (k < 0)
      r = -errno;
    break;
  }
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
  _cleanup_free_ char *text = NULL;
  size_t len;
  if (!path || read_full_file(path, &text, &len) < 0)
    return strdup("");
  size_t i = len;
  while (i > 0 && lines > 0)
    if (text[--i] == '\n' && i + 1 < len)
      lines--;
  return strdup(text + (i ? i + 1 : 0));
}

bool files_equal(const char *a, const char *b) {
  _cleanup_free_ char *x = NULL, *y = NULL;
  size_t lx, ly;
  if (read_full_file(a, &x, &lx) < 0 || read_full_file(b, &y, &ly) < 0)
    return false;
  return lx == ly && memcmp(x, y, lx) == 0;
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
