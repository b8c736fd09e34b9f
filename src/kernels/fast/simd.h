/* The few vector operations the fast kernels are written in, for the
 * instruction set the build chose: FM__VL 16 (AVX-512) or 8 (AVX2+FMA), or
 * FM__PORTABLE's 8 lanes in GCC/Clang vector extensions, which the compiler
 * lowers to whatever the target has (two NEON registers on aarch64, two SSE
 * ones on a plain x86-64). Everything is static inline; masks select the
 * first n lanes. The 8-lane builds also have the int8 kernels' integer
 * lanes (vq, vb16). */
#ifndef FM_KERNELS_SIMD_H
#define FM_KERNELS_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifndef FM__PORTABLE
#include <immintrin.h>
#endif

#define FM__INLINE static inline __attribute__((always_inline))

#if defined(FM__PORTABLE)

/* Lanes are indexed as arrays; comparisons give 0 / -1 per lane, so the
 * selects are bitwise. Masked loads and stores touch only the lanes the mask
 * keeps, as the x86 ones do (a tail may end at the last byte of a buffer).
 * vfma is a*b + c, fused where the target can (the table is built with
 * -ffp-contract=fast). */
typedef float vf __attribute__((vector_size(32)));
typedef int32_t vmask __attribute__((vector_size(32)));

FM__INLINE vmask vm_first(int n) {
    const vmask lane = {0, 1, 2, 3, 4, 5, 6, 7};
    return lane < n;
}
FM__INLINE vf vload(const float *p) {
    vf x;
    memcpy(&x, p, sizeof x);
    return x;
}
FM__INLINE vf vloadm(const float *p, vmask m) {
    vf x = {0};
    for (int i = 0; i < 8; i++)
        if (m[i]) x[i] = p[i];
    return x;
}
FM__INLINE void vstore(float *p, vf x) { memcpy(p, &x, sizeof x); }
FM__INLINE void vstorem(float *p, vf x, vmask m) {
    for (int i = 0; i < 8; i++)
        if (m[i]) p[i] = x[i];
}
FM__INLINE vf vset1(float x) { return (vf){x, x, x, x, x, x, x, x}; }
FM__INLINE vf vzero(void) { return (vf){0}; }
FM__INLINE vf vfma(vf a, vf b, vf c) { return a * b + c; }
FM__INLINE vf vadd(vf a, vf b) { return a + b; }
FM__INLINE vf vsub(vf a, vf b) { return a - b; }
FM__INLINE vf vmul(vf a, vf b) { return a * b; }
/* where m: x, else y */
FM__INLINE vf vblend(vmask m, vf x, vf y) {
    return (vf)((m & (vmask)x) | (~m & (vmask)y));
}
/* a > b ? a : b, b where either is NaN (as maxps) */
FM__INLINE vf vmax(vf a, vf b) { return vblend(a > b, a, b); }
FM__INLINE float vhsum(vf x) {
    vf h = x + __builtin_shufflevector(x, x, 4, 5, 6, 7, 0, 1, 2, 3);
    h = h + __builtin_shufflevector(h, h, 2, 3, 0, 1, 6, 7, 4, 5);
    return h[0] + h[1];
}
FM__INLINE vf vpos_select(vf a, vf b) { return (vf)((a > 0.0f) & (vmask)b); }
FM__INLINE vf vkeep(vf x, vmask m) { return (vf)(m & (vmask)x); }
FM__INLINE vf vsel_gt(vf a, vf b, vf x, vf y) { return vblend(a > b, x, y); }
FM__INLINE vf vsel_eq0(vf a, vf b, vf x) { return (vf)((a == b) & (vmask)x); }
FM__INLINE vf vload_u8(const uint8_t *p, int n) {
    vf x = {0};
    for (int i = 0; i < n && i < 8; i++) x[i] = (float)p[i];
    return x;
}
FM__INLINE void vstore_u8(uint8_t *p, vf x, int n) {
    for (int i = 0; i < n && i < 8; i++) p[i] = (uint8_t)(int32_t)x[i];
}
FM__INLINE vf veven(vf a, vf b) { return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14); }
FM__INLINE vf vodd(vf a, vf b) { return __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15); }
FM__INLINE vf vzip_lo(vf a, vf b) { return __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11); }
FM__INLINE vf vzip_hi(vf a, vf b) {
    return __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15);
}

