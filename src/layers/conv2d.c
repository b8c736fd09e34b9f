/* Conv2D: square kernel, stride, Keras 'valid' or 'same' padding, bias, and
 * an optional fused ReLU. Tensors: weight (OC, C, K, K), bias (OC).
 *
 *   conv filters=64 kernel=3 [stride=1] [padding=valid|same] [activation=linear|relu] */
#include "core/error.h"
#include "layers/layer.h"

enum { FILTERS, KERNEL, STRIDE, PADDING, ACTIVATION };
enum { VALID, SAME };
static const char *const paddings[] = {"valid", "same", NULL};
static const char *const activations[] = {"linear", "relu", NULL}; /* fm__activation_names' first two */

static const fm__key keys[] = {
    [FILTERS] = {"filters", FM__KEY_INT, .required = 1, .lo = 1, .hi = 65536},
    [KERNEL] = {"kernel", FM__KEY_INT, .required = 1, .lo = 1, .hi = 64},
    [STRIDE] = {"stride", FM__KEY_INT, .def = 1, .lo = 1, .hi = 64},
    [PADDING] = {"padding", FM__KEY_CHOICE, .def = VALID, .choices = paddings},
    [ACTIVATION] = {"activation", FM__KEY_CHOICE, .def = FM__ACT_LINEAR, .choices = activations},
    {NULL},
};

enum { WEIGHT, BIAS };
static const fm__tensor_decl tensors[] = {
    [WEIGHT] = {"weight", 1, FM__INIT_GLOROT, 0},
    [BIAS] = {"bias", 1, FM__INIT_ZERO, 0},
};

/* Keras 'same': output ceil(in/stride); the total padding
 * max((out-1)*stride + k - in, 0) is split with the smaller half on top/left. */
static int same_pad(int in, int out, int k, int stride) {
    int total = (out - 1) * stride + k - in;
    return total > 0 ? total / 2 : 0;
}

static fm__conv_shape conv_shape(const fm__layer *l, int n) {
    int k = l->arg[KERNEL].i, s = l->arg[STRIDE].i, same = l->arg[PADDING].i == SAME;
    fm__conv_shape cs = {
        .n = n, .c = l->in.c, .h = l->in.h, .w = l->in.w,
        .oc = l->out.c, .oh = l->out.h, .ow = l->out.w,
        .k = k, .stride = s,
        .pad_t = same ? same_pad(l->in.h, l->out.h, k, s) : 0,
        .pad_l = same ? same_pad(l->in.w, l->out.w, k, s) : 0,
    };
    return cs;
}

static int conv2d_plan(fm__layer *l, int last, const char *source, fm_err *err) {
    if (l->in.flat)
        return fm__err(err, "%s:%d: conv needs an image input (height, width, channels), but its "
                            "input is flat (%d values)",
                       source, l->line, l->in.c);
    int k = l->arg[KERNEL].i, s = l->arg[STRIDE].i;
    fm__shape o = {l->arg[FILTERS].i, 0, 0, 0};
    if (l->arg[PADDING].i == SAME) {
        o.h = (l->in.h + s - 1) / s;
        o.w = (l->in.w + s - 1) / s;
    } else if (l->in.h >= k && l->in.w >= k) {
        o.h = (l->in.h - k) / s + 1;
        o.w = (l->in.w - k) / s + 1;
    } else {
        return fm__err(err, "%s:%d: conv: kernel %d does not fit the %dx%d input with padding=valid "
                            "(output would be empty)",
                       source, l->line, k, l->in.h, l->in.w);
    }
    l->out = o;
    fm__layer_set_tensor(l, WEIGHT, 4, (int[]){o.c, l->in.c, k, k});
    fm__layer_set_tensor(l, BIAS, 1, (int[]){o.c});
    l->fan_in = (double)k * k * l->in.c;
    l->fan_out = (double)k * k * o.c;
    return 0;
}

static size_t conv2d_work(const fm__layer *l, const fm__kernels *k, int n) {
    fm__conv_shape s = conv_shape(l, n);
    return k->conv2d_workspace(&s);
}

