/* Every fast kernel table this CPU can run against the reference table, on
 * the network's shapes and on awkward ones (batch 1 and odd batches, channel
 * counts that are not a multiple of the vector width, 1x1 and 5x5 kernels,
 * stride 2, valid and same padding, sizes down to 1x1). A table this CPU or
 * build lacks prints a SKIP line; with none at all the reference's own checks
 * still run, and the test exits 77 (skipped) when they pass.
 *
 * Tolerances. A float sum of K products, in any order and any blocking, is
 * within K*u*S of the exact sum, where u = 2^-24 and S = sum |term_i|
 * (Higham, "Accuracy and Stability of Numerical Algorithms", 3.1). The
 * reference accumulates in double, so it is exact to within u*|sum| + K*2^-53*S
 * and the difference measures the fast kernel alone. We therefore compute S
 * for every output element exactly as the op itself would (the reference op
 * applied to |inputs|) and require |fast - ref| <= TOL * S + u*|ref|.
 * K*u is a worst case that grows with K (K = 1152 for a 128-channel 3x3 conv
 * gives 6.9e-5); blocked summation errors grow like sqrt(K)*u in practice,
 * so we use fixed TOL values well below K*u but well above what we see:
 * - direct sums (GEMM-style convs, dense): TOL_SUM = 64u (~3.8e-6);
 * - Winograd F(4x4,3x3) convs: the transforms scale terms by up to
 *   |B|*|G|*|A| ~ 100 before the channel sum cancels them back, so
 *   rounding is amplified by up to about that much: TOL_WINO = 512u (~3e-5;
 *   we see up to ~40u).
 * The bench/accuracy numbers printed by this test show the actual maxima.
 * Elementwise ops (ReLU, max pooling, dropout) must be bit-exact; batch norm
 * and softmax, which normalise, are held to 1e-5 absolute on O(1) outputs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fmnist/fmnist.h"
#include "kernels/kernels.h"
#include "kerneltest.h"

#define TOL_WINO (512 * U_EPS)

static float *absdup(const float *x, size_t len) {
    float *p = malloc(sizeof(float) * (len ? len : 1));
    for (size_t i = 0; i < len; i++) p[i] = fabsf(x[i]);
    return p;
}

/* Largest |fast-ref| / (tol*mag + u*|ref|) over an array: <= 1 passes. */
static double worst(const float *fast, const float *ref, const float *mag, size_t len, double tol,
                    double *rel_seen) {
    double w = 0.0;
    for (size_t i = 0; i < len; i++) {
        double d = fabs((double)fast[i] - ref[i]);
        double lim = tol * mag[i] + U_EPS * fabs(ref[i]) + 1e-30;
        if (!(d <= lim * 1e30)) return INFINITY; /* NaN or absurd */
        if (d / lim > w) w = d / lim;
        if (mag[i] > 0 && d / mag[i] > *rel_seen) *rel_seen = d / mag[i];
    }
    return w;
}

static double seen_conv_fwd, seen_conv_bwd, seen_conv_dw, seen_dense;

/* The fast tables under test and the thread counts they run with: every
 * reference result is computed once and compared with each of them. The
 * int8 ops run on every table (qfast); the others only on the tables that
 * have their own (fast), not on a vnni twin, whose fp32 ops are its base's. */
static const fm__kernels *fast[6], *qfast[6];
static int n_fast, n_qfast;
#define N_CFG (2 * n_fast)
#define N_QCFG (2 * n_qfast)

/* Configuration i: table i/2 with 1 + i%2 threads. */
static const fm__kernels *cfg(int i) {
    fm_set_threads(1 + i % 2);
    return fast[i / 2];
}
static const fm__kernels *qcfg(int i) {
    fm_set_threads(1 + i % 2);
    return qfast[i / 2];
}

