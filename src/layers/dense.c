/* Dense: y = x . W^T + b on a flat input, optional fused ReLU. Weights
 * (OUT, IN), bias (OUT). With activation=softmax it produces the logits and
 * the model applies softmax (with cross-entropy when training). */
#include "core/error.h"
#include "layers/layers.h"

static int dense_plan(fm__layer *l, const char *source, fm_err *err) {
    if (!l->in.flat)
        return fm__err(err, "%s:%d: dense needs a flat input: add 'flatten' before it (its input "
                            "is %dx%dx%d)",
                       source, l->line, l->in.h, l->in.w, l->in.c);
    l->out = (fm__shape){l->units, 1, 1, 1};
    l->nw = (size_t)l->units * l->in.c;
    l->nb = (size_t)l->units;
    return 0;
}

/* x (B,IN) -> y (B,OUT) */
static void dense_forward(fm_model *m, fm__layer *l, const float *x, int n, int training,
                          fm_rng *rng) {
    m->k->dense_forward(l->y, x, m->params + l->w, m->params + l->b, n, l->in.c, l->out.c,
                        l->act == FM__ACT_RELU);
}

/* dy (B,OUT) -> dx (B,IN); dW, db += */
static void dense_backward(fm_model *m, fm__layer *l, float *dx, float *dy, const float *x,
                           int n, int need_dx) {
    if (l->act == FM__ACT_RELU) m->k->relu_backward(dy, dy, l->y, (size_t)n * l->out.c);
    m->k->dense_backward_weights(m->grads + l->w, m->grads + l->b, dy, x, n, l->in.c, l->out.c);
    if (need_dx) m->k->dense_backward_data(dx, dy, m->params + l->w, n, l->in.c, l->out.c);
}

const fm__layer_ops fm__dense_ops = {"dense", "Dense", dense_plan, dense_forward, dense_backward};
