/* fmnist eval: score a saved model on the test set (or the training run's
 * train/val split): loss, accuracy, per-class precision/recall/accuracy and
 * the confusion matrix, as a table or one JSON object. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: fmnist eval --weights FILE [--data DIR] [--split train|val|test]\n"
            "                   [--val-split F] [--seed N] [--limit N] [--no-tta] [--json]\n"
            "\n"
            "Evaluates a model saved by fmnist train (inference mode: BatchNorm moving\n"
            "statistics, no dropout) and prints the loss, the accuracy, precision, recall and\n"
            "one-vs-rest accuracy per class, and the confusion matrix (rows: true class,\n"
            "columns: predicted). A model file that records test-time augmentation (flip:\n"
            "each image and its left-right mirror, probabilities averaged) is evaluated\n"
            "with it, unless --no-tta.\n"
            "\n"
            "  --weights FILE   model file (.safetensors written by fmnist train)\n"
            "  --data DIR       data folder (default: ./DATA if it holds the CSVs, else\n"
            "                   " FM_DEBIAN_DATA_DIR ")\n"
            "  --split S        test (default), or train / val: the split of the training\n"
            "                   images the model's training run made (recorded in model\n"
            "                   files from fmnist train; the flags below override it)\n"
            "  --val-split F    fraction held out for validation (default: recorded, else 0.2)\n"
            "  --seed N         seed of the split (default: recorded, else 42)\n"
            "  --limit N        first N training images before the split (default:\n"
            "                   recorded, else all)\n"
            FM_CLI_NO_TTA_HELP
            "  --json           one JSON object: loss, accuracy, count, per_class\n"
            "                   [{class, name, precision, recall, accuracy}], confusion;\n"
            "                   for train/val also seed, val_split, limit and split_from\n"
            "                   (\"model\", \"model+flags\" or \"flags\"), precision (\"fp32\"\n"
            "                   or \"int8\": fmnist quantize), and tta: the test-time\n"
            "                   augmentation used (\"none\" or \"flip\")\n");
}

/* How a train/val split was made (printed for those sets, not the test set). */
typedef struct {
    unsigned long long seed;
    double val_split;
    size_t limit;
    int recorded;   /* the model file's record of its training run's split was used */
    int overridden; /* ... with some of it replaced by flags */
} split_info;

static const char *split_origin(const split_info *how) {
    return !how->recorded   ? "the flags or their defaults; the model file records none"
           : how->overridden ? "recorded in the model file, flags overriding"
                             : "recorded in the model file";
}

static void print_json(const char *weights, const char *split, const split_info *how,
                       const fm_model *model, const fm_eval_result *e) {
    printf("{\"weights\": ");
    fm_json_write_string(stdout, weights);
    printf(", \"split\": \"%s\", ", split);
    if (how)
        printf("\"seed\": %llu, \"val_split\": %.15g, \"limit\": %zu, \"split_from\": \"%s\", ",
               how->seed, how->val_split, how->limit,
               how->recorded && !how->overridden ? "model" : how->recorded ? "model+flags" : "flags");
    printf("\"precision\": \"%s\", \"tta\": \"%s\", \"count\": %zu, \"loss\": %.9g, "
           "\"accuracy\": %.9g,\n \"per_class\": [",
           fm_model_precision(model), fm_tta_name(fm_model_tta(model)), e->count, e->loss,
           e->accuracy);
    for (int c = 0; c < FM_NUM_CLASSES; c++) {
        printf("%s\n  {\"class\": %d, \"name\": ", c ? "," : "", c);
        fm_json_write_string(stdout, fm_class_names[c]);
        printf(", \"precision\": %.9g, \"recall\": %.9g, \"accuracy\": %.9g}", e->precision[c],
               e->recall[c], e->class_accuracy[c]);
    }
    printf("],\n \"confusion\": [");
    for (int t = 0; t < FM_NUM_CLASSES; t++) {
        printf("%s\n  [", t ? "," : "");
        for (int p = 0; p < FM_NUM_CLASSES; p++) printf("%s%u", p ? ", " : "", e->confusion[t][p]);
        printf("]");
    }
    printf("]}\n");
}

static void print_table(const char *weights, const char *precision, const char *split,
                        const char *dir, const split_info *how, const char *tta,
                        const fm_eval_result *e) {
    printf("weights:  %s\n", weights);
    if (strcmp(precision, "fp32")) printf("model:    %s\n", precision);
    printf("set:      %s, %zu images from %s\n", split, e->count, dir);
    if (how) {
        printf("split:    seed %llu, validation fraction %g, ", how->seed, how->val_split);
        if (how->limit) printf("first %zu training images", how->limit);
        else printf("all training images");
        printf(" (%s)\n", split_origin(how));
    }
    if (tta) printf("tta:      %s\n", tta);
    printf("loss:     %.4f\naccuracy: %.4f (%.2f%%)\n\n", e->loss, e->accuracy, 100 * e->accuracy);
    printf("  %-14s %9s %9s %9s\n", "class", "precision", "recall", "accuracy");
    for (int c = 0; c < FM_NUM_CLASSES; c++)
        printf("%d %-14s %9.4f %9.4f %9.4f\n", c, fm_class_names[c], e->precision[c], e->recall[c],
               e->class_accuracy[c]);
    printf("\nconfusion matrix (rows: true class, columns: predicted class)\n  %-14s", "");
    for (int p = 0; p < FM_NUM_CLASSES; p++) printf(" %5d", p);
    printf("\n");
    for (int t = 0; t < FM_NUM_CLASSES; t++) {
        printf("%d %-14s", t, fm_class_names[t]);
        for (int p = 0; p < FM_NUM_CLASSES; p++) printf(" %5u", e->confusion[t][p]);
        printf("\n");
    }
}

