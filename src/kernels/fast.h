/* The fast kernels, written once over the vector layer in simd.h and
 * compiled twice: avx512.c (16 lanes) and avx2.c (8 lanes) define FM__VL and
 * FM__TABLE_FN, then include this file.
 *
 * Convolutions run on channel-innermost copies of one image at a time
 * ("staging", (H, W, C) with the zero padding built in), which turns every
 * conv into register-blocked matrix products whose vectors run along the
 * channels:
 * - 3x3 stride-1 convs use Winograd F(4x4,3x3): 36 products of (tiles x C)
 *   by (C x OC) per block of tiles instead of 144 per tile; backward data is
 *   the forward of the rotated, transposed kernel, and weight gradients go
 *   through the same transforms;
 * - other convs multiply staged pixels by the (K*K*C x OC) weights directly,
 *   and their weight gradients staged input pixels (rows: kernel tap and
 *   channel) by the staged output gradient (pixel x OC);
 * - convs with very few channels (the first layer) run along output pixels.
 * Dense layers use the same register tile, or dot products for the forward.
 * Parallel sums have a fixed order for a given thread count. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/internal.h"
#include "kernels/simd.h"

#define VL FM__VL
/* The register tile: MR rows (broadcast scalars) by NV vectors, 24 of the 32
 * zmm or 12 of the 16 ymm registers as accumulators. */
#define MR 6
#define NV (VL == 16 ? 4 : 2)

/* ---- threads and scratch ------------------------------------------------ */

static int team(void) {
#ifdef _OPENMP
    int nt = omp_get_max_threads(), cap = fm__kernel_threads();
    return nt < cap ? nt : cap;
#else
    return 1;
#endif
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static int thread_count(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* Part tid of nth of [0, total). */
static void split(int total, int nth, int tid, int *lo, int *hi) {
    *lo = (int)((long long)total * tid / nth);
    *hi = (int)((long long)total * (tid + 1) / nth);
}

static int imin(int a, int b) { return a < b ? a : b; }
static size_t rup(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Scratch areas start on 64-byte lines: the caller's pointer is rounded up,
 * which the workspace sizes allow for with ALIGN_SLACK floats. */
#define ALIGN_SLACK 16
static float *align64(float *p) { return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

/* Fetches len floats from p towards L1, one line at a time: for rows the
 * hardware prefetcher does not see coming (each new far-away row restarts
 * it, and masked loads do not start it). */
FM__INLINE void prefetch_row(const float *p, int len) {
    for (int j = 0; j < len; j += 16) _mm_prefetch((const char *)(p + j), _MM_HINT_T0);
}

/* ---- the register tile ---------------------------------------------------- */

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

/* c (mr, nv*VL) (+)= a (mr rows, K apart by as) . b (K, nv*VL, rows ldb apart). */
static void gemm_tile(int mr, int nv, int masked, vmask m, const float *const *a, ptrdiff_t as,
                      int K, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                      int accumulate) {
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

/* ---- staging: (C, H, W) <-> (H, W, C) ------------------------------------- */

/* Rows [ylo, yhi) of dst (hs, ws, cs) = src (c, h, w) shifted down by oy and
 * right by ox; zero outside the image and in channels c..cs (cs % VL == 0). */
static void stage_rows(float *dst, const float *src, int c, int h, int w, int ws, int cs, int oy,
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
                    _mm_prefetch((const char *)(s + (size_t)i * h * w + 4 * w), _MM_HINT_T0);
                    _mm_prefetch((const char *)(s + (size_t)i * h * w + 4 * w + VL - 1), _MM_HINT_T0);
                }
                for (int i = 0; i < VL; i++) r[i] = i < nc ? vloadm(s + (size_t)i * h * w, m) : vzero();
                vtranspose(r);
                for (int j = 0; j < nx; j++) vstore(row + (size_t)(xb + j) * cs + cb, r[j]);
            }
        }
    }
}

/* dst (c, npix) = src (npix, cs) transposed, plus bias (may be NULL), then
 * ReLU when relu != 0. */
static void unstage(float *dst, const float *src, int c, int npix, int cs, const float *bias,
                    int relu) {
    for (int cb = 0; cb < c; cb += VL) {
        int nc = imin(VL, c - cb);
        for (int p0 = 0; p0 < npix; p0 += VL) {
            int np = imin(VL, npix - p0);
            vf r[VL];
            for (int j = 0; j < VL; j++) r[j] = j < np ? vload(src + (size_t)(p0 + j) * cs + cb) : vzero();
            vtranspose(r);
            vmask m = vm_first(np);
            for (int i = 0; i < nc; i++) {
                vf v = bias ? vadd(r[i], vset1(bias[cb + i])) : r[i];
                if (relu) v = vmax(v, vzero());
                vstorem(dst + (size_t)(cb + i) * npix + p0, v, m);
            }
        }
    }
}

/* ---- Winograd F(4x4, 3x3) ----------------------------------------------- */

/* A 3x3 stride-1 conv of an (n, c, h, w) input into (n, oc, oh, ow), input
 * pixel (y, x) at staging (y + pad_t, x + pad_l). Tiles of 4x4 outputs are
 * numbered across the whole batch; each thread takes a contiguous range. */
typedef struct wino {
    int n, c, h, w, oc, oh, ow, pad_t, pad_l;
    int ty, tx, tpi;      /* tiles down, across, per image */
    int hs, ws, cs, ocs;  /* staging height and width; channels padded to VL */
    int tb;               /* tiles per block */
    size_t stg, v, m;     /* per-thread floats: staging, transformed input, products */
} wino;

static int wino_ok(const fm__conv_shape *s) {
    /* the rotated conv of backward data pads by 2 - pad, so both must be in [0, 2];
     * few channels would waste most of each vector */
    return s->k == 3 && s->stride == 1 && s->pad_t >= 0 && s->pad_t <= 2 && s->pad_l >= 0 &&
           s->pad_l <= 2 && s->c >= 8 && s->oc >= 8;
}

static wino wino_plan(int n, int c, int h, int w, int oc, int oh, int ow, int pad_t, int pad_l) {
    wino p = {.n = n, .c = c, .h = h, .w = w, .oc = oc, .oh = oh, .ow = ow, .pad_t = pad_t,
              .pad_l = pad_l};
    p.ty = (oh + 3) / 4;
    p.tx = (ow + 3) / 4;
    p.tpi = p.ty * p.tx;
    p.hs = 4 * p.ty + 2;
    p.ws = 4 * p.tx + 2;
    p.cs = (int)rup(c, VL);
    p.ocs = (int)rup(oc, VL);
    /* The 36 transformed blocks of input and products should stay in L2
     * (about 512 KB) alongside a streaming slice of the weights. */
    int tb = (int)((128 * 1024) / (36 * (size_t)(p.cs + p.ocs))) / MR * MR;
    p.tb = tb < MR ? MR : tb;
    p.stg = rup((size_t)p.hs * p.ws * p.cs, 16);
    p.v = rup((size_t)36 * p.tb * p.cs, 16);
    p.m = rup((size_t)36 * p.tb * p.ocs, 16);
    return p;
}

/* Forward pass of a 3x3 kernel g (rows 3 apart): t (6 rows, ts apart) = G g. */
FM__INLINE void wino_g(vf t[6], vf g0, vf g1, vf g2) {
    const vf q = vset1(0.25f), s6 = vset1(-1.0f / 6.0f), s24 = vset1(1.0f / 24.0f),
             s12 = vset1(1.0f / 12.0f), p6 = vset1(1.0f / 6.0f);
    t[0] = vmul(g0, q);
    t[1] = vmul(vadd(vadd(g0, g1), g2), s6);
    t[2] = vmul(vadd(vsub(g0, g1), g2), s6);
    vf a = vfma(g0, s24, vmul(g2, p6)), b = vmul(g1, s12);
    t[3] = vadd(a, b);
    t[4] = vsub(a, b);
    t[5] = g2;
}

/* U[xi][k][j] (36, kdim, js) = G g G^T, the transformed 3x3 kernel from input
 * channel k to output channel j (j >= jdim zero). Forward: k = c, j = oc,
 * g = w[oc][c]; backward data (flip): k = oc, j = c, g = w[oc][c] rotated 180
 * degrees. Vectors run along j; parallel over k. */
static void wino_weights(float *U, const float *w, int C, int OC, int flip) {
    const int kdim = flip ? OC : C, jdim = flip ? C : OC, js = (int)rup(jdim, VL);
    FM__OMP(omp parallel for schedule(static) num_threads(team()))
    for (int k = 0; k < kdim; k++) {
        for (int jb = 0; jb < js; jb += VL) {
            /* gather the VL kernels into vectors of each of their 9 taps */
            float gs[9][VL];
            for (int j = 0; j < VL; j++) {
                int jj = jb + j;
                for (int e = 0; e < 9; e++) {
                    if (jj >= jdim) {
                        gs[e][j] = 0.0f;
                        continue;
                    }
                    const float *g = flip ? w + ((size_t)k * C + jj) * 9 : w + ((size_t)jj * C + k) * 9;
                    gs[e][j] = g[flip ? 8 - e : e];
                }
            }
            vf t[3][6], u[6];
            for (int col = 0; col < 3; col++)
                wino_g(t[col], vload(gs[col]), vload(gs[3 + col]), vload(gs[6 + col]));
            for (int i = 0; i < 6; i++) {
                wino_g(u, t[0][i], t[1][i], t[2][i]);
                for (int j = 0; j < 6; j++) vstore(U + ((size_t)(i * 6 + j) * kdim + k) * js + jb, u[j]);
            }
        }
    }
}

/* r = B^T d for one column of six. */
FM__INLINE void wino_bt(vf r[6], vf d0, vf d1, vf d2, vf d3, vf d4, vf d5) {
    const vf four = vset1(4.0f), mfour = vset1(-4.0f), mfive = vset1(-5.0f), two = vset1(2.0f);
    r[0] = vfma(four, d0, vfma(mfive, d2, d4));
    r[1] = vfma(mfour, vadd(d1, d2), vadd(d3, d4));
    r[2] = vfma(four, vsub(d1, d2), vsub(d4, d3));
    r[3] = vfma(two, vsub(d3, d1), vsub(d4, d2));
    r[4] = vfma(two, vsub(d1, d3), vsub(d4, d2));
    r[5] = vfma(four, d1, vfma(mfive, d3, d5));
}

/* V[xi*vs] = (B^T d B)[xi] for the 6x6 patch d at src (rows rs, pixels ps apart). */
FM__INLINE void wino_in(float *V, ptrdiff_t vs, const float *src, ptrdiff_t rs, ptrdiff_t ps) {
    vf t[6][6], c[6];
    for (int s = 0; s < 6; s++) {
        const float *p = src + s * ps;
        wino_bt(c, vload(p), vload(p + rs), vload(p + 2 * rs), vload(p + 3 * rs), vload(p + 4 * rs),
                vload(p + 5 * rs));
        for (int i = 0; i < 6; i++) t[i][s] = c[i];
    }
    for (int i = 0; i < 6; i++) {
        wino_bt(c, t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5]);
        for (int j = 0; j < 6; j++) vstore(V + (i * 6 + j) * vs, c[j]);
    }
}

