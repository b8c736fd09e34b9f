/* PNG (libpng) and PGM reading into 8-bit grey, resizing to 28x28, and
 * fm_image_load, which does both. See image.h. */
#include "data/image.h"
#include "core/error.h"

#include <errno.h>
#include <math.h>
#ifdef FM_HAVE_PNG
#include <png.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fm__image_free(fm__image *img) {
    if (!img) return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

#ifdef FM_HAVE_PNG
/* ---- PNG ------------------------------------------------------------- */

/* libpng reports errors through a callback that must not return: it fills
 * err and jumps back to the setjmp in the caller. Everything the error path
 * frees lives here rather than in locals, so longjmp cannot clobber it. */
typedef struct png_ctx {
    const char *path;
    fm_err *err;
    FILE *f;
    uint8_t *pixels;
    uint8_t *rows_data; /* grey+alpha samples before compositing */
    png_bytep *rows;
    int background;
    int colour; /* the file's colour type has colour */
    char warning[128]; /* the last warning, often the reason for an error */
} png_ctx;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    if (!strcmp(msg, "Read Error")) msg = "the file ends early";
    fm__err(c->err, "%s: bad PNG: %s%s%s%s", c->path, msg, c->warning[0] ? " (" : "", c->warning,
            c->warning[0] ? ")" : "");
    png_longjmp(png, 1);
}

/* The library never prints; warnings alone (e.g. a bad ancillary chunk) are
 * not reasons to fail, but one may explain a later error. */
static void png_on_warning(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->warning, sizeof c->warning, "%s", msg);
}

static int read_png(png_ctx *c, fm__image *img) {
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, c, png_on_error, png_on_warning);
    if (!png) return fm__err(c->err, "%s: out of memory", c->path);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return fm__err(c->err, "%s: out of memory", c->path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(c->rows);
        free(c->rows_data);
        free(c->pixels);
        c->rows = NULL;
        c->rows_data = NULL;
        c->pixels = NULL;
        return -1;
    }
    png_init_io(png, c->f);
    png_set_user_limits(png, FM__IMAGE_MAX_SIDE, FM__IMAGE_MAX_SIDE);
    png_read_info(png, info);
    /* Whatever the file holds, ask libpng for 8-bit grey, plus alpha when the
     * file has any (an alpha channel or a tRNS chunk). */
    png_set_expand(png);
    png_set_strip_16(png);
    c->colour = (png_get_color_type(png, info) & PNG_COLOR_MASK_COLOR) != 0;
    if (c->colour)
        png_set_rgb_to_gray_fixed(png, 1, PNG_RGB_TO_GRAY_DEFAULT, PNG_RGB_TO_GRAY_DEFAULT);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int ch = png_get_channels(png, info);
    if ((ch != 1 && ch != 2) || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)w * ch)
        png_error(png, "cannot convert to 8-bit grey");
    c->pixels = malloc((size_t)w * h);
    c->rows_data = ch == 2 ? malloc((size_t)w * h * 2) : NULL;
    c->rows = malloc(h * sizeof *c->rows);
    if (!c->pixels || !c->rows || (ch == 2 && !c->rows_data)) png_error(png, "out of memory");
    uint8_t *samples = ch == 2 ? c->rows_data : c->pixels;
    for (png_uint_32 y = 0; y < h; y++) c->rows[y] = samples + (size_t)y * w * ch;
    png_read_image(png, c->rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(c->rows);
    c->rows = NULL;
    img->transparent = 0;
    if (ch == 2) { /* composite over the background, in the file's own scale */
        for (size_t i = 0; i < (size_t)w * h; i++) {
            unsigned v = samples[2 * i], a = samples[2 * i + 1];
            c->pixels[i] = (uint8_t)((v * a + (unsigned)c->background * (255 - a) + 127) / 255);
            img->transparent += a < 255;
        }
        free(c->rows_data);
        c->rows_data = NULL;
    }
    img->w = (int)w;
    img->h = (int)h;
    img->colour = c->colour;
    img->pixels = c->pixels;
    c->pixels = NULL;
    return 0;
}

