/* kgb-guest-check: the first process of a boot-test guest. It mounts /proc, /sys and /dev,
 * runs the checks that the plan file (/kgb/plan, written by the host) lists, prints one
 * machine-readable line per check on the console and powers the VM off. Linked statically:
 * the guest has nothing else. Its line format is defined in builder/lib/boot-protocol.h, which
 * the host's parser (builder/lib/boot-console.c) includes too. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "../lib/boot-protocol.h"
#include "../shared/macro.h"

#define PLAN_PATH "/kgb/plan"
#define MAX_LINE 4096

static unsigned n_pass, n_fail, n_skip;

static void out(const char *s) {
  size_t len = strlen(s);
  while (len) {
    ssize_t n = write(STDOUT_FILENO, s, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    s += n;
    len -= (size_t)n;
  }
}

static double uptime(void) {
  struct timespec ts;
  /* CLOCK_BOOTTIME is what /proc/uptime shows, without the need for /proc. */
  if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
    return -1;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One result line, written with a single write() so that it stays whole on the console. */
static void result(const char *name, const char *status, const char *fmt, ...) _printf_(3, 4);
static void result(const char *name, const char *status, const char *fmt, ...) {
  char detail[MAX_LINE], line[MAX_LINE * 2 + 128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  size_t n = (size_t)snprintf(line, sizeof(line), KGB_CONSOLE_RESULT_OPEN, name, status);
  n = kgb_console_quote(line, n, sizeof(line), detail);
  snprintf(line + n, sizeof(line) - n, KGB_CONSOLE_RESULT_CLOSE);
  out(line);
  if (STREQ(status, KGB_CONSOLE_STATUS_PASS))
    n_pass++;
  else if (STREQ(status, KGB_CONSOLE_STATUS_FAIL))
    n_fail++;
  else
    n_skip++;
}

static bool exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static int read_line(const char *path, char *buf, size_t size) {
  _cleanup_fclose_ FILE *f = fopen(path, "re");
  if (!f)
    return -errno;
  if (!fgets(buf, (int)size, f))
    return -EIO;
  buf[strcspn(buf, "\n")] = '\0';
  return 0;
}

static void mount_api(void) {
  static const struct {
    const char *what, *where, *type;
  } m[] = {{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}};
  for (size_t i = 0; i < ELEMENTSOF(m); i++) {
    mkdir(m[i].where, 0755);
    if (mount(m[i].what, m[i].where, m[i].type, 0, NULL) < 0 && errno != EBUSY) {
      char msg[256];
      snprintf(msg, sizeof(msg), "kgb-guest-check: mount %s: %s\n", m[i].where, strerror(errno));
      out(msg);
    }
  }
}

/* stdin/stdout/stderr on the console when the kernel could not open it for us (an initrd
 * without /dev/console). */
static void open_console(void) {
  if (fcntl(STDOUT_FILENO, F_GETFD) >= 0)
    return;
  int fd = open("/dev/console", O_RDWR | O_NOCTTY);
  if (fd < 0)
    return;
  for (int i = 0; i < 3; i++)
    if (fd != i)
      dup2(fd, i);
  if (fd > 2)
    close(fd);
}

/* ---- checks ---- */

static void check_uname(const char *want) {
  struct utsname u;
  if (uname(&u) < 0)
    result("uname", KGB_CONSOLE_STATUS_FAIL, "uname: %s", strerror(errno));
  else if (!STREQ(u.release, want))
    result("uname", KGB_CONSOLE_STATUS_FAIL, "running %s, the build is %s", u.release, want);
  else
    result("uname", KGB_CONSOLE_STATUS_PASS, "%s", u.release);
}

/* "CONFIG_X=y" or "# CONFIG_X is not set": the symbol and the wanted value ("n" for off). */
static bool split_required(const char *req, char *sym, size_t symsize, const char **value) {
  const char *s = req, *end;
  if (strncmp(s, "# ", 2) == 0 && (end = strstr(s + 2, " is not set"))) {
    snprintf(sym, symsize, "%.*s", (int)(end - s - 2), s + 2);
    *value = "n";
    return true;
  }
  end = strchr(s, '=');
  if (!end)
    return false;
  snprintf(sym, symsize, "%.*s", (int)(end - s), s);
  *value = end + 1;
  return true;
}

static void check_config(char **required, size_t n) {
  if (!n)
    return;
  gzFile gz = gzopen("/proc/config.gz", "rb");
  if (!gz) {
    result("config", KGB_CONSOLE_STATUS_FAIL, "/proc/config.gz: %s (CONFIG_IKCONFIG_PROC is off?)",
           errno ? strerror(errno) : "cannot open");
    return;
  }
  /* The value found for each required symbol; NULL: not in the config (= n). */
  char **found = calloc(n, sizeof(char *));
  char line[MAX_LINE];
  size_t lines = 0;
  while (found && gzgets(gz, line, sizeof(line))) {
    lines++;
    line[strcspn(line, "\n")] = '\0';
    char *eq = strchr(line, '=');
    if (line[0] == '#' || !eq)
      continue;
    for (size_t i = 0; i < n; i++) {
      char sym[256];
      const char *want;
      if (!found[i] && split_required(required[i], sym, sizeof(sym), &want) &&
          strlen(sym) == (size_t)(eq - line) && strncmp(line, sym, (size_t)(eq - line)) == 0)
        found[i] = strdup(eq + 1);
    }
  }
  gzclose(gz);
  if (!found || !lines) {
    result("config", KGB_CONSOLE_STATUS_FAIL, "/proc/config.gz could not be read");
    free(found);
    return;
  }
  char bad[MAX_LINE] = "";
  size_t n_bad = 0, blen = 0;
  for (size_t i = 0; i < n; i++) {
    char sym[256];
    const char *want;
    if (!split_required(required[i], sym, sizeof(sym), &want))
      continue;
    const char *have = found[i] ? found[i] : "n";
    if (!STREQ(want, have)) {
      n_bad++;
      blen += (size_t)snprintf(bad + blen, blen < sizeof(bad) ? sizeof(bad) - blen : 0,
                               "%s%s=%s (wanted %s)", n_bad > 1 ? ", " : "", sym, have, want);
      blen = MIN(blen, sizeof(bad) - 1);
    }
    free(found[i]);
  }
  free(found);
  if (n_bad)
    result("config", KGB_CONSOLE_STATUS_FAIL,
           "%zu of %zu required values differ in /proc/config.gz: %s", n_bad, n, bad);
  else
    result("config", KGB_CONSOLE_STATUS_PASS, "%zu required values in /proc/config.gz", n);
}

static void check_modules(char **paths, size_t n) {
  char loaded[MAX_LINE] = "", failed[MAX_LINE] = "";
  size_t n_ok = 0, n_nodev = 0, n_bad = 0, lo = 0, fa = 0;
  for (size_t i = 0; i < n; i++) {
    const char *base = strrchr(paths[i], '/');
    base = base ? base + 1 : paths[i];
    /* the host numbers them in load order: 003-drm.ko */
    size_t digits = strspn(base, "0123456789");
    if (digits && base[digits] == '-')
      base += digits + 1;
    int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
    int r = fd < 0 ? -1 : (int)syscall(SYS_finit_module, fd, "", 0);
    int e = errno;
    if (fd >= 0)
      close(fd);
    if (r == 0 || e == EEXIST) {
      n_ok++;
      lo += (size_t)snprintf(loaded + lo, lo < sizeof(loaded) ? sizeof(loaded) - lo : 0, "%s%.*s",
                             n_ok > 1 ? ", " : "", (int)strcspn(base, "."), base);
      lo = MIN(lo, sizeof(loaded) - 1);
    } else if (e == ENODEV || e == ENXIO) {
      /* The module's init found no hardware: it loaded and linked, which is what counts. */
      n_nodev++;
    } else {
      n_bad++;
      fa += (size_t)snprintf(failed + fa, fa < sizeof(failed) ? sizeof(failed) - fa : 0, "%s%s: %s",
                             n_bad > 1 ? ", " : "", base, strerror(e));
      fa = MIN(fa, sizeof(failed) - 1);
    }
  }
  if (n_bad)
    result("modules", KGB_CONSOLE_STATUS_FAIL, "%zu of %zu modules did not load: %s", n_bad, n,
           failed);
  else if (n_nodev)
    result("modules", KGB_CONSOLE_STATUS_PASS,
           "%zu modules loaded (%s), %zu more linked but found no device", n_ok, loaded, n_nodev);
  else
    result("modules", KGB_CONSOLE_STATUS_PASS, "%zu module%s loaded with finit_module: %s", n_ok,
           n_ok == 1 ? "" : "s", loaded);
}

/* The first entry of dir whose name starts with prefix, or false. */
static bool first_entry(const char *dir, const char *prefix, char *name, size_t size) {
  DIR *d = opendir(dir);
  if (!d)
    return false;
  struct dirent *de;
  bool found = false;
  while (!found && (de = readdir(d)))
    if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
      snprintf(name, size, "%s", de->d_name);
      found = true;
    }
  closedir(d);
  return found;
}

