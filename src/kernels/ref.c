/* The reference kernels: plain loops, written to be obviously correct rather
 * than fast. Every reduction accumulates in double so the reference is also
 * the accuracy yardstick the fast tables are tested against. Loops are
 * parallelised only over independent outputs, so results do not depend on
 * the thread count. */
#include <math.h>
#include <string.h>

#include "kernels/internal.h"

size_t fm__ref_conv2d_workspace(const fm__conv_shape *s) {
    (void)s;
    return 0;
}

void fm__ref_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                            const fm__conv_shape *s, int relu, float *work) {
    (void)work;
    const int C = s->c, H = s->h, W = s->w, OC = s->oc, OH = s->oh, OW = s->ow, K = s->k;
    FM__OMP(omp parallel for collapse(2) schedule(static))
    for (int n = 0; n < s->n; n++) {
        for (int oc = 0; oc < OC; oc++) {
            float *o = out + ((size_t)n * OC + oc) * OH * OW;
            for (int oh = 0; oh < OH; oh++) {
                for (int ow = 0; ow < OW; ow++) {
                    double acc = b ? b[oc] : 0.0;
                    for (int c = 0; c < C; c++) {
                        const float *ip = in + ((size_t)n * C + c) * H * W;
                        const float *wp = w + ((size_t)oc * C + c) * K * K;
                        for (int kh = 0; kh < K; kh++) {
                            int ih = oh * s->stride - s->pad_t + kh;
                            if (ih < 0 || ih >= H) continue;
                            for (int kw = 0; kw < K; kw++) {
                                int iw = ow * s->stride - s->pad_l + kw;
                                if (iw < 0 || iw >= W) continue;
                                acc += (double)ip[ih * W + iw] * wp[kh * K + kw];
                            }
                        }
                    }
                    float v = (float)acc;
                    o[oh * OW + ow] = relu && v < 0.0f ? 0.0f : v;
                }
            }
        }
    }
}

void fm__ref_conv2d_backward_data(float *din, const float *dout, const float *w,
                                  const fm__conv_shape *s, float *work) {
    (void)work;
    const int C = s->c, H = s->h, W = s->w, OC = s->oc, OH = s->oh, OW = s->ow, K = s->k;
    /* Gather form: each input pixel sums the outputs whose window covers it,
     * i.e. oh*stride - pad_t + kh == ih. */
    FM__OMP(omp parallel for collapse(2) schedule(static))
    for (int n = 0; n < s->n; n++) {
        for (int c = 0; c < C; c++) {
            float *d = din + ((size_t)n * C + c) * H * W;
            for (int ih = 0; ih < H; ih++) {
                for (int iw = 0; iw < W; iw++) {
                    double acc = 0.0;
                    for (int oc = 0; oc < OC; oc++) {
                        const float *dp = dout + ((size_t)n * OC + oc) * OH * OW;
                        const float *wp = w + ((size_t)oc * C + c) * K * K;
                        for (int kh = 0; kh < K; kh++) {
                            int t = ih + s->pad_t - kh;
                            if (t < 0 || t % s->stride) continue;
                            int oh = t / s->stride;
                            if (oh >= OH) continue;
                            for (int kw = 0; kw < K; kw++) {
                                int u = iw + s->pad_l - kw;
                                if (u < 0 || u % s->stride) continue;
                                int ow = u / s->stride;
                                if (ow >= OW) continue;
                                acc += (double)dp[oh * OW + ow] * wp[kh * K + kw];
                            }
                        }
                    }
                    d[ih * W + iw] = (float)acc;
                }
            }
        }
    }
}

