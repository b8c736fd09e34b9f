/* The training loop: per epoch a shuffle, then steps of augment, forward,
 * backward and Adam, then a validation pass and the three callbacks, with
 * the run folder (log.csv, best.safetensors, model.safetensors, run.json and
 * the checkpoint the run resumes from) kept up to date. The state it changes
 * is in state.h; fm_train at the bottom reads as the outline.
 *
 * Across processes (dist/dist.h) every process runs this same loop on the
 * same state: each step's batch is split over them, and the gradients, the
 * step's metrics and the stop requests are summed, so every process takes
 * the same optimizer step; validation is split likewise. Process 0 alone
 * writes the run folder and prints; whatever can fail on one process
 * (a file written, a checkpoint read) is agreed on by all (fm__dist_agree),
 * so they stop together with the same message. */
#include "train/train.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/file.h"
#include "core/lock.h"
#include "dist/dist.h"
#include "train/augment.h"
#include "train/callbacks.h"
#include "train/checkpoint.h"
#include "train/ema.h"
#include "train/progress.h"
#include "train/state.h"

fm_train_params fm_train_default_params(void) {
    fm_train_params p = {0};
    p.epochs = 100;
    p.batch = 64;
    p.lr = 1e-3f;
    p.seed = 42;
    p.threads = 0;
    p.init = 1;
    p.augment = 1;
    p.es_patience = 15;
    p.lr_patience = 8;
    p.lr_factor = 0.5f;
    p.min_lr = 0.0f;
    p.save_best = 1;
    p.optimizer = FM_OPTIMIZER_ADAM;
    p.momentum = 0.9f;
    p.schedule = FM_SCHEDULE_PLATEAU;
    p.onecycle_pct_start = 0.3f;
    p.onecycle_div_factor = 25.0f;
    p.onecycle_final_div_factor = 1e4f;
    p.erase_area_min = 0.02f;
    p.erase_area_max = 0.33f;
    p.erase_aspect_min = 0.3f;
    p.ema_decay = 0.999f;
    p.out_dir = "models";
    p.progress = NULL;
    p.val_split = 0.2;
    p.recipe = "notebook";
    strcpy(p.model, "default");
    return p;
}

/* ---- the run folder ----------------------------------------------------- */

typedef struct run_paths {
    char log[4096];   /* log.csv, one row per epoch */
    char best[4096];  /* best.safetensors, ModelCheckpoint's */
    char model[4096]; /* model.safetensors, the restored best val_loss weights */
    char ckpt[4096];  /* checkpoint.safetensors, the state to resume from */
    fm__lock lock;    /* the folder's, for the whole call */
} run_paths;

/* Creates and locks the run folder and names its files; refuses a folder
 * that holds an unfinished run unless this call resumes it, and one that
 * holds a finished run's models unless p->overwrite, when those go first (a
 * folder never mixes two runs). */
static int name_files(run_paths *path, const fm_train_params *p, fm_err *err) {
    if (fm__path_join(path->log, sizeof path->log, p->out_dir, "log.csv", err) < 0 ||
        fm__path_join(path->best, sizeof path->best, p->out_dir, "best.safetensors", err) < 0 ||
        fm__path_join(path->model, sizeof path->model, p->out_dir, "model.safetensors", err) < 0 ||
        fm__path_join(path->ckpt, sizeof path->ckpt, p->out_dir, FM__CHECKPOINT_FILE, err) < 0)
        return -1;
    return 0;
}

