/* What fuzz_cfg and fuzz_model do with a model the library accepted: print
 * its summary, and when it is small, run it (one forward and backward pass
 * on a batch of two; a planner that got a shape wrong shows up there as an
 * out-of-bounds access; then inference as the verbs run it, with flip
 * test-time augmentation, whose mirror works on any shape) and round-trip it
 * through fm_model_save and fm_model_load, which must give back the same
 * description, parameters, statistics, training split and test-time
 * augmentation. */
#ifndef FM_FUZZ_MODEL_COMMON_H
#define FM_FUZZ_MODEL_COMMON_H

#include <math.h>

#include "fuzz_util.h"
#include "model/infer.h"
#include "model/model.h"

/* Bounds on what a fuzz input gets to run, so every input stays fast. */
#define FUZZ_MAX_PARAMS ((size_t)1 << 18)   /* params + statistics */
#define FUZZ_MAX_FLOPS ((double)(1 << 22)) /* multiply-adds per image */
#define FUZZ_MAX_SAMPLE ((size_t)1 << 16)   /* floats per image, any layer */

static FILE *fuzz__null;

/* Roughly the multiply-adds of one image through the network. */
static inline double fuzz_model_flops(const fm_model *m) {
    double f = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const fm__layer *l = &m->layers[i];
        double out = (double)fm__shape_len(l->out), in = (double)fm__shape_len(l->in);
        /* a weighted layer (conv, dense) does a multiply-add per output and
         * weight of its output channel; the rest about one op per value */
        if (l->type->n_tensors && l->type->tensors[0].init == FM__INIT_GLOROT)
            f += out * (double)l->t[0].len / l->out.c;
        else f += in > out ? in : out;
    }
    return f;
}

static inline int fuzz_model_small(const fm_model *m) {
    if (m->n_params + m->n_stats > FUZZ_MAX_PARAMS) return 0;
    if (fm__shape_len(m->input) > FUZZ_MAX_SAMPLE) return 0;
    for (int i = 0; i < m->n_layers; i++)
        if (fm__shape_len(m->layers[i].out) > FUZZ_MAX_SAMPLE) return 0;
    return fuzz_model_flops(m) <= FUZZ_MAX_FLOPS;
}

static inline int fuzz_all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* m has its parameters allocated. */
static inline void fuzz_exercise_model(fm_model *m, int training) {
    fm_err err = {{0}};
    if (!fuzz__null && !(fuzz__null = fopen("/dev/null", "w"))) abort();
    size_t trainable = 0, total = fm_model_param_count(m, &trainable);
    FUZZ_ASSERT(trainable == m->n_params && total == m->n_params + m->n_stats, "param count");
    fm_model_summary(m, fuzz__null);
    if (!fuzz_model_small(m)) return;

    /* One pass on a batch of two. */
    enum { B = 2 };
    FUZZ_ASSERT(fm__model_reserve(m, B, &err) == 0, "reserve: %s", err.msg);
    const size_t in_len = fm__shape_len(m->input);
    for (size_t j = 0; j < B * in_len; j++) m->input_buf[j] = (float)(j % 251) / 251.0f;
    const fm__draws draws = {1, 0, NULL}; /* seed 1, epoch 0, sample i = image i */
    FUZZ_ASSERT(fm__model_forward(m, B, training, &draws) != NULL, "forward refused a batch of %d", B);
    uint8_t labels[B] = {0, (uint8_t)(m->classes - 1)};
    fm__model_zero_grads(m);
    fm__model_loss_backward(m, labels, B, 0.0f, training);
    uint8_t *px = malloc(B * in_len);
    float *probs = malloc(B * (size_t)m->classes * sizeof *probs);
    FUZZ_ASSERT(px && probs, "out of memory");
    for (size_t j = 0; j < B * in_len; j++) px[j] = (uint8_t)(j * 37);
    fm_tta tta = m->tta;
    m->tta = FM_TTA_FLIP;
    double loss;
    FUZZ_ASSERT(fm__model_infer(m, px, labels, B, B, probs, &loss, &err) == 0, "infer: %s", err.msg);
    m->tta = tta;
    free(px);
    free(probs);

    /* Save and load back. */
    if (!fuzz_all_finite(m->params, m->n_params) || !fuzz_all_finite(m->stats, m->n_stats)) return;
    for (size_t j = 0; j < m->n_stats; j++)
        if (m->stats[j] < 0) return; /* a variance gone negative through rounding */
    const char *path = fuzz_tmp_path("round.safetensors");
    FUZZ_ASSERT(fm_model_save(m, path, &err) == 0, "save: %s", err.msg);
    fm_model *back = fm_model_load(path, &err);
    FUZZ_ASSERT(back != NULL, "reload: %s", err.msg);
    FUZZ_ASSERT(!strcmp(fm_model_description(back), fm_model_description(m)), "description differs");
    FUZZ_ASSERT(back->n_params == m->n_params && back->n_stats == m->n_stats, "sizes differ");
    FUZZ_ASSERT(!memcmp(back->params, m->params, m->n_params * sizeof(float)), "params differ");
    FUZZ_ASSERT(!memcmp(back->stats, m->stats, m->n_stats * sizeof(float)), "stats differ");
    FUZZ_ASSERT(back->has_split == m->has_split &&
                    (!m->has_split ||
                     (back->split_seed == m->split_seed && back->split_val == m->split_val &&
                      back->split_limit == m->split_limit)),
                "training split differs");
    FUZZ_ASSERT(back->tta == m->tta, "test-time augmentation differs");
    fm_model_free(back);
}

#endif
