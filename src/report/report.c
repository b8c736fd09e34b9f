/* fm_report_write: one self-contained HTML page about a training run. It
 * reads the run folder (log.csv, run.json, the saved model), evaluates the
 * model on the test set once (probabilities kept for the mistake gallery) and
 * streams the page: inline CSS and SVG, images as PNG data URIs, no scripts,
 * no network, system fonts only. What is absent (no model yet, no data) is
 * said in the page; what is broken (unreadable log, corrupt model) fails. */
#include "core/png.h"
#include "fmnist/fmnist.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/lock.h"
#include "model/infer.h"
#include "report/report.h"
#include "train/train.h"

#define PATH_CAP 4096
#define MISTAKES 20
#define EXAMPLES_PER_CLASS 16

/* Okabe-Ito colours: distinguishable with every common colour-vision deficiency */
#define C_TRAIN "#0072B2"
#define C_VAL "#D55E00"
#define C_BEST "#009E73"
#define C_RESTORED "#CC79A7"
#define C_LR "#6b7280"

typedef struct {
    int done;    /* model and test set were both available */
    size_t n;    /* test images */
    float *probs; /* n * FM_NUM_CLASSES */
    uint8_t *pred;
    uint32_t cm[FM_NUM_CLASSES][FM_NUM_CLASSES];
    double loss, accuracy;
    size_t mistakes[MISTAKES];
    int n_mistakes;
} evaluation;

typedef struct {
    const char *run_dir, *data_dir;
    fm__run_log log;
    fm__json *run;    /* run.json, or NULL */
    fm_model *model;  /* or NULL */
    const char *model_file; /* which file it came from */
    int use_tta;            /* 0: the test evaluation without test-time augmentation */
    fm_tta file_tta;        /* what the model file records */
    fm_images test;   /* count 0 when not loaded */
    evaluation ev;
    char notes[4][600]; /* what the page had to leave out, shown at the top */
    int n_notes;
    int best_epoch, restored_epoch; /* 0 = unknown */
} report;

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void note(report *r, const char *fmt, ...) FM__PRINTF(2, 3);
static void note(report *r, const char *fmt, ...) {
    if (r->n_notes == 4) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->notes[r->n_notes++], sizeof r->notes[0], fmt, ap);
    va_end(ap);
}

/* ---- run.json lookups (keys may be missing: every caller has a fallback) */

static const fm__json *jget(const report *r, const char *section, const char *key) {
    return fm__json_get(fm__json_get(r->run, section), key);
}

static int jnum(const report *r, const char *section, const char *key, double *out) {
    const fm__json *v = jget(r, section, key);
    if (!v || v->type != FM__JSON_NUMBER || !isfinite(v->number)) return 0;
    *out = v->number;
    return 1;
}

static int jbool(const report *r, const char *section, const char *key, int *out) {
    const fm__json *v = jget(r, section, key);
    if (!v || v->type != FM__JSON_BOOL) return 0;
    *out = v->boolean;
    return 1;
}

static const char *jstr(const report *r, const char *section, const char *key) {
    const fm__json *v = jget(r, section, key);
    return v && v->type == FM__JSON_STRING ? v->string : NULL;
}

/* ---- evaluation ---------------------------------------------------------- */

/* The test pass as fm_model_evaluate makes it (same inference, same batches),
 * so the loss, accuracy and confusion matrix are fmnist eval's to the bit;
 * the probabilities are kept for the mistake gallery. */
static int evaluate(report *r, fm_err *err) {
    evaluation *ev = &r->ev;
    size_t n = r->test.count; /* >= 1: fm_data_load refuses an empty set */
    if (fm__check_io(r->model, err) < 0) return -1;
    ev->probs = malloc(n * FM_NUM_CLASSES * sizeof *ev->probs);
    ev->pred = malloc(n);
    if (!ev->probs || !ev->pred) return fm__err(err, "test evaluation: out of memory");
    int batch = n < FM__EVAL_BATCH ? (int)n : FM__EVAL_BATCH;
    if (fm__model_infer(r->model, r->test.pixels, r->test.labels, n, batch, ev->probs, &ev->loss,
                        err) < 0)
        return -1;
    size_t correct = 0;
    for (size_t i = 0; i < n; i++) {
        int best = fm__argmax(ev->probs + i * FM_NUM_CLASSES, FM_NUM_CLASSES);
        int y = r->test.labels[i];
        ev->pred[i] = (uint8_t)best;
        ev->cm[y][best]++;
        correct += best == y;
    }
    ev->n = n;
    ev->accuracy = (double)correct / (double)n;

    /* the most confident mistakes: keep the top MISTAKES by predicted probability */
    for (size_t i = 0; i < n; i++) {
        if (ev->pred[i] == r->test.labels[i]) continue;
        float conf = ev->probs[i * FM_NUM_CLASSES + ev->pred[i]];
        int pos = ev->n_mistakes;
        while (pos > 0 && ev->probs[ev->mistakes[pos - 1] * FM_NUM_CLASSES +
                                    ev->pred[ev->mistakes[pos - 1]]] < conf)
            pos--;
        if (pos >= MISTAKES) continue;
        int last = ev->n_mistakes < MISTAKES ? ev->n_mistakes : MISTAKES - 1;
        memmove(&ev->mistakes[pos + 1], &ev->mistakes[pos], (size_t)(last - pos) * sizeof(size_t));
        ev->mistakes[pos] = i;
        if (ev->n_mistakes < MISTAKES) ev->n_mistakes++;
    }
    ev->done = 1;
    return 0;
}

/* ---- formatting ---------------------------------------------------------- */