static void check_virtio_gpu(void) {
  char dev[NAME_MAX + 1], link[PATH_MAX + 64], target[PATH_MAX];
  if (!first_entry("/sys/bus/virtio/drivers/virtio_gpu", "virtio", dev, sizeof(dev))) {
    result("virtio-gpu", KGB_CONSOLE_STATUS_FAIL,
           exists("/sys/bus/virtio/drivers/virtio_gpu")
               ? "the virtio_gpu driver is bound to no device (is -device virtio-gpu-pci there?)"
               : "no virtio_gpu driver in the kernel (CONFIG_DRM_VIRTIO_GPU)");
  } else {
    /* virtioN's parent is the PCI function that carries it. */
    snprintf(link, sizeof(link), "/sys/bus/virtio/devices/%s", dev);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    target[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(target, '/');
    if (slash)
      *slash = '\0';
    const char *pci = strrchr(target, '/');
    result("virtio-gpu", KGB_CONSOLE_STATUS_PASS, "virtio_gpu drives %s (PCI %s)", dev,
           pci ? pci + 1 : "?");
  }
  /* devtmpfs creates nodes as drivers register them: give a late probe a moment. */
  static const char *const nodes[] = {"/dev/dri/card0", "/dev/dri/renderD128"};
  char detail[512] = "";
  size_t len = 0;
  bool ok = true;
  for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
    struct stat st;
    int tries = 0;
    while (stat(nodes[i], &st) < 0 && tries++ < 10)
      usleep(100 * 1000);
    bool is_chr = tries <= 10 && S_ISCHR(st.st_mode);
    ok = ok && is_chr;
    if (is_chr)
      len += (size_t)snprintf(detail + len, sizeof(detail) - len, "%s%s %u:%u", i ? ", " : "",
                              nodes[i], major(st.st_rdev), minor(st.st_rdev));
    else
      len += (size_t)snprintf(detail + len, sizeof(detail) - len, "%s%s missing", i ? ", " : "",
                              nodes[i]);
    len = MIN(len, sizeof(detail) - 1);
  }
  result("dri-nodes", ok ? KGB_CONSOLE_STATUS_PASS : KGB_CONSOLE_STATUS_FAIL, "%s", detail);
}

