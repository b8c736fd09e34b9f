/* Model files: a safetensors file holding every parameter and BatchNorm
 * statistic under "<layer>.<part>" names in PyTorch layouts, and the model
 * description plus preprocessing facts as metadata, so a file is complete on
 * its own and readable from Python with json + numpy. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/parse.h"
#include "core/json.h"
#include "model/model.h"
#include "model/quant.h"
#include "model/safetensors.h"

#define FOREIGN_PREFIX FM__MODEL_FOREIGN_PREFIX

/* The training run's train/validation split (fm_model_training_split). */
#define SPLIT_SEED "fmnist.split.seed"
#define SPLIT_VAL "fmnist.split.val_split"
#define SPLIT_LIMIT "fmnist.split.limit"
/* The recipe of the run that trained it (fm_train_recipe_text). */
#define RECIPE "fmnist.recipe"
/* Test-time augmentation (fm_tta_name), written only when there is one, so
 * a file without it (any older one too) means none. */
#define TTA "fmnist.tta"

/* What a stored tensor's values must be, beyond its dtype and shape. */
typedef enum { ANY_FINITE, NONNEG, POSITIVE, INT8_WEIGHT, ANY_BYTE } value_rule;

typedef struct {
    char name[64];
    fm__st_dtype dtype;
    int ndim;
    uint64_t shape[4];
    value_rule rule;
    void *data;   /* where its values live in the model (NULL: not yet allocated) */
    size_t count;
} model_tensor;

/* Most stored tensors of one layer: its own, the weight of an int8 layer
 * twice (values and scales), and its input's scale and zero point. */
#define MAX_STORED (FM__MAX_TENSORS + 3)

/* Every stored tensor of the model, in layer order, as each layer type
 * declares them; with int8, the quantized layers' int8 parts in place of
 * their float weight (model/quant.h). */
static int model_tensors(const fm_model *m, int int8, model_tensor *t) {
    int n = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const fm__layer *l = &m->layers[i];
        fm__qlayer *ql = int8 && m->quant ? &m->quant->layers[i] : NULL;
        const int quantized = int8 && fm__quant_layer(l);
        for (int j = 0; j < l->type->n_tensors; j++) {
            const fm__tensor_decl *d = &l->type->tensors[j];
            const fm__tensor *lt = &l->t[j];
            model_tensor *x = &t[n++];
            x->ndim = lt->ndim;
            for (int k = 0; k < x->ndim; k++) x->shape[k] = (uint64_t)lt->shape[k];
            x->count = lt->len;
            if (quantized && j == l->type->qweight) { /* the weight's shape, in int8 */
                snprintf(x->name, sizeof x->name, "%s.%s_int8", l->name, d->suffix);
                x->dtype = FM__ST_I8;
                x->rule = INT8_WEIGHT;
                x->data = ql ? ql->w : NULL;
                x = &t[n++];
                *x = (model_tensor){.dtype = FM__ST_F32, .ndim = 1, .shape = {lt->shape[0]},
                                    .rule = POSITIVE, .data = ql ? ql->w_scale : NULL,
                                    .count = (size_t)lt->shape[0]};
                snprintf(x->name, sizeof x->name, "%s.%s_scale", l->name, d->suffix);
                continue;
            }
            snprintf(x->name, sizeof x->name, "%s.%s", l->name, d->suffix);
            x->dtype = FM__ST_F32;
            x->rule = d->nonneg ? NONNEG : ANY_FINITE;
            x->data = lt->data; /* NULL until the parameters are allocated */
        }
        if (!quantized) continue;
        t[n] = (model_tensor){.dtype = FM__ST_F32, .ndim = 1, .shape = {1}, .rule = POSITIVE,
                              .data = ql ? &ql->in_scale : NULL, .count = 1};
        snprintf(t[n++].name, sizeof t[0].name, "%s.input_scale", l->name);
        t[n] = (model_tensor){.dtype = FM__ST_U8, .ndim = 1, .shape = {1}, .rule = ANY_BYTE,
                              .data = ql ? &ql->zp : NULL, .count = 1};
        snprintf(t[n++].name, sizeof t[0].name, "%s.input_zero_point", l->name);
    }
    return n;
}

char *fm__model_class_names_json(const fm_model *m) {
    char *buf = NULL;
    size_t len;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fputc('[', f);
    for (int i = 0; i < m->classes; i++) {
        if (i) fputs(", ", f);
        fm_json_write_string(f, m->class_names[i]);
    }
    fputc(']', f);
    if (fclose(f)) {
        free(buf);
        return NULL;
    }
    return buf;
}

