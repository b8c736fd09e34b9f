/* The training recipes' building blocks against PyTorch, and at their edges:
 * - optimizers (train/optim.h): AdamW and SGD (momentum, Nesterov, weight
 *   decay everywhere or on spans) step by step against torch.optim, the
 *   Keras Adam kind against train/adam.c to the bit, weight decay 0 and
 *   empty decay spans against the plain update to the bit, any thread
 *   count to the bit, the decay spans of a model, the settings checks;
 * - learning-rate schedules (train/schedule.h) against torch's LinearLR,
 *   CosineAnnealingLR, SequentialLR, OneCycleLR and LambdaLR; step 0, the
 *   last step, no warm-up, one step, phases of no width;
 * - label smoothing in softmax_xent against F.cross_entropy(label_smoothing)
 *   and its autograd gradient, and through fm__model_loss_backward.
 * The values come from tests/fixtures/torch_optim.safetensors, made by
 * tests/torch/gen_fixtures.py (float64 torch; see its docstring); no Python
 * is needed here.
 *
 * Tolerances (the generator asserts a float32 torch run passes them):
 * - TOL_OPT 1e-6 of max(1, max|expected|) for the weights after each of six
 *   steps and the final moments: the C side rounds each operation to float
 *   as torch's float32 kernels do, but in other forms (w - lr*wd*w for
 *   torch's w*(1 - lr*wd), m + (g - m)(1 - b1) for b1*m + (1 - b1)*g), a few
 *   float32 roundings of values of order 1 per step (torch's float32 run
 *   reaches 0.2 of it). The gradients are given exactly, so Adam is well
 *   conditioned even where |g| is near epsilon (which the fixture has: the
 *   two epsilon placements differ there by far more than this);
 * - TOL_SCHED 1e-12 of the peak rate: both sides compute in double, torch
 *   partly by recurrences that gather a few ulps per step;
 * - TOL_XENT 1e-6 of max(1, max|expected|) for the loss, probabilities and
 *   gradient: a float rounding of each (the loss sums in double). */
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "check.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "train/adam.h"
#include "train/optim.h"
#include "train/schedule.h"

#define TOL_OPT 1e-6
#define TOL_SCHED 1e-12
#define TOL_XENT 1e-6

#define PI 3.14159265358979323846 /* PI is not in strict C11 */

#define OPT_N 48
#define OPT_STEPS 6

static fm__st_file fx;
static char fx_path[1024];

/* A malloc'd copy of the named tensor of `count` elements of dtype (0 to
 * take its own count, stored in *count_out when given); NULL, and a failed
 * check, when absent or of another size or type. */
static void *load(const char *name, fm__st_dtype dtype, size_t count, size_t *count_out) {
    const fm__st_tensor *t = fm__st_find(&fx, name);
    int ok = t && t->dtype == dtype && (!count || t->count == count);
    CHECK_MSG(ok, "%s: %s: missing, or not %zu %s", fx_path, name, count, fm__st_dtype_name(dtype));
    if (!ok) return NULL;
    void *p = malloc(t->count * fm__st_dtype_size(dtype));
    if (p) fm__st_copy(t, p);
    if (count_out) *count_out = t->count;
    return p;
}

static float *load32(const char *name, size_t count) { return load(name, FM__ST_F32, count, NULL); }
static int has(const char *name) { return fm__st_find(&fx, name) != NULL; }

/* The closest a comparison came to its tolerance, printed at the end so a
 * shrinking margin shows before it fails. */
static double worst_ratio;
static char worst_what[128];

static void note(double ratio, const char *what) {
    if (ratio > worst_ratio) {
        worst_ratio = ratio;
        snprintf(worst_what, sizeof worst_what, "%s", what);
    }
}

/* max |a-b| / max(1, max|b|) <= tol */
static void near_scaled(const char *what, const float *a, const float *b, size_t n, double tol) {
    double err = 0, scale = 1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= err)) err = d; /* also catches NaN */
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    note(err / (tol * scale), what);
    CHECK_MSG(err <= tol * scale, "%s: max error %.3g, allowed %.3g", what, err, tol * scale);
}

