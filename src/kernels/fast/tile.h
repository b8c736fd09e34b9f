/* The register tile every matrix product of the fast kernels is built from,
 * and staging, the (C, H, W) -> (H, W, C) copies that feed it. The tile
 * helpers are inlined into each kernel so that every tile shape gets its own
 * fully unrolled code. */
#ifndef FM_KERNELS_FAST_TILE_H
#define FM_KERNELS_FAST_TILE_H

#include "kernels/fast/fast.h"

/* acc[r][v] += sum_{k<K} a[r][k*as] * b[k*ldb + v*VL]; with `masked` the last
 * B vector loads only the lanes in bm (its row ends there). */
FM__INLINE void madd(vf acc[MR][NV], const int mr, const int nv, const int masked, vmask bm,
                     const float *const *a, ptrdiff_t as, int K, const float *b, ptrdiff_t ldb) {
    const float *ar[MR];
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) ar[r] = a[r];
    ptrdiff_t ka = 0;
    for (int k = 0; k < K; k++, ka += as, b += ldb) {
        vf bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            bv[v] = masked && v == nv - 1 ? vloadm(b + v * VL, bm) : vload(b + v * VL);
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            vf av = vset1(ar[r][ka]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++) acc[r][v] = vfma(av, bv[v], acc[r][v]);
        }
    }
}

FM__INLINE void tile_zero(vf acc[MR][NV], const int mr, const int nv) {
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) acc[r][v] = vzero();
}

/* c[r*ldc + v*VL] (+)= acc[r][v]; the last vector masked like madd's. */
FM__INLINE void tile_store(vf acc[MR][NV], const int mr, const int nv, const int masked, vmask m,
                           float *c, ptrdiff_t ldc, int accumulate) {
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) {
            float *p = c + r * ldc + v * VL;
            if (masked && v == nv - 1) {
                vstorem(p, accumulate ? vadd(vloadm(p, m), acc[r][v]) : acc[r][v], m);
            } else {
                vstore(p, accumulate ? vadd(vload(p), acc[r][v]) : acc[r][v]);
            }
        }
    }
}

/* Instantiates CALL(mr, nv) for the run-time tile size with compile-time
 * constants, so every tile shape gets its own fully unrolled code. */
#if NV == 4
#define NV_CASES(CALL, m)                                                                          \
    case m * 8 + 1: CALL(m, 1); break;                                                             \
    case m * 8 + 2: CALL(m, 2); break;                                                             \
    case m * 8 + 3: CALL(m, 3); break;                                                             \
    case m * 8 + 4: CALL(m, 4); break;
#else
#define NV_CASES(CALL, m)                                                                          \
    case m * 8 + 1: CALL(m, 1); break;                                                             \
    case m * 8 + 2: CALL(m, 2); break;
#endif
#define TILE_SWITCH(mr, nv, CALL)                                                                  \
    switch ((mr) * 8 + (nv)) {                                                                     \
        NV_CASES(CALL, 1)                                                                          \
        NV_CASES(CALL, 2)                                                                          \
        NV_CASES(CALL, 3)                                                                          \
        NV_CASES(CALL, 4)                                                                          \
        NV_CASES(CALL, 5)                                                                          \
        NV_CASES(CALL, 6)                                                                          \
    default: break;                                                                                \
    }

#define fm__gemm_tile FM__ISA(fm__gemm_tile)
#define fm__stage_rows FM__ISA(fm__stage_rows)

/* c (mr, nv*VL) (+)= a (mr rows, K apart by as) . b (K, nv*VL, rows ldb apart);
 * mr <= MR, nv <= NV, the last vector masked by m when masked != 0. */
void fm__gemm_tile(int mr, int nv, int masked, vmask m, const float *const *a, ptrdiff_t as,
                   int K, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int accumulate);

/* Rows [ylo, yhi) of dst (hs, ws, cs) = src (c, h, w) shifted down by oy and
 * right by ox; zero outside the image and in channels c..cs (cs % VL == 0). */
void fm__stage_rows(float *dst, const float *src, int c, int h, int w, int ws, int cs, int oy,
                    int ox, int ylo, int yhi);

#endif
