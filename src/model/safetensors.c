/* safetensors reader and writer (see safetensors.h for the format). */
#include "model/safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this code copies it as is"
#endif

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [FM__ST_F32] = {"F32", 4}, [FM__ST_F64] = {"F64", 8}, [FM__ST_I32] = {"I32", 4},
    [FM__ST_I64] = {"I64", 8}, [FM__ST_U8] = {"U8", 1}, [FM__ST_I8] = {"I8", 1},
};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

const char *fm__st_dtype_name(fm__st_dtype dtype) { return dtypes[dtype].name; }
size_t fm__st_dtype_size(fm__st_dtype dtype) { return dtypes[dtype].size; }

void fm__st_close(fm__st_file *f) {
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->bytes);
    memset(f, 0, sizeof *f);
}

const fm__st_tensor *fm__st_find(const fm__st_file *f, const char *name) {
    for (size_t i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *fm__st_meta(const fm__st_file *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

void fm__st_copy(const fm__st_tensor *t, void *dst) {
    if (t->end > t->begin) memcpy(dst, t->data, (size_t)(t->end - t->begin));
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* One header entry {"dtype", "shape", "data_offsets"} into t (name already set). */
static int parse_tensor(fm__st_tensor *t, const fm__json *v, size_t data_size, const char *src,
                        fm_err *err) {
    if (v->type != FM__JSON_OBJECT)
        return fm__err(err, "%s: tensor '%.100s': header entry is not an object", src, t->name);
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->keys[i], "dtype") && strcmp(v->keys[i], "shape") &&
            strcmp(v->keys[i], "data_offsets"))
            return fm__err(err, "%s: tensor '%.100s': unknown field '%.100s'", src, t->name,
                           v->keys[i]);
    const fm__json *dt = fm__json_get(v, "dtype"), *sh = fm__json_get(v, "shape"),
                   *off = fm__json_get(v, "data_offsets");
    if (!dt || !sh || !off)
        return fm__err(err, "%s: tensor '%.100s': missing '%s'", src, t->name,
                       !dt ? "dtype" : !sh ? "shape" : "data_offsets");
    if (dt->type != FM__JSON_STRING)
        return fm__err(err, "%s: tensor '%.100s': dtype is not a string", src, t->name);
    size_t d = 0;
    while (d < N_DTYPES && strcmp(dtypes[d].name, dt->string)) d++;
    if (d == N_DTYPES)
        return fm__err(err, "%s: tensor '%.100s': unknown dtype '%.32s' (supported: F32, F64, I32, "
                            "I64, U8, I8)",
                       src, t->name, dt->string);
    t->dtype = (fm__st_dtype)d;

    if (sh->type != FM__JSON_ARRAY)
        return fm__err(err, "%s: tensor '%.100s': shape is not an array", src, t->name);
    if (sh->n > FM__ST_MAX_DIMS)
        return fm__err(err, "%s: tensor '%.100s': %zu dimensions (at most %d)", src, t->name, sh->n,
                       FM__ST_MAX_DIMS);
    t->ndim = (int)sh->n;
    /* Element count and byte size, refusing anything that overflows 64 bits. */
    uint64_t count = 1, esize = dtypes[d].size;
    for (size_t i = 0; i < sh->n; i++) {
        const fm__json *x = &sh->items[i];
        if (x->type != FM__JSON_NUMBER || !x->is_uint)
            return fm__err(err, "%s: tensor '%.100s': shape[%zu] is not a non-negative integer", src,
                           t->name, i);
        t->shape[i] = x->uint;
        if (x->uint && count > UINT64_MAX / esize / x->uint)
            return fm__err(err, "%s: tensor '%.100s': shape is too large", src, t->name);
        count *= x->uint;
    }
    t->count = count;

    if (off->type != FM__JSON_ARRAY || off->n != 2)
        return fm__err(err, "%s: tensor '%.100s': data_offsets is not [begin, end]", src, t->name);
    for (int i = 0; i < 2; i++)
        if (off->items[i].type != FM__JSON_NUMBER || !off->items[i].is_uint)
            return fm__err(err, "%s: tensor '%.100s': data_offsets[%d] is not a non-negative integer",
                           src, t->name, i);
    t->begin = off->items[0].uint;
    t->end = off->items[1].uint;
    if (t->begin > t->end || t->end > data_size)
        return fm__err(err,
                       "%s: tensor '%.100s': data_offsets [%llu, %llu] out of range (data section is "
                       "%zu bytes)",
                       src, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                       data_size);
    if (t->end - t->begin != count * esize)
        return fm__err(err,
                       "%s: tensor '%.100s': data_offsets span %llu bytes but %s shape needs %llu",
                       src, t->name, (unsigned long long)(t->end - t->begin), dtypes[d].name,
                       (unsigned long long)(count * esize));
    return 0;
}

static int parse_metadata(fm__st_file *f, const fm__json *v, const char *src, fm_err *err) {
    if (v->type != FM__JSON_OBJECT) return fm__err(err, "%s: __metadata__ is not an object", src);
    f->meta_keys = calloc(v->n ? v->n : 1, sizeof *f->meta_keys);
    f->meta_values = calloc(v->n ? v->n : 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values) return fm__err(err, "%s: out of memory", src);
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i].type != FM__JSON_STRING)
            return fm__err(err, "%s: __metadata__ '%.100s' is not a string", src, v->keys[i]);
        f->meta_keys[i] = dup_str(v->keys[i]);
        f->meta_values[i] = dup_str(v->items[i].string);
        f->n_meta = i + 1;
        if (!f->meta_keys[i] || !f->meta_values[i]) return fm__err(err, "%s: out of memory", src);
    }
    return 0;
}

