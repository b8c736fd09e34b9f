/* 3x3 stride-1 convs by Winograd F(4x4,3x3): 36 products of (tiles x C) by
 * (C x OC) per block of tiles instead of 144 per tile. Backward data is the
 * forward of the rotated, transposed kernel; weight gradients go through the
 * same transforms. */
#include <string.h>

#include "kernels/fast/conv.h"
#include "kernels/fast/tile.h"

/* The tiling and staging of conv s, for both plans. */
static fm__wino_tiles wino_tiles(const fm__conv_shape *s) {
    fm__wino_tiles t = {.n = s->n, .c = s->c, .h = s->h, .w = s->w, .oc = s->oc, .oh = s->oh,
                        .ow = s->ow, .pad_t = s->pad_t, .pad_l = s->pad_l};
    t.ty = (t.oh + 3) / 4;
    t.tx = (t.ow + 3) / 4;
    t.tpi = t.ty * t.tx;
    t.hs = 4 * t.ty + 2;
    t.ws = 4 * t.tx + 2;
    t.cs = (int)rup(t.c, VL);
    t.ocs = (int)rup(t.oc, VL);
    return t;
}

fm__wino_plan fm__plan_wino(const fm__conv_shape *s) {
    fm__wino_plan p = {.t = wino_tiles(s)};
    const fm__wino_tiles *t = &p.t;
    /* The 36 transformed blocks of input and products should stay in L2
     * (about 512 KB) alongside a streaming slice of the weights. */
    int tb = (int)((128 * 1024) / (36 * (size_t)(t->cs + t->ocs))) / MR * MR;
    p.tb = tb < MR ? MR : tb;
    p.u_at = 0;
    p.thread_at = p.u_at + rup((size_t)36 * t->c * t->ocs, 16);
    p.stg_at = 0;
    p.v_at = p.stg_at + rup((size_t)t->hs * t->ws * t->cs, 16);
    p.m_at = p.v_at + rup((size_t)36 * p.tb * t->cs, 16);
    p.per_thread = p.m_at + rup((size_t)36 * p.tb * t->ocs, 16);
    p.total = p.thread_at + (size_t)fm__kernel_threads() * p.per_thread;
    return p;
}

/* Forward pass of a 3x3 kernel g (rows 3 apart): t (6 rows, ts apart) = G g. */
FM__INLINE void wino_g(vf t[6], vf g0, vf g1, vf g2) {
    const vf q = vset1(0.25f), s6 = vset1(-1.0f / 6.0f), s24 = vset1(1.0f / 24.0f),
             s12 = vset1(1.0f / 12.0f), p6 = vset1(1.0f / 6.0f);
    t[0] = vmul(g0, q);
    t[1] = vmul(vadd(vadd(g0, g1), g2), s6);
    t[2] = vmul(vadd(vsub(g0, g1), g2), s6);
    vf a = vfma(g0, s24, vmul(g2, p6)), b = vmul(g1, s12);
    t[3] = vadd(a, b);
    t[4] = vsub(a, b);
    t[5] = g2;
}

/* U[xi][k][j] (36, kdim, js) = G g G^T, the transformed 3x3 kernel from input
 * channel k to output channel j (j >= jdim zero). Forward: k = c, j = oc,
 * g = w[oc][c]; backward data (flip): k = oc, j = c, g = w[oc][c] rotated 180
 * degrees. Vectors run along j; parallel over k. */
static void wino_weights(float *U, const float *w, int C, int OC, int flip) {
    const int kdim = flip ? OC : C, jdim = flip ? C : OC, js = (int)rup(jdim, VL);
    FM__OMP(omp parallel for schedule(static) num_threads(team()))
    for (int k = 0; k < kdim; k++) {
        for (int jb = 0; jb < js; jb += VL) {
            /* gather the VL kernels into vectors of each of their 9 taps */
            float gs[9][VL];
            for (int j = 0; j < VL; j++) {
                int jj = jb + j;
                for (int e = 0; e < 9; e++) {
                    if (jj >= jdim) {
                        gs[e][j] = 0.0f;
                        continue;
                    }
                    const float *g = flip ? w + ((size_t)k * C + jj) * 9 : w + ((size_t)jj * C + k) * 9;
                    gs[e][j] = g[flip ? 8 - e : e];
                }
            }
            vf t[3][6], u[6];
            for (int col = 0; col < 3; col++)
                wino_g(t[col], vload(gs[col]), vload(gs[3 + col]), vload(gs[6 + col]));
            for (int i = 0; i < 6; i++) {
                wino_g(u, t[0][i], t[1][i], t[2][i]);
                for (int j = 0; j < 6; j++) vstore(U + ((size_t)(i * 6 + j) * kdim + k) * js + jb, u[j]);
            }
        }
    }
}

