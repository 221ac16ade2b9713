/* boot-test's QMP client: just enough JSON to tell QEMU's greeting, a return, an error and an
 * event apart (and keep an error's text), the socket's path, and the one conversation the test
 * has: capabilities, then a device_add into a PCIe root port. */
#define _GNU_SOURCE
#include "boot-qmp.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"

/* ---- replies: just enough JSON to tell a return from an error and keep its text ---- */

void kgb_qmp_reply_release(struct kgb_qmp_reply *r) {
  free(r->error_class);
  free(r->desc);
  free(r->event);
  r->error_class = r->desc = r->event = NULL;
}

static void json_ws(const char **p) { *p += strspn(*p, " \t\r\n"); }

static int json_hex4(const char *s, unsigned *ret) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                 : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                 : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                        : 16;
    if (d > 15)
      return -EBADMSG;
    v = v * 16 + d;
  }
  *ret = v;
  return 0;
}

/* A string; ret may be NULL to skip it. \uXXXX beyond ASCII becomes '?': the texts we keep
 * are messages for a person. */
static int json_string(const char **p, char **ret) {
  const char *s = *p;
  if (*s != '"')
    return -EBADMSG;
  struct sbuf sb = SBUF_INIT;
  for (s++; *s && *s != '"'; s++) {
    char c = *s;
    if ((unsigned char)c < 0x20)
      break;
    if (c == '\\') {
      s++;
      switch (*s) {
      case 'n':
        c = '\n';
        break;
      case 't':
        c = '\t';
        break;
      case 'r':
        c = '\r';
        break;
      case 'b':
        c = '\b';
        break;
      case 'f':
        c = '\f';
        break;
      case '"':
      case '\\':
      case '/':
        c = *s;
        break;
      case 'u': {
        unsigned u;
        if (json_hex4(s + 1, &u) < 0) {
          sbuf_release(&sb);
          return -EBADMSG;
        }
        s += 4;
        c = u < 0x80 && u >= 0x20 ? (char)u : '?';
        break;
      }
      default:
        sbuf_release(&sb);
        return -EBADMSG;
      }
    }
    if (ret)
      sbuf_addc(&sb, c);
  }
  if (*s != '"') {
    sbuf_release(&sb);
    return -EBADMSG;
  }
  *p = s + 1;
  if (ret) {
    *ret = sbuf_steal(&sb);
    if (!*ret)
      return -ENOMEM;
  }
  return 0;
}

static int json_skip(const char **p, unsigned depth) {
  if (depth > 64)
    return -EBADMSG;
  json_ws(p);
  const char *s = *p;
  if (*s == '"')
    return json_string(p, NULL);
  if (*s == '{' || *s == '[') {
    char close = *s == '{' ? '}' : ']';
    *p = s + 1;
    json_ws(p);
    if (**p == close) {
      (*p)++;
      return 0;
    }
    for (;;) {
      int r;
      if (close == '}') {
        json_ws(p);
        if ((r = json_string(p, NULL)) < 0)
          return r;
        json_ws(p);
        if (**p != ':')
          return -EBADMSG;
        (*p)++;
      }
      if ((r = json_skip(p, depth + 1)) < 0)
        return r;
      json_ws(p);
      if (**p == ',') {
        (*p)++;
        continue;
      }
      if (**p != close)
        return -EBADMSG;
      (*p)++;
      return 0;
    }
  }
  static const char *const words[] = {"true", "false", "null"};
  for (size_t i = 0; i < ELEMENTSOF(words); i++)
    if (startswith(s, words[i])) {
      *p = s + strlen(words[i]);
      return 0;
    }
  size_t n = strspn(s, "+-0123456789.eE");
  if (!n)
    return -EBADMSG;
  *p = s + n;
  return 0;
}

