/* The memory-bound ops: ReLU, dropout, batch norm and 2x2 max and average
 * pooling, in vectors along rows (softmax cross-entropy, on 10 classes, is the
 * reference's). */
#include <math.h>
#include <string.h>

#include "kernels/fast/fast.h"

/* Memory-bound loops split into large contiguous chunks per thread. */
#define EW_CHUNK 16384

void fm__fast_relu_forward(float *out, const float *in, size_t len) {
    const long chunks = (long)((len + EW_CHUNK - 1) / EW_CHUNK);
    FM__OMP(omp parallel for schedule(static) num_threads(team()) if (chunks > 1))
    for (long ch = 0; ch < chunks; ch++) {
        size_t i = (size_t)ch * EW_CHUNK, end = i + EW_CHUNK < len ? i + EW_CHUNK : len;
        /* max(x, +0) gives +0 for -0 and NaN, as x > 0 ? x : 0 does */
        for (; i + VL <= end; i += VL) vstore(out + i, vmax(vload(in + i), vzero()));
        vmask m = vm_first((int)(end - i));
        vstorem(out + i, vmax(vloadm(in + i, m), vzero()), m);
    }
}

void fm__fast_relu_backward(float *din, const float *dout, const float *out, size_t len) {
    const long chunks = (long)((len + EW_CHUNK - 1) / EW_CHUNK);
    FM__OMP(omp parallel for schedule(static) num_threads(team()) if (chunks > 1))
    for (long ch = 0; ch < chunks; ch++) {
        size_t i = (size_t)ch * EW_CHUNK, end = i + EW_CHUNK < len ? i + EW_CHUNK : len;
        for (; i + VL <= end; i += VL) vstore(din + i, vpos_select(vload(out + i), vload(dout + i)));
        vmask m = vm_first((int)(end - i));
        vstorem(din + i, vpos_select(vloadm(out + i, m), vloadm(dout + i, m)), m);
    }
}

/* 2x2 average pooling, VL outputs at a time, summed in the reference's
 * order from +0 (so -0 sums agree too) and scaled by 0.25, which equals the
 * reference's division by 4 exactly. Other windows take the reference. */
void fm__fast_avgpool_forward(float *out, const float *in, int n, int c, int h, int w, int ph,
                              int pw) {
    if (ph != 2 || pw != 2) {
        fm__ref_avgpool_forward(out, in, n, c, h, w, ph, pw);
        return;
    }
    const int oh = h / 2, ow = w / 2;
    FM__OMP(omp parallel for schedule(static) num_threads(team()))
    for (long pl = 0; pl < (long)n * c; pl++) {
        const float *x = in + (size_t)pl * h * w;
        float *o = out + (size_t)pl * oh * ow;
        for (int y = 0; y < oh; y++) {
            const float *r0 = x + (size_t)2 * y * w, *r1 = r0 + w;
            for (int xb = 0; xb < ow; xb += VL) {
                const int nx = imin(VL, ow - xb);
                const vmask m0 = vm_first(2 * nx), m1 = vm_first(2 * nx - VL);
                const float *p0 = r0 + 2 * xb, *p1 = r1 + 2 * xb;
                vf a0 = vloadm(p0, m0), a1 = vloadm(p0 + VL, m1);
                vf b0 = vloadm(p1, m0), b1 = vloadm(p1 + VL, m1);
                vf s = vadd(vzero(), veven(a0, a1));
                s = vadd(s, vodd(a0, a1));
                s = vadd(s, veven(b0, b1));
                s = vadd(s, vodd(b0, b1));
                vstorem(o + (size_t)y * ow + xb, vmul(s, vset1(0.25f)), vm_first(nx));
            }
        }
    }
}

