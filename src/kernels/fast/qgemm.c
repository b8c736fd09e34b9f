/* int8 inference (kernels.h, fm__qweights): convs and dense layers as
 * products of the quantized uint8 input by the int8 weights, summed exactly
 * in int32 lanes four products at a time (vq_dot4: vpmaddubsw, then
 * vpmaddwd by ones), around the reference's own float steps (a true
 * division and round-half-even into bytes, the fused epilogue), so that
 * every output is the reference's to the bit, for any thread count.
 *
 * Convs: each image becomes byte planes (C, hp, wp) padded with the zero
 * point, and each panel of QP consecutive output pixels (rows end to end,
 * so that only an image's last panel has idle lanes) is copied into
 * K-quads, B (kq, QP, 4): per pixel, the bytes of 4 consecutive k (the
 * weights' order, k = c*K*K + kh*K + kw) side by side, so that one int32
 * of 4 packed weights broadcast against 32 bytes of B gives 8 pixels'
 * partial sums. Tiles: QR output channels by 2 vectors of pixels, over all
 * of k, each block of channels in turn across a group of panels. The sums
 * are of q*w, less zp*wsum at the end, so the padding (zp) adds nothing.
 * Threads own ranges of (image, panel) pairs and quantize the rows their
 * panels read.
 * Dense layers: dot products of quantized input rows with the weight rows
 * (both contiguous), in tiles of QDN inputs by QDO rows.
 *
 * Built for 8 lanes only: the avx512 table uses the avx2 functions (fast.h).
 * The VNNI builds (FM__VNNI) sum with vpdpbusd, which leaves registers for
 * taller tiles (QR); the AVX512-VNNI one runs the conv tile on zmm, a whole
 * panel per vector, over two panels at a time. That build also holds the
 * amx-int8 table's AMX ops (FM__HAVE_AMX_INT8, below): a gathered panel is
 * already a run of AMX B tiles, stride-1 convs skip the gather altogether,
 * and dense layers load their weight rows as A tiles. */
#include <math.h>
#include <string.h>

#include "kernels/fast/fast.h"

#if FM__VL == 8

#define QP 16      /* pixels per conv panel: 2 vectors, one vb16 per tap */
/* output channels per conv tile: with vpmaddubsw, 8 sums, 2 of B, the ones,
 * 2 more of the 16 ymm; vpdpbusd needs no temporaries, and EVEX has 32 ymm */
#if defined(FM__VNNI) && FM__VNNI == 512
#define QR 8
#elif defined(FM__VNNI)
#define QR 6
#else
#define QR 4
#endif
#define QDN 2      /* input rows per dense tile */
#define QDO 4      /* weight rows per dense tile */
#define QNB 64     /* input rows per dense pass (as dense.c) */
#define QCHUNK 512 /* values per unit of the dense layer's quantization */
/* B for this many bytes of panels at a time, in L2: each block of output
 * channels then writes runs of whole lines along its planes, rather than
 * one line per plane and panel (which leaves the first layer, with its
 * few products per output, waiting on memory) */
#define QGROUP_BYTES (128 * 1024)

static inline int imax(int a, int b) { return a > b ? a : b; }

