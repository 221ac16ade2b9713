/* The stage lifecycle of DESIGN.md, in one place: a stage's result lives in
 * <workdir>/stages/<name>/<key>/, where key is the SHA-256 of the stage's key text
 * (everything it reads). A stage is opened by name and key text: either its finished result
 * is there (cached) or it gets a fresh temporary directory beside it
 * (.<key16>.tmp-XXXXXX), into which it writes its outputs. kgb_stage_commit writes the small
 * record and the manifest and renames the directory into place; a concurrent run that
 * committed the same key first is fine (its result is as good). Whatever is not committed is
 * removed when the stage is freed, and kgb_workdir_sweep removes what a killed run left.
 *
 *     _cleanup_(kgb_stage_freep) struct kgb_stage *st = NULL;
 *     r = kgb_stage_open(ctx, "image", key_text, &st);
 *     if (st->cached) { read kgb_stage_get1(st, "uuid") ...; return 0; }
 *     ... write into st->tmp ...
 *     kgb_stage_set(st, "uuid", "%s", uuid);
 *     r = kgb_stage_commit(st, manifest_json);   // st->path is the result now
 *
 * The record ("state" in the stage directory) is "name value" lines, a name may repeat: what a
 * cached stage is read back from without parsing its manifest. */
#pragma once

#include <stdbool.h>

#include "../shared/sbuf.h"
#include "kgb.h"

struct kgb_stage {
  struct kgb_ctx *ctx;
  char *name;
  char key[65];
  char *dir;  /* the final directory, <workdir>/stages/<name>/<key> */
  char *tmp;  /* the temporary directory while the stage is being written, else NULL */
  char *path; /* where the outputs are now: dir when cached or committed, else tmp */
  bool cached;
  bool forced;        /* opened under --force: the commit replaces a finished result */
  struct sbuf record; /* written by kgb_stage_set, read from the cache by kgb_stage_get */
  char *record_text;  /* the record of a cached stage */
};

/* Opens a stage: cached when <dir>/manifest.json exists and ctx->force is off (and, with
 * required, when that file is in it too), else with a new temporary directory (mode 0755).
 * The key is the SHA-256 of key_text. */
int kgb_stage_open(struct kgb_ctx *ctx, const char *name, const char *key_text,
                   const char *required, struct kgb_stage **ret);
/* The key of a key text, without opening anything. */
int kgb_stage_key(const char *key_text, char ret[65]);

/* Appends "name value" to the record. Failures are sticky: commit reports them. */
void kgb_stage_set(struct kgb_stage *st, const char *name, const char *fmt, ...) _printf_(3, 4);
/* Every value of name in the record of a cached or committed stage, in order (*ret is NULL
 * when there is none). */
int kgb_stage_get(struct kgb_stage *st, const char *name, char ***ret);
/* The first value of name, or NULL (none, or no memory). */
char *kgb_stage_get1(struct kgb_stage *st, const char *name);

/* Writes the record and manifest.json (the manifest's text) into the temporary directory and
 * renames it to the final name, replacing an older result (--force). -ENOMEM when the record
 * or the manifest lost an append. On failure the temporary directory is removed. */
int kgb_stage_commit(struct kgb_stage *st, const struct sbuf *manifest);
/* Keeps the temporary directory of a failed stage (--keep-failed): it is not removed when the
 * stage is freed. Returns its path. */
const char *kgb_stage_keep(struct kgb_stage *st);
/* Removes the temporary directory (if any) and frees the stage. */
struct kgb_stage *kgb_stage_free(struct kgb_stage *st);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct kgb_stage *, kgb_stage_free)

/* A manifest's first lines, '{', "stage" and "key", and then a string member on a line of its
 * own (a NULL value is null): what every stage's manifest.json starts with. The caller adds
 * its other members and the closing "\n}\n". */
void kgb_manifest_begin(struct sbuf *sb, const char *stage, const char *key);
void kgb_manifest_string(struct sbuf *sb, const char *name, const char *value);

/* "name value" lines of a record text: every value of name, in order. */
int kgb_record_get(const char *text, const char *name, char ***ret);

/* For --dry-run: whether <workdir>/stages/<stage>/<key> holds a finished result that a run
 * would reuse; the key is copied to *ret_key. */
int kgb_stage_planned(struct kgb_ctx *ctx, const char *stage, const char *key, char **ret_key,
                      bool *ret_cached);

/* Creates <workdir>/logs, where stage logs live (outside the stage directories, so that a
 * failed run keeps its log). */
int kgb_workdir_logs(struct kgb_ctx *ctx);
