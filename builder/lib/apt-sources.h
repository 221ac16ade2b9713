/* The host's apt sources (mirror and keyring come from there, never from the repo), and
 * Debian's names for architectures. */
#pragma once

#include "kgb.h"

struct kgb_apt_source {
  char *uri, *suite;
  char **components;
  char *signed_by; /* a keyring file, or NULL */
  char *file;      /* where it was read, for messages */
  unsigned line;
};

struct kgb_apt_sources {
  struct kgb_apt_source *v;
  size_t n;
};
void kgb_apt_sources_release(struct kgb_apt_sources *s);

/* Reads <apt_dir>/sources.list, sources.list.d/ *.list (one-line format) and *.sources
 * (deb822), binary ("deb") entries only, disabled ones skipped. */
int kgb_apt_sources_read(struct kgb_ctx *ctx, const char *apt_dir, struct kgb_apt_sources *ret);
/* The entries to bootstrap suite from: the suite itself first (required: -ENOENT with what to
 * do), then <suite>-updates and <suite>-security when the host has them; one per URI and
 * suite, in that order. */
int kgb_apt_sources_for_suite(struct kgb_ctx *ctx, const struct kgb_apt_sources *all,
                              const char *apt_dir, const char *suite, struct kgb_apt_sources *ret);
/* "Date:" of a Release or InRelease text, e.g. "Sat, 10 May 2025 09:46:33 UTC". */
int kgb_release_date(const char *text, char **ret);

/* Appends one entry (components may be NULL; file and line say where it came from). */
int kgb_apt_sources_add(struct kgb_apt_sources *s, const char *uri, const char *suite,
                        char *const *components, const char *signed_by, const char *file,
                        unsigned line);

/* Debian's architecture name (amd64 for x86_64). */
const char *kgb_deb_arch(const char *arch);
