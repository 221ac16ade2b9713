/* `oci-devices`: OCI linux.devices entries for device nodes, read with stat(). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "json.h"
#include "oci-devices.h"
#include "util.h"

static const struct option options[] = {{}};

char *cli_oci_devices_json(const struct kgb_oci_device *devs, size_t n) {
  struct json j = JSON_INIT;
  json_array_begin(&j, NULL, JSON_BLOCK);
  for (size_t i = 0; i < n; i++) {
    const struct kgb_oci_device *d = &devs[i];
    json_object_begin(&j, NULL, JSON_INLINE);
    json_string(&j, "path", d->path);
    json_stringf(&j, "type", "%c", d->type);
    json_uint(&j, "major", d->major);
    json_uint(&j, "minor", d->minor);
    json_uint(&j, "fileMode", d->file_mode);
    json_uint(&j, "uid", d->uid);
    json_uint(&j, "gid", d->gid);
    json_object_end(&j);
  }
  json_array_end(&j);
  return json_steal(&j);
}

static int run_oci_devices(struct cli *cli, int argc, char **argv) {
  if (getopt_long(argc, argv, "", options, NULL) != -1)
    return cli_bad_option(cli, "oci-devices", argv[optind - 1], options);
  if (optind >= argc)
    return cli_usage(cli, "oci-devices: name at least one device node, e.g. /dev/dri/renderD128");
  size_t n = (size_t)(argc - optind);
  struct kgb_oci_device *devs = calloc(n, sizeof(*devs));
  if (!devs)
    return cli_fail(cli, -ENOMEM, "oci-devices");
  int status = EXIT_OK;
  size_t got = 0;
  for (size_t i = 0; i < n; i++) {
    int r = kgb_oci_device_read(cli->ctx, argv[optind + (int)i], &devs[got]);
    if (r < 0) {
      status = cli_fail(cli, r, "oci-devices");
      break;
    }
    got++;
  }
  if (status == EXIT_OK) {
    _cleanup_free_ char *json = cli_oci_devices_json(devs, got);
    if (!json || cli_out(json) < 0)
      status = EXIT_FAIL;
  }
  for (size_t i = 0; i < got; i++)
    kgb_oci_device_release(&devs[i]);
  free(devs);
  return status;
}

static const char oci_devices_help[] =
    "usage: kata-gpu-builder oci-devices PATH...\n\n"
    "Prints a JSON array of OCI runtime-spec linux.devices entries (path, type, major, minor,\n"
    "fileMode, uid, gid) read with stat() from each device node, for the \"linux\": {\"devices\":\n"
    "[...]} of a container's config.json. A path that is not a character or block device is an\n"
    "error. The output is JSON with or without --json.\n\n"
    "example:\n"
    "  kata-gpu-builder oci-devices /dev/dri/renderD128 /dev/vfio/192\n";

const struct cli_command cli_cmd_oci_devices = {
    .name = "oci-devices",
    .run = run_oci_devices,
    .summary = "OCI linux.devices entries for device nodes",
    .help = oci_devices_help,
    .options = options,
};