FM__INLINE void vtranspose(vf r[8]) {
    float t[8][8];
    memcpy(t, r, sizeof t);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) r[i][j] = t[j][i];
}

/* As the x86 ones: dst[c*cs + i*rs + j] = y[4*i + j] lane c. */
FM__INLINE void store_tile4x4(float *dst, ptrdiff_t cs, ptrdiff_t rs, vf y[16], int nc, int ni,
                              int nj) {
    for (int i = 0; i < ni; i++)
        for (int c = 0; c < nc; c++)
            for (int j = 0; j < nj; j++) dst[c * cs + i * rs + j] = y[4 * i + j][c];
}

/* 8 keep-mask bytes as a select: x where the byte is non-zero, else 0. */
FM__INLINE vf vkeep_u8(const uint8_t *mask, vf x) {
    vmask m;
    for (int i = 0; i < 8; i++) m[i] = mask[i] ? -1 : 0;
    return vkeep(x, m);
}

/* ---- the int8 kernels' (qgemm.c) -------------------------------------- */

/* vq: 8 int32 lanes, also read as 32 bytes (unsigned inputs, signed
 * weights); lane arithmetic wraps, as x86's does. */
typedef int32_t vq __attribute__((vector_size(32)));
typedef uint32_t vq_u32 __attribute__((vector_size(32)));
typedef uint8_t vq_u8 __attribute__((vector_size(32)));
typedef int8_t vq_s8 __attribute__((vector_size(32)));
typedef int16_t vq_i16x16 __attribute__((vector_size(32)));
typedef int16_t vq_i16x32 __attribute__((vector_size(64)));
typedef int32_t vq_i32x16 __attribute__((vector_size(64)));
typedef uint8_t vq_u8x8 __attribute__((vector_size(8)));
typedef uint16_t vq_u16x8 __attribute__((vector_size(16)));

FM__INLINE vq vq_zero(void) { return (vq){0}; }
FM__INLINE vq vq_set1(int32_t x) { return (vq){x, x, x, x, x, x, x, x}; }
FM__INLINE vq vq_load(const void *p) {
    vq x;
    memcpy(&x, p, sizeof x);
    return x;
}
FM__INLINE vq vq_sub(vq a, vq b) { return (vq)((vq_u32)a - (vq_u32)b); }
/* acc + in each lane the sum of its 4 products of x's bytes (unsigned) by
 * w's (signed); a pair of products stays within int16 for |w| <=
 * FM__QW_MAX, where x86's vpmaddubsw would saturate. */
