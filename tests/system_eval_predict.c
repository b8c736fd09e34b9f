/* fmnist eval and predict end to end: a small network trained for a moment
 * on a slice of the real data, then eval's table and JSON (keys, confusion
 * matrix summing to the count, splits), predict on PNGs written from test
 * images (28x28 grey as is; a 56x56 colour one converted, with a note),
 * test-time augmentation (a copy of the model with flip: eval and predict
 * apply it as the library does and say so, and with --no-tta print what the
 * plain model gives), and clean failures for missing or corrupt weights, bad
 * images and bad flags. */
#include "core/png.h"
#include "check.h"
#include "clitest.h"
#include "data/image.h"
#include "core/json.h"

#include <png.h>

/* stderr is exactly one line starting "fmnist: " */
static int one_line_error(void) {
    const char *e = tu_output("err.txt");
    const char *nl = strchr(e, '\n');
    return !strncmp(e, "fmnist: ", 8) && nl && nl[1] == 0;
}

static double num(const fm__json *o, const char *key) {
    const fm__json *v = o ? fm__json_get(o, key) : NULL;
    return v && v->type == FM__JSON_NUMBER ? v->number : NAN;
}

/* An 8-bit RGB PNG of w x h: the grey image g (28x28) scaled up by 2 with
 * nearest neighbours and tinted, so grey conversion gives roughly g back. */