/* y = A^T m for one column of six. */
FM__INLINE void wino_at(vf y[4], vf m0, vf m1, vf m2, vf m3, vf m4, vf m5) {
    vf a = vadd(m1, m2), b = vsub(m1, m2), c = vadd(m3, m4), d = vsub(m3, m4);
    y[0] = vadd(vadd(m0, a), c);
    y[1] = vfma(vset1(2.0f), d, b);
    y[2] = vfma(vset1(4.0f), c, a);
    y[3] = vadd(vfma(vset1(8.0f), d, b), m5);
}

/* y[i*4+j] = (A^T M A)[i][j] from M[xi*ms]. */
FM__INLINE void wino_out(vf y[16], const float *M, ptrdiff_t ms) {
    vf t[4][6], c[4];
    for (int s = 0; s < 6; s++) {
        wino_at(c, vload(M + s * ms), vload(M + (6 + s) * ms), vload(M + (12 + s) * ms),
                vload(M + (18 + s) * ms), vload(M + (24 + s) * ms), vload(M + (30 + s) * ms));
        for (int i = 0; i < 4; i++) t[i][s] = c[i];
    }
    for (int i = 0; i < 4; i++) {
        wino_at(c, t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5]);
        for (int j = 0; j < 4; j++) y[i * 4 + j] = c[j];
    }
}

/* out (n, oc, oh, ow) = bias + conv(in, U), ReLU when relu != 0. Blocks of
 * tiles go to whichever thread is free (every tile's result is the same
 * whoever computes it), each staging just the input rows its tiles need. */
static void wino_run(const wino *p, float *out, const float *in, const float *U,
                     const float *bias, int relu, float *scratch) {
    const int total = p->n * p->tpi, blocks = (total + p->tb - 1) / p->tb;
    FM__OMP(omp parallel num_threads(team()))
    {
        float *stg = scratch + (size_t)thread_id() * (p->stg + p->v + p->m);
        float *V = stg + p->stg, *M = V + p->v;
        /* V (tb, 36, cs) and M (tb, 36, ocs): each tile's transform is contiguous */
        const ptrdiff_t vt = (ptrdiff_t)36 * p->cs, mt = (ptrdiff_t)36 * p->ocs;
        int sn = -1, sy0 = 0, sy1 = 0; /* staged: rows [sy0, sy1) of image sn */
        FM__OMP(omp for schedule(dynamic, 1))
        for (int bk = 0; bk < blocks; bk++) {
            const int t0 = bk * p->tb, nb = imin(p->tb, total - t0);
            /* transform the block's input tiles, staging rows as they are reached */
            for (int i = 0; i < nb; i++) {
                int t = t0 + i, n = t / p->tpi, ty = t % p->tpi / p->tx, tx = t % p->tx;
                if (n != sn || 4 * ty < sy0 || 4 * ty > sy1) sn = n, sy0 = sy1 = 4 * ty;
                if (sy1 < 4 * ty + 6) {
                    stage_rows(stg, in + (size_t)n * p->c * p->h * p->w, p->c, p->h, p->w, p->ws,
                               p->cs, p->pad_t, p->pad_l, sy1, 4 * ty + 6);
                    sy1 = 4 * ty + 6;
                }
                const float *src = stg + ((size_t)4 * ty * p->ws + 4 * tx) * p->cs;
                for (int cb = 0; cb < p->cs; cb += VL)
                    wino_in(V + i * vt + cb, p->cs, src + cb, (ptrdiff_t)p->ws * p->cs, p->cs);
            }
            /* 36 products (nb, c) . (c, ocs) */
            for (int xi = 0; xi < 36; xi++) {
                const float *Vx = V + xi * p->cs, *Ux = U + (size_t)xi * p->c * p->ocs;
                float *Mx = M + xi * p->ocs;
                for (int ob = 0; ob < p->ocs / VL; ob += NV) {
                    int nv = imin(NV, p->ocs / VL - ob);
                    for (int i = 0; i < nb; i += MR) {
                        const float *a[MR];
                        for (int r = 0; r < MR; r++) a[r] = Vx + (i + r) * vt;
                        gemm_tile(imin(MR, nb - i), nv, 0, vm_first(VL), a, 1, p->c, Ux + ob * VL,
                                  p->ocs, Mx + i * mt + ob * VL, mt, 0);
                    }
                }
            }
            /* back to pixels, cropped at the image edges */
            for (int i = 0; i < nb; i++) {
                int t = t0 + i, n = t / p->tpi, ty = t % p->tpi / p->tx, tx = t % p->tx;
                float *o = out + (size_t)n * p->oc * p->oh * p->ow + (size_t)4 * ty * p->ow + 4 * tx;
                for (int ob = 0; ob < p->oc; ob += VL) {
                    vf y[16];
                    wino_out(y, M + i * mt + ob, p->ocs);
                    vf bv = bias ? vloadm(bias + ob, vm_first(p->oc - ob)) : vzero();
                    for (int j = 0; j < 16; j++) {
                        y[j] = vadd(y[j], bv);
                        if (relu) y[j] = vmax(y[j], vzero());
                    }
                    store_tile4x4(o + (size_t)ob * p->oh * p->ow, (ptrdiff_t)p->oh * p->ow, p->ow, y,
                                  imin(VL, p->oc - ob), imin(4, p->oh - 4 * ty), imin(4, p->ow - 4 * tx));
                }
            }
        }
    }
}

/* m = A y for one column of four (A is A^T transposed). */
FM__INLINE void wino_a(vf m[6], vf y0, vf y1, vf y2, vf y3) {
    vf e = vadd(y0, y2), o = vadd(y1, y3);
    vf e4 = vfma(vset1(4.0f), y2, y0), o8 = vfma(vset1(8.0f), y3, vadd(y1, y1));
    m[0] = y0;
    m[1] = vadd(e, o);
    m[2] = vsub(e, o);
    m[3] = vadd(e4, o8);
    m[4] = vsub(e4, o8);
    m[5] = y3;
}

/* dM[xi*ms] = (A dY A^T)[xi] for the 4x4 output-gradient patch at src. */
FM__INLINE void wino_dout(float *dM, ptrdiff_t ms, const float *src, ptrdiff_t rs, ptrdiff_t ps) {
    vf t[6][4], c[6];
    for (int s = 0; s < 4; s++) {
        const float *p = src + s * ps;
        wino_a(c, vload(p), vload(p + rs), vload(p + 2 * rs), vload(p + 3 * rs));
        for (int i = 0; i < 6; i++) t[i][s] = c[i];
    }
    for (int i = 0; i < 6; i++) {
        wino_a(c, t[i][0], t[i][1], t[i][2], t[i][3]);
        for (int j = 0; j < 6; j++) vstore(dM + (i * 6 + j) * ms, c[j]);
    }
}

/* g = G^T u for one column of six. */
FM__INLINE void wino_gt(vf g[3], vf u0, vf u1, vf u2, vf u3, vf u4, vf u5) {
    const vf s6 = vset1(1.0f / 6.0f);
    vf s12 = vadd(u1, u2), d12 = vsub(u1, u2), s34 = vadd(u3, u4), d34 = vsub(u3, u4);
    g[0] = vfma(u0, vset1(0.25f), vfma(s34, vset1(1.0f / 24.0f), vmul(s12, vset1(-1.0f / 6.0f))));
    g[1] = vfma(d34, vset1(1.0f / 12.0f), vmul(d12, vset1(-1.0f / 6.0f)));
    g[2] = vadd(vmul(vsub(s34, s12), s6), u5);
}

