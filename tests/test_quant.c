/* int8 models (model/quant.h): what fm_model_quantize builds (weights in 7
 * bits using their range per row, the first layer's pixels exact, the
 * BatchNorm before a conv folded into its input, the one before a pooling
 * into the outputs of the conv before it), that the int8 network stays close to
 * the float one it came from, that every way of running it (infer, the
 * contexts, a saved and reloaded file) gives the same floats, the refusals,
 * and the model file's checks on damaged int8 tensors. The kernels are
 * compared with the reference in test_kernels; the verb in system_quantize. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "model/infer.h"
#include "model/model.h"
#include "model/quant.h"
#include "model/safetensors.h"

/* conv (relu) -> batchnorm -> conv, as the notebook's network has it, then
 * a batchnorm before pooling (as fashion-cnn-bn has it), dense layers and
 * softmax: every kind of layer int8 meets. */
static const char *const DESC = "input 28 28 1\n"
                                "conv filters=8 kernel=3 padding=same activation=relu\n"
                                "batchnorm\n"
                                "conv filters=12 kernel=3 padding=same activation=relu\n"
                                "batchnorm\n"
                                "maxpool 2\n"
                                "dropout 0.25\n"
                                "flatten\n"
                                "dense units=24 activation=relu\n"
                                "dense units=10 activation=softmax\n";
enum { CONV, BN, CONV_1, BN_1, MAXPOOL, DROPOUT, FLATTEN, DENSE, DENSE_1 };

static fm_rng rng;
static char dir[64];

/* A float model with random weights and BatchNorm statistics off identity
 * (so that folding them matters). */
static fm_model *float_model(void) {
    fm_err err;
    fm_model *m = fm_model_parse(DESC, "test", &err);
    if (!m) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    fm_model_init(m, &rng);
    for (int b = 0; b < 2; b++) {
        fm__layer *bn = &m->layers[b ? BN_1 : BN];
        for (int j = 0; j < 4; j++)
            for (size_t i = 0; i < bn->t[j].len; i++)
                bn->t[j].data[i] = j == 3 ? 0.2f + fm_rng_uniform(&rng) : fm_rng_uniform(&rng) - 0.3f;
    }
    return m;
}

static fm_images random_images(size_t n) {
    fm_images im;
    fm_err err;
    if (fm_images_alloc(&im, n, &err) < 0) exit(1);
    for (size_t i = 0; i < n * FM_IMAGE_PIXELS; i++) {
        /* garments on black: a third of the pixels dark, the rest anything */
        uint32_t v = fm_rng_below(&rng, 384);
        im.pixels[i] = (uint8_t)(v < 128 ? 0 : v - 128);
    }
    for (size_t i = 0; i < n; i++) im.labels[i] = (uint8_t)fm_rng_below(&rng, 10);
    return im;
}

static float *probs_of(fm_model *m, const fm_images *im) {
    fm_err err;
    float *p = malloc(im->count * FM_NUM_CLASSES * sizeof *p);
    CHECK_MSG(fm__model_infer(m, im->pixels, NULL, im->count, 16, p, NULL, &err) == 0, "%s",
              err.msg);
    return p;
}

