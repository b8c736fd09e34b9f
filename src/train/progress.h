/* Keras-style progress: "Epoch 3/100", then one line per epoch
 *   750/750 ━━━━━━━━━━━━━━━━━━━━ 41s 55ms/step - accuracy: 0.9123 - loss: 0.2412 - ...
 * redrawn in place with an ETA while the epoch runs when the output is a
 * terminal, printed once at the end of the epoch otherwise. */
#ifndef FM_TRAIN_PROGRESS_H
#define FM_TRAIN_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

#include "core/clock.h" /* fm__now, for the callers' timings */

typedef struct fm__metric {
    const char *name;
    double value;
} fm__metric;

/* One progress line (no newline) into buf: "step/steps", a 20-wide bar, then
 * the ETA while step < steps or the elapsed time when done, the time per step,
 * and " - name: value" per metric (4 decimals, or %.4e when |value| <= 1e-3,
 * as Keras). ansi != 0 dims the unfinished part of the bar. */
void fm__progress_format(char *buf, size_t len, int step, int steps, double elapsed,
                         const fm__metric *m, int n_metrics, int ansi);

typedef struct fm__progress {
    FILE *out; /* NULL: silent */
    int tty;
    int steps;
    double start, last_draw;
} fm__progress;

/* Prints "Epoch epoch/epochs" and starts the clock. */
void fm__progress_begin(fm__progress *p, FILE *out, int epoch, int epochs, int steps);
/* After step `step` of the epoch, with the running metrics: redraws the line
 * on a terminal (at most every 0.1 s); nothing otherwise. */
void fm__progress_step(fm__progress *p, int step, const fm__metric *m, int n_metrics);
/* The epoch's final line, with the validation metrics and learning rate. */
void fm__progress_end(fm__progress *p, const fm__metric *m, int n_metrics);

#endif
