/* The fp32 kernel table of this instruction set (fm__kernels_table_avx2,
 * _avx512 or _portable); the dispatcher checks the CPU before handing it out. */
#include "kernels/fast/fast.h"

static const fm__kernels table = {
    .name = FM__ISA_NAME,
    .conv2d_workspace = fm__fast_conv2d_workspace,
    .conv2d_forward = fm__fast_conv2d_forward,
    .conv2d_backward_data = fm__fast_conv2d_backward_data,
    .conv2d_backward_weights = fm__fast_conv2d_backward_weights,
    .dense_workspace = fm__ref_dense_workspace, /* none */
    .dense_forward = fm__fast_dense_forward,
    .dense_backward_data = fm__fast_dense_backward_data,
    .dense_backward_weights = fm__fast_dense_backward_weights,
    FM__FAST_SHARED_OPS
};

const fm__kernels *fm__kernels_table(void) { return &table; }
