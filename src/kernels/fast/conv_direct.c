/* Convs without Winograd: direct register-tile products of staged pixels
 * by the packed (K*K*C x OC) weights, weight gradients as staged input
 * pixels (rows: kernel tap and channel) by the staged output gradient
 * (pixel x OC); and convs with very few channels (the first layer), which
 * run along output pixels of zero-padded channel planes instead. */
#include <string.h>

#include "kernels/fast/conv.h"
#include "kernels/fast/tile.h"

/* ---- direct convs on staged pixels ---------------------------------------- */

/* Packed kernel: row (kh*K + kw)*kdim + k, column j (padded to js with
 * zeros) holds the weight from input channel k to output channel j; with
 * flip, k = oc and j = c of the 180-degree rotated kernel (backward data). */
static void pack_weights(float *Wt, const float *w, int C, int OC, int K, int flip) {
    const int kdim = flip ? OC : C, jdim = flip ? C : OC, js = (int)rup(jdim, VL);
    FM__OMP(omp parallel for schedule(static) num_threads(team()))
    for (int k = 0; k < kdim; k++) {
        for (int tap = 0; tap < K * K; tap++) {
            float *row = Wt + ((size_t)tap * kdim + k) * js;
            for (int j = 0; j < js; j++) {
                if (j >= jdim) {
                    row[j] = 0.0f;
                    continue;
                }
                size_t base = flip ? ((size_t)k * C + j) * K * K : ((size_t)j * C + k) * K * K;
                row[j] = w[base + (flip ? K * K - 1 - tap : tap)];
            }
        }
    }
}

/* One register tile of output pixels: acc = sum over taps and channels. */
FM__INLINE void direct_tile(const int mr, const int nv, const float *const *a, int K, int C,
                            ptrdiff_t rs, ptrdiff_t ps, const float *b, ptrdiff_t ldb, float *c,
                            ptrdiff_t ldc) {
    vf acc[MR][NV];
    tile_zero(acc, mr, nv);
    for (int kh = 0; kh < K; kh++) {
        for (int kw = 0; kw < K; kw++) {
            const float *ak[MR];
#pragma GCC unroll 8
            for (int r = 0; r < mr; r++) ak[r] = a[r] + kh * rs + kw * ps;
            madd(acc, mr, nv, 0, vm_first(VL), ak, 1, C, b + (size_t)(kh * K + kw) * C * ldb, ldb);
        }
    }
    tile_store(acc, mr, nv, 0, vm_first(VL), c, ldc, 0);
}

fm__direct_plan fm__plan_direct(const fm__conv_shape *s) {
    fm__direct_plan d;
    d.hs = (s->oh - 1) * s->stride + s->k;
    d.ws = (s->ow - 1) * s->stride + s->k;
    d.cs = (int)rup(s->c, VL);
    d.ocs = (int)rup(s->oc, VL);
    d.wt_at = 0;
    d.thread_at = d.wt_at + rup((size_t)s->k * s->k * s->c * d.ocs, 16);
    d.stg_at = 0;
    d.ostg_at = d.stg_at + rup((size_t)d.hs * d.ws * d.cs, 16);
    d.per_thread = d.ostg_at + rup((size_t)s->oh * s->ow * d.ocs, 16);
    d.total = d.thread_at + (size_t)fm__kernel_threads() * d.per_thread;
    return d;
}

/* dst (c, npix) = src (npix, cs) transposed, plus bias (may be NULL), then
 * ReLU when relu != 0. */
static void unstage(float *dst, const float *src, int c, int npix, int cs, const float *bias,
                    int relu) {
    for (int cb = 0; cb < c; cb += VL) {
        int nc = imin(VL, c - cb);
        for (int p0 = 0; p0 < npix; p0 += VL) {
            int np = imin(VL, npix - p0);
            vf r[VL];
            for (int j = 0; j < VL; j++) r[j] = j < np ? vload(src + (size_t)(p0 + j) * cs + cb) : vzero();
            vtranspose(r);
            vmask m = vm_first(np);
            for (int i = 0; i < nc; i++) {
                vf v = bias ? vadd(r[i], vset1(bias[cb + i])) : r[i];
                if (relu) v = vmax(v, vzero());
                vstorem(dst + (size_t)(cb + i) * npix + p0, v, m);
            }
        }
    }
}

