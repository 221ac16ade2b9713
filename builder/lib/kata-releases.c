/* Kata releases as data (kata-releases.h). The tables below were read off Kata's source at every
 * release tag; docs/kata-keys.tsv holds the key table for people and for the tests. */
#define _GNU_SOURCE
#include "kata-releases.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/sbuf.h"
#include "../shared/string-table.h"
#include "../shared/util.h"
#include "exec.h"

static const char *const kgb_kata_runtime_table[_KGB_KATA_RUNTIME_MAX] = {
    [KGB_KATA_GO] = "go",
    [KGB_KATA_RS] = "rs",
};
DEFINE_STRING_TABLE_LOOKUP(kgb_kata_runtime, enum kgb_kata_runtime);

const char *kgb_kata_runtime_label(enum kgb_kata_runtime r) {
  return r == KGB_KATA_RS ? "runtime-rs" : "Go runtime";
}

#define HV "hypervisor.qemu"
#define RT "runtime"
#define AG "agent.kata"

struct span {
  enum kgb_kata_runtime runtime;
  const char *table, *key;
  const char *first, *last; /* last NULL: read by the newest release too */
};

/* Every release Kata published, 1.3.0 to the newest (1.12.2 and 1.13.0 were released from the
 * kata-containers/runtime branches without tags in its repository). */
static const char *const releases[] = {
    "1.3.0",  "1.3.1",  "1.4.0",  "1.4.1",  "1.4.2",  "1.4.3",  "1.5.0",  "1.5.1",  "1.5.2",
    "1.5.3",  "1.5.4",  "1.5.5",  "1.6.0",  "1.6.1",  "1.6.2",  "1.6.3",  "1.6.4",  "1.6.5",
    "1.6.6",  "1.6.7",  "1.7.0",  "1.7.1",  "1.7.2",  "1.7.3",  "1.7.4",  "1.8.0",  "1.8.1",
    "1.8.2",  "1.8.3",  "1.8.4",  "1.8.5",  "1.9.0",  "1.9.1",  "1.9.2",  "1.9.3",  "1.9.4",
    "1.9.5",  "1.9.6",  "1.9.7",  "1.10.0", "1.10.1", "1.10.2", "1.10.3", "1.10.4", "1.10.5",
    "1.10.6", "1.10.7", "1.10.8", "1.11.0", "1.11.1", "1.11.2", "1.11.3", "1.11.4", "1.11.5",
    "1.12.0", "1.12.1", "1.12.2", "1.13.0", "2.0.0",  "2.0.1",  "2.0.2",  "2.0.3",  "2.0.4",
    "2.1.0",  "2.1.1",  "2.2.0",  "2.2.1",  "2.2.2",  "2.2.3",  "2.3.0",  "2.3.1",  "2.3.2",
    "2.3.3",  "2.4.0",  "2.4.1",  "2.4.2",  "2.4.3",  "2.5.0",  "2.5.1",  "2.5.2",  "3.0.0",
    "3.0.1",  "3.0.2",  "3.1.0",  "3.1.1",  "3.1.2",  "3.1.3",  "3.2.0",  "3.3.0",  "3.4.0",
    "3.5.0",  "3.6.0",  "3.7.0",  "3.8.0",  "3.9.0",  "3.10.0", "3.10.1", "3.11.0", "3.12.0",
    "3.13.0", "3.14.0", "3.15.0", "3.16.0", "3.17.0", "3.18.0", "3.19.0", "3.19.1", "3.20.0",
    "3.21.0", "3.22.0", "3.23.0", "3.24.0", "3.25.0", "3.26.0", "3.27.0", "3.28.0", "3.29.0",
    "3.30.0", "3.31.0", "3.32.0", "4.0.0",  "4.1.0",
};

