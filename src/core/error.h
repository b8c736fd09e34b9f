/* Internal error helpers shared by every part of the library. */
#ifndef FM_CORE_ERROR_H
#define FM_CORE_ERROR_H

#include "fmnist/fmnist.h"

#if defined(__GNUC__)
#define FM__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FM__PRINTF(a, b)
#endif

/* Formats a one-line message into err (if non-NULL) and returns -1, so a
 * failing path reads `return fm__err(err, "%s: line %d: ...", path, line);`. */
int fm__err(fm_err *err, const char *fmt, ...) FM__PRINTF(2, 3);

#endif