/* ---- optimizers ----------------------------------------------------------- */

/* The fixture's cases; their settings are in "<name>.hyper". torch.optim.Adam
 * is AdamW's arithmetic with decay 0 (PyTorch's epsilon placement). */
static const struct {
    const char *name;
    fm__optim_kind kind;
} opt_cases[] = {
    {"adam", FM__OPTIM_ADAMW},      {"adamw", FM__OPTIM_ADAMW},
    {"adamw_mask", FM__OPTIM_ADAMW}, {"sgd", FM__OPTIM_SGD},
    {"sgd_momentum", FM__OPTIM_SGD}, {"sgd_nesterov", FM__OPTIM_SGD},
    {"sgd_wd", FM__OPTIM_SGD},      {"sgd_nesterov_wd_mask", FM__OPTIM_SGD},
};

/* An optimizer of kind from hyper = beta1, beta2, eps, momentum, nesterov,
 * weight_decay (masked, the 7th, is the caller's). */
static void optim_from(fm__optim *o, fm__optim_kind kind, const float *hyper, float lr) {
    if (kind == FM__OPTIM_ADAMW) {
        fm__optim_adamw(o, lr, hyper[5]);
        o->beta1 = hyper[0];
        o->beta2 = hyper[1];
        o->eps = hyper[2];
    } else {
        fm__optim_sgd(o, lr, hyper[3], hyper[4] != 0, hyper[5]);
    }
}

/* Runs the fixture's steps from w0 with o (lr from lrs each step), decay as
 * given; checks the weights after each step against "<name>.w" and the
 * final moments against "<name>.m" / "<name>.v" where torch has them. */
static void run_case(const char *name, const char *how, fm__optim *o, const fm__decay *decay,
                     const float *w0, const float *grads, const float *lrs) {
    char key[96], what[128];
    snprintf(key, sizeof key, "%s.w", name);
    float *want = load32(key, OPT_STEPS * OPT_N);
    if (!want) return;
    float w[OPT_N], m[OPT_N] = {0}, v[OPT_N] = {0};
    memcpy(w, w0, sizeof w);
    for (int k = 0; k < OPT_STEPS; k++) {
        o->lr = lrs[k];
        fm__optim_step(o, w, grads + k * OPT_N, m, v, OPT_N, decay);
        snprintf(what, sizeof what, "%s%s: weights after step %d", name, how, k + 1);
        near_scaled(what, w, want + k * OPT_N, OPT_N, TOL_OPT);
    }
    CHECK(o->t == OPT_STEPS);
    const char *moment[2] = {"m", "v"};
    float *got[2] = {m, v};
    for (int j = 0; j < 2; j++) {
        snprintf(key, sizeof key, "%s.%s", name, moment[j]);
        if (!has(key)) continue; /* SGD without momentum keeps no buffer; SGD has no v */
        float *e = load32(key, OPT_N);
        snprintf(what, sizeof what, "%s%s: %s after the steps", name, how, moment[j]);
        if (e) near_scaled(what, got[j], e, OPT_N, TOL_OPT);
        free(e);
    }
    free(want);
}

