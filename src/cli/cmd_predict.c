/* fmnist predict: classify the user's own pictures with a saved model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: fmnist predict --weights FILE [--invert] [--no-tta] [--json] IMAGE...\n"
            "\n"
            "Classifies PNG or PGM pictures and prints the class and the three most likely\n"
            "classes with their probabilities. A 28x28 grey picture is used as is; any other\n"
            "size or a colour picture is turned grey and resized to 28x28 (a note on stderr\n"
            "says so).\n"
            "\n"
            "Fashion-MNIST pictures are light garments on a black background, centred and\n"
            "filling the frame. Give pictures of the same polarity: a photo of a garment on\n"
            "a white background needs --invert (or inverting beforehand), or the answers\n"
            "mean little. Transparent parts of a PNG become background: black, or white\n"
            "before --invert turns them black.\n"
            "\n"
            "A model file that records test-time augmentation (flip: each picture and its\n"
            "left-right mirror, probabilities averaged) is run with it, unless --no-tta; a\n"
            "first line says so.\n"
            "\n"
            "  --weights FILE   model file (.safetensors written by fmnist train)\n"
            "  --invert         use 255 - v for every pixel (dark garment on light ground)\n"
            FM_CLI_NO_TTA_HELP
            "  --json           one JSON object {\"tta\": \"none\" or \"flip\", \"predictions\":\n"
            "                   [{image, class, name, top3: [{class, name, probability}]}]}\n");
}

/* Indices of the k largest of p[0..n), largest first (lower index on ties). */
static void top_k(const float *p, int n, int *idx, int k) {
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int t = 0; t < j; t++) taken |= idx[t] == i;
            if (!taken && (best < 0 || p[i] > p[best])) best = i;
        }
        idx[j] = best;
    }
}

int fm_cmd_predict(int argc, char **argv) {
    static const struct option opts[] = {
        {"weights", required_argument, NULL, 'w'},
        {"invert", no_argument, NULL, 'i'},
        {"json", no_argument, NULL, 'j'},
        {"no-tta", no_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *weights = NULL;
    int json = 0, invert = 0, no_tta = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'w': weights = optarg; break;
        case 'i': invert = 1; break;
        case 'j': json = 1; break;
        case 'T': no_tta = 1; break;
        case 'h': usage(stdout); return 0;
        default: return fm_cli_getopt_error("predict", c, argv, opts);
        }
    }
    if (!weights) {
        fm_cli_fail("predict: --weights FILE is required (see fmnist predict --help)");
        return 2;
    }
    if (optind >= argc) {
        fm_cli_fail("predict: no IMAGE given (see fmnist predict --help)");
        return 2;
    }

    fm_err err;
    int n = argc - optind;
    char **paths = argv + optind;
    fm_images imgs = {0};
    float *probs = NULL;
    fm_model *model = NULL;
    int rc = 1;
    if (!(model = fm_model_load(weights, &err)) || fm_images_alloc(&imgs, (size_t)n, &err) < 0)
        goto fail;
    const char *tta = fm_cli_tta_note(fm_cli_no_tta(model, no_tta), model);
    /* Read every picture before printing anything, so a bad one fails the run. */
    for (int i = 0; i < n; i++) {
        fm_image_info info;
        if (fm_image_load(paths[i], invert ? FM_IMAGE_INVERT : 0,
                          imgs.pixels + (size_t)i * FM_IMAGE_PIXELS, &info, &err) < 0)
            goto fail;
        if (info.width != FM_IMAGE_COLS || info.height != FM_IMAGE_ROWS || info.colour)
            fprintf(stderr, "fmnist: note: %s: %dx%d%s converted to 28x28 grey\n", paths[i],
                    info.width, info.height, info.colour ? " colour" : "");
        if (info.transparent)
            fprintf(stderr, "fmnist: note: %s: %zu transparent pixels put on %s\n", paths[i],
                    info.transparent, invert ? "white (black once inverted)" : "black");
    }
    if (!(probs = malloc((size_t)n * FM_NUM_CLASSES * sizeof *probs))) {
        fm_cli_fail("out of memory");
        goto done;
    }
    if (fm_model_predict(model, &imgs, 0, (size_t)n, probs, &err) < 0) goto fail;

    if (json) printf("{\"tta\": \"%s\", \"predictions\": [", fm_tta_name(fm_model_tta(model)));
    else if (tta) printf("test-time augmentation: %s\n", tta);
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * FM_NUM_CLASSES;
        int top[3];
        top_k(p, FM_NUM_CLASSES, top, 3);
        if (json) {
            printf("%s\n  {\"image\": ", i ? "," : "");
            fm_json_write_string(stdout, paths[i]);
            printf(", \"class\": %d, \"name\": ", top[0]);
            fm_json_write_string(stdout, fm_model_class_name(model, top[0]));
            printf(", \"top3\": [");
            for (int k = 0; k < 3; k++) {
                printf("%s{\"class\": %d, \"name\": ", k ? ", " : "", top[k]);
                fm_json_write_string(stdout, fm_model_class_name(model, top[k]));
                printf(", \"probability\": %.6g}", p[top[k]]);
            }
            printf("]}");
        } else {
            printf("%s: %s\n", paths[i], fm_model_class_name(model, top[0]));
            for (int k = 0; k < 3; k++)
                printf("  %-12s %6.2f%%\n", fm_model_class_name(model, top[k]), 100.0 * p[top[k]]);
        }
    }
    if (json) printf("\n]}\n");
    rc = 0;
    goto done;
fail:
    fm_cli_fail("%s", err.msg);
done:
    free(probs);
    fm_images_free(&imgs);
    fm_model_free(model);
    return rc;
}