static int open_folder(run_paths *path, const fm_train_params *p, fm_err *err) {
    if (fm__make_dirs(p->out_dir, err) < 0 || name_files(path, p, err) < 0 ||
        fm__lock_take(&path->lock, p->out_dir, "choose another folder", err) < 0)
        return -1;
    struct stat st;
    if (p->resume) return 0;
    if (stat(path->ckpt, &st) == 0) {
        fm__lock_release(&path->lock);
        return fm__err(err, "%s: the folder holds an unfinished run; resume it, or remove the "
                            "checkpoint or choose another output folder to start afresh",
                       path->ckpt);
    }
    const char *found = stat(path->model, &st) == 0  ? "model.safetensors"
                        : stat(path->best, &st) == 0 ? "best.safetensors"
                                                     : NULL;
    if (found && !p->overwrite) {
        fm__lock_release(&path->lock);
        return fm__err(err, "%s: holds a finished run (%s); choose another folder (--out DIR) "
                            "or replace that run (--overwrite)",
                       p->out_dir, found);
    }
    if (!found) return 0;
    static const char *const old[] = {"model.safetensors", "best.safetensors", "log.csv",
                                      "run.json", "report.html"};
    char file[4200];
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++) {
        snprintf(file, sizeof file, "%s/%s", p->out_dir, old[i]);
        if (remove(file) != 0 && errno != ENOENT) {
            fm__lock_release(&path->lock);
            return fm__err(err, "%s: cannot remove it to replace the run: %s", file,
                           strerror(errno));
        }
    }
    if (p->progress) fprintf(p->progress, "Replacing the finished run in %s\n", p->out_dir);
    return 0;
}

/* ---- the run ------------------------------------------------------------ */

/* Everything one fm_train call works with. */
typedef struct run {
    fm_model *m;
    const fm_images *train, *val;
    const fm_train_params *p;
    fm_train_params recorded; /* p with the threads really used: the checkpoint's recipe */
    uint64_t fingerprint;     /* of train and val, for the checkpoint */
    run_paths path;
    fm__train_state s;
    fm__aug_params aug; /* the recipe's augmentation */
    int validate;       /* there is a validation set */
    uint8_t *labels; /* (batch) the step's labels */
    int steps;       /* per epoch */
    FILE *out;       /* progress lines; NULL: silent */
    /* fm__now() at the start of the run and of the epoch in progress, less
     * the time they had taken before a resume */
    double run_start, epoch_start;
    fm__progress prog; /* of the epoch in progress */
    fm_train_result *r;
    fm_err *err;
    const fm__dist *d; /* the processes; rank 0 writes the folder */
    int writer;        /* this process writes the run folder (rank 0) */
} run;

/* What each piece tells the loop: go on; finish the run now (it diverged:
 * save what it has); or stop at once, returning -1 (an error, or an
 * interruption with the state in the checkpoint; err says which). */
enum { GO_ON, FINISH, STOP };

/* r before anything has run: no metrics yet, the data counts, the rate. */
static void clear_result(fm_train_result *r, const fm_images *train, const fm_images *val,
                         const fm_train_params *p) {
    memset(r, 0, sizeof *r);
    r->loss = r->accuracy = r->val_loss = r->val_accuracy = NAN;
    r->best_val_accuracy = r->restored_val_loss = r->restored_val_accuracy = NAN;
    r->train_count = train->count;
    r->val_count = val->count;
    r->final_lr = p->lr;
}

/* The split the caller made, saved with the model so eval can rebuild it,
 * and the recipe, saved so a model file says how it was trained. */
static int record_run(fm_model *m, const fm_train_params *p, fm_err *err) {
    char *recipe = fm_train_recipe_text(p);
    if (!recipe) return fm__err(err, "out of memory for the recipe");
    free(m->recipe);
    m->recipe = recipe;
    /* set before the first validation, which then applies it as eval will */
    m->tta = (fm_tta)p->tta;
    m->has_split = p->val_split > 0.0 && p->val_split < 1.0;
    m->split_seed = p->seed;
    m->split_val = p->val_split;
    m->split_limit = p->limit;
    return 0;
}

static int write_checkpoint(run *t) {
    int rc = t->writer ? fm__checkpoint_write(t->path.ckpt, t->m, &t->recorded, &t->s,
                                              t->fingerprint, t->val->count, t->err)
                       : 0;
    return fm__dist_agree(t->d, rc, t->err);
}

/* fm__write_file_atomic by the writer, agreed on by every process. */
static int write_file(run *t, const char *path, const char *data, size_t len) {
    return fm__dist_agree(t->d, t->writer ? fm__write_file_atomic(path, data, len, t->err) : 0,
                          t->err);
}

