/* The whole network against PyTorch: fixtures made by tests/torch/gen_fixtures.py
 * (PyTorch with Keras-equivalent settings, float64, stored as float32; see its
 * docstring for what each file holds and how to regenerate them). No Python
 * is needed here.
 *
 * - torch_small: training-mode forward, loss, every gradient and the BatchNorm
 *   moving statistics of a reduced notebook network, then three Keras Adam
 *   steps on the same batch (weights and statistics after them);
 * - torch_readme: the same checks (no Adam) for the README variant, whose
 *   BatchNorm follows a dense layer;
 * - torch_full: the notebook network itself, weights made by a formula both
 *   sides share: inference and training logits and loss, moving statistics,
 *   sampled gradient entries and every gradient tensor's norm;
 * - torch_augment: the training warp for fixed parameters.
 * Every network check runs with the reference kernels and with each fast
 * table this CPU has (the selected one among them), so the fast kernels are
 * checked end to end too.
 *
 * Tolerances (the generator asserts a float32 PyTorch run passes them): the
 * C side computes in float32 with other summation orders, so every value
 * differs from the float64 truth by rounding that grows with the sums:
 * - TOL_FWD 2e-5 of max(1, max|expected|) over a tensor for logits, probs,
 *   losses and moving statistics after one forward (a float32 PyTorch run
 *   reaches 1.3e-6, the AVX kernels 1.8e-6 on the full network);
 * - TOL_GRAD 1e-4 of the tensor's largest |gradient|: gradients are sums of
 *   up to N*H*W = 6272 cancelling products (a float32 PyTorch run reaches
 *   4.7e-6, the AVX kernels 7e-6);
 * - Adam results per element (adam3tol.* in the fixture): 1e-3 lr plus what
 *   gradients within TOL_GRAD can do to them (Adam divides by sqrt(v) + 1e-7,
 *   so near-zero gradients make their weights' steps ill-conditioned);
 * - TOL_STATS3 5e-5 for moving statistics after three steps, which also
 *   carry the small weight differences of the steps before;
 * - TOL_AUG 1e-5 absolute on warped pixels in [0, 1] (double coordinates
 *   both sides; the float rounding of the output is 6e-8). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "layertest.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "train/adam.h"
#include "train/augment.h"

#define TOL_FWD 2e-5
#define TOL_GRAD 1e-4
#define TOL_STATS3 5e-5
#define TOL_AUG 1e-5

#define BATCH_MAX 8
#define ADAM_STEPS 3

/* One fixture file and a scratch buffer for the tensor being compared. */
typedef struct fixture {
    fm__st_file f;
    float *buf;
    size_t cap;
    char path[1024];
} fixture;

static int fixture_open(fixture *fx, const char *name) {
    const char *dir = getenv("FMNIST_SOURCE_DIR");
    if (!dir) dir = ".";
    snprintf(fx->path, sizeof fx->path, "%s/tests/fixtures/%s", dir, name);
    fm_err err;
    fx->buf = NULL;
    fx->cap = 0;
    if (fm__st_read(&fx->f, fx->path, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return -1;
    }
    for (size_t i = 0; i < fx->f.n_tensors; i++)
        if (fx->f.tensors[i].count > fx->cap) fx->cap = fx->f.tensors[i].count;
    fx->buf = malloc(fx->cap * sizeof(float));
    return fx->buf ? 0 : -1;
}

static void fixture_close(fixture *fx) {
    fm__st_close(&fx->f);
    free(fx->buf);
}

/* The named float32 tensor of `count` elements, in fx->buf until the next
 * call; NULL (and a failed check) when absent or of another size. */
static const float *get(fixture *fx, const char *name, size_t count) {
    const fm__st_tensor *t = fm__st_find(&fx->f, name);
    CHECK_MSG(t && t->dtype == FM__ST_F32 && t->count == count, "%s: %s: missing, or not %zu F32",
              fx->path, name, count);
    if (!t || t->dtype != FM__ST_F32 || t->count != count) return NULL;
    fm__st_copy(t, fx->buf);
    return fx->buf;
}

/* The closest any check came to its tolerance, printed at the end so a
 * shrinking margin shows before it fails. */
static double worst_ratio;
static char worst_what[160];

static void note(double ratio, const char *what, const char *kern) {
    if (ratio > worst_ratio) {
        worst_ratio = ratio;
        snprintf(worst_what, sizeof worst_what, "%s [%s]", what, kern);
    }
}

/* max |a-b| / max(1, max|b|) <= tol */
static void near_scaled(const char *what, const char *kern, const float *a, const float *b,
                        size_t n, double tol) {
    double err = 0, scale = 1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= err)) err = d; /* also catches NaN */
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    note(err / (tol * scale), what, kern);
    CHECK_MSG(err <= tol * scale, "[%s] %s: max error %.3g, allowed %.3g", kern, what, err,
              tol * scale);
}

