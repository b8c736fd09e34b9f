/* The model as a whole: Glorot initialisation, Keras BatchNorm moving
 * averages and dropout, prediction (shapes, probabilities, batching, errors),
 * save/load giving identical predictions, state get/set, batched inference
 * (scaling, loss, batching, predict and evaluate on it), reservation, and the
 * selected (fast) kernel table agreeing with the reference through the model. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/infer.h"
#include "model/model.h"

static fm_rng rng;

static fm_model *load_default(void) {
    const char *src = getenv("FMNIST_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/configs/fashion-cnn.cfg", src ? src : ".");
    fm_err err;
    fm_model *m = fm_model_load_cfg(path, &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    return m;
}

static fm_model *parse(const char *text) {
    fm_err err;
    fm_model *m = fm_model_parse(text, "test", &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    return m;
}

/* n random images with labels */
static fm_images images(size_t n) {
    fm_images im = {n, malloc(n * FM_IMAGE_PIXELS), malloc(n)};
    for (size_t i = 0; i < n * FM_IMAGE_PIXELS; i++) im.pixels[i] = (uint8_t)fm_rng_below(&rng, 256);
    for (size_t i = 0; i < n; i++) im.labels[i] = (uint8_t)fm_rng_below(&rng, 10);
    return im;
}

static void test_init(void) {
    fm_model *m = load_default();
    if (!m) return;
    fm_rng a;
    fm_rng_seed(&a, 42);
    fm_model_init(m, &a);
    const fm__layer *c0 = &m->layers[0], *d0 = &m->layers[11];
    double lim_c = sqrt(6.0 / (9 * 1 + 9 * 64)), lim_d = sqrt(6.0 / (6272 + 256));
    double s2 = 0, mx = 0;
    for (size_t i = 0; i < c0->t[0].len; i++) {
        mx = fmax(mx, fabs(c0->t[0].data[i]));
        s2 += c0->t[0].data[i] * (double)c0->t[0].data[i];
    }
    CHECK(mx <= lim_c && mx > 0.9 * lim_c);
    /* uniform(-L, L) has variance L^2/3 */
    CHECK_NEAR(s2 / c0->t[0].len, lim_c * lim_c / 3, 0.15 * lim_c * lim_c / 3);
    s2 = 0;
    mx = 0;
    for (size_t i = 0; i < d0->t[0].len; i++) {
        mx = fmax(mx, fabs(d0->t[0].data[i]));
        s2 += d0->t[0].data[i] * (double)d0->t[0].data[i];
    }
    CHECK(mx <= lim_d && mx > 0.99 * lim_d);
    CHECK(fabs(s2 / d0->t[0].len - lim_d * lim_d / 3) < 0.01 * lim_d * lim_d);
    int zero_bias = 1;
    for (size_t i = 0; i < c0->t[1].len; i++) zero_bias &= c0->t[1].data[i] == 0.0f;
    CHECK(zero_bias);
    const fm__layer *bn = &m->layers[1];
    CHECK(bn->t[0].data[0] == 1.0f && bn->t[1].data[0] == 0.0f);
    CHECK(bn->t[2].data[0] == 0.0f && bn->t[3].data[0] == 1.0f);
    /* same seed, same weights; another seed, others */
    float *first = malloc(m->n_params * sizeof *first);
    memcpy(first, m->params, m->n_params * sizeof *first);
    fm_rng_seed(&a, 42);
    fm_model_init(m, &a);
    CHECK(!memcmp(first, m->params, m->n_params * sizeof *first));
    fm_rng_seed(&a, 43);
    fm_model_init(m, &a);
    CHECK(memcmp(first, m->params, m->n_params * sizeof *first) != 0);
    free(first);
    fm_model_free(m);
}

/* BatchNorm first: moving = moving*momentum + batch*(1-momentum), batch
 * variance biased; dropout inverted at training, identity at inference. */
