/* Model descriptions: shipped configs give the SPEC's parameter counts and
 * Keras's shapes and names; shape rules (same/valid, stride, pooling); every
 * kind of mistake gives one line naming source:line and the problem; the
 * summary table and the `fmnist summary` verb. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "layertest.h"
#include "model/model.h"

static const char *source_dir(void) {
    const char *d = getenv("FMNIST_SOURCE_DIR");
    return d ? d : ".";
}

static fm_model *load_config(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/configs/%s", source_dir(), name);
    fm_err err;
    fm_model *m = fm_model_load_cfg(path, &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    return m;
}

static void test_default_config(void) {
    fm_model *m = load_config("fashion-cnn.cfg");
    if (!m) return;
    size_t trainable, total = fm_model_param_count(m, &trainable);
    CHECK(total == 1868234);
    CHECK(trainable == 1867850);
    CHECK(total - trainable == 384);
    /* SPEC: conv 640, bn 256, conv 36,928, conv 73,856, bn 512, conv 147,584,
     * dense 1,605,888, dense 2,570 */
    static const struct {
        const char *name;
        int c, h, w, flat;
        size_t params;
    } want[] = {
        {"conv2d", 64, 28, 28, 0, 640},
        {"batch_normalization", 64, 28, 28, 0, 256},
        {"conv2d_1", 64, 28, 28, 0, 36928},
        {"max_pooling2d", 64, 14, 14, 0, 0},
        {"dropout", 64, 14, 14, 0, 0},
        {"conv2d_2", 128, 14, 14, 0, 73856},
        {"batch_normalization_1", 128, 14, 14, 0, 512},
        {"conv2d_3", 128, 14, 14, 0, 147584},
        {"max_pooling2d_1", 128, 7, 7, 0, 0},
        {"dropout_1", 128, 7, 7, 0, 0},
        {"flatten", 6272, 1, 1, 1, 0},
        {"dense", 256, 1, 1, 1, 1605888},
        {"dropout_2", 256, 1, 1, 1, 0},
        {"dense_1", 10, 1, 1, 1, 2570},
    };
    CHECK(m->n_layers == (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < m->n_layers && i < (int)(sizeof want / sizeof want[0]); i++) {
        const fm__layer *l = &m->layers[i];
        CHECK_MSG(!strcmp(l->name, want[i].name), "layer %d is %s", i, l->name);
        CHECK_MSG(l->out.c == want[i].c && l->out.h == want[i].h && l->out.w == want[i].w &&
                      l->out.flat == want[i].flat,
                  "%s: %dx%dx%d", l->name, l->out.c, l->out.h, l->out.w);
        CHECK_MSG(fm__layer_param_count(l) == want[i].params, "%s: %zu params", l->name, fm__layer_param_count(l));
    }
    CHECK(m->classes == 10);
    CHECK(lt_float(&m->layers[1], "momentum") == 0.99f && lt_float(&m->layers[1], "eps") == 1e-3f);
    CHECK(lt_float(&m->layers[4], "rate") == 0.25f && lt_float(&m->layers[12], "rate") == 0.5f);
    CHECK(lt_int(&m->layers[0], "activation") == FM__ACT_RELU &&
          lt_int(&m->layers[0], "padding") == 1 /* same */ && lt_int(&m->layers[0], "stride") == 1);
    CHECK(lt_int(&m->layers[13], "activation") == FM__ACT_SOFTMAX);
    /* parameters are laid out contiguously in layer order */
    CHECK(m->layers[0].t[0].offset == 0 && m->layers[0].t[1].offset == 576 &&
          m->layers[1].t[0].offset == 640);
    CHECK(m->n_stats == 384 && m->layers[1].t[2].offset == 0 && m->layers[1].t[3].offset == 64);
    CHECK(m->layers[6].t[2].offset == 128 && m->layers[6].t[3].offset == 256);
    CHECK(m->layers[3].type->n_tensors == 0);
    /* a fresh model has BatchNorm at identity */
    CHECK(m->layers[1].t[0].data == m->params + 640 && m->layers[1].t[2].data == m->stats);
    CHECK(m->layers[1].t[0].data[0] == 1.0f && m->layers[1].t[1].data[0] == 0.0f);
    CHECK(m->layers[1].t[3].data[63] == 1.0f && m->layers[1].t[2].data[63] == 0.0f);
    fm_model_free(m);
}