void fm__ref_conv2d_backward_weights(float *dw, float *db, const float *dout, const float *in,
                                     const fm__conv_shape *s, float *work) {
    (void)work;
    const int C = s->c, H = s->h, W = s->w, OC = s->oc, OH = s->oh, OW = s->ow, K = s->k;
    FM__OMP(omp parallel for schedule(static))
    for (int oc = 0; oc < OC; oc++) {
        if (db) {
            double acc = 0.0;
            for (int n = 0; n < s->n; n++) {
                const float *dp = dout + ((size_t)n * OC + oc) * OH * OW;
                for (int i = 0; i < OH * OW; i++) acc += dp[i];
            }
            db[oc] += (float)acc;
        }
        for (int c = 0; c < C; c++) {
            for (int kh = 0; kh < K; kh++) {
                for (int kw = 0; kw < K; kw++) {
                    double acc = 0.0;
                    for (int n = 0; n < s->n; n++) {
                        const float *ip = in + ((size_t)n * C + c) * H * W;
                        const float *dp = dout + ((size_t)n * OC + oc) * OH * OW;
                        for (int oh = 0; oh < OH; oh++) {
                            int ih = oh * s->stride - s->pad_t + kh;
                            if (ih < 0 || ih >= H) continue;
                            for (int ow = 0; ow < OW; ow++) {
                                int iw = ow * s->stride - s->pad_l + kw;
                                if (iw < 0 || iw >= W) continue;
                                acc += (double)ip[ih * W + iw] * dp[oh * OW + ow];
                            }
                        }
                    }
                    dw[(((size_t)oc * C + c) * K + kh) * K + kw] += (float)acc;
                }
            }
        }
    }
}

size_t fm__ref_dense_workspace(int n, int in_dim, int out_dim) {
    (void)n, (void)in_dim, (void)out_dim;
    return 0;
}

void fm__ref_dense_forward(float *out, const float *in, const float *w, const float *b, int n,
                           int in_dim, int out_dim, int relu, float *work) {
    (void)work;
    FM__OMP(omp parallel for collapse(2) schedule(static))
    for (int i = 0; i < n; i++) {
        for (int o = 0; o < out_dim; o++) {
            const float *x = in + (size_t)i * in_dim, *wr = w + (size_t)o * in_dim;
            double acc = b ? b[o] : 0.0;
            for (int j = 0; j < in_dim; j++) acc += (double)x[j] * wr[j];
            float v = (float)acc;
            out[(size_t)i * out_dim + o] = relu && v < 0.0f ? 0.0f : v;
        }
    }
}

void fm__ref_dense_backward_data(float *din, const float *dout, const float *w, int n, int in_dim,
                                 int out_dim, float *work) {
    (void)work;
    FM__OMP(omp parallel for collapse(2) schedule(static))
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < in_dim; j++) {
            double acc = 0.0;
            for (int o = 0; o < out_dim; o++)
                acc += (double)dout[(size_t)i * out_dim + o] * w[(size_t)o * in_dim + j];
            din[(size_t)i * in_dim + j] = (float)acc;
        }
    }
}

void fm__ref_dense_backward_weights(float *dw, float *db, const float *dout, const float *in,
                                    int n, int in_dim, int out_dim, float *work) {
    (void)work;
    FM__OMP(omp parallel for schedule(static))
    for (int o = 0; o < out_dim; o++) {
        if (db) {
            double acc = 0.0;
            for (int i = 0; i < n; i++) acc += dout[(size_t)i * out_dim + o];
            db[o] += (float)acc;
        }
        for (int j = 0; j < in_dim; j++) {
            double acc = 0.0;
            for (int i = 0; i < n; i++)
                acc += (double)dout[(size_t)i * out_dim + o] * in[(size_t)i * in_dim + j];
            dw[(size_t)o * in_dim + j] += (float)acc;
        }
    }
}

void fm__ref_batchnorm_forward_train(float *out, float *mean, float *var, float *invstd,
                                     const float *in, const float *gamma, const float *beta,
                                     int n, int c, int hw, float eps) {
    const double m = (double)n * hw;
    FM__OMP(omp parallel for schedule(static))
    for (int ch = 0; ch < c; ch++) {
        /* two passes: mean, then the biased variance around it */
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            const float *x = in + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) sum += x[j];
        }
        double mu = sum / m, sq = 0.0;
        for (int i = 0; i < n; i++) {
            const float *x = in + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) sq += (x[j] - mu) * (x[j] - mu);
        }
        double v = sq / m, is = 1.0 / sqrt(v + eps);
        mean[ch] = (float)mu;
        var[ch] = (float)v;
        invstd[ch] = (float)is;
        for (int i = 0; i < n; i++) {
            const float *x = in + ((size_t)i * c + ch) * hw;
            float *y = out + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) y[j] = (float)(gamma[ch] * (x[j] - mu) * is + beta[ch]);
        }
    }
}