static uint8_t *align64b(void *p) {
    return (uint8_t *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

/* The bytes 8 values t (after the folded BatchNorm) become, as the
 * reference's quantize: max first, so that NaN gives 0. */
FM__INLINE vq quant8(vf t, vf in_scale, vf zp) {
    vf r = vadd(vround(vdiv(t, in_scale)), zp);
    return vq_fromf(vmin(vmax(r, vzero()), vset1(255.0f)));
}

/* d[i] = the byte x[i] becomes, i < len. The BatchNorm factors (pm NULL:
 * none) are pm[i], pa[i] with per_value (a dense layer's), else pm[0],
 * pa[0] for all (a conv's channel). */
FM__INLINE void quantize_run(uint8_t *d, const float *x, int len, const fm__qweights *q,
                             const float *pm, const float *pa, const int per_value) {
    const vf sc = vset1(q->in_scale), zp = vset1((float)q->zp);
    const vf m = vset1(pm ? pm[0] : 0.0f), a = vset1(pa ? pa[0] : 0.0f);
    int i = 0;
    for (; i + VL <= len; i += VL) {
        vf t = vload(x + i);
        if (pm) t = vfma_fused(t, per_value ? vload(pm + i) : m, per_value ? vload(pa + i) : a);
        vq_store_u8(d + i, quant8(t, sc, zp));
    }
    if (i < len) {
        const vmask mk = vm_first(len - i);
        vf t = vloadm(x + i, mk);
        if (pm)
            t = vfma_fused(t, per_value ? vloadm(pm + i, mk) : m, per_value ? vloadm(pa + i, mk) : a);
        uint8_t tail[VL];
        vq_store_u8(tail, quant8(t, sc, zp));
        memcpy(d + i, tail, (size_t)(len - i));
    }
}

/* ---- convs ---------------------------------------------------------------- */

/* The workspace, in bytes from the 64-byte aligned start of work. */
typedef struct qconv_plan {
    int kdim, kq;                 /* C*K*K, and its quads (rounded up) */
    int kqg;                      /* quads gathered per panel: kq, or for AMX whole tiles of 16 */
    int hp, wp;                   /* the padded planes */
    int ppi;                      /* panels per image */
    int group;                    /* panels gathered at a time */
    size_t plane;                 /* hp*wp */
    size_t wq_at;                 /* packed weights (OC/QR blocks, kq, QR), int32; AMX: amx_pack */
    size_t koff_at;               /* (kdim) where tap k reads: c*plane + kh*wp + kw */
    size_t thread_at, per_thread; /* thread i's area at thread_at + i*per_thread: */
    size_t b_at;                  /* the planes (C, hp, wp) at 0, B (group, kq, QP, 4) at b_at */
    size_t total;
} qconv_plan;

/* amx: the AMX conv's plan (its weights, and B in whole tiles) */
static qconv_plan plan_qconv(const fm__conv_shape *s, int amx) {
    qconv_plan p;
    p.kdim = s->c * s->k * s->k;
    p.kq = (p.kdim + 3) / 4;
    p.kqg = amx ? (p.kq + 15) / 16 * 16 : p.kq;
    p.hp = (s->oh - 1) * s->stride + s->k;
    p.wp = (s->ow - 1) * s->stride + s->k;
    p.ppi = (s->oh * s->ow + QP - 1) / QP;
    p.plane = (size_t)p.hp * p.wp;
    const size_t wbytes = amx ? (size_t)(s->oc + 31) / 32 * 32 * p.kqg * 4
                              : (size_t)(s->oc + QR - 1) / QR * p.kq * QR * sizeof(int32_t);
    p.wq_at = 0;
    p.koff_at = rup(wbytes, 64);
    p.thread_at = p.koff_at + rup((size_t)p.kdim * sizeof(size_t), 64);
    /* the reads of a panel's last lanes run up to QP - 1 bytes past the planes */
    p.b_at = rup((size_t)s->c * p.plane + QP, 64);
    p.group = imax(1, imin(p.ppi, QGROUP_BYTES / (p.kqg * QP * 4)));
    p.per_thread = p.b_at + (size_t)p.group * p.kqg * QP * 4;
    p.total = p.thread_at + (size_t)fm__kernel_threads() * p.per_thread + 63;
    return p;
}

/* Blocks [b0, b1) of wq: int32 j of row o holds w[o][4j..4j+3], 0 past the
 * row's end and in the rows past oc. */
static void pack_qweights(int32_t *wq, const int8_t *w, int oc, int kdim, int kq, int b0, int b1) {
    for (int ob = b0; ob < b1; ob++) {
        for (int j = 0; j < kq; j++) {
            for (int r = 0; r < QR; r++) {
                const int o = ob * QR + r;
                int8_t quad[4] = {0};
                for (int t = 0; t < 4; t++)
                    if (o < oc && 4 * j + t < kdim) quad[t] = w[(size_t)o * kdim + 4 * j + t];
                memcpy(wq + ((size_t)ob * kq + j) * QR + r, quad, 4);
            }
        }
    }
}

/* Padded rows [r0, r1) of the planes xp (C, hp, wp), plane = hp*wp bytes
 * apart, from image x (C, H, W): its bytes at (iy + pad_t, ix + pad_l), and
 * with pads zp around them (without: the caller keeps them zp). */
static void quantize_rows(uint8_t *xp, const float *x, const fm__qweights *q,
                          const fm__conv_shape *s, int wp, size_t plane, int r0, int r1, int pads) {
    /* the columns that hold the image: [a, b) */
    const int a = imin(imax(s->pad_l, 0), wp), b = imax(a, imin(wp, s->w + s->pad_l));
    for (int c = 0; c < s->c; c++) {
        for (int r = r0; r < r1; r++) {
            uint8_t *d = xp + c * plane + (size_t)r * wp;
            const int iy = r - s->pad_t;
            if (iy < 0 || iy >= s->h) {
                if (pads) memset(d, q->zp, (size_t)wp);
                continue;
            }
            if (pads) memset(d, q->zp, (size_t)a);
            quantize_run(d + a, x + ((size_t)c * s->h + iy) * s->w + (a - s->pad_l), b - a, q,
                         q->pre_mul ? q->pre_mul + c : NULL, q->pre_add ? q->pre_add + c : NULL, 0);
            if (pads) memset(d + b, q->zp, (size_t)(wp - b));
        }
    }
}

/* Where the np output pixels from p0 (flattened (OH, OW)) read tap 0 in the
 * planes: lane l at off[l]. With stride 1 the lanes fall in runs of
 * consecutive bytes, one per output row: run r covers the lanes from
 * start[r] and reads at run_off[r] + lane. Lanes past np repeat the last. */
typedef struct qpanel {
    ptrdiff_t off[QP];
    int runs;
    ptrdiff_t run_off[QP];
    vb16 run_mask[QP]; /* the lanes from start[r] */
} qpanel;

static void plan_panel(qpanel *pn, const fm__conv_shape *s, const qconv_plan *p, int p0, int np) {
    pn->runs = 0;
    for (int l = 0; l < QP; l++) {
        const int px = p0 + imin(l, np - 1), oy = px / s->ow, ox = px % s->ow;
        pn->off[l] = ((ptrdiff_t)oy * p->wp + ox) * s->stride;
        if (l < np && (l == 0 || ox == 0)) {
            pn->run_off[pn->runs] = pn->off[l] - l;
            pn->run_mask[pn->runs++] = vb16_from(l);
        }
    }
}

/* B (kqg, QP, 4) for panel pn: byte t of lane l's quad j is tap k = 4j + t
 * at that pixel (0 past kdim). */
static void gather_panel(uint8_t *B, const uint8_t *xp, const size_t *koff,
                         const fm__conv_shape *s, const qconv_plan *p, const qpanel *pn) {
    for (int j = 0; j < p->kqg; j++) {
        vb16 row[4];
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) {
            const int k = 4 * j + t;
            if (k >= p->kdim) {
                row[t] = vb16_zero();
                continue;
            }
            const uint8_t *src = xp + koff[k];
            if (s->stride == 1) {
                /* each run's load reads on past its lanes (into later rows
                 * or the slack), which later runs replace */
                row[t] = vb16_load(src + pn->run_off[0]);
                for (int r = 1; r < pn->runs; r++)
                    row[t] = vb16_blend(row[t], vb16_load(src + pn->run_off[r]), pn->run_mask[r]);
            } else {
                uint8_t g[QP];
                for (int l = 0; l < QP; l++) g[l] = src[pn->off[l]];
                row[t] = vb16_load(g);
            }
        }
        vinterleave4_u8(B + (size_t)j * QP * 4, row[0], row[1], row[2], row[3]);
    }
}

/* dst[l] for l < min(n, VL) = the epilogue of channel o's sums acc. */
FM__INLINE void qconv_store(float *dst, int n, vq acc, const fm__qweights *q, int o, int relu) {
    vf y = vfma_fused(vq_tof(vq_sub(acc, vq_set1(q->zp * q->wsum[o]))), vset1(q->scale[o]),
                      vset1(q->bias[o]));
    if (relu) y = vpos_select(y, y); /* y > 0 ? y : 0, so -0 and NaN give +0 */
    if (q->post_mul) y = vfma_fused(y, vset1(q->post_mul[o]), vset1(q->post_add[o]));
    if (n >= VL) vstore(dst, y);
    else vstorem(dst, y, vm_first(n));
}

/* out rows r < nr (channels o0 + r, ldo apart), lanes [0, np) = the
 * epilogue of the sums of B by the packed weights wq: QR rows by nv vectors. */
FM__INLINE void qconv_tile(const int nv, float *out, size_t ldo, int nr, int np, const uint8_t *B,
                           const int32_t *wq, int kq, const fm__qweights *q, int o0, int relu) {
    vq acc[QR][2];
#pragma GCC unroll 8
    for (int r = 0; r < QR; r++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) acc[r][v] = vq_zero();
    for (int j = 0; j < kq; j++, B += 4 * QP, wq += QR) {
        vq x[2];
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) x[v] = vq_load(B + 32 * v);
#pragma GCC unroll 8
        for (int r = 0; r < QR; r++) {
            const vq w = vq_set1(wq[r]);
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) acc[r][v] = vq_dot4(acc[r][v], x[v], w);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < QR; r++) {
        if (r >= nr) break;
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++)
            qconv_store(out + r * ldo + v * VL, np - v * VL, acc[r][v], q, o0 + r, relu);
    }
}

