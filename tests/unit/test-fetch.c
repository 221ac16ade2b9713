/* Downloads against a real HTTP server on 127.0.0.1 (tests/fixtures/http-server.py) that can
 * also cut connections, fail, stall and serve wrong bytes: success, resume after a cut, after
 * a cancellation and of a complete or stale partial file, 404/403 at once, 500 then success,
 * wrong checksum, stall timeout, connection refused, cache hits without a request, sha256sums,
 * file:// URLs and local paths; the sha256sums parser and the version → URL resolver. */
/* cmocka.h needs these first */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"
#include "fixture.h"
#include "sbuf.h"
#include "source.h"
#include "util.h"

#define PAYLOAD_SIZE (256 * 1024)

static struct {
  pid_t pid;
  int port;
  char dir[64]; /* root/ (served files), requests.log, work-N/ */
  char *root;
  char *log;
  char *payload;
  char sha[65];       /* of root/payload.bin */
  char wrong_sha[65]; /* of what /wrong/ serves */
} srv;

static unsigned workdirs;
static struct sbuf messages; /* what the engine logged during the test */
static volatile sig_atomic_t cancel_flag;
static uint64_t cancel_at; /* set cancel_flag once this many bytes arrived; 0: never */
static uint64_t last_done, last_total;
static unsigned progress_calls;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_or_fail(const char *path, const void *data, size_t len) {
  if (write_file_atomic(path, data, len, 0644) < 0)
    fail_msg("cannot write '%s'", path);
}

/* ---- the server ---- */