/* The state and buffers, then the state read from the checkpoint or a fresh
 * run started; log.csv as it stands. */
static int begin_run(run *t) {
    const fm_train_params *p = t->p;
    /* The checkpoint records the threads really used: other counts round differently. */
    t->recorded = *p;
    t->recorded.threads = t->r->threads;
    t->aug = fm__train_aug_params(p);
    t->validate = t->val->count > 0;
    t->steps = (int)((t->train->count + (size_t)p->batch - 1) / (size_t)p->batch);
    int state_ok = fm__train_state_init(&t->s, t->m, p, t->train->count, t->steps) == 0;
    t->labels = malloc((size_t)p->batch);
    if (fm__dist_agree(t->d,
                       state_ok && t->labels
                           ? 0
                           : fm__err(t->err, "out of memory for training buffers"),
                       t->err) < 0)
        return STOP;
    t->fingerprint = fm__data_fingerprint(t->train, t->val);
    if (p->resume) {
        if (fm__checkpoint_read(t->d, t->path.ckpt, t->m, &t->recorded, &t->s, t->fingerprint,
                                t->val->count, t->err) < 0)
            return STOP;
        t->r->resumed_epoch = t->s.epoch;
        t->r->resumed_step = t->s.step;
    } else if (fm__dist_agree(t->d, fm__train_start_run(&t->s, t->m, p, t->err), t->err) < 0) {
        return STOP;
    }
    if (write_file(t, t->path.log, t->s.log, t->s.log_len) < 0) return STOP;

    if (t->out && p->resume)
        fprintf(t->out, "Resuming from %s: %d epoch%s done, %d/%d steps of the next\n",
                t->path.ckpt, t->s.epoch, t->s.epoch == 1 ? "" : "s", t->s.step, t->steps);
    t->run_start = fm__now() - t->s.seconds;
    return GO_ON;
}

/* order = a permutation of 0..count-1 from the stream (seed, epoch, order). */
static void shuffle(uint32_t *order, size_t count, uint64_t seed, uint64_t epoch) {
    fm_rng rng;
    fm__rng_stream(&rng, seed, epoch, FM__NO_SAMPLE, FM__DRAW_ORDER);
    for (size_t i = 0; i < count; i++) order[i] = (uint32_t)i;
    fm_rng_shuffle_u32(&rng, order, count);
}

/* Epoch s.epoch + 1 starts, or goes on after a resume: its clock and
 * progress line, and at its first step a new data order. */
static void begin_epoch(run *t) {
    fm__train_state *s = &t->s;
    t->epoch_start = fm__now() - s->epoch_seconds;
    fm__progress_begin(&t->prog, t->out, s->epoch + 1, t->p->epochs, t->steps);
    t->prog.start = t->epoch_start;
    if (s->step == 0) shuffle(s->order, s->count, t->p->seed, (uint64_t)s->epoch);
}

/* After a step: the checkpoint when the cadence (never at the epoch's last
 * step: end_epoch writes that one) or an interruption (on any process)
 * asks for it. */
static int checkpoint_in_epoch(run *t, int interrupted) {
    fm__train_state *s = &t->s;
    const fm_train_params *p = t->p;
    if (interrupted ||
        (p->checkpoint_steps && s->step < t->steps && s->opt.t % p->checkpoint_steps == 0)) {
        double now = fm__now();
        s->epoch_seconds = now - t->epoch_start;
        s->seconds = now - t->run_start;
        if (write_checkpoint(t) < 0) return STOP;
    }
    if (interrupted) {
        if (t->out && t->prog.tty) fprintf(t->out, "\n");
        t->r->interrupted = 1;
        fm__err(t->err, "interrupted at epoch %d, step %d/%d; the training state is in %s",
                s->epoch + 1, s->step, t->steps, t->path.ckpt);
        return STOP;
    }
    return GO_ON;
}

/* One training step: the order's next batch (n images, the last one of an
 * epoch may be short), augmented, forward, backward, an optimizer update at
 * the schedule's rate (plateau: the rate ReduceLROnPlateau left), the
 * average, the running metrics on the progress line, then checkpoint_in_epoch. */
