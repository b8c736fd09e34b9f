/* The embedding API (fmnist.h, "classifying"): the queries (input shape,
 * class count and names, renaming refused for bad names), fm_model_classify
 * against fm_model_predict to the bit on real test images (synthetic ones
 * when the data set is absent), with and without test-time augmentation,
 * the batch variant against it (bytes and floats, contexts of several
 * batch sizes and none), the refusals, and several threads classifying on
 * one model at once with results equal to one thread's to the bit and the
 * weights untouched. fm_image_load is in test_image, `fmnist predict`
 * against fm_model_classify in system_eval_predict. */
#include <pthread.h>
#include <string.h>

#include "check.h"
#include "data/testutil.h"
#include "model/infer.h"
#include "model/model.h"

/* few: each is a full forward pass of the default network, slow under the
 * sanitizers */
#define N_IMAGES 16

static fm_model *default_model(void) {
    const char *dir = getenv("FMNIST_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/configs/fashion-cnn.cfg", dir ? dir : "..");
    fm_err err;
    fm_model *m = fm_model_load_cfg(path, &err);
    if (!m) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    /* random weights and BatchNorm statistics off the identity, so every
     * tensor counts */
    fm_rng rng;
    fm_rng_seed(&rng, 7);
    fm_model_init(m, &rng);
    for (size_t i = 0; i < m->n_stats; i++) m->stats[i] = 0.5f + fm_rng_uniform(&rng);
    return m;
}

/* Test images from the data set when it is installed, else a synthetic set. */
static void test_images(fm_images *imgs) {
    fm_err err;
    fm_images all = {0};
    if (fm_data_load(FM_DEBIAN_DATA_DIR, FM_SET_TEST, &all, &err) == 0 && all.count >= N_IMAGES) {
        if (fm_images_alloc(imgs, N_IMAGES, NULL) < 0) exit(1);
        memcpy(imgs->pixels, all.pixels, (size_t)N_IMAGES * FM_IMAGE_PIXELS);
        memcpy(imgs->labels, all.labels, N_IMAGES);
    } else {
        printf("note: no test set in %s (%s): synthetic images\n", FM_DEBIAN_DATA_DIR, err.msg);
        tu_make_set(imgs, N_IMAGES, 3);
    }
    fm_images_free(&all);
}

static int same_floats(const float *a, const float *b, size_t n) {
    return !memcmp(a, b, n * sizeof *a);
}

