/* bf16 training kernels: the conv and dense ops with both factors of every
 * product rounded to bfloat16 and every sum kept in fp32, which is what
 * AVX512_BF16's vdpbf16ps computes. Everything else (the other ops, the
 * weights, the optimizer) stays fp32: the tables below are this build's fp32
 * table with the six matrix-product ops replaced.
 *
 * Each op rounds its operands once into "pair matrices": 32-bit words
 * holding two bf16 along the summed dimension, the even element in the low
 * half (vdpbf16ps's layout). Rounding is to nearest even, subnormals flush to
 * zero (vdpbf16ps reads them as zero) and NaN stays NaN. A register tile then
 * sums over the pairs: per pair, acc += hi*hi then acc += lo*lo, each product
 * exact in fp32 and each sum rounded, the order vdpbf16ps's definition gives.
 * Two tiles implement that step: the emulated one widens both halves and
 * uses two FMAs (any build: exact, since the products are), and in the
 * avx512 build the hardware one is vdpbf16ps itself, for CPUs with
 * AVX512_BF16 (Zen 4/5, Sapphire Rapids). By the instruction's definition
 * the two differ only where a sum is subnormal (the instruction flushes it),
 * so the emulated tables test the numerics of this path on any machine;
 * test_bf16 compares the two where the CPU has the instruction.
 *
 * Convs are matrix products over im2col rows of one image at a time
 * (threads take whole images); dense ops are one product each, threads
 * taking tiles of the output. Sums have a fixed order for a given thread
 * count. */
#include <string.h>

#include "kernels/fast/fast.h"

/* The register tile: TMR rows by NV vectors. Eight-lane builds take 4 rows,
 * not tile.h's 6: widening the pairs needs registers of its own. */
#define TMR (VL == 16 ? 6 : 4)
#define BNR (NV * VL) /* columns of a register tile */
/* pairs summed per pass over a tile's columns: that many rows of a B strip stay in L1 */
#define KC2 (VL == 16 ? 64 : 128)

/* ---- rounding ------------------------------------------------------------- */

static inline uint32_t bf16_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    const uint32_t f = (u & 0x7f800000u) ? u : (u & 0x80000000u); /* subnormal: signed zero */
    const uint32_t rounded = (f + 0x7fffu + ((f >> 16) & 1u)) >> 16;
    return (u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : rounded;
}

static inline uint32_t pair(float even, float odd) {
    return bf16_bits(even) | bf16_bits(odd) << 16;
}

/* The same rounding on 16 values at once (GCC/Clang vector extensions, so
 * every build has it): each lane's bf16 in its top half, its low half zero. */
typedef uint32_t vu16x32 __attribute__((vector_size(64)));
typedef int32_t vs16x32 __attribute__((vector_size(64)));

FM__INLINE vu16x32 vu_load(const float *p) {
    vu16x32 u;
    memcpy(&u, p, sizeof u);
    return u;
}

FM__INLINE vu16x32 bf16_top(vu16x32 u) {
    const vu16x32 normal = (vu16x32)((vs16x32)(u & 0x7f800000u) != 0);
    const vu16x32 f = (u & normal) | (u & 0x80000000u & ~normal);
    const vu16x32 rounded = f + 0x7fffu + ((f >> 16) & 1u);
    const vu16x32 nan = (vu16x32)((vs16x32)((u & 0x7fffffffu) > 0x7f800000u));
    return ((rounded & ~nan) | ((u | 0x00400000u) & nan)) & 0xffff0000u;
}

/* dst[j] = pair(even[j], odd[j]) for j < n (odd NULL: zeros), then 0 up to np. */
static void pack_rows(uint32_t *dst, const float *even, const float *odd, int n, int np) {
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        vu16x32 w = bf16_top(vu_load(even + j)) >> 16;
        if (odd) w |= bf16_top(vu_load(odd + j));
        memcpy(dst + j, &w, sizeof w);
    }
    if (odd) {
        for (; j < n; j++) dst[j] = pair(even[j], odd[j]);
    } else {
        for (; j < n; j++) dst[j] = bf16_bits(even[j]);
    }
    for (j = n; j < np; j++) dst[j] = 0;
}

/* dst[i] = pair(x[2i], x[2i+1]) over the k values of x (the last odd one 0). */
static void pack_adjacent(uint32_t *dst, const float *x, int k) {
    const int full = k / 2;
    int i = 0;
    for (; i + 16 <= full; i += 16) {
        const vu16x32 a = bf16_top(vu_load(x + 2 * i)), b = bf16_top(vu_load(x + 2 * i + 16));
        const vu16x32 even = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20,
                                                     22, 24, 26, 28, 30);
        const vu16x32 odd = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21,
                                                    23, 25, 27, 29, 31);
        const vu16x32 w = (even >> 16) | odd;
        memcpy(dst + i, &w, sizeof w);
    }
    for (; i < full; i++) dst[i] = pair(x[2 * i], x[2 * i + 1]);
    if (k % 2) dst[full] = bf16_bits(x[k - 1]);
}

/* ---- the register tiles ----------------------------------------------------- */

/* c (mr, nr) (+)= a (mr rows of k2 pairs, lda apart) . b (k2 rows of
 * ceil(nr/VL)*VL pairs, ldb apart); rows past mr repeat the last one and are
 * not stored. */
typedef void (*tile_fn)(float *c, ptrdiff_t ldc, const uint32_t *a, ptrdiff_t lda, int mr,
                        const uint32_t *b, ptrdiff_t ldb, int nr, int k2, int accumulate);

