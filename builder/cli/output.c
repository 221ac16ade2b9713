/* Talking to a person: messages and errors on stderr, data on stdout, and the progress line
 * (only on a terminal, redrawn at most 10 times a second, cut to the terminal width). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "sbuf.h"
#include "util.h"

/* One progress line per running stage (the pipeline runs the bootstrap beside the kernel
 * compile), drawn as a block at the bottom of a terminal; elsewhere (CI logs) a plain line
 * when a stage starts a new step and every PLAIN_EVERY seconds while it runs. */
#define MAX_SLOTS 4
#define PLAIN_EVERY 30.0

struct slot {
  bool used;
  char stage[32];
  char what[128];
  double started, last_plain;
  uint64_t first_done; /* a resumed download starts above 0: rates count from here */
  uint64_t done, total;
};

static struct {
  bool tty, plain;
  unsigned drawn; /* lines of the block on screen */
  double last_draw;
  struct slot slots[MAX_SLOTS];
} progress;

static void clear_progress(void) {
  if (!progress.drawn)
    return;
  fputs("\r\033[K", stderr);
  for (unsigned i = 1; i < progress.drawn; i++)
    fputs("\033[A\r\033[K", stderr);
  progress.drawn = 0;
}

static int term_width(void) {
  struct winsize ws;
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
    return ws.ws_col;
  return 80;
}

static void render_slot(const struct slot *s, double t, char *line, size_t size) {
  int n = snprintf(line, size, "%s%s", s->stage, s->stage[0] ? ": " : "");
  char *p = line + n;
  size -= (size_t)n;
  double elapsed = t - s->started;
  if (s->total && startswith(s->what, "downloading") && elapsed > 0.5 && s->done > s->first_done) {
    /* bytes: show size, rate and the time left */
    double rate = (double)(s->done - s->first_done) / elapsed;
    snprintf(p, size, "%s: %.1f of %.1f MiB, %.1f MiB/s, %.0fs left", s->what,
             (double)s->done / 1048576.0, (double)s->total / 1048576.0, rate / 1048576.0,
             (double)(s->total - s->done) / rate);
  } else if (s->total && startswith(s->what, "compiling"))
    snprintf(p, size, "%s: %" PRIu64 " of about %" PRIu64 " objects (%.0fs)", s->what, s->done,
             s->total, elapsed);
  else if (s->total)
    snprintf(p, size, "%s: %3.0f%% (%.0fs)", s->what, 100.0 * (double)s->done / (double)s->total,
             elapsed);
  else
    snprintf(p, size, "%s... (%.0fs)", s->what, elapsed);
}

static void redraw(double t) {
  clear_progress();
  int w = term_width() - 1;
  for (size_t i = 0; i < MAX_SLOTS; i++) {
    if (!progress.slots[i].used)
      continue;
    char line[512];
    render_slot(&progress.slots[i], t, line, sizeof(line));
    fprintf(stderr, "%s%.*s", progress.drawn ? "\n" : "", w, line);
    progress.drawn++;
  }
  progress.last_draw = t;
}

static struct slot *find_slot(const char *stage) {
  struct slot *free_slot = NULL;
  for (size_t i = 0; i < MAX_SLOTS; i++) {
    struct slot *s = &progress.slots[i];
    if (s->used && STREQ(s->stage, stage))
      return s;
    if (!s->used && !free_slot)
      free_slot = s;
  }
  if (!free_slot)
    free_slot = &progress.slots[MAX_SLOTS - 1];
  *free_slot = (struct slot){.used = true};
  snprintf(free_slot->stage, sizeof(free_slot->stage), "%s", stage);
  return free_slot;
}

static void draw_progress(void *ud, const char *stage, const char *what, uint64_t done,
                          uint64_t total) {
  (void)ud;
  if (!progress.tty && !progress.plain)
    return;
  double t = monotonic_seconds();
  struct slot *s = find_slot(stage ? stage : "");
  if (!what) { /* the stage has nothing running */
    s->used = false;
    if (progress.tty)
      redraw(t);
    return;
  }
  bool changed = !STREQ(s->what, what);
  if (changed) {
    snprintf(s->what, sizeof(s->what), "%s", what);
    s->started = s->last_plain = t;
    s->first_done = done;
  }
  s->done = done;
  s->total = total;
  bool finished = total && done >= total;
  if (finished)
    s->used = false;
  if (progress.plain) {
    if (!finished && (changed || t - s->last_plain >= PLAIN_EVERY)) {
      char line[512];
      render_slot(s, t, line, sizeof(line));
      fprintf(stderr, "%s\n", line);
      s->last_plain = t;
    }
    return;
  }
  if (changed || finished || t - progress.last_draw >= 0.1)
    redraw(t);
}

static void print_log(void *ud, enum kgb_log_level level, const char *msg) {
  struct cli *cli = ud;
  if (level == KGB_LOG_DEBUG && cli->verbosity < 1)
    return;
  if (level >= KGB_LOG_NOTICE && cli->verbosity < 0)
    return;
  bool shown = progress.drawn;
  clear_progress();
  const char *prefix = level == KGB_LOG_ERROR     ? "error: "
                       : level == KGB_LOG_WARNING ? "warning: "
                                                  : "";
  fprintf(stderr, "%s%s\n", prefix, msg);
  if (shown)
    redraw(monotonic_seconds());
}

/* The build pipeline logs from a second thread (the bootstrap beside the kernel compile):
 * one lock keeps lines and the progress line whole. */
static pthread_mutex_t output_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_progress(void *ud, const char *stage, const char *what, uint64_t done,
                        uint64_t total) {
  pthread_mutex_lock(&output_lock);
  draw_progress(ud, stage, what, done, total);
  pthread_mutex_unlock(&output_lock);
}