#if defined(FM__VNNI) && FM__VNNI == 512
/* The same tile on zmm (16 pixels, a whole panel, per vector) over the nb
 * panels from B, bstride apart, whose outputs lie end to end (np pixels). */
FM__INLINE void qconv_tile_zmm(const int nb, float *out, size_t ldo, int nr, int np,
                               const uint8_t *B, size_t bstride, const int32_t *wq, int kq,
                               const fm__qweights *q, int o0, int relu) {
    __m512i acc[QR][2];
#pragma GCC unroll 8
    for (int r = 0; r < QR; r++)
#pragma GCC unroll 2
        for (int b = 0; b < nb; b++) acc[r][b] = _mm512_setzero_si512();
    for (int j = 0; j < kq; j++, B += 4 * QP, wq += QR) {
        __m512i x[2];
#pragma GCC unroll 2
        for (int b = 0; b < nb; b++) x[b] = _mm512_loadu_si512(B + b * bstride);
#pragma GCC unroll 8
        for (int r = 0; r < QR; r++) {
            const __m512i w = _mm512_set1_epi32(wq[r]);
#pragma GCC unroll 2
            for (int b = 0; b < nb; b++) acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], x[b], w);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < QR; r++) {
        if (r >= nr) break;
#pragma GCC unroll 2
        for (int b = 0; b < nb; b++) {
            float *dst = out + r * ldo + b * QP;
            const int left = np - b * QP;
            qconv_store(dst, left, _mm512_castsi512_si256(acc[r][b]), q, o0 + r, relu);
            if (left > VL)
                qconv_store(dst + VL, left - VL, _mm512_extracti64x4_epi64(acc[r][b], 1), q, o0 + r,
                            relu);
        }
    }
}
#endif

/* The products of the gathered panels [g0, g1) of image n (B, bstride
 * apart) by every block of output channels, into out. */
static void vector_group(float *out, const uint8_t *B, size_t bstride, const int32_t *wq,
                       const fm__qweights *q, const fm__conv_shape *s, const qconv_plan *p, int n,
                       int g0, int g1, int relu) {
    const int blocks = (s->oc + QR - 1) / QR, npix = s->oh * s->ow;
    for (int ob = 0; ob < blocks; ob++) {
        const int o0 = ob * QR, nr = imin(QR, s->oc - o0);
        const int32_t *wb = wq + (size_t)ob * p->kq * QR;
        float *y = out + ((size_t)n * s->oc + o0) * npix;
#if defined(FM__VNNI) && FM__VNNI == 512
        for (int pi = g0; pi < g1; pi += 2) {
            const int p0 = pi * QP, np = imin(2 * QP, npix - p0);
            const uint8_t *bp = B + (pi - g0) * bstride;
            if (pi + 1 < g1) qconv_tile_zmm(2, y + p0, npix, nr, np, bp, bstride, wb, p->kq, q, o0, relu);
            else qconv_tile_zmm(1, y + p0, npix, nr, np, bp, bstride, wb, p->kq, q, o0, relu);
        }
#else
        for (int pi = g0; pi < g1; pi++) {
            const int p0 = pi * QP, np = imin(QP, npix - p0);
            const uint8_t *bp = B + (pi - g0) * bstride;
            if (np > VL) qconv_tile(2, y + p0, npix, nr, np, bp, wb, p->kq, q, o0, relu);
            else qconv_tile(1, y + p0, npix, nr, np, bp, wb, p->kq, q, o0, relu);
        }
#endif
    }
}

#if defined(FM__VNNI) && FM__VNNI == 512 && defined(FM__HAVE_AMX_INT8)
#define HAVE_AMX_CONV 1
#include "kernels/fast/amx.h"
/* AMX (tdpbsud: signed bytes of A by unsigned bytes of B, 4 at a time, into
 * int32 tiles). A gathered panel's B, (kqg, QP, 4), is already a run of
 * B tiles: 16 quads (rows) of 16 pixels by 4 bytes each. The weights become
 * A tiles, 16 channels (rows) by 64 taps: per block of 32 channels and
 * tile of 64 taps, two tiles (channels 0-15, then 16-31) of 1 KB, zero past
 * oc and kdim. Each block of 32 channels by 2 panels sums in tmm0-3 (tmm4-5
 * the A tiles, tmm6-7 the B tiles); the sums go through a staging tile
 * into the epilogue. The sums are exact, so the outputs are the other
 * tables' bits. */

/* Blocks [b0, b1) of 32 channels of the A tiles wa. */
static void amx_pack(int8_t *wa, const int8_t *w, int oc, int kdim, int kqg, int b0, int b1) {
    const int ktiles = kqg / 16;
    for (int ob = b0; ob < b1; ob++)
        for (int kt = 0; kt < ktiles; kt++)
            for (int r = 0; r < 32; r++) {
                int8_t *d = wa + (((size_t)ob * ktiles + kt) * 32 + r) * 64;
                const int o = ob * 32 + r, k0 = kt * 64, len = o < oc ? imax(0, imin(64, kdim - k0)) : 0;
                if (len) memcpy(d, w + (size_t)o * kdim + k0, (size_t)len);
                memset(d + len, 0, (size_t)(64 - len));
            }
}