static const char *fmt_count(char *buf, size_t size, uint64_t v) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v), o = 0;
    for (int i = 0; i < n && o + 2 < (int)size; i++) {
        if (i && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
    return buf;
}

static const char *fmt_duration(char *buf, size_t size, double s) {
    if (!isfinite(s) || s < 0) snprintf(buf, size, "—");
    else if (s < 60) snprintf(buf, size, "%.1f s", s);
    else if (s < 3600) snprintf(buf, size, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, size, "%d h %02d min", (int)(s / 3600), (int)fmod(s / 60, 60));
    return buf;
}

static const char *fmt_pct(char *buf, size_t size, double v) {
    if (isfinite(v)) snprintf(buf, size, "%.2f%%", v * 100);
    else snprintf(buf, size, "—");
    return buf;
}

/* 0.0005 -> "5e-4", 0.00025 -> "2.5e-4": short enough for a chart label */
static const char *fmt_lr(char *buf, size_t size, double v) {
    if (!(v > 0) || !isfinite(v)) {
        snprintf(buf, size, "%g", v);
        return buf;
    }
    int e = (int)floor(log10(v) + 1e-9);
    double m = v / pow(10, e);
    snprintf(buf, size, "%.3ge%d", m, e);
    return buf;
}

static void write_img(FILE *out, const uint8_t *pixels, const char *cls, const char *alt,
                      int *failed, fm_err *err) {
    uint8_t *png;
    size_t len;
    if (*failed || fm__png_encode_grey(pixels, FM_IMAGE_COLS, FM_IMAGE_ROWS, &png, &len, err)) {
        *failed = 1;
        return;
    }
    fprintf(out, "<img class=\"%s\" width=\"28\" height=\"28\" alt=\"", cls);
    fm__html_escape(out, alt);
    fputs("\" src=\"data:image/png;base64,", out);
    fm__base64_write(out, png, len);
    fputs("\">", out);
    free(png);
}

/* ---- the page ------------------------------------------------------------ */

static const char *const css =
    ":root{--bg:#f3f4f6;--card:#fff;--ink:#1b1f24;--muted:#5d6673;--line:#e2e5e9;"
    "--soft:#f7f8fa;--accent:#0072B2;--bad:#D55E00}\n"
    "*{box-sizing:border-box}\n"
    "html{-webkit-text-size-adjust:100%}\n"
    "body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 system-ui,-apple-system,"
    "\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,\"Noto Sans\",\"Liberation Sans\",sans-serif}\n"
    "main{max-width:1200px;margin:0 auto;padding:28px 24px 40px}\n"
    "h1{font-size:26px;line-height:1.2;margin:0;letter-spacing:-.01em}\n"
    "h2{font-size:18px;margin:0 0 2px}\n"
    "h3{font-size:14px;margin:16px 0 6px;color:var(--muted);text-transform:uppercase;"
    "letter-spacing:.05em}\n"
    ".sub{color:var(--muted);margin:6px 0 0;font-size:14px}\n"
    ".sub code{font-size:13px}\n"
    ".lead{color:var(--muted);margin:0 0 14px;font-size:14px}\n"
    "code,pre{font-family:ui-monospace,\"SF Mono\",Menlo,Consolas,\"DejaVu Sans Mono\","
    "\"Liberation Mono\",monospace}\n"
    ".tiles{display:grid;grid-template-columns:repeat(5,minmax(0,1fr));gap:14px;margin:22px 0}\n"
    ".tile{background:var(--card);border:1px solid var(--line);border-radius:12px;"
    "padding:14px 16px}\n"
    ".tile .k{font-size:12px;font-weight:600;text-transform:uppercase;letter-spacing:.06em;"
    "color:var(--muted)}\n"
    ".tile .v{font-size:28px;font-weight:650;line-height:1.25;margin-top:2px;"
    "font-variant-numeric:tabular-nums}\n"
    ".tile .d{font-size:13px;color:var(--muted)}\n"
    ".tile.main{border-color:#9cc3e0;box-shadow:inset 4px 0 0 var(--accent)}\n"
    ".card{background:var(--card);border:1px solid var(--line);border-radius:12px;"
    "padding:20px 24px;margin:0 0 18px;box-shadow:0 1px 2px rgba(16,24,40,.04)}\n"
    ".grid2{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:28px}\n"
    ".grid-cm{display:grid;grid-template-columns:minmax(0,13fr) minmax(0,11fr);gap:24px;"
    "align-items:start}\n"
    ".grid-model{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:28px}\n"
    "@media (max-width:900px){.grid2,.grid-cm,.grid-model{grid-template-columns:1fr}"
    ".tiles{grid-template-columns:repeat(2,1fr)}}\n"
    "svg{display:block;width:100%;height:auto}\n"
    "svg text{font-family:inherit}\n"
    ".c-title{font-size:14px;font-weight:650;fill:var(--ink)}\n"
    ".c-legend{font-size:12px;fill:var(--ink)}\n"
    ".c-grid line{stroke:#eceef1;stroke-width:1}\n"
    ".c-tick{font-size:11px;fill:var(--muted);font-variant-numeric:tabular-nums}\n"
    ".c-axis{font-size:12px;font-weight:600;fill:#3b4350}\n"
    ".c-frame{fill:none;stroke:#c8ccd2}\n"
    ".c-mark{font-size:11px;font-weight:600;paint-order:stroke;stroke:#fff;stroke-width:3px}\n"
    ".c-empty{font-size:14px;fill:var(--muted)}\n"
    ".h-n{font-size:12px;fill:#1b1f24;font-variant-numeric:tabular-nums}\n"
    ".h-dark{fill:#fff;font-weight:600}\n"
    ".h-zero{fill:#b8bec6}\n"
    ".h-label{font-size:12px;fill:#3b4350}\n"
    ".key{display:flex;flex-wrap:wrap;gap:6px 20px;font-size:13px;color:var(--muted);"
    "margin-top:10px}\n"
    ".key i{display:inline-block;width:22px;height:0;border-top:2px solid;vertical-align:middle;"
    "margin-right:7px}\n"
    "table{border-collapse:collapse;width:100%;font-size:14px;font-variant-numeric:tabular-nums}\n"
    "th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:left;"
    "vertical-align:top}\n"
    "th{font-size:12px;font-weight:600;color:var(--muted);text-transform:uppercase;"
    "letter-spacing:.04em}\n"
    "td.num,th.num{text-align:right}\n"
    "td.cls{white-space:nowrap;font-weight:500}\n"
    ".kv .h{color:var(--muted);margin-left:8px}\n"
    "tr:last-child td{border-bottom:0}\n"
    ".kv td:first-child{color:var(--muted);width:42%;font-family:ui-monospace,\"SF Mono\","
    "Menlo,Consolas,\"DejaVu Sans Mono\",monospace;font-size:13px}\n"
    ".kv td{word-break:break-word}\n"
    ".meter{position:relative;background:var(--soft);border-radius:4px;height:22px;"
    "min-width:80px}\n"
    ".meter i{position:absolute;left:0;top:0;bottom:0;background:#cfe3f2;border-radius:4px}\n"
    ".meter b{position:relative;display:block;text-align:right;padding:1px 7px;font-weight:500;"
    "font-size:13px}\n"
    ".meter.low i{background:#f5d0b5}\n"
    ".thumbs{display:flex;flex-wrap:wrap;gap:4px}\n"
    ".ex-row{display:grid;grid-template-columns:118px 1fr;align-items:center;padding:5px 0;"
    "border-bottom:1px solid var(--line)}\n"
    ".ex-row:last-child{border-bottom:0}\n"
    ".ex-row .name{font-weight:600;font-size:14px}\n"
    "img.px{width:56px;height:56px;image-rendering:pixelated;border-radius:3px;"
    "background:#000;display:block}\n"
    "img.px.wrong{outline:3px solid var(--bad);outline-offset:-3px}\n"
    ".mis{display:grid;grid-template-columns:repeat(10,minmax(0,1fr));gap:12px}\n"
    ".mis figure{margin:0;font-size:12px;line-height:1.35}\n"
    ".mis img{width:100%;height:auto;aspect-ratio:1;image-rendering:pixelated;border-radius:4px;"
    "display:block;background:#000;margin-bottom:5px}\n"
    ".mis .t{color:var(--muted)}\n"
    ".mis .p{font-weight:600;color:var(--bad)}\n"
    ".note{background:#fff7e8;border:1px solid #f1d9a6;border-radius:10px;padding:10px 14px;"
    "margin:0 0 14px;font-size:14px}\n"
    "pre{background:var(--soft);border:1px solid var(--line);border-radius:8px;padding:12px 14px;"
    "font-size:12px;line-height:1.45;overflow:auto;margin:0}\n"
    "pre.wrap{white-space:pre-wrap;overflow-wrap:anywhere}\n"
    ".badge{display:inline-block;font-size:12px;font-weight:600;padding:1px 8px;"
    "border-radius:999px;background:#e7f1f8;color:#0b5a8c;vertical-align:middle}\n"
    "footer{color:var(--muted);font-size:12px;text-align:center;margin-top:22px}\n";

static void write_head(FILE *out, const report *r) {
    fputs("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<title>fmnist report: ",
          out);
    fm__html_escape(out, r->run_dir);
    fprintf(out, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n", css);

    char when[64];
    time_t now = time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm) || !strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm))
        snprintf(when, sizeof when, "—");
    fputs("<header>\n<h1>Fashion-MNIST training report</h1>\n<p class=\"sub\">Run <code>", out);
    fm__html_escape(out, r->run_dir);
    fputs("</code>", out);
    const char *model_src = jstr(r, "config", "model");
    if (model_src) {
        fputs(" · model <code>", out);
        fm__html_escape(out, model_src);
        fputs("</code>", out);
    }
    if (r->test.count) {
        fputs(" · test data <code>", out);
        fm__html_escape(out, r->data_dir);
        fputs("</code>", out);
    }
    fprintf(out, " · generated %s</p>\n</header>\n", when);
}

