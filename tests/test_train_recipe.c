/* fm_train with the recipe keys beyond the notebook's (issue 12): training
 * on every image without validation, the refusals of what needs it, the
 * per-step schedules in the log, the moving average (its update rule, and
 * that a decay of 0 is the last weights), precise BatchNorm (the mean of
 * the batches' statistics), SGD, and resuming such a run from every step to
 * the same bits as a run never stopped. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "clitest.h"
#include "traintest.h"
#include "model/model.h"
#include "train/ema.h"
#include "train/schedule.h"
#include "train/train.h"

static const char *net = "input 28 28 1\n"
                         "conv filters=4 kernel=3 padding=same activation=relu\n"
                         "batchnorm momentum=0.9\n" /* statistics that keep up in 65 steps */
                         "maxpool 4\n"
                         "dropout 0.25\n"
                         "flatten\n"
                         "dense units=10 activation=softmax\n";

static int run(const char *dir, const fm_images *tr, const fm_images *va, fm_train_params p,
               fm_train_result *r, fm_model **out, fm_err *err) {
    return tt_train(net, dir, tr, va, p, r, out, err);
}

/* p with a recipe text applied (the test's own recipes are valid). */
static fm_train_params with(fm_train_params p, const char *text) {
    fm_err err;
    if (fm_train_recipe_apply(&p, text, "test", &err) < 0) {
        fprintf(stderr, "bad test recipe: %s\n", err.msg);
        exit(1);
    }
    return p;
}

static const char *no_val = "val_split = 0\nearly_stopping_patience = 0\nsave_best = no\n"
                            "schedule = cosine\n";

/* The update rule: a copy first, then d avg + (1 - d) w; the warm-up's ramp. */
static void test_ema_rule(void) {
    CHECK(fm__ema_decay(0.99f, 0, 0) == 0.0f && fm__ema_decay(0.99f, 1, 0) == 0.0f);
    CHECK(fm__ema_decay(0.99f, 0, 1) == 0.99f);
    CHECK(fm__ema_decay(0.99f, 1, 1) == (float)(2.0 / 11.0));
    CHECK(fm__ema_decay(0.99f, 1, 100000) == 0.99f); /* the ramp passes the decay */
    float avg[3] = {7, 7, 7};
    const float w1[3] = {1, 2, 3}, w2[3] = {3, 2, 1};
    fm__ema_update(avg, w1, 3, 0.75f, 0, 0);
    CHECK(avg[0] == 1 && avg[1] == 2 && avg[2] == 3);
    fm__ema_update(avg, w2, 3, 0.75f, 0, 1);
    CHECK(avg[0] == 1.5f && avg[1] == 2.0f && avg[2] == 2.5f);
}

/* Precise BatchNorm's forward: the moving statistics of batch k are the
 * mean over batches 1..k of each batch's mean and biased variance,
 * computed here in double from the inputs; dropout is off. */
static void test_restat(void) {
    fm_err err;
    fm_model *m = fm_model_parse("input 2 2 2\nbatchnorm\ndropout 0.5\nflatten\n"
                                 "dense units=3 activation=softmax\n",
                                 "restat", &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m) return;
    const int n = 3, batches = 4, hw = 4, ch = 2;
    CHECK_MSG(fm__model_reserve(m, n, &err) == 0, "%s", err.msg);
    fm_rng r;
    fm_rng_seed(&r, 9);
    fm_model_init(m, &r);
    double mean[2] = {0}, var[2] = {0};
    for (int k = 1; k <= batches; k++) {
        for (int i = 0; i < n * ch * hw; i++) m->input_buf[i] = (float)(fm_rng_uniform(&r) * k);
        for (int c = 0; c < ch; c++) {
            double s = 0, s2 = 0;
            for (int b = 0; b < n; b++)
                for (int j = 0; j < hw; j++) s += m->input_buf[(b * ch + c) * hw + j];
            double mu = s / (n * hw);
            for (int b = 0; b < n; b++)
                for (int j = 0; j < hw; j++) {
                    double d = m->input_buf[(b * ch + c) * hw + j] - mu;
                    s2 += d * d;
                }
            mean[c] += (mu - mean[c]) / k;
            var[c] += (s2 / (n * hw) - var[c]) / k;
        }
        CHECK(fm__model_restat_forward(m, n, k) != NULL);
    }
    const float *mm = m->layers[0].t[2].data, *mv = m->layers[0].t[3].data;
    for (int c = 0; c < ch; c++) {
        CHECK_MSG(fabs(mm[c] - mean[c]) < 1e-5 && fabs(mv[c] - var[c]) < 1e-5,
                  "channel %d: %g %g against %g %g", c, mm[c], mv[c], mean[c], var[c]);
    }
    /* no dropout (it would draw from a generator there is none of): the
     * same batch gives the same probabilities again */
    float probs[9];
    memcpy(probs, m->probs, sizeof probs);
    CHECK(fm__model_restat_forward(m, n, batches + 1) != NULL);
    CHECK(!memcmp(probs, m->probs, sizeof probs));
    CHECK(fm__model_restat_forward(m, n, 0) == NULL);
    fm_model_free(m);
}