static int start_server(void) {
  int p[2];
  if (pipe(p) < 0)
    return -1;
  pid_t parent = getpid();
  srv.pid = fork();
  if (srv.pid < 0)
    return -1;
  if (srv.pid == 0) {
    /* the server goes when the test goes, even when the test is killed */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
      _exit(1);
    dup2(p[1], STDOUT_FILENO);
    close(p[0]);
    close(p[1]);
    execlp("python3", "python3", KGB_TEST_FIXTURES "/http-server.py", srv.root, srv.log,
           (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  char buf[32] = "";
  size_t len = 0;
  double deadline = now_s() + 10;
  while (!memchr(buf, '\n', len) && len < sizeof(buf) - 1) {
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    int ms = (int)((deadline - now_s()) * 1000);
    if (ms <= 0 || poll(&pfd, 1, ms) <= 0)
      break;
    ssize_t n = read(p[0], buf + len, sizeof(buf) - 1 - len);
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  close(p[0]);
  buf[len] = '\0';
  srv.port = atoi(buf);
  if (srv.port <= 0) {
    fprintf(stderr, "the test HTTP server did not report its port within 10 s\n");
    return -1;
  }
  return 0;
}

static void stop_server(void) {
  if (srv.pid <= 0)
    return;
  kill(srv.pid, SIGTERM);
  for (int i = 0; i < 50; i++) {
    if (waitpid(srv.pid, NULL, WNOHANG) == srv.pid) {
      srv.pid = 0;
      return;
    }
    usleep(100 * 1000);
  }
  kill(srv.pid, SIGKILL);
  waitpid(srv.pid, NULL, 0);
  srv.pid = 0;
}

static int group_setup(void **state) {
  (void)state;
  /* every wait below is bounded; this bounds the whole binary as well */
  alarm(120);
  /* requests to 127.0.0.1 must not go through a proxy from the environment */
  static const char *const proxies[] = {"http_proxy", "https_proxy", "HTTPS_PROXY",
                                        "all_proxy",  "ALL_PROXY",   "no_proxy"};
  for (size_t i = 0; i < ELEMENTSOF(proxies); i++)
    unsetenv(proxies[i]);
  snprintf(srv.dir, sizeof(srv.dir), "/tmp/kgb-test-fetch-XXXXXX");
  if (!mkdtemp(srv.dir))
    return -1;
  srv.root = strjoin_path(srv.dir, "root");
  srv.log = strjoin_path(srv.dir, "requests.log");
  srv.payload = malloc(PAYLOAD_SIZE);
  if (!srv.root || !srv.log || !srv.payload || mkdir(srv.root, 0755) < 0)
    return -1;
  uint32_t x = 12345;
  for (size_t i = 0; i < PAYLOAD_SIZE; i++) {
    x = x * 1103515245u + 12345u;
    srv.payload[i] = (char)(x >> 16);
  }
  _cleanup_free_ char *p = strjoin_path(srv.root, "payload.bin");
  _cleanup_free_ char *o = strjoin_path(srv.root, "other.bin");
  if (!p || !o || write_file_atomic(p, srv.payload, PAYLOAD_SIZE, 0644) < 0 ||
      write_file_atomic(o, "other\n", 6, 0644) < 0)
    return -1;
  kgb_sha256_hex(srv.payload, PAYLOAD_SIZE, srv.sha);
  srv.payload[PAYLOAD_SIZE - 1] ^= (char)0xFF;
  kgb_sha256_hex(srv.payload, PAYLOAD_SIZE, srv.wrong_sha);
  srv.payload[PAYLOAD_SIZE - 1] ^= (char)0xFF;
  /* one line for payload.bin in the binary-mode form, none for other.bin */
  _cleanup_free_ char *sums = kgb_strdup_printf(
      "%s *payload.bin\n"
      "0000000000000000000000000000000000000000000000000000000000000000  unrelated.tar.xz\n",
      srv.sha);
  _cleanup_free_ char *sp = strjoin_path(srv.root, "sha256sums");
  if (!sums || !sp || write_file_atomic(sp, sums, strlen(sums), 0644) < 0)
    return -1;
  return start_server();
}

static int group_teardown(void **state) {
  (void)state;
  stop_server();
  rm_rf(srv.dir);
  free(srv.root);
  free(srv.log);
  free(srv.payload);
  sbuf_release(&messages);
  alarm(0);
  return 0;
}

/* ---- per test: a context with a fresh work directory ---- */

static void on_log(void *userdata, enum kgb_log_level level, const char *msg) {
  (void)userdata;
  sbuf_addf(&messages, "%d: %s\n", (int)level, msg);
}

static void on_progress(void *userdata, const char *stage, const char *what, uint64_t done,
                        uint64_t total) {
  (void)stage;
  (void)userdata;
  if (!what)
    return;
  if (!startswith(what, "downloading "))
    return;
  progress_calls++;
  last_done = done;
  last_total = total;
  if (cancel_at && done >= cancel_at)
    cancel_flag = 1;
}

static int setup(void **state) {
  int r = fixture_setup(state);
  if (r < 0)
    return r;
  _cleanup_free_ char *wd = kgb_strdup_printf("%s/work-%u", srv.dir, ++workdirs);
  if (!wd || kgb_ctx_set_string(&ctx->workdir, wd) < 0)
    return -1;
  ctx->log = on_log;
  ctx->progress = on_progress;
  ctx->cancel = &cancel_flag;
  cancel_flag = 0;
  cancel_at = 0;
  last_done = last_total = 0;
  progress_calls = 0;
  sbuf_release(&messages);
  return 0;
}

/* fast retries and a short stall timeout, so that no test waits long */
static struct kgb_fetch_opts opts(const char *sha256, unsigned retries) {
  struct kgb_fetch_opts o;
  kgb_fetch_opts_init(&o);
  o.sha256 = sha256;
  o.retries = retries;
  o.retry_base_ms = 10;
  o.connect_timeout_s = 5;
  o.stall_timeout_s = 1;
  return o;
}

static char *url(const char *path) {
  char *u = kgb_strdup_printf("http://127.0.0.1:%d%s", srv.port, path);
  assert_non_null(u);
  return u;
}

/* The Range headers of the requests for path, in order ("-" for none), joined by spaces. */
static char *requests_for(const char *path) {
  _cleanup_free_ char *text = NULL;
  struct sbuf sb = SBUF_INIT;
  sbuf_adds(&sb, "");
  if (read_full_file(srv.log, &text, NULL) < 0)
    return sbuf_steal(&sb);
  _cleanup_free_ char *prefix = kgb_strdup_printf("GET %s ", path);
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
    if (startswith(line, prefix))
      sbuf_addf(&sb, "%s%s", sb.len ? " " : "", line + strlen(prefix));
  return sbuf_steal(&sb);
}

static void assert_requests(const char *path, const char *expected) {
  _cleanup_free_ char *got = requests_for(path);
  if (strcmp(got, expected) != 0)
    fail_msg("requests for '%s': expected '%s', got '%s'", path, expected, got);
}

static void assert_logged(const char *needle) {
  if (!strstr(sbuf_str(&messages), needle))
    fail_msg("log '%s' lacks '%s'", sbuf_str(&messages), needle);
}

static void assert_payload(const char *path) {
  _cleanup_free_ char *data = NULL;
  size_t len = 0;
  assert_int_equal(read_full_file(path, &data, &len), 0);
  assert_int_equal(len, PAYLOAD_SIZE);
  assert_memory_equal(data, srv.payload, PAYLOAD_SIZE);
}

static char *cache_path(const char *sha) {
  return kgb_strdup_printf("%s/cache/downloads/%s", ctx->workdir, sha);
}

static char *partial_path(const char *name) {
  return kgb_strdup_printf("%s/cache/downloads/partial/%s.part", ctx->workdir, name);
}

static off_t file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? st.st_size : -1;
}

/* ---- cases ---- */

static void test_success(void **state) {
  (void)state;
  _cleanup_free_ char *u = url("/files/ok/payload.bin"), *path = NULL, *want = cache_path(srv.sha),
                      *part = partial_path("payload.bin");
  struct kgb_fetch_opts o = opts(srv.sha, 3);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), 0);
  assert_string_equal(path, want);
  assert_payload(path);
  assert_int_equal(file_size(part), -1);
  assert_requests("/files/ok/payload.bin", "-");
  assert_true(progress_calls > 0);
  assert_int_equal(last_done, PAYLOAD_SIZE);
  assert_int_equal(last_total, PAYLOAD_SIZE);
}

static void test_uppercase_sha(void **state) {
  (void)state;
  char upper[65];
  for (int i = 0; i < 65; i++)
    upper[i] = (char)(srv.sha[i] >= 'a' && srv.sha[i] <= 'f' ? srv.sha[i] - 32 : srv.sha[i]);
  _cleanup_free_ char *u = url("/files/upper/payload.bin"), *path = NULL,
                      *want = cache_path(srv.sha);
  struct kgb_fetch_opts o = opts(upper, 0);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), 0);
  assert_string_equal(path, want);
}

