/* Gradient checks with the reference kernels.
 *
 * Per layer: the layer's forward (through its type's declaration) must match
 * an independent double-precision implementation of the Keras semantics
 * written here, and its backward must match central finite differences of
 * that double implementation: with L = sum(r * layer(x)) for a random r, the
 * backward given dy = r yields dL/dx and dL/dparams. Doubles make the
 * differences exact to ~1e-9, so the tolerance measures float kernels only.
 * Then softmax cross-entropy, and a whole small network end to end
 * (training mode: batch statistics; dropout masks fixed by the float pass)
 * against differences of the chained double references. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "layertest.h"
#include "model/model.h"

#define H_FD 1e-5

static fm_rng rng;

static double urand(void) { return 2.0 * fm_rng_uniform(&rng) - 1.0; }

/* Trainable floats of l: its parameter tensors, contiguous from t[0]. */
static size_t n_trainable(const fm__layer *l) {
    size_t n = 0;
    for (int j = 0; j < l->type->n_tensors; j++)
        if (l->type->tensors[j].trainable) n += l->t[j].len;
    return n;
}

static fm_model *build(const char *text, int batch) {
    fm_err err;
    fm_model *m = fm_model_parse(text, "gradcheck", &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m) return NULL;
    m->k = fm__kernels_ref();
    CHECK_MSG(fm__model_reserve(m, batch, &err) == 0, "%s", err.msg);
    fm_model_init(m, &rng);
    return m;
}

/* ---- double-precision reference forwards (NCHW, Keras semantics) ---- */

typedef struct {
    const fm__layer *l;
    int n;
    double *x, *p;       /* input (n, in); the layer's parameters: w then b */
    const double *r;     /* projection (n, out) */
    const uint8_t *mask; /* dropout keep mask used by the float forward */
    double *y;           /* (n, out) */
} lctx;

static void ref_conv(const lctx *c) {
    const fm__layer *l = c->l;
    int C = l->in.c, H = l->in.h, W = l->in.w, OC = l->out.c, K = lt_int(l, "kernel"),
        S = lt_int(l, "stride");
    int OH, OW, pt = 0, pl = 0;
    if (lt_int(l, "padding") == 1) { /* same; TF: out = ceil(in/s), pad_total = max((out-1)s+k-in, 0), top = total/2 */
        OH = (H + S - 1) / S;
        OW = (W + S - 1) / S;
        int th = (OH - 1) * S + K - H, tw = (OW - 1) * S + K - W;
        pt = th > 0 ? th / 2 : 0;
        pl = tw > 0 ? tw / 2 : 0;
    } else {
        OH = (H - K) / S + 1;
        OW = (W - K) / S + 1;
    }
    CHECK(OH == l->out.h && OW == l->out.w);
    const double *w = c->p, *b = c->p + l->t[0].len;
    for (int n = 0; n < c->n; n++)
        for (int o = 0; o < OC; o++)
            for (int i = 0; i < OH; i++)
                for (int j = 0; j < OW; j++) {
                    double acc = b[o];
                    for (int ch = 0; ch < C; ch++)
                        for (int u = 0; u < K; u++)
                            for (int v = 0; v < K; v++) {
                                int ih = i * S + u - pt, iw = j * S + v - pl;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                acc += c->x[((n * C + ch) * H + ih) * W + iw] *
                                       w[((o * C + ch) * K + u) * K + v];
                            }
                    if (lt_int(l, "activation") == FM__ACT_RELU && acc < 0) acc = 0;
                    c->y[((n * OC + o) * OH + i) * OW + j] = acc;
                }
}

static void ref_dense(const lctx *c) {
    const fm__layer *l = c->l;
    int I = l->in.c, O = l->out.c;
    for (int n = 0; n < c->n; n++)
        for (int o = 0; o < O; o++) {
            double acc = c->p[l->t[0].len + o];
            for (int i = 0; i < I; i++) acc += c->x[n * I + i] * c->p[o * I + i];
            if (lt_int(l, "activation") == FM__ACT_RELU && acc < 0) acc = 0;
            c->y[n * O + o] = acc;
        }
}

