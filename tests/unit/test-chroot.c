/* Paths inside a root (symbolic links never lead out) and namespaced commands: the mounts a
 * command sees, its PID and environment, its exit status, and that nothing of the root is
 * mounted anywhere after it ends, even when the process running it is killed with SIGKILL.
 * Then what a command is kept from (a host disk, a device node left in the tree, leaving the
 * chroot, mknod, mount, modules, the dropped capabilities) and what a package installation
 * still may do. The namespace tests need root and skip without it. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above first */
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "chroot.h"
#include "fixture.h"
#include "sbuf.h"
#include "util.h"

static char root[] = "/tmp/kgb-test-chroot.XXXXXX";
/* outside the root: where an escaped command would write */
static char host[] = "/tmp/kgb-test-chroot-host.XXXXXX";

static void put(const char *rel, const char *link_target) {
  char p[512];
  snprintf(p, sizeof(p), "%s/%s", root, rel);
  if (link_target)
    assert_int_equal(symlink(link_target, p), 0);
  else
    assert_int_equal(mkdir_p(p, 0755), 0);
}

static int setup(void **state) {
  if (fixture_setup(state) < 0 || !mkdtemp(root) || !mkdtemp(host))
    return -1;
  /* a merged-/usr root with links that try to leave it */
  put("usr/lib/modules", NULL);
  put("usr/bin", NULL);
  put("etc", NULL);
  put("lib", "usr/lib");
  put("bin", "/usr/bin");
  put("etc/escape", "../../../../..");
  put("etc/abs", "/etc");
  put("etc/loop", "loop");
  char probe[512];
  snprintf(probe, sizeof(probe), "%s/probe", root);
  return copy_file_atomic(KGB_ROOTFS_FIXTURES "/probe", probe, 0755);
}

static int teardown(void **state) {
  rm_rf(root);
  rm_rf(host);
  return fixture_teardown(state);
}

static void resolves(const char *path, bool follow, const char *want_rel) {
  char *got = NULL;
  assert_int_equal(kgb_root_resolve(root, path, follow, &got), 0);
  char want[512];
  snprintf(want, sizeof(want), "%s%s", root, want_rel);
  assert_string_equal(got, want);
  free(got);
}

static void test_resolve(void **state) {
  (void)state;
  resolves("/lib/modules/6.1", true, "/usr/lib/modules/6.1");
  resolves("/bin/sh", true, "/usr/bin/sh");
  resolves("/bin", false, "/bin");
  resolves("/etc/escape/passwd", true, "/passwd");
  resolves("/etc/abs/x", true, "/etc/x");
  resolves("/../../etc", true, "/etc");
  resolves("/", true, "");
  resolves("usr//./bin/", true, "/usr/bin");
  resolves("/nonexistent/a/b", true, "/nonexistent/a/b");
  char *got = NULL;
  assert_int_equal(kgb_root_resolve(root, "/etc/loop/x", true, &got), -ELOOP);
  assert_null(got);
}

struct lines {
  struct sbuf text;
};

static void on_line(void *ud, const char *line) {
  struct lines *l = ud;
  sbuf_adds(&l->text, line);
  sbuf_addc(&l->text, '\n');
}

static bool mounted_anywhere(const char *path) {
  DIR *d = opendir("/proc");
  bool found = false;
  struct dirent *de;
  while (d && !found && (de = readdir(d))) {
    if (de->d_name[0] < '0' || de->d_name[0] > '9')
      continue;
    char p[300];
    snprintf(p, sizeof(p), "/proc/%s/mountinfo", de->d_name);
    char *text = NULL;
    if (read_full_file(p, &text, NULL) == 0)
      found = strstr(text, path) != NULL;
    free(text);
  }
  if (d)
    closedir(d);
  return found;
}

