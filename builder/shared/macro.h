/* Cleanup attributes and small macros shared by every layer (libc only). */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Hand ownership out of a _cleanup_ scope: returns the pointer, leaves NULL behind. */
#define TAKE_PTR(p)                                                                                \
  ({                                                                                               \
    __typeof__(p) _p_ = (p);                                                                       \
    (p) = NULL;                                                                                    \
    _p_;                                                                                           \
  })
#define TAKE_FD(fd)                                                                                \
  ({                                                                                               \
    int _fd_ = (fd);                                                                               \
    (fd) = -1;                                                                                     \
    _fd_;                                                                                          \
  })

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd) {
  if (*fd >= 0)
    close(*fd);
}
static inline void fclosep(FILE **f) {
  if (*f)
    fclose(*f);
}
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Declares NAMEp(T **) calling NAME(T *) so that _cleanup_(NAMEp) works. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
  static inline void func##p(type *p) {                                                            \
    if (*p)                                                                                        \
      func(*p);                                                                                    \
  }

#define STREQ(a, b) (strcmp((a), (b)) == 0)
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