static void tile(FILE *out, int main_tile, const char *key, const char *value, const char *detail) {
    fprintf(out, "<div class=\"tile%s\"><div class=\"k\">%s</div><div class=\"v\">%s</div>",
            main_tile ? " main" : "", key, value);
    fputs("<div class=\"d\">", out);
    fm__html_escape(out, detail);
    fputs("</div></div>\n", out);
}

static const fm__log_row *row_of(const report *r, int epoch) {
    for (size_t i = 0; i < r->log.n; i++)
        if (r->log.rows[i].epoch == epoch) return &r->log.rows[i];
    return NULL;
}

static double total_seconds(const report *r) {
    double t;
    if (jnum(r, "results", "train_seconds", &t)) return t;
    t = 0;
    for (size_t i = 0; i < r->log.n; i++)
        if (isfinite(r->log.rows[i].seconds)) t += r->log.rows[i].seconds;
    return r->log.n ? t : NAN;
}

static void write_tiles(FILE *out, const report *r) {
    char v[64], d[160], b1[32], b2[32];
    const fm__log_row *last = r->log.n ? &r->log.rows[r->log.n - 1] : NULL;
    fputs("<section class=\"tiles\">\n", out);

    double acc, loss;
    if (r->ev.done) {
        snprintf(d, sizeof d, "loss %.4f on %s images%s", r->ev.loss,
                 fmt_count(b1, sizeof b1, r->ev.n),
                 fm_model_tta(r->model) == FM_TTA_FLIP ? " (flip TTA)" : "");
        tile(out, 1, "Test accuracy", fmt_pct(v, sizeof v, r->ev.accuracy), d);
    } else if (jnum(r, "results", "test_accuracy", &acc)) {
        if (jnum(r, "results", "test_loss", &loss)) snprintf(d, sizeof d, "loss %.4f (from run.json)", loss);
        else snprintf(d, sizeof d, "from run.json");
        tile(out, 1, "Test accuracy", fmt_pct(v, sizeof v, acc), d);
    } else {
        tile(out, 1, "Test accuracy", "—", "not evaluated");
    }

    const fm__log_row *best = row_of(r, r->best_epoch);
    if (best) {
        snprintf(d, sizeof d, "best, epoch %d (checkpoint)", best->epoch);
        tile(out, 0, "Validation accuracy", fmt_pct(v, sizeof v, best->val_accuracy), d);
    } else {
        tile(out, 0, "Validation accuracy", "—", "no validation logged");
    }

    const fm__log_row *rest = row_of(r, r->restored_epoch);
    const fm__log_row *tr = rest ? rest : last;
    if (tr) {
        snprintf(d, sizeof d, "epoch %d%s, loss %.4f", tr->epoch, rest ? " (restored)" : "", tr->loss);
        tile(out, 0, "Train accuracy", fmt_pct(v, sizeof v, tr->accuracy), d);
    } else {
        tile(out, 0, "Train accuracy", "—", "no epochs logged");
    }

    double epochs_max;
    int flag;
    snprintf(v, sizeof v, "%zu", r->log.n);
    if (jbool(r, "results", "diverged", &flag) && flag)
        snprintf(d, sizeof d, "diverged: the loss stopped being finite");
    else if (jbool(r, "results", "stopped_early", &flag) && flag)
        snprintf(d, sizeof d, "stopped early (patience reached)");
    else if (jnum(r, "config", "epochs_max", &epochs_max))
        snprintf(d, sizeof d, "of at most %.0f", epochs_max);
    else
        snprintf(d, sizeof d, "logged in log.csv");
    tile(out, 0, "Epochs", v, d);

    double secs = total_seconds(r);
    if (r->log.n && isfinite(secs))
        snprintf(d, sizeof d, "%s per epoch", fmt_duration(b2, sizeof b2, secs / (double)r->log.n));
    else
        snprintf(d, sizeof d, "not logged");
    tile(out, 0, "Training time", fmt_duration(b1, sizeof b1, secs), d);
    fputs("</section>\n", out);
}