static void test_optim_torch(void) {
    float *w0 = load32("opt.w0", OPT_N), *grads = load32("opt.grads", OPT_STEPS * OPT_N);
    size_t n_spans = 0;
    float *spans = load("opt.spans", FM__ST_F32, 0, &n_spans);
    if (!w0 || !grads || !spans) goto done;
    fm__decay mask = {.n = (int)(n_spans / 2)};
    for (int i = 0; i < mask.n; i++)
        mask.span[i] = (fm__span){(size_t)spans[2 * i], (size_t)spans[2 * i + 1]};
    for (size_t c = 0; c < sizeof opt_cases / sizeof *opt_cases; c++) {
        char key[96];
        snprintf(key, sizeof key, "%s.hyper", opt_cases[c].name);
        float *hyper = load32(key, 7);
        snprintf(key, sizeof key, "%s.lrs", opt_cases[c].name);
        float *lrs = load32(key, OPT_STEPS);
        if (hyper && lrs) {
            fm__optim o;
            optim_from(&o, opt_cases[c].kind, hyper, lrs[0]);
            fm_err err;
            CHECK_MSG(fm__optim_check(&o, &err) == 0, "%s: %s", opt_cases[c].name, err.msg);
            run_case(opt_cases[c].name, "", &o, hyper[6] != 0 ? &mask : NULL, w0, grads, lrs);
            /* Weight decay turned off by an empty span list is the plain
             * update: run the undecayed cases again with decay set but nowhere. */
            if (hyper[5] == 0) {
                fm__decay none = {.n = 0};
                optim_from(&o, opt_cases[c].kind, hyper, lrs[0]);
                o.weight_decay = 0.1f;
                run_case(opt_cases[c].name, " (decay 0.1 on no span)", &o, &none, w0, grads, lrs);
            }
        }
        free(hyper);
        free(lrs);
    }
done:
    free(w0);
    free(grads);
    free(spans);
}

/* Parameters, gradients and moments of n elements, filled from seed. */
typedef struct block {
    float *w, *g, *m, *v;
    size_t n;
} block;

static block block_new(size_t n, uint64_t seed) {
    block b = {malloc(n * sizeof(float)), malloc(n * sizeof(float)), calloc(n, sizeof(float)),
               calloc(n, sizeof(float)), n};
    fm_rng r;
    fm_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        b.w[i] = (float)(2 * fm_rng_uniform(&r) - 1);
        b.g[i] = (float)((2 * fm_rng_uniform(&r) - 1) * 1e-2);
    }
    return b;
}

static int block_same(const block *a, const block *b) {
    size_t s = a->n * sizeof(float);
    return !memcmp(a->w, b->w, s) && !memcmp(a->m, b->m, s) && !memcmp(a->v, b->v, s);
}

static void block_free(block *b) { free(b->w), free(b->g), free(b->m), free(b->v); }

/* k steps of o over the block (the same gradient each step, lr changing). */
static void steps(fm__optim o, block *b, const fm__decay *decay, int k) {
    for (int s = 0; s < k; s++) {
        o.lr = 1e-2f / (float)(s + 1);
        fm__optim_step(&o, b->w, b->g, b->m, b->v, b->n, decay);
    }
}

