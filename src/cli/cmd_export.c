/* fmnist export: a saved model as ONNX, for inference in other runtimes. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *out) {
    fputs("usage: fmnist export --weights MODEL.safetensors --onnx OUT.onnx\n"
          "\n"
          "Writes the model as a standard ONNX file (opset 13): input \"input\", float\n"
          "(N,1,28,28) holding pixel/255; output \"probabilities\", (N,10) softmax.\n"
          "Class names and the input normalisation are in its metadata_props.\n"
          "\n"
          "  --weights FILE  a model saved by fmnist (.safetensors)\n"
          "  --onnx FILE     the ONNX file to write (replaced atomically)\n",
          out);
}

int fm_cmd_export(int argc, char **argv) {
    const char *weights = NULL, *onnx = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
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
    int rc = fm_model_export_onnx(m, onnx, &err);
    fm_model_free(m);
    if (rc) return fm_cli_fail("%s", err.msg);
    printf("wrote %s\n", onnx);
    return 0;
}