int fm_cmd_eval(int argc, char **argv) {
    static const struct option opts[] = {
        {"weights", required_argument, NULL, 'w'}, {"data", required_argument, NULL, 'd'},
        {"split", required_argument, NULL, 'S'},   {"val-split", required_argument, NULL, 'v'},
        {"seed", required_argument, NULL, 's'},    {"limit", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},          {"help", no_argument, NULL, 'h'},
        {"no-tta", no_argument, NULL, 'T'},        {NULL, 0, NULL, 0},
    };
    const char *weights = NULL, *dir = NULL, *split = "test";
    double val_split = 0.2;
    long seed = 42, limit = 0;
    int json = 0, no_tta = 0, c, seed_given = 0, val_given = 0, limit_given = 0;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'w': weights = optarg; break;
        case 'd': dir = optarg; break;
        case 'j': json = 1; break;
        case 'T': no_tta = 1; break;
        case 'S':
            if (strcmp(optarg, "train") && strcmp(optarg, "val") && strcmp(optarg, "test")) {
                fm_cli_fail("eval: --split: '%s' is not train, val or test", optarg);
                return 2;
            }
            split = optarg;
            break;
        case 'v':
            if (fm_cli_double("--val-split", optarg, 1e-6, 0.99, &val_split) < 0) return 2;
            val_given = 1;
            break;
        case 's':
            if (fm_cli_long("--seed", optarg, 0, LONG_MAX, &seed) < 0) return 2;
            seed_given = 1;
            break;
        case 'n':
            if (fm_cli_long("--limit", optarg, 2, LONG_MAX, &limit) < 0) return 2;
            limit_given = 1;
            break;
        case 'h': usage(stdout); return 0;
        default: return fm_cli_getopt_error("eval", c, argv, opts);
        }
    }
    if (optind < argc) {
        fm_cli_fail("eval: unexpected argument '%s' (see fmnist eval --help)", argv[optind]);
        return 2;
    }
    if (!weights) {
        fm_cli_fail("eval: --weights FILE is required (see fmnist eval --help)");
        return 2;
    }
    if (!(dir = fm_cli_data_dir(dir))) return 1;

    fm_err err;
    fm_images all = {0}, train = {0}, val = {0};
    fm_model *model = NULL;
    fm_eval_result e;
    int rc = 1;
    /* The model first: a bad weights file is reported before the data loads. */
    if (!(model = fm_model_load(weights, &err))) goto fail;
    fm_tta recorded = fm_cli_no_tta(model, no_tta);
    const fm_images *set = &all;
    split_info how = {(unsigned long long)seed, val_split, (size_t)limit, 0, 0};
    if (!strcmp(split, "test")) {
        if (fm_data_load(dir, FM_SET_TEST, &all, &err) < 0) goto fail;
    } else {
        /* the run's own split, unless a flag says otherwise */
        uint64_t run_seed;
        double run_val;
        size_t run_limit;
        if (fm_model_training_split(model, &run_seed, &run_val, &run_limit) == 0) {
            if (!seed_given) how.seed = run_seed;
            if (!val_given) how.val_split = run_val;
            if (!limit_given) how.limit = run_limit;
            how.recorded = 1;
            how.overridden = seed_given || val_given || limit_given;
        }
        if (fm_data_load(dir, FM_SET_TRAIN, &all, &err) < 0) goto fail;
        if (how.limit && how.limit < all.count) all.count = how.limit;
        if (fm_images_split(&all, how.val_split, how.seed, &train, &val, &err) < 0) goto fail;
        set = !strcmp(split, "val") ? &val : &train;
    }
    const split_info *shown = strcmp(split, "test") ? &how : NULL;
    if (fm_model_evaluate(model, set, &e, &err) < 0) goto fail;
    if (json)
        print_json(weights, split, shown, model, &e);
    else
        print_table(weights, fm_model_precision(model), split, dir, shown,
                    fm_cli_tta_note(recorded, model), &e);
    rc = 0;
    goto done;
fail:
    fm_cli_fail("%s", err.msg);
done:
    fm_model_free(model);
    fm_images_free(&all);
    fm_images_free(&train);
    fm_images_free(&val);
    return rc;
}
