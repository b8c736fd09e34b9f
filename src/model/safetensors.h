/* safetensors files: named, typed, shaped tensors plus a string->string
 * metadata map. Layout: an 8-byte little-endian header length N, N bytes of
 * JSON header
 *   {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [BEGIN, END]}, ...,
 *    "__metadata__": {"KEY": "VALUE", ...}}
 * then the raw little-endian data; offsets are relative to the data start and
 * the tensors cover it exactly (no gaps, no overlaps).
 *
 * Reading loads the whole file and checks every rule above, so any bytes at
 * all give either a valid table or a message naming the file and the problem.
 * Writing is atomic (core/file.h): a crash leaves the old file or the new. */
#ifndef FM_MODEL_SAFETENSORS_H
#define FM_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "fmnist/fmnist.h"

#define FM__ST_MAX_DIMS 8
/* Headers of the files this project writes are a few KB; the cap bounds the
 * memory a hostile header can make the parser use. */
#define FM__ST_MAX_HEADER (1u << 20)

typedef enum fm__st_dtype {
    FM__ST_F32,
    FM__ST_F64,
    FM__ST_I32,
    FM__ST_I64,
    FM__ST_U8,
    FM__ST_I8
} fm__st_dtype;

typedef struct fm__st_tensor {
    char *name;
    fm__st_dtype dtype;
    int ndim;
    uint64_t shape[FM__ST_MAX_DIMS];
    uint64_t count;      /* elements: product of shape (1 for a scalar) */
    uint64_t begin, end; /* data_offsets, relative to the data start */
    /* end - begin bytes inside the file image; possibly unaligned, so read
     * them with fm__st_copy (or memcpy), never through a cast pointer. */
    const unsigned char *data;
} fm__st_tensor;

typedef struct fm__st_file {
    unsigned char *bytes; /* the whole file */
    size_t size;
    size_t n_tensors;
    fm__st_tensor *tensors; /* in header order */
    size_t n_meta;
    char **meta_keys, **meta_values;
} fm__st_file;

/* Reads and validates a file. On failure f is left empty (safe to close). */
int fm__st_read(fm__st_file *f, const char *path, fm_err *err);
/* The same from memory (copied); `source` names it in messages. */
int fm__st_parse(fm__st_file *f, const void *bytes, size_t size, const char *source, fm_err *err);
void fm__st_close(fm__st_file *f);

const fm__st_tensor *fm__st_find(const fm__st_file *f, const char *name);
/* Metadata value, or NULL when the key is absent. */
const char *fm__st_meta(const fm__st_file *f, const char *key);
/* Copies the tensor's bytes (end - begin) to dst. */
void fm__st_copy(const fm__st_tensor *t, void *dst);

const char *fm__st_dtype_name(fm__st_dtype dtype);
size_t fm__st_dtype_size(fm__st_dtype dtype);

/* One tensor to write: shape[0..ndim) elements of dtype at data (little-endian). */
typedef struct fm__st_entry {
    const char *name;
    fm__st_dtype dtype;
    int ndim;
    uint64_t shape[FM__ST_MAX_DIMS];
    const void *data;
} fm__st_entry;

typedef struct fm__st_kv {
    const char *key, *value;
} fm__st_kv;

/* Writes the tensors (data in the given order) and metadata atomically.
 * The header is padded with spaces so the data starts 8-byte aligned. */
int fm__st_write(const char *path, const fm__st_entry *tensors, size_t n_tensors,
                 const fm__st_kv *meta, size_t n_meta, fm_err *err);

#endif
