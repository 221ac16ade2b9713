/* boot-test, the orchestration: the inputs (the bzImage's release, the modules' load order),
 * what the test needs from the profile, the root disk, the plan of checks, the run (console
 * lines parsed as they come, a device hot-plugged when the guest asks, a watchdog thread that
 * kills a hung guest), KVM probed with TCG as the fallback, and the result table. Its parts
 * live beside it: the console protocol (boot-protocol.h, boot-console.c), the initrd
 * (boot-initrd.c), the QEMU command line (boot-qemu.c) and the QMP client (boot-qmp.c). */
#define _GNU_SOURCE
#include "boottest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../shared/hashmap.h"
#include "../shared/sbuf.h"
#include "../shared/string-table.h"
#include "../shared/util.h"
#include "boot-initrd.h"
#include "boot-qmp.h"
#include "exec.h"
#include "kata-config.h"

#define DEFAULT_TIMEOUT 60
/* A working KVM reaches the guest's userspace in about a second, TCG in two to three here:
 * KVM that has not got there in this time is slower than TCG would be. */
#define KVM_PROBE_SECONDS 5.0
#define MAX_MEMORY 2048 /* MiB: more only slows the boot of a guest that runs no workload */
#define HOTPLUG_WAIT 20 /* seconds the guest waits for the hot-plugged device */
#define LOG_TAIL_LINES 20

/* ---- inputs ---- */

int kgb_bzimage_release(struct kgb_ctx *ctx, const char *path, char **ret) {
  _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return kgb_error(ctx, -errno, "cannot open kernel '%s': %m", path);
  unsigned char hdr[0x210];
  if (pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) || memcmp(hdr + 0x202, "HdrS", 4))
    return kgb_error(ctx, -ENOEXEC, "'%s' is not an x86 bzImage (no HdrS setup header)", path);
  unsigned version = hdr[0x206] | (unsigned)hdr[0x207] << 8;
  unsigned offset = hdr[0x20e] | (unsigned)hdr[0x20f] << 8;
  if (version < 0x200 || !offset)
    return kgb_error(ctx, -ENODATA, "'%s': its setup header has no kernel version", path);
  char text[256];
  ssize_t n = pread(fd, text, sizeof(text) - 1, (off_t)offset + 0x200);
  if (n <= 0)
    return kgb_error(ctx, -ENODATA, "'%s': cannot read the kernel version", path);
  text[n] = '\0';
  size_t len = strcspn(text, " ");
  if (!len || len == (size_t)n)
    return kgb_error(ctx, -ENODATA, "'%s': the kernel version string is malformed", path);
  *ret = strndup(text, len);
  return *ret ? 0 : -ENOMEM;
}

struct dep_module {
  char *path;
  char **deps;
  bool visited;
};

static int visit(struct hashmap *map, struct dep_module *m, char ***order, unsigned depth) {
  if (m->visited)
    return 0;
  m->visited = true;
  if (depth > 256)
    return -ELOOP;
  /* modules.dep lists every dependency, the one to load first last (as modprobe reads it) */
  for (size_t i = strv_length(m->deps); i > 0; i--) {
    struct dep_module *d = hashmap_get(map, m->deps[i - 1]);
    int r = d ? visit(map, d, order, depth + 1) : 0;
    if (r < 0)
      return r;
  }
  return strv_extend(order, m->path);
}

int kgb_modules_load_order(const char *modules_dep, char ***ret) {
  _cleanup_free_ char *text = strdup(modules_dep);
  if (!text)
    return -ENOMEM;
  struct dep_module *mods = NULL;
  size_t n = 0;
  int r = 0;
  for (char *line = strtok(text, "\n"); line && r >= 0; line = strtok(NULL, "\n")) {
    char *colon = strchr(line, ':');
    if (!colon)
      continue;
    *colon = '\0';
    struct dep_module *nm = realloc(mods, (n + 1) * sizeof(*mods));
    if (!nm) {
      r = -ENOMEM;
      break;
    }
    mods = nm;
    mods[n] = (struct dep_module){.path = strdup(strstrip(line))};
    if (!mods[n++].path)
      r = -ENOMEM;
    for (char *save, *w = strtok_r(colon + 1, " \t", &save); w && r >= 0;
         w = strtok_r(NULL, " \t", &save))
      r = strv_extend(&mods[n - 1].deps, w);
  }
  struct hashmap map = HASHMAP_INIT;
  for (size_t i = 0; i < n && r >= 0; i++)
    r = hashmap_put(&map, mods[i].path, &mods[i]);
  char **order = NULL;
  for (size_t i = 0; i < n && r >= 0; i++)
    r = visit(&map, &mods[i], &order, 0);
  hashmap_release(&map);
  for (size_t i = 0; i < n; i++) {
    free(mods[i].path);
    strv_free(mods[i].deps);
  }
  free(mods);
  if (r < 0) {
    strv_free(order);
    return r;
  }
  if (!order && !(order = calloc(1, sizeof(char *))))
    return -ENOMEM;
  *ret = order;
  return 0;
}