/* r = B^T d for one column of six. */
FM__INLINE void wino_bt(vf r[6], vf d0, vf d1, vf d2, vf d3, vf d4, vf d5) {
    const vf four = vset1(4.0f), mfour = vset1(-4.0f), mfive = vset1(-5.0f), two = vset1(2.0f);
    r[0] = vfma(four, d0, vfma(mfive, d2, d4));
    r[1] = vfma(mfour, vadd(d1, d2), vadd(d3, d4));
    r[2] = vfma(four, vsub(d1, d2), vsub(d4, d3));
    r[3] = vfma(two, vsub(d3, d1), vsub(d4, d2));
    r[4] = vfma(two, vsub(d1, d3), vsub(d4, d2));
    r[5] = vfma(four, d1, vfma(mfive, d3, d5));
}

/* V[xi*vs] = (B^T d B)[xi] for the 6x6 patch d at src (rows rs, pixels ps apart). */
FM__INLINE void wino_in(float *V, ptrdiff_t vs, const float *src, ptrdiff_t rs, ptrdiff_t ps) {
    vf t[6][6], c[6];
    for (int s = 0; s < 6; s++) {
        const float *p = src + s * ps;
        wino_bt(c, vload(p), vload(p + rs), vload(p + 2 * rs), vload(p + 3 * rs), vload(p + 4 * rs),
                vload(p + 5 * rs));
        for (int i = 0; i < 6; i++) t[i][s] = c[i];
    }
    for (int i = 0; i < 6; i++) {
        wino_bt(c, t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5]);
        for (int j = 0; j < 6; j++) vstore(V + (i * 6 + j) * vs, c[j]);
    }
}

/* y = A^T m for one column of six. */
FM__INLINE void wino_at(vf y[4], vf m0, vf m1, vf m2, vf m3, vf m4, vf m5) {
    vf a = vadd(m1, m2), b = vsub(m1, m2), c = vadd(m3, m4), d = vsub(m3, m4);
    y[0] = vadd(vadd(m0, a), c);
    y[1] = vfma(vset1(2.0f), d, b);
    y[2] = vfma(vset1(4.0f), c, a);
    y[3] = vadd(vfma(vset1(8.0f), d, b), m5);
}

/* y[i*4+j] = (A^T M A)[i][j] from M[xi*ms]. */
FM__INLINE void wino_out(vf y[16], const float *M, ptrdiff_t ms) {
    vf t[4][6], c[4];
    for (int s = 0; s < 6; s++) {
        wino_at(c, vload(M + s * ms), vload(M + (6 + s) * ms), vload(M + (12 + s) * ms),
                vload(M + (18 + s) * ms), vload(M + (24 + s) * ms), vload(M + (30 + s) * ms));
        for (int i = 0; i < 4; i++) t[i][s] = c[i];
    }
    for (int i = 0; i < 4; i++) {
        wino_at(c, t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5]);
        for (int j = 0; j < 4; j++) y[i * 4 + j] = c[j];
    }
}

/* out (n, oc, oh, ow) = bias + conv(in, U), ReLU when relu != 0, with U at
 * ws + u_at. Blocks of tiles go to whichever thread is free (every tile's
 * result is the same whoever computes it), each staging just the input rows
 * its tiles need. */