static void test_optim_bits(void) {
    enum { N = 1000 };
    fm__optim o;
    /* Keras Adam is adam.c's arithmetic, t and all, through an lr change. */
    {
        block a = block_new(N, 1), b = block_new(N, 1);
        fm__adam ka;
        fm__adam_init(&ka, 1e-3f);
        fm__optim_adam(&o, 1e-3f);
        CHECK(o.beta1 == ka.beta1 && o.beta2 == ka.beta2 && o.eps == ka.eps && o.t == 0);
        for (int s = 0; s < 5; s++) {
            if (s == 3) ka.lr = o.lr = 5e-4f;
            fm__adam_step(&ka, a.w, a.g, a.m, a.v, N);
            fm__optim_step(&o, b.w, b.g, b.m, b.v, N, NULL);
        }
        CHECK(block_same(&a, &b) && o.t == 5 && ka.t == 5);
        block_free(&a), block_free(&b);
    }
    /* Weight decay 0 is the plain update, everywhere or on spans, and so is
     * decay set but on no span; with decay on, NULL spans and one span over
     * the whole block agree, and spans decay inside, not outside. */
    for (int kind = FM__OPTIM_ADAMW; kind <= FM__OPTIM_SGD; kind++) {
        fm__optim zero, wd;
        if (kind == FM__OPTIM_ADAMW) {
            fm__optim_adamw(&zero, 1e-2f, 0.0f);
            fm__optim_adamw(&wd, 1e-2f, 0.1f);
        } else {
            fm__optim_sgd(&zero, 1e-2f, 0.9f, 1, 0.0f);
            fm__optim_sgd(&wd, 1e-2f, 0.9f, 1, 0.1f);
        }
        fm__decay none = {.n = 0}, all = {.n = 1, .span = {{0, N}}};
        fm__decay some = {.n = 2, .span = {{10, 300}, {301, 700}}};
        block plain = block_new(N, 2), plain_spans = block_new(N, 2), nowhere = block_new(N, 2);
        block decayed = block_new(N, 2), decayed_all = block_new(N, 2), part = block_new(N, 2);
        steps(zero, &plain, NULL, 4);
        steps(zero, &plain_spans, &some, 4);
        steps(wd, &nowhere, &none, 4);
        CHECK_MSG(block_same(&plain, &plain_spans) && block_same(&plain, &nowhere),
                  "kind %d: decay 0", kind);
        steps(wd, &decayed, NULL, 4);
        steps(wd, &decayed_all, &all, 4);
        steps(wd, &part, &some, 4);
        CHECK_MSG(block_same(&decayed, &decayed_all), "kind %d: NULL spans, one span", kind);
        size_t s = sizeof(float);
        CHECK(memcmp(plain.w + 10, decayed.w + 10, 290 * s) != 0);
        CHECK(!memcmp(part.w, plain.w, 10 * s) && !memcmp(part.w + 300, plain.w + 300, s) &&
              !memcmp(part.w + 700, plain.w + 700, (N - 700) * s));
        CHECK(!memcmp(part.w + 10, decayed.w + 10, 290 * s) &&
              !memcmp(part.w + 301, decayed.w + 301, 399 * s));
        block_free(&plain), block_free(&plain_spans), block_free(&nowhere);
        block_free(&decayed), block_free(&decayed_all), block_free(&part);
    }
    /* SGD without momentum is w -= lr * g; with momentum its first step is
     * that too (the buffer starts at zero, PyTorch's starts at g). */
    {
        block a = block_new(N, 3), b = block_new(N, 3), ref = block_new(N, 3);
        fm__optim_sgd(&o, 1e-2f, 0.0f, 0, 0.0f); /* steps() sets lr 1e-2 for the first */
        steps(o, &a, NULL, 1);
        fm__optim_sgd(&o, 1e-2f, 0.9f, 0, 0.0f);
        steps(o, &b, NULL, 1);
        for (size_t i = 0; i < N; i++) ref.w[i] -= 1e-2f * ref.g[i];
        CHECK(!memcmp(a.w, ref.w, N * sizeof(float)) && !memcmp(b.w, ref.w, N * sizeof(float)));
        CHECK(!memcmp(b.m, b.g, N * sizeof(float))); /* the buffer holds g */
        block_free(&a), block_free(&b), block_free(&ref);
    }
}

/* Any thread count gives the same bits, in blocks large enough for the
 * loops to run in parallel. */
static void test_optim_threads(void) {
#ifdef _OPENMP
    enum { N = 300000 };
    int before = omp_get_max_threads();
    fm__optim kinds[3];
    fm__optim_adam(&kinds[0], 1e-3f);
    fm__optim_adamw(&kinds[1], 1e-3f, 0.05f);
    fm__optim_sgd(&kinds[2], 1e-2f, 0.9f, 1, 5e-4f);
    fm__decay some = {.n = 2, .span = {{1000, 100000}, {150000, 290000}}};
    for (int k = 0; k < 3; k++) {
        block a = block_new(N, 4), b = block_new(N, 4);
        omp_set_num_threads(1);
        steps(kinds[k], &a, &some, 3);
        omp_set_num_threads(4);
        steps(kinds[k], &b, &some, 3);
        CHECK_MSG(block_same(&a, &b), "optimizer %d: 1 and 4 threads differ", k);
        block_free(&a), block_free(&b);
    }
    omp_set_num_threads(before);
#endif
}

