/* ONNX export at unit level (also run under the sanitizers): the protobuf
 * wire encoding on known byte vectors, then fm_model_export_onnx on a small
 * model: deterministic bytes, the expected fields and tensors, atomic
 * replacement, a clean error for an unwritable path, and no way for a
 * description that is not UTF-8 to get there; with flip test-time
 * augmentation, the mirror, a second branch reading the first's
 * initializers and the mean. The full check
 * (onnx's checker, OpenCV on the real test images) is tests/system_onnx.c. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "data/testutil.h"
#include "export/pb.h"
#include "model/model.h"

static int bytes_are(const fm__pb *b, const char *want, size_t n) {
    return !b->oom && b->len == n && !memcmp(b->data, want, n);
}

static void test_wire(void) {
    fm__pb b = {0};
    fm__pb_int(&b, 1, 150); /* the protobuf documentation's example */
    CHECK(bytes_are(&b, "\x08\x96\x01", 3));
    fm__pb_free(&b);

    fm__pb_int(&b, 3, -1); /* negative int64: ten-byte varint */
    CHECK(bytes_are(&b, "\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11));
    fm__pb_free(&b);

    fm__pb_int(&b, 20, 0); /* field numbers >= 16 take a two-byte tag */
    CHECK(bytes_are(&b, "\xa0\x01\x00", 3));
    fm__pb_free(&b);

    fm__pb_float(&b, 2, 1.0f);
    CHECK(bytes_are(&b, "\x15\x00\x00\x80\x3f", 5));
    fm__pb_free(&b);

    fm__pb_str(&b, 2, "testing");
    CHECK(bytes_are(&b, "\x12\x07testing", 9));
    fm__pb_free(&b);

    char longs[201];
    memset(longs, 'x', 200);
    longs[200] = 0;
    fm__pb_str(&b, 1, longs); /* length 200 = varint c8 01 */
    CHECK(b.len == 203 && !memcmp(b.data, "\x0a\xc8\x01", 3) && b.data[202] == 'x');
    fm__pb_free(&b);

    fm__pb sub = {0};
    fm__pb_int(&sub, 1, 150);
    fm__pb_msg(&b, 3, &sub);
    CHECK(bytes_are(&b, "\x1a\x03\x08\x96\x01", 5));
    fm__pb_free(&b);
    fm__pb_msg(&b, 7, &sub); /* empty message */
    fm__pb_free(&sub);
    fm__pb_msg(&b, 7, &sub);
    CHECK(bytes_are(&b, "\x3a\x03\x08\x96\x01\x3a\x00", 7));
    fm__pb_free(&b);

    const float f[2] = {1.0f, -2.0f};
    fm__pb_floats_le(&b, 9, f, 2);
    CHECK(bytes_are(&b, "\x4a\x08\x00\x00\x80\x3f\x00\x00\x00\xc0", 10));
    fm__pb_free(&b);
}

static const char desc[] = "input 8 8 1\n"
                           "# caf\xc3\xa9: UTF-8 in a comment\n"
                           "conv filters=2 kernel=3 padding=same activation=relu\n"
                           "batchnorm\n"
                           "maxpool 2\n"
                           "dropout 0.25\n"
                           "flatten\n"
                           "dense units=4 activation=relu\n"
                           "batchnorm\n"
                           "dense units=3 activation=softmax\n";

static int contains(const unsigned char *hay, size_t n, const void *needle, size_t m) {
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if (!memcmp(hay + i, needle, m)) return 1;
    return 0;
}
#define HAS(p, n, s) contains(p, n, s, strlen(s))

/* Protobuf strings must be UTF-8: a description that is not (a Latin-1
 * comment, a surrogate, an overlong form, a cut sequence) never becomes a
 * model, so it cannot reach an export. */
static void test_not_utf8(void) {
    static const char *const bad[] = {"caf\xe9", "\xed\xa0\x80", "\xc0\xaf", "\xe2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "input 8 8 1\n# %s: not UTF-8\nflatten\n"
                                    "dense units=3 activation=softmax\n", bad[i]);
        fm_err err;
        fm_model *m = fm_model_parse(text, "latin1.cfg", &err);
        CHECK_MSG(!m && strstr(err.msg, "latin1.cfg:2: column ") && strstr(err.msg, "not UTF-8"),
                  "%s", m ? "accepted" : err.msg);
        fm_model_free(m);
    }
}

