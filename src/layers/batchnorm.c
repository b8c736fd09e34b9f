/* BatchNormalization over channels (per C, statistics over N*H*W; on a flat
 * input over N per unit). Keras semantics: training normalises with the batch
 * mean and biased variance and updates moving = moving*momentum +
 * batch*(1-momentum); inference uses the moving statistics. Tensors: gamma,
 * beta (trainable), moving_mean, moving_variance (statistics), C each.
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
    c->k->batchnorm_forward_train(l->y, mean, var, invstd, x, gamma, beta, n, ch, hw, eps);
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

/* dy (B,C,H,W) -> dx (B,C,H,W) through the batch statistics; dgamma, dbeta += */
static void batchnorm_backward(fm__layer *l, const fm__layer_ctx *c, float *dx, float *dy,
                               const float *x, int n, int need_dx) {
    const int ch = l->in.c, hw = l->in.h * l->in.w;
    const float *mean = l->save, *invstd = mean + 2 * ch;
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
    .plan = batchnorm_plan, .save_bytes = batchnorm_save,
    .forward = batchnorm_forward, .backward = batchnorm_backward, .onnx = batchnorm_onnx,
    .affine = batchnorm_affine,
};
