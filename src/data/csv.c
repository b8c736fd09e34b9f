/* The Kaggle CSV layout: an optional header `label,pixel1,...,pixel784`
 * (exactly that), then one row per image, the label 0-9 and 784 grey values
 * 0-255.
 *
 * Loading the 133 MB training file has to be fast, so the file is read in
 * 1 MiB blocks and each complete line is parsed by hand in place: one pass of
 * memchr for the newline, one pass over the digits. Every field is checked;
 * errors name the file, the 1-based line, the column and the problem. */
#include "data/data.h"
#include "core/error.h"
#include "core/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CSV_COLUMNS (1 + FM_IMAGE_PIXELS)
/* Read size, and so also the longest line accepted: a valid row is at most a
 * few kB, so a longer one means the file is not a Fashion-MNIST CSV. */
#define CSV_BLOCK (1 << 20)
/* Shortest valid row: 785 one-digit fields, 784 commas (the newline aside). */
#define CSV_MIN_ROW (2 * CSV_COLUMNS - 1)
#define CSV_MAX_RESERVE 120000

typedef struct csv_parser {
    const char *path;
    fm_err *err;
    size_t line;       /* 1-based number of the line being parsed */
    size_t blank_line; /* first blank line not yet followed by a row, or 0 */
    int header;        /* line 1 was a header */
    size_t count, capacity;
    uint8_t *pixels, *labels;
} csv_parser;

/* Copies up to 24 bytes of a field for an error message, escaping anything
 * unprintable so binary garbage stays readable and on one line. */
static const char *quote_field(char *out, size_t size, const char *s, const char *e) {
    size_t n = 0;
    for (; s < e && n + 5 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (n >= 24) {
            n += (size_t)snprintf(out + n, size - n, "...");
            break;
        }
        if (c >= 0x20 && c < 0x7f) out[n++] = (char)c;
        else n += (size_t)snprintf(out + n, size - n, "\\x%02x", c);
    }
    out[n] = 0;
    return out;
}

/* Reports a bad field: `f` is its start; it runs to the next comma or `e`. */
static int field_error(csv_parser *ps, int col, const char *f, const char *e, const char *why) {
    const char *fe = memchr(f, ',', (size_t)(e - f));
    if (!fe) fe = e;
    char name[16], q[128];
    if (col == 0) snprintf(name, sizeof name, "label");
    else snprintf(name, sizeof name, "pixel%d", col);
    if (fe == f)
        return fm__err(ps->err, "%s: line %zu, column %d (%s): empty field", ps->path, ps->line,
                       col + 1, name);
    return fm__err(ps->err, "%s: line %zu, column %d (%s): '%s' %s", ps->path, ps->line, col + 1,
                   name, quote_field(q, sizeof q, f, fe), why);
}

/* The header, as fm__csv_write writes it and the loader accepts it. */
#define CSV_HEADER_MAX (5 + 9 * FM_IMAGE_PIXELS + 1)
static size_t csv_header(char *out) {
    char *p = out + sprintf(out, "label");
    for (int i = 1; i <= FM_IMAGE_PIXELS; i++) p += sprintf(p, ",pixel%d", i);
    return (size_t)(p - out);
}

/* A first line [s, e) that starts with a letter or a quote is a header: it
 * must be this one exactly (a near miss is more likely another file's
 * columns than a typo to overlook); else the error names the column (byte)
 * of the first difference and the header field it falls in. */
static int header_line(csv_parser *ps, const char *s, const char *e) {
    char want[CSV_HEADER_MAX];
    size_t n = csv_header(want), len = (size_t)(e - s), i = 0;
    while (i < len && i < n && s[i] == want[i]) i++;
    if (i == len && i == n) {
        ps->header = 1;
        return 0;
    }
    int field = 0;
    for (size_t k = 0; k < i && k < n; k++) field += want[k] == ',';
    char name[16], q[128], why[160];
    if (field == 0) snprintf(name, sizeof name, "label");
    else snprintf(name, sizeof name, "pixel%d", field);
    if (i == n)
        snprintf(why, sizeof why, "'%s' after the header's last field",
                 quote_field(q, sizeof q, s + i, e));
    else if (i == len)
        snprintf(why, sizeof why, "the line ends where the header goes on with '%.12s...'",
                 want + i);
    else
        snprintf(why, sizeof why, "'%s' where the header has '%c'",
                 quote_field(q, sizeof q, s + i, s + i + 1), want[i]);
    return fm__err(ps->err, "%s: line 1, column %zu (%s): %s; a first line is the header "
                            "label,pixel1,...,pixel784 exactly, or a data row",
                   ps->path, i + 1, name, why);
}

