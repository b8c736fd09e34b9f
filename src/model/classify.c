/* The embedding API: inference contexts and classification of a model that
 * stays read-only, so several threads can run one model at once.
 *
 * The model keeps its activations in itself (fm__model_reserve), for the
 * trainer and the evaluators, which own it. A context instead runs a copy
 * of the model's struct, `run`: the same description, parameters and
 * statistics (pointers into the model, which inference only reads), but its
 * own layer list, whose activation buffers (each layer's y and save) and
 * arena are the context's. fm__model_infer then runs on it unchanged, so
 * classification is the one inference path, to the bit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/infer.h"
#include "model/model.h"

struct fm_ctx {
    const fm_model *model;
    fm_model run; /* never passed to fm_model_free: most of it is the model's */
};

fm_ctx *fm_ctx_new(const fm_model *m, int batch, fm_err *err) {
    fm_ctx *c = calloc(1, sizeof *c);
    fm__layer *layers = malloc((size_t)m->n_layers * sizeof *layers);
    if (!c || !layers) {
        free(c);
        free(layers);
        fm__err(err, "%s: out of memory for an inference context", m->source);
        return NULL;
    }
    c->model = m;
    c->run = *m;
    memcpy(layers, m->layers, (size_t)m->n_layers * sizeof *layers);
    c->run.layers = layers;
    /* None of the model's activations: the reservation lays out the
     * context's own, every activation pointer of run and its layers. */
    c->run.batch_cap = 0;
    c->run.arena = NULL;
    c->run.layer_seconds = NULL;
    c->run.observe = NULL;
    c->run.k_train = c->run.k; /* inference only */
    if (fm__model_reserve(&c->run, batch, err) < 0) {
        fm_ctx_free(c);
        return NULL;
    }
    return c;
}

void fm_ctx_free(fm_ctx *c) {
    if (!c) return;
    free(c->run.layers);
    free(c->run.arena);
    free(c);
}

int fm_model_classify_batch(const fm_model *m, fm_ctx *ctx, const void *pixels,
                            fm_pixel_type type, size_t n, float *probs, int *classes,
                            fm_err *err) {
    if (type != FM_PIXELS_U8 && type != FM_PIXELS_F32)
        return fm__err(err, "%s: %d is not a pixel type (FM_PIXELS_U8 or FM_PIXELS_F32)",
                       m->source, (int)type);
    if (ctx && ctx->model != m)
        return fm__err(err, "%s: the inference context was made for another model", m->source);
    if (n == 0) return 0;
    if (!pixels) return fm__err(err, "%s: no pixels to classify", m->source);
    const size_t in_len = fm__shape_len(m->input), k = (size_t)m->classes;
    if (type == FM_PIXELS_F32) {
        const float *x = pixels;
        for (size_t i = 0; i < n * in_len; i++)
            if (!isfinite(x[i]))
                return fm__err(err, "%s: image %zu: value %zu is not finite", m->source,
                               i / in_len, i % in_len);
    }
    fm_ctx *own = NULL;
    if (!ctx && !(own = ctx = fm_ctx_new(m, n < FM__PREDICT_BATCH ? (int)n : FM__PREDICT_BATCH,
                                         err)))
        return -1;
    fm_model *run = &ctx->run;
    run->tta = m->tta; /* the model's setting now */
    /* Without probs the probabilities of one batch at a time go here. */
    float *scratch = probs ? NULL : malloc((size_t)run->batch_cap * k * sizeof *scratch);
    int rc = probs || scratch ? 0 : fm__err(err, "%s: out of memory", m->source);
    for (size_t done = 0; rc == 0 && done < n;) {
        size_t b = n - done < (size_t)run->batch_cap ? n - done : (size_t)run->batch_cap;
        float *p = probs ? probs + done * k : scratch;
        rc = type == FM_PIXELS_U8
                 ? fm__model_infer(run, (const uint8_t *)pixels + done * in_len, NULL, b,
                                   run->batch_cap, p, NULL, err)
                 : fm__model_infer_floats(run, (const float *)pixels + done * in_len, NULL, b,
                                          run->batch_cap, p, NULL, err);
        if (rc == 0 && classes)
            for (size_t i = 0; i < b; i++) classes[done + i] = fm__argmax(p + i * k, (int)k);
        done += b;
    }
    free(scratch);
    fm_ctx_free(own);
    return rc;
}

int fm_model_classify(const fm_model *m, const uint8_t pixels[FM_IMAGE_PIXELS],
                      float probs[FM_NUM_CLASSES], fm_err *err) {
    float p[FM_NUM_CLASSES];
    int best;
    if (fm__check_io(m, err) < 0 ||
        fm_model_classify_batch(m, NULL, pixels, FM_PIXELS_U8, 1, probs ? probs : p, &best,
                                err) < 0)
        return -1;
    return best;
}
