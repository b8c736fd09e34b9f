/* int8 models (model/quant.h): quantizing a float model after training, and
 * the state an int8 model runs from, whether just quantized or loaded. */
#include "model/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/infer.h"

int fm__quant_layer(const fm__layer *l) { return l->type->forward_int8 != NULL; }

/* Rows (outputs) and row length of l's quantized weight. */
static void weight_rows(const fm__layer *l, int *rows, size_t *row_len) {
    const fm__tensor *t = &l->t[l->type->qweight];
    *rows = t->shape[0];
    *row_len = t->len / (size_t)t->shape[0];
}

static size_t rup64(size_t x) { return (x + 63) / 64 * 64; }

/* The BatchNorm that the quantized layer i takes in after its outputs:
 * the one just after it, unless the layer after that is quantized too and
 * takes it in before its inputs (pre_mul). NULL if none. */
static fm__layer *post_bn(fm_model *m, int i) {
    if (i + 1 >= m->n_layers || !m->layers[i + 1].type->affine) return NULL;
    if (i + 2 < m->n_layers && fm__quant_layer(&m->layers[i + 2])) return NULL;
    return &m->layers[i + 1];
}

/* Lays out the arrays of every quantized layer from base; with base NULL
 * it only measures. Returns the bytes needed. */
static size_t layout(fm_model *m, char *base) {
    size_t off = 0;
#define CARVE(ptr, bytes)                              \
    do {                                               \
        if (base) (ptr) = (void *)(base + off);        \
        off += rup64(bytes);                           \
    } while (0)
    for (int i = 0; i < m->n_layers; i++) {
        fm__layer *l = &m->layers[i];
        if (!fm__quant_layer(l)) continue;
        fm__qlayer *ql = &m->quant->layers[i];
        int rows;
        size_t row_len;
        weight_rows(l, &rows, &row_len);
        if (base) {
            ql->rows = rows;
            ql->row_len = row_len;
        }
        CARVE(ql->w, (size_t)rows * row_len);
        CARVE(ql->w_scale, (size_t)rows * sizeof(float));
        CARVE(ql->wsum, (size_t)rows * sizeof(int32_t));
        CARVE(ql->scale, (size_t)rows * sizeof(float));
        if (i > 0 && m->layers[i - 1].type->affine) {
            CARVE(ql->pre_mul, (size_t)l->in.c * sizeof(float));
            CARVE(ql->pre_add, (size_t)l->in.c * sizeof(float));
        }
        if (post_bn(m, i)) {
            CARVE(ql->post_mul, (size_t)rows * sizeof(float));
            CARVE(ql->post_add, (size_t)rows * sizeof(float));
        }
    }
#undef CARVE
    return off;
}

int fm__quant_alloc(fm_model *m, const char *calibration, fm_err *err) {
    for (int i = 0; i < m->n_layers; i++) {
        const fm__layer *l = &m->layers[i];
        int rows;
        size_t row_len;
        if (!fm__quant_layer(l)) continue;
        weight_rows(l, &rows, &row_len);
        if (row_len > FM__QUANT_MAX_ROW)
            return fm__err(err, "%s:%d: %s has %zu inputs per output, more than int8 inference "
                                "sums exactly (%zu)",
                           m->source, l->line, l->name, row_len, FM__QUANT_MAX_ROW);
    }
    struct fm__quant *q = calloc(1, sizeof *q);
    if (q) q->layers = calloc((size_t)m->n_layers, sizeof *q->layers);
    if (q && q->layers) q->calibration = strdup(calibration);
    if (!q || !q->layers || !q->calibration) goto oom;
    m->quant = q;
    size_t bytes = layout(m, NULL);
    if (!(q->block = calloc(1, bytes + 64))) goto oom;
    layout(m, (char *)(((uintptr_t)q->block + 63) & ~(uintptr_t)63));
    return 0;
oom:
    if (q) {
        free(q->layers);
        free(q->calibration);
        free(q);
    }
    m->quant = NULL;
    return fm__err(err, "%s: out of memory for the int8 weights", m->source);
}

void fm__quant_free(fm_model *m) {
    if (!m->quant) return;
    free(m->quant->block);
    free(m->quant->layers);
    free(m->quant->calibration);
    free(m->quant);
    m->quant = NULL;
}

void fm__quant_finish(fm_model *m) {
    for (int i = 0; i < m->n_layers; i++) m->layers[i].folded = 0;
    for (int i = 0; i < m->n_layers; i++) {
        fm__layer *l = &m->layers[i];
        fm__qlayer *ql = &m->quant->layers[i];
        l->q = NULL;
        if (!ql->w) continue;
        float *wf = l->t[l->type->qweight].data;
        for (int o = 0; o < ql->rows; o++) {
            const int8_t *wr = ql->w + (size_t)o * ql->row_len;
            int32_t sum = 0;
            for (size_t j = 0; j < ql->row_len; j++) {
                sum += wr[j];
                wf[(size_t)o * ql->row_len + j] = (float)wr[j] * ql->w_scale[o];
            }
            ql->wsum[o] = sum;
            ql->scale[o] = ql->in_scale * ql->w_scale[o];
        }
        if (ql->pre_mul) {
            fm__layer *bn = &m->layers[i - 1];
            bn->type->affine(bn, ql->pre_mul, ql->pre_add);
            bn->folded = 1;
        }
        if (ql->post_mul) {
            fm__layer *bn = post_bn(m, i);
            bn->type->affine(bn, ql->post_mul, ql->post_add);
            bn->folded = 1;
        }
        ql->q = (fm__qweights){
            .w = ql->w, .wsum = ql->wsum, .scale = ql->scale,
            .bias = l->t[l->type->qbias].data,
            .pre_mul = ql->pre_mul, .pre_add = ql->pre_add,
            .post_mul = ql->post_mul, .post_add = ql->post_add,
            .in_scale = ql->in_scale, .zp = ql->zp,
        };
        l->q = &ql->q;
    }
    /* The float plan's scratch may be too small for the int8 kernels. */
    free(m->arena);
    m->arena = NULL;
    m->batch_cap = 0;
}