FM__INLINE vq vq_dot4(vq acc, vq x, vq w) {
    vq_i16x32 p = __builtin_convertvector((vq_u8)x, vq_i16x32) *
                  __builtin_convertvector((vq_s8)w, vq_i16x32);
    vq_i16x16 pair = __builtin_shufflevector(p, p, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24,
                                             26, 28, 30) +
                     __builtin_shufflevector(p, p, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25,
                                             27, 29, 31);
    vq_i32x16 wide = __builtin_convertvector(pair, vq_i32x16);
    vq quad = __builtin_shufflevector(wide, wide, 0, 2, 4, 6, 8, 10, 12, 14) +
              __builtin_shufflevector(wide, wide, 1, 3, 5, 7, 9, 11, 13, 15);
    return (vq)((vq_u32)acc + (vq_u32)quad);
}
FM__INLINE int32_t vq_hsum(vq x) {
    uint32_t s = 0;
    for (int i = 0; i < 8; i++) s += (uint32_t)x[i];
    return (int32_t)s;
}
FM__INLINE vf vq_tof(vq x) { return __builtin_convertvector(x, vf); }
/* lanes holding whole numbers, to int32 */
FM__INLINE vq vq_fromf(vf x) { return __builtin_convertvector(x, vq); }
/* lanes holding 0..255, to 8 bytes */
FM__INLINE void vq_store_u8(uint8_t *p, vq x) {
    vq_u8x8 b = __builtin_convertvector(x, vq_u8x8);
    memcpy(p, &b, sizeof b);
}
/* vb16: 16 bytes, a row of a conv panel (qgemm.c) */
typedef uint8_t vb16 __attribute__((vector_size(16)));
FM__INLINE vb16 vb16_load(const uint8_t *p) {
    vb16 x;
    memcpy(&x, p, sizeof x);
    return x;
}
FM__INLINE vb16 vb16_zero(void) { return (vb16){0}; }
/* the lanes from start on */
FM__INLINE vb16 vb16_from(int start) {
    const vb16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    return (vb16)(lane >= (vb16){0} + (uint8_t)start);
}
/* where m: b, else a */
FM__INLINE vb16 vb16_blend(vb16 a, vb16 b, vb16 m) { return (a & ~m) | (b & m); }
/* dst[4i + t] = byte i of row t */
FM__INLINE void vinterleave4_u8(uint8_t *dst, vb16 r0, vb16 r1, vb16 r2, vb16 r3) {
    vq_u16x8 lo01 = (vq_u16x8)__builtin_shufflevector(r0, r1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5,
                                                      21, 6, 22, 7, 23);
    vq_u16x8 hi01 = (vq_u16x8)__builtin_shufflevector(r0, r1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28,
                                                      13, 29, 14, 30, 15, 31);
    vq_u16x8 lo23 = (vq_u16x8)__builtin_shufflevector(r2, r3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5,
                                                      21, 6, 22, 7, 23);
    vq_u16x8 hi23 = (vq_u16x8)__builtin_shufflevector(r2, r3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28,
                                                      13, 29, 14, 30, 15, 31);
    vq_u16x8 q[4] = {__builtin_shufflevector(lo01, lo23, 0, 8, 1, 9, 2, 10, 3, 11),
                     __builtin_shufflevector(lo01, lo23, 4, 12, 5, 13, 6, 14, 7, 15),
                     __builtin_shufflevector(hi01, hi23, 0, 8, 1, 9, 2, 10, 3, 11),
                     __builtin_shufflevector(hi01, hi23, 4, 12, 5, 13, 6, 14, 7, 15)};
    memcpy(dst, q, sizeof q);
}
/* The float steps of quantization, exactly as the reference's scalar ones:
 * a true division, round half to even (the default rounding mode, as
 * nearbyintf), min and max, and a*b + c rounded once, as fmaf (vfma may
 * round twice here: the product and the sum). */
FM__INLINE vf vdiv(vf a, vf b) { return a / b; }
FM__INLINE vf vround(vf x) {
    for (int i = 0; i < 8; i++) x[i] = __builtin_nearbyintf(x[i]);
    return x;
}
/* a < b ? a : b */
FM__INLINE vf vmin(vf a, vf b) { return vblend(a < b, a, b); }
FM__INLINE vf vfma_fused(vf a, vf b, vf c) {
    for (int i = 0; i < 8; i++) a[i] = __builtin_fmaf(a[i], b[i], c[i]);
    return a;
}

/* bf16 pairs (bf16.c): each 32-bit lane holds two bfloat16, the even
 * element in the low half; vbp_lo and vbp_hi widen one of them to fp32. */
typedef uint32_t vbp __attribute__((vector_size(32)));
FM__INLINE vbp vbp_load(const uint32_t *p) {
    vbp x;
    memcpy(&x, p, sizeof x);
    return x;
}
FM__INLINE vbp vbp_bcast(const uint32_t *p) {
    const uint32_t x = *p;
    return (vbp){x, x, x, x, x, x, x, x};
}
FM__INLINE vf vbp_lo(vbp x) { return (vf)(x << 16); }
FM__INLINE vf vbp_hi(vbp x) { return (vf)(x & 0xffff0000u); }

#elif FM__VL == 16

typedef __m512 vf;
typedef __mmask16 vmask;

FM__INLINE vmask vm_first(int n) {
    return n >= 16 ? (vmask)0xFFFF : n <= 0 ? (vmask)0 : (vmask)((1u << n) - 1);
}
FM__INLINE vf vload(const float *p) { return _mm512_loadu_ps(p); }
FM__INLINE vf vloadm(const float *p, vmask m) { return _mm512_maskz_loadu_ps(m, p); }
FM__INLINE void vstore(float *p, vf x) { _mm512_storeu_ps(p, x); }
FM__INLINE void vstorem(float *p, vf x, vmask m) { _mm512_mask_storeu_ps(p, m, x); }
FM__INLINE vf vset1(float x) { return _mm512_set1_ps(x); }
FM__INLINE vf vzero(void) { return _mm512_setzero_ps(); }
FM__INLINE vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
FM__INLINE vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
FM__INLINE vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
FM__INLINE vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
FM__INLINE vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
FM__INLINE float vhsum(vf x) { return _mm512_reduce_add_ps(x); }
/* a > 0 ? b : 0 */
FM__INLINE vf vpos_select(vf a, vf b) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GT_OQ), b);
}
/* x in the lanes of m, 0 elsewhere */
FM__INLINE vf vkeep(vf x, vmask m) { return _mm512_maskz_mov_ps(m, x); }
/* a > b ? x : y, lane by lane (false for NaN) */
FM__INLINE vf vsel_gt(vf a, vf b, vf x, vf y) {
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ), x);
}

