/* Test-time augmentation in fm__model_infer: with flip, the probabilities
 * are the mean of two plain passes, one over the images mirrored here by
 * hand, to the bit; the loss is the cross-entropy of that mean (plain,
 * as every evaluation); predict and evaluate are it; a left-right symmetric image gains
 * nothing; the plain path is untouched. Also the public calls. The model
 * file's record is in test_safetensors, the ONNX graph in test_onnx and
 * system_onnx, the verbs in system_eval_predict and test_report. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/infer.h"
#include "model/model.h"

static fm_rng rng;

static fm_model *parse(const char *text) {
    fm_err err;
    fm_model *m = fm_model_parse(text, "test", &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    return m;
}

/* Every row of every channel of n images (c, h, w) reversed. */
static void mirror(uint8_t *dst, const uint8_t *src, size_t n, int c, int h, int w) {
    for (size_t r = 0; r < n * (size_t)c * (size_t)h; r++)
        for (int x = 0; x < w; x++) dst[r * w + x] = src[r * w + (w - 1 - x)];
}

/* m (flip) against a copy without TTA on n random images, both planned for
 * batches of `batch` so the two see the same batches. */
static void check_flip(const char *desc, size_t n, int batch) {
    fm_model *m = parse(desc), *plain = parse(desc);
    if (!m || !plain) return;
    fm_err err;
    fm_model_init(m, &rng);
    /* BatchNorm statistics off identity, so they count */
    for (size_t i = 0; i < m->n_stats; i++) m->stats[i] = 0.5f + fm_rng_uniform(&rng);
    float *state = malloc(fm__model_state_len(m) * sizeof *state);
    fm__model_get_state(m, state);
    fm__model_set_state(plain, state);
    CHECK(fm_model_set_tta(m, FM_TTA_FLIP, &err) == 0 && fm_model_tta(m) == FM_TTA_FLIP);
    CHECK(fm_model_tta(plain) == FM_TTA_NONE); /* a new model has none */
    CHECK(fm__model_reserve(m, batch, &err) == 0 && fm__model_reserve(plain, batch, &err) == 0);

    const size_t in_len = fm__shape_len(m->input), k = (size_t)m->classes;
    uint8_t *px = malloc(n * in_len), *mir = malloc(n * in_len), *labels = malloc(n);
    float *p = malloc(n * k * sizeof *p), *a = malloc(n * k * sizeof *a),
          *b = malloc(n * k * sizeof *b);
    for (size_t i = 0; i < n * in_len; i++) px[i] = (uint8_t)fm_rng_below(&rng, 256);
    for (size_t i = 0; i < n; i++) labels[i] = (uint8_t)fm_rng_below(&rng, (uint32_t)k);
    mirror(mir, px, n, m->input.c, m->input.h, m->input.w);

    double loss = -1, la = -1, lb = -1;
    CHECK_MSG(fm__model_infer(m, px, labels, n, batch, p, &loss, &err) == 0, "%s", err.msg);
    CHECK(fm__model_infer(plain, px, labels, n, batch, a, &la, &err) == 0);
    CHECK(fm__model_infer(plain, mir, labels, n, batch, b, &lb, &err) == 0);
    int same = 1;
    double moved = 0, want = 0;
    for (size_t i = 0; i < n * k; i++) {
        same &= p[i] == 0.5f * (a[i] + b[i]);
        moved = fmax(moved, fabs(p[i] - a[i]));
    }
    CHECK_MSG(same, "%s: flip is not the mean of the two passes", desc);
    CHECK_MSG(moved > 1e-3, "%s: the mirror changes nothing (%g): a weak test", desc, moved);
    for (size_t i = 0; i < n; i++) want -= log(0.5 * ((double)a[i * k + labels[i]] +
                                                      (double)b[i * k + labels[i]])) / (double)n;
    CHECK_NEAR(loss, want, 1e-5 * fmax(1.0, want));
    CHECK(fabs(loss - la) > 1e-4 && fabs(loss - lb) > 1e-4);


    /* no labels: the same probabilities, the loss left alone */
    float *q = malloc(n * k * sizeof *q);
    double kept = 42;
    CHECK(fm__model_infer(m, px, NULL, n, batch, q, &kept, &err) == 0 && kept == 42);
    CHECK(!memcmp(p, q, n * k * sizeof *p));
    /* set back to none, it is the plain model again */
    CHECK(fm_model_set_tta(m, FM_TTA_NONE, &err) == 0);
    CHECK(fm__model_infer(m, px, labels, n, batch, q, &kept, &err) == 0);
    CHECK(!memcmp(a, q, n * k * sizeof *a) && kept == la);

    free(q);
    free(px);
    free(mir);
    free(labels);
    free(p);
    free(a);
    free(b);
    free(state);
    fm_model_free(m);
    fm_model_free(plain);
}

