/* A small JSON reader (RFC 8259) for safetensors headers and metadata
 * values, plus the string escaping their writers need. It parses into a tree,
 * never crashes on arbitrary bytes (depth-limited, length-bounded) and reports
 * the byte offset of the first problem; strings must be valid UTF-8. */
#ifndef FM_CORE_JSON_H
#define FM_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fmnist/fmnist.h"

typedef enum fm__json_type {
    FM__JSON_NULL,
    FM__JSON_BOOL,
    FM__JSON_NUMBER,
    FM__JSON_STRING,
    FM__JSON_ARRAY,
    FM__JSON_OBJECT
} fm__json_type;

typedef struct fm__json {
    fm__json_type type;
    size_t offset;     /* byte offset of the value, including the caller's base */
    int boolean;       /* BOOL */
    double number;     /* NUMBER */
    int is_uint;       /* NUMBER written as a plain integer that fits uint64 */
    uint64_t uint;     /* ... and its exact value */
    char *string;      /* STRING: decoded UTF-8, NUL-terminated (\u0000 is rejected) */
    size_t n;          /* ARRAY / OBJECT: number of items / members */
    struct fm__json *items; /* ARRAY items, OBJECT member values */
    char **keys;       /* OBJECT member names (decoded, unique) */
} fm__json;

/* Parses text[0..len) as one JSON value (surrounding whitespace allowed).
 * Offsets in messages and nodes are base + position, so a caller can report
 * positions in the enclosing file. Duplicate object keys are an error, and so
 * is a string holding bytes that are not UTF-8 ("byte N: invalid UTF-8 in
 * string", N the first bad byte). */
fm__json *fm__json_parse(const char *text, size_t len, size_t base, fm_err *err);
void fm__json_free(fm__json *v);
/* Member of an object, or NULL. */
const fm__json *fm__json_get(const fm__json *obj, const char *key);
/* The writers' string escaping is fm_json_write_string (fmnist.h). */

#endif
