/* Downloads (libcurl): http, https and file URLs into the download cache by SHA-256, with
 * resume, retries, timeouts, progress and a checksum that must match before a file gets its
 * final name; and the kernel version → tarball URL resolver.
 *
 * Usage:
 *
 *   struct kgb_fetch_opts o;
 *   kgb_fetch_opts_init(&o);          // timeouts, retries and backoff defaults
 *   o.sha256 = profile_sha256;        // 64 hex digits; NULL: look in <dir>/sha256sums
 *   _cleanup_free_ char *url = NULL, *tarball = NULL;
 *   r = kgb_kernel_url_for_version(ctx, KGB_KERNEL_URL_TEMPLATE, "6.1.192", &url);
 *   r = kgb_fetch_file(ctx, url, &o, &tarball);
 *   // tarball: <workdir>/cache/downloads/<sha256>, complete and verified; on failure
 *   // kgb_error_detail(ctx) names the URL and the cause ("...: HTTP 404 Not Found").
 *
 * The cached file is named by its hash only (no extension): hand it to libarchive, which
 * detects the format and compression from the content. */
#pragma once

#include <stdint.h>

#include "kgb.h"

/* kernel.org's public layout; any mirror or local directory with the same names works. */
#define KGB_FETCH_PARTIAL_DAYS 14

#define KGB_KERNEL_URL_TEMPLATE                                                                    \
  "https://cdn.kernel.org/pub/linux/kernel/v${major}.x/linux-${version}.tar.xz"

struct kgb_fetch_opts {
  /* 64 hex digits; NULL when a `sha256sums` file beside the URL gives it (kernel.org's
   * `sha256sums.asc` is read when there is none; its signature is not checked); "skip" only
   * for file:// URLs and local paths, and then a warning says so. */
  const char *sha256;
  long connect_timeout_s; /* 0: 30 s */
  long stall_timeout_s;   /* no byte for this long ends an attempt; 0: 60 s */
  unsigned retries;       /* further attempts after a transient failure */
  unsigned retry_base_ms; /* first backoff delay, doubled per attempt up to 30 s; 0: 1000 ms */
  uint64_t max_bytes;     /* the most a download may be; 0: KGB_FETCH_MAX_BYTES */
};

/* A kernel tarball is some 140 MiB and a driver bundle less than 1 GiB: a body that goes on
 * past this (a misconfigured server, an endless stream) is stopped, not written until the
 * disk is full. */
#define KGB_FETCH_MAX_BYTES ((uint64_t)4 << 30)

void kgb_fetch_opts_init(struct kgb_fetch_opts *o);

/* Downloads url (http://, https://, file:// or a local path) into
 * <workdir>/cache/downloads/<sha256> through <workdir>/cache/downloads/partial/<name>.part,
 * which survives a failure or a cancellation and is resumed with an HTTP Range request.
 * A file already in the cache under the expected hash is used without any network access.
 * Transient failures (connection refused or reset, timeouts, HTTP 408, 429, 5xx) are retried
 * with exponential backoff; HTTP 403/404 and other client errors fail at once.
 * A body larger than o->max_bytes (announced by Content-Length or counted as it arrives)
 * stops the download with -EFBIG and its partial file is deleted: resuming it could only
 * stop again. A local file (file:// or a path) must be a regular file: a FIFO or a device is
 * refused at once (-ENOTSUP, -EISDIR for a directory), never waited on.
 * After a failure or a cancellation (Ctrl-C) the partial file is kept so that the next run
 * resumes where this one stopped, and the error detail says how much is kept and where
 * ("...; 812 MiB kept in '<workdir>/cache/downloads/partial/NAME.part' to resume it, delete
 * it to free the space"): nothing is kept without a word. A partial file untouched for
 * KGB_FETCH_PARTIAL_DAYS days is deleted by the next download, since nothing will resume it.
 * Errors: -ENOENT (404, missing file), -EACCES (401/403), -ECONNREFUSED, -ECONNRESET,
 * -ETIMEDOUT (connect timeout or stall), -EHOSTUNREACH (name not resolved), -EBADMSG
 * (checksum mismatch: the partial file is deleted), -ECANCELED, -EPERM ("skip" for a remote
 * URL), -EINVAL (bad URL or checksum), -EFBIG (larger than max_bytes), -EIO (other HTTP or
 * protocol errors).
 * o may be NULL for the defaults (which then need a sha256sums file). */
int kgb_fetch_file(struct kgb_ctx *ctx, const char *url, const struct kgb_fetch_opts *o,
                   char **ret_path);

/* GETs a small text file (a checksum list, a Release file: at most 1 MiB) into memory, with
 * the timeouts and cancellation of kgb_fetch_file, one retry and nothing cached. kind says what
 * the file is, for the message when it is larger. On failure *ret_msg says why ("HTTP 404 Not
 * Found", a curl message) and the error is one of kgb_fetch_file's (-ENOENT for 404). */
int kgb_fetch_text(struct kgb_ctx *ctx, const char *url, const char *kind, char **ret,
                   char **ret_msg);

/* Finds the hash of name in the text of a sha256sums file ("HEX  NAME" or "HEX *NAME", a
 * leading "./" allowed; other lines such as PGP armor are skipped). Returns -ENOENT when
 * name has no line, -EBADMSG when two lines disagree. */
int kgb_sha256sums_find(const char *text, const char *name, char ret_hex[65]);

/* Expands ${version} and ${major} (6 for "6.1.192") in tmpl. version must be N.N or N.N.N;
 * an unknown ${...} is an error. */
int kgb_kernel_url_for_version(struct kgb_ctx *ctx, const char *tmpl, const char *version,
                               char **ret);