/* Weight gradients through the same transforms: with M = U . V per tile and
 * Y = A^T M A, dU = sum over tiles of (A dY A^T) . V and dw = G^T dU G.
 * Threads take fixed contiguous ranges of tiles and sum into their own dU,
 * then the dU are added in thread order: a given thread count always gives
 * the same sums, and no transform is done twice. */
#define WGRAD_THREADS 8 /* at most this many private dU (up to 2.4 MB each) */

typedef struct wgrad {
    wino f;      /* the forward conv's tiling and input staging */
    int tb;      /* tiles per block */
    size_t du, dstg, dm, dbs; /* per-thread floats besides f.stg and f.v: dU (36, c, ocs),
                                 output-gradient staging, dM, bias-gradient sums */
} wgrad;

static wgrad wgrad_plan(const fm__conv_shape *s) {
    wgrad g;
    g.f = wino_plan(s->n, s->c, s->h, s->w, s->oc, s->oh, s->ow, s->pad_t, s->pad_l);
    /* Long blocks amortise loading and storing the dU tiles (which do not
     * stay in L2) over more tiles; 128 measured best for the network's convs. */
    g.tb = imin(128, s->n * g.f.tpi);
    g.f.v = rup((size_t)36 * g.tb * g.f.cs, 16);
    g.du = rup((size_t)36 * s->c * g.f.ocs, 16);
    g.dstg = rup((size_t)16 * g.f.ty * g.f.tx * g.f.ocs, 16);
    g.dm = rup((size_t)36 * g.tb * g.f.ocs, 16);
    g.dbs = rup((size_t)g.f.ocs, 16);
    return g;
}

static size_t wgrad_thread_len(const wgrad *g) {
    return g->du + g->f.stg + g->f.v + g->dstg + g->dm + g->dbs;
}

static void wino_bww(float *dw, float *db, const float *dout, const float *in,
                     const fm__conv_shape *s, float *ws) {
    const wgrad g = wgrad_plan(s);
    const wino *f = &g.f;
    const int C = s->c, OC = s->oc, total = s->n * f->tpi;
    const size_t per = wgrad_thread_len(&g), du_len = (size_t)36 * C * f->ocs;
    FM__OMP(omp parallel num_threads(imin(team(), WGRAD_THREADS)))
    {
        const int tid = thread_id(), nth = thread_count();
        float *dU = ws + tid * per, *stg = dU + g.du, *V = stg + f->stg, *dstg = V + f->v;
        float *dM = dstg + g.dstg, *dbs = dM + g.dm;
        const size_t dbs_at = (size_t)(dbs - dU); /* where every thread's bias sums are */
        const ptrdiff_t vt = (ptrdiff_t)36 * f->cs, mt = (ptrdiff_t)36 * f->ocs;
        memset(dU, 0, sizeof(float) * du_len);
        memset(dbs, 0, sizeof(float) * f->ocs);
        int lo, hi, staged = -1;
        split(total, nth, tid, &lo, &hi);
        for (int t0 = lo; t0 < hi; t0 += g.tb) {
            const int nb = imin(g.tb, hi - t0);
            for (int i = 0; i < nb; i++) {
                int t = t0 + i, n = t / f->tpi, ty = t % f->tpi / f->tx, tx = t % f->tx;
                if (n != staged) {
                    stage_rows(stg, in + (size_t)n * C * s->h * s->w, C, s->h, s->w, f->ws, f->cs,
                               s->pad_t, s->pad_l, 0, f->hs);
                    stage_rows(dstg, dout + (size_t)n * OC * s->oh * s->ow, OC, s->oh, s->ow,
                               4 * f->tx, f->ocs, 0, 0, 0, 4 * f->ty);
                    staged = n;
                }
                const float *src = stg + ((size_t)4 * ty * f->ws + 4 * tx) * f->cs;
                for (int cb = 0; cb < f->cs; cb += VL)
                    wino_in(V + i * vt + cb, f->cs, src + cb, (ptrdiff_t)f->ws * f->cs, f->cs);
                const float *dsrc = dstg + ((size_t)4 * ty * 4 * f->tx + 4 * tx) * f->ocs;
                for (int ob = 0; ob < f->ocs; ob += VL) {
                    /* the bias gradient from the same output-gradient patch */
                    for (int p = 0; p < 16; p++)
                        vstore(dbs + ob, vadd(vload(dbs + ob),
                                              vload(dsrc + ((size_t)(p / 4) * 4 * f->tx + p % 4) * f->ocs + ob)));
                    wino_dout(dM + i * mt + ob, f->ocs, dsrc + ob, (ptrdiff_t)4 * f->tx * f->ocs,
                              f->ocs);
                }
            }
            /* dU[xi] (c, ocs) += V[xi]^T (c, nb) . dM[xi] (nb, ocs) */
            for (int xi = 0; xi < 36; xi++) {
                for (int ob = 0; ob < f->ocs / VL; ob += NV) {
                    const int nv = imin(NV, f->ocs / VL - ob);
                    for (int c0 = 0; c0 < C; c0 += MR) {
                        const float *a[MR];
                        for (int r = 0; r < MR; r++) a[r] = V + xi * f->cs + imin(c0 + r, C - 1);
                        gemm_tile(imin(MR, C - c0), nv, 0, vm_first(VL), a, vt, nb,
                                  dM + xi * f->ocs + ob * VL, mt,
                                  dU + ((size_t)xi * C + c0) * f->ocs + ob * VL, f->ocs, 1);
                    }
                }
            }
        }
        FM__OMP(omp barrier)
        /* thread 0's sums += the others', in thread order, each thread a slice */
        int elo, ehi;
        split((int)(du_len / VL), nth, tid, &elo, &ehi);
        for (int t = 1; t < nth; t++) {
            const float *o = ws + t * per;
            for (size_t e = (size_t)elo * VL; e < (size_t)ehi * VL; e += VL)
                vstore(ws + e, vadd(vload(ws + e), vload(o + e)));
        }
        if (tid == 0 && db)
            for (int o = 0; o < OC; o++) {
                float sum = dbs[o];
                for (int t = 1; t < nth; t++) sum += ws[t * per + dbs_at + o];
                db[o] += sum;
            }
        FM__OMP(omp barrier)
        /* dw[oc][c] += G^T dU[.][c][oc] G, threads splitting the channels */
        int clo, chi;
        split(C, nth, tid, &clo, &chi);
        for (int c = clo; c < chi; c++) {
            for (int ob = 0; ob < OC; ob += VL) {
                vf t[3][6], gg[3];
                float tmp[9][VL];
                const float *u = ws + (size_t)c * f->ocs + ob;
                const ptrdiff_t us = (ptrdiff_t)C * f->ocs;
                for (int j = 0; j < 6; j++) {
                    wino_gt(gg, vload(u + j * us), vload(u + (6 + j) * us), vload(u + (12 + j) * us),
                            vload(u + (18 + j) * us), vload(u + (24 + j) * us), vload(u + (30 + j) * us));
                    for (int a = 0; a < 3; a++) t[a][j] = gg[a];
                }
                for (int a = 0; a < 3; a++) {
                    wino_gt(gg, t[a][0], t[a][1], t[a][2], t[a][3], t[a][4], t[a][5]);
                    for (int b = 0; b < 3; b++) vstore(tmp[a * 3 + b], gg[b]);
                }
                for (int j = 0; j < imin(VL, OC - ob); j++)
                    for (int e = 0; e < 9; e++) dw[((size_t)(ob + j) * C + c) * 9 + e] += tmp[e][j];
            }
        }
    }
}

/* ---- direct convs on staged pixels ---------------------------------------- */

/* Packed kernel: row (kh*K + kw)*kdim + k, column j (padded to js with
 * zeros) holds the weight from input channel k to output channel j; with
 * flip, k = oc and j = c of the 180-degree rotated kernel (backward data). */
static void pack_weights(float *Wt, const float *w, int C, int OC, int K, int flip) {
    const int kdim = flip ? OC : C, jdim = flip ? C : OC, js = (int)rup(jdim, VL);
    FM__OMP(omp parallel for schedule(static) num_threads(team()))
    for (int k = 0; k < kdim; k++) {
        for (int tap = 0; tap < K * K; tap++) {
            float *row = Wt + ((size_t)tap * kdim + k) * js;
            for (int j = 0; j < js; j++) {
                if (j >= jdim) {
                    row[j] = 0.0f;
                    continue;
                }
                size_t base = flip ? ((size_t)k * C + j) * K * K : ((size_t)j * C + k) * K * K;
                row[j] = w[base + (flip ? K * K - 1 - tap : tap)];
            }
        }
    }
}

