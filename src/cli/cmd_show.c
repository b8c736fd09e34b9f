/* fmnist show: a PNG of one image, or of a grid with ten examples per class
 * (one class per row, like the exploration notebook). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define GRID_N 10   /* examples per class */
#define GRID_GAP 2  /* grey pixels between cells, before scaling */
#define GRID_GREY 96

static void usage(FILE *out) {
    fprintf(out,
            "usage: fmnist show [--data DIR] [--set train|test] [--index N | --grid]\n"
            "                   [--scale S] [-o FILE]\n"
            "\n"
            "Writes a PNG of image N of a set, or (the default) a grid of the first %d\n"
            "images of each class, one class per row from 0 (T-shirt/top) to 9 (Ankle boot).\n"
            "\n"
            "  --data DIR     data folder (default: ./DATA if it holds the CSVs, else\n"
            "                 " FM_DEBIAN_DATA_DIR ")\n"
            "  --set SET      train (default) or test\n"
            "  --index N      one image, N counted from 0 in file order\n"
            "  --grid         ten examples per class\n"
            "  --scale S      pixels per image pixel (default 8 for one image, 2 for the grid)\n"
            "  -o FILE        output PNG (default show.png)\n",
            GRID_N);
}

/* Copies a 28x28 image into a w-wide canvas at (x0, y0). */
static void blit(uint8_t *canvas, int w, int x0, int y0, const uint8_t *img) {
    for (int y = 0; y < FM_IMAGE_ROWS; y++)
        memcpy(canvas + (size_t)(y0 + y) * w + x0, img + y * FM_IMAGE_COLS, FM_IMAGE_COLS);
}

int fm_cmd_show(int argc, char **argv) {
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"set", required_argument, NULL, 's'},
        {"index", required_argument, NULL, 'i'},
        {"grid", no_argument, NULL, 'g'},
        {"scale", required_argument, NULL, 'x'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *out = "show.png";
    fm_data_set set = FM_SET_TRAIN;
    long index = -1, scale = 0;
    int grid = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 's':
            if (!strcmp(optarg, "train")) set = FM_SET_TRAIN;
            else if (!strcmp(optarg, "test")) set = FM_SET_TEST;
            else {
                fm_cli_fail("show: --set: '%s' is not train or test", optarg);
                return 2;
            }
            break;
        case 'i':
            if (fm_cli_long("--index", optarg, 0, LONG_MAX, &index) < 0) return 2;
            break;
        case 'g': grid = 1; break;
        case 'x':
            if (fm_cli_long("--scale", optarg, 1, 64, &scale) < 0) return 2;
            break;
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return fm_cli_getopt_error("show", c, argv, opts);
        }
    }
    if (optind < argc) {
        fm_cli_fail("show: unexpected argument '%s' (see fmnist show --help)", argv[optind]);
        return 2;
    }
    if (grid && index >= 0) {
        fm_cli_fail("show: --index and --grid exclude each other");
        return 2;
    }
    grid = index < 0;
    if (!scale) scale = grid ? 2 : 8;
    if (!(dir = fm_cli_data_dir(dir))) return 1;

    fm_err err;
    fm_images imgs;
    if (fm_data_load(dir, set, &imgs, &err) < 0) return fm_cli_fail("%s", err.msg);
    const char *set_name = set == FM_SET_TRAIN ? "train" : "test";
    if (index >= 0 && (size_t)index >= imgs.count) {
        fm_cli_fail("show: --index: %ld is out of range [0, %zu] for the %s set", index,
                    imgs.count - 1, set_name);
        fm_images_free(&imgs);
        return 2;
    }

    /* Draw at 1:1, then enlarge by pixel repetition (no smoothing). */
    int w = FM_IMAGE_COLS, h = FM_IMAGE_ROWS;
    const int cell = FM_IMAGE_COLS + GRID_GAP;
    if (grid) {
        w = GRID_GAP + GRID_N * cell;
        h = GRID_GAP + FM_NUM_CLASSES * cell;
    }
    uint8_t *canvas = malloc((size_t)w * h);
    uint8_t *big = malloc((size_t)w * h * scale * scale);
    int rc = 0;
    if (!canvas || !big) {
        rc = fm_cli_fail("show: out of memory");
        goto done;
    }
    if (grid) {
        memset(canvas, GRID_GREY, (size_t)w * h);
        int filled[FM_NUM_CLASSES] = {0};
        for (size_t i = 0; i < imgs.count; i++) {
            int k = imgs.labels[i];
            if (filled[k] == GRID_N) continue;
            blit(canvas, w, GRID_GAP + filled[k] * cell, GRID_GAP + k * cell,
                 imgs.pixels + i * FM_IMAGE_PIXELS);
            filled[k]++;
        }
    } else {
        blit(canvas, w, 0, 0, imgs.pixels + (size_t)index * FM_IMAGE_PIXELS);
    }
    const int W = w * (int)scale, H = h * (int)scale;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) big[(size_t)y * W + x] = canvas[(size_t)(y / scale) * w + x / scale];
    if (fm_image_save_png(out, big, W, H, &err) < 0) {
        rc = fm_cli_fail("%s", err.msg);
        goto done;
    }
    if (grid) {
        printf("wrote %s (%dx%d): the first %d images of each class in the %s set of %s, one class "
               "per row:",
               out, W, H, GRID_N, set_name, dir);
        for (int k = 0; k < FM_NUM_CLASSES; k++) printf("%s %d %s", k ? "," : "", k, fm_class_names[k]);
        printf("\n");
    } else {
        int k = imgs.labels[index];
        printf("wrote %s (%dx%d): %s image %ld of %s, label %d (%s)\n", out, W, H, set_name, index,
               dir, k, fm_class_names[k]);
    }
done:
    free(canvas);
    free(big);
    fm_images_free(&imgs);
    return rc;
}
