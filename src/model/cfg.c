/* The model-description parser: one layer per line,
 *
 *   input 28 28 1
 *   conv filters=64 kernel=3 padding=same activation=relu
 *   maxpool 2
 *   dropout 0.25
 *   ...
 *
 * A line is a layer word followed by key=value fields; maxpool and dropout
 * also take their one value bare. '#' starts a comment. Defaults follow Keras
 * (stride 1, padding valid, activation linear, BatchNorm momentum 0.99 and
 * eps 1e-3, pool size 2). This file only reads the text; shapes are checked
 * when the model is planned (model.c). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/model.h"

#define MAX_FIELDS 16

typedef struct {
    const char *word;
    fm__layer_type type;
    const char *keys[6];    /* allowed keys, NULL-terminated */
    const char *positional; /* key a bare value stands for, or NULL */
} layer_spec;

static const layer_spec specs[] = {
    {"conv", FM__CONV2D, {"filters", "kernel", "stride", "padding", "activation", NULL}, NULL},
    {"batchnorm", FM__BATCHNORM, {"momentum", "eps", NULL}, NULL},
    {"relu", FM__RELU, {NULL}, NULL},
    {"maxpool", FM__MAXPOOL, {"size", NULL}, "size"},
    {"dropout", FM__DROPOUT, {"rate", NULL}, "rate"},
    {"flatten", FM__FLATTEN, {NULL}, NULL},
    {"dense", FM__DENSE, {"units", "activation", NULL}, NULL},
    {"softmax", FM__SOFTMAX, {NULL}, NULL},
};
#define N_SPECS (sizeof specs / sizeof specs[0])

typedef struct {
    const char *source;
    int line;
    const char *word;
    fm_err *err;
} ctx;

static int parse_int(const ctx *c, const char *key, const char *v, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno == ERANGE || end == v || *end)
        return fm__err(c->err, "%s:%d: %s: %s: '%.40s' is not an integer", c->source, c->line,
                       c->word, key, v);
    if (x < lo || x > hi)
        return fm__err(c->err, "%s:%d: %s: %s=%ld is out of range [%ld, %ld]", c->source, c->line,
                       c->word, key, x, lo, hi);
    *out = (int)x;
    return 0;
}

/* lo_open: whether lo itself is excluded; the upper bound is likewise hi_open. */
static int parse_float(const ctx *c, const char *key, const char *v, double lo, int lo_open,
                       double hi, int hi_open, float *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno == ERANGE || end == v || *end || !isfinite(x))
        return fm__err(c->err, "%s:%d: %s: %s: '%.40s' is not a number", c->source, c->line,
                       c->word, key, v);
    if (x < lo || (lo_open && x == lo) || x > hi || (hi_open && x == hi))
        return fm__err(c->err, "%s:%d: %s: %s=%g is out of range %c%g, %g%c", c->source, c->line,
                       c->word, key, x, lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']');
    *out = (float)x;
    return 0;
}

static int parse_activation(const ctx *c, const char *v, int allow_softmax, fm__activation *out) {
    if (!strcmp(v, "relu")) *out = FM__ACT_RELU;
    else if (!strcmp(v, "linear")) *out = FM__ACT_NONE;
    else if (allow_softmax && !strcmp(v, "softmax")) *out = FM__ACT_SOFTMAX;
    else
        return fm__err(c->err, "%s:%d: %s: unknown activation '%.40s' (expected relu, linear%s)",
                       c->source, c->line, c->word, v, allow_softmax ? " or softmax" : "");
    return 0;
}

static int set_key(const ctx *c, fm__layer *l, const char *key, const char *v) {
    if (!strcmp(key, "filters")) return parse_int(c, key, v, 1, 65536, &l->filters);
    if (!strcmp(key, "kernel")) return parse_int(c, key, v, 1, 64, &l->kernel);
    if (!strcmp(key, "stride")) return parse_int(c, key, v, 1, 64, &l->stride);
    if (!strcmp(key, "units")) return parse_int(c, key, v, 1, 1 << 20, &l->units);
    /* the argmax of a window is stored in a byte */
    if (!strcmp(key, "size")) return parse_int(c, key, v, 1, 15, &l->pool);
    if (!strcmp(key, "rate")) return parse_float(c, key, v, 0.0, 0, 1.0, 1, &l->rate);
    if (!strcmp(key, "momentum")) return parse_float(c, key, v, 0.0, 0, 1.0, 0, &l->momentum);
    if (!strcmp(key, "eps")) return parse_float(c, key, v, 0.0, 1, 1.0, 0, &l->eps);
    if (!strcmp(key, "activation")) return parse_activation(c, v, l->type == FM__DENSE, &l->act);
    /* padding */
    if (!strcmp(v, "same")) l->pad_same = 1;
    else if (!strcmp(v, "valid")) l->pad_same = 0;
    else
        return fm__err(c->err, "%s:%d: %s: padding must be 'same' or 'valid', not '%.40s'",
                       c->source, c->line, c->word, v);
    return 0;
}

/* "input HEIGHT WIDTH CHANNELS", Keras's input_shape order. */
static int parse_input(const ctx *c, char **tok, int n, fm__shape *in) {
    if (n != 4 || strchr(tok[1], '=') || strchr(tok[2], '=') || strchr(tok[3], '='))
        return fm__err(c->err, "%s:%d: input: expected 'input HEIGHT WIDTH CHANNELS', e.g. "
                               "'input 28 28 1'",
                       c->source, c->line);
    in->flat = 0;
    if (parse_int(c, "height", tok[1], 1, 4096, &in->h) ||
        parse_int(c, "width", tok[2], 1, 4096, &in->w) ||
        parse_int(c, "channels", tok[3], 1, 65536, &in->c))
        return -1;
    return 0;
}

