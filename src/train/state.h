/* The training state: everything fm_train changes as a run goes on (its
 * position, running metrics, generator, optimizer and callbacks, the data
 * order and EarlyStopping's snapshot, the epoch log), the checks a run must
 * pass before it starts, and the start of a fresh run. checkpoint.h stores
 * this state; the model's weights and moments live in the model. */
#ifndef FM_TRAIN_STATE_H
#define FM_TRAIN_STATE_H

#include "dist/dist.h"
#include "model/model.h"
#include "train/augment.h"
#include "train/callbacks.h"
#include "train/optim.h"
#include "train/schedule.h"

typedef struct fm__train_state {
    int epoch; /* epochs finished */
    int step;  /* steps of epoch + 1 done; 0 at an epoch boundary */
    int stop;  /* EarlyStopping asked to end after `epoch` */
    /* the epoch in progress */
    double loss_sum;
    int64_t correct, seen;
    double epoch_seconds; /* spent on it so far */
    double seconds;       /* training time of the whole run so far */

    fm__optim opt;       /* its lr: the next step's (plateau), the last step's (a schedule) */
    fm__decay decay;     /* where the weight decay applies */
    fm__schedule sched;  /* a per-step schedule's (unused by plateau) */
    int64_t total_steps; /* the run's: epochs * steps per epoch, what a schedule spans */
    fm__early_stop es;
    fm__reduce_lr rlr;
    fm__best_saver saver; /* ModelCheckpoint */
    fm_train_result r;    /* the results so far */

    size_t count;      /* training images */
    uint32_t *order;   /* (count) the data order of epoch + 1 */
    size_t state_len;  /* n_params + n_stats */
    float *best_state; /* (state_len) EarlyStopping's snapshot */
    float *ema;        /* (state_len) the weights' moving average, when the recipe keeps one */
    float *live;       /* (state_len) scratch: the trained weights while the average is in */
    char *log;         /* log.csv so far, header included */
    size_t log_len, log_cap;
} fm__train_state;

/* 0 when fm_train can run with these parameters, else -1 and why. */
int fm__train_check_params(const fm_train_params *p, fm_err *err);
/* 0 when training at precision (FM_PRECISION_*) can run here; else -1 and
 * why, the message starting with prefix (e.g. "bench: "). */
int fm__train_check_precision(int precision, const char *prefix, fm_err *err);

/* The pieces of p's recipe: its augmentation, its optimizer (checked: -1
 * and why when unusable) and its schedule for a run of total steps (checked
 * likewise; plateau gives a constant one, unused). */
fm__aug_params fm__train_aug_params(const fm_train_params *p);
int fm__train_optim(fm__optim *o, const fm_train_params *p, fm_err *err);
int fm__train_schedule(fm__schedule *s, const fm_train_params *p, int64_t total, fm_err *err);

/* 0 when fm_train can train m on train and val with p (the parameters, the
 * model's inputs and outputs, then the data), else -1 and the first problem. */
int fm__train_check_run(const fm_model *m, const fm_images *train, const fm_images *val,
                        const fm_train_params *p, fm_err *err);

/* A run across the processes of d (collective; 0 at once in a world of
 * one): rc, this process's own checks so far, agreed on; then that p's batch
 * splits over them (each share of every batch, the epoch's last too, at
 * least one image), and that they all have the same data, recipe and
 * network. -1 and why on every process otherwise. */
int fm__train_check_dist(const fm__dist *d, int rc, const fm_model *m, const fm_images *train,
                         const fm_images *val, const fm_train_params *p, fm_err *err);

/* A hash of the images and labels (train then val), stored in the checkpoint
 * so a resume can tell it has the run's data. */
uint64_t fm__data_fingerprint(const fm_images *train, const fm_images *val);

/* FNV-1a over 64-bit little-endian words, from h (FM__HASH_START to begin): a
 * fast, stable hash (not a cryptographic one: it tells data apart, it does
 * not defend against forgery). */
#define FM__HASH_START 0xcbf29ce484222325ull
uint64_t fm__hash_bytes(uint64_t h, const void *bytes, size_t n);

/* A state for `count` training images in epochs of steps_per_epoch steps as
 * a run starts (or before a checkpoint read fills it): order, best_state
 * (and the average's buffers) allocated, the optimizer, schedule and
 * callbacks at their initial values for p. -1 when out of memory;
 * fm__train_state_free releases what was allocated either way. */
int fm__train_state_init(fm__train_state *s, const fm_model *m, const fm_train_params *p,
                         size_t count, int steps_per_epoch);
void fm__train_state_free(fm__train_state *s);

/* A fresh run: the generator seeded from p->seed, m's initial weights (when
 * p->init) drawn from it, zero optimizer moments, no results yet and the
 * log's header line. */
int fm__train_start_run(fm__train_state *s, fm_model *m, const fm_train_params *p, fm_err *err);

/* Appends one line of log.csv (with its '\n') to the state's log. */
int fm__train_log_append(fm__train_state *s, const char *line, fm_err *err);

#endif
