/* Namespaced commands. kgb_exec forks process A, which unshares a mount and a PID namespace,
 * makes every mount private and forks B, PID 1 of the new namespace. B binds the root onto
 * itself nodev, mounts /proc, /sys, a minimal /dev (a tmpfs with a few character devices),
 * /dev/pts, /dev/shm, /tmp and /run inside it and forks C, which chroots and executes the
 * command; B reaps whatever C leaves behind. When B dies, the kernel kills everything in the
 * PID namespace, and the mount namespace, having no process left, takes the mounts with it:
 * there is no unmount step to skip. A forwards a termination request as SIGKILL to B (PID 1
 * ignores signals it has no handler for), and B dies with A (PR_SET_PDEATHSIG). */
#define _GNU_SOURCE
#include "chroot.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
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
  if (dfd < 0)
    return -errno;
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
    return 0;
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
