/* Kata Containers releases as data: which configuration.toml keys each release's runtime reads
 * (Go runtime and runtime-rs), read off Kata's config structs at every release tag
 * (docs/kata-keys.tsv is the same table), whether it reads config.d drop-ins, and the values
 * its code accepts. Only the keys this tool may write are listed. */
#pragma once

#include <stdbool.h>

#include "kgb.h"

enum kgb_kata_runtime {
  KGB_KATA_GO, /* kata-runtime / containerd-shim-kata-v2 (Golang) */
  KGB_KATA_RS, /* runtime-rs: containerd-shim-kata-v2 (Rust), from 3.0 */
  _KGB_KATA_RUNTIME_MAX,
  _KGB_KATA_RUNTIME_INVALID = -22,
};
const char *kgb_kata_runtime_to_string(enum kgb_kata_runtime r);
enum kgb_kata_runtime kgb_kata_runtime_from_string(const char *s);
/* "Go runtime", "runtime-rs": for messages. */
const char *kgb_kata_runtime_label(enum kgb_kata_runtime r);

struct kgb_kata_release {
  unsigned major, minor, patch;
  enum kgb_kata_runtime runtime;
  char name[32]; /* "3.2.0" */
};

/* The release a --kata-version names: an exact release ("3.2.0", "v3.2.0"), a minor line
 * ("3.2": its newest patch) or a major line ("3.x": its newest release). Only releases Kata
 * published are accepted; the error lists what is known. */
int kgb_kata_release_parse(struct kgb_ctx *ctx, const char *s, enum kgb_kata_runtime runtime,
                           struct kgb_kata_release *ret);
/* The newest release this table knows. */
const char *kgb_kata_release_newest(void);

/* The installed runtime's release and kind: `kata-runtime --version`, else
 * `containerd-shim-kata-v2 --version` (its "(Golang)"/"(Rust)" marker, or the quoted id of 3.0's
 * Go shim). -ENOENT when neither is installed or answers. */
int kgb_kata_release_installed(struct kgb_ctx *ctx, struct kgb_kata_release *ret);
/* Parses one line of either program's --version output; -EINVAL if it is neither. */
int kgb_kata_version_line_parse(const char *line, char ret_version[32],
                                enum kgb_kata_runtime *ret_runtime);

/* table: "hypervisor.qemu", "runtime", "agent.kata". */
bool kgb_kata_release_has_key(const struct kgb_kata_release *r, const char *table, const char *key);
/* The first release of the same runtime that reads the key, NULL if none. */
const char *kgb_kata_key_first(enum kgb_kata_runtime runtime, const char *table, const char *key);
/* config.d next to the (symlink-resolved) configuration.toml: Go from 2.5.0, runtime-rs always. */
bool kgb_kata_release_reads_dropins(const struct kgb_kata_release *r);
/* A value the release accepts for hot_plug_vfio / cold_plug_vfio. */
bool kgb_kata_release_port_ok(const struct kgb_kata_release *r, const char *key, const char *value);

/* A machine_type the release's runtime accepts on x86_64 (the Go runtime checks against its
 * list: pc and virt went in 2.2.0 and 3.17.0; runtime-rs has no list). */
bool kgb_kata_release_machine_ok(const struct kgb_kata_release *r, const char *machine_type);
/* The machine types it accepts, for messages ("q35, microvm"). */
const char *kgb_kata_release_machines(const struct kgb_kata_release *r);

/* For tests: the i-th row of the key table (false past the end). */
bool kgb_kata_key_row(size_t i, enum kgb_kata_runtime *runtime, const char **table,
                      const char **key, const char **first, const char **last);
