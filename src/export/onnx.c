/* ONNX export: the network as a standard ONNX model (opset 13) that other
 * runtimes (onnxruntime, OpenCV DNN, ...) can run without fmnist.
 *
 * The graph mirrors the layer list in inference form: each layer type
 * declares its nodes (layers/: Conv (+ Relu), BatchNormalization with the
 * moving statistics, Relu, MaxPool, Flatten, Gemm, ...; dropout emits
 * nothing), and one Softmax closes the graph. Flatten is ONNX's NCHW
 * flatten, the same (C, H, W) order as fmnist's, so dense weights are written
 * as they are. Every tensor is named after its Keras-style layer ("conv2d",
 * "conv2d/relu", "dense_1/kernel"). The bytes come from the small protobuf
 * writer in pb.c (pb.h says why not protobuf-c).
 *
 * A model with flip test-time augmentation gets the network twice, sharing
 * one set of initializers: once on "input", once (nodes and tensors named
 * "mirrored/...") on its left-right mirror, and "probabilities" is
 * 0.5 * (softmax + mirrored softmax), fmnist's own sum. The mirror is a
 * MatMul with the exchange matrix (ones on the anti-diagonal) over the width
 * axis: exact, as each output is one pixel times 1 plus zeros, and accepted
 * by OpenCV 4.6's importer, which refuses both natural forms (Gather with
 * more than one index, Slice with step -1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "export/pb.h"
#include "model/model.h"
#include "model/quant.h"

/* Opset 13 came with IR version 7 (ONNX 1.8); declaring no newer IR keeps
 * older readers (OpenCV 4.x, Debian 12's onnx 1.12) happy. */
#define IR_VERSION 7
#define OPSET 13

/* Field numbers from onnx.proto (ONNX 1.12), grouped by message. */
enum { MODEL_IR = 1, MODEL_PRODUCER = 2, MODEL_PRODUCER_VERSION = 3, MODEL_DOC = 6,
       MODEL_GRAPH = 7, MODEL_OPSET = 8, MODEL_META = 14 };
enum { OPSET_VERSION = 2 };
enum { ENTRY_KEY = 1, ENTRY_VALUE = 2 };
enum { GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INIT = 5, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12 };
enum { NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP = 4, NODE_ATTR = 5 };
enum { ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_INTS = 8, ATTR_TYPE = 20 };
enum { ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_INTS_T = 7 }; /* AttributeProto.AttributeType */
enum { TENSOR_DIMS = 1, TENSOR_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW = 9 };
enum { DT_FLOAT = 1, DT_UINT8 = 2, DT_INT8 = 3 }; /* TensorProto.DataType */
enum { VALUE_NAME = 1, VALUE_TYPE = 2, VALUE_DOC = 3 };
enum { TYPE_TENSOR = 1, TTENSOR_ELEM = 1, TTENSOR_SHAPE = 2, SHAPE_DIM = 1, DIM_VALUE = 1,
       DIM_PARAM = 2 };

#define NAME_MAX_LEN 96 /* layer names are < 32 chars; suffixes are short */

/* The graph being built, the tensor that flows into the next node, the
 * prefix of the node names of the branch being built ("" or "mirrored/"),
 * and whether its initializers are still to be written (not for the second
 * branch, which reads the first's). */
typedef struct {
    fm__pb graph;
    char cur[NAME_MAX_LEN];
    const char *prefix;
    int write_params;
} builder;

static void attr_int(fm__pb *node, const char *name, int64_t v) {
    fm__pb a = {0};
    fm__pb_str(&a, ATTR_NAME, name);
    fm__pb_int(&a, ATTR_TYPE, ATTR_INT);
    fm__pb_int(&a, ATTR_I, v);
    fm__pb_msg(node, NODE_ATTR, &a);
    fm__pb_free(&a);
}

static void attr_float(fm__pb *node, const char *name, float v) {
    fm__pb a = {0};
    fm__pb_str(&a, ATTR_NAME, name);
    fm__pb_int(&a, ATTR_TYPE, ATTR_FLOAT);
    fm__pb_float(&a, ATTR_F, v);
    fm__pb_msg(node, NODE_ATTR, &a);
    fm__pb_free(&a);
}

static void attr_ints(fm__pb *node, const char *name, const int64_t *v, int n) {
    fm__pb a = {0};
    fm__pb_str(&a, ATTR_NAME, name);
    fm__pb_int(&a, ATTR_TYPE, ATTR_INTS_T);
    for (int i = 0; i < n; i++) fm__pb_int(&a, ATTR_INTS, v[i]);
    fm__pb_msg(node, NODE_ATTR, &a);
    fm__pb_free(&a);
}

/* Starts a node reading the current tensor; the caller adds further inputs
 * (in order) and attributes, then calls node_end. */