static void test_batchnorm_dropout(void) {
    fm_model *m = parse("input 2 2 2\nbatchnorm momentum=0.9\ndropout 0.5\nflatten\n"
                        "dense units=2 activation=softmax\n");
    if (!m) return;
    fm_err err;
    const int n = 3;
    CHECK(fm__model_reserve(m, n, &err) == 0);
    for (int i = 0; i < n * 8; i++) m->input_buf[i] = (float)i * 0.5f - 3.0f;
    const fm__draws r = {1, 0, NULL};
    fm__model_forward(m, n, 1, &r);
    const fm__layer *bn = &m->layers[0], *dr = &m->layers[1];
    double means[2], vars[2];
    for (int c = 0; c < 2; c++) {
        double mean = 0, var = 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 4; k++) mean += m->input_buf[(i * 2 + c) * 4 + k];
        mean /= 4 * n;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 4; k++) var += pow(m->input_buf[(i * 2 + c) * 4 + k] - mean, 2);
        var /= 4 * n;
        CHECK_NEAR(bn->t[2].data[c], 0.1 * mean, 1e-6);
        CHECK_NEAR(bn->t[3].data[c], 0.9 + 0.1 * var, 1e-6);
        means[c] = mean;
        vars[c] = var;
    }
    /* dropout works in place over batch norm's output: kept units are the
     * normalised values (gamma 1, beta 0) doubled, the others zero */
    CHECK(dr->y == bn->y);
    int kept = 0, ok = 1;
    for (int i = 0; i < n * 8; i++) {
        int c = i / 4 % 2;
        double normal = (m->input_buf[i] - means[c]) / sqrt(vars[c] + 1e-3);
        kept += ((const uint8_t *)dr->save)[i];
        ok &= ((const uint8_t *)dr->save)[i] ? fabs(dr->y[i] - 2.0 * normal) < 1e-5 : dr->y[i] == 0.0f;
    }
    CHECK(ok && kept > 0 && kept < n * 8);
    /* inference: moving statistics, no dropout */
    fm__model_forward(m, n, 0, NULL);
    ok = 1;
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 4; k++) {
                size_t j = (size_t)(i * 2 + c) * 4 + k;
                double want = (m->input_buf[j] - bn->t[2].data[c]) /
                              sqrt(bn->t[3].data[c] + 1e-3);
                ok &= fabs(bn->y[j] - want) < 1e-5 && dr->y[j] == bn->y[j];
            }
    CHECK(ok);
    /* a big layer keeps about 1 - rate */
    fm_model_free(m);
    m = parse("input 100 100 1\ndropout 0.25\nflatten\ndense units=2 activation=softmax\n");
    if (!m) return;
    CHECK(fm__model_reserve(m, 2, &err) == 0);
    for (int i = 0; i < 20000; i++) m->input_buf[i] = 1.0f;
    fm__model_forward(m, 2, 1, &r);
    kept = 0;
    for (int i = 0; i < 20000; i++) kept += ((const uint8_t *)m->layers[0].save)[i];
    CHECK(kept > 14700 && kept < 15300);
    fm_model_free(m);
}

#define SMALL_NET                                                            \
    "# a small network with every layer type\n"                              \
    "input 28 28 1\n"                                                        \
    "conv filters=4 kernel=3 padding=same activation=relu\n"                 \
    "batchnorm\n"                                                            \
    "conv filters=6 kernel=3 stride=2 padding=same activation=relu\n"        \
    "maxpool 2\n"                                                            \
    "dropout 0.25\n"                                                         \
    "conv filters=8 kernel=5 padding=valid\n"                                \
    "relu\n"                                                                 \
    "flatten\n"                                                              \
    "dense units=16 activation=relu\n"                                       \
    "batchnorm\n"                                                            \
    "dropout 0.5\n"                                                          \
    "dense units=10\n"                                                       \
    "softmax\n"