void fm__fast_avgpool_backward(float *din, const float *dout, int n, int c, int h, int w, int ph,
                               int pw) {
    if (ph != 2 || pw != 2) {
        fm__ref_avgpool_backward(din, dout, n, c, h, w, ph, pw);
        return;
    }
    const int oh = h / 2, ow = w / 2;
    FM__OMP(omp parallel for schedule(static) num_threads(team()))
    for (long pl = 0; pl < (long)n * c; pl++) {
        float *d = din + (size_t)pl * h * w;
        const float *g = dout + (size_t)pl * oh * ow;
        for (int y = 0; y < oh; y++) {
            float *r0 = d + (size_t)2 * y * w, *r1 = r0 + w;
            for (int xb = 0; xb < ow; xb += VL) {
                const int nx = imin(VL, ow - xb);
                const vmask m0 = vm_first(2 * nx), m1 = vm_first(2 * nx - VL);
                vf share = vmul(vloadm(g + (size_t)y * ow + xb, vm_first(nx)), vset1(0.25f));
                vf lo = vzip_lo(share, share), hi = vzip_hi(share, share);
                vstorem(r0 + 2 * xb, lo, m0);
                vstorem(r0 + 2 * xb + VL, hi, m1);
                vstorem(r1 + 2 * xb, lo, m0);
                vstorem(r1 + 2 * xb + VL, hi, m1);
            }
            /* an odd last column is outside every window */
            if (w % 2) r0[w - 1] = r1[w - 1] = 0.0f;
        }
        if (h % 2) memset(d + (size_t)(h - 1) * w, 0, sizeof(float) * w);
    }
}

void fm__fast_dropout_apply(float *out, const float *in, const uint8_t *mask, float scale,
                            size_t len) {
    const long chunks = (long)((len + EW_CHUNK - 1) / EW_CHUNK);
    const vf sv = vset1(scale);
    FM__OMP(omp parallel for schedule(static) num_threads(team()) if (chunks > 1))
    for (long ch = 0; ch < chunks; ch++) {
        size_t i = (size_t)ch * EW_CHUNK, end = i + EW_CHUNK < len ? i + EW_CHUNK : len;
        for (; i + VL <= end; i += VL) vstore(out + i, vkeep_u8(mask + i, vmul(vload(in + i), sv)));
        for (; i < end; i++) out[i] = mask[i] ? in[i] * scale : 0.0f;
    }
}

/* Per-row sums for batch norm: float vectors within a row of hw, double
 * across rows, so channel statistics over n*hw values stay accurate. */
FM__INLINE double row_sum(const float *x, int hw) {
    vf v = vzero();
    int j = 0;
    for (; j + VL <= hw; j += VL) v = vadd(v, vload(x + j));
    return vhsum(vadd(v, vloadm(x + j, vm_first(hw - j))));
}

FM__INLINE double row_sqdev(const float *x, int hw, vf mu) {
    vf v = vzero(), d;
    int j = 0;
    for (; j + VL <= hw; j += VL) {
        d = vsub(vload(x + j), mu);
        v = vfma(d, d, v);
    }
    vmask m = vm_first(hw - j);
    d = vkeep(vsub(vloadm(x + j, m), mu), m);
    return vhsum(vfma(d, d, v));
}

/* y = (x - mu) * a + b over a row */
FM__INLINE void row_affine(float *y, const float *x, int hw, vf mu, vf a, vf b) {
    int j = 0;
    for (; j + VL <= hw; j += VL) vstore(y + j, vfma(vsub(vload(x + j), mu), a, b));
    vmask m = vm_first(hw - j);
    vstorem(y + j, vfma(vsub(vloadm(x + j, m), mu), a, b), m);
}

/* Channels are independent: parallel over them, each visiting its n rows of
 * hw (the second and third passes find them in L2). Rows shorter than a
 * vector (flat inputs) take the reference. */
void fm__fast_batchnorm_forward_train(float *out, float *mean, float *var, float *invstd,
                                      const float *in, const float *gamma, const float *beta,
                                      int n, int c, int hw, float eps) {
    if (hw < VL) {
        fm__ref_batchnorm_forward_train(out, mean, var, invstd, in, gamma, beta, n, c, hw, eps);
        return;
    }
    const double m = (double)n * hw;
    FM__OMP(omp parallel for schedule(static) num_threads(team()))
    for (int ch = 0; ch < c; ch++) {
        double sum = 0.0, sq = 0.0;
        for (int i = 0; i < n; i++) {
            if (i + 1 < n) prefetch_row(in + ((size_t)(i + 1) * c + ch) * hw, hw);
            sum += row_sum(in + ((size_t)i * c + ch) * hw, hw);
        }
        const float mu = (float)(sum / m);
        for (int i = 0; i < n; i++) sq += row_sqdev(in + ((size_t)i * c + ch) * hw, hw, vset1(mu));
        const double v = sq / m, is = 1.0 / sqrt(v + eps);
        mean[ch] = mu;
        var[ch] = (float)v;
        invstd[ch] = (float)is;
        const vf a = vset1((float)(gamma[ch] * is)), b = vset1(beta[ch]);
        for (int i = 0; i < n; i++) {
            if (i + 1 < n) prefetch_row(out + ((size_t)(i + 1) * c + ch) * hw, hw);
            row_affine(out + ((size_t)i * c + ch) * hw, in + ((size_t)i * c + ch) * hw, hw,
                       vset1(mu), a, b);
        }
    }
}

