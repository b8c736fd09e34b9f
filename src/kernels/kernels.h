/* The one kernel interface. Every numeric op of the network goes through a
 * table of function pointers; fm__kernels_ref() is the plain, obviously-correct
 * C reference, fm__kernels_select() the fastest table this CPU supports
 * (chosen once at run time by CPU features; FMNIST_KERNELS=ref|avx2|avx512
 * overrides it). Fast tables must match the reference within the tolerances
 * written in tests/test_kernels.c.
 *
 * Conventions (shapes in comments, llm.c style):
 * - activations are NCHW float32, batch first; dense activations (N, D);
 * - conv weights (OC, C, K, K), dense weights (OUT, IN) (PyTorch layouts);
 * - forward ops overwrite their output; backward ops overwrite the input
 *   gradient (din) and ACCUMULATE (+=) into parameter gradients;
 * - ops parallelise internally with OpenMP (static schedules, fixed-order
 *   reductions) so a given thread count gives bit-identical results;
 * - `work` is scratch the caller provides, at least *_workspace() floats;
 *   kernels never allocate.
 */
#ifndef FM_KERNELS_H
#define FM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef struct fm__conv_shape {
    int n;            /* batch */
    int c, h, w;      /* input channels, height, width */
    int oc, oh, ow;   /* output channels, height, width */
    int k;            /* square kernel size */
    int stride;
    int pad_t, pad_l; /* zero padding at top/left; bottom/right follow from oh/ow */
} fm__conv_shape;

/* A quantized conv or dense layer (int8 weights per output row, uint8
 * input). Its input x is rounded to bytes,
 *   q = clamp(round_half_even(t / in_scale) + zp, 0, 255),
 *   t = fmaf(x, pre_mul[ch], pre_add[ch]) where a BatchNorm before the layer
 *       is folded in (ch: x's channel, for a dense layer x's index), else x,
 * padding is q = zp (the real 0), and each output is
 *   acc = sum over the row of (q - zp) * w, exact in int32,
 *   out = fmaf((float)acc, scale[o], bias[o]), then ReLU when relu, then
 *   out = fmaf(out, post_mul[o], post_add[o]) where a BatchNorm after the
 *   layer is folded in.
 * Weights stay within +-FM__QW_MAX so that two u8 * s8 products fit an int16
 * (AVX2's vpmaddubsw saturates there). Every table computes the same
 * integers and the same float steps, so all agree to the bit. */
#define FM__QW_MAX 63
typedef struct fm__qweights {
    const int8_t *w;       /* (OC, C*K*K) or (OUT, IN): the float weights' layout */
    const int32_t *wsum;   /* (OC) each row's sum, so acc = sum q*w - zp * wsum */
    const float *scale;    /* (OC) in_scale * the row's weight scale */
    const float *bias;     /* (OC) */
    const float *pre_mul;  /* (C) or (IN): a folded BatchNorm, or NULL (then pre_add too) */
    const float *pre_add;
    const float *post_mul; /* (OC) or (OUT): a folded BatchNorm after it, or NULL (then post_add too) */
    const float *post_add;
    float in_scale;        /* > 0 */
    int zp;                /* 0..255 */
} fm__qweights;

