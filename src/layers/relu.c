/* Standalone ReLU (conv and dense fuse theirs). */
#include "layers/layers.h"

static int relu_plan(fm__layer *l, const char *source, fm_err *err) {
    l->out = l->in;
    return 0;
}

/* x (B, D) -> y (B, D) */
static void relu_forward(fm_model *m, fm__layer *l, const float *x, int n, int training,
                         fm_rng *rng) {
    m->k->relu_forward(l->y, x, (size_t)n * fm__shape_len(l->out));
}

/* dy (B, D) -> dx (B, D), zero where y == 0 */
static void relu_backward(fm_model *m, fm__layer *l, float *dx, float *dy, const float *x, int n,
                          int need_dx) {
    if (need_dx) m->k->relu_backward(dx, dy, l->y, (size_t)n * fm__shape_len(l->out));
}

const fm__layer_ops fm__relu_ops = {"re_lu", "ReLU", relu_plan, relu_forward, relu_backward};