static void test_queries(void) {
    fm_model *m = default_model();
    int c = 0, h = 0, w = 0;
    fm_model_input_shape(m, &c, &h, &w);
    CHECK(c == 1 && h == 28 && w == 28);
    fm_model_input_shape(m, NULL, NULL, &w); /* any may be NULL */
    CHECK(fm_model_class_count(m) == FM_NUM_CLASSES);
    for (int k = 0; k < FM_NUM_CLASSES; k++)
        CHECK(!strcmp(fm_model_class_name(m, k), fm_class_names[k]));
    CHECK(!fm_model_class_name(m, FM_NUM_CLASSES) && !fm_model_class_name(m, -1));
    fm_model_free(m);

    fm_err err;
    m = fm_model_parse("input 6 5 2\nflatten\ndense units=3 activation=softmax\n", "three", &err);
    CHECK_MSG(m, "%s", err.msg);
    if (!m) return;
    fm_model_input_shape(m, &c, &h, &w);
    CHECK(c == 2 && h == 6 && w == 5 && fm_model_class_count(m) == 3);
    CHECK(!strcmp(fm_model_class_name(m, 0), "0") && !strcmp(fm_model_class_name(m, 2), "2"));
    char long_name[FM_CLASS_NAME_MAX + 2];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    const struct {
        const char *name, *why;
    } bad[] = {
        {"", "three: class 1: a name is 1 to 64 bytes, not 0"},
        {long_name, "class 1: a name is 1 to 64 bytes, not 65"},
        {"caf\xe9", "class 1: byte 3 (0xe9) of the name is not UTF-8"},
        {"tab\there", "class 1: the name holds a control character (0x09)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = 0;
        CHECK(fm_model_set_class_names(m, (const char *[]){"a", bad[i].name, "c"}, &err) == -1);
        CHECK_MSG(strstr(err.msg, bad[i].why), "'%s' lacks '%s'", err.msg, bad[i].why);
        CHECK(!strcmp(fm_model_class_name(m, 0), "0")); /* unchanged */
    }
    long_name[FM_CLASS_NAME_MAX] = 0; /* the longest allowed */
    CHECK(fm_model_set_class_names(m, (const char *[]){"a", long_name, "\xc3\xa9t\xc3\xa9"},
                                   &err) == 0);
    CHECK(!strcmp(fm_model_class_name(m, 1), long_name) &&
          !strcmp(fm_model_class_name(m, 2), "\xc3\xa9t\xc3\xa9"));
    /* a model of other shapes cannot take fm_model_classify's images */
    uint8_t px[FM_IMAGE_PIXELS] = {0};
    CHECK(fm_model_classify(m, px, NULL, &err) == -1 && strstr(err.msg, "2x6x5 inputs"));
    /* the batch variant takes its shape and class count */
    uint8_t small[2 * 60];
    for (size_t i = 0; i < sizeof small; i++) small[i] = (uint8_t)(i * 37);
    float p[2 * 3];
    int cls[2] = {-1, -1};
    CHECK_MSG(fm_model_classify_batch(m, NULL, small, FM_PIXELS_U8, 2, p, cls, &err) == 0, "%s",
              err.msg);
    CHECK(cls[0] >= 0 && cls[0] < 3 && cls[1] >= 0 && cls[1] < 3);
    CHECK_NEAR(p[0] + p[1] + p[2], 1.0, 1e-5);
    fm_model_free(m);
}

/* Every way of classifying the images gives fm_model_predict's floats. */
static void check_classify(const fm_model *m, const fm_images *imgs, const float *want) {
    const size_t n = imgs->count, k = FM_NUM_CLASSES;
    float *p = malloc(n * k * sizeof *p), *x = malloc(n * FM_IMAGE_PIXELS * sizeof *x);
    int *cls = malloc(n * sizeof *cls), same = 1, right_class = 1;
    fm_err err;
    /* one at a time */
    for (size_t i = 0; i < n; i++) {
        int c = fm_model_classify(m, imgs->pixels + i * FM_IMAGE_PIXELS, p + i * k, &err);
        CHECK_MSG(c >= 0, "%s", err.msg);
        right_class &= c == fm__argmax(want + i * k, (int)k);
        /* probs NULL gives the same class */
        if (i < 5) CHECK(fm_model_classify(m, imgs->pixels + i * FM_IMAGE_PIXELS, NULL, &err) == c);
    }
    CHECK_MSG(same_floats(p, want, n * k), "fm_model_classify differs from fm_model_predict");
    CHECK(right_class);
    /* in batches: a context for 1, 5 (n not a multiple), more than n, or none */
    for (size_t i = 0; i < n * FM_IMAGE_PIXELS; i++) x[i] = imgs->pixels[i] / 255.0f;
    const int batches[] = {1, 5, 500, 0};
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        fm_ctx *ctx = batches[b] ? fm_ctx_new(m, batches[b], &err) : NULL;
        CHECK_MSG(ctx || !batches[b], "%s", err.msg);
        for (int type = FM_PIXELS_U8; type <= FM_PIXELS_F32; type++) {
            memset(p, 0, n * k * sizeof *p);
            memset(cls, 0xff, n * sizeof *cls);
            const void *px = type == FM_PIXELS_U8 ? (const void *)imgs->pixels : (const void *)x;
            CHECK_MSG(fm_model_classify_batch(m, ctx, px, (fm_pixel_type)type, n, p, cls, &err) ==
                          0,
                      "%s", err.msg);
            same = same_floats(p, want, n * k);
            for (size_t i = 0; i < n; i++) same &= cls[i] == fm__argmax(want + i * k, (int)k);
            CHECK_MSG(same, "batch %d, type %d: not fm_model_predict's", batches[b], type);
        }
        fm_ctx_free(ctx);
    }
    /* classes alone */
    memset(cls, 0xff, n * sizeof *cls);
    CHECK(fm_model_classify_batch(m, NULL, imgs->pixels, FM_PIXELS_U8, n, NULL, cls, &err) == 0);
    same = 1;
    for (size_t i = 0; i < n; i++) same &= cls[i] == fm__argmax(want + i * k, (int)k);
    CHECK(same);
    free(p);
    free(x);
    free(cls);
}

