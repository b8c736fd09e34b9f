/* A minimal protocol-buffers writer: just the wire encoding ONNX export needs
 * (varints, fixed32 floats, length-delimited bytes and sub-messages).
 *
 * Why hand-written rather than protobuf-c: export only ever writes, never
 * parses, and touches about ten ONNX messages whose field numbers are frozen
 * by protobuf's compatibility rules; a hundred lines of encoder avoid a
 * protoc-c code-generation step and two build dependencies, and the tests
 * check the bytes with the official onnx checker and OpenCV's reader.
 *
 * Messages are built bottom-up: fill a sub-message in its own buffer, then
 * append it to the parent with fm__pb_msg. Allocation failure is sticky
 * (`oom`), so callers write freely and check once at the end. */
#ifndef FM_EXPORT_PB_H
#define FM_EXPORT_PB_H

#include <stddef.h>
#include <stdint.h>

typedef struct fm__pb {
    uint8_t *data;
    size_t len, cap;
    int oom; /* an allocation failed: the buffer is incomplete */
} fm__pb;

void fm__pb_free(fm__pb *b);

/* Field writers; `field` is the field number from the .proto file. */
void fm__pb_int(fm__pb *b, int field, int64_t v);                    /* int32/int64/enum */
void fm__pb_float(fm__pb *b, int field, float v);                    /* float (fixed32) */
void fm__pb_bytes(fm__pb *b, int field, const void *p, size_t n);    /* bytes */
void fm__pb_str(fm__pb *b, int field, const char *s);                /* string */
void fm__pb_msg(fm__pb *b, int field, const fm__pb *sub);            /* embedded message */
/* bytes holding n floats as little-endian IEEE 754 (ONNX raw_data), whatever the host order */
void fm__pb_floats_le(fm__pb *b, int field, const float *v, size_t n);

#endif
