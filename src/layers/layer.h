/* The layer interface. Each layer type is one file in this folder that
 * declares everything about it in one fm__layer_type: its word and keys in
 * the model description (with defaults and ranges), its shape planning
 * (output shape, parameter shapes, saved state and kernel scratch for a
 * batch), its tensors (name suffix, trainable or a statistic, initial
 * values), its forward and backward passes, and its ONNX nodes. table.c
 * lists the types. The model (model/) builds, initialises, saves, loads,
 * summarises and exports a network by iterating over these declarations;
 * it never switches on a layer type. Layers see the kernels (kernels/) and
 * nothing of the model.
 *
 * Buffers of a pass: x is the layer's input (B, in), l->y its output
 * (B, out), both planned by the model. Backward gets dy (B, out), which it
 * may overwrite (it is scratch), writes dx (B, in) when need_dx (0 for the
 * first layer with parameters, whose input gradient nobody uses; dx is then
 * just scratch) and accumulates (+=) into its tensors' gradients. */
#ifndef FM_LAYERS_LAYER_H
#define FM_LAYERS_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "core/draws.h"
#include "dist/dist.h"
#include "fmnist/fmnist.h"
#include "kernels/kernels.h"

/* Per-sample shape; flat outputs (dense, flatten, global pooling) are
 * (c = units, h = w = 1) with flat = 1, so a summary can tell (units) from
 * (1, 1, C). */
typedef struct fm__shape {
    int c, h, w;
    int flat;
} fm__shape;

static inline size_t fm__shape_len(fm__shape s) { return (size_t)s.c * s.h * s.w; }

/* ---- keys of the model description ------------------------------------- */

typedef enum fm__key_kind {
    FM__KEY_INT,    /* an integer in [lo, hi] */
    FM__KEY_FLOAT,  /* a finite number in [lo, hi], ends excluded by lo_open / hi_open */
    FM__KEY_CHOICE  /* one word of choices; the value is its index */
} fm__key_kind;

typedef struct fm__key {
    const char *name;
    fm__key_kind kind;
    int required;  /* else def applies */
    double def;    /* the default: a value, or a choice's index */
    double lo, hi;
    int lo_open, hi_open;
    const char *const *choices; /* FM__KEY_CHOICE: NULL-terminated */
    const char *example;        /* a required bare value: shown when it is missing */
} fm__key;

typedef union fm__arg {
    int i;   /* FM__KEY_INT and FM__KEY_CHOICE */
    float f; /* FM__KEY_FLOAT */
} fm__arg;

#define FM__MAX_KEYS 8

/* The activations conv and dense take, by their choice index (conv offers
 * the first two). */
enum { FM__ACT_LINEAR, FM__ACT_RELU, FM__ACT_SOFTMAX };
extern const char *const fm__activation_names[]; /* linear, relu, softmax */

/* ---- tensors ------------------------------------------------------------ */

typedef enum fm__init {
    FM__INIT_ZERO,
    FM__INIT_ONE,
    /* Glorot uniform over the layer's fan_in and fan_out:
     * (2u - 1) * sqrt(6 / (fan_in + fan_out)), u uniform in [0, 1) */
    FM__INIT_GLOROT
} fm__init;

typedef struct fm__tensor_decl {
    const char *suffix; /* stored as "<layer name>.<suffix>" */
    int trainable;      /* a parameter (with gradient and Adam moments); else a statistic */
    fm__init init;
    int nonneg;         /* a loaded value must not be negative (variances) */
} fm__tensor_decl;

#define FM__MAX_TENSORS 4

/* One tensor of a planned layer: its shape comes from the layer's plan, its
 * place from the model (offset into the parameter or statistic block, in
 * floats; data and grad point there once allocated, grad NULL for
 * statistics). */
typedef struct fm__tensor {
    int ndim;
    int shape[4];
    size_t len;
    size_t offset;
    float *data, *grad;
} fm__tensor;

/* ---- ONNX --------------------------------------------------------------- */

typedef enum fm__onnx_attr_kind { FM__ONNX_INT, FM__ONNX_INTS, FM__ONNX_FLOAT } fm__onnx_attr_kind;

typedef struct fm__onnx_attr {
    const char *name;
    fm__onnx_attr_kind kind;
    int n;           /* FM__ONNX_INTS: how many */
    int64_t ints[4]; /* FM__ONNX_INT: ints[0] */
    float f;
} fm__onnx_attr;

/* One node of a layer's inference graph. It reads the tensor the previous
 * node wrote, then the layer's tensors listed in `params` (as initializers
 * "<layer>/<param_name>", in the operator's input order), and writes a
 * tensor named like the node: the layer's name plus `suffix`. */
typedef struct fm__onnx_node {
    const char *op;
    const char *suffix; /* "" or "/relu", ... */
    int n_params;
    int params[FM__MAX_TENSORS];
    const char *param_names[FM__MAX_TENSORS];
    int n_attrs;
    fm__onnx_attr attrs[4];
} fm__onnx_node;

#define FM__ONNX_MAX_NODES 2

/* ---- layers ------------------------------------------------------------- */

typedef struct fm__layer_type fm__layer_type;

