/* fmnist train --recipe end to end: a short run with a recipe file and a
 * flag over one of its keys; the effective recipe is printed, recorded in
 * run.json and in the model file. */
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "clitest.h"

int main(void) {
    if (!getenv("FMNIST_BIN")) SKIP("FMNIST_BIN is not set (run by ctest)");
    if (access(FM_DEBIAN_DATA_DIR "/train-images-idx3-ubyte.gz", R_OK))
        SKIP("no data set in " FM_DEBIAN_DATA_DIR " (apt-get install dataset-fashion-mnist)");
    tu_init("system_recipe");
    char args[16384], path[4096], run[4096];
    snprintf(path, sizeof path, "%s", tu_path("cli.recipe"));
    snprintf(run, sizeof run, "%s", tu_path("run"));
    /* a short run: the recipe's keys, the flags over them, and the record */
    const char *mine = "lr = 0.002\nbatch = 7\naugment = no\n";
    tu_write(path, mine, strlen(mine));
    snprintf(args, sizeof args,
             "train --recipe '%s' --batch 50 --epochs 1 --limit 300 --threads 1 --out '%s'", path,
             run);
    CHECK(tu_run(args) == 0);
    const char *out = tu_output("out.txt");
    CHECK(strstr(out, "cli.recipe, with the command line's values:\n") &&
          strstr(out, "  batch = 50\n") && strstr(out, "  lr = 0.002\n") &&
          strstr(out, "  augment = no\n"));
    snprintf(args, sizeof args, "%s/run.json", run);
    char *json = tu_text(args);
    CHECK_MSG(strstr(json, "\"batch\": 50, \"lr\": 0.002, \"augment\": false,") &&
                  strstr(json, "cli.recipe\""),
              "run.json: %s", json);
    free(json);
    snprintf(args, sizeof args, "%s/model.safetensors", run);
    size_t n = 0;
    free(tu_read(args, &n));
    char *model = tu_text(args); /* the JSON header follows 8 bytes of its length */
    CHECK(n > 8 && strstr(model + 8, "\"fmnist.recipe\":\"epochs = 1\\nbatch = 50\\nlr = 0.002\\n") != NULL);
    free(model);
    /* the recipe's model key builds a built-in network; --model overrides it,
     * and the recipe records what was used */
    const char *bn = "model = fashion-cnn-bn\naugment = no\n";
    tu_write(path, bn, strlen(bn));
    snprintf(args, sizeof args,
             "train --recipe '%s' --batch 50 --epochs 1 --limit 200 --threads 1 --quiet --out '%s' "
             "--overwrite",
             path, run);
    CHECK(tu_run(args) == 0);
    snprintf(args, sizeof args, "%s/run.json", run);
    json = tu_text(args);
    CHECK_MSG(strstr(json, "\"model\": \"fashion-cnn-bn\"") &&
                  strstr(json, "\"model\": \"fashion-cnn-bn (built in)\""),
              "run.json: %s", json);
    free(json);
    snprintf(args, sizeof args, "%s/model.safetensors", run);
    model = tu_text(args);
    CHECK_MSG(model && strstr(model + 8, "batch_normalization_3"), "not the BatchNorm network");
    free(model);
    const char *src = getenv("FMNIST_SOURCE_DIR");
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s/configs/fashion-cnn.cfg", src ? src : ".");
    snprintf(args, sizeof args,
             "train --recipe '%s' --model '%s' --batch 50 --epochs 1 --limit 200 --threads 1 "
             "--quiet --out '%s' --overwrite",
             path, cfg, run);
    CHECK(tu_run(args) == 0);
    snprintf(args, sizeof args, "%s/run.json", run);
    json = tu_text(args);
    char want[4200];
    snprintf(want, sizeof want, "\"model\": \"%s\"", cfg);
    CHECK_MSG(strstr(json, want) && !strstr(json, "fashion-cnn-bn"), "run.json: %s", json);
    free(json);
    snprintf(args, sizeof args, "%s/model.safetensors", run);
    model = tu_text(args);
    CHECK_MSG(model && !strstr(model + 8, "batch_normalization_2"), "not the notebook network");
    free(model);
    return check_finish();
}