static void test_quantize(const fm_images *calib, const fm_images *test) {
    fm_err err;
    fm_model *m = float_model();
    CHECK(!strcmp(fm_model_precision(m), "fp32"));
    float *fp32 = probs_of(m, test);
    fm_quantize_params qp = fm_quantize_default_params();
    CHECK(qp.calibration_images == 2000);
    qp.calibration_images = 64;
    CHECK_MSG(fm_model_quantize(m, calib, &qp, &err) == 0, "%s", err.msg);
    CHECK(!strcmp(fm_model_precision(m), "int8"));

    /* What runs how: conv and dense in int8, the first BatchNorm folded into
     * the conv after it, the second into the conv before it, the rest in
     * float. */
    for (int i = 0; i < m->n_layers; i++) {
        const fm__layer *l = &m->layers[i];
        int quantized = i == CONV || i == CONV_1 || i == DENSE || i == DENSE_1;
        CHECK_MSG((l->q != NULL) == quantized, "layer %s", l->name);
        CHECK_MSG(l->folded == (i == BN || i == BN_1), "layer %s", l->name);
    }
    const fm__qlayer *q = m->quant->layers;
    CHECK(q[CONV_1].pre_mul && q[CONV_1].pre_add && !q[CONV].pre_mul && !q[DENSE].pre_mul);
    CHECK(q[CONV_1].post_mul && q[CONV_1].post_add && !q[CONV].post_mul && !q[DENSE].post_mul &&
          !q[DENSE_1].post_mul);
    /* the pixels / 255 of the first layer round back to the pixels */
    CHECK(q[CONV].zp == 0 && q[CONV].in_scale == 1.0f / 255.0f);
    /* after a BatchNorm (with some negative gammas) the input goes negative:
     * a zero point inside the range, for the conv and, past the pooling, the
     * dense layer alike */
    CHECK_MSG(q[CONV_1].zp > 0 && q[CONV_1].zp < 255, "zp %d", q[CONV_1].zp);
    CHECK_MSG(q[DENSE].zp > 0 && q[DENSE].zp < 255, "zp %d", q[DENSE].zp);
    /* after ReLU alone it does not */
    CHECK(q[DENSE_1].zp == 0);
    /* each row's scale makes its largest weight +-63 */
    for (int i = 0; i < m->n_layers; i++) {
        if (!q[i].w) continue;
        int full = 1;
        for (int o = 0; o < q[i].rows; o++) {
            int amax = 0, sum = 0;
            for (size_t j = 0; j < q[i].row_len; j++) {
                int w = q[i].w[(size_t)o * q[i].row_len + j];
                amax = abs(w) > amax ? abs(w) : amax;
                sum += w;
            }
            full &= amax == FM__QW_MAX && q[i].wsum[o] == sum;
        }
        CHECK_MSG(full, "layer %s", m->layers[i].name);
    }

    /* Close to the float network: rounding, not a different function. */
    float *int8 = probs_of(m, test);
    double worst = 0.0;
    int agree = 0;
    for (size_t i = 0; i < test->count; i++) {
        const float *a = fp32 + i * 10, *b = int8 + i * 10;
        for (int k = 0; k < 10; k++) worst = fabs(a[k] - b[k]) > worst ? fabs(a[k] - b[k]) : worst;
        agree += fm__argmax(a, 10) == fm__argmax(b, 10);
    }
    CHECK_MSG(worst < 0.02, "largest probability difference %g", worst);
    CHECK_MSG(agree >= (int)test->count * 9 / 10, "%d of %zu classes agree", agree, test->count);

    /* A context runs the same int8 path, to the bit. */
    float *ctx = malloc(test->count * 10 * sizeof *ctx);
    fm_ctx *c = fm_ctx_new(m, 7, &err);
    CHECK(c && fm_model_classify_batch(m, c, test->pixels, FM_PIXELS_U8, test->count, ctx, NULL,
                                       &err) == 0);
    CHECK(!memcmp(ctx, int8, test->count * 10 * sizeof *ctx));
    fm_ctx_free(c);

    /* Saved and loaded: the same model, to the bit, in a quarter of the bytes. */
    char fpath[96], qpath[96];
    snprintf(fpath, sizeof fpath, "%s/fp32.safetensors", dir);
    snprintf(qpath, sizeof qpath, "%s/int8.safetensors", dir);
    fm_model *f = float_model();
    CHECK(fm_model_save(f, fpath, &err) == 0);
    fm_model_free(f);
    CHECK_MSG(fm_model_save(m, qpath, &err) == 0, "%s", err.msg);
    fm_model *back = fm_model_load(qpath, &err);
    CHECK_MSG(back != NULL, "%s", err.msg);
    if (back) {
        CHECK(!strcmp(fm_model_precision(back), "int8"));
        CHECK(back->layers[BN].folded && back->layers[BN_1].folded && back->layers[CONV_1].q);
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        fm_model_summary(back, mem);
        fclose(mem);
        CHECK_MSG(strstr(text, "\nint8: conv and dense weights in 8 bits, inputs in uint8 "
                               "(minmax over 64 training images)\n"),
                  "%s", text);
        free(text);
        float *again = probs_of(back, test);
        CHECK(!memcmp(again, int8, test->count * 10 * sizeof *again));
        free(again);
        fm_model_free(back);
    }
    fm__st_file sf;
    if (fm__st_read(&sf, qpath, &err) == 0) {
        const char *qm = fm__st_meta(&sf, FM__QUANT_META), *cm = fm__st_meta(&sf, FM__QUANT_CALIBRATION_META);
        CHECK(qm && !strcmp(qm, "int8"));
        CHECK_MSG(cm && strstr(cm, "64 training images"), "%s", cm ? cm : "(none)");
        const fm__st_tensor *t = fm__st_find(&sf, "conv2d_1.weight_int8");
        CHECK(t && t->dtype == FM__ST_I8 && t->ndim == 4 && t->shape[0] == 12 && t->shape[1] == 8);
        CHECK(!fm__st_find(&sf, "conv2d_1.weight"));
        CHECK(fm__st_find(&sf, "batch_normalization.gamma")); /* kept: the loader folds it */
        fm__st_file ff;
        if (fm__st_read(&ff, fpath, &err) == 0) {
            CHECK_MSG(sf.size * 3 < ff.size, "%zu vs %zu bytes", sf.size, ff.size);
            fm__st_close(&ff);
        }
        fm__st_close(&sf);
    }

    /* Refusals: quantizing twice, training, benching it. The ONNX export
     * writes QDQ (system_onnx_ort runs it in onnxruntime). */
    CHECK(fm_model_quantize(m, calib, &qp, &err) < 0 && strstr(err.msg, "int8 already"));
    fm_train_params tp = fm_train_default_params();
    tp.epochs = 1;
    tp.out_dir = dir;
    fm_train_result tr;
    CHECK(fm_train(m, calib, calib, &tp, &tr, &err) < 0 && strstr(err.msg, "cannot be trained"));
    char opath[96];
    snprintf(opath, sizeof opath, "%s/x.onnx", dir);
    CHECK_MSG(fm_model_export_onnx(m, opath, &err) == 0, "%s", err.msg);
    CHECK(access(opath, F_OK) == 0);
    fm_bench_params bp = fm_bench_default_params();
    fm_bench_result br;
    CHECK(fm_bench_run(m, &bp, &br, &err) < 0 && strstr(err.msg, "int8 model"));
    free(fp32);
    free(int8);
    free(ctx);
    fm_model_free(m);
}

