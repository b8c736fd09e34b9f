/* run.json: a finished run's configuration and results (and, from fmnist
 * train, its test scores), the record fmnist report reads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/lock.h"
#include "fmnist/fmnist.h"
#include "train/recipe.h"

static void json_str(FILE *f, const char *s) {
    if (s)
        fm_json_write_string(f, s);
    else
        fputs("null", f);
}

/* JSON has no NaN: a number that is not finite is written as null. */
static void json_num(FILE *f, double v) {
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f);
}

/* A float parameter with the digits it has, not its double expansion. */
static void json_float(FILE *f, float v) {
    if (isfinite(v))
        fprintf(f, "%.7g", (double)v);
    else
        fputs("null", f);
}

int fm_train_write_run(const fm_train_params *p, const fm_train_result *r,
                       const fm_eval_result *test, fm_err *err) {
    char path[4096];
    if (fm__path_join(path, sizeof path, p->out_dir, "run.json", err) < 0) return -1;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return fm__err(err, "%s: out of memory", path);

    fputs("{\n  \"config\": {\n    \"recipe\": ", f);
    fm__recipe_write_json(f, p);
    fputs(",\n    \"model\": ", f);
    json_str(f, p->model_source);
    fputs(",\n    \"data_dir\": ", f);
    json_str(f, p->data_dir);
    fputs(",\n    \"format\": ", f);
    json_str(f, p->data_format);
    fprintf(f, ",\n    \"seed\": %llu,\n    \"batch\": %d,\n    \"lr\": ",
            (unsigned long long)p->seed, p->batch);
    json_float(f, p->lr);
    fprintf(f, ",\n    \"epochs_max\": %d,\n    \"augment\": %s,\n    \"val_split\": ", p->epochs,
            p->augment ? "true" : "false");
    json_num(f, p->val_split);
    fprintf(f,
            ",\n    \"limit\": %zu,\n    \"threads\": %d,\n    \"kernels\": ",
            p->limit, r->threads);
    json_str(f, fm_kernels_name());
    fputs(",\n    \"train_kernels\": ", f);
    json_str(f, fm_kernels_train_name(p->precision));
    fprintf(f,
            ",\n    \"es_patience\": %d,\n    \"lr_patience\": %d,\n    \"lr_factor\": %g,"
            "\n    \"min_lr\": %g,\n    \"train_count\": %zu,\n    \"val_count\": %zu\n  },\n",
            p->es_patience, p->lr_patience, (double)p->lr_factor, (double)p->min_lr,
            r->train_count, r->val_count);

    fprintf(f,
            "  \"results\": {\n    \"epochs_run\": %d,\n    \"images_processed\": %lld,"
            "\n    \"best_epoch\": %d,"
            "\n    \"restored_epoch\": %d,\n    \"stopped_early\": %s,\n    \"diverged\": %s,"
            "\n    \"lr_reductions\": %d,\n    \"final_learning_rate\": ",
            r->epochs_run, (long long)r->images, r->best_epoch, r->restored_epoch, r->stopped_early ? "true" : "false",
            r->diverged ? "true" : "false", r->lr_reductions);
    json_float(f, r->final_lr);
    const char *names[] = {"train_seconds",     "train_loss",       "train_accuracy",
                           "val_loss",          "val_accuracy",     "best_val_accuracy",
                           "restored_val_loss", "restored_val_accuracy"};
    const double values[] = {r->train_seconds,     r->loss,         r->accuracy,
                             r->val_loss,          r->val_accuracy, r->best_val_accuracy,
                             r->restored_val_loss, r->restored_val_accuracy};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        fprintf(f, ",\n    \"%s\": ", names[i]);
        json_num(f, values[i]);
    }
    if (test) {
        fputs(",\n    \"test_loss\": ", f);
        json_num(f, test->loss);
        fputs(",\n    \"test_accuracy\": ", f);
        json_num(f, test->accuracy);
        fprintf(f, ",\n    \"test_count\": %zu", test->count);
    }
    fputs("\n  }\n}\n", f);

    int bad = ferror(f);
    int rc = fclose(f) != 0 || bad ? fm__err(err, "%s: out of memory", path) : 0;
    /* the run folder's lock (held already when fm_train or fmnist train calls) */
    fm__lock lock;
    if (rc == 0 && (rc = fm__lock_take(&lock, p->out_dir, NULL, err)) == 0) {
        rc = fm__write_file_atomic(path, text, len, err);
        fm__lock_release(&lock);
    }
    free(text);
    return rc;
}