/* One register tile of output pixels: acc = sum over taps and channels. */
FM__INLINE void direct_tile(const int mr, const int nv, const float *const *a, int K, int C,
                            ptrdiff_t rs, ptrdiff_t ps, const float *b, ptrdiff_t ldb, float *c,
                            ptrdiff_t ldc) {
    vf acc[MR][NV];
    tile_zero(acc, mr, nv);
    for (int kh = 0; kh < K; kh++) {
        for (int kw = 0; kw < K; kw++) {
            const float *ak[MR];
#pragma GCC unroll 8
            for (int r = 0; r < mr; r++) ak[r] = a[r] + kh * rs + kw * ps;
            madd(acc, mr, nv, 0, vm_first(VL), ak, 1, C, b + (size_t)(kh * K + kw) * C * ldb, ldb);
        }
    }
    tile_store(acc, mr, nv, 0, vm_first(VL), c, ldc, 0);
}

typedef struct direct {
    int hs, ws, cs, ocs;
    size_t stg, ostg; /* per-thread floats */
} direct;

static direct direct_plan(const fm__conv_shape *s) {
    direct d;
    d.hs = (s->oh - 1) * s->stride + s->k;
    d.ws = (s->ow - 1) * s->stride + s->k;
    d.cs = (int)rup(s->c, VL);
    d.ocs = (int)rup(s->oc, VL);
    d.stg = rup((size_t)d.hs * d.ws * d.cs, 16);
    d.ostg = rup((size_t)s->oh * s->ow * d.ocs, 16);
    return d;
}

/* out = bias + conv(in, Wt packed), ReLU when relu != 0; parallel over images. */
static void direct_run(const fm__conv_shape *s, float *out, const float *in, const float *Wt,
                       const float *bias, int relu, float *scratch) {
    const direct d = direct_plan(s);
    const int npix = s->oh * s->ow;
    FM__OMP(omp parallel num_threads(team()))
    {
        int lo, hi;
        split(s->n, thread_count(), thread_id(), &lo, &hi);
        float *stg = scratch + (size_t)thread_id() * (d.stg + d.ostg), *ostg = stg + d.stg;
        for (int n = lo; n < hi; n++) {
            stage_rows(stg, in + (size_t)n * s->c * s->h * s->w, s->c, s->h, s->w, d.ws, d.cs,
                       s->pad_t, s->pad_l, 0, d.hs);
            for (int p0 = 0; p0 < npix; p0 += MR) {
                const int mr = imin(MR, npix - p0);
                const float *a[MR];
                for (int r = 0; r < MR; r++) {
                    int p = imin(p0 + r, npix - 1), oy = p / s->ow, ox = p % s->ow;
                    a[r] = stg + ((size_t)oy * s->stride * d.ws + (size_t)ox * s->stride) * d.cs;
                }
                for (int ob = 0; ob < d.ocs / VL; ob += NV) {
                    const int nv = imin(NV, d.ocs / VL - ob);
#define DIRECT_CALL(M_, N_)                                                                        \
    direct_tile(M_, N_, a, s->k, s->c, (ptrdiff_t)d.ws * d.cs, d.cs, Wt + ob * VL, d.ocs,          \
                ostg + (size_t)p0 * d.ocs + ob * VL, d.ocs)
                    TILE_SWITCH(mr, nv, DIRECT_CALL)
#undef DIRECT_CALL
                }
            }
            unstage(out + (size_t)n * s->oc * npix, ostg, s->oc, npix, d.ocs, bias, relu);
        }
    }
}

/* The conv that backward data is, for stride 1: dout convolved with the
 * rotated, transposed kernel, padded by K-1-pad. */
static fm__conv_shape rotated(const fm__conv_shape *s) {
    fm__conv_shape r = {.n = s->n, .c = s->oc, .h = s->oh, .w = s->ow, .oc = s->c, .oh = s->h,
                       .ow = s->w, .k = s->k, .stride = 1, .pad_t = s->k - 1 - s->pad_t,
                       .pad_l = s->k - 1 - s->pad_l};
    return r;
}

static int rotated_ok(const fm__conv_shape *s) {
    return s->stride == 1 && s->pad_t >= 0 && s->pad_t <= s->k - 1 && s->pad_l >= 0 &&
           s->pad_l <= s->k - 1;
}

/* ---- convs with few channels: vectors along output pixels -------------- */

/* Stride-1 convs whose channel counts would leave the matrix products above
 * with mostly empty vectors or tiny depths (the first layer: 1 input
 * channel) run directly on zero-padded copies of each input channel, VL
 * output pixels of a row at a time. */
static int plane_ok(const fm__conv_shape *s) {
    return s->stride == 1 && (s->c * s->k * s->k <= 27 || s->oc < 8);
}

/* weight gradients this way need a 3x3 kernel (its 9 taps live in registers) */
static int plane_bww_ok(const fm__conv_shape *s) {
    return s->stride == 1 && s->k == 3 && s->c < 8;
}

typedef struct plane {
    int hp, wp; /* padded channel height and width */
    size_t len; /* floats for the copies of one image */
} plane;

static plane plane_plan(const fm__conv_shape *s) {
    plane p;
    p.hp = s->oh + s->k - 1;
    p.wp = (int)rup(s->ow, VL) + s->k - 1;
    p.len = rup((size_t)s->c * p.hp * p.wp, 16);
    return p;
}

/* dst (c, hp, wp) = src (c, h, w) shifted by (oy, ox), zero elsewhere. */
static void stage_planes(float *dst, const float *src, int c, int h, int w, const plane *p, int oy,
                         int ox) {
    memset(dst, 0, sizeof(float) * c * p->hp * p->wp);
    const int x0 = ox < 0 ? -ox : 0, x1 = imin(w, p->wp - ox);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            if (y + oy >= 0 && y + oy < p->hp && x1 > x0)
                memcpy(dst + ((size_t)ch * p->hp + y + oy) * p->wp + ox + x0,
                       src + ((size_t)ch * h + y) * w + x0, sizeof(float) * (x1 - x0));
}

#define PB (VL == 16 ? 8 : 4) /* output channels per pass */

/* out[j][xb..] for nb output channels j of row oy: bias + taps, then ReLU. */
FM__INLINE void plane_fwd_tile(const int nb, const float *pl, const plane *p, int C, int K,
                               const float *w, const float *bias, int relu, float *o, ptrdiff_t os,
                               vmask m, int oy, int xb) {
    vf acc[PB];
    const int ckk = C * K * K;
#pragma GCC unroll 8
    for (int j = 0; j < nb; j++) acc[j] = bias ? vset1(bias[j]) : vzero();
    for (int c = 0; c < C; c++) {
        for (int kh = 0; kh < K; kh++) {
            const float *row = pl + ((size_t)c * p->hp + oy + kh) * p->wp + xb;
            const float *wk = w + (c * K + kh) * K;
            for (int kw = 0; kw < K; kw++) {
                vf v = vload(row + kw);
#pragma GCC unroll 8
                for (int j = 0; j < nb; j++) acc[j] = vfma(vset1(wk[j * ckk + kw]), v, acc[j]);
            }
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < nb; j++) vstorem(o + j * os, relu ? vmax(acc[j], vzero()) : acc[j], m);
}

/* out = bias + conv(in, w) (w in its own layout), ReLU when relu != 0. */
static void plane_run(const fm__conv_shape *s, float *out, const float *in, const float *w,
                      const float *bias, int relu, float *scratch) {
    const plane p = plane_plan(s);
    const int C = s->c, OC = s->oc, K = s->k, npix = s->oh * s->ow;
    FM__OMP(omp parallel num_threads(team()))
    {
        int lo, hi;
        split(s->n, thread_count(), thread_id(), &lo, &hi);
        float *pl = scratch + (size_t)thread_id() * p.len;
        for (int n = lo; n < hi; n++) {
            stage_planes(pl, in + (size_t)n * C * s->h * s->w, C, s->h, s->w, &p, s->pad_t, s->pad_l);
            for (int oc = 0; oc < OC; oc += PB) {
                const int nb = imin(PB, OC - oc);
                const float *wo = w + (size_t)oc * C * K * K, *bo = bias ? bias + oc : NULL;
                for (int oy = 0; oy < s->oh; oy++) {
                    for (int xb = 0; xb < s->ow; xb += VL) {
                        float *o = out + ((size_t)n * OC + oc) * npix + (size_t)oy * s->ow + xb;
                        vmask m = vm_first(s->ow - xb);
                        switch (nb) {
#define PLANE_CASE(B_)                                                                             \
    case B_: plane_fwd_tile(B_, pl, &p, C, K, wo, bo, relu, o, npix, m, oy, xb); break;
                            PLANE_CASE(1) PLANE_CASE(2) PLANE_CASE(3) PLANE_CASE(4)
#if PB == 8
                            PLANE_CASE(5) PLANE_CASE(6) PLANE_CASE(7) PLANE_CASE(8)
#endif
#undef PLANE_CASE
                        default: break;
                        }
                    }
                }
            }
        }
    }
}

/* Backward data of such a conv is itself one (rotated, transposed kernel),
 * which needs the kernel in forward layout: wt (C, OC, K, K). */
static void rotate_weights(float *wt, const float *w, int C, int OC, int K) {
    for (int oc = 0; oc < OC; oc++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < K * K; t++)
                wt[((size_t)c * OC + oc) * K * K + t] = w[((size_t)oc * C + c) * K * K + K * K - 1 - t];
}

#define PO (VL == 16 ? 2 : 1) /* output channels per weight-gradient pass */

/* acc (nb, 9 taps, VL) (output channel j's taps js floats apart) += the dout
 * rows of nb output channels times the 9 shifted rows of one input channel,
 * over the image; with withb, accb (nb, VL) += the dout rows too. */
FM__INLINE void plane_bww_tile(const int nb, const int withb, float *acc, ptrdiff_t js,
                               float *accb, const float *pl, const plane *p, const float *g,
                               ptrdiff_t gs, int oh, int ow) {
    vf a[PO][9], ab[PO];
#pragma GCC unroll 2
    for (int j = 0; j < nb; j++) {
        ab[j] = withb ? vload(accb + j * VL) : vzero();
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++) a[j][t] = vload(acc + j * js + t * VL);
    }
    for (int oy = 0; oy < oh; oy++) {
        /* the masked row loads below do not start the hardware prefetcher */
#pragma GCC unroll 2
        for (int j = 0; j < nb; j++) prefetch_row(g + j * gs + (size_t)(oy + 2) * ow, ow);
        for (int xb = 0; xb < ow; xb += VL) {
            vmask m = vm_first(ow - xb);
            vf d[PO];
#pragma GCC unroll 2
            for (int j = 0; j < nb; j++) {
                d[j] = vloadm(g + j * gs + (size_t)oy * ow + xb, m);
                if (withb) ab[j] = vadd(ab[j], d[j]);
            }
#pragma GCC unroll 9
            for (int t = 0; t < 9; t++) {
                /* lanes past the row end meet zero gradients */
                vf v = vload(pl + (size_t)(oy + t / 3) * p->wp + xb + t % 3);
#pragma GCC unroll 2
                for (int j = 0; j < nb; j++) a[j][t] = vfma(d[j], v, a[j][t]);
            }
        }
    }
#pragma GCC unroll 2
    for (int j = 0; j < nb; j++) {
        if (withb) vstore(accb + j * VL, ab[j]);
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++) vstore(acc + j * js + t * VL, a[j][t]);
    }
}