static void write_rgb_png(const char *path, const uint8_t *g) {
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!f || !png || !info || setjmp(png_jmpbuf(png))) exit(1);
    png_init_io(png, f);
    png_set_IHDR(png, info, 56, 56, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    uint8_t row[56 * 3];
    for (int y = 0; y < 56; y++) {
        for (int x = 0; x < 56; x++) {
            uint8_t v = g[(y / 2) * 28 + x / 2];
            row[3 * x] = v;
            row[3 * x + 1] = (uint8_t)(v * 0.9);
            row[3 * x + 2] = v;
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

/* Output from `"split"` on: eval --json without its weights path. */
static char *after_weights(const char *out) {
    const char *at = strstr(out, "\"split\"");
    return strdup(at ? at : "");
}

/* The model at `weights` copied with flip TTA, then eval and predict on
 * both: the flip file evaluated as the library evaluates it, and like the
 * plain file with --no-tta. */
static void check_tta(const char *weights, const char *data, const fm_images *test,
                      const char *png28, const char *png56) {
    char flip[4200], args[16384];
    snprintf(flip, sizeof flip, "%s", tu_path("flip.safetensors"));
    fm_err err;
    fm_model *m = fm_model_load(weights, &err);
    CHECK_MSG(m, "%s", err.msg);
    if (!m) return;
    fm_eval_result plain, tta;
    CHECK_MSG(fm_model_evaluate(m, test, &plain, &err) == 0, "%s", err.msg);
    CHECK(fm_model_set_tta(m, FM_TTA_FLIP, &err) == 0 && fm_model_save(m, flip, &err) == 0);
    CHECK_MSG(fm_model_evaluate(m, test, &tta, &err) == 0, "%s", err.msg);
    fm_model_free(m);
    CHECK_MSG(fabs(tta.loss - plain.loss) > 1e-4, "flip changes the loss by %g only",
              tta.loss - plain.loss);

    snprintf(args, sizeof args, "eval --weights '%s' --data '%s' --json", flip, data);
    CHECK(tu_run(args) == 0);
    const char *out = tu_output("out.txt");
    fm__json *j = fm__json_parse(out, strlen(out), 0, &err);
    const fm__json *used = j ? fm__json_get(j, "tta") : NULL;
    CHECK_MSG(j && used && used->type == FM__JSON_STRING && !strcmp(used->string, "flip"), "%s",
              out);
    CHECK_NEAR(num(j, "loss"), tta.loss, 1e-8);
    CHECK_NEAR(num(j, "accuracy"), tta.accuracy, 1e-9);
    fm__json_free(j);
    /* --no-tta: what the plain file prints, but for the file's name */
    snprintf(args, sizeof args, "eval --weights '%s' --data '%s' --json --no-tta", flip, data);
    CHECK(tu_run(args) == 0);
    char *off = after_weights(tu_output("out.txt"));
    snprintf(args, sizeof args, "eval --weights '%s' --data '%s' --json", weights, data);
    CHECK(tu_run(args) == 0);
    char *none = after_weights(tu_output("out.txt"));
    CHECK_MSG(off[0] && !strcmp(off, none), "eval --no-tta:\n%s\nplain:\n%s", off, none);
    CHECK(strstr(none, "\"tta\": \"none\""));
    free(off);
    free(none);
    /* the table says which, and says nothing for a plain file */
    snprintf(args, sizeof args, "eval --weights '%s' --data '%s'", flip, data);
    CHECK(tu_run(args) == 0 && strstr(tu_output("out.txt"), "\ntta:      flip ("));
    snprintf(args, sizeof args, "eval --weights '%s' --data '%s' --no-tta", flip, data);
    CHECK(tu_run(args) == 0 &&
          strstr(tu_output("out.txt"), "\ntta:      none (--no-tta; the model file records flip)"));
    snprintf(args, sizeof args, "eval --weights '%s' --data '%s'", weights, data);
    CHECK(tu_run(args) == 0 && !strstr(tu_output("out.txt"), "\ntta:"));

    /* predict: the first line says so; --no-tta gives the plain file's output */
    snprintf(args, sizeof args, "predict --weights '%s' '%s'", flip, png28);
    CHECK(tu_run(args) == 0 && !strncmp(tu_output("out.txt"), "test-time augmentation: flip (", 30));
    snprintf(args, sizeof args, "predict --weights '%s' --json '%s' '%s'", flip, png28, png56);
    CHECK(tu_run(args) == 0);
    char *with = strdup(tu_output("out.txt"));
    snprintf(args, sizeof args, "predict --weights '%s' --json --no-tta '%s' '%s'", flip, png28,
             png56);
    CHECK(tu_run(args) == 0);
    off = strdup(tu_output("out.txt"));
    snprintf(args, sizeof args, "predict --weights '%s' --json '%s' '%s'", weights, png28, png56);
    CHECK(tu_run(args) == 0);
    none = strdup(tu_output("out.txt"));
    CHECK_MSG(!strcmp(off, none), "predict --no-tta:\n%s\nplain:\n%s", off, none);
    CHECK(!strncmp(with, "{\"tta\": \"flip\", ", 15) && !strncmp(none, "{\"tta\": \"none\", ", 15));
    CHECK_MSG(strcmp(with + 15, none + 15), "flip predicts what the plain file does:\n%s", with);
    snprintf(args, sizeof args, "predict --weights '%s' '%s'", weights, png28);
    CHECK(tu_run(args) == 0 && !strstr(tu_output("out.txt"), "test-time"));
    free(with);
    free(off);
    free(none);
}

/* fmnist predict --json against the library: fm_image_load of each file
 * (as PNG and PGM, with and without --invert) then fm_model_classify give
 * the class predict prints and its three probabilities as it prints them
 * (%.6g), for the model as it is and with flip TTA; and predict names the
 * classes as the model file does. */
static void check_classify(const char *weights, const fm_images *test) {
    enum { N = 6 };
    char files[N][4200], args[16384];
    const int n = N;
    fm_err err;
    for (int i = 0; i < N; i++) { /* PNG and binary PGM in turn */
        const uint8_t *px = test->pixels + (size_t)i * FM_IMAGE_PIXELS;
        char name[32];
        snprintf(name, sizeof name, "c%d.%s", i, i % 2 ? "pgm" : "png");
        snprintf(files[i], sizeof files[i], "%s", tu_path(name));
        if (i % 2 == 0) {
            CHECK_MSG(fm_image_save_png(files[i], px, 28, 28, &err) == 0, "%s", err.msg);
        } else {
            uint8_t pgm[13 + FM_IMAGE_PIXELS];
            memcpy(pgm, "P5\n28 28\n255\n", 13);
            memcpy(pgm + 13, px, FM_IMAGE_PIXELS);
            tu_write(files[i], pgm, sizeof pgm);
        }
    }
    char flip[4200];
    snprintf(flip, sizeof flip, "%s", tu_path("classify-flip.safetensors"));
    fm_model *m = fm_model_load(weights, &err);
    CHECK_MSG(m, "%s", err.msg);
    if (!m) return;
    CHECK(fm_model_set_tta(m, FM_TTA_FLIP, &err) == 0 && fm_model_save(m, flip, &err) == 0);
    for (int v = 0; v < 4; v++) { /* plain, flip; each without and with --invert */
        const int tta = v & 1, invert = v >> 1;
        CHECK(fm_model_set_tta(m, tta ? FM_TTA_FLIP : FM_TTA_NONE, &err) == 0);
        int at = snprintf(args, sizeof args, "predict --weights '%s' --json%s", tta ? flip : weights,
                          invert ? " --invert" : "");
        for (int i = 0; i < n; i++) at += snprintf(args + at, sizeof args - at, " '%s'", files[i]);
        CHECK(tu_run(args) == 0);
        const char *out = tu_output("out.txt");
        fm__json *j = fm__json_parse(out, strlen(out), 0, &err);
        const fm__json *preds = j ? fm__json_get(j, "predictions") : NULL;
        CHECK_MSG(preds && preds->type == FM__JSON_ARRAY && preds->n == (size_t)n, "%s", out);
        for (int i = 0; preds && i < n && i < (int)preds->n; i++) {
            uint8_t px[FM_IMAGE_PIXELS];
            fm_image_info info;
            CHECK_MSG(fm_image_load(files[i], invert ? FM_IMAGE_INVERT : 0, px, &info, &err) == 0,
                      "%s", err.msg);
            int same_px = 1;
            for (int p = 0; p < FM_IMAGE_PIXELS; p++) {
                uint8_t want = test->pixels[(size_t)i * FM_IMAGE_PIXELS + p];
                same_px &= px[p] == (invert ? 255 - want : want);
            }
            CHECK(same_px && info.width == 28 && info.height == 28 && !info.colour &&
                  !info.transparent);
            float probs[FM_NUM_CLASSES];
            int c = fm_model_classify(m, px, probs, &err);
            const fm__json *pred = &preds->items[i], *top = fm__json_get(pred, "top3");
            CHECK_MSG(c >= 0 && c == (int)num(pred, "class"), "%s: classify %d, predict %g",
                      files[i], c, num(pred, "class"));
            for (size_t k = 0; top && k < top->n; k++) {
                int tk = (int)num(&top->items[k], "class");
                char printed[32];
                snprintf(printed, sizeof printed, "%.6g", tk >= 0 && tk < 10 ? probs[tk] : -1.0f);
                CHECK_MSG(num(&top->items[k], "probability") == strtod(printed, NULL),
                          "%s: class %d: classify %s, predict %.9g", files[i], tk, printed,
                          num(&top->items[k], "probability"));
            }
        }
        fm__json_free(j);
    }

    /* the model file's class names are the ones predict prints */
    const char *names[FM_NUM_CLASSES] = {"top", "trousers", "jumper", "frock", "coat",
                                         "sandal", "shirt", "trainer", "bag", "boot"};
    char renamed[4200];
    snprintf(renamed, sizeof renamed, "%s", tu_path("renamed.safetensors"));
    CHECK(fm_model_set_tta(m, FM_TTA_NONE, &err) == 0 &&
          fm_model_set_class_names(m, names, &err) == 0 && fm_model_save(m, renamed, &err) == 0);
    int c = fm_model_classify(m, test->pixels, NULL, &err);
    snprintf(args, sizeof args, "predict --weights '%s' '%s'", renamed, files[0]);
    CHECK(tu_run(args) == 0 && c >= 0);
    char want[4400];
    snprintf(want, sizeof want, "%s: %s\n", files[0], c >= 0 ? names[c] : "?");
    CHECK_MSG(!strncmp(tu_output("out.txt"), want, strlen(want)), "%s", tu_output("out.txt"));
    fm_model_free(m);
}

int main(void) {
    if (!getenv("FMNIST_BIN")) SKIP("FMNIST_BIN is not set");
    fm_err err;
    fm_images train, test;
    if (fm_data_load(FM_DEBIAN_DATA_DIR, FM_SET_TRAIN, &train, &err) < 0 ||
        fm_data_load(FM_DEBIAN_DATA_DIR, FM_SET_TEST, &test, &err) < 0)
        SKIP("no Fashion-MNIST in " FM_DEBIAN_DATA_DIR " (%s)", err.msg);
    tu_init("system_eval_predict");

    /* 500 training and 300 test images, and a network small enough to train
     * in a second: the point here is the verbs, not the accuracy. */
    fm_images small_train = train, small_test = test;
    small_train.count = 500;
    small_test.count = 300;
    char data[4200], cfg[4200], run_dir[4200], weights[4300], args[16384];
    snprintf(data, sizeof data, "%s", tu_path("data"));
    snprintf(cfg, sizeof cfg, "%s", tu_path("tiny.cfg"));
    snprintf(run_dir, sizeof run_dir, "%s", tu_path("run"));
    snprintf(weights, sizeof weights, "%s/model.safetensors", run_dir);
    mkdir(data, 0777);
    CHECK_MSG(fm_data_write(data, FM_FORMAT_IDX, &small_train, &small_test, &err) == 0, "%s",
              err.msg);
    const char *net = "input 28 28 1\n"
                      "conv filters=8 kernel=3 padding=same activation=relu\n"
                      "maxpool 2\n"
                      "flatten\n"
                      "dense units=10 activation=softmax\n";
    tu_write(cfg, net, strlen(net));
    snprintf(args, sizeof args, "train --model '%s' --data '%s' --out '%s' --epochs 2 --quiet",
             cfg, data, run_dir);
    int rc = tu_run(args);
    CHECK_MSG(rc == 0, "train: exit %d: %s", rc, tu_output("err.txt"));

    /* eval --json: the keys, ten classes, a confusion matrix summing to 300
     * whose diagonal gives the accuracy */
    snprintf(args, sizeof args, "eval --weights '%s' --data '%s' --json", weights, data);
    rc = tu_run(args);
    CHECK_MSG(rc == 0, "eval: exit %d: %s", rc, tu_output("err.txt"));
    const char *out = tu_output("out.txt");
    fm__json *j = fm__json_parse(out, strlen(out), 0, &err);
    CHECK_MSG(j != NULL, "eval --json: %s:\n%s", err.msg, out);
    const fm__json *pc = j ? fm__json_get(j, "per_class") : NULL;
    const fm__json *cm = j ? fm__json_get(j, "confusion") : NULL;
    CHECK(num(j, "count") == 300 && num(j, "loss") > 0);
    CHECK(pc && pc->type == FM__JSON_ARRAY && pc->n == 10);
    CHECK(cm && cm->type == FM__JSON_ARRAY && cm->n == 10);
    if (pc && pc->n == 10 && cm && cm->n == 10) {
        double total = 0, diag = 0;
        int shape = 1, names = 1, ranges = 1;
        for (int t = 0; t < 10; t++) {
            const fm__json *row = &cm->items[t];
            shape &= row->type == FM__JSON_ARRAY && row->n == 10;
            for (size_t p = 0; shape && p < 10; p++) {
                total += row->items[p].number;
                if ((int)p == t) diag += row->items[p].number;
            }
            const fm__json *c = &pc->items[t], *name = fm__json_get(c, "name");
            names &= num(c, "class") == t && name && name->type == FM__JSON_STRING &&
                     !strcmp(name->string, fm_class_names[t]);
            const char *keys[] = {"precision", "recall", "accuracy"};
            for (int k = 0; k < 3; k++) ranges &= num(c, keys[k]) >= 0 && num(c, keys[k]) <= 1;
        }
        CHECK(shape && names && ranges);
        CHECK_MSG(total == 300, "confusion sums to %g", total);
        CHECK_NEAR(num(j, "accuracy"), diag / 300, 1e-9);
    }
    fm__json_free(j);

    /* the table: class names, the matrix, and the train / val splits */
    snprintf(args, sizeof args, "eval --weights '%s' --data '%s'", weights, data);
    rc = tu_run(args);
    out = tu_output("out.txt");
    CHECK(rc == 0 && strstr(out, "accuracy:") && strstr(out, "confusion matrix") &&
          strstr(out, "9 Ankle boot") && strstr(out, "0 T-shirt/top"));
    snprintf(args, sizeof args, "eval --weights '%s' --data '%s' --split val --json", weights,
             data);
    rc = tu_run(args);
    j = fm__json_parse(tu_output("out.txt"), strlen(tu_output("out.txt")), 0, &err);
    CHECK(rc == 0 && j && num(j, "count") == 100);
    fm__json_free(j);
    snprintf(args, sizeof args, "eval --weights '%s' --data '%s' --split train --json", weights,
             data);
    rc = tu_run(args);
    j = fm__json_parse(tu_output("out.txt"), strlen(tu_output("out.txt")), 0, &err);
    CHECK(rc == 0 && j && num(j, "count") == 400);
    fm__json_free(j);

    /* predict: a 28x28 grey PNG of test image 0 gets the class the library
     * gives the same pixels; a colour 56x56 one is converted, with a note */
    char png28[4200], png56[4200];
    snprintf(png28, sizeof png28, "%s", tu_path("test0.png"));
    snprintf(png56, sizeof png56, "%s", tu_path("test0-colour.png"));
    CHECK_MSG(fm_image_save_png(png28, test.pixels, 28, 28, &err) == 0, "%s", err.msg);
    write_rgb_png(png56, test.pixels);
    int expect = -1;
    fm_model *m = fm_model_load(weights, &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (m) {
        float probs[FM_NUM_CLASSES];
        fm_images one = {1, test.pixels, test.labels};
        if (fm_model_predict(m, &one, 0, 1, probs, &err) == 0) {
            expect = 0;
            for (int c = 1; c < FM_NUM_CLASSES; c++)
                if (probs[c] > probs[expect]) expect = c;
        }
        fm_model_free(m);
    }
    snprintf(args, sizeof args, "predict --weights '%s' '%s'", weights, png28);
    rc = tu_run(args);
    out = tu_output("out.txt");
    char want[4400];
    snprintf(want, sizeof want, "%s: %s\n", png28, expect >= 0 ? fm_class_names[expect] : "?");
    CHECK_MSG(rc == 0 && !strncmp(out, want, strlen(want)), "predict: exit %d:\n%s", rc, out);
    CHECK(tu_output("err.txt")[0] == 0); /* 28x28 grey: no note */

    snprintf(args, sizeof args, "predict --weights '%s' --json '%s' '%s'", weights, png28, png56);
    rc = tu_run(args);
    out = tu_output("out.txt");
    j = fm__json_parse(out, strlen(out), 0, &err);
    CHECK_MSG(rc == 0 && j, "predict --json: exit %d: %s", rc, out);
    const fm__json *preds = j ? fm__json_get(j, "predictions") : NULL;
    CHECK(preds && preds->type == FM__JSON_ARRAY && preds->n == 2);
    if (preds && preds->n == 2) {
        for (int i = 0; i < 2; i++) {
            const fm__json *p = &preds->items[i], *top = fm__json_get(p, "top3");
            const fm__json *name = fm__json_get(p, "name");
            int c = (int)num(p, "class");
            CHECK(c >= 0 && c < 10 && name && name->type == FM__JSON_STRING &&
                  !strcmp(name->string, fm_class_names[c]));
            CHECK(top && top->type == FM__JSON_ARRAY && top->n == 3);
            if (top && top->n == 3) {
                double p0 = num(&top->items[0], "probability");
                double p1 = num(&top->items[1], "probability");
                double p2 = num(&top->items[2], "probability");
                CHECK(num(&top->items[0], "class") == c);
                CHECK(p0 >= p1 && p1 >= p2 && p2 >= 0 && p0 + p1 + p2 <= 1.0 + 1e-6);
            }
        }
        CHECK(num(&preds->items[0], "class") == expect);
    }
    fm__json_free(j);
    const char *note = tu_output("err.txt");
    CHECK_MSG(strstr(note, "test0-colour.png: 56x56 colour converted to 28x28 grey") &&
                  !strstr(note, "test0.png:"),
              "stderr: %s", note);

    check_tta(weights, data, &small_test, png28, png56);
    check_classify(weights, &small_test);

    /* failures: exit 1 and one line for bad input, exit 2 for bad usage */
    char corrupt[4200], bad_png[4200];
    snprintf(corrupt, sizeof corrupt, "%s", tu_path("corrupt.safetensors"));
    snprintf(bad_png, sizeof bad_png, "%s", tu_path("not-an-image.png"));
    tu_write(corrupt, "\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": garbage", 21);
    tu_write(bad_png, "hello, I am text\n", 17);
    struct {
        const char *fmt;
        int status;
    } bad[] = {
        {"eval --weights '%s/missing.safetensors' --data '%s'", 1},
        {"eval --weights '%s/corrupt.safetensors' --data '%s'", 1},
        {"predict --weights '%s/missing.safetensors' '%s/test0.png'", 1},
        {"predict --weights '%s/run/model.safetensors' '%s/not-an-image.png'", 1},
        {"predict --weights '%s/run/model.safetensors' '%s/no-such.png'", 1},
        {"eval --weights '%s/run/model.safetensors' --data '%s' --split nope", 2},
        {"eval --bogus '%s' '%s'", 2},
        {"eval --data '%s' '%s'", 2},
        {"predict --weights '%s' --json '%s' --frobnicate", 2},
        {"predict --weights '%s/run/model.safetensors%s'", 2},
    };
    const char *base = tu_path("");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *second = strstr(bad[i].fmt, "--data") ? data : base;
        snprintf(args, sizeof args, bad[i].fmt, base, second);
        rc = tu_run(args);
        CHECK_MSG(rc == bad[i].status && one_line_error(), "%s: exit %d, stderr '%s'", args, rc,
                  tu_output("err.txt"));
    }
    CHECK(tu_run("eval --help") == 0 && strstr(tu_output("out.txt"), "usage: fmnist eval"));
    CHECK(tu_run("predict --help") == 0 && strstr(tu_output("out.txt"), "polarity"));

    fm_images_free(&train);
    fm_images_free(&test);
    return check_finish();
}