/* Zero sums, and the rows of a (rows past mr repeat the last one). */
FM__INLINE void tile_start(vf acc[TMR][NV], const uint32_t *ar[TMR], const uint32_t *a,
                           ptrdiff_t lda, int mr, const int nv) {
#pragma GCC unroll 8
    for (int r = 0; r < TMR; r++) {
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) acc[r][v] = vzero();
        ar[r] = a + (ptrdiff_t)imin(r, mr - 1) * lda;
    }
}

FM__INLINE void tile_finish(vf acc[TMR][NV], float *c, ptrdiff_t ldc, int mr, const int nv,
                            int nr, int accumulate) {
    const int tail = nr - (nv - 1) * VL;
    const vmask m = vm_first(tail);
    for (int r = 0; r < mr; r++) {
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) {
            float *p = c + r * ldc + v * VL;
            if (v == nv - 1 && tail < VL)
                vstorem(p, accumulate ? vadd(vloadm(p, m), acc[r][v]) : acc[r][v], m);
            else
                vstore(p, accumulate ? vadd(vload(p), acc[r][v]) : acc[r][v]);
        }
    }
}

FM__INLINE void tile_emu_nv(float *c, ptrdiff_t ldc, const uint32_t *a, ptrdiff_t lda, int mr,
                            const uint32_t *b, ptrdiff_t ldb, int nr, int k2, int accumulate,
                            const int nv) {
    vf acc[TMR][NV];
    const uint32_t *ar[TMR];
    tile_start(acc, ar, a, lda, mr, nv);
    for (int k = 0; k < k2; k++, b += ldb) {
        /* the odd (high) products first, as vdpbf16ps adds them; B is read
         * twice rather than held, which leaves the registers to the sums */
        vf bx[NV];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) bx[v] = vbp_hi(vbp_load(b + v * VL));
#pragma GCC unroll 8
        for (int r = 0; r < TMR; r++) {
            const vf av = vbp_hi(vbp_bcast(ar[r] + k));
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++) acc[r][v] = vfma(av, bx[v], acc[r][v]);
        }
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) bx[v] = vbp_lo(vbp_load(b + v * VL));
#pragma GCC unroll 8
        for (int r = 0; r < TMR; r++) {
            const vf av = vbp_lo(vbp_bcast(ar[r] + k));
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++) acc[r][v] = vfma(av, bx[v], acc[r][v]);
        }
    }
    tile_finish(acc, c, ldc, mr, nv, nr, accumulate);
}

static void tile_emu(float *c, ptrdiff_t ldc, const uint32_t *a, ptrdiff_t lda, int mr,
                     const uint32_t *b, ptrdiff_t ldb, int nr, int k2, int accumulate) {
    switch ((nr + VL - 1) / VL) {
    case 1: tile_emu_nv(c, ldc, a, lda, mr, b, ldb, nr, k2, accumulate, 1); break;
#if NV >= 2
    case 2: tile_emu_nv(c, ldc, a, lda, mr, b, ldb, nr, k2, accumulate, 2); break;
#endif
#if NV >= 4
    case 3: tile_emu_nv(c, ldc, a, lda, mr, b, ldb, nr, k2, accumulate, 3); break;
    case 4: tile_emu_nv(c, ldc, a, lda, mr, b, ldb, nr, k2, accumulate, 4); break;
#endif
    default: break;
    }
}

#if FM__VL == 16 && defined(FM__HAVE_AMX)
#include "kernels/fast/amx.h"
#define HAVE_AMX 1
#endif

#if FM__VL == 16 && !defined(FM__NO_AVX512BF16)
#define HAVE_TILE_HW 1
/* The same tile on vdpbf16ps. */
__attribute__((target("avx512bf16"))) FM__INLINE void
tile_hw_nv(float *c, ptrdiff_t ldc, const uint32_t *a, ptrdiff_t lda, int mr, const uint32_t *b,
           ptrdiff_t ldb, int nr, int k2, int accumulate, const int nv) {
    vf acc[TMR][NV];
    const uint32_t *ar[TMR];
    tile_start(acc, ar, a, lda, mr, nv);
    for (int k = 0; k < k2; k++, b += ldb) {
        __m512i bp[NV];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) bp[v] = _mm512_loadu_si512(b + v * VL);
#pragma GCC unroll 8
        for (int r = 0; r < TMR; r++) {
            const __m512i av = _mm512_set1_epi32((int)ar[r][k]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                acc[r][v] = _mm512_dpbf16_ps(acc[r][v], (__m512bh)av, (__m512bh)bp[v]);
        }
    }
    tile_finish(acc, c, ldc, mr, nv, nr, accumulate);
}

__attribute__((target("avx512bf16"))) static void
tile_hw(float *c, ptrdiff_t ldc, const uint32_t *a, ptrdiff_t lda, int mr, const uint32_t *b,
        ptrdiff_t ldb, int nr, int k2, int accumulate) {
    switch ((nr + VL - 1) / VL) {
    case 1: tile_hw_nv(c, ldc, a, lda, mr, b, ldb, nr, k2, accumulate, 1); break;
    case 2: tile_hw_nv(c, ldc, a, lda, mr, b, ldb, nr, k2, accumulate, 2); break;
    case 3: tile_hw_nv(c, ldc, a, lda, mr, b, ldb, nr, k2, accumulate, 3); break;
    case 4: tile_hw_nv(c, ldc, a, lda, mr, b, ldb, nr, k2, accumulate, 4); break;
    default: break;
    }
}
#endif

/* ---- the matrix product ------------------------------------------------------ */