static void test_resume_after_cut(void **state) {
  (void)state;
  _cleanup_free_ char *u = url("/cut/a/payload.bin"), *path = NULL,
                      *expected = kgb_strdup_printf("- bytes=%d-", PAYLOAD_SIZE / 2);
  struct kgb_fetch_opts o = opts(srv.sha, 2);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), 0);
  assert_payload(path);
  /* the second request asked only for the bytes after those the cut one delivered */
  assert_requests("/cut/a/payload.bin", expected);
  assert_logged("connection cut");
  assert_logged("trying again");
  assert_int_equal(last_done, PAYLOAD_SIZE);
}

static void test_cut_without_retries_keeps_partial(void **state) {
  (void)state;
  _cleanup_free_ char *u = url("/cut/b/payload.bin"), *path = NULL,
                      *part = partial_path("payload.bin"),
                      *expected = kgb_strdup_printf("- bytes=%d-", PAYLOAD_SIZE / 2);
  struct kgb_fetch_opts o = opts(srv.sha, 0);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), -ECONNRESET);
  assert_null(path);
  assert_detail(u);
  assert_int_equal(file_size(part), PAYLOAD_SIZE / 2);
  /* the next run resumes it */
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), 0);
  assert_payload(path);
  assert_requests("/cut/b/payload.bin", expected);
  assert_int_equal(file_size(part), -1);
}

