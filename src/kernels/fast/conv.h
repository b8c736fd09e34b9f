/* The conv algorithms conv.c chooses among: Winograd (winograd.c), direct
 * and plane convs (conv_direct.c). Each has a plan function that lays out
 * its workspace once: every buffer's offset, in floats from the 64-byte
 * aligned start of the caller's work, and the total. conv.c's size query
 * reports the totals and the ops run on the offsets. Per-thread areas are
 * reserved for fm__kernel_threads() threads, the most an op runs with.
 *
 * The *_conv functions run conv s, forward or, with flip != 0, as backward
 * data of another conv: s is then the conv that backward data is (see
 * conv.c) and w that other conv's kernel, which they rotate themselves. */
#ifndef FM_KERNELS_FAST_CONV_H
#define FM_KERNELS_FAST_CONV_H

#include "kernels/fast/fast.h"

#define fm__plan_wino FM__ISA(fm__plan_wino)
#define fm__wino_conv FM__ISA(fm__wino_conv)
#define fm__plan_wino_bww FM__ISA(fm__plan_wino_bww)
#define fm__wino_bww FM__ISA(fm__wino_bww)
#define fm__plan_direct FM__ISA(fm__plan_direct)
#define fm__direct_conv FM__ISA(fm__direct_conv)
#define fm__plan_direct_bww FM__ISA(fm__plan_direct_bww)
#define fm__direct_bww FM__ISA(fm__direct_bww)
#define fm__plan_plane FM__ISA(fm__plan_plane)
#define fm__plane_conv FM__ISA(fm__plane_conv)
#define fm__plan_plane_bww FM__ISA(fm__plan_plane_bww)
#define fm__plane_bww FM__ISA(fm__plane_bww)

/* ---- Winograd F(4x4, 3x3), 3x3 stride-1 convs (winograd.c) ---------------- */

/* A 3x3 stride-1 conv of an (n, c, h, w) input into (n, oc, oh, ow), input
 * pixel (y, x) at staging (y + pad_t, x + pad_l). Tiles of 4x4 outputs are
 * numbered across the whole batch. */
typedef struct fm__wino_tiles {
    int n, c, h, w, oc, oh, ow, pad_t, pad_l;
    int ty, tx, tpi;     /* tiles down, across, per image */
    int hs, ws, cs, ocs; /* staging height and width; channels padded to VL */
} fm__wino_tiles;

typedef struct fm__wino_plan {
    fm__wino_tiles t;
    int tb;                       /* tiles per block */
    size_t u_at;                  /* U (36, c, ocs): the transformed weights */
    size_t thread_at, per_thread; /* thread i's area at thread_at + i*per_thread, with */
    size_t stg_at, v_at, m_at;    /* staging (hs, ws, cs), V (tb, 36, cs), M (tb, 36, ocs) */
    size_t total;
} fm__wino_plan;

/* Weight gradients: each thread (at most WGRAD_THREADS, winograd.c) sums
 * into its own area, at i*per_thread: dU (36, c, ocs), the input staging
 * (hs, ws, cs), V (tb, 36, cs), the output-gradient staging (4*ty, 4*tx,
 * ocs), dM (tb, 36, ocs) and the bias sums (ocs). */
typedef struct fm__wino_bww_plan {
    fm__wino_tiles t;
    int tb; /* tiles per block */
    size_t per_thread, du_at, stg_at, v_at, dstg_at, dm_at, dbs_at;
    size_t total;
} fm__wino_bww_plan;

fm__wino_plan fm__plan_wino(const fm__conv_shape *s);
/* out = bias (may be NULL) + conv(in, w), then ReLU when relu != 0. */
void fm__wino_conv(const fm__wino_plan *p, float *out, const float *in, const float *w, int flip,
                   const float *bias, int relu, float *ws);
fm__wino_bww_plan fm__plan_wino_bww(const fm__conv_shape *s);
/* dw += corr(in, dout); db (may be NULL) += sum dout. */
void fm__wino_bww(const fm__wino_bww_plan *p, float *dw, float *db, const float *dout,
                  const float *in, const fm__conv_shape *s, float *ws);

/* ---- direct convs on staged pixels (conv_direct.c) ------------------------ */

typedef struct fm__direct_plan {
    int hs, ws, cs, ocs;          /* staging height, width, channels; output channels (VL-padded) */
    size_t wt_at;                 /* the packed kernel (K*K*C, ocs) */
    size_t thread_at, per_thread; /* thread i's area at thread_at + i*per_thread, with */
    size_t stg_at, ostg_at;       /* staged input (hs, ws, cs) and output (oh*ow, ocs) */
    size_t total;
} fm__direct_plan;

typedef struct fm__direct_bww_plan {
    int hs, ws, cs, ocs, rows; /* staging as for the forward; rows = K*K*C */
    size_t acc_at;             /* the sums (rows, ocs) */
    size_t stg_at, dstg_at;    /* staged input (hs, ws, cs) and output gradient (oh*ow, ocs) */
    size_t total;
} fm__direct_bww_plan;

fm__direct_plan fm__plan_direct(const fm__conv_shape *s);
void fm__direct_conv(const fm__direct_plan *p, const fm__conv_shape *s, float *out,
                     const float *in, const float *w, int flip, const float *bias, int relu,
                     float *ws);
fm__direct_bww_plan fm__plan_direct_bww(const fm__conv_shape *s);
void fm__direct_bww(const fm__direct_bww_plan *p, float *dw, float *db, const float *dout,
                    const float *in, const fm__conv_shape *s, float *ws);

/* ---- convs with few channels: vectors along output pixels (conv_direct.c) */

/* Zero-padded copies of the channels of one image: (c, hp, wp), len floats. */
typedef struct fm__planes {
    int hp, wp;
    size_t len;
} fm__planes;

typedef struct fm__plane_plan {
    fm__planes g;
    size_t wt_at;     /* with flip, the kernel rotated into forward layout (C, OC, K, K) */
    size_t thread_at; /* thread i's planes at thread_at + i*g.len */
    size_t total;
} fm__plane_plan;

typedef struct fm__plane_bww_plan {
    fm__planes g;
    size_t acc_at;    /* vector partial sums (oc, c, 9, VL) */
    size_t accb_at;   /* and of the bias (oc, VL) */
    size_t thread_at; /* thread i's planes at thread_at + i*g.len */
    size_t total;
} fm__plane_bww_plan;

fm__plane_plan fm__plan_plane(const fm__conv_shape *s, int flip);
void fm__plane_conv(const fm__plane_plan *p, const fm__conv_shape *s, float *out, const float *in,
                    const float *w, int flip, const float *bias, int relu, float *ws);
fm__plane_bww_plan fm__plan_plane_bww(const fm__conv_shape *s);
void fm__plane_bww(const fm__plane_bww_plan *p, float *dw, float *db, const float *dout,
                   const float *in, const fm__conv_shape *s, float *ws);

#endif
