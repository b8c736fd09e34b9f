/* Inference: the one path from image bytes to class probabilities, and to
 * the mean loss when labels are given, that evaluation (the trainer's
 * validation and test passes, fmnist eval), prediction, the report and the
 * benchmark all run, so none of them can disagree with another. Also the
 * one definition of the network's input scaling. */
#ifndef FM_MODEL_INFER_H
#define FM_MODEL_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

/* 0 when the model takes 1x28x28 images and gives FM_NUM_CLASSES outputs
 * (what the data, the confusion matrix and the class names assume). */
int fm__check_io(const fm_model *m, fm_err *err);

/* Index of the largest of p[0..n) (the first on ties). */
int fm__argmax(const float *p, int n);

/* A pixel value (0..255, or in between after resampling) as the network
 * sees it: x / 255 in float, Keras's preprocessing. Training's augmentation
 * uses it too, so training and inference see the same floats. */
static inline float fm__pixel_scale(float x) { return x / 255.0f; }

/* The most images an int8 model's forward pass takes at a time: on the
 * 2-core AMX Xeon its inference runs 1.7x faster at 32 than at 500 per
 * pass (BENCHMARKS.md), fp32 the same at both. */
#define FM__INT8_CHUNK 32

/* dst[i] = fm__pixel_scale(src[i]) for len pixels. */
void fm__input_scale(float *dst, const uint8_t *src, size_t len);

/* Runs m in inference mode (BatchNorm moving statistics, no dropout) on n
 * samples: pixels (n, C, H, W) bytes in m->input's shape, each batch scaled
 * into m->input_buf and run forward, in batches of m->batch_cap (reserving
 * `batch` first when m has no reservation yet; an int8 model in batches of
 * at most FM__INT8_CHUNK, and reserving no more). probs (n, classes) receives
 * the softmax. With labels (n, each < classes), *loss is the mean softmax
 * cross-entropy from the logits: each batch's mean weighted by its size,
 * summed in double, over n (NAN when n is 0); labels NULL leaves *loss alone.
 * With m->tta FM_TTA_FLIP each batch runs twice, as it is and mirrored left
 * to right: probs = 0.5f * (p + p_mirrored), the two softmax outputs, and
 * the loss is the cross-entropy of that mean (computed in log space from
 * both passes' logits).
 * 0, or -1 with err when the reservation fails. A caller must re-read
 * m->input_buf, m->probs, ... afterwards (see fm__model_reserve). */
int fm__model_infer(fm_model *m, const uint8_t *pixels, const uint8_t *labels, size_t n,
                    int batch, float *probs, double *loss, fm_err *err);
/* fm__model_infer on the network's input values themselves: x (n, C, H, W)
 * floats, copied into m->input_buf rather than scaled, so bytes given as
 * fm__pixel_scale(v) give fm__model_infer's results to the bit. */
int fm__model_infer_floats(fm_model *m, const float *x, const uint8_t *labels, size_t n,
                           int batch, float *probs, double *loss, fm_err *err);

#endif
