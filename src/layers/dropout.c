/* Dropout, inverted as in Keras: at training each unit is kept when a uniform
 * draw from the rng is >= rate and kept units are scaled by 1/(1-rate); at
 * inference it is the identity. The keep mask is saved for backward. */
#include <string.h>

#include "layers/layers.h"

static int dropout_plan(fm__layer *l, const char *source, fm_err *err) {
    l->out = l->in;
    return 0;
}

/* x (B, D) -> y (B, D), in place (the model plans y = x); mask (B, D)
 * drawn in element order */
static void dropout_forward(fm_model *m, fm__layer *l, const float *x, int n, int training,
                            fm_rng *rng) {
    size_t len = (size_t)n * fm__shape_len(l->out);
    if (!training) {
        if (l->y != x) memcpy(l->y, x, len * sizeof *x);
        return;
    }
    for (size_t i = 0; i < len; i++) l->mask[i] = fm_rng_uniform(rng) >= l->rate;
    m->k->dropout_apply(l->y, x, l->mask, 1.0f / (1.0f - l->rate), len);
}

/* dy (B, D) -> dx (B, D) = dy * mask / (1-rate) */
static void dropout_backward(fm_model *m, fm__layer *l, float *dx, float *dy, const float *x,
                             int n, int need_dx) {
    if (need_dx)
        m->k->dropout_apply(dx, dy, l->mask, 1.0f / (1.0f - l->rate),
                            (size_t)n * fm__shape_len(l->out));
}

const fm__layer_ops fm__dropout_ops = {"dropout", "Dropout", dropout_plan, dropout_forward,
                                       dropout_backward};
