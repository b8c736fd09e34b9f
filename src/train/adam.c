/* Keras Adam: one flat loop over every trainable float of the model. */
#include "train/adam.h"

#include <math.h>
#include <stddef.h>

void fm__adam_init(fm__adam *a, float lr) {
    a->lr = lr;
    a->beta1 = 0.9f;
    a->beta2 = 0.999f;
    a->eps = 1e-7f;
    a->t = 0;
}

void fm__adam_step(fm__adam *a, float *w, const float *g, float *m, float *v, size_t n) {
    a->t++;
    /* The bias corrections in double: beta^t for large t loses nothing there,
     * and alpha is one scalar per step. */
    double t = (double)a->t;
    float alpha = (float)((double)a->lr * sqrt(1.0 - pow((double)a->beta2, t)) /
                          (1.0 - pow((double)a->beta1, t)));
    float c1 = 1.0f - a->beta1, c2 = 1.0f - a->beta2, eps = a->eps;
    /* Element by element, no reduction: any thread count gives the same
     * result bit for bit. The loop streams 7 floats per parameter, so it is
     * bound by memory bandwidth, which two cores share better than one. */
    const ptrdiff_t count = (ptrdiff_t)n;
#ifdef _OPENMP
#pragma omp parallel for simd schedule(static) if (count > 65536)
#endif
    for (ptrdiff_t i = 0; i < count; i++) {
        float gi = g[i];
        float mi = m[i] + (gi - m[i]) * c1;
        float vi = v[i] + (gi * gi - v[i]) * c2;
        m[i] = mi;
        v[i] = vi;
        w[i] -= (mi * alpha) / (sqrtf(vi) + eps);
    }
}
