/* fm_train end to end on a small synthetic task with a small network: it
 * learns, writes the run folder, is reproducible from the seed, leaves the
 * best-val_loss weights in the model and the best-val_accuracy ones in the
 * checkpoint, and stops cleanly on divergence and bad input. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "clitest.h"
#include "traintest.h"
#include "core/json.h"
#include "train/train.h"

static const char *net = "input 28 28 1\n"
                         "conv filters=4 kernel=3 padding=same activation=relu\n"
                         "batchnorm\n"
                         "maxpool 4\n"
                         "dropout 0.25\n"
                         "flatten\n"
                         "dense units=10 activation=softmax\n";

static int run(const char *dir, const fm_images *tr, const fm_images *va, fm_train_params p,
               fm_train_result *r, fm_model **out, fm_err *err) {
    return tt_train(net, dir, tr, va, p, r, out, err);
}

int main(void) {
    tu_init("test_train"); /* fresh run folders: a finished run is not replaced */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s", tu_path("."));
    char d1[4300], d2[4300], path[4400];
    snprintf(d1, sizeof d1, "%s/train-a/nested", tmp);
    snprintf(d2, sizeof d2, "%s/train-b", tmp);

    fm_images tr = tt_bars(400, 1), va = tt_bars(100, 2);
    fm_train_params p = fm_train_default_params();
    p.epochs = 4;
    p.batch = 32;
    p.lr = 3e-3f;
    p.threads = 1;
    p.model_source = "test-net";
    if (getenv("FMNIST_TEST_VERBOSE")) p.progress = stdout;
    fm_train_result r;
    fm_err err;
    fm_model *m = NULL;
    int rc = run(d1, &tr, &va, p, &r, &m, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc < 0) return check_finish();

    /* it learns the bars (augmentation on: rotation and zoom move them a little) */
    CHECK(r.epochs_run == 4 && !r.stopped_early && !r.diverged);
    CHECK_MSG(r.val_accuracy > 0.8, "val_accuracy %g", r.val_accuracy);
    CHECK(r.train_count == 400 && r.val_count == 100 && r.threads == 1);
    CHECK(r.best_epoch >= 1 && r.best_epoch <= 4 && r.restored_epoch >= 1 && r.restored_epoch <= 4);

    /* the model holds the restored (best val_loss) weights: evaluating it
     * gives that epoch's validation numbers again */
    fm_eval_result e;
    CHECK(fm_model_evaluate(m, &va, &e, &err) == 0);
    CHECK_NEAR(e.loss, r.restored_val_loss, 1e-6);
    CHECK_NEAR(e.accuracy, r.restored_val_accuracy, 1e-9);
    /* model.safetensors is that model; best.safetensors the best val_accuracy */
    snprintf(path, sizeof path, "%s/model.safetensors", d1);
    fm_model *saved = fm_model_load(path, &err);
    CHECK_MSG(saved != NULL, "%s", err.msg);
    if (saved) {
        CHECK(fm_model_evaluate(saved, &va, &e, &err) == 0);
        CHECK_NEAR(e.loss, r.restored_val_loss, 1e-6);
        fm_model_free(saved);
    }
    snprintf(path, sizeof path, "%s/best.safetensors", d1);
    fm_model *best = fm_model_load(path, &err);
    CHECK_MSG(best != NULL, "%s", err.msg);
    if (best) {
        CHECK(fm_model_evaluate(best, &va, &e, &err) == 0);
        CHECK_NEAR(e.accuracy, r.best_val_accuracy, 1e-9);
        fm_model_free(best);
    }
    fm_model_free(m);

    /* log.csv: the header and one row per epoch, the learning rate used */
    char *log1 = tu_log_sans_time(d1);
    const char *head = "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate\n1,";
    CHECK(log1 && !strncmp(log1, head, strlen(head)));
    int rows = 0;
    for (char *c = log1 ? log1 : ""; *c; c++) rows += *c == '\n';
    CHECK(rows == 5);
    CHECK(log1 && strstr(log1, ",0.003\n4,") != NULL);

    /* run.json parses and carries the config and results */
    snprintf(path, sizeof path, "%s/run.json", d1);
    size_t len = 0;
    char *js = (char *)tu_read(path, &len);
    fm__json *j = js ? fm__json_parse(js, len, 0, &err) : NULL;
    CHECK_MSG(j != NULL, "%s", js ? err.msg : "no run.json");
    if (j) {
        const fm__json *cfg = fm__json_get(j, "config"), *res = fm__json_get(j, "results");
        CHECK(cfg && res);
        const fm__json *v;
        CHECK(cfg && (v = fm__json_get(cfg, "seed")) && v->number == 42);
        CHECK(cfg && (v = fm__json_get(cfg, "batch")) && v->number == 32);
        CHECK(cfg && (v = fm__json_get(cfg, "model")) && v->type == FM__JSON_STRING &&
              !strcmp(v->string, "test-net"));
        CHECK(cfg && (v = fm__json_get(cfg, "kernels")) && v->type == FM__JSON_STRING);
        CHECK(cfg && (v = fm__json_get(cfg, "threads")) && v->number == 1);
        CHECK(res && (v = fm__json_get(res, "epochs_run")) && v->number == 4);
        CHECK(res && (v = fm__json_get(res, "best_epoch")) && v->number == r.best_epoch);
        CHECK(res && (v = fm__json_get(res, "restored_epoch")) && v->number == r.restored_epoch);
        CHECK(res && (v = fm__json_get(res, "stopped_early")) && v->type == FM__JSON_BOOL);
        CHECK(res && (v = fm__json_get(res, "val_accuracy")) &&
              fabs(v->number - r.val_accuracy) < 1e-8);
        CHECK(res && fm__json_get(res, "test_accuracy") == NULL);
        fm__json_free(j);
    }
    free(js);

    /* the same seed and threads again: the same log and the same weights */
    rc = run(d2, &tr, &va, p, &r, NULL, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    char *log2 = tu_log_sans_time(d2);
    CHECK(log1 && log2 && !strcmp(log1, log2));
    size_t l1, l2;
    snprintf(path, sizeof path, "%s/model.safetensors", d1);
    unsigned char *w1 = tu_read(path, &l1);
    snprintf(path, sizeof path, "%s/model.safetensors", d2);
    unsigned char *w2 = tu_read(path, &l2);
    CHECK(w1 && w2 && l1 == l2 && !memcmp(w1, w2, l1));
    free(w1);
    free(w2);
    free(log1);
    free(log2);

    /* divergence: an absurd learning rate overflows; fm_train stops with a
     * message saying where, and keeps nothing it did not finish */
    fm_train_params bad = p;
    bad.lr = 1e30f;
    bad.epochs = 3;
    snprintf(path, sizeof path, "%s/train-nan", tmp);
    rc = run(path, &tr, &va, bad, &r, NULL, &err);
    CHECK(rc < 0 && r.diverged);
    CHECK_MSG(strstr(err.msg, "became") && strstr(err.msg, "epoch"), "%s", err.msg);
    if (getenv("FMNIST_TEST_VERBOSE")) fprintf(stderr, "divergence: %s\n", err.msg);

    /* Interrupted after every single step and resumed each time, so the
     * checkpoint is taken up from every position, epoch boundaries included:
     * the same log and weights as the run never stopped (d1). */
    char d3[4300], d4[4300];
    snprintf(d3, sizeof d3, "%s/train-resume", tmp);
    snprintf(d4, sizeof d4, "%s/train-unfinished", tmp);
    volatile sig_atomic_t stop_now = 1;
    fm_train_params ip = p;
    ip.interrupt = &stop_now;
    rc = run(d3, &tr, &va, ip, &r, NULL, &err);
    CHECK_MSG(rc < 0 && r.interrupted && strstr(err.msg, "interrupted at epoch 1, step 1/13"),
              "%s", err.msg);
    ip.resume = 1;
    int calls = 1, boundaries = 0;
    while (rc < 0 && r.interrupted && calls < 100) {
        rc = run(d3, &tr, &va, ip, &r, NULL, &err);
        calls++;
        boundaries += rc < 0 && strstr(err.msg, "interrupted after epoch") != NULL;
    }
    CHECK_MSG(rc == 0, "%s", err.msg);
    /* 13 steps and the epoch's end per epoch */
    CHECK_MSG(calls == 4 * 14 && boundaries == 3, "%d calls, %d boundaries", calls, boundaries);
    CHECK(r.epochs_run == 4 && r.resumed_epoch == 3 && r.resumed_step == 13 && r.threads == 1);
    char *log_ref = tu_log_sans_time(d1), *log_res = tu_log_sans_time(d3);
    CHECK_MSG(log_ref && log_res && !strcmp(log_ref, log_res), "logs differ:\n%s\n%s", log_ref,
              log_res);
    free(log_ref);
    free(log_res);
    const char *files[2] = {"model.safetensors", "best.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", d1, files[i]);
        unsigned char *a = tu_read(path, &l1);
        snprintf(path, sizeof path, "%s/%s", d3, files[i]);
        unsigned char *b = tu_read(path, &l2);
        CHECK_MSG(a && b && l1 == l2 && !memcmp(a, b, l1), "%s differs after resumes", files[i]);
        free(a);
        free(b);
    }
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", d3);
    CHECK(access(path, F_OK) != 0); /* removed once the run ended */

    /* An unfinished run: what a resume reads back, and what it refuses. */
    ip.resume = 0;
    rc = run(d4, &tr, &va, ip, &r, NULL, &err);
    CHECK(rc < 0 && r.interrupted);
    fm_train_params rp = fm_train_default_params();
    fm_train_resume_info info;
    fm_model *rm = fm_train_resume_load(d4, &rp, &info, &err);
    CHECK_MSG(rm != NULL, "%s", err.msg);
    CHECK(rp.batch == 32 && rp.lr == 3e-3f && rp.seed == 42 && rp.epochs == 4 && rp.augment &&
          rp.resume && !strcmp(rp.out_dir, d4) && rp.val_split == p.val_split);
    CHECK(info.epoch == 0 && info.step == 1 && info.threads == 1 &&
          !strcmp(info.model_source, "test-net"));
    CHECK(rm && !strcmp(fm_model_description(rm), net));
    fm_model_free(rm);
    stop_now = 0;
    rc = run(d4, &tr, &va, p, &r, NULL, &err); /* a fresh run over it */
    CHECK_FAILS_WITH(rc, err, "unfinished run");
    fm_train_params bad_resume = p;
    bad_resume.resume = 1;
    bad_resume.batch = 16;
    rc = run(d4, &tr, &va, bad_resume, &r, NULL, &err);
    CHECK_FAILS_WITH(rc, err, "the run's batch is 32, not 16");
    bad_resume.batch = 32;
    va.pixels[5] ^= 1;
    rc = run(d4, &tr, &va, bad_resume, &r, NULL, &err);
    CHECK_FAILS_WITH(rc, err, "the data differ from the run's");
    va.pixels[5] ^= 1;
    fm_model *other = fm_model_parse("input 28 28 1\nflatten\ndense units=10 activation=softmax\n",
                                     "other-net", &err);
    bad_resume.out_dir = d4;
    rc = other ? fm_train(other, &tr, &va, &bad_resume, &r, &err) : -1;
    CHECK_FAILS_WITH(rc, err, "model description differs");
    fm_model_free(other);
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", d4);
    size_t full;
    unsigned char *bytes = tu_read(path, &full);
    FILE *f = fopen(path, "wb"); /* cut short */
    if (f && bytes) fwrite(bytes, 1, full / 2, f);
    if (f) fclose(f);
    rc = run(d4, &tr, &va, bad_resume, &r, NULL, &err);
    CHECK_FAILS_WITH(rc, err, "checkpoint.safetensors");
    /* a recipe fm_train would refuse is refused when read back, naming it */
    const char *batch_kv = "\"fmnist.train.batch\":\"32\"";
    unsigned char *at = NULL;
    for (size_t i = 0; bytes && i + strlen(batch_kv) <= full && !at; i++)
        if (!memcmp(bytes + i, batch_kv, strlen(batch_kv))) at = bytes + i;
    CHECK(at != NULL);
    if (at) {
        memcpy(at + strlen(batch_kv) - 3, "00", 2); /* the same length: the header stays valid */
        f = fopen(path, "wb");
        if (f) fwrite(bytes, 1, full, f);
        if (f) fclose(f);
        memcpy(at + strlen(batch_kv) - 3, "32", 2);
        rp = fm_train_default_params();
        rm = fm_train_resume_load(d4, &rp, &info, &err);
        CHECK(rm == NULL);
        CHECK_FAILS_WITH(-1, err, "the recorded recipe is not valid: batch must be at least 1");
        fm_model_free(rm);
    }
    f = fopen(path, "wb"); /* restored: the resume finishes the run */
    if (f && bytes) fwrite(bytes, 1, full, f);
    if (f) fclose(f);
    free(bytes);
    rc = run(d4, &tr, &va, bad_resume, &r, NULL, &err);
    CHECK_MSG(rc == 0 && r.epochs_run == 4, "%s", err.msg);
    rc = run(d4, &tr, &va, bad_resume, &r, NULL, &err); /* nothing left to resume */
    CHECK_FAILS_WITH(rc, err, "checkpoint.safetensors");

    /* bad input is an error, not a crash */
    fm_images empty = {0};
    rc = run(d2, &tr, &empty, p, &r, NULL, &err);
    CHECK(rc < 0 && strstr(err.msg, "validation"));
    bad = p;
    bad.checkpoint_steps = -1;
    rc = run(d2, &tr, &va, bad, &r, NULL, &err);
    CHECK_FAILS_WITH(rc, err, "checkpoint steps");
    bad = p;
    bad.batch = 0;
    rc = run(d2, &tr, &va, bad, &r, NULL, &err);
    CHECK(rc < 0 && strstr(err.msg, "batch"));
    snprintf(path, sizeof path, "%s/run.json/x", d1); /* a file where a folder must go */
    rc = run(path, &tr, &va, p, &r, NULL, &err);
    CHECK(rc < 0 && strstr(err.msg, "run.json"));

    fm_images_free(&tr);
    fm_images_free(&va);
    return check_finish();
}
