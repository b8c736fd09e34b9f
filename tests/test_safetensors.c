/* safetensors: round trip of every dtype with metadata; each rule of the
 * format broken on purpose gives its own message naming the source; random
 * corruptions never crash; model files: every validation of fm_model_load;
 * and Python reads what fm_model_save writes (json the header, numpy the
 * values; without numpy only the header, with a note saying so). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "check.h"
#include "model/model.h"
#include "model/safetensors.h"

static char tmpdir[900];

static const char *tmp_path(const char *name) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static unsigned char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *size = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static int has_text(const unsigned char *hay, size_t n, const char *s) {
    size_t m = strlen(s);
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if (!memcmp(hay + i, s, m)) return 1;
    return 0;
}

static void spit(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fwrite(data, 1, size, f);
    fclose(f);
}

static void test_round_trip(void) {
    float a[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
    uint8_t u[4] = {0, 7, 255, 128};
    int64_t i64[2] = {-1, 1234567890123LL};
    double f64[1] = {3.141592653589793};
    int32_t i32[3] = {-5, 0, 5};
    const fm__st_entry t[] = {
        {"layer.weight", FM__ST_F32, 2, {2, 3}, a},
        {"bytes", FM__ST_U8, 1, {4}, u},
        {"steps \"quoted\"\n", FM__ST_I64, 1, {2}, i64},
        {"scalar", FM__ST_F64, 0, {0}, f64},
        {"empty", FM__ST_F32, 2, {0, 5}, NULL},
        {"ints", FM__ST_I32, 1, {3}, i32},
    };
    const fm__st_kv meta[] = {{"note", "line one\nline \"two\"\t\\ caf\xc3\xa9"}, {"empty", ""}};
    const char *path = tmp_path("round.safetensors");
    fm_err err;
    CHECK_MSG(fm__st_write(path, t, 6, meta, 2, &err) == 0, "%s", err.msg);
    struct stat st;
    CHECK(stat(tmp_path("round.safetensors.tmp"), &st) != 0); /* renamed away */
    fm__st_file f;
    if (fm__st_read(&f, path, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    CHECK(f.n_tensors == 6 && f.n_meta == 2);
    /* header padded so the data is 8-byte aligned */
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f.bytes[i];
    CHECK((8 + hlen) % 8 == 0);
    for (int i = 0; i < 6; i++) {
        const fm__st_tensor *x = fm__st_find(&f, t[i].name);
        CHECK_MSG(x != NULL, "missing %s", t[i].name);
        if (!x) continue;
        CHECK(x->dtype == t[i].dtype && x->ndim == t[i].ndim);
        for (int d = 0; d < t[i].ndim; d++) CHECK(x->shape[d] == t[i].shape[d]);
        size_t bytes = (size_t)(x->end - x->begin);
        CHECK(bytes == x->count * fm__st_dtype_size(x->dtype));
        if (bytes) {
            unsigned char got[64];
            fm__st_copy(x, got);
            CHECK(!memcmp(got, t[i].data, bytes));
        }
    }
    CHECK(fm__st_find(&f, "scalar")->count == 1 && fm__st_find(&f, "empty")->count == 0);
    CHECK(fm__st_find(&f, "nope") == NULL);
    CHECK(fm__st_meta(&f, "note") && !strcmp(fm__st_meta(&f, "note"), meta[0].value));
    CHECK(fm__st_meta(&f, "empty") && !strcmp(fm__st_meta(&f, "empty"), ""));
    CHECK(fm__st_meta(&f, "absent") == NULL);
    fm__st_close(&f);
    CHECK(fm__st_write(path, (fm__st_entry[]){t[0], t[0]}, 2, NULL, 0, &err) == -1 &&
          strstr(err.msg, "duplicate"));
    CHECK(fm__st_read(&f, tmp_path("no-such-file"), &err) == -1 && strstr(err.msg, "no-such-file"));
    CHECK(fm__st_write("/nonexistent-dir/x.safetensors", t, 1, NULL, 0, &err) == -1 &&
          strstr(err.msg, "/nonexistent-dir/x.safetensors"));
}

/* An in-memory file: 8-byte length, the header text, then data bytes. */
static size_t make(unsigned char *buf, const char *header, size_t data) {
    size_t n = strlen(header);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    memset(buf + 8 + n, 0x3f, data);
    return 8 + n + data;
}

static void expect_ok(const char *header, size_t data) {
    unsigned char buf[4096];
    size_t size = make(buf, header, data);
    fm__st_file f;
    fm_err err;
    CHECK_MSG(fm__st_parse(&f, buf, size, "mem", &err) == 0, "%s: %s", header, err.msg);
    fm__st_close(&f);
}

static void expect_bad(const char *header, size_t data, const char *what) {
    unsigned char buf[4096];
    size_t size = make(buf, header, data);
    fm__st_file f;
    fm_err err = {{0}};
    CHECK_MSG(fm__st_parse(&f, buf, size, "mem", &err) == -1, "accepted %s", header);
    CHECK_MSG(!strncmp(err.msg, "mem: ", 5) && strstr(err.msg, what), "'%s' for %s lacks '%s'",
              err.msg, header, what);
    CHECK(f.n_tensors == 0 && f.bytes == NULL);
}

#define T4 "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"

static void test_corruptions(void) {
    expect_ok("{}", 0);
    expect_ok(" {\"a\" : " T4 " , \"__metadata__\":{}}  ", 4);
    expect_ok("{\"\\u00e9\\ud83d\\ude00\\\"/\\/\":" T4 "}", 4);
    expect_ok("{\"a\":{\"dtype\":\"U8\",\"shape\":[2,0],\"data_offsets\":[0,0]}}", 0);

    unsigned char buf[64] = {0};
    fm__st_file f;
    fm_err err;
    CHECK(fm__st_parse(&f, buf, 5, "mem", &err) == -1 && strstr(err.msg, "truncated"));
    CHECK(fm__st_parse(&f, buf, 0, "mem", &err) == -1 && strstr(err.msg, "truncated"));
    buf[0] = 100;
    CHECK(fm__st_parse(&f, buf, 20, "mem", &err) == -1 &&
          strstr(err.msg, "header length 100 is larger than the file (20 bytes)"));
    memset(buf, 0xff, 8);
    CHECK(fm__st_parse(&f, buf, 20, "mem", &err) == -1 && strstr(err.msg, "larger than the file"));

    /* JSON errors report the file byte offset: 8 + position in the header */
    expect_bad("{\"a\":}", 0, "bad JSON header: byte 13:");
    expect_bad("{\"a\" " T4 "}", 0, "byte 13: expected ':'");
    expect_bad("", 0, "unexpected end");
    expect_bad("{\"a\":" T4, 4, "unterminated object");
    expect_bad("{\"a\":" T4 "} x", 4, "unexpected data after");
    expect_bad("{\"a\":" T4 ",\"a\":" T4 "}", 8, "duplicate key");
    expect_bad("{\"a\\q\":" T4 "}", 4, "invalid escape");
    expect_bad("{\"a\\u12G4\":" T4 "}", 4, "bad hex digit");
    expect_bad("{\"a\\ud800\":" T4 "}", 4, "unpaired surrogate");
    expect_bad("{\"a\\udc00\":" T4 "}", 4, "unpaired surrogate");
    expect_bad("{\"a\\u0000\":" T4 "}", 4, "\\u0000");
    expect_bad("{\"a\tb\":" T4 "}", 4, "control character");
    expect_bad("{\"ab:" T4 "}", 4, "expected ':'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4,
               "expected ','");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-],\"data_offsets\":[0,4]}}", 4,
               "invalid number");
    expect_bad("{\"a\":tru}", 0, "invalid literal");
    char deep[300];
    memset(deep, '[', 200);
    deep[200] = 0;
    expect_bad(deep, 0, "nesting too deep");

    expect_bad("[]", 0, "not a JSON object");
    expect_bad("{\"a\":[]}", 0, "not an object");
    expect_bad("{\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 2,
               "unknown dtype 'F16'");
    expect_bad("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "dtype is not a string");
    expect_bad("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing 'dtype'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "missing 'shape'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing 'data_offsets'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
               "unknown field 'x'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,4]}}", 4,
               "shape is not an array");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4,
               "shape[0] is not a non-negative integer");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
               "shape[0] is not a non-negative integer");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
               "9 dimensions");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}",
               4, "too large");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
               "not [begin, end]");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}",
               4, "data_offsets[1] is not a non-negative integer");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 4,
               "out of range");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
               "out of range");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8,
               "span 4 bytes but F32 shape needs 8");
    expect_bad("{\"a\":" T4 ",\"b\":" T4 "}", 4, "overlaps");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "gap");
    expect_bad("{\"a\":" T4 "}", 6, "2 bytes of data after the last tensor");
    expect_bad("{}", 3, "no tensors");
    expect_bad("{\"__metadata__\":[]}", 0, "__metadata__ is not an object");
    expect_bad("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ 'k' is not a string");

    /* A 1 MiB header of 100,000 names ending in a duplicate: the duplicate
     * check was quadratic (21 s at -O2; a libFuzzer timeout), now linear. */
    enum { KEYS = 100000 };
    size_t cap = 16 * KEYS, at = 8;
    unsigned char *big = malloc(cap);
    at += (size_t)sprintf((char *)big + at, "{");
    for (int i = 0; i < KEYS; i++) at += (size_t)sprintf((char *)big + at, "\"%x\":0,", i);
    at += (size_t)sprintf((char *)big + at, "\"%x\":0}", KEYS - 1);
    for (int i = 0; i < 8; i++) big[i] = (unsigned char)((uint64_t)(at - 8) >> (8 * i));
    clock_t t0 = clock();
    CHECK(fm__st_parse(&f, big, at, "mem", &err) == -1 && strstr(err.msg, "duplicate key"));
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECK_MSG(secs < 5.0, "%.1f s to find a duplicate among %d names", secs, KEYS);
    free(big);
}

