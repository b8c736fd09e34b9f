/* libFuzzer target: the model-description parser and planner
 * (fm__model_new: src/model/cfg.c, then the shape planning of
 * src/model/model.c and the layers' plan functions).
 *
 * The input is the description text (cut at its first NUL byte, as a C
 * string would be). The parser must return a model or NULL with a message,
 * never crash, leak or overflow. An accepted model gets its parameters
 * allocated when that is small (a description may legitimately ask for up to
 * FM__MAX_PARAMS = 2^28 parameters, 4 GiB with gradients and Adam moments,
 * which is a limit of the design, not something a fuzzer should allocate),
 * then fuzz_exercise_model: summary, one training pass, save/load round trip. */
#include "fuzz_model_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = 0;
    fm_err err = {{0}};
    fm_model *m = fm__model_new(text, "fuzz.cfg", &err);
    free(text);
    if (!m) {
        FUZZ_ASSERT(err.msg[0] && !strchr(err.msg, '\n'), "message '%s'", err.msg);
        return 0;
    }
    FUZZ_ASSERT(m->n_layers >= 1 && m->classes >= 2 && m->classes <= 256, "bad plan");
    if (m->n_params + m->n_stats <= FUZZ_MAX_PARAMS) {
        FUZZ_ASSERT(fm__model_alloc_params(m, &err) == 0, "alloc: %s", err.msg);
        fm_rng rng;
        fm_rng_seed(&rng, 42);
        fm_model_init(m, &rng);
        fuzz_exercise_model(m, 1);
    }
    fm_model_free(m);
    return 0;
}
