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

/* dst[j] = pair(even[j], odd[j]) for j < n (odd NULL: zeros), then 0 up to np. */
static void pack_rows(uint32_t *dst, const float *even, const float *odd, int n, int np) {
    if (odd) {
        for (int j = 0; j < n; j++) dst[j] = pair(even[j], odd[j]);
    } else {
        for (int j = 0; j < n; j++) dst[j] = bf16_bits(even[j]);
    }
    for (int j = n; j < np; j++) dst[j] = 0;
}

/* dst[i] = pair(x[2i], x[2i+1]) over the k values of x (the last odd one 0). */
static void pack_adjacent(uint32_t *dst, const float *x, int k) {
    const int full = k / 2;
    for (int i = 0; i < full; i++) dst[i] = pair(x[2 * i], x[2 * i + 1]);
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

/* Rows of c a task covers: a multiple of TMR. */
#define TASK_ROWS 48

/* Tasks [t_lo, t_hi) of c (m, n; ldc) (+)= a (m, k2 pairs; lda) . b (k2,
 * rup(n, VL) pairs; ldb): task t is column strip t / row_tasks (BNR wide)
 * by row block t % row_tasks (TASK_ROWS high). */
static void gemm_tasks(tile_fn tile, float *c, ptrdiff_t ldc, const uint32_t *a, ptrdiff_t lda,
                       const uint32_t *b, ptrdiff_t ldb, int m, int n, int k2, int accumulate,
                       int t_lo, int t_hi) {
    const int row_tasks = (m + TASK_ROWS - 1) / TASK_ROWS;
    for (int t = t_lo; t < t_hi; t++) {
        const int j0 = t / row_tasks * BNR, nr = imin(BNR, n - j0);
        const int i_lo = t % row_tasks * TASK_ROWS, i_hi = imin(m, i_lo + TASK_ROWS);
        for (int k0 = 0; k0 < k2 || k0 == 0; k0 += KC2) {
            const int kl = imin(KC2, k2 - k0), acc = accumulate || k0 > 0;
            for (int i = i_lo; i < i_hi; i += TMR)
                tile(c + (ptrdiff_t)i * ldc + j0, ldc, a + (ptrdiff_t)i * lda + k0, lda,
                     imin(TMR, i_hi - i), b + (ptrdiff_t)k0 * ldb + j0, ldb, nr, kl, acc);
        }
    }
}

static int gemm_task_count(int m, int n) {
    return (n + BNR - 1) / BNR * ((m + TASK_ROWS - 1) / TASK_ROWS);
}

/* The whole product on one thread. */
static void gemm(tile_fn tile, float *c, ptrdiff_t ldc, const uint32_t *a, ptrdiff_t lda,
                 const uint32_t *b, ptrdiff_t ldb, int m, int n, int k2, int accumulate) {
    gemm_tasks(tile, c, ldc, a, lda, b, ldb, m, n, k2, accumulate, 0, gemm_task_count(m, n));
}

/* This thread's share of the product, inside a parallel region. */
static void gemm_share(tile_fn tile, float *c, ptrdiff_t ldc, const uint32_t *a, ptrdiff_t lda,
                       const uint32_t *b, ptrdiff_t ldb, int m, int n, int k2, int accumulate) {
    int lo, hi;
    split(gemm_task_count(m, n), thread_count(), thread_id(), &lo, &hi);
    gemm_tasks(tile, c, ldc, a, lda, b, ldb, m, n, k2, accumulate, lo, hi);
}

/* ---- workspace --------------------------------------------------------------- */

/* Areas are rounded to 16 words (a 64-byte line); words are uint32 pairs or floats. */
static size_t words(size_t n) { return rup(n, 16); }
static int padn(int n) { return (int)rup((size_t)n, BNR); }

typedef struct conv_dims {
    int kk;     /* K = C*k*k, the im2col rows */
    int k2, c2; /* pairs over K, and over the output channels */
    int p, p2;  /* output pixels per image, and their pairs */
    int pp;     /* p padded to whole tiles */
} conv_dims;

static conv_dims dims(const fm__conv_shape *s) {
    conv_dims d;
    d.kk = s->c * s->k * s->k;
    d.k2 = (d.kk + 1) / 2;
    d.c2 = (s->oc + 1) / 2;
    d.p = s->oh * s->ow;
    d.p2 = (d.p + 1) / 2;
    d.pp = padn(d.p);
    return d;
}

/* Per op: the shared words (the packed kernel) and each thread's. */
static size_t conv_fwd_shared(const fm__conv_shape *s, const conv_dims *d) {
    return words((size_t)s->oc * d->k2);
}
static size_t conv_fwd_thread(const conv_dims *d) {
    return words((size_t)d->k2 * d->pp) + 2 * words((size_t)d->p);
}
static size_t conv_bwd_shared(const conv_dims *d) { return words((size_t)d->kk * d->c2); }
static size_t conv_bwd_thread(const conv_dims *d) {
    return words((size_t)d->c2 * d->pp) + words((size_t)d->kk * d->p);
}
static size_t conv_bww_thread(const fm__conv_shape *s, const conv_dims *d) {
    return words((size_t)d->kk * d->p2) + words((size_t)d->p2 * padn(s->oc)) +
           words((size_t)s->oc * d->kk) + words((size_t)s->oc) + words((size_t)d->p);
}

static size_t bf16_conv2d_workspace(const fm__conv_shape *s) {
    const conv_dims d = dims(s);
    const size_t nt = (size_t)fm__kernel_threads();
    size_t f = conv_fwd_shared(s, &d) + nt * conv_fwd_thread(&d);
    size_t b = conv_bwd_shared(&d) + nt * conv_bwd_thread(&d);
    size_t w = nt * conv_bww_thread(s, &d);
    size_t m = f > b ? f : b;
    return (m > w ? m : w) + ALIGN_SLACK;
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
        const float *src = plane + (size_t)iy * s->w + shift;
        for (int ox = 0; ox < x_lo; ox++) r[ox] = 0.0f;
        if (st == 1) memcpy(r + x_lo, src + x_lo, sizeof(float) * (size_t)(x_hi - x_lo));
        else
            for (int ox = x_lo; ox < x_hi; ox++) r[ox] = src[ox * st];
        for (int ox = x_hi; ox < s->ow; ox++) r[ox] = 0.0f;
    }
}

