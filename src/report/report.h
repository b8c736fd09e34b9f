/* Internal pieces of the HTML report (src/report/): reading a run folder,
 * base64 and in-memory PNG for data URIs, and SVG charts. Each writer emits
 * text to a FILE* so the report streams into one file and tests can capture
 * any piece with open_memstream. */
#ifndef FM_REPORT_REPORT_H
#define FM_REPORT_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fmnist/fmnist.h"

/* ---- run folder ---------------------------------------------------------- */

/* One row of log.csv; a column the file lacks, or an empty/"nan" field, is NAN. */
typedef struct fm__log_row {
    int epoch;
    double loss, accuracy, val_loss, val_accuracy, learning_rate, seconds;
} fm__log_row;

typedef struct fm__run_log {
    size_t n;
    fm__log_row *rows;
} fm__run_log;

/* Reads log.csv: a header naming its columns (any order; "epoch" required,
 * unknown ones ignored), then one row per epoch with strictly increasing
 * epochs from 1. Errors name the file and line. */
int fm__run_log_read(const char *path, fm__run_log *log, fm_err *err);
void fm__run_log_free(fm__run_log *log);

/* ---- encoding ------------------------------------------------------------ */

/* Standard base64 (RFC 4648, padded) of data[0..n). */
void fm__base64_write(FILE *out, const uint8_t *data, size_t n);

/* Writes s with &, <, >, " and ' escaped, for HTML text and attributes, and
 * U+FFFD for each byte that starts no UTF-8 sequence. */
void fm__html_escape(FILE *out, const char *s);

/* ---- charts -------------------------------------------------------------- */

/* Round tick positions covering [lo, hi]: first, step and count (>= 2) for
 * about `target` intervals, with step 1, 2 or 5 times a power of ten. When
 * integer != 0 the step is at least 1 (epochs). */
typedef struct fm__ticks {
    double first, step;
    int count;
} fm__ticks;

fm__ticks fm__nice_ticks(double lo, double hi, int target, int integer);

typedef struct fm__series {
    const char *name;  /* legend text */
    const char *color; /* stroke colour */
    const char *dash;  /* stroke-dasharray, or NULL for solid */
    const double *y;   /* one value per x; NAN leaves a gap */
} fm__series;

/* A vertical line across the plot at x, labelled at the top. */
typedef struct fm__marker {
    double x;
    const char *label;
    const char *color;
    const char *dash; /* NULL = solid */
} fm__marker;

typedef struct fm__chart {
    const char *title, *x_label, *y_label;
    int width, height; /* viewBox size without the marker-label band, which adds
                        * a row per stack of labels; the SVG scales to its container */
    size_t n;          /* points per series */
    const double *x;   /* n increasing x values (epochs) */
    const fm__series *series;
    int n_series;
    const fm__marker *markers;
    int n_markers;
    int percent; /* y values are fractions shown as percentages */
} fm__chart;

/* An inline <svg> line chart: framed plot, labelled axes with round ticks,
 * legend, markers labelled in a band above the plot (earlier markers win a
 * place first; labels never overlap), and point dots with tooltips when the
 * points are few. A chart with no finite value says so. */
void fm__svg_chart(FILE *out, const fm__chart *c);

/* An inline <svg> heat map of a confusion matrix ([true][predicted] counts)
 * with counts in the cells, class names on both axes and a colour key;
 * colour is the share of the true class. */
void fm__svg_confusion(FILE *out, const uint32_t confusion[FM_NUM_CLASSES][FM_NUM_CLASSES]);

/* The sequential colour ("#rrggbb", 8 bytes) for t in [0, 1]: near-white to
 * dark blue, monotone in lightness so it reads in grey and for colour-blind
 * readers. */
void fm__heat_color(double t, char out[8]);

#endif