static void ref_batchnorm(const lctx *c) {
    const fm__layer *l = c->l;
    int C = l->in.c, HW = l->in.h * l->in.w;
    for (int ch = 0; ch < C; ch++) {
        double mean = 0, var = 0, cnt = (double)c->n * HW;
        for (int n = 0; n < c->n; n++)
            for (int k = 0; k < HW; k++) mean += c->x[(n * C + ch) * HW + k];
        mean /= cnt;
        for (int n = 0; n < c->n; n++)
            for (int k = 0; k < HW; k++) {
                double d = c->x[(n * C + ch) * HW + k] - mean;
                var += d * d;
            }
        var /= cnt; /* biased, as Keras normalises with */
        for (int n = 0; n < c->n; n++)
            for (int k = 0; k < HW; k++) {
                size_t i = (size_t)(n * C + ch) * HW + k;
                c->y[i] = c->p[ch] * (c->x[i] - mean) / sqrt(var + lt_float(l, "eps")) + c->p[C + ch];
            }
    }
}

static void ref_maxpool(const lctx *c) {
    const fm__layer *l = c->l;
    int C = l->in.c, H = l->in.h, W = l->in.w, P = lt_int(l, "size"), OH = H / P, OW = W / P;
    for (int n = 0; n < c->n; n++)
        for (int ch = 0; ch < C; ch++)
            for (int i = 0; i < OH; i++)
                for (int j = 0; j < OW; j++) {
                    double best = -INFINITY;
                    for (int u = 0; u < P; u++)
                        for (int v = 0; v < P; v++) {
                            double x = c->x[((n * C + ch) * H + i * P + u) * W + j * P + v];
                            if (x > best) best = x;
                        }
                    c->y[((n * C + ch) * OH + i) * OW + j] = best;
                }
}

/* window ph x pw = stride, floor; globalavgpool: the whole plane */
static void ref_avgpool(const lctx *c, int ph, int pw) {
    const fm__layer *l = c->l;
    int C = l->in.c, H = l->in.h, W = l->in.w, OH = H / ph, OW = W / pw;
    for (int n = 0; n < c->n; n++)
        for (int ch = 0; ch < C; ch++)
            for (int i = 0; i < OH; i++)
                for (int j = 0; j < OW; j++) {
                    double s = 0;
                    for (int u = 0; u < ph; u++)
                        for (int v = 0; v < pw; v++)
                            s += c->x[((n * C + ch) * H + i * ph + u) * W + j * pw + v];
                    c->y[((n * C + ch) * OH + i) * OW + j] = s / (ph * pw);
                }
}

static void ref_forward(const lctx *c) {
    const fm__layer *l = c->l;
    size_t len = (size_t)c->n * fm__shape_len(l->out);
    if (lt_is(l, "conv")) ref_conv(c);
    else if (lt_is(l, "dense")) ref_dense(c);
    else if (lt_is(l, "batchnorm")) ref_batchnorm(c);
    else if (lt_is(l, "maxpool")) ref_maxpool(c);
    else if (lt_is(l, "avgpool")) ref_avgpool(c, lt_int(l, "size"), lt_int(l, "size"));
    else if (lt_is(l, "globalavgpool")) ref_avgpool(c, l->in.h, l->in.w);
    else if (lt_is(l, "relu"))
        for (size_t i = 0; i < len; i++) c->y[i] = c->x[i] > 0 ? c->x[i] : 0;
    else if (lt_is(l, "dropout"))
        for (size_t i = 0; i < len; i++)
            c->y[i] = c->mask[i] ? c->x[i] / (1.0 - lt_float(l, "rate")) : 0;
    else CHECK(!"layer without a reference");
}

static double loss(const lctx *c) {
    ref_forward(c);
    double s = 0;
    for (size_t i = 0; i < (size_t)c->n * fm__shape_len(c->l->out); i++) s += c->r[i] * c->y[i];
    return s;
}

static double fd(lctx *c, double *v) {
    double keep = *v;
    *v = keep + H_FD;
    double lp = loss(c);
    *v = keep - H_FD;
    double lm = loss(c);
    *v = keep;
    return (lp - lm) / (2 * H_FD);
}

