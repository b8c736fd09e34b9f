/* SVG charts for the report, written as text: a line chart for learning
 * curves and a heat map for the confusion matrix. Sizes are in viewBox units;
 * the page's CSS scales the SVG to its card, and text inherits the page font. */
#include "report/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

fm__ticks fm__nice_ticks(double lo, double hi, int target, int integer) {
    if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    if (hi < lo) {
        double t = lo;
        lo = hi, hi = t;
    }
    if (hi == lo) {
        /* one value: centre it in a small range of its own magnitude */
        double d = integer ? 1 : (lo != 0 ? fabs(lo) * 0.1 : 1);
        lo -= d, hi += d;
    }
    if (target < 1) target = 1;
    double raw = (hi - lo) / target, mag = pow(10, floor(log10(raw))), norm = raw / mag;
    double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    if (integer && step < 1) step = 1;
    fm__ticks t;
    t.step = step;
    t.first = floor(lo / step + 1e-9) * step;
    double last = ceil(hi / step - 1e-9) * step;
    t.count = (int)lround((last - t.first) / step) + 1;
    if (t.count < 2) t.count = 2;
    return t;
}

/* Tick text: just enough decimals for the step. */
static void tick_label(char *buf, size_t size, double v, double step, int percent) {
    if (percent) v *= 100, step *= 100;
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 6) dec = 6;
    if (fabs(v) < step * 1e-6) v = 0; /* no "-0" */
    snprintf(buf, size, percent ? "%.*f%%" : "%.*f", dec, v);
}

static void value_text(char *buf, size_t size, double v, int percent) {
    if (percent) snprintf(buf, size, "%.2f%%", v * 100);
    else snprintf(buf, size, "%.4f", v);
}

/* Rough text width for label placement: ~0.6 em per character. */
static double text_width(const char *s, double font_px) { return 0.6 * font_px * (double)strlen(s); }

#define LABEL_ROWS 4
#define LABEL_MAX 64
#define ROW_H 13.0