typedef struct fm__kernels {
    const char *name; /* "ref", "avx2", "avx512" */

    /* Scratch, in floats, that the conv ops below need for shape s. */
    size_t (*conv2d_workspace)(const fm__conv_shape *s);
    /* out (N,OC,OH,OW) = b + conv(in (N,C,H,W), w (OC,C,K,K)); then ReLU when relu != 0. */
    void (*conv2d_forward)(float *out, const float *in, const float *w, const float *b,
                           const fm__conv_shape *s, int relu, float *work);
    /* din (N,C,H,W) = conv^T(dout (N,OC,OH,OW), w). */
    void (*conv2d_backward_data)(float *din, const float *dout, const float *w,
                                 const fm__conv_shape *s, float *work);
    /* dw (OC,C,K,K) += corr(in, dout); db (OC) += sum dout. */
    void (*conv2d_backward_weights)(float *dw, float *db, const float *dout, const float *in,
                                    const fm__conv_shape *s, float *work);

    /* Scratch, in floats, that the dense ops below need (0 for the fp32 tables). */
    size_t (*dense_workspace)(int n, int in_dim, int out_dim);
    /* out (N,OUT) = in (N,IN) . w^T + b; then ReLU when relu != 0. */
    void (*dense_forward)(float *out, const float *in, const float *w, const float *b, int n,
                          int in_dim, int out_dim, int relu, float *work);
    /* din (N,IN) = dout (N,OUT) . w (OUT,IN). */
    void (*dense_backward_data)(float *din, const float *dout, const float *w, int n, int in_dim,
                                int out_dim, float *work);
    /* dw (OUT,IN) += dout^T . in; db (OUT) += sum over N of dout. */
    void (*dense_backward_weights)(float *dw, float *db, const float *dout, const float *in,
                                   int n, int in_dim, int out_dim, float *work);

    /* Training-mode batch norm over N*HW per channel, biased variance:
     * out = gamma*(in-mean)*invstd + beta; writes mean (C), invstd (C) = 1/sqrt(var+eps)
     * and var (C, biased) for the caller's moving averages. */
    void (*batchnorm_forward_train)(float *out, float *mean, float *var, float *invstd,
                                    const float *in, const float *gamma, const float *beta, int n,
                                    int c, int hw, float eps);
    /* Inference: out = gamma*(in-mmean)/sqrt(mvar+eps) + beta. */
    void (*batchnorm_forward_infer)(float *out, const float *in, const float *gamma,
                                    const float *beta, const float *mmean, const float *mvar,
                                    int n, int c, int hw, float eps);
    /* din = batch-norm backward with batch statistics; dgamma, dbeta (C) +=. */
    void (*batchnorm_backward)(float *din, float *dgamma, float *dbeta, const float *dout,
                               const float *in, const float *mean, const float *invstd,
                               const float *gamma, int n, int c, int hw);

    /* out = max(in, 0). out may alias in. */
    void (*relu_forward)(float *out, const float *in, size_t len);
    /* din = dout where out > 0, else 0. din may alias dout. */
    void (*relu_backward)(float *din, const float *dout, const float *out, size_t len);

    /* Max pooling, window = stride = pool, valid: out (N,C,H/pool,W/pool);
     * argmax (same size as out) gets the window position 0..pool*pool-1 of the
     * maximum (first one on ties). */
    void (*maxpool_forward)(float *out, uint8_t *argmax, const float *in, int n, int c, int h,
                            int w, int pool);
    /* din (N,C,H,W) = dout routed to the argmax positions, 0 elsewhere. */
    void (*maxpool_backward)(float *din, const float *dout, const uint8_t *argmax, int n, int c,
                             int h, int w, int pool);

    /* Average pooling, window = stride = ph x pw, valid: out (N,C,H/ph,W/pw)
     * holds each window's mean (its sum in row-major order, divided by
     * ph*pw). ph = h, pw = w is global average pooling: out (N,C). */
    void (*avgpool_forward)(float *out, const float *in, int n, int c, int h, int w, int ph,
                            int pw);
    /* din (N,C,H,W) = each dout / (ph*pw) over its window, 0 outside every window. */
    void (*avgpool_backward)(float *din, const float *dout, int n, int c, int h, int w, int ph,
                             int pw);

    /* Inverted dropout given a keep mask (1 keep, 0 drop): out = in*mask*scale.
     * Backward is the same op on gradients. out may alias in. */
    void (*dropout_apply)(float *out, const float *in, const uint8_t *mask, float scale,
                          size_t len);

    /* Softmax cross-entropy from logits (N,classes) against labels (N)
     * smoothed by `smoothing` s in [0, 1] as Keras's
     * CategoricalCrossentropy(label_smoothing=s) does (and PyTorch's
     * F.cross_entropy(label_smoothing=s)): target t = onehot*(1-s) + s/classes.
     * probs (N,classes); dlogits (N,classes) = (probs - t)/N (may be NULL at
     * inference); returns the mean over the batch of -sum t*log(probs).
     * Numerically stable (max-shifted); s = 0 is the plain one-hot loss. */
    float (*softmax_xent)(float *probs, float *dlogits, const float *logits,
                          const uint8_t *labels, int n, int classes, float smoothing);

    /* int8 inference (post-training quantization, model/quant.c): see
     * fm__qweights. Scratch in bytes for shape s, and for a dense layer. */
    size_t (*qconv2d_workspace)(const fm__conv_shape *s);
    /* out (N,OC,OH,OW) from in (N,C,H,W) through q (rows OC of C*K*K). */
    void (*qconv2d_forward)(float *out, const float *in, const fm__qweights *q,
                            const fm__conv_shape *s, int relu, void *work);
    size_t (*qdense_workspace)(int n, int in_dim, int out_dim);
    /* out (N,OUT) from in (N,IN) through q (rows OUT of IN). */
    void (*qdense_forward)(float *out, const float *in, const fm__qweights *q, int n, int in_dim,
                           int out_dim, int relu, void *work);
} fm__kernels;

