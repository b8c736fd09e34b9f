/* Times every kernel op of the default network at its real shapes (batch 64
 * unless told) with one kernel table, and reports medians and fastest runs:
 * GFLOP/s for convs and dense layers, counted as direct convolution (2*MACs,
 * so Winograd shows as "effective" speed), GB/s moved for the memory-bound
 * ops, and the int8 forwards of the convs and dense layers in GOP/s beside
 * the float ones. The totals add up what one training step (forward, backward) and
 * one inference pass of the network call. Not a test: a tool for tuning.
 *
 * build: make build (the CMake target fmnist_kernel_bench, build/kernel_bench)
 * run:   build/kernel_bench [ref|portable|avx2|avx2-vnni|avx512|avx512-vnni|amx-int8 [batch [reps [threads [OP]]]]]
 *        e.g. build/kernel_bench avx512 64 9 1 (defaults: the table dispatch
 *        picks, batch 64, 7 runs, threads 0 = all cores, every op), or
 *        build/kernel_bench avx2 64 31 1 "128->128 14x14 backward w" for
 *        one op: on a noisy machine the fastest of many runs settles */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fmnist/fmnist.h"
#include "kernels/kernels.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU time of the whole process: with one thread on a shared machine, the
 * time the op actually ran, unaffected by waiting for a core. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *filled(size_t len, fm_rng *rng) {
    float *p = malloc(sizeof(float) * (len ? len : 1));
    for (size_t i = 0; i < len; i++) p[i] = fm_rng_uniform(rng) - 0.5f;
    return p;
}

static int reps = 7;
/* Only the ops whose label holds this text run (NULL: all), for timing one
 * op many times; the totals then add up only those. */
static const char *only;
static int wanted(const char *what) { return !only || strstr(what, only); }
static double total_fwd, total_train;

/* Median and fastest seconds of reps runs of op (after one warm-up run):
 * on a shared machine the fastest run is the best estimate of the kernel's
 * own speed, the median of what a user sees. */
static double fastest, fastest_cpu;
#define TIME(median, call)                                                                         \
    do {                                                                                           \
        double t_[64];                                                                             \
        if (!wanted(what)) {                                                                       \
            median = fastest = fastest_cpu = 0;                                                    \
            break;                                                                                 \
        }                                                                                          \
        call;                                                                                      \
        fastest_cpu = 1e30;                                                                        \
        for (int r_ = 0; r_ < reps; r_++) {                                                        \
            double t0_ = now(), c0_ = cpu_now();                                                   \
            call;                                                                                  \
            t_[r_] = now() - t0_;                                                                  \
            if (cpu_now() - c0_ < fastest_cpu) fastest_cpu = cpu_now() - c0_;                     \
        }                                                                                          \
        qsort(t_, reps, sizeof(double), cmp_double);                                               \
        median = t_[reps / 2];                                                                     \
        fastest = t_[0];                                                                           \
    } while (0)

static double total_fwd_min, total_train_min, total_fwd_cpu, total_train_cpu;

static void report(const char *what, double sec, double flops, int train_only) {
    if (!wanted(what)) return;
    printf("  %-34s %8.3f ms %7.1f GFLOP/s  (fastest %8.3f ms %7.1f GFLOP/s)\n", what, sec * 1e3,
           flops / sec * 1e-9, fastest * 1e3, flops / fastest * 1e-9);
    if (!train_only) total_fwd += sec, total_fwd_min += fastest, total_fwd_cpu += fastest_cpu;
    total_train += sec, total_train_min += fastest, total_train_cpu += fastest_cpu;
}

/* For the memory-bound ops: bytes read and written. */
static void report_bw(const char *what, double sec, double bytes, int train_only) {
    if (!wanted(what)) return;
    printf("  %-34s %8.3f ms %7.1f GB/s     (fastest %8.3f ms %7.1f GB/s)\n", what, sec * 1e3,
           bytes / sec * 1e-9, fastest * 1e3, bytes / fastest * 1e-9);
    if (!train_only) total_fwd += sec, total_fwd_min += fastest, total_fwd_cpu += fastest_cpu;
    total_train += sec, total_train_min += fastest, total_train_cpu += fastest_cpu;
}