static size_t count_entries(const char *dir, const char *prefix, char *names, size_t size) {
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  size_t n = 0, len = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.' || strncmp(de->d_name, prefix, strlen(prefix)) != 0)
      continue;
    n++;
    if (names && len < size)
      len += (size_t)snprintf(names + len, size - len, "%s%s", n > 1 ? ", " : "", de->d_name);
  }
  closedir(d);
  return n;
}

static void check_pciehp(unsigned want) {
  char ports[1024] = "", slots[512] = "";
  /* portdrv's service devices that pciehp bound: 0000:00:01.0:pcie004 and so on. */
  size_t n = count_entries("/sys/bus/pci_express/drivers/pciehp", "0000:", ports, sizeof(ports));
  size_t s = count_entries("/sys/bus/pci/slots", "", slots, sizeof(slots));
  if (!exists("/sys/bus/pci_express/drivers/pciehp"))
    result("pciehp", KGB_CONSOLE_STATUS_FAIL,
           "no pciehp driver (CONFIG_HOTPLUG_PCI_PCIE) or no PCIe port bus");
  else if (n < want)
    result("pciehp", KGB_CONSOLE_STATUS_FAIL,
           "pciehp runs on %zu port%s, %u expected (%s); ACPI hotplug took them?", n,
           n == 1 ? "" : "s", want, n ? ports : "none");
  else
    result("pciehp", KGB_CONSOLE_STATUS_PASS, "pciehp on %zu root port%s (%s), slots: %s", n,
           n == 1 ? "" : "s", ports, s ? slots : "none");
}