/* out = bias + conv(in, Wt packed at ws + wt_at), ReLU when relu != 0;
 * parallel over images. */
static void direct_run(const fm__direct_plan *d, const fm__conv_shape *s, float *out,
                       const float *in, const float *bias, int relu, float *ws) {
    const float *Wt = ws + d->wt_at;
    const int npix = s->oh * s->ow;
    FM__OMP(omp parallel num_threads(team()))
    {
        int lo, hi;
        split(s->n, thread_count(), thread_id(), &lo, &hi);
        float *area = ws + d->thread_at + (size_t)thread_id() * d->per_thread;
        float *stg = area + d->stg_at, *ostg = area + d->ostg_at;
        for (int n = lo; n < hi; n++) {
            fm__stage_rows(stg, in + (size_t)n * s->c * s->h * s->w, s->c, s->h, s->w, d->ws,
                           d->cs, s->pad_t, s->pad_l, 0, d->hs);
            for (int p0 = 0; p0 < npix; p0 += MR) {
                const int mr = imin(MR, npix - p0);
                const float *a[MR];
                for (int r = 0; r < MR; r++) {
                    int p = imin(p0 + r, npix - 1), oy = p / s->ow, ox = p % s->ow;
                    a[r] = stg + ((size_t)oy * s->stride * d->ws + (size_t)ox * s->stride) * d->cs;
                }
                for (int ob = 0; ob < d->ocs / VL; ob += NV) {
                    const int nv = imin(NV, d->ocs / VL - ob);
#define DIRECT_CALL(M_, N_)                                                                        \
    direct_tile(M_, N_, a, s->k, s->c, (ptrdiff_t)d->ws * d->cs, d->cs, Wt + ob * VL, d->ocs,      \
                ostg + (size_t)p0 * d->ocs + ob * VL, d->ocs)
                    TILE_SWITCH(mr, nv, DIRECT_CALL)
#undef DIRECT_CALL
                }
            }
            unstage(out + (size_t)n * s->oc * npix, ostg, s->oc, npix, d->ocs, bias, relu);
        }
    }
}

void fm__direct_conv(const fm__direct_plan *p, const fm__conv_shape *s, float *out,
                     const float *in, const float *w, int flip, const float *bias, int relu,
                     float *ws) {
    /* with flip, w is (c, oc, K, K): the kernel of the conv whose backward data this is */
    pack_weights(ws + p->wt_at, w, flip ? s->oc : s->c, flip ? s->c : s->oc, s->k, flip);
    direct_run(p, s, out, in, bias, relu, ws);
}

/* One register tile of weight gradients: rows a[r] (a kernel tap and input
 * channel each) against output-gradient columns, summed over output pixels. */
FM__INLINE void bww_tile(const int mr, const int nv, const float *const *a, int oh, int ow,
                         ptrdiff_t arow, ptrdiff_t as, const float *b, ptrdiff_t ldb, float *c,
                         ptrdiff_t ldc) {
    vf acc[MR][NV];
    tile_zero(acc, mr, nv);
    for (int oy = 0; oy < oh; oy++) {
        const float *ak[MR];
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) ak[r] = a[r] + oy * arow;
        madd(acc, mr, nv, 0, vm_first(VL), ak, as, ow, b + (size_t)oy * ow * ldb, ldb);
    }
    tile_store(acc, mr, nv, 0, vm_first(VL), c, ldc, 1);
}