static void on_log(void *ud, enum kgb_log_level level, const char *msg) {
  pthread_mutex_lock(&output_lock);
  print_log(ud, level, msg);
  pthread_mutex_unlock(&output_lock);
}

void cli_progress_install(struct cli *cli) {
  progress.tty = isatty(STDERR_FILENO) && cli->verbosity >= 0;
  /* plain progress lines in logs only with -v: a pipe to another program stays quiet */
  progress.plain = !progress.tty && (cli->verbosity > 0 || (getenv("CI") && cli->verbosity >= 0));
  cli->ctx->progress = on_progress;
  cli->ctx->log = on_log;
  cli->ctx->log_userdata = cli;
}

void cli_progress_done(void) {
  pthread_mutex_lock(&output_lock);
  clear_progress();
  for (size_t i = 0; i < MAX_SLOTS; i++)
    progress.slots[i].used = false;
  pthread_mutex_unlock(&output_lock);
}

static void vmessage(const char *prefix, const char *fmt, va_list ap, const char *suffix)
    _printf_(2, 0);
static void vmessage(const char *prefix, const char *fmt, va_list ap, const char *suffix) {
  pthread_mutex_lock(&output_lock);
  clear_progress();
  fputs(prefix, stderr);
  vfprintf(stderr, fmt, ap);
  fputs(suffix, stderr);
  pthread_mutex_unlock(&output_lock);
}

void cli_msg(struct cli *cli, const char *fmt, ...) {
  if (cli->verbosity < 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vmessage("", fmt, ap, "");
  va_end(ap);
}

void cli_err(struct cli *cli, const char *fmt, ...) {
  (void)cli;
  va_list ap;
  va_start(ap, fmt);
  vmessage("", fmt, ap, "");
  va_end(ap);
}

void cli_warn(struct cli *cli, const char *fmt, ...) {
  (void)cli;
  va_list ap;
  va_start(ap, fmt);
  vmessage("kata-gpu-builder: warning: ", fmt, ap, "\n");
  va_end(ap);
}

void cli_error(struct cli *cli, const char *fmt, ...) {
  (void)cli;
  va_list ap;
  va_start(ap, fmt);
  vmessage("kata-gpu-builder: error: ", fmt, ap, "\n");
  va_end(ap);
}

int cli_out(const char *s) {
  cli_progress_done(); /* the terminal may be both stdout and stderr */
  fputs(s, stdout);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    cli_error(NULL, "writing to standard output: %s", strerror(errno));
    return -EIO;
  }
  return 0;
}

int cli_out_sbuf(const struct sbuf *sb) {
  if (sb->err) {
    cli_error(NULL, "cannot build the output: %s", strerror(-sb->err));
    return sb->err;
  }
  return cli_out(sbuf_str(sb));
}

int cli_out_json(struct json *j) {
  int err = j->err;
  _cleanup_free_ char *s = json_steal(j);
  if (!s) {
    cli_error(NULL, "%s", err == -ENOMEM ? "out of memory" : "the JSON document is malformed");
    return err < 0 ? err : -EINVAL;
  }
  return cli_out(s);
}

int cli_fail(struct cli *cli, int r, const char *what) {
  const char *detail = kgb_error_detail(cli->ctx);
  if (r == -ECANCELED && !detail)
    detail = "interrupted";
  _cleanup_free_ char *msg =
      detail ? (what ? kgb_strdup_printf("%s: %s", what, detail) : strdup(detail))
             : kgb_strdup_printf("%s: %s", what ? what : "failed", strerror(-r));
  cli_error(cli, "%s", msg ? msg : "out of memory");
  if (cli->json) {
    struct json j = JSON_INIT;
    json_object_begin(&j, NULL, JSON_INLINE);
    json_string(&j, "error", msg ? msg : "out of memory");
    json_object_end(&j);
    cli_out_json(&j);
  }
  return EXIT_FAIL;
}

int cli_usage(struct cli *cli, const char *fmt, ...) {
  (void)cli;
  va_list ap;
  va_start(ap, fmt);
  vmessage("kata-gpu-builder: ", fmt, ap, "\n");
  va_end(ap);
  return EXIT_USAGE;
}

const char *cli_closest(const char *word, const char *const *candidates) {
  const char *best = NULL;
  size_t bestd = strlen(word) < 4 ? 2 : 3;
  for (size_t i = 0; candidates[i]; i++) {
    size_t d = levenshtein(word, candidates[i], bestd);
    if (d < bestd || (!best && startswith(candidates[i], word))) {
      bestd = MIN(d, bestd);
      best = candidates[i];
    }
  }
  return best;
}

int cli_bad_option(struct cli *cli, const char *cmd, const char *arg,
                   const struct option *options) {
  const char *near = NULL;
  /* the table's long options, and --help that the dispatcher answers for every command */
  char spelled[32][40];
  const char *known[ELEMENTSOF(spelled) + 1];
  if (arg && startswith(arg, "--")) {
    _cleanup_free_ char *name = strndup(arg, strcspn(arg, "="));
    size_t n = 0;
    for (size_t i = 0; options && options[i].name && n < ELEMENTSOF(spelled) - 1; i++) {
      snprintf(spelled[n], sizeof(spelled[n]), "--%s", options[i].name);
      known[n] = spelled[n];
      n++;
    }
    known[n++] = "--help";
    known[n] = NULL;
    near = name ? cli_closest(name, known) : NULL;
  }
  if (near)
    return cli_usage(cli,
                     "%s: unknown option '%s' (did you mean '%s'?); see 'kata-gpu-builder help %s'",
                     cmd, arg, near, cmd);
  return cli_usage(cli,
                   "%s: unknown option or missing argument '%s'; see 'kata-gpu-builder help %s'",
                   cmd, arg ? arg : "?", cmd);
}
