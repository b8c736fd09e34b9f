#include "export/pb.h"

#include <stdlib.h>
#include <string.h>

enum { WIRE_VARINT = 0, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

void fm__pb_free(fm__pb *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Room for n more bytes; 0 (and oom set) when it cannot be had. */
static int reserve(fm__pb *b, size_t n) {
    if (b->oom) return 0;
    if (n <= b->cap - b->len) return 1;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

static void put(fm__pb *b, const void *p, size_t n) {
    if (n && reserve(b, n)) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
}

static void varint(fm__pb *b, uint64_t v) {
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) tmp[n] |= 0x80;
        n++;
    } while (v);
    put(b, tmp, n);
}

static void tag(fm__pb *b, int field, int wire) { varint(b, ((uint64_t)field << 3) | (uint64_t)wire); }

static void le32(uint8_t out[4], float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    out[0] = (uint8_t)u;
    out[1] = (uint8_t)(u >> 8);
    out[2] = (uint8_t)(u >> 16);
    out[3] = (uint8_t)(u >> 24);
}

void fm__pb_int(fm__pb *b, int field, int64_t v) {
    tag(b, field, WIRE_VARINT);
    varint(b, (uint64_t)v); /* negative values take ten bytes, as protobuf specifies */
}

void fm__pb_float(fm__pb *b, int field, float v) {
    uint8_t tmp[4];
    le32(tmp, v);
    tag(b, field, WIRE_FIXED32);
    put(b, tmp, 4);
}

void fm__pb_bytes(fm__pb *b, int field, const void *p, size_t n) {
    tag(b, field, WIRE_LEN);
    varint(b, n);
    put(b, p, n);
}

void fm__pb_str(fm__pb *b, int field, const char *s) { fm__pb_bytes(b, field, s, strlen(s)); }

void fm__pb_msg(fm__pb *b, int field, const fm__pb *sub) {
    if (sub->oom) b->oom = 1;
    fm__pb_bytes(b, field, sub->data, sub->len);
}

void fm__pb_floats_le(fm__pb *b, int field, const float *v, size_t n) {
    if (n > SIZE_MAX / 4) {
        b->oom = 1;
        return;
    }
    tag(b, field, WIRE_LEN);
    varint(b, n * 4);
    if (!reserve(b, n * 4)) return;
    for (size_t i = 0; i < n; i++) le32(b->data + b->len + 4 * i, v[i]);
    b->len += n * 4;
}
