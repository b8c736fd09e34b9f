/* Standalone ReLU (conv and dense fuse theirs).
 *
 *   relu */
#include "layers/layer.h"

static int relu_plan(fm__layer *l, int last, const char *source, fm_err *err) {
    l->out = l->in;
    return 0;
}

/* x (B, D) -> y (B, D) */
static void relu_forward(fm__layer *l, const fm__layer_ctx *c, const float *x, int n) {
    c->k->relu_forward(l->y, x, (size_t)n * fm__shape_len(l->out));
}

/* dy (B, D) -> dx (B, D), zero where y == 0 */
static void relu_backward(fm__layer *l, const fm__layer_ctx *c, float *dx, float *dy,
                          const float *x, int n, int need_dx) {
    if (need_dx) c->k->relu_backward(dx, dy, l->y, (size_t)n * fm__shape_len(l->out));
}

static int relu_onnx(const fm__layer *l, fm__onnx_node *nodes) {
    nodes[0] = (fm__onnx_node){.op = "Relu", .suffix = ""};
    return 1;
}

const fm__layer_type fm__relu_layer = {
    .word = "relu", .stem = "re_lu", .keras_type = "ReLU", .output = FM__OUT_OWN,
    .plan = relu_plan, .forward = relu_forward, .backward = relu_backward, .onnx = relu_onnx,
};
