/* Dense layers: the forward as register tiles of dot products (input rows
 * by weight rows, along the inputs), the backward passes as the register-tile
 * matrix product of tile.h, threads owning blocks of output columns. */
#include "kernels/fast/tile.h"

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

void fm__fast_dense_forward(float *out, const float *in, const float *w, const float *b, int n,
                            int in_dim, int out_dim, int relu, float *work) {
    (void)work;
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
        fm__gemm_tile(imin(MR, rows - i), nv, masked, m, a, as, K, b, ldb, c + (size_t)i * ldc,
                      ldc, accumulate);
    }
}

void fm__fast_dense_backward_data(float *din, const float *dout, const float *w, int n,
                                  int in_dim, int out_dim, float *work) {
    (void)work;
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

void fm__fast_dense_backward_weights(float *dw, float *db, const float *dout, const float *in,
                                     int n, int in_dim, int out_dim, float *work) {
    (void)work;
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

