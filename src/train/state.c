/* The training state (see state.h): checks, data fingerprint, setup of a
 * fresh run and the epoch log. */
#include "train/state.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "train/train.h"

int fm__train_check_params(const fm_train_params *p, fm_err *err) {
    if (p->epochs < 1) return fm__err(err, "epochs must be at least 1 (got %d)", p->epochs);
    if (p->batch < 1) return fm__err(err, "batch must be at least 1 (got %d)", p->batch);
    if (!(p->lr > 0.0f) || !isfinite(p->lr))
        return fm__err(err, "learning rate must be positive (got %g)", (double)p->lr);
    if (p->es_patience < 0 || p->lr_patience < 1)
        return fm__err(err, "patience must be at least 1 (early stopping: 0 turns it off)");
    if (!(p->lr_factor > 0.0f && p->lr_factor < 1.0f))
        return fm__err(err, "lr factor must be in (0, 1) (got %g)", (double)p->lr_factor);
    if (!(p->min_lr >= 0.0f)) return fm__err(err, "min lr must be >= 0");
    if (!(p->val_split >= 0.0 && p->val_split < 1.0))
        return fm__err(err, "val_split must be in [0, 1) (got %g)", p->val_split);
    if (p->val_split == 0.0) {
        const char *needs = p->es_patience ? "early stopping (early_stopping_patience = 0 "
                                             "turns it off)"
                            : p->schedule == FM_SCHEDULE_PLATEAU
                                ? "the plateau schedule (choose another schedule)"
                            : p->save_best ? "ModelCheckpoint (save_best = no turns it off)"
                                           : NULL;
        if (needs)
            return fm__err(err, "val_split 0 leaves no validation set, which %s needs", needs);
    }
    if (p->ema && !(p->ema_decay >= 0.0f && p->ema_decay < 1.0f))
        return fm__err(err, "ema_decay must be in [0, 1) (got %g)", (double)p->ema_decay);
    if (p->precise_bn < 0) return fm__err(err, "precise_bn must be >= 0");
    /* the recipe text records it on one line, where '#' would start a comment */
    const size_t model_len = strnlen(p->model, sizeof p->model);
    if (model_len == 0 || model_len == sizeof p->model || strpbrk(p->model, "#\n\r") ||
        isspace((unsigned char)p->model[0]) || isspace((unsigned char)p->model[model_len - 1]))
        return fm__err(err, "model '%.60s' cannot be recorded in a recipe (empty, too long, or "
                            "with a '#', a line break or spaces at its ends)",
                       p->model);
    if (!(p->label_smoothing >= 0.0f && p->label_smoothing < 1.0f))
        return fm__err(err, "label smoothing must be in [0, 1) (got %g)",
                       (double)p->label_smoothing);
    if (p->tta < FM_TTA_NONE || p->tta > FM_TTA_FLIP)
        return fm__err(err, "unknown test-time augmentation %d", p->tta);
    if (fm__train_check_precision(p->precision, "", err) < 0) return -1;
    fm__aug_params aug = fm__train_aug_params(p);
    fm__optim o;
    fm__schedule sc;
    if (fm__aug_params_check(&aug, err) < 0 || fm__train_optim(&o, p, err) < 0 ||
        fm__train_schedule(&sc, p, 1, err) < 0)
        return -1;
    if (!p->out_dir || !*p->out_dir) return fm__err(err, "no output folder given");
    return 0;
}

int fm__train_check_precision(int precision, const char *prefix, fm_err *err) {
    if (!fm_precision_name(precision))
        return fm__err(err, "%sunknown precision %d", prefix, precision);
    if (!fm__kernels_for_precision(precision))
        return fm__err(err, "%sprecision %s needs a fast kernel table, and the %s table has no "
                            "bf16 ops (FMNIST_KERNELS)",
                       prefix, fm_precision_name(precision), fm_kernels_name());
    return 0;
}

int fm_train_params_check(const fm_train_params *p, fm_err *err) {
    return fm__train_check_params(p, err);
}

fm__aug_params fm__train_aug_params(const fm_train_params *p) {
    fm__aug_params a = fm__aug_params_none();
    a.affine = p->augment;
    a.flip = p->flip;
    a.translate = p->translate;
    a.erase_prob = p->erase_prob;
    a.erase_area_min = p->erase_area_min;
    a.erase_area_max = p->erase_area_max;
    a.erase_aspect_min = p->erase_aspect_min;
    a.erase_random_fill = p->erase_random;
    return a;
}