/* Weight and bias gradients of a 3x3 stride-1 conv with few input channels:
 * threads own output channels and visit every image, so each sum has one
 * fixed order. Vector partial sums live in scratch until the end. */
static void plane_bww(float *dw, float *db, const float *dout, const float *in,
                      const fm__conv_shape *s, float *ws) {
    const plane p = plane_plan(s);
    const int C = s->c, OC = s->oc, npix = s->oh * s->ow;
    float *acc = ws, *accb = acc + rup((size_t)OC * C * 9 * VL, 16);
    float *planes = accb + rup((size_t)OC * VL, 16);
    memset(acc, 0, sizeof(float) * ((size_t)OC * C * 9 * VL));
    memset(accb, 0, sizeof(float) * ((size_t)OC * VL));
    const int groups = (OC + PO - 1) / PO;
    FM__OMP(omp parallel num_threads(team()))
    {
        int lo, hi;
        split(groups, thread_count(), thread_id(), &lo, &hi);
        float *pl = planes + (size_t)thread_id() * p.len;
        for (int n = 0; n < s->n && lo < hi; n++) {
            stage_planes(pl, in + (size_t)n * C * s->h * s->w, C, s->h, s->w, &p, s->pad_t, s->pad_l);
            for (int gi = lo; gi < hi; gi++) {
                const int oc = gi * PO, nb = imin(PO, OC - oc);
                const float *g = dout + ((size_t)n * OC + oc) * npix;
                for (int c = 0; c < C; c++) {
                    float *a = acc + ((size_t)oc * C + c) * 9 * VL, *ab = accb + (size_t)oc * VL;
                    const float *plc = pl + (size_t)c * p.hp * p.wp;
                    const ptrdiff_t js = (ptrdiff_t)C * 9 * VL;
                    /* the bias sums ride along with input channel 0 */
                    if (nb == PO && c == 0)
                        plane_bww_tile(PO, 1, a, js, ab, plc, &p, g, npix, s->oh, s->ow);
                    else if (nb == PO)
                        plane_bww_tile(PO, 0, a, js, ab, plc, &p, g, npix, s->oh, s->ow);
                    else
                        for (int j = 0; j < nb; j++)
                            plane_bww_tile(1, c == 0, a + j * js, js, ab + j * VL, plc, &p,
                                           g + (size_t)j * npix, npix, s->oh, s->ow);
                }
            }
        }
        for (int gi = lo; gi < hi; gi++) {
            for (int oc = gi * PO; oc < imin(OC, gi * PO + PO); oc++) {
                for (int c = 0; c < C; c++)
                    for (int t = 0; t < 9; t++)
                        dw[((size_t)oc * C + c) * 9 + t] += vhsum(vload(acc + (((size_t)oc * C + c) * 9 + t) * VL));
                if (db) db[oc] += vhsum(vload(accb + (size_t)oc * VL));
            }
        }
    }
}

/* ---- conv ops ------------------------------------------------------------- */

static size_t conv_fwd_len(const fm__conv_shape *s, int flip) {
    const fm__conv_shape e = flip ? rotated(s) : *s;
    const size_t T = (size_t)fm__kernel_threads();
    if (wino_ok(s)) {
        wino p = wino_plan(e.n, e.c, e.h, e.w, e.oc, e.oh, e.ow, e.pad_t, e.pad_l);
        return rup((size_t)36 * e.c * p.ocs, 16) + T * (p.stg + p.v + p.m);
    }
    if (plane_ok(&e))
        return (flip ? rup((size_t)e.k * e.k * e.c * e.oc, 16) : 0) + T * plane_plan(&e).len;
    direct d = direct_plan(&e);
    return rup((size_t)e.k * e.k * e.c * d.ocs, 16) + T * (d.stg + d.ostg);
}

typedef struct bww {
    int hs, ws, cs, ocs, rows;
    size_t acc, stg, dstg; /* shared floats */
} bww;

static bww bww_plan(const fm__conv_shape *s) {
    bww b;
    b.hs = (s->oh - 1) * s->stride + s->k;
    b.ws = (s->ow - 1) * s->stride + s->k;
    b.cs = (int)rup(s->c, VL);
    b.ocs = (int)rup(s->oc, VL);
    b.rows = s->k * s->k * s->c;
    b.acc = rup((size_t)b.rows * b.ocs, 16);
    b.stg = rup((size_t)b.hs * b.ws * b.cs, 16);
    b.dstg = rup((size_t)s->oh * s->ow * b.ocs, 16);
    return b;
}

static size_t fast_conv2d_workspace(const fm__conv_shape *s) {
    size_t f = conv_fwd_len(s, 0), d = rotated_ok(s) ? conv_fwd_len(s, 1) : 0, w;
    if (wino_ok(s)) {
        wgrad g = wgrad_plan(s);
        w = (size_t)imin(fm__kernel_threads(), WGRAD_THREADS) * wgrad_thread_len(&g);
    } else if (plane_bww_ok(s)) {
        w = rup((size_t)s->oc * s->c * 9 * VL, 16) + rup((size_t)s->oc * VL, 16) +
            (size_t)fm__kernel_threads() * plane_plan(s).len;
    } else {
        bww b = bww_plan(s);
        w = b.acc + b.stg + b.dstg;
    }
    size_t m = f > d ? f : d;
    return (m > w ? m : w) + ALIGN_SLACK;
}

static void fast_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                                const fm__conv_shape *s, int relu, float *work) {
    float *ws = align64(work);
    if (wino_ok(s)) {
        wino p = wino_plan(s->n, s->c, s->h, s->w, s->oc, s->oh, s->ow, s->pad_t, s->pad_l);
        float *U = ws;
        wino_weights(U, w, s->c, s->oc, 0);
        wino_run(&p, out, in, U, b, relu, U + rup((size_t)36 * s->c * p.ocs, 16));
    } else if (plane_ok(s)) {
        plane_run(s, out, in, w, b, relu, ws);
    } else {
        size_t wl = rup((size_t)s->k * s->k * s->c * rup(s->oc, VL), 16);
        pack_weights(ws, w, s->c, s->oc, s->k, 0);
        direct_run(s, out, in, ws, b, relu, ws + wl);
    }
}

static void fast_conv2d_backward_data(float *din, const float *dout, const float *w,
                                      const fm__conv_shape *s, float *work) {
    if (!rotated_ok(s)) {
        /* strided or over-padded convs are not in any network here: reference */
        fm__ref_conv2d_backward_data(din, dout, w, s, work);
        return;
    }
    float *ws = align64(work);
    const fm__conv_shape e = rotated(s);
    if (wino_ok(s)) {
        wino p = wino_plan(e.n, e.c, e.h, e.w, e.oc, e.oh, e.ow, e.pad_t, e.pad_l);
        wino_weights(ws, w, s->c, s->oc, 1);
        wino_run(&p, din, dout, ws, NULL, 0, ws + rup((size_t)36 * e.c * p.ocs, 16));
    } else if (plane_ok(&e)) {
        rotate_weights(ws, w, s->c, s->oc, s->k);
        plane_run(&e, din, dout, ws, NULL, 0, ws + rup((size_t)e.k * e.k * e.c * e.oc, 16));
    } else {
        size_t wl = rup((size_t)e.k * e.k * e.c * rup(e.oc, VL), 16);
        pack_weights(ws, w, s->c, s->oc, s->k, 1);
        direct_run(&e, din, dout, ws, NULL, 0, ws + wl);
    }
}