static void test_conv(const fm__kernels *rk, fm__conv_shape s) {
    size_t nin = (size_t)s.n * s.c * s.h * s.w, nout = (size_t)s.n * s.oc * s.oh * s.ow;
    size_t nw = (size_t)s.oc * s.c * s.k * s.k;
    /* Winograd is only ever applied to 3x3 stride-1 convs; others are plain sums. */
    double tol = s.k == 3 && s.stride == 1 ? TOL_WINO : TOL_SUM;
    float *in = rnd(nin), *w = rnd(nw), *b = rnd(s.oc), *dout = rnd(nout);
    float *ain = absdup(in, nin), *aw = absdup(w, nw), *ab = absdup(b, s.oc),
          *adout = absdup(dout, nout);
    /* reference results and magnitudes: forward (relu 0, 1, no bias), backward
     * data, backward weights and bias (added onto random starting values) */
    float *o_r[3], *o_m[2], *di_r = rnd(nin), *di_m = rnd(nin);
    for (int i = 0; i < 3; i++) o_r[i] = rnd(nout);
    for (int i = 0; i < 2; i++) o_m[i] = rnd(nout);
    rk->conv2d_forward(o_r[0], in, w, b, &s, 0, NULL);
    rk->conv2d_forward(o_r[1], in, w, b, &s, 1, NULL);
    rk->conv2d_forward(o_r[2], in, w, NULL, &s, 0, NULL);
    rk->conv2d_forward(o_m[0], ain, aw, ab, &s, 0, NULL);
    rk->conv2d_forward(o_m[1], ain, aw, NULL, &s, 0, NULL);
    rk->conv2d_backward_data(di_r, dout, w, &s, NULL);
    rk->conv2d_backward_data(di_m, adout, aw, &s, NULL);
    float *dw0 = rnd(nw), *db0 = rnd(s.oc), *dw_r = malloc(sizeof(float) * nw),
          *db_r = malloc(sizeof(float) * s.oc), *dw_m = malloc(sizeof(float) * nw),
          *db_m = malloc(sizeof(float) * s.oc);
    memcpy(dw_r, dw0, sizeof(float) * nw);
    memcpy(db_r, db0, sizeof(float) * s.oc);
    rk->conv2d_backward_weights(dw_r, db_r, dout, in, &s, NULL);
    for (size_t i = 0; i < nw; i++) dw_m[i] = fabsf(dw_r[i]);
    for (int i = 0; i < s.oc; i++) db_m[i] = fabsf(db_r[i]);
    rk->conv2d_backward_weights(dw_m, db_m, adout, ain, &s, NULL);

    float *o_f = rnd(nout), *di_f = rnd(nin), *dw_f = rnd(nw), *db_f = rnd(s.oc);
    for (int ci = 0; ci < N_CFG; ci++) {
        const fm__kernels *fk = cfg(ci);
        size_t nws = fk->conv2d_workspace(&s);
        float *ws = rnd(nws);
        char what[160];
        snprintf(what, sizeof what, "%s/%dt conv n%d c%d %dx%d oc%d k%d s%d pad %d,%d", fk->name,
                 1 + ci % 2, s.n, s.c, s.h, s.w, s.oc, s.k, s.stride, s.pad_t, s.pad_l);
        for (int v = 0; v < 3; v++) {
            fk->conv2d_forward(o_f, in, w, v < 2 ? b : NULL, &s, v == 1, ws);
            double wr = worst(o_f, o_r[v], o_m[v == 2], nout, tol, &seen_conv_fwd);
            CHECK_MSG(wr <= 1.0, "%s forward %s: error %.3g x tolerance", what,
                      v == 0 ? "" : v == 1 ? "relu" : "no bias", wr);
            CHECK_MSG(guard_ok(o_f, nout) && guard_ok(ws, nws), "%s forward wrote past its end",
                      what);
        }
        fk->conv2d_backward_data(di_f, dout, w, &s, ws);
        double wr = worst(di_f, di_r, di_m, nin, tol, &seen_conv_bwd);
        CHECK_MSG(wr <= 1.0, "%s backward data: error %.3g x tolerance", what, wr);
        CHECK_MSG(guard_ok(di_f, nin) && guard_ok(ws, nws), "%s backward data wrote past its end",
                  what);

        memcpy(dw_f, dw0, sizeof(float) * nw);
        memcpy(db_f, db0, sizeof(float) * s.oc);
        fk->conv2d_backward_weights(dw_f, db_f, dout, in, &s, ws);
        wr = worst(dw_f, dw_r, dw_m, nw, tol, &seen_conv_dw);
        CHECK_MSG(wr <= 1.0, "%s backward weights: error %.3g x tolerance", what, wr);
        wr = worst(db_f, db_r, db_m, s.oc, TOL_SUM, &seen_conv_dw);
        CHECK_MSG(wr <= 1.0, "%s backward bias: error %.3g x tolerance", what, wr);
        CHECK_MSG(guard_ok(dw_f, nw) && guard_ok(db_f, s.oc) && guard_ok(ws, nws),
                  "%s backward weights wrote past its end", what);
        free(ws);
    }
    free(in), free(w), free(b), free(dout), free(ain), free(aw), free(ab), free(adout);
    for (int i = 0; i < 3; i++) free(o_r[i]);
    free(o_m[0]), free(o_m[1]), free(di_r), free(di_m), free(dw0), free(db0);
    free(dw_r), free(db_r), free(dw_m), free(db_m), free(o_f), free(di_f), free(dw_f), free(db_f);
}

