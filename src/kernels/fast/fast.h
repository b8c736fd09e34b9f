/* What every fast kernel source shares. The sources in this folder are
 * compiled once per table (see CMakeLists.txt): with -DFM__VL=16 and the
 * AVX-512 flags into "avx512", with -DFM__VL=8 and AVX2+FMA into "avx2" (both
 * on x86-64 only), and with -DFM__VL=8 -DFM__PORTABLE into "portable", in
 * vector extensions any GCC or Clang target compiles (aarch64's NEON among
 * them); every external name goes through FM__ISA so that the builds link
 * into one library, and only static inline helpers live in headers.
 *
 * Convolutions run on channel-innermost copies of one image at a time
 * ("staging", (H, W, C) with the zero padding built in), which turns every
 * conv into register-blocked matrix products whose vectors run along the
 * channels (tile.h):
 * - 3x3 stride-1 convs use Winograd F(4x4,3x3) (winograd.c);
 * - other convs multiply staged pixels by the (K*K*C x OC) weights directly,
 *   and convs with very few channels run along output pixels (conv_direct.c);
 * conv.c picks among them, each laying out its own workspace (conv.h).
 * Dense layers use the same register tile, or dot products for the forward
 * (dense.c). int8 inference has its own byte products (qgemm.c).
 * Parallel sums have a fixed order for a given thread count. */
#ifndef FM_KERNELS_FAST_H
#define FM_KERNELS_FAST_H

#include <stddef.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/internal.h"

/* FM__ISA(fm__x) is fm__x_avx512, fm__x_avx2 or fm__x_portable; FM__ISA_NAME
 * the table's name. */
#if defined(FM__PORTABLE)
#if FM__VL != 8
#error "FM__PORTABLE is written for FM__VL 8"
#endif
#define FM__ISA(name) name##_portable
#define FM__ISA_NAME "portable"
#elif FM__VL == 16
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) ||                  \
    !defined(__AVX512VL__) || !defined(__FMA__)
#error "FM__VL 16 needs -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma"
#endif
#define FM__ISA(name) name##_avx512
#define FM__ISA_NAME "avx512"
#elif FM__VL == 8 && defined(FM__VNNI)
/* qgemm.c alone, a second time per VNNI flavour (CMakeLists.txt): vq_dot4 is
 * one vpdpbusd, VEX-encoded (AVX-VNNI, FM__VNNI 256) or EVEX (AVX512-VNNI
 * with VL, FM__VNNI 512), in place of vpmaddubsw + vpmaddwd + vpaddd */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "FM__VNNI needs -mavx2 -mfma"
#endif
#if FM__VNNI == 512
#if !defined(__AVX512VNNI__) || !defined(__AVX512VL__)
#error "FM__VNNI 512 needs -mavx512vnni -mavx512vl"
#endif
#define FM__ISA(name) name##_avx512vnni
#define FM__ISA_NAME "avx512-vnni"
#elif FM__VNNI == 256
#if !defined(__AVXVNNI__)
#error "FM__VNNI 256 needs -mavxvnni"
#endif
#define FM__ISA(name) name##_avx2vnni
#define FM__ISA_NAME "avx2-vnni"
#else
#error "FM__VNNI must be 256 or 512"
#endif
#elif FM__VL == 8
#if !defined(__AVX2__) || !defined(__FMA__)
#error "FM__VL 8 needs -mavx2 -mfma"
#endif
#define FM__ISA(name) name##_avx2
#define FM__ISA_NAME "avx2"
#else
#error "FM__VL must be 16 or 8"
#endif

#include "kernels/fast/simd.h"

#define VL FM__VL
/* The register tile: MR rows (broadcast scalars) by NV vectors, 24 of the 32
 * zmm or 12 of the 16 ymm registers as accumulators. */
#define MR 6
#define NV (VL == 16 ? 4 : 2)

/* ---- threads and scratch ------------------------------------------------ */

static inline int team(void) {
#ifdef _OPENMP
    int nt = omp_get_max_threads(), cap = fm__kernel_threads();
    return nt < cap ? nt : cap;
#else
    return 1;
#endif
}