static void test_optim_check(void) {
    fm__optim o;
    fm_err err;
    fm__optim_adam(&o, 1e-3f);
    CHECK(fm__optim_check(&o, &err) == 0);
    o.weight_decay = 0.01f;
    CHECK(fm__optim_check(&o, &err) < 0 && strstr(err.msg, "AdamW"));
    fm__optim_adamw(&o, 1e-3f, 0.01f);
    CHECK(fm__optim_check(&o, &err) == 0 && o.eps == 1e-8f && o.beta2 == 0.999f);
    o.beta2 = 1.0f;
    CHECK(fm__optim_check(&o, &err) < 0 && strstr(err.msg, "beta2"));
    fm__optim_adamw(&o, -1e-3f, 0.01f);
    CHECK(fm__optim_check(&o, &err) < 0 && strstr(err.msg, "learning rate"));
    fm__optim_adamw(&o, NAN, 0.01f);
    CHECK(fm__optim_check(&o, &err) < 0);
    fm__optim_adamw(&o, 1e-3f, -0.01f);
    CHECK(fm__optim_check(&o, &err) < 0 && strstr(err.msg, "weight decay"));
    fm__optim_sgd(&o, 0.1f, 0.9f, 1, 5e-4f);
    CHECK(fm__optim_check(&o, &err) == 0);
    fm__optim_sgd(&o, 0.1f, 0.0f, 1, 0.0f);
    CHECK(fm__optim_check(&o, &err) < 0 && strstr(err.msg, "Nesterov"));
    fm__optim_sgd(&o, 0.1f, 1.0f, 0, 0.0f);
    CHECK(fm__optim_check(&o, &err) < 0 && strstr(err.msg, "momentum"));
    o.kind = (fm__optim_kind)7;
    CHECK(fm__optim_check(&o, &err) < 0);
}

/* Decay spans of a model with conv, BatchNorm and dense layers. */
static void test_decay_from_model(void) {
    fm_err err;
    fm_model *m = fm_model_parse("input 6 6 1\n"
                                 "conv filters=2 kernel=3 padding=same activation=relu\n"
                                 "batchnorm\n"
                                 "conv filters=3 kernel=3 padding=same activation=relu\n"
                                 "flatten\n"
                                 "dense units=4 activation=relu\n"
                                 "dense units=3 activation=softmax\n",
                                 "decay", &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m) return;
    fm__decay d;
    fm__decay_from_model(&d, m, 0);
    CHECK(d.n == 1 && d.span[0].begin == 0 && d.span[0].end == m->n_params);
    fm__decay_from_model(&d, m, 1);
    /* the four kernels (conv, conv_1, dense, dense_1), none adjacent: a
     * bias, BatchNorm's gamma and beta lie between */
    CHECK(d.n == 4);
    int k = 0;
    size_t decayed = 0, kernels = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const fm__layer *l = &m->layers[i];
        for (int j = 0; j < l->type->n_tensors; j++) {
            if (l->type->tensors[j].init != FM__INIT_GLOROT) continue;
            kernels += l->t[j].len;
            CHECK(k < d.n && d.span[k].begin == l->t[j].offset &&
                  d.span[k].end == l->t[j].offset + l->t[j].len);
            k++;
        }
    }
    for (int i = 0; i < d.n; i++) decayed += d.span[i].end - d.span[i].begin;
    CHECK(k == 4 && decayed == kernels && kernels == 2 * 9 + 3 * 2 * 9 + 4 * 108 + 3 * 4);
    fm_model_free(m);
}

/* ---- schedules ------------------------------------------------------------ */