static void test_predict(void) {
    /* the real network, once */
    fm_model *m = load_default(), *small;
    if (!m) return;
    fm_images im = images(7);
    float p[7 * 10], q[7 * 10];
    fm_err err;
    fm_model_init(m, &rng);
    CHECK_MSG(fm_model_predict(m, &im, 0, 2, p, &err) == 0, "%s", err.msg);
    CHECK(m->batch_cap == FM__PREDICT_BATCH);
    for (int i = 0; i < 2; i++) {
        double s = 0;
        for (int j = 0; j < 10; j++) s += p[i * 10 + j];
        CHECK_NEAR(s, 1.0, 1e-5);
    }
    fm_model_free(m);

    m = parse(SMALL_NET);
    small = parse(SMALL_NET);
    if (!m || !small) return;
    fm_rng a;
    fm_rng_seed(&a, 3);
    fm_model_init(m, &a);
    fm_rng_seed(&a, 3);
    fm_model_init(small, &a);
    CHECK_MSG(fm_model_predict(m, &im, 0, 7, p, &err) == 0, "%s", err.msg);
    int ok = 1;
    for (int i = 0; i < 7; i++) {
        double s = 0;
        for (int j = 0; j < 10; j++) {
            ok &= p[i * 10 + j] >= 0.0f && p[i * 10 + j] <= 1.0f;
            s += p[i * 10 + j];
        }
        CHECK_NEAR(s, 1.0, 1e-5);
    }
    CHECK(ok);
    /* the same through batches of 3, and for a sub-range */
    CHECK(fm__model_reserve(small, 3, &err) == 0);
    CHECK(fm_model_predict(small, &im, 0, 7, q, &err) == 0 && small->batch_cap == 3);
    double worst = 0;
    for (int i = 0; i < 70; i++) worst = fmax(worst, fabs(p[i] - q[i]));
    CHECK_MSG(worst < 1e-5, "batching changes predictions by %g", worst);
    CHECK(fm_model_predict(m, &im, 4, 3, q, &err) == 0);
    worst = 0;
    for (int i = 0; i < 30; i++) worst = fmax(worst, fabs(q[i] - p[40 + i]));
    CHECK_MSG(worst < 1e-5, "a sub-range predicts differently by %g", worst);
    CHECK(fm_model_predict(m, &im, 5, 3, q, &err) == -1 && strstr(err.msg, "outside"));
    CHECK(fm_model_predict(m, &im, 8, 0, q, &err) == -1);
    CHECK(fm_model_predict(m, &im, 7, 0, q, &err) == 0);
    fm_model *other = parse("input 14 14 1\nflatten\ndense units=10 activation=softmax\n");
    CHECK(other && fm_model_predict(other, &im, 0, 1, q, &err) == -1 && strstr(err.msg, "14x14x1"));
    fm_model_free(other);
    other = parse("input 28 28 1\nflatten\ndense units=3 activation=softmax\n");
    CHECK(other && fm_model_predict(other, &im, 0, 1, q, &err) == -1 && strstr(err.msg, "3 classes"));
    fm_model_free(other);
    fm_model_free(m);
    fm_model_free(small);
    free(im.pixels);
    free(im.labels);
}

/* A few SGD steps so weights and BatchNorm statistics are not at init. */
static void train_steps(fm_model *m, const fm_images *im, int steps) {
    fm_err err;
    CHECK(fm__model_reserve(m, 4, &err) == 0);
    for (int s = 0; s < steps; s++) {
        for (size_t j = 0; j < 4 * FM_IMAGE_PIXELS; j++) m->input_buf[j] = im->pixels[j] / 255.0f;
        fm__model_zero_grads(m);
        fm__model_forward(m, 4, 1, &(fm__draws){1, (uint64_t)s, NULL});
        fm__model_loss_backward(m, im->labels, 4, 0.0f, 1);
        for (size_t i = 0; i < m->n_params; i++) m->params[i] -= 0.05f * m->grads[i];
    }
}

/* save -> load: same description, parameters, statistics and predictions
 * (on the first 9 images of im) */
static void check_round_trip(fm_model *m, const fm_images *im, const char *file) {
    float before[90], after[90];
    fm_err err;
    CHECK(fm_model_predict(m, im, 0, 9, before, &err) == 0);
    const char *tmp = getenv("FMNIST_TEST_TMP");
    char path[1024], cmd[1100];
    snprintf(path, sizeof path, "%s/model-test", tmp ? tmp : "/tmp/fmnist-test");
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    CHECK(system(cmd) == 0);
    strcat(path, "/");
    strcat(path, file);
    CHECK_MSG(fm_model_save(m, path, &err) == 0, "%s", err.msg);
    fm_model *l = fm_model_load(path, &err);
    CHECK_MSG(l != NULL, "%s", err.msg);
    if (l) {
        CHECK(!strcmp(fm_model_description(l), fm_model_description(m)));
        CHECK(l->n_params == m->n_params && l->n_stats == m->n_stats);
        CHECK(!memcmp(l->params, m->params, m->n_params * sizeof(float)));
        CHECK(!memcmp(l->stats, m->stats, m->n_stats * sizeof(float)));
        CHECK(fm__model_reserve(l, m->batch_cap, &err) == 0);
        CHECK(fm_model_predict(l, im, 0, 9, after, &err) == 0);
        CHECK(!memcmp(before, after, sizeof before));
        fm_model_free(l);
    }
}

