/* GlobalAveragePooling2D: the mean of each channel over H and W, a flat
 * output (None, C) like Keras's.
 *
 *   globalavgpool */
#include "core/error.h"
#include "layers/layer.h"

static int globalavgpool_plan(fm__layer *l, int last, const char *source, fm_err *err) {
    if (l->in.flat)
        return fm__err(err, "%s:%d: globalavgpool needs an image input (height, width, "
                            "channels), but its input is flat (%d values)",
                       source, l->line, l->in.c);
    l->out = (fm__shape){l->in.c, 1, 1, 1};
    return 0;
}

/* x (B,C,H,W) -> y (B,C) */
static void globalavgpool_forward(fm__layer *l, const fm__layer_ctx *c, const float *x, int n) {
    c->k->avgpool_forward(l->y, x, n, l->in.c, l->in.h, l->in.w, l->in.h, l->in.w);
}

/* dy (B,C) -> dx (B,C,H,W) = dy / (H*W) everywhere */
static void globalavgpool_backward(fm__layer *l, const fm__layer_ctx *c, float *dx, float *dy,
                                   const float *x, int n, int need_dx) {
    if (need_dx)
        c->k->avgpool_backward(dx, dy, n, l->in.c, l->in.h, l->in.w, l->in.h, l->in.w);
}

/* GlobalAveragePool keeps (N, C, 1, 1); a Flatten gives the layer's (N, C) */
static int globalavgpool_onnx(const fm__layer *l, fm__onnx_node *nodes) {
    nodes[0] = (fm__onnx_node){.op = "GlobalAveragePool", .suffix = "/pool"};
    nodes[1] = (fm__onnx_node){.op = "Flatten", .suffix = "", .n_attrs = 1,
                               .attrs = {{"axis", FM__ONNX_INT, .ints = {1}}}};
    return 2;
}

const fm__layer_type fm__globalavgpool_layer = {
    .word = "globalavgpool", .stem = "global_average_pooling2d",
    .keras_type = "GlobalAveragePooling2D", .output = FM__OUT_OWN,
    .plan = globalavgpool_plan, .forward = globalavgpool_forward,
    .backward = globalavgpool_backward, .onnx = globalavgpool_onnx,
};