/* The epilogue of the 16 channels from o0 (ch < nch of them real) of the
 * np pixels of one panel from p0, whose sums are in stage (16 x 16). */
static void amx_store(float *y, int npix, const int32_t *stage, int nch, int p0, int np,
                      const fm__qweights *q, int o0, int relu) {
    for (int r = 0; r < nch; r++) {
        float *dst = y + (size_t)(o0 + r) * npix + p0;
        qconv_store(dst, np, vq_load(stage + 16 * r), q, o0 + r, relu);
        if (np > VL) qconv_store(dst + VL, np - VL, vq_load(stage + 16 * r + VL), q, o0 + r, relu);
    }
}

/* vector_group on AMX, between fm__amx_begin and fm__amx_end. */
__attribute__((target("amx-tile,amx-int8"))) static void
amx_group(float *out, const uint8_t *B, size_t bstride, const int8_t *wa, const fm__qweights *q,
          const fm__conv_shape *s, const qconv_plan *p, int n, int g0, int g1, int relu) {
    const int blocks = (s->oc + 31) / 32, ktiles = p->kqg / 16, npix = s->oh * s->ow;
    float *y = out + (size_t)n * s->oc * npix;
    int32_t stage[16 * 16] __attribute__((aligned(64)));
    for (int ob = 0; ob < blocks; ob++) {
        const int8_t *a = wa + (size_t)ob * ktiles * 2048;
        const int o0 = ob * 32, nlo = imin(16, s->oc - o0), nhi = imin(16, s->oc - o0 - 16);
        for (int pi = g0; pi < g1; pi += 2) {
            const uint8_t *b0 = B + (pi - g0) * bstride;
            const int two = pi + 1 < g1;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            for (int kt = 0; kt < ktiles; kt++) {
                _tile_loadd(4, a + kt * 2048, 64);
                _tile_loadd(5, a + kt * 2048 + 1024, 64);
                _tile_loadd(6, b0 + kt * 1024, 64);
                _tile_dpbsud(0, 4, 6);
                _tile_dpbsud(2, 5, 6);
                if (two) {
                    _tile_loadd(7, b0 + bstride + kt * 1024, 64);
                    _tile_dpbsud(1, 4, 7);
                    _tile_dpbsud(3, 5, 7);
                }
            }
            for (int h = 0; h <= two; h++) {
                const int p0 = (pi + h) * QP, np = imin(QP, npix - p0);
                if (h) _tile_stored(1, stage, 64);
                else _tile_stored(0, stage, 64);
                amx_store(y, npix, stage, nlo, p0, np, q, o0, relu);
                if (nhi > 0) {
                    if (h) _tile_stored(3, stage, 64);
                    else _tile_stored(2, stage, 64);
                    amx_store(y, npix, stage, nhi, p0, np, q, o0 + 16, relu);
                }
            }
        }
    }
}

/* Stride-1 convs on AMX without a gather ("implicit" products): the
 * quantized planes become quad planes X (cq, plane4, 4), cq quads of 4
 * channels (zp past C; cq rounded up to whole tiles of 16), each quad plane
 * the padded (hp, wp) pixels by their 4 bytes, then 16 pixels of slack. An
 * output at q = oy*wp + ox (the padded width, ox >= ow being discarded
 * lanes) reads tap (kh, kw) at q + kh*wp + kw for every channel, so the B
 * tile of 16 outputs from q0 for tap (kh, kw) and quads [16t, 16t + 16) is
 * the 64 bytes at pixel q0 + kh*wp + kw of those 16 quad planes: one tile
 * load, plane4*4 bytes apart. The weights are A tiles per block of 32
 * channels, tap and tile of quads (channels 0-15, then 16-31). The valid
 * lanes of 16 outputs are consecutive output pixels (raster order), so
 * each channel's row of a C tile is compressed into one masked store. */
typedef struct amx_direct_plan {
    int hp, wp, cq, taps, ktiles; /* ktiles: tiles of 16 quads per tap */
    int nq, ppi;                  /* outputs on the padded width, (oh-1)*wp + ow; panels of 16 */
    size_t plane;                 /* hp*wp */
    size_t plane4;                /* pixels per quad plane: plane + slack, to 16 */
    size_t wa_at, thread_at, per_thread, x_at, total;
} amx_direct_plan;

static amx_direct_plan plan_amx_direct(const fm__conv_shape *s) {
    amx_direct_plan p;
    p.hp = s->oh - 1 + s->k;
    p.wp = s->ow - 1 + s->k;
    p.cq = (s->c + 63) / 64 * 16;
    p.ktiles = p.cq / 16;
    p.taps = s->k * s->k;
    p.nq = (s->oh - 1) * p.wp + s->ow;
    p.ppi = (p.nq + 15) / 16;
    p.plane = (size_t)p.hp * p.wp;
    p.plane4 = rup(p.plane + 16, 16);
    p.wa_at = 0;
    p.thread_at = rup((size_t)(s->oc + 31) / 32 * p.taps * p.ktiles * 2048, 64);
    /* the planes (C, hp, wp), as quantize_rows writes them, whose last
     * 16-byte reads run up to 15 bytes on; then X */
    p.x_at = rup((size_t)s->c * p.plane + 16, 64);
    p.per_thread = p.x_at + (size_t)p.cq * p.plane4 * 4;
    p.total = p.thread_at + (size_t)fm__kernel_threads() * p.per_thread + 63;
    return p;
}

/* Blocks [b0, b1) of 32 channels of the A tiles: byte 4*i + t of row r of
 * the tile (ob, tap, kt) is the weight of channel ob*32 + r, input channel
 * 4*(16*kt + i) + t, at that tap; 0 past oc and C. */
static void amx_direct_pack(int8_t *wa, const int8_t *w, const fm__conv_shape *s,
                            const amx_direct_plan *p, int b0, int b1) {
    for (int ob = b0; ob < b1; ob++)
        for (int tap = 0; tap < p->taps; tap++)
            for (int kt = 0; kt < p->ktiles; kt++) {
                int8_t *d = wa + (((size_t)ob * p->taps + tap) * p->ktiles + kt) * 2048;
                for (int r = 0; r < 32; r++)
                    for (int b = 0; b < 64; b++) {
                        const int o = ob * 32 + r, c = kt * 64 + b;
                        d[r * 64 + b] = o < s->oc && c < s->c ? w[((size_t)o * s->c + c) * p->taps + tap] : 0;
                    }
            }
}

