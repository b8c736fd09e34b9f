/* The model: planning from the parsed layers (shapes, Keras-style names,
 * tensor offsets), allocation (one block for params|grads|adam_m|adam_v, one
 * for the statistics, one arena for all activations), initialisation, the
 * forward and backward passes and state copies, all by iterating over what
 * each layer type declares (layers/layer.h). */
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/file.h"
#include "core/named.h"
#include "core/utf8.h"
#include "model/model.h"
#include "model/quant.h"

#define ALIGN 64 /* bytes: whole cache lines, and aligned vector loads */

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Shapes, names and tensor offsets for every layer; checks the network ends
 * in softmax. */
static int plan(fm_model *m, fm_err *err) {
    const char *src = m->source;
    size_t np = 0, ns = 0;
    fm__shape cur = m->input;
    if (fm__shape_len(cur) > FM__MAX_SAMPLE_LEN)
        return fm__err(err, "%s: input of %zu values per image is too large (max %zu)", src,
                       fm__shape_len(cur), FM__MAX_SAMPLE_LEN);
    for (int i = 0; i < m->n_layers; i++) {
        fm__layer *l = &m->layers[i];
        const fm__layer_type *type = l->type;
        l->in = cur;
        if (type->plan(l, i == m->n_layers - 1, src, err)) return -1;
        if (fm__shape_len(l->out) > FM__MAX_SAMPLE_LEN)
            return fm__err(err, "%s:%d: output of %zu values per image is too large (max %zu)", src,
                           l->line, fm__shape_len(l->out), FM__MAX_SAMPLE_LEN);
        int k = 0; /* earlier layers of this type */
        for (int j = 0; j < i; j++) k += m->layers[j].type == type;
        if (k) snprintf(l->name, sizeof l->name, "%s_%d", type->stem, k);
        else snprintf(l->name, sizeof l->name, "%s", type->stem);
        for (int j = 0; j < type->n_tensors; j++) {
            fm__tensor *t = &l->t[j];
            /* Sizes are capped before they are summed, so nothing here overflows. */
            if (t->len > FM__MAX_PARAMS)
                return fm__err(err, "%s:%d: %s has too many parameters (max %zu)", src, l->line,
                               l->name, FM__MAX_PARAMS);
            size_t *next = type->tensors[j].trainable ? &np : &ns;
            t->offset = *next;
            *next += t->len;
            if (np + ns > FM__MAX_PARAMS)
                return fm__err(err, "%s:%d: the model has more than %zu parameters", src,
                               l->line, FM__MAX_PARAMS);
        }
        cur = l->out;
    }
    const fm__layer *last = &m->layers[m->n_layers - 1];
    if (!last->type->gives_probs || !last->type->gives_probs(last))
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

/* Whether l has trainable tensors. */
static int has_params(const fm__layer *l) {
    for (int j = 0; j < l->type->n_tensors; j++)
        if (l->type->tensors[j].trainable && l->t[j].len) return 1;
    return 0;
}

int fm__model_set_class_names(fm_model *m, const char *const *names, const char *what,
                              fm_err *err) {
    size_t bytes = (size_t)m->classes * sizeof(char *);
    for (int k = 0; k < m->classes; k++) {
        const char *s = names[k];
        size_t n = strlen(s);
        if (n == 0 || n > FM_CLASS_NAME_MAX)
            return fm__err(err, "%s: class %d: a name is 1 to %d bytes, not %zu", what, k,
                           FM_CLASS_NAME_MAX, n);
        size_t bad = fm__utf8_check(s, n);
        if (bad < n)
            return fm__err(err, "%s: class %d: byte %zu (0x%02x) of the name is not UTF-8", what,
                           k, bad, (unsigned char)s[bad]);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                return fm__err(err, "%s: class %d: the name holds a control character (0x%02x)",
                               what, k, (unsigned char)s[i]);
        bytes += n + 1;
    }
    char **block = malloc(bytes);
    if (!block) return fm__err(err, "%s: out of memory for class names", m->source);
    char *at = (char *)(block + m->classes);
    for (int k = 0; k < m->classes; k++) {
        size_t n = strlen(names[k]) + 1;
        block[k] = memcpy(at, names[k], n);
        at += n;
    }
    free(m->class_names);
    m->class_names = block;
    return 0;
}

int fm_model_set_class_names(fm_model *m, const char *const *names, fm_err *err) {
    return fm__model_set_class_names(m, names, m->source, err);
}

/* Fashion-MNIST's names for a network of its 10 classes, else "0", "1", ... */
static int default_class_names(fm_model *m, fm_err *err) {
    if (m->classes == FM_NUM_CLASSES)
        return fm__model_set_class_names(m, fm_class_names, m->source, err);
    char nums[256][12]; /* plan() allows 256 classes at most; room for any int */
    const char *names[256];
    for (int k = 0; k < m->classes; k++) {
        snprintf(nums[k], sizeof nums[k], "%d", k);
        names[k] = nums[k];
    }
    return fm__model_set_class_names(m, names, m->source, err);
}

fm_model *fm__model_new(const char *text, const char *source, fm_err *err) {
    fm_model *m = calloc(1, sizeof *m);
    if (!m) {
        fm__err(err, "%s: out of memory", source);
        return NULL;
    }
    m->k = m->k_train = fm__kernels_select();
    m->description = dup_str(text);
    m->source = dup_str(source);
    if (!m->description || !m->source) {
        fm__err(err, "%s: out of memory", source);
        fm_model_free(m);
        return NULL;
    }
    if (fm__cfg_parse(m, text, err) || plan(m, err) || default_class_names(m, err)) {
        fm_model_free(m);
        return NULL;
    }
    return m;
}

/* Every tensor to its declared initial value, drawing the Glorot ones from
 * rng layer by layer in stored (PyTorch) order; with rng NULL those stay 0. */
static void init_tensors(fm_model *m, fm_rng *rng) {
    for (int i = 0; i < m->n_layers; i++) {
        const fm__layer *l = &m->layers[i];
        for (int j = 0; j < l->type->n_tensors; j++) {
            const fm__tensor *t = &l->t[j];
            fm__init init = l->type->tensors[j].init;
            if (init == FM__INIT_GLOROT && rng) {
                double limit = sqrt(6.0 / (l->fan_in + l->fan_out));
                for (size_t e = 0; e < t->len; e++)
                    t->data[e] = (float)((2.0 * fm_rng_uniform(rng) - 1.0) * limit);
            } else {
                float v = init == FM__INIT_ONE ? 1.0f : 0.0f;
                for (size_t e = 0; e < t->len; e++) t->data[e] = v;
            }
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
    for (int i = 0; i < m->n_layers; i++) {
        fm__layer *l = &m->layers[i];
        for (int j = 0; j < l->type->n_tensors; j++) {
            fm__tensor *t = &l->t[j];
            int trainable = l->type->tensors[j].trainable;
            t->data = (trainable ? m->params : m->stats) + t->offset;
            t->grad = trainable ? m->grads + t->offset : NULL;
        }
    }
    init_tensors(m, NULL);
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

/* The built-in networks (networks.c, generated from configs/). */
extern const char fm__network_fashion_cnn_text[];
extern const char fm__network_fashion_cnn_bn_text[];

static const fm__named_text networks[] = {{"fashion-cnn", fm__network_fashion_cnn_text},
                                          {"fashion-cnn-bn", fm__network_fashion_cnn_bn_text}};
#define N_NETWORKS (sizeof networks / sizeof networks[0])

const char *fm_model_builtin(const char *name) {
    return fm__named_find(networks, N_NETWORKS, name);
}

const char *fm_model_builtin_name(int i) {
    return i >= 0 && (size_t)i < N_NETWORKS ? networks[i].name : NULL;
}

fm_model *fm_model_load_named(const char *name_or_file, fm_err *err) {
    if (fm__named_is_file(name_or_file)) return fm_model_load_cfg(name_or_file, err);
    const char *text = fm_model_builtin(name_or_file);
    if (!text) {
        char names[256];
        fm__named_list(networks, N_NETWORKS, names, sizeof names);
        fm__err(err, "%s: no such built-in network (built in: %s); a model description file's "
                     "name has a '.' or a '/'",
                name_or_file, names);
        return NULL;
    }
    return fm_model_parse(text, name_or_file, err);
}

void fm_model_free(fm_model *m) {
    if (!m) return;
    free(m->description);
    free(m->source);
    free(m->recipe);
    free(m->class_names);
    free(m->layers);
    free(m->param_block);
    free(m->stats);
    free(m->arena);
    fm__quant_free(m);
    free(m);
}

const char *fm_model_description(const fm_model *m) { return m->description; }

void fm_model_input_shape(const fm_model *m, int *channels, int *height, int *width) {
    if (channels) *channels = m->input.c;
    if (height) *height = m->input.h;
    if (width) *width = m->input.w;
}

int fm_model_class_count(const fm_model *m) { return m->classes; }

const char *fm_model_class_name(const fm_model *m, int k) {
    return k >= 0 && k < m->classes ? m->class_names[k] : NULL;
}

int fm_model_training_split(const fm_model *m, uint64_t *seed, double *val_split, size_t *limit) {
    if (!m->has_split) return -1;
    *seed = m->split_seed;
    *val_split = m->split_val;
    *limit = m->split_limit;
    return 0;
}

static const char *const tta_names[] = {[FM_TTA_NONE] = "none", [FM_TTA_FLIP] = "flip"};
#define N_TTA (int)(sizeof tta_names / sizeof tta_names[0])

const char *fm_tta_name(fm_tta tta) {
    return (int)tta >= 0 && (int)tta < N_TTA ? tta_names[tta] : NULL;
}

int fm__tta_parse(const char *name, fm_tta *out) {
    for (int i = 0; i < N_TTA; i++)
        if (!strcmp(name, tta_names[i])) {
            *out = (fm_tta)i;
            return 0;
        }
    return -1;
}

fm_tta fm_model_tta(const fm_model *m) { return m->tta; }

int fm_model_set_tta(fm_model *m, fm_tta tta, fm_err *err) {
    if (!fm_tta_name(tta))
        return fm__err(err, "%s: %d is not a test-time augmentation (FM_TTA_NONE or FM_TTA_FLIP)",
                       m->source, (int)tta);
    m->tta = tta;
    return 0;
}

size_t fm_model_param_count(const fm_model *m, size_t *trainable) {
    if (trainable) *trainable = m->n_params;
    return m->n_params + m->n_stats;
}

/* Every tensor at its declared initial value (Glorot-uniform kernels drawn
 * from rng, w = (2u - 1) * sqrt(6 / (fan_in + fan_out)), u uniform in
 * [0, 1)); Adam moments and gradients zero. */
void fm_model_init(fm_model *m, fm_rng *rng) {
    fm__model_zero_grads(m);
    memset(m->adam_m, 0, m->n_params * sizeof(float));
    memset(m->adam_v, 0, m->n_params * sizeof(float));
    init_tensors(m, rng);
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
        const fm__layer_type *type = l->type;
        if (fm__shape_len(l->out) > max_len) max_len = fm__shape_len(l->out);
        if (type->output == FM__OUT_OWN) CARVE(l->y, nb * fm__shape_len(l->out) * sizeof(float));
        else if (base) l->y = i ? m->layers[i - 1].y : m->input_buf;
        if (type->save_bytes) CARVE(l->save, type->save_bytes(l, B));
        size_t w = type->work_floats ? type->work_floats(l, m->k, B) : 0;
        size_t wt = type->work_floats && m->k_train != m->k ? type->work_floats(l, m->k_train, B) : 0;
        if (wt > w) w = wt;
        if (l->q) w = (type->work_int8(l, m->k, B) + sizeof(float) - 1) / sizeof(float);
        if (w > work) work = w;
    }
    CARVE(m->probs, nb * m->classes * sizeof(float));
    CARVE(m->dlogits, nb * m->classes * sizeof(float));
    CARVE(m->grad_a, nb * max_len * sizeof(float));
    CARVE(m->grad_b, nb * max_len * sizeof(float));
    CARVE(m->work, work * sizeof(float));
    CARVE(m->zero_labels, nb);
    CARVE(m->tta_logits, nb * m->classes * sizeof(float)); /* last: the others keep their places */
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

int fm__model_set_train_kernels(fm_model *m, const fm__kernels *k, fm_err *err) {
    m->k_train = k;
    const int cap = m->batch_cap;
    m->batch_cap = 0;
    return cap ? fm__model_reserve(m, cap, err) : 0;
}

static const float *forward(fm_model *m, int n, const fm__layer_ctx *ctx) {
    if (n <= 0 || n > m->batch_cap) return NULL;
    const fm__layer_ctx c = *ctx;
    const float *x = m->input_buf;
    for (int i = 0; i < m->n_layers; i++) {
        fm__layer *l = &m->layers[i];
        if (l->folded) continue; /* int8: the next layer applies it to x */
        if (m->observe) m->observe(m->observe_arg, i, x, (size_t)n * fm__shape_len(l->in));
        if (l->type->forward) {
            double t0 = m->layer_seconds ? fm__now() : 0.0;
            if (l->q) l->type->forward_int8(l, &c, x, n);
            else l->type->forward(l, &c, x, n);
            if (m->layer_seconds) m->layer_seconds[2 * i] += fm__now() - t0;
        }
        x = l->y;
    }
    m->k->softmax_xent(m->probs, NULL, x, m->zero_labels, n, m->classes, 0.0f);
    return x;
}

const float *fm__model_forward(fm_model *m, int n, int training, const fm__draws *draws) {
    return forward(m, n,
                   &(fm__layer_ctx){training ? m->k_train : m->k, m->work, training, draws, 0,
                                    training ? m->dist : NULL});
}

const float *fm__model_restat_forward(fm_model *m, int n, int k) {
    return k < 1 ? NULL : forward(m, n, &(fm__layer_ctx){m->k, m->work, 0, NULL, k, m->dist});
}

static float loss_backward(fm_model *m, const uint8_t *labels, int n, int n_total,
                           float smoothing, int backward) {
    const float *logits = m->layers[m->n_layers - 1].y;
    float loss = m->k->softmax_xent(m->probs, backward ? m->dlogits : NULL, logits, labels, n,
                                    m->classes, smoothing);
    if (!backward) return loss;
    if (n_total != n) { /* the kernel's 1/n, made the batch's 1/n_total */
        const float share = (float)n / (float)n_total;
        for (size_t i = 0; i < (size_t)n * (size_t)m->classes; i++) m->dlogits[i] *= share;
    }
    /* Input gradients are needed only down to the first layer with parameters. */
    int first = 0;
    while (first < m->n_layers && !has_params(&m->layers[first])) first++;
    const fm__layer_ctx c = {m->k_train, m->work, 1, NULL, 0, m->dist};
    float *dy = m->dlogits;
    for (int i = m->n_layers - 1; i >= first; i--) {
        fm__layer *l = &m->layers[i];
        if (!l->type->backward) continue; /* output aliases input: same gradient */
        const float *x = i ? m->layers[i - 1].y : m->input_buf;
        float *dx = dy == m->grad_a ? m->grad_b : m->grad_a;
        double t0 = m->layer_seconds ? fm__now() : 0.0;
        l->type->backward(l, &c, dx, dy, x, n, i > first);
        if (m->layer_seconds) m->layer_seconds[2 * i + 1] += fm__now() - t0;
        dy = dx;
    }
    return loss;
}

float fm__model_loss_backward(fm_model *m, const uint8_t *labels, int n, float smoothing,
                              int backward) {
    return loss_backward(m, labels, n, n, smoothing, backward);
}

float fm__model_loss_backward_share(fm_model *m, const uint8_t *labels, int n, int n_total,
                                    float smoothing) {
    return loss_backward(m, labels, n, n_total, smoothing, 1);
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