static void test_run(void **state) {
  (void)state;
  if (geteuid() != 0)
    skip();
  struct lines l = {SBUF_INIT};
  char *env[] = {"KGB_TEST=1", "HOME=/srv", NULL};
  struct kgb_chroot_opts o = {.env = env, .line_fn = on_line, .userdata = &l};
  char *argv[] = {"/probe", "info", NULL};
  kgb_error_clear(ctx);
  assert_int_equal(kgb_chroot_run(ctx, root, argv, &o), 0);
  const char *t = sbuf_str(&l.text);
  /* B is PID 1 of the new namespace, the command its child */
  assert_non_null(strstr(t, "pid 2\n"));
  static const char *const mounts[] = {"mount /\n",    "mount /proc\n",    "mount /sys\n",
                                       "mount /dev\n", "mount /dev/pts\n", "mount /dev/shm\n",
                                       "mount /tmp\n", "mount /run\n"};
  for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++)
    if (!strstr(t, mounts[i]))
      fail_msg("no '%s' in:\n%s", mounts[i], t);
  assert_non_null(strstr(t, "env PATH=" KGB_CHROOT_PATH "\n"));
  assert_non_null(strstr(t, "env DEBIAN_FRONTEND=noninteractive\n"));
  assert_non_null(strstr(t, "env KGB_TEST=1\n"));
  assert_non_null(strstr(t, "env HOME=/srv\n")); /* a later entry wins */
  assert_null(strstr(t, "env HOME=/root\n"));
  sbuf_release(&l.text);
  assert_false(mounted_anywhere(root));

  char *fail[] = {"/probe", "exit", "7", NULL};
  assert_int_equal(kgb_chroot_run(ctx, root, fail, NULL), 7);
  char *missing[] = {"/no-such-program", NULL};
  kgb_error_clear(ctx);
  assert_int_equal(kgb_chroot_run(ctx, root, missing, NULL), -ENOENT);
  assert_false(mounted_anywhere(root));
}

/* Runs the probe in the root and returns its exit status; its output goes to *out. */
static int probe(char *const argv[], struct sbuf *out) {
  struct lines l = {SBUF_INIT};
  struct kgb_chroot_opts o = {.line_fn = on_line, .userdata = &l};
  kgb_error_clear(ctx);
  int r = kgb_chroot_run(ctx, root, argv, &o);
  *out = l.text;
  return r;
}