/* Checks layer `index` of the model described by text on a batch of n. */
static void check_layer(const char *what, const char *text, int index, int n, int kinkless) {
    fm_model *m = build(text, n);
    if (!m) return;
    fm__layer *l = &m->layers[index];
    size_t in_len = (size_t)n * fm__shape_len(l->in), out_len = (size_t)n * fm__shape_len(l->out);
    size_t np = n_trainable(l), p0 = np ? l->t[0].offset : 0;
    /* inputs of the layer under test: random, away from 0 for a standalone
     * ReLU (its kink) */
    float *x = malloc(in_len * sizeof *x), *dy = malloc(out_len * sizeof *dy),
          *dx = malloc(in_len * sizeof *dx);
    double *xd = malloc(in_len * sizeof *xd), *pd = malloc((np + 1) * sizeof *pd),
           *r = malloc(out_len * sizeof *r), *y = malloc(out_len * sizeof *y);
    for (size_t i = 0; i < in_len; i++) {
        double v = urand();
        if (kinkless && fabs(v) < 0.05) v = v < 0 ? v - 0.05 : v + 0.05;
        x[i] = (float)v;
        xd[i] = x[i];
    }
    /* non-trivial BatchNorm gamma/beta and biases */
    for (size_t i = 0; i < np; i++) {
        if (!lt_is(l, "conv") && !lt_is(l, "dense")) m->params[p0 + i] = (float)(1 + 0.5 * urand());
        else if (i >= l->t[0].len) m->params[p0 + i] = (float)(0.1 * urand());
        pd[i] = m->params[p0 + i];
    }
    for (size_t i = 0; i < out_len; i++) {
        r[i] = urand();
        dy[i] = (float)r[i];
    }
    const fm__draws drop = {7, 0, NULL};
    const fm__layer_ctx ctx = {m->k, m->work, 1, &drop, 0, NULL};
    l->type->forward(l, &ctx, x, n);
    lctx c = {l, n, xd, pd, r, l->save, y};
    ref_forward(&c);
    double worst = 0;
    for (size_t i = 0; i < out_len; i++) {
        double e = fabs(l->y[i] - y[i]) / (1 + fabs(y[i]));
        if (e > worst) worst = e;
    }
    CHECK_MSG(worst < 1e-5, "%s: forward differs from the reference by %g", what, worst);

    fm__model_zero_grads(m);
    l->type->backward(l, &ctx, dx, dy, x, n, 1);
    worst = 0;
    for (size_t i = 0; i < in_len; i++) {
        double num = fd(&c, &xd[i]), e = fabs(dx[i] - num) / (1 + fabs(num));
        if (e > worst) worst = e;
    }
    CHECK_MSG(worst < 1e-4, "%s: dx differs from finite differences by %g", what, worst);
    worst = 0;
    for (size_t i = 0; i < np; i++) {
        double num = fd(&c, &pd[i]), e = fabs(m->grads[p0 + i] - num) / (1 + fabs(num));
        if (e > worst) worst = e;
    }
    CHECK_MSG(worst < 1e-4, "%s: parameter gradients differ from finite differences by %g", what,
              worst);
    free(x);
    free(dy);
    free(dx);
    free(xd);
    free(pd);
    free(r);
    free(y);
    fm_model_free(m);
}

#define HEAD "flatten\ndense units=2 activation=softmax\n"

static void test_layers(void) {
    check_layer("conv 3x3 same relu", "input 6 5 2\nconv filters=3 kernel=3 padding=same "
                                      "activation=relu\n" HEAD, 0, 3, 0);
    /* stride 2 'same' on odd and even sizes: TF puts the odd pixel of padding
     * at the bottom/right */
    check_layer("conv 3x3 stride 2 same (odd)", "input 7 7 2\nconv filters=2 kernel=3 stride=2 "
                                                "padding=same\n" HEAD, 0, 2, 0);
    check_layer("conv 3x3 stride 2 same (even)", "input 8 6 1\nconv filters=2 kernel=3 stride=2 "
                                                 "padding=same\n" HEAD, 0, 2, 0);
    check_layer("conv 4x4 stride 2 same", "input 7 6 2\nconv filters=3 kernel=4 stride=2 "
                                          "padding=same\n" HEAD, 0, 2, 0);
    check_layer("conv 3x3 stride 2 valid", "input 8 7 2\nconv filters=3 kernel=3 stride=2\n" HEAD,
                0, 2, 0);
    check_layer("conv 2x2 valid relu, not first", "input 5 5 2\nrelu\nconv filters=2 kernel=2 "
                                                  "activation=relu\n" HEAD, 1, 3, 0);
    check_layer("batchnorm (training)", "input 3 4 3\nbatchnorm\n" HEAD, 0, 4, 0);
    check_layer("batchnorm on flat input", "input 1 1 5\nflatten\nbatchnorm eps=0.01\n"
                                           "dense units=2 activation=softmax\n", 1, 6, 0);
    check_layer("dense relu", "input 1 1 7\nflatten\ndense units=5 activation=relu\n"
                              "dense units=2 activation=softmax\n", 1, 3, 0);
    check_layer("dense linear", "input 2 2 2\nflatten\ndense units=4\n"
                                "dense units=2 activation=softmax\n", 1, 3, 0);
    check_layer("maxpool 2", "input 4 6 2\nmaxpool 2\n" HEAD, 0, 2, 0);
    check_layer("maxpool 2 on odd sizes", "input 5 7 1\nmaxpool 2\n" HEAD, 0, 2, 0);
    check_layer("maxpool 3", "input 6 6 2\nmaxpool size=3\n" HEAD, 0, 2, 0);
    check_layer("avgpool 2", "input 4 6 2\navgpool 2\n" HEAD, 0, 2, 0);
    check_layer("avgpool 2 on odd sizes, not first", "input 5 7 1\nrelu\navgpool 2\n" HEAD, 1, 2,
                1);
    check_layer("avgpool 3", "input 7 6 2\navgpool size=3\n" HEAD, 0, 2, 0);
    check_layer("globalavgpool", "input 5 3 4\nglobalavgpool\ndense units=2 activation=softmax\n",
                0, 3, 0);
    check_layer("globalavgpool 1x1", "input 1 1 3\nglobalavgpool\ndense units=2 "
                                     "activation=softmax\n", 0, 2, 0);
    check_layer("dropout 0.4 (fixed mask)", "input 3 3 2\ndropout 0.4\n" HEAD, 0, 3, 0);
    check_layer("relu", "input 3 3 2\nrelu\n" HEAD, 0, 3, 1);
}