static void test_dense(const fm__kernels *rk, int n, int in_dim, int out_dim) {
    size_t nin = (size_t)n * in_dim, nout = (size_t)n * out_dim, nw = (size_t)in_dim * out_dim;
    float *in = rnd(nin), *w = rnd(nw), *b = rnd(out_dim), *dout = rnd(nout);
    float *ain = absdup(in, nin), *aw = absdup(w, nw), *ab = absdup(b, out_dim),
          *adout = absdup(dout, nout);
    float *o_r[2], *o_m = rnd(nout), *di_r = rnd(nin), *di_m = rnd(nin);
    for (int relu = 0; relu < 2; relu++) {
        o_r[relu] = rnd(nout);
        rk->dense_forward(o_r[relu], in, w, b, n, in_dim, out_dim, relu, NULL);
    }
    rk->dense_forward(o_m, ain, aw, ab, n, in_dim, out_dim, 0, NULL);
    rk->dense_backward_data(di_r, dout, w, n, in_dim, out_dim, NULL);
    rk->dense_backward_data(di_m, adout, aw, n, in_dim, out_dim, NULL);
    float *dw0 = rnd(nw), *db0 = rnd(out_dim), *dw_r = malloc(sizeof(float) * nw),
          *db_r = malloc(sizeof(float) * out_dim), *dw_m = malloc(sizeof(float) * nw),
          *db_m = malloc(sizeof(float) * out_dim);
    memcpy(dw_r, dw0, sizeof(float) * nw);
    memcpy(db_r, db0, sizeof(float) * out_dim);
    rk->dense_backward_weights(dw_r, db_r, dout, in, n, in_dim, out_dim, NULL);
    for (size_t i = 0; i < nw; i++) dw_m[i] = fabsf(dw_r[i]);
    for (int i = 0; i < out_dim; i++) db_m[i] = fabsf(db_r[i]);
    rk->dense_backward_weights(dw_m, db_m, adout, ain, n, in_dim, out_dim, NULL);

    float *o_f = rnd(nout), *di_f = rnd(nin), *dw_f = rnd(nw), *db_f = rnd(out_dim);
    for (int ci = 0; ci < N_CFG; ci++) {
        const fm__kernels *fk = cfg(ci);
        char what[96];
        snprintf(what, sizeof what, "%s/%dt dense n%d in%d out%d", fk->name, 1 + ci % 2, n, in_dim,
                 out_dim);
        float *dws = malloc(sizeof(float) * (fk->dense_workspace(n, in_dim, out_dim) + 1));
        for (int relu = 0; relu < 2; relu++) {
            fk->dense_forward(o_f, in, w, b, n, in_dim, out_dim, relu, dws);
            double wr = worst(o_f, o_r[relu], o_m, nout, TOL_SUM, &seen_dense);
            CHECK_MSG(wr <= 1.0, "%s forward relu=%d: error %.3g x tolerance", what, relu, wr);
            CHECK_MSG(guard_ok(o_f, nout), "%s forward wrote past its end", what);
        }
        fk->dense_backward_data(di_f, dout, w, n, in_dim, out_dim, dws);
        double wr = worst(di_f, di_r, di_m, nin, TOL_SUM, &seen_dense);
        CHECK_MSG(wr <= 1.0, "%s backward data: error %.3g x tolerance", what, wr);
        CHECK_MSG(guard_ok(di_f, nin), "%s backward data wrote past its end", what);

        memcpy(dw_f, dw0, sizeof(float) * nw);
        memcpy(db_f, db0, sizeof(float) * out_dim);
        fk->dense_backward_weights(dw_f, db_f, dout, in, n, in_dim, out_dim, dws);
        wr = worst(dw_f, dw_r, dw_m, nw, TOL_SUM, &seen_dense);
        CHECK_MSG(wr <= 1.0, "%s backward weights: error %.3g x tolerance", what, wr);
        wr = worst(db_f, db_r, db_m, out_dim, TOL_SUM, &seen_dense);
        CHECK_MSG(wr <= 1.0, "%s backward bias: error %.3g x tolerance", what, wr);
        CHECK_MSG(guard_ok(dw_f, nw) && guard_ok(db_f, out_dim),
                  "%s backward weights wrote past its end", what);
        free(dws);
    }
    free(in), free(w), free(b), free(dout), free(ain), free(aw), free(ab), free(adout);
    free(o_r[0]), free(o_r[1]), free(o_m), free(di_r), free(di_m), free(dw0), free(db0);
    free(dw_r), free(db_r), free(dw_m), free(db_m), free(o_f), free(di_f), free(dw_f), free(db_f);
}

static double maxdiff(const float *a, const float *b, size_t len) {
    double m = 0.0;
    for (size_t i = 0; i < len; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN sticks */
    }
    return m;
}

static void test_batchnorm(const fm__kernels *fk, const fm__kernels *rk, int n, int c, int hw) {
    size_t len = (size_t)n * c * hw;
    float *in = rnd(len), *gamma = rnd(c), *beta = rnd(c), *dout = rnd(len);
    /* an offset mean and a spread well away from 1 exercise the centring */
    for (size_t i = 0; i < len; i++) in[i] = 3.0f * in[i] + 2.0f;
    float *o_f = rnd(len), *o_r = rnd(len), *st_f = rnd(3 * c), *st_r = rnd(3 * c);
    char what[96];
    snprintf(what, sizeof what, "%s batchnorm n%d c%d hw%d", fk->name, n, c, hw);

    fk->batchnorm_forward_train(o_f, st_f, st_f + c, st_f + 2 * c, in, gamma, beta, n, c, hw, 1e-3f);
    rk->batchnorm_forward_train(o_r, st_r, st_r + c, st_r + 2 * c, in, gamma, beta, n, c, hw, 1e-3f);
    CHECK_MSG(maxdiff(o_f, o_r, len) <= 1e-5, "%s train out %g", what, maxdiff(o_f, o_r, len));
    CHECK_MSG(maxdiff(st_f, st_r, 3 * (size_t)c) <= 1e-5 * 30, "%s stats %g", what,
              maxdiff(st_f, st_r, 3 * (size_t)c));
    CHECK_MSG(guard_ok(o_f, len) && guard_ok(st_f, 3 * c), "%s wrote past its end", what);

    /* inference with the batch statistics as moving ones */
    fk->batchnorm_forward_infer(o_f, in, gamma, beta, st_r, st_r + c, n, c, hw, 1e-3f);
    rk->batchnorm_forward_infer(o_r, in, gamma, beta, st_r, st_r + c, n, c, hw, 1e-3f);
    CHECK_MSG(maxdiff(o_f, o_r, len) <= 1e-5, "%s infer out %g", what, maxdiff(o_f, o_r, len));

    float *di_f = rnd(len), *di_r = rnd(len), *dg_f = rnd(c), *db_f = rnd(c);
    float *dg_r = malloc(sizeof(float) * c), *db_r = malloc(sizeof(float) * c);
    memcpy(dg_r, dg_f, sizeof(float) * c);
    memcpy(db_r, db_f, sizeof(float) * c);
    fk->batchnorm_backward(di_f, dg_f, db_f, dout, in, st_r, st_r + 2 * c, gamma, n, c, hw);
    rk->batchnorm_backward(di_r, dg_r, db_r, dout, in, st_r, st_r + 2 * c, gamma, n, c, hw);
    /* dx is O(gamma*invstd) ~ 1; dgamma/dbeta are sums of M = n*hw terms of O(1),
     * so they are held to M-scaled float rounding (64u*M). */
    double m = (double)n * hw;
    CHECK_MSG(maxdiff(di_f, di_r, len) <= 1e-5, "%s backward din %g", what, maxdiff(di_f, di_r, len));
    CHECK_MSG(maxdiff(dg_f, dg_r, c) <= 64 * U_EPS * (m + 1) * 3,
              "%s backward dgamma %g", what, maxdiff(dg_f, dg_r, c));
    CHECK_MSG(maxdiff(db_f, db_r, c) <= 64 * U_EPS * (m + 1), "%s backward dbeta %g", what,
              maxdiff(db_f, db_r, c));
    CHECK_MSG(guard_ok(di_f, len) && guard_ok(dg_f, c) && guard_ok(db_f, c),
              "%s backward wrote past its end", what);

    free(in), free(gamma), free(beta), free(dout), free(o_f), free(o_r), free(st_f), free(st_r);
    free(di_f), free(di_r), free(dg_f), free(db_f), free(dg_r), free(db_r);
}

