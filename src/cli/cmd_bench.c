/* fmnist bench: training and inference speed of a network on synthetic
 * data (fm_bench_run), as a short report whose last two lines a script can
 * read: train_img_per_s=N and infer_img_per_s=N. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: fmnist bench [--model CFG] [--threads N] [--batch N] [--steps N]\n"
            "                    [--warmup N] [--infer-batch N] [--layers] [--int8]\n"
            "                    [--precision fp32|bf16|auto]\n"
            "\n"
            "Times training steps of the network (zero the gradients, forward with\n"
            "dropout, cross-entropy and backward, one Adam update: the trainer's own\n"
            "step, without augmentation), then inference batches (forward only, BatchNorm\n"
            "moving statistics), on random synthetic images. Each run is timed alone\n"
            "after a few untimed warm-up runs; the report gives medians (and the\n"
            "fastest run), and ends with two lines for scripts:\n"
            "  train_img_per_s=N   training images per second (batch / median step)\n"
            "  infer_img_per_s=N   inference images per second (batch / median batch)\n"
            "(and with --int8 a third, infer_int8_img_per_s=N).\n"
            "\n"
            "  --model CFG       a built-in network (fashion-cnn, fashion-cnn-bn) or a\n"
            "                    model description file (default " FM_CLI_DEFAULT_CFG ",\n"
            "                    else the built-in fashion-cnn)\n"
            "  --threads N       threads (default 0 = all cores)\n"
            "  --batch N         training batch (default 64)\n"
            "  --steps N         timed training steps, and as many inference batches\n"
            "                    (default 30)\n"
            "  --warmup N        untimed runs before each (default 3)\n"
            "  --infer-batch N   inference batch (default 500, as evaluation uses)\n"
            "  --layers          also time every layer: a table of forward and backward\n"
            "                    medians per training step and each layer's share\n"
            "  --int8            then quantize the trained network to int8 (as fmnist\n"
            "                    quantize does, calibrated on the synthetic images) and\n"
            "                    time its inference batches too\n");
}

static void print_layers(const fm_bench_result *r) {
    double sum = 0.0;
    printf("\nper layer, training step (medians):\n");
    printf("  %-22s %11s %11s %7s\n", "layer", "forward ms", "backward ms", "share");
    for (int i = 0; i < r->n_layers; i++) {
        const fm_bench_layer *l = &r->layers[i];
        double both = l->forward_s + l->backward_s;
        sum += both;
        printf("  %-22s %11.3f %11.3f %6.1f%%\n", l->name, 1e3 * l->forward_s,
               1e3 * l->backward_s, 100.0 * both / r->train_step_s);
    }
    sum += r->adam_s;
    printf("  %-22s %11s %11.3f %6.1f%%\n", "adam update", "", 1e3 * r->adam_s,
           100.0 * r->adam_s / r->train_step_s);
    /* What no layer owns: zeroing the gradients, the softmax and loss; also
     * the medians' not adding up exactly. */
    double rest = r->train_step_s - sum;
    printf("  %-22s %23.3f %6.1f%%\n", "rest (loss, zeroing)", 1e3 * rest,
           100.0 * rest / r->train_step_s);
}

int fm_cmd_bench(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},  {"threads", required_argument, NULL, 't'},
        {"batch", required_argument, NULL, 'b'},  {"steps", required_argument, NULL, 's'},
        {"warmup", required_argument, NULL, 'w'}, {"infer-batch", required_argument, NULL, 'i'},
        {"layers", no_argument, NULL, 'L'},       {"help", no_argument, NULL, 'h'},
        {"int8", no_argument, NULL, '8'},
        {"precision", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    fm_bench_params p = fm_bench_default_params();
    const char *cfg = NULL, *source;
    long v;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': cfg = optarg; break;
        case 'L': p.layers = 1; break;
        case '8': p.int8 = 1; break;
        case 'P': {
            int k = 0;
            while (fm_precision_name(k) && strcmp(optarg, fm_precision_name(k))) k++;
            if (!fm_precision_name(k)) {
                fm_cli_fail("bench: --precision '%s': expected fp32, bf16 or auto", optarg);
                return 2;
            }
            p.precision = k;
            break;
        }
        case 't':
            if (fm_cli_long("--threads", optarg, 0, 4096, &v) < 0) return 2;
            p.threads = (int)v;
            break;
        case 'b':
            if (fm_cli_long("--batch", optarg, 1, 65536, &v) < 0) return 2;
            p.batch = (int)v;
            break;
        case 's':
            if (fm_cli_long("--steps", optarg, 1, 100000, &v) < 0) return 2;
            p.steps = (int)v;
            break;
        case 'w':
            if (fm_cli_long("--warmup", optarg, 0, 100000, &v) < 0) return 2;
            p.warmup = (int)v;
            break;
        case 'i':
            if (fm_cli_long("--infer-batch", optarg, 1, 65536, &v) < 0) return 2;
            p.infer_batch = (int)v;
            break;
        case 'h': usage(stdout); return 0;
        default: return fm_cli_getopt_error("bench", c, argv, opts);
        }
    }
    if (optind < argc) {
        fm_cli_fail("bench: unexpected argument '%s' (see fmnist bench --help)", argv[optind]);
        return 2;
    }

    fm_err err;
    fm_model *model = fm_cli_load_model(cfg, &source, &err);
    if (!model) return fm_cli_fail("%s", err.msg);
    size_t trainable, total = fm_model_param_count(model, &trainable);
    fm_bench_result r;
    if (fm_bench_run(model, &p, &r, &err) < 0) {
        fm_model_free(model);
        return fm_cli_fail("%s", err.msg);
    }
    fm_model_free(model);

    printf("fmnist bench: %s, %zu parameters (%zu trainable), kernels %s, %d thread%s\n",
           source, total, trainable, fm_kernels_name(), r.threads, r.threads == 1 ? "" : "s");
    if (strcmp(r.train_kernels, fm_kernels_name()))
        printf("training products in %s on %s\n", fm_precision_name(p.precision), r.train_kernels);
    printf("synthetic data; %d warm-up run%s, then %d timed\n", p.warmup, p.warmup == 1 ? "" : "s",
           p.steps);
    printf("training  batch %4d: step median %9.3f ms (fastest %9.3f ms) %10.1f images/s\n",
           p.batch, 1e3 * r.train_step_s, 1e3 * r.train_step_min_s, r.train_img_per_s);
    printf("inference batch %4d: batch median %8.3f ms (fastest %9.3f ms) %10.1f images/s\n",
           p.infer_batch, 1e3 * r.infer_batch_s, 1e3 * r.infer_batch_min_s, r.infer_img_per_s);
    if (p.int8)
        printf("int8 infer batch %4d: batch median %8.3f ms (fastest %9.3f ms) %10.1f images/s\n",
               p.infer_batch, 1e3 * r.infer_int8_batch_s, 1e3 * r.infer_int8_batch_min_s,
               r.infer_int8_img_per_s);
    if (p.layers) print_layers(&r);
    printf("train_img_per_s=%.2f\ninfer_img_per_s=%.2f\n", r.train_img_per_s, r.infer_img_per_s);
    if (p.int8) printf("infer_int8_img_per_s=%.2f\n", r.infer_int8_img_per_s);
    fm_bench_result_free(&r);
    return 0;
}