/* Mean smoothed cross-entropy in double: target t = onehot*(1-s) + s/K,
 * loss -sum t log softmax, averaged over the n rows of logits ld (n, K). */
static double xent_double(const double *ld, const uint8_t *labels, int n, int K, double s) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        double mx = ld[i * K], sum = 0;
        for (int j = 1; j < K; j++) mx = fmax(mx, ld[i * K + j]);
        for (int j = 0; j < K; j++) sum += exp(ld[i * K + j] - mx);
        for (int j = 0; j < K; j++) {
            double t = (j == labels[i] ? 1 - s : 0) + s / K;
            total += t * (log(sum) - (ld[i * K + j] - mx));
        }
    }
    return total / n;
}

/* softmax cross-entropy from logits with label smoothing s: probabilities,
 * the mean loss and dlogits = (p - t)/N against double finite differences. */
static void test_softmax_xent(float smoothing) {
    enum { N = 4, K = 5 };
    float logits[N * K], probs[N * K], dl[N * K];
    double ld[N * K];
    uint8_t labels[N] = {0, 4, 2, 2};
    for (int i = 0; i < N * K; i++) ld[i] = logits[i] = (float)(3 * urand());
    logits[K + 1] = 80.0f; /* stable for large logits */
    ld[K + 1] = 80.0;
    float lossf = fm__kernels_ref()->softmax_xent(probs, dl, logits, labels, N, K, smoothing);
    for (int i = 0; i < N; i++) {
        double mx = ld[i * K], s = 0, psum = 0;
        for (int j = 1; j < K; j++) mx = fmax(mx, ld[i * K + j]);
        for (int j = 0; j < K; j++) s += exp(ld[i * K + j] - mx);
        for (int j = 0; j < K; j++) {
            CHECK_NEAR(probs[i * K + j], exp(ld[i * K + j] - mx) / s, 1e-6);
            psum += probs[i * K + j];
        }
        CHECK_NEAR(psum, 1.0, 1e-6);
    }
    CHECK_NEAR(lossf, xent_double(ld, labels, N, K, smoothing), 1e-6);
    for (int k = 0; k < N * K; k++) {
        double keep = ld[k];
        ld[k] = keep + H_FD;
        double lp = xent_double(ld, labels, N, K, smoothing);
        ld[k] = keep - H_FD;
        double lm = xent_double(ld, labels, N, K, smoothing);
        ld[k] = keep;
        CHECK_NEAR(dl[k], (lp - lm) / (2 * H_FD), 1e-5);
    }
}

/* Mean cross-entropy of the whole network in double: the reference
 * forwards chained over the model's layers (dropout with the masks of the
 * float forward), parameters from p. */
static double net_loss(const fm_model *m, double *p, double *x, int n, const uint8_t *labels,
                       double **act) {
    double *cur = x;
    for (int i = 0; i < m->n_layers; i++) {
        const fm__layer *l = &m->layers[i];
        if (!l->type->forward) continue; /* flatten, softmax */
        lctx c = {l, n, cur, n_trainable(l) ? p + l->t[0].offset : NULL, NULL, l->save, act[i]};
        ref_forward(&c);
        cur = act[i];
    }
    double total = 0;
    for (int i = 0; i < n; i++) {
        const double *z = cur + (size_t)i * m->classes;
        double mx = z[0], s = 0;
        for (int j = 1; j < m->classes; j++) mx = fmax(mx, z[j]);
        for (int j = 0; j < m->classes; j++) s += exp(z[j] - mx);
        total += log(s) - (z[labels[i]] - mx);
    }
    return total / n;
}