static void test_export(const char *dir) {
    fm_err err;
    fm_model *m = fm_model_parse(desc, "test", &err);
    CHECK_MSG(m, "%s", err.msg);
    if (!m) return;
    fm_rng rng;
    fm_rng_seed(&rng, 7);
    fm_model_init(m, &rng);
    for (size_t i = 0; i < m->n_stats; i++) m->stats[i] = 0.5f + fm_rng_uniform(&rng);

    char a[4096], b[4096], bad[4096];
    snprintf(a, sizeof a, "%s/a.onnx", dir);
    snprintf(b, sizeof b, "%s/b.onnx", dir);
    snprintf(bad, sizeof bad, "%s/no-such-dir/c.onnx", dir);
    FILE *f = fopen(a, "wb"); /* an old file the export must replace whole */
    CHECK(f && fputs("old contents", f) >= 0 && fclose(f) == 0);

    CHECK_MSG(fm_model_export_onnx(m, a, &err) == 0, "%s", err.msg);
    CHECK_MSG(fm_model_export_onnx(m, b, &err) == 0, "%s", err.msg);
    size_t na = 0, nb = 0;
    unsigned char *pa = tu_read(a, &na), *pb = tu_read(b, &nb);
    CHECK(pa && pb);
    if (pa && pb) {
        CHECK(na == nb && !memcmp(pa, pb, na)); /* deterministic */
        CHECK(na > 2 && pa[0] == 0x08 && pa[1] == 7); /* starts with ir_version 7 */
        CHECK(!HAS(pa, na, "old contents"));
        const char *ops[] = {"Conv", "Relu", "BatchNormalization", "MaxPool", "Flatten", "Gemm",
                             "Softmax", "probabilities", "transB", "moving_variance"};
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
            CHECK_MSG(HAS(pa, na, ops[i]), "%s missing", ops[i]);
        CHECK(!HAS(pa, na, "Dropout"));
        CHECK(!HAS(pa, na, "MatMul") && !HAS(pa, na, "mirrored"));
        CHECK(HAS(pa, na, "test_time_augmentation") && HAS(pa, na, "none"));
        /* a 3-class model's classes are named as its model file names them */
        CHECK(HAS(pa, na, "[\"0\", \"1\", \"2\"]"));
        CHECK(HAS(pa, na, "# caf\xc3\xa9: UTF-8 in a comment")); /* kept as it is */
        char version[32] = {0x1a, (char)strlen(FM_VERSION)}; /* producer_version, field 3 */
        memcpy(version + 2, FM_VERSION, strlen(FM_VERSION));
        CHECK(contains(pa, na, version, 2 + strlen(FM_VERSION)));
        /* the last dense's kernel, (3, 4) little-endian, verbatim as raw_data */
        const fm__layer *l = &m->layers[m->n_layers - 1];
        unsigned char raw[12 * 4];
        for (int i = 0; i < 12; i++) {
            uint32_t u;
            memcpy(&u, l->t[0].data + i, 4);
            for (int k = 0; k < 4; k++) raw[4 * i + k] = (unsigned char)(u >> (8 * k));
        }
        CHECK(l->t[0].len == 12 && contains(pa, na, raw, sizeof raw));
    }
    free(pa);
    free(pb);
    /* names set by the caller, escaped as JSON */
    CHECK(fm_model_set_class_names(m, (const char *[]){"cat", "dog", "b\"ird"}, &err) == 0);
    CHECK_MSG(fm_model_export_onnx(m, b, &err) == 0, "%s", err.msg);
    pb = tu_read(b, &nb);
    CHECK(pb && HAS(pb, nb, "[\"cat\", \"dog\", \"b\\\"ird\"]"));
    free(pb);

    err.msg[0] = 0;
    CHECK(fm_model_export_onnx(m, bad, &err) == -1);
    CHECK_MSG(strstr(err.msg, "no-such-dir") != NULL, "message: %s", err.msg);
    CHECK(tu_no_temp_files(dir));
    fm_model_free(m);
}

