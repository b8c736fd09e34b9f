/* fm_model_summary: a Keras-style table. Shapes are shown as Keras shows
 * them, (None, H, W, C) and (None, units), although the library computes in
 * NCHW; a row counts every tensor its layer declares, and statistics
 * (BatchNorm's moving mean and variance) are the non-trainable parameters. */
#include <stdio.h>
#include <string.h>

#include "model/model.h"
#include "model/quant.h"

/* 1868234 -> "1,868,234" */
static void with_commas(char *buf, size_t n) {
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%zu", n), o = 0;
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
}

/* Keras's readable size of float32 parameters: 1024-based, two decimals. */
static void memory_size(char *buf, size_t size, size_t params) {
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
    double b = (double)params * sizeof(float);
    int u = 0;
    while (b >= 1024.0 && u < 4) {
        b /= 1024.0;
        u++;
    }
    snprintf(buf, size, "%.2f %s", b, units[u]);
}

static void shape_text(char *buf, size_t size, fm__shape s) {
    if (s.flat) snprintf(buf, size, "(None, %d)", s.c);
    else snprintf(buf, size, "(None, %d, %d, %d)", s.h, s.w, s.c);
}

/* "configs/fashion-cnn.cfg" -> "fashion-cnn" */
static void model_name(char *buf, size_t size, const char *source) {
    const char *base = strrchr(source, '/');
    base = base ? base + 1 : source;
    size_t n = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) n = (size_t)(dot - base);
    if (n >= size) n = size - 1;
    memcpy(buf, base, n);
    buf[n] = 0;
}

static void rule(FILE *out, char c, int width) {
    for (int i = 0; i < width; i++) fputc(c, out);
    fputc('\n', out);
}

void fm_model_summary(const fm_model *m, FILE *out) {
    char name[96], shape[64], count[32];
    int wname = (int)strlen("Layer (type)"), wshape = (int)strlen("Output Shape"), wcount = 8;
    for (int i = 0; i < m->n_layers; i++) {
        const fm__layer *l = &m->layers[i];
        int n = snprintf(name, sizeof name, "%s (%s)", l->name, l->type->keras_type);
        if (n > wname) wname = n;
        shape_text(shape, sizeof shape, l->out);
        if ((int)strlen(shape) > wshape) wshape = (int)strlen(shape);
    }
    with_commas(count, fm_model_param_count(m, NULL));
    if ((int)strlen(count) > wcount) wcount = (int)strlen(count);
    int width = 1 + wname + 4 + wshape + 4 + wcount;

    model_name(name, sizeof name, m->source);
    fprintf(out, "Model: \"%s\"\n", name);
    rule(out, '_', width);
    fprintf(out, " %-*s    %-*s    %*s\n", wname, "Layer (type)", wshape, "Output Shape", wcount,
            "Param #");
    rule(out, '=', width);
    for (int i = 0; i < m->n_layers; i++) {
        const fm__layer *l = &m->layers[i];
        snprintf(name, sizeof name, "%s (%s)", l->name, l->type->keras_type);
        shape_text(shape, sizeof shape, l->out);
        with_commas(count, fm__layer_param_count(l));
        fprintf(out, " %-*s    %-*s    %*s\n", wname, name, wshape, shape, wcount, count);
    }
    rule(out, '=', width);
    size_t trainable, total = fm_model_param_count(m, &trainable);
    char mem[32];
    with_commas(count, total);
    memory_size(mem, sizeof mem, total);
    fprintf(out, "Total params: %s (%s)\n", count, mem);
    with_commas(count, trainable);
    memory_size(mem, sizeof mem, trainable);
    fprintf(out, "Trainable params: %s (%s)\n", count, mem);
    with_commas(count, total - trainable);
    memory_size(mem, sizeof mem, total - trainable);
    fprintf(out, "Non-trainable params: %s (%s)\n", count, mem);
    if (m->quant)
        fprintf(out, "int8: conv and dense weights in 8 bits, inputs in uint8 (%s)\n",
                m->quant->calibration);
    rule(out, '_', width);
}