int fm__train_optim(fm__optim *o, const fm_train_params *p, fm_err *err) {
    if (p->optimizer == FM_OPTIMIZER_ADAM) {
        fm__optim_adam(o, p->lr);
        o->weight_decay = p->weight_decay; /* so that the check refuses it */
    } else if (p->optimizer == FM_OPTIMIZER_ADAMW) {
        fm__optim_adamw(o, p->lr, p->weight_decay);
    } else if (p->optimizer == FM_OPTIMIZER_SGD) {
        fm__optim_sgd(o, p->lr, p->momentum, p->nesterov, p->weight_decay);
    } else {
        return fm__err(err, "unknown optimizer %d", p->optimizer);
    }
    return fm__optim_check(o, err);
}

int fm__train_schedule(fm__schedule *s, const fm_train_params *p, int64_t total, fm_err *err) {
    static const fm__sched_kind kinds[] = {
        [FM_SCHEDULE_CONSTANT] = FM__SCHED_CONSTANT, [FM_SCHEDULE_COSINE] = FM__SCHED_COSINE,
        [FM_SCHEDULE_LINEAR] = FM__SCHED_LINEAR, [FM_SCHEDULE_ONECYCLE] = FM__SCHED_ONECYCLE};
    if (p->schedule < FM_SCHEDULE_PLATEAU || p->schedule > FM_SCHEDULE_ONECYCLE)
        return fm__err(err, "unknown schedule %d", p->schedule);
    if (p->schedule == FM_SCHEDULE_PLATEAU) {
        fm__schedule_warmup(s, FM__SCHED_CONSTANT, p->lr, 0, 0.0, 0.0); /* unused */
        if (p->warmup > 0.0f)
            return fm__err(err, "warmup needs a per-step schedule (constant, cosine or linear)");
        return 0;
    }
    if (p->schedule == FM_SCHEDULE_ONECYCLE) {
        if (p->warmup > 0.0f)
            return fm__err(err, "warmup: onecycle rises by onecycle_pct_start instead");
        fm__schedule_onecycle(s, p->lr);
        s->pct_start = p->onecycle_pct_start;
        s->div_factor = p->onecycle_div_factor;
        s->final_div_factor = p->onecycle_final_div_factor;
    } else {
        /* the warm-up's steps are a share of the run's, so --epochs rescales them */
        int64_t w = (int64_t)floor((double)p->warmup * (double)total + 0.5);
        fm__schedule_warmup(s, kinds[p->schedule], p->lr, w, p->warmup_start, p->lr_floor);
    }
    return fm__schedule_check(s, total, err);
}

int fm__train_check_run(const fm_model *m, const fm_images *train, const fm_images *val,
                        const fm_train_params *p, fm_err *err) {
    if (fm__train_check_params(p, err) < 0 || fm__check_io(m, err) < 0) return -1;
    if (m->quant)
        return fm__err(err, "%s: an int8 model cannot be trained; train the float model it was "
                            "quantized from",
                       m->source);
    /* not a recorded recipe value, so not in fm__train_check_params */
    if (p->checkpoint_steps < 0)
        return fm__err(err, "checkpoint steps must be >= 0 (got %d)", p->checkpoint_steps);
    if (train->count == 0) return fm__err(err, "the training set is empty");
    /* the data order is uint32 */
    if (train->count > UINT32_MAX) return fm__err(err, "too many training images");
    /* fm__train_check_params has refused what needs validation without a split */
    if (val->count == 0 && p->val_split > 0.0)
        return fm__err(err, "the validation set is empty (%zu training images, split %g); "
                            "use more images or a larger split",
                       train->count, p->val_split);
    for (size_t i = 0; i < train->count; i++)
        if (train->labels[i] >= FM_NUM_CLASSES)
            return fm__err(err, "training image %zu: label %d is not a class 0-9", i,
                           train->labels[i]);
    return 0;
}

uint64_t fm__hash_bytes(uint64_t h, const void *bytes, size_t n) {
    const uint8_t *p = bytes;
    const uint64_t prime = 0x100000001b3ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * prime;
    }
    for (; i < n; i++) h = (h ^ p[i]) * prime;
    return h;
}

uint64_t fm__data_fingerprint(const fm_images *train, const fm_images *val) {
    uint64_t h = FM__HASH_START;
    const fm_images *sets[2] = {train, val};
    for (int i = 0; i < 2; i++) {
        uint64_t count = sets[i]->count;
        h = fm__hash_bytes(h, &count, sizeof count);
        h = fm__hash_bytes(h, sets[i]->pixels, sets[i]->count * FM_IMAGE_PIXELS);
        h = fm__hash_bytes(h, sets[i]->labels, sets[i]->count);
    }
    return h;
}