static void test_404_at_once(void **state) {
  (void)state;
  _cleanup_free_ char *u = url("/files/x/missing.bin"), *path = NULL,
                      *part = partial_path("missing.bin");
  struct kgb_fetch_opts o = opts(srv.sha, 3);
  o.retry_base_ms = 2000; /* a retry would show in the time taken */
  double t0 = now_s();
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), -ENOENT);
  assert_true(now_s() - t0 < 1.5);
  assert_null(path);
  _cleanup_free_ char *expected = kgb_strdup_printf("%s: HTTP 404 Not Found", u);
  assert_string_equal(kgb_error_detail(ctx), expected);
  assert_requests("/files/x/missing.bin", "-");
  assert_int_equal(file_size(part), -1);
}

static void test_403_at_once(void **state) {
  (void)state;
  _cleanup_free_ char *u = url("/status/403/payload.bin"), *path = NULL;
  struct kgb_fetch_opts o = opts(srv.sha, 3);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), -EACCES);
  assert_detail("HTTP 403 Forbidden");
  assert_requests("/status/403/payload.bin", "-");
}

static void test_500_then_success(void **state) {
  (void)state;
  _cleanup_free_ char *u = url("/flaky/a/payload.bin"), *path = NULL;
  struct kgb_fetch_opts o = opts(srv.sha, 2);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), 0);
  assert_payload(path);
  assert_requests("/flaky/a/payload.bin", "- -");
  assert_logged("HTTP 500 Internal Server Error; trying again in 0.0 s (retry 1 of 2)");
}

static void test_503_retries_bounded(void **state) {
  (void)state;
  _cleanup_free_ char *u = url("/status/503/payload.bin"), *path = NULL;
  struct kgb_fetch_opts o = opts(srv.sha, 2);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), -EREMOTEIO);
  assert_detail("HTTP 503 Service Unavailable (after 3 attempts)");
  assert_requests("/status/503/payload.bin", "- - -");
}

static void test_wrong_checksum(void **state) {
  (void)state;
  _cleanup_free_ char *u = url("/wrong/a/payload.bin"), *path = NULL,
                      *part = partial_path("payload.bin"), *final = cache_path(srv.sha),
                      *wrong = cache_path(srv.wrong_sha);
  struct kgb_fetch_opts o = opts(srv.sha, 2);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), -EBADMSG);
  assert_null(path);
  _cleanup_free_ char *expected =
      kgb_strdup_printf("%s: SHA-256 mismatch: expected %s, got %s; the download was deleted", u,
                        srv.sha, srv.wrong_sha);
  assert_string_equal(kgb_error_detail(ctx), expected);
  assert_int_equal(file_size(part), -1);
  assert_int_equal(file_size(final), -1);
  assert_int_equal(file_size(wrong), -1);
  assert_requests("/wrong/a/payload.bin", "-"); /* a mismatch is not retried */
}

static void test_stall_times_out(void **state) {
  (void)state;
  _cleanup_free_ char *u = url("/stall/a/payload.bin"), *path = NULL,
                      *part = partial_path("payload.bin");
  struct kgb_fetch_opts o = opts(srv.sha, 0);
  double t0 = now_s();
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), -ETIMEDOUT);
  double took = now_s() - t0;
  if (took < 0.9 || took > 5)
    fail_msg("a 1 s stall timeout took %.1f s", took);
  _cleanup_free_ char *expected = kgb_strdup_printf(
      "%s: stalled: no data for 1 s; 10 bytes kept in '%s' to resume it on the next run "
      "(delete it to free the space)",
      u, part);
  assert_string_equal(kgb_error_detail(ctx), expected);
  assert_int_equal(file_size(part), 10); /* kept for a resume */
}

static void test_cancel_keeps_partial_for_resume(void **state) {
  (void)state;
  _cleanup_free_ char *u = url("/stall/b/payload.bin"), *path = NULL,
                      *part = partial_path("payload.bin");
  struct kgb_fetch_opts o = opts(srv.sha, 3);
  o.stall_timeout_s = 30;
  cancel_at = 10;
  double t0 = now_s();
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), -ECANCELED);
  assert_true(now_s() - t0 < 5);
  assert_detail("cancelled; 10 bytes kept in '");
  assert_detail(part); /* a person knows where the space went */
  assert_int_equal(file_size(part), 10);
  cancel_at = 0;
  cancel_flag = 0;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), 0);
  assert_payload(path);
  assert_requests("/stall/b/payload.bin", "- bytes=10-");
}

