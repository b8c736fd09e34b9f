/* fmnist train: the Keras recipe end to end: load and split the data, build
 * the network from its description (or take up an unfinished run), train with
 * the callbacks, optionally score the restored model on the test set, write
 * the report, and say where everything went. The run folder is locked from
 * start to end. Ctrl-C or SIGTERM ends the run at the next step boundary with
 * a checkpoint; a second one ends it at once. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: fmnist train [--recipe NAME|FILE] [--set KEY=VALUE]... [--precision P]\n"
            "                    [--data DIR] [--model CFG] [--epochs N] [--batch N] [--lr F]\n"
            "                    [--seed N] [--threads N] [--limit N] [--val-split F]\n"
            "                    [--no-augment] [--out DIR] [--overwrite] [--checkpoint-steps N]\n"
            "                    [--test] [--quiet]\n"
            "       fmnist train --resume DIR [the same flags]\n"
            "\n"
            "Trains a network (CFG) with a recipe. The default recipe, notebook, is\n"
            "Adam, augmentation (rotation +-10 degrees, zoom 0.9-1.1, horizontal flip),\n"
            "EarlyStopping (val_loss, patience 15, best weights restored), ReduceLROnPlateau\n"
            "(val_loss, patience 8, factor 0.5) and ModelCheckpoint (val_accuracy); fast and\n"
            "best are built in too (README, \"Recipes\"). The run folder gets log.csv,\n"
            "best.safetensors (best val_accuracy), model.safetensors (the final model: the\n"
            "best val_loss weights with EarlyStopping, else the last weights or their\n"
            "moving average), run.json and report.html, and while the run is unfinished\n"
            "checkpoint.safetensors, the whole training state, rewritten at the end of\n"
            "every epoch. Ctrl-C (or SIGTERM) finishes the current step, writes the\n"
            "checkpoint and exits; a second Ctrl-C exits at once, keeping the last one.\n"
            "\n"
            "  --recipe NAME|FILE\n"
            "                   the training recipe: a built-in one (notebook, the default)\n"
            "                   or a recipe file; the flags below override its keys\n"
            "  --set KEY=VALUE  set one recipe key (any key listed below), after the\n"
            "                   recipe and before the flags; may be repeated\n"            "  --precision fp32|bf16|auto\n"
            "                   the training products (the recipe key precision): bf16\n"
            "                   rounds their factors to bfloat16 and keeps fp32 sums, on\n"
            "                   AMX or AVX512_BF16 where the CPU has it, else emulated;\n"
            "                   auto is bf16 only where the CPU has it\n"
            "  --data DIR       data folder (default: ./DATA if it holds the CSVs, else\n"
            "                   " FM_DEBIAN_DATA_DIR "; with --resume, the run's)\n"
            "  --model CFG      the network: a built-in one (fashion-cnn, fashion-cnn-bn)\n"
            "                   or a model description file (the recipe key model;\n"
            "                   default: the recipe's, else " FM_CLI_DEFAULT_CFG " when it\n"
            "                   exists, else fashion-cnn; with --resume, checked against\n"
            "                   the run's)\n"
            "  --epochs N       most epochs to run (default 100)\n"
            "  --batch N        batch size (default 64)\n"
            "  --lr F           initial learning rate (default 0.001)\n"
            "  --seed N         seed of the split, initialisation, shuffling, augmentation\n"
            "                   and dropout (default 42); same seed and threads, same model\n"
            "  --threads N      threads (default 0 = all cores)\n"
            "  --limit N        use only the first N training images, before the split\n"
            "  --val-split F    fraction held out for validation (default 0.2); 0 trains\n"
            "                   on every image, for recipes that need no validation\n"
            "  --no-augment     train on the images as they are\n"
            "  --out DIR        run folder (default models): one fmnist at a time writes\n"
            "                   there; a finished run in it is refused unless --overwrite\n"
            "  --overwrite      replace the finished run in the --out folder (its models,\n"
            "                   log, run.json and report go first; an unfinished run is kept)\n"
            "  --resume DIR     continue the unfinished run in DIR from its checkpoint,\n"
            "                   with its recipe: same seed and threads give the weights and\n"
            "                   log of a run never stopped. The run's command line with\n"
            "                   --resume DIR added works: --batch, --lr, --seed, --limit,\n"
            "                   --val-split, --no-augment, --data, --model and --out may\n"
            "                   repeat the run's values but not change them; --epochs may\n"
            "                   be raised, --threads changed\n"
            "  --checkpoint-steps N\n"
            "                   also write the checkpoint every N steps (default: only at\n"
            "                   the end of each epoch)\n"
            "  --test           evaluate the final model on the test set at the end\n"
            "  --quiet          no progress lines, only the summary\n"
            "\n"
            "A recipe file holds 'key = value' lines ('#' starts a comment); keys left out\n"
            "keep the notebook's values. The keys:\n");
    fm_train_recipe_keys(out);
}

static void print_duration(double s) {
    long t = (long)(s + 0.5);
    if (t >= 3600)
        printf("%ldh %02ldm %02lds", t / 3600, t % 3600 / 60, t % 60);
    else if (t >= 60)
        printf("%ldm %02lds", t / 60, t % 60);
    else
        printf("%.1fs", s);
}

/* The handler's one channel to the training loop: a handler may only set a
 * flag, write() and _exit(). */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) {
    if (stop_signal) {
        static const char msg[] =
            "\nfmnist: interrupted again: exiting now; the last checkpoint is kept\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        _exit(128 + sig);
    }
    stop_signal = sig;
    static const char msg[] = "\nfmnist: stopping after this step to write the checkpoint "
                              "(interrupt again to exit at once)\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
}

