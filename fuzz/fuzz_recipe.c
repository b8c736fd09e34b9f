/* libFuzzer target: the recipe parser (fm_train_recipe_apply,
 * src/train/recipe.c).
 *
 * The input is the recipe text (cut at its first NUL byte). A rejected
 * recipe must leave the parameters as they were, with a one-line message
 * naming the source and line; an accepted one must give parameters that
 * fm_train accepts or refuses in one line (keys in range can still
 * conflict), and its canonical text (fm_train_recipe_text) must read
 * back to the same text. */
#include "fuzz_util.h"

#include "train/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = 0;
    fm_train_params p = fm_train_default_params();
    char *before = fm_train_recipe_text(&p);
    fm_err err = {{0}};
    int rc = fm_train_recipe_apply(&p, text, "fuzz.recipe", &err);
    free(text);
    char *after = fm_train_recipe_text(&p);
    FUZZ_ASSERT(before && after, "out of memory");
    if (rc < 0) {
        FUZZ_ASSERT(!strncmp(err.msg, "fuzz.recipe:", 12) && !strchr(err.msg, '\n'),
                    "message '%s'", err.msg);
        FUZZ_ASSERT(!strcmp(before, after), "a rejected recipe changed the parameters");
    } else {
        /* each key is in range; a combination may still be refused (val_split 0
         * with EarlyStopping, say), in one line */
        if (fm__train_check_params(&p, &err) < 0)
            FUZZ_ASSERT(err.msg[0] && !strchr(err.msg, '\n'), "refusal '%s'", err.msg);
        fm_train_params q = fm_train_default_params();
        FUZZ_ASSERT(fm_train_recipe_apply(&q, after, "canonical", &err) == 0, "canonical: %s",
                    err.msg);
        char *again = fm_train_recipe_text(&q);
        FUZZ_ASSERT(again && !strcmp(after, again), "the canonical text does not read back");
        free(again);
    }
    free(before);
    free(after);
    return 0;
}
