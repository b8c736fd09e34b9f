/* The layer types. Each file holds one type: its planning (output shape and
 * parameter counts from the input shape), its forward pass and its backward
 * pass side by side, all math done by the model's kernel table (m->k).
 *
 * Buffers: x is the layer's input (B, in), l->y its output (B, out), both
 * planned by fm__model_reserve. Backward gets dy (B, out), which it may
 * overwrite (it is scratch), writes dx (B, in) when need_dx (0 for the first
 * layer, whose input gradient nobody uses; dx is then just scratch) and
 * accumulates (+=) into m->grads. */
#ifndef FM_LAYERS_H
#define FM_LAYERS_H

#include "model/model.h"

typedef struct fm__layer_ops {
    const char *stem;       /* Keras name stem: "conv2d" -> conv2d, conv2d_1, ... */
    const char *keras_type; /* for the summary: "Conv2D" */
    /* l->in is set; sets l->out, l->nw, l->nb. Errors name source:line. */
    int (*plan)(fm__layer *l, const char *source, fm_err *err);
    /* NULL for layers whose output is their input (flatten, softmax: the
     * model applies softmax itself); their gradient passes through. */
    void (*forward)(fm_model *m, fm__layer *l, const float *x, int n, int training, fm_rng *rng);
    void (*backward)(fm_model *m, fm__layer *l, float *dx, float *dy, const float *x, int n,
                     int need_dx);
} fm__layer_ops;

extern const fm__layer_ops fm__conv2d_ops, fm__batchnorm_ops, fm__relu_ops, fm__maxpool_ops,
    fm__dropout_ops, fm__flatten_ops, fm__dense_ops, fm__softmax_ops;

/* The table for a layer type. */
const fm__layer_ops *fm__layer_ops_of(fm__layer_type type);

/* Kernel scratch (floats) a conv layer needs for a batch of n. */
size_t fm__conv2d_workspace(const fm__kernels *k, const fm__layer *l, int n);

#endif
