/* fmnist convert: write a data folder in the other layout (CSV <-> IDX). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: fmnist convert --to csv|idx SRC_DIR DST_DIR\n"
            "\n"
            "Loads both sets from SRC_DIR (either layout) and writes them into DST_DIR\n"
            "(created if missing) in the layout asked for:\n"
            "  csv  fashion-mnist_train.csv, fashion-mnist_test.csv (header, \\n line ends)\n"
            "  idx  train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,\n"
            "       t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz\n"
            "The pixels and labels are kept byte for byte.\n");
}

int fm_cmd_convert(int argc, char **argv) {
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *to = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 't': to = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return fm_cli_getopt_error("convert", c, argv, opts);
        }
    }
    fm_data_format format;
    if (!to) {
        fm_cli_fail("convert: --to csv|idx is required");
        return 2;
    }
    if (!strcmp(to, "csv")) format = FM_FORMAT_CSV;
    else if (!strcmp(to, "idx")) format = FM_FORMAT_IDX;
    else {
        fm_cli_fail("convert: --to: '%s' is not csv or idx", to);
        return 2;
    }
    if (argc - optind != 2) {
        fm_cli_fail("convert: expected SRC_DIR and DST_DIR, got %d argument%s (see fmnist convert --help)",
                    argc - optind, argc - optind == 1 ? "" : "s");
        return 2;
    }
    const char *src = argv[optind], *dst = argv[optind + 1];

    fm_err err;
    fm_images train = {0}, test = {0};
    int rc = 0;
    if (fm_data_load(src, FM_SET_TRAIN, &train, &err) < 0 ||
        fm_data_load(src, FM_SET_TEST, &test, &err) < 0 ||
        fm_data_write(dst, format, &train, &test, &err) < 0) {
        rc = fm_cli_fail("%s", err.msg);
    } else {
        fm_data_files files;
        for (int s = 0; s < 2; s++) {
            const fm_images *set = s ? &test : &train;
            if (fm_data_find_files(dst, format, s ? FM_SET_TEST : FM_SET_TRAIN, &files, &err) < 0) {
                rc = fm_cli_fail("%s", err.msg);
                break;
            }
            printf("wrote %s%s%s (%zu images)\n", files.images, files.labels[0] ? ", " : "",
                   files.labels, set->count);
        }
    }
    fm_images_free(&train);
    fm_images_free(&test);
    return rc;
}