static void test_bad_params(const fm_images *calib) {
    fm_err err;
    fm_model *m = float_model();
    fm_quantize_params qp = fm_quantize_default_params();
    qp.calibration_images = 0;
    CHECK(fm_model_quantize(m, calib, &qp, &err) < 0 && strstr(err.msg, "at least 1 image"));
    qp.calibration_images = 10;
    fm_images empty = {0};
    CHECK(fm_model_quantize(m, &empty, &qp, &err) < 0 && strstr(err.msg, "empty"));
    CHECK(!strcmp(fm_model_precision(m), "fp32")); /* unchanged */
    fm_model_free(m);
    fm_model *other = fm_model_parse("input 28 28 3\nflatten\ndense units=10 activation=softmax\n",
                                     "rgb", &err);
    CHECK(other && fm_model_quantize(other, calib, &qp, &err) < 0 && strstr(err.msg, "3x28x28 inputs"));
    fm_model_free(other);
}

/* fm_bench_run with int8 times the quantized network too. */
static void test_bench(void) {
    fm_err err;
    fm_model *m = float_model();
    fm_bench_params bp = fm_bench_default_params();
    bp.steps = 1;
    bp.warmup = 0;
    bp.batch = 4;
    bp.infer_batch = 8;
    bp.int8 = 1;
    fm_bench_result br;
    CHECK_MSG(fm_bench_run(m, &bp, &br, &err) == 0, "%s", err.msg);
    CHECK(br.infer_int8_img_per_s > 0.0 && br.infer_int8_batch_s > 0.0);
    CHECK(!strcmp(fm_model_precision(m), "int8"));
    fm_bench_result_free(&br);
    fm_model_free(m);
}

/* ---- damaged int8 files ---------------------------------------------------- */

/* Rewrites the int8 file with one change: tensor `name` dropped (drop),
 * given dtype `dtype` (>= 0), or its first byte(s) set from `first`
 * (n_first bytes); metadata key `mkey` set to `mval`. */
typedef struct change {
    const char *name;
    int drop, dtype;
    const void *first;
    size_t n_first;
    const char *mkey, *mval;
    const char *add; /* a further tensor of this name (a float copy of the first) */
} change;