/* Random damage to a real model file: never a crash (the sanitizer build
 * watches), and every failure is a message naming the source. */
static void test_fuzz(void) {
    fm_err err;
    fm_model *m = fm_model_parse("input 4 4 1\nconv filters=2 kernel=3\nbatchnorm\nflatten\n"
                                 "dense units=3 activation=softmax\n",
                                 "fuzz", &err);
    CHECK(m != NULL);
    if (!m) return;
    const char *path = tmp_path("fuzz.safetensors");
    CHECK(fm_model_save(m, path, &err) == 0);
    fm_model_free(m);
    size_t size = 0;
    unsigned char *orig = slurp(path, &size), *buf = malloc(size + 1);
    CHECK(orig != NULL && size > 100);
    if (!orig) return;
    fm_rng rng;
    fm_rng_seed(&rng, 5);
    int failed = 0, bad_msg = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(buf, orig, size);
        size_t n = size;
        int kind = (int)fm_rng_below(&rng, 3);
        if (kind == 0) n = fm_rng_below(&rng, (uint32_t)size); /* truncate */
        int flips = 1 + (int)fm_rng_below(&rng, 4);
        for (int k = 0; k < flips && kind != 0; k++) {
            /* mostly the header, where the structure is */
            size_t at = kind == 1 ? fm_rng_below(&rng, 8 + 400) : fm_rng_below(&rng, (uint32_t)n);
            if (at < n) buf[at] = (unsigned char)fm_rng_next(&rng);
        }
        fm__st_file f;
        if (fm__st_parse(&f, buf, n, "fuzz", &err)) {
            failed++;
            bad_msg += strncmp(err.msg, "fuzz: ", 6) != 0;
            continue;
        }
        /* what parses must also survive the model loader */
        fm__st_close(&f);
        spit(path, buf, n);
        fm_model *lm = fm_model_load(path, &err);
        if (lm) fm_model_free(lm);
        else bad_msg += strstr(err.msg, "fuzz.safetensors") == NULL;
    }
    CHECK(failed > 1000);
    CHECK_MSG(bad_msg == 0, "%d messages without the source", bad_msg);
    free(orig);
    free(buf);
}

