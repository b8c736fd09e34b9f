/* The model: planning from the parsed layers (shapes, Keras-style names,
 * parameter offsets), allocation (one block for params|grads|adam_m|adam_v,
 * one for BatchNorm statistics, one arena for all activations), the forward
 * and backward passes over the layer table, initialisation, state copies and
 * batched prediction. */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/file.h"
#include "layers/layers.h"
#include "model/model.h"

static const fm__layer_ops *const ops_table[] = {
    [FM__CONV2D] = &fm__conv2d_ops,   [FM__BATCHNORM] = &fm__batchnorm_ops,
    [FM__RELU] = &fm__relu_ops,       [FM__MAXPOOL] = &fm__maxpool_ops,
    [FM__DROPOUT] = &fm__dropout_ops, [FM__FLATTEN] = &fm__flatten_ops,
    [FM__DENSE] = &fm__dense_ops,     [FM__SOFTMAX] = &fm__softmax_ops,
};

const fm__layer_ops *fm__layer_ops_of(fm__layer_type type) { return ops_table[type]; }

#define ALIGN 64 /* bytes: whole cache lines, and aligned vector loads */

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Shapes, names and offsets for every layer; checks the network ends in softmax. */
static int plan(fm_model *m, fm_err *err) {
    const char *src = m->source;
    int count[FM__SOFTMAX + 1] = {0};
    size_t np = 0, ns = 0;
    fm__shape cur = m->input;
    if (fm__shape_len(cur) > FM__MAX_SAMPLE_LEN)
        return fm__err(err, "%s: input of %zu values per image is too large (max %zu)", src,
                       fm__shape_len(cur), FM__MAX_SAMPLE_LEN);
    for (int i = 0; i < m->n_layers; i++) {
        fm__layer *l = &m->layers[i];
        const fm__layer_ops *ops = fm__layer_ops_of(l->type);
        int last = i == m->n_layers - 1;
        if (l->type == FM__SOFTMAX && !last)
            return fm__err(err, "%s:%d: softmax must be the last layer", src, l->line);
        if (l->act == FM__ACT_SOFTMAX && !last)
            return fm__err(err, "%s:%d: activation=softmax is only allowed on the last layer", src,
                           l->line);
        l->in = cur;
        if (ops->plan(l, src, err)) return -1;
        if (fm__shape_len(l->out) > FM__MAX_SAMPLE_LEN)
            return fm__err(err, "%s:%d: output of %zu values per image is too large (max %zu)", src,
                           l->line, fm__shape_len(l->out), FM__MAX_SAMPLE_LEN);
        int k = count[l->type]++;
        if (k) snprintf(l->name, sizeof l->name, "%s_%d", ops->stem, k);
        else snprintf(l->name, sizeof l->name, "%s", ops->stem);
        /* Sizes are capped before they are summed, so nothing here overflows. */
        if (l->nw > FM__MAX_PARAMS || l->nb > FM__MAX_PARAMS)
            return fm__err(err, "%s:%d: %s has too many parameters (max %zu)", src, l->line,
                           l->name, FM__MAX_PARAMS);
        l->w = l->nw ? np : FM__NONE;
        np += l->nw;
        l->b = l->nb ? np : FM__NONE;
        np += l->nb;
        l->mmean = l->mvar = FM__NONE;
        if (l->type == FM__BATCHNORM) {
            l->mmean = ns;
            l->mvar = ns + (size_t)l->in.c;
            ns += 2 * (size_t)l->in.c;
        }
        if (np + ns > FM__MAX_PARAMS)
            return fm__err(err, "%s:%d: the model has more than %zu parameters", src, l->line,
                           FM__MAX_PARAMS);
        cur = l->out;
    }
    const fm__layer *last = &m->layers[m->n_layers - 1];
    if (last->type != FM__SOFTMAX && !(last->type == FM__DENSE && last->act == FM__ACT_SOFTMAX))
        return fm__err(err,
                       "%s:%d: the network must end in softmax ('dense units=N "
                       "activation=softmax' or a 'softmax' line)",
                       src, last->line);
    if (cur.c < 2 || cur.c > 256)
        return fm__err(err, "%s:%d: %d classes: the softmax needs 2 to 256 (labels are bytes)", src,
                       last->line, cur.c);
    m->classes = cur.c;
    m->n_params = np;
    m->n_stats = ns;
    return 0;
}