static void test_elementwise(const fm__kernels *fk, const fm__kernels *rk, size_t len) {
    float *in = rnd(len), *dout = rnd(len), *a = rnd(len), *b = rnd(len);
    uint8_t *mask = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++) mask[i] = fm_rng_uniform(&rng) < 0.7f;
    if (len > 3) in[1] = 0.0f, in[2] = -0.0f; /* zeros are not positive */

    fk->relu_forward(a, in, len);
    rk->relu_forward(b, in, len);
    CHECK_MSG(memcmp(a, b, sizeof(float) * len) == 0 && guard_ok(a, len), "%s relu len %zu",
              fk->name, len);
    fk->relu_backward(a, dout, b, len);
    rk->relu_backward(b, dout, b, len); /* in place: din aliases out */
    CHECK_MSG(memcmp(a, b, sizeof(float) * len) == 0 && guard_ok(a, len), "%s relu backward len %zu",
              fk->name, len);
    memcpy(a, in, sizeof(float) * len);
    fk->relu_forward(a, a, len); /* in place */
    rk->relu_forward(b, in, len);
    CHECK_MSG(memcmp(a, b, sizeof(float) * len) == 0, "%s relu in place len %zu", fk->name, len);

    fk->dropout_apply(a, in, mask, 1.0f / 0.75f, len);
    rk->dropout_apply(b, in, mask, 1.0f / 0.75f, len);
    CHECK_MSG(memcmp(a, b, sizeof(float) * len) == 0 && guard_ok(a, len), "%s dropout len %zu",
              fk->name, len);
    free(in), free(dout), free(a), free(b), free(mask);
}

static void test_maxpool(const fm__kernels *fk, const fm__kernels *rk, int n, int c, int h, int w,
                         int pool) {
    size_t nin = (size_t)n * c * h * w, nout = (size_t)n * c * (h / pool) * (w / pool);
    float *in = rnd(nin), *o_f = rnd(nout), *o_r = rnd(nout), *dout = rnd(nout);
    /* ties: quantise so that equal values in a window are common */
    for (size_t i = 0; i < nin; i++) in[i] = floorf(in[i] * 2.0f);
    uint8_t *am_f = malloc(nout + 1), *am_r = malloc(nout + 1);
    fk->maxpool_forward(o_f, am_f, in, n, c, h, w, pool);
    rk->maxpool_forward(o_r, am_r, in, n, c, h, w, pool);
    CHECK_MSG(memcmp(o_f, o_r, sizeof(float) * nout) == 0 && memcmp(am_f, am_r, nout) == 0 &&
                  guard_ok(o_f, nout),
              "%s maxpool n%d c%d %dx%d pool %d", fk->name, n, c, h, w, pool);
    float *di_f = rnd(nin), *di_r = rnd(nin);
    fk->maxpool_backward(di_f, dout, am_r, n, c, h, w, pool);
    rk->maxpool_backward(di_r, dout, am_r, n, c, h, w, pool);
    CHECK_MSG(memcmp(di_f, di_r, sizeof(float) * nin) == 0 && guard_ok(di_f, nin),
              "%s maxpool backward n%d c%d %dx%d pool %d", fk->name, n, c, h, w, pool);
    free(in), free(o_f), free(o_r), free(dout), free(am_f), free(am_r), free(di_f), free(di_r);
}

/* Average pooling agrees bit for bit: same sums in the same order. */
static void test_avgpool(const fm__kernels *fk, const fm__kernels *rk, int n, int c, int h, int w,
                         int ph, int pw) {
    size_t nin = (size_t)n * c * h * w, nout = (size_t)n * c * (h / ph) * (w / pw);
    float *in = rnd(nin), *o_f = rnd(nout), *o_r = rnd(nout), *dout = rnd(nout);
    fk->avgpool_forward(o_f, in, n, c, h, w, ph, pw);
    rk->avgpool_forward(o_r, in, n, c, h, w, ph, pw);
    CHECK_MSG(memcmp(o_f, o_r, sizeof(float) * nout) == 0 && guard_ok(o_f, nout),
              "%s avgpool n%d c%d %dx%d window %dx%d", fk->name, n, c, h, w, ph, pw);
    float *di_f = rnd(nin), *di_r = rnd(nin);
    fk->avgpool_backward(di_f, dout, n, c, h, w, ph, pw);
    rk->avgpool_backward(di_r, dout, n, c, h, w, ph, pw);
    CHECK_MSG(memcmp(di_f, di_r, sizeof(float) * nin) == 0 && guard_ok(di_f, nin),
              "%s avgpool backward n%d c%d %dx%d window %dx%d", fk->name, n, c, h, w, ph, pw);
    free(in), free(o_f), free(o_r), free(dout), free(di_f), free(di_r);
}

