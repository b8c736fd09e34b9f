/* int8 inference: post-training quantization of a float model
 * (fm_model_quantize) and the state an int8 model runs from.
 *
 * Every layer whose type declares forward_int8 (conv, dense) is quantized:
 * - its weights per output row, symmetric: w_scale = max |w| / FM__QW_MAX,
 *   w_int8 = round(w / w_scale), 7 bits (kernels.h says why);
 * - its input per tensor, asymmetric uint8 from the range seen on the
 *   calibration images (widened to hold 0): in_scale = (hi - lo) / 255,
 *   zero point round(-lo / in_scale); an input that is never negative gets
 *   zero point 0, so the first layer's pixels / 255 round back to the pixels
 *   exactly;
 * - a BatchNorm just before it is folded into the rounding of its input
 *   (fm__qweights.pre_mul/pre_add): exact, and no float pass of its own. It
 *   cannot go into the weights: it follows a ReLU, and a conv's zero padding
 *   of the normalised input is not the normalisation of a zero-padded one.
 * - a BatchNorm just after it that no quantized layer follows (one before a
 *   pooling) is folded into its outputs, after the ReLU
 *   (fm__qweights.post_mul/post_add): one fused multiply-add in the
 *   epilogue in place of a float pass over the activations.
 * Everything else (pooling, softmax) runs in float between them.
 *
 * A model file stores, per quantized layer, "<layer>.<weight>_int8" (I8,
 * the weight's shape), "<layer>.<weight>_scale" (F32, rows),
 * "<layer>.input_scale" (F32, [1]) and "<layer>.input_zero_point" (U8, [1])
 * in place of the float weight; the rest as a float model; metadata
 * "fmnist.quantization" = "int8" and "fmnist.calibration" saying how the
 * input ranges were found. The loader derives the rest (fm__quant_finish). */
#ifndef FM_MODEL_QUANT_H
#define FM_MODEL_QUANT_H

#include "model/model.h"

#define FM__QUANT_META "fmnist.quantization"
#define FM__QUANT_CALIBRATION_META "fmnist.calibration"

/* The longest weight row a quantized layer may have: the int32 sum of
 * row_len products of up to 255 * FM__QW_MAX must not overflow. */
#define FM__QUANT_MAX_ROW ((size_t)2147483647 / (255 * FM__QW_MAX))

typedef struct fm__qlayer {
    /* stored */
    int8_t *w;      /* (rows, row_len): the float weight's layout */
    float *w_scale; /* (rows) */
    float in_scale;
    uint8_t zp;
    /* derived */
    int rows;
    size_t row_len;
    int32_t *wsum;            /* (rows) */
    float *scale;             /* (rows) in_scale * w_scale */
    float *pre_mul, *pre_add; /* (in channels): the BatchNorm folded in, or NULL */
    float *post_mul, *post_add; /* (rows): the BatchNorm after it folded in, or NULL */
    fm__qweights q;           /* the kernels' view of all this */
} fm__qlayer;

struct fm__quant {
    fm__qlayer *layers; /* one per model layer; w NULL for those in float */
    void *block;        /* owns every array above */
    char *calibration;  /* fmnist.calibration: how the input ranges were found */
};

/* Whether layer l is one an int8 model quantizes. */
int fm__quant_layer(const fm__layer *l);

/* Allocates m->quant for m's layers, every stored part zero: what
 * fm_model_load fills from a file before fm__quant_finish. */
int fm__quant_alloc(fm_model *m, const char *calibration, fm_err *err);
/* From the stored parts: the derived ones, the folding, every layer's q, and
 * the dequantized weights (w_int8 * w_scale) in the float parameters (what
 * the summary counts). Drops the activations planned for float, whose
 * scratch is smaller: the next use reserves again. */
void fm__quant_finish(fm_model *m);
void fm__quant_free(fm_model *m);

#endif