/* db (oc) += sum of dout (n, oc, npix) over images and pixels; parallel over oc. */
static void bias_grad(float *db, const float *dout, int n, int oc, int npix) {
    FM__OMP(omp parallel for schedule(static) num_threads(team()))
    for (int o = 0; o < oc; o++) {
        float sum = 0.0f;
        for (int i = 0; i < n; i++) {
            const float *d = dout + ((size_t)i * oc + o) * npix;
            vf v = vzero();
            int p = 0;
            for (; p + VL <= npix; p += VL) v = vadd(v, vload(d + p));
            v = vadd(v, vloadm(d + p, vm_first(npix - p)));
            sum += vhsum(v);
        }
        db[o] += sum;
    }
}

fm__direct_bww_plan fm__plan_direct_bww(const fm__conv_shape *s) {
    fm__direct_bww_plan b;
    b.hs = (s->oh - 1) * s->stride + s->k;
    b.ws = (s->ow - 1) * s->stride + s->k;
    b.cs = (int)rup(s->c, VL);
    b.ocs = (int)rup(s->oc, VL);
    b.rows = s->k * s->k * s->c;
    b.acc_at = 0;
    b.stg_at = b.acc_at + rup((size_t)b.rows * b.ocs, 16);
    b.dstg_at = b.stg_at + rup((size_t)b.hs * b.ws * b.cs, 16);
    b.total = b.dstg_at + rup((size_t)s->oh * s->ow * b.ocs, 16);
    return b;
}

/* Weight gradients by the staged direct method, for convs Winograd does not
 * take; then the bias gradient. */
void fm__direct_bww(const fm__direct_bww_plan *b, float *dw, float *db, const float *dout,
                    const float *in, const fm__conv_shape *s, float *ws) {
    float *acc = ws + b->acc_at, *stg = ws + b->stg_at, *dstg = ws + b->dstg_at;
    const int K = s->k, C = s->c, OC = s->oc, npix = s->oh * s->ow;
    const int row_blocks = (b->rows + MR - 1) / MR, col_blocks = (b->ocs / VL + NV - 1) / NV;
    memset(acc, 0, sizeof(float) * b->rows * b->ocs);
    FM__OMP(omp parallel num_threads(team()))
    {
        const int tid = thread_id(), nth = thread_count();
        int ilo, ihi, ylo, yhi, plo, phi;
        /* every image: all threads stage it, then each updates its own tiles */
        split(row_blocks * col_blocks, nth, tid, &ilo, &ihi);
        split(b->hs, nth, tid, &ylo, &yhi);
        split(s->oh, nth, tid, &plo, &phi);
        for (int n = 0; n < s->n; n++) {
            fm__stage_rows(stg, in + (size_t)n * C * s->h * s->w, C, s->h, s->w, b->ws, b->cs,
                           s->pad_t, s->pad_l, ylo, yhi);
            fm__stage_rows(dstg, dout + (size_t)n * OC * npix, OC, s->oh, s->ow, s->ow, b->ocs, 0,
                           0, plo, phi);
            FM__OMP(omp barrier)
            for (int it = ilo; it < ihi; it++) {
                const int rb = it / col_blocks, ob = it % col_blocks * NV;
                const int mr = imin(MR, b->rows - rb * MR), nv = imin(NV, b->ocs / VL - ob);
                const float *a[MR];
                for (int r = 0; r < MR; r++) {
                    int row = imin(rb * MR + r, b->rows - 1), tap = row / C, c = row % C;
                    a[r] = stg + ((size_t)(tap / K) * b->ws + tap % K) * b->cs + c;
                }
#define BWW_CALL(M_, N_)                                                                           \
    bww_tile(M_, N_, a, s->oh, s->ow, (ptrdiff_t)s->stride * b->ws * b->cs,                        \
             (ptrdiff_t)s->stride * b->cs, dstg + ob * VL, b->ocs,                                 \
             acc + (size_t)rb * MR * b->ocs + ob * VL, b->ocs)
                TILE_SWITCH(mr, nv, BWW_CALL)
#undef BWW_CALL
            }
            FM__OMP(omp barrier)
        }
        /* dw (OC, C, K, K) += acc (K*K*C, ocs) transposed */
        int olo, ohi;
        split(OC, nth, tid, &olo, &ohi);
        for (int oc = olo; oc < ohi; oc++) {
            for (int c = 0; c < C; c++)
                for (int tap = 0; tap < K * K; tap++)
                    dw[((size_t)oc * C + c) * K * K + tap] += acc[((size_t)tap * C + c) * b->ocs + oc];
        }
    }
    if (db) bias_grad(db, dout, s->n, s->oc, s->oh * s->ow);
}