void fm__ref_batchnorm_forward_infer(float *out, const float *in, const float *gamma,
                                     const float *beta, const float *mmean, const float *mvar,
                                     int n, int c, int hw, float eps) {
    FM__OMP(omp parallel for collapse(2) schedule(static))
    for (int i = 0; i < n; i++) {
        for (int ch = 0; ch < c; ch++) {
            double is = 1.0 / sqrt((double)mvar[ch] + eps);
            const float *x = in + ((size_t)i * c + ch) * hw;
            float *y = out + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++)
                y[j] = (float)(gamma[ch] * (x[j] - (double)mmean[ch]) * is + beta[ch]);
        }
    }
}

void fm__ref_batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                                const float *in, const float *mean, const float *invstd,
                                const float *gamma, int n, int c, int hw) {
    const double m = (double)n * hw;
    FM__OMP(omp parallel for schedule(static))
    for (int ch = 0; ch < c; ch++) {
        /* With xhat = (x-mean)*invstd, y = gamma*xhat + beta and the batch
         * statistics depending on x:
         * dx = gamma*invstd/M * (M*dy - sum(dy) - xhat*sum(dy*xhat)). */
        double sdy = 0.0, sdyx = 0.0;
        for (int i = 0; i < n; i++) {
            const float *x = in + ((size_t)i * c + ch) * hw, *dy = dout + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) {
                sdy += dy[j];
                sdyx += dy[j] * ((x[j] - (double)mean[ch]) * invstd[ch]);
            }
        }
        dbeta[ch] += (float)sdy;
        dgamma[ch] += (float)sdyx;
        double k = (double)gamma[ch] * invstd[ch] / m;
        for (int i = 0; i < n; i++) {
            const float *x = in + ((size_t)i * c + ch) * hw, *dy = dout + ((size_t)i * c + ch) * hw;
            float *dx = din + ((size_t)i * c + ch) * hw;
            for (int j = 0; j < hw; j++) {
                double xh = (x[j] - (double)mean[ch]) * invstd[ch];
                dx[j] = (float)(k * (m * dy[j] - sdy - xh * sdyx));
            }
        }
    }
}

