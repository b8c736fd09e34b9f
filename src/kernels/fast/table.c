/* The kernel table of this instruction set (fm__kernels_table_avx2, _avx512
 * or _portable); the dispatcher checks the CPU before handing it out. */
#include "kernels/fast/fast.h"

static const fm__kernels table = {
    .name = FM__ISA_NAME,
    .conv2d_workspace = fm__fast_conv2d_workspace,
    .conv2d_forward = fm__fast_conv2d_forward,
    .conv2d_backward_data = fm__fast_conv2d_backward_data,
    .conv2d_backward_weights = fm__fast_conv2d_backward_weights,
    .dense_forward = fm__fast_dense_forward,
    .dense_backward_data = fm__fast_dense_backward_data,
    .dense_backward_weights = fm__fast_dense_backward_weights,
    .batchnorm_forward_train = fm__fast_batchnorm_forward_train,
    .batchnorm_forward_infer = fm__fast_batchnorm_forward_infer,
    .batchnorm_backward = fm__fast_batchnorm_backward,
    .relu_forward = fm__fast_relu_forward,
    .relu_backward = fm__fast_relu_backward,
    .maxpool_forward = fm__fast_maxpool_forward,
    .maxpool_backward = fm__fast_maxpool_backward,
    .avgpool_forward = fm__fast_avgpool_forward,
    .avgpool_backward = fm__fast_avgpool_backward,
    .dropout_apply = fm__fast_dropout_apply,
    .softmax_xent = fm__ref_softmax_xent,
    /* in the avx512 table, the avx2 functions (fast.h) */
    .qconv2d_workspace = fm__fast_qconv2d_workspace,
    .qconv2d_forward = fm__fast_qconv2d_forward,
    .qdense_workspace = fm__fast_qdense_workspace,
    .qdense_forward = fm__fast_qdense_forward,
};

const fm__kernels *fm__kernels_table(void) { return &table; }
