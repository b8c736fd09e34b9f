/* BatchNormalization over channels (per C, statistics over N*H*W; on a flat
 * input over N per unit). Keras semantics: training normalises with the batch
 * mean and biased variance and updates moving = moving*momentum +
 * batch*(1-momentum); inference uses the moving statistics. Trainable gamma
 * (w) and beta (b); moving mean/var live in m->stats (non-trainable). */
#include "layers/layers.h"

static int batchnorm_plan(fm__layer *l, const char *source, fm_err *err) {
    l->out = l->in;
    l->nw = l->nb = (size_t)l->in.c;
    return 0;
}

/* x (B,C,H,W) -> y (B,C,H,W); bn_save = batch mean, var, invstd (C each) */
static void batchnorm_forward(fm_model *m, fm__layer *l, const float *x, int n, int training,
                              fm_rng *rng) {
    const int c = l->in.c, hw = l->in.h * l->in.w;
    const float *gamma = m->params + l->w, *beta = m->params + l->b;
    float *mmean = m->stats + l->mmean, *mvar = m->stats + l->mvar;
    if (!training) {
        m->k->batchnorm_forward_infer(l->y, x, gamma, beta, mmean, mvar, n, c, hw, l->eps);
        return;
    }
    float *mean = l->bn_save, *var = l->bn_save + c, *invstd = l->bn_save + 2 * c;
    m->k->batchnorm_forward_train(l->y, mean, var, invstd, x, gamma, beta, n, c, hw, l->eps);
    for (int i = 0; i < c; i++) {
        mmean[i] = mmean[i] * l->momentum + mean[i] * (1.0f - l->momentum);
        mvar[i] = mvar[i] * l->momentum + var[i] * (1.0f - l->momentum);
    }
}

/* dy (B,C,H,W) -> dx (B,C,H,W) through the batch statistics; dgamma, dbeta += */
static void batchnorm_backward(fm_model *m, fm__layer *l, float *dx, float *dy, const float *x,
                               int n, int need_dx) {
    const int c = l->in.c, hw = l->in.h * l->in.w;
    /* one kernel gives dgamma, dbeta and dx together, so dx is written even
     * when not needed */
    m->k->batchnorm_backward(dx, m->grads + l->w, m->grads + l->b, dy, x, l->bn_save,
                             l->bn_save + 2 * c, m->params + l->w, n, c, hw);
}

const fm__layer_ops fm__batchnorm_ops = {"batch_normalization", "BatchNormalization",
                                         batchnorm_plan, batchnorm_forward, batchnorm_backward};