/* Under mpirun, which answers a Ctrl-C or a process's death by terminating
 * every process (SIGTERM, then SIGKILL): a process cannot finish its step
 * while the others are gone, so it says so in one line and exits; the last
 * checkpoint written (atomically) is the one to resume from. The stop that
 * writes a checkpoint is SIGUSR1, which mpirun passes on to every process. */
static void on_terminate(int sig) {
    static const char msg[] = "fmnist: stopped by mpirun (a process failed or the run was "
                              "cancelled); the last checkpoint written is kept\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    _exit(128 + sig);
}

static void catch_stop_signals(int on) {
    struct sigaction sa, term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on ? on_stop_signal : SIG_DFL;
    sigemptyset(&sa.sa_mask);
    term = sa;
    if (on && fm_dist_size() > 1) term.sa_handler = on_terminate;
    sigaction(SIGINT, &term, NULL);
    sigaction(SIGTERM, &term, NULL);
    if (fm_dist_size() > 1) sigaction(SIGUSR1, &sa, NULL);
}

/* The recipe flags: a resume takes their values from the checkpoint, and
 * accepts them on its command line only when they repeat those (a job
 * script restarts work with its command and --resume DIR added). */
enum { F_BATCH, F_LR, F_SEED, F_LIMIT, F_VAL_SPLIT, F_NO_AUGMENT, N_RECIPE };
static const char recipe_keys[N_RECIPE] = {'b', 'l', 's', 'n', 'v', 'A'};
static const char *const recipe_names[N_RECIPE] = {"--batch", "--lr",        "--seed",
                                                   "--limit", "--val-split", "--no-augment"};

/* 0 when every recipe flag given (text[i] non-NULL, the value in asked)
 * equals the run's (in run, as read from resume's checkpoint); else prints
 * the first that does not, with both values, and returns -1. */
static int same_recipe(const char *const *text, const fm_train_params *asked,
                       const fm_train_params *run, const char *resume) {
    for (int i = 0; i < N_RECIPE; i++) {
        if (!text[i]) continue;
        char was[64];
        int same;
        switch (i) {
        case F_BATCH:
            same = asked->batch == run->batch;
            snprintf(was, sizeof was, "%d", run->batch);
            break;
        case F_LR:
            same = asked->lr == run->lr;
            snprintf(was, sizeof was, "%g", (double)run->lr);
            break;
        case F_SEED:
            same = asked->seed == run->seed;
            snprintf(was, sizeof was, "%llu", (unsigned long long)run->seed);
            break;
        case F_LIMIT:
            same = asked->limit == run->limit;
            snprintf(was, sizeof was, "%zu%s", run->limit, run->limit ? "" : " (all images)");
            break;
        case F_VAL_SPLIT:
            same = asked->val_split == run->val_split;
            snprintf(was, sizeof was, "%g", run->val_split);
            break;
        default: /* --no-augment */
            same = !run->augment;
            snprintf(was, sizeof was, "augmentation on");
        }
        if (same) continue;
        fm_cli_fail("train: %s%s%s differs from the run's %s (recorded in "
                    "%s/checkpoint.safetensors); a resume keeps the run's recipe",
                    recipe_names[i], *text[i] ? " " : "", text[i], was, resume);
        return -1;
    }
    return 0;
}