/* Calls fn for each member of the object at *p; fn parses or skips the value. */
static int json_object(const char **p, int (*fn)(const char **p, const char *key, void *ud),
                       void *ud) {
  json_ws(p);
  if (**p != '{')
    return -EBADMSG;
  (*p)++;
  json_ws(p);
  if (**p == '}') {
    (*p)++;
    return 0;
  }
  for (;;) {
    _cleanup_free_ char *key = NULL;
    json_ws(p);
    int r = json_string(p, &key);
    if (r < 0)
      return r;
    json_ws(p);
    if (**p != ':')
      return -EBADMSG;
    (*p)++;
    json_ws(p);
    if ((r = fn(p, key, ud)) < 0)
      return r;
    json_ws(p);
    if (**p == ',') {
      (*p)++;
      continue;
    }
    if (**p != '}')
      return -EBADMSG;
    (*p)++;
    return 0;
  }
}

static int qmp_error_member(const char **p, const char *key, void *ud) {
  struct kgb_qmp_reply *r = ud;
  char **field = STREQ(key, "class") ? &r->error_class : STREQ(key, "desc") ? &r->desc : NULL;
  if (field && **p == '"') {
    free(*field);
    *field = NULL;
    return json_string(p, field);
  }
  return json_skip(p, 1);
}

static int qmp_member(const char **p, const char *key, void *ud) {
  struct kgb_qmp_reply *r = ud;
  if (STREQ(key, "error")) {
    r->kind = KGB_QMP_ERROR;
    return json_object(p, qmp_error_member, r);
  }
  if (STREQ(key, "event") && **p == '"') {
    if (r->kind != KGB_QMP_ERROR && r->kind != KGB_QMP_RETURN)
      r->kind = KGB_QMP_EVENT;
    free(r->event);
    r->event = NULL;
    return json_string(p, &r->event);
  }
  if (STREQ(key, "return") && r->kind != KGB_QMP_ERROR)
    r->kind = KGB_QMP_RETURN;
  else if (STREQ(key, "QMP") && r->kind == _KGB_QMP_KIND_INVALID)
    r->kind = KGB_QMP_GREETING;
  return json_skip(p, 1);
}

int kgb_qmp_parse(const char *line, struct kgb_qmp_reply *ret) {
  struct kgb_qmp_reply r = {.kind = _KGB_QMP_KIND_INVALID};
  const char *p = line;
  int e = json_object(&p, qmp_member, &r);
  if (e >= 0) {
    json_ws(&p);
    if (*p)
      e = -EBADMSG;
  }
  if (e >= 0 && r.kind == _KGB_QMP_KIND_INVALID)
    e = -ENOMSG;
  if (e < 0) {
    kgb_qmp_reply_release(&r);
    return e;
  }
  *ret = r;
  return 0;
}

/* ---- the client ---- */

struct qmp {
  int fd;
  struct sbuf in;
};

