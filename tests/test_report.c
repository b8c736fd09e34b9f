/* The report's pieces: base64, in-memory PNG, HTML escaping, tick choice,
 * SVG charts and heat map, log.csv reading with its errors, and
 * fm_report_write on small run folders built here (tiny model, tiny data),
 * its test loss being fm_model_evaluate's. */
#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/png.h"
#include "check.h"
#include "fmnist/fmnist.h"
#include "model/model.h"
#include "report/report.h"

static char tmp_root[1024];

/* ---- helpers ------------------------------------------------------------- */

typedef struct {
    char *text;
    size_t len;
    FILE *f;
} capture;

static FILE *cap_open(capture *c) {
    c->text = NULL;
    c->len = 0;
    c->f = open_memstream(&c->text, &c->len);
    return c->f;
}

static char *cap_close(capture *c) {
    fclose(c->f);
    return c->text;
}

static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static const char *tmp_path(char *buf, const char *name) {
    snprintf(buf, 1200, "%s/%s", tmp_root, name);
    return buf;
}

static void make_dir(const char *path) {
    if (mkdir(path, 0755) && errno != EEXIST) {
        fprintf(stderr, "cannot create %s\n", path);
        exit(1);
    }
}

/* A run folder emptied of what earlier runs of this test left in it. */
static void fresh_run_dir(const char *dir) {
    static const char *const names[] = {"log.csv",           "run.json",    "model.safetensors",
                                        "best.safetensors",  "report.html", "report.html.tmp"};
    make_dir(dir);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[1300];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        remove(path);
    }
}

/* ---- encodings ----------------------------------------------------------- */

static void test_base64(void) {
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        capture c;
        fm__base64_write(cap_open(&c), (const uint8_t *)in[i], strlen(in[i]));
        char *s = cap_close(&c);
        CHECK_MSG(!strcmp(s, want[i]), "base64('%s') = '%s', want '%s'", in[i], s, want[i]);
        free(s);
    }
    /* all byte values: 0xff 0xfe 0xfd -> "//79" */
    const uint8_t hi[3] = {0xff, 0xfe, 0xfd};
    capture c;
    fm__base64_write(cap_open(&c), hi, 3);
    char *s = cap_close(&c);
    CHECK(!strcmp(s, "//79"));
    free(s);
}

static void test_png(void) {
    uint8_t pix[FM_IMAGE_PIXELS];
    for (int i = 0; i < FM_IMAGE_PIXELS; i++) pix[i] = (uint8_t)(i * 7 + i / 28);
    uint8_t *png;
    size_t len;
    fm_err err;
    CHECK(fm__png_encode_grey(pix, 28, 28, &png, &len, &err) == 0);
    CHECK(len > 8 && !memcmp(png, "\x89PNG\r\n\x1a\n", 8));

    /* decode it back and compare every pixel */
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    CHECK(png_image_begin_read_from_memory(&img, png, len));
    CHECK(img.width == 28 && img.height == 28);
    img.format = PNG_FORMAT_GRAY;
    uint8_t back[FM_IMAGE_PIXELS];
    CHECK(png_image_finish_read(&img, NULL, back, 28, NULL));
    CHECK(!memcmp(back, pix, sizeof pix));
    free(png);

    CHECK(fm__png_encode_grey(pix, 0, 28, &png, &len, &err) == -1);
    CHECK(strstr(err.msg, "bad size") != NULL);
}

static void test_escape(void) {
    capture c;
    fm__html_escape(cap_open(&c), "a<b>&\"c'");
    char *s = cap_close(&c);
    CHECK(!strcmp(s, "a&lt;b&gt;&amp;&quot;c&#39;"));
    free(s);
}

/* ---- charts -------------------------------------------------------------- */