static const struct span spans[] = {
    {KGB_KATA_GO, HV, "kernel", "1.3.0", NULL},
    {KGB_KATA_GO, HV, "image", "1.3.0", NULL},
    {KGB_KATA_GO, HV, "initrd", "1.3.0", NULL},
    {KGB_KATA_GO, HV, "machine_type", "1.3.0", NULL},
    {KGB_KATA_GO, HV, "kernel_params", "1.3.0", NULL},
    {KGB_KATA_GO, HV, "default_memory", "1.3.0", NULL},
    {KGB_KATA_GO, HV, "enable_iommu", "1.12.0", NULL},
    {KGB_KATA_GO, HV, "guest_hook_path", "1.4.0", NULL},
    {KGB_KATA_GO, HV, "hotplug_vfio_on_root_bus", "1.3.0", "3.1.3"},
    {KGB_KATA_GO, HV, "pcie_root_port", "1.11.0", "3.1.3"},
    {KGB_KATA_GO, HV, "pcie_root_port", "3.6.0", NULL},
    {KGB_KATA_GO, HV, "hot_plug_vfio", "3.2.0", NULL},
    {KGB_KATA_GO, HV, "cold_plug_vfio", "3.2.0", NULL},
    {KGB_KATA_GO, HV, "rootfs_type", "3.1.0", NULL},
    {KGB_KATA_GO, HV, "disable_image_nvdimm", "1.11.0", NULL},
    {KGB_KATA_GO, HV, "kernel_verity_params", "3.27.0", NULL},
    {KGB_KATA_GO, RT, "vfio_mode", "2.3.0", NULL},
    {KGB_KATA_GO, RT, "static_sandbox_resource_mgmt", "2.4.0", NULL},
    {KGB_KATA_GO, RT, "create_container_timeout", "3.4.0", NULL},
    {KGB_KATA_GO, AG, "kernel_modules", "1.9.0", NULL},
    {KGB_KATA_GO, AG, "dial_timeout", "2.1.0", NULL},
    {KGB_KATA_RS, HV, "kernel", "3.0.0", NULL},
    {KGB_KATA_RS, HV, "image", "3.0.0", NULL},
    {KGB_KATA_RS, HV, "initrd", "3.0.0", NULL},
    {KGB_KATA_RS, HV, "machine_type", "3.0.0", NULL},
    {KGB_KATA_RS, HV, "kernel_params", "3.0.0", NULL},
    {KGB_KATA_RS, HV, "default_memory", "3.0.0", NULL},
    {KGB_KATA_RS, HV, "enable_iommu", "3.0.0", NULL},
    {KGB_KATA_RS, HV, "guest_hook_path", "3.0.0", NULL},
    {KGB_KATA_RS, HV, "hotplug_vfio_on_root_bus", "3.0.0", "3.32.0"},
    {KGB_KATA_RS, HV, "pcie_root_port", "3.0.0", NULL},
    {KGB_KATA_RS, HV, "cold_plug_vfio", "3.31.0", NULL},
    {KGB_KATA_RS, HV, "rootfs_type", "3.1.0", NULL},
    {KGB_KATA_RS, HV, "disable_image_nvdimm", "3.0.0", NULL},
    {KGB_KATA_RS, HV, "kernel_verity_params", "3.27.0", NULL},
    {KGB_KATA_RS, RT, "vfio_mode", "3.0.0", NULL},
    {KGB_KATA_RS, RT, "static_sandbox_resource_mgmt", "3.2.0", NULL},
    {KGB_KATA_RS, AG, "kernel_modules", "3.0.0", NULL},
    {KGB_KATA_RS, AG, "dial_timeout_ms", "3.0.0", NULL},
    {KGB_KATA_RS, AG, "create_container_timeout", "3.19.0", NULL},
};

const char *kgb_kata_release_newest(void) { return releases[ELEMENTSOF(releases) - 1]; }

static bool known_release(const char *v) {
  for (size_t i = 0; i < ELEMENTSOF(releases); i++)
    if (STREQ(releases[i], v))
      return true;
  return false;
}

/* The newest release within series ("3", "3.2"), NULL if none. */
static const char *newest_in(const char *series) {
  const char *best = NULL;
  for (size_t i = 0; i < ELEMENTSOF(releases); i++)
    if (version_compare_series(releases[i], series) == 0)
      best = releases[i];
  return best;
}

