/* Reads a run folder's log.csv. Columns are found by name so the reader keeps
 * working if the trainer adds columns or reorders them; every field is
 * checked, and a bad one is reported with its line and column. */
#include "report/report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

enum { COL_IGNORED = -1, COL_EPOCH, COL_LOSS, COL_ACC, COL_VLOSS, COL_VACC, COL_LR, COL_SEC, N_COLS };

static const char *const col_names[N_COLS] = {
    "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds",
};

/* Splits line in place at commas; trailing CR/LF and blanks around fields are
 * dropped. Returns the number of fields, or -1 when there are more than max. */
static int split_fields(char *line, char **fields, int max) {
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return -1;
        while (*p == ' ' || *p == '\t') p++;
        fields[n++] = p;
        char *comma = strchr(p, ',');
        char *end = comma ? comma : p + strlen(p);
        while (end > p && (end[-1] == ' ' || end[-1] == '\t')) end--;
        if (!comma) {
            *end = 0;
            return n;
        }
        *end = 0;
        p = comma + 1;
    }
}

/* A numeric field; empty or "nan" (a metric not computed) becomes NAN. */
static int parse_value(const char *s, double *out) {
    if (!*s) {
        *out = NAN;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || (errno == ERANGE && fabs(v) > 1)) return -1;
    *out = v;
    return 0;
}

#define MAX_FIELDS 64

int fm__run_log_read(const char *path, fm__run_log *log, fm_err *err) {
    log->n = 0;
    log->rows = NULL;
    FILE *f = fopen(path, "r");
    if (!f) return fm__err(err, "%s: cannot open: %s", path, strerror(errno));

    char *line = NULL;
    size_t line_cap = 0;
    char *fields[MAX_FIELDS];
    int map[MAX_FIELDS], n_header = 0, lineno = 0, rc = -1, epoch_field = 0;
    size_t cap = 0;

    if (getline(&line, &line_cap, f) < 0) {
        fm__err(err, "%s: empty file (expected a header line)", path);
        goto done;
    }
    lineno = 1;
    n_header = split_fields(line, fields, MAX_FIELDS);
    if (n_header < 0) {
        fm__err(err, "%s: line 1: more than %d columns", path, MAX_FIELDS);
        goto done;
    }
    int have[N_COLS] = {0};
    for (int i = 0; i < n_header; i++) {
        map[i] = COL_IGNORED;
        for (int c = 0; c < N_COLS; c++)
            if (!strcmp(fields[i], col_names[c])) {
                if (have[c]) {
                    fm__err(err, "%s: line 1: column '%s' appears twice", path, col_names[c]);
                    goto done;
                }
                have[c] = 1;
                map[i] = c;
                if (c == COL_EPOCH) epoch_field = i;
            }
    }
    if (!have[COL_EPOCH]) {
        fm__err(err, "%s: line 1: no 'epoch' column in the header", path);
        goto done;
    }

    while (getline(&line, &line_cap, f) >= 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == strlen(line)) continue; /* blank line */
        int n = split_fields(line, fields, MAX_FIELDS);
        if (n != n_header) {
            fm__err(err, "%s: line %d: %d fields, the header has %d", path, lineno,
                    n < 0 ? MAX_FIELDS + 1 : n, n_header);
            goto done;
        }
        double v[N_COLS];
        for (int c = 0; c < N_COLS; c++) v[c] = NAN;
        for (int i = 0; i < n; i++) {
            if (map[i] == COL_IGNORED) continue;
            if (parse_value(fields[i], &v[map[i]])) {
                fm__err(err, "%s: line %d: %s: '%.40s' is not a number", path, lineno,
                        col_names[map[i]], fields[i]);
                goto done;
            }
        }
        double e = v[COL_EPOCH];
        int prev = log->n ? log->rows[log->n - 1].epoch : 0;
        if (!(e >= 1 && e <= 1e6 && e == floor(e))) {
            fm__err(err, "%s: line %d: epoch '%s' is not a positive integer", path, lineno,
                    fields[epoch_field]);
            goto done;
        }
        if ((int)e <= prev) {
            fm__err(err, "%s: line %d: epoch %d does not follow epoch %d", path, lineno, (int)e,
                    prev);
            goto done;
        }
        if (log->n == cap) {
            cap = cap ? cap * 2 : 128;
            fm__log_row *rows = realloc(log->rows, cap * sizeof *rows);
            if (!rows) {
                fm__err(err, "%s: out of memory", path);
                goto done;
            }
            log->rows = rows;
        }
        log->rows[log->n++] = (fm__log_row){(int)e,       v[COL_LOSS], v[COL_ACC],
                                            v[COL_VLOSS], v[COL_VACC], v[COL_LR],
                                            v[COL_SEC]};
    }
    if (ferror(f)) {
        fm__err(err, "%s: read error", path);
        goto done;
    }
    rc = 0;
done:
    free(line);
    fclose(f);
    if (rc) fm__run_log_free(log);
    return rc;
}

void fm__run_log_free(fm__run_log *log) {
    free(log->rows);
    log->rows = NULL;
    log->n = 0;
}
