/* Picks the kernel table once, by CPU features, and owns the thread count. */
#define _DEFAULT_SOURCE 1 /* syscall(), for the AMX permission */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "fmnist/fmnist.h"
#include "kernels/internal.h"

#if defined(FM_HAVE_X86_KERNELS) && (defined(__GNUC__) || defined(__clang__))
#define FM__X86_DISPATCH 1
#endif

#if defined(FM__X86_DISPATCH) && (defined(FM__HAVE_AMX) || defined(FM__HAVE_AMX_INT8)) &&       \
    defined(__linux__)
#define FM__AMX_DISPATCH 1
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

const fm__kernels *fm__kernels_avx2(void) {
#ifdef FM__X86_DISPATCH
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return fm__kernels_table_avx2();
#endif
    return NULL;
}

const fm__kernels *fm__kernels_avx512(void) {
#ifdef FM__X86_DISPATCH
    /* the avx512 table is compiled with F, BW, DQ and VL (and FMA), so all must be present */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma"))
        return fm__kernels_table_avx512();
#endif
    return NULL;
}

const fm__kernels *fm__kernels_avx2_vnni(void) {
#if defined(FM__X86_DISPATCH) && defined(FM__HAVE_AVXVNNI)
    if (fm__kernels_avx2() && __builtin_cpu_supports("avxvnni")) return fm__kernels_table_vnni_avx2();
#endif
    return NULL;
}

const fm__kernels *fm__kernels_avx512_vnni(void) {
#if defined(FM__X86_DISPATCH) && defined(FM__HAVE_AVX512VNNI)
    if (fm__kernels_avx512() && __builtin_cpu_supports("avx512vnni"))
        return fm__kernels_table_vnni_avx512();
#endif
    return NULL;
}

const fm__kernels *fm__kernels_fp32_base(const fm__kernels *k) {
    if (k && (k == fm__kernels_avx512_vnni() || k == fm__kernels_amx_int8())) return fm__kernels_avx512();
    if (k && k == fm__kernels_avx2_vnni()) return fm__kernels_avx2();
    return k;
}

const fm__kernels *fm__kernels_portable(void) {
#ifdef FM_HAVE_PORTABLE_KERNELS
    return fm__kernels_table_portable();
#else
    return NULL;
#endif
}

const fm__kernels *fm__kernels_bf16_avx512(void) {
#ifdef FM__X86_DISPATCH
    if (fm__kernels_avx512() && __builtin_cpu_supports("avx512bf16"))
        return fm__kernels_table_bf16_avx512();
#endif
    return NULL;
}

#ifdef FM__AMX_DISPATCH
#define AMX_BF16 22 /* CPUID 7.0 EDX bits */
#define AMX_INT8 25

/* Whether the CPU has AMX-TILE and the AMX part whose CPUID bit is given
 * (GCC 12's __builtin_cpu_supports does not know them), the OS saves the
 * tile state (XCR0 bits 17 and 18), and Linux lets this process use it
 * (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, which every
 * thread of the process then has). */
static int amx_usable(int bit) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d >> bit & 1) || !(d >> 24 & 1)) return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c >> 27 & 1)) return 0; /* OSXSAVE */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo >> 17 & 3) != 3) return 0;
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
}

/* amx_usable(bit), asked once per bit: racing first calls ask the same. */
static int amx_usable_cached(_Atomic int *usable, int bit) {
    int u = atomic_load_explicit(usable, memory_order_acquire);
    if (u < 0) {
        u = amx_usable(bit);
        atomic_store_explicit(usable, u, memory_order_release);
    }
    return u;
}
#endif

const fm__kernels *fm__kernels_bf16_amx(void) {
#if defined(FM__AMX_DISPATCH) && defined(FM__HAVE_AMX)
    static _Atomic int usable = -1;
    if (amx_usable_cached(&usable, AMX_BF16) && fm__kernels_avx512()) return fm__kernels_table_bf16_amx();
#endif
    return NULL;
}

const fm__kernels *fm__kernels_amx_int8(void) {
#if defined(FM__AMX_DISPATCH) && defined(FM__HAVE_AMX_INT8)
    static _Atomic int usable = -1;
    if (amx_usable_cached(&usable, AMX_INT8) && fm__kernels_avx512_vnni())
        return fm__kernels_table_amx_int8();
#endif
    return NULL;
}