/* A product engine: c (m, n; ldc) (+)= a (m rows of k2 pairs, lda apart) .
 * b (k2 rows of pairs, ldb apart), as tasks [t_lo, t_hi) of count(m, n).
 * The ops lay out the operands for any engine: k2 (and lda) a multiple of
 * kpad, its pairs past the product's zero in a and in b; a readable to
 * rup(m, MPAD) rows, b to rup(n, BNR) columns. */
typedef struct engine engine;
struct engine {
    void (*tasks)(const engine *e, float *c, ptrdiff_t ldc, const uint32_t *a, ptrdiff_t lda,
                  const uint32_t *b, ptrdiff_t ldb, int m, int n, int k2, int accumulate, int t_lo,
                  int t_hi);
    int (*count)(int m, int n);
    tile_fn tile; /* the register-tile engines' */
    int kpad;
};
#define MPAD 32
#define KPAD_MAX 16

/* Rows of c a register-tile task covers: a multiple of TMR. */
#define TASK_ROWS 48

/* Register tiles: task t is column strip t / row_tasks (BNR wide) by row
 * block t % row_tasks (TASK_ROWS high). */
static void tile_tasks(const engine *e, float *c, ptrdiff_t ldc, const uint32_t *a, ptrdiff_t lda,
                       const uint32_t *b, ptrdiff_t ldb, int m, int n, int k2, int accumulate,
                       int t_lo, int t_hi) {
    const int row_tasks = (m + TASK_ROWS - 1) / TASK_ROWS;
    for (int t = t_lo; t < t_hi; t++) {
        const int j0 = t / row_tasks * BNR, nr = imin(BNR, n - j0);
        const int i_lo = t % row_tasks * TASK_ROWS, i_hi = imin(m, i_lo + TASK_ROWS);
        for (int k0 = 0; k0 < k2 || k0 == 0; k0 += KC2) {
            const int kl = imin(KC2, k2 - k0), acc = accumulate || k0 > 0;
            for (int i = i_lo; i < i_hi; i += TMR)
                e->tile(c + (ptrdiff_t)i * ldc + j0, ldc, a + (ptrdiff_t)i * lda + k0, lda,
                        imin(TMR, i_hi - i), b + (ptrdiff_t)k0 * ldb + j0, ldb, nr, kl, acc);
        }
    }
}

static int tile_task_count(int m, int n) {
    return (n + BNR - 1) / BNR * ((m + TASK_ROWS - 1) / TASK_ROWS);
}

#ifdef HAVE_AMX
/* AMX: c in blocks of 32 x 32, four 16 x 16 fp32 tiles (tmm0-3) summing
 * tdpbf16ps of two 16-row A tiles (tmm4-5: 16 pairs per row) by two B tiles
 * (tmm6-7: 16 pair rows of 16 columns), 16 pairs at a time. Blocks across
 * c's edges run whole (the operands are readable that far, and the rows and
 * columns past c's depend only on the rows and columns past a's and b's) and
 * go through a staging tile. A task is a strip of 32 columns, all rows. */

#define AMX_STRIP 32

static int amx_task_count(int m, int n) {
    (void)m;
    return (n + AMX_STRIP - 1) / AMX_STRIP;
}

/* c's part of the 16 x 16 tile stage at (ri, cj), inside (m, n): (+)= it. */
static void stage_out(float *c, ptrdiff_t ldc, const float *stage, int ri, int cj, int m, int n,
                      int accumulate) {
    const int nr = imin(16, m - ri), nc = imin(16, n - cj);
    for (int r = 0; r < nr; r++) {
        float *dst = c + (ptrdiff_t)(ri + r) * ldc + cj;
        const float *src = stage + r * 16;
        for (int q = 0; q < nc; q++) dst[q] = accumulate ? dst[q] + src[q] : src[q];
    }
}

