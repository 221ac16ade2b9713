/* Downloads with libcurl. A download goes into a partial file that is locked while in use and
 * kept after a failure, so that the next attempt (or the next run) resumes it with a Range
 * request; it gets its final name, the SHA-256 of its content, only after that hash matched.
 * Failures of one attempt are described in words here and turned into the error detail once,
 * by the caller, prefixed with the URL. */
#define _GNU_SOURCE
#include "fetch.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "source.h"

enum {
  DEFAULT_CONNECT_TIMEOUT_S = 30,
  DEFAULT_STALL_TIMEOUT_S = 60,
  DEFAULT_RETRIES = 4,
  DEFAULT_RETRY_BASE_MS = 1000,
  MAX_RETRY_DELAY_MS = 30000,
  SUMS_MAX_BYTES = 1 << 20,
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

/* libcurl's global state (and OpenSSL's under it) would otherwise show up as leaks. */
static void curl_cleanup_at_exit(void) { curl_global_cleanup(); }

static void curl_init_once(void) {
  curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (curl_init_result == CURLE_OK)
    atexit(curl_cleanup_at_exit);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(CURL *, curl_easy_cleanup)
DEFINE_TRIVIAL_CLEANUP_FUNC(CURLU *, curl_url_cleanup)
static void curl_freep(char **p) { curl_free(*p); }
static void closedirp(DIR **d) {
  if (*d)
    closedir(*d);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sleeps in slices so that a cancellation is seen within 100 ms. */
static int sleep_ms(struct kgb_ctx *ctx, uint64_t ms) {
  uint64_t end = now_ms() + ms;
  for (;;) {
    if (kgb_cancelled(ctx))
      return -ECANCELED;
    uint64_t t = now_ms();
    if (t >= end)
      return 0;
    uint64_t slice = MIN(end - t, 100);
    struct timespec ts = {(time_t)(slice / 1000), (long)(slice % 1000) * 1000000};
    nanosleep(&ts, NULL);
  }
}

void kgb_fetch_opts_init(struct kgb_fetch_opts *o) {
  *o = (struct kgb_fetch_opts){
      .sha256 = NULL,
      .connect_timeout_s = DEFAULT_CONNECT_TIMEOUT_S,
      .stall_timeout_s = DEFAULT_STALL_TIMEOUT_S,
      .retries = DEFAULT_RETRIES,
      .retry_base_ms = DEFAULT_RETRY_BASE_MS,
  };
}

/* ---- one transfer ---- */

struct xfer {
  struct kgb_ctx *ctx;
  CURL *curl;
  const char *what; /* progress label; NULL for small files */
  int fd;           /* the partial file, or -1 to collect the body in mem */
  struct sbuf mem;
  const char *mem_kind; /* what the body in mem is, for the message when it is too large */
  uint64_t offset;      /* bytes of the partial file kept: asked for, then as the server answered */
  uint64_t received;    /* body bytes of this attempt */
  uint64_t max;         /* the whole file may not be larger */
  bool decided;         /* the first body byte arrived and offset is settled */
  bool resumed;         /* some attempt appended to earlier bytes */
  bool stalled;
  long stall_s;
  curl_off_t last_now;
  uint64_t last_data_ms;
  int err; /* a failure of ours inside a callback, described by err_msg */
  char *err_msg;
  long status; /* of the last status line */
  char reason[64];
  long long range_start, range_total; /* Content-Range, -1 when absent or unknown */
};

static size_t fail_in_callback(struct xfer *x, int err, char *msg) {
  if (!x->err) {
    x->err = err;
    x->err_msg = msg;
  } else {
    free(msg);
  }
  return 0; /* any short count makes libcurl stop with CURLE_WRITE_ERROR */
}

static size_t on_header(char *buf, size_t size, size_t n, void *userdata) {
  struct xfer *x = userdata;
  size_t len = size * n;
  _cleanup_free_ char *line = strndup(buf, len);
  if (!line)
    return 0;
  line[strcspn(line, "\r\n")] = '\0';
  if (startswith(line, "HTTP/")) {
    /* "HTTP/1.1 404 Not Found", or "HTTP/2 404" without a reason; a redirect or a
     * 100 Continue starts a new block */
    const char *p = strchr(line, ' ');
    x->status = p ? strtol(p + 1, NULL, 10) : 0;
    x->reason[0] = '\0';
    if (p && (p = strchr(p + 1, ' ')))
      snprintf(x->reason, sizeof(x->reason), "%s", p + 1);
    x->range_start = x->range_total = -1;
  } else if (strncasecmp(line, "content-range:", 14) == 0) {
    const char *p = line + 14;
    while (*p == ' ')
      p++;
    if (strncasecmp(p, "bytes ", 6) == 0) {
      p += 6;
      long long a = -1, b = -1, t = -1;
      if (sscanf(p, "%lld-%lld/%lld", &a, &b, &t) >= 2)
        x->range_start = a;
      else
        (void)sscanf(p, "*/%lld", &t);
      x->range_total = t;
    }
  }
  return len;
}

static size_t on_write(char *data, size_t size, size_t n, void *userdata) {
  struct xfer *x = userdata;
  size_t len = size * n;
  if (x->fd < 0) {
    if (x->mem.len + len > SUMS_MAX_BYTES)
      return fail_in_callback(x, -EFBIG,
                              kgb_strdup_printf("larger than %d bytes: not %s", SUMS_MAX_BYTES,
                                                x->mem_kind ? x->mem_kind : "a checksum list"));
    if (sbuf_add(&x->mem, data, len) < 0)
      return fail_in_callback(x, -ENOMEM, NULL);
    return len;
  }
  if (!x->decided) {
    x->decided = true;
    if (x->offset > 0 && x->status != 206) {
      x->offset = 0; /* the server sends the whole file: start over */
    } else if (x->offset > 0 && x->range_start != (long long)x->offset) {
      return fail_in_callback(x, -EPROTO,
                              kgb_strdup_printf("asked to resume at byte %llu, the server sent "
                                                "data from byte %lld",
                                                (unsigned long long)x->offset, x->range_start));
    }
    if (x->offset > 0)
      x->resumed = true;
    if (ftruncate(x->fd, (off_t)x->offset) < 0 || lseek(x->fd, (off_t)x->offset, SEEK_SET) < 0)
      return fail_in_callback(x, -errno, kgb_strdup_printf("cannot write the partial file: %m"));
  }
  x->received += len;
  if (x->max && x->offset + x->received > x->max) {
    const char *cap = FORMAT_SIZE(x->max, FORMAT_SIZE_LIMIT);
    return fail_in_callback(x, -EFBIG,
                            kgb_strdup_printf("the body goes on past %s: stopped, as no download "
                                              "this tool needs is larger",
                                              cap));
  }
  for (size_t done = 0; done < len;) {
    ssize_t w = write(x->fd, data + done, len - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return fail_in_callback(x, -errno, kgb_strdup_printf("cannot write the partial file: %m"));
    done += (size_t)w;
  }
  return len;
}

static int on_xferinfo(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
  (void)ultotal;
  (void)ulnow;
  struct xfer *x = userdata;
  if (kgb_cancelled(x->ctx))
    return 1;
  uint64_t t = now_ms();
  curl_off_t connected = 0;
  /* the stall clock runs from the connection on: the connect timeout covers what precedes */
  if (curl_easy_getinfo(x->curl, CURLINFO_CONNECT_TIME_T, &connected) != CURLE_OK ||
      connected == 0 || dlnow != x->last_now) {
    x->last_now = dlnow;
    x->last_data_ms = t;
  } else if (x->stall_s > 0 && t - x->last_data_ms >= (uint64_t)x->stall_s * 1000) {
    x->stalled = true;
    return 1;
  }
  if (x->what && x->fd >= 0)
    kgb_progress(x->ctx, x->what, x->offset + (uint64_t)dlnow,
                 dltotal > 0 ? x->offset + (uint64_t)dltotal : 0);
  return 0;
}

static const char *http_reason(long code) {
  switch (code) {
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 408:
    return "Request Timeout";
  case 410:
    return "Gone";
  case 416:
    return "Range Not Satisfiable";
  case 429:
    return "Too Many Requests";
  case 500:
    return "Internal Server Error";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return "";
  }
}

/* Maps the outcome of curl_easy_perform() to a negative errno, the failure in words and
 * whether trying again may help. */
static int classify(struct xfer *x, CURLcode cc, const char *errbuf, char **ret_msg,
                    bool *ret_transient) {
  const char *text = errbuf[0] ? errbuf : curl_easy_strerror(cc);
  *ret_transient = false;
  if (x->err) {
    *ret_msg = TAKE_PTR(x->err_msg);
    return x->err;
  }
  switch (cc) {
  case CURLE_ABORTED_BY_CALLBACK:
    if (x->stalled) {
      *ret_transient = true;
      *ret_msg = kgb_strdup_printf("stalled: no data for %ld s", x->stall_s);
      return -ETIMEDOUT;
    }
    *ret_msg = strdup("cancelled");
    return -ECANCELED;
  case CURLE_HTTP_RETURNED_ERROR: {
    long code = x->status;
    if (code == 0)
      curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
    *ret_msg = kgb_strdup_printf("HTTP %ld %s", code, x->reason[0] ? x->reason : http_reason(code));
    if (code == 404 || code == 410)
      return -ENOENT;
    if (code == 401 || code == 403 || code == 407)
      return -EACCES;
    if (code == 408) {
      *ret_transient = true;
      return -ETIMEDOUT;
    }
    if (code == 429) {
      *ret_transient = true;
      return -EBUSY;
    }
    if (code >= 500) {
      *ret_transient = true;
      return -EREMOTEIO;
    }
    if (code == 416)
      return -ERANGE;
    return -EIO;
  }
  case CURLE_COULDNT_CONNECT: {
    long os_errno = 0;
    curl_easy_getinfo(x->curl, CURLINFO_OS_ERRNO, &os_errno);
    *ret_transient = true;
    *ret_msg = os_errno == ECONNREFUSED ? strdup("connection refused") : strdup(text);
    return os_errno > 0 ? -(int)os_errno : -ECONNREFUSED;
  }
  case CURLE_OPERATION_TIMEDOUT: {
    curl_off_t connected = 0;
    curl_easy_getinfo(x->curl, CURLINFO_CONNECT_TIME_T, &connected);
    *ret_transient = true;
    *ret_msg = connected > 0 ? kgb_strdup_printf("stalled: no data for %ld s", x->stall_s)
                             : kgb_strdup_printf("connection timed out (%s)", text);
    return -ETIMEDOUT;
  }
  case CURLE_PARTIAL_FILE:
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_SSL_CONNECT_ERROR:
    *ret_transient = true;
    *ret_msg = kgb_strdup_printf("connection cut: %s", text);
    return -ECONNRESET;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    *ret_msg = strdup(text);
    return -EHOSTUNREACH;
  case CURLE_FILE_COULDNT_READ_FILE:
  case CURLE_REMOTE_FILE_NOT_FOUND:
    *ret_msg = strdup(text);
    return -ENOENT;
  case CURLE_UNSUPPORTED_PROTOCOL:
    *ret_msg = strdup(text);
    return -EPROTONOSUPPORT;
  case CURLE_URL_MALFORMAT:
    *ret_msg = strdup(text);
    return -EINVAL;
  case CURLE_OUT_OF_MEMORY:
    *ret_msg = strdup("out of memory");
    return -ENOMEM;
  case CURLE_FILESIZE_EXCEEDED: {
    const char *cap = FORMAT_SIZE(x->max, FORMAT_SIZE_LIMIT);
    *ret_msg = kgb_strdup_printf("the server announces more than %s: refused, as no download "
                                 "this tool needs is larger",
                                 cap);
    return -EFBIG;
  }
  case CURLE_TOO_MANY_REDIRECTS:
    *ret_msg = strdup(text);
    return -ELOOP;
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
    *ret_msg = kgb_strdup_printf("TLS: %s", text);
    return -EPROTO;
  default:
    *ret_msg = strdup(text);
    return -EIO;
  }
}

static CURL *handle_new(struct xfer *x, const struct kgb_fetch_opts *o) {
  CURL *c = curl_easy_init();
  if (!c)
    return NULL;
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_USERAGENT, "kata-gpu-builder");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o->connect_timeout_s);
  /* curl's own low-speed check averages over a window and so fires late; on_xferinfo
   * enforces the stall timeout exactly, this is the backstop */
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o->stall_timeout_s * 2);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  return c;
}

/* One request. With a partial file over http(s), asks for the bytes after those it has. */
static int attempt(struct xfer *x, bool http, char **ret_msg, bool *ret_transient) {
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(x->curl, CURLOPT_ERRORBUFFER, errbuf);
  x->decided = x->stalled = false;
  x->status = 0;
  x->reason[0] = '\0';
  x->range_start = x->range_total = -1;
  x->last_now = 0;
  x->last_data_ms = now_ms();
  x->offset = 0;
  x->received = 0;
  x->mem.len = 0;
  char range[32];
  if (x->fd >= 0 && http) {
    struct stat st;
    if (fstat(x->fd, &st) < 0)
      return -errno;
    x->offset = (uint64_t)st.st_size;
  }
  if (x->max && x->fd >= 0)
    curl_easy_setopt(x->curl, CURLOPT_MAXFILESIZE_LARGE,
                     (curl_off_t)(x->max > x->offset ? x->max - x->offset : 1));
  if (x->offset > 0) {
    snprintf(range, sizeof(range), "%llu-", (unsigned long long)x->offset);
    curl_easy_setopt(x->curl, CURLOPT_RANGE, range);
  } else {
    curl_easy_setopt(x->curl, CURLOPT_RANGE, NULL);
  }
  CURLcode cc = curl_easy_perform(x->curl);
  curl_easy_setopt(x->curl, CURLOPT_ERRORBUFFER, NULL);
  if (cc == CURLE_OK && x->fd >= 0 && !x->decided) {
    /* an empty body: nothing of the old partial content belongs to the file */
    if (ftruncate(x->fd, 0) < 0) {
      int e = errno;
      *ret_msg = kgb_strdup_printf("cannot write the partial file: %s", strerror(e));
      return -e;
    }
  }
  if (cc == CURLE_OK)
    return 0;
  int r = classify(x, cc, errbuf, ret_msg, ret_transient);
  if (r == -ERANGE && x->offset > 0) {
    /* 416 to a resume: the partial file is complete when the server's size is its size
     * (the checksum decides), anything else starts over */
    if (x->range_total == (long long)x->offset) {
      x->resumed = true;
      free(*ret_msg);
      *ret_msg = NULL;
      return 0;
    }
    if (ftruncate(x->fd, 0) < 0) {
      int e = errno;
      free(*ret_msg);
      *ret_msg = kgb_strdup_printf("cannot truncate the partial file: %s", strerror(e));
      *ret_transient = false;
      return -e;
    }
    *ret_transient = true;
  }
  return r;
}

/* Attempts with exponential backoff. Returns 0, or -errno with the failure in *ret_msg. */
static int transfer(struct xfer *x, const char *shown, bool http, const struct kgb_fetch_opts *o,
                    char **ret_msg) {
  for (unsigned i = 0;; i++) {
    _cleanup_free_ char *msg = NULL;
    bool transient = false;
    int r = attempt(x, http, &msg, &transient);
    if (r == 0)
      return 0;
    if (!msg && !(msg = strdup(strerror(-r))))
      return -ENOMEM;
    if (r == -ECANCELED || !transient || i >= o->retries) {
      if (i > 0 && r != -ECANCELED) {
        char *m = kgb_strdup_printf("%s (after %u attempts)", msg, i + 1);
        if (m) {
          free(msg);
          msg = m;
        }
      }
      *ret_msg = TAKE_PTR(msg);
      return r;
    }
    uint64_t delay = (uint64_t)o->retry_base_ms << MIN(i, 20u);
    delay = MIN(delay, (uint64_t)MAX_RETRY_DELAY_MS);
    kgb_notice(x->ctx, "%s: %s; trying again in %.1f s (retry %u of %u)", shown, msg,
               (double)delay / 1000.0, i + 1, o->retries);
    r = sleep_ms(x->ctx, delay);
    if (r < 0) {
      *ret_msg = strdup("cancelled");
      return r;
    }
  }
}

/* ---- URLs and checksums ---- */

static bool is_hex64(const char *s) {
  size_t i = 0;
  for (; s[i]; i++)
    if (!isxdigit((unsigned char)s[i]))
      return false;
  return i == 64;
}

int kgb_sha256sums_find(const char *text, const char *name, char ret_hex[65]) {
  char found[65] = "";
  for (const char *p = text; p && *p;) {
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *next = end ? end + 1 : NULL;
    while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
      len--;
    size_t h = 0;
    while (h < len && isxdigit((unsigned char)p[h]))
      h++;
    if (h == 64 && h < len && (p[h] == ' ' || p[h] == '\t')) {
      const char *q = p + h, *e = p + len;
      while (q < e && (*q == ' ' || *q == '\t'))
        q++;
      if (q < e && *q == '*')
        q++;
      if (e - q > 2 && q[0] == '.' && q[1] == '/')
        q += 2;
      if ((size_t)(e - q) == strlen(name) && memcmp(q, name, (size_t)(e - q)) == 0) {
        char hex[65];
        for (int i = 0; i < 64; i++)
          hex[i] = (char)tolower((unsigned char)p[i]);
        hex[64] = '\0';
        if (found[0] && strcmp(found, hex) != 0)
          return -EBADMSG;
        memcpy(found, hex, sizeof(found));
      }
    }
    p = next;
  }
  if (!found[0])
    return -ENOENT;
  memcpy(ret_hex, found, 65);
  return 0;
}

/* A copy of url (in libcurl's form) naming file in the same directory. */
static int sibling_url(CURLU *u, const char *file, char **ret) {
  _cleanup_(curl_url_cleanupp) CURLU *s = curl_url_dup(u);
  _cleanup_(curl_freep) char *path = NULL, *out = NULL;
  if (!s || curl_url_get(s, CURLUPART_PATH, &path, 0) != CURLUE_OK)
    return -ENOMEM;
  const char *slash = strrchr(path, '/');
  _cleanup_free_ char *np =
      kgb_strdup_printf("%.*s/%s", slash ? (int)(slash - path) : 0, path, file);
  if (!np || curl_url_set(s, CURLUPART_PATH, np, 0) != CURLUE_OK ||
      curl_url_set(s, CURLUPART_QUERY, NULL, 0) != CURLUE_OK ||
      curl_url_set(s, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK ||
      curl_url_get(s, CURLUPART_URL, &out, 0) != CURLUE_OK)
    return -ENOMEM;
  *ret = strdup(out);
  return *ret ? 0 : -ENOMEM;
}

/* Parses url (or turns a local path into a file:// URL) and derives the partial file's name
 * from its last path component. */
static int parse_url(struct kgb_ctx *ctx, const char *url, CURLU **ret_u, char **ret_name,
                     bool *ret_http) {
  _cleanup_(curl_url_cleanupp) CURLU *u = curl_url();
  if (!u)
    return -ENOMEM;
  if (!strstr(url, "://")) {
    _cleanup_free_ char *abs = realpath(url, NULL);
    if (!abs)
      return kgb_error(ctx, -errno, "%s: %m", url);
    if (curl_url_set(u, CURLUPART_SCHEME, "file", 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_PATH, abs, CURLU_URLENCODE) != CURLUE_OK)
      return kgb_error(ctx, -EINVAL, "%s: cannot be written as a file:// URL", url);
  } else {
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK)
      return kgb_error(ctx, -EINVAL, "%s: not a valid URL: %s", url, curl_url_strerror(uc));
  }
  _cleanup_(curl_freep) char *scheme = NULL, *path = NULL;
  if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
    return -ENOMEM;
  bool http = STREQ(scheme, "http") || STREQ(scheme, "https");
  if (!http && !STREQ(scheme, "file"))
    return kgb_error(ctx, -EPROTONOSUPPORT,
                     "%s: '%s' URLs are not supported: use http, https or file", url, scheme);
  if (curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) != CURLUE_OK)
    return kgb_error(ctx, -EINVAL, "%s: the URL's path cannot be decoded", url);
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (!*base || STREQ(base, ".") || STREQ(base, ".."))
    return kgb_error(ctx, -EINVAL, "%s: the URL names no file", url);
  char *name = strdup(base);
  if (!name)
    return -ENOMEM;
  for (char *p = name; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("._+-", *p))
      *p = '_';
  if (name[0] == '.')
    name[0] = '_';
  *ret_name = name;
  *ret_http = http;
  *ret_u = TAKE_PTR(u);
  return 0;
}

