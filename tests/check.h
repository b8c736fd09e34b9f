/* A minimal test harness: every CHECK counts, main returns non-zero when any
 * failed, and the last line is CTest-readable "N passed, N failed".
 * A test that needs something absent (the real data set, PyTorch, Chromium)
 * calls SKIP("why"), which exits 77; CMake maps that to "skipped". */
#ifndef FM_TESTS_CHECK_H
#define FM_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check__passed, check__failed;

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (cond) {                                                                \
            check__passed++;                                                       \
        } else {                                                                   \
            check__failed++;                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                          \
    } while (0)

#define CHECK_MSG(cond, ...)                                                       \
    do {                                                                           \
        if (cond) {                                                                \
            check__passed++;                                                       \
        } else {                                                                   \
            check__failed++;                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                   \
        }                                                                          \
    } while (0)

/* |a-b| <= tol * max(1, |b|) */
#define CHECK_NEAR(a, b, tol)                                                          \
    do {                                                                               \
        double check__a = (a), check__b = (b);                                         \
        double check__s = fabs(check__b) > 1.0 ? fabs(check__b) : 1.0;                 \
        CHECK_MSG(fabs(check__a - check__b) <= (tol) * check__s, "%.9g vs %.9g (tol %g)", \
                  check__a, check__b, (double)(tol));                                  \
    } while (0)

#define SKIP(...)                                \
    do {                                         \
        fprintf(stderr, "SKIPPED: " __VA_ARGS__); \
        fputc('\n', stderr);                     \
        exit(77);                                \
    } while (0)

static inline int check_finish(void) {
    printf("%d passed, %d failed\n", check__passed, check__failed);
    return check__failed ? 1 : 0;
}

#endif