static int fill(struct kgb_kata_release *r, const char *v, enum kgb_kata_runtime runtime) {
  *r = (struct kgb_kata_release){.runtime = runtime};
  if (sscanf(v, "%u.%u.%u", &r->major, &r->minor, &r->patch) != 3)
    return -EINVAL;
  snprintf(r->name, sizeof(r->name), "%s", v);
  return 0;
}

static bool all_digits(const char *s, size_t n) {
  if (!n)
    return false;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return true;
}

int kgb_kata_release_parse(struct kgb_ctx *ctx, const char *s, enum kgb_kata_runtime runtime,
                           struct kgb_kata_release *ret) {
  const char *v = s + (s[0] == 'v');
  _cleanup_free_ char *series = NULL;
  size_t n = strlen(v);
  /* "3.x", "3", "3.2", "3.2.0": digits and dots, an optional ".x" at the end */
  if (n > 2 && STREQ(v + n - 2, ".x"))
    series = strndup(v, n - 2);
  else
    series = strdup(v);
  if (!series)
    return -ENOMEM;
  unsigned parts = 0;
  bool ok = *series != '\0';
  for (const char *c = series; ok && *c;) {
    size_t k = strcspn(c, ".");
    ok = all_digits(c, k) && k <= 4;
    parts++;
    c += k;
    if (*c == '.' && !*++c)
      ok = false;
  }
  const char *exact = NULL;
  if (ok && parts == 3)
    exact = known_release(series) ? series : NULL;
  else if (ok && parts <= 2)
    exact = newest_in(series);
  if (!ok || parts > 3 || !exact) {
    /* what is known, by line */
    return kgb_error(ctx, -EINVAL,
                     "unknown Kata release '%s': give a published release (1.3.0 to %s) such as "
                     "3.2.0, a minor line such as 3.2 (its newest patch) or a major line such as "
                     "3.x (its newest release)",
                     s, kgb_kata_release_newest());
  }
  struct kgb_kata_release r;
  if (fill(&r, exact, runtime) < 0)
    return -EINVAL;
  if (runtime == KGB_KATA_RS && r.major < 3)
    return kgb_error(ctx, -EINVAL,
                     "Kata %s has no runtime-rs (it ships from 3.0.0 on): use --runtime go", exact);
  *ret = r;
  return 0;
}

int kgb_kata_version_line_parse(const char *line, char ret_version[32],
                                enum kgb_kata_runtime *ret_runtime) {
  const char *v = NULL;
  enum kgb_kata_runtime rt = KGB_KATA_GO;
  if (startswith(line, "kata-runtime")) {
    /* "kata-runtime  : 3.2.0" */
    const char *colon = strchr(line, ':');
    if (!colon)
      return -EINVAL;
    v = colon + 1;
  } else if (startswith(line, "Kata Containers containerd shim")) {
    /* "... shim (Golang): id: "io.containerd.kata.v2", version: 3.2.0, commit: <sha>"; the
     * Rust shim says (Rust), and 3.0's quotes no id */
    const char *ver = strstr(line, "version: ");
    if (!ver)
      return -EINVAL;
    v = ver + strlen("version: ");
    if (strstr(line, "(Rust)") || strstr(line, "id: io.containerd"))
      rt = KGB_KATA_RS;
  } else {
    return -EINVAL;
  }
  v += strspn(v, " \t");
  size_t n = strcspn(v, ", \t\n");
  if (n == 0 || n >= 32)
    return -EINVAL;
  memcpy(ret_version, v, n);
  ret_version[n] = '\0';
  *ret_runtime = rt;
  return 0;
}

