/* Training recipes: the parser and its errors, the canonical text, the
 * built-in notebook recipe against the defaults, the copy in configs/, and
 * fmnist train --recipe's refusals (system_recipe trains with one). */
#include <string.h>

#include "check.h"
#include "clitest.h"
#include "train/state.h"

/* The recipe fields of a and b agree (the canonical texts are equal). */
static int same_recipe(const fm_train_params *a, const fm_train_params *b) {
    char *x = fm_train_recipe_text(a), *y = fm_train_recipe_text(b);
    int same = x && y && !strcmp(x, y);
    free(x);
    free(y);
    return same;
}

static void builtin(void) {
    fm_train_params d = fm_train_default_params(), p = d;
    const char *text = fm_train_recipe_builtin("notebook");
    CHECK(text != NULL && fm_train_recipe_builtin("fastest") == NULL);
    fm_err err;
    /* the built-in notebook recipe is exactly the defaults, key by key */
    d.epochs = 1, d.batch = 1, d.lr = 1, d.augment = 0, d.val_split = 0.5;
    d.es_patience = d.lr_patience = 1, d.lr_factor = 0.1f, d.min_lr = 1;
    p = d;
    CHECK_MSG(fm_train_recipe_apply(&p, text, "notebook", &err) == 0, "%s", err.msg);
    fm_train_params def = fm_train_default_params();
    CHECK(same_recipe(&p, &def));
    CHECK(p.epochs == 100 && p.batch == 64 && p.lr == 1e-3f && p.augment == 1 &&
          p.val_split == 0.2 && p.es_patience == 15 && p.lr_patience == 8 &&
          p.lr_factor == 0.5f && p.min_lr == 0.0f);
    /* each built-in is the file in configs/recipes it is built from, and a
     * recipe fm_train accepts (the presets are the defaults plus their keys) */
    const char *src = getenv("FMNIST_SOURCE_DIR");
    static const char *const names[] = {"notebook", "fast", "best"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *b = fm_train_recipe_builtin(names[i]);
        CHECK_MSG(b != NULL, "no built-in %s", names[i]);
        if (!b) continue;
        fm_train_params q = fm_train_default_params();
        CHECK_MSG(fm_train_recipe_load(&q, names[i], &err) == 0, "%s", err.msg);
        CHECK_MSG(fm__train_check_params(&q, &err) == 0, "%s: %s", names[i], err.msg);
        if (!src) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/configs/recipes/%s.recipe", src, names[i]);
        char *file = tu_text(path);
        CHECK_MSG(file && !strcmp(file, b), "%s differs from the built-in %s recipe", path,
                  names[i]);
        free(file);
    }
}

/* The keys beyond the notebook's: choices, switches and their ranges. */
static void new_keys(void) {
    fm_train_params p = fm_train_default_params();
    fm_err err;
    const char *text = "optimizer = sgd\nschedule = onecycle\nerase_fill = random\ntta = flip\n"
                       "val_split = 0\nearly_stopping_patience = 0\nema = yes\n"
                       "precise_bn = 10\nlabel_smoothing = 0.1\n";
    CHECK_MSG(fm_train_recipe_apply(&p, text, "r.recipe", &err) == 0, "%s", err.msg);
    CHECK(p.optimizer == FM_OPTIMIZER_SGD && p.schedule == FM_SCHEDULE_ONECYCLE &&
          p.erase_random == 1 && p.tta == 1 && p.val_split == 0.0 && p.es_patience == 0 &&
          p.ema == 1 && p.precise_bn == 10 && p.label_smoothing == 0.1f);
    char *canon = fm_train_recipe_text(&p);
    CHECK(canon && strstr(canon, "optimizer = sgd\n") && strstr(canon, "schedule = onecycle\n") &&
          strstr(canon, "erase_fill = random\n") && strstr(canon, "tta = flip\n"));
    fm_train_params q = fm_train_default_params();
    CHECK(canon && fm_train_recipe_apply(&q, canon, "canon", &err) == 0 && same_recipe(&p, &q));
    free(canon);
}

/* The model key: a text value, kept as written, that the recipe text can
 * carry on one line. */