static int by_offset(const void *a, const void *b) {
    const fm__st_tensor *x = *(const fm__st_tensor *const *)a, *y = *(const fm__st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* The tensors must tile the data section: sorted by offset, each begins where
 * the previous ended, and the last ends at the end of the file. */
static int check_coverage(const fm__st_file *f, size_t data_size, const char *src, fm_err *err) {
    if (!f->n_tensors) {
        if (data_size)
            return fm__err(err, "%s: %zu bytes of data after the header but no tensors", src,
                           data_size);
        return 0;
    }
    const fm__st_tensor **order = malloc(f->n_tensors * sizeof *order);
    if (!order) return fm__err(err, "%s: out of memory", src);
    for (size_t i = 0; i < f->n_tensors; i++) order[i] = &f->tensors[i];
    qsort(order, f->n_tensors, sizeof *order, by_offset);
    int rc = 0;
    uint64_t at = 0;
    for (size_t i = 0; i < f->n_tensors && !rc; i++) {
        const fm__st_tensor *t = order[i];
        if (t->begin > at)
            rc = fm__err(err, "%s: gap in the data: bytes [%llu, %llu) belong to no tensor", src,
                         (unsigned long long)at, (unsigned long long)t->begin);
        else if (t->begin < at)
            rc = fm__err(err, "%s: tensor '%.100s' overlaps '%.100s' in the data", src, t->name,
                         order[i - 1]->name);
        at = t->end;
    }
    if (!rc && at != data_size)
        rc = fm__err(err, "%s: %llu bytes of data after the last tensor", src,
                     (unsigned long long)(data_size - at));
    free(order);
    return rc;
}

/* Parses a file image, taking ownership of buf (freed by fm__st_close). */
static int parse_owned(fm__st_file *f, unsigned char *buf, size_t size, const char *src,
                       fm_err *err) {
    memset(f, 0, sizeof *f);
    f->bytes = buf;
    f->size = size;
    if (size < 8) {
        fm__err(err, "%s: truncated file (%zu bytes; a safetensors file starts with an 8-byte "
                     "header length)",
                src, size);
        goto fail;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
    if (n > size - 8) {
        fm__err(err, "%s: header length %llu is larger than the file (%zu bytes)", src,
                (unsigned long long)n, size);
        goto fail;
    }
    if (n > FM__ST_MAX_HEADER) {
        fm__err(err, "%s: header length %llu exceeds the %u-byte limit", src,
                (unsigned long long)n, FM__ST_MAX_HEADER);
        goto fail;
    }
    fm_err jerr;
    fm__json *h = fm__json_parse((const char *)buf + 8, (size_t)n, 8, &jerr);
    if (!h) {
        fm__err(err, "%s: bad JSON header: %s", src, jerr.msg);
        goto fail;
    }
    size_t data_size = size - 8 - (size_t)n;
    const unsigned char *data = buf + 8 + n;
    int rc = -1;
    if (h->type != FM__JSON_OBJECT) {
        fm__err(err, "%s: header is not a JSON object", src);
        goto done;
    }
    f->tensors = calloc(h->n ? h->n : 1, sizeof *f->tensors);
    if (!f->tensors) {
        fm__err(err, "%s: out of memory", src);
        goto done;
    }
    for (size_t i = 0; i < h->n; i++) {
        if (!strcmp(h->keys[i], "__metadata__")) {
            if (parse_metadata(f, &h->items[i], src, err)) goto done;
            continue;
        }
        fm__st_tensor *t = &f->tensors[f->n_tensors];
        if (!(t->name = dup_str(h->keys[i]))) {
            fm__err(err, "%s: out of memory", src);
            goto done;
        }
        f->n_tensors++;
        if (parse_tensor(t, &h->items[i], data_size, src, err)) goto done;
        t->data = data + t->begin;
    }
    rc = check_coverage(f, data_size, src, err);
done:
    fm__json_free(h);
    if (rc == 0) return 0;
fail:
    fm__st_close(f);
    return -1;
}

int fm__st_parse(fm__st_file *f, const void *bytes, size_t size, const char *source, fm_err *err) {
    memset(f, 0, sizeof *f);
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) return fm__err(err, "%s: out of memory", source);
    if (size) memcpy(buf, bytes, size);
    return parse_owned(f, buf, size, source, err);
}

int fm__st_read(fm__st_file *f, const char *path, fm_err *err) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) return fm__err(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return fm__err(err, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) {
        fclose(fp);
        return fm__err(err, "%s: out of memory (%zu bytes)", path, size);
    }
    size_t got = fread(buf, 1, size, fp);
    int bad = ferror(fp);
    fclose(fp);
    if (bad || got != size) {
        free(buf);
        return fm__err(err, "%s: read error", path);
    }
    return parse_owned(f, buf, size, path, err);
}

/* Builds the JSON header in memory (its length comes first in the file). */
static char *build_header(const fm__st_entry *t, size_t n, const fm__st_kv *meta, size_t n_meta,
                          size_t *len, uint64_t *data_size) {
    char *buf = NULL;
    FILE *h = open_memstream(&buf, len);
    if (!h) return NULL;
    uint64_t at = 0;
    fputc('{', h);
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes = dtypes[t[i].dtype].size;
        if (i) fputc(',', h);
        fm_json_write_string(h, t[i].name);
        fprintf(h, ":{\"dtype\":\"%s\",\"shape\":[", dtypes[t[i].dtype].name);
        for (int d = 0; d < t[i].ndim; d++) {
            fprintf(h, "%s%llu", d ? "," : "", (unsigned long long)t[i].shape[d]);
            bytes *= t[i].shape[d];
        }
        fprintf(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)at,
                (unsigned long long)(at + bytes));
        at += bytes;
    }
    if (n_meta) {
        fputs(n ? ",\"__metadata__\":{" : "\"__metadata__\":{", h);
        for (size_t i = 0; i < n_meta; i++) {
            if (i) fputc(',', h);
            fm_json_write_string(h, meta[i].key);
            fputc(':', h);
            fm_json_write_string(h, meta[i].value);
        }
        fputc('}', h);
    }
    fputc('}', h);
    /* Pad so the data starts 8-byte aligned (8-byte length + header). */
    long pos = ftell(h);
    while (pos >= 0 && pos % 8) {
        fputc(' ', h);
        pos++;
    }
    if (fclose(h)) {
        free(buf);
        return NULL;
    }
    *data_size = at;
    return buf;
}