static int run_step(run *t) {
    fm__train_state *s = &t->s;
    fm_model *m = t->m;
    const fm_images *train = t->train;
    int batch = t->p->batch;
    size_t start = (size_t)s->step * (size_t)batch;
    int n = train->count - start < (size_t)batch ? (int)(train->count - start) : batch;
    /* this process's share of the batch: at least one image (fm__train_check_dist) */
    size_t lo, hi;
    fm__dist_share(t->d, (size_t)n, &lo, &hi);
    const int mine = (int)(hi - lo);
    const uint32_t *samples = s->order + start + lo;
    for (int i = 0; i < mine; i++) t->labels[i] = train->labels[samples[i]];
    const fm__draws draws = {t->p->seed, (uint64_t)s->epoch, samples};
    fm__aug_batch(m->input_buf, train, samples, mine, &t->aug, &draws);
    fm__model_zero_grads(m);
    fm__model_forward(m, mine, 1, &draws);
    float loss = fm__model_loss_backward_share(m, t->labels, mine, n, t->p->label_smoothing);
    int64_t correct = 0;
    for (int i = 0; i < mine; i++)
        correct += fm__argmax(m->probs + (size_t)i * FM_NUM_CLASSES, FM_NUM_CLASSES) ==
                   t->labels[i];
    /* the batch's loss, correct count and stop requests over the processes */
    int interrupted = t->p->interrupt && *t->p->interrupt;
    double step_sums[3] = {(double)loss * mine, (double)correct, interrupted};
    if (t->d->size > 1) {
        double t0 = fm__now();
        if (fm__dist_sum_f64(t->d, step_sums, 3, t->err) < 0 ||
            fm__dist_sum_f32(t->d, m->grads, m->n_params, t->err) < 0)
            return STOP;
        t->r->reduce_seconds += fm__now() - t0;
        t->r->reduced_steps++;
        loss = (float)(step_sums[0] / n);
        correct = (int64_t)step_sums[1];
        interrupted = step_sums[2] > 0;
    }
    if (!isfinite(loss)) {
        t->r->diverged = 1;
        fm__err(t->err, "the training loss became %s at epoch %d, step %d/%d; stopped",
                isnan(loss) ? "NaN" : "infinite", s->epoch + 1, s->step + 1, t->steps);
        if (t->out) fprintf(t->out, "\n");
        return FINISH;
    }
    s->correct += correct;
    if (t->p->schedule != FM_SCHEDULE_PLATEAU)
        s->opt.lr = (float)fm__schedule_lr(&s->sched, s->opt.t, s->total_steps);
    fm__optim_step(&s->opt, m->params, m->grads, m->adam_m, m->adam_v, m->n_params, &s->decay);
    if (t->p->ema) { /* the average's parameters, then its statistics */
        int64_t before = s->opt.t - 1;
        fm__ema_update(s->ema, m->params, m->n_params, t->p->ema_decay, t->p->ema_warmup, before);
        fm__ema_update(s->ema + m->n_params, m->stats, m->n_stats, t->p->ema_decay,
                       t->p->ema_warmup, before);
    }
    s->loss_sum += (double)loss * n;
    s->seen += n;
    s->step++;
    fm__metric running[2] = {{"accuracy", (double)s->correct / (double)s->seen},
                             {"loss", s->loss_sum / (double)s->seen}};
    fm__progress_step(&t->prog, s->step, running, 2);
    return checkpoint_in_epoch(t, interrupted);
}

/* The validation pass and the callbacks on its result (the recipe's: each
 * may be off), with the moving average in the model when the run keeps one:
 * EarlyStopping's snapshot, best.safetensors, a lower rate, a stop. */