void fm__fast_batchnorm_forward_infer(float *out, const float *in, const float *gamma,
                                      const float *beta, const float *mmean, const float *mvar,
                                      int n, int c, int hw, float eps) {
    if (hw < VL) {
        fm__ref_batchnorm_forward_infer(out, in, gamma, beta, mmean, mvar, n, c, hw, eps);
        return;
    }
    FM__OMP(omp parallel for collapse(2) schedule(static) num_threads(team()))
    for (int i = 0; i < n; i++) {
        for (int ch = 0; ch < c; ch++) {
            const double is = 1.0 / sqrt((double)mvar[ch] + eps);
            if (ch + 1 < c) prefetch_row(in + ((size_t)i * c + ch + 1) * hw, hw);
            row_affine(out + ((size_t)i * c + ch) * hw, in + ((size_t)i * c + ch) * hw, hw,
                       vset1(mmean[ch]), vset1((float)(gamma[ch] * is)), vset1(beta[ch]));
        }
    }
}

void fm__fast_batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                                 const float *in, const float *mean, const float *invstd,
                                 const float *gamma, int n, int c, int hw) {
    if (hw < VL) {
        fm__ref_batchnorm_backward(din, dgamma, dbeta, dout, in, mean, invstd, gamma, n, c, hw);
        return;
    }
    const double m = (double)n * hw;
    FM__OMP(omp parallel for schedule(static) num_threads(team()))
    for (int ch = 0; ch < c; ch++) {
        const vf mu = vset1(mean[ch]);
        double sdy = 0.0, sdyd = 0.0; /* sum dy, sum dy*(x - mean) */
        for (int i = 0; i < n; i++) {
            const float *x = in + ((size_t)i * c + ch) * hw, *dy = dout + ((size_t)i * c + ch) * hw;
            if (i + 1 < n) {
                prefetch_row(x + (size_t)c * hw, hw);
                prefetch_row(dy + (size_t)c * hw, hw);
            }
            vf s1 = vzero(), s2 = vzero();
            int j = 0;
            for (; j + VL <= hw; j += VL) {
                vf g = vload(dy + j);
                s1 = vadd(s1, g);
                s2 = vfma(g, vsub(vload(x + j), mu), s2);
            }
            vmask mk = vm_first(hw - j);
            vf g = vloadm(dy + j, mk);
            s1 = vadd(s1, g);
            s2 = vfma(g, vsub(vloadm(x + j, mk), mu), s2);
            sdy += vhsum(s1);
            sdyd += vhsum(s2);
        }
        /* dx = gamma*invstd/M * (M*dy - sum dy - xhat * sum dy*xhat)
         *    = A*dy + B*(x - mean) + D */
        const double is = invstd[ch], sdyx = sdyd * is, k = gamma[ch] * is / m;
        dbeta[ch] += (float)sdy;
        dgamma[ch] += (float)sdyx;
        const vf A = vset1((float)(gamma[ch] * is)), B = vset1((float)(-k * is * sdyx)),
                 D = vset1((float)(-k * sdy));
        for (int i = 0; i < n; i++) {
            const float *x = in + ((size_t)i * c + ch) * hw, *dy = dout + ((size_t)i * c + ch) * hw;
            float *dx = din + ((size_t)i * c + ch) * hw;
            if (i + 1 < n) prefetch_row(dx + (size_t)c * hw, hw);
            int j = 0;
            for (; j + VL <= hw; j += VL)
                vstore(dx + j, vfma(A, vload(dy + j), vfma(B, vsub(vload(x + j), mu), D)));
            vmask mk = vm_first(hw - j);
            vstorem(dx + j, vfma(A, vloadm(dy + j, mk), vfma(B, vsub(vloadm(x + j, mk), mu), D)), mk);
        }
    }
}

/* 2x2 pooling, VL outputs at a time: the even and odd columns of two input
 * rows are the four window positions, compared in the reference's order with
 * strict > so the first maximum wins. Other pool sizes take the reference. */