const fm__kernels *fm__kernels_ref(void);
/* NULL when this CPU (or this build) lacks the instructions. */
const fm__kernels *fm__kernels_avx2(void);
const fm__kernels *fm__kernels_avx512(void);
/* avx2 and avx512 with VNNI's vpdpbusd in the int8 ops (AVX-VNNI,
 * AVX512-VNNI): their fp32 ops are avx2's and avx512's, and the int8 ops'
 * results the same bits. */
const fm__kernels *fm__kernels_avx2_vnni(void);
const fm__kernels *fm__kernels_avx512_vnni(void);
/* avx512-vnni with its int8 convs on AMX-INT8 (tdpbsud), where the CPU and
 * OS allow it: the same bits. */
const fm__kernels *fm__kernels_amx_int8(void);
/* The vector-extension table, on any CPU; NULL only in a build without it. */
const fm__kernels *fm__kernels_portable(void);
/* The fp32 table whose fp32 ops k has: avx2 for avx2-vnni, avx512 for
 * avx512-vnni and amx-int8, else k. */
const fm__kernels *fm__kernels_fp32_base(const fm__kernels *k);
/* Whether name is one of the tables (ref, portable, avx2, avx2-vnni, avx512, avx512-vnni,
 * amx-int8), and that
 * table when this CPU and build run it (else NULL). */
int fm__kernels_known(const char *name);
/* The name of table i, fastest first ("ref" last); NULL past the end. */
const char *fm__kernels_table_name(int i);
const fm__kernels *fm__kernels_by_name(const char *name);
/* The dispatch point: best table for this CPU, or the one FMNIST_KERNELS names. */
const fm__kernels *fm__kernels_select(void);
/* bf16 training (fast/bf16.c): tables whose conv and dense ops round both
 * factors of every product to bf16 and keep fp32 sums (fm_precision in
 * fmnist.h), the other ops being base's. The one on the instructions,
 * NULL when this CPU or build lacks them: the AMX one (tdpbf16ps) where
 * the CPU and OS allow it, else the AVX512_BF16 one (vdpbf16ps); each
 * alone; the emulated one on base's instruction set (NULL for ref, which
 * has none). */
const fm__kernels *fm__kernels_bf16(void);
const fm__kernels *fm__kernels_bf16_amx(void);
const fm__kernels *fm__kernels_bf16_avx512(void);
const fm__kernels *fm__kernels_bf16_emulated(const fm__kernels *base);
/* The table training at precision p (FM_PRECISION_*) runs on, built on
 * fm__kernels_select(); NULL when there is none (bf16 on ref). */
const fm__kernels *fm__kernels_for_precision(int precision);

#endif