/* One register tile of weight gradients: rows a[r] (a kernel tap and input
 * channel each) against output-gradient columns, summed over output pixels. */
FM__INLINE void bww_tile(const int mr, const int nv, const float *const *a, int oh, int ow,
                         ptrdiff_t arow, ptrdiff_t as, const float *b, ptrdiff_t ldb, float *c,
                         ptrdiff_t ldc) {
    vf acc[MR][NV];
    tile_zero(acc, mr, nv);
    for (int oy = 0; oy < oh; oy++) {
        const float *ak[MR];
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) ak[r] = a[r] + oy * arow;
        madd(acc, mr, nv, 0, vm_first(VL), ak, as, ow, b + (size_t)oy * ow * ldb, ldb);
    }
    tile_store(acc, mr, nv, 0, vm_first(VL), c, ldc, 1);
}

/* db (oc) += sum of dout (n, oc, npix) over images and pixels; parallel over oc. */
static void bias_grad(float *db, const float *dout, int n, int oc, int npix) {
    FM__OMP(omp parallel for schedule(static) num_threads(team()))
    for (int o = 0; o < oc; o++) {
        float sum = 0.0f;
        for (int i = 0; i < n; i++) {
            const float *d = dout + ((size_t)i * oc + o) * npix;
            vf v = vzero();
            int p = 0;
            for (; p + VL <= npix; p += VL) v = vadd(v, vload(d + p));
            v = vadd(v, vloadm(d + p, vm_first(npix - p)));
            sum += vhsum(v);
        }
        db[o] += sum;
    }
}

/* Weight gradients by the staged direct method, for convs Winograd does not take. */
static void direct_bww(float *dw, const float *dout, const float *in, const fm__conv_shape *s,
                       float *work) {
    const bww b = bww_plan(s);
    float *acc = work, *stg = acc + b.acc, *dstg = stg + b.stg;
    const int K = s->k, C = s->c, OC = s->oc, npix = s->oh * s->ow;
    const int row_blocks = (b.rows + MR - 1) / MR, col_blocks = (b.ocs / VL + NV - 1) / NV;
    memset(acc, 0, sizeof(float) * b.rows * b.ocs);
    FM__OMP(omp parallel num_threads(team()))
    {
        const int tid = thread_id(), nth = thread_count();
        int ilo, ihi, ylo, yhi, plo, phi;
        /* every image: all threads stage it, then each updates its own tiles */
        split(row_blocks * col_blocks, nth, tid, &ilo, &ihi);
        split(b.hs, nth, tid, &ylo, &yhi);
        split(s->oh, nth, tid, &plo, &phi);
        for (int n = 0; n < s->n; n++) {
            stage_rows(stg, in + (size_t)n * C * s->h * s->w, C, s->h, s->w, b.ws, b.cs, s->pad_t,
                       s->pad_l, ylo, yhi);
            stage_rows(dstg, dout + (size_t)n * OC * npix, OC, s->oh, s->ow, s->ow, b.ocs, 0, 0, plo,
                       phi);
            FM__OMP(omp barrier)
            for (int it = ilo; it < ihi; it++) {
                const int rb = it / col_blocks, ob = it % col_blocks * NV;
                const int mr = imin(MR, b.rows - rb * MR), nv = imin(NV, b.ocs / VL - ob);
                const float *a[MR];
                for (int r = 0; r < MR; r++) {
                    int row = imin(rb * MR + r, b.rows - 1), tap = row / C, c = row % C;
                    a[r] = stg + ((size_t)(tap / K) * b.ws + tap % K) * b.cs + c;
                }
#define BWW_CALL(M_, N_)                                                                           \
    bww_tile(M_, N_, a, s->oh, s->ow, (ptrdiff_t)s->stride * b.ws * b.cs,                          \
             (ptrdiff_t)s->stride * b.cs, dstg + ob * VL, b.ocs,                                   \
             acc + (size_t)rb * MR * b.ocs + ob * VL, b.ocs)
                TILE_SWITCH(mr, nv, BWW_CALL)
#undef BWW_CALL
            }
            FM__OMP(omp barrier)
        }
        /* dw (OC, C, K, K) += acc (K*K*C, ocs) transposed */
        int olo, ohi;
        split(OC, nth, tid, &olo, &ohi);
        for (int oc = olo; oc < ohi; oc++) {
            for (int c = 0; c < C; c++)
                for (int tap = 0; tap < K * K; tap++)
                    dw[((size_t)oc * C + c) * K * K + tap] += acc[((size_t)tap * C + c) * b.ocs + oc];
        }
    }
}

static void fast_conv2d_backward_weights(float *dw, float *db, const float *dout, const float *in,
                                         const fm__conv_shape *s, float *work) {
    if (wino_ok(s)) {
        wino_bww(dw, db, dout, in, s, align64(work));
    } else if (plane_bww_ok(s)) {
        plane_bww(dw, db, dout, in, s, align64(work));
    } else {
        direct_bww(dw, dout, in, s, align64(work));
        if (db) bias_grad(db, dout, s->n, s->oc, s->oh * s->ow);
    }
}

/* ---- dense ------------------------------------------------------------- */

/* Dot-product tile for the forward: RN input rows by RO weight rows. */
#if VL == 16
#define RN 4
#define RO 6
#else
#define RN 3
#define RO 4
#endif
#define DENSE_KC 2048 /* input columns per pass, so a block of inputs stays in L2 */
#define DENSE_NB 64   /* input rows per pass */

/* out[i][o] (= first ? b[o] : out[i][o]) + sum_k x[i][k] w[o][k] over k < K;
 * ReLU at the last pass. */
FM__INLINE void dot_tile(const int rn, const int ro, const float *x, ptrdiff_t ldx,
                         const float *w, ptrdiff_t ldw, int K, float *out, ptrdiff_t ldo,
                         const float *b, int first, int last, int relu) {
    vf acc[RN][RO];
#pragma GCC unroll 4
    for (int i = 0; i < rn; i++)
#pragma GCC unroll 6
        for (int o = 0; o < ro; o++) acc[i][o] = vzero();
    int k = 0;
    for (; k + VL <= K; k += VL) {
        vf xv[RN];
#pragma GCC unroll 4
        for (int i = 0; i < rn; i++) xv[i] = vload(x + i * ldx + k);
#pragma GCC unroll 6
        for (int o = 0; o < ro; o++) {
            vf wv = vload(w + o * ldw + k);
#pragma GCC unroll 4
            for (int i = 0; i < rn; i++) acc[i][o] = vfma(xv[i], wv, acc[i][o]);
        }
    }
    if (k < K) {
        vmask m = vm_first(K - k);
#pragma GCC unroll 6
        for (int o = 0; o < ro; o++) {
            vf wv = vloadm(w + o * ldw + k, m);
#pragma GCC unroll 4
            for (int i = 0; i < rn; i++) acc[i][o] = vfma(vloadm(x + i * ldx + k, m), wv, acc[i][o]);
        }
    }
    for (int i = 0; i < rn; i++) {
        for (int o = 0; o < ro; o++) {
            float v = (first ? (b ? b[o] : 0.0f) : out[i * ldo + o]) + vhsum(acc[i][o]);
            out[i * ldo + o] = last && relu && v < 0.0f ? 0.0f : v;
        }
    }
}

static void fast_dense_forward(float *out, const float *in, const float *w, const float *b, int n,
                               int in_dim, int out_dim, int relu) {
    const int oblocks = (out_dim + RO - 1) / RO;
    FM__OMP(omp parallel num_threads(team()))
    {
        int lo, hi;
        split(oblocks, thread_count(), thread_id(), &lo, &hi);
        for (int k0 = 0; k0 < in_dim || k0 == 0; k0 += DENSE_KC) {
            const int kl = imin(DENSE_KC, in_dim - k0), last = k0 + DENSE_KC >= in_dim;
            /* DENSE_NB rows of inputs (512 KB) stay in L2 while every weight row passes */
            for (int n0 = 0; n0 < n; n0 += DENSE_NB)
            for (int ob = lo; ob < hi; ob++) {
                const int o0 = ob * RO, ro = imin(RO, out_dim - o0);
                for (int i0 = n0; i0 < imin(n, n0 + DENSE_NB); i0 += RN) {
                    const int rn = imin(RN, imin(n, n0 + DENSE_NB) - i0);
#define DOT_CALL(N_, O_)                                                                           \
    dot_tile(N_, O_, in + (size_t)i0 * in_dim + k0, in_dim, w + (size_t)o0 * in_dim + k0, in_dim,  \
             kl, out + (size_t)i0 * out_dim + o0, out_dim, b ? b + o0 : NULL, k0 == 0, last, relu)
                    switch (rn * 8 + ro) {
#if RN == 4
#define DOT_O(N_)                                                                                  \
    case N_ * 8 + 1: DOT_CALL(N_, 1); break;                                                       \
    case N_ * 8 + 2: DOT_CALL(N_, 2); break;                                                       \
    case N_ * 8 + 3: DOT_CALL(N_, 3); break;                                                       \
    case N_ * 8 + 4: DOT_CALL(N_, 4); break;                                                       \
    case N_ * 8 + 5: DOT_CALL(N_, 5); break;                                                       \
    case N_ * 8 + 6: DOT_CALL(N_, 6); break;
                        DOT_O(1) DOT_O(2) DOT_O(3) DOT_O(4)
#else
#define DOT_O(N_)                                                                                  \
    case N_ * 8 + 1: DOT_CALL(N_, 1); break;                                                       \
    case N_ * 8 + 2: DOT_CALL(N_, 2); break;                                                       \
    case N_ * 8 + 3: DOT_CALL(N_, 3); break;                                                       \
    case N_ * 8 + 4: DOT_CALL(N_, 4); break;
                        DOT_O(1) DOT_O(2) DOT_O(3)
#endif
#undef DOT_O
#undef DOT_CALL
                    default: break;
                    }
                }
            }
        }
    }
}