static void write_curves(FILE *out, const report *r) {
    size_t n = r->log.n;
    double *x = malloc((n ? n : 1) * 5 * sizeof *x);
    if (!x) return; /* a page without curves is better than none */
    double *loss = x + n, *vloss = loss + n, *acc = vloss + n, *vacc = acc + n;
    for (size_t i = 0; i < n; i++) {
        const fm__log_row *row = &r->log.rows[i];
        x[i] = row->epoch;
        loss[i] = row->loss, vloss[i] = row->val_loss;
        acc[i] = row->accuracy, vacc[i] = row->val_accuracy;
    }

    /* markers: the checkpoint and restored epochs first (their labels win a
     * place in the chart), then every learning-rate change */
    fm__marker *marks = malloc((n + 2) * sizeof *marks);
    char (*labels)[48] = malloc((n + 2) * sizeof *labels);
    int nm = 0, lr_changes = 0;
    if (!marks || !labels) {
        free(x), free(marks), free(labels);
        return;
    }
    if (r->best_epoch && r->best_epoch == r->restored_epoch) {
        snprintf(labels[nm], sizeof labels[0], "checkpoint = restored %d", r->best_epoch);
        marks[nm] = (fm__marker){r->best_epoch, labels[nm], C_BEST, NULL};
        nm++;
    } else {
        if (r->best_epoch) {
            snprintf(labels[nm], sizeof labels[0], "checkpoint %d", r->best_epoch);
            marks[nm] = (fm__marker){r->best_epoch, labels[nm], C_BEST, NULL};
            nm++;
        }
        if (r->restored_epoch) {
            snprintf(labels[nm], sizeof labels[0], "restored %d", r->restored_epoch);
            marks[nm] = (fm__marker){r->restored_epoch, labels[nm], C_RESTORED, "6 3"};
            nm++;
        }
    }
    for (size_t i = 1; i < n; i++) {
        double a = r->log.rows[i - 1].learning_rate, b = r->log.rows[i].learning_rate;
        if (!isfinite(a) || !isfinite(b) || fabs(a - b) <= 1e-9 * fabs(a)) continue;
        char lr[24];
        snprintf(labels[nm], sizeof labels[0], "lr %s", fmt_lr(lr, sizeof lr, b));
        marks[nm] = (fm__marker){r->log.rows[i].epoch, labels[nm], C_LR, "2 3"};
        nm++, lr_changes++;
    }

    fputs("<section class=\"card\">\n<h2>Learning curves</h2>\n<p class=\"lead\">Loss and accuracy "
          "per epoch on the training batches (running mean, with augmentation and dropout) and on "
          "the validation split.</p>\n<div class=\"grid2\">\n<div>\n",
          out);
    fm__series ls[2] = {{"train", C_TRAIN, "7 4", loss}, {"validation", C_VAL, NULL, vloss}};
    fm__chart c = {"Loss (cross-entropy)", "Epoch", "Loss", 580, 320, n, x, ls, 2, marks, nm, 0};
    fm__svg_chart(out, &c);
    fputs("</div>\n<div>\n", out);
    fm__series as[2] = {{"train", C_TRAIN, "7 4", acc}, {"validation", C_VAL, NULL, vacc}};
    c.title = "Accuracy";
    c.y_label = "Accuracy";
    c.series = as;
    c.percent = 1;
    fm__svg_chart(out, &c);
    fputs("</div>\n</div>\n<div class=\"key\">", out);
    if (r->best_epoch && r->best_epoch == r->restored_epoch)
        fprintf(out,
                "<span><i style=\"border-color:" C_BEST "\"></i>checkpoint and restored "
                "weights: epoch %d, best validation accuracy and lowest validation loss</span>",
                r->best_epoch);
    else if (r->best_epoch)
        fprintf(out,
                "<span><i style=\"border-color:" C_BEST "\"></i>checkpoint: best validation "
                "accuracy, epoch %d (<code>best.safetensors</code>)</span>",
                r->best_epoch);
    if (r->restored_epoch && r->restored_epoch != r->best_epoch)
        fprintf(out,
                "<span><i style=\"border-color:" C_RESTORED ";border-top-style:dashed\"></i>"
                "restored: lowest validation loss, epoch %d (<code>model.safetensors</code>)</span>",
                r->restored_epoch);
    if (lr_changes) {
        /* the whole schedule in words: crowded chart labels may have been dropped */
        char a[24], b[24];
        fprintf(out,
                "<span><i style=\"border-color:" C_LR ";border-top-style:dotted\"></i>learning "
                "rate %s → %s, reduced at epoch%s ",
                fmt_lr(a, sizeof a, r->log.rows[0].learning_rate),
                fmt_lr(b, sizeof b, r->log.rows[n - 1].learning_rate), lr_changes == 1 ? "" : "s");
        for (int i = nm - lr_changes; i < nm; i++) /* the learning-rate markers come last */
            fprintf(out, "%s%g", i > nm - lr_changes ? ", " : "", marks[i].x);
        fputs("</span>", out);
    }
    else if (n && isfinite(r->log.rows[0].learning_rate))
        fprintf(out, "<span>learning rate constant at %g</span>", r->log.rows[0].learning_rate);
    fputs("</div>\n</section>\n", out);
    free(x), free(marks), free(labels);
}

