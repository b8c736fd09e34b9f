/* MaxPooling2D: window = stride = size, 'valid' (rows/columns past the last
 * full window are dropped). The argmax of each window is kept for backward. */
#include "core/error.h"
#include "layers/layers.h"

static int maxpool_plan(fm__layer *l, const char *source, fm_err *err) {
    if (l->in.flat)
        return fm__err(err, "%s:%d: maxpool needs an image input (height, width, channels), but "
                            "its input is flat (%d values)",
                       source, l->line, l->in.c);
    if (l->in.h < l->pool || l->in.w < l->pool)
        return fm__err(err, "%s:%d: maxpool %d does not fit the %dx%d input (output would be "
                            "empty)",
                       source, l->line, l->pool, l->in.h, l->in.w);
    l->out = (fm__shape){l->in.c, l->in.h / l->pool, l->in.w / l->pool, 0};
    return 0;
}

/* x (B,C,H,W) -> y (B,C,H/p,W/p), mask = argmax (B,C,H/p,W/p) */
static void maxpool_forward(fm_model *m, fm__layer *l, const float *x, int n, int training,
                            fm_rng *rng) {
    m->k->maxpool_forward(l->y, l->mask, x, n, l->in.c, l->in.h, l->in.w, l->pool);
}

/* dy (B,C,H/p,W/p) -> dx (B,C,H,W), routed to the argmax */
static void maxpool_backward(fm_model *m, fm__layer *l, float *dx, float *dy, const float *x,
                             int n, int need_dx) {
    if (need_dx)
        m->k->maxpool_backward(dx, dy, l->mask, n, l->in.c, l->in.h, l->in.w, l->pool);
}

const fm__layer_ops fm__maxpool_ops = {"max_pooling2d", "MaxPooling2D", maxpool_plan,
                                       maxpool_forward, maxpool_backward};