static void wino_run(const fm__wino_plan *plan, float *out, const float *in, const float *bias,
                     int relu, float *ws) {
    const fm__wino_tiles *p = &plan->t;
    const float *U = ws + plan->u_at;
    const int total = p->n * p->tpi, blocks = (total + plan->tb - 1) / plan->tb;
    FM__OMP(omp parallel num_threads(team()))
    {
        float *area = ws + plan->thread_at + (size_t)thread_id() * plan->per_thread;
        float *stg = area + plan->stg_at, *V = area + plan->v_at, *M = area + plan->m_at;
        /* V (tb, 36, cs) and M (tb, 36, ocs): each tile's transform is contiguous */
        const ptrdiff_t vt = (ptrdiff_t)36 * p->cs, mt = (ptrdiff_t)36 * p->ocs;
        int sn = -1, sy0 = 0, sy1 = 0; /* staged: rows [sy0, sy1) of image sn */
        FM__OMP(omp for schedule(dynamic, 1))
        for (int bk = 0; bk < blocks; bk++) {
            const int t0 = bk * plan->tb, nb = imin(plan->tb, total - t0);
            /* transform the block's input tiles, staging rows as they are reached */
            for (int i = 0; i < nb; i++) {
                int t = t0 + i, n = t / p->tpi, ty = t % p->tpi / p->tx, tx = t % p->tx;
                if (n != sn || 4 * ty < sy0 || 4 * ty > sy1) sn = n, sy0 = sy1 = 4 * ty;
                if (sy1 < 4 * ty + 6) {
                    fm__stage_rows(stg, in + (size_t)n * p->c * p->h * p->w, p->c, p->h, p->w,
                                   p->ws, p->cs, p->pad_t, p->pad_l, sy1, 4 * ty + 6);
                    sy1 = 4 * ty + 6;
                }
                const float *src = stg + ((size_t)4 * ty * p->ws + 4 * tx) * p->cs;
                for (int cb = 0; cb < p->cs; cb += VL)
                    wino_in(V + i * vt + cb, p->cs, src + cb, (ptrdiff_t)p->ws * p->cs, p->cs);
            }
            /* 36 products (nb, c) . (c, ocs) */
            for (int xi = 0; xi < 36; xi++) {
                const float *Vx = V + xi * p->cs, *Ux = U + (size_t)xi * p->c * p->ocs;
                float *Mx = M + xi * p->ocs;
                for (int ob = 0; ob < p->ocs / VL; ob += NV) {
                    int nv = imin(NV, p->ocs / VL - ob);
                    for (int i = 0; i < nb; i += MR) {
                        const float *a[MR];
                        for (int r = 0; r < MR; r++) a[r] = Vx + (i + r) * vt;
                        fm__gemm_tile(imin(MR, nb - i), nv, 0, vm_first(VL), a, 1, p->c,
                                      Ux + ob * VL, p->ocs, Mx + i * mt + ob * VL, mt, 0);
                    }
                }
            }
            /* back to pixels, cropped at the image edges */
            for (int i = 0; i < nb; i++) {
                int t = t0 + i, n = t / p->tpi, ty = t % p->tpi / p->tx, tx = t % p->tx;
                float *o = out + (size_t)n * p->oc * p->oh * p->ow + (size_t)4 * ty * p->ow + 4 * tx;
                for (int ob = 0; ob < p->oc; ob += VL) {
                    vf y[16];
                    wino_out(y, M + i * mt + ob, p->ocs);
                    vf bv = bias ? vloadm(bias + ob, vm_first(p->oc - ob)) : vzero();
                    for (int j = 0; j < 16; j++) {
                        y[j] = vadd(y[j], bv);
                        if (relu) y[j] = vmax(y[j], vzero());
                    }
                    store_tile4x4(o + (size_t)ob * p->oh * p->ow, (ptrdiff_t)p->oh * p->ow, p->ow, y,
                                  imin(VL, p->oc - ob), imin(4, p->oh - 4 * ty), imin(4, p->ow - 4 * tx));
                }
            }
        }
    }
}

void fm__wino_conv(const fm__wino_plan *p, float *out, const float *in, const float *w, int flip,
                   const float *bias, int relu, float *ws) {
    /* with flip, w is (c, oc, 3, 3): the kernel of the conv whose backward data this is */
    wino_weights(ws + p->u_at, w, flip ? p->t.oc : p->t.c, flip ? p->t.c : p->t.oc, flip);
    wino_run(p, out, in, bias, relu, ws);
}

/* m = A y for one column of four (A is A^T transposed). */
FM__INLINE void wino_a(vf m[6], vf y0, vf y1, vf y2, vf y3) {
    vf e = vadd(y0, y2), o = vadd(y1, y3);
    vf e4 = vfma(vset1(4.0f), y2, y0), o8 = vfma(vset1(8.0f), y3, vadd(y1, y1));
    m[0] = y0;
    m[1] = vadd(e, o);
    m[2] = vsub(e, o);
    m[3] = vadd(e4, o8);
    m[4] = vsub(e4, o8);
    m[5] = y3;
}