static void xfer_release(struct xfer *x) {
  sbuf_release(&x->mem);
  free(x->err_msg);
  x->err_msg = NULL;
}

/* The expected hash from sha256sums beside the URL (or kernel.org's sha256sums.asc). */
static int sums_lookup(struct kgb_ctx *ctx, CURLU *u, const char *shown, const char *name,
                       const struct kgb_fetch_opts *o, char want[65]) {
  static const char *const files[] = {"sha256sums", "sha256sums.asc"};
  _cleanup_free_ char *tried = NULL;
  for (size_t i = 0; i < ELEMENTSOF(files); i++) {
    _cleanup_free_ char *sums_url = NULL, *msg = NULL;
    int r = sibling_url(u, files[i], &sums_url);
    if (r < 0)
      return r;
    struct xfer x = {.ctx = ctx, .fd = -1, .stall_s = o->stall_timeout_s};
    _cleanup_(curl_easy_cleanupp) CURL *c = handle_new(&x, o);
    if (!c)
      return -ENOMEM;
    x.curl = c;
    curl_easy_setopt(c, CURLOPT_URL, sums_url);
    bool http = startswith(sums_url, "http");
    r = transfer(&x, sums_url, http, o, &msg);
    if (r == -ENOENT && i + 1 < ELEMENTSOF(files)) {
      tried = TAKE_PTR(sums_url);
      xfer_release(&x);
      continue;
    }
    if (r == -ENOENT) {
      xfer_release(&x);
      return kgb_error(ctx, -ENOENT,
                       "%s: no SHA-256 given and none beside it (%s, %s: %s); give the "
                       "tarball's SHA-256",
                       shown, tried, sums_url, msg);
    }
    if (r < 0) {
      xfer_release(&x);
      return kgb_error(ctx, r, "%s: %s (looking up the SHA-256 of %s)", sums_url, msg, shown);
    }
    r = sbuf_addc(&x.mem, '\0') < 0 ? -ENOMEM : kgb_sha256sums_find(x.mem.buf, name, want);
    xfer_release(&x);
    if (r == -ENOENT)
      return kgb_error(ctx, r, "%s: no line for '%s'; give the tarball's SHA-256", sums_url, name);
    if (r == -EBADMSG)
      return kgb_error(ctx, r, "%s: conflicting lines for '%s'", sums_url, name);
    if (r < 0)
      return r;
    kgb_debug(ctx, "%s: SHA-256 %s from %s", shown, want, sums_url);
    return 0;
  }
  return -ENOENT;
}