static inline int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static inline int thread_count(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* Part tid of nth of [0, total). */
static inline void split(int total, int nth, int tid, int *lo, int *hi) {
    *lo = (int)((long long)total * tid / nth);
    *hi = (int)((long long)total * (tid + 1) / nth);
}

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline size_t rup(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Scratch areas start on 64-byte lines: the caller's pointer is rounded up,
 * which the workspace sizes allow for with ALIGN_SLACK floats. */
#define ALIGN_SLACK 16
static inline float *align64(float *p) { return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

/* Fetches len floats from p towards L1, one line at a time: for rows the
 * hardware prefetcher does not see coming (each new far-away row restarts
 * it, and masked loads do not start it). */
FM__INLINE void prefetch_row(const float *p, int len) {
    for (int j = 0; j < len; j += 16) __builtin_prefetch(p + j, 0, 3);
}

/* ---- the table's ops (semantics in kernels.h) ----------------------------- */

#define fm__fast_conv2d_workspace FM__ISA(fm__fast_conv2d_workspace)
#define fm__fast_conv2d_forward FM__ISA(fm__fast_conv2d_forward)
#define fm__fast_conv2d_backward_data FM__ISA(fm__fast_conv2d_backward_data)
#define fm__fast_conv2d_backward_weights FM__ISA(fm__fast_conv2d_backward_weights)
#define fm__fast_dense_forward FM__ISA(fm__fast_dense_forward)
#define fm__fast_dense_backward_data FM__ISA(fm__fast_dense_backward_data)
#define fm__fast_dense_backward_weights FM__ISA(fm__fast_dense_backward_weights)
#define fm__fast_batchnorm_forward_train FM__ISA(fm__fast_batchnorm_forward_train)
#define fm__fast_batchnorm_forward_infer FM__ISA(fm__fast_batchnorm_forward_infer)
#define fm__fast_batchnorm_backward FM__ISA(fm__fast_batchnorm_backward)
#define fm__fast_relu_forward FM__ISA(fm__fast_relu_forward)
#define fm__fast_relu_backward FM__ISA(fm__fast_relu_backward)
#define fm__fast_maxpool_forward FM__ISA(fm__fast_maxpool_forward)
#define fm__fast_maxpool_backward FM__ISA(fm__fast_maxpool_backward)
#define fm__fast_avgpool_forward FM__ISA(fm__fast_avgpool_forward)
#define fm__fast_avgpool_backward FM__ISA(fm__fast_avgpool_backward)
#define fm__fast_dropout_apply FM__ISA(fm__fast_dropout_apply)
#define fm__kernels_table FM__ISA(fm__kernels_table)
#define fm__kernels_table_vnni FM__ISA(fm__kernels_table_vnni)
/* The int8 kernels are built for 8 lanes only: the avx512 table's are the
 * avx2 build's (every AVX-512 CPU has AVX2, and the avx512 objects are
 * compiled with it too); the avx512-vnni table's conv tile alone runs on
 * zmm (qgemm.c). */
#if FM__VL == 8
#define fm__fast_qconv2d_workspace FM__ISA(fm__fast_qconv2d_workspace)
#define fm__fast_qconv2d_forward FM__ISA(fm__fast_qconv2d_forward)
#define fm__fast_qdense_workspace FM__ISA(fm__fast_qdense_workspace)
#define fm__fast_qdense_forward FM__ISA(fm__fast_qdense_forward)
#else
#define fm__fast_qconv2d_workspace fm__fast_qconv2d_workspace_avx2
#define fm__fast_qconv2d_forward fm__fast_qconv2d_forward_avx2
#define fm__fast_qdense_workspace fm__fast_qdense_workspace_avx2
#define fm__fast_qdense_forward fm__fast_qdense_forward_avx2
#endif

/* conv.c */
size_t fm__fast_conv2d_workspace(const fm__conv_shape *s);
void fm__fast_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                             const fm__conv_shape *s, int relu, float *work);
void fm__fast_conv2d_backward_data(float *din, const float *dout, const float *w,
                                   const fm__conv_shape *s, float *work);
void fm__fast_conv2d_backward_weights(float *dw, float *db, const float *dout, const float *in,
                                      const fm__conv_shape *s, float *work);
/* dense.c */
void fm__fast_dense_forward(float *out, const float *in, const float *w, const float *b, int n,
                            int in_dim, int out_dim, int relu, float *work);
void fm__fast_dense_backward_data(float *din, const float *dout, const float *w, int n,
                                  int in_dim, int out_dim, float *work);
void fm__fast_dense_backward_weights(float *dw, float *db, const float *dout, const float *in,
                                     int n, int in_dim, int out_dim, float *work);
/* elementwise.c */
void fm__fast_batchnorm_forward_train(float *out, float *mean, float *var, float *invstd,
                                      const float *in, const float *gamma, const float *beta,
                                      int n, int c, int hw, float eps);
void fm__fast_batchnorm_forward_infer(float *out, const float *in, const float *gamma,
                                      const float *beta, const float *mmean, const float *mvar,
                                      int n, int c, int hw, float eps);
void fm__fast_batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                                 const float *in, const float *mean, const float *invstd,
                                 const float *gamma, int n, int c, int hw);
void fm__fast_relu_forward(float *out, const float *in, size_t len);
void fm__fast_relu_backward(float *din, const float *dout, const float *out, size_t len);
void fm__fast_maxpool_forward(float *out, uint8_t *argmax, const float *in, int n, int c, int h,
                              int w, int pool);
void fm__fast_maxpool_backward(float *din, const float *dout, const uint8_t *argmax, int n,
                               int c, int h, int w, int pool);
void fm__fast_avgpool_forward(float *out, const float *in, int n, int c, int h, int w, int ph,
                              int pw);
void fm__fast_avgpool_backward(float *din, const float *dout, int n, int c, int h, int w, int ph,
                               int pw);
void fm__fast_dropout_apply(float *out, const float *in, const uint8_t *mask, float scale,
                            size_t len);
/* qgemm.c: workspaces in bytes */
size_t fm__fast_qconv2d_workspace(const fm__conv_shape *s);
void fm__fast_qconv2d_forward(float *out, const float *in, const fm__qweights *q,
                              const fm__conv_shape *s, int relu, void *work);
size_t fm__fast_qdense_workspace(int n, int in_dim, int out_dim);
void fm__fast_qdense_forward(float *out, const float *in, const fm__qweights *q, int n,
                             int in_dim, int out_dim, int relu, void *work);
/* table.c */
const fm__kernels *fm__kernels_table(void);
const fm__kernels *fm__kernels_table_vnni(void);
/* bf16.c: the bf16 training tables (kernels.h, fm__kernels_bf16) */
#define fm__kernels_table_bf16emu FM__ISA(fm__kernels_table_bf16emu)
const fm__kernels *fm__kernels_table_bf16emu(void);
#if FM__VL == 16
const fm__kernels *fm__kernels_table_bf16_avx512(void);
const fm__kernels *fm__kernels_table_bf16_amx(void);
#endif

/* The VNNI builds' int8 ops, for the avx2-vnni and avx512-vnni tables
 * (table.c) where CMake found the compiler able (FM__HAVE_AVXVNNI,
 * FM__HAVE_AVX512VNNI). */
#define FM__VNNI_OPS_DECLARE(sfx)                                                                  \
    size_t fm__fast_qconv2d_workspace_##sfx(const fm__conv_shape *s);                              \
    void fm__fast_qconv2d_forward_##sfx(float *out, const float *in, const fm__qweights *q,        \
                                        const fm__conv_shape *s, int relu, void *work);            \
    size_t fm__fast_qdense_workspace_##sfx(int n, int in_dim, int out_dim);                         \
    void fm__fast_qdense_forward_##sfx(float *out, const float *in, const fm__qweights *q, int n,  \
                                       int in_dim, int out_dim, int relu, void *work);