/* dM[xi*ms] = (A dY A^T)[xi] for the 4x4 output-gradient patch at src. */
FM__INLINE void wino_dout(float *dM, ptrdiff_t ms, const float *src, ptrdiff_t rs, ptrdiff_t ps) {
    vf t[6][4], c[6];
    for (int s = 0; s < 4; s++) {
        const float *p = src + s * ps;
        wino_a(c, vload(p), vload(p + rs), vload(p + 2 * rs), vload(p + 3 * rs));
        for (int i = 0; i < 6; i++) t[i][s] = c[i];
    }
    for (int i = 0; i < 6; i++) {
        wino_a(c, t[i][0], t[i][1], t[i][2], t[i][3]);
        for (int j = 0; j < 6; j++) vstore(dM + (i * 6 + j) * ms, c[j]);
    }
}

/* g = G^T u for one column of six. */
FM__INLINE void wino_gt(vf g[3], vf u0, vf u1, vf u2, vf u3, vf u4, vf u5) {
    const vf s6 = vset1(1.0f / 6.0f);
    vf s12 = vadd(u1, u2), d12 = vsub(u1, u2), s34 = vadd(u3, u4), d34 = vsub(u3, u4);
    g[0] = vfma(u0, vset1(0.25f), vfma(s34, vset1(1.0f / 24.0f), vmul(s12, vset1(-1.0f / 6.0f))));
    g[1] = vfma(d34, vset1(1.0f / 12.0f), vmul(d12, vset1(-1.0f / 6.0f)));
    g[2] = vadd(vmul(vsub(s34, s12), s6), u5);
}

/* Weight gradients through the same transforms: with M = U . V per tile and
 * Y = A^T M A, dU = sum over tiles of (A dY A^T) . V and dw = G^T dU G.
 * Threads take fixed contiguous ranges of tiles and sum into their own dU,
 * then the dU are added in thread order: a given thread count always gives
 * the same sums, and no transform is done twice. */
#define WGRAD_THREADS 8 /* at most this many private dU (up to 2.4 MB each) */

fm__wino_bww_plan fm__plan_wino_bww(const fm__conv_shape *s) {
    fm__wino_bww_plan g = {.t = wino_tiles(s)};
    const fm__wino_tiles *t = &g.t;
    /* Long blocks amortise loading and storing the dU tiles (which do not
     * stay in L2) over more tiles; 128 measured best for the network's convs. */
    g.tb = imin(128, s->n * t->tpi);
    g.du_at = 0;
    g.stg_at = g.du_at + rup((size_t)36 * s->c * t->ocs, 16);
    g.v_at = g.stg_at + rup((size_t)t->hs * t->ws * t->cs, 16);
    g.dstg_at = g.v_at + rup((size_t)36 * g.tb * t->cs, 16);
    g.dm_at = g.dstg_at + rup((size_t)16 * t->ty * t->tx * t->ocs, 16);
    g.dbs_at = g.dm_at + rup((size_t)36 * g.tb * t->ocs, 16);
    g.per_thread = g.dbs_at + rup((size_t)t->ocs, 16);
    g.total = (size_t)imin(fm__kernel_threads(), WGRAD_THREADS) * g.per_thread;
    return g;
}

