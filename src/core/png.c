/* Grey PNG encoding: libpng with a custom write function into memory, so
 * the report can embed the bytes and a file goes through the atomic writer. */
#include "core/png.h"

#ifdef FM_HAVE_PNG
#include <png.h>
#include <setjmp.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"

#ifdef FM_HAVE_PNG
typedef struct {
    uint8_t *data;
    size_t len, cap;
    int oom;
} membuf;

static void mem_write(png_structp png, png_bytep bytes, png_size_t n) {
    membuf *b = png_get_io_ptr(png);
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n) cap *= 2;
        uint8_t *p = realloc(b->data, cap);
        if (!p) {
            /* libpng cannot be told a write failed without longjmp from here;
             * remember it and report after png_write_end. */
            b->oom = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
}

static void mem_flush(png_structp png) { (void)png; }

int fm__png_encode_grey(const uint8_t *pixels, int w, int h, uint8_t **out, size_t *out_len,
                        fm_err *err) {
    *out = NULL;
    *out_len = 0;
    if (w <= 0 || h <= 0) return fm__err(err, "PNG: bad size %dx%d", w, h);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return fm__err(err, "PNG: out of memory");
    }
    /* volatile: modified between setjmp and a possible longjmp */
    membuf *volatile buf = calloc(1, sizeof *buf);
    if (!buf || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        if (buf) free(buf->data);
        free(buf);
        return fm__err(err, "PNG: encoding failed");
    }
    png_set_write_fn(png, buf, mem_write, mem_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(pixels + (size_t)y * w));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (buf->oom) {
        free(buf->data);
        free(buf);
        return fm__err(err, "PNG: out of memory");
    }
    *out = buf->data;
    *out_len = buf->len;
    free(buf);
    return 0;
}
#else
/* Built without libpng (FM_PNG=OFF, for inference-only users): the report and
 * fmnist show, which write PNG, fail with this line. */
int fm__png_encode_grey(const uint8_t *pixels, int w, int h, uint8_t **out, size_t *out_len,
                        fm_err *err) {
    *out = NULL;
    *out_len = 0;
    return fm__err(err, "PNG writing is not available: fmnist was built without libpng "
                        "(FM_PNG=OFF)");
}
#endif

int fm_image_save_png(const char *path, const uint8_t *pixels, int w, int h, fm_err *err) {
    if (w <= 0 || h <= 0) return fm__err(err, "%s: cannot write a %dx%d image", path, w, h);
    uint8_t *png;
    size_t len;
    if (fm__png_encode_grey(pixels, w, h, &png, &len, err) < 0) return -1;
    int rc = fm__write_file_atomic(path, png, len, err);
    free(png);
    return rc;
}