void fm__fast_maxpool_forward(float *out, uint8_t *argmax, const float *in, int n, int c, int h,
                              int w, int pool) {
    if (pool != 2) {
        fm__ref_maxpool_forward(out, argmax, in, n, c, h, w, pool);
        return;
    }
    const int oh = h / 2, ow = w / 2;
    FM__OMP(omp parallel for schedule(static) num_threads(team()))
    for (long pl = 0; pl < (long)n * c; pl++) {
        const float *x = in + (size_t)pl * h * w;
        float *o = out + (size_t)pl * oh * ow;
        uint8_t *am = argmax + (size_t)pl * oh * ow;
        for (int y = 0; y < oh; y++) {
            const float *r0 = x + (size_t)2 * y * w, *r1 = r0 + w;
            /* the masked loads below do not start the hardware prefetcher */
            for (int i = 0; i < 2 * w; i += 16) __builtin_prefetch(r0 + 8 * w + i, 0, 3);
            for (int xb = 0; xb < ow; xb += VL) {
                const int nx = imin(VL, ow - xb);
                const vmask m0 = vm_first(2 * nx), m1 = vm_first(2 * nx - VL);
                const float *p0 = r0 + 2 * xb, *p1 = r1 + 2 * xb;
                vf a0 = vloadm(p0, m0), a1 = vloadm(p0 + VL, m1);
                vf b0 = vloadm(p1, m0), b1 = vloadm(p1 + VL, m1);
                vf best = veven(a0, a1), idx = vzero(), v;
                v = vodd(a0, a1);
                idx = vsel_gt(v, best, vset1(1.0f), idx);
                best = vsel_gt(v, best, v, best);
                v = veven(b0, b1);
                idx = vsel_gt(v, best, vset1(2.0f), idx);
                best = vsel_gt(v, best, v, best);
                v = vodd(b0, b1);
                idx = vsel_gt(v, best, vset1(3.0f), idx);
                best = vsel_gt(v, best, v, best);
                vstorem(o + (size_t)y * ow + xb, best, vm_first(nx));
                vstore_u8(am + (size_t)y * ow + xb, idx, nx);
            }
        }
    }
}

void fm__fast_maxpool_backward(float *din, const float *dout, const uint8_t *argmax, int n,
                               int c, int h, int w, int pool) {
    if (pool != 2) {
        fm__ref_maxpool_backward(din, dout, argmax, n, c, h, w, pool);
        return;
    }
    const int oh = h / 2, ow = w / 2;
    FM__OMP(omp parallel for schedule(static) num_threads(team()))
    for (long pl = 0; pl < (long)n * c; pl++) {
        float *d = din + (size_t)pl * h * w;
        const float *g = dout + (size_t)pl * oh * ow;
        const uint8_t *am = argmax + (size_t)pl * oh * ow;
        for (int y = 0; y < oh; y++) {
            float *r0 = d + (size_t)2 * y * w, *r1 = r0 + w;
            /* masked loads and stores do not start the hardware prefetcher */
            prefetch_row(r0 + 8 * w, 2 * w);
            prefetch_row(g + (size_t)(y + 4) * ow, ow);
            for (int xb = 0; xb < ow; xb += VL) {
                const int nx = imin(VL, ow - xb);
                const vmask m0 = vm_first(2 * nx), m1 = vm_first(2 * nx - VL);
                vf gv = vloadm(g + (size_t)y * ow + xb, vm_first(nx));
                vf idx = vload_u8(am + (size_t)y * ow + xb, nx);
                vf v0 = vsel_eq0(idx, vzero(), gv), v1 = vsel_eq0(idx, vset1(1.0f), gv);
                vf v2 = vsel_eq0(idx, vset1(2.0f), gv), v3 = vsel_eq0(idx, vset1(3.0f), gv);
                vstorem(r0 + 2 * xb, vzip_lo(v0, v1), m0);
                vstorem(r0 + 2 * xb + VL, vzip_hi(v0, v1), m1);
                vstorem(r1 + 2 * xb, vzip_lo(v2, v3), m0);
                vstorem(r1 + 2 * xb + VL, vzip_hi(v2, v3), m1);
            }
            /* an odd last column is outside every window */
            if (w % 2) r0[w - 1] = r1[w - 1] = 0.0f;
        }
        if (h % 2) memset(d + (size_t)(h - 1) * w, 0, sizeof(float) * w);
    }
}

