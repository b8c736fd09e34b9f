/* AveragePooling2D: window = stride = size, 'valid' (rows/columns past the
 * last full window are dropped); each output is its window's mean.
 *
 *   avgpool [size=]2 */
#include "core/error.h"
#include "layers/layer.h"

enum { SIZE };
static const fm__key keys[] = {
    [SIZE] = {"size", FM__KEY_INT, .def = 2, .lo = 1, .hi = 64},
    {NULL},
};

static int avgpool_plan(fm__layer *l, int last, const char *source, fm_err *err) {
    int p = l->arg[SIZE].i;
    if (l->in.flat)
        return fm__err(err, "%s:%d: avgpool needs an image input (height, width, channels), but "
                            "its input is flat (%d values)",
                       source, l->line, l->in.c);
    if (l->in.h < p || l->in.w < p)
        return fm__err(err, "%s:%d: avgpool %d does not fit the %dx%d input (output would be "
                            "empty)",
                       source, l->line, p, l->in.h, l->in.w);
    l->out = (fm__shape){l->in.c, l->in.h / p, l->in.w / p, 0};
    return 0;
}

/* x (B,C,H,W) -> y (B,C,H/p,W/p) */
static void avgpool_forward(fm__layer *l, const fm__layer_ctx *c, const float *x, int n) {
    int p = l->arg[SIZE].i;
    c->k->avgpool_forward(l->y, x, n, l->in.c, l->in.h, l->in.w, p, p);
}

/* dy (B,C,H/p,W/p) -> dx (B,C,H,W), each dy shared evenly by its window */
static void avgpool_backward(fm__layer *l, const fm__layer_ctx *c, float *dx, float *dy,
                             const float *x, int n, int need_dx) {
    int p = l->arg[SIZE].i;
    if (need_dx) c->k->avgpool_backward(dx, dy, n, l->in.c, l->in.h, l->in.w, p, p);
}

/* window = stride, no padding (floor), as Keras's 'valid' */
static int avgpool_onnx(const fm__layer *l, fm__onnx_node *nodes) {
    int64_t p = l->arg[SIZE].i;
    nodes[0] = (fm__onnx_node){
        .op = "AveragePool", .suffix = "", .n_attrs = 2,
        .attrs = {{"kernel_shape", FM__ONNX_INTS, 2, {p, p}}, {"strides", FM__ONNX_INTS, 2, {p, p}}},
    };
    return 1;
}

const fm__layer_type fm__avgpool_layer = {
    .word = "avgpool", .stem = "average_pooling2d", .keras_type = "AveragePooling2D",
    .keys = keys, .positional = "size", .output = FM__OUT_OWN,
    .plan = avgpool_plan, .forward = avgpool_forward, .backward = avgpool_backward,
    .onnx = avgpool_onnx,
};