/* a == b ? x : 0 */
FM__INLINE vf vsel_eq0(vf a, vf b, vf x) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ), x);
}
/* the first n bytes at p as floats (other lanes 0); the first n lanes of x to bytes */
FM__INLINE vf vload_u8(const uint8_t *p, int n) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(vm_first(n), p)));
}
FM__INLINE void vstore_u8(uint8_t *p, vf x, int n) {
    _mm_mask_storeu_epi8(p, vm_first(n), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(x)));
}
/* lanes 0, 2, 4, ... and 1, 3, 5, ... of the 2*VL floats a:b */
FM__INLINE vf veven(vf a, vf b) {
    return _mm512_permutex2var_ps(
        a, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), b);
}
FM__INLINE vf vodd(vf a, vf b) {
    return _mm512_permutex2var_ps(
        a, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), b);
}
/* a0 b0 a1 b1 ... from the low halves, and from the high halves */
FM__INLINE vf vzip_lo(vf a, vf b) {
    return _mm512_permutex2var_ps(
        a, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), b);
}
FM__INLINE vf vzip_hi(vf a, vf b) {
    return _mm512_permutex2var_ps(
        a, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), b);
}

/* VL keep-mask bytes as a select: x where the byte is non-zero, else 0. */
FM__INLINE vf vkeep_u8(const uint8_t *mask, vf x) {
    return _mm512_maskz_mov_ps(_mm_test_epi8_mask(_mm_loadu_si128((const __m128i *)mask),
                                                  _mm_set1_epi8(-1)),
                               x);
}

