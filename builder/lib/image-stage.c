/* The image stage: a built root file system packed as ext4, erofs or an initrd (image.c), cached
 * by the root's key and the packing options. */
#define _GNU_SOURCE
#include "image-stage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>

#include "../shared/sbuf.h"
#include "../shared/util.h"
#include "exec.h"
#include "stage.h"

#define KGB_IMAGE_STAGE_VERSION "image 1"

struct kgb_image_result *kgb_image_result_free(struct kgb_image_result *r) {
  if (!r)
    return NULL;
  free(r->stage_dir);
  free(r->path);
  free(r->key);
  kgb_image_info_release(&r->info);
  free(r);
  return NULL;
}

static const char *image_file_name(enum kgb_image_format f) {
  switch (f) {
  case KGB_IMAGE_EXT4:
    return "kata-containers.img";
  case KGB_IMAGE_EROFS:
    return "kata-containers-erofs.img";
  default:
    return "kata-containers-initrd.img";
  }
}

int kgb_rootfs_image(struct kgb_ctx *ctx, const struct kgb_profile *p,
                     const struct kgb_rootfs_result *rootfs, enum kgb_image_format format,
                     enum kgb_compression compression, struct kgb_image_result **ret) {
  _cleanup_(kgb_image_result_freep) struct kgb_image_result *res = calloc(1, sizeof(*res));
  if (!res)
    return -ENOMEM;
  double t0 = monotonic_seconds();
  int r;
  _cleanup_free_ char *tool = NULL;
  {
    char *mk2[] = {"mkfs.ext4", "-V", NULL}, *mkerofs[] = {"mkfs.erofs", "--help", NULL};
    if (format == KGB_IMAGE_EXT4 && (r = kgb_exec_version(ctx, mk2, &tool)) < 0)
      return r;
    if (format == KGB_IMAGE_EROFS && (r = kgb_exec_version(ctx, mkerofs, &tool)) < 0)
      return r;
    if (format == KGB_IMAGE_INITRD) {
      tool = kgb_strdup_printf("%s %s", archive_version_details(),
                               kgb_compression_to_string(compression));
      if (!tool)
        return -ENOMEM;
    }
    if (!tool)
      return kgb_error(ctx, -EINVAL, "unknown image format %d", (int)format);
  }
  _cleanup_free_ char *inputs = kgb_strdup_printf(
      "%s\nrootfs %s\nformat %s\ncompression %s\nfree_mb %d\nepoch %lld\ntool %s\n",
      KGB_IMAGE_STAGE_VERSION, rootfs->key, kgb_image_format_to_string(format),
      format == KGB_IMAGE_INITRD ? kgb_compression_to_string(compression) : "-",
      format == KGB_IMAGE_EXT4 ? p->image.free_mb : 0, rootfs->epoch, tool);
  if (!inputs)
    return -ENOMEM;
  _cleanup_(kgb_stage_freep) struct kgb_stage *st = NULL;
  if ((r = kgb_stage_open(ctx, "image", inputs, image_file_name(format), &st)) < 0)
    return r;
  res->key = strdup(st->key);
  res->stage_dir = strdup(st->dir);
  res->path = strjoin_path(st->dir, image_file_name(format));
  if (!res->key || !res->stage_dir || !res->path)
    return -ENOMEM;
  if (st->cached) {
    struct stat sb;
    if (stat(res->path, &sb) == 0)
      res->info.size = (uint64_t)sb.st_size;
    res->info.uuid = kgb_stage_get1(st, "uuid");
    _cleanup_free_ char *fs = kgb_stage_get1(st, "fs_size");
    res->info.fs_size = fs ? strtoull(fs, NULL, 10) : res->info.size;
    res->cached = true;
    res->seconds = monotonic_seconds() - t0;
    *ret = TAKE_PTR(res);
    return 0;
  }
  if ((r = kgb_workdir_logs(ctx)) < 0)
    return r;
  _cleanup_free_ char *log_path =
      kgb_strdup_printf("%s/logs/image-%s-%s-%.16s.log", ctx->workdir, p->name,
                        kgb_image_format_to_string(format), st->key);
  _cleanup_free_ char *out = strjoin_path(st->tmp, image_file_name(format));
  if (!log_path || !out)
    return -ENOMEM;
  unlink(log_path);
  struct kgb_image_opts io = {.format = format,
                              .compression = compression,
                              .free_mb = p->image.free_mb,
                              .epoch = rootfs->epoch,
                              .seed = st->key,
                              .log_path = log_path};
  kgb_info(ctx, "image: packing '%s' as %s", p->name, kgb_image_format_to_string(format));
  if ((r = kgb_image_pack(ctx, rootfs->root, out, &io, &res->info)) < 0)
    return r;
  struct sbuf sb = SBUF_INIT;
  kgb_manifest_begin(&sb, "image", st->key);
  kgb_manifest_string(&sb, "rootfs", rootfs->key);
  sbuf_addf(&sb, ",\n  \"format\": \"%s\",\n  \"size\": %llu,\n  \"fs_size\": %llu,\n  \"uuid\": ",
            kgb_image_format_to_string(format), (unsigned long long)res->info.size,
            (unsigned long long)res->info.fs_size);
  if (res->info.uuid)
    sbuf_add_json(&sb, res->info.uuid);
  else
    sbuf_adds(&sb, "null");
  sbuf_adds(&sb, "\n}\n");
  kgb_stage_set(st, "fs_size", "%llu", (unsigned long long)res->info.fs_size);
  if (res->info.uuid)
    kgb_stage_set(st, "uuid", "%s", res->info.uuid);
  r = kgb_stage_commit(st, &sb);
  sbuf_release(&sb);
  if (r < 0)
    return r;
  res->seconds = monotonic_seconds() - t0;
  *ret = TAKE_PTR(res);
  return 0;
}
