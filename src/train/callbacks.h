/* The recipe's three Keras callbacks as pure state machines over per-epoch
 * numbers. Their state is plain data (a resume checkpoint can store it as
 * is); the trainer does the side effects they ask for (snapshot or save the
 * weights, change the learning rate, stop). Epochs are counted from 1. */
#ifndef FM_TRAIN_CALLBACKS_H
#define FM_TRAIN_CALLBACKS_H

/* EarlyStopping(monitor='val_loss', patience, restore_best_weights=True).
 * Improvement: current < best (min_delta 0); the first epoch always
 * improves. Stops when the epochs since the best reach the patience. */
typedef struct fm__early_stop {
    int patience;
    double best;       /* best val_loss so far */
    int best_epoch;    /* 0 before the first epoch */
    int wait;          /* epochs since best_epoch */
    int stopped_epoch; /* epoch it asked to stop at; 0 if it has not */
} fm__early_stop;

void fm__early_stop_init(fm__early_stop *s, int patience);
/* Returns 1 when val_loss improved (the caller snapshots the weights, BatchNorm
 * statistics included, to restore at the end), 0 otherwise; *stop = 1 when
 * training should end after this epoch. */
int fm__early_stop_update(fm__early_stop *s, int epoch, double val_loss, int *stop);

/* ReduceLROnPlateau(monitor='val_loss', patience, factor, min_delta=1e-4,
 * cooldown=0, min_lr). Improvement: current < best - 1e-4 (absolute). */
typedef struct fm__reduce_lr {
    int patience;
    double factor, min_lr, min_delta;
    double best;
    int wait;
    int reductions; /* how many times it lowered the rate */
} fm__reduce_lr;

void fm__reduce_lr_init(fm__reduce_lr *s, int patience, double factor, double min_lr);
/* Updates *lr (the rate used this epoch) for the next epoch; returns 1 when it
 * lowered it. */
int fm__reduce_lr_update(fm__reduce_lr *s, double val_loss, float *lr);

/* Keras's ModelCheckpoint(monitor='val_accuracy', save_best_only=True),
 * named for what it does here ("checkpoint" is the resume file): saves when
 * val_accuracy strictly improves on the best so far (the first epoch does). */
typedef struct fm__best_saver {
    double best;
    int best_epoch; /* 0 before the first save */
} fm__best_saver;

void fm__save_best_init(fm__best_saver *s);
/* Returns 1 when the caller should save the weights now. */
int fm__save_best_update(fm__best_saver *s, int epoch, double val_accuracy);

#endif
