/* The register-tile matrix product and row staging (see tile.h). */
#include <string.h>

#include "kernels/fast/tile.h"

void fm__gemm_tile(int mr, int nv, int masked, vmask m, const float *const *a, ptrdiff_t as,
                   int K, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int accumulate) {
#define GEMM_CALL(M_, N_)                                                                          \
    do {                                                                                           \
        vf acc[MR][NV];                                                                            \
        tile_zero(acc, M_, N_);                                                                    \
        if (masked) {                                                                              \
            madd(acc, M_, N_, 1, m, a, as, K, b, ldb);                                             \
            tile_store(acc, M_, N_, 1, m, c, ldc, accumulate);                                     \
        } else {                                                                                   \
            madd(acc, M_, N_, 0, m, a, as, K, b, ldb);                                             \
            tile_store(acc, M_, N_, 0, m, c, ldc, accumulate);                                     \
        }                                                                                          \
    } while (0)
    TILE_SWITCH(mr, nv, GEMM_CALL)
#undef GEMM_CALL
}

void fm__stage_rows(float *dst, const float *src, int c, int h, int w, int ws, int cs, int oy,
                    int ox, int ylo, int yhi) {
    const int x0 = ox > 0 ? ox : 0, x1 = imin(ws, ox + w);
    /* zero what the image does not cover */
    for (int y = ylo; y < yhi; y++) {
        float *row = dst + (size_t)y * ws * cs;
        if (y - oy < 0 || y - oy >= h || x1 <= x0) {
            memset(row, 0, sizeof(float) * ws * cs);
        } else {
            memset(row, 0, sizeof(float) * x0 * cs);
            memset(row + (size_t)x1 * cs, 0, sizeof(float) * (ws - x1) * cs);
        }
    }
    if (x1 <= x0) return;
    const int y0 = ylo > oy ? ylo : oy, y1 = imin(yhi, oy + h);
    /* VL channels at a time, so the reads follow VL rows of the source */
    for (int cb = 0; cb < cs; cb += VL) {
        const int nc = imin(VL, c - cb);
        for (int y = y0; y < y1; y++) {
            float *row = dst + (size_t)y * ws * cs;
            for (int xb = x0; xb < x1; xb += VL) {
                int nx = imin(VL, x1 - xb);
                vmask m = vm_first(nx);
                vf r[VL];
                const float *s = src + (size_t)cb * h * w + (size_t)(y - oy) * w + (xb - ox);
                /* the source is usually not in cache: fetch a few rows ahead */
                for (int i = 0; i < nc; i++) {
                    __builtin_prefetch(s + (size_t)i * h * w + 4 * w, 0, 3);
                    __builtin_prefetch(s + (size_t)i * h * w + 4 * w + VL - 1, 0, 3);
                }
                for (int i = 0; i < VL; i++) r[i] = i < nc ? vloadm(s + (size_t)i * h * w, m) : vzero();
                vtranspose(r);
                for (int j = 0; j < nx; j++) vstore(row + (size_t)(xb + j) * cs + cb, r[j]);
            }
        }
    }
}