static void has(const char *text, const char *fmt, ...) {
  char want[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(want, sizeof(want), fmt, ap);
  va_end(ap);
  if (!strstr(text, want))
    fail_msg("no '%s' in:\n%s", want, text);
}

static void test_minimal_dev(void **state) {
  (void)state;
  if (geteuid() != 0)
    skip();
  /* the host's first loop device (not mounted, so the kernel lets root write it) and one of
   * its disks, as a tarball could carry them */
  unsigned maj = 254, min = 0;
  char name[64] = "vda";
  char *parts = NULL;
  if (read_full_file("/proc/partitions", &parts, NULL) == 0) {
    char *line = strchr(parts, '\n');
    while (line && sscanf(line, "%u %u %*u %63s", &maj, &min, name) != 3)
      line = strchr(line + 1, '\n');
  }
  free(parts);
  char p[512];
  snprintf(p, sizeof(p), "%s/loop", root);
  assert_int_equal(mknod(p, S_IFBLK | 0600, makedev(7, 0)), 0);
  snprintf(p, sizeof(p), "%s/disk", root);
  assert_int_equal(mknod(p, S_IFBLK | 0600, makedev(maj, min)), 0);
  snprintf(p, sizeof(p), "%s/kmsg", root);
  assert_int_equal(mknod(p, S_IFCHR | 0600, makedev(1, 11)), 0);
  char host_disk[80];
  snprintf(host_disk, sizeof(host_disk), "/dev/%s", name);
  char *argv[] = {"/probe",  "open-rw",    "/loop",    "/disk", "/kmsg",
                  host_disk, "/dev/loop0", "/dev/mem", NULL};
  struct sbuf out;
  assert_int_equal(probe(argv, &out), 0);
  const char *t = sbuf_str(&out);
  /* the root is nodev: a node in the tree is no device */
  has(t, "open-rw /loop: errno %d\n", EACCES);
  has(t, "open-rw /disk: errno %d\n", EACCES);
  has(t, "open-rw /kmsg: errno %d\n", EACCES);
  /* and /dev holds none of the host's */
  has(t, "open-rw %s: errno %d\n", host_disk, ENOENT);
  has(t, "open-rw /dev/loop0: errno %d\n", ENOENT);
  has(t, "open-rw /dev/mem: errno %d\n", ENOENT);
  sbuf_release(&out);

  char *ls[] = {"/probe", "ls", "/dev", NULL};
  assert_int_equal(probe(ls, &out), 0);
  assert_string_equal(sbuf_str(&out), "fd l /proc/self/fd\n"
                                      "full c 1:7\n"
                                      "null c 1:3\n"
                                      "ptmx l pts/ptmx\n"
                                      "pts d\n"
                                      "random c 1:8\n"
                                      "shm d\n"
                                      "stderr l /proc/self/fd/2\n"
                                      "stdin l /proc/self/fd/0\n"
                                      "stdout l /proc/self/fd/1\n"
                                      "tty c 5:0\n"
                                      "urandom c 1:9\n"
                                      "zero c 1:5\n");
  sbuf_release(&out);
}

static void test_escape(void **state) {
  (void)state;
  if (geteuid() != 0)
    skip();
  char file[512];
  snprintf(file, sizeof(file), "%s/escaped", host);
  /* a descriptor the caller left open by mistake: a way out through fchdir */
  int leaked = open(host, O_RDONLY | O_DIRECTORY);
  assert_true(leaked >= 0);
  char *argv[] = {"/probe", "escape", file, NULL};
  struct sbuf out;
  int r = probe(argv, &out);
  close(leaked);
  assert_int_equal(r, 0);
  const char *t = sbuf_str(&out);
  if (strncmp(t, "fd ", 3) == 0 || strstr(t, "\nfd "))
    fail_msg("descriptors reached the command:\n%s", t);
  has(t, "proc1-root: errno %d\n", EACCES);
  has(t, "chroot: errno %d\n", EPERM);
  char p[600];
  snprintf(p, sizeof(p), "%s.proc", file);
  assert_int_equal(access(p, F_OK), -1);
  snprintf(p, sizeof(p), "%s.chroot", file);
  assert_int_equal(access(p, F_OK), -1);
  sbuf_release(&out);
}

static void test_privileged(void **state) {
  (void)state;
  if (geteuid() != 0)
    skip();
  char *argv[] = {"/probe", "privileged", NULL};
  struct sbuf out;
  assert_int_equal(probe(argv, &out), 0);
  const char *t = sbuf_str(&out);
  has(t, "mknod: errno %d\n", EPERM);
  has(t, "mount: errno %d\n", EPERM);
  has(t, "umount: errno %d\n", EPERM);
  has(t, "sethostname: errno %d\n", EPERM);
  has(t, "ptrace: errno %d\n", EPERM);
  /* a kernel without module support has no such calls at all */
  int no_module = access("/proc/modules", F_OK) == 0 ? EPERM : ENOSYS;
  has(t, "init_module: errno %d\n", no_module);
  has(t, "finit_module: errno %d\n", no_module);
  sbuf_release(&out);
}

static uint64_t status_mask(const char *text, const char *field) {
  const char *at = strstr(text, field);
  if (!at)
    fail_msg("no '%s' in:\n%s", field, text);
  return strtoull(at + strlen(field), NULL, 16);
}

#define BIT(c) (UINT64_C(1) << (c))

static void test_capabilities(void **state) {
  (void)state;
  if (geteuid() != 0)
    skip();
  static const int dropped[] = {CAP_SYS_ADMIN,
                                CAP_SYS_CHROOT,
                                CAP_SYS_MODULE,
                                CAP_SYS_RAWIO,
                                CAP_MKNOD,
                                CAP_SYS_PTRACE,
                                CAP_DAC_READ_SEARCH,
                                CAP_SYS_BOOT,
                                CAP_SYS_TIME,
                                CAP_NET_ADMIN,
                                CAP_BPF,
                                CAP_PERFMON,
                                CAP_SYSLOG,
                                CAP_MAC_ADMIN,
                                CAP_MAC_OVERRIDE,
                                CAP_LINUX_IMMUTABLE,
                                CAP_SYS_RESOURCE,
                                CAP_AUDIT_CONTROL,
                                CAP_SETPCAP,
                                CAP_IPC_OWNER,
                                CAP_WAKE_ALARM,
                                CAP_BLOCK_SUSPEND,
                                CAP_CHECKPOINT_RESTORE};
  static const int kept[] = {CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FOWNER,           CAP_FSETID,
                             CAP_KILL,    CAP_SETGID,       CAP_SETUID,           CAP_SETFCAP,
                             CAP_NET_RAW, CAP_AUDIT_WRITE,  CAP_NET_BIND_SERVICE, CAP_SYS_NICE,
                             CAP_LEASE,   CAP_IPC_LOCK};
  uint64_t kept_mask = 0;
  for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
    kept_mask |= BIT(kept[i]);
  char *mine = NULL;
  assert_int_equal(read_full_file("/proc/self/status", &mine, NULL), 0);
  uint64_t my_eff = status_mask(mine, "CapEff:");
  free(mine);

  char *argv[] = {"/probe", "status", NULL};
  struct sbuf out;
  assert_int_equal(probe(argv, &out), 0);
  const char *t = sbuf_str(&out);
  uint64_t eff = status_mask(t, "CapEff:"), prm = status_mask(t, "CapPrm:");
  uint64_t bnd = status_mask(t, "CapBnd:"), inh = status_mask(t, "CapInh:");
  for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
    if ((eff | prm | bnd | inh) & BIT(dropped[i]))
      fail_msg("capability %d kept:\n%s", dropped[i], t);
  /* nothing beyond the list either, and no way to get it back */
  assert_int_equal((eff | prm | bnd | inh) & ~kept_mask, 0);
  assert_int_equal(status_mask(t, "CapAmb:"), 0);
  has(t, "NoNewPrivs:\t1\n");
  /* what installation needs is all there (as far as this test itself has it) */
  assert_int_equal(eff & kept_mask, my_eff & kept_mask);
  has(t, "root nodev\n");
  sbuf_release(&out);
}

static void test_install_needs(void **state) {
  (void)state;
  if (geteuid() != 0)
    skip();
  char owned[512];
  snprintf(owned, sizeof(owned), "%s/probe-owned", root);
  unlink(owned);
  char *argv[] = {"/probe", "install", NULL};
  struct sbuf out;
  assert_int_equal(probe(argv, &out), 0);
  const char *t = sbuf_str(&out);
  static const char *const ok[] = {"write /dev/null: ok\n", "read /dev/urandom: ok\n",
                                   "read /dev/zero: ok\n",  "open /dev/ptmx: ok\n",
                                   "open its pts: ok\n",    "create in /dev/shm: ok\n",
                                   "create: ok\n",          "chown: ok\n",
                                   "setfcap: ok\n",         "setresuid: ok\n"};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
    has(t, "%s", ok[i]);
  sbuf_release(&out);
  struct stat st;
  assert_int_equal(stat(owned, &st), 0);
  assert_int_equal(st.st_uid, 100);
  assert_true(getxattr(owned, "security.capability", NULL, 0) > 0);
}

static void test_mount_point_link_refused(void **state) {
  (void)state;
  if (geteuid() != 0)
    skip();
  /* a root whose /run is a link to the host's /: nothing may be mounted through it */
  char other[] = "/tmp/kgb-test-chroot-link.XXXXXX";
  assert_non_null(mkdtemp(other));
  char p[512];
  snprintf(p, sizeof(p), "%s/run", other);
  assert_int_equal(symlink("/", p), 0);
  snprintf(p, sizeof(p), "%s/probe", other);
  assert_int_equal(copy_file_atomic(KGB_ROOTFS_FIXTURES "/probe", p, 0755), 0);
  char *argv[] = {"/probe", "info", NULL};
  int r = kgb_chroot_run(ctx, other, argv, NULL);
  assert_int_equal(r, 127);
  assert_false(mounted_anywhere(other));
  rm_rf(other);
}

static void test_sigkill(void **state) {
  (void)state;
  if (geteuid() != 0)
    skip();
  char lock[512], out[512];
  snprintf(lock, sizeof(lock), "%s/lock", root);
  snprintf(out, sizeof(out), "%s/out.log", root);
  unlink(out);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* a process running a step, as the CLI would */
    struct kgb_ctx *c = NULL;
    kgb_ctx_new(&c);
    char *argv[] = {"/probe", "hold", "/lock", NULL};
    struct kgb_chroot_opts o = {.log_path = out};
    _exit(kgb_chroot_run(c, root, argv, &o) == 0 ? 0 : 1);
  }
  /* wait until the step runs: it holds the lock, its mounts are in place */
  bool holding = false;
  for (int i = 0; i < 100 && !holding; i++) {
    char *text = NULL;
    holding = read_full_file(out, &text, NULL) == 0 && strstr(text, "holding");
    free(text);
    if (!holding)
      usleep(50000);
  }
  assert_true(holding);
  assert_true(mounted_anywhere(root));
  kill(pid, SIGKILL);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  /* the step dies with it (its lock is free again) and every mount goes with the namespace */
  int fd = open(lock, O_RDWR);
  assert_true(fd >= 0);
  bool freed = false;
  for (int i = 0; i < 100 && !freed; i++) {
    freed = flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (!freed)
      usleep(50000);
  }
  close(fd);
  assert_true(freed);
  bool gone = false;
  for (int i = 0; i < 100 && !gone; i++) {
    gone = !mounted_anywhere(root);
    if (!gone)
      usleep(50000);
  }
  assert_true(gone);
}

static void test_needs_root_dir(void **state) {
  (void)state;
  if (geteuid() != 0)
    skip();
  char *argv[] = {"/probe", NULL};
  kgb_error_clear(ctx);
  assert_int_equal(kgb_chroot_run(ctx, "/nonexistent-root", argv, NULL), -ENOTDIR);
  assert_string_equal(kgb_error_detail(ctx),
                      "'/nonexistent-root' is not a root file system directory");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_resolve),       cmocka_unit_test(test_run),
      cmocka_unit_test(test_minimal_dev),   cmocka_unit_test(test_escape),
      cmocka_unit_test(test_privileged),    cmocka_unit_test(test_capabilities),
      cmocka_unit_test(test_install_needs), cmocka_unit_test(test_mount_point_link_refused),
      cmocka_unit_test(test_sigkill),       cmocka_unit_test(test_needs_root_dir),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