int fm_model_save(const fm_model *m, const char *path, fm_err *err) {
    return fm__model_save_with(m, path, NULL, 0, NULL, 0, err);
}

int fm__model_save_with(const fm_model *m, const char *path, const fm__st_entry *extra,
                        size_t n_extra, const fm__st_kv *extra_meta, size_t n_extra_meta,
                        fm_err *err) {
    model_tensor *mt = malloc(MAX_STORED * (size_t)m->n_layers * sizeof *mt + 1);
    fm__st_entry *e = malloc((MAX_STORED * (size_t)m->n_layers + n_extra) * sizeof *e + 1);
    fm__st_kv *meta = malloc((11 + n_extra_meta) * sizeof *meta);
    char *names = fm__model_class_names_json(m);
    int rc = -1;
    if (!mt || !e || !meta || !names) {
        fm__err(err, "%s: out of memory", path);
        goto done;
    }
    int n = model_tensors(m, m->quant != NULL, mt);
    for (int i = 0; i < n; i++) {
        e[i] = (fm__st_entry){.name = mt[i].name, .dtype = mt[i].dtype, .ndim = mt[i].ndim,
                              .data = mt[i].data};
        memcpy(e[i].shape, mt[i].shape, sizeof mt[i].shape);
    }
    for (size_t i = 0; i < n_extra; i++) e[(size_t)n + i] = extra[i];
    meta[0] = (fm__st_kv){"format", "pt"};
    meta[1] = (fm__st_kv){"fmnist.description", m->description};
    meta[2] = (fm__st_kv){"fmnist.class_names", names};
    meta[3] = (fm__st_kv){"fmnist.input_normalization", "x/255"};
    size_t n_meta = 4;
    if (m->recipe) meta[n_meta++] = (fm__st_kv){RECIPE, m->recipe};
    if (m->tta != FM_TTA_NONE) meta[n_meta++] = (fm__st_kv){TTA, fm_tta_name(m->tta)};
    if (m->quant) {
        meta[n_meta++] = (fm__st_kv){FM__QUANT_META, "int8"};
        meta[n_meta++] = (fm__st_kv){FM__QUANT_CALIBRATION_META, m->quant->calibration};
    }
    char seed[32], val[32], limit[32];
    if (m->has_split) {
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)m->split_seed);
        snprintf(val, sizeof val, "%.17g", m->split_val);
        snprintf(limit, sizeof limit, "%zu", m->split_limit);
        meta[n_meta++] = (fm__st_kv){SPLIT_SEED, seed};
        meta[n_meta++] = (fm__st_kv){SPLIT_VAL, val};
        meta[n_meta++] = (fm__st_kv){SPLIT_LIMIT, limit};
    }
    for (size_t i = 0; i < n_extra_meta; i++) meta[n_meta++] = extra_meta[i];
    rc = fm__st_write(path, e, (size_t)n + n_extra, meta, n_meta, err);
done:
    free(mt);
    free(e);
    free(meta);
    free(names);
    return rc;
}

static void format_shape(char *buf, size_t size, int ndim, const uint64_t *shape) {
    size_t at = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && at < size; d++)
        at += (size_t)snprintf(buf + at, size - at, "%s%llu", d ? ", " : "",
                               (unsigned long long)shape[d]);
    if (at < size) snprintf(buf + at, size - at, "]");
}

/* The file's class names into m: a JSON array of one string per class,
 * each a name fm_model_set_class_names takes. */
static int read_class_names(fm_model *m, const char *text, const char *path, fm_err *err) {
    fm_err jerr;
    fm__json *v = fm__json_parse(text, strlen(text), 0, &jerr);
    if (!v) return fm__err(err, "%s: metadata fmnist.class_names: bad JSON: %s", path, jerr.msg);
    int ok = v->type == FM__JSON_ARRAY && v->n == (size_t)m->classes;
    const char *names[256]; /* plan() allows 256 classes at most */
    for (size_t i = 0; ok && i < v->n; i++) {
        ok = v->items[i].type == FM__JSON_STRING;
        names[i] = v->items[i].string;
    }
    char what[4200];
    snprintf(what, sizeof what, "%s: metadata fmnist.class_names", path);
    int rc = ok ? fm__model_set_class_names(m, names, what, err) : 0;
    fm__json_free(v);
    if (!ok)
        return fm__err(err, "%s: metadata fmnist.class_names is not an array of %d strings", path,
                       m->classes);
    return rc;
}

