/* The benchmark: fm_bench_run gives positive, finite, consistent timings
 * (fastest and median runs within the call's wall time, images/s = batch /
 * median), a per-layer table only when asked (zero for layers without work
 * of their own), works for any input shape and class count, trains the
 * model it is given every step it is asked for, refuses bad parameters;
 * and `fmnist bench` ends with the two machine-readable lines and rejects
 * bad flags with exit status 2. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "clitest.h"
#include "core/clock.h"
#include "model/model.h"

static const char *tiny_cfg = "input 28 28 1\n"
                              "conv filters=4 kernel=3 padding=same activation=relu\n"
                              "batchnorm\n"
                              "maxpool 2\n"
                              "dropout 0.25\n"
                              "flatten\n"
                              "dense units=10 activation=softmax\n";

static int positive(double x) { return isfinite(x) && x > 0.0; }

static fm_bench_params small_params(void) {
    fm_bench_params p = fm_bench_default_params();
    p.threads = 1;
    p.batch = 4;
    p.infer_batch = 8;
    p.steps = 3;
    p.warmup = 1;
    return p;
}

static void test_defaults(void) {
    fm_bench_params p = fm_bench_default_params();
    CHECK(p.threads == 0 && p.batch == 64 && p.infer_batch == 500);
    CHECK(p.steps >= 5 && p.warmup >= 1 && p.layers == 0);
}

/* Runs the benchmark with `warmup` untimed and `steps` timed steps and
 * returns a copy of the weights it leaves (NULL when it fails). */
