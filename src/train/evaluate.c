/* Loss, accuracy, confusion matrix and per-class scores in inference mode. */
#include "train/train.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/infer.h"

int fm_model_evaluate(fm_model *m, const fm_images *imgs, fm_eval_result *out, fm_err *err) {
    memset(out, 0, sizeof *out);
    if (fm__check_io(m, err) < 0) return -1;
    if (imgs->count == 0) return fm__err(err, "no images to evaluate");
    for (size_t i = 0; i < imgs->count; i++)
        if (imgs->labels[i] >= FM_NUM_CLASSES)
            return fm__err(err, "image %zu: label %d is not a class 0-9", i, imgs->labels[i]);
    /* A model already planned for some batch (the trainer's) is evaluated in
     * batches of that size: a larger plan would cost far more memory than it
     * saves time. */
    size_t count = imgs->count;
    int batch = count < FM__EVAL_BATCH ? (int)count : FM__EVAL_BATCH;
    float *probs = malloc(count * FM_NUM_CLASSES * sizeof *probs); /* (count, classes) */
    if (!probs) return fm__err(err, "evaluation: out of memory for %zu images", count);
    if (fm__model_infer(m, imgs->pixels, imgs->labels, count, batch, probs, &out->loss, err) < 0) {
        free(probs);
        return -1;
    }
    size_t correct = 0;
    for (size_t i = 0; i < count; i++) {
        int pred = fm__argmax(probs + i * FM_NUM_CLASSES, FM_NUM_CLASSES);
        out->confusion[imgs->labels[i]][pred]++;
        correct += pred == imgs->labels[i];
    }
    free(probs);

    out->count = count;
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
    return 0;
}
