/* Standalone Softmax, allowed only as the last layer (like dense
 * activation=softmax): its output aliases its input, the logits, and the
 * model applies softmax itself (fused with cross-entropy when training, whose
 * gradient probs - onehot reaches the logits directly), so it has no forward
 * or backward of its own. */
#include "core/error.h"
#include "layers/layers.h"

static int softmax_plan(fm__layer *l, const char *source, fm_err *err) {
    if (!l->in.flat)
        return fm__err(err, "%s:%d: softmax needs a flat input (add flatten and dense before it)",
                       source, l->line);
    l->out = l->in;
    return 0;
}

const fm__layer_ops fm__softmax_ops = {"softmax", "Softmax", softmax_plan, NULL, NULL};