static int parse_layer(const ctx *c, const layer_spec *sp, char **tok, int n, fm__layer *l) {
    memset(l, 0, sizeof *l);
    l->type = sp->type;
    l->line = c->line;
    l->stride = 1;
    l->pool = 2;
    l->momentum = 0.99f;
    l->eps = 1e-3f;
    unsigned seen = 0;
    for (int i = 1; i < n; i++) {
        char *eq = strchr(tok[i], '=');
        const char *key, *val;
        if (eq) {
            *eq = 0;
            key = tok[i];
            val = eq + 1;
        } else if (sp->positional) {
            key = sp->positional;
            val = tok[i];
        } else if (!sp->keys[0]) {
            return fm__err(c->err, "%s:%d: %s takes no arguments, got '%.40s'", c->source, c->line,
                           sp->word, tok[i]);
        } else {
            return fm__err(c->err, "%s:%d: %s: expected key=value, got '%.40s'", c->source,
                           c->line, sp->word, tok[i]);
        }
        int k = 0;
        while (sp->keys[k] && strcmp(sp->keys[k], key)) k++;
        if (!sp->keys[k]) {
            char allowed[128] = "";
            for (int j = 0; sp->keys[j]; j++) {
                if (j) strcat(allowed, ", ");
                strcat(allowed, sp->keys[j]);
            }
            if (!sp->keys[0])
                return fm__err(c->err, "%s:%d: %s takes no arguments, got '%.40s'", c->source,
                               c->line, sp->word, key);
            return fm__err(c->err, "%s:%d: %s: unknown key '%.40s' (expected %s)", c->source,
                           c->line, sp->word, key, allowed);
        }
        if (seen & (1u << k))
            return fm__err(c->err, "%s:%d: %s: %s given twice", c->source, c->line, sp->word, key);
        seen |= 1u << k;
        if (!*val)
            return fm__err(c->err, "%s:%d: %s: %s has no value", c->source, c->line, sp->word, key);
        if (set_key(c, l, key, val)) return -1;
    }
    if (sp->type == FM__CONV2D && (!(seen & 1) || !(seen & 2)))
        return fm__err(c->err, "%s:%d: conv: missing %s= (required: filters, kernel)", c->source,
                       c->line, !(seen & 1) ? "filters" : "kernel");
    if (sp->type == FM__DENSE && !(seen & 1))
        return fm__err(c->err, "%s:%d: dense: missing units=", c->source, c->line);
    if (sp->type == FM__DROPOUT && !(seen & 1))
        return fm__err(c->err, "%s:%d: dropout: missing the rate, e.g. 'dropout 0.25'", c->source,
                       c->line);
    return 0;
}

/* Splits a line in place at whitespace; returns the token count or -1 if too many. */
static int tokenize(char *s, char **tok) {
    int n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\v' || *s == '\f') s++;
        if (!*s) return n;
        if (n == MAX_FIELDS) return -1;
        tok[n++] = s;
        while (*s && *s != ' ' && *s != '\t' && *s != '\r' && *s != '\v' && *s != '\f') s++;
        if (*s) *s++ = 0;
    }
}

int fm__cfg_parse(fm_model *m, const char *text, fm_err *err) {
    size_t len = strlen(text);
    char *buf = malloc(len + 1);
    fm__layer *layers = calloc(FM__MAX_LAYERS, sizeof *layers);
    if (!buf || !layers) {
        free(buf);
        free(layers);
        return fm__err(err, "%s: out of memory", m->source);
    }
    memcpy(buf, text, len + 1);
    ctx c = {m->source, 0, NULL, err};
    int n_layers = 0, have_input = 0, rc = 0;
    for (char *line = buf; line && !rc;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = 0;
        c.line++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *tok[MAX_FIELDS];
        int n = tokenize(line, tok);
        line = next;
        if (n == 0) continue;
        if (n < 0) {
            rc = fm__err(err, "%s:%d: more than %d fields on one line", c.source, c.line,
                         MAX_FIELDS);
            break;
        }
        c.word = tok[0];
        if (!strcmp(tok[0], "input")) {
            if (have_input)
                rc = fm__err(err, "%s:%d: a second 'input' line (it must come once, first)",
                             c.source, c.line);
            else
                rc = parse_input(&c, tok, n, &m->input);
            have_input = 1;
            continue;
        }
        size_t s = 0;
        while (s < N_SPECS && strcmp(specs[s].word, tok[0])) s++;
        if (s == N_SPECS) {
            rc = fm__err(err,
                         "%s:%d: unknown layer '%.40s' (expected input, conv, batchnorm, relu, "
                         "maxpool, dropout, flatten, dense or softmax)",
                         c.source, c.line, tok[0]);
        } else if (!have_input) {
            rc = fm__err(err, "%s:%d: missing 'input HEIGHT WIDTH CHANNELS' before the first layer",
                         c.source, c.line);
        } else if (n_layers == FM__MAX_LAYERS) {
            rc = fm__err(err, "%s:%d: more than %d layers", c.source, c.line, FM__MAX_LAYERS);
        } else {
            rc = parse_layer(&c, &specs[s], tok, n, &layers[n_layers]);
            n_layers++;
        }
    }
    free(buf);
    if (!rc && !have_input)
        rc = fm__err(err, "%s: no 'input HEIGHT WIDTH CHANNELS' line", m->source);
    if (!rc && !n_layers) rc = fm__err(err, "%s: no layers after 'input'", m->source);
    if (rc) {
        free(layers);
        return -1;
    }
    m->layers = layers;
    m->n_layers = n_layers;
    return 0;
}