static int validate(run *t, int epoch, fm_eval_result *v, int *stop, int *saved, int *lowered,
                    double *prev_best) {
    fm__train_state *s = &t->s;
    fm_model *m = t->m;
    const fm_train_params *p = t->p;
    if (p->ema) {
        fm__model_get_state(m, s->live);
        fm__model_set_state(m, s->ema);
    }
    int rc = GO_ON;
    if (fm_dist_evaluate(m, t->val, v, t->err) < 0) {
        rc = STOP;
        goto done;
    }
    if (p->es_patience && fm__early_stop_update(&s->es, epoch, v->loss, stop)) {
        fm__model_get_state(m, s->best_state);
        s->r.restored_val_loss = v->loss;
        s->r.restored_val_accuracy = v->accuracy;
    }
    if (p->schedule == FM_SCHEDULE_PLATEAU)
        *lowered = fm__reduce_lr_update(&s->rlr, v->loss, &s->opt.lr);
    *prev_best = s->saver.best;
    if (p->save_best && (*saved = fm__save_best_update(&s->saver, epoch, v->accuracy))) {
        if (fm__dist_agree(t->d, t->writer ? fm_model_save(m, t->path.best, t->err) : 0,
                           t->err) < 0)
            rc = STOP;
        s->r.best_val_accuracy = v->accuracy;
    }
done:
    if (p->ema) fm__model_set_state(m, s->live);
    return rc;
}

/* Every process must hold the same weights (their steps are the same):
 * checked once an epoch, so that a reduction that gave the processes
 * different sums stops the run instead of training several models. */
static int same_weights(run *t) {
    if (t->d->size == 1) return 0;
    uint64_t h = fm__hash_bytes(FM__HASH_START, t->m->params, t->m->n_params * sizeof(float));
    int same = fm__dist_same_u64(t->d, h, t->err);
    if (same < 0) return -1;
    if (!same)
        return fm__err(t->err, "the processes' weights differ after epoch %d (their gradient "
                               "sums differed); stopped",
                       t->s.epoch + 1);
    return 0;
}

/* The epoch's end: validation and the callbacks (when there is a
 * validation set), the progress line and log.csv row, the position moved
 * to the next epoch, then the checkpoint at the boundary. */
static int end_epoch(run *t) {
    fm__train_state *s = &t->s;
    FILE *out = t->out;
    int epoch = s->epoch + 1;
    double loss = s->loss_sum / (double)s->seen, acc = (double)s->correct / (double)s->seen;
    float lr_used = s->opt.lr;
    fm_eval_result v = {.loss = NAN, .accuracy = NAN};
    int stop = 0, saved = 0, lowered = 0;
    double prev_best = NAN;
    if (t->validate && validate(t, epoch, &v, &stop, &saved, &lowered, &prev_best) == STOP)
        return STOP;
    s->r.loss = loss;
    s->r.accuracy = acc;
    s->r.val_loss = v.loss;
    s->r.val_accuracy = v.accuracy;

    double now = fm__now(), secs = now - t->epoch_start;
    fm__metric line[5] = {{"accuracy", acc},
                          {"loss", loss},
                          {"val_accuracy", v.accuracy},
                          {"val_loss", v.loss},
                          {"learning_rate", lr_used}};
    if (!t->validate) line[2] = line[4]; /* no val_ metrics to show */
    fm__progress_end(&t->prog, line, t->validate ? 5 : 3);
    if (out && saved)
        fprintf(out, "Epoch %d: val_accuracy improved from %.4f to %.4f, saving model to %s\n",
                epoch, prev_best, v.accuracy, t->path.best);
    if (out && lowered)
        fprintf(out, "Epoch %d: ReduceLROnPlateau reducing learning rate to %g.\n", epoch,
                (double)s->opt.lr);
    char row[256];
    if (t->validate)
        snprintf(row, sizeof row, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f\n", epoch, loss, acc, v.loss,
                 v.accuracy, (double)lr_used, secs);
    else /* no validation: its columns stay empty */
        snprintf(row, sizeof row, "%d,%.6f,%.6f,,,%.6g,%.3f\n", epoch, loss, acc,
                 (double)lr_used, secs);
    if (fm__dist_agree(t->d, fm__train_log_append(s, row, t->err), t->err) < 0 ||
        write_file(t, t->path.log, s->log, s->log_len) < 0 || same_weights(t) < 0)
        return STOP;

    s->epoch = epoch;
    s->step = 0;
    s->loss_sum = 0.0;
    s->correct = s->seen = 0;
    s->epoch_seconds = 0.0;
    s->seconds = now - t->run_start;
    s->stop = stop;
    if (t->validate && !isfinite(v.loss)) {
        t->r->diverged = 1;
        fm__err(t->err, "the validation loss became %s at epoch %d; stopped",
                isnan(v.loss) ? "NaN" : "infinite", epoch);
        return FINISH;
    }
    if (stop && out) fprintf(out, "Epoch %d: early stopping\n", epoch);
    if (write_checkpoint(t) < 0) return STOP;
    if (t->p->interrupt && *t->p->interrupt && !stop && s->epoch < t->p->epochs) {
        t->r->interrupted = 1;
        fm__err(t->err, "interrupted after epoch %d; the training state is in %s", epoch,
                t->path.ckpt);
        return STOP;
    }
    return GO_ON;
}