const fm__kernels *fm__kernels_bf16(void) {
    const fm__kernels *amx = fm__kernels_bf16_amx();
    return amx ? amx : fm__kernels_bf16_avx512();
}

const fm__kernels *fm__kernels_bf16_emulated(const fm__kernels *base) {
    base = fm__kernels_fp32_base(base);
#ifdef FM__X86_DISPATCH
    if (base && base == fm__kernels_avx512()) return fm__kernels_table_bf16emu_avx512();
    if (base && base == fm__kernels_avx2()) return fm__kernels_table_bf16emu_avx2();
#endif
#ifdef FM_HAVE_PORTABLE_KERNELS
    if (base && base == fm__kernels_portable()) return fm__kernels_table_bf16emu_portable();
#endif
    return NULL;
}

const fm__kernels *fm__kernels_for_precision(int precision) {
    if (precision == FM_PRECISION_FP32) return fm__kernels_select();
    const fm__kernels *base = fm__kernels_fp32_base(fm__kernels_select());
    /* the instruction comes with the avx512 tables: naming another in FMNIST_KERNELS turns it off */
    const fm__kernels *hw = base == fm__kernels_avx512() ? fm__kernels_bf16() : NULL;
    if (precision == FM_PRECISION_AUTO) return hw ? hw : base;
    if (precision == FM_PRECISION_BF16) return hw ? hw : fm__kernels_bf16_emulated(base);
    return NULL;
}

const char *fm_precision_name(int precision) {
    static const char *const names[] = {"fp32", "bf16", "auto"};
    return precision >= 0 && precision < 3 ? names[precision] : NULL;
}

const char *fm_kernels_train_name(int precision) {
    const fm__kernels *k = fm__kernels_for_precision(precision);
    return k ? k->name : NULL;
}

/* The tables by name, fastest first: the automatic choice is the first this
 * CPU and build run. */
static const struct {
    const char *name;
    const fm__kernels *(*get)(void);
} tables[] = {
    {"amx-int8", fm__kernels_amx_int8},
    {"avx512-vnni", fm__kernels_avx512_vnni},
    {"avx512", fm__kernels_avx512},
    {"avx2-vnni", fm__kernels_avx2_vnni},
    {"avx2", fm__kernels_avx2},
    {"portable", fm__kernels_portable},
    {"ref", fm__kernels_ref},
};

const char *fm__kernels_table_name(int i) {
    return i >= 0 && (size_t)i < sizeof tables / sizeof tables[0] ? tables[i].name : NULL;
}

int fm__kernels_known(const char *name) {
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        if (strcmp(name, tables[i].name) == 0) return 1;
    return 0;
}

const fm__kernels *fm__kernels_by_name(const char *name) {
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        if (strcmp(name, tables[i].name) == 0) return tables[i].get();
    return NULL;
}

static const fm__kernels *choose(void) {
    const char *env = getenv("FMNIST_KERNELS");
    /* An override this CPU cannot run falls through to the automatic choice. */
    const fm__kernels *k = env ? fm__kernels_by_name(env) : NULL;
    for (size_t i = 0; !k && i < sizeof tables / sizeof tables[0]; i++) k = tables[i].get();
    return k;
}

const fm__kernels *fm__kernels_select(void) {
    /* Racing first calls compute the same answer, so a plain atomic cache is enough. */
    static _Atomic(const fm__kernels *) cached;
    const fm__kernels *k = atomic_load_explicit(&cached, memory_order_acquire);
    if (!k) {
        k = choose();
        atomic_store_explicit(&cached, k, memory_order_release);
    }
    return k;
}

int fm__kernel_threads(void) {
#ifdef _OPENMP
    static _Atomic int cached;
    int n = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!n) {
        n = omp_get_num_procs() > 0 ? omp_get_num_procs() : 1;
        atomic_store_explicit(&cached, n, memory_order_relaxed);
    }
    return n;
#else
    return 1;
#endif
}

const char *fm_kernels_name(void) { return fm__kernels_select()->name; }

int fm_set_threads(int threads) {
#ifdef _OPENMP
    int n = threads > 0 ? threads : omp_get_num_procs();
    omp_set_num_threads(n);
    return n;
#else
    (void)threads;
    return 1;
#endif
}