void fm__svg_chart(FILE *out, const fm__chart *c) {
    const double W = c->width, L = 64, R = 18, B = 48, band_top = 30;
    const double pw = W - L - R;

    double ylo = INFINITY, yhi = -INFINITY;
    for (int s = 0; s < c->n_series; s++)
        for (size_t i = 0; i < c->n; i++)
            if (isfinite(c->series[s].y[i])) {
                if (c->series[s].y[i] < ylo) ylo = c->series[s].y[i];
                if (c->series[s].y[i] > yhi) yhi = c->series[s].y[i];
            }
    int empty = !(ylo <= yhi);
    double xlo = c->n ? c->x[0] : 1, xhi = c->n ? c->x[c->n - 1] : 1;
    fm__ticks xt = fm__nice_ticks(xlo, xhi, 8, 1);
    fm__ticks yt = fm__nice_ticks(empty ? 0 : ylo, empty ? 1 : yhi, 5, 0);
    double x0 = xt.first, x1 = xt.first + xt.step * (xt.count - 1);
    double y0 = yt.first, y1 = yt.first + yt.step * (yt.count - 1);
#define PX(v) (L + ((v) - x0) / (x1 - x0) * pw)

    /* Marker labels go in a band above the plot, so they never hide a curve.
     * In the order given (callers put the important ones first), each takes
     * the first free place; one that fits nowhere keeps only its line and
     * tooltip. */
    int row[LABEL_MAX];
    double lab_a[LABEL_MAX], lab_b[LABEL_MAX], lab_x[LABEL_MAX];
    int rows_used = 0, n_lab = c->n_markers < LABEL_MAX ? c->n_markers : LABEL_MAX;
    for (int m = 0; m < n_lab; m++) {
        const fm__marker *mk = &c->markers[m];
        row[m] = -1;
        if (!(mk->x >= x0 && mk->x <= x1)) continue;
        double x = PX(mk->x), tw = text_width(mk->label, 11);
        lab_x[m] = x;
        /* each row in turn, the label right of its line, else left of it; a
         * line runs from its label down, so it must not cross a label below */
        for (int r = 0; r < LABEL_ROWS && row[m] < 0; r++)
            for (int side = 0; side < 2 && row[m] < 0; side++) {
                double a = side == 0 ? x - 1 : x - 5 - tw, b = side == 0 ? x + 5 + tw : x + 1;
                if (a < 0 || b > W) continue;
                int clash = 0;
                for (int k = 0; k < m && !clash; k++) {
                    if (row[k] < 0) continue;
                    if (row[k] == r)
                        clash = a < lab_b[k] + 6 && lab_a[k] < b + 6;
                    else if (row[k] < r)
                        clash = lab_x[k] > a - 3 && lab_x[k] < b + 3;
                    else
                        clash = x > lab_a[k] - 3 && x < lab_b[k] + 3;
                }
                if (!clash) row[m] = r, lab_a[m] = a, lab_b[m] = b;
            }
        if (row[m] + 1 > rows_used) rows_used = row[m] + 1;
    }
    const double T = band_top + ROW_H * rows_used + (rows_used ? 6 : 4);
    const double H = c->height + (T - 34), ph = H - T - B;
#define PY(v) (T + ph - ((v) - y0) / (y1 - y0) * ph)

    fprintf(out,
            "<svg class=\"chart\" viewBox=\"0 0 %g %g\" role=\"img\" aria-label=\"", W, H);
    fm__html_escape(out, c->title);
    fputs("\" xmlns=\"http://www.w3.org/2000/svg\">\n", out);
    fputs("<text x=\"4\" y=\"18\" class=\"c-title\">", out);
    fm__html_escape(out, c->title);
    fputs("</text>\n", out);

    /* legend, right-aligned on the title row */
    double lx = W - R;
    for (int s = c->n_series - 1; s >= 0; s--) {
        double tw = text_width(c->series[s].name, 12);
        lx -= tw;
        fprintf(out, "<text x=\"%.1f\" y=\"18\" class=\"c-legend\">", lx);
        fm__html_escape(out, c->series[s].name);
        fprintf(out,
                "</text><line x1=\"%.1f\" y1=\"14\" x2=\"%.1f\" y2=\"14\" stroke=\"%s\" "
                "stroke-width=\"2.5\"%s%s%s/>\n",
                lx - 28, lx - 6, c->series[s].color, c->series[s].dash ? " stroke-dasharray=\"" : "",
                c->series[s].dash ? c->series[s].dash : "", c->series[s].dash ? "\"" : "");
        lx -= 28 + 16;
    }

    /* grid and ticks */
    char buf[64];
    fputs("<g class=\"c-grid\">\n", out);
    for (int i = 0; i < yt.count; i++) {
        double v = yt.first + i * yt.step, y = PY(v);
        tick_label(buf, sizeof buf, v, yt.step, c->percent);
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" class=\"c-tick\">%s</text>\n",
                L, y, L + pw, y, L - 6, y + 4, buf);
    }
    for (int i = 0; i < xt.count; i++) {
        double v = xt.first + i * xt.step, x = PX(v);
        tick_label(buf, sizeof buf, v, xt.step, 0);
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"c-tick\">%s</text>\n",
                x, T, x, T + ph, x, T + ph + 16, buf);
    }
    fputs("</g>\n", out);
    fprintf(out,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"c-frame\"/>\n", L,
            T, pw, ph);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"c-axis\">", L + pw / 2,
            H - 8);
    fm__html_escape(out, c->x_label);
    fprintf(out,
            "</text>\n<text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\" "
            "class=\"c-axis\">",
            T + ph / 2);
    fm__html_escape(out, c->y_label);
    fputs("</text>\n", out);

    /* markers: a line through the plot, rising into the band to its label */
    for (int m = 0; m < c->n_markers; m++) {
        const fm__marker *mk = &c->markers[m];
        if (!(mk->x >= x0 && mk->x <= x1)) continue;
        int r = m < n_lab ? row[m] : -1;
        double x = PX(mk->x), top = r >= 0 ? band_top + ROW_H * r + 1 : T;
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"1.5\"%s%s%s><title>",
                x, top, x, T + ph, mk->color, mk->dash ? " stroke-dasharray=\"" : "",
                mk->dash ? mk->dash : "", mk->dash ? "\"" : "");
        fm__html_escape(out, mk->label);
        fputs("</title></line>\n", out);
        if (r < 0) continue;
        int right = lab_a[m] >= x - 1;
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" class=\"c-mark\" fill=\"%s\">",
                right ? x + 4 : x - 4, band_top + ROW_H * r + 10, right ? "start" : "end", mk->color);
        fm__html_escape(out, mk->label);
        fputs("</text>\n", out);
    }

    if (empty) {
        fprintf(out,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"c-empty\">no values "
                "logged</text>\n</svg>\n",
                L + pw / 2, T + ph / 2);
        return;
    }

    /* series: a path broken at missing values, dots with tooltips when few */
    int dots = c->n <= 40;
    for (int s = 0; s < c->n_series; s++) {
        const fm__series *se = &c->series[s];
        fprintf(out, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2.2\" "
                     "stroke-linejoin=\"round\"%s%s%s d=\"",
                se->color, se->dash ? " stroke-dasharray=\"" : "", se->dash ? se->dash : "",
                se->dash ? "\"" : "");
        int pen = 0;
        for (size_t i = 0; i < c->n; i++) {
            if (!isfinite(se->y[i])) {
                pen = 0;
                continue;
            }
            fprintf(out, "%c%.1f %.1f", pen ? 'L' : 'M', PX(c->x[i]), PY(se->y[i]));
            pen = 1;
        }
        fputs("\"/>\n", out);
        if (!dots && c->n > 1) continue;
        for (size_t i = 0; i < c->n; i++) {
            if (!isfinite(se->y[i])) continue;
            value_text(buf, sizeof buf, se->y[i], c->percent);
            fprintf(out,
                    "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>epoch %g, ",
                    PX(c->x[i]), PY(se->y[i]), se->color, c->x[i]);
            fm__html_escape(out, se->name);
            fprintf(out, ": %s</title></circle>\n", buf);
        }
    }
    fputs("</svg>\n", out);
