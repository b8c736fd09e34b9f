/* fmnist data: load and validate both sets, then print where they came from,
 * the split sizes, the counts per class and the pixel statistics. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: fmnist data [--data DIR] [--val-split F] [--seed N]\n"
            "\n"
            "Loads and validates the training and test sets and prints the folder and its\n"
            "layout, the number of images per split (train/val/test) and per class, and\n"
            "the mean and standard deviation of the pixels (/255) of the training images.\n"
            "\n"
            "  --data DIR       data folder (default: ./DATA if it holds the CSVs, else\n"
            "                   " FM_DEBIAN_DATA_DIR ")\n"
            "  --val-split F    fraction of the training images held out (default 0.2)\n"
            "  --seed N         seed of the split (default 42)\n");
}

int fm_cmd_data(int argc, char **argv) {
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"val-split", required_argument, NULL, 'v'},
        {"seed", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    double val_split = 0.2;
    long seed = 42;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'v':
            if (fm_cli_double("--val-split", optarg, 0.0, 1.0, &val_split) < 0) return 2;
            break;
        case 's':
            if (fm_cli_long("--seed", optarg, 0, LONG_MAX, &seed) < 0) return 2;
            break;
        case 'h': usage(stdout); return 0;
        default: return fm_cli_getopt_error("data", c, argv, opts);
        }
    }
    if (optind < argc) {
        fm_cli_fail("data: unexpected argument '%s' (see fmnist data --help)", argv[optind]);
        return 2;
    }
    if (!(dir = fm_cli_data_dir(dir))) return 1;

    fm_err err;
    fm_data_format format;
    fm_data_files files[2];
    if (fm_data_detect(dir, &format, &err) < 0 ||
        fm_data_find_files(dir, format, FM_SET_TRAIN, &files[0], &err) < 0 ||
        fm_data_find_files(dir, format, FM_SET_TEST, &files[1], &err) < 0)
        return fm_cli_fail("%s", err.msg);
    fm_images all = {0}, test = {0}, train = {0}, val = {0};
    int rc = 0;
    if (fm_data_load(dir, FM_SET_TRAIN, &all, &err) < 0 ||
        fm_data_load(dir, FM_SET_TEST, &test, &err) < 0 ||
        fm_images_split(&all, val_split, (uint64_t)seed, &train, &val, &err) < 0) {
        rc = fm_cli_fail("%s", err.msg);
        goto done;
    }

    printf("folder: %s (%s layout)\n", dir, format == FM_FORMAT_CSV ? "CSV" : "IDX");
    for (int s = 0; s < 2; s++) {
        printf("  %-6s %s", s ? "test:" : "train:", files[s].images);
        if (files[s].labels[0]) printf(", %s", files[s].labels);
        printf("\n");
    }
    printf("images: %zu training = %zu train + %zu val (val-split %g, seed %ld); %zu test\n\n",
           all.count, train.count, val.count, val_split, seed, test.count);

    const fm_images *sets[4] = {&all, &train, &val, &test};
    size_t counts[4][FM_NUM_CLASSES] = {{0}};
    for (int s = 0; s < 4; s++)
        for (size_t i = 0; i < sets[s]->count; i++) counts[s][sets[s]->labels[i]]++;
    printf("%-16s %9s %9s %9s %9s\n", "class", "training", "train", "val", "test");
    for (int k = 0; k < FM_NUM_CLASSES; k++)
        printf("%d %-14s %9zu %9zu %9zu %9zu\n", k, fm_class_names[k], counts[0][k], counts[1][k],
               counts[2][k], counts[3][k]);
    printf("%-16s %9zu %9zu %9zu %9zu\n\n", "total", all.count, train.count, val.count, test.count);

    /* Exact statistics from a histogram of the byte values. */
    size_t hist[256] = {0};
    const size_t n = all.count * FM_IMAGE_PIXELS;
    for (size_t i = 0; i < n; i++) hist[all.pixels[i]]++;
    double sum = 0, sum2 = 0;
    for (int v = 0; v < 256; v++) {
        sum += (double)hist[v] * v;
        sum2 += (double)hist[v] * v * v;
    }
    double mean = sum / (double)n, var = sum2 / (double)n - mean * mean;
    printf("pixels/255 over the %zu training images: mean %.4f, std %.4f\n", all.count,
           mean / 255.0, sqrt(var > 0 ? var : 0) / 255.0);
done:
    fm_images_free(&all);
    fm_images_free(&test);
    fm_images_free(&train);
    fm_images_free(&val);
    return rc;
}