FM__VNNI_OPS_DECLARE(avx2vnni)
FM__VNNI_OPS_DECLARE(avx512vnni)
/* The avx512-vnni build's AMX convs and dense layers (tdpbsud;
 * FM__HAVE_AMX_INT8), for the amx-int8 table (table.c's avx512 build). */
FM__VNNI_OPS_DECLARE(amx)
#if FM__VL == 16
const fm__kernels *fm__kernels_table_amx_int8(void);
#endif
#define FM__VNNI_OPS(sfx)                                                                          \
    .qconv2d_workspace = fm__fast_qconv2d_workspace_##sfx,                                         \
    .qconv2d_forward = fm__fast_qconv2d_forward_##sfx,                                             \
    .qdense_workspace = fm__fast_qdense_workspace_##sfx,                                           \
    .qdense_forward = fm__fast_qdense_forward_##sfx,

/* The entries every table of this build shares (table.c, bf16.c): all but
 * the conv and dense ops, which the bf16 tables replace, and the int8 ones,
 * which the vnni tables replace (FM__FAST_INT8_OPS). In the avx512 build the
 * int8 ones are the avx2 functions (above). */
#define FM__FAST_INT8_OPS                                                                          \
    .qconv2d_workspace = fm__fast_qconv2d_workspace,                                               \
    .qconv2d_forward = fm__fast_qconv2d_forward,                                                   \
    .qdense_workspace = fm__fast_qdense_workspace,                                                 \
    .qdense_forward = fm__fast_qdense_forward,
#define FM__FAST_SHARED_OPS                                                                        \
    .batchnorm_forward_train = fm__fast_batchnorm_forward_train,                                   \
    .batchnorm_forward_infer = fm__fast_batchnorm_forward_infer,                                   \
    .batchnorm_backward = fm__fast_batchnorm_backward,                                             \
    .relu_forward = fm__fast_relu_forward,                                                         \
    .relu_backward = fm__fast_relu_backward,                                                       \
    .maxpool_forward = fm__fast_maxpool_forward,                                                   \
    .maxpool_backward = fm__fast_maxpool_backward,                                                 \
    .avgpool_forward = fm__fast_avgpool_forward,                                                   \
    .avgpool_backward = fm__fast_avgpool_backward,                                                 \
    .dropout_apply = fm__fast_dropout_apply,                                                       \
    .softmax_xent = fm__ref_softmax_xent,

#endif
