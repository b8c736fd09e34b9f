/* The optimizers a training recipe can choose (issue 12), each one flat
 * element-wise loop over the model's parameter block, like train/adam.c:
 *
 * - FM__OPTIM_ADAM: Keras Adam, the notebook's, computed by train/adam.c
 *   (epsilon on the uncorrected sqrt(v), bias correction folded into the
 *   step size); no weight decay.
 * - FM__OPTIM_ADAMW: torch.optim.AdamW. It builds on PyTorch's Adam, not
 *   Keras's: epsilon is added to sqrt(v / (1 - beta2^t)), the bias-corrected
 *   second moment, and the default epsilon is 1e-8. AdamW recipes (lr,
 *   weight decay, epsilon) come from the PyTorch world and are tuned for
 *   that placement; the two differ wherever |g| is near epsilon. Per step t:
 *     w -= lr * wd * w                                  (decoupled decay, on
 *                                                        the weight before the step)
 *     m += (g - m)(1 - beta1);  v = beta2 v + (1 - beta2) g^2
 *     w -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * - FM__OPTIM_SGD: torch.optim.SGD with dampening 0. Weight decay is coupled
 *   (L2 in the gradient), momentum mu, optionally Nesterov:
 *     g' = g + wd * w;  b = mu b + g';  w -= lr * (nesterov ? g' + mu b : b)
 *   (PyTorch's first step sets b = g', which is mu * 0 + g' here: the buffer
 *   starts at zero; momentum 0 is plain SGD.)
 *
 * The state is plain data so a checkpoint can store it; the per-parameter
 * state lives in the model (m->adam_m, m->adam_v; SGD's momentum buffer in
 * adam_m), zero at the start of a run. Weight decay applies to the parts of
 * the block an fm__decay lists, so BatchNorm parameters and biases can be
 * left out (fm__decay_from_model). Element by element, no reduction: any
 * thread count gives the same bits.
 *
 * Used by tests/test_optim.c (against torch.optim, tests/torch/gen_fixtures.py);
 * meant for the recipe wiring of fm_train, which until then runs the
 * notebook's Adam through train/adam.c directly. */
#ifndef FM_TRAIN_OPTIM_H
#define FM_TRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "fmnist/fmnist.h"
#include "model/model.h"

typedef enum fm__optim_kind {
    FM__OPTIM_ADAM,  /* Keras Adam (train/adam.c) */
    FM__OPTIM_ADAMW, /* torch.optim.AdamW */
    FM__OPTIM_SGD    /* torch.optim.SGD, dampening 0 */
} fm__optim_kind;

typedef struct fm__optim {
    fm__optim_kind kind;
    float lr;           /* of the next step (a schedule or ReduceLROnPlateau sets it) */
    float beta1, beta2; /* Adam, AdamW */
    float eps;          /* Adam (Keras: 1e-7), AdamW (PyTorch: 1e-8) */
    float momentum;     /* SGD: in [0, 1), 0 is plain SGD */
    int nesterov;       /* SGD: Nesterov momentum (needs momentum > 0) */
    float weight_decay; /* AdamW: decoupled; SGD: coupled; Adam: must be 0 */
    int64_t t;          /* steps taken so far */
} fm__optim;

/* Initial states with the libraries' defaults: Keras Adam (betas 0.9,
 * 0.999, eps 1e-7; fm__adam_init's), AdamW (betas 0.9, 0.999, eps 1e-8, as
 * torch.optim.AdamW; its default weight decay is 1e-2) and SGD. A recipe may
 * change the fields afterwards, then fm__optim_check them. */
void fm__optim_adam(fm__optim *o, float lr);
void fm__optim_adamw(fm__optim *o, float lr, float weight_decay);
void fm__optim_sgd(fm__optim *o, float lr, float momentum, int nesterov, float weight_decay);

/* 0 when the settings are usable (PyTorch's checks, plus what keeps a run
 * finite): lr, eps and weight decay finite and >= 0, betas and momentum in
 * [0, 1), Nesterov only with momentum, no weight decay on Keras Adam;
 * otherwise -1 and what is wrong, naming the setting. */
int fm__optim_check(const fm__optim *o, fm_err *err);

/* Where weight decay applies in a block of parameters: spans [begin, end)
 * of floats, sorted, disjoint, within the block. */
typedef struct fm__span {
    size_t begin, end;
} fm__span;

#define FM__DECAY_MAX_SPANS (FM__MAX_LAYERS * FM__MAX_TENSORS)

typedef struct fm__decay {
    int n;
    fm__span span[FM__DECAY_MAX_SPANS];
} fm__decay;

/* The decay spans of m's parameter block (m->params): with kernels_only,
 * only the Glorot-initialised tensors (conv and dense kernels), leaving out
 * biases and BatchNorm's gamma and beta (the usual AdamW recipe); otherwise
 * every trainable tensor, i.e. the whole block (PyTorch's default, one
 * parameter group). Adjacent tensors merge into one span. */
void fm__decay_from_model(fm__decay *d, const fm_model *m, int kernels_only);

/* One update of the n parameters w (n) from gradients g (n) with the
 * per-parameter state m, v (n each; SGD uses m only), at rate o->lr;
 * t += 1. decay: where weight decay applies (NULL: everywhere); Keras Adam
 * ignores it. */
void fm__optim_step(fm__optim *o, float *w, const float *g, float *m, float *v, size_t n,
                    const fm__decay *decay);

#endif
