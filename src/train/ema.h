/* The weights' exponential moving average (issue 12), with Keras's use_ema
 * semantics: after each optimizer step the average takes
 *   avg = d avg + (1 - d) w,
 * where the first step (t = 0 steps before it) copies (d = 0), and with
 * warm-up d = min(decay, (1 + t) / (10 + t)) (TensorFlow's
 * ExponentialMovingAverage with num_updates = t). The trainer averages the
 * whole state, parameters and BatchNorm statistics, so the average has its
 * own statistics. Element by element: any thread count, the same bits. */
#ifndef FM_TRAIN_EMA_H
#define FM_TRAIN_EMA_H

#include <stddef.h>
#include <stdint.h>

/* The decay of the update after `before` earlier steps. */
float fm__ema_decay(float decay, int warmup, int64_t before);

/* avg (n) = d avg + (1 - d) w (n), d = fm__ema_decay(decay, warmup, before). */
void fm__ema_update(float *avg, const float *w, size_t n, float decay, int warmup,
                    int64_t before);

#endif
