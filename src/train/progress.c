/* Keras 3's Progbar, reduced to what the trainer prints. */
#include "train/progress.h"

#include "core/error.h"

#include <math.h>
#include <stdarg.h>
#include <unistd.h>

#define BAR_WIDTH 20
#define BAR_CHAR "\xe2\x94\x81" /* U+2501 heavy horizontal */

/* printf-appends to buf at *pos, never past len; *pos saturates at len. */
static FM__PRINTF(4, 5) void put(char *buf, size_t len, size_t *pos, const char *fmt, ...) {
    if (*pos >= len) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *pos, len - *pos, fmt, ap);
    va_end(ap);
    *pos = w < 0 || (size_t)w >= len - *pos ? len : *pos + (size_t)w;
}

void fm__progress_format(char *buf, size_t len, int step, int steps, double elapsed,
                         const fm__metric *m, int n_metrics, int ansi) {
    size_t pos = 0;
    buf[0] = '\0';
    int digits = snprintf(NULL, 0, "%d", steps);
    put(buf, len, &pos, "%*d/%d ", digits, step, steps);

    int filled = steps > 0 ? (int)((double)BAR_WIDTH * step / steps) : BAR_WIDTH;
    if (filled > BAR_WIDTH) filled = BAR_WIDTH;
    for (int i = 0; i < filled; i++) put(buf, len, &pos, BAR_CHAR);
    if (filled < BAR_WIDTH) {
        if (ansi) put(buf, len, &pos, "\x1b[2m");
        for (int i = filled; i < BAR_WIDTH; i++) put(buf, len, &pos, BAR_CHAR);
        if (ansi) put(buf, len, &pos, "\x1b[0m");
    }

    double per_step = step > 0 ? elapsed / step : 0.0;
    if (step < steps) {
        int eta = (int)(per_step * (steps - step));
        if (eta > 3600)
            put(buf, len, &pos, " %d:%02d:%02d", eta / 3600, eta % 3600 / 60, eta % 60);
        else if (eta > 60)
            put(buf, len, &pos, " %d:%02d", eta / 60, eta % 60);
        else
            put(buf, len, &pos, " %ds", eta);
    } else {
        put(buf, len, &pos, " %.0fs", elapsed);
    }
    if (per_step >= 1 || per_step == 0)
        put(buf, len, &pos, " %.0fs/step", per_step);
    else if (per_step >= 1e-3)
        put(buf, len, &pos, " %.0fms/step", per_step * 1e3);
    else
        put(buf, len, &pos, " %.0fus/step", per_step * 1e6);

    /* Keras compares its float32 values with 1e-3 in float32, which is why a
     * learning rate of 0.001 shows as 1.0000e-03. */
    for (int i = 0; i < n_metrics; i++)
        put(buf, len, &pos, fabsf((float)m[i].value) > 1e-3f ? " - %s: %.4f" : " - %s: %.4e",
            m[i].name, m[i].value);
}

void fm__progress_begin(fm__progress *p, FILE *out, int epoch, int epochs, int steps) {
    p->out = out;
    p->tty = out && isatty(fileno(out));
    p->steps = steps;
    p->start = fm__now();
    p->last_draw = 0.0;
    if (out) {
        fprintf(out, "Epoch %d/%d\n", epoch, epochs);
        fflush(out);
    }
}

void fm__progress_step(fm__progress *p, int step, const fm__metric *m, int n_metrics) {
    if (!p->out || !p->tty || step >= p->steps) return;
    double now = fm__now();
    if (now - p->last_draw < 0.1) return;
    p->last_draw = now;
    char line[1024];
    fm__progress_format(line, sizeof line, step, p->steps, now - p->start, m, n_metrics, 1);
    fprintf(p->out, "\r%s\x1b[K", line);
    fflush(p->out);
}

void fm__progress_end(fm__progress *p, const fm__metric *m, int n_metrics) {
    if (!p->out) return;
    char line[1024];
    fm__progress_format(line, sizeof line, p->steps, p->steps, fm__now() - p->start, m, n_metrics,
                        p->tty);
    if (p->tty)
        fprintf(p->out, "\r%s\x1b[K\n", line);
    else
        fprintf(p->out, "%s\n", line);
    fflush(p->out);
}