/* Every tensor the description needs is present with its dtype and shape,
 * and nothing else is (apart from the foreign prefix). */
static int check_tensors(const fm__st_file *f, const model_tensor *mt, int n, const char *path,
                         fm_err *err) {
    char want[96], got[96];
    for (int i = 0; i < n; i++) {
        const fm__st_tensor *t = fm__st_find(f, mt[i].name);
        if (!t) return fm__err(err, "%s: missing tensor '%s'", path, mt[i].name);
        if (t->dtype != mt[i].dtype)
            return fm__err(err, "%s: tensor '%s' has dtype %s, expected %s", path, mt[i].name,
                           fm__st_dtype_name(t->dtype), fm__st_dtype_name(mt[i].dtype));
        int same = t->ndim == mt[i].ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == mt[i].shape[d];
        if (!same) {
            format_shape(want, sizeof want, mt[i].ndim, mt[i].shape);
            format_shape(got, sizeof got, t->ndim, t->shape);
            return fm__err(err, "%s: tensor '%s' has shape %s, but the description needs %s", path,
                           mt[i].name, got, want);
        }
    }
    for (size_t j = 0; j < f->n_tensors; j++) {
        const char *name = f->tensors[j].name;
        if (!strncmp(name, FOREIGN_PREFIX, strlen(FOREIGN_PREFIX))) continue;
        int known = 0;
        for (int i = 0; i < n && !known; i++) known = !strcmp(name, mt[i].name);
        if (!known)
            return fm__err(err, "%s: unexpected tensor '%.100s' (not in the description)", path,
                           name);
    }
    return 0;
}

/* Copies the checked tensors into the model, refusing values their rule
 * forbids: non-finite floats, negative variances, scales that are not
 * positive, int8 weights beyond +-FM__QW_MAX. */
static int copy_tensors(const fm__st_file *f, const model_tensor *mt, int n, const char *path,
                        fm_err *err) {
    for (int i = 0; i < n; i++) {
        fm__st_copy(fm__st_find(f, mt[i].name), mt[i].data);
        const float *v = mt[i].data;
        const int8_t *w = mt[i].data;
        for (size_t j = 0; j < mt[i].count; j++) {
            const char *bad = NULL;
            switch (mt[i].rule) {
            case ANY_FINITE: bad = isfinite(v[j]) ? NULL : "a non-finite value"; break;
            case NONNEG:
                bad = !isfinite(v[j]) ? "a non-finite value" : v[j] < 0.0f ? "a negative variance"
                                                                            : NULL;
                break;
            case POSITIVE:
                bad = isfinite(v[j]) && v[j] > 0.0f ? NULL : "a scale that is not a positive number";
                break;
            case INT8_WEIGHT:
                bad = w[j] >= -FM__QW_MAX && w[j] <= FM__QW_MAX ? NULL
                                                                : "an int8 weight beyond +-63";
                break;
            case ANY_BYTE: break;
            }
            if (bad)
                return fm__err(err, "%s: tensor '%s' holds %s at index %zu", path, mt[i].name, bad,
                               j);
        }
    }
    return 0;
}

int fm__model_read_weights(fm_model *m, const fm__st_file *f, const char *path, fm_err *err) {
    const char *desc = fm__st_meta(f, "fmnist.description");
    if (!desc || strcmp(desc, m->description))
        return fm__err(err, "%s: %s", path,
                       desc ? "its model description differs from this model's"
                            : "missing metadata 'fmnist.description'");
    if (m->quant) return fm__err(err, "%s: an int8 model's weights cannot be replaced", path);
    model_tensor *mt = malloc(MAX_STORED * (size_t)m->n_layers * sizeof *mt + 1);
    if (!mt) return fm__err(err, "%s: out of memory", path);
    int n = model_tensors(m, 0, mt);
    int rc = check_tensors(f, mt, n, path, err) || copy_tensors(f, mt, n, path, err) ? -1 : 0;
    free(mt);
    return rc;
}