static int grow(csv_parser *ps) {
    size_t cap = ps->capacity ? ps->capacity * 2 : 1024;
    if (cap > SIZE_MAX / FM_IMAGE_PIXELS)
        return fm__err(ps->err, "%s: line %zu: too many rows", ps->path, ps->line);
    uint8_t *px = realloc(ps->pixels, cap * FM_IMAGE_PIXELS);
    if (px) ps->pixels = px;
    uint8_t *lb = realloc(ps->labels, cap);
    if (lb) ps->labels = lb;
    if (!px || !lb)
        return fm__err(ps->err, "%s: line %zu: out of memory for %zu images", ps->path, ps->line,
                       cap);
    ps->capacity = cap;
    return 0;
}

/* Parses the line [s, e) without its newline; `unterminated` when it is the
 * last line of a file that does not end in a newline. */
static int parse_line(csv_parser *ps, const char *s, const char *e, int unterminated) {
    ps->line++;
    if (e > s && e[-1] == '\r') e--;
    if (s == e) {
        /* Blank lines are fine at the end of the file only. */
        if (!ps->blank_line) ps->blank_line = ps->line;
        return 0;
    }
    if (ps->blank_line)
        return fm__err(ps->err, "%s: line %zu: blank line in the middle of the data", ps->path,
                       ps->blank_line);
    if (ps->line == 1) {
        if (e - s >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) s += 3; /* UTF-8 byte order mark */
        unsigned char c = s < e ? (unsigned char)*s : 0; /* a line of just the mark: *e is past it */
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '"') return header_line(ps, s, e);
    }
    if (ps->count == ps->capacity && grow(ps) < 0) return -1;

    uint8_t *px = ps->pixels + ps->count * FM_IMAGE_PIXELS;
    const char *p = s;
    for (int col = 0; col < CSV_COLUMNS; col++) {
        const char *f = p;
        unsigned v = 0;
        while (p < e && (unsigned)(*p - '0') < 10) {
            if (v < 1000) v = v * 10 + (unsigned)(*p - '0'); /* saturate: any v >= 1000 is bad */
            p++;
        }
        if (p == f || (p < e && *p != ','))
            return field_error(ps, col, f, e, col ? "is not an integer 0..255" : "is not a label 0..9");
        if (col == 0) {
            if (v > 9) return field_error(ps, col, f, e, "is out of range 0..9");
            ps->labels[ps->count] = (uint8_t)v;
        } else {
            if (v > 255) return field_error(ps, col, f, e, "is out of range 0..255");
            px[col - 1] = (uint8_t)v;
        }
        if (col + 1 < CSV_COLUMNS) {
            if (p == e)
                return fm__err(ps->err, "%s: line %zu: %d columns, expected %d%s", ps->path, ps->line,
                               col + 1, CSV_COLUMNS,
                               unterminated ? " (the file ends in the middle of this row)" : "");
            p++; /* the comma */
        }
    }
    if (p != e) {
        size_t cols = CSV_COLUMNS;
        for (; (p = memchr(p, ',', (size_t)(e - p))); p++) cols++;
        return fm__err(ps->err, "%s: line %zu: %zu columns, expected %d", ps->path, ps->line, cols,
                       CSV_COLUMNS);
    }
    ps->count++;
    return 0;
}