fm_model *fm__model_new(const char *text, const char *source, fm_err *err) {
    fm_model *m = calloc(1, sizeof *m);
    if (!m) {
        fm__err(err, "%s: out of memory", source);
        return NULL;
    }
    m->k = fm__kernels_select();
    m->description = dup_str(text);
    m->source = dup_str(source);
    if (!m->description || !m->source) {
        fm__err(err, "%s: out of memory", source);
        fm_model_free(m);
        return NULL;
    }
    if (fm__cfg_parse(m, text, err) || plan(m, err)) {
        fm_model_free(m);
        return NULL;
    }
    return m;
}

/* BatchNorm to its identity state: gamma 1, beta 0, moving mean 0, var 1. */
static void reset_batchnorm(fm_model *m) {
    for (int i = 0; i < m->n_layers; i++) {
        const fm__layer *l = &m->layers[i];
        if (l->type != FM__BATCHNORM) continue;
        for (int c = 0; c < l->in.c; c++) {
            m->params[l->w + c] = 1.0f;
            m->params[l->b + c] = 0.0f;
            m->stats[l->mmean + c] = 0.0f;
            m->stats[l->mvar + c] = 1.0f;
        }
    }
}

/* One block: params | grads | adam_m | adam_v, each view padded to whole
 * cache lines. */
/* Zeroed memory aligned to ALIGN; *block gets the pointer to free. calloc
 * rather than memset: large blocks come zeroed from the system and a page
 * nobody writes (gradients and Adam moments of a model that only infers, the
 * gradient buffers of an inference batch) then costs no memory. */
static void *zalloc_aligned(size_t bytes, void **block) {
    *block = calloc(1, bytes + ALIGN);
    if (!*block) return NULL;
    uintptr_t at = ((uintptr_t)*block + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1);
    return (void *)at;
}

int fm__model_alloc_params(fm_model *m, fm_err *err) {
    size_t stride = round_up(m->n_params ? m->n_params : 1, ALIGN / sizeof(float));
    size_t bytes = 4 * stride * sizeof(float);
    m->params = zalloc_aligned(bytes, &m->param_block);
    m->stats = calloc(m->n_stats ? m->n_stats : 1, sizeof(float));
    if (!m->params || !m->stats)
        return fm__err(err, "%s: out of memory for %zu parameters", m->source, m->n_params);
    m->grads = m->params + stride;
    m->adam_m = m->params + 2 * stride;
    m->adam_v = m->params + 3 * stride;
    reset_batchnorm(m);
    return 0;
}

fm_model *fm_model_parse(const char *text, const char *source, fm_err *err) {
    fm_model *m = fm__model_new(text, source, err);
    if (m && fm__model_alloc_params(m, err)) {
        fm_model_free(m);
        return NULL;
    }
    return m;
}

fm_model *fm_model_load_cfg(const char *path, fm_err *err) {
    char *text;
    size_t n;
    if (fm__read_file(path, 1u << 20, &text, &n, err) < 0) return NULL;
    fm_model *m = NULL;
    if (memchr(text, 0, n)) fm__err(err, "%s: not a text file (contains NUL bytes)", path);
    else m = fm_model_parse(text, path, err);
    free(text);
    return m;
}

void fm_model_free(fm_model *m) {
    if (!m) return;
    free(m->description);
    free(m->source);
    free(m->layers);
    free(m->param_block);
    free(m->stats);
    free(m->arena);
    free(m);
}