void fm__ref_relu_forward(float *out, const float *in, size_t len) {
    for (size_t i = 0; i < len; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void fm__ref_relu_backward(float *din, const float *dout, const float *out, size_t len) {
    for (size_t i = 0; i < len; i++) din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

void fm__ref_maxpool_forward(float *out, uint8_t *argmax, const float *in, int n, int c, int h,
                             int w, int pool) {
    const int oh = h / pool, ow = w / pool;
    FM__OMP(omp parallel for collapse(2) schedule(static))
    for (int i = 0; i < n; i++) {
        for (int ch = 0; ch < c; ch++) {
            const float *x = in + ((size_t)i * c + ch) * h * w;
            size_t o0 = ((size_t)i * c + ch) * oh * ow;
            for (int y = 0; y < oh; y++) {
                for (int xx = 0; xx < ow; xx++) {
                    /* strict > keeps the first maximum in row-major window order */
                    int best = 0;
                    float bv = x[(y * pool) * w + xx * pool];
                    for (int p = 1; p < pool * pool; p++) {
                        float v = x[(y * pool + p / pool) * w + xx * pool + p % pool];
                        if (v > bv) {
                            bv = v;
                            best = p;
                        }
                    }
                    out[o0 + (size_t)y * ow + xx] = bv;
                    argmax[o0 + (size_t)y * ow + xx] = (uint8_t)best;
                }
            }
        }
    }
}

void fm__ref_maxpool_backward(float *din, const float *dout, const uint8_t *argmax, int n, int c,
                              int h, int w, int pool) {
    const int oh = h / pool, ow = w / pool;
    FM__OMP(omp parallel for collapse(2) schedule(static))
    for (int i = 0; i < n; i++) {
        for (int ch = 0; ch < c; ch++) {
            float *d = din + ((size_t)i * c + ch) * h * w;
            size_t o0 = ((size_t)i * c + ch) * oh * ow;
            /* rows/columns beyond the last full window get no gradient */
            memset(d, 0, sizeof(float) * h * w);
            for (int y = 0; y < oh; y++) {
                for (int xx = 0; xx < ow; xx++) {
                    int p = argmax[o0 + (size_t)y * ow + xx];
                    d[(y * pool + p / pool) * w + xx * pool + p % pool] = dout[o0 + (size_t)y * ow + xx];
                }
            }
        }
    }
}

void fm__ref_avgpool_forward(float *out, const float *in, int n, int c, int h, int w, int ph,
                             int pw) {
    const int oh = h / ph, ow = w / pw;
    const float count = (float)(ph * pw);
    FM__OMP(omp parallel for collapse(2) schedule(static))
    for (int i = 0; i < n; i++) {
        for (int ch = 0; ch < c; ch++) {
            const float *x = in + ((size_t)i * c + ch) * h * w;
            float *o = out + ((size_t)i * c + ch) * oh * ow;
            for (int y = 0; y < oh; y++)
                for (int xx = 0; xx < ow; xx++) {
                    float s = 0.0f;
                    for (int u = 0; u < ph; u++)
                        for (int v = 0; v < pw; v++) s += x[(y * ph + u) * w + xx * pw + v];
                    o[(size_t)y * ow + xx] = s / count;
                }
        }
    }
}

void fm__ref_avgpool_backward(float *din, const float *dout, int n, int c, int h, int w, int ph,
                              int pw) {
    const int oh = h / ph, ow = w / pw;
    const float count = (float)(ph * pw);
    FM__OMP(omp parallel for collapse(2) schedule(static))
    for (int i = 0; i < n; i++) {
        for (int ch = 0; ch < c; ch++) {
            float *d = din + ((size_t)i * c + ch) * h * w;
            const float *g = dout + ((size_t)i * c + ch) * oh * ow;
            /* rows/columns beyond the last full window get no gradient */
            memset(d, 0, sizeof(float) * h * w);
            for (int y = 0; y < oh; y++)
                for (int xx = 0; xx < ow; xx++) {
                    float share = g[(size_t)y * ow + xx] / count;
                    for (int u = 0; u < ph; u++)
                        for (int v = 0; v < pw; v++) d[(y * ph + u) * w + xx * pw + v] = share;
                }
        }
    }
}

void fm__ref_dropout_apply(float *out, const float *in, const uint8_t *mask, float scale,
                           size_t len) {
    for (size_t i = 0; i < len; i++) out[i] = mask[i] ? in[i] * scale : 0.0f;
}

float fm__ref_softmax_xent(float *probs, float *dlogits, const float *logits,
                           const uint8_t *labels, int n, int classes, float smoothing) {
    /* Keras's smoothed target, formed in float32 as Keras forms it:
     * onehot * (1 - s) + s / K. With s = 0 it is the one-hot exactly. */
    const float on = 1.0f - smoothing, off = smoothing / (float)classes;
    double loss = 0.0;
    for (int i = 0; i < n; i++) {
        const float *l = logits + (size_t)i * classes;
        float *p = probs + (size_t)i * classes;
        float mx = l[0];
        for (int j = 1; j < classes; j++) mx = l[j] > mx ? l[j] : mx;
        double sum = 0.0;
        for (int j = 0; j < classes; j++) sum += exp((double)l[j] - mx);
        /* -sum_j t_j log softmax_j, with -log softmax_j = log(sum exp(l - max)) - (l_j - max).
         * Zero targets are skipped, so s = 0 adds the label's term alone: the
         * unsmoothed loss to the bit. */
        double lse = log(sum);
        for (int j = 0; j < classes; j++) {
            float t = (j == labels[i] ? on : 0.0f) + off;
            if (t != 0.0f) loss += (double)t * (lse - ((double)l[j] - mx));
        }
        for (int j = 0; j < classes; j++) p[j] = (float)(exp((double)l[j] - mx) / sum);
        if (dlogits) {
            float *d = dlogits + (size_t)i * classes;
            for (int j = 0; j < classes; j++)
                d[j] = (p[j] - ((j == labels[i] ? on : 0.0f) + off)) / (float)n;
        }
    }
    return n > 0 ? (float)(loss / n) : 0.0f;
}

/* ---- int8 inference (kernels.h, fm__qweights) ---- */

/* The byte an input value becomes; NaN becomes 0. */
static uint8_t quantize(float x, const fm__qweights *q, int ch) {
    float t = q->pre_mul ? fmaf(x, q->pre_mul[ch], q->pre_add[ch]) : x;
    float r = nearbyintf(t / q->in_scale) + (float)q->zp;
    return !(r > 0.0f) ? 0 : r >= 255.0f ? 255 : (uint8_t)r;
}

size_t fm__ref_qconv2d_workspace(const fm__conv_shape *s) {
    return (size_t)s->c * s->h * s->w; /* one image's bytes */
}

void fm__ref_qconv2d_forward(float *out, const float *in, const fm__qweights *q,
                             const fm__conv_shape *s, int relu, void *work) {
    const int C = s->c, H = s->h, W = s->w, OC = s->oc, OH = s->oh, OW = s->ow, K = s->k;
    uint8_t *xq = work;
    for (int n = 0; n < s->n; n++) {
        const float *x = in + (size_t)n * C * H * W;
        for (int c = 0; c < C; c++)
            for (int i = 0; i < H * W; i++) xq[c * H * W + i] = quantize(x[c * H * W + i], q, c);
        FM__OMP(omp parallel for schedule(static))
        for (int o = 0; o < OC; o++) {
            const int8_t *wr = q->w + (size_t)o * C * K * K;
            float *y = out + ((size_t)n * OC + o) * OH * OW;
            for (int oh = 0; oh < OH; oh++) {
                for (int ow = 0; ow < OW; ow++) {
                    int32_t acc = 0; /* padding is the zero point: (zp - zp) * w adds nothing */
                    for (int c = 0; c < C; c++) {
                        for (int kh = 0; kh < K; kh++) {
                            int ih = oh * s->stride - s->pad_t + kh;
                            if (ih < 0 || ih >= H) continue;
                            for (int kw = 0; kw < K; kw++) {
                                int iw = ow * s->stride - s->pad_l + kw;
                                if (iw < 0 || iw >= W) continue;
                                acc += (xq[(c * H + ih) * W + iw] - q->zp) * wr[(c * K + kh) * K + kw];
                            }
                        }
                    }
                    y[oh * OW + ow] = fm__qdequantize(acc, q, o, relu);
                }
            }
        }
    }
}

size_t fm__ref_qdense_workspace(int n, int in_dim, int out_dim) {
    (void)out_dim;
    return (size_t)n * in_dim;
}

void fm__ref_qdense_forward(float *out, const float *in, const fm__qweights *q, int n, int in_dim,
                            int out_dim, int relu, void *work) {
    uint8_t *xq = work;
    for (size_t i = 0; i < (size_t)n * in_dim; i++) xq[i] = quantize(in[i], q, (int)(i % in_dim));
    FM__OMP(omp parallel for collapse(2) schedule(static))
    for (int i = 0; i < n; i++) {
        for (int o = 0; o < out_dim; o++) {
            const uint8_t *x = xq + (size_t)i * in_dim;
            const int8_t *wr = q->w + (size_t)o * in_dim;
            int32_t acc = 0;
            for (int j = 0; j < in_dim; j++) acc += (x[j] - q->zp) * wr[j];
            out[(size_t)i * out_dim + o] = fm__qdequantize(acc, q, o, relu);
        }
    }
}

static const fm__kernels ref_table = {
    .name = "ref",
    .conv2d_workspace = fm__ref_conv2d_workspace,
    .conv2d_forward = fm__ref_conv2d_forward,
    .conv2d_backward_data = fm__ref_conv2d_backward_data,
    .conv2d_backward_weights = fm__ref_conv2d_backward_weights,
    .dense_workspace = fm__ref_dense_workspace,
    .dense_forward = fm__ref_dense_forward,
    .dense_backward_data = fm__ref_dense_backward_data,
    .dense_backward_weights = fm__ref_dense_backward_weights,
    .batchnorm_forward_train = fm__ref_batchnorm_forward_train,
    .batchnorm_forward_infer = fm__ref_batchnorm_forward_infer,
    .batchnorm_backward = fm__ref_batchnorm_backward,
    .relu_forward = fm__ref_relu_forward,
    .relu_backward = fm__ref_relu_backward,
    .maxpool_forward = fm__ref_maxpool_forward,
    .maxpool_backward = fm__ref_maxpool_backward,
    .avgpool_forward = fm__ref_avgpool_forward,
    .avgpool_backward = fm__ref_avgpool_backward,
    .dropout_apply = fm__ref_dropout_apply,
    .softmax_xent = fm__ref_softmax_xent,
    .qconv2d_workspace = fm__ref_qconv2d_workspace,
    .qconv2d_forward = fm__ref_qconv2d_forward,
    .qdense_workspace = fm__ref_qdense_workspace,
    .qdense_forward = fm__ref_qdense_forward,
};

const fm__kernels *fm__kernels_ref(void) { return &ref_table; }