__attribute__((target("amx-tile,amx-bf16"))) static void
amx_tasks(const engine *e, float *c, ptrdiff_t ldc, const uint32_t *a, ptrdiff_t lda,
          const uint32_t *b, ptrdiff_t ldb, int m, int n, int k2, int accumulate, int t_lo,
          int t_hi) {
    (void)e;
    if (t_lo >= t_hi) return;
    fm__amx_begin();
    float stage[16 * 16] __attribute__((aligned(64)));
    const size_t sa = (size_t)lda * 4, sb = (size_t)ldb * 4, sc = (size_t)ldc * 4;
    for (int t = t_lo; t < t_hi; t++) {
        const int j0 = t * AMX_STRIP;
        for (int i0 = 0; i0 < m; i0 += 32) {
            /* the c tiles: whole ones straight from c, edge ones staged */
            const int whole = i0 + 32 <= m && j0 + 32 <= n;
            if (whole && accumulate) {
                float *c0 = c + (ptrdiff_t)i0 * ldc + j0;
                _tile_loadd(0, c0, sc);
                _tile_loadd(1, c0 + 16, sc);
                _tile_loadd(2, c0 + 16 * ldc, sc);
                _tile_loadd(3, c0 + 16 * ldc + 16, sc);
            } else {
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
            }
            const uint32_t *a0 = a + (ptrdiff_t)i0 * lda, *a1 = a0 + 16 * lda;
            for (int k = 0; k < k2; k += 16) {
                _tile_loadd(4, a0 + k, sa);
                _tile_loadd(5, a1 + k, sa);
                _tile_loadd(6, b + (ptrdiff_t)k * ldb + j0, sb);
                _tile_loadd(7, b + (ptrdiff_t)k * ldb + j0 + 16, sb);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            if (whole) {
                float *c0 = c + (ptrdiff_t)i0 * ldc + j0;
                _tile_stored(0, c0, sc);
                _tile_stored(1, c0 + 16, sc);
                _tile_stored(2, c0 + 16 * ldc, sc);
                _tile_stored(3, c0 + 16 * ldc + 16, sc);
                continue;
            }
            /* the edge tiles' rows and columns inside c, through stage */
            if (m - i0 > 0 && n - j0 > 0) {
                _tile_stored(0, stage, 64);
                stage_out(c, ldc, stage, i0, j0, m, n, accumulate);
            }
            if (m - i0 > 0 && n - j0 > 16) {
                _tile_stored(1, stage, 64);
                stage_out(c, ldc, stage, i0, j0 + 16, m, n, accumulate);
            }
            if (m - i0 > 16 && n - j0 > 0) {
                _tile_stored(2, stage, 64);
                stage_out(c, ldc, stage, i0 + 16, j0, m, n, accumulate);
            }
            if (m - i0 > 16 && n - j0 > 16) {
                _tile_stored(3, stage, 64);
                stage_out(c, ldc, stage, i0 + 16, j0 + 16, m, n, accumulate);
            }
        }
    }
    fm__amx_end();
}
#endif

/* The whole product on one thread. */
static void gemm(const engine *e, float *c, ptrdiff_t ldc, const uint32_t *a, ptrdiff_t lda,
                 const uint32_t *b, ptrdiff_t ldb, int m, int n, int k2, int accumulate) {
    e->tasks(e, c, ldc, a, lda, b, ldb, m, n, k2, accumulate, 0, e->count(m, n));
}

/* This thread's share of the product, inside a parallel region. */
static void gemm_share(const engine *e, float *c, ptrdiff_t ldc, const uint32_t *a,
                       ptrdiff_t lda, const uint32_t *b, ptrdiff_t ldb, int m, int n, int k2,
                       int accumulate) {
    int lo, hi;
    split(e->count(m, n), thread_count(), thread_id(), &lo, &hi);
    e->tasks(e, c, ldc, a, lda, b, ldb, m, n, k2, accumulate, lo, hi);
}

/* ---- workspace --------------------------------------------------------------- */

/* Areas are rounded to 16 words (a 64-byte line); words are uint32 pairs or
 * floats. Sizes allow for any engine: pairs rounded up to KPAD_MAX, the
 * rows of a to MPAD. */
static size_t words(size_t n) { return rup(n, 16); }
static int padn(int n) { return (int)rup((size_t)n, BNR); }
/* k2 pairs padded for engine e, or for any engine (e NULL: workspace sizes). */
static int kpad(const engine *e, int k2) { return (int)rup((size_t)k2, e ? e->kpad : KPAD_MAX); }
static size_t arows(int m) { return rup((size_t)m, MPAD); }

typedef struct conv_dims {
    int kk;     /* K = C*k*k, the im2col rows */
    int k2, c2; /* pairs over K, and over the output channels */
    int p, p2;  /* output pixels per image, and their pairs */
    int pp;     /* p padded to whole tiles */
    int k2p, c2p, p2p; /* k2, c2, p2 padded for the engine */
} conv_dims;

static conv_dims dims(const fm__conv_shape *s, const engine *e) {
    conv_dims d;
    d.kk = s->c * s->k * s->k;
    d.k2 = (d.kk + 1) / 2;
    d.c2 = (s->oc + 1) / 2;
    d.p = s->oh * s->ow;
    d.p2 = (d.p + 1) / 2;
    d.pp = padn(d.p);
    d.k2p = kpad(e, d.k2), d.c2p = kpad(e, d.c2), d.p2p = kpad(e, d.p2);
    return d;
}

/* Per op: the shared words (the packed kernel) and each thread's. */
static size_t conv_fwd_shared(const fm__conv_shape *s, const conv_dims *d) {
    return words(arows(s->oc) * d->k2p);
}
static size_t conv_fwd_thread(const conv_dims *d) {
    return words((size_t)d->k2p * d->pp) + 2 * words((size_t)d->p);
}
static size_t conv_bwd_shared(const conv_dims *d) { return words(arows(d->kk) * d->c2p); }
static size_t conv_bwd_thread(const conv_dims *d) {
    return words((size_t)d->c2p * d->pp) + words((size_t)d->kk * d->p);
}
static size_t conv_bww_thread(const fm__conv_shape *s, const conv_dims *d) {
    return words(arows(d->kk) * d->p2p) + words((size_t)d->p2p * padn(s->oc)) +
           words((size_t)s->oc * d->kk) + words((size_t)s->oc) + words((size_t)d->p);
}

static size_t bf16_conv2d_workspace(const fm__conv_shape *s) {
    const conv_dims d = dims(s, NULL);
    const size_t nt = (size_t)fm__kernel_threads();
    size_t f = conv_fwd_shared(s, &d) + nt * conv_fwd_thread(&d);
    size_t b = conv_bwd_shared(&d) + nt * conv_bwd_thread(&d);
    size_t w = nt * conv_bww_thread(s, &d);
    size_t m = f > b ? f : b;
    return (m > w ? m : w) + ALIGN_SLACK;
}

/* x[0] + ... + x[n-1], in VL lanes, then across them. */
static float row_sum(const float *x, int n) {
    vf acc = vzero();
    int j = 0;
    for (; j + VL <= n; j += VL) acc = vadd(acc, vload(x + j));
    if (j < n) acc = vadd(acc, vloadm(x + j, vm_first(n - j)));
    return vhsum(acc);
}

/* row[j] = 0 for j in [from, to). */
static void zero_words(uint32_t *row, int from, int to) {
    if (to > from) memset(row + from, 0, sizeof(uint32_t) * (size_t)(to - from));
}

/* ---- convs --------------------------------------------------------------------- */

/* row (oh*ow) = im2col row kidx of one image img (c, h, w): the input under
 * kernel tap kidx = (ci*k + ky)*k + kx at every output pixel, 0 in the padding. */
static void col_row(float *row, const float *img, const fm__conv_shape *s, int kidx) {
    const int kk = s->k * s->k, ci = kidx / kk, ky = kidx % kk / s->k, kx = kidx % s->k;
    const float *plane = img + (size_t)ci * s->h * s->w;
    /* the output columns whose input column ox*stride - pad_l + kx is inside */
    const int shift = kx - s->pad_l, st = s->stride;
    const int x_lo = shift >= 0 ? 0 : (-shift + st - 1) / st;
    const int x_hi = imin(s->ow, s->w - shift <= 0 ? 0 : (s->w - shift - 1) / st + 1);
    for (int oy = 0; oy < s->oh; oy++) {
        float *r = row + (size_t)oy * s->ow;
        const int iy = oy * st - s->pad_t + ky;
        if (iy < 0 || iy >= s->h || x_lo >= x_hi) {
            memset(r, 0, sizeof(float) * (size_t)s->ow);
            continue;
        }
        const float *src = plane + (size_t)iy * s->w;
        for (int ox = 0; ox < x_lo; ox++) r[ox] = 0.0f;
        if (st == 1) memcpy(r + x_lo, src + x_lo + shift, sizeof(float) * (size_t)(x_hi - x_lo));
        else
            for (int ox = x_lo; ox < x_hi; ox++) r[ox] = src[ox * st + shift];
        for (int ox = x_hi; ox < s->ow; ox++) r[ox] = 0.0f;
    }
}

/* img (c, h, w) += the im2col row kidx (oh*ow) put back where col_row took it. */
static void col_row_add(float *img, const float *row, const fm__conv_shape *s, int kidx) {
    const int kk = s->k * s->k, ci = kidx / kk, ky = kidx % kk / s->k, kx = kidx % s->k;
    float *plane = img + (size_t)ci * s->h * s->w;
    /* the output columns whose input column ox*stride - pad_l + kx is inside (as col_row) */
    const int shift = kx - s->pad_l, st = s->stride;
    const int x_lo = shift >= 0 ? 0 : (-shift + st - 1) / st;
    const int x_hi = imin(s->ow, s->w - shift <= 0 ? 0 : (s->w - shift - 1) / st + 1);
    for (int oy = 0; oy < s->oh; oy++) {
        const int iy = oy * st - s->pad_t + ky;
        if (iy < 0 || iy >= s->h) continue;
        const float *r = row + (size_t)oy * s->ow;
        float *dst = plane + (size_t)iy * s->w;
        if (st == 1) {
            int ox = x_lo;
            for (; ox + VL <= x_hi; ox += VL)
                vstore(dst + ox + shift, vadd(vload(dst + ox + shift), vload(r + ox)));
            if (ox < x_hi) {
                const vmask m = vm_first(x_hi - ox);
                vstorem(dst + ox + shift, vadd(vloadm(dst + ox + shift, m), vloadm(r + ox, m)), m);
            }
        } else {
            for (int ox = x_lo; ox < x_hi; ox++) dst[ox * st + shift] += r[ox];
        }
    }
}

/* out (N,OC,OH,OW) = b + w (OC, K) . im2col(in): per image, B (k2, pp) = the
 * im2col rows in pairs. */
static void conv_forward(const engine *e, float *out, const float *in, const float *w,
                         const float *b, const fm__conv_shape *s, int relu, float *work) {
    const conv_dims d = dims(s, e);
    uint32_t *wp = (uint32_t *)align64(work);
    float *thread0 = (float *)wp + conv_fwd_shared(s, &d);
    const size_t per = conv_fwd_thread(&d);
    const size_t in_len = (size_t)s->c * s->h * s->w, out_len = (size_t)s->oc * d.p;
    FM__OMP(omp parallel num_threads(team()))
    {
        FM__OMP(omp for schedule(static))
        for (int o = 0; o < s->oc; o++) {
            pack_adjacent(wp + (size_t)o * d.k2p, w + (size_t)o * d.kk, d.kk);
            zero_words(wp + (size_t)o * d.k2p, d.k2, d.k2p);
        }
        FM__OMP(omp single)
        zero_words(wp, s->oc * d.k2p, (int)arows(s->oc) * d.k2p);
        uint32_t *bp = (uint32_t *)(thread0 + (size_t)thread_id() * per);
        float *r0 = (float *)bp + words((size_t)d.k2p * d.pp), *r1 = r0 + words((size_t)d.p);
        zero_words(bp, d.k2 * d.pp, d.k2p * d.pp);
        int lo, hi;
        split(s->n, thread_count(), thread_id(), &lo, &hi);
        for (int n = lo; n < hi; n++) {
            const float *img = in + (size_t)n * in_len;
            for (int k2 = 0; k2 < d.k2; k2++) {
                const int odd = 2 * k2 + 1 < d.kk;
                col_row(r0, img, s, 2 * k2);
                if (odd) col_row(r1, img, s, 2 * k2 + 1);
                pack_rows(bp + (size_t)k2 * d.pp, r0, odd ? r1 : NULL, d.p, d.pp);
            }
            float *o = out + (size_t)n * out_len;
            gemm(e, o, d.p, wp, d.k2p, bp, d.pp, s->oc, d.p, d.k2p, 0);
            for (int oc = 0; oc < s->oc; oc++) {
                float *row = o + (size_t)oc * d.p, bias = b ? b[oc] : 0.0f;
                for (int j = 0; j < d.p; j++) {
                    const float v = row[j] + bias;
                    row[j] = relu && v < 0.0f ? 0.0f : v;
                }
            }
        }
    }
}

/* din = col2im(w^T (K, OC) . dout): per image, A = w^T with pairs over the
 * output channels, B (c2, pp) = dout's channel rows in pairs, C = the
 * im2col-shaped gradient (K, P). */
static void conv_backward_data(const engine *e, float *din, const float *dout, const float *w,
                               const fm__conv_shape *s, float *work) {
    const conv_dims d = dims(s, e);
    uint32_t *wt = (uint32_t *)align64(work);
    float *thread0 = (float *)wt + conv_bwd_shared(&d);
    const size_t per = conv_bwd_thread(&d);
    const size_t in_len = (size_t)s->c * s->h * s->w, out_len = (size_t)s->oc * d.p;
    FM__OMP(omp parallel num_threads(team()))
    {
        FM__OMP(omp for schedule(static))
        for (int kidx = 0; kidx < d.kk; kidx++) {
            uint32_t *row = wt + (size_t)kidx * d.c2p;
            for (int o2 = 0; o2 < s->oc / 2; o2++)
                row[o2] = pair(w[(size_t)2 * o2 * d.kk + kidx], w[(size_t)(2 * o2 + 1) * d.kk + kidx]);
            if (s->oc % 2) row[d.c2 - 1] = bf16_bits(w[(size_t)(s->oc - 1) * d.kk + kidx]);
            zero_words(row, d.c2, d.c2p);
        }
        FM__OMP(omp single)
        zero_words(wt, d.kk * d.c2p, (int)arows(d.kk) * d.c2p);
        uint32_t *bp = (uint32_t *)(thread0 + (size_t)thread_id() * per);
        float *dcol = (float *)bp + words((size_t)d.c2p * d.pp);
        zero_words(bp, d.c2 * d.pp, d.c2p * d.pp);
        int lo, hi;
        split(s->n, thread_count(), thread_id(), &lo, &hi);
        for (int n = lo; n < hi; n++) {
            const float *g = dout + (size_t)n * out_len;
            for (int o2 = 0; o2 < d.c2; o2++) {
                const int odd = 2 * o2 + 1 < s->oc;
                pack_rows(bp + (size_t)o2 * d.pp, g + (size_t)2 * o2 * d.p,
                          odd ? g + (size_t)(2 * o2 + 1) * d.p : NULL, d.p, d.pp);
            }
            gemm(e, dcol, d.p, wt, d.c2p, bp, d.pp, d.kk, d.p, d.c2p, 0);
            float *img = din + (size_t)n * in_len;
            memset(img, 0, sizeof(float) * in_len);
            for (int kidx = 0; kidx < d.kk; kidx++)
                col_row_add(img, dcol + (size_t)kidx * d.p, s, kidx);
        }
    }
}

/* dw (OC, K) += sum over images of dout (OC, P) . im2col(in)^T (P, K), pairs
 * over the pixels, computed as its transpose, im2col(in) (K, P) . dout^T
 * (P, OC): the im2col rows pair up where they lie and only dout's fewer
 * values are scattered. db += sum dout. Each thread sums its images into its
 * own area; the areas are then added in thread order. */
static void conv_backward_weights(const engine *e, float *dw, float *db, const float *dout,
                                  const float *in, const fm__conv_shape *s, float *work) {
    const conv_dims d = dims(s, e);
    const int ocp = padn(s->oc);
    float *thread0 = align64(work);
    const size_t per = conv_bww_thread(s, &d), wlen = (size_t)s->oc * d.kk;
    const size_t in_len = (size_t)s->c * s->h * s->w, out_len = (size_t)s->oc * d.p;
    const size_t a_at = 0, b_at = a_at + words(arows(d.kk) * d.p2p);
    const size_t acc_at = b_at + words((size_t)d.p2p * ocp), accb_at = acc_at + words(wlen);
    const size_t row_at = accb_at + words((size_t)s->oc);
    int nt = 1;
    FM__OMP(omp parallel num_threads(team()))
    {
        FM__OMP(omp single)
        nt = thread_count();
        float *area = thread0 + (size_t)thread_id() * per;
        uint32_t *ap = (uint32_t *)(area + a_at), *bp = (uint32_t *)(area + b_at);
        float *acc = area + acc_at, *accb = area + accb_at, *row = area + row_at;
        memset(acc, 0, sizeof(float) * wlen);
        memset(accb, 0, sizeof(float) * (size_t)s->oc);
        for (int p2 = 0; p2 < d.p2; p2++) zero_words(bp + (size_t)p2 * ocp, s->oc, ocp);
        zero_words(bp, d.p2 * ocp, d.p2p * ocp);
        zero_words(ap, d.kk * d.p2p, (int)arows(d.kk) * d.p2p);
        int lo, hi;
        split(s->n, thread_count(), thread_id(), &lo, &hi);
        for (int n = lo; n < hi; n++) {
            const float *g = dout + (size_t)n * out_len, *img = in + (size_t)n * in_len;
            for (int kidx = 0; kidx < d.kk; kidx++) {
                col_row(row, img, s, kidx);
                pack_adjacent(ap + (size_t)kidx * d.p2p, row, d.p);
                zero_words(ap + (size_t)kidx * d.p2p, d.p2, d.p2p);
            }
            for (int o = 0; o < s->oc; o++) {
                const float *gr = g + (size_t)o * d.p;
                for (int p2 = 0; p2 < d.p / 2; p2++)
                    bp[(size_t)p2 * ocp + o] = pair(gr[2 * p2], gr[2 * p2 + 1]);
                if (d.p % 2) bp[(size_t)(d.p2 - 1) * ocp + o] = bf16_bits(gr[d.p - 1]);
                accb[o] += row_sum(gr, d.p);
            }
            gemm(e, acc, s->oc, ap, d.p2p, bp, ocp, d.kk, s->oc, d.p2p, 1);
        }
        FM__OMP(omp barrier)
        FM__OMP(omp for schedule(static))
        for (int o = 0; o < s->oc; o++) {
            for (int kidx = 0; kidx < d.kk; kidx++) {
                float sum = 0.0f;
                for (int t = 0; t < nt; t++)
                    sum += thread0[(size_t)t * per + acc_at + (size_t)kidx * s->oc + o];
                dw[(size_t)o * d.kk + kidx] += sum;
            }
            if (db) {
                float sum = 0.0f;
                for (int t = 0; t < nt; t++) sum += thread0[(size_t)t * per + accb_at + o];
                db[o] += sum;
            }
        }
    }
}

/* ---- dense ----------------------------------------------------------------------- */

static size_t bf16_dense_workspace(int n, int in_dim, int out_dim) {
    const size_t n2 = (size_t)kpad(NULL, (n + 1) / 2), i2 = (size_t)kpad(NULL, (in_dim + 1) / 2),
                 o2 = (size_t)kpad(NULL, (out_dim + 1) / 2);
    size_t f = words(arows(out_dim) * i2) + words(i2 * padn(n)) + words((size_t)out_dim * n);
    size_t b = words(arows(n) * o2) + words(o2 * padn(in_dim));
    size_t w = words(arows(out_dim) * n2) + words(n2 * padn(in_dim));
    size_t m = f > b ? f : b;
    return (m > w ? m : w) + ALIGN_SLACK;
}

/* a's rows [0, m) of k values each from x (rows ldx apart, or with
 * transposed: x[j * ldx + i] for row i), in pairs, k2p per row (zeros past
 * the values), and zero rows up to arows(m): this thread's share. */
static void pack_a(uint32_t *a, const float *x, size_t ldx, int transposed, int m, int k, int k2p) {
    const int k2 = (k + 1) / 2, rows = (int)arows(m);
    FM__OMP(omp for schedule(static) nowait)
    for (int i = 0; i < rows; i++) {
        uint32_t *row = a + (size_t)i * k2p;
        if (i >= m) {
            zero_words(row, 0, k2p);
            continue;
        }
        if (!transposed) {
            pack_adjacent(row, x + (size_t)i * ldx, k);
        } else {
            for (int j = 0; j < k / 2; j++)
                row[j] = pair(x[(size_t)2 * j * ldx + i], x[(size_t)(2 * j + 1) * ldx + i]);
            if (k % 2) row[k2 - 1] = bf16_bits(x[(size_t)(k - 1) * ldx + i]);
        }
        zero_words(row, k2, k2p);
    }
}

/* b's pair rows [0, k2p) from the rows of x (n values each, ldx apart; k of
 * them), row r from x's rows 2r and 2r + 1, padded with zeros to ldb
 * columns and k2p rows: this thread's share. */
static void pack_b(uint32_t *b, const float *x, size_t ldx, int k, int n, int ldb, int k2p) {
    FM__OMP(omp for schedule(static))
    for (int r = 0; r < k2p; r++) {
        if (2 * r >= k) {
            zero_words(b + (size_t)r * ldb, 0, ldb);
            continue;
        }
        pack_rows(b + (size_t)r * ldb, x + (size_t)2 * r * ldx,
                  2 * r + 1 < k ? x + (size_t)(2 * r + 1) * ldx : NULL, n, ldb);
    }
}

/* out (N, OUT) = in . w^T + b, as out^T (OUT, N) = w (OUT, IN) . in^T: A =
 * w's rows in pairs, B (i2, pad n) = in's columns in pairs. */
static void dense_forward(const engine *e, float *out, const float *in, const float *w,
                          const float *b, int n, int in_dim, int out_dim, int relu, float *work) {
    const int i2 = (in_dim + 1) / 2, i2p = kpad(e, i2), np = padn(n);
    uint32_t *ap = (uint32_t *)align64(work), *bp = ap + words(arows(out_dim) * i2p);
    float *outt = (float *)(bp + words((size_t)i2p * np));
    FM__OMP(omp parallel num_threads(team()))
    {
        pack_a(ap, w, (size_t)in_dim, 0, out_dim, in_dim, i2p);
        FM__OMP(omp for schedule(static))
        for (int k2 = 0; k2 < i2p; k2++) {
            uint32_t *row = bp + (size_t)k2 * np;
            for (int i = 0; i < n && k2 < i2; i++) {
                const float *x = in + (size_t)i * in_dim;
                row[i] = 2 * k2 + 1 < in_dim ? pair(x[2 * k2], x[2 * k2 + 1]) : bf16_bits(x[2 * k2]);
            }
            zero_words(row, k2 < i2 ? n : 0, np);
        }
        gemm_share(e, outt, n, ap, i2p, bp, np, out_dim, n, i2p, 0);
        FM__OMP(omp barrier)
        FM__OMP(omp for schedule(static))
        for (int i = 0; i < n; i++) {
            for (int o = 0; o < out_dim; o++) {
                const float v = outt[(size_t)o * n + i] + (b ? b[o] : 0.0f);
                out[(size_t)i * out_dim + o] = relu && v < 0.0f ? 0.0f : v;
            }
        }
    }
}

/* din (N, IN) = dout (N, OUT) . w (OUT, IN): A = dout's rows in pairs, B
 * (o2, pad IN) = w's rows two by two. */
static void dense_backward_data(const engine *e, float *din, const float *dout, const float *w,
                                int n, int in_dim, int out_dim, float *work) {
    const int o2p = kpad(e, (out_dim + 1) / 2), ip = padn(in_dim);
    uint32_t *ap = (uint32_t *)align64(work), *bp = ap + words(arows(n) * o2p);
    FM__OMP(omp parallel num_threads(team()))
    {
        pack_a(ap, dout, (size_t)out_dim, 0, n, out_dim, o2p);
        pack_b(bp, w, (size_t)in_dim, out_dim, in_dim, ip, o2p);
        gemm_share(e, din, in_dim, ap, o2p, bp, ip, n, in_dim, o2p, 0);
    }
}

/* dw (OUT, IN) += dout^T (OUT, N) . in (N, IN), pairs over the batch; db += sum dout. */
static void dense_backward_weights(const engine *e, float *dw, float *db, const float *dout,
                                   const float *in, int n, int in_dim, int out_dim, float *work) {
    const int n2p = kpad(e, (n + 1) / 2), ip = padn(in_dim);
    uint32_t *ap = (uint32_t *)align64(work), *bp = ap + words(arows(out_dim) * n2p);
    FM__OMP(omp parallel num_threads(team()))
    {
        pack_a(ap, dout, (size_t)out_dim, 1, out_dim, n, n2p);
        if (db) {
            FM__OMP(omp for schedule(static) nowait)
            for (int o = 0; o < out_dim; o++) {
                float sum = 0.0f;
                for (int i = 0; i < n; i++) sum += dout[(size_t)i * out_dim + o];
                db[o] += sum;
            }
        }
        pack_b(bp, in, (size_t)in_dim, n, in_dim, ip, n2p);
        gemm_share(e, dw, in_dim, ap, n2p, bp, ip, out_dim, in_dim, n2p, 1);
    }
}

/* ---- the tables -------------------------------------------------------------------- */

/* The table's ops on one engine: OPS(emu, &engine_emu) defines emu_conv2d_forward, ... */
#define OPS(tag, ENGINE)                                                                             \
    static void tag##_conv2d_forward(float *out, const float *in, const float *w,                 \
                                     const float *b, const fm__conv_shape *s, int relu,            \
                                     float *work) {                                                \
        conv_forward(ENGINE, out, in, w, b, s, relu, work);                                          \
    }                                                                                              \
    static void tag##_conv2d_backward_data(float *din, const float *dout, const float *w,         \
                                           const fm__conv_shape *s, float *work) {                 \
        conv_backward_data(ENGINE, din, dout, w, s, work);                                           \
    }                                                                                              \
    static void tag##_conv2d_backward_weights(float *dw, float *db, const float *dout,            \
                                              const float *in, const fm__conv_shape *s,            \
                                              float *work) {                                       \
        conv_backward_weights(ENGINE, dw, db, dout, in, s, work);                                    \
    }                                                                                              \
    static void tag##_dense_forward(float *out, const float *in, const float *w, const float *b,  \
                                    int n, int in_dim, int out_dim, int relu, float *work) {       \
        dense_forward(ENGINE, out, in, w, b, n, in_dim, out_dim, relu, work);                        \
    }                                                                                              \
    static void tag##_dense_backward_data(float *din, const float *dout, const float *w, int n,   \
                                          int in_dim, int out_dim, float *work) {                  \
        dense_backward_data(ENGINE, din, dout, w, n, in_dim, out_dim, work);                         \
    }                                                                                              \
    static void tag##_dense_backward_weights(float *dw, float *db, const float *dout,             \
                                             const float *in, int n, int in_dim, int out_dim,      \
                                             float *work) {                                        \
        dense_backward_weights(ENGINE, dw, db, dout, in, n, in_dim, out_dim, work);                  \
    }