static const char *skip_0x(const char *s) { return strncmp(s, "0x", 2) == 0 ? s + 2 : s; }

struct pci_id {
  char name[NAME_MAX + 1];
};

static size_t list_pci(struct pci_id *ids, size_t max) {
  DIR *d = opendir("/sys/bus/pci/devices");
  if (!d)
    return 0;
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) && n < max)
    if (de->d_name[0] != '.')
      snprintf(ids[n++].name, sizeof(ids[0].name), "%s", de->d_name);
  closedir(d);
  return n;
}

/* Asks the host for a device in a root port and waits for a PCI function that was not there. */
static void check_hotplug(const char *want_id, unsigned wait_s) {
  enum { MAX_DEV = 256 };
  struct pci_id before[MAX_DEV], now[MAX_DEV];
  size_t nb = list_pci(before, MAX_DEV);
  double t0 = uptime();
  out(KGB_CONSOLE_HOTPLUG_LINE);
  char seen[PATH_MAX] = "";
  while (uptime() - t0 < wait_s) {
    size_t nn = list_pci(now, MAX_DEV);
    for (size_t i = 0; i < nn; i++) {
      bool old = false;
      for (size_t j = 0; j < nb && !old; j++)
        old = STREQ(now[i].name, before[j].name);
      if (old)
        continue;
      char path[PATH_MAX], vendor[16] = "", device[16] = "", id[40];
      snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", now[i].name);
      if (read_line(path, vendor, sizeof(vendor)) < 0)
        continue;
      snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", now[i].name);
      if (read_line(path, device, sizeof(device)) < 0)
        continue;
      snprintf(id, sizeof(id), "%s:%s", skip_0x(vendor), skip_0x(device));
      if (!STREQ(id, want_id)) {
        snprintf(seen, sizeof(seen), "%s (%s)", now[i].name, id);
        continue;
      }
      char target[PATH_MAX], parent[PATH_MAX] = "?";
      snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", now[i].name);
      ssize_t n = readlink(path, target, sizeof(target) - 1);
      target[n > 0 ? n : 0] = '\0';
      char *slash = strrchr(target, '/');
      if (slash) {
        *slash = '\0';
        const char *p = strrchr(target, '/');
        snprintf(parent, sizeof(parent), "%s", p ? p + 1 : target);
      }
      result("hotplug", KGB_CONSOLE_STATUS_PASS,
             "%s (%s) appeared %.1f s after the request, behind %s", now[i].name, id, uptime() - t0,
             parent);
      return;
    }
    usleep(50 * 1000);
  }
  result("hotplug", KGB_CONSOLE_STATUS_FAIL, "no %s device appeared within %u s of the request%s%s",
         want_id, wait_s, seen[0] ? "; new: " : "", seen);
}

static void check_driver(const char *driver) {
  char path[PATH_MAX], bound[512] = "";
  snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s", driver);
  if (!exists(path)) {
    result(driver, KGB_CONSOLE_STATUS_FAIL, "no PCI driver %s in the kernel (%s missing)", driver,
           path);
    return;
  }
  size_t n = count_entries(path, "0000:", bound, sizeof(bound));
  /* A built-in driver has no initstate: only a loaded module has one. */
  snprintf(path, sizeof(path), "/sys/module/%s/initstate", driver);
  const char *how = exists(path) ? "loaded as a module" : "built in";
  if (n)
    result(driver, KGB_CONSOLE_STATUS_PASS, "the %s driver is %s and drives %s", driver, how,
           bound);
  else
    result(driver, KGB_CONSOLE_STATUS_PASS, "the %s driver is %s (no device of its own in this VM)",
           driver, how);
}