/* Padded rows [r0, r1) of the planar planes xp into the quad planes X:
 * 16 pixels at a time (the last run's extra pixels land in the next row,
 * written after it, or in the slack). */
static void amx_direct_interleave(uint8_t *X, const uint8_t *xp, const fm__qweights *q,
                                  const fm__conv_shape *s, const amx_direct_plan *p, int r0, int r1) {
    const vb16 zp = _mm_set1_epi8((char)q->zp);
    for (int j = 0; j < p->cq; j++) {
        for (int r = r0; r < r1; r++) {
            const size_t at = (size_t)r * p->wp;
            uint8_t *d = X + ((size_t)j * p->plane4 + at) * 4;
            for (int x = 0; x < p->wp; x += 16) {
                vb16 row[4];
#pragma GCC unroll 4
                for (int t = 0; t < 4; t++) {
                    const int c = 4 * j + t;
                    row[t] = c < s->c ? vb16_load(xp + c * p->plane + at + x) : zp;
                }
                vinterleave4_u8(d + (size_t)x * 4, row[0], row[1], row[2], row[3]);
            }
        }
    }
}

/* The epilogue of the channels [o0, o0 + nch) (rows of stage, 16 x 16) at
 * the valid lanes (mask) of 16 outputs, whose first valid lane is output
 * pixel first. */
static void amx_direct_store(float *y, int npix, const int32_t *stage, int nch, __mmask16 valid,
                             int first, const fm__qweights *q, int o0, int relu) {
    const __mmask16 head = (__mmask16)((1u << __builtin_popcount(valid)) - 1);
    for (int r = 0; r < nch; r++) {
        const int o = o0 + r;
        const __m512i acc = _mm512_sub_epi32(_mm512_load_si512(stage + 16 * r), _mm512_set1_epi32(q->zp * q->wsum[o]));
        __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(q->scale[o]), _mm512_set1_ps(q->bias[o]));
        if (relu) v = _mm512_max_ps(v, _mm512_setzero_ps()); /* v > 0 ? v : +0, NaN too */
        if (q->post_mul) v = _mm512_fmadd_ps(v, _mm512_set1_ps(q->post_mul[o]), _mm512_set1_ps(q->post_add[o]));
        _mm512_mask_storeu_ps(y + (size_t)o * npix + first, head, _mm512_maskz_compress_ps(valid, v));
    }
}

/* The valid lanes of the 16 outputs from q0 (ox < ow, q < nq), and the
 * output pixel of the first. */
static __mmask16 amx_direct_lanes(const fm__conv_shape *s, const amx_direct_plan *p, int q0, int *first) {
    unsigned m = 0;
    *first = -1;
    for (int l = 0; l < 16; l++) {
        const int qq = q0 + l, oy = qq / p->wp, ox = qq % p->wp;
        if (qq < p->nq && ox < s->ow) {
            m |= 1u << l;
            if (*first < 0) *first = oy * s->ow + ox;
        }
    }
    return (__mmask16)m;
}

/* Panels [a, b) of image n: its outputs y (OC, OH*OW). */
__attribute__((target("amx-tile,amx-int8"))) static void
amx_direct_panels(float *y, const uint8_t *X, const int8_t *wa, const fm__qweights *q,
                  const fm__conv_shape *s, const amx_direct_plan *p, int a, int b, int relu) {
    const int blocks = (s->oc + 31) / 32, npix = s->oh * s->ow;
    const size_t stride = p->plane4 * 4, tstride = 16 * stride;
    int32_t stage[16 * 16] __attribute__((aligned(64)));
    for (int ob = 0; ob < blocks; ob++) {
        const int o0 = ob * 32, nlo = imin(16, s->oc - o0), nhi = imin(16, s->oc - o0 - 16);
        const int8_t *wb = wa + (size_t)ob * p->taps * p->ktiles * 2048;
        for (int pi = a; pi < b; pi += 2) {
            const int two = pi + 1 < b, q0 = pi * 16;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            const int8_t *at = wb;
            for (int kh = 0; kh < s->k; kh++)
                for (int kw = 0; kw < s->k; kw++) {
                    const uint8_t *bt = X + (size_t)(q0 + kh * p->wp + kw) * 4;
                    for (int kt = 0; kt < p->ktiles; kt++, at += 2048, bt += tstride) {
                        _tile_loadd(4, at, 64);
                        _tile_loadd(5, at + 1024, 64);
                        _tile_loadd(6, bt, stride);
                        _tile_dpbsud(0, 4, 6);
                        _tile_dpbsud(2, 5, 6);
                        if (two) {
                            _tile_loadd(7, bt + 64, stride);
                            _tile_dpbsud(1, 4, 7);
                            _tile_dpbsud(3, 5, 7);
                        }
                    }
                }
            for (int h = 0; h <= two; h++) {
                int first;
                const __mmask16 valid = amx_direct_lanes(s, p, q0 + 16 * h, &first);
                if (!valid) continue;
                if (h) _tile_stored(1, stage, 64);
                else _tile_stored(0, stage, 64);
                amx_direct_store(y, npix, stage, nlo, valid, first, q, o0, relu);
                if (nhi > 0) {
                    if (h) _tile_stored(3, stage, 64);
                    else _tile_stored(2, stage, 64);
                    amx_direct_store(y, npix, stage, nhi, valid, first, q, o0 + 16, relu);
                }
            }
        }
    }
}