static void test_softmax(const fm__kernels *fk, const fm__kernels *rk, int n, int classes,
                         float smoothing) {
    size_t len = (size_t)n * classes;
    float *logits = rnd(len), *p_f = rnd(len), *p_r = rnd(len), *d_f = rnd(len), *d_r = rnd(len);
    for (size_t i = 0; i < len; i++) logits[i] *= 40.0f; /* exp would overflow unshifted */
    uint8_t *labels = malloc(n);
    for (int i = 0; i < n; i++) labels[i] = (uint8_t)fm_rng_below(&rng, classes);
    float l_f = fk->softmax_xent(p_f, d_f, logits, labels, n, classes, smoothing);
    float l_r = rk->softmax_xent(p_r, d_r, logits, labels, n, classes, smoothing);
    CHECK_NEAR(l_f, l_r, 1e-5);
    CHECK_MSG(maxdiff(p_f, p_r, len) <= 1e-6 && maxdiff(d_f, d_r, len) <= 1e-6 && guard_ok(p_f, len) &&
                  guard_ok(d_f, len),
              "%s softmax n%d classes %d", fk->name, n, classes);
    fk->softmax_xent(p_f, NULL, logits, labels, n, classes, smoothing); /* inference: no gradient */
    CHECK(maxdiff(p_f, p_r, len) <= 1e-6);
    free(logits), free(p_f), free(p_r), free(d_f), free(d_r), free(labels);
}

/* ---- int8 inference: the integers are exact and the float steps the
 * same, so every table must give the reference's outputs to the bit. ---- */

static int n_qchecks;

/* A random quantized layer of rows x row_len weights in [-63, 63] (row 0
 * all 0, row 1 all 63, row 2 all -63 where there are rows enough: zero sums
 * and the largest, which saturate vpmaddubsw's pairs if the bound is lost), its input channels in_ch with a folded BatchNorm when
 * fold has FOLD_PRE, its outputs with one when it has FOLD_POST; some scales negative and some biases -0, row 0's both, so that -0
 * outputs (which ReLU makes +0) occur. in_scale 1/128 makes exact rounding
 * ties possible. */
typedef struct qlayer {
    int8_t *w;
    int32_t *wsum;
    float *scale, *bias, *pre_mul, *pre_add, *post_mul, *post_add;
    fm__qweights q;
} qlayer;

enum { FOLD_PRE = 1, FOLD_POST = 2 };

/* n factors of a folded BatchNorm: some negative, and offsets */
static void bn_factors(float **mul, float **add, int n) {
    *mul = malloc(sizeof(float) * n);
    *add = malloc(sizeof(float) * n);
    for (int c = 0; c < n; c++) {
        (*mul)[c] = (c % 3 == 2 ? -1.0f : 1.0f) * (0.25f + 2.0f * fm_rng_uniform(&rng));
        (*add)[c] = 2.0f * fm_rng_uniform(&rng) - 1.0f;
    }
}

static qlayer qlayer_new(int rows, int row_len, int in_ch, int zp, int fold, float in_scale) {
    qlayer l = {.w = malloc((size_t)rows * row_len), .wsum = malloc(sizeof(int32_t) * rows),
                .scale = malloc(sizeof(float) * rows), .bias = malloc(sizeof(float) * rows)};
    static const int fixed[3] = {0, FM__QW_MAX, -FM__QW_MAX};
    for (int o = 0; o < rows; o++) {
        int32_t sum = 0;
        for (int j = 0; j < row_len; j++) {
            int v = rows > 3 && o < 3 ? fixed[o]
                                      : (int)fm_rng_below(&rng, 2 * FM__QW_MAX + 1) - FM__QW_MAX;
            l.w[(size_t)o * row_len + j] = (int8_t)v;
            sum += v;
        }
        l.wsum[o] = sum;
        /* row 0: 0 * -scale + -0 = -0 */
        l.scale[o] = (o % 5 == 0 ? -1.0f : 1.0f) * in_scale * (0.5f + fm_rng_uniform(&rng)) / 63;
        l.bias[o] = o % 7 == 0 ? -0.0f : 2.0f * fm_rng_uniform(&rng) - 1.0f;
    }
    if (fold & FOLD_PRE) bn_factors(&l.pre_mul, &l.pre_add, in_ch);
    if (fold & FOLD_POST) bn_factors(&l.post_mul, &l.post_add, rows);
    l.q = (fm__qweights){.w = l.w, .wsum = l.wsum, .scale = l.scale, .bias = l.bias,
                         .pre_mul = l.pre_mul, .pre_add = l.pre_add, .post_mul = l.post_mul,
                         .post_add = l.post_add, .in_scale = in_scale, .zp = zp};
    return l;
}

static void qlayer_free(qlayer *l) {
    free(l->w), free(l->wsum), free(l->scale), free(l->bias), free(l->pre_mul), free(l->pre_add);
    free(l->post_mul), free(l->post_add);
}

/* len inputs for a layer: uniform in [-1.5, 1.5) (so some clamp at 0 and
 * 255), every 5th on a rounding tie of in_scale 1/128, and the first few
 * NaN, +-inf, -0 and huge. */
static float *qinput(size_t len) {
    float *x = rnd(len);
    for (size_t i = 0; i < len; i++) {
        x[i] *= 1.5f;
        if (i % 5 == 1) x[i] = (floorf(x[i] * 128.0f) + 0.5f) / 128.0f;
    }
    static const float odd[] = {NAN, INFINITY, -INFINITY, -0.0f, 1e30f, -1e30f};
    for (size_t i = 0; i * 3 < len && i < sizeof odd / sizeof odd[0]; i++) x[i * 3] = odd[i];
    return x;
}

/* The variants a layer runs in, every combination of: ReLU or not; zero
 * point 0, middle or 255; with or without a folded BatchNorm before it,
 * and after it; in_scale 1/128 or not. */
