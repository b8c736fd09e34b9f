/* Conv2D: square kernel, stride, Keras 'valid' or 'same' padding, bias, and
 * an optional fused ReLU. Weights (OC, C, K, K), bias (OC). */
#include "core/error.h"
#include "layers/layers.h"

/* Keras 'same': output ceil(in/stride); the total padding
 * max((out-1)*stride + k - in, 0) is split with the smaller half on top/left. */
static int same_pad(int in, int out, int k, int stride) {
    int total = (out - 1) * stride + k - in;
    return total > 0 ? total / 2 : 0;
}

static fm__conv_shape conv_shape(const fm__layer *l, int n) {
    fm__conv_shape s = {
        .n = n, .c = l->in.c, .h = l->in.h, .w = l->in.w,
        .oc = l->out.c, .oh = l->out.h, .ow = l->out.w,
        .k = l->kernel, .stride = l->stride,
        .pad_t = l->pad_same ? same_pad(l->in.h, l->out.h, l->kernel, l->stride) : 0,
        .pad_l = l->pad_same ? same_pad(l->in.w, l->out.w, l->kernel, l->stride) : 0,
    };
    return s;
}

static int conv2d_plan(fm__layer *l, const char *source, fm_err *err) {
    if (l->in.flat)
        return fm__err(err, "%s:%d: conv needs an image input (height, width, channels), but its "
                            "input is flat (%d values)",
                       source, l->line, l->in.c);
    int k = l->kernel, s = l->stride;
    fm__shape o = {l->filters, 0, 0, 0};
    if (l->pad_same) {
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
    l->nw = (size_t)o.c * l->in.c * k * k;
    l->nb = (size_t)o.c;
    return 0;
}

size_t fm__conv2d_workspace(const fm__kernels *k, const fm__layer *l, int n) {
    fm__conv_shape s = conv_shape(l, n);
    return k->conv2d_workspace(&s);
}

/* x (B,C,H,W) -> y (B,OC,OH,OW) */
static void conv2d_forward(fm_model *m, fm__layer *l, const float *x, int n, int training,
                           fm_rng *rng) {
    fm__conv_shape s = conv_shape(l, n);
    m->k->conv2d_forward(l->y, x, m->params + l->w, m->params + l->b, &s,
                         l->act == FM__ACT_RELU, m->work);
}

/* dy (B,OC,OH,OW) -> dx (B,C,H,W); dW, db += */
static void conv2d_backward(fm_model *m, fm__layer *l, float *dx, float *dy, const float *x,
                            int n, int need_dx) {
    fm__conv_shape s = conv_shape(l, n);
    /* fused ReLU: y > 0 exactly where the pre-activation was positive */
    if (l->act == FM__ACT_RELU) m->k->relu_backward(dy, dy, l->y, (size_t)n * fm__shape_len(l->out));
    m->k->conv2d_backward_weights(m->grads + l->w, m->grads + l->b, dy, x, &s, m->work);
    if (need_dx) m->k->conv2d_backward_data(dx, dy, m->params + l->w, &s, m->work);
}

const fm__layer_ops fm__conv2d_ops = {"conv2d", "Conv2D", conv2d_plan, conv2d_forward,
                                      conv2d_backward};
