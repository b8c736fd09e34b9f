/* fmnist: the command-line front end, a table of verbs. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "cli.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} verb;

static const verb verbs[] = {
    {"data", fm_cmd_data, "load and validate the data set; print counts and pixel statistics"},
    {"convert", fm_cmd_convert, "write the data set in the other layout (CSV <-> IDX)"},
    {"show", fm_cmd_show, "write a PNG of one image or a grid of examples per class"},
    {"summary", fm_cmd_summary, "print a Keras-style table of a model description"},
    {"train", fm_cmd_train, "train a model with the Keras recipe; writes a run folder"},
    {"eval", fm_cmd_eval, "loss, accuracy, per-class scores and confusion matrix of a model"},
    {"predict", fm_cmd_predict, "classify PNG/PGM pictures with a saved model"},
    {"quantize", fm_cmd_quantize, "turn a trained model into a 4x smaller int8 one"},
    {"export", fm_cmd_export, "write a saved model as ONNX for other runtimes"},
    {"report", fm_cmd_report, "write a self-contained HTML report of a training run"},
    {"bench", fm_cmd_bench, "time training steps and inference on synthetic data"},
};
#define N_VERBS (sizeof verbs / sizeof verbs[0])

static void usage(FILE *out) {
    fprintf(out, "usage: fmnist VERB [options]   (fmnist VERB --help for details)\n"
                 "       fmnist --version\n\nverbs:\n");
    for (size_t i = 0; i < N_VERBS; i++) fprintf(out, "  %-9s %s\n", verbs[i].name, verbs[i].help);
}

int fm_cli_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("fmnist: ", stderr);
    if (fm_dist_size() > 1) fprintf(stderr, "process %d of %d: ", fm_dist_rank(), fm_dist_size());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int fm_cli_long(const char *flag, const char *s, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) {
        fm_cli_fail("%s: '%s' is not an integer", flag, s);
        return -1;
    }
    if (v < min || v > max) {
        fm_cli_fail("%s: %ld is out of range [%ld, %ld]", flag, v, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int fm_cli_double(const char *flag, const char *s, double min, double max, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v != v) {
        fm_cli_fail("%s: '%s' is not a number", flag, s);
        return -1;
    }
    if (v < min || v > max) {
        fm_cli_fail("%s: %g is out of range [%g, %g]", flag, v, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int fm_cli_getopt_error(const char *verb, int c, char **argv, const struct option *opts) {
    const char *arg = argv[optind - 1];
    if (c == ':') {
        fm_cli_fail("%s: %s needs a value", verb, arg);
        return 2;
    }
    /* '?' for --flag=VALUE on a flag that takes none: optopt is its code */
    const char *eq = strchr(arg, '=');
    if (optopt && !strncmp(arg, "--", 2) && eq)
        for (const struct option *o = opts; o->name; o++)
            if (o->val == optopt && o->has_arg == no_argument &&
                strlen(o->name) == (size_t)(eq - arg - 2) && !strncmp(o->name, arg + 2, eq - arg - 2)) {
                fm_cli_fail("%s: --%s takes no value", verb, o->name);
                return 2;
            }
    /* an unknown short option may sit inside a cluster such as -qz, where
     * argv[optind - 1] is not the word that holds it */
    if (optopt)
        fm_cli_fail("%s: unknown option '-%c' (see fmnist %s --help)", verb, optopt, verb);
    else
        fm_cli_fail("%s: unknown option '%s' (see fmnist %s --help)", verb, arg, verb);
    return 2;
}

fm_tta fm_cli_no_tta(fm_model *model, int no_tta) {
    fm_tta recorded = fm_model_tta(model);
    fm_err err;
    if (no_tta) fm_model_set_tta(model, FM_TTA_NONE, &err); /* a valid value: cannot fail */
    return recorded;
}

const char *fm_cli_tta_note(fm_tta recorded, const fm_model *model) {
    if (recorded == FM_TTA_NONE) return NULL;
    if (fm_model_tta(model) == FM_TTA_FLIP)
        return "flip (each image and its left-right mirror, probabilities averaged)";
    return "none (--no-tta; the model file records flip)";
}

const char *fm_cli_data_dir(const char *dir) {
    if (dir) return dir;
    fm_err err;
    const char *d = fm_data_default_dir(&err);
    if (!d) fm_cli_fail("%s", err.msg);
    return d;
}

/* The dispatch ignores an FMNIST_KERNELS it cannot honour (a table this
 * build or CPU lacks, or no table at all); the user hears it once. */
static void check_kernels_env(void) {
    const char *want = getenv("FMNIST_KERNELS");
    if (!want || !*want) return;
    const char *got = fm_kernels_name();
    if (strcmp(want, got) != 0)
        fprintf(stderr,
                "fmnist: warning: FMNIST_KERNELS=%s: no such kernel table, or one this build "
                "or CPU cannot run (the tables: ref, portable, avx2, avx2-vnni, avx512, avx512-vnni, amx-int8); using %s\n",
                want, got);
}

int main(int argc, char **argv) {
    /* A write past the file size limit (ulimit -f) then fails with "File too
     * large", reported with the file's name, instead of killing the process. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("fmnist %s\n", FM_VERSION);
        return 0;
    }
    for (size_t i = 0; i < N_VERBS; i++)
        if (!strcmp(argv[1], verbs[i].name)) {
            check_kernels_env();
            if (strcmp(argv[1], "train")) return verbs[i].run(argc - 1, argv + 1);
            /* train alone runs across the processes mpirun starts */
            fm_err err;
            if (fm_dist_init(&argc, &argv, &err) < 0) return fm_cli_fail("train: %s", err.msg);
            int rc = verbs[i].run(argc - 1, argv + 1);
            /* a process that fails may leave the others waiting on it: end them all */
            if (rc != 0) fm_dist_abort(rc);
            fm_dist_finalize();
            return rc;
        }
    fm_cli_fail("unknown verb '%s'", argv[1]);
    usage(stderr);
    return 2;
}
