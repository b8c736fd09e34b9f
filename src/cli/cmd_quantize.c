/* fmnist quantize: a trained float model to an int8 model file
 * (fm_model_quantize), calibrated on training images, with the test
 * accuracy of both so the cost is seen at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: fmnist quantize --weights FILE [-o OUT] [--data DIR]\n"
            "                       [--calibration-images N] [--threads N] [--no-eval]\n"
            "\n"
            "Post-training quantization to int8: conv and dense layers get int8 weights\n"
            "(a scale per output) and uint8 inputs (a scale and zero point per layer,\n"
            "from the range each layer's input takes on calibration images: training\n"
            "images, never the test set), with int32 sums; a BatchNorm before such a\n"
            "layer is folded into the rounding of its input. The int8 model file runs\n"
            "wherever a model file does (eval, predict, report, the library), 4x smaller.\n"
            "Prints the test accuracy of the float model and of the int8 one.\n"
            "\n"
            "  --weights FILE           float model file (from fmnist train)\n"
            "  -o, --output OUT         int8 model file to write (default: FILE with\n"
            "                           .safetensors replaced by .int8.safetensors)\n"
            "  --data DIR               data folder (default: ./DATA if it holds the CSVs,\n"
            "                           else " FM_DEBIAN_DATA_DIR ")\n"
            "  --calibration-images N   training images to calibrate on, spread evenly\n"
            "                           over the set (default 2000)\n"
            "  --threads N              threads (default 0 = all cores)\n"
            "  --no-eval                skip the two test-set evaluations\n");
}

/* FILE.safetensors -> FILE.int8.safetensors; other names get .int8.safetensors added. */
static char *default_output(const char *weights) {
    static const char ext[] = ".safetensors";
    size_t n = strlen(weights), e = sizeof ext - 1;
    if (n > e && !strcmp(weights + n - e, ext)) n -= e;
    char *out = malloc(n + sizeof ".int8.safetensors");
    if (out) {
        memcpy(out, weights, n);
        strcpy(out + n, ".int8.safetensors");
    }
    return out;
}

static double file_mb(const char *path) {
    struct stat st;
    return stat(path, &st) ? 0.0 : (double)st.st_size / 1e6;
}

int fm_cmd_quantize(int argc, char **argv) {
    static const struct option opts[] = {
        {"weights", required_argument, NULL, 'w'},
        {"output", required_argument, NULL, 'o'},
        {"data", required_argument, NULL, 'd'},
        {"calibration-images", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"no-eval", no_argument, NULL, 'E'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *weights = NULL, *output = NULL, *dir = NULL;
    fm_quantize_params qp = fm_quantize_default_params();
    long v, threads = 0;
    int eval = 1, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'w': weights = optarg; break;
        case 'o': output = optarg; break;
        case 'd': dir = optarg; break;
        case 'E': eval = 0; break;
        case 'c':
            if (fm_cli_long("--calibration-images", optarg, 1, 1000000000, &v) < 0) return 2;
            qp.calibration_images = (size_t)v;
            break;
        case 't':
            if (fm_cli_long("--threads", optarg, 0, 4096, &threads) < 0) return 2;
            break;
        case 'h': usage(stdout); return 0;
        default: return fm_cli_getopt_error("quantize", c, argv, opts);
        }
    }
    if (optind < argc) {
        fm_cli_fail("quantize: unexpected argument '%s' (see fmnist quantize --help)",
                    argv[optind]);
        return 2;
    }
    if (!weights) {
        fm_cli_fail("quantize: --weights FILE is required (see fmnist quantize --help)");
        return 2;
    }
    char *own_output = output ? NULL : default_output(weights);
    if (!output && !(output = own_output)) return fm_cli_fail("quantize: out of memory");
    if (fm_same_file(output, weights)) {
        free(own_output);
        fm_cli_fail("quantize: -o %s would overwrite the float model it reads", output);
        return 2;
    }
    fm_set_threads((int)threads);

    fm_err err;
    fm_images train = {0}, test = {0};
    fm_eval_result fp32, int8;
    int rc = 1;
    fm_model *model = fm_model_load(weights, &err); /* before the data: a bad file says so first */
    if (!model) goto fail;
    if (!(dir = fm_cli_data_dir(dir))) goto done; /* it said why */
    if (!strcmp(fm_model_precision(model), "int8")) {
        fm_cli_fail("quantize: %s is an int8 model already", weights);
        goto done;
    }
    if (fm_data_load(dir, FM_SET_TRAIN, &train, &err) < 0) goto fail;
    if (eval && (fm_data_load(dir, FM_SET_TEST, &test, &err) < 0 ||
                 fm_model_evaluate(model, &test, &fp32, &err) < 0))
        goto fail;
    if (fm_model_quantize(model, &train, &qp, &err) < 0 ||
        (eval && fm_model_evaluate(model, &test, &int8, &err) < 0) ||
        fm_model_save(model, output, &err) < 0)
        goto fail;
    size_t n = qp.calibration_images < train.count ? qp.calibration_images : train.count;
    printf("weights:     %s (fp32, %.2f MB)\n", weights, file_mb(weights));
    printf("calibration: %zu training images from %s (input ranges: min and max)\n", n, dir);
    if (eval) {
        printf("test accuracy, %zu images%s:\n", test.count,
               fm_model_tta(model) == FM_TTA_FLIP ? " (flip TTA, as the model records)" : "");
        printf("  fp32 %.4f (%.2f%%)\n", fp32.accuracy, 100.0 * fp32.accuracy);
        printf("  int8 %.4f (%.2f%%), %+.2f points\n", int8.accuracy, 100.0 * int8.accuracy,
               100.0 * (int8.accuracy - fp32.accuracy));
    }
    printf("wrote %s (int8, %.2f MB)\n", output, file_mb(output));
    rc = 0;
    goto done;
fail:
    fm_cli_fail("%s", err.msg);
done:
    fm_model_free(model);
    fm_images_free(&train);
    fm_images_free(&test);
    free(own_output);
    return rc;
}
