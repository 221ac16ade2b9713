/* Namespaced commands. kgb_exec forks process A, which unshares a mount and a PID namespace,
 * makes every mount private and forks B, PID 1 of the new namespace. B binds the root onto
 * itself nodev, mounts /proc, /sys, a minimal /dev (a tmpfs with a few character devices),
 * /dev/pts, /dev/shm, /tmp and /run inside it and forks C, which chroots, gives up what a
 * package installation does not need (below) and executes the command; B reaps whatever C
 * leaves behind. When B dies, the kernel kills everything in the PID namespace, and the mount
 * namespace, having no process left, takes the mounts with it: there is no unmount step to
 * skip. A forwards a termination request as SIGKILL to B (PID 1 ignores signals it has no
 * handler for), and B dies with A (PR_SET_PDEATHSIG).
 *
 * Containment. A step runs apt maintainer scripts from the user's repositories, DKMS builds
 * and vendor installers as root; it must not be able to write the host. So C drops every
 * capability from its bounding, effective, permitted, inheritable and ambient sets except
 * these, and sets no-new-privs, so that nothing it executes gets one back:
 *   CAP_CHOWN, CAP_FOWNER, CAP_FSETID  dpkg unpacks files with their owners and modes
 *                                      (setuid bits included) and maintainer scripts chown
 *   CAP_DAC_OVERRIDE                   root writes files whatever their mode (dpkg, ldconfig)
 *   CAP_SETUID, CAP_SETGID             apt drops to _apt to download; scripts run runuser/su
 *   CAP_SETFCAP                        postinsts run setcap (ping, gst-ptp-helper)
 *   CAP_KILL                           scripts stop the daemons they started (all in the
 *                                      PID namespace: nothing of the host is visible)
 *   CAP_NET_BIND_SERVICE, CAP_NET_RAW  a step shares the host's network to download; tools
 *                                      probe it (ping in scripts)
 *   CAP_AUDIT_WRITE                    su, runuser and login's PAM write audit records
 *   CAP_SYS_NICE, CAP_IPC_LOCK         make, dpkg and gpg set priorities and lock memory
 *   CAP_LEASE                          file leases some daemons take when started
 * Among those dropped: CAP_SYS_ADMIN (mount, namespaces), CAP_SYS_CHROOT (the double-chroot
 * escape), CAP_SYS_PTRACE (PID 1's /proc/1/root is the host's /), CAP_DAC_READ_SEARCH
 * (open_by_handle_at), CAP_MKNOD, CAP_SYS_MODULE, CAP_SYS_RAWIO. The root is nodev and /dev
 * holds no host node, so a device node anywhere in the tree opens as nothing; descriptors the
 * caller left open are closed at exec. What remains shared with the host is its network and
 * its kernel. */
#define _GNU_SOURCE
#include "chroot.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"

struct ns_setup {
  const char *root; /* NULL: no mounts, no chroot */
  const char *cwd;
  char **env; /* the whole environment of the command in the root */
  sigset_t blocked, saved;
};

struct mount_point {
  const char *dir;
  const char *source, *type;
  unsigned long flags;
  const char *data;
  mode_t mode;
  int (*populate)(const char *path); /* fills the new mount; NULL: nothing to add */
};

/* The character devices a step gets: the numbers are the kernel's own (devices.txt), the same
 * on every host, so none is copied from the host's /dev. */