static void test_against_predict(void) {
    fm_model *m = default_model();
    fm_images imgs = {0};
    test_images(&imgs);
    const size_t n = imgs.count, k = FM_NUM_CLASSES;
    float *want = malloc(n * k * sizeof *want), *state = malloc(fm__model_state_len(m) * 4),
          *after = malloc(fm__model_state_len(m) * 4);
    fm_err err;
    fm__model_get_state(m, state);
    for (int tta = FM_TTA_NONE; tta <= FM_TTA_FLIP; tta++) {
        CHECK(fm_model_set_tta(m, (fm_tta)tta, &err) == 0);
        CHECK_MSG(fm_model_predict(m, &imgs, 0, n, want, &err) == 0, "%s", err.msg);
        check_classify(m, &imgs, want);
    }
    /* a context follows the model's test-time augmentation at each call */
    fm_ctx *ctx = fm_ctx_new(m, 4, &err);
    float a[4 * FM_NUM_CLASSES], b[4 * FM_NUM_CLASSES];
    CHECK(fm_model_classify_batch(m, ctx, imgs.pixels, FM_PIXELS_U8, 4, a, NULL, &err) == 0);
    CHECK(fm_model_set_tta(m, FM_TTA_NONE, &err) == 0);
    CHECK(fm_model_classify_batch(m, ctx, imgs.pixels, FM_PIXELS_U8, 4, b, NULL, &err) == 0);
    CHECK(!same_floats(a, b, 4 * k));
    CHECK(fm_model_predict(m, &imgs, 0, 4, want, &err) == 0 && same_floats(b, want, 4 * k));

    /* refusals */
    fm_model *other = default_model();
    err.msg[0] = 0;
    CHECK(fm_model_classify_batch(other, ctx, imgs.pixels, FM_PIXELS_U8, 1, a, NULL, &err) == -1);
    CHECK_MSG(strstr(err.msg, "the inference context was made for another model"), "%s", err.msg);
    fm_model_free(other);
    float x[2 * FM_IMAGE_PIXELS] = {0};
    x[FM_IMAGE_PIXELS + 5] = NAN;
    CHECK(fm_model_classify_batch(m, ctx, x, FM_PIXELS_F32, 2, a, NULL, &err) == -1);
    CHECK_MSG(strstr(err.msg, "image 1: value 5 is not finite"), "%s", err.msg);
    x[FM_IMAGE_PIXELS + 5] = INFINITY;
    CHECK(fm_model_classify_batch(m, ctx, x, FM_PIXELS_F32, 2, a, NULL, &err) == -1);
    CHECK(fm_model_classify_batch(m, ctx, x, (fm_pixel_type)2, 1, a, NULL, &err) == -1 &&
          strstr(err.msg, "2 is not a pixel type"));
    CHECK(fm_model_classify_batch(m, ctx, NULL, FM_PIXELS_U8, 1, a, NULL, &err) == -1);
    CHECK(fm_model_classify_batch(m, ctx, NULL, FM_PIXELS_U8, 0, NULL, NULL, &err) == 0);
    fm_ctx_free(ctx);
    fm_ctx_free(NULL);
    CHECK(!fm_ctx_new(m, 0, &err) && strstr(err.msg, "batch size 0 must be positive"));
    CHECK(!fm_ctx_new(m, -3, &err));
    CHECK(!fm_ctx_new(m, 1 << 30, &err) && strstr(err.msg, "too large"));

    fm__model_get_state(m, after);
    CHECK_MSG(same_floats(state, after, fm__model_state_len(m)), "inference changed the weights");
    free(want);
    free(state);
    free(after);
    fm_images_free(&imgs);
    fm_model_free(m);
}