static const struct {
    const char *name;
    fm__sched_kind kind;
} sched_cases[] = {
    {"constant", FM__SCHED_CONSTANT}, {"warmup_constant", FM__SCHED_CONSTANT},
    {"cosine", FM__SCHED_COSINE},     {"warmup_cosine", FM__SCHED_COSINE},
    {"linear", FM__SCHED_LINEAR},     {"warmup_linear", FM__SCHED_LINEAR},
    {"onecycle", FM__SCHED_ONECYCLE}, {"onecycle_linear", FM__SCHED_ONECYCLE},
    {"onecycle_short", FM__SCHED_ONECYCLE}, {"onecycle_one", FM__SCHED_ONECYCLE},
};

static void test_schedule_torch(void) {
    for (size_t c = 0; c < sizeof sched_cases / sizeof *sched_cases; c++) {
        char key[96];
        /* lr, warmup_steps, warmup_start, floor, pct_start, div_factor,
         * final_div_factor, anneal_linear */
        snprintf(key, sizeof key, "sched.%s.cfg", sched_cases[c].name);
        double *cfg = load(key, FM__ST_F64, 8, NULL);
        size_t total = 0;
        snprintf(key, sizeof key, "sched.%s.lr", sched_cases[c].name);
        double *want = load(key, FM__ST_F64, 0, &total);
        if (cfg && want) {
            fm__schedule s;
            if (sched_cases[c].kind == FM__SCHED_ONECYCLE) {
                fm__schedule_onecycle(&s, cfg[0]);
                s.pct_start = cfg[4];
                s.div_factor = cfg[5];
                s.final_div_factor = cfg[6];
                s.anneal_linear = cfg[7] != 0;
            } else {
                fm__schedule_warmup(&s, sched_cases[c].kind, cfg[0], (int64_t)cfg[1], cfg[2],
                                    cfg[3]);
            }
            fm_err err;
            CHECK_MSG(fm__schedule_check(&s, (int64_t)total, &err) == 0, "%s: %s",
                      sched_cases[c].name, err.msg);
            double worst = 0;
            for (size_t i = 0; i < total; i++) {
                double d = fabs(fm__schedule_lr(&s, (int64_t)i, (int64_t)total) - want[i]);
                if (!(d <= worst)) worst = d;
            }
            char what[96];
            snprintf(what, sizeof what, "schedule %s", sched_cases[c].name);
            note(worst / (TOL_SCHED * cfg[0]), what);
            CHECK_MSG(worst <= TOL_SCHED * cfg[0], "%s: max error %.3g of the peak %g",
                      sched_cases[c].name, worst / cfg[0], cfg[0]);
        }
        free(cfg);
        free(want);
    }
}