static void test_readme_config(void) {
    fm_model *m = load_config("fashion-cnn-readme.cfg");
    if (!m) return;
    size_t trainable, total = fm_model_param_count(m, &trainable);
    CHECK(total == 1868234 + 1024);
    CHECK(total - trainable == 384 + 512);
    CHECK(m->n_layers == 15);
    if (m->n_layers == 15) {
        CHECK(lt_is(&m->layers[9], "dropout") && lt_float(&m->layers[9], "rate") == 0.35f);
        CHECK(lt_is(&m->layers[11], "dense") && lt_int(&m->layers[11], "activation") == FM__ACT_RELU);
        CHECK(lt_is(&m->layers[12], "batchnorm") && m->layers[12].out.flat &&
              !strcmp(m->layers[12].name, "batch_normalization_2"));
        CHECK(lt_is(&m->layers[13], "dropout") && lt_float(&m->layers[13], "rate") == 0.5f);
    }
    fm_model_free(m);
}

static fm_model *parse_ok(const char *text) {
    fm_err err;
    fm_model *m = fm_model_parse(text, "t.cfg", &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    return m;
}

static void test_shapes(void) {
    /* Keras: valid -> floor((in-k)/s)+1; same -> ceil(in/s); pooling floors;
     * defaults: stride 1, padding valid, activation linear. CRLF, tabs,
     * comments and blank lines are fine; bare values for maxpool/dropout. */
    fm_model *m = parse_ok("# test\r\n\r\ninput 9 7 3\r\n"
                           "conv filters=4 kernel=3\t# valid: 7x5\n"
                           "conv filters=5 kernel=3 stride=2 padding=same   # ceil: 4x3\n"
                           "conv filters=2 kernel=2 stride=2 padding=valid  # 2x1\n"
                           "batchnorm momentum=0.9 eps=0.01\n"
                           "relu\n"
                           "dropout rate=0.1\n"
                           "flatten\n"
                           "dense units=6\n"
                           "relu\n"
                           "dense units=3\n"
                           "softmax\n");
    if (m) {
        const fm__layer *l = m->layers;
        CHECK(m->input.h == 9 && m->input.w == 7 && m->input.c == 3);
        CHECK(l[0].out.h == 7 && l[0].out.w == 5 && l[0].out.c == 4);
        CHECK(lt_int(&l[0], "stride") == 1 && lt_int(&l[0], "padding") == 0 /* valid */ &&
              lt_int(&l[0], "activation") == FM__ACT_LINEAR);
        CHECK(l[1].out.h == 4 && l[1].out.w == 3 && l[1].out.c == 5);
        CHECK(l[2].out.h == 2 && l[2].out.w == 1 && l[2].out.c == 2);
        CHECK(lt_float(&l[3], "momentum") == 0.9f && lt_float(&l[3], "eps") == 0.01f);
        CHECK(!strcmp(l[4].name, "re_lu") && !strcmp(l[8].name, "re_lu_1"));
        CHECK(l[6].out.c == 4 && l[6].out.flat);
        CHECK(l[7].t[0].len == 24 && l[7].t[1].len == 6);
        CHECK(m->classes == 3 && lt_is(&l[10], "softmax") && !strcmp(l[10].name, "softmax"));
        CHECK(l[0].t[0].len == 4 * 3 * 9 && l[1].t[0].len == 5 * 4 * 9 && l[2].t[0].len == 2 * 5 * 4);
        fm_model_free(m);
    }
    m = parse_ok("input 7 7 1\nmaxpool 2\nmaxpool size=3\nflatten\ndense units=2 "
                 "activation=softmax\n");
    if (m) {
        CHECK(m->layers[0].out.h == 3 && m->layers[0].out.w == 3 && lt_int(&m->layers[0], "size") == 2);
        CHECK(m->layers[1].out.h == 1 && lt_int(&m->layers[1], "size") == 3);
        CHECK(m->layers[3].t[0].len == 2 && lt_int(&m->layers[3], "activation") == FM__ACT_SOFTMAX);
        CHECK(!strcmp(fm_model_description(m),
                      "input 7 7 1\nmaxpool 2\nmaxpool size=3\nflatten\ndense units=2 "
                      "activation=softmax\n"));
        fm_model_free(m);
    }
}

/* text must fail with a message starting "t.cfg:LINE:" (line 0: "t.cfg: ")
 * and containing `what`. */
static void bad(const char *text, int line, const char *what) {
    fm_err err = {{0}};
    fm_model *m = fm_model_parse(text, "t.cfg", &err);
    CHECK_MSG(m == NULL, "accepted: %s", text);
    fm_model_free(m);
    char prefix[32];
    if (line) snprintf(prefix, sizeof prefix, "t.cfg:%d: ", line);
    else snprintf(prefix, sizeof prefix, "t.cfg: ");
    CHECK_MSG(!strncmp(err.msg, prefix, strlen(prefix)) && strstr(err.msg, what),
              "'%s' lacks '%s' / '%s'", err.msg, prefix, what);
    CHECK_MSG(!strchr(err.msg, '\n'), "multi-line message '%s'", err.msg);
}

#define TAIL "flatten\ndense units=10 activation=softmax\n"

static void test_errors(void) {
    bad("", 0, "no 'input");
    bad("# only a comment\n\n", 0, "no 'input");
    bad("input 28 28 1\n", 0, "no layers");
    bad("conv filters=8 kernel=3\n" TAIL, 1, "missing 'input");
    bad("input 28 28\n" TAIL, 1, "input HEIGHT WIDTH CHANNELS");
    bad("input 28 28 x\n" TAIL, 1, "not an integer");
    bad("input 28 28 0\n" TAIL, 1, "out of range");
    bad("input 28 28 1\ninput 28 28 1\n" TAIL, 2, "second 'input'");
    bad("input 28 28 1\n\nconvolution filters=8\n" TAIL, 3, "unknown layer 'convolution'");
    bad("input 28 28 1\npool\n" TAIL, 2,
        "(expected input, conv, batchnorm, relu, maxpool, avgpool, globalavgpool, dropout, "
        "flatten, dense or softmax)");
    bad("input 28 28 1\nconv filter=8 kernel=3\n" TAIL, 2, "unknown key 'filter'");
    bad("input 28 28 1\nconv filters=8 kernel=3 filters=4\n" TAIL, 2, "filters given twice");
    bad("input 28 28 1\nconv filters=8\n" TAIL, 2, "missing kernel");
    bad("input 28 28 1\nconv kernel=3\n" TAIL, 2, "missing filters");
    bad("input 28 28 1\nconv filters=8x kernel=3\n" TAIL, 2, "'8x' is not an integer");
    bad("input 28 28 1\nconv filters=0 kernel=3\n" TAIL, 2, "out of range");
    bad("input 28 28 1\nconv filters=8 kernel=3 padding=full\n" TAIL, 2, "padding");
    bad("input 28 28 1\nconv filters=8 kernel=3 activation=tanh\n" TAIL, 2, "unknown activation");
    bad("input 28 28 1\nconv filters=8 kernel=3 activation=softmax\n" TAIL, 2,
        "unknown activation");
    bad("input 28 28 1\nconv filters=8 kernel=3 8\n" TAIL, 2, "expected key=value");
    bad("input 28 28 1\nconv filters= kernel=3\n" TAIL, 2, "no value");
    bad("input 28 28 1\nbatchnorm momentum=1.5\n" TAIL, 2, "out of range");
    bad("input 28 28 1\nbatchnorm eps=0\n" TAIL, 2, "out of range");
    bad("input 28 28 1\nbatchnorm eps=nan\n" TAIL, 2, "not a number");
    bad("input 28 28 1\ndropout\n" TAIL, 2, "missing the rate");
    bad("input 28 28 1\ndropout 1\n" TAIL, 2, "out of range");
    bad("input 28 28 1\ndropout 0.5 0.2\n" TAIL, 2, "given twice");
    bad("input 28 28 1\ndropout abc\n" TAIL, 2, "not a number");
    bad("input 28 28 1\nmaxpool 0\n" TAIL, 2, "out of range");
    bad("input 28 28 1\navgpool 0\n" TAIL, 2, "out of range");
    bad("input 28 28 1\navgpool size=2 2\n" TAIL, 2, "given twice");
    bad("input 28 28 1\navgpool stride=2\n" TAIL, 2, "unknown key 'stride' (expected size)");
    bad("input 28 28 1\nglobalavgpool 7\n" TAIL, 2, "takes no arguments");
    bad("input 28 28 1\nrelu 3\n" TAIL, 2, "takes no arguments");
    bad("input 28 28 1\nflatten x=1\n" TAIL, 2, "takes no arguments");
    /* shape problems are found when planning, still with their line */
    bad("input 4 4 1\nconv filters=2 kernel=5\n" TAIL, 2, "does not fit");
    bad("input 4 4 1\nmaxpool 2\nmaxpool 2\nmaxpool 2\n" TAIL, 4, "does not fit");
    bad("input 28 28 1\nconv filters=8 kernel=3\ndense units=10 activation=softmax\n", 3,
        "dense needs a flat input");
    bad("input 28 28 1\nflatten\nconv filters=8 kernel=3\n" TAIL, 3, "conv needs an image");
    bad("input 28 28 1\nflatten\nmaxpool 2\n" TAIL, 3, "maxpool needs an image");
    bad("input 28 28 1\nflatten\navgpool 2\n" TAIL, 3, "avgpool needs an image");
    bad("input 5 5 1\navgpool 3\navgpool 3\n" TAIL, 3, "avgpool 3 does not fit the 1x1 input");
    bad("input 28 28 1\nflatten\nglobalavgpool\n" TAIL, 3, "globalavgpool needs an image");
    bad("input 28 28 1\nglobalavgpool\nconv filters=2 kernel=1\n" TAIL, 3, "conv needs an image");
    bad("input 28 28 1\nglobalavgpool\n", 2, "must end in softmax");
    bad("input 28 28 1\nflatten\ndense units=10\n", 3, "must end in softmax");
    bad("input 28 28 1\nflatten\ndense units=10 activation=softmax\ndropout 0.5\n", 3,
        "only allowed on the last layer");
    bad("input 28 28 1\nflatten\nsoftmax\ndense units=10 activation=softmax\n", 3,
        "softmax must be the last layer");
    bad("input 28 28 1\nconv filters=4 kernel=3\nsoftmax\n", 3, "softmax needs a flat input");
    bad("input 28 28 1\nflatten\ndense units=1 activation=softmax\n", 3, "2 to 256");
    bad("input 4096 4096 65536\nflatten\ndense units=10 activation=softmax\n", 0, "too large");
    bad("input 1024 1024 1\nflatten\ndense units=1048576\n" TAIL, 3, "too many parameters");
    /* 17 fields on one line */
    bad("input 28 28 1\nrelu a b c d e f g h i j k l m n o p\n" TAIL, 2, "more than 16 fields");
}

/* fm_model_summary of configs/NAME as a malloc'd string (NULL if it does not load). */
static char *summary_of(const char *name) {
    fm_model *m = load_config(name);
    if (!m) return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fm_model_summary(m, f);
    fclose(f);
    fm_model_free(m);
    return text;
}

/* avgpool: window = stride = size, floor; globalavgpool: (None, C), flat,
 * so a dense may follow without flatten. */
static void test_pooling(void) {
    fm_model *m = parse_ok("input 9 7 3\navgpool 2\navgpool size=3\nconv filters=4 kernel=1\n"
                           "globalavgpool\ndense units=2 activation=softmax\n");
    if (m) {
        const fm__layer *l = m->layers;
        CHECK(l[0].out.h == 4 && l[0].out.w == 3 && l[0].out.c == 3 && lt_int(&l[0], "size") == 2);
        CHECK(l[1].out.h == 1 && l[1].out.w == 1 && lt_int(&l[1], "size") == 3);
        CHECK(!strcmp(l[0].name, "average_pooling2d") && !strcmp(l[1].name, "average_pooling2d_1"));
        CHECK(lt_is(&l[3], "globalavgpool") && l[3].out.c == 4 && l[3].out.flat);
        CHECK(!strcmp(l[3].name, "global_average_pooling2d"));
        CHECK(fm__layer_param_count(&l[0]) == 0 && fm__layer_param_count(&l[3]) == 0);
        CHECK(fm_model_param_count(m, NULL) == 4 * 3 + 4 + 4 * 2 + 2);
        fm_model_free(m);
    }
    char *text = summary_of("fashion-cnn-gap.cfg");
    if (!text) return;
    CHECK(strstr(text, " average_pooling2d (AveragePooling2D) ") != NULL);
    CHECK(strstr(text, "(None, 14, 14, 32)") != NULL && strstr(text, "(None, 7, 7, 64)") != NULL);
    CHECK(strstr(text, " global_average_pooling2d (GlobalAveragePooling2D)    (None, 96)  ") != NULL);
    CHECK(strstr(text, "Total params: 75,562 ") != NULL);
    free(text);
}

static void test_summary(void) {
    char *text = summary_of("fashion-cnn.cfg");
    if (!text) return;
    CHECK(strstr(text, "Model: \"fashion-cnn\"") != NULL);
    CHECK(strstr(text, " conv2d (Conv2D) ") != NULL);
    CHECK(strstr(text, "(None, 28, 28, 64)") != NULL);
    CHECK(strstr(text, "(None, 6272)") != NULL);
    CHECK(strstr(text, "1,605,888") != NULL && strstr(text, "147,584") != NULL);
    CHECK(strstr(text, "Total params: 1,868,234 (7.13 MB)\n") != NULL);
    CHECK(strstr(text, "Trainable params: 1,867,850 (7.13 MB)\n") != NULL);
    CHECK(strstr(text, "Non-trainable params: 384 (1.50 KB)\n") != NULL);
    free(text);
}

/* Runs the CLI; returns its exit status and captures stdout+stderr. */
static int run(const char *args, char *out, size_t size) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "\"%s\" %s 2>&1", getenv("FMNIST_BIN"), args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, size - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void) {
    const char *bin = getenv("FMNIST_BIN");
    if (!bin || access(bin, X_OK)) {
        fprintf(stderr, "note: FMNIST_BIN not built, CLI checks not run\n");
        return;
    }
    char out[8192], args[1200];
    snprintf(args, sizeof args, "summary %s/configs/fashion-cnn.cfg", source_dir());
    CHECK(run(args, out, sizeof out) == 0);
    CHECK(strstr(out, "Total params: 1,868,234") != NULL);
    CHECK(run("summary --help", out, sizeof out) == 0 && strstr(out, "usage: fmnist summary"));
    CHECK(run("summary --frobnicate", out, sizeof out) == 2);
    CHECK(run("summary a.cfg b.cfg", out, sizeof out) == 2);
    CHECK(run("summary /nonexistent/x.cfg", out, sizeof out) == 1 && strstr(out, "x.cfg"));
    /* a parse error: exit 1 and one line with file:line */
    const char *tmp = getenv("FMNIST_TEST_TMP");
    char path[1024];
    snprintf(path, sizeof path, "%s/bad.cfg", tmp ? tmp : "/tmp");
    snprintf(args, sizeof args, "mkdir -p \"%s\"", tmp ? tmp : "/tmp");
    CHECK(system(args) == 0);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs("input 28 28 1\nconv filters=8 kernal=3\n", f);
    fclose(f);
    snprintf(args, sizeof args, "summary %s", path);
    CHECK(run(args, out, sizeof out) == 1);
    CHECK(strstr(out, "bad.cfg:2: conv: unknown key 'kernal'") != NULL);
    CHECK(strchr(out, '\n') == out + strlen(out) - 1);
    /* a trained model file, by its extension */
    fm_model *m = load_config("fashion-cnn-readme.cfg");
    if (!m) return;
    fm_err err;
    snprintf(path, sizeof path, "%s/readme.safetensors", tmp ? tmp : "/tmp");
    CHECK(fm_model_save(m, path, &err) == 0);
    fm_model_free(m);
    snprintf(args, sizeof args, "summary %s", path);
    CHECK(run(args, out, sizeof out) == 0);
    CHECK(strstr(out, "Model: \"readme\"") && strstr(out, "Total params: 1,869,258"));
    /* not a model file: exit 1, one line naming it */
    f = fopen(path, "w");
    if (f) {
        fputs("garbage", f);
        fclose(f);
    }
    CHECK(run(args, out, sizeof out) == 1 && strstr(out, "readme.safetensors: truncated"));
}

int main(void) {
    test_default_config();
    test_readme_config();
    test_shapes();
    test_errors();
    test_pooling();
    test_summary();
    test_cli();
    return check_finish();
}