/* Applies the --set KEY=VALUE texts in order; -1 after saying which is wrong. */
static int apply_sets(fm_train_params *p, const char *const *sets, int n) {
    for (int i = 0; i < n; i++) {
        fm_err err;
        char source[160];
        snprintf(source, sizeof source, "--set %.120s", sets[i]);
        if (!strchr(sets[i], '=')) {
            fm_cli_fail("train: %s: expected KEY=VALUE (the keys: fmnist train --help)", source);
            return -1;
        }
        if (fm_train_recipe_apply(p, sets[i], source, &err) < 0) {
            fm_cli_fail("train: %s", err.msg);
            return -1;
        }
    }
    return 0;
}

/* 0 when the --set flags leave the resumed run's recipe (epochs aside) as
 * it is; else prints the run's recipe is kept and returns -1. */
static int sets_agree(const fm_train_params *run, const char *const *sets, int n,
                      const char *resume) {
    fm_train_params asked = *run;
    if (apply_sets(&asked, sets, n) < 0) return -1;
    asked.epochs = run->epochs;
    char *a = fm_train_recipe_text(run), *b = fm_train_recipe_text(&asked);
    int same = a && b && !strcmp(a, b);
    free(a);
    free(b);
    if (!same)
        fm_cli_fail("train: --set changes the run's recipe (recorded in "
                    "%s/checkpoint.safetensors); a resume keeps it",
                    resume);
    return same ? 0 : -1;
}

/* The effective recipe, indented, with where it came from. */
static void print_recipe(const fm_train_params *p, int overridden) {
    char *text = fm_train_recipe_text(p);
    if (!text) return;
    printf("\nRecipe %s%s%s:\n", p->recipe ? p->recipe : "(unnamed)",
           p->recipe && fm_train_recipe_builtin(p->recipe) ? " (built in)" : "",
           overridden ? ", with the command line's values" : "");
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) printf("  %s\n", line);
    free(text);
}