static void meter(FILE *out, double v, int low) {
    char b[32];
    fprintf(out, "<td><div class=\"meter%s\"><i style=\"width:%.1f%%\"></i><b>%s</b></div></td>",
            low ? " low" : "", isfinite(v) ? v * 100 : 0, fmt_pct(b, sizeof b, v));
}

static void write_confusion(FILE *out, const report *r) {
    const evaluation *ev = &r->ev;
    char b1[32], b2[32];
    fprintf(out,
            "<section class=\"card\">\n<h2>Test set</h2>\n<p class=\"lead\">%s on %s test images "
            "(<code>",
            fmt_pct(b1, sizeof b1, ev->accuracy), fmt_count(b2, sizeof b2, ev->n));
    fm__html_escape(out, r->model_file);
    fprintf(out, "</code>), loss %.4f.", ev->loss);
    if (fm_model_tta(r->model) == FM_TTA_FLIP)
        fputs(" Test-time augmentation: flip (each probability is the mean of the image's and "
              "its left-right mirror's).",
              out);
    else if (r->file_tta != FM_TTA_NONE)
        fprintf(out, " Without test-time augmentation (turned off; the model file records %s).",
                fm_tta_name(r->file_tta));
    fputs(" Rows are the true class; colour shows the share of each true class (square-root "
          "scale), so small confusions stay visible.</p>\n<div class=\"grid-cm\">\n<div>\n",
          out);
    fm__svg_confusion(out, ev->cm);
    fputs("</div>\n<div>\n<table>\n<thead><tr><th>Class</th><th>Precision</th><th>Recall</th>"
          "<th class=\"num\">F1</th><th class=\"num\">Images</th></tr></thead>\n<tbody>\n",
          out);
    /* flag the weakest classes so the eye finds them */
    double f1[FM_NUM_CLASSES], sorted[FM_NUM_CLASSES];
    double prec[FM_NUM_CLASSES], rec[FM_NUM_CLASSES];
    uint64_t support[FM_NUM_CLASSES];
    for (int k = 0; k < FM_NUM_CLASSES; k++) {
        uint64_t col = 0, row = 0;
        for (int j = 0; j < FM_NUM_CLASSES; j++) col += ev->cm[j][k], row += ev->cm[k][j];
        prec[k] = col ? (double)ev->cm[k][k] / (double)col : NAN;
        rec[k] = row ? (double)ev->cm[k][k] / (double)row : NAN;
        f1[k] = prec[k] + rec[k] > 0 ? 2 * prec[k] * rec[k] / (prec[k] + rec[k]) : NAN;
        support[k] = row;
        sorted[k] = isfinite(f1[k]) ? f1[k] : 2;
    }
    for (int i = 1; i < FM_NUM_CLASSES; i++) /* insertion sort: 10 values */
        for (int j = i; j > 0 && sorted[j] < sorted[j - 1]; j--) {
            double t = sorted[j];
            sorted[j] = sorted[j - 1], sorted[j - 1] = t;
        }
    double low_cut = sorted[1]; /* the two weakest */
    for (int k = 0; k < FM_NUM_CLASSES; k++) {
        int low = isfinite(f1[k]) && f1[k] <= low_cut && f1[k] < 1;
        fprintf(out, "<tr><td class=\"cls\">%s</td>", fm_class_names[k]);
        meter(out, prec[k], low);
        meter(out, rec[k], low);
        if (isfinite(f1[k])) fprintf(out, "<td class=\"num\">%.3f</td>", f1[k]);
        else fputs("<td class=\"num\">—</td>", out);
        fprintf(out, "<td class=\"num\">%s</td></tr>\n", fmt_count(b1, sizeof b1, support[k]));
    }
    fputs("</tbody>\n</table>\n<p class=\"lead\" style=\"margin-top:10px\">Precision: of the "
          "images predicted as the class, the share that are it. Recall: of the images of the "
          "class, the share found. The two weakest classes by F1 are shaded orange.</p>\n"
          "</div>\n</div>\n</section>\n",
          out);
}