/* ---- threads ---------------------------------------------------------- */

#define N_THREADS 4
#define ROUNDS 1

typedef struct job {
    const fm_model *m;
    const fm_images *imgs;
    int way; /* 0: fm_model_classify; 1, 2: batches with a context of 1 or 16; 3: none */
    pthread_barrier_t *start;
    float *probs;
    int *classes;
    int failed;
    char msg[512];
} job;

static void *classify_all(void *arg) {
    job *j = arg;
    const size_t n = j->imgs->count, k = FM_NUM_CLASSES;
    fm_err err = {{0}};
    fm_ctx *ctx = j->way == 1 || j->way == 2 ? fm_ctx_new(j->m, j->way == 1 ? 1 : 16, &err) : NULL;
    if (!ctx && (j->way == 1 || j->way == 2)) j->failed = 1;
    pthread_barrier_wait(j->start); /* all at once */
    for (int r = 0; r < ROUNDS && !j->failed; r++) {
        if (j->way == 0) {
            for (size_t i = 0; i < n && !j->failed; i++) {
                j->classes[i] = fm_model_classify(j->m, j->imgs->pixels + i * FM_IMAGE_PIXELS,
                                                  j->probs + i * k, &err);
                j->failed = j->classes[i] < 0;
            }
        } else {
            j->failed = fm_model_classify_batch(j->m, ctx, j->imgs->pixels, FM_PIXELS_U8, n,
                                                j->probs, j->classes, &err) < 0;
        }
    }
    if (j->failed) snprintf(j->msg, sizeof j->msg, "%s", err.msg);
    fm_ctx_free(ctx);
    return NULL;
}

static void test_threads(void) {
    fm_model *m = default_model();
    fm_err err;
    CHECK(fm_model_set_tta(m, FM_TTA_FLIP, &err) == 0); /* both passes */
    fm_images imgs = {0};
    test_images(&imgs);
    imgs.count = N_IMAGES / 2;
    const size_t n = imgs.count, k = FM_NUM_CLASSES;
    float *want = malloc(n * k * sizeof *want), *state = malloc(fm__model_state_len(m) * 4),
          *after = malloc(fm__model_state_len(m) * 4);
    int *want_cls = malloc(n * sizeof *want_cls);
    /* one thread's answers first */
    CHECK_MSG(fm_model_classify_batch(m, NULL, imgs.pixels, FM_PIXELS_U8, n, want, want_cls,
                                      &err) == 0,
              "%s", err.msg);
    fm__model_get_state(m, state);

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N_THREADS);
    pthread_t t[N_THREADS];
    job jobs[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i] = (job){.m = m, .imgs = &imgs, .way = i % 4, .start = &start};
        jobs[i].probs = malloc(n * k * sizeof(float));
        jobs[i].classes = malloc(n * sizeof(int));
        CHECK(pthread_create(&t[i], NULL, classify_all, &jobs[i]) == 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        CHECK(pthread_join(t[i], NULL) == 0);
        CHECK_MSG(!jobs[i].failed, "thread %d: %s", i, jobs[i].msg);
        CHECK_MSG(same_floats(jobs[i].probs, want, n * k) &&
                      !memcmp(jobs[i].classes, want_cls, n * sizeof(int)),
                  "thread %d (way %d) differs from one thread's results", i, jobs[i].way);
        free(jobs[i].probs);
        free(jobs[i].classes);
    }
    pthread_barrier_destroy(&start);
    fm__model_get_state(m, after);
    CHECK_MSG(same_floats(state, after, fm__model_state_len(m)), "threads changed the weights");
    free(want);
    free(want_cls);
    free(state);
    free(after);
    fm_images_free(&imgs);
    fm_model_free(m);
}

int main(void) {
    test_queries();
    test_against_predict();
    test_threads();
    return check_finish();
}