/* A server that never ends its body: stopped at the cap, nothing left behind. */
static void test_endless_body_stops_at_cap(void **state) {
  (void)state;
  _cleanup_free_ char *u = url("/endless/a/payload.bin"), *path = NULL,
                      *part = partial_path("payload.bin");
  struct kgb_fetch_opts o = opts(srv.sha, 2);
  o.max_bytes = 1 << 20;
  double t0 = now_s();
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), -EFBIG);
  assert_true(now_s() - t0 < 10);
  assert_detail("the body goes on past 1 MiB: stopped");
  assert_int_equal(file_size(part), -1);
  assert_requests("/endless/a/payload.bin", "-"); /* not retried */
}

/* A Content-Length beyond the cap is refused before the body. */
static void test_announced_size_over_cap(void **state) {
  (void)state;
  _cleanup_free_ char *u = url("/files/big/payload.bin"), *path = NULL,
                      *part = partial_path("payload.bin");
  struct kgb_fetch_opts o = opts(srv.sha, 2);
  o.max_bytes = PAYLOAD_SIZE - 1;
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), -EFBIG);
  assert_detail("the server announces more than");
  assert_int_equal(file_size(part), -1);
}

/* libcurl's file:// would block on a FIFO's open: refused at once, the file named. */
static void test_fifo_file_url_refused(void **state) {
  (void)state;
  _cleanup_free_ char *fifo = strjoin_path(srv.dir, "source.fifo"),
                      *u = kgb_strdup_printf("file://%s", fifo), *path = NULL;
  assert_int_equal(mkfifo(fifo, 0644), 0);
  struct kgb_fetch_opts o = opts("skip", 0);
  double t0 = now_s();
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), -ENOTSUP);
  assert_true(now_s() - t0 < 5);
  assert_detail(fifo);
  assert_detail("it is a FIFO, not a regular file");
  kgb_error_clear(ctx);
  assert_int_equal(kgb_fetch_file(ctx, fifo, &o, &path), -ENOTSUP); /* as a path too */
  assert_detail("it is a FIFO, not a regular file");
  unlink(fifo);
}

/* A partial file nobody resumed for KGB_FETCH_PARTIAL_DAYS goes with the next download; a
 * recent one stays for its resume. */
static void test_old_partials_swept(void **state) {
  (void)state;
  _cleanup_free_ char *dir = kgb_strdup_printf("%s/cache/downloads/partial", ctx->workdir),
                      *old = partial_path("abandoned.tar.xz"), *recent = partial_path("recent.bin"),
                      *u = url("/files/sweep/payload.bin"), *path = NULL;
  assert_int_equal(mkdir_p(dir, 0755), 0);
  write_or_fail(old, "old", 3);
  write_or_fail(recent, "new", 3);
  struct timespec t[2] = {{.tv_sec = time(NULL) - (KGB_FETCH_PARTIAL_DAYS + 1) * 86400},
                          {.tv_sec = time(NULL) - (KGB_FETCH_PARTIAL_DAYS + 1) * 86400}};
  assert_int_equal(utimensat(AT_FDCWD, old, t, 0), 0);
  struct kgb_fetch_opts o = opts(srv.sha, 0);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), 0);
  assert_int_equal(file_size(old), -1);
  assert_int_equal(file_size(recent), 3);
  assert_logged("a partial download untouched for");
}

static void test_complete_partial(void **state) {
  (void)state;
  /* a partial file holding every byte: the server answers 416 and the checksum decides */
  _cleanup_free_ char *u = url("/files/complete/payload.bin"), *path = NULL,
                      *part = partial_path("payload.bin"),
                      *dir = kgb_strdup_printf("%s/cache/downloads/partial", ctx->workdir),
                      *expected = kgb_strdup_printf("bytes=%d-", PAYLOAD_SIZE);
  assert_int_equal(mkdir_p(dir, 0755), 0);
  write_or_fail(part, srv.payload, PAYLOAD_SIZE);
  struct kgb_fetch_opts o = opts(srv.sha, 0);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), 0);
  assert_payload(path);
  assert_requests("/files/complete/payload.bin", expected);
}