static void node_begin(const builder *g, fm__pb *node, const char *op, const char *name) {
    memset(node, 0, sizeof *node);
    fm__pb_str(node, NODE_INPUT, g->cur);
    fm__pb_str(node, NODE_NAME, name);
    fm__pb_str(node, NODE_OP, op);
}

/* The initializer `name`: dims, then n values of dtype at v (floats
 * little-endian, bytes as they are). */
static void initializer(builder *g, const char *name, int dtype, const void *v,
                        const int64_t *dims, int ndims) {
    fm__pb t = {0};
    size_t n = 1;
    for (int i = 0; i < ndims; i++) {
        fm__pb_int(&t, TENSOR_DIMS, dims[i]);
        n *= (size_t)dims[i];
    }
    fm__pb_int(&t, TENSOR_TYPE, dtype);
    fm__pb_str(&t, TENSOR_NAME, name);
    if (dtype == DT_FLOAT) fm__pb_floats_le(&t, TENSOR_RAW, v, n);
    else fm__pb_bytes(&t, TENSOR_RAW, v, n);
    fm__pb_msg(&g->graph, GRAPH_INIT, &t);
    fm__pb_free(&t);
}

/* Adds the initializer "LAYER/WHAT" holding v with the given dims (unless
 * the branch reuses it), as the node's next input. */
static void node_param(builder *g, fm__pb *node, const char *layer, const char *what,
                       const float *v, const int64_t *dims, int ndims) {
    char name[NAME_MAX_LEN];
    snprintf(name, sizeof name, "%s/%s", layer, what);
    fm__pb_str(node, NODE_INPUT, name);
    if (g->write_params) initializer(g, name, DT_FLOAT, v, dims, ndims);
}

/* The node's output is named like the node and becomes the current tensor. */
static void node_end(builder *g, fm__pb *node, const char *name) {
    fm__pb_str(node, NODE_OUTPUT, name);
    fm__pb_msg(&g->graph, GRAPH_NODE, node);
    fm__pb_free(node);
    snprintf(g->cur, sizeof g->cur, "%s", name);
}

/* A node without parameters; axis >= 0 sets its "axis" attribute. */
static void simple(builder *g, const char *op, const char *name, int axis) {
    fm__pb node;
    node_begin(g, &node, op, name);
    if (axis >= 0) attr_int(&node, "axis", axis);
    node_end(g, &node, name);
}

/* An int8 layer's quantized input, as QDQ: QuantizeLinear then
 * DequantizeLinear of the current tensor with the layer's input scale and
 * zero point, the rounding fmnist's kernels do. */
static void qdq_input(builder *g, const fm__layer *l, const fm__qlayer *q) {
    char scale[NAME_MAX_LEN], zp[NAME_MAX_LEN], name[NAME_MAX_LEN];
    snprintf(scale, sizeof scale, "%s/input_scale", l->name);
    snprintf(zp, sizeof zp, "%s/input_zero_point", l->name);
    if (g->write_params) {
        initializer(g, scale, DT_FLOAT, &q->in_scale, NULL, 0);
        initializer(g, zp, DT_UINT8, &q->zp, NULL, 0);
    }
    static const char *const ops[2] = {"QuantizeLinear", "DequantizeLinear"};
    static const char *const what[2] = {"input_quantized", "input_dequantized"};
    for (int k = 0; k < 2; k++) {
        fm__pb node;
        snprintf(name, sizeof name, "%s%s/%s", g->prefix, l->name, what[k]);
        node_begin(g, &node, ops[k], name);
        fm__pb_str(&node, NODE_INPUT, scale);
        fm__pb_str(&node, NODE_INPUT, zp);
        node_end(g, &node, name);
    }
}

/* An int8 layer's weight as "LAYER/WHAT": a DequantizeLinear (per output
 * row, axis 0) of its int8 values, scales and zero zero points, written
 * once for both branches. */
static void qdq_weight(builder *g, const fm__layer *l, const fm__qlayer *q, const char *what,
                       const fm__tensor *t) {
    if (!g->write_params) return;
    char w[NAME_MAX_LEN], scale[NAME_MAX_LEN], zp[NAME_MAX_LEN], out[NAME_MAX_LEN];
    snprintf(w, sizeof w, "%s/%s_int8", l->name, what);
    snprintf(scale, sizeof scale, "%s/%s_scale", l->name, what);
    snprintf(zp, sizeof zp, "%s/%s_zero_point", l->name, what);
    snprintf(out, sizeof out, "%s/%s", l->name, what);
    int64_t dims[4], rows = q->rows;
    for (int k = 0; k < t->ndim; k++) dims[k] = t->shape[k];
    int8_t *zeros = calloc((size_t)q->rows, 1);
    if (!zeros) {
        g->graph.oom = 1;
        return;
    }
    initializer(g, w, DT_INT8, q->w, dims, t->ndim);
    initializer(g, scale, DT_FLOAT, q->w_scale, &rows, 1);
    initializer(g, zp, DT_INT8, zeros, &rows, 1);
    free(zeros);
    fm__pb node = {0};
    fm__pb_str(&node, NODE_INPUT, w);
    fm__pb_str(&node, NODE_INPUT, scale);
    fm__pb_str(&node, NODE_INPUT, zp);
    fm__pb_str(&node, NODE_NAME, out);
    fm__pb_str(&node, NODE_OP, "DequantizeLinear");
    attr_int(&node, "axis", 0);
    fm__pb_str(&node, NODE_OUTPUT, out);
    fm__pb_msg(&g->graph, GRAPH_NODE, &node);
    fm__pb_free(&node);
}