/* The int8 layers (kernels.h's fm__qweights) beside the float forwards they
 * replace: effective GOP/s (2*MACs, as for the float ops), and totals of
 * their own, since an int8 model runs the float ops between them as before. */
static double total_q, total_q_min, total_f32_layers, total_f32_layers_min;

static void report_int8(const char *what, double sec, double ops) {
    if (!wanted(what)) return;
    printf("  %-34s %8.3f ms %7.1f GOP/s    (fastest %8.3f ms %7.1f GOP/s)\n", what, sec * 1e3,
           ops / sec * 1e-9, fastest * 1e3, ops / fastest * 1e-9);
    total_q += sec, total_q_min += fastest;
}

/* Random int8 weights for rows of row_len (no folded BatchNorm: it adds an
 * fma per input value); free with free_qweights. */
static fm__qweights filled_qweights(int rows, int row_len, int zp, fm_rng *rng) {
    int8_t *w = malloc((size_t)rows * row_len);
    int32_t *wsum = malloc(sizeof(int32_t) * rows);
    float *scale = malloc(sizeof(float) * rows), *bias = filled(rows, rng);
    for (int o = 0; o < rows; o++) {
        wsum[o] = 0;
        for (int j = 0; j < row_len; j++) {
            w[(size_t)o * row_len + j] = (int8_t)((int)fm_rng_below(rng, 2 * FM__QW_MAX + 1) - FM__QW_MAX);
            wsum[o] += w[(size_t)o * row_len + j];
        }
        scale[o] = 1e-4f;
    }
    return (fm__qweights){.w = w, .wsum = wsum, .scale = scale, .bias = bias, .in_scale = 1.0f / 255,
                          .zp = zp};
}

static void free_qweights(fm__qweights *q) {
    free((void *)q->w), free((void *)q->wsum), free((void *)q->scale), free((void *)q->bias);
}

static void bench_conv(const fm__kernels *k, int n, int c, int hw, int oc, int first, fm_rng *rng) {
    fm__conv_shape s = {.n = n, .c = c, .h = hw, .w = hw, .oc = oc, .oh = hw, .ow = hw, .k = 3,
                       .stride = 1, .pad_t = 1, .pad_l = 1};
    size_t nin = (size_t)n * c * hw * hw, nout = (size_t)n * oc * hw * hw, nw = (size_t)oc * c * 9;
    float *in = filled(nin, rng), *w = filled(nw, rng), *b = filled(oc, rng),
          *out = filled(nout, rng), *din = filled(nin, rng), *dw = filled(nw + oc, rng);
    float *ws = filled(k->conv2d_workspace(&s), rng);
    double flops = 2.0 * n * oc * c * 9 * hw * hw, t;
    char what[64];
    snprintf(what, sizeof what, "conv %3d->%3d %2dx%-2d forward", c, oc, hw, hw);
    TIME(t, k->conv2d_forward(out, in, w, b, &s, 1, ws));
    report(what, t, flops, 0);
    total_f32_layers += t, total_f32_layers_min += fastest;
    {
        fm__qweights q = filled_qweights(oc, c * 9, first ? 0 : 128, rng);
        void *qws = malloc(k->qconv2d_workspace(&s));
        snprintf(what, sizeof what, "conv %3d->%3d %2dx%-2d forward int8", c, oc, hw, hw);
        TIME(t, k->qconv2d_forward(out, in, &q, &s, 1, qws));
        report_int8(what, t, flops);
        free(qws);
        free_qweights(&q);
    }
    if (!first) { /* the first layer's input needs no gradient */
        snprintf(what, sizeof what, "conv %3d->%3d %2dx%-2d backward data", c, oc, hw, hw);
        TIME(t, k->conv2d_backward_data(din, out, w, &s, ws));
        report(what, t, flops, 1);
    }
    snprintf(what, sizeof what, "conv %3d->%3d %2dx%-2d backward weights", c, oc, hw, hw);
    TIME(t, k->conv2d_backward_weights(dw, dw + nw, out, in, &s, ws));
    report(what, t, flops, 1);
    free(in), free(w), free(b), free(out), free(din), free(dw), free(ws);
}

