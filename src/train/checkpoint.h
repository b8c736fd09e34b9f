/* The training checkpoint: everything a run needs to go on exactly where it
 * stopped, in one safetensors file that is also a model file (fm_model_load
 * reads its weights and ignores the rest):
 *   model tensors and metadata       as fm_model_save writes them
 *   train.adam_m, train.adam_v       F32 (n_params) the optimizer's moments (SGD:
 *                                    its momentum in adam_m, adam_v zero)
 *   train.best_state                 F32 (n_params + n_stats) EarlyStopping's snapshot
 *   train.order                      I64 (train count) this epoch's data order
 *   train.ema                        F32 (n_params + n_stats) the moving average,
 *                                    when the recipe keeps one
 *   train.<scalar>                   I64 / F64 / F32 () position, running
 *                                    metrics, optimizer and callback state
 *   metadata fmnist.train.*          the recipe, data fingerprint and epoch log
 * Written atomically (temp file, fsync, rename, fsync of the folder). */
#ifndef FM_TRAIN_CHECKPOINT_H
#define FM_TRAIN_CHECKPOINT_H

#include "dist/dist.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "train/state.h"

#define FM__CHECKPOINT_FILE "checkpoint.safetensors"
/* Metadata naming the run's recipe, and its whole text (fm_train_recipe_text;
 * optional: older checkpoints lack them). */
#define FM__CHECKPOINT_RECIPE_NAME "fmnist.train.recipe_name"
#define FM__CHECKPOINT_RECIPE_TEXT "fmnist.train.recipe"

/* Writes the state of model m and s to path. */
int fm__checkpoint_write(const char *path, const fm_model *m, const fm_train_params *p,
                         const fm__train_state *s, uint64_t fingerprint, size_t val_count,
                         fm_err *err);

/* Reads the checkpoint at path into m (weights, statistics, Adam moments) and
 * s (order, best_state and log allocated here), after checking it was written
 * for m's description, this recipe and this data. Collective over d: process
 * 0 reads the file, every process gets its state (and the same answer). */
int fm__checkpoint_read(const fm__dist *d, const char *path, fm_model *m,
                        const fm_train_params *p,
                        fm__train_state *s, uint64_t fingerprint, size_t val_count, fm_err *err);

/* For resume.c, which reads a checkpoint's recipe and position before the
 * run has data (f is the file read from path): */
/* The metadata value `key`, or NULL and an error naming it. */
const char *fm__checkpoint_meta(const fm__st_file *f, const char *path, const char *key,
                                fm_err *err);
/* Every scalar of s (position, running metrics, optimizer and callback
 * state), each checked for its range. */
int fm__checkpoint_read_scalars(const fm__st_file *f, const char *path, fm__train_state *s,
                                fm_err *err);

#endif
