/* libFuzzer target: the extraction policy for kernel source archives (any format and filter
 * libarchive reads). Whatever the archive holds, the tree written must stay inside its
 * directory and hold only files, directories and symbolic links, without set-id bits or
 * write access for others; nothing may be written outside. */
#define _GNU_SOURCE
#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "source.h"
#include "util.h"

static struct kgb_ctx *ctx;
static char top[4096], archive[4200], dir[4200];

static int check(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)flag;
  (void)ftw;
  if (strncmp(p, dir, strlen(dir)) != 0)
    abort();
  if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode) && !S_ISLNK(st->st_mode))
    abort(); /* a device node, FIFO or socket */
  if (!S_ISLNK(st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID | S_IWOTH)))
    abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ctx) {
    if (kgb_ctx_new(&ctx) < 0)
      abort();
    snprintf(top, sizeof(top), "%s/top", fuzz_dir("archive"));
    snprintf(archive, sizeof(archive), "%s/in.tar", top);
    snprintf(dir, sizeof(dir), "%s/tree", top);
  }
  rm_rf(top);
  if (mkdir_p(dir, 0755) < 0)
    abort();
  fuzz_write(archive, data, size);
  kgb_archive_extract_into(ctx, archive, dir, &(struct kgb_extract_opts){0});
  kgb_error_clear(ctx);
  if (nftw(dir, check, 16, FTW_PHYS) < 0)
    abort();
  /* the only entries of top are the archive and the tree: nothing landed beside them */
  DIR *d = opendir(top);
  if (!d)
    abort();
  for (struct dirent *de; (de = readdir(d));)
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "in.tar") &&
        strcmp(de->d_name, "tree"))
      abort();
  closedir(d);
  rm_rf(top);
  return 0;
}