#define N_QVARIANTS 48
static void qvariant(int v, int *zp, int *fold, float *in_scale, int *relu) {
    static const int zps[3] = {0, 131, 255};
    *relu = v % 2;
    *zp = zps[v / 2 % 3];
    *fold = v / 6 % 4;
    *in_scale = v / 24 % 2 ? 1.0f / 128.0f : 2.9f / 255.0f;
}

/* len bytes of work holding garbage (not zeros), 1 byte past malloc's
 * alignment (the kernels may not assume any), with GUARD more after it
 * (which the caller saves). */
static uint8_t *qwork(size_t len, uint8_t **block) {
    *block = malloc(len + 1 + GUARD);
    memset(*block, 0xa5, len + 1 + GUARD);
    return *block + 1;
}

static void test_qconv(const fm__kernels *rk, fm__conv_shape s, int v0, int nv) {
    const size_t nin = (size_t)s.n * s.c * s.h * s.w, nout = (size_t)s.n * s.oc * s.oh * s.ow;
    float *in = qinput(nin), *o_r = rnd(nout), *o_f = rnd(nout);
    uint8_t *rblock, *rwork = qwork(rk->qconv2d_workspace(&s), &rblock);
    for (int v = v0; v < v0 + nv; v++) {
        int zp, fold, relu;
        float in_scale;
        qvariant(v % N_QVARIANTS, &zp, &fold, &in_scale, &relu);
        qlayer l = qlayer_new(s.oc, s.c * s.k * s.k, s.c, zp, fold, in_scale);
        rk->qconv2d_forward(o_r, in, &l.q, &s, relu, rwork);
        for (int ci = 0; ci < N_QCFG; ci++) {
            const fm__kernels *fk = qcfg(ci);
            const size_t nws = fk->qconv2d_workspace(&s);
            uint8_t *block, *work = qwork(nws, &block), guard[GUARD];
            memcpy(guard, work + nws, GUARD);
            fk->qconv2d_forward(o_f, in, &l.q, &s, relu, work);
            CHECK_MSG(memcmp(o_f, o_r, sizeof(float) * nout) == 0 && guard_ok(o_f, nout) &&
                          memcmp(guard, work + nws, GUARD) == 0,
                      "%s/%dt qconv n%d c%d %dx%d oc%d k%d s%d pad %d,%d zp %d fold %d scale %g "
                      "relu %d: not the reference's bits, or wrote past its end",
                      fk->name, 1 + ci % 2, s.n, s.c, s.h, s.w, s.oc, s.k, s.stride, s.pad_t,
                      s.pad_l, zp, fold, in_scale, relu);
            n_qchecks++;
            free(block);
        }
        qlayer_free(&l);
    }
    free(in), free(o_r), free(o_f), free(rblock);
}

static void test_qdense(const fm__kernels *rk, int n, int in_dim, int out_dim, int v0, int nv) {
    const size_t nin = (size_t)n * in_dim, nout = (size_t)n * out_dim;
    float *in = qinput(nin), *o_r = rnd(nout), *o_f = rnd(nout);
    uint8_t *rblock, *rwork = qwork(rk->qdense_workspace(n, in_dim, out_dim), &rblock);
    for (int v = v0; v < v0 + nv; v++) {
        int zp, fold, relu;
        float in_scale;
        qvariant(v % N_QVARIANTS, &zp, &fold, &in_scale, &relu);
        qlayer l = qlayer_new(out_dim, in_dim, in_dim, zp, fold, in_scale);
        rk->qdense_forward(o_r, in, &l.q, n, in_dim, out_dim, relu, rwork);
        for (int ci = 0; ci < N_QCFG; ci++) {
            const fm__kernels *fk = qcfg(ci);
            const size_t nws = fk->qdense_workspace(n, in_dim, out_dim);
            uint8_t *block, *work = qwork(nws, &block), guard[GUARD];
            memcpy(guard, work + nws, GUARD);
            fk->qdense_forward(o_f, in, &l.q, n, in_dim, out_dim, relu, work);
            CHECK_MSG(memcmp(o_f, o_r, sizeof(float) * nout) == 0 && guard_ok(o_f, nout) &&
                          memcmp(guard, work + nws, GUARD) == 0,
                      "%s/%dt qdense n%d in%d out%d zp %d fold %d scale %g relu %d: not the "
                      "reference's bits, or wrote past its end",
                      fk->name, 1 + ci % 2, n, in_dim, out_dim, zp, fold, in_scale, relu);
            n_qchecks++;
            free(block);
        }
        qlayer_free(&l);
    }
    free(in), free(o_r), free(o_f), free(rblock);
}

