/* `image build`: the profile's root file system (built or cached) packed as an ext4 disk
 * image in Kata's layout, an erofs image, or an initrd; the image's path on stdout. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "rootfs-cli.h"
#include "sbuf.h"
#include "util.h"

static int copy_out(struct cli *cli, const char *from, const char *to) {
  int r = copy_file_output(from, to, 0644);
  if (r < 0) {
    kgb_error(cli->ctx, r, "cannot write '%s': %s", to, file_error_reason(to, r, 0));
    return cli_fail(cli, r, NULL);
  }
  return EXIT_OK;
}

static int run_build(struct cli *cli, int argc, char **argv) {
  struct rootfs_args a = {0};
  int r = rootfs_args_parse(cli, "image build", true, argc, argv, &a);
  if (r != EXIT_OK) {
    rootfs_args_release(&a);
    return r;
  }
  _cleanup_(kgb_profile_freep) struct kgb_profile *p = NULL;
  _cleanup_(kgb_pipeline_result_freep) struct kgb_pipeline_result *built = NULL;
  const char *format_s = a.format, *output = a.output, *comp_s = a.compression;
  r = rootfs_run(cli, &a, &p, &built);
  if (r != EXIT_OK) {
    rootfs_args_release(&a);
    return r;
  }
  const struct kgb_rootfs_result *rootfs = built->rootfs;
  if (!format_s)
    format_s = p->image.format ? p->image.format : "ext4";
  enum kgb_image_format format = kgb_image_format_from_string(format_s);
  enum kgb_compression comp = comp_s ? kgb_compression_from_string(comp_s) : KGB_COMPRESS_ZSTD;
  _cleanup_(kgb_image_result_freep) struct kgb_image_result *img = NULL;
  r = kgb_rootfs_image(cli->ctx, p, rootfs, format, comp, &img);
  rootfs_args_release(&a);
  if (r < 0)
    return cli_fail(cli, r, NULL);
  char size[FORMAT_SIZE_MAX], fs[FORMAT_SIZE_MAX];
  format_size(size, sizeof(size), img->info.size, FORMAT_SIZE_DECIMAL);
  format_size(fs, sizeof(fs), img->info.fs_size, FORMAT_SIZE_DECIMAL);
  if (img->cached)
    cli_msg(cli, "image: %s of '%s' is up to date ('%s')\n", format_s, p->name, img->path);
  else if (format == KGB_IMAGE_INITRD)
    cli_msg(cli, "image: packed '%s' as an initrd (cpio, %s) in %.1f s: %s\n", p->name,
            kgb_compression_to_string(comp), img->seconds, size);
  else
    cli_msg(cli,
            "image: packed '%s' as %s in %.1f s: %s disk (msdos label, one partition at 1 MiB, "
            "%s file system, UUID %s)\n",
            p->name, format_s, img->seconds, size, fs, img->info.uuid ? img->info.uuid : "-");
  const char *path = img->path;
  if (output) {
    if ((r = copy_out(cli, img->path, output)) != EXIT_OK)
      return r;
    path = output;
  }
  if (cli->json) {
    struct json j = JSON_INIT;
    json_object_begin(&j, NULL, JSON_BLOCK);
    json_string(&j, "profile", p->name);
    json_string(&j, "release", rootfs->kernel->release);
    json_string(&j, "format", format_s);
    json_string(&j, "image", path);
    json_string(&j, "stage", img->stage_dir);
    json_bool(&j, "cached", img->cached);
    json_uint(&j, "size", img->info.size);
    json_uint(&j, "fs_size", img->info.fs_size);
    json_string_or_null(&j, "uuid", img->info.uuid);
    json_string_or_null(&j, "compression",
                        format == KGB_IMAGE_INITRD ? kgb_compression_to_string(comp) : NULL);
    json_bool(&j, "kata_agent", rootfs->kata_agent);
    json_uint(&j, "files", rootfs->report.files);
    json_uint(&j, "bytes", rootfs->report.bytes);
    rootfs_json_largest(&j, &rootfs->report);
    json_double(&j, "seconds", img->seconds);
    json_bool(&j, "rootfs_cached", rootfs->cached);
    json_object_end(&j);
    r = cli_out_json(&j);
  } else {
    _cleanup_free_ char *line = kgb_strdup_printf("%s\n", path);
    r = line ? cli_out(line) : -ENOMEM;
  }
  return r < 0 ? EXIT_FAIL : EXIT_OK;
}

static const struct cli_command image_verbs[] = {
    {.name = "build",
     .run = run_build,
     .summary = "the root file system as ext4, erofs or initrd (cached)",
     .options = image_build_options,
     .shortopts = IMAGE_BUILD_SHORTOPTS},
};

static const char image_help[] =
    "usage: kata-gpu-builder image build -p PROFILE [--format ext4|erofs|initrd] [-o FILE]\n"
    "                                    [--compress zstd|gzip] [rootfs build options]\n\n"
    "Builds (or takes from the stage cache) the profile's root file system as 'rootfs build'\n"
    "does, checks that /init or /sbin/init is an executable file in it, and packs it:\n"
    "  ext4    a raw disk in the layout of Kata's image builder: an msdos label with one Linux\n"
    "          partition from 1 MiB to the end, the whole rounded up to 128 MiB, the content\n"
    "          plus image.free_mb of the profile; made by mkfs.ext4 -d (no loop device, no\n"
    "          mount), 4 KiB blocks, 3 % reserved;\n"
    "  erofs   mkfs.erofs, in the same partition layout;\n"
    "  initrd  a cpio (newc) archive written with libarchive, compressed with zstd (default)\n"
    "          or gzip, with /init -> /sbin/init added when the root has no /init.\n"
    "The same root and options give a byte-identical image: every time is SOURCE_DATE_EPOCH,\n"
    "entries are sorted, UUIDs, hash seed and disk signature derive from the stage key, and\n"
    "no compression header carries a timestamp. The image's path goes to stdout; the report\n"
    "(size, file count, the ten largest directories) to stderr.\n\n"
    "options:\n"
    "  -p, --profile NAME|FILE   the profile\n"
    "      --format FORMAT       ext4, erofs or initrd (default: the profile's image.format)\n"
    "  -o, --output FILE         also copy the image to FILE\n"
    "      --compress ALGO       zstd or gzip (initrd)\n"
    "  and every option of 'rootfs build' (--without, --set, -k, --fragment, -f, ...)\n\n"
    "examples:\n"
    "  kata-gpu-builder image build -p virgl --format ext4 -o kata-containers-virgl.img\n"
    "  kata-gpu-builder image build -p virgl --format initrd --compress gzip\n";

const struct cli_command cli_cmd_image = {
    .name = "image",
    .summary = "guest image: ext4 or erofs disk, or initrd",
    .verbs = image_verbs,
    .n_verbs = ELEMENTSOF(image_verbs),
    .flags = CLI_LOCKS_WORKDIR,
    .help = image_help,
};
