/* fmnist export: a saved model as ONNX, for inference in other runtimes. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out) {
    fputs("usage: fmnist export --weights MODEL.safetensors --onnx OUT.onnx [--no-tta]\n"
          "\n"
          "Writes the model as a standard ONNX file (opset 13): input \"input\", float\n"
          "(N,1,28,28) holding pixel/255; output \"probabilities\", (N,10) softmax.\n"
          "Class names, the input normalisation and the test-time augmentation are in\n"
          "its metadata_props. A model file that records test-time augmentation (flip)\n"
          "exports it in the graph: the network runs on the input and on its left-right\n"
          "mirror, and \"probabilities\" is the mean of the two softmax outputs.\n"
          "\n"
          "  --weights FILE  a model saved by fmnist (.safetensors)\n"
          "  --onnx FILE     the ONNX file to write (replaced atomically)\n"
          "  --no-tta        a graph without the test-time augmentation the model file\n"
          "                  records\n",
          out);
}

int fm_cmd_export(int argc, char **argv) {
    const char *weights = NULL, *onnx = NULL;
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
        const char **dst = !strcmp(argv[i], "--weights") ? &weights
                           : !strcmp(argv[i], "--onnx")  ? &onnx
                                                         : NULL;
        if (!dst) {
            fm_cli_fail("export: unknown option '%s'", argv[i]);
            usage(stderr);
            return 2;
        }
        if (i + 1 == argc) {
            fm_cli_fail("export: %s needs a value", argv[i]);
            return 2;
        }
        *dst = argv[++i];
    }
    if (!weights || !onnx) {
        fm_cli_fail("export: %s is required", !weights ? "--weights" : "--onnx");
        usage(stderr);
        return 2;
    }
    fm_err err;
    fm_model *m = fm_model_load(weights, &err);
    if (!m) return fm_cli_fail("%s", err.msg);
    const char *tta = fm_cli_tta_note(fm_cli_no_tta(m, no_tta), m);
    int rc = fm_model_export_onnx(m, onnx, &err);
    fm_model_free(m);
    if (rc) return fm_cli_fail("%s", err.msg);
    printf("wrote %s\n", onnx);
    if (tta) printf("test-time augmentation: %s\n", tta);
    return 0;
}