/* With a fixed thread count the parallel ops must be bit-identical run to run. */
static void test_deterministic(const fm__kernels *fk) {
    fm__conv_shape s = conv_shape(5, 64, 14, 14, 64, 3, 1, 1);
    size_t nin = (size_t)s.n * s.c * s.h * s.w, nout = (size_t)s.n * s.oc * s.oh * s.ow;
    size_t nw = (size_t)s.oc * s.c * 9;
    float *in = rnd(nin), *w = rnd(nw), *b = rnd(s.oc), *dout = rnd(nout);
    float *ws = rnd(fk->conv2d_workspace(&s)), *dws = rnd(fk->dense_workspace(64, 100, 300) + 1);
    float *r[2][4];
    for (int run = 0; run < 2; run++) {
        r[run][0] = calloc(nout, sizeof(float));
        r[run][1] = calloc(nin, sizeof(float));
        r[run][2] = calloc(nw + s.oc, sizeof(float));
        r[run][3] = calloc(64 * 300 + 300 + 64 * 100 + 300 * 100, sizeof(float));
        fk->conv2d_forward(r[run][0], in, w, b, &s, 1, ws);
        fk->conv2d_backward_data(r[run][1], dout, w, &s, ws);
        fk->conv2d_backward_weights(r[run][2], r[run][2] + nw, dout, in, &s, ws);
        /* dense (64, 100) -> 300, reusing the conv arrays as data */
        float *d = r[run][3];
        fk->dense_forward(d, in, w, dout, 64, 100, 300, 0, dws); /* dout as the 300 biases */
        fk->dense_backward_data(d + 64 * 300, in, w, 64, 100, 300, dws);
        fk->dense_backward_weights(d + 64 * 300 + 64 * 100, d + 64 * 300 + 64 * 100 + 30000, in,
                                   dout, 64, 100, 300, dws);
    }
    CHECK_MSG(memcmp(r[0][0], r[1][0], sizeof(float) * nout) == 0, "%s conv forward not repeatable",
              fk->name);
    CHECK_MSG(memcmp(r[0][1], r[1][1], sizeof(float) * nin) == 0, "%s conv backward data not repeatable",
              fk->name);
    CHECK_MSG(memcmp(r[0][2], r[1][2], sizeof(float) * (nw + s.oc)) == 0,
              "%s conv backward weights not repeatable", fk->name);
    CHECK_MSG(memcmp(r[0][3], r[1][3], sizeof(float) * (64 * 300 + 300 + 64 * 100 + 300 * 100)) == 0,
              "%s dense not repeatable", fk->name);
    for (int run = 0; run < 2; run++)
        for (int i = 0; i < 4; i++) free(r[run][i]);
    free(in), free(w), free(b), free(dout), free(ws), free(dws);
}

