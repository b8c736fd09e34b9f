/* Private helpers shared by the kernel tables (not part of the interface). */
#ifndef FM_KERNELS_INTERNAL_H
#define FM_KERNELS_INTERNAL_H

#include <math.h>

#include "kernels/kernels.h"

/* OpenMP pragmas that vanish (without an unknown-pragma warning) when the
 * build has no OpenMP: FM__OMP(omp parallel for schedule(static)). */
#ifdef _OPENMP
#define FM__OMP(x) _Pragma(#x)
#else
#define FM__OMP(x)
#endif

/* An int8 layer's output o from its exact sum acc (of (q - zp) * w), as
 * kernels.h's fm__qweights gives it: the reference's, and the scalar
 * epilogue of the fast tables. */
static inline float fm__qdequantize(int32_t acc, const fm__qweights *q, int o, int relu) {
    float v = fmaf((float)acc, q->scale[o], q->bias[o]);
    if (relu) v = v > 0.0f ? v : 0.0f;
    return q->post_mul ? fmaf(v, q->post_mul[o], q->post_add[o]) : v;
}

/* The reference ops, so the fast tables can reuse the ones they do not
 * specialise (see kernels.h for the semantics). */
size_t fm__ref_conv2d_workspace(const fm__conv_shape *s);
void fm__ref_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                            const fm__conv_shape *s, int relu, float *work);
void fm__ref_conv2d_backward_data(float *din, const float *dout, const float *w,
                                  const fm__conv_shape *s, float *work);
void fm__ref_conv2d_backward_weights(float *dw, float *db, const float *dout, const float *in,
                                     const fm__conv_shape *s, float *work);
size_t fm__ref_dense_workspace(int n, int in_dim, int out_dim);
void fm__ref_dense_forward(float *out, const float *in, const float *w, const float *b, int n,
                           int in_dim, int out_dim, int relu, float *work);
void fm__ref_dense_backward_data(float *din, const float *dout, const float *w, int n, int in_dim,
                                 int out_dim, float *work);
void fm__ref_dense_backward_weights(float *dw, float *db, const float *dout, const float *in,
                                    int n, int in_dim, int out_dim, float *work);
void fm__ref_batchnorm_forward_train(float *out, float *mean, float *var, float *invstd,
                                     const float *in, const float *gamma, const float *beta,
                                     int n, int c, int hw, float eps);
void fm__ref_batchnorm_forward_infer(float *out, const float *in, const float *gamma,
                                     const float *beta, const float *mmean, const float *mvar,
                                     int n, int c, int hw, float eps);
void fm__ref_batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                                const float *in, const float *mean, const float *invstd,
                                const float *gamma, int n, int c, int hw);
void fm__ref_relu_forward(float *out, const float *in, size_t len);
void fm__ref_relu_backward(float *din, const float *dout, const float *out, size_t len);
void fm__ref_maxpool_forward(float *out, uint8_t *argmax, const float *in, int n, int c, int h,
                             int w, int pool);
void fm__ref_maxpool_backward(float *din, const float *dout, const uint8_t *argmax, int n, int c,
                              int h, int w, int pool);
void fm__ref_avgpool_forward(float *out, const float *in, int n, int c, int h, int w, int ph,
                             int pw);
void fm__ref_avgpool_backward(float *din, const float *dout, int n, int c, int h, int w, int ph,
                              int pw);
void fm__ref_dropout_apply(float *out, const float *in, const uint8_t *mask, float scale,
                           size_t len);
float fm__ref_softmax_xent(float *probs, float *dlogits, const float *logits,
                           const uint8_t *labels, int n, int classes, float smoothing);
size_t fm__ref_qconv2d_workspace(const fm__conv_shape *s);
void fm__ref_qconv2d_forward(float *out, const float *in, const fm__qweights *q,
                             const fm__conv_shape *s, int relu, void *work);
size_t fm__ref_qdense_workspace(int n, int in_dim, int out_dim);
void fm__ref_qdense_forward(float *out, const float *in, const fm__qweights *q, int n, int in_dim,
                            int out_dim, int relu, void *work);

/* Most threads a fast kernel runs with, and so the number of per-thread
 * scratch areas its *_workspace() reserves: the processor count, read once
 * so that workspace sizes cannot change between a query and a call. */
int fm__kernel_threads(void);

/* The tables of src/kernels/fast/: the x86 ones where the build has
 * FM_HAVE_X86_KERNELS (the dispatcher checks the CPU before handing them
 * out), the portable one where it has FM_HAVE_PORTABLE_KERNELS. */
const fm__kernels *fm__kernels_table_avx2(void);
const fm__kernels *fm__kernels_table_avx512(void);
const fm__kernels *fm__kernels_table_portable(void);
/* The avx2 and avx512 tables with VNNI int8 ops (fast/table.c; NULL where
 * the compiler could not build them). */
const fm__kernels *fm__kernels_table_vnni_avx2(void);
const fm__kernels *fm__kernels_table_vnni_avx512(void);
/* bf16 training tables (fast/bf16.c): the emulated one of each fast table,
 * and the AVX512_BF16 one (NULL where the compiler could not build it). */
const fm__kernels *fm__kernels_table_bf16emu_avx2(void);
const fm__kernels *fm__kernels_table_bf16emu_avx512(void);
const fm__kernels *fm__kernels_table_bf16emu_portable(void);
const fm__kernels *fm__kernels_table_bf16_avx512(void);
/* The AMX one (tdpbf16ps), NULL where the compiler could not build it. */
const fm__kernels *fm__kernels_table_bf16_amx(void);
/* avx512-vnni with its int8 convs on AMX (tdpbsud; fast/table.c), NULL
 * where the compiler could not build them. */
const fm__kernels *fm__kernels_table_amx_int8(void);

#endif