static void model_key(void) {
    fm_train_params p = fm_train_default_params();
    fm_err err;
    CHECK(!strcmp(p.model, "default"));
    CHECK_MSG(fm_train_recipe_apply(&p, "model =  my nets/a.cfg   # a comment\n", "r.recipe",
                                    &err) == 0,
              "%s", err.msg);
    CHECK(!strcmp(p.model, "my nets/a.cfg"));
    char *canon = fm_train_recipe_text(&p);
    CHECK(canon && strstr(canon, "\nmodel = my nets/a.cfg\n"));
    fm_train_params q = fm_train_default_params();
    CHECK(canon && fm_train_recipe_apply(&q, canon, "canon", &err) == 0 && same_recipe(&p, &q));
    free(canon);
    CHECK_MSG(fm__train_check_params(&p, &err) == 0, "%s", err.msg);
    static const char *const unrecordable[] = {"a#b", " a", "a ", "a\nb", ""};
    for (size_t i = 0; i < sizeof unrecordable / sizeof unrecordable[0]; i++) {
        strcpy(p.model, unrecordable[i]);
        CHECK_MSG(fm__train_check_params(&p, &err) == -1 && strstr(err.msg, "cannot be recorded"),
                  "model '%s' accepted", unrecordable[i]);
    }
    /* fast and best name their network; notebook leaves it to the caller */
    static const char *const presets[][2] = {
        {"notebook", "default"}, {"fast", "fashion-cnn-bn"}, {"best", "fashion-cnn-bn"}};
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        q = fm_train_default_params();
        CHECK(fm_train_recipe_load(&q, presets[i][0], &err) == 0 && !strcmp(q.model, presets[i][1]));
    }
    char text[400];
    snprintf(text, sizeof text, "model = %0300d\n", 7);
    fm_train_params before = fm_train_default_params();
    q = before;
    CHECK(fm_train_recipe_apply(&q, text, "r.recipe", &err) == -1 &&
          strstr(err.msg, "r.recipe:1: model: longer than 255 characters") && same_recipe(&q, &before));
}

static void parse(void) {
    fm_train_params p = fm_train_default_params();
    fm_err err;
    const char *text = "# a comment\r\n\n  lr =0.0025   # trailing comment\n"
                       "augment=no\r\nval_split = 0.1\nepochs = 7\nplateau_factor = 0.25\n";
    CHECK_MSG(fm_train_recipe_apply(&p, text, "r.recipe", &err) == 0, "%s", err.msg);
    CHECK(p.lr == 0.0025f && p.augment == 0 && p.val_split == 0.1 && p.epochs == 7 &&
          p.lr_factor == 0.25f);
    CHECK(p.batch == 64 && p.es_patience == 15); /* keys left out keep their values */
    /* the canonical text reads back to the same fields, bit for bit */
    char *canon = fm_train_recipe_text(&p);
    CHECK(canon && strstr(canon, "lr = 0.0025\n") && strstr(canon, "augment = no\n") &&
          strstr(canon, "val_split = 0.1\n"));
    fm_train_params q = fm_train_default_params();
    CHECK(canon && fm_train_recipe_apply(&q, canon, "canon", &err) == 0 && same_recipe(&p, &q));
    CHECK(q.lr == p.lr && q.val_split == p.val_split && q.lr_factor == p.lr_factor);
    free(canon);
}

/* text must fail with "r.recipe:LINE: ..." containing what, leaving p alone */
static void bad(const char *text, int line, const char *what) {
    fm_train_params p = fm_train_default_params(), before = p;
    fm_err err = {{0}};
    CHECK_MSG(fm_train_recipe_apply(&p, text, "r.recipe", &err) == -1, "accepted: %s", text);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "r.recipe:%d: ", line);
    CHECK_MSG(!strncmp(err.msg, prefix, strlen(prefix)) && strstr(err.msg, what),
              "'%s' lacks '%s' / '%s'", err.msg, prefix, what);
    CHECK_MSG(same_recipe(&p, &before), "a failed recipe changed the parameters: %s", text);
}

static void errors(void) {
    bad("lr = 0.01\nlr 0.02\n", 2, "expected 'key = value'");
    bad("learning_rate = 0.01\n", 1, "unknown key 'learning_rate' (expected epochs, batch, lr");
    bad("lr = 0.01\nlr = 0.02\n", 2, "lr given twice");
    bad("batch =\n", 1, "batch has no value");
    bad("batch = 6.5\n", 1, "'6.5' is not an integer");
    bad("batch = 0\n", 1, "batch = 0 is out of range [1, 65536]");
    bad("lr = 0\n", 1, "lr = 0 is out of range (0, 10]");
    bad("lr = nan\n", 1, "'nan' is not a number");
    bad("lr = 1e-96\n", 1, "lr = 0 is out of range (0, 10]"); /* 0 as a float */
    bad("augment = maybe\n", 1, "'maybe' is not yes or no");
    bad("\n\nplateau_factor = 1\n", 3, "out of range (0, 1)");
    bad("val_split = 1\n", 1, "out of range");
    bad("epochs = 5\n= 3\n", 2, "unknown key ''");
    bad("optimizer = adagrad\n", 1, "optimizer: 'adagrad' is not one of adam, adamw or sgd");
    bad("tta = yes\n", 1, "tta: 'yes' is not one of none or flip");
    bad("schedule = Cosine\n", 1, "is not one of plateau, constant, cosine, linear or onecycle");
    bad("translate = 28\n", 1, "translate = 28 is out of range [0, 27]");
    bad("label_smoothing = 1\n", 1, "out of range [0, 1)");
    bad("ema_decay = 1\n", 1, "out of range [0, 1)");
    bad("erase_area_min = 0\n", 1, "out of range (0, 1]");
    bad("val_split = -0.1\n", 1, "out of range [0, 0.99]");
}

