/* The benchmark (fm_bench_run): the trainer's step and the evaluator's
 * inference (fm__model_infer) on synthetic data, each run timed alone,
 * summarised by medians (robust to the odd run a busy machine slows down). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "model/infer.h"
#include "model/model.h"
#include "train/adam.h"
#include "train/state.h"

#define BENCH_SEED 42

fm_bench_params fm_bench_default_params(void) {
    fm_bench_params p = {0};
    p.threads = 0;
    p.batch = 64;
    p.infer_batch = 500;
    p.steps = 30;
    p.warmup = 3;
    p.layers = 0;
    return p;
}

void fm_bench_result_free(fm_bench_result *r) {
    free(r->layers);
    r->layers = NULL;
    r->n_layers = 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of v[0..n), n >= 1; sorts v, so v[0] is then the smallest. */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int check_params(const fm_bench_params *p, fm_err *err) {
    if (p->threads < 0) return fm__err(err, "bench: threads must be >= 0 (got %d)", p->threads);
    if (p->batch < 1) return fm__err(err, "bench: batch must be at least 1 (got %d)", p->batch);
    if (p->infer_batch < 1)
        return fm__err(err, "bench: inference batch must be at least 1 (got %d)", p->infer_batch);
    if (p->steps < 1) return fm__err(err, "bench: steps must be at least 1 (got %d)", p->steps);
    if (p->warmup < 0) return fm__err(err, "bench: warm-up must be >= 0 (got %d)", p->warmup);
    return fm__train_check_precision(p->precision, "bench: ", err);
}

/* Inference batches: fm_model_evaluate's path (scaling, forward, loss),
 * which fm_model_predict runs less the loss. Medians into *med, fastest *min. */
static int time_inference(fm_model *m, const fm_bench_params *p, const uint8_t *pixels,
                          const uint8_t *labels, float *probs, double *times, double *med,
                          double *min, fm_err *err) {
    for (int s = -p->warmup; s < p->steps; s++) {
        double t0 = fm__now(), loss;
        if (fm__model_infer(m, pixels, labels, (size_t)p->infer_batch, p->infer_batch, probs,
                            &loss, err) < 0)
            return -1;
        if (s >= 0) times[s] = fm__now() - t0;
    }
    *med = median(times, p->steps); /* sorts them */
    *min = times[0];
    return 0;
}