static void test_stale_partial_starts_over(void **state) {
  (void)state;
  /* a partial file left from another file of the same name: resuming it gives a mismatch,
   * then the whole file is downloaded again once */
  _cleanup_free_ char *u = url("/files/stale/payload.bin"), *path = NULL,
                      *part = partial_path("payload.bin"),
                      *dir = kgb_strdup_printf("%s/cache/downloads/partial", ctx->workdir);
  assert_int_equal(mkdir_p(dir, 0755), 0);
  char junk[1000];
  memset(junk, 'j', sizeof(junk));
  write_or_fail(part, junk, sizeof(junk));
  struct kgb_fetch_opts o = opts(srv.sha, 0);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), 0);
  assert_payload(path);
  assert_requests("/files/stale/payload.bin", "bytes=1000- -");
  assert_logged("mismatch after resuming");
}

static void test_cache_hit_without_request(void **state) {
  (void)state;
  _cleanup_free_ char *u = url("/files/cached/payload.bin"), *first = NULL, *second = NULL,
                      *third = NULL;
  struct kgb_fetch_opts o = opts(srv.sha, 0);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &first), 0);
  assert_requests("/files/cached/payload.bin", "-");
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &second), 0);
  assert_string_equal(first, second);
  assert_requests("/files/cached/payload.bin", "-");
  /* the hash alone decides: even a URL where nothing listens is not contacted */
  assert_int_equal(kgb_fetch_file(ctx, "http://127.0.0.1:1/elsewhere/payload.bin", &o, &third), 0);
  assert_string_equal(first, third);
}

static void test_sha256sums_beside(void **state) {
  (void)state;
  _cleanup_free_ char *u = url("/files/sums/payload.bin"), *path = NULL,
                      *want = cache_path(srv.sha);
  assert_int_equal(kgb_fetch_file(ctx, u, NULL, &path), 0);
  assert_string_equal(path, want);
  assert_payload(path);
  assert_requests("/files/sums/sha256sums", "-");
  assert_requests("/files/sums/payload.bin", "-");

  _cleanup_free_ char *other = url("/files/sums/other.bin"), *opath = NULL;
  struct kgb_fetch_opts o = opts(NULL, 0);
  assert_int_equal(kgb_fetch_file(ctx, other, &o, &opath), -ENOENT);
  assert_detail("/files/sums/sha256sums: no line for 'other.bin'");
  assert_requests("/files/sums/other.bin", ""); /* nothing unverifiable is downloaded */
}

static void test_no_sha256sums(void **state) {
  (void)state;
  _cleanup_free_ char *u = url("/status/404/payload.bin"), *path = NULL;
  struct kgb_fetch_opts o = opts(NULL, 2);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), -ENOENT);
  assert_detail("no SHA-256 given and none beside it");
  assert_detail("sha256sums.asc");
  assert_requests("/status/404/sha256sums", "-");
  assert_requests("/status/404/sha256sums.asc", "-");
  assert_requests("/status/404/payload.bin", "");
}

static void test_file_url_and_local_path(void **state) {
  (void)state;
  _cleanup_free_ char *local = strjoin_path(srv.root, "payload.bin"),
                      *u = kgb_strdup_printf("file://%s", local), *path = NULL, *path2 = NULL,
                      *want = cache_path(srv.sha);
  struct kgb_fetch_opts o = opts(srv.sha, 0);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), 0);
  assert_string_equal(path, want);
  assert_payload(path);
  assert_int_equal(last_done, PAYLOAD_SIZE);

  /* "skip" is accepted for a local path, and said loudly */
  rm_rf(path);
  o = opts("skip", 0);
  assert_int_equal(kgb_fetch_file(ctx, local, &o, &path2), 0);
  assert_string_equal(path2, want);
  assert_payload(path2);
  assert_logged("SHA-256 NOT CHECKED");

  _cleanup_free_ char *missing = kgb_strdup_printf("file://%s/nothing.bin", srv.root),
                      *mpath = NULL;
  o = opts(srv.wrong_sha, 2); /* not in the cache */
  kgb_error_clear(ctx);
  assert_int_equal(kgb_fetch_file(ctx, missing, &o, &mpath), -ENOENT);
  assert_detail(missing);
}