typedef struct fm__layer {
    const fm__layer_type *type;
    int line;      /* line of the description it came from */
    char name[32]; /* Keras-style: conv2d, conv2d_1, batch_normalization, ... */
    fm__arg arg[FM__MAX_KEYS]; /* the description's values, in the type's key order */

    fm__shape in, out;
    fm__tensor t[FM__MAX_TENSORS]; /* in the type's declaration order */
    double fan_in, fan_out;        /* for FM__INIT_GLOROT */

    /* planned by the model for its largest batch */
    float *y;   /* output (B, out); the input's buffer unless the type has its own */
    void *save; /* save_bytes: what forward keeps for backward */

    /* int8 inference (model/quant.h), set on a quantized model only: a
     * layer with q runs forward_int8 from it; a folded one (a BatchNorm
     * whose affine the next layer's q applies as it rounds its input) is
     * skipped, the next layer reading this one's input. */
    const fm__qweights *q;
    int folded;
} fm__layer;

/* What a pass gives a layer besides its own buffers. */
typedef struct fm__layer_ctx {
    const fm__kernels *k;
    float *work;  /* kernel scratch: at least the layer's work_floats */
    int training; /* batch statistics and dropout; else inference */
    const fm__draws *draws; /* training only: the batch's streams (dropout's) */
    /* Precise BatchNorm (training 0): k > 0 for the k-th batch of a
     * re-estimation, where BatchNorm normalises by the batch's statistics and
     * sets its moving ones to the plain mean of the k batches' so far;
     * dropout passes through. 0 otherwise. */
    int restat;
    /* the processes the batch is split over (batch statistics span them);
     * NULL: this process alone */
    const fm__dist *dist;
} fm__layer_ctx;

typedef enum fm__output {
    FM__OUT_OWN,      /* writes l->y, a buffer of its own */
    FM__OUT_IN_PLACE, /* rewrites its input's buffer (forward and backward still run) */
    FM__OUT_ALIAS     /* is its input: no forward, gradients pass straight through */
} fm__output;

struct fm__layer_type {
    const char *word;       /* in the description: "conv" */
    const char *stem;       /* Keras name stem: conv2d, conv2d_1, ... */
    const char *keras_type; /* for the summary: "Conv2D" */
    const fm__key *keys;    /* ended by a NULL name */
    const char *positional; /* the key a bare value stands for, or NULL */
    const fm__tensor_decl *tensors;
    int n_tensors;
    fm__output output;

    /* l->in and l->arg are set: sets l->out, the shapes of l->t[] and (with
     * Glorot tensors) l->fan_in/fan_out. last: the layer ends the network.
     * Errors read "SOURCE:LINE: problem". */
    int (*plan)(fm__layer *l, int last, const char *source, fm_err *err);
    /* Bytes kept from forward to backward (l->save) and kernel scratch in
     * floats, for a batch of n; NULL: none. */
    size_t (*save_bytes)(const fm__layer *l, int n);
    size_t (*work_floats)(const fm__layer *l, const fm__kernels *k, int n);
    /* Whether its output is the network's softmax (so the network may end
     * here); NULL: never. */
    int (*gives_probs)(const fm__layer *l);

    void (*forward)(fm__layer *l, const fm__layer_ctx *c, const float *x, int n);
    void (*backward)(fm__layer *l, const fm__layer_ctx *c, float *dx, float *dy, const float *x,
                     int n, int need_dx);

    /* Its inference nodes (at most FM__ONNX_MAX_NODES) into nodes; returns
     * how many (0: the identity at inference). */
    int (*onnx)(const fm__layer *l, fm__onnx_node *nodes);

    /* int8 inference (model/quant.h). A type with forward_int8 is quantized
     * in an int8 model: tensor qweight, whose rows are its outputs (out
     * first: OC or OUT), becomes int8 weights with a scale per row, and its
     * input a uint8 scale and zero point; qbias is the bias the epilogue
     * adds. forward_int8 runs it from l->q, needing work_int8 bytes of
     * scratch (x (B, in) -> y (B, out) as forward). NULL: the type runs in
     * float in an int8 model. */
    int qweight, qbias;
    size_t (*work_int8)(const fm__layer *l, const fm__kernels *k, int n);
    void (*forward_int8)(fm__layer *l, const fm__layer_ctx *c, const float *x, int n);
    /* The inference op as a per-channel affine, y = x * mul[ch] + add[ch]
     * (in.c channels), for folding into the next quantized layer; NULL: the
     * type cannot be folded. */
    void (*affine)(const fm__layer *l, float *mul, float *add);
};

/* The types (table.c), NULL-terminated, and the one a description word names. */
extern const fm__layer_type *const fm__layer_types[];
const fm__layer_type *fm__layer_type_find(const char *word);

/* The value of key `name` of l (NULL if its type has no such key). */
const fm__arg *fm__layer_arg(const fm__layer *l, const char *name);

/* Parameters and statistics of l together: what a summary row counts. */
static inline size_t fm__layer_param_count(const fm__layer *l) {
    size_t n = 0;
    for (int j = 0; j < l->type->n_tensors; j++) n += l->t[j].len;
    return n;
}

/* Sets tensor j of l to ndim dims (from shape) and its length. */
void fm__layer_set_tensor(fm__layer *l, int j, int ndim, const int *shape);

#endif