#endif

/* ---- PGM ------------------------------------------------------------- */

/* Reads the next decimal number of a PGM header or ASCII body, skipping
 * whitespace and '#' comments; -1 when there is none or it exceeds max. */
static int pgm_number(FILE *f, unsigned long max, unsigned long *v) {
    int ch = getc(f);
    for (;;) {
        if (ch == '#')
            while (ch != '\n' && ch != '\r' && ch != EOF) ch = getc(f);
        else if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f')
            ch = getc(f);
        else
            break;
    }
    if (ch < '0' || ch > '9') return -1;
    *v = 0;
    while (ch >= '0' && ch <= '9') {
        *v = *v * 10 + (unsigned long)(ch - '0');
        if (*v > max) return -1;
        ch = getc(f);
    }
    /* The character after a number must separate it from what follows; in
     * P5 it is the single whitespace byte before the binary data. */
    if (ch != EOF && ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r' && ch != '\v' &&
        ch != '\f' && ch != '#')
        return -1;
    if (ch == '#') ungetc(ch, f);
    return 0;
}

static int read_pgm(const char *path, FILE *f, int binary, fm__image *img, fm_err *err) {
    unsigned long w, h, maxval;
    if (pgm_number(f, FM__IMAGE_MAX_SIDE, &w) < 0 || w == 0)
        return fm__err(err, "%s: PGM header: bad width (1..%d)", path, FM__IMAGE_MAX_SIDE);
    if (pgm_number(f, FM__IMAGE_MAX_SIDE, &h) < 0 || h == 0)
        return fm__err(err, "%s: PGM header: bad height (1..%d)", path, FM__IMAGE_MAX_SIDE);
    if (pgm_number(f, 65535, &maxval) < 0 || maxval == 0)
        return fm__err(err, "%s: PGM header: bad maximum value (1..65535)", path);
    size_t n = (size_t)w * h;
    uint8_t *px = malloc(n);
    if (!px) return fm__err(err, "%s: out of memory for %lux%lu pixels", path, w, h);
    for (size_t i = 0; i < n; i++) {
        unsigned long v;
        if (binary) {
            int hi = 0, lo = getc(f);
            if (maxval > 255 && lo != EOF) { /* 16-bit samples are big-endian */
                hi = lo;
                lo = getc(f);
            }
            if (lo == EOF) {
                free(px);
                return fm__err(err, "%s: truncated PGM data: %zu of %zu pixels", path, i, n);
            }
            v = (unsigned long)hi << 8 | (unsigned long)lo;
            if (v > maxval) {
                free(px);
                return fm__err(err, "%s: PGM pixel %zu: value %lu exceeds the maximum %lu", path, i,
                               v, maxval);
            }
        } else if (pgm_number(f, maxval, &v) < 0) {
            free(px);
            return fm__err(err, "%s: PGM pixel %zu: missing, not a number, or above the maximum %lu",
                           path, i, maxval);
        }
        px[i] = (uint8_t)((v * 255 + maxval / 2) / maxval);
    }
    img->w = (int)w;
    img->h = (int)h;
    img->pixels = px;
    return 0;
}

int fm__image_read(const char *path, uint8_t background, fm__image *img, fm_err *err) {
    memset(img, 0, sizeof *img);
    FILE *f = fopen(path, "rb");
    if (!f) return fm__err(err, "%s: %s", path, strerror(errno));
    uint8_t sig[8];
    size_t n = fread(sig, 1, sizeof sig, f);
    int rc;
    if (n == 8 && !memcmp(sig, "\x89PNG\r\n\x1a\n", 8)) {
#ifdef FM_HAVE_PNG
        rewind(f);
        png_ctx c = {.path = path, .err = err, .f = f, .background = background};
        rc = read_png(&c, img);
#else
        rc = fm__err(err, "%s: a PNG, but fmnist was built without libpng (FM_PNG=OFF): "
                          "convert it to PGM (P5/P2)", path);
#endif
    } else if (n >= 2 && sig[0] == 'P' && (sig[1] == '5' || sig[1] == '2')) {
        fseek(f, 2, SEEK_SET);
        rc = read_pgm(path, f, sig[1] == '5', img, err);
    } else if (n == 0) {
        rc = fm__err(err, "%s: empty file", path);
    } else {
        rc = fm__err(err, "%s: not a PNG or PGM (P5/P2) image", path);
    }
    fclose(f);
    return rc;
}

