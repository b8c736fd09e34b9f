/* BatchNormalization over channels (per C, statistics over N*H*W; on a flat
 * input over N per unit). Keras semantics: training normalises with the batch
 * mean and biased variance and updates moving = moving*momentum +
 * batch*(1-momentum); inference uses the moving statistics. Tensors: gamma,
 * beta (trainable), moving_mean, moving_variance (statistics), C each.
 * In a batch split over processes (c->dist) the statistics and the backward
 * pass's sums are the whole batch's, reduced across them (synchronised
 * BatchNorm), so each process computes what one would with the whole batch.
 *
 *   batchnorm [momentum=0.99] [eps=0.001] */
#include <math.h>

#include "layers/layer.h"

enum { MOMENTUM, EPS };
static const fm__key keys[] = {
    [MOMENTUM] = {"momentum", FM__KEY_FLOAT, .def = 0.99, .lo = 0.0, .hi = 1.0},
    [EPS] = {"eps", FM__KEY_FLOAT, .def = 1e-3, .lo = 0.0, .lo_open = 1, .hi = 1.0},
    {NULL},
};

enum { GAMMA, BETA, MOVING_MEAN, MOVING_VAR };
static const fm__tensor_decl tensors[] = {
    [GAMMA] = {"gamma", 1, FM__INIT_ONE, 0},
    [BETA] = {"beta", 1, FM__INIT_ZERO, 0},
    [MOVING_MEAN] = {"moving_mean", 0, FM__INIT_ZERO, 0},
    [MOVING_VAR] = {"moving_variance", 0, FM__INIT_ONE, 1},
};

static int batchnorm_plan(fm__layer *l, int last, const char *source, fm_err *err) {
    l->out = l->in;
    for (int j = GAMMA; j <= MOVING_VAR; j++) fm__layer_set_tensor(l, j, 1, (int[]){l->in.c});
    return 0;
}

/* batch mean, var, invstd (C each) */
static size_t batchnorm_save(const fm__layer *l, int n) { return 3 * (size_t)l->in.c * sizeof(float); }

/* scratch for the sums across processes: 4C + 2 doubles */
static size_t batchnorm_work(const fm__layer *l, const fm__kernels *k, int n) {
    return 2 * (4 * (size_t)l->in.c + 2);
}

static int shared(const fm__layer_ctx *c) { return c->dist && c->dist->size > 1; }

/* The batch statistics over every process's share, in double and two
 * passes as the reference kernel's (a failed reduction leaves this
 * process's own; the step's next reduction then reports it), and y. */
static void forward_shared(fm__layer *l, const fm__layer_ctx *c, const float *x, int n,
                           float *mean, float *var, float *invstd) {
    const int ch = l->in.c, hw = l->in.h * l->in.w;
    const float eps = l->arg[EPS].f, *gamma = l->t[GAMMA].data, *beta = l->t[BETA].data;
    double *sum = (double *)c->work; /* (C + 1): sums, then the count */
    for (int k = 0; k < ch; k++) {
        double a = 0.0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) a += x[((size_t)i * ch + k) * hw + j];
        sum[k] = a;
    }
    sum[ch] = (double)n * hw;
    fm__dist_sum_f64(c->dist, sum, (size_t)ch + 1, NULL);
    const double m = sum[ch];
    for (int k = 0; k < ch; k++) {
        double mu = sum[k] / m, a = 0.0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                double d = x[((size_t)i * ch + k) * hw + j] - mu;
                a += d * d;
            }
        sum[k] = a;
        mean[k] = (float)mu;
    }
    fm__dist_sum_f64(c->dist, sum, (size_t)ch, NULL);
    for (int k = 0; k < ch; k++) {
        double mu = mean[k], v = sum[k] / m, is = 1.0 / sqrt(v + eps);
        var[k] = (float)v;
        invstd[k] = (float)is;
        for (int i = 0; i < n; i++) {
            const float *xr = x + ((size_t)i * ch + k) * hw;
            float *y = l->y + ((size_t)i * ch + k) * hw;
            for (int j = 0; j < hw; j++) y[j] = (float)(gamma[k] * (xr[j] - mu) * is + beta[k]);
        }
    }
}