static void test_schedule_edges(void) {
    fm__schedule s;
    fm_err err;
    /* warm-up: step 0 is start * lr, step W the peak; no warm-up starts at
     * the peak; the decays start at the peak, fall monotonically, and the
     * last step is one step short of the floor */
    fm__schedule_warmup(&s, FM__SCHED_COSINE, 0.1, 4, 0.25, 0.1);
    CHECK(fm__schedule_lr(&s, 0, 20) == 0.1 * 0.25);
    CHECK_NEAR(fm__schedule_lr(&s, 2, 20), 0.1 * (0.25 + 0.75 * 0.5), 1e-15);
    CHECK(fm__schedule_lr(&s, 4, 20) == 0.1);
    CHECK_NEAR(fm__schedule_lr(&s, 4 + 8, 20), 0.1 * (0.1 + 0.9 / 2), 1e-15); /* half-way */
    CHECK_NEAR(fm__schedule_lr(&s, 19, 20), 0.1 * (0.1 + 0.9 * (1 + cos(PI * 15 / 16)) / 2), 1e-15);
    CHECK(fm__schedule_lr(&s, 25, 20) == fm__schedule_lr(&s, 19, 20)); /* past the end: the last */
    for (int kind = FM__SCHED_CONSTANT; kind <= FM__SCHED_LINEAR; kind++) {
        fm__schedule_warmup(&s, (fm__sched_kind)kind, 0.1, 0, 0.5, 0.0);
        CHECK(fm__schedule_check(&s, 10, &err) == 0);
        CHECK(fm__schedule_lr(&s, 0, 10) == 0.1);
        for (int i = 1; i < 10; i++)
            CHECK(fm__schedule_lr(&s, i, 10) <= fm__schedule_lr(&s, i - 1, 10));
        CHECK(fm__schedule_lr(&s, 9, 10) > 0);
        /* a run of one step takes the peak (nothing to decay towards yet) */
        CHECK(fm__schedule_lr(&s, 0, 1) == 0.1);
    }
    fm__schedule_warmup(&s, FM__SCHED_LINEAR, 0.1, 0, 0, 0.0);
    CHECK_NEAR(fm__schedule_lr(&s, 9, 10), 0.1 / 10, 1e-15);
    /* a warm-up as long as the run: warming up to its end */
    fm__schedule_warmup(&s, FM__SCHED_CONSTANT, 0.1, 10, 0.0, 0.0);
    CHECK(fm__schedule_lr(&s, 0, 10) == 0.0 && fm__schedule_lr(&s, 9, 10) < 0.1);
    /* one-cycle: starts at lr/div, peaks at step pct*total - 1, ends at
     * lr/div/final; one step is the end rate; a rising phase of no width
     * (torch divides by zero) is the peak at step 0 */
    fm__schedule_onecycle(&s, 0.1);
    CHECK(fm__schedule_check(&s, 100, &err) == 0);
    CHECK(s.pct_start == 0.3 && s.div_factor == 25 && s.final_div_factor == 1e4 &&
          !s.anneal_linear);
    CHECK_NEAR(fm__schedule_lr(&s, 0, 100), 0.1 / 25, 1e-15);
    CHECK(fm__schedule_lr(&s, 29, 100) == 0.1);
    CHECK_NEAR(fm__schedule_lr(&s, 99, 100), 0.1 / 25 / 1e4, 1e-15);
    CHECK_NEAR(fm__schedule_lr(&s, 0, 1), 0.1 / 25 / 1e4, 1e-15);
    s.pct_start = 0.1;
    CHECK(fm__schedule_lr(&s, 0, 10) == 0.1 && fm__schedule_lr(&s, 1, 10) < 0.1);
    s.pct_start = 1.0;
    CHECK(fm__schedule_lr(&s, 0, 1) == 0.1);
    s.pct_start = 0.0; /* no rise: the fall starts one step before step 0 */
    CHECK_NEAR(fm__schedule_lr(&s, 0, 10), 0.1 / 25 / 1e4 + (0.1 - 0.1 / 25 / 1e4) / 2 *
                                                 (cos(PI * 0.1) + 1), 1e-15);
    /* the checks */
    fm__schedule_warmup(&s, FM__SCHED_COSINE, 0.1, 5, 0.1, 0.01);
    CHECK(fm__schedule_check(&s, 1, &err) == 0);
    CHECK(fm__schedule_check(&s, 0, &err) < 0 && strstr(err.msg, "steps"));
    s.floor = 1.5;
    CHECK(fm__schedule_check(&s, 10, &err) < 0 && strstr(err.msg, "floor"));
    fm__schedule_warmup(&s, FM__SCHED_COSINE, 0.1, -1, 0.1, 0.01);
    CHECK(fm__schedule_check(&s, 10, &err) < 0 && strstr(err.msg, "warm-up"));
    fm__schedule_warmup(&s, FM__SCHED_CONSTANT, 0.0, 0, 0, 0);
    CHECK(fm__schedule_check(&s, 10, &err) < 0 && strstr(err.msg, "rate"));
    fm__schedule_onecycle(&s, 0.1);
    s.pct_start = 1.2;
    CHECK(fm__schedule_check(&s, 10, &err) < 0 && strstr(err.msg, "pct_start"));
    s.pct_start = 0.3;
    s.div_factor = 0;
    CHECK(fm__schedule_check(&s, 10, &err) < 0 && strstr(err.msg, "div_factor"));
    s.kind = (fm__sched_kind)9;
    CHECK(fm__schedule_check(&s, 10, &err) < 0);
}