static void test_sha256sums_asc_fallback(void **state) {
  (void)state;
  /* kernel.org publishes a clear-signed sha256sums.asc and no sha256sums */
  _cleanup_free_ char *dir = kgb_strdup_printf("%s/asc-%u", srv.dir, workdirs),
                      *tarball = strjoin_path(dir, "linux-9.9.tar.xz"),
                      *asc = strjoin_path(dir, "sha256sums.asc"),
                      *text = kgb_strdup_printf("-----BEGIN PGP SIGNED MESSAGE-----\n"
                                                "Hash: SHA256\n\n"
                                                "%s  linux-9.9.tar.xz\r\n"
                                                "-----BEGIN PGP SIGNATURE-----\n"
                                                "iQIzBAEBCAAdFiEE\n"
                                                "-----END PGP SIGNATURE-----\n",
                                                srv.sha),
                      *u = kgb_strdup_printf("file://%s", tarball), *path = NULL;
  assert_int_equal(mkdir_p(dir, 0755), 0);
  write_or_fail(tarball, srv.payload, PAYLOAD_SIZE);
  write_or_fail(asc, text, strlen(text));
  assert_int_equal(kgb_fetch_file(ctx, u, NULL, &path), 0);
  assert_payload(path);
}

static void test_connection_refused(void **state) {
  (void)state;
  /* a loopback port that was free a moment ago */
  int s = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(s >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof(a);
  assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(getsockname(s, (struct sockaddr *)&a, &alen), 0);
  close(s);
  _cleanup_free_ char *u =
                          kgb_strdup_printf("http://127.0.0.1:%d/x/payload.bin", ntohs(a.sin_port)),
                      *path = NULL;
  struct kgb_fetch_opts o = opts(srv.sha, 2);
  double t0 = now_s();
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), -ECONNREFUSED);
  assert_true(now_s() - t0 < 3);
  _cleanup_free_ char *expected = kgb_strdup_printf("%s: connection refused (after 3 attempts)", u);
  assert_string_equal(kgb_error_detail(ctx), expected);
}

static void test_refusals(void **state) {
  (void)state;
  char *path = NULL;
  _cleanup_free_ char *u = url("/files/r/payload.bin");
  struct kgb_fetch_opts o = opts("skip", 0);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), -EPERM);
  assert_detail("\"skip\" is accepted only for local files");
  kgb_error_clear(ctx);
  o = opts("abc", 0);
  assert_int_equal(kgb_fetch_file(ctx, u, &o, &path), -EINVAL);
  assert_detail("'abc' is not a SHA-256");
  kgb_error_clear(ctx);
  o = opts(srv.sha, 0);
  assert_int_equal(kgb_fetch_file(ctx, "ftp://127.0.0.1/x.tar", &o, &path), -EPROTONOSUPPORT);
  kgb_error_clear(ctx);
  _cleanup_free_ char *noname = url("/");
  assert_int_equal(kgb_fetch_file(ctx, noname, &o, &path), -EINVAL);
  assert_detail("names no file");
  assert_null(path);
  assert_requests("/files/r/payload.bin", "");
}