int fm__st_write(const char *path, const fm__st_entry *tensors, size_t n_tensors,
                 const fm__st_kv *meta, size_t n_meta, fm_err *err) {
    for (size_t i = 0; i < n_tensors; i++) {
        if (!tensors[i].name || !strcmp(tensors[i].name, "__metadata__") ||
            (unsigned)tensors[i].dtype >= N_DTYPES || tensors[i].ndim < 0 ||
            tensors[i].ndim > FM__ST_MAX_DIMS)
            return fm__err(err, "%s: invalid tensor entry %zu", path, i);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(tensors[i].name, tensors[j].name))
                return fm__err(err, "%s: duplicate tensor name '%.100s'", path, tensors[i].name);
    }
    size_t hlen;
    uint64_t data_size;
    char *header = build_header(tensors, n_tensors, meta, n_meta, &hlen, &data_size);
    if (!header) return fm__err(err, "%s: out of memory building the header", path);

    fm__atomic out;
    if (fm__atomic_open(&out, path, err) < 0) {
        free(header);
        return -1;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    fm__atomic_write(&out, len8, 8);
    fm__atomic_write(&out, header, hlen);
    for (size_t i = 0; i < n_tensors; i++) {
        size_t bytes = fm__st_dtype_size(tensors[i].dtype);
        for (int d = 0; d < tensors[i].ndim; d++) bytes *= (size_t)tensors[i].shape[d];
        fm__atomic_write(&out, tensors[i].data, bytes);
    }
    free(header);
    return fm__atomic_commit(&out, err); /* reports a failed write */
}