/* The split metadata: all three keys or none. */
static int read_split(fm_model *m, const fm__st_file *f, const char *path, fm_err *err) {
    const char *seed = fm__st_meta(f, SPLIT_SEED), *val = fm__st_meta(f, SPLIT_VAL),
               *limit = fm__st_meta(f, SPLIT_LIMIT);
    if (!seed && !val && !limit) return 0;
    if (!seed || !val || !limit)
        return fm__err(err, "%s: metadata '%s' is missing (the split is recorded in three keys)",
                       path, !seed ? SPLIT_SEED : !val ? SPLIT_VAL : SPLIT_LIMIT);
    uint64_t sv, lv;
    char *end;
    double v = strtod(val, &end);
    if (fm__parse_u64(seed, UINT64_MAX, &sv) < 0)
        return fm__err(err, "%s: metadata '%s' = '%.40s' is not a seed", path, SPLIT_SEED, seed);
    if (end == val || *end || !(v > 0.0 && v < 1.0))
        return fm__err(err, "%s: metadata '%s' = '%.40s' is not a fraction in (0, 1)", path,
                       SPLIT_VAL, val);
    if (fm__parse_u64(limit, SIZE_MAX, &lv) < 0)
        return fm__err(err, "%s: metadata '%s' = '%.40s' is not an image count", path,
                       SPLIT_LIMIT, limit);
    m->has_split = 1;
    m->split_seed = sv;
    m->split_val = v;
    m->split_limit = (size_t)lv;
    return 0;
}

fm_model *fm_model_load(const char *path, fm_err *err) {
    fm__st_file f;
    if (fm__st_read(&f, path, err)) return NULL;
    fm_model *m = NULL;
    model_tensor *mt = NULL;
    char *src = NULL;
    const char *desc = fm__st_meta(&f, "fmnist.description");
    const char *norm = fm__st_meta(&f, "fmnist.input_normalization");
    const char *names = fm__st_meta(&f, "fmnist.class_names");
    const char *missing = !desc ? "fmnist.description" : !norm ? "fmnist.input_normalization"
                                                   : !names ? "fmnist.class_names" : NULL;
    if (missing) {
        fm__err(err, "%s: missing metadata '%s' (not a model file written by fmnist?)", path,
                missing);
        goto fail;
    }
    if (strcmp(norm, "x/255")) {
        fm__err(err, "%s: input normalization '%.40s' is not supported (expected x/255)", path,
                norm);
        goto fail;
    }
    /* Description errors name the file they came from. */
    size_t plen = strlen(path);
    if (!(src = malloc(plen + 32))) {
        fm__err(err, "%s: out of memory", path);
        goto fail;
    }
    snprintf(src, plen + 32, "%s (fmnist.description)", path);
    if (!(m = fm__model_new(desc, src, err))) goto fail;
    free(m->source);
    m->source = src;
    memcpy(src, path, plen + 1);
    src = NULL;
    if (read_class_names(m, names, path, err) || read_split(m, &f, path, err)) goto fail;
    const char *tta = fm__st_meta(&f, TTA);
    if (tta && fm__tta_parse(tta, &m->tta) < 0) {
        fm__err(err, "%s: metadata '%s' = '%.40s' is not a test-time augmentation (none or flip)",
                path, TTA, tta);
        goto fail;
    }
    const char *recipe = fm__st_meta(&f, RECIPE);
    if (recipe && !(m->recipe = strdup(recipe))) {
        fm__err(err, "%s: out of memory", path);
        goto fail;
    }
    const char *quant = fm__st_meta(&f, FM__QUANT_META);
    const char *calibration = fm__st_meta(&f, FM__QUANT_CALIBRATION_META);
    if (quant && strcmp(quant, "int8")) {
        fm__err(err, "%s: metadata '%s' = '%.40s' is not a precision fmnist runs (int8)", path,
                FM__QUANT_META, quant);
        goto fail;
    }
    if (!(mt = malloc(MAX_STORED * (size_t)m->n_layers * sizeof *mt))) {
        fm__err(err, "%s: out of memory", path);
        goto fail;
    }
    int n = model_tensors(m, quant != NULL, mt);
    /* Only now, with every tensor known to be in the file at its full size, allocate. */
    if (check_tensors(&f, mt, n, path, err) || fm__model_alloc_params(m, err) ||
        (quant && fm__quant_alloc(m, calibration ? calibration : "unknown", err)))
        goto fail;
    n = model_tensors(m, quant != NULL, mt); /* now with where each goes */
    if (copy_tensors(&f, mt, n, path, err)) goto fail;
    if (quant) fm__quant_finish(m);
    free(mt);
    fm__st_close(&f);
    return m;
fail:
    free(src);
    free(mt);
    fm_model_free(m);
    fm__st_close(&f);
    return NULL;
}
