/* Batched inference (fm__model_infer) and what is built on it here:
 * the input scaling and fm_model_predict. */
#include "model/infer.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

void fm__input_scale(float *dst, const uint8_t *src, size_t len) {
    for (size_t i = 0; i < len; i++) dst[i] = fm__pixel_scale(src[i]);
}

/* One batch: px (b, C, H, W) bytes -> m->probs (b, classes), and the mean
 * loss against labels (b) when given, else 0. Everything that changes what
 * inference computes per batch (test-time augmentation, say) belongs here,
 * so every caller gets it at once. */
static float infer_batch(fm_model *m, const uint8_t *px, const uint8_t *labels, int b) {
    fm__input_scale(m->input_buf, px, (size_t)b * fm__shape_len(m->input));
    fm__model_forward(m, b, 0, NULL);
    return labels ? fm__model_loss_backward(m, labels, b, 0.0f, 0) : 0.0f;
}

int fm__model_infer(fm_model *m, const uint8_t *pixels, const uint8_t *labels, size_t n,
                    int batch, float *probs, double *loss, fm_err *err) {
    if (!m->batch_cap && fm__model_reserve(m, batch, err) < 0) return -1;
    const size_t in_len = fm__shape_len(m->input), k = (size_t)m->classes;
    double loss_sum = 0.0;
    for (size_t done = 0; done < n;) {
        int b = n - done < (size_t)m->batch_cap ? (int)(n - done) : m->batch_cap;
        float l = infer_batch(m, pixels + done * in_len, labels ? labels + done : NULL, b);
        loss_sum += (double)l * b; /* the batch's mean, weighted back by its size */
        memcpy(probs + done * k, m->probs, (size_t)b * k * sizeof(float));
        done += (size_t)b;
    }
    if (labels) *loss = n ? loss_sum / (double)n : NAN;
    return 0;
}

int fm_model_predict(fm_model *m, const fm_images *imgs, size_t start, size_t n, float *probs,
                     fm_err *err) {
    if (m->input.h != FM_IMAGE_ROWS || m->input.w != FM_IMAGE_COLS || m->input.c != 1)
        return fm__err(err, "%s: the model takes %dx%dx%d inputs, not 28x28x1 images", m->source,
                       m->input.h, m->input.w, m->input.c);
    if (m->classes != FM_NUM_CLASSES)
        return fm__err(err, "%s: the model has %d classes, not %d", m->source, m->classes,
                       FM_NUM_CLASSES);
    if (start > imgs->count || n > imgs->count - start)
        return fm__err(err, "predict: images [%zu, %zu) are outside the set of %zu", start,
                       start + n, imgs->count);
    return fm__model_infer(m, imgs->pixels + start * FM_IMAGE_PIXELS, NULL, n, FM__PREDICT_BATCH,
                           probs, NULL, err);
}
