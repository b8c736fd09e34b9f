/* Batched inference (fm__model_infer) and what is built on it here: the
 * input scaling, test-time augmentation, fm_model_predict, and the checks
 * and arg max its callers share. */
#include "model/infer.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "core/error.h"

int fm__check_io(const fm_model *m, fm_err *err) {
    if (m->input.c != 1 || m->input.h != FM_IMAGE_ROWS || m->input.w != FM_IMAGE_COLS)
        return fm__err(err, "%s: the model takes %dx%dx%d inputs; the images are 1x%dx%d",
                       m->source, m->input.c, m->input.h, m->input.w, FM_IMAGE_ROWS,
                       FM_IMAGE_COLS);
    if (m->classes != FM_NUM_CLASSES)
        return fm__err(err, "%s: the model has %d outputs; Fashion-MNIST has %d classes",
                       m->source, m->classes, FM_NUM_CLASSES);
    return 0;
}

int fm__argmax(const float *p, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (p[i] > p[best]) best = i;
    return best;
}

void fm__input_scale(float *dst, const uint8_t *src, size_t len) {
    for (size_t i = 0; i < len; i++) dst[i] = fm__pixel_scale(src[i]);
}

/* fm__input_scale of the left-right mirror: every one of `rows` rows of w
 * pixels (the rows of each channel of each image) reversed. */
static void input_scale_mirrored(float *dst, const uint8_t *src, size_t rows, size_t w) {
    for (size_t r = 0; r < rows; r++, dst += w, src += w)
        for (size_t x = 0; x < w; x++) dst[x] = fm__pixel_scale(src[w - 1 - x]);
}

/* The same for input given as the network's floats: copied, or mirrored. */
static void input_mirrored(float *dst, const float *src, size_t rows, size_t w) {
    for (size_t r = 0; r < rows; r++, dst += w, src += w)
        for (size_t x = 0; x < w; x++) dst[x] = src[w - 1 - x];
}

/* What inference reads: samples of bytes, scaled, or of the network's
 * input values, taken as they are. */
typedef struct input {
    const void *px;
    int floats;
} input;

/* The network's input for b samples of in from sample `at` on, into
 * m->input_buf: as they are, or mirrored left to right. */
static void fill_input(fm_model *m, input in, size_t at, int b, int mirrored) {
    const size_t len = (size_t)b * fm__shape_len(m->input), start = at * fm__shape_len(m->input);
    const size_t rows = (size_t)b * m->input.c * m->input.h, w = (size_t)m->input.w;
    if (in.floats) {
        const float *src = (const float *)in.px + start;
        if (mirrored) input_mirrored(m->input_buf, src, rows, w);
        else memcpy(m->input_buf, src, len * sizeof(float));
    } else {
        const uint8_t *src = (const uint8_t *)in.px + start;
        if (mirrored) input_scale_mirrored(m->input_buf, src, rows, w);
        else fm__input_scale(m->input_buf, src, len);
    }
}

/* log softmax_j of one row of logits, in double: l_j - max - log sum exp(l - max). */
static void log_softmax(double *out, const float *l, int k) {
    float mx = l[0];
    for (int j = 1; j < k; j++) mx = l[j] > mx ? l[j] : mx;
    double sum = 0.0;
    for (int j = 0; j < k; j++) sum += exp((double)l[j] - mx);
    double lse = log(sum);
    for (int j = 0; j < k; j++) out[j] = ((double)l[j] - mx) - lse;
}

/* The TTA loss of a batch from both passes' logits a and b (n, k): the mean
 * over images of -log((softmax(a)_y + softmax(b)_y) / 2), y the label (the
 * plain cross-entropy, as every evaluation reports). Summed in log space
 * (log-add-exp), so a tiny probability costs no precision: like the plain
 * loss, which works from the logits, it needs no clipping. */
static float tta_loss(const float *a, const float *b, const uint8_t *labels, int n, int k) {
    double la[256], lb[256], loss = 0.0; /* k <= 256: the planner's limit */
    for (int i = 0; i < n; i++) {
        log_softmax(la, a + (size_t)i * k, k);
        log_softmax(lb, b + (size_t)i * k, k);
        int j = labels[i];
        double hi = la[j] > lb[j] ? la[j] : lb[j], lo = la[j] > lb[j] ? lb[j] : la[j];
        loss -= hi + log1p(exp(lo - hi)) - log(2.0); /* log of the two probabilities' mean */
    }
    return n > 0 ? (float)(loss / n) : 0.0f;
}