#define NET_28                                                       \
    "input 28 28 1\n"                                                \
    "conv filters=4 kernel=3 padding=same activation=relu\n"         \
    "batchnorm\n"                                                    \
    "maxpool 2\n"                                                    \
    "dropout 0.25\n"                                                 \
    "conv filters=6 kernel=3 stride=2 padding=same activation=relu\n" \
    "flatten\n"                                                      \
    "dense units=16 activation=relu\n"                               \
    "dense units=10 activation=softmax\n"

/* predict and evaluate run it; a symmetric image's mean is its one pass. */
static void test_predict_evaluate(void) {
    fm_model *m = parse(NET_28), *plain = parse(NET_28);
    if (!m || !plain) return;
    fm_err err;
    fm_model_init(m, &rng);
    float *state = malloc(fm__model_state_len(m) * sizeof *state);
    fm__model_get_state(m, state);
    fm__model_set_state(plain, state);
    CHECK(fm_model_set_tta(m, FM_TTA_FLIP, &err) == 0);
    enum { N = 9 };
    fm_images im = {N, malloc(N * FM_IMAGE_PIXELS), malloc(N)};
    for (size_t i = 0; i < N * FM_IMAGE_PIXELS; i++) im.pixels[i] = (uint8_t)fm_rng_below(&rng, 256);
    for (size_t i = 0; i < N; i++) im.labels[i] = (uint8_t)fm_rng_below(&rng, 10);
    /* image 0 symmetric */
    for (int r = 0; r < FM_IMAGE_ROWS; r++)
        for (int x = 0; x < FM_IMAGE_COLS / 2; x++)
            im.pixels[r * FM_IMAGE_COLS + FM_IMAGE_COLS - 1 - x] = im.pixels[r * FM_IMAGE_COLS + x];

    float p[N * 10], q[N * 10], r[N * 10];
    double loss = -1;
    CHECK(fm_model_predict(m, &im, 0, N, p, &err) == 0); /* plans FM__PREDICT_BATCH */
    CHECK(fm__model_infer(m, im.pixels, im.labels, N, FM__PREDICT_BATCH, q, &loss, &err) == 0);
    CHECK(!memcmp(p, q, sizeof p));
    fm_eval_result ev;
    CHECK_MSG(fm_model_evaluate(m, &im, &ev, &err) == 0, "%s", err.msg);
    CHECK(ev.loss == loss && ev.count == N);
    CHECK(fm__model_reserve(plain, m->batch_cap, &err) == 0);
    CHECK(fm_model_predict(plain, &im, 0, N, r, &err) == 0);
    CHECK(!memcmp(p, r, 10 * sizeof *p));        /* the symmetric image */
    CHECK(memcmp(p + 10, r + 10, 10 * sizeof *p)); /* the others differ */
    free(state);
    free(im.pixels);
    free(im.labels);
    fm_model_free(m);
    fm_model_free(plain);
}

static void test_api(void) {
    CHECK(!strcmp(fm_tta_name(FM_TTA_NONE), "none") && !strcmp(fm_tta_name(FM_TTA_FLIP), "flip"));
    CHECK(fm_tta_name((fm_tta)2) == NULL && fm_tta_name((fm_tta)-1) == NULL);
    fm_tta t = FM_TTA_NONE;
    CHECK(fm__tta_parse("flip", &t) == 0 && t == FM_TTA_FLIP);
    CHECK(fm__tta_parse("none", &t) == 0 && t == FM_TTA_NONE);
    CHECK(fm__tta_parse("Flip", &t) == -1 && fm__tta_parse("", &t) == -1 && t == FM_TTA_NONE);
    fm_model *m = parse(NET_28);
    if (!m) return;
    fm_err err;
    CHECK(fm_model_set_tta(m, FM_TTA_FLIP, &err) == 0);
    CHECK(fm_model_set_tta(m, (fm_tta)7, &err) == -1 && strstr(err.msg, "test:") &&
          strstr(err.msg, "7 is not a test-time augmentation"));
    CHECK(fm_model_tta(m) == FM_TTA_FLIP); /* unchanged */
    fm_model_free(m);
}

int main(void) {
    fm_rng_seed(&rng, 12);
    test_api();
    /* batches of 4 over 7 images: a full batch and a short one */
    check_flip(NET_28, 7, 4);
    /* two channels and an odd width: each row of each channel reversed */
    check_flip("input 5 7 2\n"
               "conv filters=3 kernel=3 padding=same activation=relu\n"
               "flatten\n"
               "dense units=4 activation=softmax\n",
               5, 2);
    test_predict_evaluate();
    return check_finish();
}