static void check_absent(const char *driver) {
  char path[PATH_MAX], mod[PATH_MAX];
  snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s", driver);
  snprintf(mod, sizeof(mod), "/sys/module/%s", driver);
  if (exists(path) || exists(mod))
    result(driver, KGB_CONSOLE_STATUS_FAIL, "%s is in the kernel (%s)", driver,
           exists(path) ? path : mod);
  else
    result(driver, KGB_CONSOLE_STATUS_PASS, "%s is neither built in nor loaded", driver);
}

/* ---- the image as the root disk ---- */

#define SYSROOT "/sysroot"
#define ROOT_WAIT 10 /* seconds for the root device to appear */

static bool root_mounted;

/* path (absolute, as the image sees it) resolved inside SYSROOT, symlinks followed there:
 * "/sbin/init" -> "/sysroot/lib/systemd/systemd". 0, or -errno. */
static int sysroot_resolve(const char *path, char *out, size_t size, char *shown,
                           size_t shown_size) {
  char cur[PATH_MAX];
  snprintf(cur, sizeof(cur), "%s", path);
  if (shown)
    snprintf(shown, shown_size, "%s", path);
  for (int hops = 0; hops < 16; hops++) {
    char host[PATH_MAX + sizeof(SYSROOT)], target[PATH_MAX];
    snprintf(host, sizeof(host), SYSROOT "%s", cur);
    ssize_t n = readlink(host, target, sizeof(target) - 1);
    if (n < 0) {
      if (errno != EINVAL)
        return -errno;
      return (size_t)snprintf(out, size, "%s", host) < size ? 0 : -ENAMETOOLONG;
    }
    target[n] = '\0';
    if (target[0] == '/') {
      snprintf(cur, sizeof(cur), "%s", target);
    } else {
      char *slash = strrchr(cur, '/');
      char dir[PATH_MAX];
      snprintf(dir, sizeof(dir), "%.*s", (int)(slash ? slash - cur : 0), cur);
      if ((size_t)snprintf(cur, sizeof(cur), "%s/%s", dir, target) >= sizeof(cur))
        return -ENAMETOOLONG;
    }
    if (shown) {
      size_t l = strlen(shown);
      snprintf(shown + l, shown_size - l, " -> %s", target);
    }
  }
  return -ELOOP;
}

