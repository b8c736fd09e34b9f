/* The fp32 kernel table of this instruction set (fm__kernels_table_avx2,
 * _avx512 or _portable), and on x86 its vnni twin: the same table with the
 * int8 ops of a VNNI build of qgemm.c (fm__kernels_table_vnni_avx2 on
 * AVX-VNNI, _avx512 on AVX512-VNNI; NULL where the compiler could not build
 * them), and in the avx512 build the amx-int8 table: avx512-vnni with the
 * int8 convs on AMX. The dispatcher checks the CPU before handing any out. */
#include "kernels/fast/fast.h"

#define FP32_OPS                                                                                   \
    .conv2d_workspace = fm__fast_conv2d_workspace,                                                 \
    .conv2d_forward = fm__fast_conv2d_forward,                                                     \
    .conv2d_backward_data = fm__fast_conv2d_backward_data,                                         \
    .conv2d_backward_weights = fm__fast_conv2d_backward_weights,                                   \
    .dense_workspace = fm__ref_dense_workspace, /* none */                                         \
    .dense_forward = fm__fast_dense_forward,                                                       \
    .dense_backward_data = fm__fast_dense_backward_data,                                           \
    .dense_backward_weights = fm__fast_dense_backward_weights, FM__FAST_SHARED_OPS

static const fm__kernels table = {.name = FM__ISA_NAME, FP32_OPS FM__FAST_INT8_OPS};

const fm__kernels *fm__kernels_table(void) { return &table; }

#if !defined(FM__PORTABLE)
#if FM__VL == 16 && defined(FM__HAVE_AVX512VNNI)
static const fm__kernels table_vnni = {.name = "avx512-vnni", FP32_OPS FM__VNNI_OPS(avx512vnni)};
#define HAVE_TABLE_VNNI 1
#elif FM__VL == 8 && defined(FM__HAVE_AVXVNNI)
static const fm__kernels table_vnni = {.name = "avx2-vnni", FP32_OPS FM__VNNI_OPS(avx2vnni)};
#define HAVE_TABLE_VNNI 1
#endif
const fm__kernels *fm__kernels_table_vnni(void) {
#ifdef HAVE_TABLE_VNNI
    return &table_vnni;
#else
    return NULL;
#endif
}
#endif

#if FM__VL == 16
#if defined(FM__HAVE_AVX512VNNI) && defined(FM__HAVE_AMX_INT8)
static const fm__kernels table_amx_int8 = {
    .name = "amx-int8", FP32_OPS FM__VNNI_OPS(amx)};
const fm__kernels *fm__kernels_table_amx_int8(void) { return &table_amx_int8; }
#else
const fm__kernels *fm__kernels_table_amx_int8(void) { return NULL; }
#endif
#endif