#define SMALL "input 5 5 1\nconv filters=2 kernel=3 activation=relu\nbatchnorm\nflatten\n" \
              "dense units=3 activation=softmax\n"

/* Writes a model-like file from pieces, then loads it expecting `what`. */
static void model_bad(const fm__st_entry *t, size_t n, const fm__st_kv *meta, size_t n_meta,
                      const char *what) {
    const char *path = tmp_path("bad-model.safetensors");
    fm_err err = {{0}};
    CHECK(fm__st_write(path, t, n, meta, n_meta, &err) == 0);
    fm_model *m = fm_model_load(path, &err);
    CHECK_MSG(m == NULL, "loaded a model with '%s'", what);
    fm_model_free(m);
    CHECK_MSG(strstr(err.msg, path) && strstr(err.msg, what), "'%s' lacks '%s'", err.msg, what);
}

static void test_model_files(void) {
    static float w[18], b[2], g[2] = {1, 1}, be[2], mm[2], mv[2] = {1, 1}, dw[3 * 18], db[3];
    char names[] = "[\"a\", \"b\", \"c\"]";
    fm__st_entry t[] = {
        {"conv2d.weight", FM__ST_F32, 4, {2, 1, 3, 3}, w},
        {"conv2d.bias", FM__ST_F32, 1, {2}, b},
        {"batch_normalization.gamma", FM__ST_F32, 1, {2}, g},
        {"batch_normalization.beta", FM__ST_F32, 1, {2}, be},
        {"batch_normalization.moving_mean", FM__ST_F32, 1, {2}, mm},
        {"batch_normalization.moving_variance", FM__ST_F32, 1, {2}, mv},
        {"dense.weight", FM__ST_F32, 2, {3, 18}, dw},
        {"dense.bias", FM__ST_F32, 1, {3}, db},
    };
    fm__st_kv meta[] = {
        {"fmnist.description", SMALL},
        {"fmnist.class_names", names},
        {"fmnist.input_normalization", "x/255"},
    };
    /* the pieces as given form a valid model; foreign "train." tensors are ignored */
    const char *path = tmp_path("good-model.safetensors");
    fm_err err;
    fm__st_entry extra[9];
    memcpy(extra, t, sizeof t);
    extra[8] = (fm__st_entry){"train.step", FM__ST_I64, 0, {0}, (int64_t[]){3}};
    CHECK(fm__st_write(path, extra, 9, meta, 3, &err) == 0);
    fm_model *m = fm_model_load(path, &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (m) CHECK(!strcmp(fm_model_description(m), SMALL) && m->layers[1].t[3].data[0] == 1.0f);
    /* the file's class names are the model's, and saved again */
    if (m) {
        CHECK(fm_model_class_count(m) == 3 && !strcmp(fm_model_class_name(m, 0), "a") &&
              !strcmp(fm_model_class_name(m, 2), "c"));
        CHECK(!fm_model_class_name(m, 3) && !fm_model_class_name(m, -1));
        CHECK(fm_model_set_class_names(m, (const char *[]){"caf\xc3\xa9", "b", "c"}, &err) == 0);
        const char *again = tmp_path("renamed.safetensors");
        CHECK_MSG(fm_model_save(m, again, &err) == 0, "%s", err.msg);
        fm_model *r = fm_model_load(again, &err);
        CHECK_MSG(r && !strcmp(fm_model_class_name(r, 0), "caf\xc3\xa9") &&
                      !strcmp(fm_model_class_name(r, 1), "b"),
                  "%s", r ? fm_model_class_name(r, 0) : err.msg);
        fm_model_free(r);
    }
    fm_model_free(m);

    model_bad(t, 8, meta + 1, 2, "missing metadata 'fmnist.description'");
    model_bad(t, 8, (fm__st_kv[]){meta[0], meta[2]}, 2, "missing metadata 'fmnist.class_names'");
    model_bad(t, 8, meta, 2, "missing metadata 'fmnist.input_normalization'");
    model_bad(t, 8, (fm__st_kv[]){meta[0], meta[1], {"fmnist.input_normalization", "x/127.5-1"}},
              3, "normalization");
    model_bad(t, 8, (fm__st_kv[]){meta[0], {"fmnist.class_names", "[\"a\"]"}, meta[2]}, 3,
              "not an array of 3 strings");
    model_bad(t, 8, (fm__st_kv[]){meta[0], {"fmnist.class_names", "[\"a\""}, meta[2]}, 3,
              "fmnist.class_names: bad JSON");
    model_bad(t, 8, (fm__st_kv[]){meta[0], {"fmnist.class_names", "[\"a\", \"\", \"c\"]"}, meta[2]},
              3, "metadata fmnist.class_names: class 1: a name is 1 to 64 bytes, not 0");
    model_bad(t, 8,
              (fm__st_kv[]){meta[0], {"fmnist.class_names", "[\"a\", \"b\", \"c\\nd\"]"}, meta[2]},
              3, "class 2: the name holds a control character (0x0a)");
    model_bad(t, 8, (fm__st_kv[]){{"fmnist.description", "input 5 5 1\nconv filters=2\n"}, meta[1],
                                  meta[2]},
              3, "(fmnist.description):2: conv: missing kernel");
    model_bad(t, 7, meta, 3, "missing tensor 'dense.bias'");
    fm__st_entry wrong[8];
    memcpy(wrong, t, sizeof t);
    wrong[0].shape[1] = 2;
    wrong[0].shape[0] = 1;
    model_bad(wrong, 8, meta, 3,
              "tensor 'conv2d.weight' has shape [1, 2, 3, 3], but the description needs [2, 1, 3, 3]");
    memcpy(wrong, t, sizeof t);
    wrong[1].dtype = FM__ST_I32;
    model_bad(wrong, 8, meta, 3, "tensor 'conv2d.bias' has dtype I32, expected F32");
    memcpy(extra, t, sizeof t);
    extra[8] = (fm__st_entry){"dense_9.weight", FM__ST_F32, 1, {2}, b};
    model_bad(extra, 9, meta, 3, "unexpected tensor 'dense_9.weight'");
    float nan_bias[2] = {0.0f, NAN}, neg_var[2] = {1.0f, -0.5f};
    memcpy(wrong, t, sizeof t);
    wrong[1].data = nan_bias;
    model_bad(wrong, 8, meta, 3, "tensor 'conv2d.bias' holds a non-finite value at index 1");
    memcpy(wrong, t, sizeof t);
    wrong[5].data = neg_var;
    model_bad(wrong, 8, meta, 3, "negative variance");

    /* the training split: recorded as three keys, read back, checked */
    uint64_t seed;
    double val_split;
    size_t limit;
    m = fm_model_load(tmp_path("good-model.safetensors"), &err);
    CHECK(m && fm_model_training_split(m, &seed, &val_split, &limit) == -1); /* none recorded */
    if (m) {
        m->has_split = 1, m->split_seed = 18446744073709551615ull, m->split_val = 0.15;
        m->split_limit = 5000;
        CHECK_MSG(fm_model_save(m, tmp_path("split.safetensors"), &err) == 0, "%s", err.msg);
    }
    fm_model_free(m);
    m = fm_model_load(tmp_path("split.safetensors"), &err);
    CHECK_MSG(m && fm_model_training_split(m, &seed, &val_split, &limit) == 0, "%s", err.msg);
    CHECK(seed == 18446744073709551615ull && val_split == 0.15 && limit == 5000);
    fm_model_free(m);
    const fm__st_kv sd = {"fmnist.split.seed", "7"}, vs = {"fmnist.split.val_split", "0.2"},
                    lm = {"fmnist.split.limit", "0"};
    model_bad(t, 8, (fm__st_kv[]){meta[0], meta[1], meta[2], sd, vs}, 5,
              "metadata 'fmnist.split.limit' is missing");
    model_bad(t, 8, (fm__st_kv[]){meta[0], meta[1], meta[2], {"fmnist.split.seed", "-7"}, vs, lm},
              6, "'fmnist.split.seed' = '-7' is not a seed");
    model_bad(t, 8, (fm__st_kv[]){meta[0], meta[1], meta[2], sd, {"fmnist.split.val_split", "1"}, lm},
              6, "'fmnist.split.val_split' = '1' is not a fraction in (0, 1)");
    model_bad(t, 8, (fm__st_kv[]){meta[0], meta[1], meta[2], sd, vs, {"fmnist.split.limit", "1e3"}},
              6, "'fmnist.split.limit' = '1e3' is not an image count");

    /* test-time augmentation: recorded only when there is one, read back,
     * an unknown name refused; a file without the key (all the above) has none */
    m = fm_model_load(tmp_path("good-model.safetensors"), &err);
    CHECK(m && fm_model_tta(m) == FM_TTA_NONE);
    if (m) {
        CHECK_MSG(fm_model_save(m, tmp_path("no-tta.safetensors"), &err) == 0, "%s", err.msg);
        CHECK(fm_model_set_tta(m, FM_TTA_FLIP, &err) == 0);
        CHECK_MSG(fm_model_save(m, tmp_path("tta.safetensors"), &err) == 0, "%s", err.msg);
    }
    fm_model_free(m);
    size_t n_plain = 0, n_flip = 0;
    unsigned char *plain = slurp(tmp_path("no-tta.safetensors"), &n_plain),
                  *flip = slurp(tmp_path("tta.safetensors"), &n_flip);
    CHECK(plain && !has_text(plain, n_plain, "fmnist.tta"));
    CHECK(flip && has_text(flip, n_flip, "\"fmnist.tta\":\"flip\""));
    free(plain);
    free(flip);
    m = fm_model_load(tmp_path("tta.safetensors"), &err);
    CHECK_MSG(m && fm_model_tta(m) == FM_TTA_FLIP, "%s", m ? "not flip" : err.msg);
    fm_model_free(m);
    fm__st_kv with_tta[] = {meta[0], meta[1], meta[2], {"fmnist.tta", "none"}};
    CHECK(fm__st_write(tmp_path("tta-none.safetensors"), t, 8, with_tta, 4, &err) == 0);
    m = fm_model_load(tmp_path("tta-none.safetensors"), &err);
    CHECK_MSG(m && fm_model_tta(m) == FM_TTA_NONE, "%s", m ? "not none" : err.msg);
    fm_model_free(m);
    with_tta[3].value = "mirror";
    model_bad(t, 8, with_tta, 4,
              "metadata 'fmnist.tta' = 'mirror' is not a test-time augmentation (none or flip)");
    with_tta[3].value = "FLIP";
    model_bad(t, 8, with_tta, 4, "'fmnist.tta' = 'FLIP' is not");
    with_tta[3].value = "";
    model_bad(t, 8, with_tta, 4, "'fmnist.tta' = '' is not");

    /* a file that is not safetensors at all */
    path = tmp_path("text.safetensors");
    spit(path, "input 28 28 1\n", 14);
    CHECK(fm_model_load(path, &err) == NULL && strstr(err.msg, "text.safetensors: header length"));
}

/* fm_model_save's file read with nothing but Python's json and numpy: the
 * header and metadata with json alone, the tensor values with numpy. What
 * this machine lacks is left out, and a note says so. */
static void test_python(void) {
    if (system("/usr/bin/python3 -c '' >/dev/null 2>&1") != 0) {
        fprintf(stderr, "note: no /usr/bin/python3: the Python read check did not run\n");
        return;
    }
    int numpy = system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
    if (!numpy)
        fprintf(stderr, "note: python3 has no numpy: tensor values were not read back in Python, "
                        "only the header and metadata\n");
    fm_err err;
    fm_model *m = fm_model_parse(SMALL, "py", &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m) return;
    fm_rng rng;
    fm_rng_seed(&rng, 11);
    fm_model_init(m, &rng);
    m->layers[1].t[2].data[1] = 0.25f; /* a moving mean */
    const char *path = tmp_path("py.safetensors");
    CHECK(fm_model_save(m, path, &err) == 0);
    const char *script = tmp_path("read.py");
    FILE *f = fopen(script, "w");
    CHECK(f != NULL);
    if (!f) {
        fm_model_free(m);
        return;
    }
    fputs("import json, struct, sys\n"
          "try:\n"
          "    import numpy as np\n"
          "except ImportError:\n"
          "    np = None\n"
          "raw = open(sys.argv[1], 'rb').read()\n"
          "n = struct.unpack('<Q', raw[:8])[0]\n"
          "header = json.loads(raw[8:8 + n])\n"
          "meta = header.pop('__metadata__')\n"
          "data = raw[8 + n:]\n"
          "for name, t in sorted(header.items()):\n"
          "    b, e = t['data_offsets']\n"
          "    if np is None:\n"
          "        print(name, 'x'.join(map(str, t['shape'])), '-')\n"
          "        continue\n"
          "    a = np.frombuffer(data[b:e], dtype='<f4').reshape(t['shape'])\n"
          "    print(name, 'x'.join(map(str, a.shape)), repr(float(a.astype(np.float64).sum())))\n"
          "print('classes', len(json.loads(meta['fmnist.class_names'])))\n"
          "print('norm', meta['fmnist.input_normalization'])\n"
          "print('lines', len(meta['fmnist.description'].splitlines()))\n",
          f);
    fclose(f);
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", script, path);
    FILE *p = popen(cmd, "r");
    char line[256];
    int rows = 0;
    while (p && fgets(line, sizeof line, p)) {
        char name[128], shape[64], value[64];
        if (sscanf(line, "%127s %63s %63s", name, shape, value) == 3 && strchr(name, '.')) {
            /* compare with the model's own numbers */
            double want = 0;
            size_t len = 0;
            const float *data = NULL;
            for (int i = 0; i < m->n_layers; i++) {
                const fm__layer *l = &m->layers[i];
                size_t nl = strlen(l->name);
                if (strncmp(name, l->name, nl) || name[nl] != '.') continue;
                for (int j = 0; j < l->type->n_tensors; j++)
                    if (!strcmp(name + nl + 1, l->type->tensors[j].suffix))
                        data = l->t[j].data, len = l->t[j].len;
            }
            for (size_t j = 0; j < len; j++) want += data[j];
            /* "-": no numpy, so no values to compare */
            int no_values = !strcmp(value, "-");
            CHECK_MSG(len > 0 && no_values == !numpy &&
                          (no_values || fabs(strtod(value, NULL) - want) < 1e-9),
                      "%s: python sum %s, model %g", name, value, want);
            if (!strcmp(name, "conv2d.weight")) CHECK(!strcmp(shape, "2x1x3x3"));
            if (!strcmp(name, "dense.weight")) CHECK(!strcmp(shape, "3x18"));
            rows++;
        } else if (!strncmp(line, "classes", 7)) {
            CHECK(!strcmp(line, "classes 3\n"));
            rows++;
        } else if (!strncmp(line, "norm", 4)) {
            CHECK(!strcmp(line, "norm x/255\n"));
            rows++;
        } else if (!strncmp(line, "lines", 5)) {
            CHECK(!strcmp(line, "lines 5\n"));
            rows++;
        }
    }
    CHECK(p && pclose(p) == 0);
    CHECK(rows == 11);
    fm_model_free(m);
}

int main(void) {
    const char *t = getenv("FMNIST_TEST_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s/safetensors", t ? t : "/tmp/fmnist-test");
    char cmd[1000];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmpdir);
    if (system(cmd) != 0) SKIP("cannot create %s", tmpdir);
    test_round_trip();
    test_corruptions();
    test_fuzz();
    test_model_files();
    test_python();
    return check_finish();
}