static void test_save_load_state(void) {
    fm_model *m = parse(SMALL_NET);
    if (!m) return;
    fm_model_init(m, &rng);
    fm_images im = images(9);
    train_steps(m, &im, 3);
    CHECK(m->layers[1].t[2].data[0] != 0.0f);
    check_round_trip(m, &im, "small.safetensors");
    float before[90], after[90];
    fm_err err;
    CHECK(fm_model_predict(m, &im, 0, 9, before, &err) == 0);

    /* state: trainable parameters then BatchNorm statistics */
    size_t len = fm__model_state_len(m);
    CHECK(len == m->n_params + m->n_stats);
    float *state = malloc(len * sizeof *state);
    fm__model_get_state(m, state);
    CHECK(!memcmp(state, m->params, m->n_params * sizeof(float)));
    CHECK(!memcmp(state + m->n_params, m->stats, m->n_stats * sizeof(float)));
    train_steps(m, &im, 2);
    CHECK(fm_model_predict(m, &im, 0, 9, after, &err) == 0);
    CHECK(memcmp(before, after, sizeof before) != 0);
    fm__model_set_state(m, state);
    CHECK(fm_model_predict(m, &im, 0, 9, after, &err) == 0);
    CHECK(!memcmp(before, after, sizeof before));
    free(state);
    fm_model_free(m);
    free(im.pixels);
    free(im.labels);
}

/* The pooling layers in a model file: no tensors of their own, but the
 * layers around them keep theirs and the predictions survive. */
static void test_pool_round_trip(void) {
    fm_model *m = parse("input 28 28 1\n"
                        "conv filters=4 kernel=3 padding=same activation=relu\n"
                        "avgpool 2\n"
                        "batchnorm\n"
                        "conv filters=6 kernel=3 activation=relu\n"
                        "avgpool size=3\n"
                        "globalavgpool\n"
                        "dense units=10 activation=softmax\n");
    if (!m) return;
    fm_model_init(m, &rng);
    fm_images im = images(9);
    train_steps(m, &im, 3);
    check_round_trip(m, &im, "pool.safetensors");
    fm_model_free(m);
    free(im.pixels);
    free(im.labels);
}

/* fm__model_infer: the one input scaling, inference mode, the loss from the
 * logits (batch means weighted by batch size), batching as reserved, and
 * fm_model_predict and fm_model_evaluate being it. */