static void bench_dense(const fm__kernels *k, int n, int in_dim, int out_dim, fm_rng *rng) {
    float *in = filled((size_t)n * in_dim, rng), *w = filled((size_t)in_dim * out_dim, rng),
          *b = filled(out_dim, rng), *out = filled((size_t)n * out_dim, rng),
          *din = filled((size_t)n * in_dim, rng), *dw = filled((size_t)in_dim * out_dim, rng);
    double flops = 2.0 * n * in_dim * out_dim, t;
    float *ws = malloc(sizeof(float) * (k->dense_workspace(n, in_dim, out_dim) + 1));
    char what[64];
    snprintf(what, sizeof what, "dense %4d->%3d forward", in_dim, out_dim);
    TIME(t, k->dense_forward(out, in, w, b, n, in_dim, out_dim, 1, ws));
    report(what, t, flops, 0);
    total_f32_layers += t, total_f32_layers_min += fastest;
    {
        fm__qweights q = filled_qweights(out_dim, in_dim, 128, rng);
        void *qws = malloc(k->qdense_workspace(n, in_dim, out_dim));
        snprintf(what, sizeof what, "dense %4d->%3d forward int8", in_dim, out_dim);
        TIME(t, k->qdense_forward(out, in, &q, n, in_dim, out_dim, 1, qws));
        report_int8(what, t, flops);
        free(qws);
        free_qweights(&q);
    }
    snprintf(what, sizeof what, "dense %4d->%3d backward data", in_dim, out_dim);
    TIME(t, k->dense_backward_data(din, out, w, n, in_dim, out_dim, ws));
    report(what, t, flops, 1);
    snprintf(what, sizeof what, "dense %4d->%3d backward weights", in_dim, out_dim);
    TIME(t, k->dense_backward_weights(dw, b, out, in, n, in_dim, out_dim, ws));
    report(what, t, flops, 1);
    free(in), free(w), free(b), free(out), free(din), free(dw), free(ws);
}

/* Batch norm (after conv1 and conv3, so on (n, c, hw)), in training and inference. */
static void bench_batchnorm(const fm__kernels *k, int n, int c, int hw, fm_rng *rng) {
    size_t len = (size_t)n * c * hw;
    float *x = filled(len, rng), *y = filled(len, rng), *d = filled(len, rng), *p = filled(8 * c, rng);
    for (int i = 0; i < c; i++) p[5 * c + i] = 0.5f + p[5 * c + i]; /* a positive variance */
    double t, b = 4.0 * len;
    char what[64];
    snprintf(what, sizeof what, "batchnorm %3dx%-3d train", c, hw);
    TIME(t, k->batchnorm_forward_train(y, p, p + c, p + 2 * c, x, p + 3 * c, p + 4 * c, n, c, hw, 1e-3f));
    report_bw(what, t, 2 * b, 1);
    snprintf(what, sizeof what, "batchnorm %3dx%-3d inference", c, hw);
    TIME(t, k->batchnorm_forward_infer(y, x, p + 3 * c, p + 4 * c, p, p + 5 * c, n, c, hw, 1e-3f));
    report_bw(what, t, 2 * b, 0);
    total_train -= t, total_train_min -= fastest, total_train_cpu -= fastest_cpu; /* inference only */
    snprintf(what, sizeof what, "batchnorm %3dx%-3d backward", c, hw);
    TIME(t, k->batchnorm_backward(d, p + 6 * c, p + 7 * c, y, x, p, p + 2 * c, p + 3 * c, n, c, hw));
    report_bw(what, t, 3 * b, 1);
    free(x), free(y), free(d), free(p);
}

/* The ReLU gradients of the two convs of a stage, the 2x2 max pooling and
 * the dropout after it. */
