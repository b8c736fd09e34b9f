/* What the kernel tests share (test_kernels.c, test_bf16.c): random inputs
 * with guard sentinels after them, and conv shapes by padding rule. */
#ifndef FM_TESTS_KERNELTEST_H
#define FM_TESTS_KERNELTEST_H

#include <stdlib.h>

#include "fmnist/fmnist.h"
#include "kernels/kernels.h"

#define U_EPS (1.0 / 16777216.0)
#define TOL_SUM (64 * U_EPS)
#define SENTINEL 12345.678f
#define GUARD 64

static fm_rng rng;

/* len floats uniform in [-1, 1), plus GUARD sentinels after them that no
 * kernel may write. */
static float *rnd(size_t len) {
    float *p = malloc(sizeof(float) * (len + GUARD));
    for (size_t i = 0; i < len; i++) p[i] = 2.0f * fm_rng_uniform(&rng) - 1.0f;
    for (size_t i = 0; i < GUARD; i++) p[len + i] = SENTINEL;
    return p;
}

static int guard_ok(const float *p, size_t len) {
    for (size_t i = 0; i < GUARD; i++)
        if (p[len + i] != SENTINEL) return 0;
    return 1;
}

/* same: output size ceil(in / stride), padding split as TensorFlow's "same"
 * (the extra pixel at the bottom/right); else valid. */
static fm__conv_shape conv_shape(int n, int c, int h, int w, int oc, int k, int stride, int same) {
    fm__conv_shape s = {.n = n, .c = c, .h = h, .w = w, .oc = oc, .k = k, .stride = stride};
    if (same) {
        s.oh = (h + stride - 1) / stride;
        s.ow = (w + stride - 1) / stride;
        int ph = (s.oh - 1) * stride + k - h, pw = (s.ow - 1) * stride + k - w;
        s.pad_t = ph > 0 ? ph / 2 : 0;
        s.pad_l = pw > 0 ? pw / 2 : 0;
    } else {
        s.oh = (h - k) / stride + 1;
        s.ow = (w - k) / stride + 1;
    }
    return s;
}

#endif