/* Fills the options' unset fields with the defaults and makes sure libcurl is ready. */
static int fetch_prepare(struct kgb_ctx *ctx, struct kgb_fetch_opts *o) {
  if (o->connect_timeout_s <= 0)
    o->connect_timeout_s = DEFAULT_CONNECT_TIMEOUT_S;
  if (o->stall_timeout_s <= 0)
    o->stall_timeout_s = DEFAULT_STALL_TIMEOUT_S;
  if (o->retry_base_ms == 0)
    o->retry_base_ms = DEFAULT_RETRY_BASE_MS;
  if (o->max_bytes == 0)
    o->max_bytes = KGB_FETCH_MAX_BYTES;
  pthread_once(&curl_once, curl_init_once);
  if (curl_init_result != CURLE_OK)
    return kgb_error(ctx, -EIO, "cannot initialise libcurl: %s",
                     curl_easy_strerror(curl_init_result));
  return 0;
}

int kgb_fetch_text(struct kgb_ctx *ctx, const char *url, const char *kind, char **ret,
                   char **ret_msg) {
  struct kgb_fetch_opts o;
  kgb_fetch_opts_init(&o);
  /* callers have a fallback (the newest base, the next file name): one retry, not a minute
   * of backoff when the network is down */
  o.retries = 1;
  int r = fetch_prepare(ctx, &o);
  if (r < 0)
    return r;
  struct xfer x = {.ctx = ctx, .fd = -1, .stall_s = o.stall_timeout_s, .mem_kind = kind};
  _cleanup_(curl_easy_cleanupp) CURL *c = handle_new(&x, &o);
  if (!c)
    return -ENOMEM;
  x.curl = c;
  curl_easy_setopt(c, CURLOPT_URL, url);
  _cleanup_free_ char *msg = NULL;
  r = transfer(&x, url, startswith(url, "http"), &o, &msg);
  if (r >= 0 && sbuf_addc(&x.mem, '\0') < 0)
    r = -ENOMEM;
  if (r < 0) {
    xfer_release(&x);
    *ret_msg = TAKE_PTR(msg);
    return r;
  }
  *ret = sbuf_steal(&x.mem);
  xfer_release(&x);
  return *ret ? 0 : -ENOMEM;
}