#undef PX
#undef PY
}

void fm__heat_color(double t, char out[8]) {
    /* ColorBrewer "Blues" (9 classes), interpolated in RGB */
    static const unsigned char stops[9][3] = {
        {247, 251, 255}, {222, 235, 247}, {198, 219, 239}, {158, 202, 225}, {107, 174, 214},
        {66, 146, 198},  {33, 113, 181},  {8, 81, 156},    {8, 48, 107},
    };
    if (!(t > 0)) t = 0;
    if (t > 1) t = 1;
    double p = t * 8;
    int i = (int)p;
    if (i > 7) i = 7;
    double f = p - i;
    int rgb[3];
    for (int k = 0; k < 3; k++) rgb[k] = (int)lround(stops[i][k] + (stops[i + 1][k] - stops[i][k]) * f);
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

void fm__svg_confusion(FILE *out, const uint32_t cm[FM_NUM_CLASSES][FM_NUM_CLASSES]) {
    const int K = FM_NUM_CLASSES;
    const double cs = 46, ox = 104, oy = 12, side = cs * K;
    const double W = ox + side + 96, H = oy + side + 104;
    /* colour = sqrt of the share of the true class, so that a 1 % confusion is
     * still visible next to a 95 % diagonal */
    fprintf(out,
            "<svg class=\"heat\" viewBox=\"0 0 %g %g\" role=\"img\" aria-label=\"Confusion "
            "matrix\" xmlns=\"http://www.w3.org/2000/svg\">\n<defs><linearGradient id=\"fm-heat\" "
            "x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">",
            W, H);
    char col[8];
    for (int i = 0; i <= 8; i++) {
        fm__heat_color(i / 8.0, col);
        fprintf(out, "<stop offset=\"%g\" stop-color=\"%s\"/>", i / 8.0, col);
    }
    fputs("</linearGradient></defs>\n", out);

    for (int t = 0; t < K; t++) {
        uint64_t row = 0;
        for (int p = 0; p < K; p++) row += cm[t][p];
        for (int p = 0; p < K; p++) {
            double share = row ? (double)cm[t][p] / (double)row : 0, v = sqrt(share);
            fm__heat_color(v, col);
            double x = ox + p * cs, y = oy + t * cs;
            fprintf(out,
                    "<g><title>true %s, predicted %s: %u (%.1f%% of %s)</title>"
                    "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"%s\" "
                    "stroke=\"#fff\"/>",
                    fm_class_names[t], fm_class_names[p], cm[t][p], share * 100, fm_class_names[t],
                    x, y, cs, cs, col);
            fprintf(out,
                    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"h-n%s\">%u</text></g>\n",
                    x + cs / 2, y + cs / 2 + 4.5,
                    cm[t][p] == 0 ? " h-zero" : v > 0.55 ? " h-dark" : "", cm[t][p]);
        }
    }
    for (int k = 0; k < K; k++) {
        fprintf(out, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" class=\"h-label\">%s</text>\n",
                ox - 8, oy + k * cs + cs / 2 + 4, fm_class_names[k]);
        fprintf(out,
                "<text transform=\"translate(%.1f %.0f) rotate(-40)\" text-anchor=\"end\" "
                "class=\"h-label\">%s</text>\n",
                ox + k * cs + cs / 2 + 4, oy + side + 14, fm_class_names[k]);
    }
    fprintf(out,
            "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\" class=\"c-axis\">Predicted "
            "class</text>\n<text transform=\"translate(14 %.1f) rotate(-90)\" "
            "text-anchor=\"middle\" class=\"c-axis\">True class</text>\n",
            ox + side / 2, H - 6, oy + side / 2);

    /* colour key with ticks at readable shares (positions on the sqrt scale) */
    const double kx = ox + side + 22, kw = 14;
    fprintf(out,
            "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"url(#fm-heat)\" "
            "stroke=\"#c8ccd2\"/>\n",
            kx, oy, kw, side);
    static const double shares[] = {0, 0.01, 0.05, 0.2, 0.5, 1};
    static const char *const share_text[] = {"0%", "1%", "5%", "20%", "50%", "100%"};
    for (size_t i = 0; i < sizeof shares / sizeof shares[0]; i++) {
        double y = oy + side - sqrt(shares[i]) * side;
        fprintf(out,
                "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#6b7280\"/>"
                "<text x=\"%.0f\" y=\"%.1f\" class=\"c-tick\">%s</text>\n",
                kx + kw, y, kx + kw + 4, y, kx + kw + 7, y + 4, share_text[i]);
    }
    fprintf(out,
            "<text transform=\"translate(%.0f %.1f) rotate(90)\" text-anchor=\"middle\" "
            "class=\"c-tick\">share of the true class</text>\n</svg>\n",
            kx + kw + 46, oy + side / 2);
}
