/* Child processes: fork + execvp with an argv array, output through a pipe into the stage log
 * (and a line callback for progress), cancellation by the context's flag. */
#define _GNU_SOURCE
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"

char *kgb_argv_to_string(char *const argv[]) {
  struct sbuf sb = SBUF_INIT;
  for (size_t i = 0; argv[i]; i++) {
    bool quote = argv[i][0] == '\0' || strpbrk(argv[i], " \t\"'$\\") != NULL;
    sbuf_addf(&sb, i ? " %s%s%s" : "%s%s%s", quote ? "'" : "", argv[i], quote ? "'" : "");
  }
  return sbuf_steal(&sb);
}

/* Out of memory, the lines stop (pending keeps its error): kgb_exec then fails. */
static void feed_lines(const struct kgb_exec_opts *o, struct sbuf *pending, const char *buf,
                       size_t n) {
  if (!o || !o->line_fn || sbuf_add(pending, buf, n) < 0)
    return;
  char *start = pending->buf, *nl;
  while ((nl = memchr(start, '\n', pending->len - (size_t)(start - pending->buf)))) {
    *nl = '\0';
    o->line_fn(o->userdata, start);
    start = nl + 1;
  }
  size_t rest = pending->len - (size_t)(start - pending->buf);
  memmove(pending->buf, start, rest);
  pending->len = rest;
  pending->buf[rest] = '\0';
}

int kgb_exec(struct kgb_ctx *ctx, char *const argv[], const struct kgb_exec_opts *o) {
  _cleanup_free_ char *cmdline = kgb_argv_to_string(argv);
  kgb_debug(ctx, "running: %s", cmdline ? cmdline : argv[0]);
  _cleanup_close_ int logfd = -1;
  if (o && o->log_path) {
    logfd = open(o->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0)
      return kgb_error(ctx, -errno, "cannot open log '%s': %m", o->log_path);
    dprintf(logfd, "$ %s\n", cmdline ? cmdline : argv[0]);
  }
  int pfd[2], efd[2];
  if (pipe2(pfd, O_CLOEXEC) < 0)
    return -errno;
  /* A second pipe reports an exec failure from the child as an errno. */
  if (pipe2(efd, O_CLOEXEC) < 0) {
    close(pfd[0]);
    close(pfd[1]);
    return -errno;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int r = -errno;
    close(pfd[0]), close(pfd[1]), close(efd[0]), close(efd[1]);
    return r;
  }
  if (pid == 0) {
    /* Its own process group, so that cancelling reaches make's whole job tree; and it dies
     * with us even when we are killed with SIGKILL. */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
      _exit(127);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
      dup2(devnull, STDIN_FILENO);
    dup2(pfd[1], STDOUT_FILENO);
    dup2(pfd[1], STDERR_FILENO);
    signal(SIGPIPE, SIG_DFL);
    if (o && o->cwd && chdir(o->cwd) < 0)
      goto fail;
    for (size_t i = 0; o && o->env && o->env[i]; i++)
      putenv(o->env[i]);
    if (o && o->child_setup) {
      int sr = o->child_setup(o->child_userdata);
      if (sr < 0) {
        errno = -sr;
        goto fail;
      }
    }
    execvp(argv[0], argv);
  fail:;
    int e = errno;
    if (write(efd[1], &e, sizeof(e)) < 0)
      _exit(127);
    _exit(127);
  }
  close(pfd[1]);
  close(efd[1]);
  int child_errno = 0;
  ssize_t en = read(efd[0], &child_errno, sizeof(child_errno));
  close(efd[0]);
  struct sbuf pending = SBUF_INIT;
  char buf[8192];
  bool cancelled = false;
  for (;;) {
    struct pollfd p = {.fd = pfd[0], .events = POLLIN};
    int pr = poll(&p, 1, 200);
    if (pr < 0 && errno != EINTR)
      break;
    if (!cancelled && kgb_cancelled(ctx)) {
      cancelled = true;
      kill(-pid, SIGTERM);
    }
    if (pr <= 0)
      continue;
    ssize_t n = read(pfd[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    if (logfd >= 0 && write(logfd, buf, (size_t)n) < 0)
      kgb_warn(ctx, "writing log '%s': %m", o->log_path);
    feed_lines(o, &pending, buf, (size_t)n);
  }
  if (pending.len && !pending.err && o && o->line_fn)
    o->line_fn(o->userdata, pending.buf);
  int lines_lost = pending.err; /* a caller that reads the output must not get part of it */
  sbuf_release(&pending);
  close(pfd[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -errno;
  if (en == (ssize_t)sizeof(child_errno) && child_errno)
    return kgb_error(ctx, -child_errno, "cannot run '%s': %s", argv[0], strerror(child_errno));
  if (cancelled || kgb_cancelled(ctx))
    return -ECANCELED;
  if (lines_lost)
    return lines_lost;
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

struct first_line {
  char *line;
  bool seen; /* a line came, even if it could not be copied */
};

static void keep_first(void *ud, const char *line) {
  struct first_line *f = ud;
  if (!f->seen)
    f->line = strdup(line);
  f->seen = true;
}

int kgb_exec_first_line(struct kgb_ctx *ctx, char *const argv[], char **ret) {
  struct first_line f = {0};
  struct kgb_exec_opts o = {.line_fn = keep_first, .userdata = &f};
  int r = kgb_exec(ctx, argv, &o);
  if (r != 0) {
    free(f.line);
    return r < 0 ? r : -EIO;
  }
  /* out of memory, "" would stand for a line the program did print */
  *ret = f.seen ? f.line : strdup("");
  return *ret ? 0 : -ENOMEM;
}

int kgb_exec_version(struct kgb_ctx *ctx, char *const *argv, char **ret) {
  int r = kgb_exec_first_line(ctx, argv, ret);
  if (r < 0) {
    kgb_error_clear(ctx);
    *ret = strdup("unknown");
    return *ret ? 0 : -ENOMEM;
  }
  return 0;
}

int kgb_log_append(const char *log_path, const char *fmt, ...) {
  _cleanup_close_ int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return -errno;
  va_list ap;
  va_start(ap, fmt);
  vdprintf(fd, fmt, ap);
  va_end(ap);
  return 0;
}