static void bench_pool(const fm__kernels *k, int n, int c, int hw, fm_rng *rng) {
    size_t len = (size_t)n * c * hw * hw, olen = len / 4;
    float *x = filled(len, rng), *d = filled(len, rng), *o = filled(olen, rng);
    uint8_t *am = malloc(olen), *mask = malloc(olen);
    for (size_t i = 0; i < olen; i++) mask[i] = fm_rng_uniform(rng) < 0.75f;
    double t, b = 4.0 * len;
    char what[64];
    snprintf(what, sizeof what, "relu backward %3dx%dx%d (x2)", c, hw, hw);
    TIME(t, k->relu_backward(d, d, x, len));
    report_bw(what, t, 3 * b, 1);
    total_train += t, total_train_min += fastest, total_train_cpu += fastest_cpu; /* two convs */
    snprintf(what, sizeof what, "maxpool %3dx%dx%d", c, hw, hw);
    TIME(t, k->maxpool_forward(o, am, x, n, c, hw, hw, 2));
    report_bw(what, t, 1.3125 * b, 0);
    snprintf(what, sizeof what, "maxpool %3dx%dx%d backward", c, hw, hw);
    TIME(t, k->maxpool_backward(d, o, am, n, c, hw, hw, 2));
    report_bw(what, t, 1.3125 * b, 1);
    snprintf(what, sizeof what, "dropout %3dx%dx%d (and backward)", c, hw / 2, hw / 2);
    TIME(t, k->dropout_apply(o, o, mask, 1.0f / 0.75f, olen));
    report_bw(what, t, 0.5625 * b, 1);
    total_train += t, total_train_min += fastest, total_train_cpu += fastest_cpu; /* and backward */
    free(x), free(d), free(o), free(am), free(mask);
}

static void usage(FILE *f, const char *argv0) {
    fprintf(f, "usage: %s [ref|portable|avx2|avx2-vnni|avx512|avx512-vnni|amx-int8 [batch [reps 1..64 [threads [OP]]]]]\n"
               "  OP: time only the ops whose label contains this text\n", argv0);
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : NULL;
    if (name && (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)) {
        usage(stdout, argv[0]);
        return 0;
    }
    int n = argc > 2 ? atoi(argv[2]) : 64;
    reps = argc > 3 ? atoi(argv[3]) : 7;
    int threads = argc > 4 ? atoi(argv[4]) : 0;
    only = argc > 5 ? argv[5] : NULL;
    if ((name && !fm__kernels_known(name)) || reps < 1 || reps > 64 || n < 1) {
        usage(stderr, argv[0]);
        return 2;
    }
    const fm__kernels *k = name ? fm__kernels_by_name(name) : fm__kernels_select();
    if (!k) {
        fprintf(stderr, "kernel table %s is not available on this CPU\n", name);
        return 1;
    }
    fm_set_threads(threads);
    fm_rng rng;
    fm_rng_seed(&rng, 1);
    printf("%s kernels, batch %d, median of %d, threads %d\n", k->name, n, reps, threads);
    bench_conv(k, n, 1, 28, 64, 1, &rng);
    bench_conv(k, n, 64, 28, 64, 0, &rng);
    bench_conv(k, n, 64, 14, 128, 0, &rng);
    bench_conv(k, n, 128, 14, 128, 0, &rng);
    bench_dense(k, n, 6272, 256, &rng);
    bench_dense(k, n, 256, 10, &rng);
    bench_batchnorm(k, n, 64, 784, &rng);
    bench_batchnorm(k, n, 128, 196, &rng);
    bench_pool(k, n, 64, 28, &rng);
    bench_pool(k, n, 128, 14, &rng);
    printf("  all ops: inference %.2f ms (%.0f img/s), training step %.2f ms (%.0f img/s)\n",
           total_fwd * 1e3, n / total_fwd, total_train * 1e3, n / total_train);
    printf("  fastest runs: inference %.2f ms (%.0f img/s), training step %.2f ms (%.0f img/s)\n",
           total_fwd_min * 1e3, n / total_fwd_min, total_train_min * 1e3, n / total_train_min);
    printf("  least CPU time (all threads): inference %.2f ms, training step %.2f ms\n",
           total_fwd_cpu * 1e3, total_train_cpu * 1e3);
    printf("  conv and dense forwards: fp32 %.2f ms (fastest %.2f), int8 %.2f ms (fastest %.2f)\n",
           total_f32_layers * 1e3, total_f32_layers_min * 1e3, total_q * 1e3, total_q_min * 1e3);
    return 0;
}