int fm_cmd_train(int argc, char **argv) {
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},    {"model", required_argument, NULL, 'm'},
        {"epochs", required_argument, NULL, 'e'},  {"batch", required_argument, NULL, 'b'},
        {"lr", required_argument, NULL, 'l'},      {"seed", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'}, {"limit", required_argument, NULL, 'n'},
        {"val-split", required_argument, NULL, 'v'}, {"no-augment", no_argument, NULL, 'A'},
        {"out", required_argument, NULL, 'o'},     {"test", no_argument, NULL, 'T'},
        {"quiet", no_argument, NULL, 'q'},         {"help", no_argument, NULL, 'h'},
        {"resume", required_argument, NULL, 'R'},
        {"checkpoint-steps", required_argument, NULL, 'C'},
        {"overwrite", no_argument, NULL, 'W'},
        {"recipe", required_argument, NULL, 'r'},
        {"set", required_argument, NULL, 'S'},
        {"precision", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    fm_train_params p = fm_train_default_params();
    const char *dir = NULL, *cfg = NULL, *resume = NULL, *recipe = NULL;
    const char *recipe_text[N_RECIPE] = {NULL};
    enum { MAX_SETS = 64 };
    const char *sets[MAX_SETS];
    int n_sets = 0;
    int test = 0, quiet = 0, epochs = 0, threads = -1, out_given = 0;
    const int lead = fm_dist_rank() == 0; /* the process that prints and writes the folder */
    int overrides = 0; /* flags that set a recipe key were given */
    long v;
    double d;
    int c;
    fm_err err;
    /* The recipe first, so that the flags override its keys wherever they stand. */
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'r') recipe = optarg;
        if ((c == 'S' || c == 'P') && n_sets == MAX_SETS) {
            fm_cli_fail("train: more than %d --set flags", MAX_SETS);
            return 2;
        }
        if (c == 'S') sets[n_sets++] = optarg;
        if (c == 'P') { /* --precision P is --set precision=P */
            static char text[64];
            snprintf(text, sizeof text, "precision=%.50s", optarg);
            sets[n_sets++] = text;
        }
    }
    if (recipe && fm_train_recipe_load(&p, recipe, &err) < 0) {
        fm_cli_fail("%s", err.msg);
        return 1;
    }
    if (apply_sets(&p, sets, n_sets) < 0) return 2;
    overrides = n_sets > 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        for (int i = 0; i < N_RECIPE; i++)
            if (c == recipe_keys[i]) recipe_text[i] = optarg ? optarg : "";
        overrides |= c == 'e' || c == 'b' || c == 'l' || c == 'v' || c == 'A';
        switch (c) {
        case 'd': dir = optarg; break;
        case 'm': cfg = optarg; break;
        case 'o': p.out_dir = optarg, out_given = 1; break;
        case 'W': p.overwrite = 1; break;
        case 'R': resume = optarg; break;
        case 'r': /* applied above */
        case 'S':
        case 'P': break;
        case 'A': p.augment = 0; break;
        case 'T': test = 1; break;
        case 'q': quiet = 1; break;
        case 'e':
            if (fm_cli_long("--epochs", optarg, 1, 100000, &v) < 0) return 2;
            epochs = (int)v;
            break;
        case 'b':
            if (fm_cli_long("--batch", optarg, 1, 65536, &v) < 0) return 2;
            p.batch = (int)v;
            break;
        case 's':
            if (fm_cli_long("--seed", optarg, 0, LONG_MAX, &v) < 0) return 2;
            p.seed = (uint64_t)v;
            break;
        case 't':
            if (fm_cli_long("--threads", optarg, 0, 4096, &v) < 0) return 2;
            threads = (int)v;
            break;
        case 'n':
            if (fm_cli_long("--limit", optarg, 2, LONG_MAX, &v) < 0) return 2;
            p.limit = (size_t)v;
            break;
        case 'l':
            if (fm_cli_double("--lr", optarg, 1e-12, 10.0, &d) < 0) return 2;
            p.lr = (float)d;
            break;
        case 'v':
            if (fm_cli_double("--val-split", optarg, 0.0, 0.99, &d) < 0) return 2;
            p.val_split = d;
            break;
        case 'C':
            if (fm_cli_long("--checkpoint-steps", optarg, 1, INT_MAX, &v) < 0) return 2;
            p.checkpoint_steps = (int)v;
            break;
        case 'h': usage(stdout); return 0;
        default: return fm_cli_getopt_error("train", c, argv, opts);
        }
    }
    if (optind < argc) {
        fm_cli_fail("train: unexpected argument '%s' (see fmnist train --help)", argv[optind]);
        return 2;
    }

    fm_data_format format;
    fm_images all = {0}, train = {0}, val = {0}, testset = {0};
    fm_model *model = NULL;
    fm_train_resume_info info;
    fm_run_lock *lock = NULL;
    int rc = 1, created = 0;
    if (resume) {
        const fm_train_params asked = p;
        if (!(model = fm_train_resume_load(resume, &p, &info, &err))) goto fail;
        rc = 2; /* the command line contradicts the run */
        if (same_recipe(recipe_text, &asked, &p, resume) < 0 ||
            sets_agree(&p, sets, n_sets, resume) < 0)
            goto done;
        if (recipe && strcmp(recipe, info.recipe[0] ? info.recipe : "notebook")) {
            fm_cli_fail("train: --recipe %s differs from the run's %s (recorded in "
                        "%s/checkpoint.safetensors); a resume keeps the run's recipe",
                        recipe, info.recipe[0] ? info.recipe : "notebook", resume);
            goto done;
        }
        if (out_given && !fm_same_file(asked.out_dir, resume)) {
            fm_cli_fail("train: --out %s is not the folder being resumed, %s", asked.out_dir,
                        resume);
            goto done;
        }
        /* The data folder by any path; another one only when the run's is gone
         * (moved): fm_train then checks that it holds the run's data. */
        if (dir && info.data_dir[0] && !fm_same_file(dir, info.data_dir) &&
            access(info.data_dir, F_OK) == 0) {
            fm_cli_fail("train: --data %s differs from the run's data folder %s (recorded in "
                        "%s/checkpoint.safetensors)",
                        dir, info.data_dir, resume);
            goto done;
        }
        if (cfg) {
            fm_model *given = fm_model_load_named(cfg, &err);
            if (!given) {
                rc = 1;
                goto fail;
            }
            int same = !strcmp(fm_model_description(given), fm_model_description(model));
            fm_model_free(given);
            if (!same) {
                fm_cli_fail("train: --model %s: its description differs from the run's (%s, "
                            "recorded in %s/checkpoint.safetensors); a resume keeps the run's "
                            "model",
                            cfg, info.model_source[0] ? info.model_source : "unnamed", resume);
                goto done;
            }
        }
        rc = 1;
        if (!dir && info.data_dir[0]) dir = info.data_dir;
        if (!cfg) cfg = info.model_source[0] ? info.model_source : NULL;
        p.threads = threads >= 0 ? threads : info.threads;
    } else {
        /* --model overrides the recipe's model key, which names the network otherwise */
        const int from_recipe = !cfg && strcmp(p.model, "default");
        if (cfg && snprintf(p.model, sizeof p.model, "%s", cfg) >= (int)sizeof p.model) {
            fm_cli_fail("train: --model %.60s...: longer than %d characters", cfg,
                        (int)sizeof p.model - 1);
            rc = 2;
            goto done;
        }
        if (!(model = fm_cli_load_model(from_recipe ? p.model : cfg, &cfg, &err))) {
            if (from_recipe) fm_cli_fail("train: the recipe's model: %s", err.msg);
            else fm_cli_fail("%s", err.msg);
            goto done;
        }
        if (threads >= 0) p.threads = threads;
    }
    if (fm_train_params_check(&p, &err) < 0) goto fail;
    /* The run folder is this process's from here to the end (fm_train and the
     * report take the lock again, nested); a fresh run makes it if needed.
     * Across processes it is process 0's alone. */
    if (lead && !(lock = fm_run_lock_take(p.out_dir, resume ? NULL : &created,
                                          "choose another folder (--out)", &err)))
        goto fail;
    if (epochs) p.epochs = epochs;
    if (!(dir = fm_cli_data_dir(dir))) goto done;
    if (fm_data_detect(dir, &format, &err) < 0 || fm_data_load(dir, FM_SET_TRAIN, &all, &err) < 0)
        goto fail;
    /* --limit keeps the first N images, so the split draws from those alone. */
    if (p.limit && p.limit < all.count) all.count = p.limit;
    if (fm_images_split(&all, p.val_split, p.seed, &train, &val, &err) < 0) goto fail;
    fm_images_free(&all); /* train and val are copies */

    p.model_source = cfg;
    p.data_dir = dir;
    p.data_format = format == FM_FORMAT_CSV ? "csv" : "idx";
    if (!lead) quiet = 1; /* process 0 speaks for the run */
    p.progress = quiet ? NULL : stdout;
    if (!quiet) {
        if (!resume) fm_model_summary(model, stdout);
        print_recipe(&p, overrides);
        char kernels[160];
        const char *tk = fm_kernels_train_name(p.precision);
        if (tk && strcmp(tk, fm_kernels_name()))
            snprintf(kernels, sizeof kernels, "kernels %s, training products on %s%s",
                     fm_kernels_name(), tk,
                     strstr(tk, "emu") ? " (bf16 emulated: this CPU has no AMX-BF16 or AVX512_BF16)" : "");
        else
            snprintf(kernels, sizeof kernels, "kernels %s", fm_kernels_name());
        if (val.count)
            printf("\nTraining on %zu images, validating on %zu (%s layout in %s; %s)\n",
                   train.count, val.count, p.data_format, dir, kernels);
        else
            printf("\nTraining on %zu images, no validation (%s layout in %s; %s)\n",
                   train.count, p.data_format, dir, kernels);
        if (fm_dist_size() > 1) {
            int each = fm_set_threads(p.threads); /* fm_train sets the same */
            printf("Across %d processes: batches of %d split %d per process, %d thread%s "
                   "each\n",
                   fm_dist_size(), p.batch, p.batch / fm_dist_size(), each, each == 1 ? "" : "s");
        }
    }
    if (lead && resume && threads > 0 && threads != info.threads)
        fprintf(stderr,
                "fmnist: note: the run used %d threads; with %d the rest of it rounds "
                "differently from an uninterrupted run\n",
                info.threads, threads);

    fm_train_result r;
    stop_signal = 0;
    p.interrupt = &stop_signal;
    catch_stop_signals(1);
    int trained = fm_train(model, &train, &val, &p, &r, &err);
    catch_stop_signals(0);
    if (trained < 0) {
        if (!r.interrupted) goto fail;
        fflush(stdout);
        if (lead) {
            fm_cli_fail("%s", err.msg);
            fprintf(stderr, "fmnist: resume with: %sfmnist train --resume %s\n",
                    fm_dist_size() > 1 ? "mpirun -np N " : "", p.out_dir);
        }
        rc = 128 + (int)stop_signal;
        goto done;
    }

    /* Each phase holds only what it needs: the peak is training's. */
    fm_images_free(&train);
    fm_images_free(&val);
    fm_eval_result ev;
    if (test) {
        if (fm_data_load(dir, FM_SET_TEST, &testset, &err) < 0 ||
            fm_dist_evaluate(model, &testset, &ev, &err) < 0 ||
            (lead && fm_train_write_run(&p, &r, &ev, &err) < 0))
            goto fail;
    }
    /* The report loads what was saved. */
    fm_model_free(model);
    model = NULL;
    fm_images_free(&testset);
    if (!lead) { /* process 0 reports */
        rc = 0;
        goto done;
    }
    /* The report is a view of what is saved: a failure is worth a warning, not the run. */
    char report[4200];
    snprintf(report, sizeof report, "%s/report.html", p.out_dir);
    fm_err rerr;
    int reported = fm_report_write(p.out_dir, dir, NULL, &rerr) == 0;
    if (!reported) fprintf(stderr, "fmnist: warning: no report: %s\n", rerr.msg);

    printf("\nTrained %d epoch%s in ", r.epochs_run, r.epochs_run == 1 ? "" : "s");
    print_duration(r.train_seconds);
    if (r.stopped_early)
        printf(" (stopped early: val_loss had not improved for %d epochs)", p.es_patience);
    if (resume) printf(" (resumed after epoch %d, step %d)", r.resumed_epoch, r.resumed_step);
    if (r.reduced_steps) /* process 0's wait, including for the slowest process */
        printf("; reductions across the processes %.1f ms a step (%.1f %% of the time)",
               1e3 * r.reduce_seconds / (double)r.reduced_steps,
               100.0 * r.reduce_seconds / r.train_seconds);
    if (p.save_best)
        printf("\nbest model:  %s/best.safetensors (best val_accuracy %.4f, epoch %d)\n",
               p.out_dir, r.best_val_accuracy, r.best_epoch);
    else
        printf("\n");
    if (r.restored_epoch)
        printf("final model: %s/model.safetensors (best val_loss %.4f, epoch %d; val_accuracy "
               "%.4f)\n",
               p.out_dir, r.restored_val_loss, r.restored_epoch, r.restored_val_accuracy);
    else
        printf("final model: %s/model.safetensors (%s of epoch %d%s)\n", p.out_dir,
               p.ema ? "the weights' moving average" : "the weights", r.epochs_run,
               p.precise_bn ? ", BatchNorm re-estimated" : "");
    if (test)
        printf("test:        accuracy %.4f, loss %.4f on %zu images\n", ev.accuracy, ev.loss,
               ev.count);
    printf("log:         %s/log.csv, %s/run.json\n", p.out_dir, p.out_dir);
    if (reported) printf("report:      %s\n", report);
    rc = 0;
    goto done;
fail:
    fm_cli_fail("%s", err.msg);
done:
    fm_run_lock_release(lock);
    /* a run that never started leaves no empty folder behind */
    if (rc != 0 && created) rmdir(p.out_dir);
    fm_model_free(model);
    fm_images_free(&all);
    fm_images_free(&train);
    fm_images_free(&val);
    fm_images_free(&testset);
    return rc;
}
