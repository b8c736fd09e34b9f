/* EarlyStopping, ReduceLROnPlateau and ModelCheckpoint, following Keras 3's
 * on_epoch_end logic line by line (NaN never counts as an improvement). */
#include "train/callbacks.h"

#include <math.h>

void fm__early_stop_init(fm__early_stop *s, int patience) {
    s->patience = patience;
    s->best = INFINITY;
    s->best_epoch = 0;
    s->wait = 0;
    s->stopped_epoch = 0;
}

int fm__early_stop_update(fm__early_stop *s, int epoch, double val_loss, int *stop) {
    *stop = 0;
    int first = s->best_epoch == 0;
    s->wait++;
    if (val_loss < s->best) {
        s->best = val_loss;
        s->best_epoch = epoch;
        s->wait = 0;
        return 1;
    }
    /* Keras keeps the first epoch's weights even when its val_loss is NaN. */
    if (first) {
        s->best_epoch = epoch;
        return 1;
    }
    if (s->wait >= s->patience) {
        s->stopped_epoch = epoch;
        *stop = 1;
    }
    return 0;
}

void fm__reduce_lr_init(fm__reduce_lr *s, int patience, double factor, double min_lr) {
    s->patience = patience;
    s->factor = factor;
    s->min_lr = min_lr;
    s->min_delta = 1e-4;
    s->best = INFINITY;
    s->wait = 0;
    s->reductions = 0;
}

int fm__reduce_lr_update(fm__reduce_lr *s, double val_loss, float *lr) {
    if (val_loss < s->best - s->min_delta) {
        s->best = val_loss;
        s->wait = 0;
        return 0;
    }
    s->wait++;
    /* Keras leaves wait counting up once lr sits at min_lr. */
    if (s->wait >= s->patience && *lr > (float)s->min_lr) {
        double next = *lr * s->factor;
        *lr = (float)(next > s->min_lr ? next : s->min_lr);
        s->wait = 0;
        s->reductions++;
        return 1;
    }
    return 0;
}

void fm__save_best_init(fm__best_saver *s) {
    s->best = -INFINITY;
    s->best_epoch = 0;
}

int fm__save_best_update(fm__best_saver *s, int epoch, double val_accuracy) {
    if (!(val_accuracy > s->best)) return 0;
    s->best = val_accuracy;
    s->best_epoch = epoch;
    return 1;
}