/* ---- convs with few channels: vectors along output pixels -------------- */

/* Stride-1 convs whose channel counts would leave the products above with
 * mostly empty vectors or tiny depths (the first layer: 1 input channel)
 * run directly on zero-padded copies of each input channel, VL output
 * pixels of a row at a time. */
static fm__planes planes(const fm__conv_shape *s) {
    fm__planes g;
    g.hp = s->oh + s->k - 1;
    g.wp = (int)rup(s->ow, VL) + s->k - 1;
    g.len = rup((size_t)s->c * g.hp * g.wp, 16);
    return g;
}

fm__plane_plan fm__plan_plane(const fm__conv_shape *s, int flip) {
    fm__plane_plan p = {.g = planes(s)};
    p.wt_at = 0;
    p.thread_at = p.wt_at + (flip ? rup((size_t)s->k * s->k * s->c * s->oc, 16) : 0);
    p.total = p.thread_at + (size_t)fm__kernel_threads() * p.g.len;
    return p;
}

/* dst (c, hp, wp) = src (c, h, w) shifted by (oy, ox), zero elsewhere. */
static void stage_planes(float *dst, const float *src, int c, int h, int w, const fm__planes *p,
                         int oy, int ox) {
    memset(dst, 0, sizeof(float) * c * p->hp * p->wp);
    const int x0 = ox < 0 ? -ox : 0, x1 = imin(w, p->wp - ox);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            if (y + oy >= 0 && y + oy < p->hp && x1 > x0)
                memcpy(dst + ((size_t)ch * p->hp + y + oy) * p->wp + ox + x0,
                       src + ((size_t)ch * h + y) * w + x0, sizeof(float) * (x1 - x0));
}

#define PB (VL == 16 ? 8 : 4) /* output channels per pass */