static void test_sha256sums_find(void **state) {
  (void)state;
  char hex[65];
  const char *a = "1111111111111111111111111111111111111111111111111111111111111111";
  _cleanup_free_ char *text = kgb_strdup_printf(
      "# comment\n"
      "%s  linux-6.1.tar.xz\n"
      "%s *linux-6.1.tar.gz\r\n"
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA  ./linux-6.2.tar.xz\n"
      "%s  linux-6.1.tar.xz.sign\n"
      "short  linux-6.3.tar.xz",
      a, a, "2222222222222222222222222222222222222222222222222222222222222222");
  assert_int_equal(kgb_sha256sums_find(text, "linux-6.1.tar.xz", hex), 0);
  assert_string_equal(hex, a);
  assert_int_equal(kgb_sha256sums_find(text, "linux-6.1.tar.gz", hex), 0);
  assert_string_equal(hex, a);
  assert_int_equal(kgb_sha256sums_find(text, "linux-6.2.tar.xz", hex), 0);
  assert_string_equal(hex, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  assert_int_equal(kgb_sha256sums_find(text, "linux-6.1.tar", hex), -ENOENT);
  assert_int_equal(kgb_sha256sums_find(text, "linux-6.3.tar.xz", hex), -ENOENT);
  assert_int_equal(kgb_sha256sums_find("", "x", hex), -ENOENT);
  _cleanup_free_ char *conflict = kgb_strdup_printf("%s  x\n%s  x\n", a, srv.sha);
  assert_int_equal(kgb_sha256sums_find(conflict, "x", hex), -EBADMSG);
  _cleanup_free_ char *same = kgb_strdup_printf("%s  x\n%s *x\n", a, a);
  assert_int_equal(kgb_sha256sums_find(same, "x", hex), 0);
}

static void expect_url(const char *tmpl, const char *version, const char *expected) {
  _cleanup_free_ char *u = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_kernel_url_for_version(ctx, tmpl, version, &u), 0);
  assert_string_equal(u, expected);
}

static void expect_url_error(const char *tmpl, const char *version, const char *detail) {
  char *u = NULL;
  kgb_error_clear(ctx);
  assert_int_equal(kgb_kernel_url_for_version(ctx, tmpl, version, &u), -EINVAL);
  assert_null(u);
  assert_detail(detail);
}

static void test_url_for_version(void **state) {
  (void)state;
  expect_url(KGB_KERNEL_URL_TEMPLATE, "6.1.192",
             "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.1.192.tar.xz");
  expect_url(KGB_KERNEL_URL_TEMPLATE, "6.1",
             "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.1.tar.xz");
  expect_url(KGB_KERNEL_URL_TEMPLATE, "10.0.3",
             "https://cdn.kernel.org/pub/linux/kernel/v10.x/linux-10.0.3.tar.xz");
  expect_url("/srv/mirror/${major}/linux-${version}.tar.gz?v=${version}", "5.15.1",
             "/srv/mirror/5/linux-5.15.1.tar.gz?v=5.15.1");
  expect_url("file:///srv/linux.tar.xz", "6.1", "file:///srv/linux.tar.xz");
  expect_url("$HOME/${version}$", "6.1", "$HOME/6.1$");
  static const char *const bad[] = {"",     "6",       "6.1.",   ".6.1",     "v6.1",     "6.1-rc1",
                                    "6..1", "6.1.2.3", "../6.1", "6.1/../x", "1234567.1"};
  for (size_t i = 0; i < ELEMENTSOF(bad); i++)
    expect_url_error(KGB_KERNEL_URL_TEMPLATE, bad[i], "is not a kernel version");
  expect_url_error("https://x/${minor}/linux.tar", "6.1", "unknown variable '${minor}'");
  expect_url_error("https://x/${version", "6.1", "'${' without '}'");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_success, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_uppercase_sha, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_resume_after_cut, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_cut_without_retries_keeps_partial, setup,
                                      fixture_teardown),
      cmocka_unit_test_setup_teardown(test_404_at_once, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_403_at_once, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_500_then_success, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_503_retries_bounded, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_wrong_checksum, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_stall_times_out, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_cancel_keeps_partial_for_resume, setup,
                                      fixture_teardown),
      cmocka_unit_test_setup_teardown(test_endless_body_stops_at_cap, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_announced_size_over_cap, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_fifo_file_url_refused, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_old_partials_swept, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_complete_partial, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_stale_partial_starts_over, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_cache_hit_without_request, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_sha256sums_beside, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_no_sha256sums, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_file_url_and_local_path, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_sha256sums_asc_fallback, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_connection_refused, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_refusals, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_sha256sums_find, setup, fixture_teardown),
      cmocka_unit_test_setup_teardown(test_url_for_version, setup, fixture_teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
