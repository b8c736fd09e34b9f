/* MaxPooling2D: window = stride = size, 'valid' (rows/columns past the last
 * full window are dropped). The argmax of each window is kept for backward.
 *
 *   maxpool [size=]2 */
#include <stdint.h>

#include "core/error.h"
#include "layers/layer.h"

enum { SIZE };
/* the argmax of a window is stored in a byte */
static const fm__key keys[] = {
    [SIZE] = {"size", FM__KEY_INT, .def = 2, .lo = 1, .hi = 15},
    {NULL},
};

static int maxpool_plan(fm__layer *l, int last, const char *source, fm_err *err) {
    int p = l->arg[SIZE].i;
    if (l->in.flat)
        return fm__err(err, "%s:%d: maxpool needs an image input (height, width, channels), but "
                            "its input is flat (%d values)",
                       source, l->line, l->in.c);
    if (l->in.h < p || l->in.w < p)
        return fm__err(err, "%s:%d: maxpool %d does not fit the %dx%d input (output would be "
                            "empty)",
                       source, l->line, p, l->in.h, l->in.w);
    l->out = (fm__shape){l->in.c, l->in.h / p, l->in.w / p, 0};
    return 0;
}

/* argmax (B, out), one byte each */
static size_t maxpool_save(const fm__layer *l, int n) { return (size_t)n * fm__shape_len(l->out); }

/* x (B,C,H,W) -> y (B,C,H/p,W/p), save = argmax (B,C,H/p,W/p) */
static void maxpool_forward(fm__layer *l, const fm__layer_ctx *c, const float *x, int n) {
    c->k->maxpool_forward(l->y, l->save, x, n, l->in.c, l->in.h, l->in.w, l->arg[SIZE].i);
}

/* dy (B,C,H/p,W/p) -> dx (B,C,H,W), routed to the argmax */
static void maxpool_backward(fm__layer *l, const fm__layer_ctx *c, float *dx, float *dy,
                             const float *x, int n, int need_dx) {
    if (need_dx)
        c->k->maxpool_backward(dx, dy, l->save, n, l->in.c, l->in.h, l->in.w, l->arg[SIZE].i);
}

/* window = stride, valid (floor) */
static int maxpool_onnx(const fm__layer *l, fm__onnx_node *nodes) {
    int64_t p = l->arg[SIZE].i;
    nodes[0] = (fm__onnx_node){
        .op = "MaxPool", .suffix = "", .n_attrs = 2,
        .attrs = {{"kernel_shape", FM__ONNX_INTS, 2, {p, p}}, {"strides", FM__ONNX_INTS, 2, {p, p}}},
    };
    return 1;
}

const fm__layer_type fm__maxpool_layer = {
    .word = "maxpool", .stem = "max_pooling2d", .keras_type = "MaxPooling2D",
    .keys = keys, .positional = "size", .output = FM__OUT_OWN,
    .plan = maxpool_plan, .save_bytes = maxpool_save,
    .forward = maxpool_forward, .backward = maxpool_backward, .onnx = maxpool_onnx,
};
