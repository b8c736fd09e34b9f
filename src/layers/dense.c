/* Dense: y = x . W^T + b on a flat input, optional fused ReLU. Tensors:
 * weight (OUT, IN), bias (OUT). With activation=softmax (last layer only) it
 * produces the logits and the model applies softmax (with cross-entropy when
 * training).
 *
 *   dense units=128 [activation=linear|relu|softmax] */
#include "core/error.h"
#include "layers/layer.h"

enum { UNITS, ACTIVATION };
static const fm__key keys[] = {
    [UNITS] = {"units", FM__KEY_INT, .required = 1, .lo = 1, .hi = 1 << 20},
    [ACTIVATION] = {"activation", FM__KEY_CHOICE, .def = FM__ACT_LINEAR,
                    .choices = fm__activation_names},
    {NULL},
};

enum { WEIGHT, BIAS };
static const fm__tensor_decl tensors[] = {
    [WEIGHT] = {"weight", 1, FM__INIT_GLOROT, 0},
    [BIAS] = {"bias", 1, FM__INIT_ZERO, 0},
};

static int dense_plan(fm__layer *l, int last, const char *source, fm_err *err) {
    if (!l->in.flat)
        return fm__err(err, "%s:%d: dense needs a flat input: add 'flatten' before it (its input "
                            "is %dx%dx%d)",
                       source, l->line, l->in.h, l->in.w, l->in.c);
    if (l->arg[ACTIVATION].i == FM__ACT_SOFTMAX && !last)
        return fm__err(err, "%s:%d: activation=softmax is only allowed on the last layer", source,
                       l->line);
    int units = l->arg[UNITS].i;
    l->out = (fm__shape){units, 1, 1, 1};
    fm__layer_set_tensor(l, WEIGHT, 2, (int[]){units, l->in.c});
    fm__layer_set_tensor(l, BIAS, 1, (int[]){units});
    l->fan_in = l->in.c;
    l->fan_out = units;
    return 0;
}

static int dense_gives_probs(const fm__layer *l) { return l->arg[ACTIVATION].i == FM__ACT_SOFTMAX; }

/* x (B,IN) -> y (B,OUT) */
static void dense_forward(fm__layer *l, const fm__layer_ctx *c, const float *x, int n) {
    c->k->dense_forward(l->y, x, l->t[WEIGHT].data, l->t[BIAS].data, n, l->in.c, l->out.c,
                        l->arg[ACTIVATION].i == FM__ACT_RELU, c->work);
}

/* dy (B,OUT) -> dx (B,IN); dW, db += */
static void dense_backward(fm__layer *l, const fm__layer_ctx *c, float *dx, float *dy,
                           const float *x, int n, int need_dx) {
    if (l->arg[ACTIVATION].i == FM__ACT_RELU)
        c->k->relu_backward(dy, dy, l->y, (size_t)n * l->out.c);
    c->k->dense_backward_weights(l->t[WEIGHT].grad, l->t[BIAS].grad, dy, x, n, l->in.c, l->out.c,
                                 c->work);
    if (need_dx)
        c->k->dense_backward_data(dx, dy, l->t[WEIGHT].data, n, l->in.c, l->out.c, c->work);
}

static size_t dense_work(const fm__layer *l, const fm__kernels *k, int n) {
    return k->dense_workspace(n, l->in.c, l->out.c);
}

static size_t dense_work_int8(const fm__layer *l, const fm__kernels *k, int n) {
    return k->qdense_workspace(n, l->in.c, l->out.c);
}

/* x (B,IN) -> y (B,OUT) through the int8 weights l->q */
static void dense_forward_int8(fm__layer *l, const fm__layer_ctx *c, const float *x, int n) {
    c->k->qdense_forward(l->y, x, l->q, n, l->in.c, l->out.c,
                         l->arg[ACTIVATION].i == FM__ACT_RELU, c->work);
}

/* Gemm with transB = 1 (the weights stay (OUT, IN)), then a Relu node for
 * the fused activation; softmax is the closing node the exporter adds. */
static int dense_onnx(const fm__layer *l, fm__onnx_node *nodes) {
    nodes[0] = (fm__onnx_node){
        .op = "Gemm", .suffix = "",
        .n_params = 2, .params = {WEIGHT, BIAS}, .param_names = {"kernel", "bias"},
        .n_attrs = 1, .attrs = {{"transB", FM__ONNX_INT, .ints = {1}}},
    };
    if (l->arg[ACTIVATION].i != FM__ACT_RELU) return 1;
    nodes[1] = (fm__onnx_node){.op = "Relu", .suffix = "/relu"};
    return 2;
}

const fm__layer_type fm__dense_layer = {
    .word = "dense", .stem = "dense", .keras_type = "Dense",
    .keys = keys, .tensors = tensors, .n_tensors = 2, .output = FM__OUT_OWN,
    .plan = dense_plan, .gives_probs = dense_gives_probs,
    .work_floats = dense_work,
    .forward = dense_forward, .backward = dense_backward, .onnx = dense_onnx,
    .qweight = WEIGHT, .qbias = BIAS,
    .work_int8 = dense_work_int8, .forward_int8 = dense_forward_int8,
};
