/* fmnist summary [MODEL]: the Keras-style table of a model description
 * (.cfg) or of a trained model file (.safetensors). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#define DEFAULT_CFG "configs/fashion-cnn.cfg"

static void usage(FILE *out) {
    fprintf(out,
            "usage: fmnist summary [MODEL]\n"
            "\n"
            "Print a Keras-style table (layer, output shape, parameters) of MODEL:\n"
            "a model description (.cfg) or a trained model (.safetensors).\n"
            "MODEL defaults to " DEFAULT_CFG " (relative to the current folder).\n"
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
    if (!path) {
        path = DEFAULT_CFG;
        if (access(path, F_OK))
            return fm_cli_fail("summary: no model given and %s not found here (run from the "
                               "source folder or name a model file)",
                               path);
    }
    fm_err err;
    fm_model *m = has_suffix(path, ".safetensors") ? fm_model_load(path, &err)
                                                   : fm_model_load_cfg(path, &err);
    if (!m) return fm_cli_fail("%s", err.msg);
    fm_model_summary(m, stdout);
    fm_model_free(m);
    return 0;
}