/* The run's results into r: the state's, with what only this call knows. */
static void final_results(run *t) {
    fm_train_result *r = t->r;
    const fm__train_state *s = &t->s;
    fm_train_result keep = *r;
    *r = s->r;
    r->train_count = keep.train_count;
    r->val_count = keep.val_count;
    r->threads = keep.threads;
    r->diverged = keep.diverged;
    r->resumed_epoch = keep.resumed_epoch;
    r->resumed_step = keep.resumed_step;
    r->reduced_steps = keep.reduced_steps;
    r->reduce_seconds = keep.reduce_seconds;
    r->epochs_run = s->epoch;
    r->best_epoch = s->saver.best_epoch;
    r->restored_epoch = s->es.best_epoch;
    r->stopped_early = s->stop;
    r->train_seconds = fm__now() - t->run_start;
    r->final_lr = s->opt.lr;
    r->images = (int64_t)s->epoch * (int64_t)s->count + s->seen;
    r->lr_reductions = s->rlr.reductions;
}

/* Precise BatchNorm: the moving statistics of the model as it will be
 * saved, recomputed as the mean over K batches of training images (an order
 * and augmentation of their own: the epoch FM__EPOCH_PRECISE_BN's streams)
 * of their batch statistics, dropout off. Moving averages lag weights that kept changing;
 * this measures the final ones. */
static void precise_bn(run *t) {
    fm__train_state *s = &t->s;
    fm_model *m = t->m;
    int batch = t->p->batch, k = t->p->precise_bn;
    if (t->out)
        fprintf(t->out, "Re-estimating the BatchNorm statistics over %d batch%s of %d.\n", k,
                k == 1 ? "" : "es", batch);
    shuffle(s->order, s->count, t->p->seed, FM__EPOCH_PRECISE_BN);
    const fm__draws draws = {t->p->seed, FM__EPOCH_PRECISE_BN, NULL};
    size_t at = 0;
    for (int b = 1; b <= k; b++) {
        int n = s->count < (size_t)batch ? (int)s->count : batch;
        /* batches run through the order, wrapping round when K asks for more */
        if (at + (size_t)n > s->count) at = 0;
        size_t lo, hi; /* this process's share */
        fm__dist_share(t->d, (size_t)n, &lo, &hi);
        fm__aug_batch(m->input_buf, t->train, s->order + at + lo, (int)(hi - lo), &t->aug,
                      &draws);
        fm__model_restat_forward(m, (int)(hi - lo), b);
        at += (size_t)n;
    }
}

/* The run has ended (every epoch, early stopping or a divergence): report
 * it, put the model to save in place (the best val_loss weights when
 * EarlyStopping restores them, else the moving average or the last
 * weights; then precise BatchNorm), save model.safetensors and run.json,
 * remove the checkpoint. */
