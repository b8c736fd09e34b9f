/* The training checkpoint: everything a run needs to go on exactly where it
 * stopped, in one safetensors file that is also a model file (fm_model_load
 * reads its weights and ignores the rest):
 *   model tensors and metadata       as fm_model_save writes them
 *   train.adam_m, train.adam_v       F32 (n_params) Adam moments
 *   train.best_state                 F32 (n_params + n_stats) EarlyStopping's snapshot
 *   train.order                      I64 (train count) this epoch's data order
 *   train.rng                        I64 (4) generator state (bits of the uint64s)
 *   train.<scalar>                   I64 / F64 / F32 () position, running
 *                                    metrics, optimizer and callback state
 *   metadata fmnist.train.*          the recipe, data fingerprint and epoch log
 * Written atomically (temp file, fsync, rename, fsync of the folder). */
#ifndef FM_TRAIN_CHECKPOINT_H
#define FM_TRAIN_CHECKPOINT_H

#include "model/model.h"
#include "train/adam.h"
#include "train/callbacks.h"

#define FM__CHECKPOINT_FILE "checkpoint.safetensors"

typedef struct fm__train_state {
    int epoch; /* epochs finished */
    int step;  /* steps of epoch + 1 done; 0 at an epoch boundary */
    int stop;  /* EarlyStopping asked to end after `epoch` */
    /* the epoch in progress */
    double loss_sum;
    int64_t correct, seen;
    double epoch_seconds; /* spent on it so far */
    double seconds;       /* training time of the whole run so far */

    fm_rng rng;
    fm__adam adam;
    fm__early_stop es;
    fm__reduce_lr rlr;
    fm__best_saver saver; /* ModelCheckpoint */
    fm_train_result r; /* the results so far */

    size_t count;      /* training images */
    uint32_t *order;   /* (count) the data order of epoch + 1 */
    size_t state_len;  /* n_params + n_stats */
    float *best_state; /* (state_len) EarlyStopping's snapshot */
    char *log;         /* log.csv so far, header included */
    size_t log_len, log_cap;
} fm__train_state;

/* A hash of the images and labels (train then val), stored in the checkpoint
 * so a resume can tell it has the run's data. */
uint64_t fm__data_fingerprint(const fm_images *train, const fm_images *val);

/* Writes the state of model m and s to path. */
int fm__checkpoint_write(const char *path, const fm_model *m, const fm_train_params *p,
                         const fm__train_state *s, uint64_t fingerprint, size_t val_count,
                         fm_err *err);

/* Reads the checkpoint at path into m (weights, statistics, Adam moments) and
 * s (order, best_state and log allocated here), after checking it was written
 * for m's description, this recipe and this data. */
int fm__checkpoint_read(const char *path, fm_model *m, const fm_train_params *p,
                        fm__train_state *s, uint64_t fingerprint, size_t val_count, fm_err *err);

/* A state for `count` training images as a run starts (or before a
 * checkpoint read fills it): order and best_state allocated, Adam and the
 * callbacks at their initial values for p. -1 when out of memory;
 * fm__train_state_free releases what was allocated either way. */
int fm__train_state_init(fm__train_state *s, const fm_model *m, const fm_train_params *p,
                         size_t count);
void fm__train_state_free(fm__train_state *s);

#endif