/* max |a-b| / max|b| <= tol, the gradient measure */
static void near_grad(const char *what, const char *kern, const float *a, const float *b, size_t n,
                      double tol) {
    double err = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= err)) err = d;
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    note(scale > 0 ? err / (tol * scale) : err > 0 ? INFINITY : 0, what, kern);
    CHECK_MSG(err <= tol * scale, "[%s] %s: max error %.3g, allowed %.3g (largest %.3g)", kern,
              what, err, tol * scale, scale);
}

/* A named tensor of the model: parameters (offset into params/grads) or a
 * moving statistic (offset into stats). */
typedef struct slot {
    char name[64];
    size_t off, len;
    int stat;
} slot;

static int add_slot(slot *s, int n, const fm__layer *l, const char *suffix, size_t off, size_t len,
                    int stat) {
    snprintf(s[n].name, sizeof s[n].name, "%s.%s", l->name, suffix);
    s[n].off = off;
    s[n].len = len;
    s[n].stat = stat;
    return n + 1;
}

/* The model's tensors in model order, named as the generator names them. */
static int model_slots(const fm_model *m, slot *s) {
    int n = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const fm__layer *l = &m->layers[i];
        for (int j = 0; j < l->type->n_tensors; j++)
            n = add_slot(s, n, l, l->type->tensors[j].suffix, l->t[j].offset, l->t[j].len,
                         !l->type->tensors[j].trainable);
    }
    return n;
}

static float *slot_ptr(fm_model *m, const slot *s) {
    return (s->stat ? m->stats : m->params) + s->off;
}

/* The kernel tables to run: every one this CPU and build have (the one
 * dispatch selects among them), the reference included; a vnni twin only
 * through its base, since they differ in the int8 ops alone. */
#define MAX_TABLES 8
static int kernel_tables(const fm__kernels *k[MAX_TABLES]) {
    int n = 0;
    for (int i = 0; fm__kernels_table_name(i); i++) {
        const fm__kernels *t = fm__kernels_by_name(fm__kernels_table_name(i));
        CHECK_MSG(n < MAX_TABLES, "more tables than MAX_TABLES");
        if (t && fm__kernels_fp32_base(t) == t && n < MAX_TABLES) k[n++] = t;
    }
    return n;
}