static int finish_run(run *t) {
    final_results(t);
    fm_train_result *r = t->r;
    fm_err *err = t->err;
    const fm_train_params *p = t->p;
    /* Save what the run has even when it diverged, but report the divergence
     * (err holds it) ahead of any trouble saving; diverged weights without a
     * restored epoch are not worth saving. */
    fm_err save_err;
    int save_rc = 0, save = 0;
    if (r->restored_epoch > 0) {
        if (t->out)
            fprintf(t->out, "Restoring model weights from the end of the best epoch: %d.\n",
                    r->restored_epoch);
        fm__model_set_state(t->m, t->s.best_state);
        save = 1;
    } else if (!p->es_patience && !r->diverged && r->epochs_run > 0) {
        if (p->ema) {
            if (t->out) fprintf(t->out, "Taking the weights' moving average.\n");
            fm__model_set_state(t->m, t->s.ema);
        }
        save = 1;
    }
    if (save) {
        if (p->precise_bn) precise_bn(t);
        if (t->writer) save_rc = fm_model_save(t->m, t->path.model, &save_err);
    }
    if (save_rc == 0 && t->writer) save_rc = fm_train_write_run(t->p, r, NULL, &save_err);
    /* Everything the run made is saved: its checkpoint has served. */
    if (save_rc == 0 && t->writer && remove(t->path.ckpt) == 0 &&
        fm__sync_parent(t->path.ckpt) != 0)
        save_rc = fm__err(&save_err, "%s: cannot sync the folder: %s", t->p->out_dir,
                          strerror(errno));
    save_rc = fm__dist_agree(t->d, save_rc, &save_err);
    if (r->diverged) {
        size_t used = err ? strlen(err->msg) : 0;
        if (err && save_rc < 0)
            snprintf(err->msg + used, sizeof err->msg - used, "; %s", save_err.msg);
        else if (err && r->restored_epoch)
            snprintf(err->msg + used, sizeof err->msg - used,
                     "; kept %s (best val_accuracy, epoch %d) and %s (best val_loss, epoch %d)",
                     t->path.best, r->best_epoch, t->path.model, r->restored_epoch);
        else if (err)
            snprintf(err->msg + used, sizeof err->msg - used,
                     " before an epoch finished; no weights saved");
        return -1;
    }
    if (save_rc < 0) {
        if (err) *err = save_err;
        return -1;
    }
    return 0;
}

int fm_train(fm_model *m, const fm_images *train, const fm_images *val,
             const fm_train_params *p, fm_train_result *r, fm_err *err) {
    clear_result(r, train, val, p);
    const fm__dist *d = fm__dist_world();
    if (fm__train_check_dist(d, fm__train_check_run(m, train, val, p, err), m, train, val, p,
                             err) < 0)
        return -1;
    run t = {.m = m, .train = train, .val = val, .p = p, .r = r, .err = err, .d = d,
             .writer = d->rank == 0};
    t.out = t.writer ? p->progress : NULL;
    /* (the folder's paths are named on every process: the checkpoint is read
     * through process 0) */
    int opened = t.writer ? open_folder(&t.path, p, err) : name_files(&t.path, p, err);
    if (fm__dist_agree(d, opened, err) < 0) {
        if (t.writer && opened == 0) fm__lock_release(&t.path.lock); /* another failed */
        return -1;
    }
    if (record_run(m, p, err) < 0) return -1;
    r->threads = fm_set_threads(p->threads);
    m->dist = d;
    /* Validation runs in batches of the training batch's plan too. */
    int planned = fm__model_set_train_kernels(m, fm__kernels_for_precision(p->precision), err) < 0 ||
                          fm__model_reserve(m, p->batch, err) < 0
                      ? -1
                      : 0;
    int go = fm__dist_agree(d, planned, err) < 0 ? STOP : begin_run(&t);
    while (go == GO_ON && t.s.epoch < p->epochs && !t.s.stop) {
        begin_epoch(&t);
        while (go == GO_ON && t.s.step < t.steps) go = run_step(&t);
        if (go == GO_ON) go = end_epoch(&t);
    }
    int rc = go == STOP ? -1 : finish_run(&t);
    m->k_train = m->k; /* the model leaves as it came (its workspace still fits either) */
    m->dist = NULL;
    if (t.writer) fm__lock_release(&t.path.lock);
    fm__train_state_free(&t.s);
    free(t.labels);
    return rc;
}