static void check_damaged(const char *good, change c, const char *want) {
    fm_err err;
    fm__st_file f;
    if (fm__st_read(&f, good, &err) < 0) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    fm__st_entry *e = calloc(f.n_tensors + 1, sizeof *e);
    unsigned char **bufs = calloc(f.n_tensors + 1, sizeof *bufs);
    size_t n = 0;
    for (size_t i = 0; i < f.n_tensors; i++) {
        const fm__st_tensor *t = &f.tensors[i];
        int it = !strcmp(t->name, c.name ? c.name : "");
        if (it && c.drop) continue;
        bufs[n] = malloc(t->end - t->begin + 1);
        fm__st_copy(t, bufs[n]);
        if (it && c.first) memcpy(bufs[n], c.first, c.n_first);
        e[n] = (fm__st_entry){.name = t->name, .dtype = it && c.dtype >= 0 ? (fm__st_dtype)c.dtype
                                                                            : t->dtype,
                              .ndim = t->ndim, .data = bufs[n]};
        memcpy(e[n].shape, t->shape, sizeof t->shape);
        n++;
    }
    if (c.add) {
        e[n] = (fm__st_entry){.name = c.add, .dtype = FM__ST_F32, .ndim = 1, .shape = {1},
                              .data = "\0\0\0\0"};
        n++;
    }
    fm__st_kv meta[16];
    size_t nm = 0;
    for (size_t i = 0; i < f.n_meta && nm < 15; i++) {
        int it = c.mkey && !strcmp(f.meta_keys[i], c.mkey);
        meta[nm++] = (fm__st_kv){f.meta_keys[i], it ? c.mval : f.meta_values[i]};
    }
    char bad[96];
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    CHECK_MSG(fm__st_write(bad, e, n, meta, nm, &err) == 0, "%s", err.msg);
    fm_model *m = fm_model_load(bad, &err);
    CHECK_MSG(!m && strstr(err.msg, want) && strstr(err.msg, bad), "want '%s', got '%s'", want,
              m ? "(loaded)" : err.msg);
    fm_model_free(m);
    for (size_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(e);
    fm__st_close(&f);
}

static void test_damaged(void) {
    char good[96];
    snprintf(good, sizeof good, "%s/int8.safetensors", dir);
    const int8_t big = 64;
    const float zero = 0.0f, nan = NAN;
    check_damaged(good, (change){.name = "conv2d_1.weight_int8", .dtype = -1, .first = &big,
                                 .n_first = 1},
                  "tensor 'conv2d_1.weight_int8' holds an int8 weight beyond +-63 at index 0");
    check_damaged(good, (change){.name = "dense.weight_scale", .dtype = -1, .first = &zero,
                                 .n_first = 4},
                  "tensor 'dense.weight_scale' holds a scale that is not a positive number");
    check_damaged(good, (change){.name = "conv2d.input_scale", .dtype = -1, .first = &nan,
                                 .n_first = 4},
                  "tensor 'conv2d.input_scale' holds a scale that is not a positive number");
    check_damaged(good, (change){.name = "dense_1.input_zero_point", .drop = 1, .dtype = -1},
                  "missing tensor 'dense_1.input_zero_point'");
    check_damaged(good, (change){.name = "conv2d.weight_int8", .dtype = FM__ST_U8},
                  "tensor 'conv2d.weight_int8' has dtype U8, expected I8");
    check_damaged(good, (change){.dtype = -1, .mkey = FM__QUANT_META, .mval = "int4"},
                  "metadata 'fmnist.quantization' = 'int4' is not a precision");
    check_damaged(good, (change){.dtype = -1, .add = "conv2d.weight"},
                  "unexpected tensor 'conv2d.weight'");
    /* without the metadata it is a float file missing its float weights */
    check_damaged(good, (change){.dtype = -1, .mkey = FM__QUANT_META, .mval = "fp32"},
                  "is not a precision");
}

int main(void) {
    fm_rng_seed(&rng, 8);
    snprintf(dir, sizeof dir, "/tmp/fmnist-test-quant-%d", (int)getpid());
    char cmd[128];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd)) return 1;
    fm_images calib = random_images(64), test = random_images(40);
    test_quantize(&calib, &test);
    test_bad_params(&calib);
    test_bench();
    test_damaged();
    fm_images_free(&calib);
    fm_images_free(&test);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) return 1;
    return check_finish();
}