static void test_ticks(void) {
    fm__ticks t = fm__nice_ticks(0.12, 0.68, 5, 0);
    CHECK_NEAR(t.step, 0.1, 1e-12);
    CHECK_NEAR(t.first, 0.1, 1e-12);
    CHECK(t.count == 7); /* 0.1 .. 0.7 */

    t = fm__nice_ticks(1, 67, 8, 1);
    CHECK_NEAR(t.step, 10, 1e-12);
    CHECK_NEAR(t.first, 0, 1e-12);
    CHECK(t.count == 8); /* 0 .. 70 */

    t = fm__nice_ticks(1, 3, 8, 1); /* epochs never step by fractions */
    CHECK_NEAR(t.step, 1, 1e-12);
    CHECK(t.first == 1 && t.count == 3);

    t = fm__nice_ticks(1, 1, 8, 1); /* one epoch: a range around it */
    CHECK(t.first < 1 && t.first + t.step * (t.count - 1) > 1);

    t = fm__nice_ticks(0.9, 0.9, 5, 0); /* constant values */
    CHECK(t.first < 0.9 && t.first + t.step * (t.count - 1) > 0.9);

    t = fm__nice_ticks(0.8123, 0.9641, 5, 0);
    CHECK_NEAR(t.step, 0.05, 1e-12);
    CHECK(t.first <= 0.8123 && t.first + t.step * (t.count - 1) >= 0.9641);
}

typedef struct {
    double x, y, w;
} label_box;

