/* Adam exactly as Keras defines it (epsilon on the uncorrected v, bias
 * correction folded into the step size). Plain-data state so a resume
 * checkpoint can store it next to the moments in model->adam_m / adam_v. */
#ifndef FM_TRAIN_ADAM_H
#define FM_TRAIN_ADAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct fm__adam {
    float lr;           /* current learning rate (ReduceLROnPlateau changes it) */
    float beta1, beta2; /* 0.9, 0.999 */
    float eps;          /* 1e-7 */
    int64_t t;          /* steps taken so far */
} fm__adam;

void fm__adam_init(fm__adam *a, float lr);

/* One update of n parameters w (n) from gradients g (n), moments m, v (n):
 *   t += 1
 *   m += (g - m)(1 - beta1);  v += (g^2 - v)(1 - beta2)
 *   w -= (m * alpha) / (sqrt(v) + eps),  alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t) */
void fm__adam_step(fm__adam *a, float *w, const float *g, float *m, float *v, size_t n);

#endif