/* ---- label smoothing ------------------------------------------------------ */

enum { XN = 8, XK = 10, XS = 4 };

static void test_xent_torch(void) {
    float *logits = load32("xent.logits", XN * XK), *lab = load32("xent.labels", XN);
    float *smooth = load32("xent.smoothing", XS), *probs = load32("xent.probs", XN * XK);
    float *loss = load32("xent.loss", XS), *grad = load32("xent.grad", XS * XN * XK);
    if (logits && lab && smooth && probs && loss && grad) {
        uint8_t labels[XN];
        for (int i = 0; i < XN; i++) labels[i] = (uint8_t)lab[i];
        const fm__kernels *tables[4] = {fm__kernels_ref(), fm__kernels_avx2(), fm__kernels_avx512(),
                                        fm__kernels_select()};
        for (int t = 0; t < 4; t++) {
            if (!tables[t]) continue;
            for (int s = 0; s < XS; s++) {
                float p[XN * XK], d[XN * XK];
                char what[96];
                float l = tables[t]->softmax_xent(p, d, logits, labels, XN, XK, smooth[s]);
                snprintf(what, sizeof what, "[%s] smoothing %g: loss", tables[t]->name, smooth[s]);
                near_scaled(what, &l, &loss[s], 1, TOL_XENT);
                snprintf(what, sizeof what, "[%s] smoothing %g: probs", tables[t]->name, smooth[s]);
                near_scaled(what, p, probs, XN * XK, TOL_XENT);
                snprintf(what, sizeof what, "[%s] smoothing %g: dlogits", tables[t]->name,
                         smooth[s]);
                near_scaled(what, d, grad + s * XN * XK, XN * XK, TOL_XENT);
            }
        }
    }
    free(logits), free(lab), free(smooth), free(probs), free(loss), free(grad);
}

/* The loss's smoothing reaches the kernel; 0 is the plain loss. */
static void test_model_smoothing(void) {
    fm_err err;
    fm_model *m = fm_model_parse("input 2 2 1\nflatten\ndense units=3 activation=softmax\n",
                                 "smoothing", &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m) return;
    CHECK_MSG(fm__model_reserve(m, 2, &err) == 0, "%s", err.msg);
    fm_rng r;
    fm_rng_seed(&r, 5);
    fm_model_init(m, &r);
    for (int i = 0; i < 8; i++) m->input_buf[i] = (float)fm_rng_uniform(&r);
    const uint8_t labels[2] = {2, 0};
    float p[6], d[6];
    for (int pass = 0; pass < 2; pass++) {
        float s = pass ? 0.2f : 0.0f;
        const float *logits = fm__model_forward(m, 2, 0, NULL);
        float want = m->k->softmax_xent(p, d, logits, labels, 2, 3, s);
        fm__model_zero_grads(m);
        float got = fm__model_loss_backward(m, labels, 2, s, 1);
        CHECK(got == want && !memcmp(m->dlogits, d, sizeof d));
    }
    fm_model_free(m);
}

int main(void) {
    const char *dir = getenv("FMNIST_SOURCE_DIR");
    snprintf(fx_path, sizeof fx_path, "%s/tests/fixtures/torch_optim.safetensors", dir ? dir : ".");
    fm_err err;
    if (fm__st_read(&fx, fx_path, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return check_finish();
    }
    test_optim_torch();
    test_optim_bits();
    test_optim_threads();
    test_optim_check();
    test_decay_from_model();
    test_schedule_torch();
    test_schedule_edges();
    test_xent_torch();
    test_model_smoothing();
    fm__st_close(&fx);
    printf("closest to a tolerance: %.3f of it (%s)\n", worst_ratio, worst_what);
    return check_finish();
}