/* x (B,C,H,W) -> y (B,OC,OH,OW) */
static void conv2d_forward(fm__layer *l, const fm__layer_ctx *c, const float *x, int n) {
    fm__conv_shape s = conv_shape(l, n);
    c->k->conv2d_forward(l->y, x, l->t[WEIGHT].data, l->t[BIAS].data, &s,
                         l->arg[ACTIVATION].i == FM__ACT_RELU, c->work);
}

/* dy (B,OC,OH,OW) -> dx (B,C,H,W); dW, db += */
static void conv2d_backward(fm__layer *l, const fm__layer_ctx *c, float *dx, float *dy,
                            const float *x, int n, int need_dx) {
    fm__conv_shape s = conv_shape(l, n);
    /* fused ReLU: y > 0 exactly where the pre-activation was positive */
    if (l->arg[ACTIVATION].i == FM__ACT_RELU)
        c->k->relu_backward(dy, dy, l->y, (size_t)n * fm__shape_len(l->out));
    c->k->conv2d_backward_weights(l->t[WEIGHT].grad, l->t[BIAS].grad, dy, x, &s, c->work);
    if (need_dx) c->k->conv2d_backward_data(dx, dy, l->t[WEIGHT].data, &s, c->work);
}

static size_t conv2d_work_int8(const fm__layer *l, const fm__kernels *k, int n) {
    fm__conv_shape s = conv_shape(l, n);
    return k->qconv2d_workspace(&s);
}

/* x (B,C,H,W) -> y (B,OC,OH,OW) through the int8 weights l->q */
static void conv2d_forward_int8(fm__layer *l, const fm__layer_ctx *c, const float *x, int n) {
    fm__conv_shape s = conv_shape(l, n);
    c->k->qconv2d_forward(l->y, x, l->q, &s, l->arg[ACTIVATION].i == FM__ACT_RELU, c->work);
}

/* Conv with the explicit pads of Keras's padding (t, l, b, r; the odd pixel
 * at the bottom/right), then a Relu node for the fused activation. */
static int conv2d_onnx(const fm__layer *l, fm__onnx_node *nodes) {
    fm__conv_shape s = conv_shape(l, 1);
    int64_t ph = 0, pw = 0;
    if (l->arg[PADDING].i == SAME) {
        ph = (int64_t)(l->out.h - 1) * s.stride + s.k - l->in.h;
        pw = (int64_t)(l->out.w - 1) * s.stride + s.k - l->in.w;
        if (ph < 0) ph = 0;
        if (pw < 0) pw = 0;
    }
    nodes[0] = (fm__onnx_node){
        .op = "Conv", .suffix = "",
        .n_params = 2, .params = {WEIGHT, BIAS}, .param_names = {"kernel", "bias"},
        .n_attrs = 3,
        .attrs = {{"kernel_shape", FM__ONNX_INTS, 2, {s.k, s.k}},
                  {"strides", FM__ONNX_INTS, 2, {s.stride, s.stride}},
                  {"pads", FM__ONNX_INTS, 4, {ph / 2, pw / 2, ph - ph / 2, pw - pw / 2}}},
    };
    if (l->arg[ACTIVATION].i != FM__ACT_RELU) return 1;
    nodes[1] = (fm__onnx_node){.op = "Relu", .suffix = "/relu"};
    return 2;
}

const fm__layer_type fm__conv2d_layer = {
    .word = "conv", .stem = "conv2d", .keras_type = "Conv2D",
    .keys = keys, .tensors = tensors, .n_tensors = 2, .output = FM__OUT_OWN,
    .plan = conv2d_plan, .work_floats = conv2d_work,
    .forward = conv2d_forward, .backward = conv2d_backward, .onnx = conv2d_onnx,
    .qweight = WEIGHT, .qbias = BIAS,
    .work_int8 = conv2d_work_int8, .forward_int8 = conv2d_forward_int8,
};