static void test_infer(void) {
    uint8_t bytes[3] = {0, 51, 255};
    float scaled[3];
    fm__input_scale(scaled, bytes, 3);
    CHECK(scaled[0] == 0.0f && scaled[1] == 0.2f && scaled[2] == 1.0f);

    fm_model *m = parse(SMALL_NET), *by3 = parse(SMALL_NET), *fresh = parse(SMALL_NET);
    if (!m || !by3 || !fresh) return;
    fm_model_init(m, &rng);
    fm_images im = images(7);
    train_steps(m, &im, 2); /* BatchNorm statistics away from identity; reserves 4 */
    /* sharper outputs, so per-image losses differ widely and a plain mean of
     * the batch means (4 and 3 images) would be far from the mean over images */
    const fm__layer *out = &m->layers[m->n_layers - 2];
    for (size_t i = 0; i < out->t[0].len; i++) out->t[0].data[i] *= 8.0f;
    float *state = malloc(fm__model_state_len(m) * sizeof *state);
    fm__model_get_state(m, state);
    fm__model_set_state(by3, state);
    fm_err err;
    CHECK(fm__model_reserve(by3, 3, &err) == 0);

    float p[70], q[70];
    double loss = -1, loss3 = -1;
    CHECK_MSG(fm__model_infer(m, im.pixels, im.labels, 7, 100, p, &loss, &err) == 0, "%s",
              err.msg);
    CHECK(m->batch_cap == 4); /* planned already: its own batch, not the one offered */
    CHECK(fm__model_infer(by3, im.pixels, im.labels, 7, 100, q, &loss3, &err) == 0);
    double want = 0, worst = 0, lo = INFINITY, hi = 0;
    for (int i = 0; i < 7; i++) {
        double l = -log(p[i * 10 + im.labels[i]]);
        want += l / 7;
        lo = fmin(lo, l), hi = fmax(hi, l);
    }
    CHECK_MSG(hi - lo > 1.0, "losses %g..%g too alike to tell the weighting", lo, hi);
    CHECK_NEAR(loss, want, 1e-5);
    CHECK_NEAR(loss3, want, 1e-5);
    for (int i = 0; i < 70; i++) worst = fmax(worst, fabs(p[i] - q[i]));
    CHECK_MSG(worst < 1e-5, "batching changes probabilities by %g", worst);
    /* no dropout, moving statistics: the same bits every time, and predict's */
    CHECK(fm__model_infer(m, im.pixels, im.labels, 7, 100, q, &loss3, &err) == 0);
    CHECK(!memcmp(p, q, sizeof p) && loss3 == loss);
    CHECK(fm_model_predict(m, &im, 0, 7, q, &err) == 0 && !memcmp(p, q, sizeof p));
    /* the last batch's input is the scaled bytes of image 6 */
    float last[FM_IMAGE_PIXELS];
    fm__input_scale(last, im.pixels + 6 * FM_IMAGE_PIXELS, FM_IMAGE_PIXELS);
    CHECK(!memcmp(m->input_buf + 2 * FM_IMAGE_PIXELS, last, sizeof last));
    /* no labels: the loss is left alone; no images: NAN */
    double kept = 42;
    CHECK(fm__model_infer(m, im.pixels, NULL, 7, 100, q, &kept, &err) == 0 && kept == 42);
    CHECK(!memcmp(p, q, sizeof p));
    CHECK(fm__model_infer(m, im.pixels, im.labels, 0, 100, q, &kept, &err) == 0 && isnan(kept));
    /* an unplanned model is planned for the batch offered */
    fm__model_set_state(fresh, state);
    CHECK(fm__model_infer(fresh, im.pixels, im.labels, 7, 5, q, &kept, &err) == 0 &&
          fresh->batch_cap == 5);
    /* evaluate's loss is this loss, to the bit */
    fm_eval_result ev;
    CHECK_MSG(fm_model_evaluate(by3, &im, &ev, &err) == 0, "%s", err.msg);
    CHECK(fm__model_infer(by3, im.pixels, im.labels, 7, 100, q, &loss3, &err) == 0);
    CHECK(ev.loss == loss3);
    free(state);
    fm_model_free(m);
    fm_model_free(by3);
    fm_model_free(fresh);
    free(im.pixels);
    free(im.labels);
}

static void test_reserve(void) {
    fm_model *m = parse(SMALL_NET);
    if (!m) return;
    fm_err err;
    CHECK(fm__model_forward(m, 1, 0, NULL) == NULL); /* nothing reserved */
    CHECK(fm__model_reserve(m, 0, &err) == -1);
    CHECK(fm__model_reserve(m, 2, &err) == 0 && m->batch_cap == 2);
    void *arena = m->arena;
    CHECK(fm__model_reserve(m, 1, &err) == 0 && m->arena == arena && m->batch_cap == 2);
    CHECK(fm__model_forward(m, 3, 0, NULL) == NULL);
    CHECK(fm__model_reserve(m, 5, &err) == 0 && m->batch_cap == 5);
    CHECK(fm__model_forward(m, 5, 0, NULL) != NULL);
    /* flatten and softmax add no buffers: they alias their input */
    CHECK(m->layers[7].y == m->layers[6].y && m->layers[12].y == m->layers[11].y);
    CHECK(fm__model_reserve(m, 1 << 30, &err) == -1 && strstr(err.msg, "too large"));
    fm_model_free(m);
}

/* The selected kernel table through the model, workspace and all, agrees
 * with the reference table: probabilities, loss and gradients. */
