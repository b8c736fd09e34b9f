/* Flatten in (C, H, W) order, PyTorch's NCHW flatten: in memory it is the
 * identity, so its output aliases its input and gradients pass straight
 * through (no forward or backward). Note Keras flattens NHWC as (H, W, C):
 * weights of a following dense differ from Keras's by that permutation.
 *
 *   flatten */
#include "layers/layer.h"

static int flatten_plan(fm__layer *l, int last, const char *source, fm_err *err) {
    l->out = (fm__shape){(int)fm__shape_len(l->in), 1, 1, 1};
    return 0;
}

/* ONNX's Flatten (axis 1) is the same NCHW order */
static int flatten_onnx(const fm__layer *l, fm__onnx_node *nodes) {
    nodes[0] = (fm__onnx_node){.op = "Flatten", .suffix = "", .n_attrs = 1,
                               .attrs = {{"axis", FM__ONNX_INT, .ints = {1}}}};
    return 1;
}

const fm__layer_type fm__flatten_layer = {
    .word = "flatten", .stem = "flatten", .keras_type = "Flatten", .output = FM__OUT_ALIAS,
    .plan = flatten_plan, .onnx = flatten_onnx,
};