static void amx_direct_forward(float *out, const float *in, const fm__qweights *q,
                               const fm__conv_shape *s, int relu, void *work) {
    const amx_direct_plan p = plan_amx_direct(s);
    uint8_t *ws = align64b(work);
    const int8_t *wa = (const int8_t *)(ws + p.wa_at);
    const int npix = s->oh * s->ow;
    FM__OMP(omp parallel num_threads(team()))
    {
        const int nth = thread_count(), tid = thread_id();
        int lo, hi;
        split((s->oc + 31) / 32, nth, tid, &lo, &hi);
        amx_direct_pack((int8_t *)(ws + p.wa_at), q->w, s, &p, lo, hi);
        uint8_t *xp = ws + p.thread_at + (size_t)tid * p.per_thread, *X = xp + p.x_at;
        /* the padding, which quantize_rows leaves as it is; and the rows no
         * panel of this thread needs, which discarded lanes alone read */
        memset(xp, q->zp, p.per_thread);
        FM__OMP(omp barrier)
        fm__amx_begin();
        split(s->n * p.ppi, nth, tid, &lo, &hi);
        for (int it = lo; it < hi;) {
            const int n = it / p.ppi, a = it % p.ppi, b = imin(hi - n * p.ppi, p.ppi);
            /* the padded rows the valid outputs of [16a, 16b) read */
            const int r0 = a * 16 / p.wp, r1 = (imin(b * 16, p.nq) - 1) / p.wp + s->k;
            quantize_rows(xp, in + (size_t)n * s->c * s->h * s->w, q, s, p.wp, p.plane, r0, r1, 0);
            amx_direct_interleave(X, xp, q, s, &p, r0, r1);
            amx_direct_panels(out + (size_t)n * s->oc * npix, X, wa, q, s, &p, a, b, relu);
            it = n * p.ppi + b;
        }
        fm__amx_end();
    }
}
#endif

/* Both convs: amx (AMX builds only) picks the AMX products. */
static void qconv_forward(float *out, const float *in, const fm__qweights *q,
                          const fm__conv_shape *s, int relu, void *work, int amx) {
    const qconv_plan p = plan_qconv(s, amx);
    uint8_t *ws = align64b(work);
    size_t *koff = (size_t *)(ws + p.koff_at);
    const int kk = s->k * s->k, npix = s->oh * s->ow;
    const int blocks = amx ? (s->oc + 31) / 32 : (s->oc + QR - 1) / QR;
    const size_t bstride = (size_t)p.kqg * QP * 4;
    FM__OMP(omp parallel num_threads(team()))
    {
        const int nth = thread_count(), tid = thread_id();
        int lo, hi;
        split(blocks, nth, tid, &lo, &hi);
#ifdef HAVE_AMX_CONV
        if (amx) amx_pack((int8_t *)(ws + p.wq_at), q->w, s->oc, p.kdim, p.kqg, lo, hi);
        else
#endif
            pack_qweights((int32_t *)(ws + p.wq_at), q->w, s->oc, p.kdim, p.kq, lo, hi);
        split(p.kdim, nth, tid, &lo, &hi);
        for (int k = lo; k < hi; k++)
            koff[k] = (size_t)(k / kk) * p.plane + (size_t)(k % kk / s->k) * p.wp + k % s->k;
        FM__OMP(omp barrier)
        uint8_t *xp = ws + p.thread_at + (size_t)tid * p.per_thread, *B = xp + p.b_at;
        memset(xp + s->c * p.plane, 0, QP); /* what the last lanes' reads run into */
#ifdef HAVE_AMX_CONV
        if (amx) fm__amx_begin();
#endif
        split(s->n * p.ppi, nth, tid, &lo, &hi);
        for (int it = lo; it < hi;) {
            /* panels [a, b) of image n, reading padded rows from the first
             * one's output row to the last one's, plus the kernel */
            const int n = it / p.ppi, a = it % p.ppi, b = imin(hi - n * p.ppi, p.ppi);
            quantize_rows(xp, in + (size_t)n * s->c * s->h * s->w, q, s, p.wp, p.plane,
                          a * QP / s->ow * s->stride,
                          (imin(b * QP, npix) - 1) / s->ow * s->stride + s->k, 1);
            for (int g0 = a; g0 < b; g0 += p.group) {
                const int g1 = imin(b, g0 + p.group);
                for (int pi = g0; pi < g1; pi++) {
                    qpanel pn;
                    plan_panel(&pn, s, &p, pi * QP, imin(QP, npix - pi * QP));
                    gather_panel(B + (pi - g0) * bstride, xp, koff, s, &p, &pn);
                }
#ifdef HAVE_AMX_CONV
                if (amx) amx_group(out, B, bstride, (const int8_t *)(ws + p.wq_at), q, s, &p, n, g0, g1, relu);
                else
#endif
                    vector_group(out, B, bstride, (const int32_t *)(ws + p.wq_at), q, s, &p, n, g0, g1, relu);
            }
            it = n * p.ppi + b;
        }
#ifdef HAVE_AMX_CONV
        if (amx) fm__amx_end();
#endif
    }
}

size_t fm__fast_qconv2d_workspace(const fm__conv_shape *s) { return plan_qconv(s, 0).total; }

void fm__fast_qconv2d_forward(float *out, const float *in, const fm__qweights *q,
                              const fm__conv_shape *s, int relu, void *work) {
    qconv_forward(out, in, q, s, relu, work, 0);
}

#ifdef HAVE_AMX_CONV
/* A tile takes 64 taps: below half of that (a first layer's 9) its zero
 * padding costs more than the vector products. */
static int amx_pays(const fm__conv_shape *s) { return s->c * s->k * s->k > 32; }

size_t fm__fast_qconv2d_workspace_amx(const fm__conv_shape *s) {
    if (s->stride == 1 && amx_pays(s)) return plan_amx_direct(s).total;
    return plan_qconv(s, amx_pays(s)).total;
}

void fm__fast_qconv2d_forward_amx(float *out, const float *in, const fm__qweights *q,
                                  const fm__conv_shape *s, int relu, void *work) {
    if (s->stride == 1 && amx_pays(s)) amx_direct_forward(out, in, q, s, relu, work);
    else qconv_forward(out, in, q, s, relu, work, amx_pays(s));
}
#endif

/* ---- dense layers --------------------------------------------------------- */

/* out[i][o0 + o] for i < rn, o < ro: the epilogue of the dot products of
 * the quantized rows x (ldx apart, zero past in_dim) with the weight rows w. */