static void write_mistakes(FILE *out, const report *r, int *failed, fm_err *err) {
    const evaluation *ev = &r->ev;
    size_t wrong = 0;
    for (size_t i = 0; i < ev->n; i++) wrong += ev->pred[i] != r->test.labels[i];
    char b[32];
    fprintf(out,
            "<section class=\"card\">\n<h2>Most confident mistakes</h2>\n<p class=\"lead\">The "
            "%d wrong predictions made with the highest probability, of %s mistakes in all.</p>\n",
            ev->n_mistakes, fmt_count(b, sizeof b, wrong));
    if (!ev->n_mistakes) fputs("<p>No test image was misclassified.</p>\n", out);
    fputs("<div class=\"mis\">\n", out);
    for (int m = 0; m < ev->n_mistakes; m++) {
        size_t i = ev->mistakes[m];
        int y = r->test.labels[i], p = ev->pred[i];
        char alt[96];
        snprintf(alt, sizeof alt, "test image %zu: %s predicted as %s", i, fm_class_names[y],
                 fm_class_names[p]);
        fputs("<figure>", out);
        write_img(out, r->test.pixels + i * FM_IMAGE_PIXELS, "big", alt, failed, err);
        fprintf(out,
                "<figcaption><div class=\"t\">true %s</div><div class=\"p\">%s %.1f%%</div>"
                "<div class=\"t\">#%zu</div></figcaption></figure>\n",
                fm_class_names[y], fm_class_names[p], ev->probs[i * FM_NUM_CLASSES + p] * 100.0,
                i);
    }
    fputs("</div>\n</section>\n", out);
}

static void write_examples(FILE *out, const report *r, int *failed, fm_err *err) {
    fprintf(out,
            "<section class=\"card\">\n<h2>Test images by class</h2>\n<p class=\"lead\">The first "
            "%d test images of each class%s.</p>\n",
            EXAMPLES_PER_CLASS,
            r->ev.done ? "; those the model gets wrong are outlined in orange (hover for the "
                         "prediction)"
                       : "");
    for (int k = 0; k < FM_NUM_CLASSES; k++) {
        fprintf(out, "<div class=\"ex-row\"><div class=\"name\">%s</div><div class=\"thumbs\">",
                fm_class_names[k]);
        int shown = 0;
        for (size_t i = 0; i < r->test.count && shown < EXAMPLES_PER_CLASS; i++) {
            if (r->test.labels[i] != k) continue;
            char alt[96];
            int wrong = r->ev.done && r->ev.pred[i] != k;
            if (wrong)
                snprintf(alt, sizeof alt, "test image %zu: %s, predicted %s (%.1f%%)", i,
                         fm_class_names[k], fm_class_names[r->ev.pred[i]],
                         r->ev.probs[i * FM_NUM_CLASSES + r->ev.pred[i]] * 100.0);
            else
                snprintf(alt, sizeof alt, "test image %zu: %s", i, fm_class_names[k]);
            fputs("<span title=\"", out);
            fm__html_escape(out, alt);
            fputs("\">", out);
            write_img(out, r->test.pixels + i * FM_IMAGE_PIXELS, wrong ? "px wrong" : "px", alt,
                      failed, err);
            fputs("</span>", out);
            shown++;
        }
        if (!shown) fputs("<span class=\"lead\">none in the test set</span>", out);
        fputs("</div></div>\n", out);
    }
    fputs("</section>\n", out);
}

