/* libFuzzer target: the model-file loader (fm_model_load: src/model/save.c
 * over the safetensors reader src/model/safetensors.c and its JSON parser
 * src/model/json.c, and the description parser behind them).
 *
 * The input is the whole .safetensors file. The loader must return a model
 * or NULL with a message, never crash, leak, or allocate more than the file
 * holds (a header may claim any shape; parameters are allocated only once the
 * file is known to hold them). An accepted model goes through
 * fuzz_exercise_model: summary, one training pass when small, and a
 * save/load round trip. */
#include "fuzz_model_common.h"

static fuzz_file input;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_file_open(&input, "model.safetensors");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_file_set(&input, data, size);
    fm_err err = {{0}};
    fm_model *m = fm_model_load(input.path, &err);
    if (!m) {
        FUZZ_ASSERT(err.msg[0] && !strchr(err.msg, '\n'), "message '%s'", err.msg);
        return 0;
    }
    FUZZ_ASSERT(m->n_layers >= 1 && m->params && m->stats, "bad model");
    for (size_t j = 0; j < m->n_params; j++) FUZZ_ASSERT(isfinite(m->params[j]), "param %zu", j);
    for (size_t j = 0; j < m->n_stats; j++) FUZZ_ASSERT(isfinite(m->stats[j]), "stat %zu", j);
    fuzz_exercise_model(m, 1);
    fm_model_free(m);
    return 0;
}
