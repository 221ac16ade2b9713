/* libFuzzer target: a sha256sums file (as published beside a download, PGP armor and all).
 * The input's first line is the file name looked up, the rest is the file. A hash that is
 * found is 64 lowercase hex digits that the file holds (in some case). */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fetch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *in = strndup((const char *)data, size);
  if (!in)
    return 0;
  char *nl = strchr(in, '\n');
  const char *name = in, *text = "";
  if (nl) {
    *nl = '\0';
    text = nl + 1;
  }
  char hex[65];
  memset(hex, 'Z', sizeof(hex));
  int r = kgb_sha256sums_find(text, name, hex);
  if (r == 0) {
    if (strlen(hex) != 64)
      abort();
    for (int i = 0; i < 64; i++)
      if (!isxdigit((unsigned char)hex[i]) || isupper((unsigned char)hex[i]))
        abort();
    int found = 0;
    for (const char *p = text; *p && !found; p++)
      found = strncasecmp(p, hex, 64) == 0;
    if (!found)
      abort();
  } else if (r != -ENOENT && r != -EBADMSG) {
    abort();
  }
  free(in);
  return 0;
}
