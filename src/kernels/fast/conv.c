/* The conv ops of the table: each picks an algorithm for its shape
 * (Winograd, direct or plane) and lays out the workspace for it. */
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

/* Stride-1 convs whose channel counts would leave the matrix products above
 * with mostly empty vectors or tiny depths (the first layer: 1 input
 * channel) run directly on zero-padded copies of each input channel, VL
 * output pixels of a row at a time. */
static int plane_ok(const fm__conv_shape *s) {
    return s->stride == 1 && (s->c * s->k * s->k <= 27 || s->oc < 8);
}

/* weight gradients this way need a 3x3 kernel (its 9 taps live in registers) */
static int plane_bww_ok(const fm__conv_shape *s) {
    return s->stride == 1 && s->k == 3 && s->c < 8;
}

static size_t conv_fwd_len(const fm__conv_shape *s, int flip) {
    const fm__conv_shape e = flip ? rotated(s) : *s;
    const size_t T = (size_t)fm__kernel_threads();
    if (wino_ok(s)) {
        fm__wino p = fm__wino_plan(e.n, e.c, e.h, e.w, e.oc, e.oh, e.ow, e.pad_t, e.pad_l);
        return rup((size_t)36 * e.c * p.ocs, 16) + T * (p.stg + p.v + p.m);
    }
    if (plane_ok(&e))
        return (flip ? rup((size_t)e.k * e.k * e.c * e.oc, 16) : 0) + T * fm__plane_plan(&e).len;
    fm__direct d = fm__direct_plan(&e);
    return rup((size_t)e.k * e.k * e.c * d.ocs, 16) + T * (d.stg + d.ostg);
}

size_t fm__fast_conv2d_workspace(const fm__conv_shape *s) {
    size_t f = conv_fwd_len(s, 0), d = rotated_ok(s) ? conv_fwd_len(s, 1) : 0, w;
    if (wino_ok(s)) {
        fm__wgrad g = fm__wgrad_plan(s);
        w = (size_t)imin(fm__kernel_threads(), WGRAD_THREADS) * fm__wgrad_thread_len(&g);
    } else if (plane_bww_ok(s)) {
        w = rup((size_t)s->oc * s->c * 9 * VL, 16) + rup((size_t)s->oc * VL, 16) +
            (size_t)fm__kernel_threads() * fm__plane_plan(s).len;
    } else {
        fm__bww b = fm__bww_plan(s);
        w = b.acc + b.stg + b.dstg;
    }
    size_t m = f > d ? f : d;
    return (m > w ? m : w) + ALIGN_SLACK;
}

void fm__fast_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                             const fm__conv_shape *s, int relu, float *work) {
    float *ws = align64(work);
    if (wino_ok(s)) {
        fm__wino p =
            fm__wino_plan(s->n, s->c, s->h, s->w, s->oc, s->oh, s->ow, s->pad_t, s->pad_l);
        float *U = ws;
        fm__wino_weights(U, w, s->c, s->oc, 0);
        fm__wino_run(&p, out, in, U, b, relu, U + rup((size_t)36 * s->c * p.ocs, 16));
    } else if (plane_ok(s)) {
        fm__plane_run(s, out, in, w, b, relu, ws);
    } else {
        size_t wl = rup((size_t)s->k * s->k * s->c * rup(s->oc, VL), 16);
        fm__pack_weights(ws, w, s->c, s->oc, s->k, 0);
        fm__direct_run(s, out, in, ws, b, relu, ws + wl);
    }
}

void fm__fast_conv2d_backward_data(float *din, const float *dout, const float *w,
                                   const fm__conv_shape *s, float *work) {
    if (!rotated_ok(s)) {
        /* strided or over-padded convs are not in any network here: reference */
        fm__ref_conv2d_backward_data(din, dout, w, s, work);
        return;
    }
    float *ws = align64(work);
    const fm__conv_shape e = rotated(s);
    if (wino_ok(s)) {
        fm__wino p = fm__wino_plan(e.n, e.c, e.h, e.w, e.oc, e.oh, e.ow, e.pad_t, e.pad_l);
        fm__wino_weights(ws, w, s->c, s->oc, 1);
        fm__wino_run(&p, din, dout, ws, NULL, 0, ws + rup((size_t)36 * e.c * p.ocs, 16));
    } else if (plane_ok(&e)) {
        fm__rotate_weights(ws, w, s->c, s->oc, s->k);
        fm__plane_run(&e, din, dout, ws, NULL, 0, ws + rup((size_t)e.k * e.k * e.c * e.oc, 16));
    } else {
        size_t wl = rup((size_t)e.k * e.k * e.c * rup(e.oc, VL), 16);
        fm__pack_weights(ws, w, s->c, s->oc, s->k, 1);
        fm__direct_run(&e, din, dout, ws, NULL, 0, ws + wl);
    }
}

void fm__fast_conv2d_backward_weights(float *dw, float *db, const float *dout, const float *in,
                                      const fm__conv_shape *s, float *work) {
    if (wino_ok(s)) {
        fm__wino_bww(dw, db, dout, in, s, align64(work));
    } else if (plane_bww_ok(s)) {
        fm__plane_bww(dw, db, dout, in, s, align64(work));
    } else {
        fm__direct_bww(dw, dout, in, s, align64(work));
        if (db) fm__bias_grad(db, dout, s->n, s->oc, s->oh * s->ow);
    }
}
