/* The table of layer types: one line per type. A new layer type is its own
 * file in this folder plus its line here. */
#include <string.h>

#include "layers/layer.h"

#define FM__LAYER_TYPES(X) \
    X(conv2d)              \
    X(batchnorm)           \
    X(relu)                \
    X(maxpool)             \
    X(avgpool)             \
    X(globalavgpool)       \
    X(dropout)             \
    X(flatten)             \
    X(dense)               \
    X(softmax)

#define DECLARE(name) extern const fm__layer_type fm__##name##_layer;
FM__LAYER_TYPES(DECLARE)
#undef DECLARE

#define ENTRY(name) &fm__##name##_layer,
const fm__layer_type *const fm__layer_types[] = {FM__LAYER_TYPES(ENTRY) NULL};
#undef ENTRY

const char *const fm__activation_names[] = {"linear", "relu", "softmax", NULL};

const fm__layer_type *fm__layer_type_find(const char *word) {
    for (int i = 0; fm__layer_types[i]; i++)
        if (!strcmp(fm__layer_types[i]->word, word)) return fm__layer_types[i];
    return NULL;
}

const fm__arg *fm__layer_arg(const fm__layer *l, const char *name) {
    for (int k = 0; l->type->keys && l->type->keys[k].name; k++)
        if (!strcmp(l->type->keys[k].name, name)) return &l->arg[k];
    return NULL;
}

void fm__layer_set_tensor(fm__layer *l, int j, int ndim, const int *shape) {
    fm__tensor *t = &l->t[j];
    t->ndim = ndim;
    t->len = 1;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        t->len *= (size_t)shape[d];
    }
}
