/* Flatten in (C, H, W) order, PyTorch's NCHW flatten: in memory it is the
 * identity, so its output aliases its input and gradients pass straight
 * through (no forward or backward). Note Keras flattens NHWC as (H, W, C):
 * weights of a following dense differ from Keras's by that permutation. */
#include "layers/layers.h"

static int flatten_plan(fm__layer *l, const char *source, fm_err *err) {
    l->out = (fm__shape){(int)fm__shape_len(l->in), 1, 1, 1};
    return 0;
}

const fm__layer_ops fm__flatten_ops = {"flatten", "Flatten", flatten_plan, NULL, NULL};
