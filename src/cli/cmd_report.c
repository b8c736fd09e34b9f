/* fmnist report: one self-contained HTML page about a training run. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out) {
    fputs("usage: fmnist report --run DIR [--data DIR] [-o FILE] [--threads N] [--no-tta]\n"
          "\n"
          "Writes one self-contained HTML page (inline SVG and images, no scripts or\n"
          "network) about a run folder written by `fmnist train`: learning curves with\n"
          "learning-rate changes and the checkpoint/restored epochs, the test confusion\n"
          "matrix with per-class precision and recall, the most confident mistakes,\n"
          "example images, and the run's configuration, model and timing.\n"
          "\n"
          "  --run DIR      the run folder (log.csv, run.json, model.safetensors)\n"
          "  --data DIR     data folder for the test set (default: ./DATA, else\n"
          "                 " FM_DEBIAN_DATA_DIR ")\n"
          "  -o, --out FILE the page to write (default: DIR/report.html)\n"
          "  --threads N    threads for the test evaluation (default 0 = all cores)\n"
          "  --no-tta       evaluate without the test-time augmentation the model file\n"
          "                 records (flip: each image and its mirror, averaged)\n",
          out);
}

int fm_cmd_report(int argc, char **argv) {
    const char *run = NULL, *data = NULL, *out = NULL, *threads = NULL;
    int no_tta = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--no-tta")) {
            no_tta = 1;
            continue;
        }
        const char **dst = !strcmp(argv[i], "--run")                            ? &run
                           : !strcmp(argv[i], "--data")                         ? &data
                           : !strcmp(argv[i], "-o") || !strcmp(argv[i], "--out") ? &out
                           : !strcmp(argv[i], "--threads")                      ? &threads
                                                                                : NULL;
        if (!dst) {
            fm_cli_fail("report: unknown option '%s'", argv[i]);
            usage(stderr);
            return 2;
        }
        if (i + 1 == argc) {
            fm_cli_fail("report: %s needs a value", argv[i]);
            return 2;
        }
        *dst = argv[++i];
    }
    if (!run) {
        fm_cli_fail("report: --run is required");
        usage(stderr);
        return 2;
    }
    long n_threads = 0;
    if (threads && fm_cli_long("--threads", threads, 0, 1024, &n_threads)) return 2;
    fm_set_threads((int)n_threads);

    fm_err err;
    if (fm_report_write_tta(run, data, out, !no_tta, &err)) return fm_cli_fail("%s", err.msg);
    /* success can still mean parts were left out: say which */
    if (err.msg[0]) fprintf(stderr, "fmnist: note: %s\n", err.msg);
    if (out) printf("wrote %s\n", out);
    else printf("wrote %s/report.html\n", run);
    return 0;
}