int main(void) {
    tu_init("test_train_recipe");
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s", tu_path("."));
    char dir[4400], path[4500];
    test_ema_rule();
    test_restat();

    fm_images tr = tt_bars(400, 1), va = tt_bars(100, 2), none = {0};
    fm_train_params p = fm_train_default_params();
    p.epochs = 5;
    p.batch = 32;
    p.lr = 6e-3f;
    p.threads = 1;
    p.model_source = "test-net";
    if (getenv("FMNIST_TEST_VERBOSE")) p.progress = stdout;
    fm_train_result r;
    fm_err err;

    /* What needs validation is refused without it, each with its key. */
    static const struct {
        const char *recipe, *why;
    } refusals[] = {
        {"val_split = 0\n", "early stopping (early_stopping_patience = 0 turns it off)"},
        {"val_split = 0\nearly_stopping_patience = 0\n", "the plateau schedule"},
        {"val_split = 0\nearly_stopping_patience = 0\nschedule = constant\n", "ModelCheckpoint"},
        {"augment = yes\nflip = yes\n", "already flips"},
        {"optimizer = adam\nweight_decay = 0.1\n", "Keras Adam has no weight decay"},
        {"optimizer = sgd\nmomentum = 0\nnesterov = yes\n", "Nesterov momentum needs"},
        {"warmup = 0.1\n", "warmup needs a per-step schedule"},
        {"schedule = onecycle\nwarmup = 0.1\n", "onecycle rises by onecycle_pct_start"},
    };
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        snprintf(dir, sizeof dir, "%s/refused-%zu", tmp, i);
        int rc = run(dir, &tr, &none, with(p, refusals[i].recipe), &r, NULL, &err);
        CHECK_FAILS_WITH(rc, err, refusals[i].why);
        CHECK(access(dir, F_OK) != 0); /* refused before the folder was made */
    }

    /* On every image, no validation: it learns, saves the last weights as
     * model.safetensors, no best.safetensors, leaves the log's val columns
     * empty and logs the cosine schedule's rate of each epoch's last step. */
    fm_model *m = NULL;
    snprintf(dir, sizeof dir, "%s/no-val", tmp);
    fm_train_params nv = with(p, no_val);
    int rc = run(dir, &tr, &none, nv, &r, &m, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    CHECK(r.epochs_run == 5 && r.restored_epoch == 0 && r.best_epoch == 0 && r.val_count == 0);
    CHECK(r.images == 5 * 400);
    CHECK(tu_exists(dir, "model.safetensors") && !tu_exists(dir, "best.safetensors"));
    fm_eval_result e, e2;
    CHECK(m && fm_model_evaluate(m, &va, &e, &err) == 0);
    CHECK_MSG(e.accuracy > 0.8, "accuracy %g", e.accuracy);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    fm_model *saved = fm_model_load(path, &err);
    CHECK(saved && fm_model_evaluate(saved, &va, &e2, &err) == 0 && fabs(e2.loss - e.loss) < 1e-6);
    fm_model_free(saved);
    fm_model_free(m);
    char *log = tu_log_sans_time(dir);
    fm__schedule cos;
    fm__schedule_warmup(&cos, FM__SCHED_COSINE, 6e-3, 0, 0.0, 0.0);
    char row[256];
    snprintf(row, sizeof row, ",,,%.6g\n2,", fm__schedule_lr(&cos, 12, 65));
    CHECK_MSG(log && strstr(log, row), "no row ending '%s' in\n%s", row, log);
    snprintf(row, sizeof row, ",,,%.6g\n", fm__schedule_lr(&cos, 64, 65));
    CHECK_MSG(log && strstr(log, row), "no row ending '%s' in\n%s", row, log);
    free(log);

    /* A moving average of decay 0 is the last weights; a real one is not. */
    fm_model *plain = NULL, *avg0 = NULL, *avg = NULL;
    snprintf(dir, sizeof dir, "%s/ema-0", tmp);
    rc = run(dir, &tr, &none, with(nv, "ema = yes\nema_decay = 0\n"), &r, &avg0, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    snprintf(dir, sizeof dir, "%s/ema", tmp);
    rc = run(dir, &tr, &none, with(nv, "ema = yes\nema_decay = 0.9\nema_warmup = yes\n"), &r,
             &avg, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    snprintf(dir, sizeof dir, "%s/no-val-again", tmp);
    rc = run(dir, &tr, &none, nv, &r, &plain, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (plain && avg0 && avg) {
        size_t len = fm__model_state_len(plain) * sizeof(float);
        float *a = malloc(len), *b = malloc(len), *c = malloc(len);
        fm__model_get_state(plain, a);
        fm__model_get_state(avg0, b);
        fm__model_get_state(avg, c);
        CHECK(!memcmp(a, b, len));
        CHECK(memcmp(a, c, len) != 0);
        CHECK(fm_model_evaluate(avg, &va, &e, &err) == 0);
        CHECK_MSG(e.accuracy > 0.8, "the average's accuracy %g", e.accuracy);
        free(a), free(b), free(c);
    }
    fm_model_free(plain), fm_model_free(avg0), fm_model_free(avg);

    /* Precise BatchNorm changes only the statistics of the saved model. */
    fm_model *pbn = NULL;
    snprintf(dir, sizeof dir, "%s/precise-bn", tmp);
    rc = run(dir, &tr, &none, with(nv, "precise_bn = 5\n"), &r, &pbn, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    snprintf(path, sizeof path, "%s/no-val/model.safetensors", tmp);
    fm_model *ref = fm_model_load(path, &err);
    if (pbn && ref) {
        CHECK(!memcmp(pbn->params, ref->params, ref->n_params * sizeof(float)));
        CHECK(memcmp(pbn->stats, ref->stats, ref->n_stats * sizeof(float)) != 0);
    }
    fm_model_free(pbn), fm_model_free(ref);

    /* bf16 products (fm_precision): the run learns as well as fp32's, ends
     * with other weights (the products were rounded), and records the table;
     * auto is fp32's run to the bit where the CPU has no AVX512_BF16. */
    const char *bf = fm_kernels_train_name(FM_PRECISION_BF16);
    CHECK(bf && strstr(bf, "bf16"));
    fm_model *b16 = NULL;
    snprintf(dir, sizeof dir, "%s/bf16", tmp);
    rc = run(dir, &tr, &none, with(nv, "precision = bf16\n"), &r, &b16, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    snprintf(path, sizeof path, "%s/no-val/model.safetensors", tmp);
    fm_model *f32 = fm_model_load(path, &err);
    if (b16 && f32) {
        CHECK(fm_model_evaluate(b16, &va, &e, &err) == 0);
        CHECK_MSG(e.accuracy > 0.8, "bf16: accuracy %g", e.accuracy);
        CHECK(memcmp(b16->params, f32->params, f32->n_params * sizeof(float)) != 0);
    }
    snprintf(path, sizeof path, "%s/run.json", dir);
    char *json = tu_text(path);
    char want[160];
    snprintf(want, sizeof want, "\"train_kernels\": \"%s\"", bf ? bf : "?");
    CHECK_MSG(json && strstr(json, want) && strstr(json, "\"precision\": \"bf16\""), "run.json: %s",
              json ? json : "(none)");
    free(json);
    fm_model_free(b16);
    if (!strcmp(fm_kernels_train_name(FM_PRECISION_AUTO), fm_kernels_name())) {
        fm_model *a = NULL;
        snprintf(dir, sizeof dir, "%s/auto", tmp);
        rc = run(dir, &tr, &none, with(nv, "precision = auto\n"), &r, &a, &err);
        CHECK_MSG(rc == 0, "%s", err.msg);
        if (a && f32) CHECK(!memcmp(a->params, f32->params, f32->n_params * sizeof(float)));
        fm_model_free(a);
    }
    fm_model_free(f32);
    fm_train_params badp = nv;
    badp.precision = 7;
    CHECK_FAILS_WITH(fm_train_params_check(&badp, &err), err, "unknown precision 7");

    /* SGD with Nesterov momentum and one-cycle, validated, EarlyStopping on. */
    snprintf(dir, sizeof dir, "%s/sgd", tmp);
    rc = run(dir, &tr, &va,
             with(p, "optimizer = sgd\nlr = 0.05\nnesterov = yes\nweight_decay = 0.0005\n"
                     "schedule = onecycle\n"),
             &r, NULL, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    CHECK_MSG(r.val_accuracy > 0.8, "sgd: val_accuracy %g", r.val_accuracy);

    /* Resumed from every step and epoch boundary, a run with every piece of
     * state (AdamW, one-cycle, the average, smoothing, every augmentation) ends with the bits of
     * one never stopped. */
    fm_train_params full = with(nv, "optimizer = adamw\nweight_decay = 0.01\nschedule = onecycle\n"
                                    "ema = yes\nema_decay = 0.95\nlabel_smoothing = 0.1\n"
                                    "precise_bn = 3\naugment = no\nflip = yes\ntranslate = 2\n"
                                    "erase_prob = 0.5\nerase_fill = random\n");
    char d1[4400], d2[4400];
    snprintf(d1, sizeof d1, "%s/full", tmp);
    snprintf(d2, sizeof d2, "%s/full-resumed", tmp);
    rc = run(d1, &tr, &none, full, &r, NULL, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    volatile sig_atomic_t stop_now = 1;
    fm_train_params ip = full;
    ip.interrupt = &stop_now;
    rc = run(d2, &tr, &none, ip, &r, NULL, &err);
    ip.resume = 1;
    int calls = 1;
    while (rc < 0 && r.interrupted && calls < 100) {
        rc = run(d2, &tr, &none, ip, &r, NULL, &err);
        calls++;
    }
    CHECK_MSG(rc == 0 && calls == 5 * 14, "rc %d after %d calls: %s", rc, calls, err.msg);
    size_t l1, l2;
    snprintf(path, sizeof path, "%s/model.safetensors", d1);
    unsigned char *a = tu_read(path, &l1);
    snprintf(path, sizeof path, "%s/model.safetensors", d2);
    unsigned char *b = tu_read(path, &l2);
    CHECK_MSG(a && b && l1 == l2 && !memcmp(a, b, l1), "model.safetensors differs after resumes");
    free(a), free(b);
    char *la = tu_log_sans_time(d1), *lb = tu_log_sans_time(d2);
    CHECK(la && lb && !strcmp(la, lb));
    free(la), free(lb);

    /* A resume with a different recipe is refused, naming the key. */
    ip.resume = 0;
    snprintf(dir, sizeof dir, "%s/changed", tmp);
    rc = run(dir, &tr, &none, ip, &r, NULL, &err);
    CHECK(rc < 0 && r.interrupted);
    fm_train_params changed = with(ip, "ema_decay = 0.9\n");
    changed.resume = 1;
    rc = run(dir, &tr, &none, changed, &r, NULL, &err);
    CHECK_FAILS_WITH(rc, err, "the run's ema_decay is 0.95, not 0.9");

    fm_images_free(&tr);
    fm_images_free(&va);
    return check_finish();
}