/* img (c, h, w) += the im2col row kidx (oh*ow) put back where col_row took it. */
static void col_row_add(float *img, const float *row, const fm__conv_shape *s, int kidx) {
    const int kk = s->k * s->k, ci = kidx / kk, ky = kidx % kk / s->k, kx = kidx % s->k;
    float *plane = img + (size_t)ci * s->h * s->w;
    for (int oy = 0; oy < s->oh; oy++) {
        const int iy = oy * s->stride - s->pad_t + ky;
        if (iy < 0 || iy >= s->h) continue;
        const float *r = row + (size_t)oy * s->ow;
        float *dst = plane + (size_t)iy * s->w;
        for (int ox = 0; ox < s->ow; ox++) {
            const int ix = ox * s->stride - s->pad_l + kx;
            if (ix >= 0 && ix < s->w) dst[ix] += r[ox];
        }
    }
}

/* out (N,OC,OH,OW) = b + w (OC, K) . im2col(in): per image, B (k2, pp) = the
 * im2col rows in pairs. */
static void conv_forward(tile_fn tile, float *out, const float *in, const float *w,
                         const float *b, const fm__conv_shape *s, int relu, float *work) {
    const conv_dims d = dims(s);
    uint32_t *wp = (uint32_t *)align64(work);
    float *thread0 = (float *)wp + conv_fwd_shared(s, &d);
    const size_t per = conv_fwd_thread(&d);
    const size_t in_len = (size_t)s->c * s->h * s->w, out_len = (size_t)s->oc * d.p;
    FM__OMP(omp parallel num_threads(team()))
    {
        FM__OMP(omp for schedule(static))
        for (int o = 0; o < s->oc; o++) pack_adjacent(wp + (size_t)o * d.k2, w + (size_t)o * d.kk, d.kk);
        uint32_t *bp = (uint32_t *)(thread0 + (size_t)thread_id() * per);
        float *r0 = (float *)bp + words((size_t)d.k2 * d.pp), *r1 = r0 + words((size_t)d.p);
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
            gemm(tile, o, d.p, wp, d.k2, bp, d.pp, s->oc, d.p, d.k2, 0);
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
static void conv_backward_data(tile_fn tile, float *din, const float *dout, const float *w,
                               const fm__conv_shape *s, float *work) {
    const conv_dims d = dims(s);
    uint32_t *wt = (uint32_t *)align64(work);
    float *thread0 = (float *)wt + conv_bwd_shared(&d);
    const size_t per = conv_bwd_thread(&d);
    const size_t in_len = (size_t)s->c * s->h * s->w, out_len = (size_t)s->oc * d.p;
    FM__OMP(omp parallel num_threads(team()))
    {
        FM__OMP(omp for schedule(static))
        for (int kidx = 0; kidx < d.kk; kidx++) {
            uint32_t *row = wt + (size_t)kidx * d.c2;
            for (int o2 = 0; o2 < s->oc / 2; o2++)
                row[o2] = pair(w[(size_t)2 * o2 * d.kk + kidx], w[(size_t)(2 * o2 + 1) * d.kk + kidx]);
            if (s->oc % 2) row[d.c2 - 1] = bf16_bits(w[(size_t)(s->oc - 1) * d.kk + kidx]);
        }
        uint32_t *bp = (uint32_t *)(thread0 + (size_t)thread_id() * per);
        float *dcol = (float *)bp + words((size_t)d.c2 * d.pp);
        int lo, hi;
        split(s->n, thread_count(), thread_id(), &lo, &hi);
        for (int n = lo; n < hi; n++) {
            const float *g = dout + (size_t)n * out_len;
            for (int o2 = 0; o2 < d.c2; o2++) {
                const int odd = 2 * o2 + 1 < s->oc;
                pack_rows(bp + (size_t)o2 * d.pp, g + (size_t)2 * o2 * d.p,
                          odd ? g + (size_t)(2 * o2 + 1) * d.p : NULL, d.p, d.pp);
            }
            gemm(tile, dcol, d.p, wt, d.c2, bp, d.pp, d.kk, d.p, d.c2, 0);
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
static void conv_backward_weights(tile_fn tile, float *dw, float *db, const float *dout,
                                  const float *in, const fm__conv_shape *s, float *work) {
    const conv_dims d = dims(s);
    const int ocp = padn(s->oc);
    float *thread0 = align64(work);
    const size_t per = conv_bww_thread(s, &d), wlen = (size_t)s->oc * d.kk;
    const size_t in_len = (size_t)s->c * s->h * s->w, out_len = (size_t)s->oc * d.p;
    const size_t a_at = 0, b_at = a_at + words((size_t)d.kk * d.p2);
    const size_t acc_at = b_at + words((size_t)d.p2 * ocp), accb_at = acc_at + words(wlen);
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
        for (int p2 = 0; p2 < d.p2; p2++)
            for (int o = s->oc; o < ocp; o++) bp[(size_t)p2 * ocp + o] = 0;
        int lo, hi;
        split(s->n, thread_count(), thread_id(), &lo, &hi);
        for (int n = lo; n < hi; n++) {
            const float *g = dout + (size_t)n * out_len, *img = in + (size_t)n * in_len;
            for (int kidx = 0; kidx < d.kk; kidx++) {
                col_row(row, img, s, kidx);
                pack_adjacent(ap + (size_t)kidx * d.p2, row, d.p);
            }
            for (int o = 0; o < s->oc; o++) {
                const float *gr = g + (size_t)o * d.p;
                for (int p2 = 0; p2 < d.p / 2; p2++)
                    bp[(size_t)p2 * ocp + o] = pair(gr[2 * p2], gr[2 * p2 + 1]);
                if (d.p % 2) bp[(size_t)(d.p2 - 1) * ocp + o] = bf16_bits(gr[d.p - 1]);
                float sum = 0.0f;
                for (int j = 0; j < d.p; j++) sum += gr[j];
                accb[o] += sum;
            }
            gemm(tile, acc, s->oc, ap, d.p2, bp, ocp, d.kk, s->oc, d.p2, 1);
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
    const size_t n2 = (size_t)(n + 1) / 2, i2 = (size_t)(in_dim + 1) / 2,
                 o2 = (size_t)(out_dim + 1) / 2;
    size_t f = words((size_t)out_dim * i2) + words(i2 * padn(n)) + words((size_t)out_dim * n);
    size_t b = words((size_t)n * o2) + words(o2 * padn(in_dim));
    size_t w = words((size_t)out_dim * n2) + words(n2 * padn(in_dim));
    size_t m = f > b ? f : b;
    return (m > w ? m : w) + ALIGN_SLACK;
}

/* out (N, OUT) = in . w^T + b, as out^T (OUT, N) = w (OUT, IN) . in^T: A =
 * w's rows in pairs, B (i2, pad n) = in's columns in pairs. */
static void dense_forward(tile_fn tile, float *out, const float *in, const float *w,
                          const float *b, int n, int in_dim, int out_dim, int relu, float *work) {
    const int i2 = (in_dim + 1) / 2, np = padn(n);
    uint32_t *ap = (uint32_t *)align64(work), *bp = ap + words((size_t)out_dim * i2);
    float *outt = (float *)(bp + words((size_t)i2 * np));
    FM__OMP(omp parallel num_threads(team()))
    {
        FM__OMP(omp for schedule(static) nowait)
        for (int o = 0; o < out_dim; o++)
            pack_adjacent(ap + (size_t)o * i2, w + (size_t)o * in_dim, in_dim);
        FM__OMP(omp for schedule(static))
        for (int k2 = 0; k2 < i2; k2++) {
            uint32_t *row = bp + (size_t)k2 * np;
            for (int i = 0; i < n; i++) {
                const float *x = in + (size_t)i * in_dim;
                row[i] = 2 * k2 + 1 < in_dim ? pair(x[2 * k2], x[2 * k2 + 1]) : bf16_bits(x[2 * k2]);
            }
            for (int i = n; i < np; i++) row[i] = 0;
        }
        gemm_share(tile, outt, n, ap, i2, bp, np, out_dim, n, i2, 0);
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
static void dense_backward_data(tile_fn tile, float *din, const float *dout, const float *w,
                                int n, int in_dim, int out_dim, float *work) {
    const int o2 = (out_dim + 1) / 2, ip = padn(in_dim);
    uint32_t *ap = (uint32_t *)align64(work), *bp = ap + words((size_t)n * o2);
    FM__OMP(omp parallel num_threads(team()))
    {
        FM__OMP(omp for schedule(static) nowait)
        for (int i = 0; i < n; i++)
            pack_adjacent(ap + (size_t)i * o2, dout + (size_t)i * out_dim, out_dim);
        FM__OMP(omp for schedule(static))
        for (int k2 = 0; k2 < o2; k2++)
            pack_rows(bp + (size_t)k2 * ip, w + (size_t)2 * k2 * in_dim,
                      2 * k2 + 1 < out_dim ? w + (size_t)(2 * k2 + 1) * in_dim : NULL, in_dim, ip);
        gemm_share(tile, din, in_dim, ap, o2, bp, ip, n, in_dim, o2, 0);
    }
}

/* dw (OUT, IN) += dout^T (OUT, N) . in (N, IN), pairs over the batch; db += sum dout. */
static void dense_backward_weights(tile_fn tile, float *dw, float *db, const float *dout,
                                   const float *in, int n, int in_dim, int out_dim, float *work) {
    const int n2 = (n + 1) / 2, ip = padn(in_dim);
    uint32_t *ap = (uint32_t *)align64(work), *bp = ap + words((size_t)out_dim * n2);
    FM__OMP(omp parallel num_threads(team()))
    {
        FM__OMP(omp for schedule(static) nowait)
        for (int o = 0; o < out_dim; o++) {
            uint32_t *row = ap + (size_t)o * n2;
            for (int k2 = 0; k2 < n / 2; k2++)
                row[k2] = pair(dout[(size_t)2 * k2 * out_dim + o], dout[(size_t)(2 * k2 + 1) * out_dim + o]);
            if (n % 2) row[n2 - 1] = bf16_bits(dout[(size_t)(n - 1) * out_dim + o]);
            if (db) {
                float sum = 0.0f;
                for (int i = 0; i < n; i++) sum += dout[(size_t)i * out_dim + o];
                db[o] += sum;
            }
        }
        FM__OMP(omp for schedule(static))
        for (int k2 = 0; k2 < n2; k2++)
            pack_rows(bp + (size_t)k2 * ip, in + (size_t)2 * k2 * in_dim,
                      2 * k2 + 1 < n ? in + (size_t)(2 * k2 + 1) * in_dim : NULL, in_dim, ip);
        gemm_share(tile, dw, in_dim, ap, n2, bp, ip, out_dim, in_dim, n2, 1);
    }
}

/* ---- the tables -------------------------------------------------------------------- */

/* The table's ops on one tile: OPS(emu, tile_emu) defines bf16_emu_conv2d_forward, ... */
#define OPS(tag, TILE)                                                                             \
    static void tag##_conv2d_forward(float *out, const float *in, const float *w,                 \
                                     const float *b, const fm__conv_shape *s, int relu,            \
                                     float *work) {                                                \
        conv_forward(TILE, out, in, w, b, s, relu, work);                                          \
    }                                                                                              \
    static void tag##_conv2d_backward_data(float *din, const float *dout, const float *w,         \
                                           const fm__conv_shape *s, float *work) {                 \
        conv_backward_data(TILE, din, dout, w, s, work);                                           \
    }                                                                                              \
    static void tag##_conv2d_backward_weights(float *dw, float *db, const float *dout,            \
                                              const float *in, const fm__conv_shape *s,            \
                                              float *work) {                                       \
        conv_backward_weights(TILE, dw, db, dout, in, s, work);                                    \
    }                                                                                              \
    static void tag##_dense_forward(float *out, const float *in, const float *w, const float *b,  \
                                    int n, int in_dim, int out_dim, int relu, float *work) {       \
        dense_forward(TILE, out, in, w, b, n, in_dim, out_dim, relu, work);                        \
    }                                                                                              \
    static void tag##_dense_backward_data(float *din, const float *dout, const float *w, int n,   \
                                          int in_dim, int out_dim, float *work) {                  \
        dense_backward_data(TILE, din, dout, w, n, in_dim, out_dim, work);                         \
    }                                                                                              \
    static void tag##_dense_backward_weights(float *dw, float *db, const float *dout,             \
                                             const float *in, int n, int in_dim, int out_dim,      \
                                             float *work) {                                        \
        dense_backward_weights(TILE, dw, db, dout, in, n, in_dim, out_dim, work);                  \
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

OPS(emu, tile_emu)
static const fm__kernels table_emu = TABLE(emu, FM__ISA_NAME "-bf16emu");
const fm__kernels *fm__kernels_table_bf16emu(void) { return &table_emu; }

#ifdef HAVE_TILE_HW
OPS(hw, tile_hw)
static const fm__kernels table_hw = TABLE(hw, "avx512-bf16");
const fm__kernels *fm__kernels_table_bf16_avx512(void) { return &table_hw; }
#elif FM__VL == 16
const fm__kernels *fm__kernels_table_bf16_avx512(void) { return NULL; }
#endif