/* A file:// URL or a path is read by libcurl with a plain open(): a FIFO would block it and a
 * device would never end. Only a regular file is handed over. */
static int check_local_file(struct kgb_ctx *ctx, const char *url, CURLU *u, uint64_t max) {
  _cleanup_(curl_freep) char *path = NULL;
  if (curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) != CURLUE_OK)
    return kgb_error(ctx, -EINVAL, "%s: the URL's path cannot be decoded", url);
  size_t cap = max > SIZE_MAX ? SIZE_MAX : (size_t)max;
  int fd = open_regular_file(path, cap, NULL);
  if (fd < 0)
    return kgb_error(ctx, fd, "%s: cannot read '%s': %s", url, path,
                     file_error_reason(path, fd, cap));
  close(fd);
  return 0;
}

/* Partial files that no run resumed for KGB_FETCH_PARTIAL_DAYS are deleted: a download given
 * up on (a changed URL, a cancelled try) must not hold its space forever. One in use is
 * locked and stays. */
static void sweep_partials(struct kgb_ctx *ctx, const char *pdir) {
  _cleanup_(closedirp) DIR *d = opendir(pdir);
  if (!d)
    return;
  time_t limit = time(NULL) - (time_t)KGB_FETCH_PARTIAL_DAYS * 24 * 3600;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!endswith(de->d_name, ".part"))
      continue;
    struct stat st;
    _cleanup_close_ int fd = openat(dirfd(d), de->d_name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_mtime > limit)
      continue;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0)
      continue;
    if (unlinkat(dirfd(d), de->d_name, 0) == 0)
      kgb_info(ctx, "deleted '%s/%s': a partial download untouched for %d days", pdir, de->d_name,
               KGB_FETCH_PARTIAL_DAYS);
  }
}

