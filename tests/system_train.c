/* fmnist train end to end on the real data: a short run (the first 3000
 * training images, two epochs) must learn well above chance and write the
 * whole run folder; a tinier one must give the same log and weights bit for
 * bit from the same seed whether the data comes as IDX or as CSV. Bad flags
 * and inputs fail cleanly. */
#include "check.h"
#include "clitest.h"
#include "core/json.h"


static const char *bin;

static double json_number(const fm__json *obj, const char *key) {
    const fm__json *v = obj ? fm__json_get(obj, key) : NULL;
    return v && v->type == FM__JSON_NUMBER ? v->number : NAN;
}

/* The learning run. BatchNorm's moving statistics start at mean 0, var 1 and
 * move 1% per step (Keras's momentum 0.99), so inference is only right after
 * several hundred steps: small batches buy steps cheaply (600 here). */
#define LEARN_ARGS "train --epochs 2 --batch 8 --no-augment --threads 2 --seed 7"
/* The reproducibility runs: a few steps with augmentation and dropout. */
#define REPRO_ARGS "train --limit 320 --epochs 1 --batch 16 --threads 2 --seed 7"

int main(void) {
    bin = getenv("FMNIST_BIN");
    const char *src = getenv("FMNIST_SOURCE_DIR");
    if (!bin || !src) SKIP("FMNIST_BIN or FMNIST_SOURCE_DIR is not set");
    char model[4200];
    snprintf(model, sizeof model, "%s/configs/fashion-cnn.cfg", src);
    fm_err err;
    fm_images train, test;
    if (fm_data_load(FM_DEBIAN_DATA_DIR, FM_SET_TRAIN, &train, &err) < 0 ||
        fm_data_load(FM_DEBIAN_DATA_DIR, FM_SET_TEST, &test, &err) < 0)
        SKIP("no Fashion-MNIST in " FM_DEBIAN_DATA_DIR " (%s)", err.msg);
    tu_init("system_train");

    /* A small copy of the data set in both layouts: the first 3000 training
     * and 1000 test images (so --test stays quick). */
    fm_images small_train = train, small_test = test;
    small_train.count = 3000;
    small_test.count = 1000;
    char idx_dir[4200], csv_dir[4200], run_a[4200], run_b[4200], run_c[4200], args[16384],
        path[4300];
    snprintf(idx_dir, sizeof idx_dir, "%s", tu_path("idx"));
    snprintf(csv_dir, sizeof csv_dir, "%s", tu_path("csv"));
    snprintf(run_a, sizeof run_a, "%s", tu_path("run-a"));
    snprintf(run_b, sizeof run_b, "%s", tu_path("run-b"));
    snprintf(run_c, sizeof run_c, "%s", tu_path("run-c"));
    mkdir(idx_dir, 0777);
    mkdir(csv_dir, 0777);
    CHECK_MSG(fm_data_write(idx_dir, FM_FORMAT_IDX, &small_train, &small_test, &err) == 0, "%s",
              err.msg);
    CHECK_MSG(fm_data_write(csv_dir, FM_FORMAT_CSV, &small_train, &small_test, &err) == 0, "%s",
              err.msg);
    fm_images_free(&train);
    fm_images_free(&test);

    /* Run A: learn, then score the final model on the test slice (--test). */
    snprintf(args, sizeof args, LEARN_ARGS " --model '%s' --data '%s' --out '%s' --test --quiet",
             model, idx_dir, run_a);
    int rc = tu_run(args);
    char *out = tu_text(tu_path("out.txt"));
    CHECK_MSG(rc == 0, "exit %d: %s", rc, tu_text(tu_path("err.txt")));
    CHECK_MSG(strstr(out, "Trained 2 epochs in") && strstr(out, "test:        accuracy") &&
                  !strstr(out, "Epoch 1/2"),
              "%s", out);
    free(out);

    /* the run folder */
    const char *files[] = {"log.csv", "best.safetensors", "model.safetensors", "run.json"};
    for (int i = 0; i < 4; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", run_a, files[i]);
        CHECK_MSG(stat(path, &st) == 0 && st.st_size > 0, "missing %s", path);
    }
    char *log_a = tu_log_sans_time(run_a);
    const char *head = "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate\n1,";
    CHECK_MSG(!strncmp(log_a, head, strlen(head)) &&
                  strstr(log_a, "\n2,"),
              "%s", log_a);
    free(log_a);

    /* run.json: results, and the test accuracy well above chance (0.1) */
    snprintf(path, sizeof path, "%s/run.json", run_a);
    char *js = tu_text(path);
    fm__json *j = fm__json_parse(js, strlen(js), 0, &err);
    CHECK_MSG(j != NULL, "run.json: %s", err.msg);
    const fm__json *res = j ? fm__json_get(j, "results") : NULL;
    const fm__json *cfg = j ? fm__json_get(j, "config") : NULL;
    double test_acc = json_number(res, "test_accuracy");
    double val_acc = json_number(res, "restored_val_accuracy");
    printf("test accuracy after the short run: %.4f\n", test_acc);
    CHECK_MSG(test_acc >= 0.6, "test_accuracy %g", test_acc);
    CHECK(json_number(res, "epochs_run") == 2 && json_number(res, "restored_epoch") >= 1 &&
          json_number(res, "best_epoch") >= 1);
    CHECK(json_number(res, "test_count") == 1000);
    CHECK(json_number(cfg, "train_count") == 2400 && json_number(cfg, "val_count") == 600);
    const fm__json *fmt = cfg ? fm__json_get(cfg, "format") : NULL;
    CHECK(fmt && fmt->type == FM__JSON_STRING && !strcmp(fmt->string, "idx"));
    fm__json_free(j);
    free(js);

    /* fmnist eval agrees with the number train --test recorded */
    snprintf(args, sizeof args, "eval --weights '%s/model.safetensors' --data '%s' --json", run_a,
             idx_dir);
    rc = tu_run(args);
    out = tu_text(tu_path("out.txt"));
    CHECK_MSG(rc == 0, "eval exit %d: %s", rc, tu_text(tu_path("err.txt")));
    j = fm__json_parse(out, strlen(out), 0, &err);
    CHECK_MSG(j != NULL, "eval --json: %s\n%s", err.msg, out);
    CHECK_MSG(fabs(json_number(j, "accuracy") - test_acc) < 1e-6, "eval %g vs run.json %g",
              json_number(j, "accuracy"), test_acc);
    fm__json_free(j);
    free(out);
    /* ... and, with no split flags, on the run's own validation split (--seed 7,
     * recorded in the model file), the restored epoch's val_accuracy */
    snprintf(args, sizeof args, "eval --weights '%s/model.safetensors' --data '%s' --split val --json",
             run_a, idx_dir);
    rc = tu_run(args);
    out = tu_text(tu_path("out.txt"));
    j = rc == 0 ? fm__json_parse(out, strlen(out), 0, &err) : NULL;
    CHECK_MSG(j != NULL, "eval --split val: exit %d: %s", rc, out);
    const fm__json *from = j ? fm__json_get(j, "split_from") : NULL;
    CHECK(from && from->type == FM__JSON_STRING && !strcmp(from->string, "model"));
    CHECK(json_number(j, "seed") == 7 && json_number(j, "count") == 600);
    CHECK_MSG(fabs(json_number(j, "accuracy") - val_acc) < 1e-6, "eval val %g vs run.json %g",
              json_number(j, "accuracy"), val_acc);
    fm__json_free(j);
    free(out);

    /* Runs B (IDX, with the progress lines) and C (CSV, quiet): the same seed
     * on the two layouts. Identical logs and weights show both that a run is
     * reproducible and that the layout does not matter (a nondeterministic
     * trainer could not match itself across the two). */
    snprintf(args, sizeof args, REPRO_ARGS " --model '%s' --data '%s' --out '%s'", model, idx_dir,
             run_b);
    rc = tu_run(args);
    out = tu_text(tu_path("out.txt"));
    CHECK_MSG(rc == 0, "exit %d: %s", rc, tu_text(tu_path("err.txt")));
    CHECK_MSG(strstr(out, "Epoch 1/1\n16/16 \xe2\x94\x81") && strstr(out, " - val_loss: ") &&
                  strstr(out, " - learning_rate: 1.0000e-03\n") && strstr(out, "Total params"),
              "progress lines:\n%s", out);
    free(out);
    snprintf(args, sizeof args, REPRO_ARGS " --model '%s' --data '%s' --out '%s' --quiet", model,
             csv_dir, run_c);
    rc = tu_run(args);
    out = tu_text(tu_path("out.txt"));
    CHECK_MSG(rc == 0, "exit %d: %s", rc, tu_text(tu_path("err.txt")));
    CHECK_MSG(!strstr(out, "Epoch 1/1") && strstr(out, "final model:"), "--quiet:\n%s", out);
    free(out);
    char *log_b = tu_log_sans_time(run_b), *log_c = tu_log_sans_time(run_c);
    CHECK_MSG(!strcmp(log_b, log_c) && strstr(log_b, "\n1,"), "logs differ:\n%s\n%s", log_b,
              log_c);
    const char *weights[] = {"model.safetensors", "best.safetensors"};
    for (int i = 0; i < 2; i++) {
        size_t nb, nc;
        snprintf(path, sizeof path, "%s/%s", run_b, weights[i]);
        unsigned char *wb = tu_read(path, &nb);
        snprintf(path, sizeof path, "%s/%s", run_c, weights[i]);
        unsigned char *wc = tu_read(path, &nc);
        CHECK_MSG(wb && wc && nb == nc && !memcmp(wb, wc, nb), "%s differ", weights[i]);
        free(wb);
        free(wc);
    }
    free(log_b);
    free(log_c);

    /* bad flags: exit 2 with one line; bad input: exit 1 with one line */
    const char *bad2[] = {"train --epochs 0", "train --bogus", "train --lr x", "train extra",
                          "train --batch"};
    for (int i = 0; i < 5; i++) {
        rc = tu_run(bad2[i]);
        char *e = tu_text(tu_path("err.txt"));
        CHECK_MSG(rc == 2 && !strncmp(e, "fmnist: ", 8) && strchr(e, '\n') == e + strlen(e) - 1,
                  "%s: exit %d, stderr '%s'", bad2[i], rc, e);
        free(e);
    }
    snprintf(args, sizeof args, "train --data '%s' --model '%s/nope.cfg' --out '%s'", idx_dir,
             idx_dir, tu_path("run-d"));
    rc = tu_run(args);
    char *e = tu_text(tu_path("err.txt"));
    CHECK_MSG(rc == 1 && strstr(e, "nope.cfg") && strchr(e, '\n') == e + strlen(e) - 1,
              "missing model: exit %d, '%s'", rc, e);
    free(e);
    rc = tu_run("train --help");
    CHECK(rc == 0);

    /* Away from the source folder the default network is fmnist's built-in
     * copy of configs/fashion-cnn.cfg. */
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' summary >'%s' 2>&1", tu_path("."), bin,
             tu_path("summary.txt"));
    rc = system(cmd);
    out = tu_text(tu_path("summary.txt"));
    CHECK_MSG(rc == 0 && strstr(out, "Model: \"fashion-cnn\"") &&
                  strstr(out, "Total params: 1,868,234"),
              "built-in default model: %s", out);
    free(out);
    return check_finish();
}