void fm__wino_bww(const fm__wino_bww_plan *g, float *dw, float *db, const float *dout,
                  const float *in, const fm__conv_shape *s, float *ws) {
    const fm__wino_tiles *f = &g->t;
    const int C = s->c, OC = s->oc, total = s->n * f->tpi;
    const size_t per = g->per_thread, du_len = (size_t)36 * C * f->ocs;
    FM__OMP(omp parallel num_threads(imin(team(), WGRAD_THREADS)))
    {
        const int tid = thread_id(), nth = thread_count();
        float *area = ws + tid * per, *dU = area + g->du_at, *stg = area + g->stg_at;
        float *V = area + g->v_at, *dstg = area + g->dstg_at, *dM = area + g->dm_at;
        float *dbs = area + g->dbs_at;
        const ptrdiff_t vt = (ptrdiff_t)36 * f->cs, mt = (ptrdiff_t)36 * f->ocs;
        memset(dU, 0, sizeof(float) * du_len);
        memset(dbs, 0, sizeof(float) * f->ocs);
        int lo, hi, staged = -1;
        split(total, nth, tid, &lo, &hi);
        for (int t0 = lo; t0 < hi; t0 += g->tb) {
            const int nb = imin(g->tb, hi - t0);
            for (int i = 0; i < nb; i++) {
                int t = t0 + i, n = t / f->tpi, ty = t % f->tpi / f->tx, tx = t % f->tx;
                if (n != staged) {
                    fm__stage_rows(stg, in + (size_t)n * C * s->h * s->w, C, s->h, s->w, f->ws,
                                   f->cs, s->pad_t, s->pad_l, 0, f->hs);
                    fm__stage_rows(dstg, dout + (size_t)n * OC * s->oh * s->ow, OC, s->oh, s->ow,
                                   4 * f->tx, f->ocs, 0, 0, 0, 4 * f->ty);
                    staged = n;
                }
                const float *src = stg + ((size_t)4 * ty * f->ws + 4 * tx) * f->cs;
                for (int cb = 0; cb < f->cs; cb += VL)
                    wino_in(V + i * vt + cb, f->cs, src + cb, (ptrdiff_t)f->ws * f->cs, f->cs);
                const float *dsrc = dstg + ((size_t)4 * ty * 4 * f->tx + 4 * tx) * f->ocs;
                for (int ob = 0; ob < f->ocs; ob += VL) {
                    /* the bias gradient from the same output-gradient patch */
                    for (int p = 0; p < 16; p++)
                        vstore(dbs + ob, vadd(vload(dbs + ob),
                                              vload(dsrc + ((size_t)(p / 4) * 4 * f->tx + p % 4) * f->ocs + ob)));
                    wino_dout(dM + i * mt + ob, f->ocs, dsrc + ob, (ptrdiff_t)4 * f->tx * f->ocs,
                              f->ocs);
                }
            }
            /* dU[xi] (c, ocs) += V[xi]^T (c, nb) . dM[xi] (nb, ocs) */
            for (int xi = 0; xi < 36; xi++) {
                for (int ob = 0; ob < f->ocs / VL; ob += NV) {
                    const int nv = imin(NV, f->ocs / VL - ob);
                    for (int c0 = 0; c0 < C; c0 += MR) {
                        const float *a[MR];
                        for (int r = 0; r < MR; r++) a[r] = V + xi * f->cs + imin(c0 + r, C - 1);
                        fm__gemm_tile(imin(MR, C - c0), nv, 0, vm_first(VL), a, vt, nb,
                                      dM + xi * f->ocs + ob * VL, mt,
                                      dU + ((size_t)xi * C + c0) * f->ocs + ob * VL, f->ocs, 1);
                    }
                }
            }
        }
        FM__OMP(omp barrier)
        /* thread 0's sums += the others', in thread order, each thread a slice */
        float *dU0 = ws + g->du_at;
        int elo, ehi;
        split((int)(du_len / VL), nth, tid, &elo, &ehi);
        for (int t = 1; t < nth; t++) {
            const float *o = dU0 + t * per;
            for (size_t e = (size_t)elo * VL; e < (size_t)ehi * VL; e += VL)
                vstore(dU0 + e, vadd(vload(dU0 + e), vload(o + e)));
        }
        if (tid == 0 && db)
            for (int o = 0; o < OC; o++) {
                float sum = dbs[o];
                for (int t = 1; t < nth; t++) sum += ws[t * per + g->dbs_at + o];
                db[o] += sum;
            }
        FM__OMP(omp barrier)
        /* dw[oc][c] += G^T dU[.][c][oc] G, threads splitting the channels */
        int clo, chi;
        split(C, nth, tid, &clo, &chi);
        for (int c = clo; c < chi; c++) {
            for (int ob = 0; ob < OC; ob += VL) {
                vf t[3][6], gg[3];
                float tmp[9][VL];
                const float *u = dU0 + (size_t)c * f->ocs + ob;
                const ptrdiff_t us = (ptrdiff_t)C * f->ocs;
                for (int j = 0; j < 6; j++) {
                    wino_gt(gg, vload(u + j * us), vload(u + (6 + j) * us), vload(u + (12 + j) * us),
                            vload(u + (18 + j) * us), vload(u + (24 + j) * us), vload(u + (30 + j) * us));
                    for (int a = 0; a < 3; a++) t[a][j] = gg[a];
                }
                for (int a = 0; a < 3; a++) {
                    wino_gt(gg, t[a][0], t[a][1], t[a][2], t[a][3], t[a][4], t[a][5]);
                    for (int b = 0; b < 3; b++) vstore(tmp[a * 3 + b], gg[b]);
                }
                for (int j = 0; j < imin(VL, OC - ob); j++)
                    for (int e = 0; e < 9; e++) dw[((size_t)(ob + j) * C + c) * 9 + e] += tmp[e][j];
            }
        }
    }
}