/* One batch: samples [at, at + b) of in (b, C, H, W) -> probs (b, classes),
 * and the mean loss against labels (b) when given, else 0. Everything that
 * changes what inference computes per batch (test-time augmentation)
 * belongs here, so every caller gets it at once. */
static float infer_batch(fm_model *m, input in, size_t at, const uint8_t *labels, int b,
                         float *probs) {
    const size_t k = (size_t)m->classes;
    fill_input(m, in, at, b, 0);
    const float *logits = fm__model_forward(m, b, 0, NULL);
    if (m->tta == FM_TTA_NONE) {
        float loss = labels ? fm__model_loss_backward(m, labels, b, 0.0f, 0) : 0.0f;
        memcpy(probs, m->probs, (size_t)b * k * sizeof(float));
        return loss;
    }
    /* FM_TTA_FLIP. The mirror is made from the input again rather than
     * flipped in input_buf, which a first layer working in place (its output
     * aliasing its input) may have overwritten. */
    memcpy(probs, m->probs, (size_t)b * k * sizeof(float));
    if (labels) memcpy(m->tta_logits, logits, (size_t)b * k * sizeof(float));
    fill_input(m, in, at, b, 1);
    logits = fm__model_forward(m, b, 0, NULL);
    for (size_t i = 0; i < (size_t)b * k; i++) probs[i] = 0.5f * (probs[i] + m->probs[i]);
    return labels ? tta_loss(m->tta_logits, logits, labels, b, m->classes) : 0.0f;
}

static int infer(fm_model *m, input in, const uint8_t *labels, size_t n, int batch, float *probs,
                 double *loss, fm_err *err) {
    /* An int8 model's layers pass float activations, which at hundreds of
     * images stream through memory between layers: FM__INT8_CHUNK at a time
     * stay in cache. fp32's layers are bound by their arithmetic, and its
     * batches stay whole (the bits of the notebook recipe's val_loss). */
    const int chunk = m->quant ? FM__INT8_CHUNK : INT_MAX;
    if (!m->batch_cap && fm__model_reserve(m, batch < chunk ? batch : chunk, err) < 0) return -1;
    const int step = m->batch_cap < chunk ? m->batch_cap : chunk;
    const size_t k = (size_t)m->classes;
    double loss_sum = 0.0;
    for (size_t done = 0; done < n;) {
        int b = n - done < (size_t)step ? (int)(n - done) : step;
        float l = infer_batch(m, in, done, labels ? labels + done : NULL, b, probs + done * k);
        loss_sum += (double)l * b; /* the batch's mean, weighted back by its size */
        done += (size_t)b;
    }
    if (labels) *loss = n ? loss_sum / (double)n : NAN;
    return 0;
}

int fm__model_infer(fm_model *m, const uint8_t *pixels, const uint8_t *labels, size_t n,
                    int batch, float *probs, double *loss, fm_err *err) {
    return infer(m, (input){pixels, 0}, labels, n, batch, probs, loss, err);
}

int fm__model_infer_floats(fm_model *m, const float *x, const uint8_t *labels, size_t n,
                           int batch, float *probs, double *loss, fm_err *err) {
    return infer(m, (input){x, 1}, labels, n, batch, probs, loss, err);
}

int fm_model_predict(fm_model *m, const fm_images *imgs, size_t start, size_t n, float *probs,
                     fm_err *err) {
    if (m->input.h != FM_IMAGE_ROWS || m->input.w != FM_IMAGE_COLS || m->input.c != 1)
        return fm__err(err, "%s: the model takes %dx%dx%d inputs, not 28x28x1 images", m->source,
                       m->input.h, m->input.w, m->input.c);
    if (m->classes != FM_NUM_CLASSES)
        return fm__err(err, "%s: the model has %d classes, not %d", m->source, m->classes,
                       FM_NUM_CLASSES);
    if (start > imgs->count || n > imgs->count - start)
        return fm__err(err, "predict: images [%zu, %zu) are outside the set of %zu", start,
                       start + n, imgs->count);
    return fm__model_infer(m, imgs->pixels + start * FM_IMAGE_PIXELS, NULL, n, FM__PREDICT_BATCH,
                           probs, NULL, err);
}