int fm__train_state_init(fm__train_state *s, const fm_model *m, const fm_train_params *p,
                         size_t count, int steps_per_epoch) {
    memset(s, 0, sizeof *s);
    s->count = count;
    s->state_len = fm__model_state_len(m);
    size_t len = s->state_len ? s->state_len : 1;
    s->order = malloc((count ? count : 1) * sizeof *s->order);
    s->best_state = calloc(len, sizeof *s->best_state);
    if (p->ema) {
        s->ema = calloc(len, sizeof *s->ema);
        s->live = calloc(len, sizeof *s->live);
    }
    s->total_steps = (int64_t)p->epochs * steps_per_epoch;
    /* fm__train_check_params has accepted p: these cannot fail */
    fm__train_optim(&s->opt, p, NULL);
    fm__train_schedule(&s->sched, p, s->total_steps, NULL);
    fm__decay_from_model(&s->decay, m, !p->decay_biases_norms);
    fm__early_stop_init(&s->es, p->es_patience);
    fm__reduce_lr_init(&s->rlr, p->lr_patience, p->lr_factor, p->min_lr);
    fm__save_best_init(&s->saver);
    return s->order && s->best_state && (!p->ema || (s->ema && s->live)) ? 0 : -1;
}

void fm__train_state_free(fm__train_state *s) {
    free(s->order);
    free(s->best_state);
    free(s->ema);
    free(s->live);
    free(s->log);
    s->order = NULL;
    s->best_state = s->ema = s->live = NULL;
    s->log = NULL;
}

int fm__train_start_run(fm__train_state *s, fm_model *m, const fm_train_params *p, fm_err *err) {
    fm_rng rng;
    fm__rng_stream(&rng, p->seed, 0, FM__NO_SAMPLE, FM__DRAW_INIT);
    if (p->init) fm_model_init(m, &rng);
    memset(m->adam_m, 0, m->n_params * sizeof *m->adam_m);
    memset(m->adam_v, 0, m->n_params * sizeof *m->adam_v);
    s->r.loss = s->r.accuracy = s->r.val_loss = s->r.val_accuracy = NAN;
    s->r.best_val_accuracy = s->r.restored_val_loss = s->r.restored_val_accuracy = NAN;
    return fm__train_log_append(
        s, "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds\n", err);
}

int fm__train_log_append(fm__train_state *s, const char *line, fm_err *err) {
    size_t len = strlen(line);
    if (s->log_len + len + 1 > s->log_cap) {
        size_t cap = (s->log_len + len + 1) * 2;
        char *grown = realloc(s->log, cap);
        if (!grown) return fm__err(err, "out of memory for the epoch log");
        s->log = grown;
        s->log_cap = cap;
    }
    memcpy(s->log + s->log_len, line, len + 1);
    s->log_len += len;
    return 0;
}

int fm__train_check_dist(const fm__dist *d, int rc, const fm_model *m, const fm_images *train,
                         const fm_images *val, const fm_train_params *p, fm_err *err) {
    if (d->size == 1) return rc;
    size_t last = train->count % (size_t)p->batch;
    if (rc == 0 && p->batch % d->size)
        rc = fm__err(err, "the batch of %d does not split over %d processes; choose a --batch "
                          "that %d divides",
                     p->batch, d->size, d->size);
    else if (rc == 0 && last && last < (size_t)d->size)
        rc = fm__err(err, "the epoch's last batch of %zu image%s (%zu training images, batches "
                          "of %d) cannot be split over %d processes; change --batch or --limit",
                     last, last == 1 ? "" : "s", train->count, p->batch, d->size);
    if (fm__dist_agree(d, rc, err) < 0) return -1;
    int same = fm__dist_same_u64(d, fm__data_fingerprint(train, val), err);
    if (same == 0)
        return fm__err(err, "the processes' data differ (the training and validation images' "
                            "fingerprints): every machine needs the same data set, --limit and "
                            "--val-split");
    char *text = same > 0 ? fm_train_recipe_text(p) : NULL;
    const char *net = fm_model_description(m);
    uint64_t h = text ? fm__hash_bytes(fm__hash_bytes(FM__HASH_START, text, strlen(text)), net,
                                       strlen(net))
                      : 0;
    free(text);
    if (same > 0 && fm__dist_agree(d, h ? 0 : fm__err(err, "out of memory"), err) < 0) return -1;
    if (same > 0 && (same = fm__dist_same_u64(d, h, err)) == 0)
        return fm__err(err, "the processes' recipes or networks differ: start every process with "
                            "the same flags, recipe and model files");
    return same > 0 ? 0 : -1;
}
