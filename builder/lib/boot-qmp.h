/* boot-test's QMP client: the replies QEMU writes on its monitor socket, parsed, and the one
 * conversation the test has with it, the hot-plug of a device when the guest asks for one.
 *
 * Usage:
 *
 *   _cleanup_free_ char *sock = NULL, *tmpdir = NULL, *why = NULL;
 *   r = kgb_qmp_socket_path(ctx, rundir, &sock, &tmpdir);
 *   // QEMU runs with -qmp unix:<sock>,server=on,wait=off; the guest prints
 *   // "KGB-CHECK hotplug" and waits for KGB_QMP_HOTPLUG_ID to appear
 *   if (kgb_qmp_hotplug(sock, &why) < 0)
 *     // why (when set): what failed, QEMU's own error text if it sent one
 *   // afterwards: rm_rf(tmpdir) when set
 */
#pragma once

#include "kgb.h"

/* The PCI ID of the function kgb_qmp_hotplug adds: virtio-net-pci behind a PCIe port (modern
 * only). The guest waits for it. */
#define KGB_QMP_HOTPLUG_ID "1af4:1041"

enum kgb_qmp_kind {
  KGB_QMP_GREETING, /* {"QMP": {...}} */
  KGB_QMP_RETURN,   /* {"return": ...} */
  KGB_QMP_ERROR,    /* {"error": {"class": ..., "desc": ...}} */
  KGB_QMP_EVENT,    /* {"event": "NAME", ...} */
  _KGB_QMP_KIND_MAX,
  _KGB_QMP_KIND_INVALID = -22,
};

struct kgb_qmp_reply {
  enum kgb_qmp_kind kind;
  char *error_class; /* ERROR */
  char *desc;        /* ERROR: QEMU's message */
  char *event;       /* EVENT: its name */
};
void kgb_qmp_reply_release(struct kgb_qmp_reply *r);

/* Parses one line of QMP (one JSON object). -EBADMSG: not JSON or not an object; -ENOMSG: an
 * object without any of the keys above. */
int kgb_qmp_parse(const char *line, struct kgb_qmp_reply *ret);

/* The socket QEMU listens on: <rundir>/qmp.sock, or one in a new directory under $TMPDIR
 * (default /tmp) when that path does not fit in sun_path. ret_tmpdir: that directory, to
 * remove afterwards, or NULL. Errors: -ENOMEM, the errno of mkdtemp with an error detail. */
int kgb_qmp_socket_path(struct kgb_ctx *ctx, const char *rundir, char **ret, char **ret_tmpdir);

/* Connects to QEMU's QMP socket (retrying for a second while QEMU starts), negotiates the
 * capabilities and adds a virtio-net-pci function into root port rp0: what a large-BAR GPU
 * goes through in Kata. Each reply is awaited 5 s. On failure ret_error, when set, says why in
 * words for the check's row, and the errno is that of socket, connect, read or write, or:
 * -ETIMEDOUT (no reply), -ECONNRESET (QEMU closed the socket), -EIO (QEMU's error), -EPROTO
 * (another reply than expected), -EBADMSG or -ENOMSG (not a QMP reply), -ENOMEM. */
int kgb_qmp_hotplug(const char *sock_path, char **ret_error);
