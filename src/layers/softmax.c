/* Standalone Softmax, allowed only as the last layer (like dense
 * activation=softmax): its output aliases its input, the logits, and the
 * model applies softmax itself (fused with cross-entropy when training, whose
 * gradient probs - onehot reaches the logits directly), so it has no forward
 * or backward of its own, and no ONNX node (the exporter closes every graph
 * with one Softmax).
 *
 *   softmax */
#include "core/error.h"
#include "layers/layer.h"

static int softmax_plan(fm__layer *l, int last, const char *source, fm_err *err) {
    if (!last) return fm__err(err, "%s:%d: softmax must be the last layer", source, l->line);
    if (!l->in.flat)
        return fm__err(err, "%s:%d: softmax needs a flat input (add flatten and dense before it)",
                       source, l->line);
    l->out = l->in;
    return 0;
}

static int softmax_gives_probs(const fm__layer *l) { return 1; }

static int softmax_onnx(const fm__layer *l, fm__onnx_node *nodes) { return 0; }

const fm__layer_type fm__softmax_layer = {
    .word = "softmax", .stem = "softmax", .keras_type = "Softmax", .output = FM__OUT_ALIAS,
    .plan = softmax_plan, .gives_probs = softmax_gives_probs, .onnx = softmax_onnx,
};