/* A JSON value as table text. */
static void json_value(FILE *out, const fm__json *v) {
    switch (v->type) {
    case FM__JSON_NULL: fputs("—", out); break;
    case FM__JSON_BOOL: fputs(v->boolean ? "yes" : "no", out); break;
    case FM__JSON_NUMBER:
        if (v->is_uint) fprintf(out, "%llu", (unsigned long long)v->uint);
        else if (v->number == floor(v->number) && fabs(v->number) < 1e15) fprintf(out, "%.0f", v->number);
        else fprintf(out, "%.6g", v->number);
        break;
    case FM__JSON_STRING: fm__html_escape(out, v->string); break;
    case FM__JSON_ARRAY:
        for (size_t i = 0; i < v->n; i++) {
            if (i) fputs(", ", out);
            if (v->items[i].type == FM__JSON_ARRAY || v->items[i].type == FM__JSON_OBJECT)
                fputs("…", out);
            else
                json_value(out, &v->items[i]);
        }
        break;
    case FM__JSON_OBJECT: fputs("…", out); break;
    }
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Rows for an object's members, nested objects with dotted keys. Values are
 * shown as recorded; accuracies and durations also in a readable form. */
static void json_rows(FILE *out, const char *prefix, const fm__json *v) {
    for (size_t i = 0; i < v->n; i++) {
        char key[256], b[32];
        snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", v->keys[i]);
        const fm__json *item = &v->items[i];
        if (item->type == FM__JSON_OBJECT) {
            json_rows(out, key, item);
            continue;
        }
        fputs("<tr><td>", out);
        fm__html_escape(out, key);
        fputs("</td><td>", out);
        json_value(out, item);
        if (item->type == FM__JSON_NUMBER && ends_with(key, "accuracy") && item->number >= 0 &&
            item->number <= 1)
            fprintf(out, "<span class=\"h\">%s</span>", fmt_pct(b, sizeof b, item->number));
        else if (item->type == FM__JSON_NUMBER && ends_with(key, "seconds") && item->number >= 60)
            fprintf(out, "<span class=\"h\">%s</span>", fmt_duration(b, sizeof b, item->number));
        fputs("</td></tr>\n", out);
    }
}

/* Per-epoch timing from the log itself, which every run has. */
static void write_timing(FILE *out, const report *r) {
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    size_t timed = 0;
    for (size_t i = 0; i < r->log.n; i++) {
        double s = r->log.rows[i].seconds;
        if (!isfinite(s)) continue;
        lo = fmin(lo, s), hi = fmax(hi, s), sum += s, timed++;
    }
    if (!timed) return;
    char a[32], b[32], c[32], d[32];
    fprintf(out,
            "<h3>Timing (log.csv)</h3><table class=\"kv\"><tbody><tr><td>epochs timed</td>"
            "<td>%zu</td></tr><tr><td>total</td><td>%s</td></tr><tr><td>per epoch</td><td>mean %s"
            "</td></tr><tr><td>fastest, slowest</td><td>%s, %s</td></tr></tbody></table>\n",
            timed, fmt_duration(a, sizeof a, sum), fmt_duration(b, sizeof b, sum / (double)timed),
            fmt_duration(c, sizeof c, lo), fmt_duration(d, sizeof d, hi));
}

static void write_run(FILE *out, const report *r) {
    fputs("<section class=\"card\">\n<h2>Run</h2>\n", out);
    if (!r->run || r->run->type != FM__JSON_OBJECT) {
        fputs(r->run ? "<p><code>run.json</code> does not hold an object.</p>\n"
                     : "<p>This run folder has no <code>run.json</code>: the configuration and "
                       "results were not recorded (a run still in progress, or an older one)."
                       "</p>\n",
              out);
        write_timing(out, r);
        fputs("</section>\n", out);
        return;
    }
    /* objects (config, results) side by side, timing under results, then the rest */
    fputs("<p class=\"lead\">As recorded in <code>run.json</code> by <code>fmnist train</code>."
          "</p>\n<div class=\"grid2\">\n",
          out);
    int timing_done = 0, scalars = 0;
    for (size_t i = 0; i < r->run->n; i++) {
        if (r->run->items[i].type != FM__JSON_OBJECT) {
            scalars = 1;
            continue;
        }
        fputs("<div><h3>", out);
        fm__html_escape(out, r->run->keys[i]);
        fputs("</h3><table class=\"kv\"><tbody>\n", out);
        json_rows(out, "", &r->run->items[i]);
        fputs("</tbody></table>\n", out);
        if (!strcmp(r->run->keys[i], "results")) {
            write_timing(out, r);
            timing_done = 1;
        }
        fputs("</div>\n", out);
    }
    if (scalars || !timing_done) {
        fputs("<div>", out);
        if (scalars) {
            fputs("<h3>other</h3><table class=\"kv\"><tbody>\n", out);
            for (size_t i = 0; i < r->run->n; i++) {
                if (r->run->items[i].type == FM__JSON_OBJECT) continue;
                fputs("<tr><td>", out);
                fm__html_escape(out, r->run->keys[i]);
                fputs("</td><td>", out);
                json_value(out, &r->run->items[i]);
                fputs("</td></tr>\n", out);
            }
            fputs("</tbody></table>\n", out);
        }
        if (!timing_done) write_timing(out, r);
        fputs("</div>\n", out);
    }
    fputs("</div>\n</section>\n", out);
}

static int write_model(FILE *out, const report *r, fm_err *err) {
    fputs("<section class=\"card\">\n<h2>Model</h2>\n", out);
    if (!r->model) {
        fputs("<p>No saved model in the run folder.</p>\n</section>\n", out);
        return 0;
    }
    size_t trainable, total = fm_model_param_count(r->model, &trainable);
    char a[32], b[32];
    fputs("<p class=\"lead\"><code>", out);
    fm__html_escape(out, r->model_file);
    fprintf(out, "</code>: %s parameters, %s trainable.</p>\n<div class=\"grid-model\">\n<div><h3>Summary"
                 "</h3><pre>",
            fmt_count(a, sizeof a, total), fmt_count(b, sizeof b, trainable));
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) return fm__err(err, "model summary: out of memory");
    fm_model_summary(r->model, mem);
    if (fclose(mem)) {
        free(text);
        return fm__err(err, "model summary: out of memory");
    }
    fm__html_escape(out, text);
    free(text);
    fputs("</pre></div>\n<div><h3>Description</h3><pre class=\"wrap\">", out);
    fm__html_escape(out, fm_model_description(r->model));
    fputs("</pre></div>\n</div>\n</section>\n", out);
    return 0;
}

static int write_page(FILE *out, report *r, fm_err *err) {
    int failed = 0;
    write_head(out, r);
    write_tiles(out, r);
    for (int i = 0; i < r->n_notes; i++) {
        fputs("<div class=\"note\">", out);
        fm__html_escape(out, r->notes[i]);
        fputs("</div>\n", out);
    }
    write_curves(out, r);
    if (r->ev.done) {
        write_confusion(out, r);
        write_mistakes(out, r, &failed, err);
    }
    if (r->test.count) write_examples(out, r, &failed, err);
    write_run(out, r);
    if (!failed && write_model(out, r, err)) failed = 1;
    fputs("<footer>Written by <code>fmnist report</code>. Self-contained: no scripts, fonts or "
          "network requests.</footer>\n</main>\n</body>\n</html>\n",
          out);
    return failed ? -1 : 0;
}

/* ---- gathering ----------------------------------------------------------- */

/* Best epoch (highest val_accuracy, first wins, as ModelCheckpoint saves on a
 * strict improvement) and restored epoch (lowest val_loss, first wins, as
 * EarlyStopping) from run.json when recorded, else from the log. */
