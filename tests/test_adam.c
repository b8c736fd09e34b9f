/* Adam against an independent double-precision evaluation of the Keras
 * formulas, over several steps and a learning-rate change, and a case that
 * tells Keras's epsilon placement from PyTorch's. */
#include "check.h"
#include "train/adam.h"

#include <math.h>

#define N 5
#define STEPS 6

int main(void) {
    /* Parameters of mixed sign and scale; gradients change every step. */
    float w[N] = {0.5f, -1.25f, 3.0f, 0.0f, -0.001f};
    float m[N] = {0}, v[N] = {0};
    double wd[N], md[N] = {0}, vd[N] = {0};
    for (int i = 0; i < N; i++) wd[i] = w[i];

    fm__adam a;
    fm__adam_init(&a, 1e-3f);
    CHECK(a.t == 0);
    for (int s = 1; s <= STEPS; s++) {
        float g[N];
        for (int i = 0; i < N; i++) g[i] = (float)(sin(1.7 * s + i) * pow(10.0, i - 2));
        if (s == 4) a.lr = 5e-4f; /* ReduceLROnPlateau may change lr between steps */
        fm__adam_step(&a, w, g, m, v, N);

        double lr = s >= 4 ? 5e-4 : 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-7;
        double alpha = lr * sqrt(1 - pow(b2, s)) / (1 - pow(b1, s));
        for (int i = 0; i < N; i++) {
            md[i] = b1 * md[i] + (1 - b1) * g[i];
            vd[i] = b2 * vd[i] + (1 - b2) * (double)g[i] * g[i];
            wd[i] -= alpha * md[i] / (sqrt(vd[i]) + eps);
        }
        /* float32 1 - 0.999f is 0.00099998713, 1.3e-5 off in relative terms (as in Keras) */
        for (int i = 0; i < N; i++) {
            CHECK_NEAR(m[i], md[i], 1e-5);
            CHECK_NEAR(v[i], vd[i], 5e-5);
            CHECK_NEAR(w[i], wd[i], 1e-6);
        }
    }
    CHECK(a.t == STEPS);
    CHECK(a.beta1 == 0.9f && a.beta2 == 0.999f && a.eps == 1e-7f);

    /* A gradient near epsilon: Keras puts eps on sqrt(v) before the bias
     * correction, PyTorch after it. At t = 1, g = 1e-7:
     *   Keras:   lr * sqrt(1e-3) g / (sqrt(1e-3) |g| + eps) = 0.0306 lr
     *   PyTorch: lr * g / (|g| + eps)                          = 0.5 lr */
    {
        float w1 = 0.0f, m1 = 0.0f, v1 = 0.0f, g1 = 1e-7f;
        fm__adam b;
        fm__adam_init(&b, 1.0f);
        fm__adam_step(&b, &w1, &g1, &m1, &v1, 1);
        double keras = -sqrt(1e-3) * 1e-7 / (sqrt(1e-3) * 1e-7 + 1e-7);
        double torch = -1e-7 / (1e-7 + 1e-7);
        CHECK_NEAR(w1, keras, 1e-4);
        CHECK(fabs(w1 - torch) > 0.1);
    }

    /* A zero gradient on fresh moments moves nothing (0 / eps). */
    {
        float w1 = 2.0f, m1 = 0.0f, v1 = 0.0f, g1 = 0.0f;
        fm__adam b;
        fm__adam_init(&b, 1e-3f);
        fm__adam_step(&b, &w1, &g1, &m1, &v1, 1);
        CHECK(w1 == 2.0f);
    }
    return check_finish();
}