/* Opens and locks the partial file; a concurrent run holding it is waited for. */
static int partial_open_locked(struct kgb_ctx *ctx, const char *path, int *ret_fd) {
  bool said = false;
  for (;;) {
    _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      return kgb_error(ctx, -errno, "cannot open '%s': %m", path);
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
      if (errno != EWOULDBLOCK && errno != EINTR)
        return kgb_error(ctx, -errno, "cannot lock '%s': %m", path);
      if (!said)
        kgb_info(ctx, "waiting for another run downloading into '%s'", path);
      said = true;
      int r = sleep_ms(ctx, 200);
      if (r < 0)
        return r;
    }
    /* the holder may have renamed or deleted it meanwhile: then lock the new one */
    struct stat a, b;
    if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
      *ret_fd = TAKE_FD(fd);
      return 0;
    }
  }
}

int kgb_fetch_file(struct kgb_ctx *ctx, const char *url, const struct kgb_fetch_opts *o_in,
                   char **ret_path) {
  struct kgb_fetch_opts o;
  if (o_in)
    o = *o_in;
  else
    kgb_fetch_opts_init(&o);
  int prep = fetch_prepare(ctx, &o);
  if (prep < 0)
    return prep;

  _cleanup_(curl_url_cleanupp) CURLU *u = NULL;
  _cleanup_free_ char *name = NULL;
  bool http = false;
  int r = parse_url(ctx, url, &u, &name, &http);
  if (r < 0)
    return r;
  if (!http && (r = check_local_file(ctx, url, u, o.max_bytes)) < 0)
    return r;

  char want[65] = "";
  bool skip = o.sha256 && STREQ(o.sha256, "skip");
  if (skip) {
    if (http)
      return kgb_error(ctx, -EPERM,
                       "%s: sha256 \"skip\" is accepted only for local files (file:// or a "
                       "path); give the download's SHA-256",
                       url);
    kgb_warn(ctx,
             "%s: SHA-256 NOT CHECKED (sha256 = \"skip\"): use this only for a local "
             "development source",
             url);
  } else if (o.sha256) {
    if (!is_hex64(o.sha256))
      return kgb_error(ctx, -EINVAL, "%s: '%s' is not a SHA-256 (64 hex digits)", url, o.sha256);
    for (int i = 0; i < 64; i++)
      want[i] = (char)tolower((unsigned char)o.sha256[i]);
  } else {
    r = sums_lookup(ctx, u, url, name, &o, want);
    if (r < 0)
      return r;
  }

  _cleanup_free_ char *dir = kgb_strdup_printf("%s/cache/downloads", ctx->workdir);
  _cleanup_free_ char *final = want[0] ? kgb_strdup_printf("%s/%s", dir, want) : NULL;
  if (!dir || (want[0] && !final))
    return -ENOMEM;
  if (final && is_file(final)) {
    kgb_debug(ctx, "%s: in the download cache as '%s'", url, final);
    *ret_path = TAKE_PTR(final);
    return 0;
  }
  _cleanup_free_ char *pdir = kgb_strdup_printf("%s/partial", dir);
  _cleanup_free_ char *partial = kgb_strdup_printf("%s/partial/%s.part", dir, name);
  if (!pdir || !partial)
    return -ENOMEM;
  r = mkdir_p(pdir, 0755);
  if (r < 0)
    return kgb_error(ctx, r, "cannot create '%s': %s", pdir, strerror(-r));
  sweep_partials(ctx, pdir);
  _cleanup_close_ int fd = -1;
  r = partial_open_locked(ctx, partial, &fd);
  if (r < 0)
    return r;
  if (final && is_file(final)) { /* a concurrent run finished it while we waited */
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size == 0)
      (void)unlink(partial);
    *ret_path = TAKE_PTR(final);
    return 0;
  }

  _cleanup_free_ char *curl_url = NULL;
  {
    _cleanup_(curl_freep) char *s = NULL;
    if (curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK || !(curl_url = strdup(s)))
      return -ENOMEM;
  }
  _cleanup_free_ char *what = kgb_strdup_printf("downloading %s", name);
  if (!what)
    return -ENOMEM;
  struct xfer x = {
      .ctx = ctx, .fd = fd, .what = what, .stall_s = o.stall_timeout_s, .max = o.max_bytes};
  _cleanup_(curl_easy_cleanupp) CURL *c = handle_new(&x, &o);
  if (!c)
    return -ENOMEM;
  x.curl = c;
  curl_easy_setopt(c, CURLOPT_URL, curl_url);

  _cleanup_free_ char *got = NULL;
  for (int pass = 0;; pass++) {
    _cleanup_free_ char *msg = NULL;
    x.resumed = false;
    r = transfer(&x, url, http, &o, &msg);
    xfer_release(&x);
    struct stat st;
    if (r < 0) {
      /* a partial file with bytes in it is kept for the next run to resume, and the message
       * says so; one that went past the cap would only stop there again */
      if (r == -EFBIG || (fstat(fd, &st) == 0 && st.st_size == 0)) {
        (void)unlink(partial);
        return kgb_error(ctx, r, "%s: %s", url, msg ? msg : strerror(-r));
      }
      const char *kept = FORMAT_SIZE((uint64_t)st.st_size, FORMAT_SIZE_LIMIT);
      return kgb_error(ctx, r,
                       "%s: %s; %s kept in '%s' to resume it on the next run (delete it to free "
                       "the space)",
                       url, msg ? msg : strerror(-r), kept, partial);
    }
    if (fsync(fd) < 0 || fstat(fd, &st) < 0)
      return kgb_error(ctx, -errno, "cannot write '%s': %m", partial);
    kgb_progress(ctx, what, (uint64_t)st.st_size, (uint64_t)st.st_size);
    free(got);
    got = NULL;
    r = kgb_sha256_file(ctx, partial, &got);
    if (r < 0)
      return r;
    if (skip || STREQ(got, want))
      break;
    if (x.resumed && pass == 0) {
      /* the earlier bytes may belong to an older file under the same name */
      kgb_notice(ctx,
                 "%s: SHA-256 mismatch after resuming a partial download; downloading it "
                 "again from the start",
                 url);
      if (ftruncate(fd, 0) < 0)
        return kgb_error(ctx, -errno, "cannot truncate '%s': %m", partial);
      continue;
    }
    (void)unlink(partial);
    return kgb_error(ctx, -EBADMSG,
                     "%s: SHA-256 mismatch: expected %s, got %s; the download was deleted", url,
                     want, got);
  }

  free(final);
  final = kgb_strdup_printf("%s/%s", dir, got);
  if (!final)
    return -ENOMEM;
  if (rename(partial, final) < 0)
    return kgb_error(ctx, -errno, "cannot rename '%s' to '%s': %m", partial, final);
  if (skip)
    kgb_info(ctx, "%s: unchecked download has SHA-256 %s", url, got);
  *ret_path = TAKE_PTR(final);
  return 0;
}

