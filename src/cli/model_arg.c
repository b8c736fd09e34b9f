/* The --model argument shared by the verbs that build a network. */
#include <unistd.h>

#include "cli.h"

/* configs/fashion-cnn.cfg as it was at build time (default_cfg.c.in). */
extern const char fm_cli_default_cfg_text[];

fm_model *fm_cli_load_model(const char *cfg, const char **source, fm_err *err) {
    if (!cfg && access(FM_CLI_DEFAULT_CFG, F_OK) == 0) cfg = FM_CLI_DEFAULT_CFG;
    if (!cfg) {
        *source = FM_CLI_DEFAULT_CFG " (built in)";
        return fm_model_parse(fm_cli_default_cfg_text, *source, err);
    }
    *source = cfg;
    return fm_model_load_cfg(cfg, err);
}