static const struct dev_node {
  const char *name;
  unsigned major, minor;
} dev_nodes[] = {
    {"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
    {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};

static const struct dev_link {
  const char *name, *target;
} dev_links[] = {
    {"ptmx", "pts/ptmx"},          {"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"},
    {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"},
};

/* Runs in B on the fresh tmpfs at the root's /dev. B has every capability; the step will not
 * (no CAP_MKNOD), so these are all the devices it ever has. */
static int populate_dev(const char *path) {
  _cleanup_close_ int dfd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) {
    int e = errno;
    dprintf(STDERR_FILENO, "kata-gpu-builder: cannot open '%s': %s\n", path, strerror(e));
    return -e;
  }
  for (size_t i = 0; i < ELEMENTSOF(dev_nodes); i++) {
    const struct dev_node *n = &dev_nodes[i];
    /* B's umask would take the write bits of others off */
    if (mknodat(dfd, n->name, S_IFCHR | 0666, makedev(n->major, n->minor)) < 0 ||
        fchmodat(dfd, n->name, 0666, 0) < 0) {
      int e = errno;
      dprintf(STDERR_FILENO, "kata-gpu-builder: cannot create '%s/%s': %s\n", path, n->name,
              strerror(e));
      return -e;
    }
  }
  for (size_t i = 0; i < ELEMENTSOF(dev_links); i++)
    if (symlinkat(dev_links[i].target, dfd, dev_links[i].name) < 0) {
      int e = errno;
      dprintf(STDERR_FILENO, "kata-gpu-builder: cannot create '%s/%s': %s\n", path,
              dev_links[i].name, strerror(e));
      return -e;
    }
  return 0;
}

/* As seed 001 mounts them, plus /run, so that nothing a package writes there at install time
 * ends up in the image. /dev is a new tmpfs with the few devices a package installation uses,
 * never the host's: a read-only bind of the host's /dev still lets a step open a host disk
 * read-write. */
static const struct mount_point mounts[] = {
    {"proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL, 0555, NULL},
    {"sys", "sysfs", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL, 0555, NULL},
    {"dev", "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755", 0755, populate_dev},
    {"dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620",
     0755, NULL},
    {"dev/shm", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777, NULL},
    {"tmp", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777, NULL},
    {"run", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", 0755, NULL},
};

/* Runs in B, before any other mount: the root bound onto itself and made nodev, so that a
 * device node a package or a tarball left anywhere in the tree opens as nothing. The root's
 * other mount flags (ro, nosuid, ...) are kept: a bind remount sets all of them at once. */
static int bind_root_nodev(const char *root) {
  static const struct {
    unsigned long st, ms;
  } kept[] = {{ST_RDONLY, MS_RDONLY},   {ST_NOSUID, MS_NOSUID},         {ST_NOEXEC, MS_NOEXEC},
              {ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME}};
  struct statvfs sv;
  if (mount(root, root, NULL, MS_BIND, NULL) < 0 || statvfs(root, &sv) < 0) {
    int e = errno;
    dprintf(STDERR_FILENO, "kata-gpu-builder: cannot bind '%s' onto itself: %s\n", root,
            strerror(e));
    return -e;
  }
  unsigned long flags = MS_REMOUNT | MS_BIND | MS_NODEV;
  for (size_t i = 0; i < ELEMENTSOF(kept); i++)
    if (sv.f_flag & kept[i].st)
      flags |= kept[i].ms;
  if (mount(NULL, root, NULL, flags, NULL) < 0) {
    int e = errno;
    dprintf(STDERR_FILENO, "kata-gpu-builder: cannot make '%s' nodev: %s\n", root, strerror(e));
    return -e;
  }
  return 0;
}

/* Runs in B: errors go to the command's log, as the command's own would. */
static int mount_all(const char *root) {
  int r = bind_root_nodev(root);
  if (r < 0)
    return r;
  char path[4096];
  for (size_t i = 0; i < ELEMENTSOF(mounts); i++) {
    const struct mount_point *m = &mounts[i];
    snprintf(path, sizeof(path), "%s/%s", root, m->dir);
    struct stat st;
    if (lstat(path, &st) < 0) {
      if (errno != ENOENT || mkdir(path, m->mode) < 0) {
        int e = errno;
        dprintf(STDERR_FILENO, "kata-gpu-builder: cannot create '%s': %s\n", path, strerror(e));
        return -e;
      }
    } else if (!S_ISDIR(st.st_mode)) {
      /* never mount through a symlink: it could point anywhere on the host */
      dprintf(STDERR_FILENO, "kata-gpu-builder: '%s' is not a directory: refusing to mount on it\n",
              path);
      return -ENOTDIR;
    }
    if (mount(m->source, path, m->type, m->flags, m->data) < 0) {
      int e = errno;
      dprintf(STDERR_FILENO, "kata-gpu-builder: cannot mount %s on '%s': %s\n", m->source, path,
              strerror(e));
      return -e;
    }
    if (m->populate && (r = m->populate(path)) < 0)
      return r;
  }
  return 0;
}

/* What a step keeps of root's capabilities: see the header comment for why each. */
#define CAP_BIT(c) (UINT64_C(1) << (c))
static const uint64_t kept_caps =
    CAP_BIT(CAP_CHOWN) | CAP_BIT(CAP_DAC_OVERRIDE) | CAP_BIT(CAP_FOWNER) | CAP_BIT(CAP_FSETID) |
    CAP_BIT(CAP_KILL) | CAP_BIT(CAP_SETGID) | CAP_BIT(CAP_SETUID) | CAP_BIT(CAP_SETFCAP) |
    CAP_BIT(CAP_NET_BIND_SERVICE) | CAP_BIT(CAP_NET_RAW) | CAP_BIT(CAP_AUDIT_WRITE) |
    CAP_BIT(CAP_SYS_NICE) | CAP_BIT(CAP_LEASE) | CAP_BIT(CAP_IPC_LOCK);

static int contain_fail(const char *what, int e) {
  dprintf(STDERR_FILENO, "kata-gpu-builder: cannot contain the command (%s): %s\n", what,
          strerror(e));
  return -e;
}

/* The kernel's highest capability number, from the /proc that B mounted in the root (so the
 * root's own content cannot stand in for it). */
static int cap_last_cap(unsigned *ret) {
  char buf[32];
  _cleanup_close_ int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  if (n <= 0)
    return n < 0 ? -errno : -EIO;
  buf[n] = '\0';
  char *end;
  errno = 0;
  unsigned long v = strtoul(buf, &end, 10);
  if (errno || end == buf || v > 1023)
    return -EIO;
  *ret = (unsigned)v;
  return 0;
}

/* Runs in C after the chroot, as the last thing before exec: whatever a step runs can neither
 * get the capabilities back (bounding set, no-new-privs) nor use them now (effective and
 * permitted sets), nor reach a host file through a descriptor it inherited. */
static int contain(void) {
  /* nothing the caller left open (a lock, a directory) reaches the command */
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
    /* before Linux 5.11: one at a time */
    long max = sysconf(_SC_OPEN_MAX);
    for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++) {
      int fl = fcntl(fd, F_GETFD);
      if (fl >= 0 && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
        return contain_fail("marking inherited descriptors close-on-exec", errno);
    }
  }
  unsigned last = 0;
  int r = cap_last_cap(&last);
  if (r < 0)
    return contain_fail("reading /proc/sys/kernel/cap_last_cap", -r);
  /* CAP_SETPCAP goes from the bounding set too, but stays effective until capset below */
  for (unsigned c = 0; c <= last; c++)
    if ((c >= 64 || !(kept_caps & CAP_BIT(c))) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
      return contain_fail("dropping from the bounding set", errno);
  /* EINVAL: a kernel older than ambient capabilities, which then has none to clear */
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return contain_fail("clearing the ambient set", errno);
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
  if (syscall(SYS_capget, &h, d) < 0)
    return contain_fail("reading the capability sets", errno);
  for (size_t i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
    uint32_t keep = (uint32_t)(kept_caps >> (32 * i));
    d[i].effective &= keep;
    d[i].permitted &= keep;
    d[i].inheritable &= keep;
  }
  if (syscall(SYS_capset, &h, d) < 0)
    return contain_fail("dropping capabilities", errno);
  /* a setuid or file-capability program in the root gains nothing either */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return contain_fail("setting no-new-privs", errno);
  return 0;
}

static int exit_code(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return 127;
}

/* B: PID 1 of the new namespace. Never returns, except in C. */
static int run_init(struct ns_setup *s, int alive_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* A may have died before the line above: then the pipe has no writer left */
  struct pollfd p = {.fd = alive_fd, .events = POLLIN};
  if (poll(&p, 1, 0) > 0)
    _exit(127);
  close(alive_fd);
  if (s->root && mount_all(s->root) < 0)
    _exit(127);
  pid_t c = fork();
  if (c < 0)
    _exit(127);
  if (c == 0) {
    /* C: the command */
    sigprocmask(SIG_SETMASK, &s->saved, NULL);
    if (s->root) {
      if (chroot(s->root) < 0 || chdir(s->cwd ? s->cwd : "/") < 0)
        return -errno;
    }
    if (s->env) {
      clearenv();
      for (size_t i = 0; s->env[i]; i++)
        putenv(s->env[i]);
    }
    /* kgb_exec calls execvp as soon as this returns */
    return s->root ? contain() : 0;
  }
  /* kgb_exec waits for the exec-error pipe and the output pipe to close: hold neither */
  close_range(3, ~0U, 0);
  for (;;) {
    int st;
    pid_t w = waitpid(-1, &st, 0);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      _exit(127);
    if (w == c)
      _exit(exit_code(st));
  }
}

/* A: runs in kgb_exec's child. */
static int ns_child_setup(void *userdata) {
  struct ns_setup *s = userdata;
  sigemptyset(&s->blocked);
  sigaddset(&s->blocked, SIGCHLD);
  sigaddset(&s->blocked, SIGTERM);
  sigaddset(&s->blocked, SIGINT);
  sigaddset(&s->blocked, SIGHUP);
  sigaddset(&s->blocked, SIGQUIT);
  if (sigprocmask(SIG_BLOCK, &s->blocked, &s->saved) < 0)
    return -errno;
  if (unshare(CLONE_NEWNS | CLONE_NEWPID) < 0)
    return -errno;
  /* nothing mounted from here on may propagate back to the host */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return -errno;
  int alive[2];
  if (pipe2(alive, O_CLOEXEC) < 0)
    return -errno;
  pid_t b = fork();
  if (b < 0)
    return -errno;
  if (b == 0) {
    close(alive[1]);
    return run_init(s, alive[0]);
  }
  close(alive[0]);
  if (alive[1] > 3)
    close_range(3, (unsigned)alive[1] - 1, 0);
  close_range((unsigned)alive[1] + 1, ~0U, 0);
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&s->blocked, &si);
    if (sig < 0)
      continue;
    if (sig != SIGCHLD) {
      kill(b, SIGKILL);
      continue;
    }
    int st;
    if (waitpid(b, &st, WNOHANG) == b)
      _exit(exit_code(st));
  }
}

static const char *const passed_env[] = {"http_proxy",  "https_proxy", "no_proxy", "HTTP_PROXY",
                                         "HTTPS_PROXY", "NO_PROXY",    "TERM"};

/* The environment of a command in a root: defaults, the host's proxies, then extra. */
static int chroot_env(char *const *extra, char ***ret) {
  _cleanup_strv_free_ char **env = NULL;
  static const char *const defaults[] = {"PATH=" KGB_CHROOT_PATH,
                                         "HOME=/root",
                                         "LC_ALL=C.UTF-8",
                                         "LANG=C.UTF-8",
                                         "DEBIAN_FRONTEND=noninteractive",
                                         "DEBCONF_NONINTERACTIVE_SEEN=true"};
  for (size_t i = 0; i < ELEMENTSOF(defaults); i++)
    if (strv_extend(&env, defaults[i]) < 0)
      return -ENOMEM;
  for (size_t i = 0; i < ELEMENTSOF(passed_env); i++) {
    const char *v = getenv(passed_env[i]);
    if (v && strv_push(&env, kgb_strdup_printf("%s=%s", passed_env[i], v)) < 0)
      return -ENOMEM;
  }
  for (size_t i = 0; extra && extra[i]; i++) {
    size_t n = strcspn(extra[i], "=");
    if (!extra[i][n])
      return -EINVAL;
    /* a later entry replaces an earlier one of the same name */
    for (size_t j = 0; env[j]; j++)
      if (strncmp(env[j], extra[i], n + 1) == 0) {
        free(env[j]);
        size_t k = j;
        for (; env[k + 1]; k++)
          env[k] = env[k + 1];
        env[k] = NULL;
        break;
      }
    if (strv_extend(&env, extra[i]) < 0)
      return -ENOMEM;
  }
  *ret = TAKE_PTR(env);
  return 0;
}

static int check_privileges(struct kgb_ctx *ctx) {
  if (geteuid() != 0)
    return kgb_error(ctx, -EPERM,
                     "running commands in a root file system needs root (mount namespaces and "
                     "chroot): run kata-gpu-builder as root");
  return 0;
}

int kgb_chroot_run(struct kgb_ctx *ctx, const char *root, char *const argv[],
                   const struct kgb_chroot_opts *o) {
  int r = check_privileges(ctx);
  if (r < 0)
    return r;
  struct stat st;
  if (lstat(root, &st) < 0 || !S_ISDIR(st.st_mode))
    return kgb_error(ctx, -ENOTDIR, "'%s' is not a root file system directory", root);
  _cleanup_free_ char *real = realpath(root, NULL);
  if (!real)
    return kgb_error(ctx, -errno, "cannot resolve '%s': %m", root);
  _cleanup_strv_free_ char **env = NULL;
  if ((r = chroot_env(o ? o->env : NULL, &env)) < 0)
    return r == -EINVAL ? kgb_error(ctx, r, "an environment entry lacks '='") : r;
  struct ns_setup s = {.root = real, .cwd = o ? o->cwd : NULL, .env = env};
  struct kgb_exec_opts eo = {.log_path = o ? o->log_path : NULL,
                             .line_fn = o ? o->line_fn : NULL,
                             .userdata = o ? o->userdata : NULL,
                             .child_setup = ns_child_setup,
                             .child_userdata = &s};
  return kgb_exec(ctx, argv, &eo);
}

int kgb_ns_run(struct kgb_ctx *ctx, char *const argv[], const struct kgb_chroot_opts *o) {
  int r = check_privileges(ctx);
  if (r < 0)
    return r;
  struct ns_setup s = {0};
  struct kgb_exec_opts eo = {.log_path = o ? o->log_path : NULL,
                             .env = o ? o->env : NULL,
                             .cwd = o ? o->cwd : NULL,
                             .line_fn = o ? o->line_fn : NULL,
                             .userdata = o ? o->userdata : NULL,
                             .child_setup = ns_child_setup,
                             .child_userdata = &s};
  return kgb_exec(ctx, argv, &eo);
}

int kgb_root_resolve(const char *root, const char *path, bool follow_last, char **ret) {
  struct sbuf done = SBUF_INIT; /* resolved part, relative to root, "" or "/a/b" */
  _cleanup_free_ char *todo = strdup(path);
  if (!todo)
    return -ENOMEM;
  unsigned links = 0;
  int r = 0;
  char *rest = todo;
  while (r >= 0) {
    while (*rest == '/')
      rest++;
    if (!*rest)
      break;
    size_t n = strcspn(rest, "/");
    bool last = rest[n] == '\0' || rest[n + strspn(rest + n, "/")] == '\0';
    if (n == 1 && rest[0] == '.') {
      rest += n;
      continue;
    }
    if (n == 2 && rest[0] == '.' && rest[1] == '.') {
      char *slash = done.buf ? strrchr(done.buf, '/') : NULL;
      if (slash) {
        *slash = '\0';
        done.len = (size_t)(slash - done.buf);
      }
      rest += n;
      continue;
    }
    size_t mark = done.len;
    if ((r = sbuf_addc(&done, '/')) < 0 || (r = sbuf_add(&done, rest, n)) < 0)
      break;
    rest += n;
    _cleanup_free_ char *host = kgb_strdup_printf("%s%s", root, done.buf);
    if (!host) {
      r = -ENOMEM;
      break;
    }
    struct stat st;
    if (lstat(host, &st) < 0) {
      if (errno != ENOENT && errno != ENOTDIR) {
        r = -errno;
        break;
      }
      /* nothing below a missing component can be a link: keep the rest as it is */
      while (*rest == '/')
        rest++;
      if (*rest && ((r = sbuf_addc(&done, '/')) < 0 || (r = sbuf_adds(&done, rest)) < 0))
        break;
      break;
    }
    if (!S_ISLNK(st.st_mode) || (last && !follow_last))
      continue;
    if (++links > 40) {
      r = -ELOOP;
      break;
    }
    char target[4096];
    ssize_t tl = readlink(host, target, sizeof(target) - 1);
    if (tl < 0) {
      r = -errno;
      break;
    }
    target[tl] = '\0';
    /* drop the link's own component, then continue with target + rest */
    done.len = mark;
    done.buf[mark] = '\0';
    if (target[0] == '/') {
      done.len = 0;
      done.buf[0] = '\0';
    }
    char *next = kgb_strdup_printf("%s/%s", target, rest);
    if (!next) {
      r = -ENOMEM;
      break;
    }
    free(todo);
    todo = next;
    rest = todo;
  }
  if (r < 0) {
    sbuf_release(&done);
    return r;
  }
  *ret = kgb_strdup_printf("%s%s", root, done.len ? done.buf : "");
  sbuf_release(&done);
  return *ret ? 0 : -ENOMEM;
}