/* ---- quantizing ----------------------------------------------------------- */

fm_quantize_params fm_quantize_default_params(void) {
    return (fm_quantize_params){.calibration_images = 2000};
}

const char *fm_model_precision(const fm_model *m) { return m->quant ? "int8" : "fp32"; }

/* The range of every layer's input over the calibration passes. */
typedef struct ranges {
    float *lo, *hi; /* n_layers each */
} ranges;

static void observe(void *arg, int layer, const float *x, size_t len) {
    ranges *r = arg;
    float lo = r->lo[layer], hi = r->hi[layer];
    for (size_t i = 0; i < len; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    r->lo[layer] = lo;
    r->hi[layer] = hi;
}

/* Scale and zero point of a uint8 input holding [lo, hi] and 0. */
static void input_params(float lo, float hi, float *scale, uint8_t *zp) {
    lo = lo < 0.0f ? lo : 0.0f;
    hi = hi > 0.0f ? hi : 0.0f;
    if (!(hi > lo)) { /* always 0: any scale represents it */
        *scale = 1.0f;
        *zp = 0;
        return;
    }
    *scale = (hi - lo) / 255.0f;
    float z = nearbyintf(-lo / *scale);
    *zp = (uint8_t)(z < 0.0f ? 0.0f : z > 255.0f ? 255.0f : z);
}

/* Per row: w_scale = max |w| / FM__QW_MAX (1 for a row of zeros), then the
 * rounded, clamped int8 weights. */
static void quantize_weights(fm__qlayer *ql, const float *w) {
    for (int o = 0; o < ql->rows; o++) {
        const float *wr = w + (size_t)o * ql->row_len;
        float amax = 0.0f;
        for (size_t j = 0; j < ql->row_len; j++) amax = fabsf(wr[j]) > amax ? fabsf(wr[j]) : amax;
        float s = amax > 0.0f ? amax / (float)FM__QW_MAX : 1.0f;
        ql->w_scale[o] = s;
        for (size_t j = 0; j < ql->row_len; j++) {
            float v = nearbyintf(wr[j] / s);
            v = v > FM__QW_MAX ? FM__QW_MAX : v < -FM__QW_MAX ? -FM__QW_MAX : v;
            ql->w[(size_t)o * ql->row_len + j] = (int8_t)v;
        }
    }
}

/* Calibration images spread evenly over the set: n of them, copied. */
static uint8_t *calibration_sample(const fm_images *set, size_t n) {
    uint8_t *px = malloc(n * FM_IMAGE_PIXELS);
    if (!px) return NULL;
    for (size_t i = 0; i < n; i++)
        memcpy(px + i * FM_IMAGE_PIXELS, set->pixels + (i * set->count / n) * FM_IMAGE_PIXELS,
               FM_IMAGE_PIXELS);
    return px;
}

int fm_model_quantize(fm_model *m, const fm_images *set, const fm_quantize_params *p,
                      fm_err *err) {
    if (m->quant) return fm__err(err, "%s: the model is int8 already", m->source);
    if (fm__check_io(m, err) < 0) return -1;
    if (p->calibration_images == 0)
        return fm__err(err, "quantize: calibration needs at least 1 image");
    if (!set->count) return fm__err(err, "quantize: the calibration set is empty");
    const size_t n = p->calibration_images < set->count ? p->calibration_images : set->count;
    char how[128];
    snprintf(how, sizeof how, "minmax over %zu training images", n);
    ranges r = {malloc((size_t)m->n_layers * sizeof(float)),
                malloc((size_t)m->n_layers * sizeof(float))};
    uint8_t *px = calibration_sample(set, n);
    float *probs = malloc(n * (size_t)m->classes * sizeof *probs);
    int rc = -1;
    if (!r.lo || !r.hi || !px || !probs) {
        fm__err(err, "%s: out of memory for calibration", m->source);
        goto done;
    }
    for (int i = 0; i < m->n_layers; i++) {
        r.lo[i] = INFINITY;
        r.hi[i] = -INFINITY;
    }
    /* Inference as the int8 model will run it, test-time augmentation too. */
    m->observe = observe;
    m->observe_arg = &r;
    rc = fm__model_infer(m, px, NULL, n, FM__PREDICT_BATCH, probs, NULL, err);
    m->observe = NULL;
    m->observe_arg = NULL;
    if (rc < 0 || fm__quant_alloc(m, how, err) < 0) {
        rc = -1;
        goto done;
    }
    for (int i = 0; i < m->n_layers; i++) {
        fm__qlayer *ql = &m->quant->layers[i];
        if (!ql->w) continue;
        const fm__layer *l = &m->layers[i];
        quantize_weights(ql, l->t[l->type->qweight].data);
        input_params(r.lo[i], r.hi[i], &ql->in_scale, &ql->zp);
    }
    fm__quant_finish(m);
done:
    free(r.lo);
    free(r.hi);
    free(px);
    free(probs);
    return rc;
}