int fm_data_load_csv(const char *path, fm_images *out, fm_err *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return fm__err(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return fm__err(err, "%s: is a folder, expected a CSV file", path);
    }
    csv_parser ps = {.path = path, .err = err};
    char *buf = malloc(CSV_BLOCK);
    int rc = -1;
    if (!buf) {
        fm__err(err, "%s: out of memory", path);
        goto done;
    }
    /* Reserve for the most rows the file size allows (malloc only touches
     * the pages used), up to twice the Fashion-MNIST training set; beyond
     * that grow as rows arrive, so a huge file of garbage costs nothing. */
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
        ps.capacity = (size_t)st.st_size / CSV_MIN_ROW + 1;
        if (ps.capacity > CSV_MAX_RESERVE) ps.capacity = CSV_MAX_RESERVE;
        ps.pixels = malloc(ps.capacity * FM_IMAGE_PIXELS);
        ps.labels = malloc(ps.capacity);
        if (!ps.pixels || !ps.labels) {
            fm__err(err, "%s: out of memory for %zu images", path, ps.capacity);
            goto done;
        }
    }
    size_t len = 0, total = 0;
    for (;;) {
        if (len == CSV_BLOCK) {
            fm__err(err, "%s: line %zu: longer than %d bytes (not a Fashion-MNIST CSV?)", path,
                    ps.line + 1, CSV_BLOCK);
            goto done;
        }
        size_t n = fread(buf + len, 1, CSV_BLOCK - len, f);
        if (n < CSV_BLOCK - len && ferror(f)) {
            fm__err(err, "%s: read error: %s", path, strerror(errno));
            goto done;
        }
        total += n;
        len += n;
        char *p = buf, *end = buf + len, *nl;
        while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
            if (parse_line(&ps, p, nl, 0) < 0) goto done;
            p = nl + 1;
        }
        if (n == 0) { /* end of file: what is left is a last line without a newline */
            if (p < end && parse_line(&ps, p, end, 1) < 0) goto done;
            break;
        }
        len = (size_t)(end - p);
        memmove(buf, p, len);
    }
    if (total == 0) {
        fm__err(err, "%s: empty file", path);
        goto done;
    }
    if (ps.count == 0) {
        fm__err(err, "%s: no images (%s)", path, ps.header ? "only a header" : "only blank lines");
        goto done;
    }
    /* Give back the unused part of the reservation. */
    uint8_t *px = realloc(ps.pixels, ps.count * FM_IMAGE_PIXELS);
    uint8_t *lb = realloc(ps.labels, ps.count);
    out->pixels = px ? px : ps.pixels;
    out->labels = lb ? lb : ps.labels;
    out->count = ps.count;
    ps.pixels = ps.labels = NULL;
    rc = 0;
done:
    free(ps.pixels);
    free(ps.labels);
    free(buf);
    fclose(f);
    return rc;
}

/* Appends v in decimal. */
static char *put_u8(char *p, unsigned v) {
    if (v >= 100) {
        *p++ = (char)('0' + v / 100);
        v %= 100;
        *p++ = (char)('0' + v / 10);
    } else if (v >= 10) {
        *p++ = (char)('0' + v / 10);
    }
    *p++ = (char)('0' + v % 10);
    return p;
}

int fm__csv_write(const char *path, const fm_images *imgs, fm_err *err) {
    fm__atomic out;
    if (fm__atomic_open(&out, path, err) < 0) return -1;
    /* A row is at most 4 bytes per field; flush before one might not fit. */
    char *buf = malloc(CSV_BLOCK);
    if (!buf) {
        fm__atomic_abort(&out);
        return fm__err(err, "%s: out of memory", path);
    }
    char *p = buf + csv_header(buf);
    *p++ = '\n';
    int ok = 1;
    for (size_t i = 0; i < imgs->count && ok; i++) {
        const uint8_t *px = imgs->pixels + i * FM_IMAGE_PIXELS;
        p = put_u8(p, imgs->labels[i]);
        for (int j = 0; j < FM_IMAGE_PIXELS; j++) {
            *p++ = ',';
            p = put_u8(p, px[j]);
        }
        *p++ = '\n';
        if (p - buf > CSV_BLOCK - 4 * CSV_COLUMNS) {
            ok = fm__atomic_write(&out, buf, (size_t)(p - buf)) == 0;
            p = buf;
        }
    }
    fm__atomic_write(&out, buf, (size_t)(p - buf));
    free(buf);
    return fm__atomic_commit(&out, err); /* reports a failed write */
}
