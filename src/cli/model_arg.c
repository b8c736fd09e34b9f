/* The --model argument shared by the verbs that build a network. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

fm_model *fm_cli_load_model(const char *cfg, const char **source, fm_err *err) {
    if (!cfg) cfg = access(FM_CLI_DEFAULT_CFG, F_OK) == 0 ? FM_CLI_DEFAULT_CFG : FM_CLI_DEFAULT_NET;
    *source = cfg;
    if (fm_model_builtin(cfg)) {
        static char named[160];
        snprintf(named, sizeof named, "%.100s (built in)", cfg);
        *source = named;
    }
    return fm_model_load_named(cfg, err);
}
