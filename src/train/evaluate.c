/* Loss, accuracy, confusion matrix and per-class scores in inference mode,
 * in one process or split over the processes of a run. */
#include "train/train.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "dist/dist.h"
#include "model/infer.h"

/* Scores images [lo, hi) of imgs into out's loss (their mean; 0 for none)
 * and confusion; imgs checked. */
static int score(fm_model *m, const fm_images *imgs, size_t lo, size_t hi, fm_eval_result *out,
                 fm_err *err) {
    size_t count = hi - lo;
    if (count == 0) return 0;
    /* A model already planned for some batch (the trainer's) is evaluated in
     * batches of that size: a larger plan would cost far more memory than it
     * saves time. */
    int batch = count < FM__EVAL_BATCH ? (int)count : FM__EVAL_BATCH;
    float *probs = malloc(count * FM_NUM_CLASSES * sizeof *probs); /* (count, classes) */
    if (!probs) return fm__err(err, "evaluation: out of memory for %zu images", count);
    const uint8_t *labels = imgs->labels + lo;
    double loss;
    if (fm__model_infer(m, imgs->pixels + lo * FM_IMAGE_PIXELS, labels, count, batch, probs,
                        &loss, err) < 0) {
        free(probs);
        return -1;
    }
    out->loss = loss;
    for (size_t i = 0; i < count; i++)
        out->confusion[labels[i]][fm__argmax(probs + i * FM_NUM_CLASSES, FM_NUM_CLASSES)]++;
    free(probs);
    return 0;
}

static int check_images(fm_model *m, const fm_images *imgs, fm_err *err) {
    if (fm__check_io(m, err) < 0) return -1;
    if (imgs->count == 0) return fm__err(err, "no images to evaluate");
    for (size_t i = 0; i < imgs->count; i++)
        if (imgs->labels[i] >= FM_NUM_CLASSES)
            return fm__err(err, "image %zu: label %d is not a class 0-9", i, imgs->labels[i]);
    return 0;
}

/* The scores from out's confusion over count images. */
static void finish(fm_eval_result *out, size_t count) {
    out->count = count;
    size_t correct = 0;
    for (int c = 0; c < FM_NUM_CLASSES; c++) correct += out->confusion[c][c];
    out->accuracy = (double)correct / (double)count;
    for (int c = 0; c < FM_NUM_CLASSES; c++) {
        size_t tp = out->confusion[c][c], pred_c = 0, true_c = 0;
        for (int k = 0; k < FM_NUM_CLASSES; k++) {
            pred_c += out->confusion[k][c];
            true_c += out->confusion[c][k];
        }
        /* No predictions (or no examples) of a class: 0, as sklearn's zero_division. */
        out->precision[c] = pred_c ? (double)tp / (double)pred_c : 0.0;
        out->recall[c] = true_c ? (double)tp / (double)true_c : 0.0;
        size_t tn = count - pred_c - true_c + tp;
        out->class_accuracy[c] = (double)(tp + tn) / (double)count;
    }
}

int fm_model_evaluate(fm_model *m, const fm_images *imgs, fm_eval_result *out, fm_err *err) {
    memset(out, 0, sizeof *out);
    if (check_images(m, imgs, err) < 0 || score(m, imgs, 0, imgs->count, out, err) < 0)
        return -1;
    finish(out, imgs->count);
    return 0;
}

int fm_dist_evaluate(fm_model *m, const fm_images *imgs, fm_eval_result *out, fm_err *err) {
    const fm__dist *d = fm__dist_world();
    if (d->size == 1) return fm_model_evaluate(m, imgs, out, err);
    memset(out, 0, sizeof *out);
    size_t lo, hi;
    fm__dist_share(d, imgs->count, &lo, &hi);
    int rc = check_images(m, imgs, err) < 0 ? -1 : score(m, imgs, lo, hi, out, err);
    if (fm__dist_agree(d, rc, err) < 0) return -1;
    /* the loss sum and the confusion counts (exact in a double) */
    double sums[1 + FM_NUM_CLASSES * FM_NUM_CLASSES];
    sums[0] = out->loss * (double)(hi - lo);
    for (int i = 0; i < FM_NUM_CLASSES * FM_NUM_CLASSES; i++)
        sums[1 + i] = out->confusion[i / FM_NUM_CLASSES][i % FM_NUM_CLASSES];
    if (fm__dist_sum_f64(d, sums, sizeof sums / sizeof sums[0], err) < 0) return -1;
    out->loss = sums[0] / (double)imgs->count;
    for (int i = 0; i < FM_NUM_CLASSES * FM_NUM_CLASSES; i++)
        out->confusion[i / FM_NUM_CLASSES][i % FM_NUM_CLASSES] = (uint32_t)sums[1 + i];
    finish(out, imgs->count);
    return 0;
}