/* One node a layer declared: its initializers from the layer's tensors
 * (their shapes as planned), then its attributes. In an int8 layer (q not
 * NULL) the node with the weight reads the QDQ input and weight instead. */
static void layer_node(builder *g, const fm__layer *l, const fm__qlayer *q,
                       const fm__onnx_node *d) {
    char name[NAME_MAX_LEN];
    snprintf(name, sizeof name, "%s%s%s", g->prefix, l->name, d->suffix);
    int int8 = 0;
    for (int p = 0; q && p < d->n_params; p++) int8 |= d->params[p] == l->type->qweight;
    if (int8) qdq_input(g, l, q);
    fm__pb node;
    node_begin(g, &node, d->op, name);
    for (int p = 0; p < d->n_params; p++) {
        const fm__tensor *t = &l->t[d->params[p]];
        if (int8 && d->params[p] == l->type->qweight) {
            qdq_weight(g, l, q, d->param_names[p], t);
            char w[NAME_MAX_LEN];
            snprintf(w, sizeof w, "%s/%s", l->name, d->param_names[p]);
            fm__pb_str(&node, NODE_INPUT, w);
            continue;
        }
        int64_t dims[4];
        for (int k = 0; k < t->ndim; k++) dims[k] = t->shape[k];
        node_param(g, &node, l->name, d->param_names[p], t->data, dims, t->ndim);
    }
    for (int a = 0; a < d->n_attrs; a++) {
        const fm__onnx_attr *at = &d->attrs[a];
        if (at->kind == FM__ONNX_INT) attr_int(&node, at->name, at->ints[0]);
        else if (at->kind == FM__ONNX_INTS) attr_ints(&node, at->name, at->ints, at->n);
        else attr_float(&node, at->name, at->f);
    }
    node_end(g, &node, name);
}

/* A float tensor value: dims[0] < 0 stands for the symbolic batch "N". */
static void value_info(fm__pb *graph, int field, const char *name, const int64_t *dims, int n,
                       const char *doc) {
    fm__pb shape = {0}, ttype = {0}, type = {0}, vi = {0};
    for (int i = 0; i < n; i++) {
        fm__pb dim = {0};
        if (dims[i] < 0) fm__pb_str(&dim, DIM_PARAM, "N");
        else fm__pb_int(&dim, DIM_VALUE, dims[i]);
        fm__pb_msg(&shape, SHAPE_DIM, &dim);
        fm__pb_free(&dim);
    }
    fm__pb_int(&ttype, TTENSOR_ELEM, DT_FLOAT);
    fm__pb_msg(&ttype, TTENSOR_SHAPE, &shape);
    fm__pb_msg(&type, TYPE_TENSOR, &ttype);
    fm__pb_str(&vi, VALUE_NAME, name);
    fm__pb_msg(&vi, VALUE_TYPE, &type);
    fm__pb_str(&vi, VALUE_DOC, doc);
    fm__pb_msg(graph, field, &vi);
    fm__pb_free(&shape);
    fm__pb_free(&ttype);
    fm__pb_free(&type);
    fm__pb_free(&vi);
}

static void meta(fm__pb *model, const char *key, const char *value) {
    fm__pb e = {0};
    fm__pb_str(&e, ENTRY_KEY, key);
    fm__pb_str(&e, ENTRY_VALUE, value);
    fm__pb_msg(model, MODEL_META, &e);
    fm__pb_free(&e);
}

/* The network from g->cur to its Softmax, named `out`. */
static void network(const fm_model *m, builder *g, const char *out) {
    for (int i = 0; i < m->n_layers; i++) {
        const fm__layer *l = &m->layers[i];
        fm__onnx_node nodes[FM__ONNX_MAX_NODES];
        int n = l->type->onnx(l, nodes);
        const fm__qlayer *q = m->quant && m->quant->layers[i].w ? &m->quant->layers[i] : NULL;
        for (int k = 0; k < n; k++) layer_node(g, l, q, &nodes[k]);
    }
    /* the network ends flat (the parser makes sure), with the logits */
    simple(g, "Softmax", out, 1);
}

