/* The AVX-512 (16-wide) kernel table. Ops without a specialised version point at
 * the reference ones. Only built with the instruction set enabled (see
 * CMakeLists.txt); the dispatcher checks the CPU before using it. */
#include "kernels/internal.h"

#if defined(FM_HAVE_X86_KERNELS) && defined(__AVX512F__)

static const fm_kernels table = {
    .name = "avx512",
    .conv2d_workspace = fm__ref_conv2d_workspace,
    .conv2d_forward = fm__ref_conv2d_forward,
    .conv2d_backward_data = fm__ref_conv2d_backward_data,
    .conv2d_backward_weights = fm__ref_conv2d_backward_weights,
    .dense_forward = fm__ref_dense_forward,
    .dense_backward_data = fm__ref_dense_backward_data,
    .dense_backward_weights = fm__ref_dense_backward_weights,
    .batchnorm_forward_train = fm__ref_batchnorm_forward_train,
    .batchnorm_forward_infer = fm__ref_batchnorm_forward_infer,
    .batchnorm_backward = fm__ref_batchnorm_backward,
    .relu_forward = fm__ref_relu_forward,
    .relu_backward = fm__ref_relu_backward,
    .maxpool_forward = fm__ref_maxpool_forward,
    .maxpool_backward = fm__ref_maxpool_backward,
    .dropout_apply = fm__ref_dropout_apply,
    .softmax_xent = fm__ref_softmax_xent,
};

const fm_kernels *fm__kernels_avx512_table(void) { return &table; }

#else

const fm_kernels *fm__kernels_avx512_table(void) { return NULL; }

#endif