static void load(void) {
    fm_train_params p = fm_train_default_params();
    fm_err err;
    CHECK(fm_train_recipe_load(&p, "notebook", &err) == 0 && !strcmp(p.recipe, "notebook"));
    CHECK(fm_train_recipe_load(&p, "nosuch", &err) == -1 &&
          strstr(err.msg, "nosuch: no such built-in recipe"));
    CHECK(fm_train_recipe_load(&p, tu_path("missing.recipe"), &err) == -1 &&
          strstr(err.msg, "missing.recipe: cannot open"));
    char path[4096];
    snprintf(path, sizeof path, "%s", tu_path("mine.recipe"));
    tu_write(path, "batch = 32\n", 11);
    CHECK(fm_train_recipe_load(&p, path, &err) == 0 && p.batch == 32 && p.recipe == path);
    tu_write(path, "batch = 32\0", 11);
    CHECK(fm_train_recipe_load(&p, path, &err) == -1 && strstr(err.msg, "NUL"));
}

static void cli(void) {
    if (!getenv("FMNIST_BIN")) {
        fprintf(stderr, "note: FMNIST_BIN not set, the command-line checks did not run\n");
        return;
    }
    char args[16384], path[4096], run[4096];
    /* tu_path's buffer is overwritten by the next call: keep copies */
    snprintf(path, sizeof path, "%s", tu_path("cli.recipe"));
    snprintf(run, sizeof run, "%s", tu_path("run"));
    tu_write(path, "lr = 0.5\nbatch = 7\n", 19);
    /* the help lists every key */
    CHECK(tu_run("train --help") == 0 && strstr(tu_output("out.txt"), "  plateau_factor ") &&
          strstr(tu_output("out.txt"), "--recipe NAME|FILE"));
    snprintf(args, sizeof args, "train --recipe nosuch --out '%s'", run);
    CHECK(tu_run(args) == 1 && strstr(tu_output("err.txt"), "nosuch: no such built-in recipe"));
    tu_write(path, "lr = 0.5\nbatch = x\n", 19);
    snprintf(args, sizeof args, "train --recipe '%s' --out '%s'", path, run);
    CHECK(tu_run(args) == 1 && strstr(tu_output("err.txt"), "cli.recipe:2: batch: 'x' is not an"));
    snprintf(args, sizeof args, "train --resume '%s' --recipe notebook", run);
    CHECK(tu_run(args) == 1 && strstr(tu_output("err.txt"), "no training checkpoint to resume"));
    /* --set: a key after the recipe; its mistakes say which flag */
    snprintf(args, sizeof args, "train --set optimizer=rmsprop --out '%s'", run);
    CHECK(tu_run(args) == 2 &&
          strstr(tu_output("err.txt"), "--set optimizer=rmsprop:1: optimizer: 'rmsprop' is not"));
    snprintf(args, sizeof args, "train --set lr --out '%s'", run);
    CHECK(tu_run(args) == 2 && strstr(tu_output("err.txt"), "--set lr: expected KEY=VALUE"));
    /* the recipe's model key names the network, --model overrides it */
    tu_write(path, "model = fashion-cnn-xl\n", 23);
    snprintf(args, sizeof args, "train --recipe '%s' --out '%s'", path, run);
    CHECK(tu_run(args) == 1 &&
          strstr(tu_output("err.txt"),
                 "train: the recipe's model: fashion-cnn-xl: no such built-in network"));
    snprintf(args, sizeof args, "train --recipe '%s' --model nosuch.cfg --out '%s'", path, run);
    CHECK(tu_run(args) == 1 && strstr(tu_output("err.txt"), "nosuch.cfg: cannot open"));
    /* a network file the recipe text could not record is refused before training */
    char net[4096];
    snprintf(net, sizeof net, "%s", tu_path("a#b.cfg"));
    tu_write(net, fm_model_builtin("fashion-cnn"), strlen(fm_model_builtin("fashion-cnn")));
    snprintf(args, sizeof args, "train --model '%s' --data /nonexistent --out '%s'", net, run);
    CHECK(tu_run(args) == 1 && strstr(tu_output("err.txt"), "a#b.cfg' cannot be recorded"));
    /* what needs validation is refused without it, before any data is read */
    snprintf(args, sizeof args, "train --val-split 0 --data /nonexistent --out '%s'", run);
    CHECK(tu_run(args) == 1 && strstr(tu_output("err.txt"), "val_split 0 leaves no validation"));
}

int main(void) {
    tu_init("test_recipe");
    builtin();
    model_key();
    parse();
    new_keys();
    errors();
    load();
    cli();
    return check_finish();
}