FM__INLINE void qdense_tile(const int rn, const int ro, float *out, int out_dim, const uint8_t *x,
                            size_t ldx, const int8_t *w, int in_dim, const fm__qweights *q, int o0,
                            int relu) {
    vq acc[QDN][QDO];
#pragma GCC unroll 2
    for (int i = 0; i < rn; i++)
#pragma GCC unroll 4
        for (int o = 0; o < ro; o++) acc[i][o] = vq_zero();
    int k = 0;
    for (; k + 32 <= in_dim; k += 32) {
        vq xv[QDN];
#pragma GCC unroll 2
        for (int i = 0; i < rn; i++) xv[i] = vq_load(x + i * ldx + k);
#pragma GCC unroll 4
        for (int o = 0; o < ro; o++) {
            const vq wv = vq_load(w + (size_t)o * in_dim + k);
#pragma GCC unroll 2
            for (int i = 0; i < rn; i++) acc[i][o] = vq_dot4(acc[i][o], xv[i], wv);
        }
    }
    if (k < in_dim) {
        /* the rows' last bytes, zero-padded: reading on could leave w */
        int8_t tail[QDO][32] = {{0}};
#pragma GCC unroll 4
        for (int o = 0; o < ro; o++) memcpy(tail[o], w + (size_t)o * in_dim + k, (size_t)(in_dim - k));
#pragma GCC unroll 4
        for (int o = 0; o < ro; o++) {
            const vq wv = vq_load(tail[o]);
#pragma GCC unroll 2
            for (int i = 0; i < rn; i++) acc[i][o] = vq_dot4(acc[i][o], vq_load(x + i * ldx + k), wv);
        }
    }
#pragma GCC unroll 2
    for (int i = 0; i < rn; i++) {
#pragma GCC unroll 4
        for (int o = 0; o < ro; o++) {
            const int32_t sum = vq_hsum(acc[i][o]) - q->zp * q->wsum[o0 + o];
            out[(size_t)i * out_dim + o0 + o] = fm__qdequantize(sum, q, o0 + o, relu);
        }
    }
}

size_t fm__fast_qdense_workspace(int n, int in_dim, int out_dim) {
    (void)out_dim;
    return (size_t)n * rup((size_t)in_dim, 32) + 63; /* xq (n, in_dim rounded up to 32) */
}

/* xq (n, ldx): the n input rows' bytes, then zeros (which add nothing to
 * the sums); the threads of the enclosing parallel region share the work. */
static void qdense_quantize(uint8_t *xq, const float *in, const fm__qweights *q, int n, int in_dim,
                            int ldx) {
    const int units = (ldx + QCHUNK - 1) / QCHUNK;
    FM__OMP(omp for schedule(static))
    for (int u = 0; u < n * units; u++) {
        const int i = u / units, k0 = u % units * QCHUNK, k1 = imin(k0 + QCHUNK, ldx);
        const int kv = imax(k0, imin(k1, in_dim));
        uint8_t *d = xq + (size_t)i * ldx;
        if (kv > k0)
            quantize_run(d + k0, in + (size_t)i * in_dim + k0, kv - k0, q,
                         q->pre_mul ? q->pre_mul + k0 : NULL, q->pre_add ? q->pre_add + k0 : NULL, 1);
        memset(d + kv, 0, (size_t)(k1 - kv));
    }
}

void fm__fast_qdense_forward(float *out, const float *in, const fm__qweights *q, int n,
                             int in_dim, int out_dim, int relu, void *work) {
    const int ldx = (int)rup((size_t)in_dim, 32);
    const int blocks = (out_dim + QDO - 1) / QDO;
    uint8_t *xq = align64b(work);
    FM__OMP(omp parallel num_threads(team()))
    {
        qdense_quantize(xq, in, q, n, in_dim, ldx);
        int lo, hi;
        split(blocks, thread_count(), thread_id(), &lo, &hi);
        /* QNB rows of xq (400 KB at 6272 inputs) stay in L2 while the weights pass */
        for (int n0 = 0; n0 < n; n0 += QNB) {
            const int n1 = imin(n, n0 + QNB);
            for (int ob = lo; ob < hi; ob++) {
                const int o0 = ob * QDO, ro = imin(QDO, out_dim - o0);
                for (int i0 = n0; i0 < n1; i0 += QDN) {
                    const int rn = imin(QDN, n1 - i0);
#define QDENSE_CALL(N_, O_)                                                                        \
    qdense_tile(N_, O_, out + (size_t)i0 * out_dim, out_dim, xq + (size_t)i0 * ldx, ldx,           \
                q->w + (size_t)o0 * in_dim, in_dim, q, o0, relu)
                    switch (rn * 8 + ro) {
                    case 1 * 8 + 1: QDENSE_CALL(1, 1); break;
                    case 1 * 8 + 2: QDENSE_CALL(1, 2); break;
                    case 1 * 8 + 3: QDENSE_CALL(1, 3); break;
                    case 1 * 8 + 4: QDENSE_CALL(1, 4); break;
                    case 2 * 8 + 1: QDENSE_CALL(2, 1); break;
                    case 2 * 8 + 2: QDENSE_CALL(2, 2); break;
                    case 2 * 8 + 3: QDENSE_CALL(2, 3); break;
                    case 2 * 8 + 4: QDENSE_CALL(2, 4); break;
                    default: break;
                    }
#undef QDENSE_CALL
                }
            }
        }
    }
}

#ifdef HAVE_AMX_CONV
/* Dense layers on AMX: out^T (out_dim, n) = w (out_dim, in_dim) by xq^T.
 * The A tiles are 16 weight rows by 64 inputs, loaded from w in place (or
 * through a zero-padded copy at the edges: past out_dim or in_dim). B
 * holds the quantized rows as tiles of 16 quads (rows) by 16 samples, per
 * block of 16 samples: (n/16, ldx/64, 16, 16, 4). Blocks of 32 weight rows
 * by 32 samples sum in tmm0-3; the sums are exact. */
typedef struct amx_dense_plan {
    int ldx, ktiles, sblocks;
    size_t b_at, stage_at, total;
} amx_dense_plan;

static amx_dense_plan plan_amx_dense(int n, int in_dim) {
    amx_dense_plan p;
    p.ldx = (int)rup((size_t)in_dim, 64);
    p.ktiles = p.ldx / 64;
    p.sblocks = (n + 15) / 16;
    p.b_at = rup((size_t)n * p.ldx, 64);
    p.stage_at = p.b_at + (size_t)p.sblocks * p.ktiles * 1024;
    /* per thread: two A tiles' copies */
    p.total = p.stage_at + (size_t)fm__kernel_threads() * 2048 + 63;
    return p;
}

/* Sample blocks [b0, b1) of B from xq: quad j of sample i is row j % 16,
 * column i % 16 of tile (i / 16, j / 16); 0 past n. */
