/* The AVX-512 kernel table (16 lanes): fast.h compiled for this instruction
 * set (see CMakeLists.txt). The dispatcher checks the CPU before using it. */
#include "kernels/internal.h"

#if defined(FM_HAVE_X86_KERNELS) && defined(__AVX512F__) && defined(__AVX512VL__)

#define FM__VL 16
#define FM__TABLE_NAME "avx512"
#define FM__TABLE_FN fm__kernels_avx512_table
#include "kernels/fast.h"

#else

const fm__kernels *fm__kernels_avx512_table(void) { return NULL; }

#endif