/* Columns [j0, j0 + cols) of c (rows, ldc) (+)= a (rows, K) . b (K, ldb),
 * in register tiles; a row r starts at a0 + r*rsa, its k-th value is as apart. */
static void gemm_cols(int rows, int cols, const float *a0, ptrdiff_t rsa, ptrdiff_t as, int K,
                      const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int accumulate) {
    const int nv = (cols + VL - 1) / VL, masked = cols % VL != 0;
    const vmask m = vm_first(cols - (nv - 1) * VL);
    for (int i = 0; i < rows; i += MR) {
        const float *a[MR];
        for (int r = 0; r < MR; r++) a[r] = a0 + (size_t)imin(i + r, rows - 1) * rsa;
        gemm_tile(imin(MR, rows - i), nv, masked, m, a, as, K, b, ldb, c + (size_t)i * ldc, ldc,
                  accumulate);
    }
}

static void fast_dense_backward_data(float *din, const float *dout, const float *w, int n,
                                     int in_dim, int out_dim) {
    /* din (n, in) = dout (n, out) . w (out, in): threads own column blocks */
    const int cb = NV * VL, blocks = (in_dim + cb - 1) / cb;
    FM__OMP(omp parallel num_threads(team()))
    {
        int lo, hi;
        split(blocks, thread_count(), thread_id(), &lo, &hi);
        for (int bk = lo; bk < hi; bk++) {
            int j0 = bk * cb;
            gemm_cols(n, imin(cb, in_dim - j0), dout, out_dim, 1, out_dim, w + j0, in_dim, din + j0,
                      in_dim, 0);
        }
    }
}

static void fast_dense_backward_weights(float *dw, float *db, const float *dout, const float *in,
                                        int n, int in_dim, int out_dim) {
    if (db) {
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out_dim; o++) db[o] += dout[(size_t)i * out_dim + o];
    }
    /* dw (out, in) += dout^T (out, n) . in (n, in): threads own column blocks */
    const int cb = NV * VL, blocks = (in_dim + cb - 1) / cb;
    FM__OMP(omp parallel num_threads(team()))
    {
        int lo, hi;
        split(blocks, thread_count(), thread_id(), &lo, &hi);
        for (int bk = lo; bk < hi; bk++) {
            int j0 = bk * cb;
            gemm_cols(out_dim, imin(cb, in_dim - j0), dout, 1, out_dim, n, in + j0, in_dim, dw + j0,
                      in_dim, 1);
        }
    }
}

/* ---- elementwise, batch norm, pooling -------------------------------------- */

/* Memory-bound loops split into large contiguous chunks per thread. */
#define EW_CHUNK 16384

static void fast_relu_forward(float *out, const float *in, size_t len) {
    const long chunks = (long)((len + EW_CHUNK - 1) / EW_CHUNK);
    FM__OMP(omp parallel for schedule(static) num_threads(team()) if (chunks > 1))
    for (long ch = 0; ch < chunks; ch++) {
        size_t i = (size_t)ch * EW_CHUNK, end = i + EW_CHUNK < len ? i + EW_CHUNK : len;
        /* max(x, +0) gives +0 for -0 and NaN, as x > 0 ? x : 0 does */
        for (; i + VL <= end; i += VL) vstore(out + i, vmax(vload(in + i), vzero()));
        vmask m = vm_first((int)(end - i));
        vstorem(out + i, vmax(vloadm(in + i, m), vzero()), m);
    }
}

static void fast_relu_backward(float *din, const float *dout, const float *out, size_t len) {
    const long chunks = (long)((len + EW_CHUNK - 1) / EW_CHUNK);
    FM__OMP(omp parallel for schedule(static) num_threads(team()) if (chunks > 1))
    for (long ch = 0; ch < chunks; ch++) {
        size_t i = (size_t)ch * EW_CHUNK, end = i + EW_CHUNK < len ? i + EW_CHUNK : len;
        for (; i + VL <= end; i += VL) vstore(din + i, vpos_select(vload(out + i), vload(dout + i)));
        vmask m = vm_first((int)(end - i));
        vstorem(din + i, vpos_select(vloadm(out + i, m), vloadm(dout + i, m)), m);
    }
}

/* VL keep-mask bytes as a vector select: x where the byte is non-zero, else 0. */
FM__INLINE vf keep(const uint8_t *mask, vf x) {
#if VL == 16
    return _mm512_maskz_mov_ps(_mm_test_epi8_mask(_mm_loadu_si128((const __m128i *)mask),
                                                  _mm_set1_epi8(-1)),
                               x);
#else
    __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)mask));
    return _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(b, _mm256_setzero_si256())), x);
#endif
}

static void fast_dropout_apply(float *out, const float *in, const uint8_t *mask, float scale,
                               size_t len) {
    const long chunks = (long)((len + EW_CHUNK - 1) / EW_CHUNK);
    const vf sv = vset1(scale);
    FM__OMP(omp parallel for schedule(static) num_threads(team()) if (chunks > 1))
    for (long ch = 0; ch < chunks; ch++) {
        size_t i = (size_t)ch * EW_CHUNK, end = i + EW_CHUNK < len ? i + EW_CHUNK : len;
        for (; i + VL <= end; i += VL) vstore(out + i, keep(mask + i, vmul(vload(in + i), sv)));
        for (; i < end; i++) out[i] = mask[i] ? in[i] * scale : 0.0f;
    }
}

/* Per-row sums for batch norm: float vectors within a row of hw, double
 * across rows, so channel statistics over n*hw values stay accurate. */
FM__INLINE double row_sum(const float *x, int hw) {
    vf v = vzero();
    int j = 0;
    for (; j + VL <= hw; j += VL) v = vadd(v, vload(x + j));
    return vhsum(vadd(v, vloadm(x + j, vm_first(hw - j))));
}

FM__INLINE double row_sqdev(const float *x, int hw, vf mu) {
    vf v = vzero(), d;
    int j = 0;
    for (; j + VL <= hw; j += VL) {
        d = vsub(vload(x + j), mu);
        v = vfma(d, d, v);
    }
    vmask m = vm_first(hw - j);
    d = vkeep(vsub(vloadm(x + j, m), mu), m);
    return vhsum(vfma(d, d, v));
}

/* y = (x - mu) * a + b over a row */
FM__INLINE void row_affine(float *y, const float *x, int hw, vf mu, vf a, vf b) {
    int j = 0;
    for (; j + VL <= hw; j += VL) vstore(y + j, vfma(vsub(vload(x + j), mu), a, b));
    vmask m = vm_first(hw - j);
    vstorem(y + j, vfma(vsub(vloadm(x + j, m), mu), a, b), m);
}

/* Channels are independent: parallel over them, each visiting its n rows of
 * hw (the second and third passes find them in L2). Rows shorter than a
 * vector (flat inputs) take the reference. */
static void fast_batchnorm_forward_train(float *out, float *mean, float *var, float *invstd,
                                         const float *in, const float *gamma, const float *beta,
                                         int n, int c, int hw, float eps) {
    if (hw < VL) {
        fm__ref_batchnorm_forward_train(out, mean, var, invstd, in, gamma, beta, n, c, hw, eps);
        return;
    }
    const double m = (double)n * hw;
    FM__OMP(omp parallel for schedule(static) num_threads(team()))
    for (int ch = 0; ch < c; ch++) {
        double sum = 0.0, sq = 0.0;
        for (int i = 0; i < n; i++) {
            if (i + 1 < n) prefetch_row(in + ((size_t)(i + 1) * c + ch) * hw, hw);
            sum += row_sum(in + ((size_t)i * c + ch) * hw, hw);
        }
        const float mu = (float)(sum / m);
        for (int i = 0; i < n; i++) sq += row_sqdev(in + ((size_t)i * c + ch) * hw, hw, vset1(mu));
        const double v = sq / m, is = 1.0 / sqrt(v + eps);
        mean[ch] = mu;
        var[ch] = (float)v;
        invstd[ch] = (float)is;
        const vf a = vset1((float)(gamma[ch] * is)), b = vset1(beta[ch]);
        for (int i = 0; i < n; i++) {
            if (i + 1 < n) prefetch_row(out + ((size_t)(i + 1) * c + ch) * hw, hw);
            row_affine(out + ((size_t)i * c + ch) * hw, in + ((size_t)i * c + ch) * hw, hw,
                       vset1(mu), a, b);
        }
    }
}