/* out[j][xb..] for nb output channels j of row oy: bias + taps, then ReLU. */
FM__INLINE void plane_fwd_tile(const int nb, const float *pl, const fm__planes *p, int C, int K,
                               const float *w, const float *bias, int relu, float *o, ptrdiff_t os,
                               vmask m, int oy, int xb) {
    vf acc[PB];
    const int ckk = C * K * K;
#pragma GCC unroll 8
    for (int j = 0; j < nb; j++) acc[j] = bias ? vset1(bias[j]) : vzero();
    for (int c = 0; c < C; c++) {
        for (int kh = 0; kh < K; kh++) {
            const float *row = pl + ((size_t)c * p->hp + oy + kh) * p->wp + xb;
            const float *wk = w + (c * K + kh) * K;
            for (int kw = 0; kw < K; kw++) {
                vf v = vload(row + kw);
#pragma GCC unroll 8
                for (int j = 0; j < nb; j++) acc[j] = vfma(vset1(wk[j * ckk + kw]), v, acc[j]);
            }
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < nb; j++) vstorem(o + j * os, relu ? vmax(acc[j], vzero()) : acc[j], m);
}

/* out = bias + conv(in, w) (w in its own layout), ReLU when relu != 0. */
static void plane_run(const fm__plane_plan *plan, const fm__conv_shape *s, float *out,
                      const float *in, const float *w, const float *bias, int relu, float *ws) {
    const fm__planes *p = &plan->g;
    const int C = s->c, OC = s->oc, K = s->k, npix = s->oh * s->ow;
    FM__OMP(omp parallel num_threads(team()))
    {
        int lo, hi;
        split(s->n, thread_count(), thread_id(), &lo, &hi);
        float *pl = ws + plan->thread_at + (size_t)thread_id() * p->len;
        for (int n = lo; n < hi; n++) {
            stage_planes(pl, in + (size_t)n * C * s->h * s->w, C, s->h, s->w, p, s->pad_t, s->pad_l);
            for (int oc = 0; oc < OC; oc += PB) {
                const int nb = imin(PB, OC - oc);
                const float *wo = w + (size_t)oc * C * K * K, *bo = bias ? bias + oc : NULL;
                for (int oy = 0; oy < s->oh; oy++) {
                    for (int xb = 0; xb < s->ow; xb += VL) {
                        float *o = out + ((size_t)n * OC + oc) * npix + (size_t)oy * s->ow + xb;
                        vmask m = vm_first(s->ow - xb);
                        switch (nb) {
#define PLANE_CASE(B_)                                                                             \
    case B_: plane_fwd_tile(B_, pl, p, C, K, wo, bo, relu, o, npix, m, oy, xb); break;
                            PLANE_CASE(1) PLANE_CASE(2) PLANE_CASE(3) PLANE_CASE(4)
#if PB == 8
                            PLANE_CASE(5) PLANE_CASE(6) PLANE_CASE(7) PLANE_CASE(8)
#endif
#undef PLANE_CASE
                        default: break;
                        }
                    }
                }
            }
        }
    }
}

/* Backward data of such a conv is itself one (rotated, transposed kernel),
 * which needs the kernel in forward layout: wt (C, OC, K, K). */
static void rotate_weights(float *wt, const float *w, int C, int OC, int K) {
    for (int oc = 0; oc < OC; oc++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < K * K; t++)
                wt[((size_t)c * OC + oc) * K * K + t] = w[((size_t)oc * C + c) * K * K + K * K - 1 - t];
}

void fm__plane_conv(const fm__plane_plan *p, const fm__conv_shape *s, float *out, const float *in,
                    const float *w, int flip, const float *bias, int relu, float *ws) {
    if (flip) {
        /* w is (c, oc, K, K): the kernel of the conv whose backward data this is */
        rotate_weights(ws + p->wt_at, w, s->oc, s->c, s->k);
        w = ws + p->wt_at;
    }
    plane_run(p, s, out, in, w, bias, relu, ws);
}

#define PO (VL == 16 ? 2 : 1) /* output channels per weight-gradient pass */

/* acc (nb, 9 taps, VL) (output channel j's taps js floats apart) += the dout
 * rows of nb output channels times the 9 shifted rows of one input channel,
 * over the image; with withb, accb (nb, VL) += the dout rows too. */
FM__INLINE void plane_bww_tile(const int nb, const int withb, float *acc, ptrdiff_t js,
                               float *accb, const float *pl, const fm__planes *p, const float *g,
                               ptrdiff_t gs, int oh, int ow) {
    vf a[PO][9], ab[PO];
#pragma GCC unroll 2
    for (int j = 0; j < nb; j++) {
        ab[j] = withb ? vload(accb + j * VL) : vzero();
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++) a[j][t] = vload(acc + j * js + t * VL);
    }
    for (int oy = 0; oy < oh; oy++) {
        /* the masked row loads below do not start the hardware prefetcher */
#pragma GCC unroll 2
        for (int j = 0; j < nb; j++) prefetch_row(g + j * gs + (size_t)(oy + 2) * ow, ow);
        for (int xb = 0; xb < ow; xb += VL) {
            vmask m = vm_first(ow - xb);
            vf d[PO];
#pragma GCC unroll 2
            for (int j = 0; j < nb; j++) {
                d[j] = vloadm(g + j * gs + (size_t)oy * ow + xb, m);
                if (withb) ab[j] = vadd(ab[j], d[j]);
            }
#pragma GCC unroll 9
            for (int t = 0; t < 9; t++) {
                /* lanes past the row end meet zero gradients */
                vf v = vload(pl + (size_t)(oy + t / 3) * p->wp + xb + t % 3);
#pragma GCC unroll 2
                for (int j = 0; j < nb; j++) a[j][t] = vfma(d[j], v, a[j][t]);
            }
        }
    }
#pragma GCC unroll 2
    for (int j = 0; j < nb; j++) {
        if (withb) vstore(accb + j * VL, ab[j]);
#pragma GCC unroll 9
        for (int t = 0; t < 9; t++) vstore(acc + j * js + t * VL, a[j][t]);
    }
}