/* ---- resizing -------------------------------------------------------- */

/* Resamples n_src values (src[i * ss]) to n_dst values (dst[i * ds]). */
static void resample(const float *src, size_t ss, int n_src, float *dst, size_t ds, int n_dst) {
    double scale = (double)n_src / n_dst;
    for (int i = 0; i < n_dst; i++) {
        double acc = 0;
        if (n_src >= n_dst) { /* area: average over the source span [a, b) */
            double a = i * scale, b = (i + 1) * scale;
            for (int j = (int)a; j < n_src && j < b; j++) {
                double lo = a > j ? a : j, hi = b < j + 1 ? b : j + 1;
                acc += (hi - lo) * src[(size_t)j * ss];
            }
            acc /= scale;
        } else { /* bilinear between the two nearest source centres */
            double x = (i + 0.5) * scale - 0.5;
            if (x < 0) x = 0;
            int j = (int)x, j1 = j + 1 < n_src ? j + 1 : j;
            double t = x - j;
            acc = (1 - t) * src[(size_t)j * ss] + t * src[(size_t)j1 * ss];
        }
        dst[(size_t)i * ds] = (float)acc;
    }
}

int fm__image_to_28x28(const fm__image *img, uint8_t out[FM_IMAGE_PIXELS], fm_err *err) {
    if (img->w <= 0 || img->h <= 0 || !img->pixels)
        return fm__err(err, "cannot resize a %dx%d image", img->w, img->h);
    /* Rows first (h x 28), then columns (28 x 28). */
    float *row = malloc((size_t)img->w * sizeof *row);
    float *mid = malloc((size_t)img->h * FM_IMAGE_COLS * sizeof *mid);
    if (!row || !mid) {
        free(row);
        free(mid);
        return fm__err(err, "out of memory resizing a %dx%d image", img->w, img->h);
    }
    for (int y = 0; y < img->h; y++) {
        const uint8_t *p = img->pixels + (size_t)y * (size_t)img->w;
        for (int x = 0; x < img->w; x++) row[x] = p[x];
        resample(row, 1, img->w, mid + (size_t)y * FM_IMAGE_COLS, 1, FM_IMAGE_COLS);
    }
    float col[FM_IMAGE_ROWS];
    for (int x = 0; x < FM_IMAGE_COLS; x++) {
        resample(mid + x, FM_IMAGE_COLS, img->h, col, 1, FM_IMAGE_ROWS);
        for (int y = 0; y < FM_IMAGE_ROWS; y++) {
            float v = roundf(col[y]);
            out[y * FM_IMAGE_COLS + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    free(row);
    free(mid);
    return 0;
}

int fm_image_load(const char *path, unsigned flags, uint8_t out[FM_IMAGE_PIXELS],
                  fm_image_info *info, fm_err *err) {
    if (flags & ~FM_IMAGE_INVERT)
        return fm__err(err, "%s: unknown image flags 0x%x", path, flags & ~FM_IMAGE_INVERT);
    const int invert = (flags & FM_IMAGE_INVERT) != 0;
    fm__image img;
    /* transparency goes on the ground that ends up black */
    if (fm__image_read(path, invert ? 255 : 0, &img, err) < 0) return -1;
    fm_image_info found = {img.w, img.h, img.colour, img.transparent};
    int rc = fm__image_to_28x28(&img, out, err);
    fm__image_free(&img);
    if (rc < 0) return -1;
    if (invert)
        for (int p = 0; p < FM_IMAGE_PIXELS; p++) out[p] = (uint8_t)(255 - out[p]);
    if (info) *info = found;
    return 0;
}