static void find_epochs(report *r) {
    double v;
    if (jnum(r, "results", "best_epoch", &v) && v >= 1) r->best_epoch = (int)v;
    if (jnum(r, "results", "restored_epoch", &v) && v >= 1) r->restored_epoch = (int)v;
    double best_acc = -INFINITY, best_loss = INFINITY;
    int ba = 0, bl = 0;
    for (size_t i = 0; i < r->log.n; i++) {
        const fm__log_row *row = &r->log.rows[i];
        if (row->val_accuracy > best_acc) best_acc = row->val_accuracy, ba = row->epoch;
        if (row->val_loss < best_loss) best_loss = row->val_loss, bl = row->epoch;
    }
    if (!r->best_epoch) r->best_epoch = ba;
    if (!r->restored_epoch) r->restored_epoch = bl;
}

static int gather(report *r, fm_err *err) {
    char path[PATH_CAP];
    struct stat st;
    if (stat(r->run_dir, &st) != 0)
        return fm__err(err, "%s: no such run folder: %s", r->run_dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return fm__err(err, "%s: not a folder", r->run_dir);

    if (fm__path_join(path, PATH_CAP, r->run_dir, "log.csv", err) || fm__run_log_read(path, &r->log, err)) return -1;

    if (fm__path_join(path, PATH_CAP, r->run_dir, "run.json", err)) return -1;
    if (exists(path)) {
        char *text = NULL;
        size_t len = 0;
        fm_err jerr;
        if (fm__read_file(path, 64u << 20, &text, &len, err)) return -1;
        r->run = fm__json_parse(text, len, 0, &jerr);
        free(text);
        if (!r->run) return fm__err(err, "%s: %s", path, jerr.msg);
    } else {
        note(r, "%s has no run.json: configuration and results were not recorded.", r->run_dir);
    }
    find_epochs(r);

    /* the restored model, else the checkpoint (a run still in progress) */
    static const char *const files[] = {"model.safetensors", "best.safetensors"};
    for (int i = 0; i < 2 && !r->model; i++) {
        if (fm__path_join(path, PATH_CAP, r->run_dir, files[i], err)) return -1;
        if (!exists(path)) continue;
        if (!(r->model = fm_model_load(path, err))) return -1;
        r->model_file = files[i];
        r->file_tta = fm_model_tta(r->model);
        if (!r->use_tta && fm_model_set_tta(r->model, FM_TTA_NONE, err)) return -1;
        if (i == 1)
            note(r, "%s has no model.safetensors yet; the test results use %s, the best-accuracy "
                    "checkpoint.",
                 r->run_dir, files[i]);
    }
    if (!r->model)
        note(r, "%s holds no model.safetensors or best.safetensors: the test evaluation, "
                "confusion matrix and mistakes are left out.",
             r->run_dir);

    if (!r->data_dir) {
        fm_err derr;
        r->data_dir = fm_data_default_dir(&derr);
        if (!r->data_dir) {
            note(r, "No test data: %s", derr.msg);
            return 0;
        }
    }
    if (fm_data_load(r->data_dir, FM_SET_TEST, &r->test, err)) return -1;
    if (r->model && evaluate(r, err)) return -1;
    return 0;
}

int fm_report_write(const char *run_dir, const char *data_dir, const char *out_path, fm_err *err) {
    return fm_report_write_tta(run_dir, data_dir, out_path, 1, err);
}

int fm_report_write_tta(const char *run_dir, const char *data_dir, const char *out_path,
                        int use_tta, fm_err *err) {
    report *r = calloc(1, sizeof *r);
    if (!r) return fm__err(err, "report: out of memory");
    r->use_tta = use_tta;
    r->run_dir = run_dir;
    r->data_dir = data_dir;
    char def_out[PATH_CAP];
    int rc = -1;
    fm__lock lock = {.fd = -1};
    if (!out_path) {
        if (fm__path_join(def_out, PATH_CAP, run_dir, "report.html", err)) goto done;
        out_path = def_out;
    }
    /* Writing into the run folder takes its lock: not while a run writes there. */
    char out_dir[PATH_CAP];
    if (fm__parent_dir(out_dir, sizeof out_dir, out_path, err) < 0) goto done;
    if (fm_same_file(out_dir, run_dir) &&
        fm__lock_take(&lock, run_dir, "write the report elsewhere", err) < 0)
        goto done;
    if (gather(r, err)) goto done;

    /* made in memory (a few MB at most), then written atomically, so a
     * failure never leaves half a page */
    char *page = NULL;
    size_t page_len = 0;
    FILE *mem = open_memstream(&page, &page_len);
    if (!mem) {
        fm__err(err, "%s: out of memory", out_path);
        goto done;
    }
    int failed = write_page(mem, r, err);
    int bad = ferror(mem);
    if ((fclose(mem) != 0 || bad) && !failed) failed = fm__err(err, "%s: out of memory", out_path);
    if (!failed) failed = fm__write_file_atomic(out_path, page, page_len, err);
    free(page);
    if (failed) goto done;
    /* success: the message lists what the page had to leave out */
    if (err) {
        err->msg[0] = 0;
        for (int i = 0; i < r->n_notes; i++) {
            size_t used = strlen(err->msg);
            snprintf(err->msg + used, sizeof err->msg - used, "%s%s", used ? " " : "", r->notes[i]);
        }
    }
    rc = 0;
done:
    fm__lock_release(&lock);
    fm__run_log_free(&r->log);
    fm__json_free(r->run);
    if (r->model) fm_model_free(r->model);
    fm_images_free(&r->test);
    free(r->ev.probs);
    free(r->ev.pred);
    free(r);
    return rc;
}
