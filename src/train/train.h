/* Pieces shared by the trainer and the evaluator. */
#ifndef FM_TRAIN_TRAIN_H
#define FM_TRAIN_TRAIN_H

#include "model/infer.h" /* fm__check_io, fm__argmax */
#include "model/model.h"

/* Images per inference batch when evaluating a model not planned for a
 * batch yet (fmnist eval): as fast per image as 500 (fmnist bench
 * --infer-batch), at a fifth of the activation memory. */
#define FM__EVAL_BATCH 100

#endif