fm__plane_bww_plan fm__plan_plane_bww(const fm__conv_shape *s) {
    fm__plane_bww_plan p = {.g = planes(s)};
    p.acc_at = 0;
    p.accb_at = p.acc_at + rup((size_t)s->oc * s->c * 9 * VL, 16);
    p.thread_at = p.accb_at + rup((size_t)s->oc * VL, 16);
    p.total = p.thread_at + (size_t)fm__kernel_threads() * p.g.len;
    return p;
}

/* Weight and bias gradients of a 3x3 stride-1 conv with few input channels:
 * threads own output channels and visit every image, so each sum has one
 * fixed order. Vector partial sums live in scratch until the end. */
void fm__plane_bww(const fm__plane_bww_plan *plan, float *dw, float *db, const float *dout,
                   const float *in, const fm__conv_shape *s, float *ws) {
    const fm__planes *p = &plan->g;
    const int C = s->c, OC = s->oc, npix = s->oh * s->ow;
    float *acc = ws + plan->acc_at, *accb = ws + plan->accb_at;
    memset(acc, 0, sizeof(float) * ((size_t)OC * C * 9 * VL));
    memset(accb, 0, sizeof(float) * ((size_t)OC * VL));
    const int groups = (OC + PO - 1) / PO;
    FM__OMP(omp parallel num_threads(team()))
    {
        int lo, hi;
        split(groups, thread_count(), thread_id(), &lo, &hi);
        float *pl = ws + plan->thread_at + (size_t)thread_id() * p->len;
        for (int n = 0; n < s->n && lo < hi; n++) {
            stage_planes(pl, in + (size_t)n * C * s->h * s->w, C, s->h, s->w, p, s->pad_t, s->pad_l);
            for (int gi = lo; gi < hi; gi++) {
                const int oc = gi * PO, nb = imin(PO, OC - oc);
                const float *g = dout + ((size_t)n * OC + oc) * npix;
                for (int c = 0; c < C; c++) {
                    float *a = acc + ((size_t)oc * C + c) * 9 * VL, *ab = accb + (size_t)oc * VL;
                    const float *plc = pl + (size_t)c * p->hp * p->wp;
                    const ptrdiff_t js = (ptrdiff_t)C * 9 * VL;
                    /* the bias sums ride along with input channel 0 */
                    if (nb == PO && c == 0)
                        plane_bww_tile(PO, 1, a, js, ab, plc, p, g, npix, s->oh, s->ow);
                    else if (nb == PO)
                        plane_bww_tile(PO, 0, a, js, ab, plc, p, g, npix, s->oh, s->ow);
                    else
                        for (int j = 0; j < nb; j++)
                            plane_bww_tile(1, c == 0, a + j * js, js, ab + j * VL, plc, p,
                                           g + (size_t)j * npix, npix, s->oh, s->ow);
                }
            }
        }
        for (int gi = lo; gi < hi; gi++) {
            for (int oc = gi * PO; oc < imin(OC, gi * PO + PO); oc++) {
                for (int c = 0; c < C; c++)
                    for (int t = 0; t < 9; t++)
                        dw[((size_t)oc * C + c) * 9 + t] += vhsum(vload(acc + (((size_t)oc * C + c) * 9 + t) * VL));
                if (db) db[oc] += vhsum(vload(accb + (size_t)oc * VL));
            }
        }
    }
}