/* r[i] lane j <-> r[j] lane i */
FM__INLINE void vtranspose(vf r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
        __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

/* Stores the first n (0..4) floats of x. */
FM__INLINE void store4(float *p, __m128 x, int n) {
    if (n >= 4) _mm_storeu_ps(p, x);
    else _mm_mask_storeu_ps(p, (__mmask8)((1u << n) - 1), x);
}

/* Transposes 4x4 blocks within each 128-bit lane: after it, lane L of z[k]
 * holds lane-L element k of y[0..3] (for y[j] = pixel j of a row across
 * channels, lane L of z[k] = channel 4L+k at the row's 4 pixels). */
FM__INLINE void lane_transpose4(vf z[4], vf y0, vf y1, vf y2, vf y3) {
    vf t0 = _mm512_unpacklo_ps(y0, y1), t1 = _mm512_unpackhi_ps(y0, y1);
    vf t2 = _mm512_unpacklo_ps(y2, y3), t3 = _mm512_unpackhi_ps(y2, y3);
    z[0] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
    z[1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
    z[2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
    z[3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
}

FM__INLINE __m128 lane128(vf x, int l) {
    switch (l) {
    case 0: return _mm512_castps512_ps128(x);
    case 1: return _mm512_extractf32x4_ps(x, 1);
    case 2: return _mm512_extractf32x4_ps(x, 2);
    default: return _mm512_extractf32x4_ps(x, 3);
    }
}

/* A 4x4 output tile for 16 channels, y[i*4+j] = pixel (i, j) across the
 * channels, to dst[c*cs + i*rs + j] for c < nc, i < ni, j < nj. */
FM__INLINE void store_tile4x4(float *dst, ptrdiff_t cs, ptrdiff_t rs, vf y[16], int nc, int ni,
                              int nj) {
    for (int i = 0; i < ni; i++) {
        vf z[4];
        lane_transpose4(z, y[4 * i], y[4 * i + 1], y[4 * i + 2], y[4 * i + 3]);
#pragma GCC unroll 4
        for (int l = 0; l < 4; l++)
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                if (4 * l + k < nc) store4(dst + (4 * l + k) * cs + i * rs, lane128(z[k], l), nj);
    }
}

typedef __m512i vbp;
FM__INLINE vbp vbp_load(const uint32_t *p) { return _mm512_loadu_si512(p); }
FM__INLINE vbp vbp_bcast(const uint32_t *p) { return _mm512_set1_epi32((int)*p); }
FM__INLINE vf vbp_lo(vbp x) { return _mm512_castsi512_ps(_mm512_slli_epi32(x, 16)); }
FM__INLINE vf vbp_hi(vbp x) {
    return _mm512_castsi512_ps(_mm512_and_si512(x, _mm512_set1_epi32((int)0xffff0000u)));
}

#elif FM__VL == 8

typedef __m256 vf;
typedef __m256i vmask;

FM__INLINE vmask vm_first(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
FM__INLINE vf vload(const float *p) { return _mm256_loadu_ps(p); }
FM__INLINE vf vloadm(const float *p, vmask m) { return _mm256_maskload_ps(p, m); }
FM__INLINE void vstore(float *p, vf x) { _mm256_storeu_ps(p, x); }
FM__INLINE void vstorem(float *p, vf x, vmask m) { _mm256_maskstore_ps(p, m, x); }
FM__INLINE vf vset1(float x) { return _mm256_set1_ps(x); }
FM__INLINE vf vzero(void) { return _mm256_setzero_ps(); }
FM__INLINE vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
FM__INLINE vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
FM__INLINE vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
FM__INLINE vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
FM__INLINE vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
FM__INLINE float vhsum(vf x) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
FM__INLINE vf vpos_select(vf a, vf b) {
    return _mm256_and_ps(_mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_GT_OQ), b);
}
FM__INLINE vf vkeep(vf x, vmask m) { return _mm256_and_ps(_mm256_castsi256_ps(m), x); }
FM__INLINE vf vsel_gt(vf a, vf b, vf x, vf y) {
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_GT_OQ));
}

FM__INLINE vf vsel_eq0(vf a, vf b, vf x) {
    return _mm256_and_ps(_mm256_cmp_ps(a, b, _CMP_EQ_OQ), x);
}
FM__INLINE vf vload_u8(const uint8_t *p, int n) {
    uint8_t t[8] = {0};
    for (int i = 0; i < n && i < 8; i++) t[i] = p[i];
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)t)));
}
FM__INLINE void vstore_u8(uint8_t *p, vf x, int n) {
    int32_t t[8];
    _mm256_storeu_si256((__m256i *)t, _mm256_cvttps_epi32(x));
    for (int i = 0; i < n && i < 8; i++) p[i] = (uint8_t)t[i];
}
FM__INLINE vf veven(vf a, vf b) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(
        _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), _MM_SHUFFLE(3, 1, 2, 0)));
}
FM__INLINE vf vodd(vf a, vf b) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(
        _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))), _MM_SHUFFLE(3, 1, 2, 0)));
}
FM__INLINE vf vzip_lo(vf a, vf b) {
    return _mm256_permute2f128_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b), 0x20);
}
FM__INLINE vf vzip_hi(vf a, vf b) {
    return _mm256_permute2f128_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b), 0x31);
}

FM__INLINE vf vkeep_u8(const uint8_t *mask, vf x) {
    __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)mask));
    return _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(b, _mm256_setzero_si256())), x);
}

FM__INLINE void vtranspose(vf r[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        s[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
    }
}

FM__INLINE void store4(float *p, __m128 x, int n) {
    if (n >= 4) _mm_storeu_ps(p, x);
    else _mm_maskstore_ps(p, _mm_cmpgt_epi32(_mm_set1_epi32(n), _mm_setr_epi32(0, 1, 2, 3)), x);
}

/* As for AVX-512, per 128-bit lane: lane L of z[k] = channel 4L+k. */
FM__INLINE void lane_transpose4(vf z[4], vf y0, vf y1, vf y2, vf y3) {
    vf t0 = _mm256_unpacklo_ps(y0, y1), t1 = _mm256_unpackhi_ps(y0, y1);
    vf t2 = _mm256_unpacklo_ps(y2, y3), t3 = _mm256_unpackhi_ps(y2, y3);
    z[0] = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t2)));
    z[1] = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t2)));
    z[2] = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t1), _mm256_castps_pd(t3)));
    z[3] = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t1), _mm256_castps_pd(t3)));
}