/* x (B,C,H,W) -> y (B,C,H,W); save = batch mean, var, invstd (C each) */
static void batchnorm_forward(fm__layer *l, const fm__layer_ctx *c, const float *x, int n) {
    const int ch = l->in.c, hw = l->in.h * l->in.w;
    const float eps = l->arg[EPS].f, momentum = l->arg[MOMENTUM].f;
    const float *gamma = l->t[GAMMA].data, *beta = l->t[BETA].data;
    float *mmean = l->t[MOVING_MEAN].data, *mvar = l->t[MOVING_VAR].data;
    if (!c->training && !c->restat) {
        c->k->batchnorm_forward_infer(l->y, x, gamma, beta, mmean, mvar, n, ch, hw, eps);
        return;
    }
    float *mean = l->save, *var = mean + ch, *invstd = mean + 2 * ch;
    if (shared(c)) forward_shared(l, c, x, n, mean, var, invstd);
    else c->k->batchnorm_forward_train(l->y, mean, var, invstd, x, gamma, beta, n, ch, hw, eps);
    if (c->restat) { /* running mean: after batch k, the mean of batches 1..k */
        const float w = 1.0f / (float)c->restat;
        for (int i = 0; i < ch; i++) {
            mmean[i] += (mean[i] - mmean[i]) * w;
            mvar[i] += (var[i] - mvar[i]) * w;
        }
        return;
    }
    for (int i = 0; i < ch; i++) {
        mmean[i] = mmean[i] * momentum + mean[i] * (1.0f - momentum);
        mvar[i] = mvar[i] * momentum + var[i] * (1.0f - momentum);
    }
}

/* The backward pass with the whole batch's sum(dy), sum(dy*xhat) and count;
 * dgamma, dbeta get this process's share (the gradients' reduction adds
 * the others'). */
static void backward_shared(fm__layer *l, const fm__layer_ctx *c, float *dx, const float *dy,
                            const float *x, int n) {
    const int ch = l->in.c, hw = l->in.h * l->in.w;
    const float *mean = l->save, *invstd = mean + 2 * ch, *gamma = l->t[GAMMA].data;
    double *sum = (double *)c->work; /* (2C + 1): sum(dy), sum(dy*xhat), the count */
    for (int k = 0; k < ch; k++) {
        double sdy = 0.0, sdyx = 0.0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t e = ((size_t)i * ch + k) * hw + j;
                sdy += dy[e];
                sdyx += dy[e] * ((x[e] - (double)mean[k]) * invstd[k]);
            }
        sum[k] = sdy;
        sum[ch + k] = sdyx;
        l->t[BETA].grad[k] += (float)sdy;
        l->t[GAMMA].grad[k] += (float)sdyx;
    }
    sum[2 * ch] = (double)n * hw;
    fm__dist_sum_f64(c->dist, sum, 2 * (size_t)ch + 1, NULL);
    const double m = sum[2 * ch];
    for (int k = 0; k < ch; k++) {
        double kk = (double)gamma[k] * invstd[k] / m;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t e = ((size_t)i * ch + k) * hw + j;
                double xh = (x[e] - (double)mean[k]) * invstd[k];
                dx[e] = (float)(kk * (m * dy[e] - sum[k] - xh * sum[ch + k]));
            }
    }
}

/* dy (B,C,H,W) -> dx (B,C,H,W) through the batch statistics; dgamma, dbeta += */
static void batchnorm_backward(fm__layer *l, const fm__layer_ctx *c, float *dx, float *dy,
                               const float *x, int n, int need_dx) {
    const int ch = l->in.c, hw = l->in.h * l->in.w;
    const float *mean = l->save, *invstd = mean + 2 * ch;
    if (shared(c)) {
        backward_shared(l, c, dx, dy, x, n);
        return;
    }
    /* one kernel gives dgamma, dbeta and dx together, so dx is written even
     * when not needed */
    c->k->batchnorm_backward(dx, l->t[GAMMA].grad, l->t[BETA].grad, dy, x, mean, invstd,
                             l->t[GAMMA].data, n, ch, hw);
}

/* The inference op as mul * x + add per channel, for folding. */
static void batchnorm_affine(const fm__layer *l, float *mul, float *add) {
    for (int i = 0; i < l->in.c; i++) {
        mul[i] = l->t[GAMMA].data[i] / sqrtf(l->t[MOVING_VAR].data[i] + l->arg[EPS].f);
        add[i] = l->t[BETA].data[i] - l->t[MOVING_MEAN].data[i] * mul[i];
    }
}

static int batchnorm_onnx(const fm__layer *l, fm__onnx_node *nodes) {
    nodes[0] = (fm__onnx_node){
        .op = "BatchNormalization", .suffix = "",
        .n_params = 4, .params = {GAMMA, BETA, MOVING_MEAN, MOVING_VAR},
        .param_names = {"gamma", "beta", "moving_mean", "moving_variance"},
        .n_attrs = 1, .attrs = {{"epsilon", FM__ONNX_FLOAT, .f = l->arg[EPS].f}},
    };
    return 1;
}

const fm__layer_type fm__batchnorm_layer = {
    .word = "batchnorm", .stem = "batch_normalization", .keras_type = "BatchNormalization",
    .keys = keys, .tensors = tensors, .n_tensors = 4, .output = FM__OUT_OWN,
    .plan = batchnorm_plan, .save_bytes = batchnorm_save, .work_floats = batchnorm_work,
    .forward = batchnorm_forward, .backward = batchnorm_backward, .onnx = batchnorm_onnx,
    .affine = batchnorm_affine,
};