static int count_of(const unsigned char *hay, size_t n, const void *needle, size_t m) {
    int c = 0;
    for (size_t i = 0; m <= n && i <= n - m; i++) c += !memcmp(hay + i, needle, m);
    return c;
}

/* Flip TTA: the network twice on one set of initializers (each tensor's
 * bytes once in the file), the input mirrored by the exchange matrix, the
 * two softmax outputs averaged. */
static void test_export_tta(const char *dir) {
    fm_err err;
    fm_model *m = fm_model_parse(desc, "test", &err);
    CHECK_MSG(m, "%s", err.msg);
    if (!m) return;
    fm_rng rng;
    fm_rng_seed(&rng, 8);
    /* every value drawn, so no two tensors share their bytes */
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = fm_rng_uniform(&rng) - 0.5f;
    for (size_t i = 0; i < m->n_stats; i++) m->stats[i] = 0.5f + fm_rng_uniform(&rng);
    char plain[4096], flip[4096];
    snprintf(plain, sizeof plain, "%s/plain.onnx", dir);
    snprintf(flip, sizeof flip, "%s/flip.onnx", dir);
    CHECK_MSG(fm_model_export_onnx(m, plain, &err) == 0, "%s", err.msg);
    CHECK(fm_model_set_tta(m, FM_TTA_FLIP, &err) == 0);
    CHECK_MSG(fm_model_export_onnx(m, flip, &err) == 0, "%s", err.msg);
    size_t np = 0, nf = 0;
    unsigned char *pp = tu_read(plain, &np), *pf = tu_read(flip, &nf);
    CHECK(pp && pf);
    if (pp && pf) {
        const char *want[] = {"MatMul", "tta/mirror", "mirrored/conv2d", "mirrored/dense/relu",
                              "tta/softmax", "mirrored/softmax", "Add", "tta/sum", "Mul",
                              "tta/half", "probabilities", "mirror"};
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            CHECK_MSG(HAS(pf, nf, want[i]), "%s missing", want[i]);
        CHECK(HAS(pf, nf, "flip") && HAS(pf, nf, "averaged over the image and its left-right mirror"));
        /* shared: every tensor's bytes (little-endian raw_data) once in the file */
        for (int i = 0; i < m->n_layers; i++) {
            const fm__layer *l = &m->layers[i];
            for (int j = 0; j < l->type->n_tensors; j++) {
                size_t len = l->t[j].len;
                unsigned char *raw = malloc(4 * len + 1);
                for (size_t e = 0; raw && e < len; e++) {
                    uint32_t u;
                    memcpy(&u, l->t[j].data + e, 4);
                    for (int b = 0; b < 4; b++) raw[4 * e + b] = (unsigned char)(u >> (8 * b));
                }
                CHECK_MSG(raw && count_of(pf, nf, raw, 4 * len) == 1, "%s tensor %d: %d copies",
                          l->name, j, raw ? count_of(pf, nf, raw, 4 * len) : -1);
                free(raw);
            }
        }
        /* the exchange matrix (8x8, little-endian): row 0 is seven zeros, then 1.0f */
        unsigned char row0[32] = {0};
        row0[30] = 0x80, row0[31] = 0x3f;
        CHECK(count_of(pf, nf, row0, sizeof row0) == 1);
    }
    free(pp);
    free(pf);
    fm_model_free(m);
}

int main(void) {
    test_wire();
    test_not_utf8();
    const char *tmp = getenv("FMNIST_TEST_TMP");
    if (!tmp) tmp = ".";
    char dir[3072]; /* leaves room for the file names added to it */
    snprintf(dir, sizeof dir, "%s/test_onnx", tmp);
    mkdir(tmp, 0777);
    CHECK_MSG(mkdir(dir, 0777) == 0 || errno == EEXIST, "%s: %s", dir, strerror(errno));
    test_export(dir);
    test_export_tta(dir);
    return check_finish();
}
