/* The CLI: one file per verb, each `int fm_cmd_VERB(int argc, char **argv)`
 * returning the process exit status. Only the CLI prints errors and exits. */
#ifndef FM_CLI_H
#define FM_CLI_H

#include <getopt.h>

#include "fmnist/fmnist.h"

int fm_cmd_data(int argc, char **argv);
int fm_cmd_convert(int argc, char **argv);
int fm_cmd_show(int argc, char **argv);
int fm_cmd_summary(int argc, char **argv);
int fm_cmd_train(int argc, char **argv);
int fm_cmd_eval(int argc, char **argv);
int fm_cmd_predict(int argc, char **argv);
int fm_cmd_report(int argc, char **argv);
int fm_cmd_export(int argc, char **argv);
int fm_cmd_quantize(int argc, char **argv);
int fm_cmd_bench(int argc, char **argv);

/* The default network: this file when it is in the current folder, else
 * the copy built into the library. */
#define FM_CLI_DEFAULT_CFG "configs/fashion-cnn.cfg"
#define FM_CLI_DEFAULT_NET "fashion-cnn"
/* Builds the built-in network or description file cfg names
 * (fm_model_load_named), or the default one when cfg is NULL; *source names
 * where it came from. */
fm_model *fm_cli_load_model(const char *cfg, const char **source, fm_err *err);

/* Prints "fmnist: MSG" to stderr and returns 1 (the exit status for errors). */
int fm_cli_fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Strict number parsing for flags: the whole string, within [min, max].
 * On failure prints "fmnist: --flag: ..." and returns -1. */
int fm_cli_long(const char *flag, const char *s, long min, long max, long *out);
int fm_cli_double(const char *flag, const char *s, double min, double max, double *out);
/* The one-line usage error for what getopt_long (optstring starting with
 * ':') returned as ':' or '?', naming the option as it was typed. Returns 2,
 * the exit status for usage errors. */
int fm_cli_getopt_error(const char *verb, int c, char **argv, const struct option *opts);
/* --no-tta (no_tta != 0) turns the loaded model's test-time augmentation
 * off. Returns what the model file records, for fm_cli_tta_note. */
fm_tta fm_cli_no_tta(fm_model *model, int no_tta);
/* What a verb says about test-time augmentation, "flip (...)" or "none
 * (--no-tta; ...)", or NULL when the file records none (nothing to say). */
const char *fm_cli_tta_note(fm_tta recorded, const fm_model *model);
/* The --help line of --no-tta. */
#define FM_CLI_NO_TTA_HELP \
    "  --no-tta         without the test-time augmentation the model file records\n"
/* The data folder: `dir` when given, else fm_data_default_dir(). Prints the
 * error and returns NULL when there is none. */
const char *fm_cli_data_dir(const char *dir);

#endif