const char *fm_model_description(const fm_model *m) { return m->description; }

int fm_model_training_split(const fm_model *m, uint64_t *seed, double *val_split, size_t *limit) {
    if (!m->has_split) return -1;
    *seed = m->split_seed;
    *val_split = m->split_val;
    *limit = m->split_limit;
    return 0;
}

size_t fm_model_param_count(const fm_model *m, size_t *trainable) {
    if (trainable) *trainable = m->n_params;
    return m->n_params + m->n_stats;
}

/* Glorot-uniform kernels, drawn layer by layer in stored (PyTorch) order,
 * w = (2u - 1) * sqrt(6 / (fan_in + fan_out)), u uniform in [0, 1) from rng;
 * everything else at its Keras initial value; Adam moments and gradients zero. */
void fm_model_init(fm_model *m, fm_rng *rng) {
    memset(m->params, 0, m->n_params * sizeof(float));
    fm__model_zero_grads(m);
    memset(m->adam_m, 0, m->n_params * sizeof(float));
    memset(m->adam_v, 0, m->n_params * sizeof(float));
    reset_batchnorm(m);
    for (int i = 0; i < m->n_layers; i++) {
        const fm__layer *l = &m->layers[i];
        double fan_in, fan_out;
        if (l->type == FM__CONV2D) {
            fan_in = (double)l->kernel * l->kernel * l->in.c;
            fan_out = (double)l->kernel * l->kernel * l->out.c;
        } else if (l->type == FM__DENSE) {
            fan_in = l->in.c;
            fan_out = l->out.c;
        } else {
            continue;
        }
        double limit = sqrt(6.0 / (fan_in + fan_out));
        float *w = m->params + l->w;
        for (size_t j = 0; j < l->nw; j++)
            w[j] = (float)((2.0 * fm_rng_uniform(rng) - 1.0) * limit);
    }
}

/* Lays out every activation buffer for batches of B from base; with base
 * NULL it only measures. Returns the bytes needed. */
static size_t layout(fm_model *m, int B, char *base) {
    size_t off = 0, at;
#define CARVE(ptr, bytes)                     \
    do {                                      \
        at = off;                             \
        off += round_up((bytes), ALIGN);      \
        if (base) (ptr) = (void *)(base + at); \
    } while (0)
    const size_t nb = (size_t)B;
    size_t max_len = fm__shape_len(m->input), work = 0;
    CARVE(m->input_buf, nb * fm__shape_len(m->input) * sizeof(float));
    for (int i = 0; i < m->n_layers; i++) {
        fm__layer *l = &m->layers[i];
        size_t len = nb * fm__shape_len(l->out);
        if (fm__shape_len(l->out) > max_len) max_len = fm__shape_len(l->out);
        /* flatten and softmax pass their input on; dropout works in place
         * (no backward reads what it overwrites: maxpool's uses its argmax
         * mask, a fused ReLU's y > 0 test differs only where dropout zeroed
         * the gradient anyway) */
        if (fm__layer_ops_of(l->type)->forward && l->type != FM__DROPOUT) {
            CARVE(l->y, len * sizeof(float));
        } else if (base) {
            l->y = i ? m->layers[i - 1].y : m->input_buf;
        }
        if (l->type == FM__BATCHNORM) CARVE(l->bn_save, 3 * (size_t)l->in.c * sizeof(float));
        if (l->type == FM__DROPOUT || l->type == FM__MAXPOOL) CARVE(l->mask, len);
        if (l->type == FM__CONV2D) {
            size_t w = fm__conv2d_workspace(m->k, l, B);
            if (w > work) work = w;
        }
    }
    CARVE(m->probs, nb * m->classes * sizeof(float));
    CARVE(m->dlogits, nb * m->classes * sizeof(float));
    CARVE(m->grad_a, nb * max_len * sizeof(float));
    CARVE(m->grad_b, nb * max_len * sizeof(float));
    CARVE(m->work, work * sizeof(float));
    CARVE(m->zero_labels, nb);
    if (base) m->work_len = work;
#undef CARVE
    return off;
}

