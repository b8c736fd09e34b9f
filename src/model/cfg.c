/* The model-description parser: one layer per line,
 *
 *   input 28 28 1
 *   conv filters=64 kernel=3 padding=same activation=relu
 *   maxpool 2
 *   dropout 0.25
 *   ...
 *
 * A line is a layer word followed by key=value fields; maxpool and dropout
 * also take their one value bare. '#' starts a comment. The text must be
 * UTF-8, comments included. The words, their keys, defaults and ranges are
 * the layer types' own (layers/); this file only reads the text against
 * them; shapes are checked when the model is planned (model.c). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/utf8.h"
#include "model/model.h"

#define MAX_FIELDS 16

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

/* "a, b or c" into buf */
static void list_words(char *buf, size_t size, const char *const *words, const char *last_sep) {
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; words[i] && n < size; i++) {
        const char *sep = !i ? "" : words[i + 1] ? ", " : last_sep;
        n += (size_t)snprintf(buf + n, size - n, "%s%s", sep, words[i]);
    }
}

static int parse_choice(const ctx *c, const fm__key *k, const char *v, int *out) {
    for (int i = 0; k->choices[i]; i++)
        if (!strcmp(k->choices[i], v)) {
            *out = i;
            return 0;
        }
    char expected[128];
    list_words(expected, sizeof expected, k->choices, " or ");
    return fm__err(c->err, "%s:%d: %s: unknown %s '%.40s' (expected %s)", c->source, c->line,
                   c->word, k->name, v, expected);
}

static int set_key(const ctx *c, const fm__key *k, const char *v, fm__arg *out) {
    switch (k->kind) {
    case FM__KEY_INT: return parse_int(c, k->name, v, (long)k->lo, (long)k->hi, &out->i);
    case FM__KEY_FLOAT:
        return parse_float(c, k->name, v, k->lo, k->lo_open, k->hi, k->hi_open, &out->f);
    case FM__KEY_CHOICE: return parse_choice(c, k, v, &out->i);
    }
    return -1;
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

/* The key names of type into buf, "a, b, c"; with required_only just those
 * without a default. */
static void key_names(char *buf, size_t size, const fm__layer_type *type, int required_only) {
    const char *names[FM__MAX_KEYS + 1];
    int n = 0;
    for (int k = 0; type->keys[k].name; k++)
        if (!required_only || type->keys[k].required) names[n++] = type->keys[k].name;
    names[n] = NULL;
    list_words(buf, size, names, ", ");
}

static int parse_layer(const ctx *c, const fm__layer_type *type, char **tok, int n,
                       fm__layer *l) {
    static const fm__key no_keys[] = {{NULL}};
    const fm__key *keys = type->keys ? type->keys : no_keys;
    memset(l, 0, sizeof *l);
    l->type = type;
    l->line = c->line;
    for (int k = 0; keys[k].name; k++) {
        if (keys[k].kind == FM__KEY_FLOAT) l->arg[k].f = (float)keys[k].def;
        else l->arg[k].i = (int)keys[k].def;
    }
    unsigned seen = 0;
    for (int i = 1; i < n; i++) {
        char *eq = strchr(tok[i], '=');
        const char *key, *val;
        if (eq) {
            *eq = 0;
            key = tok[i];
            val = eq + 1;
        } else if (type->positional) {
            key = type->positional;
            val = tok[i];
        } else if (!keys[0].name) {
            return fm__err(c->err, "%s:%d: %s takes no arguments, got '%.40s'", c->source, c->line,
                           type->word, tok[i]);
        } else {
            return fm__err(c->err, "%s:%d: %s: expected key=value, got '%.40s'", c->source,
                           c->line, type->word, tok[i]);
        }
        int k = 0;
        while (keys[k].name && strcmp(keys[k].name, key)) k++;
        if (!keys[k].name) {
            if (!keys[0].name)
                return fm__err(c->err, "%s:%d: %s takes no arguments, got '%.40s'", c->source,
                               c->line, type->word, key);
            char allowed[128];
            key_names(allowed, sizeof allowed, type, 0);
            return fm__err(c->err, "%s:%d: %s: unknown key '%.40s' (expected %s)", c->source,
                           c->line, type->word, key, allowed);
        }
        if (seen & (1u << k))
            return fm__err(c->err, "%s:%d: %s: %s given twice", c->source, c->line, type->word, key);
        seen |= 1u << k;
        if (!*val)
            return fm__err(c->err, "%s:%d: %s: %s has no value", c->source, c->line, type->word,
                           key);
        if (set_key(c, &keys[k], val, &l->arg[k])) return -1;
    }
    for (int k = 0; keys[k].name; k++) {
        if (!keys[k].required || (seen & (1u << k))) continue;
        if (keys[k].example)
            return fm__err(c->err, "%s:%d: %s: missing the %s, e.g. '%s %s'", c->source, c->line,
                           type->word, keys[k].name, type->word, keys[k].example);
        char required[128];
        key_names(required, sizeof required, type, 1);
        return fm__err(c->err, "%s:%d: %s: missing %s= (required: %s)", c->source, c->line,
                       type->word, keys[k].name, required);
    }
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
        /* Refused here, comments included, so the text saved in model files
         * (JSON) and ONNX exports (protobuf) is always valid UTF-8. */
        size_t line_len = strlen(line), good = fm__utf8_check(line, line_len);
        if (good < line_len) {
            rc = fm__err(err, "%s:%d: column %zu: byte 0x%02x is not UTF-8 (a description is "
                              "UTF-8 text)",
                         c.source, c.line, good + 1, (unsigned char)line[good]);
            break;
        }
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
        const fm__layer_type *type = fm__layer_type_find(tok[0]);
        if (!type) {
            const char *words[64];
            int n_words = 0;
            words[n_words++] = "input";
            for (int t = 0; fm__layer_types[t] && n_words < 63; t++)
                words[n_words++] = fm__layer_types[t]->word;
            words[n_words] = NULL;
            char expected[512];
            list_words(expected, sizeof expected, words, " or ");
            rc = fm__err(err, "%s:%d: unknown layer '%.40s' (expected %s)", c.source, c.line,
                         tok[0], expected);
        } else if (!have_input) {
            rc = fm__err(err, "%s:%d: missing 'input HEIGHT WIDTH CHANNELS' before the first layer",
                         c.source, c.line);
        } else if (n_layers == FM__MAX_LAYERS) {
            rc = fm__err(err, "%s:%d: more than %d layers", c.source, c.line, FM__MAX_LAYERS);
        } else {
            rc = parse_layer(&c, type, tok, n, &layers[n_layers]);
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
