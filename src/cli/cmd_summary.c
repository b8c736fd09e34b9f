/* fmnist summary [MODEL]: the Keras-style table of a model description
 * (.cfg) or of a trained model file (.safetensors). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: fmnist summary [MODEL]\n"
            "\n"
            "Print a Keras-style table (layer, output shape, parameters) of MODEL:\n"
            "a built-in network (fashion-cnn, fashion-cnn-bn), a model description\n"
            "(.cfg) or a trained model (.safetensors). MODEL defaults to\n"
            FM_CLI_DEFAULT_CFG " in the current folder, else the built-in fashion-cnn.\n"
            "\n"
            "options:\n"
            "  -h, --help   show this help\n");
}

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

int fm_cmd_summary(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (a[0] == '-' && a[1]) {
            fm_cli_fail("summary: unknown option '%s'", a);
            usage(stderr);
            return 2;
        }
        if (path) {
            fm_cli_fail("summary: one model at a time ('%s' and '%s' given)", path, a);
            return 2;
        }
        path = a;
    }
    fm_err err;
    const char *source;
    fm_model *m = path && has_suffix(path, ".safetensors") ? fm_model_load(path, &err)
                                                           : fm_cli_load_model(path, &source, &err);
    if (!m) return fm_cli_fail("%s", err.msg);
    fm_model_summary(m, stdout);
    fm_model_free(m);
    return 0;
}
