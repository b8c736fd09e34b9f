/* Dropout, inverted as in Keras: at training each unit is kept when a uniform
 * draw is >= rate (each sample's draws from its own stream, keyed with the
 * layer's name) and kept units are scaled by 1/(1-rate); at
 * inference it is the identity. It works in place (no backward reads what it
 * overwrites: maxpool's uses its argmax, a fused ReLU's y > 0 test differs
 * only where dropout zeroed the gradient anyway). The keep mask is saved for
 * backward.
 *
 *   dropout [rate=]0.25 */
#include <stdint.h>

#include "layers/layer.h"

enum { RATE };
static const fm__key keys[] = {
    [RATE] = {"rate", FM__KEY_FLOAT, .required = 1, .lo = 0.0, .hi = 1.0, .hi_open = 1,
              .example = "0.25"},
    {NULL},
};

static int dropout_plan(fm__layer *l, int last, const char *source, fm_err *err) {
    l->out = l->in;
    return 0;
}

/* keep mask (B, D), one byte each */
static size_t dropout_save(const fm__layer *l, int n) { return (size_t)n * fm__shape_len(l->out); }

/* x (B, D) -> y (B, D) = x (in place); mask (B, D), each sample's row drawn
 * in element order from the stream (seed, epoch, sample, dropout + name) */
static void dropout_forward(fm__layer *l, const fm__layer_ctx *c, const float *x, int n) {
    if (!c->training) return;
    const size_t d = fm__shape_len(l->out);
    uint8_t *mask = l->save;
    const float rate = l->arg[RATE].f;
    const uint64_t purpose = fm__purpose_named(FM__DRAW_DROPOUT, l->name);
    for (int b = 0; b < n; b++) {
        fm_rng rng;
        fm__rng_stream(&rng, c->draws->seed, c->draws->epoch, fm__draws_sample(c->draws, b),
                       purpose);
        for (size_t i = 0; i < d; i++) mask[(size_t)b * d + i] = fm_rng_uniform(&rng) >= rate;
    }
    c->k->dropout_apply(l->y, x, mask, 1.0f / (1.0f - rate), (size_t)n * d);
}

/* dy (B, D) -> dx (B, D) = dy * mask / (1-rate) */
static void dropout_backward(fm__layer *l, const fm__layer_ctx *c, float *dx, float *dy,
                             const float *x, int n, int need_dx) {
    if (need_dx)
        c->k->dropout_apply(dx, dy, l->save, 1.0f / (1.0f - l->arg[RATE].f),
                            (size_t)n * fm__shape_len(l->out));
}

/* the identity at inference: no node */
static int dropout_onnx(const fm__layer *l, fm__onnx_node *nodes) { return 0; }

const fm__layer_type fm__dropout_layer = {
    .word = "dropout", .stem = "dropout", .keras_type = "Dropout",
    .keys = keys, .positional = "rate", .output = FM__OUT_IN_PLACE,
    .plan = dropout_plan, .save_bytes = dropout_save,
    .forward = dropout_forward, .backward = dropout_backward, .onnx = dropout_onnx,
};
