/* The AVX2+FMA kernel table (8 lanes): fast.h compiled for this instruction
 * set (see CMakeLists.txt). The dispatcher checks the CPU before using it. */
#include "kernels/internal.h"

#if defined(FM_HAVE_X86_KERNELS) && defined(__AVX2__) && defined(__FMA__)

#define FM__VL 8
#define FM__TABLE_NAME "avx2"
#define FM__TABLE_FN fm__kernels_avx2_table
#include "kernels/fast.h"

#else

const fm__kernels *fm__kernels_avx2_table(void) { return NULL; }

#endif
