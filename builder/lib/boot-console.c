/* The host's side of the boot-test console protocol: the status words of a check and the
 * parser of one console line (a bare or "quoted" value, the counts, the kind). The format
 * itself is in boot-protocol.h, shared with the guest program. */
#define _GNU_SOURCE
#include "boot-console.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/sbuf.h"
#include "../shared/string-table.h"
#include "../shared/util.h"
#include "boot-protocol.h"

/* ---- the status of a check ---- */

static const char *const kgb_check_status_table[_KGB_CHECK_STATUS_MAX] = {
    KGB_CONSOLE_STATUS_PASS, KGB_CONSOLE_STATUS_FAIL, KGB_CONSOLE_STATUS_SKIP};
DEFINE_STRING_TABLE_TO_STRING(kgb_check_status, enum kgb_check_status);

enum kgb_check_status kgb_check_status_from_string(const char *s) {
  if (s && STREQ(s, KGB_CONSOLE_STATUS_SKIP_SHORT))
    return KGB_CHECK_SKIP;
  return (enum kgb_check_status)string_table_lookup_from_string(
      kgb_check_status_table, ELEMENTSOF(kgb_check_status_table), s);
}

/* ---- console lines ---- */

void kgb_boot_line_release(struct kgb_boot_line *l) {
  free(l->name);
  free(l->detail);
  l->name = l->detail = NULL;
}

/* A value: bare up to a space, or "quoted" with \" \\ \n escapes. */
static int line_value(const char **p, char **ret) {
  const char *s = *p;
  struct sbuf sb = SBUF_INIT;
  if (*s == '"') {
    for (s++; *s && *s != '"'; s++) {
      char c = *s;
      if (c == '\\') {
        s++;
        if (!*s)
          break;
        c = *s == 'n' ? '\n' : *s;
      }
      sbuf_addc(&sb, c);
    }
    if (*s != '"') {
      sbuf_release(&sb);
      return -EBADMSG;
    }
    s++;
  } else {
    size_t n = strcspn(s, " \t\r\n");
    sbuf_add(&sb, s, n);
    s += n;
  }
  *ret = sbuf_steal(&sb);
  *p = s;
  return *ret ? 0 : -ENOMEM;
}

static int parse_int(const char *s, int *ret) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < 0 || v > 100000)
    return -EBADMSG;
  *ret = (int)v;
  return 0;
}

int kgb_boot_line_parse(const char *line, struct kgb_boot_line *ret) {
  const char *s = strstr(line, KGB_CONSOLE_PREFIX);
  if (!s)
    return -ENOMSG;
  s += strlen(KGB_CONSOLE_PREFIX);
  struct kgb_boot_line l = {.kind = _KGB_BOOT_LINE_KIND_INVALID,
                            .status = _KGB_CHECK_STATUS_INVALID,
                            .uptime = -1,
                            .n_pass = -1,
                            .n_fail = -1,
                            .n_skip = -1};
  bool first = true, has_status = false;
  int r = 0;
  for (;;) {
    s += strspn(s, " \t\r\n");
    if (!*s)
      break;
    size_t klen = strcspn(s, "= \t\r\n");
    if (s[klen] != '=') {
      /* a bare word: only the first token, the kind of the line */
      _cleanup_free_ char *word = strndup(s, klen);
      s += klen;
      if (!word) {
        r = -ENOMEM;
        break;
      }
      if (!first) {
        r = -EBADMSG;
        break;
      }
      if (STREQ(word, KGB_CONSOLE_BEGIN))
        l.kind = KGB_BOOT_LINE_BEGIN;
      else if (STREQ(word, KGB_CONSOLE_END))
        l.kind = KGB_BOOT_LINE_END;
      else if (STREQ(word, KGB_CONSOLE_HOTPLUG))
        l.kind = KGB_BOOT_LINE_HOTPLUG;
      else {
        r = -EBADMSG;
        break;
      }
      first = false;
      continue;
    }
    first = false;
    _cleanup_free_ char *key = strndup(s, klen);
    _cleanup_free_ char *value = NULL;
    s += klen + 1;
    if (!key) {
      r = -ENOMEM;
      break;
    }
    if ((r = line_value(&s, &value)) < 0)
      break;
    if (STREQ(key, KGB_CONSOLE_KEY_NAME)) {
      free(l.name);
      l.name = TAKE_PTR(value);
    } else if (STREQ(key, KGB_CONSOLE_KEY_STATUS)) {
      l.status = kgb_check_status_from_string(value);
      has_status = true;
    } else if (STREQ(key, KGB_CONSOLE_KEY_DETAIL)) {
      free(l.detail);
      l.detail = TAKE_PTR(value);
    } else if (STREQ(key, KGB_CONSOLE_KEY_UPTIME)) {
      char *end;
      l.uptime = strtod(value, &end);
      if (end == value || *end)
        r = -EBADMSG;
    } else if (STREQ(key, KGB_CONSOLE_KEY_PASS)) {
      r = parse_int(value, &l.n_pass);
    } else if (STREQ(key, KGB_CONSOLE_KEY_FAIL)) {
      r = parse_int(value, &l.n_fail);
    } else if (STREQ(key, KGB_CONSOLE_KEY_SKIP)) {
      r = parse_int(value, &l.n_skip);
    }
    /* other keys: from a newer guest program, ignored */
    if (r < 0)
      break;
  }
  if (r >= 0 && l.kind == _KGB_BOOT_LINE_KIND_INVALID) {
    if (l.name && *l.name && has_status && l.status >= 0)
      l.kind = KGB_BOOT_LINE_RESULT;
    else
      r = -EBADMSG;
  }
  if (r >= 0 && l.kind == KGB_BOOT_LINE_RESULT && !l.detail)
    l.detail = strdup("");
  if (r >= 0 && l.kind == KGB_BOOT_LINE_RESULT && !l.detail)
    r = -ENOMEM;
  if (r < 0) {
    kgb_boot_line_release(&l);
    return r;
  }
  *ret = l;
  return 0;
}
