/* Reading a planned layer in tests: its description values by key name, its
 * type by description word, its tensors by declaration index. */
#ifndef FM_TESTS_LAYERTEST_H
#define FM_TESTS_LAYERTEST_H

#include <stdio.h>
#include <stdlib.h>

#include "layers/layer.h"

static inline const fm__arg *lt__arg(const fm__layer *l, const char *key) {
    const fm__arg *a = fm__layer_arg(l, key);
    if (!a) {
        fprintf(stderr, "%s (%s) has no key '%s'\n", l->name, l->type->word, key);
        exit(1);
    }
    return a;
}

/* an integer or choice value ("filters", "activation", ...) */
static inline int lt_int(const fm__layer *l, const char *key) { return lt__arg(l, key)->i; }
/* a float value ("rate", "momentum", ...) */
static inline float lt_float(const fm__layer *l, const char *key) { return lt__arg(l, key)->f; }
/* the value itself, to change it (NULL if its type has no such key) */
static inline fm__arg *lt_arg_mut(fm__layer *l, const char *key) {
    return (fm__arg *)fm__layer_arg(l, key);
}
/* whether l is of the type the description calls `word` */
static inline int lt_is(const fm__layer *l, const char *word) {
    return l->type == fm__layer_type_find(word);
}

#endif
