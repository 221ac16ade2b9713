/* What the fuzz targets share: the input as a C string, a scratch directory of the process's
 * own (under $TMPDIR, which scripts/fuzz points at its work directory) for the readers that
 * take a path, and writing the input to a file there. */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The input with a NUL after it; NULL when out of memory. Free it. */
static inline char *fuzz_text(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (text) {
    memcpy(text, data, size);
    text[size] = '\0';
  }
  return text;
}

static char fuzz_dir_path[4096];
static inline void fuzz_dir_remove(void) { rm_rf(fuzz_dir_path); }

/* <TMPDIR>/kgb-fuzz-<name>-XXXXXX, made on the first call and removed at exit. */
static inline const char *fuzz_dir(const char *name) {
  if (!fuzz_dir_path[0]) {
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz_dir_path, sizeof(fuzz_dir_path), "%s/kgb-fuzz-%s-XXXXXX",
             tmp && *tmp ? tmp : "/tmp", name);
    if (!mkdtemp(fuzz_dir_path))
      abort();
    atexit(fuzz_dir_remove);
  }
  return fuzz_dir_path;
}

/* Writes the input to path, replacing what was there. */
static inline void fuzz_write(const char *path, const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "we");
  if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
    abort();
}
