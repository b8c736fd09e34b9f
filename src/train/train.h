/* Pieces shared by the trainer and the evaluator. */
#ifndef FM_TRAIN_TRAIN_H
#define FM_TRAIN_TRAIN_H

#include "model/model.h"

/* Images per inference batch when evaluating a model not planned for a
 * batch yet (fmnist eval): as fast per image as 500 (fmnist bench
 * --infer-batch), at a fifth of the activation memory. */
#define FM__EVAL_BATCH 100

/* 0 when the model takes 1x28x28 images and gives FM_NUM_CLASSES outputs
 * (what the data, the confusion matrix and the class names assume). */
int fm__check_io(const fm_model *m, fm_err *err);

/* Index of the largest of p[0..n) (the first on ties). */
int fm__argmax(const float *p, int n);

#endif