/* The whole network through fm__model_forward/loss_backward in training
 * mode against finite differences of net_loss. */
static void check_network(const char *text) {
    const int n = 4;
    fm_model *m = build(text, n);
    if (!m) return;
    uint8_t labels[4] = {0, 2, 1, 2};
    size_t in_len = (size_t)n * fm__shape_len(m->input);
    double *x = malloc(in_len * sizeof *x), *p = malloc(m->n_params * sizeof *p), *act[16];
    for (size_t i = 0; i < in_len; i++) x[i] = m->input_buf[i] = (float)urand();
    CHECK(m->classes == 3);
    for (size_t i = 0; i < m->n_params; i++) p[i] = m->params[i] += (float)(0.05 * urand());
    for (int i = 0; i < m->n_layers; i++)
        act[i] = malloc((size_t)n * fm__shape_len(m->layers[i].out) * sizeof **act);
    const fm__draws drop = {99, 0, NULL}; /* the same masks each pass */
    fm__model_zero_grads(m);
    CHECK(fm__model_forward(m, n, 1, &drop) == m->layers[m->n_layers - 1].y);
    float lossf = fm__model_loss_backward(m, labels, n, 0.0f, 1);
    CHECK_NEAR(lossf, net_loss(m, p, x, n, labels, act), 1e-5);
    double worst = 0;
    int nonzero = 0;
    for (size_t i = 0; i < m->n_params; i++) {
        double keep = p[i], lp, lm;
        p[i] = keep + H_FD;
        lp = net_loss(m, p, x, n, labels, act);
        p[i] = keep - H_FD;
        lm = net_loss(m, p, x, n, labels, act);
        p[i] = keep;
        double num = (lp - lm) / (2 * H_FD);
        worst = fmax(worst, fabs(m->grads[i] - num) / (1 + fabs(num)));
        nonzero += m->grads[i] != 0;
    }
    CHECK_MSG(worst < 1e-4, "network gradients differ from finite differences by %g", worst);
    CHECK(nonzero > (int)m->n_params / 2);
    /* the backward accumulates: the same step again doubles the gradients */
    float *grads = malloc(m->n_params * sizeof *grads);
    memcpy(grads, m->grads, m->n_params * sizeof *grads);
    fm__model_forward(m, n, 1, &drop);
    fm__model_loss_backward(m, labels, n, 0.0f, 1);
    worst = 0;
    for (size_t i = 0; i < m->n_params; i++)
        worst = fmax(worst, fabs(m->grads[i] - 2 * grads[i]) / (1e-6 + fabs(grads[i])));
    CHECK_MSG(worst < 1e-4, "a second backward does not accumulate: %g", worst);
    free(grads);
    free(x);
    free(p);
    for (int i = 0; i < m->n_layers; i++) free(act[i]);
    fm_model_free(m);
}

/* Every layer type in two networks: the notebook's kinds, then the pools. */
static void test_network(void) {
    check_network("input 9 9 2\n"
                  "conv filters=4 kernel=3 stride=2 padding=same activation=relu\n"
                  "batchnorm\n"
                  "conv filters=4 kernel=2 padding=valid\n"
                  "relu\n"
                  "maxpool 2\n"
                  "dropout 0.3\n"
                  "flatten\n"
                  "dense units=6 activation=relu\n"
                  "batchnorm\n"
                  "dropout 0.2\n"
                  "dense units=3\n"
                  "softmax\n");
    check_network("input 9 8 2\n"
                  "conv filters=3 kernel=3 padding=same activation=relu\n"
                  "avgpool 2\n"
                  "batchnorm\n"
                  "conv filters=5 kernel=2 activation=relu\n"
                  "globalavgpool\n"
                  "dropout 0.2\n"
                  "dense units=3 activation=softmax\n");
}

int main(void) {
    fm_rng_seed(&rng, 2024);
    test_layers();
    test_softmax_xent(0.0f);
    test_softmax_xent(0.1f);
    test_softmax_xent(1.0f); /* the uniform target: the one-hot part gone */
    test_network();
    return check_finish();
}
