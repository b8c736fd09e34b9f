/* The conv algorithms conv.c chooses among (winograd.c, conv_direct.c). Each
 * runs on the workspace layout its plan describes. */
#ifndef FM_KERNELS_FAST_CONV_H
#define FM_KERNELS_FAST_CONV_H

#include "kernels/fast/fast.h"

/* ---- Winograd F(4x4, 3x3) (winograd.c) ------------------------------------ */

/* A 3x3 stride-1 conv of an (n, c, h, w) input into (n, oc, oh, ow), input
 * pixel (y, x) at staging (y + pad_t, x + pad_l). Tiles of 4x4 outputs are
 * numbered across the whole batch; each thread takes a contiguous range. */
typedef struct fm__wino {
    int n, c, h, w, oc, oh, ow, pad_t, pad_l;
    int ty, tx, tpi;      /* tiles down, across, per image */
    int hs, ws, cs, ocs;  /* staging height and width; channels padded to VL */
    int tb;               /* tiles per block */
    size_t stg, v, m;     /* per-thread floats: staging, transformed input, products */
} fm__wino;

#define WGRAD_THREADS 8 /* at most this many private dU (up to 2.4 MB each) */

typedef struct fm__wgrad {
    fm__wino f;  /* the forward conv's tiling and input staging */
    int tb;      /* tiles per block */
    size_t du, dstg, dm, dbs; /* per-thread floats besides f.stg and f.v: dU (36, c, ocs),
                                 output-gradient staging, dM, bias-gradient sums */
} fm__wgrad;

#define fm__wino_plan FM__ISA(fm__wino_plan)
#define fm__wino_weights FM__ISA(fm__wino_weights)
#define fm__wino_run FM__ISA(fm__wino_run)
#define fm__wgrad_plan FM__ISA(fm__wgrad_plan)
#define fm__wgrad_thread_len FM__ISA(fm__wgrad_thread_len)
#define fm__wino_bww FM__ISA(fm__wino_bww)

fm__wino fm__wino_plan(int n, int c, int h, int w, int oc, int oh, int ow, int pad_t, int pad_l);
void fm__wino_weights(float *U, const float *w, int C, int OC, int flip);
void fm__wino_run(const fm__wino *p, float *out, const float *in, const float *U,
                  const float *bias, int relu, float *scratch);
fm__wgrad fm__wgrad_plan(const fm__conv_shape *s);
size_t fm__wgrad_thread_len(const fm__wgrad *g);
void fm__wino_bww(float *dw, float *db, const float *dout, const float *in,
                  const fm__conv_shape *s, float *ws);

/* ---- direct convs on staged pixels (conv_direct.c) ------------------------ */

typedef struct fm__direct {
    int hs, ws, cs, ocs;
    size_t stg, ostg; /* per-thread floats */
} fm__direct;

typedef struct fm__bww {
    int hs, ws, cs, ocs, rows;
    size_t acc, stg, dstg; /* shared floats */
} fm__bww;

#define fm__pack_weights FM__ISA(fm__pack_weights)
#define fm__direct_plan FM__ISA(fm__direct_plan)
#define fm__direct_run FM__ISA(fm__direct_run)
#define fm__bww_plan FM__ISA(fm__bww_plan)
#define fm__direct_bww FM__ISA(fm__direct_bww)
#define fm__bias_grad FM__ISA(fm__bias_grad)

void fm__pack_weights(float *Wt, const float *w, int C, int OC, int K, int flip);
fm__direct fm__direct_plan(const fm__conv_shape *s);
void fm__direct_run(const fm__conv_shape *s, float *out, const float *in, const float *Wt,
                    const float *bias, int relu, float *scratch);
fm__bww fm__bww_plan(const fm__conv_shape *s);
void fm__direct_bww(float *dw, const float *dout, const float *in, const fm__conv_shape *s,
                    float *work);
void fm__bias_grad(float *db, const float *dout, int n, int oc, int npix);

/* ---- convs with few channels: vectors along output pixels (conv_direct.c) */

typedef struct fm__plane {
    int hp, wp; /* padded channel height and width */
    size_t len; /* floats for the copies of one image */
} fm__plane;

#define fm__plane_plan FM__ISA(fm__plane_plan)
#define fm__plane_run FM__ISA(fm__plane_run)
#define fm__rotate_weights FM__ISA(fm__rotate_weights)
#define fm__plane_bww FM__ISA(fm__plane_bww)

fm__plane fm__plane_plan(const fm__conv_shape *s);
void fm__plane_run(const fm__conv_shape *s, float *out, const float *in, const float *w,
                   const float *bias, int relu, float *scratch);
void fm__rotate_weights(float *wt, const float *w, int C, int OC, int K);
void fm__plane_bww(float *dw, float *db, const float *dout, const float *in,
                   const fm__conv_shape *s, float *ws);

#endif
