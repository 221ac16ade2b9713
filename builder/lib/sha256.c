/* SHA-256 of buffers, streams and files (OpenSSL's EVP), with a stat-keyed memo of file
 * hashes so that large source tarballs are hashed once per change. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../shared/util.h"
#include "source.h"

static void to_hex(const unsigned char *md, char out[65]) {
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int kgb_sha256_hex(const void *data, size_t len, char ret_hex[65]) {
  unsigned char md[32];
  unsigned int mdlen = 0;
  if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
    return -EIO;
  to_hex(md, ret_hex);
  return 0;
}

static char *memo_path(struct kgb_ctx *ctx, const struct stat *st) {
  return kgb_strdup_printf("%s/cache/hashes/%llx-%llx-%llx-%llx.%09ld", ctx->workdir,
                           (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
                           (unsigned long long)st->st_size, (unsigned long long)st->st_mtim.tv_sec,
                           st->st_mtim.tv_nsec);
}

int kgb_sha256_file(struct kgb_ctx *ctx, const char *path, char **ret_hex) {
  _cleanup_close_ int fd = open_regular_file(path, SIZE_MAX, NULL);
  if (fd < 0)
    return kgb_error(ctx, fd, "cannot read '%s': %s", path, file_error_reason(path, fd, SIZE_MAX));
  struct stat st;
  if (fstat(fd, &st) < 0)
    return -errno;
  _cleanup_free_ char *memo = memo_path(ctx, &st), *cached = NULL;
  if (memo && read_full_file(memo, &cached, NULL) == 0 && strlen(cached) == 64) {
    *ret_hex = TAKE_PTR(cached);
    return 0;
  }
  enum { BUFSZ = 1 << 16 };
  _cleanup_free_ char *buf = malloc(BUFSZ);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!buf || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
    EVP_MD_CTX_free(md);
    return -ENOMEM;
  }
  uint64_t done = 0;
  int r = 0;
  for (;;) {
    ssize_t n = read(fd, buf, BUFSZ);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      r = kgb_error(ctx, -errno, "reading '%s': %m", path);
      break;
    }
    if (n == 0)
      break;
    EVP_DigestUpdate(md, buf, (size_t)n);
    done += (uint64_t)n;
    if ((done & ((1u << 24) - 1)) < (uint64_t)n)
      kgb_progress(ctx, "hashing source", done, (uint64_t)st.st_size);
    if (kgb_cancelled(ctx)) {
      r = -ECANCELED;
      break;
    }
  }
  unsigned char out[32];
  unsigned int outlen = 0;
  if (r == 0 && (!EVP_DigestFinal_ex(md, out, &outlen) || outlen != 32))
    r = -EIO;
  EVP_MD_CTX_free(md);
  if (r < 0)
    return r;
  kgb_progress(ctx, "hashing source", (uint64_t)st.st_size, (uint64_t)st.st_size);
  char hex[65];
  to_hex(out, hex);
  if (memo) {
    _cleanup_free_ char *dir = kgb_strdup_printf("%s/cache/hashes", ctx->workdir);
    if (dir && mkdir_p(dir, 0755) == 0)
      (void)write_file_atomic(memo, hex, 64, 0644);
  }
  *ret_hex = strdup(hex);
  return *ret_hex ? 0 : -ENOMEM;
}