/* Marker labels: no two on one row may overlap. */
static int labels_overlap(const char *svg) {
    label_box box[64];
    int n = 0;
    for (const char *p = strstr(svg, "class=\"c-mark\""); p && n < 64;
         p = strstr(p + 1, "class=\"c-mark\"")) {
        const char *t = p;
        while (t > svg && strncmp(t, "<text", 5)) t--;
        double x, y;
        char anchor[8];
        if (sscanf(t, "<text x=\"%lf\" y=\"%lf\" text-anchor=\"%7[a-z]\"", &x, &y, anchor) != 3)
            return 1;
        const char *s = strchr(p, '>') + 1, *e = strstr(s, "</text>");
        double w = 0.6 * 11 * (double)(e - s);
        box[n++] = (label_box){!strcmp(anchor, "end") ? x - w : x, y, w};
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (box[i].y == box[j].y && box[i].x < box[j].x + box[j].w &&
                box[j].x < box[i].x + box[i].w)
                return 1;
    return 0;
}

static void test_chart(void) {
    double x[3] = {1, 2, 3}, a[3] = {0.5, 0.4, 0.3}, b[3] = {0.6, NAN, 0.35};
    fm__series s[2] = {{"train", "#0072B2", "7 4", a}, {"val <x>", "#D55E00", NULL, b}};
    fm__marker m[2] = {{2, "lr 5e-4", "#6b7280", "2 3"}, {3, "checkpoint 3", "#009E73", NULL}};
    fm__chart c = {"Loss", "Epoch", "Loss", 580, 340, 3, x, s, 2, m, 2, 0};
    capture cap;
    fm__svg_chart(cap_open(&cap), &c);
    char *svg = cap_close(&cap);
    CHECK(!strncmp(svg, "<svg", 4) && strstr(svg, "</svg>") != NULL);
    CHECK(count_of(svg, "<path") == 2);
    CHECK(count_of(svg, "<circle") == 5); /* the NAN point has no dot */
    CHECK(strstr(svg, "val &lt;x&gt;") != NULL && !strstr(svg, "val <x>"));
    CHECK(strstr(svg, ">lr 5e-4</text>") != NULL);
    CHECK(strstr(svg, ">checkpoint 3</text>") != NULL);
    CHECK(strstr(svg, ">Epoch</text>") != NULL);
    /* the gap: the validation path restarts with M after the missing value */
    const char *vp = strstr(svg, "stroke=\"#D55E00\"");
    CHECK(vp && count_of(vp, "M") >= 2);
    free(svg);

    /* percent axis */
    double acc[3] = {0.81, 0.9, 0.95};
    fm__series sa = {"train", "#0072B2", NULL, acc};
    fm__chart ca = {"Accuracy", "Epoch", "Accuracy", 580, 340, 3, x, &sa, 1, NULL, 0, 1};
    fm__svg_chart(cap_open(&cap), &ca);
    svg = cap_close(&cap);
    CHECK(strstr(svg, ">96%</text>") != NULL); /* 0.81..0.95 in steps of 2 % */
    CHECK(strstr(svg, ">80%</text>") != NULL);
    free(svg);

    /* one epoch: a visible dot, no division by zero */
    fm__chart c1 = {"Loss", "Epoch", "Loss", 580, 340, 1, x, s, 1, NULL, 0, 0};
    fm__svg_chart(cap_open(&cap), &c1);
    svg = cap_close(&cap);
    CHECK(count_of(svg, "<circle") == 1);
    CHECK(!strstr(svg, "nan") && !strstr(svg, "inf"));
    free(svg);

    /* 100 epochs: lines only, and crowded markers never overlap */
    double xs[100], ys[100];
    fm__marker many[12];
    char labels[12][32];
    for (int i = 0; i < 100; i++) xs[i] = i + 1, ys[i] = 1.0 / (i + 1);
    for (int i = 0; i < 12; i++) {
        snprintf(labels[i], sizeof labels[i], "lr %de-4", i + 1);
        many[i] = (fm__marker){40 + i, labels[i], "#6b7280", NULL};
    }
    fm__series s100 = {"train", "#0072B2", NULL, ys};
    fm__chart c100 = {"Loss", "Epoch", "Loss", 580, 340, 100, xs, &s100, 1, many, 12, 0};
    fm__svg_chart(cap_open(&cap), &c100);
    svg = cap_close(&cap);
    CHECK(count_of(svg, "<circle") == 0);
    CHECK(count_of(svg, "<title>lr ") == 12); /* every line keeps its tooltip */
    CHECK(count_of(svg, "class=\"c-mark\"") >= 4);
    CHECK(!labels_overlap(svg));
    CHECK(strstr(svg, ">100</text>") != NULL); /* x axis reaches the last epoch */
    free(svg);

    /* nothing finite to draw */
    double nan3[3] = {NAN, NAN, NAN};
    fm__series sn = {"train", "#0072B2", NULL, nan3};
    fm__chart cn = {"Loss", "Epoch", "Loss", 580, 340, 3, x, &sn, 1, NULL, 0, 0};
    fm__svg_chart(cap_open(&cap), &cn);
    svg = cap_close(&cap);
    CHECK(strstr(svg, "no values logged") != NULL);
    CHECK(!strstr(svg, "<path"));
    free(svg);
}

static void test_heat(void) {
    char c0[8], c1[8], prev[8];
    fm__heat_color(0, c0);
    fm__heat_color(1, c1);
    CHECK(!strcmp(c0, "#f7fbff"));
    CHECK(!strcmp(c1, "#08306b"));
    /* monotone: each step darker (sum of channels falls) */
    int monotone = 1, last = 3 * 256;
    for (int i = 0; i <= 100; i++) {
        fm__heat_color(i / 100.0, prev);
        unsigned r, g, b;
        sscanf(prev, "#%2x%2x%2x", &r, &g, &b);
        int sum = (int)(r + g + b);
        if (sum > last) monotone = 0;
        last = sum;
    }
    CHECK(monotone);

    uint32_t cm[FM_NUM_CLASSES][FM_NUM_CLASSES] = {{0}};
    for (int k = 0; k < FM_NUM_CLASSES; k++) cm[k][k] = 900 + (uint32_t)k;
    cm[6][0] = 123;
    capture cap;
    fm__svg_confusion(cap_open(&cap), cm);
    char *svg = cap_close(&cap);
    CHECK(count_of(svg, "<rect") == FM_NUM_CLASSES * FM_NUM_CLASSES + 1); /* cells + key */
    CHECK(strstr(svg, ">123</text>") != NULL && strstr(svg, ">909</text>") != NULL);
    CHECK(count_of(svg, ">Ankle boot</text>") == 2);
    CHECK(strstr(svg, "true Shirt, predicted T-shirt/top: 123") != NULL);
    CHECK(strstr(svg, ">Predicted class</text>") && strstr(svg, ">True class</text>"));
    free(svg);
}

/* ---- log.csv ------------------------------------------------------------- */

static void test_log(void) {
    char path[1200];
    fm__run_log log;
    fm_err err;
    tmp_path(path, "log_good.csv");
    /* reordered columns, an unknown one, CRLF, an empty validation field */
    write_text(path, "seconds,epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,extra\r\n"
                     "12.5,1,0.6,0.78,0.5,0.81,0.001,x\r\n"
                     "11.0,2,0.4,0.85,,0.86,0.0005,y\r\n");
    CHECK(fm__run_log_read(path, &log, &err) == 0);
    CHECK(log.n == 2);
    if (log.n == 2) {
        CHECK(log.rows[0].epoch == 1 && log.rows[1].epoch == 2);
        CHECK_NEAR(log.rows[0].seconds, 12.5, 1e-12);
        CHECK_NEAR(log.rows[1].learning_rate, 0.0005, 1e-12);
        CHECK(isnan(log.rows[1].val_loss));
        CHECK_NEAR(log.rows[1].val_accuracy, 0.86, 1e-12);
    }
    fm__run_log_free(&log);

    /* a header alone is a run with no epochs yet */
    tmp_path(path, "log_empty.csv");
    write_text(path, "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds\n");
    CHECK(fm__run_log_read(path, &log, &err) == 0 && log.n == 0);
    fm__run_log_free(&log);

    static const struct {
        const char *text, *want;
    } bad[] = {
        {"", "empty file"},
        {"loss,accuracy\n0.1,0.9\n", "no 'epoch' column"},
        {"epoch,loss\n1,0.5\n2,0.4,9\n", "line 3: 3 fields, the header has 2"},
        {"epoch,loss\n1,0.5\n2,abc\n", "line 3: loss: 'abc' is not a number"},
        {"epoch,loss\n1,0.5\n1,0.4\n", "line 3: epoch 1 does not follow epoch 1"},
        {"epoch,loss\n0,0.5\n", "line 2: epoch '0' is not a positive integer"},
        {"epoch,loss\n1.5,0.5\n", "line 2: epoch '1.5' is not a positive integer"},
        {"epoch,loss,loss\n1,0.5,0.5\n", "column 'loss' appears twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tmp_path(path, "log_bad.csv");
        write_text(path, bad[i].text);
        strcpy(err.msg, "");
        CHECK_MSG(fm__run_log_read(path, &log, &err) == -1, "case %zu accepted", i);
        CHECK_MSG(strstr(err.msg, bad[i].want) && strstr(err.msg, "log_bad.csv"),
                  "case %zu: got '%s', want '%s'", i, err.msg, bad[i].want);
        CHECK(log.rows == NULL && log.n == 0);
    }

    tmp_path(path, "no_such_log.csv");
    CHECK(fm__run_log_read(path, &log, &err) == -1);
    CHECK(strstr(err.msg, "no_such_log.csv: cannot open") != NULL);
}

/* ---- whole reports ------------------------------------------------------- */

static const char *const log_text =
    "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds\n"
    "1,0.90,0.70,0.70,0.75,0.001,2.0\n"
    "2,0.60,0.78,0.55,0.80,0.001,2.1\n"
    "3,0.50,0.82,0.52,0.83,0.001,2.0\n"
    "4,0.45,0.84,0.53,0.82,0.0005,1.9\n";

static const char *const tiny_cfg = "input 28 28 1\n"
                                    "conv filters=2 kernel=3 padding=same activation=relu\n"
                                    "maxpool 2\n"
                                    "flatten\n"
                                    "dense units=10 activation=softmax\n";

/* A data folder of 60 images with varied pixels (IDX). */
static void make_data(const char *dir) {
    fm_images imgs;
    fm_err err;
    if (fm_images_alloc(&imgs, 60, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    for (size_t i = 0; i < imgs.count; i++) {
        imgs.labels[i] = (uint8_t)(i % FM_NUM_CLASSES);
        for (int p = 0; p < FM_IMAGE_PIXELS; p++)
            imgs.pixels[i * FM_IMAGE_PIXELS + p] = (uint8_t)((p * (i + 3) + i * 31) % 251);
    }
    make_dir(dir);
    if (fm_data_write(dir, FM_FORMAT_IDX, &imgs, &imgs, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    fm_images_free(&imgs);
}

static void make_model(const char *path) {
    fm_err err;
    fm_model *m = fm_model_parse(tiny_cfg, "tiny.cfg", &err);
    if (!m) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    fm_rng rng;
    fm_rng_seed(&rng, 7);
    fm_model_init(m, &rng);
    if (fm_model_save(m, path, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    fm_model_free(m);
}

static void test_report_errors(const char *data) {
    char run[1200], path[1300], out[1300];
    fm_err err;

    tmp_path(run, "no_such_run");
    CHECK(fm_report_write(run, data, NULL, &err) == -1);
    CHECK(strstr(err.msg, "no_such_run: no such run folder") != NULL);

    tmp_path(run, "run_nolog");
    fresh_run_dir(run);
    CHECK(fm_report_write(run, data, NULL, &err) == -1);
    CHECK(strstr(err.msg, "run_nolog/log.csv: cannot open") != NULL);

    /* a malformed row names the file and line, and no page is left behind */
    snprintf(path, sizeof path, "%s/log.csv", run);
    write_text(path, "epoch,loss\n1,0.5\n2,x\n");
    CHECK(fm_report_write(run, data, NULL, &err) == -1);
    CHECK(strstr(err.msg, "log.csv: line 3") != NULL);
    snprintf(out, sizeof out, "%s/report.html", run);
    struct stat st;
    CHECK(stat(out, &st) != 0);

    /* a present but broken run.json or model is an error, not a silent omission */
    write_text(path, log_text);
    snprintf(path, sizeof path, "%s/run.json", run);
    write_text(path, "{\"config\": {\"seed\": 42,}}");
    CHECK(fm_report_write(run, data, NULL, &err) == -1);
    CHECK(strstr(err.msg, "run.json: byte") != NULL);
    remove(path);
    snprintf(path, sizeof path, "%s/model.safetensors", run);
    write_text(path, "not a model");
    CHECK(fm_report_write(run, data, NULL, &err) == -1);
    CHECK(strstr(err.msg, "model.safetensors") != NULL);
    remove(path);

    /* an explicit data folder that does not load is an error too */
    tmp_path(path, "no_such_data");
    CHECK(fm_report_write(run, path, NULL, &err) == -1);
    CHECK(strstr(err.msg, "no_such_data") != NULL);

    /* an unwritable output */
    tmp_path(out, "no_such_dir/report.html");
    CHECK(fm_report_write(run, data, out, &err) == -1);
    CHECK(strstr(err.msg, "cannot create") != NULL);
}

static void test_report_partial(const char *data) {
    char run[1200], path[1300];
    fm_err err;
    tmp_path(run, "run_partial");
    fresh_run_dir(run);
    snprintf(path, sizeof path, "%s/log.csv", run);
    write_text(path, log_text);
    /* no run.json, no model: curves and examples, and notes saying what is missing */
    CHECK(fm_report_write(run, data, NULL, &err) == 0);
    CHECK(strstr(err.msg, "no run.json") != NULL);
    CHECK(strstr(err.msg, "no model.safetensors or best.safetensors") != NULL);
    snprintf(path, sizeof path, "%s/report.html", run);
    char *html = read_text(path);
    CHECK(html != NULL);
    if (!html) return;
    CHECK(strstr(html, "Learning curves") != NULL);
    CHECK(strstr(html, "Test images by class") != NULL);
    CHECK(!strstr(html, "Most confident mistakes"));
    CHECK(strstr(html, "class=\"note\"") != NULL);
    CHECK(count_of(html, "<svg") == 2);
    /* markers from the log alone: checkpoint at 3 (best val_accuracy = best val_loss),
     * and the learning-rate change at epoch 4 */
    CHECK(strstr(html, "checkpoint = restored 3") != NULL);
    CHECK(strstr(html, ">lr 5e-4</text>") != NULL);
    CHECK(strstr(html, "learning rate 1e-3 → 5e-4, reduced at epoch 4<") != NULL);
    free(html);
    snprintf(path, sizeof path, "%s/report.html.tmp", run);
    struct stat st;
    CHECK(stat(path, &st) != 0);
}

static void test_report_full(const char *data) {
    char run[1200], path[1300], out[1300];
    fm_err err;
    tmp_path(run, "run_full");
    fresh_run_dir(run);
    snprintf(path, sizeof path, "%s/log.csv", run);
    write_text(path, log_text);
    snprintf(path, sizeof path, "%s/run.json", run);
    write_text(path, "{\"config\": {\"model\": \"tiny<cfg>\", \"seed\": 42, \"epochs_max\": 50,"
                     " \"augment\": true},\n \"results\": {\"epochs_run\": 4, \"best_epoch\": 2,"
                     " \"restored_epoch\": 3, \"stopped_early\": true, \"train_seconds\": 8.0,"
                     " \"val_accuracy\": 0.82}}\n");
    snprintf(path, sizeof path, "%s/model.safetensors", run);
    make_model(path);
    tmp_path(out, "full_report.html");
    CHECK(fm_report_write(run, data, out, &err) == 0);
    CHECK_MSG(err.msg[0] == 0, "unexpected note: %s", err.msg);
    char *html = read_text(out);
    CHECK(html != NULL);
    if (!html) return;
    CHECK(!strncmp(html, "<!doctype html>", 15));
    CHECK(strstr(html, "</html>\n") != NULL);
    /* self-contained: no scripts, no fetched resources */
    CHECK(!strstr(html, "<script"));
    CHECK(!strstr(html, "<link"));
    CHECK(!strstr(html, "src=\"http") && !strstr(html, "url(http") && !strstr(html, "@import"));
    /* every section */
    CHECK(strstr(html, "Learning curves") && strstr(html, "Test set") &&
          strstr(html, "Most confident mistakes") && strstr(html, "Test images by class") &&
          strstr(html, ">Run</h2>") && strstr(html, ">Model</h2>"));
    CHECK(strstr(html, "on 60 test images") != NULL);
    CHECK(count_of(html, "<svg") == 3);
    /* 6 examples per class (60 images) plus up to 20 mistakes, all PNG data URIs */
    int imgs = count_of(html, "<img "), uris = count_of(html, "src=\"data:image/png;base64,iVBORw0KGgo");
    CHECK(imgs == uris && imgs >= 60 && imgs <= 80);
    /* run.json: values escaped, best/restored epochs taken from it */
    CHECK(strstr(html, "tiny&lt;cfg&gt;") != NULL && !strstr(html, "tiny<cfg>"));
    CHECK(strstr(html, ">checkpoint 2</text>") && strstr(html, ">restored 3</text>"));
    CHECK(strstr(html, "stopped early") != NULL);
    CHECK(strstr(html, "82.00%") != NULL);
    /* the model summary made it in */
    CHECK(strstr(html, "conv2d") != NULL);
    CHECK(strstr(html, "filters=2") != NULL);
    free(html);

    /* in progress: only the checkpoint exists, and it is used and said so */
    char best[1300];
    snprintf(path, sizeof path, "%s/model.safetensors", run);
    snprintf(best, sizeof best, "%s/best.safetensors", run);
    CHECK(rename(path, best) == 0);
    CHECK(fm_report_write(run, data, out, &err) == 0);
    CHECK(strstr(err.msg, "best.safetensors") != NULL);
    html = read_text(out);
    CHECK(html && strstr(html, "Most confident mistakes"));
    free(html);
}

/* The report's test loss is fm_model_evaluate's (what fmnist eval prints)
 * for the same model and images. The model is made overconfident, so that
 * some true classes get probabilities far below 1e-7: a loss of clipped
 * probabilities (Keras's metric, the report's before) would show otherwise. */
static void test_report_loss(const char *data) {
    char run[1200], path[1300], out[1300];
    fm_err err;
    tmp_path(run, "run_loss");
    fresh_run_dir(run);
    snprintf(path, sizeof path, "%s/log.csv", run);
    write_text(path, log_text);
    fm_model *m = fm_model_parse(tiny_cfg, "tiny.cfg", &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m) return;
    fm_rng rng;
    fm_rng_seed(&rng, 7);
    fm_model_init(m, &rng);
    const fm__layer *dense = &m->layers[m->n_layers - 1];
    for (size_t i = 0; i < dense->t[0].len; i++) dense->t[0].data[i] *= 30.0f;
    snprintf(path, sizeof path, "%s/model.safetensors", run);
    CHECK_MSG(fm_model_save(m, path, &err) == 0, "%s", err.msg);

    fm_images test;
    fm_eval_result ev;
    CHECK_MSG(fm_data_load(data, FM_SET_TEST, &test, &err) == 0, "%s", err.msg);
    CHECK_MSG(fm_model_evaluate(m, &test, &ev, &err) == 0, "%s", err.msg);
    float *probs = malloc(test.count * FM_NUM_CLASSES * sizeof *probs);
    CHECK(probs && fm_model_predict(m, &test, 0, test.count, probs, &err) == 0);
    double clipped = 0;
    for (size_t i = 0; probs && i < test.count; i++)
        clipped -= log(fmax(probs[i * FM_NUM_CLASSES + test.labels[i]], 1e-7));
    clipped /= (double)test.count;
    char tile[64], section[64], other[64];
    snprintf(tile, sizeof tile, "loss %.4f on 60 images", ev.loss);
    snprintf(section, sizeof section, "), loss %.4f.", ev.loss);
    snprintf(other, sizeof other, "loss %.4f on 60 images", clipped);
    CHECK_MSG(strcmp(tile, other) != 0, "clipping would not show: %s", tile);

    tmp_path(out, "loss_report.html");
    CHECK_MSG(fm_report_write(run, data, out, &err) == 0, "%s", err.msg);
    char *html = read_text(out);
    CHECK(html != NULL);
    CHECK_MSG(html && strstr(html, tile) && strstr(html, section), "want \"%s\" and \"%s\"",
              tile, section);
    free(html);
    free(probs);
    fm_images_free(&test);
    fm_model_free(m);
}

/* A model file with flip test-time augmentation: the page's test figures
 * are fm_model_evaluate's with it, and say so; with use_tta 0 they are the
 * plain model's, and the page says the file's record was set aside. */
static void test_report_tta(const char *data) {
    char run[1200], path[1300], out[1300];
    fm_err err;
    tmp_path(run, "run_tta");
    fresh_run_dir(run);
    snprintf(path, sizeof path, "%s/log.csv", run);
    write_text(path, log_text);
    fm_model *m = fm_model_parse(tiny_cfg, "tiny.cfg", &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m) return;
    fm_rng rng;
    fm_rng_seed(&rng, 9);
    fm_model_init(m, &rng);
    fm_images test;
    fm_eval_result plain, flip;
    CHECK_MSG(fm_data_load(data, FM_SET_TEST, &test, &err) == 0, "%s", err.msg);
    CHECK(fm_model_evaluate(m, &test, &plain, &err) == 0);
    CHECK(fm_model_set_tta(m, FM_TTA_FLIP, &err) == 0);
    CHECK(fm_model_evaluate(m, &test, &flip, &err) == 0);
    snprintf(path, sizeof path, "%s/model.safetensors", run);
    CHECK_MSG(fm_model_save(m, path, &err) == 0, "%s", err.msg);
    char with[96], without[96];
    snprintf(with, sizeof with, "loss %.4f on 60 images (flip TTA)", flip.loss);
    snprintf(without, sizeof without, "loss %.4f on 60 images<", plain.loss);
    CHECK_MSG(strncmp(with, without, 16), "flip does not show in the loss: %s", with);

    tmp_path(out, "tta_report.html");
    CHECK_MSG(fm_report_write(run, data, out, &err) == 0, "%s", err.msg);
    char *html = read_text(out);
    CHECK_MSG(html && strstr(html, with) && strstr(html, "Test-time augmentation: flip"),
              "want \"%s\"", with);
    free(html);
    CHECK_MSG(fm_report_write_tta(run, data, out, 0, &err) == 0, "%s", err.msg);
    html = read_text(out);
    CHECK_MSG(html && strstr(html, without) &&
                  strstr(html, "Without test-time augmentation (turned off; the model file "
                               "records flip)") &&
                  !strstr(html, "flip TTA"),
              "want \"%s\"", without);
    free(html);
    fm_images_free(&test);
    fm_model_free(m);
}

int main(void) {
    const char *t = getenv("FMNIST_TEST_TMP");
    snprintf(tmp_root, sizeof tmp_root, "%s/report", t ? t : "test-tmp");
    if (t) make_dir(t);
    make_dir(tmp_root);

    test_base64();
    test_png();
    test_escape();
    test_ticks();
    test_chart();
    test_heat();
    test_log();

    char data[1200];
    tmp_path(data, "data");
    make_data(data);
    test_report_errors(data);
    test_report_partial(data);
    test_report_full(data);
    test_report_loss(data);
    test_report_tta(data);
    return check_finish();
}