static void amx_dense_interleave(uint32_t *B, const uint8_t *xq, int n, const amx_dense_plan *p,
                                 int b0, int b1) {
    for (int sb = b0; sb < b1; sb++)
        for (int kt = 0; kt < p->ktiles; kt++) {
            uint32_t *t = B + ((size_t)sb * p->ktiles + kt) * 256;
            for (int i = 0; i < 16; i++) {
                const int smp = sb * 16 + i;
                for (int jj = 0; jj < 16; jj++) {
                    uint32_t v = 0;
                    if (smp < n) memcpy(&v, xq + (size_t)smp * p->ldx + (kt * 16 + jj) * 4, 4);
                    t[jj * 16 + i] = v;
                }
            }
        }
}

/* The A tile of weight rows [o0, o0 + 16) by inputs [k0, k0 + 64) into
 * tile register R: from w where whole, else through the zero-padded copy. */
#define AMX_LOAD_A(R, w, o0, k0, out_dim, in_dim, copy)                                           \
    do {                                                                                           \
        if ((o0) + 16 <= (out_dim) && (k0) + 64 <= (in_dim)) {                                     \
            _tile_loadd(R, (w) + (size_t)(o0) * (in_dim) + (k0), (in_dim));                        \
        } else {                                                                                   \
            memset((copy), 0, 1024);                                                               \
            const int rows_ = imax(0, imin(16, (out_dim) - (o0))), len_ = imin(64, (in_dim) - (k0)); \
            for (int r_ = 0; r_ < rows_; r_++)                                                     \
                memcpy((copy) + r_ * 64, (w) + (size_t)((o0) + r_) * (in_dim) + (k0), (size_t)len_); \
            _tile_loadd(R, (copy), 64);                                                            \
        }                                                                                          \
    } while (0)

/* out rows [s0, s0 + 16) (samples, < n) by columns [o0, o0 + 16) (< out_dim)
 * = the epilogue of the sums in stage (16 weight rows by 16 samples). */
static void amx_dense_store(float *out, const int32_t *stage, int n, int out_dim, int s0, int o0,
                            const fm__qweights *q, int relu) {
    for (int r = 0; r < 16 && o0 + r < out_dim; r++) {
        const int o = o0 + r;
        for (int i = 0; i < 16 && s0 + i < n; i++) {
            out[(size_t)(s0 + i) * out_dim + o] = fm__qdequantize(stage[r * 16 + i] - q->zp * q->wsum[o], q, o, relu);
        }
    }
}

__attribute__((target("amx-tile,amx-int8"))) static void
amx_dense_blocks(float *out, const uint8_t *B, const int8_t *w, int8_t *copy, const fm__qweights *q,
                 int n, int in_dim, int out_dim, const amx_dense_plan *p, int ob0, int ob1, int relu) {
    int32_t stage[16 * 16] __attribute__((aligned(64)));
    for (int ob = ob0; ob < ob1; ob++) {
        const int o0 = ob * 32;
        for (int sb = 0; sb < p->sblocks; sb += 2) {
            const int two = sb + 1 < p->sblocks;
            const uint8_t *b0 = B + (size_t)sb * p->ktiles * 1024, *b1 = b0 + (size_t)p->ktiles * 1024;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            for (int kt = 0; kt < p->ktiles; kt++) {
                AMX_LOAD_A(4, w, o0, kt * 64, out_dim, in_dim, copy);
                AMX_LOAD_A(5, w, o0 + 16, kt * 64, out_dim, in_dim, copy + 1024);
                _tile_loadd(6, b0 + kt * 1024, 64);
                _tile_dpbsud(0, 4, 6);
                _tile_dpbsud(2, 5, 6);
                if (two) {
                    _tile_loadd(7, b1 + kt * 1024, 64);
                    _tile_dpbsud(1, 4, 7);
                    _tile_dpbsud(3, 5, 7);
                }
            }
            _tile_stored(0, stage, 64);
            amx_dense_store(out, stage, n, out_dim, sb * 16, o0, q, relu);
            _tile_stored(2, stage, 64);
            amx_dense_store(out, stage, n, out_dim, sb * 16, o0 + 16, q, relu);
            if (two) {
                _tile_stored(1, stage, 64);
                amx_dense_store(out, stage, n, out_dim, sb * 16 + 16, o0, q, relu);
                _tile_stored(3, stage, 64);
                amx_dense_store(out, stage, n, out_dim, sb * 16 + 16, o0 + 16, q, relu);
            }
        }
    }
}

/* As amx_pays; and a layer of fewer outputs than a tile's 16 rows (the
 * classifier's 10) is faster on vpdpbusd than through padded tiles. */
static int amx_dense_pays(int in_dim, int out_dim) { return in_dim > 32 && out_dim >= 16; }

size_t fm__fast_qdense_workspace_amx(int n, int in_dim, int out_dim) {
    return amx_dense_pays(in_dim, out_dim) ? plan_amx_dense(n, in_dim).total
                                           : fm__fast_qdense_workspace(n, in_dim, out_dim);
}

void fm__fast_qdense_forward_amx(float *out, const float *in, const fm__qweights *q, int n,
                                 int in_dim, int out_dim, int relu, void *work) {
    if (!amx_dense_pays(in_dim, out_dim)) {
        fm__fast_qdense_forward(out, in, q, n, in_dim, out_dim, relu, work);
        return;
    }
    const amx_dense_plan p = plan_amx_dense(n, in_dim);
    uint8_t *ws = align64b(work);
    FM__OMP(omp parallel num_threads(team()))
    {
        const int nth = thread_count(), tid = thread_id();
        qdense_quantize(ws, in, q, n, in_dim, p.ldx);
        int lo, hi;
        split(p.sblocks, nth, tid, &lo, &hi);
        amx_dense_interleave((uint32_t *)(ws + p.b_at), ws, n, &p, lo, hi);
        FM__OMP(omp barrier)
        split((out_dim + 31) / 32, nth, tid, &lo, &hi);
        fm__amx_begin();
        amx_dense_blocks(out, ws + p.b_at, q->w, (int8_t *)(ws + p.stage_at + (size_t)tid * 2048), q, n,
                         in_dim, out_dim, &p, lo, hi, relu);
        fm__amx_end();
    }
}
#endif

#endif
