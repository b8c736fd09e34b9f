/* The training loop: shuffle, augment, forward, backward, Adam, then a
 * validation pass and the three callbacks per epoch, with the run folder
 * (log.csv, best.safetensors, model.safetensors, run.json and the
 * checkpoint the run resumes from) kept up to date. */
#include "train/train.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/file.h"
#include "train/adam.h"
#include "train/augment.h"
#include "train/callbacks.h"
#include "train/checkpoint.h"
#include "train/state.h"
#include "train/progress.h"

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
    p.out_dir = "models";
    p.progress = NULL;
    p.val_split = 0.2;
    return p;
}

/* mkdir -p */
static int make_dirs(const char *path, fm_err *err) {
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) return fm__err(err, "%s: bad output folder name", path);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) < 0 && errno != EEXIST)
            return fm__err(err, "%s: cannot create folder: %s", buf, strerror(errno));
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return fm__err(err, "%s: not a folder", path);
    return 0;
}

/* ---- the loop ---------------------------------------------------------- */

int fm_train(fm_model *m, const fm_images *train, const fm_images *val,
             const fm_train_params *p, fm_train_result *r, fm_err *err) {
    memset(r, 0, sizeof *r);
    r->loss = r->accuracy = r->val_loss = r->val_accuracy = NAN;
    r->best_val_accuracy = r->restored_val_loss = r->restored_val_accuracy = NAN;
    r->train_count = train->count;
    r->val_count = val->count;
    r->final_lr = p->lr;
    if (fm__train_check_run(m, train, val, p, err) < 0) return -1;

    char log_path[4096], best_path[4096], model_path[4096], ckpt_path[4096];
    if (make_dirs(p->out_dir, err) < 0 ||
        fm__path_join(log_path, sizeof log_path, p->out_dir, "log.csv", err) < 0 ||
        fm__path_join(best_path, sizeof best_path, p->out_dir, "best.safetensors", err) < 0 ||
        fm__path_join(model_path, sizeof model_path, p->out_dir, "model.safetensors", err) < 0 ||
        fm__path_join(ckpt_path, sizeof ckpt_path, p->out_dir, FM__CHECKPOINT_FILE, err) < 0)
        return -1;
    struct stat st;
    if (!p->resume && stat(ckpt_path, &st) == 0)
        return fm__err(err, "%s: the folder holds an unfinished run; resume it, or remove the "
                            "checkpoint or choose another output folder to start afresh",
                       ckpt_path);

    /* the split the caller made, saved with the model so eval can rebuild it */
    m->has_split = p->val_split > 0.0 && p->val_split < 1.0;
    m->split_seed = p->seed;
    m->split_val = p->val_split;
    m->split_limit = p->limit;
    r->threads = fm_set_threads(p->threads);
    int batch = p->batch;
    /* Validation runs in batches of the training batch's plan too. */
    if (fm__model_reserve(m, batch, err) < 0) return -1;

    /* The checkpoint records the threads really used: other counts round differently. */
    fm_train_params recorded = *p;
    recorded.threads = r->threads;
    fm__train_state s;
    int state_ok = fm__train_state_init(&s, m, p, train->count) == 0;
    uint8_t *labels = malloc((size_t)batch);
    int rc = -1;
    if (!state_ok || !labels) {
        fm__err(err, "out of memory for training buffers");
        goto done;
    }
    uint64_t fingerprint = fm__data_fingerprint(train, val);
    if (p->resume) {
        if (fm__checkpoint_read(ckpt_path, m, &recorded, &s, fingerprint, val->count, err) < 0)
            goto done;
        r->resumed_epoch = s.epoch;
        r->resumed_step = s.step;
    } else if (fm__train_start_run(&s, m, p, err) < 0) {
        goto done;
    }
    if (fm__write_file_atomic(log_path, s.log, s.log_len, err) < 0) goto done;

    FILE *out = p->progress;
    int steps = (int)((train->count + (size_t)batch - 1) / (size_t)batch);
    if (out && p->resume)
        fprintf(out, "Resuming from %s: %d epoch%s done, %d/%d steps of the next\n", ckpt_path,
                s.epoch, s.epoch == 1 ? "" : "s", s.step, steps);
    /* Clocks that include the time spent before a resume. */
    double t_run = fm__now() - s.seconds;
    while (s.epoch < p->epochs && !s.stop) {
        int epoch = s.epoch + 1;
        double t_epoch = fm__now() - s.epoch_seconds;
        fm__progress prog;
        fm__progress_begin(&prog, out, epoch, p->epochs, steps);
        prog.start = t_epoch;
        if (s.step == 0) {
            for (size_t i = 0; i < train->count; i++) s.order[i] = (uint32_t)i;
            fm_rng_shuffle_u32(&s.rng, s.order, train->count);
        }
        while (s.step < steps) {
            size_t start = (size_t)s.step * (size_t)batch;
            int n = train->count - start < (size_t)batch ? (int)(train->count - start) : batch;
            for (int i = 0; i < n; i++) labels[i] = train->labels[s.order[start + i]];
            fm__aug_batch(m->input_buf, train, s.order + start, n, p->augment, &s.rng);
            fm__model_zero_grads(m);
            fm__model_forward(m, n, 1, &s.rng);
            float loss = fm__model_loss_backward(m, labels, n, 1);
            if (!isfinite(loss)) {
                r->diverged = 1;
                fm__err(err, "the training loss became %s at epoch %d, step %d/%d; stopped",
                        isnan(loss) ? "NaN" : "infinite", epoch, s.step + 1, steps);
                break;
            }
            for (int i = 0; i < n; i++)
                s.correct += fm__argmax(m->probs + (size_t)i * FM_NUM_CLASSES, FM_NUM_CLASSES) ==
                             labels[i];
            fm__adam_step(&s.adam, m->params, m->grads, m->adam_m, m->adam_v, m->n_params);
            s.loss_sum += (double)loss * n;
            s.seen += n;
            s.step++;
            fm__metric running[2] = {{"accuracy", (double)s.correct / (double)s.seen},
                                     {"loss", s.loss_sum / (double)s.seen}};
            fm__progress_step(&prog, s.step, running, 2);

            int interrupted = p->interrupt && *p->interrupt;
            if (interrupted || (p->checkpoint_steps && s.step < steps &&
                                s.adam.t % p->checkpoint_steps == 0)) {
                double now = fm__now();
                s.epoch_seconds = now - t_epoch;
                s.seconds = now - t_run;
                if (fm__checkpoint_write(ckpt_path, m, &recorded, &s, fingerprint, val->count,
                                         err) < 0)
                    goto done;
            }
            if (interrupted) {
                if (out && prog.tty) fprintf(out, "\n");
                r->interrupted = 1;
                fm__err(err, "interrupted at epoch %d, step %d/%d; the training state is in %s",
                        epoch, s.step, steps, ckpt_path);
                goto done;
            }
        }
        if (r->diverged) {
            if (out) fprintf(out, "\n");
            break;
        }

        fm_eval_result v;
        if (fm_model_evaluate(m, val, &v, err) < 0) goto done;
        double loss = s.loss_sum / (double)s.seen, acc = (double)s.correct / (double)s.seen;
        float lr_used = s.adam.lr;
        s.r.loss = loss;
        s.r.accuracy = acc;
        s.r.val_loss = v.loss;
        s.r.val_accuracy = v.accuracy;

        int stop = 0;
        if (fm__early_stop_update(&s.es, epoch, v.loss, &stop)) {
            fm__model_get_state(m, s.best_state);
            s.r.restored_val_loss = v.loss;
            s.r.restored_val_accuracy = v.accuracy;
        }
        int lowered = fm__reduce_lr_update(&s.rlr, v.loss, &s.adam.lr);
        double prev_best = s.saver.best;
        int saved = fm__save_best_update(&s.saver, epoch, v.accuracy);
        if (saved) {
            if (fm_model_save(m, best_path, err) < 0) goto done;
            s.r.best_val_accuracy = v.accuracy;
        }

        double now = fm__now(), secs = now - t_epoch;
        fm__metric line[5] = {{"accuracy", acc},
                              {"loss", loss},
                              {"val_accuracy", v.accuracy},
                              {"val_loss", v.loss},
                              {"learning_rate", lr_used}};
        fm__progress_end(&prog, line, 5);
        if (out && saved)
            fprintf(out, "Epoch %d: val_accuracy improved from %.4f to %.4f, saving model to %s\n",
                    epoch, prev_best, v.accuracy, best_path);
        if (out && lowered)
            fprintf(out, "Epoch %d: ReduceLROnPlateau reducing learning rate to %g.\n", epoch,
                    (double)s.adam.lr);
        char row[256];
        snprintf(row, sizeof row, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f\n", epoch, loss, acc, v.loss,
                 v.accuracy, (double)lr_used, secs);
        if (fm__train_log_append(&s, row, err) < 0 ||
            fm__write_file_atomic(log_path, s.log, s.log_len, err) < 0)
            goto done;
        s.epoch = epoch;
        s.step = 0;
        s.loss_sum = 0.0;
        s.correct = s.seen = 0;
        s.epoch_seconds = 0.0;
        s.seconds = now - t_run;
        s.stop = stop;
        if (!isfinite(v.loss)) {
            r->diverged = 1;
            fm__err(err, "the validation loss became %s at epoch %d; stopped",
                    isnan(v.loss) ? "NaN" : "infinite", epoch);
            break;
        }
        if (stop && out) fprintf(out, "Epoch %d: early stopping\n", epoch);
        if (fm__checkpoint_write(ckpt_path, m, &recorded, &s, fingerprint, val->count, err) < 0)
            goto done;
        if (p->interrupt && *p->interrupt && !stop && s.epoch < p->epochs) {
            r->interrupted = 1;
            fm__err(err, "interrupted after epoch %d; the training state is in %s", epoch,
                    ckpt_path);
            goto done;
        }
    }

    /* The run has ended: report it, restore the best val_loss weights, save. */
    fm_train_result keep = *r;
    *r = s.r;
    r->train_count = keep.train_count;
    r->val_count = keep.val_count;
    r->threads = keep.threads;
    r->diverged = keep.diverged;
    r->resumed_epoch = keep.resumed_epoch;
    r->resumed_step = keep.resumed_step;
    r->epochs_run = s.epoch;
    r->best_epoch = s.saver.best_epoch;
    r->restored_epoch = s.es.best_epoch;
    r->stopped_early = s.stop;
    r->train_seconds = fm__now() - t_run;
    r->final_lr = s.adam.lr;
    r->lr_reductions = s.rlr.reductions;

    /* Save what the run has even when it diverged, but report the divergence
     * (err holds it) ahead of any trouble saving. */
    fm_err save_err;
    int save_rc = 0;
    if (r->restored_epoch > 0) {
        if (out)
            fprintf(out, "Restoring model weights from the end of the best epoch: %d.\n",
                    r->restored_epoch);
        fm__model_set_state(m, s.best_state);
        save_rc = fm_model_save(m, model_path, &save_err);
    }
    if (save_rc == 0) save_rc = fm_train_write_run(p, r, NULL, &save_err);
    /* Everything the run made is saved: its checkpoint has served. */
    if (save_rc == 0 && remove(ckpt_path) == 0 && fm__sync_parent(ckpt_path) != 0)
        save_rc = fm__err(&save_err, "%s: cannot sync the folder: %s", p->out_dir,
                          strerror(errno));
    if (r->diverged) {
        size_t used = err ? strlen(err->msg) : 0;
        if (err && save_rc < 0)
            snprintf(err->msg + used, sizeof err->msg - used, "; %s", save_err.msg);
        else if (err && r->restored_epoch)
            snprintf(err->msg + used, sizeof err->msg - used,
                     "; kept %s (best val_accuracy, epoch %d) and %s (best val_loss, epoch %d)",
                     best_path, r->best_epoch, model_path, r->restored_epoch);
        else if (err)
            snprintf(err->msg + used, sizeof err->msg - used,
                     " before an epoch finished; no weights saved");
        goto done;
    }
    if (save_rc < 0) {
        if (err) *err = save_err;
        goto done;
    }
    rc = 0;
done:
    fm__train_state_free(&s);
    free(labels);
    return rc;
}