static void fast_batchnorm_forward_infer(float *out, const float *in, const float *gamma,
                                         const float *beta, const float *mmean,
                                         const float *mvar, int n, int c, int hw, float eps) {
    if (hw < VL) {
        fm__ref_batchnorm_forward_infer(out, in, gamma, beta, mmean, mvar, n, c, hw, eps);
        return;
    }
    FM__OMP(omp parallel for collapse(2) schedule(static) num_threads(team()))
    for (int i = 0; i < n; i++) {
        for (int ch = 0; ch < c; ch++) {
            const double is = 1.0 / sqrt((double)mvar[ch] + eps);
            if (ch + 1 < c) prefetch_row(in + ((size_t)i * c + ch + 1) * hw, hw);
            row_affine(out + ((size_t)i * c + ch) * hw, in + ((size_t)i * c + ch) * hw, hw,
                       vset1(mmean[ch]), vset1((float)(gamma[ch] * is)), vset1(beta[ch]));
        }
    }
}

static void fast_batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                                    const float *in, const float *mean, const float *invstd,
                                    const float *gamma, int n, int c, int hw) {
    if (hw < VL) {
        fm__ref_batchnorm_backward(din, dgamma, dbeta, dout, in, mean, invstd, gamma, n, c, hw);
        return;
    }
    const double m = (double)n * hw;
    FM__OMP(omp parallel for schedule(static) num_threads(team()))
    for (int ch = 0; ch < c; ch++) {
        const vf mu = vset1(mean[ch]);
        double sdy = 0.0, sdyd = 0.0; /* sum dy, sum dy*(x - mean) */
        for (int i = 0; i < n; i++) {
            const float *x = in + ((size_t)i * c + ch) * hw, *dy = dout + ((size_t)i * c + ch) * hw;
            if (i + 1 < n) {
                prefetch_row(x + (size_t)c * hw, hw);
                prefetch_row(dy + (size_t)c * hw, hw);
            }
            vf s1 = vzero(), s2 = vzero();
            int j = 0;
            for (; j + VL <= hw; j += VL) {
                vf g = vload(dy + j);
                s1 = vadd(s1, g);
                s2 = vfma(g, vsub(vload(x + j), mu), s2);
            }
            vmask mk = vm_first(hw - j);
            vf g = vloadm(dy + j, mk);
            s1 = vadd(s1, g);
            s2 = vfma(g, vsub(vloadm(x + j, mk), mu), s2);
            sdy += vhsum(s1);
            sdyd += vhsum(s2);
        }
        /* dx = gamma*invstd/M * (M*dy - sum dy - xhat * sum dy*xhat)
         *    = A*dy + B*(x - mean) + D */
        const double is = invstd[ch], sdyx = sdyd * is, k = gamma[ch] * is / m;
        dbeta[ch] += (float)sdy;
        dgamma[ch] += (float)sdyx;
        const vf A = vset1((float)(gamma[ch] * is)), B = vset1((float)(-k * is * sdyx)),
                 D = vset1((float)(-k * sdy));
        for (int i = 0; i < n; i++) {
            const float *x = in + ((size_t)i * c + ch) * hw, *dy = dout + ((size_t)i * c + ch) * hw;
            float *dx = din + ((size_t)i * c + ch) * hw;
            if (i + 1 < n) prefetch_row(dx + (size_t)c * hw, hw);
            int j = 0;
            for (; j + VL <= hw; j += VL)
                vstore(dx + j, vfma(A, vload(dy + j), vfma(B, vsub(vload(x + j), mu), D)));
            vmask mk = vm_first(hw - j);
            vstorem(dx + j, vfma(A, vloadm(dy + j, mk), vfma(B, vsub(vloadm(x + j, mk), mu), D)), mk);
        }
    }
}

/* 2x2 pooling, VL outputs at a time: the even and odd columns of two input
 * rows are the four window positions, compared in the reference's order with
 * strict > so the first maximum wins. Other pool sizes take the reference. */
static void fast_maxpool_forward(float *out, uint8_t *argmax, const float *in, int n, int c,
                                 int h, int w, int pool) {
    if (pool != 2) {
        fm__ref_maxpool_forward(out, argmax, in, n, c, h, w, pool);
        return;
    }
    const int oh = h / 2, ow = w / 2;
    FM__OMP(omp parallel for schedule(static) num_threads(team()))
    for (long pl = 0; pl < (long)n * c; pl++) {
        const float *x = in + (size_t)pl * h * w;
        float *o = out + (size_t)pl * oh * ow;
        uint8_t *am = argmax + (size_t)pl * oh * ow;
        for (int y = 0; y < oh; y++) {
            const float *r0 = x + (size_t)2 * y * w, *r1 = r0 + w;
            /* the masked loads below do not start the hardware prefetcher */
            for (int i = 0; i < 2 * w; i += 16) _mm_prefetch((const char *)(r0 + 8 * w + i), _MM_HINT_T0);
            for (int xb = 0; xb < ow; xb += VL) {
                const int nx = imin(VL, ow - xb);
                const vmask m0 = vm_first(2 * nx), m1 = vm_first(2 * nx - VL);
                const float *p0 = r0 + 2 * xb, *p1 = r1 + 2 * xb;
                vf a0 = vloadm(p0, m0), a1 = vloadm(p0 + VL, m1);
                vf b0 = vloadm(p1, m0), b1 = vloadm(p1 + VL, m1);
                vf best = veven(a0, a1), idx = vzero(), v;
                v = vodd(a0, a1);
                idx = vsel_gt(v, best, vset1(1.0f), idx);
                best = vsel_gt(v, best, v, best);
                v = veven(b0, b1);
                idx = vsel_gt(v, best, vset1(2.0f), idx);
                best = vsel_gt(v, best, v, best);
                v = vodd(b0, b1);
                idx = vsel_gt(v, best, vset1(3.0f), idx);
                best = vsel_gt(v, best, v, best);
                vstorem(o + (size_t)y * ow + xb, best, vm_first(nx));
                vstore_u8(am + (size_t)y * ow + xb, idx, nx);
            }
        }
    }
}

static void fast_maxpool_backward(float *din, const float *dout, const uint8_t *argmax, int n,
                                  int c, int h, int w, int pool) {
    if (pool != 2) {
        fm__ref_maxpool_backward(din, dout, argmax, n, c, h, w, pool);
        return;
    }
    const int oh = h / 2, ow = w / 2;
    FM__OMP(omp parallel for schedule(static) num_threads(team()))
    for (long pl = 0; pl < (long)n * c; pl++) {
        float *d = din + (size_t)pl * h * w;
        const float *g = dout + (size_t)pl * oh * ow;
        const uint8_t *am = argmax + (size_t)pl * oh * ow;
        for (int y = 0; y < oh; y++) {
            float *r0 = d + (size_t)2 * y * w, *r1 = r0 + w;
            /* masked loads and stores do not start the hardware prefetcher */
            prefetch_row(r0 + 8 * w, 2 * w);
            prefetch_row(g + (size_t)(y + 4) * ow, ow);
            for (int xb = 0; xb < ow; xb += VL) {
                const int nx = imin(VL, ow - xb);
                const vmask m0 = vm_first(2 * nx), m1 = vm_first(2 * nx - VL);
                vf gv = vloadm(g + (size_t)y * ow + xb, vm_first(nx));
                vf idx = vload_u8(am + (size_t)y * ow + xb, nx);
                vf v0 = vsel_eq0(idx, vzero(), gv), v1 = vsel_eq0(idx, vset1(1.0f), gv);
                vf v2 = vsel_eq0(idx, vset1(2.0f), gv), v3 = vsel_eq0(idx, vset1(3.0f), gv);
                vstorem(r0 + 2 * xb, vzip_lo(v0, v1), m0);
                vstorem(r0 + 2 * xb + VL, vzip_hi(v0, v1), m1);
                vstorem(r1 + 2 * xb, vzip_lo(v2, v3), m0);
                vstorem(r1 + 2 * xb + VL, vzip_hi(v2, v3), m1);
            }
            /* an odd last column is outside every window */
            if (w % 2) r0[w - 1] = r1[w - 1] = 0.0f;
        }
        if (h % 2) memset(d + (size_t)(h - 1) * w, 0, sizeof(float) * w);
    }
}

/* ---- the table ------------------------------------------------------------ */

static const fm__kernels table = {
    .name = FM__TABLE_NAME,
    .conv2d_workspace = fast_conv2d_workspace,
    .conv2d_forward = fast_conv2d_forward,
    .conv2d_backward_data = fast_conv2d_backward_data,
    .conv2d_backward_weights = fast_conv2d_backward_weights,
    .dense_forward = fast_dense_forward,
    .dense_backward_data = fast_dense_backward_data,
    .dense_backward_weights = fast_dense_backward_weights,
    .batchnorm_forward_train = fast_batchnorm_forward_train,
    .batchnorm_forward_infer = fast_batchnorm_forward_infer,
    .batchnorm_backward = fast_batchnorm_backward,
    .relu_forward = fast_relu_forward,
    .relu_backward = fast_relu_backward,
    .maxpool_forward = fast_maxpool_forward,
    .maxpool_backward = fast_maxpool_backward,
    .avgpool_forward = fm__ref_avgpool_forward,
    .avgpool_backward = fm__ref_avgpool_backward,
    .dropout_apply = fast_dropout_apply,
    .softmax_xent = fm__ref_softmax_xent,
};

const fm__kernels *FM__TABLE_FN(void) { return &table; }