#define TABLE(tag, NAME)                                                                           \
    {                                                                                              \
        .name = NAME, .conv2d_workspace = bf16_conv2d_workspace,                                   \
        .conv2d_forward = tag##_conv2d_forward,                                                    \
        .conv2d_backward_data = tag##_conv2d_backward_data,                                        \
        .conv2d_backward_weights = tag##_conv2d_backward_weights,                                  \
        .dense_workspace = bf16_dense_workspace, .dense_forward = tag##_dense_forward,             \
        .dense_backward_data = tag##_dense_backward_data,                                          \
        .dense_backward_weights = tag##_dense_backward_weights, FM__FAST_SHARED_OPS                \
        FM__FAST_INT8_OPS                                                                          \
    }

static const engine engine_emu = {tile_tasks, tile_task_count, tile_emu, 1};
OPS(emu, &engine_emu)
static const fm__kernels table_emu = TABLE(emu, FM__ISA_NAME "-bf16emu");
const fm__kernels *fm__kernels_table_bf16emu(void) { return &table_emu; }

#ifdef HAVE_TILE_HW
static const engine engine_hw = {tile_tasks, tile_task_count, tile_hw, 1};
OPS(hw, &engine_hw)
static const fm__kernels table_hw = TABLE(hw, "avx512-bf16");
const fm__kernels *fm__kernels_table_bf16_avx512(void) { return &table_hw; }
#elif FM__VL == 16
const fm__kernels *fm__kernels_table_bf16_avx512(void) { return NULL; }
#endif

#ifdef HAVE_AMX
static const engine engine_amx = {amx_tasks, amx_task_count, NULL, 16};
OPS(amx, &engine_amx)
static const fm__kernels table_amx = TABLE(amx, "amx-bf16");
const fm__kernels *fm__kernels_table_bf16_amx(void) { return &table_amx; }
#elif FM__VL == 16
const fm__kernels *fm__kernels_table_bf16_amx(void) { return NULL; }
#endif