/* ---- versions ---- */

static bool valid_version(const char *v, size_t *ret_major_len) {
  size_t parts = 0;
  const char *p = v;
  for (;;) {
    size_t n = 0;
    while (isdigit((unsigned char)p[n]))
      n++;
    if (n == 0 || n > 6)
      return false;
    if (parts == 0)
      *ret_major_len = n;
    parts++;
    p += n;
    if (*p == '\0')
      break;
    if (*p != '.')
      return false;
    p++;
  }
  return parts == 2 || parts == 3;
}

int kgb_kernel_url_for_version(struct kgb_ctx *ctx, const char *tmpl, const char *version,
                               char **ret) {
  size_t major_len = 0;
  if (!version || !valid_version(version, &major_len))
    return kgb_error(ctx, -EINVAL,
                     "'%s' is not a kernel version: expected MAJOR.MINOR or "
                     "MAJOR.MINOR.PATCH, e.g. 6.1.192",
                     version ? version : "");
  struct sbuf sb = SBUF_INIT;
  int r = 0;
  for (const char *p = tmpl; *p && r >= 0;) {
    if (p[0] != '$' || p[1] != '{') {
      r = sbuf_addc(&sb, *p++);
      continue;
    }
    const char *end = strchr(p + 2, '}');
    if (!end) {
      r = kgb_error(ctx, -EINVAL, "URL template '%s': '${' without '}'", tmpl);
      break;
    }
    size_t n = (size_t)(end - p - 2);
    if (n == 7 && strncmp(p + 2, "version", 7) == 0)
      r = sbuf_adds(&sb, version);
    else if (n == 5 && strncmp(p + 2, "major", 5) == 0)
      r = sbuf_add(&sb, version, major_len);
    else
      r = kgb_error(ctx, -EINVAL,
                    "URL template '%s': unknown variable '${%.*s}'; known: ${version}, ${major}",
                    tmpl, (int)n, p + 2);
    p = end + 1;
  }
  if (r < 0) {
    sbuf_release(&sb);
    return r;
  }
  char *url = sbuf_steal(&sb);
  if (!url)
    return -ENOMEM;
  *ret = url;
  return 0;
}