/* ---- the result ---- */

struct kgb_boot_result *kgb_boot_result_free(struct kgb_boot_result *r) {
  if (!r)
    return NULL;
  free(r->rundir);
  free(r->log_path);
  free(r->initrd);
  free(r->root);
  free(r->release);
  strv_free(r->qemu_argv);
  free(r->accel_why);
  for (size_t i = 0; i < r->n_checks; i++) {
    free(r->checks[i].name);
    free(r->checks[i].detail);
  }
  free(r->checks);
  strv_free(r->log_tail);
  free(r);
  return NULL;
}

static int add_check(struct kgb_boot_check **checks, size_t *n, const char *name,
                     enum kgb_check_status status, char *detail /* taken */) {
  _cleanup_free_ char *d = detail;
  struct kgb_boot_check *nc = realloc(*checks, (*n + 1) * sizeof(**checks));
  if (!nc)
    return -ENOMEM;
  *checks = nc;
  char *nm = strdup(name);
  if (!nm || !d) {
    free(nm);
    return -ENOMEM;
  }
  nc[(*n)++] = (struct kgb_boot_check){.name = nm, .status = status, .detail = TAKE_PTR(d)};
  return 0;
}

static void free_checks(struct kgb_boot_check *checks, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(checks[i].name);
    free(checks[i].detail);
  }
  free(checks);
}

/* ---- what the test needs to know about the profile ---- */

struct machine {
  char *type;   /* q35 */
  char *params; /* the Kata settings' kernel_params */
  unsigned root_ports;
  unsigned memory;
  unsigned profile_memory;
};

static void machine_release(struct machine *m) {
  free(m->type);
  free(m->params);
}

static int machine_from_kata(struct kgb_ctx *ctx, const struct kgb_profile *p, unsigned memory,
                             struct machine *ret) {
  _cleanup_(kgb_kata_plan_freep) struct kgb_kata_plan *plan = NULL;
  struct kgb_kata_opts ko = {0};
  int r = kgb_kata_plan(ctx, p, &ko, &plan);
  if (r < 0)
    return r;
  /* the plan's typed values: what Kata's settings launch */
  struct machine m = {.root_ports = plan->qemu.pcie_root_port,
                      .profile_memory = (unsigned)plan->qemu.default_memory};
  m.type = strdup(plan->qemu.machine_type ? plan->qemu.machine_type : "q35");
  if (plan->qemu.kernel_params)
    m.params = strdup(plan->qemu.kernel_params);
  if (!m.type || (plan->qemu.kernel_params && !m.params)) {
    machine_release(&m);
    return -ENOMEM;
  }
  m.memory = memory ? memory : m.profile_memory ? MIN(m.profile_memory, MAX_MEMORY) : MAX_MEMORY;
  *ret = m;
  return 0;
}

/* ---- the root disk ---- */

#define EXT4_MAGIC 0xef53u      /* s_magic, 56 bytes into the super block at 1024 */
#define EROFS_MAGIC 0xe0f5e1e2u /* the first word of the super block at 1024 */