/* The next reply that is not an event, within timeout seconds. */
static int qmp_read(struct qmp *q, double timeout, struct kgb_qmp_reply *ret) {
  double end = monotonic_seconds() + timeout;
  for (;;) {
    char *nl = q->in.buf ? memchr(q->in.buf, '\n', q->in.len) : NULL;
    if (nl) {
      *nl = '\0';
      struct kgb_qmp_reply rep;
      int r = kgb_qmp_parse(q->in.buf, &rep);
      size_t rest = q->in.len - (size_t)(nl + 1 - q->in.buf);
      memmove(q->in.buf, nl + 1, rest);
      q->in.len = rest;
      q->in.buf[rest] = '\0';
      if (r < 0)
        return r;
      if (rep.kind == KGB_QMP_EVENT) {
        kgb_qmp_reply_release(&rep);
        continue;
      }
      *ret = rep;
      return 0;
    }
    double left = end - monotonic_seconds();
    if (left <= 0)
      return -ETIMEDOUT;
    struct pollfd p = {.fd = q->fd, .events = POLLIN};
    int pr = poll(&p, 1, (int)(left * 1000) + 1);
    if (pr < 0 && errno != EINTR)
      return -errno;
    if (pr <= 0)
      continue;
    char buf[4096];
    ssize_t n = read(q->fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return n == 0 ? -ECONNRESET : -errno;
    if (sbuf_add(&q->in, buf, (size_t)n) < 0)
      return -ENOMEM;
  }
}

static int qmp_execute(struct qmp *q, const char *json, char **ret_error) {
  size_t len = strlen(json);
  if (write(q->fd, json, len) != (ssize_t)len || write(q->fd, "\n", 1) != 1)
    return -errno;
  struct kgb_qmp_reply rep;
  int r = qmp_read(q, 5, &rep);
  if (r < 0)
    return r;
  if (rep.kind == KGB_QMP_ERROR) {
    *ret_error = kgb_strdup_printf("%s%s%s", rep.error_class ? rep.error_class : "",
                                   rep.error_class ? ": " : "", rep.desc ? rep.desc : "?");
    r = -EIO;
  } else if (rep.kind != KGB_QMP_RETURN) {
    r = -EPROTO;
  }
  kgb_qmp_reply_release(&rep);
  return r;
}

/* device_add of a virtio-net-pci function into root port rp0: what a large-BAR GPU goes
 * through in Kata. ret_error: why it failed, for the table. */
int kgb_qmp_hotplug(const char *sock_path, char **ret_error) {
  struct qmp q = {.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), .in = SBUF_INIT};
  if (q.fd < 0)
    return -errno;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
  int r = -ENOENT;
  for (int i = 0; i < 50 && r < 0; i++) {
    r = connect(q.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
    if (r < 0)
      usleep(20 * 1000);
  }
  struct kgb_qmp_reply rep = {0};
  if (r < 0) {
    *ret_error = kgb_strdup_printf("cannot connect to QMP at '%s': %s", sock_path, strerror(-r));
  } else if ((r = qmp_read(&q, 5, &rep)) < 0 || rep.kind != KGB_QMP_GREETING) {
    *ret_error = strdup("QMP sent no greeting");
    r = r < 0 ? r : -EPROTO;
  } else if ((r = qmp_execute(&q, "{\"execute\": \"qmp_capabilities\"}", ret_error)) < 0) {
    if (!*ret_error)
      *ret_error = kgb_strdup_printf("qmp_capabilities: %s", strerror(-r));
  } else if ((r = qmp_execute(&q,
                              "{\"execute\": \"device_add\", \"arguments\": {\"driver\": "
                              "\"virtio-net-pci\", \"bus\": \"rp0\", \"id\": \"kgb-hotplug0\", "
                              "\"romfile\": \"\"}}",
                              ret_error)) < 0) {
    if (!*ret_error)
      *ret_error = kgb_strdup_printf("device_add: %s", strerror(-r));
  }
  kgb_qmp_reply_release(&rep);
  sbuf_release(&q.in);
  close(q.fd);
  return r;
}

/* The socket QEMU listens on; a path that does not fit in sun_path moves to the temporary
 * directory. ret_tmpdir: a directory to remove afterwards, or NULL. */
int kgb_qmp_socket_path(struct kgb_ctx *ctx, const char *rundir, char **ret, char **ret_tmpdir) {
  _cleanup_free_ char *path = strjoin_path(rundir, "qmp.sock");
  if (!path)
    return -ENOMEM;
  if (strlen(path) < sizeof(((struct sockaddr_un *)0)->sun_path)) {
    *ret = TAKE_PTR(path);
    *ret_tmpdir = NULL;
    return 0;
  }
  const char *tmp = getenv("TMPDIR");
  _cleanup_free_ char *dir = kgb_strdup_printf("%s/kgb-qmp-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!dir)
    return -ENOMEM;
  if (!mkdtemp(dir))
    return kgb_error(ctx, -errno, "cannot create a directory for the QMP socket: %m");
  *ret = strjoin_path(dir, "qmp.sock");
  if (!*ret) {
    rmdir(dir);
    return -ENOMEM;
  }
  *ret_tmpdir = TAKE_PTR(dir);
  return 0;
}
