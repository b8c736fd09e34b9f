/* The training state (see state.h): checks, data fingerprint, setup of a
 * fresh run and the epoch log. */
#include "train/state.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/train.h"

int fm__train_check_params(const fm_train_params *p, fm_err *err) {
    if (p->epochs < 1) return fm__err(err, "epochs must be at least 1 (got %d)", p->epochs);
    if (p->batch < 1) return fm__err(err, "batch must be at least 1 (got %d)", p->batch);
    if (!(p->lr > 0.0f) || !isfinite(p->lr))
        return fm__err(err, "learning rate must be positive (got %g)", (double)p->lr);
    if (p->es_patience < 1 || p->lr_patience < 1)
        return fm__err(err, "patience must be at least 1");
    if (!(p->lr_factor > 0.0f && p->lr_factor < 1.0f))
        return fm__err(err, "lr factor must be in (0, 1) (got %g)", (double)p->lr_factor);
    if (!(p->min_lr >= 0.0f)) return fm__err(err, "min lr must be >= 0");
    if (!p->out_dir || !*p->out_dir) return fm__err(err, "no output folder given");
    return 0;
}

int fm__train_check_run(const fm_model *m, const fm_images *train, const fm_images *val,
                        const fm_train_params *p, fm_err *err) {
    if (fm__train_check_params(p, err) < 0 || fm__check_io(m, err) < 0) return -1;
    /* not a recorded recipe value, so not in fm__train_check_params */
    if (p->checkpoint_steps < 0)
        return fm__err(err, "checkpoint steps must be >= 0 (got %d)", p->checkpoint_steps);
    if (train->count == 0) return fm__err(err, "the training set is empty");
    /* the data order is uint32 */
    if (train->count > UINT32_MAX) return fm__err(err, "too many training images");
    if (val->count == 0)
        return fm__err(err, "the validation set is empty; the callbacks need val_loss "
                            "(use a validation split > 0)");
    for (size_t i = 0; i < train->count; i++)
        if (train->labels[i] >= FM_NUM_CLASSES)
            return fm__err(err, "training image %zu: label %d is not a class 0-9", i,
                           train->labels[i]);
    return 0;
}

/* FNV-1a over 64-bit little-endian words: a fast, stable hash (not a
 * cryptographic one: it tells data apart, it does not defend against forgery). */
static uint64_t hash_bytes(uint64_t h, const uint8_t *p, size_t n) {
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
    uint64_t h = 0xcbf29ce484222325ull;
    const fm_images *sets[2] = {train, val};
    for (int i = 0; i < 2; i++) {
        uint64_t count = sets[i]->count;
        h = hash_bytes(h, (const uint8_t *)&count, sizeof count);
        h = hash_bytes(h, sets[i]->pixels, sets[i]->count * FM_IMAGE_PIXELS);
        h = hash_bytes(h, sets[i]->labels, sets[i]->count);
    }
    return h;
}

int fm__train_state_init(fm__train_state *s, const fm_model *m, const fm_train_params *p,
                         size_t count) {
    memset(s, 0, sizeof *s);
    s->count = count;
    s->state_len = fm__model_state_len(m);
    s->order = malloc((count ? count : 1) * sizeof *s->order);
    s->best_state = calloc(s->state_len ? s->state_len : 1, sizeof *s->best_state);
    fm__adam_init(&s->adam, p->lr);
    fm__early_stop_init(&s->es, p->es_patience);
    fm__reduce_lr_init(&s->rlr, p->lr_patience, p->lr_factor, p->min_lr);
    fm__save_best_init(&s->saver);
    return s->order && s->best_state ? 0 : -1;
}

void fm__train_state_free(fm__train_state *s) {
    free(s->order);
    free(s->best_state);
    free(s->log);
    s->order = NULL;
    s->best_state = NULL;
    s->log = NULL;
}

int fm__train_start_run(fm__train_state *s, fm_model *m, const fm_train_params *p, fm_err *err) {
    fm_rng_seed(&s->rng, p->seed);
    if (p->init) fm_model_init(m, &s->rng);
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