int main(void) {
    /* The override picks the reference table even on a CPU with faster ones. */
    setenv("FMNIST_KERNELS", "ref", 1);
    CHECK(fm__kernels_select() == fm__kernels_ref());
    CHECK(strcmp(fm_kernels_name(), "ref") == 0);
    /* The names the override and kernel_bench take; portable runs on every CPU. */
    CHECK(fm__kernels_known("portable") && fm__kernels_known("avx512") &&
          fm__kernels_known("avx512-vnni") && fm__kernels_known("avx2-vnni") &&
          fm__kernels_known("amx-int8") && !fm__kernels_known("sse"));
    /* a vnni or amx twin shares its base's fp32 ops and is its own int8 table */
    for (int i = 0; i < 3; i++) {
        const fm__kernels *twin = i == 2 ? fm__kernels_amx_int8()
                                  : i     ? fm__kernels_avx512_vnni()
                                          : fm__kernels_avx2_vnni();
        const fm__kernels *base = i ? fm__kernels_avx512() : fm__kernels_avx2();
        if (!twin) continue;
        CHECK(fm__kernels_fp32_base(twin) == base && twin->conv2d_forward == base->conv2d_forward &&
              twin->dense_backward_weights == base->dense_backward_weights &&
              twin->qconv2d_forward != base->qconv2d_forward);
    }
    CHECK(fm__kernels_fp32_base(fm__kernels_ref()) == fm__kernels_ref());
    CHECK(fm__kernels_by_name("ref") == fm__kernels_ref());
    CHECK(fm__kernels_by_name("portable") == fm__kernels_portable());
    CHECK(fm__kernels_portable() && strcmp(fm__kernels_portable()->name, "portable") == 0);
    CHECK(!fm__kernels_by_name("sse"));

    fm_rng_seed(&rng, 7);
    const fm__kernels *rk = fm__kernels_ref();
    /* Every table but ref; one this CPU or build lacks is said to be skipped,
     * not silently left out. */
    for (int i = 0; fm__kernels_table_name(i); i++) {
        const char *name = fm__kernels_table_name(i);
        if (!strcmp(name, "ref")) continue;
        const fm__kernels *k = fm__kernels_by_name(name);
        if (!k) {
            printf("SKIP: %s kernels not available on this CPU/build\n", name);
            continue;
        }
        CHECK_MSG(n_qfast < (int)(sizeof qfast / sizeof qfast[0]), "more fast tables than qfast[] holds");
        if (n_qfast == (int)(sizeof qfast / sizeof qfast[0])) continue;
        qfast[n_qfast++] = k;
        if (fm__kernels_fp32_base(k) == k) fast[n_fast++] = k;
        else printf("%s: int8 ops only (its other ops are %s's)\n", name, fm__kernels_fp32_base(k)->name);
    }

    /* n, c, h, w, oc, k, stride, same */
    static const int convs[][8] = {
        /* the network's convs (small batches) */
        {3, 1, 28, 28, 64, 3, 1, 1},
        {2, 64, 28, 28, 64, 3, 1, 1},
        {1, 64, 14, 14, 128, 3, 1, 1},
        {2, 128, 14, 14, 128, 3, 1, 1},
        /* odd batches and channel counts, 1x1 and 5x5, stride 2, valid */
        {7, 5, 7, 7, 17, 3, 1, 1},
        {3, 17, 14, 14, 5, 3, 1, 1},
        {1, 17, 28, 28, 17, 3, 1, 1},
        {3, 3, 14, 14, 3, 3, 1, 0},
        {1, 32, 13, 13, 48, 3, 1, 0},
        {2, 20, 9, 11, 24, 3, 1, 1},
        {3, 64, 7, 7, 128, 3, 1, 1},
        {3, 16, 28, 28, 24, 3, 1, 1}, /* more tiles than one weight-gradient block */
        {1, 3, 5, 5, 5, 1, 1, 0},
        {3, 17, 14, 14, 5, 3, 2, 1},
        {2, 16, 7, 7, 16, 3, 2, 0},
        {1, 1, 28, 28, 64, 3, 2, 1},
        {2, 3, 28, 28, 17, 5, 1, 1},
        {1, 17, 5, 5, 3, 5, 1, 0},
        {3, 64, 5, 5, 64, 5, 2, 1},
        {1, 1, 1, 1, 1, 1, 1, 1},
        {7, 1, 1, 1, 1, 3, 1, 1},
        {1, 128, 1, 1, 64, 1, 1, 0},
    };
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        const int *v = convs[i];
        test_conv(rk, conv_shape(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]));
    }
    static const int dense[][3] = {{1, 1, 1},     {3, 7, 5},     {7, 33, 17},   {64, 6272, 256},
                                   {64, 256, 10}, {5, 256, 10},  {1, 100, 300}, {17, 48, 64},
                                   {130, 2100, 13} /* several blocks of rows and columns */};
    for (size_t i = 0; i < sizeof dense / sizeof dense[0]; i++)
        test_dense(rk, dense[i][0], dense[i][1], dense[i][2]);

    /* int8: n, c, h, w, oc, k, stride, same; the network's layers (in 2 of
     * the variants each, the reference being slow there) and odd ones (in
     * all) */
    static const int qconvs[][8] = {
        {3, 1, 28, 28, 64, 3, 1, 1},    {3, 64, 28, 28, 64, 3, 1, 1},
        {3, 64, 14, 14, 128, 3, 1, 1},  {3, 128, 14, 14, 128, 3, 1, 1},
        {1, 3, 5, 7, 5, 3, 1, 1},       {7, 5, 7, 7, 17, 3, 1, 1},
        {2, 3, 5, 7, 6, 1, 1, 0},       {2, 3, 28, 28, 17, 5, 1, 1},
        {3, 17, 14, 14, 5, 3, 2, 1},    {2, 16, 7, 7, 16, 3, 2, 0},
        {1, 8, 9, 9, 6, 1, 2, 0},       {1, 32, 13, 13, 48, 3, 1, 0},
        {1, 17, 5, 5, 3, 5, 1, 0},      {3, 64, 5, 5, 64, 5, 2, 1},
        {2, 20, 9, 37, 24, 3, 1, 1},    {1, 1, 1, 1, 1, 1, 1, 1},
        {7, 1, 1, 1, 1, 3, 1, 1},       {1, 128, 1, 1, 64, 1, 1, 0},
    };
    for (size_t i = 0; i < sizeof qconvs / sizeof qconvs[0]; i++) {
        const int *v = qconvs[i];
        test_qconv(rk, conv_shape(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]), (int)i * 5,
                   i < 4 ? 2 : N_QVARIANTS);
    }
    static const int qdense[][3] = {{3, 6272, 256}, {3, 256, 10}, {1, 1, 1},   {1, 100, 300},
                                    {7, 33, 17},    {5, 31, 3},   {17, 48, 64}, {2, 64, 5},
                                    {130, 2100, 13} /* several passes of rows */,
                                    {40, 70, 40} /* amx-int8: 3 blocks of 16 rows, 2 of 32 columns */};
    for (size_t i = 0; i < sizeof qdense / sizeof qdense[0]; i++)
        test_qdense(rk, qdense[i][0], qdense[i][1], qdense[i][2], (int)i * 5,
                    i < 2 ? 2 : N_QVARIANTS);

    static const int bn[][3] = {{1, 1, 1},     {3, 5, 7},     {7, 17, 49},
                                {8, 64, 784}, {3, 128, 196}, {1, 3, 1}};
    static const size_t lens[] = {0, 1, 15, 16, 17, 100, 64 * 64 * 784 / 8};
    static const int pools[][5] = {{3, 64, 28, 28, 2}, {1, 5, 14, 14, 2}, {7, 3, 7, 7, 2},
                                   {2, 17, 9, 9, 3},   {1, 1, 5, 7, 3},   {3, 2, 1, 1, 2},
                                   {2, 128, 14, 14, 2}};
    for (int ci = 0; ci < N_CFG; ci++) {
        const fm__kernels *fk = cfg(ci);
        for (size_t i = 0; i < sizeof bn / sizeof bn[0]; i++)
            test_batchnorm(fk, rk, bn[i][0], bn[i][1], bn[i][2]);
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) test_elementwise(fk, rk, lens[i]);
        for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++)
            test_maxpool(fk, rk, pools[i][0], pools[i][1], pools[i][2], pools[i][3], pools[i][4]);
        for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) {
            const int *p = pools[i];
            test_avgpool(fk, rk, p[0], p[1], p[2], p[3], p[4], p[4]);
            test_avgpool(fk, rk, p[0], p[1], p[2], p[3], p[2], p[3]); /* global */
        }
        test_softmax(fk, rk, 1, 10, 0.0f);
        test_softmax(fk, rk, 64, 10, 0.0f);
        test_softmax(fk, rk, 7, 3, 0.0f);
        test_softmax(fk, rk, 64, 10, 0.1f); /* label smoothing */
        test_deterministic(fk);
    }
    /* The reference itself must be repeatable too (it is what ref builds run). */
    fm_set_threads(2);
    test_deterministic(rk);
    if (!n_fast) {
        /* the reference checks above ran, but what this test is for did not */
        printf("SKIP: no fast kernel table to compare with the reference\n");
        int failed = check_finish();
        return failed ? failed : 77;
    }
    printf("largest |fast-ref| / sum|terms|: conv forward %.3g, backward data %.3g, "
           "backward weights %.3g, dense %.3g (u = %.3g)\n",
           seen_conv_fwd, seen_conv_bwd, seen_conv_dw, seen_dense, U_EPS);
    printf("int8: %d bit-exact comparisons with the reference\n", n_qchecks);
    return check_finish();
}