int kgb_kata_release_installed(struct kgb_ctx *ctx, struct kgb_kata_release *ret) {
  static const char *const programs[] = {"kata-runtime", "containerd-shim-kata-v2"};
  for (size_t i = 0; i < ELEMENTSOF(programs); i++) {
    _cleanup_free_ char *path = find_program(programs[i]), *line = NULL;
    if (!path)
      continue;
    char *argv[] = {path, "--version", NULL};
    if (kgb_exec_first_line(ctx, argv, &line) < 0) {
      kgb_error_clear(ctx);
      continue;
    }
    char version[32];
    enum kgb_kata_runtime rt;
    if (kgb_kata_version_line_parse(line, version, &rt) < 0)
      continue;
    const char *v = version + (version[0] == 'v');
    if (!known_release(v)) {
      /* newer than this table: the newest it knows, said by the caller */
      kgb_warn(ctx, "%s says Kata %s, which this tool does not know yet: the settings follow %s",
               programs[i], v, kgb_kata_release_newest());
      v = kgb_kata_release_newest();
    }
    return fill(ret, v, rt) < 0 ? -EINVAL : 0;
  }
  return -ENOENT;
}

static bool in_span(const struct kgb_kata_release *r, const struct span *s) {
  return version_compare(r->name, s->first) >= 0 &&
         (!s->last || version_compare(r->name, s->last) <= 0);
}

bool kgb_kata_release_has_key(const struct kgb_kata_release *r, const char *table,
                              const char *key) {
  for (size_t i = 0; i < ELEMENTSOF(spans); i++)
    if (spans[i].runtime == r->runtime && STREQ(spans[i].table, table) &&
        STREQ(spans[i].key, key) && in_span(r, &spans[i]))
      return true;
  return false;
}

const char *kgb_kata_key_first(enum kgb_kata_runtime runtime, const char *table, const char *key) {
  for (size_t i = 0; i < ELEMENTSOF(spans); i++)
    if (spans[i].runtime == runtime && STREQ(spans[i].table, table) && STREQ(spans[i].key, key))
      return spans[i].first;
  return NULL;
}

bool kgb_kata_release_reads_dropins(const struct kgb_kata_release *r) {
  return r->runtime == KGB_KATA_RS || version_compare(r->name, "2.5.0") >= 0;
}

bool kgb_kata_release_port_ok(const struct kgb_kata_release *r, const char *key,
                              const char *value) {
  if (!kgb_kata_release_has_key(r, HV, key))
    return false;
  if (r->runtime == KGB_KATA_RS) /* runtime-rs: cold_plug_vfio only, and only these */
    return STREQ(value, "no-port") || STREQ(value, "root-port");
  return STREQ(value, "no-port") || STREQ(value, "bridge-port") || STREQ(value, "root-port") ||
         STREQ(value, "switch-port");
}

/* Go's supported QEMU machine types on amd64, from the release that changed the list on */
static const struct {
  const char *from, *types;
} machines[] = {
    {"1.3.0", "pc-lite, pc, q35, virt"},
    {"1.12.0", "pc-lite, pc, q35, virt, microvm"},
    {"2.2.0", "q35, virt, microvm"},
    {"3.17.0", "q35, microvm"},
};

const char *kgb_kata_release_machines(const struct kgb_kata_release *r) {
  const char *types = machines[0].types;
  for (size_t i = 0; i < ELEMENTSOF(machines); i++)
    if (version_compare(r->name, machines[i].from) >= 0)
      types = machines[i].types;
  return r->runtime == KGB_KATA_RS ? "any" : types;
}

bool kgb_kata_release_machine_ok(const struct kgb_kata_release *r, const char *machine_type) {
  if (r->runtime == KGB_KATA_RS)
    return true;
  const char *types = kgb_kata_release_machines(r);
  size_t n = strlen(machine_type);
  for (const char *t = types; *t;) {
    size_t k = strcspn(t, ",");
    if (k == n && strncmp(t, machine_type, n) == 0)
      return true;
    t += k;
    t += strspn(t, ", ");
  }
  return false;
}

bool kgb_kata_key_row(size_t i, enum kgb_kata_runtime *runtime, const char **table,
                      const char **key, const char **first, const char **last) {
  if (i >= ELEMENTSOF(spans))
    return false;
  *runtime = spans[i].runtime;
  *table = spans[i].table;
  *key = spans[i].key;
  *first = spans[i].first;
  *last = spans[i].last;
  return true;
}