static uint32_t le32_at(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The file system type at offset, or NULL. */
static const char *fs_at(int fd, uint64_t offset) {
  uint8_t sb[64];
  if (pread(fd, sb, sizeof(sb), (off_t)(offset + 1024)) != (ssize_t)sizeof(sb))
    return NULL;
  if (le32_at(sb) == EROFS_MAGIC)
    return "erofs";
  if ((uint32_t)(sb[56] | sb[57] << 8) == EXT4_MAGIC)
    return "ext4";
  return NULL;
}

int kgb_root_image_probe(struct kgb_ctx *ctx, const char *path, struct kgb_root_image *ret) {
  _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return kgb_error(ctx, -errno, "cannot open image '%s': %m", path);
  uint8_t mbr[512];
  ssize_t n = pread(fd, mbr, sizeof(mbr), 0);
  if (n < 0)
    return kgb_error(ctx, -errno, "cannot read image '%s': %m", path);
  if (n == (ssize_t)sizeof(mbr) && mbr[510] == 0x55 && mbr[511] == 0xaa && mbr[446 + 4] == 0x83) {
    uint64_t start = (uint64_t)le32_at(mbr + 446 + 8) * 512;
    const char *fs = start ? fs_at(fd, start) : NULL;
    if (fs) {
      *ret = (struct kgb_root_image){.fstype = fs, .device = "/dev/vda1", .offset = start};
      return 0;
    }
  }
  const char *fs = fs_at(fd, 0);
  if (fs) {
    *ret = (struct kgb_root_image){.fstype = fs, .device = "/dev/vda", .offset = 0};
    return 0;
  }
  return kgb_error(ctx, -EMEDIUMTYPE,
                   "'%s' holds no ext4 or erofs file system, neither in a first Linux partition "
                   "(Kata's layout) nor at its start: an initrd image goes to --initrd",
                   path);
}

/* ---- the plan ---- */

static bool vendor_is(const struct kgb_profile *p, const char *v) {
  return p->vendor && STREQ(p->vendor, v);
}

static bool hotplug_planned(const struct kgb_profile *p, const struct machine *m) {
  return vendor_is(p, "nvidia") && m->root_ports > 0 && STREQ(m->type, "q35");
}

/* root: the image's root disk, or NULL; image_modules: load the modules the image holds with
 * its own modprobe (rather than those in module_paths). */
static char *render_plan(const struct kgb_profile *p, const char *release, const struct machine *m,
                         char *const *module_paths, const struct kgb_root_image *root,
                         bool image_modules) {
  struct sbuf sb = SBUF_INIT;
  sbuf_addf(&sb, "# kata-gpu-builder boot-test plan for profile '%s'\n", p->name);
  sbuf_addf(&sb, "release %s\n", release);
  for (size_t i = 0; p->kernel.required && p->kernel.required[i]; i++)
    sbuf_addf(&sb, "require %s\n", p->kernel.required[i]);
  if (root)
    sbuf_addf(&sb, "root %s %s\n", root->device, root->fstype);
  if (root && image_modules)
    sbuf_addf(&sb, "image-modules %s\n", release);
  for (size_t i = 0; !image_modules && module_paths && module_paths[i]; i++)
    sbuf_addf(&sb, "module %s\n", module_paths[i]);
  if (vendor_is(p, "virgl"))
    sbuf_adds(&sb, "virtio-gpu\n");
  if (vendor_is(p, "nvidia")) {
    if (m->root_ports && STREQ(m->type, "q35"))
      sbuf_addf(&sb, "pciehp %u\n", m->root_ports);
    if (hotplug_planned(p, m))
      sbuf_addf(&sb, "hotplug %s %u\n", KGB_QMP_HOTPLUG_ID, HOTPLUG_WAIT);
    sbuf_adds(&sb, "absent nouveau\n");
    if (image_modules)
      sbuf_adds(&sb, "image-driver nvidia-driver nvidia\n");
  }
  if (vendor_is(p, "intel"))
    sbuf_adds(&sb, "driver i915\n");
  return sbuf_steal(&sb);
}

/* Rows the host decides without the guest: what cannot be checked here, and why. */
static int host_rows(const struct kgb_profile *p, const struct kgb_boot_opts *o,
                     const struct machine *m, size_t n_modules, struct kgb_boot_check **checks,
                     size_t *n) {
  int r = 0;
  /* with an image and no --modules, the guest reports on the image's own modules */
  bool image_modules = o->image && !o->modules_dir;
  if (!image_modules && !o->modules_dir)
    r = add_check(checks, n, "modules", KGB_CHECK_SKIP,
                  strdup("no module tree with this kernel (--kernel without the profile's "
                         "build; --modules DIR gives one)"));
  else if (!image_modules && !n_modules)
    r = add_check(checks, n, "modules", KGB_CHECK_SKIP,
                  strdup("the build has no loadable modules: every driver it needs is built "
                         "in"));
  if (r >= 0 && vendor_is(p, "virgl")) {
    /* the host's /dev, not a host state root: a render node is what QEMU itself would open */
    bool render = access("/dev/dri/renderD128", R_OK | W_OK) == 0;
    r = add_check(checks, n, "virgl-gl", KGB_CHECK_SKIP,
                  strdup(render ? "this host has a render node, but the GL renderer string needs "
                                  "the guest's Mesa from the profile's image; the initrd-only "
                                  "guest was checked with virtio-gpu-pci"
                                : "no render node on this host (/dev/dri/renderD128): "
                                  "virtio-gpu-gl-pci needs one; checked with virtio-gpu-pci "
                                  "(2D) instead"));
  }
  if (r >= 0 && vendor_is(p, "nvidia") && !hotplug_planned(p, m))
    r = add_check(checks, n, "hotplug", KGB_CHECK_SKIP,
                  kgb_strdup_printf("the Kata settings give no PCIe root port on q35 (machine "
                                    "%s, %u ports)",
                                    m->type, m->root_ports));
  if (r >= 0 && vendor_is(p, "nvidia") && !image_modules)
    r = add_check(checks, n, "nvidia-driver", KGB_CHECK_SKIP,
                  strdup("the driver recipe's modules live in the profile's image; this boot "
                         "has no image ('build' first, or --image FILE)"));
  return r;
}

/* ---- the watchdog: ends the run at its deadline or when the caller is interrupted ---- */

struct watch {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  bool stop, fired;
  double deadline;
  volatile sig_atomic_t flag; /* ctx->cancel during the run: kgb_exec kills QEMU on it */
  volatile sig_atomic_t *outer;
};

static void *watch_main(void *ud) {
  struct watch *w = ud;
  pthread_mutex_lock(&w->lock);
  while (!w->stop) {
    if (w->outer && *w->outer)
      w->flag = 1;
    if (!w->fired && monotonic_seconds() >= w->deadline) {
      w->fired = true;
      w->flag = 1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&w->cond, &w->lock, &ts);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

static void watch_set_deadline(struct watch *w, double deadline) {
  pthread_mutex_lock(&w->lock);
  w->deadline = deadline;
  pthread_mutex_unlock(&w->lock);
}

/* ---- one QEMU run ---- */

struct run {
  struct kgb_ctx *ctx;
  struct watch w;
  const char *label;
  const char *qmp_path;
  double t0, t_begin, t_end, t_hotplug;
  double up_begin, up_end;
  double begin_deadline; /* 0: none (the whole timeout applies) */
  unsigned timeout;
  int end_pass, end_fail, end_skip;
  struct kgb_boot_check *checks;
  size_t n_checks;
  unsigned bad_lines;
  char *hotplug_error;
  char *kill_reason; /* why the run was ended early (KVM failed) */
  int oom;
};

static void run_release(struct run *r) {
  free_checks(r->checks, r->n_checks);
  r->checks = NULL;
  r->n_checks = 0;
  free(r->hotplug_error);
  free(r->kill_reason);
  r->hotplug_error = r->kill_reason = NULL;
}

static void kill_run(struct run *r, char *reason) {
  if (!r->kill_reason)
    r->kill_reason = reason;
  else
    free(reason);
  r->w.flag = 1;
}

static void on_line(void *ud, const char *raw) {
  struct run *r = ud;
  _cleanup_free_ char *line = strdup(raw);
  if (!line) {
    r->oom = 1;
    return;
  }
  line[strcspn(line, "\r")] = '\0';
  if (r->begin_deadline && r->t_begin < 0 && strstr(line, "KVM internal error")) {
    kill_run(r, strdup("KVM internal error (the guest cannot run under this KVM)"));
    return;
  }
  struct kgb_boot_line l;
  int e = kgb_boot_line_parse(line, &l);
  if (e == -EBADMSG)
    r->bad_lines++;
  if (e < 0)
    return;
  double t = monotonic_seconds() - r->t0;
  switch (l.kind) {
  case KGB_BOOT_LINE_BEGIN:
    r->t_begin = t;
    r->up_begin = l.uptime;
    watch_set_deadline(&r->w, r->t0 + r->timeout);
    kgb_progress(r->ctx, r->label, 0, 0);
    break;
  case KGB_BOOT_LINE_RESULT: {
    /* the host's view of a hot-plug that failed belongs in the guest's row */
    char *detail = TAKE_PTR(l.detail);
    if (STREQ(l.name, "hotplug") && r->hotplug_error) {
      char *d = kgb_strdup_printf("%s; QMP: %s", detail, r->hotplug_error);
      free(detail);
      detail = d;
    }
    if (add_check(&r->checks, &r->n_checks, l.name, l.status, detail) < 0)
      r->oom = 1;
    kgb_progress(r->ctx, r->label, r->n_checks, 0);
    break;
  }
  case KGB_BOOT_LINE_HOTPLUG:
    r->t_hotplug = t;
    if (!r->qmp_path)
      r->hotplug_error = strdup("the host planned no hot-plug (no QMP socket)");
    else if (kgb_qmp_hotplug(r->qmp_path, &r->hotplug_error) < 0 && !r->hotplug_error)
      r->hotplug_error = strdup("QMP failed");
    if (r->hotplug_error)
      kgb_debug(r->ctx, "boot-test: hot-plug over QMP failed: %s", r->hotplug_error);
    break;
  case KGB_BOOT_LINE_END:
    r->t_end = t;
    r->up_end = l.uptime;
    r->end_pass = l.n_pass;
    r->end_fail = l.n_fail;
    r->end_skip = l.n_skip;
    break;
  default:
    break;
  }
  kgb_boot_line_release(&l);
}

/* Runs QEMU once; 0 when it ran (its outcome is in r), a negative errno when it could not. */
static int run_qemu(struct kgb_ctx *ctx, char **argv, const char *log_path, struct run *r,
                    int *ret_status) {
  r->t_begin = r->t_end = r->t_hotplug = -1;
  r->up_begin = r->up_end = -1;
  r->end_pass = r->end_fail = r->end_skip = -1;
  r->w.flag = 0;
  r->w.fired = false;
  r->w.stop = false;
  r->w.outer = ctx->cancel;
  r->t0 = monotonic_seconds();
  r->w.deadline = r->t0 + (r->begin_deadline ? r->begin_deadline : r->timeout);
  if (r->qmp_path)
    unlink(r->qmp_path);
  pthread_t thread;
  int e = pthread_create(&thread, NULL, watch_main, &r->w);
  if (e)
    return kgb_error(ctx, -e, "cannot start the boot-test watchdog: %s", strerror(e));
  volatile sig_atomic_t *outer = ctx->cancel;
  ctx->cancel = &r->w.flag;
  struct kgb_exec_opts eo = {.log_path = log_path, .line_fn = on_line, .userdata = r};
  kgb_progress(ctx, r->label, 0, 0);
  int status = kgb_exec(ctx, argv, &eo);
  ctx->cancel = outer;
  pthread_mutex_lock(&r->w.lock);
  r->w.stop = true;
  pthread_cond_signal(&r->w.cond);
  pthread_mutex_unlock(&r->w.lock);
  pthread_join(thread, NULL);
  kgb_progress(ctx, r->label, 1, 1);
  if (r->qmp_path)
    unlink(r->qmp_path);
  if (r->oom)
    return -ENOMEM;
  if (status == -ECANCELED && outer && *outer)
    return -ECANCELED;
  if (status < 0 && status != -ECANCELED)
    return status;
  *ret_status = status;
  return 0;
}

/* A console log with a kernel's debug output can be large; it is still text we read whole. */
#define LOG_MAX ((size_t)256 << 20)

/* The last lines of the log, for a person to see why a boot failed. */
static char **log_tail_lines(const char *path, size_t max) {
  _cleanup_free_ char *text = NULL;
  size_t len;
  if (read_full_file_max(path, LOG_MAX, &text, &len) < 0)
    return NULL;
  _cleanup_strv_free_ char **all = NULL;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    line[strcspn(line, "\r")] = '\0';
    if (*line && strv_extend(&all, line) < 0)
      return NULL;
  }
  size_t n = strv_length(all);
  char **tail = NULL;
  for (size_t i = n > max ? n - max : 0; i < n; i++)
    if (strv_extend(&tail, all[i]) < 0)
      return strv_free(tail);
  return tail;
}

/* What the log says about a guest that ended before its checks. */
static char *boot_failure(const char *log_path, int status) {
  _cleanup_free_ char *text = NULL;
  size_t len;
  if (read_full_file_max(log_path, LOG_MAX, &text, &len) >= 0) {
    /* the last run's part of the log: after its command line ("$ qemu-system-x86_64 ...") */
    char *run = text, *p;
    while ((p = strstr(run + 1, "\n$ ")))
      run = p;
    run += strcspn(run + 1, "\n") + 1;
    const char *panic = strstr(run, "Kernel panic - not syncing:");
    if (panic)
      return kgb_strdup_printf("the guest kernel panicked: %.*s", (int)strcspn(panic, "\r\n"),
                               panic);
    /* QEMU's own message, an error rather than a warning when there is one */
    const char *msg = NULL;
    for (const char *q = strstr(run, "qemu-system-"); q; q = strstr(q + 1, "qemu-system-")) {
      const char *eol = q + strcspn(q, "\r\n");
      if (!msg || (memmem(q, (size_t)(eol - q), "error", 5) && !strstr(msg, "error")))
        msg = q;
    }
    if (msg && status != 0)
      return kgb_strdup_printf("QEMU failed (exit status %d): %.*s", status,
                               (int)strcspn(msg, "\r\n"), msg);
  }
  if (status != 0)
    return kgb_strdup_printf("QEMU exited with status %d before the guest's checks", status);
  return strdup("the guest stopped before its first check line (no init? no console?)");
}

/* ---- the test ---- */

static int make_rundir(struct kgb_ctx *ctx, const char *profile, char **ret) {
  _cleanup_free_ char *base = strjoin_path(ctx->workdir, "boot-test");
  if (!base)
    return -ENOMEM;
  int r = mkdir_p(base, 0755);
  if (r < 0)
    return kgb_error(ctx, r, "cannot create '%s': %s", base, strerror(-r));
  _cleanup_free_ char *name = strdup(profile);
  if (!name)
    return -ENOMEM;
  for (char *c = name; *c; c++)
    if (*c == '/' || *c == ' ')
      *c = '_';
  char *dir = kgb_strdup_printf("%s/%s-XXXXXX", base, name);
  if (!dir)
    return -ENOMEM;
  if (!mkdtemp(dir)) {
    r = kgb_error(ctx, -errno, "cannot create a directory under '%s': %m", base);
    free(dir);
    return r;
  }
  *ret = dir;
  return 0;
}

static bool kvm_usable(char **ret_why) {
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    *ret_why = kgb_strdup_printf("/dev/kvm: %s", strerror(errno));
    return false;
  }
  close(fd);
  return true;
}

/* The checks of a finished run, with the host's own rows. */
static int judge(struct run *run, int status, const char *log_path, unsigned timeout,
                 enum kgb_accel accel, struct kgb_boot_result *res) {
  const char *accel_name = accel == KGB_ACCEL_KVM ? "KVM" : "TCG";
  char *boot;
  enum kgb_check_status bs = KGB_CHECK_FAIL;
  if (run->w.fired && run->t_begin < 0)
    boot = kgb_strdup_printf("no sign of the checks within %u s under %s (the guest hung before "
                             "or instead of kgb-guest-check): killed",
                             timeout, accel_name);
  else if (run->w.fired)
    boot = kgb_strdup_printf("the checks did not end within %u s (userspace after %.1f s): "
                             "killed",
                             timeout, run->t_begin);
  else if (run->t_begin < 0)
    boot = boot_failure(log_path, status);
  else if (run->t_end < 0)
    boot = kgb_strdup_printf("the guest stopped after %.1f s, before its checks ended",
                             monotonic_seconds() - run->t0);
  else {
    bs = KGB_CHECK_PASS;
    boot = kgb_strdup_printf("userspace after %.2f s under %s (guest uptime %.2f s), checks "
                             "done after %.2f s",
                             run->t_begin, accel_name, run->up_begin, run->t_end);
  }
  res->timed_out = run->w.fired;
  int r = add_check(&res->checks, &res->n_checks, "boot", bs, boot);
  for (size_t i = 0; i < run->n_checks && r >= 0; i++)
    r = add_check(&res->checks, &res->n_checks, run->checks[i].name, run->checks[i].status,
                  strdup(run->checks[i].detail));
  if (r >= 0 && run->t_end >= 0) {
    /* the guest's counts against the lines that arrived whole */
    int seen[_KGB_CHECK_STATUS_MAX] = {0};
    for (size_t i = 0; i < run->n_checks; i++)
      seen[run->checks[i].status]++;
    if (seen[KGB_CHECK_PASS] != run->end_pass || seen[KGB_CHECK_FAIL] != run->end_fail ||
        seen[KGB_CHECK_SKIP] != run->end_skip)
      r = add_check(&res->checks, &res->n_checks, "console", KGB_CHECK_FAIL,
                    kgb_strdup_printf("the guest reported %d passed, %d failed, %d skipped, but "
                                      "%zu result lines arrived whole (%u garbled)",
                                      run->end_pass, run->end_fail, run->end_skip, run->n_checks,
                                      run->bad_lines));
  }
  if (r >= 0 && bs == KGB_CHECK_FAIL)
    res->log_tail = log_tail_lines(log_path, LOG_TAIL_LINES);
  res->boot_seconds = run->t_begin;
  res->check_seconds = run->t_end;
  res->uptime_begin = run->up_begin;
  res->uptime_end = run->up_end;
  return r;
}

/* Everything a test holds while it runs; released in one place. */
struct boot {
  struct machine m;
  char *plan, *config, *cmdline, *modules_dep, *qmp_path, *qmp_tmpdir;
  char **modules, **module_paths;
  struct kgb_root_image root; /* with opts.image */
  struct run run;
};

static void boot_release(struct boot *b) {
  machine_release(&b->m);
  free(b->plan);
  free(b->config);
  free(b->cmdline);
  free(b->modules_dep);
  free(b->qmp_path);
  if (b->qmp_tmpdir)
    rm_rf(b->qmp_tmpdir);
  free(b->qmp_tmpdir);
  strv_free(b->modules);
  strv_free(b->module_paths);
  run_release(&b->run);
  pthread_cond_destroy(&b->run.w.cond);
  pthread_mutex_destroy(&b->run.w.lock);
}

static int boot_modules(struct kgb_ctx *ctx, const char *dir, struct boot *b) {
  _cleanup_free_ char *dep_path = strjoin_path(dir, "modules.dep");
  size_t len;
  int r = dep_path ? read_full_file(dep_path, &b->modules_dep, &len) : -ENOMEM;
  if (r == -ENOENT)
    return kgb_error(ctx, r, "no modules.dep in '%s' (depmod did not run)", dir);
  if (r < 0)
    return kgb_error(ctx, r, "cannot read '%s': %s", dep_path, strerror(-r));
  if ((r = kgb_modules_load_order(b->modules_dep, &b->modules)) < 0)
    return r;
  for (size_t i = 0; b->modules[i]; i++) {
    const char *base = strrchr(b->modules[i], '/');
    base = base ? base + 1 : b->modules[i];
    char *dst = kgb_strdup_printf("/kgb/modules/%03zu-%.*s.ko", i, (int)strcspn(base, "."), base);
    if (!dst || strv_push(&b->module_paths, dst) < 0)
      return -ENOMEM;
  }
  return 0;
}

/* The plan, the initrd, the command line: everything before QEMU starts. */
static int boot_prepare(struct kgb_ctx *ctx, const struct kgb_profile *p,
                        const struct kgb_boot_opts *o, struct boot *b,
                        struct kgb_boot_result *res) {
  if (!o->kernel || !o->guest_check)
    return kgb_error(ctx, -EINVAL, "boot-test needs a kernel and the guest check program");
  if (!is_file(o->kernel))
    return kgb_error(ctx, -ENOENT, "no kernel '%s'", o->kernel);
  if (!is_file(o->guest_check))
    return kgb_error(ctx, -ENOENT,
                     "no guest check program '%s' (build the kgb-guest-check target, or set "
                     "KGB_GUEST_CHECK)",
                     o->guest_check);
  if (o->initrd && !is_file(o->initrd))
    return kgb_error(ctx, -ENOENT, "no initrd '%s'", o->initrd);
  int r;
  if (o->image && !is_file(o->image))
    return kgb_error(ctx, -ENOENT, "no image '%s'", o->image);
  if (o->image && (r = kgb_root_image_probe(ctx, o->image, &b->root)) < 0)
    return r;
  const char *qemu = o->qemu ? o->qemu : "qemu-system-x86_64";
  _cleanup_free_ char *found = strchr(qemu, '/') ? NULL : find_program(qemu);
  if (strchr(qemu, '/') ? access(qemu, X_OK) < 0 : !found)
    return kgb_error(ctx, -ENOENT, "'%s' is not installed: apt-get install qemu-system-x86%s", qemu,
                     o->qemu ? "" : " (or --qemu PATH)");
  if (o->release)
    res->release = strdup(o->release);
  else if ((r = kgb_bzimage_release(ctx, o->kernel, &res->release)) < 0)
    return r;
  if (!res->release)
    return -ENOMEM;
  if ((r = machine_from_kata(ctx, p, o->memory, &b->m)) < 0)
    return r;
  res->memory = b->m.memory;
  if (o->modules_dir && (r = boot_modules(ctx, o->modules_dir, b)) < 0)
    return r;
  if ((r = make_rundir(ctx, p->name, &res->rundir)) < 0)
    return r;
  _cleanup_free_ char *plan_path = strjoin_path(res->rundir, "plan");
  res->log_path = strjoin_path(res->rundir, "serial.log");
  res->initrd = strjoin_path(res->rundir, "initrd.img");
  b->plan = render_plan(p, res->release, &b->m, b->module_paths, o->image ? &b->root : NULL,
                        o->image && !o->modules_dir);
  if (o->image)
    res->root =
        kgb_strdup_printf("%s image %s as %s, read-only", b->root.fstype, o->image, b->root.device);
  if (!res->log_path || !res->initrd || !plan_path || !b->plan || (o->image && !res->root))
    return -ENOMEM;
  if ((r = write_file_atomic(plan_path, b->plan, strlen(b->plan), 0644)) < 0)
    return kgb_error(ctx, r, "cannot write '%s': %s", plan_path, strerror(-r));
  size_t len;
  if (o->config && (r = read_full_file(o->config, &b->config, &len)) < 0)
    return kgb_error(ctx, r, "cannot read '%s': %s", o->config,
                     file_error_reason(o->config, r, READ_TEXT_MAX));
  struct kgb_boot_initrd ov = {.guest_check = o->guest_check,
                               .plan = b->plan,
                               .modules_dir = o->modules_dir,
                               .modules = b->modules,
                               .module_paths = b->module_paths,
                               .filter = kgb_boot_initrd_filter(b->config),
                               .epoch = o->epoch};
  if ((r = kgb_boot_initrd_write(ctx, o->initrd, &ov, res->initrd)) < 0)
    return r;
  if ((r = host_rows(p, o, &b->m, strv_length(b->modules), &res->checks, &res->n_checks)) < 0)
    return r;
  /* ours first: a later parameter (the profile's, --append) wins. root= is what Kata gives
   * the image; with rdinit the kernel leaves mounting it to the check program. */
  _cleanup_free_ char *root =
      o->image ? kgb_strdup_printf(" root=%s rootfstype=%s ro", b->root.device, b->root.fstype)
               : strdup("");
  if (!root)
    return -ENOMEM;
  b->cmdline = kgb_strdup_printf("console=ttyS0 rdinit=/kgb/check panic=-1%s%s%s%s%s", root,
                                 b->m.params ? " " : "", b->m.params ? b->m.params : "",
                                 o->append ? " " : "", o->append ? o->append : "");
  if (!b->cmdline)
    return -ENOMEM;
  if (hotplug_planned(p, &b->m))
    return kgb_qmp_socket_path(ctx, res->rundir, &b->qmp_path, &b->qmp_tmpdir);
  return 0;
}

/* One boot under accel; label for the progress line. */
static int boot_run(struct kgb_ctx *ctx, struct boot *b, struct kgb_qemu_cmd *q,
                    enum kgb_accel accel, const char *label, struct kgb_boot_result *res,
                    int *ret_status) {
  q->accel = accel;
  strv_free(res->qemu_argv);
  res->qemu_argv = NULL;
  int r = kgb_qemu_argv(q, &res->qemu_argv);
  if (r < 0)
    return r;
  b->run.label = label;
  return run_qemu(ctx, res->qemu_argv, res->log_path, &b->run, ret_status);
}

static int boot_execute(struct kgb_ctx *ctx, const struct kgb_profile *p,
                        const struct kgb_boot_opts *o, struct boot *b,
                        struct kgb_boot_result *res) {
  struct run *run = &b->run;
  run->timeout = o->timeout ? o->timeout : DEFAULT_TIMEOUT;
  run->qmp_path = b->qmp_path;
  struct kgb_qemu_cmd q = {.qemu = o->qemu ? o->qemu : "qemu-system-x86_64",
                           .name = p->name,
                           .kernel = o->kernel,
                           .initrd = res->initrd,
                           .image = o->image,
                           .cmdline = b->cmdline,
                           .machine = b->m.type,
                           .memory = b->m.memory,
                           .root_ports = b->m.root_ports,
                           .virtio_gpu = vendor_is(p, "virgl"),
                           .qmp_path = b->qmp_path};
  _cleanup_free_ char *no_kvm = NULL, *probe_label = NULL, *label = NULL, *why = NULL;
  enum kgb_accel accel = o->accel;
  int r, status = 0;
  if (accel != KGB_ACCEL_TCG && !kvm_usable(&no_kvm)) {
    if (accel == KGB_ACCEL_KVM)
      return kgb_error(ctx, -ENODEV, "--accel kvm: %s", no_kvm ? no_kvm : "no KVM");
    res->accel_why = kgb_strdup_printf("%s: TCG", no_kvm ? no_kvm : "no KVM");
    accel = KGB_ACCEL_TCG;
  }
  bool done = false;
  if (accel == KGB_ACCEL_AUTO) {
    /* KVM gets KVM_PROBE_SECONDS to reach the guest's userspace; the run goes on under KVM
     * when it does */
    probe_label = kgb_strdup_printf("boot-test %s: probing KVM", p->name);
    if (!probe_label)
      return -ENOMEM;
    run->begin_deadline = MIN(KVM_PROBE_SECONDS, (double)run->timeout);
    if ((r = boot_run(ctx, b, &q, KGB_ACCEL_KVM, probe_label, res, &status)) < 0)
      return r;
    if (run->t_begin >= 0) {
      accel = KGB_ACCEL_KVM;
      res->accel_why =
          kgb_strdup_printf("KVM reached the guest's userspace in %.1f s", run->t_begin);
      done = true;
    } else {
      res->kvm_probe_seconds = monotonic_seconds() - run->t0;
      why = run->kill_reason ? strdup(run->kill_reason)
            : run->w.fired
                ? kgb_strdup_printf("no check program running within %.0f s", run->begin_deadline)
                : boot_failure(res->log_path, status);
      res->accel_why = kgb_strdup_printf("KVM was tried first and given up after %.1f s (%s): "
                                         "TCG",
                                         res->kvm_probe_seconds, why ? why : "?");
      run_release(run);
      accel = KGB_ACCEL_TCG;
    }
    run->begin_deadline = 0;
  } else if (!res->accel_why) {
    res->accel_why = kgb_strdup_printf("--accel %s", kgb_accel_to_string(accel));
  }
  if (!res->accel_why)
    return -ENOMEM;
  if (!done) {
    label = kgb_strdup_printf("boot-test %s: booting under %s", p->name,
                              accel == KGB_ACCEL_KVM ? "KVM" : "TCG");
    if (!label)
      return -ENOMEM;
    if ((r = boot_run(ctx, b, &q, accel, label, res, &status)) < 0)
      return r;
  }
  res->accel = accel;
  res->total_seconds = monotonic_seconds() - run->t0;
  /* the host's rows so far go after the guest's */
  struct kgb_boot_check *host = res->checks;
  size_t n_host = res->n_checks;
  res->checks = NULL;
  res->n_checks = 0;
  r = judge(run, status, res->log_path, run->timeout, accel, res);
  for (size_t i = 0; i < n_host && r >= 0; i++)
    r = add_check(&res->checks, &res->n_checks, host[i].name, host[i].status,
                  strdup(host[i].detail));
  free_checks(host, n_host);
  if (r < 0)
    return r;
  for (size_t i = 0; i < res->n_checks; i++)
    if (res->checks[i].status == KGB_CHECK_PASS)
      res->n_pass++;
    else if (res->checks[i].status == KGB_CHECK_FAIL)
      res->n_fail++;
    else
      res->n_skip++;
  /* a passing run's initrd is made again in a blink; a failing one is kept to boot by hand */
  if (!res->n_fail) {
    unlink(res->initrd);
    free(res->initrd);
    res->initrd = NULL;
  }
  return 0;
}

int kgb_boot_test(struct kgb_ctx *ctx, const struct kgb_profile *p, const struct kgb_boot_opts *o,
                  struct kgb_boot_result **ret) {
  _cleanup_(kgb_boot_result_freep) struct kgb_boot_result *res = calloc(1, sizeof(*res));
  if (!res)
    return -ENOMEM;
  res->boot_seconds = res->check_seconds = res->uptime_begin = res->uptime_end = -1;
  struct boot b = {.run = {.ctx = ctx, .w = {.lock = PTHREAD_MUTEX_INITIALIZER}}};
  pthread_cond_init(&b.run.w.cond, NULL);
  int r = boot_prepare(ctx, p, o, &b, res);
  if (r >= 0)
    r = boot_execute(ctx, p, o, &b, res);
  boot_release(&b);
  if (r < 0)
    return r;
  *ret = TAKE_PTR(res);
  return 0;
}