static fm_model *load_model(const char *cfg, int batch) {
    const char *dir = getenv("FMNIST_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", dir ? dir : ".", cfg);
    fm_err err;
    fm_model *m = fm_model_load_cfg(path, &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (m && fm__model_reserve(m, batch, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        fm_model_free(m);
        return NULL;
    }
    return m;
}

/* Input batch and labels from the fixture into the model; returns n or 0. */
static int load_batch(fixture *fx, fm_model *m, int n, uint8_t *labels) {
    const float *x = get(fx, "input", (size_t)n * FM_IMAGE_PIXELS);
    if (!x) return 0;
    memcpy(m->input_buf, x, (size_t)n * FM_IMAGE_PIXELS * sizeof(float));
    const float *y = get(fx, "labels", (size_t)n);
    if (!y) return 0;
    for (int i = 0; i < n; i++) labels[i] = (uint8_t)y[i];
    return n;
}

/* Every parameter and statistic from "init.<name>"; Adam moments zeroed. */
static int load_init(fixture *fx, fm_model *m, const slot *s, int ns) {
    char key[96];
    for (int i = 0; i < ns; i++) {
        snprintf(key, sizeof key, "init.%.63s", s[i].name);
        const float *v = get(fx, key, s[i].len);
        if (!v) return -1;
        memcpy(slot_ptr(m, &s[i]), v, s[i].len * sizeof(float));
    }
    memset(m->adam_m, 0, m->n_params * sizeof(float));
    memset(m->adam_v, 0, m->n_params * sizeof(float));
    return 0;
}

/* One training-mode forward/backward from init against logits, probs, loss,
 * grad.* and step1.*. */
static void check_step(fixture *fx, fm_model *m, const slot *s, int ns, int n,
                       const uint8_t *labels, const char *kern) {
    const fm__draws rng = {1, 0, NULL};
    fm__model_zero_grads(m);
    const float *logits = fm__model_forward(m, n, 1, &rng);
    CHECK(logits != NULL);
    if (!logits) return;
    const float *e = get(fx, "logits", (size_t)n * m->classes);
    if (e) near_scaled("logits", kern, logits, e, (size_t)n * m->classes, TOL_FWD);
    float loss = fm__model_loss_backward(m, labels, n, 0.0f, 1);
    if ((e = get(fx, "loss", 1))) near_scaled("loss", kern, &loss, e, 1, TOL_FWD);
    if ((e = get(fx, "probs", (size_t)n * m->classes)))
        near_scaled("probs", kern, m->probs, e, (size_t)n * m->classes, TOL_FWD);
    char key[96];
    for (int i = 0; i < ns; i++) {
        snprintf(key, sizeof key, "%s.%.63s", s[i].stat ? "step1" : "grad", s[i].name);
        if (!(e = get(fx, key, s[i].len))) continue;
        if (s[i].stat)
            near_scaled(key, kern, m->stats + s[i].off, e, s[i].len, TOL_FWD);
        else
            near_grad(key, kern, m->grads + s[i].off, e, s[i].len, TOL_GRAD);
    }
}

/* Three Keras Adam steps on the same batch from init against losses,
 * adam3.* (per-element tolerance adam3tol.*) and the statistics after them. */
static void check_adam(fixture *fx, fm_model *m, const slot *s, int ns, int n,
                       const uint8_t *labels, const char *kern) {
    const fm__draws rng = {1, 0, NULL};
    fm__adam adam;
    fm__adam_init(&adam, 1e-3f);
    float losses[ADAM_STEPS];
    for (int t = 0; t < ADAM_STEPS; t++) {
        fm__model_zero_grads(m);
        fm__model_forward(m, n, 1, &rng);
        losses[t] = fm__model_loss_backward(m, labels, n, 0.0f, 1);
        fm__adam_step(&adam, m->params, m->grads, m->adam_m, m->adam_v, m->n_params);
    }
    const float *e = get(fx, "losses", ADAM_STEPS);
    if (e) near_scaled("losses", kern, losses, e, ADAM_STEPS, TOL_FWD);
    char key[96];
    for (int i = 0; i < ns; i++) {
        snprintf(key, sizeof key, "adam3.%.63s", s[i].name);
        if (s[i].stat) {
            if ((e = get(fx, key, s[i].len)))
                near_scaled(key, kern, m->stats + s[i].off, e, s[i].len, TOL_STATS3);
            continue;
        }
        /* expected and tolerance both live in fx->buf: keep a copy of one */
        float *want = malloc(s[i].len * sizeof(float));
        if (!want) continue;
        if ((e = get(fx, key, s[i].len))) memcpy(want, e, s[i].len * sizeof(float));
        char tkey[96];
        snprintf(tkey, sizeof tkey, "adam3tol.%.63s", s[i].name);
        const float *tol = e ? get(fx, tkey, s[i].len) : NULL;
        if (tol) {
            const float *w = m->params + s[i].off;
            size_t bad = 0, worst = 0;
            double ratio_max = 0;
            for (size_t j = 0; j < s[i].len; j++) {
                double r = fabs((double)w[j] - want[j]) / tol[j];
                if (!(r <= 1)) bad++;
                if (!(r <= ratio_max)) {
                    ratio_max = r;
                    worst = j;
                }
            }
            note(ratio_max, key, kern);
            CHECK_MSG(bad == 0, "[%s] %s: %zu of %zu weights off; worst [%zu] %.9g vs %.9g (tol %.3g)",
                      kern, key, bad, s[i].len, worst, w[worst], want[worst], tol[worst]);
        }
        free(want);
    }
}

/* A reduced network: the cfg next to its fixture, a batch of BATCH_MAX. */
static void test_reduced(const char *name, int adam) {
    char file[128];
    snprintf(file, sizeof file, "%s.safetensors", name);
    fixture fx;
    if (fixture_open(&fx, file)) return;
    snprintf(file, sizeof file, "%s.cfg", name);
    fm_model *m = load_model(file, BATCH_MAX);
    slot s[64];
    uint8_t labels[BATCH_MAX];
    const fm__kernels *k[MAX_TABLES];
    int nk = kernel_tables(k);
    if (m) {
        int ns = model_slots(m, s);
        CHECK(ns > 0 && ns <= 64);
        for (int i = 0; i < nk; i++) {
            m->k = k[i];
            if (!load_batch(&fx, m, BATCH_MAX, labels) || load_init(&fx, m, s, ns)) break;
            check_step(&fx, m, s, ns, BATCH_MAX, labels, k[i]->name);
            if (adam) {
                load_init(&fx, m, s, ns);
                check_adam(&fx, m, s, ns, BATCH_MAX, labels, k[i]->name);
            }
        }
        fm_model_free(m);
    }
    fixture_close(&fx);
}

/* Uniform in [-1, 1) exactly as tests/torch/gen_fixtures.py:hash_uniform. */
static float hash_uniform(uint32_t tensor, uint32_t i) {
    uint32_t h = i * 0x9E3779B1u + (tensor + 1u) * 0x85EBCA77u;
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return (float)(h >> 8) * 0x1p-23f - 1.0f;
}

/* The full network's weights as gen_fixtures.py:full_weights makes them. */
static void full_weights(fm_model *m) {
    uint32_t k = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const fm__layer *l = &m->layers[i];
        /* kernels Glorot-scaled, biases and betas small, gammas and
         * variances near 1: one hash stream per tensor, in model order */
        float limit = (float)sqrt(6.0 / (l->fan_in + l->fan_out));
        for (int t = 0; t < l->type->n_tensors; t++) {
            fm__init init = l->type->tensors[t].init;
            for (size_t j = 0; j < l->t[t].len; j++) {
                float h = hash_uniform(k + (uint32_t)t, (uint32_t)j);
                l->t[t].data[j] = init == FM__INIT_GLOROT ? h * limit
                                  : init == FM__INIT_ONE  ? 1.0f + h * 0.25f
                                                          : h * 0.125f;
            }
        }
        k += (uint32_t)l->type->n_tensors;
    }
}

static void test_full(void) {
    enum { N = 4 };
    fixture fx;
    if (fixture_open(&fx, "torch_full.safetensors")) return;
    fm_model *m = load_model("torch_full.cfg", N);
    size_t trainable = 0;
    CHECK(m && fm_model_param_count(m, &trainable) == 1868234);
    slot s[64];
    uint8_t labels[N];
    const fm__kernels *k[MAX_TABLES];
    int nk = kernel_tables(k);
    for (int t = 0; m && t < nk; t++) {
        const char *kern = k[t]->name;
        m->k = k[t];
        full_weights(m);
        if (!load_batch(&fx, m, N, labels)) break;
        const fm__draws rng = {1, 0, NULL};

        /* inference: moving statistics, dropout at its real rate (identity) */
        const float *logits = fm__model_forward(m, N, 0, &rng);
        const float *e = get(&fx, "infer.logits", N * 10);
        if (logits && e) near_scaled("infer.logits", kern, logits, e, N * 10, TOL_FWD);
        float loss = fm__model_loss_backward(m, labels, N, 0.0f, 0);
        if ((e = get(&fx, "infer.loss", 1))) near_scaled("infer.loss", kern, &loss, e, 1, TOL_FWD);

        /* training with dropout as the identity (the reference cannot draw our masks) */
        float rates[FM__MAX_LAYERS];
        for (int i = 0; i < m->n_layers; i++) {
            fm__arg *rate = lt_arg_mut(&m->layers[i], "rate");
            rates[i] = rate ? rate->f : 0;
            if (rate) rate->f = 0;
        }
        fm__model_zero_grads(m);
        logits = fm__model_forward(m, N, 1, &rng);
        if (logits && (e = get(&fx, "train.logits", N * 10)))
            near_scaled("train.logits", kern, logits, e, N * 10, TOL_FWD);
        loss = fm__model_loss_backward(m, labels, N, 0.0f, 1);
        if ((e = get(&fx, "train.loss", 1))) near_scaled("train.loss", kern, &loss, e, 1, TOL_FWD);
        for (int i = 0; i < m->n_layers; i++) {
            fm__arg *rate = lt_arg_mut(&m->layers[i], "rate");
            if (rate) rate->f = rates[i];
        }

        int ns = model_slots(m, s);
        char key[96];
        for (int i = 0; i < ns; i++) {
            if (s[i].stat) {
                snprintf(key, sizeof key, "train.%.63s", s[i].name);
                if ((e = get(&fx, key, s[i].len)))
                    near_scaled(key, kern, m->stats + s[i].off, e, s[i].len, TOL_FWD);
                continue;
            }
            const float *g = m->grads + s[i].off;
            double norm = 0;
            for (size_t j = 0; j < s[i].len; j++) norm += (double)g[j] * g[j];
            float got_norm = (float)sqrt(norm);
            snprintf(key, sizeof key, "gradnorm.%.63s", s[i].name);
            if ((e = get(&fx, key, 1))) near_grad(key, kern, &got_norm, e, 1, TOL_GRAD);

            size_t cnt = s[i].len < 32 ? s[i].len : 32;
            float got[32];
            snprintf(key, sizeof key, "gradidx.%.63s", s[i].name);
            if (!(e = get(&fx, key, cnt))) continue;
            int idx_ok = 1;
            for (size_t j = 0; j < cnt; j++) {
                idx_ok &= e[j] >= 0 && (size_t)e[j] < s[i].len;
                got[j] = idx_ok ? g[(size_t)e[j]] : NAN;
            }
            CHECK_MSG(idx_ok, "%s: index out of range", key);
            snprintf(key, sizeof key, "gradval.%.63s", s[i].name);
            if ((e = get(&fx, key, cnt))) near_grad(key, kern, got, e, cnt, TOL_GRAD);
        }
    }
    fm_model_free(m);
    fixture_close(&fx);
}

static void test_augment(void) {
    fixture fx;
    if (fixture_open(&fx, "torch_augment.safetensors")) return;
    const fm__st_tensor *pt = fm__st_find(&fx.f, "params");
    CHECK(pt && pt->ndim == 2 && pt->shape[1] == 4);
    size_t np = pt ? pt->shape[0] : 0;
    uint8_t img[FM_IMAGE_PIXELS];
    const float *e = get(&fx, "image", FM_IMAGE_PIXELS);
    for (int i = 0; e && i < FM_IMAGE_PIXELS; i++) img[i] = (uint8_t)e[i];
    fm__aug *aug = calloc(np ? np : 1, sizeof *aug);
    if (e && aug && (e = get(&fx, "params", np * 4))) {
        for (size_t i = 0; i < np; i++)
            aug[i] = (fm__aug){e[4 * i], e[4 * i + 1], e[4 * i + 2], e[4 * i + 3] != 0};
        const float *want = get(&fx, "warped", np * FM_IMAGE_PIXELS);
        for (size_t i = 0; want && i < np; i++) {
            float out[FM_IMAGE_PIXELS];
            fm__aug_warp(out, img, FM_IMAGE_ROWS, FM_IMAGE_COLS, &aug[i]);
            double err = 0;
            for (int p = 0; p < FM_IMAGE_PIXELS; p++) {
                double d = fabs((double)out[p] - want[i * FM_IMAGE_PIXELS + p]);
                if (!(d <= err)) err = d;
            }
            note(err / TOL_AUG, "warp", "-");
            CHECK_MSG(err <= TOL_AUG, "warp %zu (angle %g, zx %g, zy %g, flip %d): max error %.3g",
                      i, aug[i].angle, aug[i].zx, aug[i].zy, aug[i].flip, err);
        }
    }
    free(aug);
    fixture_close(&fx);
}

int main(void) {
    test_reduced("torch_small", 1);
    test_reduced("torch_readme", 0);
    test_full();
    test_augment();
    printf("closest to a tolerance: %.3g of it, %s\n", worst_ratio, worst_what);
    return check_finish();
}
