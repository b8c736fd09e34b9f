/* bench/recipes end to end: its refusals (a bad --seeds, a missing fmnist),
 * one seed of a tiny run whose summary holds the accuracy fmnist eval
 * printed, then a second call that finds the finished run and evaluates it
 * without training, and one that refuses it for another --epochs. */
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "clitest.h"

#define PYTHON "/usr/bin/python3"

/* Runs `python3 bench/recipes ARGS` with the output in out.txt and err.txt. */
static int recipes(const char *args) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' '%s/bench/recipes' --fmnist '%s' %s >'%s' 2>'%s'", PYTHON,
             getenv("FMNIST_SOURCE_DIR"), getenv("FMNIST_BIN"), args, tu_path("out.txt"),
             tu_path("err.txt"));
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void) {
    if (!getenv("FMNIST_BIN") || !getenv("FMNIST_SOURCE_DIR"))
        SKIP("FMNIST_BIN or FMNIST_SOURCE_DIR is not set (run by ctest)");
    if (access(PYTHON, X_OK)) SKIP("no " PYTHON);
    if (access(FM_DEBIAN_DATA_DIR "/train-images-idx3-ubyte.gz", R_OK))
        SKIP("no data set in " FM_DEBIAN_DATA_DIR " (apt-get install dataset-fashion-mnist)");
    tu_init("system_bench_recipes");
    char args[8192], out[4096], path[4200];
    snprintf(out, sizeof out, "%s", tu_path("runs"));

    CHECK(recipes("--seeds 1,x") == 2);
    CHECK(strstr(tu_output("err.txt"), "--seeds: '1,x' is not a comma-separated list"));
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' '%s/bench/recipes' --fmnist '%s' >'%s' 2>&1", PYTHON,
             getenv("FMNIST_SOURCE_DIR"), tu_path("none"), tu_path("err.txt"));
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    CHECK(strstr(tu_output("err.txt"), "none: no such file; --fmnist PATH"));

    const char *tiny = "--seeds 7 --epochs 1 --limit 1000 --threads 1 --quiet";
    snprintf(args, sizeof args, "%s --out '%s'", tiny, out);
    CHECK(recipes(args) == 0);
    const char *text = tu_output("out.txt");
    CHECK_MSG(strstr(text, "training into") && strstr(text, "   800       1") &&
                  strstr(text, "trained\n") && strstr(text, "over 1 seed (mean"),
              "%s", text);
    /* the summary's accuracy is eval's, as it printed it */
    snprintf(path, sizeof path, "%s/seed-7/eval.txt", out);
    char *eval = tu_text(path);
    const char *line = strstr(eval, "\naccuracy: ");
    snprintf(path, sizeof path, "%s/summary.json", out);
    char *json = tu_text(path);
    CHECK_MSG(line && strstr(json, "\"test_accuracy_text\": \"") &&
                  !strncmp(strstr(json, "\"test_accuracy_text\": \"") + 23, line + 11, 6),
              "eval.txt: %s\nsummary.json: %s", eval, json);
    CHECK(strstr(json, "\"images_processed\": 800,") && strstr(json, "\"status\": \"ok\""));
    free(json);
    free(eval);

    /* again: the finished run is evaluated, not trained */
    CHECK(recipes(args) == 0);
    text = tu_output("out.txt");
    CHECK_MSG(strstr(text, "holds a finished run (evaluating it)") &&
                  strstr(text, "finished before\n") && !strstr(text, "Trained"),
              "%s", text);
    /* another --epochs: that run is not this one */
    snprintf(args, sizeof args, "--seeds 7 --epochs 2 --limit 1000 --out '%s'", out);
    CHECK(recipes(args) == 1);
    CHECK(strstr(tu_output("err.txt"), "it is a run with epochs 1, not 2"));
    return check_finish();
}