static float *weights_after(fm_model *m, int warmup, int steps) {
    fm_bench_params p = small_params();
    p.warmup = warmup;
    p.steps = steps;
    fm_bench_result r;
    fm_err err;
    int rc = fm_bench_run(m, &p, &r, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    fm_bench_result_free(&r);
    float *w = rc ? NULL : malloc(m->n_params * sizeof *w);
    if (w) memcpy(w, m->params, m->n_params * sizeof *w);
    return w;
}

static int same(const float *a, const float *b, size_t n) {
    return a && b && !memcmp(a, b, n * sizeof *a);
}

static void test_run(void) {
    fm_err err;
    fm_model *m = fm_model_parse(tiny_cfg, "tiny.cfg", &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m) return;

    fm_bench_params p = small_params();
    fm_bench_result r;
    double t0 = fm__now();
    CHECK_MSG(fm_bench_run(m, &p, &r, &err) == 0, "%s", err.msg);
    double wall = fm__now() - t0;
    CHECK(r.threads >= 1);
    CHECK(positive(r.train_step_s) && positive(r.train_step_min_s));
    CHECK(positive(r.infer_batch_s) && positive(r.infer_batch_min_s));
    /* Timed runs are disjoint stretches of the call: all of them took at
     * least the fastest, at least half of them the median, so both sums fit
     * in the call's wall time (which seconds counted as milliseconds, or
     * fewer runs than asked, or medians of unset times, would break). */
    int half = (p.steps + 1) / 2;
    CHECK_MSG(p.steps * (r.train_step_min_s + r.infer_batch_min_s) <= wall, "min %g + %g, wall %g",
              r.train_step_min_s, r.infer_batch_min_s, wall);
    CHECK_MSG(half * (r.train_step_s + r.infer_batch_s) <= wall, "median %g + %g, wall %g",
              r.train_step_s, r.infer_batch_s, wall);
    /* the fastest, not some other run: with 3 real timings the slowest is
     * almost surely slower than the median */
    CHECK(r.train_step_min_s <= r.train_step_s && r.infer_batch_min_s <= r.infer_batch_s);
    CHECK_NEAR(r.train_img_per_s, p.batch / r.train_step_s, 1e-12);
    CHECK_NEAR(r.infer_img_per_s, p.infer_batch / r.infer_batch_s, 1e-12);
    /* the Adam update is part of every step */
    CHECK(positive(r.adam_s) && r.adam_s < r.train_step_s);
    CHECK(r.n_layers == 0 && r.layers == NULL);
    CHECK(m->layer_seconds == NULL);
    fm_bench_result_free(&r);

    /* one timed run: the fastest is the median */
    p.steps = 1;
    CHECK_MSG(fm_bench_run(m, &p, &r, &err) == 0, "%s", err.msg);
    CHECK(r.train_step_min_s == r.train_step_s && r.infer_batch_min_s == r.infer_batch_s);
    fm_bench_result_free(&r);

    /* It trained, every step: from its fixed initialisation the weights
     * depend on the number of steps alone (warm-up and timed ones are the
     * same step), and each step moves them. */
    float *w4 = weights_after(m, 1, 3), *again = weights_after(m, 2, 2);
    CHECK_MSG(same(w4, again, m->n_params), "4 steps, split 1+3 or 2+2, end apart");
    free(again);
    again = weights_after(m, 1, 4);
    CHECK_MSG(again && !same(w4, again, m->n_params), "a fifth (timed) step changed nothing");
    free(again);
    again = weights_after(m, 0, 3);
    CHECK_MSG(again && !same(w4, again, m->n_params), "the warm-up step changed nothing");
    free(again);
    int finite = w4 != NULL;
    for (size_t i = 0; w4 && i < m->n_params; i++) finite &= isfinite(w4[i]) != 0;
    CHECK(finite);
    free(w4);

    p = small_params();
    /* per layer: names as the model's, no time where a layer has no work */
    p.layers = 1;
    CHECK_MSG(fm_bench_run(m, &p, &r, &err) == 0, "%s", err.msg);
    CHECK(r.n_layers == m->n_layers && r.layers != NULL);
    if (r.layers && r.n_layers == 6) {
        const char *names[] = {"conv2d",  "batch_normalization", "max_pooling2d",
                               "dropout", "flatten",             "dense"};
        double sum = 0.0;
        for (int i = 0; i < 6; i++) {
            const fm_bench_layer *l = &r.layers[i];
            CHECK_MSG(!strcmp(l->name, names[i]), "layer %d: %s", i, l->name);
            CHECK(l->forward_s >= 0.0 && l->backward_s >= 0.0);
            sum += l->forward_s + l->backward_s;
        }
        CHECK(positive(r.layers[0].forward_s) && positive(r.layers[0].backward_s));
        CHECK(positive(r.layers[5].forward_s) && positive(r.layers[5].backward_s));
        CHECK(r.layers[4].forward_s == 0.0 && r.layers[4].backward_s == 0.0); /* flatten */
        CHECK(sum > 0.0);
    }
    CHECK(m->layer_seconds == NULL);
    fm_bench_result_free(&r);
    CHECK(r.layers == NULL && r.n_layers == 0);
    fm_model_free(m);
}

/* Nothing assumes Fashion-MNIST's shapes: 3-channel 12x12 input, 5 classes,
 * a training batch larger than the inference one. */
static void test_other_shapes(void) {
    fm_err err;
    fm_model *m = fm_model_parse("input 12 12 3\n"
                                 "conv filters=2 kernel=3 activation=relu\n"
                                 "flatten\n"
                                 "dense units=5\n"
                                 "softmax\n",
                                 "shapes.cfg", &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m) return;
    fm_bench_params p = small_params();
    p.batch = 16;
    p.infer_batch = 3;
    p.warmup = 0;
    p.steps = 2;
    p.layers = 1;
    fm_bench_result r;
    CHECK_MSG(fm_bench_run(m, &p, &r, &err) == 0, "%s", err.msg);
    CHECK(positive(r.train_img_per_s) && positive(r.infer_img_per_s));
    CHECK(r.n_layers == 4);
    fm_bench_result_free(&r);
    fm_model_free(m);
}

static void test_bad_params(void) {
    fm_err err;
    fm_model *m = fm_model_parse(tiny_cfg, "tiny.cfg", &err);
    if (!m) return;
    fm_bench_result r;
    struct {
        fm_bench_params p;
        const char *words;
    } bad[5];
    for (int i = 0; i < 5; i++) bad[i].p = small_params();
    bad[0].p.batch = 0, bad[0].words = "batch must be at least 1 (got 0)";
    bad[1].p.infer_batch = -2, bad[1].words = "inference batch must be at least 1 (got -2)";
    bad[2].p.steps = 0, bad[2].words = "steps must be at least 1";
    bad[3].p.warmup = -1, bad[3].words = "warm-up must be >= 0";
    bad[4].p.threads = -1, bad[4].words = "threads must be >= 0";
    for (int i = 0; i < 5; i++) {
        err.msg[0] = 0;
        CHECK(fm_bench_run(m, &bad[i].p, &r, &err) == -1);
        CHECK_MSG(strstr(err.msg, bad[i].words) && !strchr(err.msg, '\n'), "%d: %s", i, err.msg);
        CHECK(r.layers == NULL);
    }
    fm_model_free(m);
}

/* ---- the CLI ---------------------------------------------------------- */

/* "KEY=NUMBER\n" at line, with NUMBER the whole rest of the line; NAN if not. */
static double key_value(const char *line, const char *key) {
    size_t k = strlen(key);
    if (strncmp(line, key, k) || line[k] != '=') return NAN;
    char *end;
    double v = strtod(line + k + 1, &end);
    return end != line + k + 1 && *end == '\n' ? v : NAN;
}

/* Checks the last two lines of out.txt are the machine-readable ones. */
static void check_tail(void) {
    const char *out = tu_output("out.txt");
    size_t n = strlen(out);
    CHECK(n > 2 && out[n - 1] == '\n');
    if (n < 3) return;
    const char *p = out + n - 1; /* find the starts of the last two lines */
    while (p > out && p[-1] != '\n') p--;
    const char *last = p--;
    while (p > out && p[-1] != '\n') p--;
    double train = key_value(p, "train_img_per_s"), infer = key_value(last, "infer_img_per_s");
    CHECK_MSG(positive(train) && positive(infer), "tail:\n%s", p);
}

static void test_cli(void) {
    const char *bin = getenv("FMNIST_BIN");
    if (!bin || access(bin, X_OK)) {
        fprintf(stderr, "note: FMNIST_BIN not built, CLI checks not run\n");
        return;
    }
    tu_init("test_bench");
    char cfg[4400], args[9000];
    snprintf(cfg, sizeof cfg, "%s", tu_path("tiny.cfg"));
    tu_write(cfg, tiny_cfg, strlen(tiny_cfg));

    snprintf(args, sizeof args,
             "bench --model '%s' --steps 2 --batch 4 --warmup 1 --infer-batch 8 --threads 1", cfg);
    int rc = tu_run(args);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, tu_output("err.txt"));
    check_tail();
    const char *out = tu_output("out.txt");
    CHECK(strstr(out, "kernels ") && strstr(out, "1 thread") && strstr(out, "batch    4"));
    CHECK(!strstr(out, "forward ms"));

    snprintf(args, sizeof args, "bench --model '%s' --steps 2 --batch 4 --layers", cfg);
    rc = tu_run(args);
    CHECK_MSG(rc == 0, "--layers: exit %d: %s", rc, tu_output("err.txt"));
    check_tail();
    out = tu_output("out.txt");
    CHECK(strstr(out, "forward ms") && strstr(out, "batch_normalization") &&
          strstr(out, "adam update"));

    /* the default network, as bench/compare runs it (small) */
    const char *src = getenv("FMNIST_SOURCE_DIR");
    snprintf(args, sizeof args,
             "bench --model '%s/configs/fashion-cnn.cfg' --steps 2 --batch 4 --warmup 0 "
             "--infer-batch 4",
             src ? src : ".");
    rc = tu_run(args);
    CHECK_MSG(rc == 0, "default network: exit %d: %s", rc, tu_output("err.txt"));
    check_tail();

    CHECK(tu_run("bench --help") == 0 && strstr(tu_output("out.txt"), "usage: fmnist bench"));
    /* an FMNIST_KERNELS the dispatch cannot honour: a warning naming it and the
     * table used instead, and the run goes on; one it honours: no warning */
    snprintf(args, sizeof args, "bench --model '%s' --steps 1 --batch 2 --warmup 0 --infer-batch 2",
             cfg);
    setenv("FMNIST_KERNELS", "sse9", 1);
    rc = tu_run(args);
    const char *warned = tu_output("err.txt");
    CHECK_MSG(rc == 0 && strstr(warned, "FMNIST_KERNELS=sse9: no such kernel table") &&
                  strstr(warned, "using "),
              "exit %d: %s", rc, warned);
    setenv("FMNIST_KERNELS", "ref", 1);
    rc = tu_run(args);
    CHECK_MSG(rc == 0 && !strstr(tu_output("err.txt"), "FMNIST_KERNELS") &&
                  strstr(tu_output("out.txt"), "kernels ref"),
              "exit %d: %s", rc, tu_output("err.txt"));
    /* bf16 needs a table with bf16 ops: the reference has none */
    snprintf(args, sizeof args,
             "bench --model '%s' --steps 1 --batch 2 --warmup 0 --infer-batch 2 --precision bf16",
             cfg);
    rc = tu_run(args);
    CHECK_MSG(rc == 1 && strstr(tu_output("err.txt"), "precision bf16 needs a fast kernel table"),
              "exit %d: %s", rc, tu_output("err.txt"));
    unsetenv("FMNIST_KERNELS");
    /* on the automatic table it runs, and says which table the steps ran on */
    rc = tu_run(args);
    const char *bf = fm_kernels_train_name(FM_PRECISION_BF16);
    char line[128];
    snprintf(line, sizeof line, "training products in bf16 on %s", bf ? bf : "?");
    CHECK_MSG(rc == 0 && strstr(tu_output("out.txt"), line), "exit %d: %s%s", rc,
              tu_output("out.txt"), tu_output("err.txt"));
    /* bad flags: exit 2 and one line on stderr */
    const char *bad[] = {"--batch 0",    "--batch abc",        "--steps -1",  "--threads x",
                         "--infer-batch 0", "--warmup -1",     "--frobnicate", "--steps",
                         "extra",        "--precision fp16",   "--precision"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "bench --model '%s' %s", cfg, bad[i]);
        rc = tu_run(args);
        const char *e = tu_output("err.txt");
        const char *nl = strchr(e, '\n');
        CHECK_MSG(rc == 2 && !strncmp(e, "fmnist: ", 8) && nl && !nl[1], "%s: exit %d: %s",
                  bad[i], rc, e);
    }
    /* a missing model: exit 1, the file named */
    rc = tu_run("bench --model /nonexistent/net.cfg");
    CHECK_MSG(rc == 1 && strstr(tu_output("err.txt"), "/nonexistent/net.cfg"), "exit %d", rc);
}

int main(void) {
    test_defaults();
    test_run();
    test_other_shapes();
    test_bad_params();
    test_cli();
    return check_finish();
}