int fm__model_reserve(fm_model *m, int batch, fm_err *err) {
    if (batch <= 0) return fm__err(err, "%s: batch size %d must be positive", m->source, batch);
    if (batch <= m->batch_cap) return 0;
    /* Kernels index activations with int shapes: keep B * (largest layer) in range. */
    size_t max_len = fm__shape_len(m->input);
    for (int i = 0; i < m->n_layers; i++)
        if (fm__shape_len(m->layers[i].out) > max_len) max_len = fm__shape_len(m->layers[i].out);
    if ((double)batch * (double)max_len > 2147483647.0)
        return fm__err(err, "%s: batch %d is too large for this model", m->source, batch);
    size_t bytes = layout(m, batch, NULL);
    void *block;
    char *arena = zalloc_aligned(bytes, &block);
    if (!arena)
        return fm__err(err, "%s: out of memory for activations of a batch of %d (%zu MB)",
                       m->source, batch, bytes >> 20);
    free(m->arena);
    m->arena = block;
    layout(m, batch, arena);
    m->batch_cap = batch;
    return 0;
}

const float *fm__model_forward(fm_model *m, int n, int training, fm_rng *rng) {
    if (n <= 0 || n > m->batch_cap) return NULL;
    const float *x = m->input_buf;
    for (int i = 0; i < m->n_layers; i++) {
        fm__layer *l = &m->layers[i];
        const fm__layer_ops *ops = fm__layer_ops_of(l->type);
        if (ops->forward) {
            double t0 = m->layer_seconds ? fm__now() : 0.0;
            ops->forward(m, l, x, n, training, rng);
            if (m->layer_seconds) m->layer_seconds[2 * i] += fm__now() - t0;
        }
        x = l->y;
    }
    m->k->softmax_xent(m->probs, NULL, x, m->zero_labels, n, m->classes);
    return x;
}

float fm__model_loss_backward(fm_model *m, const uint8_t *labels, int n, int backward) {
    const float *logits = m->layers[m->n_layers - 1].y;
    float loss = m->k->softmax_xent(m->probs, backward ? m->dlogits : NULL, logits, labels, n,
                                    m->classes);
    if (!backward) return loss;
    /* Input gradients are needed only down to the first layer with parameters. */
    int first = 0;
    while (first < m->n_layers && !m->layers[first].nw && !m->layers[first].nb) first++;
    float *dy = m->dlogits;
    for (int i = m->n_layers - 1; i >= first; i--) {
        fm__layer *l = &m->layers[i];
        const fm__layer_ops *ops = fm__layer_ops_of(l->type);
        if (!ops->backward) continue; /* output aliases input: same gradient */
        const float *x = i ? m->layers[i - 1].y : m->input_buf;
        float *dx = dy == m->grad_a ? m->grad_b : m->grad_a;
        double t0 = m->layer_seconds ? fm__now() : 0.0;
        ops->backward(m, l, dx, dy, x, n, i > first);
        if (m->layer_seconds) m->layer_seconds[2 * i + 1] += fm__now() - t0;
        dy = dx;
    }
    return loss;
}

void fm__model_zero_grads(fm_model *m) { memset(m->grads, 0, m->n_params * sizeof(float)); }

size_t fm__model_state_len(const fm_model *m) { return m->n_params + m->n_stats; }

void fm__model_get_state(const fm_model *m, float *dst) {
    memcpy(dst, m->params, m->n_params * sizeof(float));
    memcpy(dst + m->n_params, m->stats, m->n_stats * sizeof(float));
}

void fm__model_set_state(fm_model *m, const float *src) {
    memcpy(m->params, src, m->n_params * sizeof(float));
    memcpy(m->stats, src + m->n_params, m->n_stats * sizeof(float));
}