int fm_bench_run(fm_model *m, const fm_bench_params *p, fm_bench_result *r, fm_err *err) {
    memset(r, 0, sizeof *r);
    if (check_params(p, err) < 0) return -1;
    if (m->quant)
        return fm__err(err, "bench: %s is an int8 model, which cannot train; bench its float "
                            "network, with int8 to time int8 inference as well",
                       m->source);
    r->threads = fm_set_threads(p->threads);
    int cap = p->batch > p->infer_batch ? p->batch : p->infer_batch;
    const fm__kernels *tk = fm__kernels_for_precision(p->precision);
    r->train_kernels = tk->name;
    if (fm__model_set_train_kernels(m, tk, err) < 0 || fm__model_reserve(m, cap, err) < 0) return -1;

    const int steps = p->steps, nl = m->n_layers;
    double *train_t = malloc((size_t)steps * sizeof *train_t);
    double *adam_t = malloc((size_t)steps * sizeof *adam_t);
    double *infer_t = malloc((size_t)steps * sizeof *infer_t);
    uint8_t *labels = malloc((size_t)cap);
    /* inference input (infer_batch, input) bytes and output (infer_batch, classes) */
    size_t px_len = (size_t)p->infer_batch * fm__shape_len(m->input);
    uint8_t *pixels = malloc(px_len);
    float *probs = malloc((size_t)p->infer_batch * (size_t)m->classes * sizeof *probs);
    /* With layers: per timed step, 2 * nl seconds (forward, backward per layer). */
    double *per_step = p->layers ? calloc((size_t)steps * 2 * (size_t)nl, sizeof *per_step) : NULL;
    fm_bench_layer *layers = p->layers ? calloc((size_t)nl, sizeof *layers) : NULL;
    int rc = -1;
    if (!train_t || !adam_t || !infer_t || !labels || !pixels || !probs ||
        (p->layers && (!per_step || !layers))) {
        fm__err(err, "bench: out of memory for %d steps", steps);
        goto done;
    }

    fm_rng rng;
    fm_rng_seed(&rng, BENCH_SEED);
    fm_model_init(m, &rng);
    size_t in_len = (size_t)cap * fm__shape_len(m->input);
    for (size_t i = 0; i < in_len; i++) m->input_buf[i] = fm_rng_uniform(&rng);
    for (int i = 0; i < cap; i++) labels[i] = (uint8_t)fm_rng_below(&rng, (uint32_t)m->classes);
    fm__adam adam;
    fm__adam_init(&adam, fm_train_default_params().lr);

    /* Training steps exactly as fm_train takes them, minus augmentation. */
    for (int s = -p->warmup; s < steps; s++) {
        m->layer_seconds = s >= 0 && per_step ? per_step + (size_t)s * 2 * (size_t)nl : NULL;
        double t0 = fm__now();
        fm__model_zero_grads(m);
        fm__model_forward(m, p->batch, 1, &(fm__draws){BENCH_SEED, (uint64_t)(s + p->warmup), NULL});
        float loss = fm__model_loss_backward(m, labels, p->batch, 0.0f, 1);
        double t1 = fm__now();
        fm__adam_step(&adam, m->params, m->grads, m->adam_m, m->adam_v, m->n_params);
        double t2 = fm__now();
        m->layer_seconds = NULL;
        if (!isfinite(loss)) {
            fm__err(err, "bench: the training loss became %s at step %d",
                    isnan(loss) ? "NaN" : "infinite", s + p->warmup + 1);
            goto done;
        }
        if (s >= 0) {
            train_t[s] = t2 - t0;
            adam_t[s] = t2 - t1;
        }
    }
    /* Inference on random bytes. */
    for (size_t i = 0; i < px_len; i++) pixels[i] = (uint8_t)fm_rng_below(&rng, 256);
    if (time_inference(m, p, pixels, labels, probs, infer_t, &r->infer_batch_s,
                       &r->infer_batch_min_s, err) < 0)
        goto done;
    if (p->int8) {
        fm_images calib = {(size_t)p->infer_batch, pixels, labels};
        fm_quantize_params q = fm_quantize_default_params();
        q.calibration_images = calib.count;
        if (fm_model_quantize(m, &calib, &q, err) < 0 ||
            time_inference(m, p, pixels, labels, probs, infer_t, &r->infer_int8_batch_s,
                           &r->infer_int8_batch_min_s, err) < 0)
            goto done;
        r->infer_int8_img_per_s = p->infer_batch / r->infer_int8_batch_s;
    }

    r->train_step_s = median(train_t, steps);
    r->train_step_min_s = train_t[0];
    r->adam_s = median(adam_t, steps);
    r->train_img_per_s = p->batch / r->train_step_s;
    r->infer_img_per_s = p->infer_batch / r->infer_batch_s;
    if (layers) {
        /* train_t is free again: it gathers one layer's column at a time. */
        for (int i = 0; i < nl; i++) {
            snprintf(layers[i].name, sizeof layers[i].name, "%s", m->layers[i].name);
            for (int dir = 0; dir < 2; dir++) {
                for (int s = 0; s < steps; s++)
                    train_t[s] = per_step[((size_t)s * (size_t)nl + (size_t)i) * 2 + (size_t)dir];
                double med = median(train_t, steps);
                if (dir) layers[i].backward_s = med;
                else layers[i].forward_s = med;
            }
        }
        r->layers = layers;
        r->n_layers = nl;
        layers = NULL;
    }
    rc = 0;
done:
    m->layer_seconds = NULL;
    m->k_train = m->k;
    free(train_t);
    free(adam_t);
    free(infer_t);
    free(labels);
    free(pixels);
    free(probs);
    free(per_step);
    free(layers);
    return rc;
}
