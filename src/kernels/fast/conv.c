/* The conv ops of the table. Each picks an algorithm for its shape and runs
 * it on the layout that algorithm's plan gives (conv.h); the size query
 * reports the largest of the ops' plans. */
#include "kernels/fast/conv.h"

static int wino_ok(const fm__conv_shape *s) {
    /* the rotated conv of backward data pads by 2 - pad, so both must be in [0, 2];
     * few channels would waste most of each vector */
    return s->k == 3 && s->stride == 1 && s->pad_t >= 0 && s->pad_t <= 2 && s->pad_l >= 0 &&
           s->pad_l <= 2 && s->c >= 8 && s->oc >= 8;
}

/* The conv that backward data is, for stride 1: dout convolved with the
 * rotated, transposed kernel, padded by K-1-pad. */
static fm__conv_shape rotated(const fm__conv_shape *s) {
    fm__conv_shape r = {.n = s->n, .c = s->oc, .h = s->oh, .w = s->ow, .oc = s->c, .oh = s->h,
                       .ow = s->w, .k = s->k, .stride = 1, .pad_t = s->k - 1 - s->pad_t,
                       .pad_l = s->k - 1 - s->pad_l};
    return r;
}

static int rotated_ok(const fm__conv_shape *s) {
    return s->stride == 1 && s->pad_t >= 0 && s->pad_t <= s->k - 1 && s->pad_l >= 0 &&
           s->pad_l <= s->k - 1;
}

/* Few channels would leave the direct products with mostly empty vectors or
 * tiny depths (the first layer: 1 input channel). */
static int plane_ok(const fm__conv_shape *s) {
    return s->stride == 1 && (s->c * s->k * s->k <= 27 || s->oc < 8);
}

/* weight gradients this way need a 3x3 kernel (its 9 taps live in registers) */
static int plane_bww_ok(const fm__conv_shape *s) {
    return s->stride == 1 && s->k == 3 && s->c < 8;
}

/* The forward conv of s runs e = s; backward data runs e = rotated(s). */
enum { WINO, PLANE, DIRECT };

static int algo(const fm__conv_shape *s, const fm__conv_shape *e) {
    return wino_ok(s) ? WINO : plane_ok(e) ? PLANE : DIRECT;
}

static size_t conv_total(const fm__conv_shape *s, const fm__conv_shape *e, int flip) {
    switch (algo(s, e)) {
    case WINO: return fm__plan_wino(e).total;
    case PLANE: return fm__plan_plane(e, flip).total;
    default: return fm__plan_direct(e).total;
    }
}

/* out = bias + conv e of in by w (flipped for backward data), ReLU when relu != 0. */
static void conv_run(float *out, const float *in, const float *w, const float *b,
                     const fm__conv_shape *s, const fm__conv_shape *e, int flip, int relu,
                     float *work) {
    float *ws = align64(work);
    switch (algo(s, e)) {
    case WINO: {
        const fm__wino_plan p = fm__plan_wino(e);
        fm__wino_conv(&p, out, in, w, flip, b, relu, ws);
        break;
    }
    case PLANE: {
        const fm__plane_plan p = fm__plan_plane(e, flip);
        fm__plane_conv(&p, e, out, in, w, flip, b, relu, ws);
        break;
    }
    default: {
        const fm__direct_plan p = fm__plan_direct(e);
        fm__direct_conv(&p, e, out, in, w, flip, b, relu, ws);
    }
    }
}

size_t fm__fast_conv2d_workspace(const fm__conv_shape *s) {
    const fm__conv_shape e = rotated(s);
    size_t f = conv_total(s, s, 0), d = rotated_ok(s) ? conv_total(s, &e, 1) : 0, w;
    if (wino_ok(s)) w = fm__plan_wino_bww(s).total;
    else if (plane_bww_ok(s)) w = fm__plan_plane_bww(s).total;
    else w = fm__plan_direct_bww(s).total;
    size_t m = f > d ? f : d;
    return (m > w ? m : w) + ALIGN_SLACK;
}

void fm__fast_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                             const fm__conv_shape *s, int relu, float *work) {
    conv_run(out, in, w, b, s, s, 0, relu, work);
}

void fm__fast_conv2d_backward_data(float *din, const float *dout, const float *w,
                                   const fm__conv_shape *s, float *work) {
    if (!rotated_ok(s)) {
        /* strided or over-padded convs are not in any network here: reference */
        fm__ref_conv2d_backward_data(din, dout, w, s, work);
        return;
    }
    const fm__conv_shape e = rotated(s);
    conv_run(din, dout, w, NULL, s, &e, 1, 0, work);
}

void fm__fast_conv2d_backward_weights(float *dw, float *db, const float *dout, const float *in,
                                      const fm__conv_shape *s, float *work) {
    float *ws = align64(work);
    if (wino_ok(s)) {
        const fm__wino_bww_plan p = fm__plan_wino_bww(s);
        fm__wino_bww(&p, dw, db, dout, in, s, ws);
    } else if (plane_bww_ok(s)) {
        const fm__plane_bww_plan p = fm__plan_plane_bww(s);
        fm__plane_bww(&p, dw, db, dout, in, s, ws);
    } else {
        const fm__direct_bww_plan p = fm__plan_direct_bww(s);
        fm__direct_bww(&p, dw, db, dout, in, s, ws);
    }
}