/* src into dst, cut to fit. */
static void copy_cut(char *dst, size_t size, const char *src) {
  size_t n = MIN(strlen(src), size - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* The image's PRETTY_NAME, or a note that it has none. */
static void os_release(char *buf, size_t size) {
  char path[PATH_MAX], line[512];
  snprintf(buf, size, "no /etc/os-release");
  if (sysroot_resolve("/etc/os-release", path, sizeof(path), NULL, 0) < 0)
    return;
  FILE *f = fopen(path, "re");
  if (!f)
    return;
  while (fgets(line, sizeof(line), f))
    if (strncmp(line, "PRETTY_NAME=", 12) == 0) {
      char *v = line + 12;
      v[strcspn(v, "\n")] = '\0';
      size_t n = strlen(v);
      if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v[n - 1] = '\0';
        v++;
      }
      copy_cut(buf, size, v);
    }
  fclose(f);
}

/* "root DEVICE FSTYPE": the device mounted read-only on SYSROOT as the kernel would mount
 * root=, the image's system named and its init found. */
static void check_root(const char *arg) {
  char dev[256], fstype[32];
  if (sscanf(arg, "%255s %31s", dev, fstype) != 2) {
    result("rootfs", KGB_CONSOLE_STATUS_FAIL, "a malformed plan line 'root %s'", arg);
    return;
  }
  double t0 = uptime();
  while (!exists(dev) && uptime() - t0 < ROOT_WAIT)
    usleep(20 * 1000);
  if (!exists(dev)) {
    result("rootfs", KGB_CONSOLE_STATUS_FAIL,
           "%s did not appear within %d s (virtio-blk not built in, or no partition table read)",
           dev, ROOT_WAIT);
    return;
  }
  mkdir(SYSROOT, 0755);
  if (mount(dev, SYSROOT, fstype, MS_RDONLY, NULL) < 0) {
    result("rootfs", KGB_CONSOLE_STATUS_FAIL, "mounting %s (%s) read-only: %s%s", dev, fstype,
           strerror(errno), errno == ENODEV ? " (the kernel lacks this file system)" : "");
    return;
  }
  root_mounted = true;
  char pretty[256], init[PATH_MAX], shown[PATH_MAX * 2] = "";
  os_release(pretty, sizeof(pretty));
  static const char *const inits[] = {"/sbin/init", "/init"};
  bool found = false;
  for (size_t i = 0; i < ELEMENTSOF(inits) && !found; i++) {
    struct stat st;
    found = sysroot_resolve(inits[i], init, sizeof(init), shown, sizeof(shown)) == 0 &&
            stat(init, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
  }
  if (!found)
    result("rootfs", KGB_CONSOLE_STATUS_FAIL,
           "%s on %s mounted, but it has no executable /sbin/init or /init", fstype, dev);
  else
    result("rootfs", KGB_CONSOLE_STATUS_PASS, "%s on %s mounted read-only: %s; init %s", fstype,
           dev, pretty, shown);
}

/* The module names in modules.dep ("kernel/drivers/x/foo-bar.ko.xz: ..." -> "foo-bar"). */
static size_t dep_names(FILE *f, char names[][64], size_t max) {
  char line[MAX_LINE];
  size_t n = 0;
  while (n < max && fgets(line, sizeof(line), f)) {
    char *colon = strchr(line, ':');
    if (!colon)
      continue;
    *colon = '\0';
    const char *base = strrchr(line, '/');
    base = base ? base + 1 : line;
    snprintf(names[n++], 64, "%.*s", (int)strcspn(base, "."), base);
  }
  return n;
}

/* Runs argv in SYSROOT (chrooted); its output (both streams) in out. The exit status, or -1. */
static int run_in_root(const char *prog, char *const argv[], char *out, size_t size) {
  int fds[2];
  out[0] = '\0';
  if (pipe2(fds, O_CLOEXEC) < 0)
    return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    if (chroot(SYSROOT) == 0 && chdir("/") == 0)
      execv(prog, argv);
    _exit(127);
  }
  close(fds[1]);
  size_t len = 0;
  ssize_t n;
  char buf[512];
  while ((n = read(fds[0], buf, sizeof(buf))) != 0) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      break;
    size_t take = MIN((size_t)n, size - 1 - len);
    memcpy(out + len, buf, take);
    len += take;
  }
  out[len] = '\0';
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define MAX_IMAGE_MODULES 512

/* The image's modules.dep, read once for the checks that need it. */
static struct {
  bool read;
  int n; /* -1: the image has no modules.dep for the release */
  char names[MAX_IMAGE_MODULES][64];
} image_mods;

/* The module names of the image's /lib/modules/RELEASE/modules.dep (the root mounted): their
 * count, or -1 when there is none. */
static int image_module_names(const char *release) {
  if (image_mods.read)
    return image_mods.n;
  image_mods.read = true;
  image_mods.n = -1;
  char dep[PATH_MAX], rel[PATH_MAX];
  snprintf(rel, sizeof(rel), "/lib/modules/%s/modules.dep", release);
  FILE *f = sysroot_resolve(rel, dep, sizeof(dep), NULL, 0) == 0 ? fopen(dep, "re") : NULL;
  if (f) {
    image_mods.n = (int)dep_names(f, image_mods.names, MAX_IMAGE_MODULES);
    fclose(f);
  }
  return image_mods.n;
}

/* "image-modules RELEASE": every module of the image's /lib/modules/RELEASE loaded with the
 * image's own modprobe, in a chroot with /proc, /sys and /dev: the image's modules.dep, its
 * kmod and the kernel must agree, as they must for the Kata agent. */
static void check_image_modules(const char *release) {
  if (!root_mounted) {
    result("modules", KGB_CONSOLE_STATUS_FAIL,
           "the image's root is not mounted (see the rootfs check)");
    return;
  }
  int found = image_module_names(release);
  if (found < 0) {
    result("modules", KGB_CONSOLE_STATUS_FAIL,
           "the image has no /lib/modules/%s/modules.dep: its modules are not for this kernel, "
           "or depmod did not run",
           release);
    return;
  }
  size_t n = (size_t)found;
  char(*names)[64] = image_mods.names;
  if (!n) {
    result("modules", KGB_CONSOLE_STATUS_SKIP,
           "the image's /lib/modules/%s has no loadable modules: every driver is built in",
           release);
    return;
  }
  static const char *const progs[] = {"/sbin/modprobe", "/usr/sbin/modprobe"};
  const char *prog = NULL;
  for (size_t i = 0; i < ELEMENTSOF(progs) && !prog; i++) {
    char host[PATH_MAX];
    if (sysroot_resolve(progs[i], host, sizeof(host), NULL, 0) == 0 && access(host, X_OK) == 0)
      prog = progs[i];
  }
  if (!prog) {
    result("modules", KGB_CONSOLE_STATUS_FAIL,
           "the image has %zu modules but no modprobe (the kmod package)", n);
    return;
  }
  static const char *const api[] = {"/proc", "/sys", "/dev"};
  for (size_t i = 0; i < ELEMENTSOF(api); i++) {
    char where[64];
    snprintf(where, sizeof(where), SYSROOT "%s", api[i]);
    if (mount(api[i], where, NULL, MS_BIND | MS_REC, NULL) < 0) {
      result("modules", KGB_CONSOLE_STATUS_FAIL, "cannot bind %s into the image's root: %s", api[i],
             strerror(errno));
      return;
    }
  }
  char loaded[MAX_LINE] = "", failed[MAX_LINE] = "";
  size_t n_ok = 0, n_nodev = 0, n_bad = 0, lo = 0, fa = 0;
  for (size_t i = 0; i < n; i++) {
    char msg[1024];
    char *argv[] = {"modprobe", names[i], NULL};
    int st = run_in_root(prog, argv, msg, sizeof(msg));
    msg[strcspn(msg, "\n")] = '\0';
    if (st == 0) {
      n_ok++;
      lo += (size_t)snprintf(loaded + lo, lo < sizeof(loaded) ? sizeof(loaded) - lo : 0, "%s%s",
                             n_ok > 1 ? ", " : "", names[i]);
      lo = MIN(lo, sizeof(loaded) - 1);
    } else if (strstr(msg, "No such device")) {
      n_nodev++; /* linked, found no hardware */
    } else {
      n_bad++;
      fa += (size_t)snprintf(failed + fa, fa < sizeof(failed) ? sizeof(failed) - fa : 0, "%s%s: %s",
                             n_bad > 1 ? "; " : "", names[i],
                             msg[0]   ? msg
                             : st < 0 ? "could not run"
                                      : "failed");
      fa = MIN(fa, sizeof(failed) - 1);
    }
  }
  if (n_bad)
    result("modules", KGB_CONSOLE_STATUS_FAIL,
           "%zu of %zu modules of the image did not load with its modprobe: %s", n_bad, n, failed);
  else
    result("modules", KGB_CONSOLE_STATUS_PASS,
           "%zu module%s of the image loaded with its modprobe%s%s%s", n_ok, n_ok == 1 ? "" : "s",
           n_ok ? ": " : "", loaded, n_nodev ? " (more linked but found no device)" : "");
}

/* "image-driver NAME MODULE": the driver's module is in the image and loaded, or the image was
 * built without it. */
static void check_image_driver(const char *arg) {
  char name[64], module[64];
  if (sscanf(arg, "%63s %63s", name, module) != 2) {
    result("image-driver", KGB_CONSOLE_STATUS_FAIL, "a malformed plan line 'image-driver %s'", arg);
    return;
  }
  struct utsname u;
  uname(&u);
  int n = root_mounted ? image_module_names(u.release) : 0;
  bool present = false;
  for (int i = 0; i < n && !present; i++)
    present = STREQ(image_mods.names[i], module);
  char sys[PATH_MAX];
  snprintf(sys, sizeof(sys), "/sys/module/%s", module);
  if (!present)
    result(name, KGB_CONSOLE_STATUS_SKIP,
           "the image has no %s module (built without the %s recipe)", module, name);
  else if (exists(sys))
    result(name, KGB_CONSOLE_STATUS_PASS, "%s from the image is loaded", module);
  else
    result(name, KGB_CONSOLE_STATUS_FAIL, "the image has %s, but it did not load (see modules)",
           module);
}

/* ---- the plan ---- */

struct plan {
  char **required, **modules;
  size_t n_required, n_modules;
};

static void push(char ***v, size_t *n, const char *s) {
  char **nv = realloc(*v, (*n + 1) * sizeof(char *));
  if (!nv)
    return;
  *v = nv;
  nv[*n] = strdup(s);
  if (nv[*n])
    (*n)++;
}

/* Runs the plan's lines in order. The per-kind lists (required, module) are gathered first
 * and checked where their first line was. */
static void run_plan(FILE *f) {
  struct plan p = {0};
  char line[MAX_LINE];
  char **steps = NULL;
  size_t n_steps = 0;
  while (fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\n")] = '\0';
    if (!line[0] || line[0] == '#')
      continue;
    char *arg = strchr(line, ' ');
    if (arg)
      *arg++ = '\0';
    else
      arg = line + strlen(line);
    if (STREQ(line, "require")) {
      if (!p.n_required)
        push(&steps, &n_steps, "config");
      push(&p.required, &p.n_required, arg);
    } else if (STREQ(line, "module")) {
      if (!p.n_modules)
        push(&steps, &n_steps, "modules");
      push(&p.modules, &p.n_modules, arg);
    } else {
      char step[MAX_LINE + 64];
      snprintf(step, sizeof(step), "%s %s", line, arg);
      push(&steps, &n_steps, step);
    }
  }
  for (size_t i = 0; i < n_steps; i++) {
    char *arg = strchr(steps[i], ' ');
    if (arg)
      *arg++ = '\0';
    else
      arg = steps[i] + strlen(steps[i]);
    const char *s = steps[i];
    if (STREQ(s, "release"))
      check_uname(arg);
    else if (STREQ(s, "config"))
      check_config(p.required, p.n_required);
    else if (STREQ(s, "modules"))
      check_modules(p.modules, p.n_modules);
    else if (STREQ(s, "virtio-gpu"))
      check_virtio_gpu();
    else if (STREQ(s, "pciehp"))
      check_pciehp((unsigned)atoi(arg));
    else if (STREQ(s, "hotplug")) {
      char id[32] = "";
      unsigned wait_s = 20;
      if (sscanf(arg, "%31s %u", id, &wait_s) >= 1)
        check_hotplug(id, wait_s);
    } else if (STREQ(s, "driver"))
      check_driver(arg);
    else if (STREQ(s, "absent"))
      check_absent(arg);
    else if (STREQ(s, "root"))
      check_root(arg);
    else if (STREQ(s, "image-modules"))
      check_image_modules(arg);
    else if (STREQ(s, "image-driver"))
      check_image_driver(arg);
    else
      result(s, KGB_CONSOLE_STATUS_FAIL,
             "kgb-guest-check does not know the check '%s' (older than the tool?)", s);
    free(steps[i]);
  }
  free(steps);
  for (size_t i = 0; i < p.n_required; i++)
    free(p.required[i]);
  for (size_t i = 0; i < p.n_modules; i++)
    free(p.modules[i]);
  free(p.required);
  free(p.modules);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  mount_api();
  open_console();
  /* Kernel messages would cut our lines in two on the shared console: only emergencies from
   * here on (the boot log before this point stays in the serial log). */
  klogctl(8 /* SYSLOG_ACTION_CONSOLE_LEVEL */, NULL, 1);
  char line[128];
  snprintf(line, sizeof(line), KGB_CONSOLE_BEGIN_FMT, uptime());
  out(line);
  FILE *f = fopen(PLAN_PATH, "re");
  if (!f) {
    result("plan", KGB_CONSOLE_STATUS_FAIL, "%s: %s", PLAN_PATH, strerror(errno));
  } else {
    run_plan(f);
    fclose(f);
  }
  snprintf(line, sizeof(line), KGB_CONSOLE_END_FMT, uptime(), n_pass, n_fail, n_skip);
  out(line);
  klogctl(8, NULL, 7);
  sync();
  reboot(RB_POWER_OFF);
  /* Still here (no ACPI?): halting leaves QEMU to the host's timeout. */
  reboot(RB_HALT_SYSTEM);
  for (;;)
    pause();
}
