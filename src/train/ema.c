/* The weights' moving average (ema.h). */
#include "train/ema.h"

float fm__ema_decay(float decay, int warmup, int64_t before) {
    if (before == 0) return 0.0f; /* Keras: the first step copies */
    if (warmup) {
        double ramp = (1.0 + (double)before) / (10.0 + (double)before);
        if (ramp < decay) return (float)ramp;
    }
    return decay;
}

void fm__ema_update(float *avg, const float *w, size_t n, float decay, int warmup,
                    int64_t before) {
    const float d = fm__ema_decay(decay, warmup, before), c = 1.0f - d;
    for (size_t i = 0; i < n; i++) avg[i] = d * avg[i] + c * w[i];
}