/* Flip test-time augmentation: the network on "input" and on "mirrored",
 * the mean of the two softmax outputs in "probabilities". */
static void network_tta(const fm_model *m, builder *g) {
    const int w = m->input.w;
    float *exchange = calloc((size_t)w * (size_t)w, sizeof *exchange);
    if (!exchange) {
        g->graph.oom = 1;
        return;
    }
    for (int i = 0; i < w; i++) exchange[(size_t)i * w + (w - 1 - i)] = 1.0f;
    const int64_t dims[2] = {w, w};
    fm__pb node;
    node_begin(g, &node, "MatMul", "mirrored");
    node_param(g, &node, "tta", "mirror", exchange, dims, 2);
    node_end(g, &node, "mirrored");
    free(exchange);

    snprintf(g->cur, sizeof g->cur, "input");
    network(m, g, "tta/softmax");
    g->prefix = "mirrored/";
    g->write_params = 0;
    snprintf(g->cur, sizeof g->cur, "mirrored");
    network(m, g, "mirrored/softmax");
    g->prefix = "";
    g->write_params = 1;

    snprintf(g->cur, sizeof g->cur, "tta/softmax");
    node_begin(g, &node, "Add", "tta/sum");
    fm__pb_str(&node, NODE_INPUT, "mirrored/softmax");
    node_end(g, &node, "tta/sum");
    const float half = 0.5f;
    node_begin(g, &node, "Mul", "probabilities");
    node_param(g, &node, "tta", "half", &half, NULL, 0); /* a scalar */
    node_end(g, &node, "probabilities");
}

/* Builds the graph: nodes and initializers first, then names, inputs, outputs. */
static void build_graph(const fm_model *m, builder *g) {
    g->prefix = "";
    g->write_params = 1;
    snprintf(g->cur, sizeof g->cur, "input");
    if (m->tta == FM_TTA_FLIP) network_tta(m, g);
    else network(m, g, "probabilities");

    fm__pb_str(&g->graph, GRAPH_NAME, "fmnist");
    const int64_t in_dims[4] = {-1, m->input.c, m->input.h, m->input.w};
    const int64_t out_dims[2] = {-1, m->classes};
    value_info(&g->graph, GRAPH_INPUT, "input", in_dims, 4,
               "images, NCHW, row-major; each value is the 0-255 pixel divided by 255");
    value_info(&g->graph, GRAPH_OUTPUT, "probabilities", out_dims, 2,
               m->tta == FM_TTA_FLIP ? "softmax class probabilities, in the order of metadata "
                                       "class_names: the mean of the image's and its left-right "
                                       "mirror's"
                                     : "softmax class probabilities, in the order of metadata "
                                       "class_names");
}

int fm_model_export_onnx(const fm_model *m, const char *path, fm_err *err) {
    builder g = {0};
    build_graph(m, &g);

    fm__pb model = {0}, opset = {0};
    fm__pb_int(&model, MODEL_IR, IR_VERSION);
    fm__pb_int(&opset, OPSET_VERSION, OPSET); /* domain "" (the default): standard ops */
    fm__pb_msg(&model, MODEL_OPSET, &opset);
    fm__pb_str(&model, MODEL_PRODUCER, "fmnist");
    fm__pb_str(&model, MODEL_PRODUCER_VERSION, FM_VERSION);
    char text[4096];
    snprintf(text, sizeof text,
             "Fashion-MNIST classifier exported by fmnist. Input 'input': float (N,%d,%d,%d), "
             "grey pixels divided by 255 (0..1). Output 'probabilities': (N,%d) softmax over "
             "the classes listed in metadata 'class_names'%s.",
             m->input.c, m->input.h, m->input.w, m->classes,
             m->tta == FM_TTA_FLIP ? ", averaged over the image and its left-right mirror "
                                     "(test-time augmentation)"
                                   : "");
    fm__pb_str(&model, MODEL_DOC, text);
    fm__pb_msg(&model, MODEL_GRAPH, &g.graph);
    char *names = fm__model_class_names_json(m); /* the model file's record of them */
    if (names) meta(&model, "class_names", names);
    else model.oom = 1;
    free(names);
    meta(&model, "input_normalization", "x = pixel / 255");
    meta(&model, "test_time_augmentation", fm_tta_name(m->tta));
    meta(&model, "precision", fm_model_precision(m));
    /* protobuf strings must be UTF-8: the description parser refuses any other */
    meta(&model, "model_description", m->description);

    int rc = model.oom ? fm__err(err, "%s: out of memory building the ONNX model", path)
                       : fm__write_file_atomic(path, model.data, model.len, err);
    fm__pb_free(&g.graph);
    fm__pb_free(&opset);
    fm__pb_free(&model);
    return rc;
}