FM__INLINE void store_tile4x4(float *dst, ptrdiff_t cs, ptrdiff_t rs, vf y[16], int nc, int ni,
                              int nj) {
    for (int i = 0; i < ni; i++) {
        vf z[4];
        lane_transpose4(z, y[4 * i], y[4 * i + 1], y[4 * i + 2], y[4 * i + 3]);
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            if (k < nc) store4(dst + k * cs + i * rs, _mm256_castps256_ps128(z[k]), nj);
            if (4 + k < nc) store4(dst + (4 + k) * cs + i * rs, _mm256_extractf128_ps(z[k], 1), nj);
        }
    }
}

/* ---- the int8 kernels' (qgemm.c; the avx512 table uses these too) ------ */

/* vq: 8 int32 lanes, also read as 32 bytes (unsigned inputs, signed weights). */
typedef __m256i vq;

FM__INLINE vq vq_zero(void) { return _mm256_setzero_si256(); }
FM__INLINE vq vq_set1(int32_t x) { return _mm256_set1_epi32(x); }
FM__INLINE vq vq_load(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
FM__INLINE vq vq_sub(vq a, vq b) { return _mm256_sub_epi32(a, b); }
/* acc + in each lane the sum of its 4 products of x's bytes (unsigned) by
 * w's (signed): vpmaddubsw's pairs saturate at int16, which |w| <=
 * FM__QW_MAX keeps them within; vpdpbusd (the VNNI builds) sums all four
 * in int32 and gives the same. */
FM__INLINE vq vq_dot4(vq acc, vq x, vq w) {
#if defined(FM__VNNI) && FM__VNNI == 512
    return _mm256_dpbusd_epi32(acc, x, w);
#elif defined(FM__VNNI)
    return _mm256_dpbusd_avx_epi32(acc, x, w);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w), _mm256_set1_epi16(1)));
#endif
}
FM__INLINE int32_t vq_hsum(vq x) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}
FM__INLINE vf vq_tof(vq x) { return _mm256_cvtepi32_ps(x); }
FM__INLINE vq vq_fromf(vf x) { return _mm256_cvttps_epi32(x); }
FM__INLINE void vq_store_u8(uint8_t *p, vq x) {
    __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    _mm_storel_epi64((__m128i *)p, _mm_packus_epi16(w, w));
}
typedef __m128i vb16;
FM__INLINE vb16 vb16_load(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }
FM__INLINE vb16 vb16_zero(void) { return _mm_setzero_si128(); }
FM__INLINE vb16 vb16_from(int start) {
    return _mm_cmpgt_epi8(_mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                          _mm_set1_epi8((char)(start - 1)));
}
FM__INLINE vb16 vb16_blend(vb16 a, vb16 b, vb16 m) { return _mm_blendv_epi8(a, b, m); }
FM__INLINE void vinterleave4_u8(uint8_t *dst, vb16 r0, vb16 r1, vb16 r2, vb16 r3) {
    __m128i lo01 = _mm_unpacklo_epi8(r0, r1), hi01 = _mm_unpackhi_epi8(r0, r1);
    __m128i lo23 = _mm_unpacklo_epi8(r2, r3), hi23 = _mm_unpackhi_epi8(r2, r3);
    _mm_storeu_si128((__m128i *)dst, _mm_unpacklo_epi16(lo01, lo23));
    _mm_storeu_si128((__m128i *)(dst + 16), _mm_unpackhi_epi16(lo01, lo23));
    _mm_storeu_si128((__m128i *)(dst + 32), _mm_unpacklo_epi16(hi01, hi23));
    _mm_storeu_si128((__m128i *)(dst + 48), _mm_unpackhi_epi16(hi01, hi23));
}
/* The float steps of quantization, as the reference's scalar ones: a true
 * division, round half to even, min, max, and fmaf. */
FM__INLINE vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
FM__INLINE vf vround(vf x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
FM__INLINE vf vmin(vf a, vf b) { return _mm256_min_ps(a, b); }
FM__INLINE vf vfma_fused(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }

typedef __m256i vbp;
FM__INLINE vbp vbp_load(const uint32_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
FM__INLINE vbp vbp_bcast(const uint32_t *p) { return _mm256_set1_epi32((int)*p); }
FM__INLINE vf vbp_lo(vbp x) { return _mm256_castsi256_ps(_mm256_slli_epi32(x, 16)); }
FM__INLINE vf vbp_hi(vbp x) {
    return _mm256_castsi256_ps(_mm256_and_si256(x, _mm256_set1_epi32((int)0xffff0000u)));
}

#else
#error "FM__VL must be 16 or 8"
#endif

#endif