static void test_kernels_agree(void) {
    const fm__kernels *fast = fm__kernels_select();
    fm_model *a = parse(SMALL_NET), *b = parse(SMALL_NET);
    if (!a || !b) return;
    a->k = fm__kernels_ref();
    b->k = fast;
    fm_rng ra, rb;
    fm_rng_seed(&ra, 8);
    fm_model_init(a, &ra);
    fm_rng_seed(&rb, 8);
    fm_model_init(b, &rb);
    fm_images im = images(5);
    fm_err err;
    CHECK(fm__model_reserve(a, 5, &err) == 0 && fm__model_reserve(b, 5, &err) == 0);
    for (size_t j = 0; j < 5 * FM_IMAGE_PIXELS; j++)
        a->input_buf[j] = b->input_buf[j] = im.pixels[j] / 255.0f;
    fm__model_zero_grads(a);
    fm__model_zero_grads(b);
    fm__model_forward(a, 5, 1, &(fm__draws){8, 0, NULL});
    fm__model_forward(b, 5, 1, &(fm__draws){8, 0, NULL});
    float la = fm__model_loss_backward(a, im.labels, 5, 0.0f, 1);
    float lb = fm__model_loss_backward(b, im.labels, 5, 0.0f, 1);
    CHECK_NEAR(la, lb, 1e-4);
    double worst = 0, norm = 0;
    for (size_t i = 0; i < a->n_params; i++) {
        worst = fmax(worst, fabs(a->grads[i] - b->grads[i]));
        norm = fmax(norm, fabs(a->grads[i]));
    }
    CHECK_MSG(worst <= 1e-3 * norm, "%s kernels: gradients differ by %g (largest %g)", fast->name,
              worst, norm);
    worst = 0;
    for (int i = 0; i < 50; i++) worst = fmax(worst, fabs(a->probs[i] - b->probs[i]));
    CHECK_MSG(worst < 1e-4, "%s kernels: probabilities differ by %g", fast->name, worst);
    fm_model_free(a);
    fm_model_free(b);
    free(im.pixels);
    free(im.labels);
}

/* The built-in networks are the files in configs/ they are built from, and
 * fm_model_load_named tells names from files. */
static void test_builtin_networks(void) {
    const char *src = getenv("FMNIST_SOURCE_DIR");
    int count = 0;
    for (const char *name; (name = fm_model_builtin_name(count)); count++) {
        const char *text = fm_model_builtin(name);
        CHECK_MSG(text != NULL, "%s: listed but not built in", name);
        fm_err err;
        fm_model *m = fm_model_load_named(name, &err);
        CHECK_MSG(m != NULL, "%s: %s", name, m ? "" : err.msg);
        if (m) CHECK(!strcmp(fm_model_description(m), text));
        fm_model_free(m);
        if (!src || !text) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/configs/%s.cfg", src, name);
        FILE *f = fopen(path, "rb");
        CHECK_MSG(f != NULL, "%s: no configs file", path);
        if (!f) continue;
        static char file[1 << 16];
        size_t n = fread(file, 1, sizeof file - 1, f);
        fclose(f);
        file[n] = 0;
        CHECK_MSG(!strcmp(file, text), "%s differs from the built-in %s", path, name);
    }
    CHECK(count == 2 && fm_model_builtin_name(-1) == NULL && fm_model_builtin("fashion") == NULL);
    CHECK(fm_model_builtin("fashion-cnn") && fm_model_builtin("fashion-cnn-bn"));
    fm_err err;
    CHECK(fm_model_load_named("fashion-cnn-xl", &err) == NULL &&
          strstr(err.msg, "fashion-cnn-xl: no such built-in network (built in: fashion-cnn, "
                          "fashion-cnn-bn)"));
    /* a name with a '.' or a '/' is a file, even where a built-in has that name */
    CHECK(fm_model_load_named("./fashion-cnn", &err) == NULL &&
          strstr(err.msg, "./fashion-cnn: cannot open"));
}

int main(void) {
    fm_rng_seed(&rng, 77);
    test_builtin_networks();
    test_init();
    test_batchnorm_dropout();
    test_predict();
    test_save_load_state();
    test_pool_round_trip();
    test_infer();
    test_reserve();
    test_kernels_agree();
    return check_finish();
}
