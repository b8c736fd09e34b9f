/* The image module: grey PNG write/read round trip, PNGs of every colour
 * type written straight through libpng, binary and ASCII PGM, broken files,
 * the resize to 28x28, and fm_image_load, the public call made of them
 * (what it says about a picture, --invert's background and inversion, its
 * refusals). */
#include "core/png.h"
#include "check.h"
#include "data/image.h"
#include "data/testutil.h"

#include <png.h>

/* Writes a PNG of any type through libpng; rows are packed as libpng expects. */
static void write_png(const char *path, int w, int h, int color, int depth, int interlace,
                      const uint8_t *data, const png_color *palette, int n_palette,
                      const png_byte *trns, int n_trns) {
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!f || !png || !info || setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color, interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(png, info, palette, n_palette);
    if (trns) png_set_tRNS(png, info, trns, n_trns, NULL);
    png_write_info(png, info);
    size_t stride = png_get_rowbytes(png, info);
    png_bytep rows[64];
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)data + (size_t)y * stride;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

/* Reads path with transparency on grey level bg and checks it is w x h with
 * the given pixels (within tol), `transparent` of them not fully opaque. */
static void expect_read(const char *what, const char *path, uint8_t bg, int w, int h,
                        const uint8_t *want, int tol, size_t transparent) {
    fm__image img;
    fm_err err;
    int rc = fm__image_read(path, bg, &img, &err);
    CHECK_MSG(rc == 0, "%s: %s", what, err.msg);
    if (rc) return;
    CHECK_MSG(img.w == w && img.h == h, "%s: %dx%d", what, img.w, img.h);
    int bad = 0;
    for (int i = 0; img.w == w && img.h == h && i < w * h; i++)
        if (abs(img.pixels[i] - want[i]) > tol) {
            if (!bad) fprintf(stderr, "%s: pixel %d is %d, expected %d\n", what, i, img.pixels[i], want[i]);
            bad++;
        }
    CHECK_MSG(bad == 0, "%s: %d pixels differ", what, bad);
    CHECK_MSG(img.transparent == transparent, "%s: %zu transparent pixels, expected %zu", what,
              img.transparent, transparent);
    fm__image_free(&img);
    CHECK(!img.pixels && img.w == 0);
}

/* An opaque picture: the background must not matter. */
static void expect_image(const char *what, const char *path, int w, int h, const uint8_t *want,
                         int tol) {
    expect_read(what, path, 0, w, h, want, tol, 0);
    expect_read(what, path, 255, w, h, want, tol, 0);
}

static void png_files(void) {
    /* Our own writer, an odd size. */
    uint8_t px[37 * 13];
    for (int i = 0; i < 37 * 13; i++) px[i] = (uint8_t)(i * 97 + 3);
    fm_err err;
    int rc = fm_image_save_png(tu_path("grey.png"), px, 37, 13, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    expect_image("grey round trip", tu_path("grey.png"), 37, 13, px, 0);

    /* Colour goes grey with the Rec. 709 weights. */
    const uint8_t rgb[4 * 3] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255};
    const uint8_t rgb_grey[4] = {54, 182, 18, 255};
    write_png(tu_path("rgb.png"), 4, 1, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE, rgb, NULL, 0, NULL, 0);
    expect_image("RGB", tu_path("rgb.png"), 4, 1, rgb_grey, 1);
    write_png(tu_path("rgb_adam7.png"), 4, 1, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7, rgb, NULL, 0, NULL, 0);
    expect_image("RGB interlaced", tu_path("rgb_adam7.png"), 4, 1, rgb_grey, 1);
    /* Alpha composites over the background: grey 54 (red) clear, grey 18 (blue)
     * at alpha 128, white opaque. (18*128 + bg*127)/255 is 9 on black, 136 on white. */
    const uint8_t rgba[3 * 4] = {255, 0, 0, 0, 0, 0, 255, 128, 255, 255, 255, 255};
    const uint8_t rgba_black[3] = {0, 9, 255}, rgba_white[3] = {255, 136, 255};
    write_png(tu_path("rgba.png"), 3, 1, PNG_COLOR_TYPE_RGBA, 8, PNG_INTERLACE_NONE, rgba, NULL, 0, NULL, 0);
    expect_read("RGBA on black", tu_path("rgba.png"), 0, 3, 1, rgba_black, 1, 2);
    expect_read("RGBA on white", tu_path("rgba.png"), 255, 3, 1, rgba_white, 1, 2);

    const uint8_t ga[2 * 2] = {100, 0, 200, 255};
    const uint8_t ga_black[2] = {0, 200}, ga_mid[2] = {77, 200};
    write_png(tu_path("ga.png"), 2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, ga, NULL, 0, NULL, 0);
    expect_read("grey+alpha on black", tu_path("ga.png"), 0, 2, 1, ga_black, 0, 1);
    expect_read("grey+alpha on 77", tu_path("ga.png"), 77, 2, 1, ga_mid, 0, 1);

    /* tRNS: a palette entry marked fully transparent */
    const png_color tpal[2] = {{200, 200, 200}, {50, 50, 50}};
    const png_byte tpal_alpha[1] = {0}; /* entry 0 clear, entry 1 opaque */
    const uint8_t tidx[1] = {0x40}; /* 2-bit indices 1 0 0 0 */
    const uint8_t tpal_white[4] = {50, 255, 255, 255};
    write_png(tu_path("trns.png"), 4, 1, PNG_COLOR_TYPE_PALETTE, 2, PNG_INTERLACE_NONE, tidx, tpal, 2,
              tpal_alpha, 1);
    expect_read("palette with tRNS on white", tu_path("trns.png"), 255, 4, 1, tpal_white, 1, 3);

    const uint8_t g16[2 * 2] = {0xab, 0xcd, 0x00, 0x10}; /* big-endian samples */
    const uint8_t g16_grey[2] = {0xab, 0x00};
    write_png(tu_path("g16.png"), 2, 1, PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE, g16, NULL, 0, NULL, 0);
    expect_image("16-bit grey", tu_path("g16.png"), 2, 1, g16_grey, 1);

    const uint8_t g1[1] = {0xa0}; /* 1 0 1 0 */
    const uint8_t g1_grey[4] = {255, 0, 255, 0};
    write_png(tu_path("g1.png"), 4, 1, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE, g1, NULL, 0, NULL, 0);
    expect_image("1-bit grey", tu_path("g1.png"), 4, 1, g1_grey, 0);

    const png_color pal[2] = {{10, 200, 30}, {0, 0, 0}};
    const uint8_t idx[1] = {0x40}; /* 2-bit indices 1 0 0 0 */
    const uint8_t pal_grey[4] = {0, 147, 147, 147};
    write_png(tu_path("pal.png"), 4, 1, PNG_COLOR_TYPE_PALETTE, 2, PNG_INTERLACE_NONE, idx, pal, 2, NULL, 0);
    expect_image("palette", tu_path("pal.png"), 4, 1, pal_grey, 1);
}

static void pgm_files(void) {
    const char p5[] = "P5\n# a comment\n3 2\n255\n\x00\x10\xff\x80\x01\x02";
    tu_write(tu_path("a.pgm"), p5, sizeof p5 - 1);
    const uint8_t p5_px[6] = {0, 16, 255, 128, 1, 2};
    expect_image("P5", tu_path("a.pgm"), 3, 2, p5_px, 0);

    const char p5_16[] = "P5 2 1 65535\n\xff\xff\x80\x00";
    tu_write(tu_path("b.pgm"), p5_16, sizeof p5_16 - 1);
    const uint8_t p5_16_px[2] = {255, 128};
    expect_image("P5 16-bit", tu_path("b.pgm"), 2, 1, p5_16_px, 0);

    const char p2[] = "P2\n3 1 # width height\n15\n0 15\n7\n";
    tu_write(tu_path("c.pgm"), p2, sizeof p2 - 1);
    const uint8_t p2_px[3] = {0, 255, 119};
    expect_image("P2", tu_path("c.pgm"), 3, 1, p2_px, 0);
}

static void expect_fail(const char *name, const void *data, size_t n, const char *expect) {
    if (data) tu_write(tu_path(name), data, n);
    fm__image img;
    fm_err err;
    int rc = fm__image_read(tu_path(name), 0, &img, &err);
    CHECK_ERR(rc, err, tu_path(name), expect);
    CHECK(!img.pixels && img.w == 0 && img.h == 0);
}

static void bad_files(void) {
    expect_fail("missing.png", NULL, 0, "No such file");
    expect_fail("empty.png", "", 0, "empty file");
    expect_fail("text.png", "hello\n", 6, "not a PNG or PGM (P5/P2) image");
    expect_fail("p6.ppm", "P6 1 1 255\n\0\0\0", 14, "not a PNG or PGM");
    expect_fail("bad_w.pgm", "P5\nabc 2 255\n", 13, "PGM header: bad width");
    expect_fail("huge.pgm", "P5 100000 100000 255\n", 21, "PGM header: bad width (1..16384)");
    expect_fail("zero_h.pgm", "P5 2 0 255\n", 11, "bad height");
    expect_fail("bad_max.pgm", "P5 2 2 70000\n", 13, "bad maximum value");
    expect_fail("short.pgm", "P5 3 2 255\n\1\2\3\4\5", 16, "truncated PGM data: 5 of 6 pixels");
    expect_fail("above.pgm", "P5 2 1 100\n\1\200", 13, "PGM pixel 1: value 128 exceeds the maximum 100");
    expect_fail("p2_above.pgm", "P2 2 1 255 7 300", 16, "PGM pixel 1: missing, not a number, or above");
    expect_fail("p2_short.pgm", "P2 2 1 255 7", 12, "PGM pixel 1: missing");

    /* A PNG cut short, and one wider than the limit (cheap: 20000 x 1). */
    size_t n;
    unsigned char *png = tu_read(tu_path("grey.png"), &n);
    CHECK(png && n > 80);
    expect_fail("cut.png", png, 70, "bad PNG: the file ends early");
    png[45] ^= 0xff; /* inside IDAT's data: its CRC check fails */
    expect_fail("flipped.png", png, n, "bad PNG");
    free(png);
    uint8_t *wide = calloc(20000, 1);
    fm_err err;
    CHECK(fm_image_save_png(tu_path("wide.png"), wide, 20000, 1, &err) == 0);
    free(wide);
    expect_fail("wide.png", NULL, 0, "exceeds user limit");

    const char *nowhere = tu_path("no/such/folder/x.png");
    uint8_t one = 0;
    int rc = fm_image_save_png(nowhere, &one, 1, 1, &err);
    CHECK_ERR(rc, err, nowhere, "No such file");
    rc = fm_image_save_png(tu_path("zero.png"), &one, 0, 1, &err);
    CHECK_ERR(rc, err, "cannot write a 0x1 image", NULL);
}

static void resize(void) {
    uint8_t src[100 * 84], out[FM_IMAGE_PIXELS], want[FM_IMAGE_PIXELS];
    fm_err err;
    fm__image img = {.w = 28, .h = 28, .pixels = src};
    for (int i = 0; i < FM_IMAGE_PIXELS; i++) src[i] = (uint8_t)(i * 31);
    CHECK(fm__image_to_28x28(&img, out, &err) == 0 && !memcmp(out, src, FM_IMAGE_PIXELS));

    /* 84 x 56: 3 x 2 blocks average exactly. */
    img = (fm__image){.w = 84, .h = 56, .pixels = src};
    for (int y = 0; y < 56; y++)
        for (int x = 0; x < 84; x++) src[y * 84 + x] = (uint8_t)(x / 3 * 4 + y / 2 * 3 + (x % 3) * 6 + (y % 2) * 12);
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) want[y * 28 + x] = (uint8_t)(x * 4 + y * 3 + 6 + 6);
    int ok = fm__image_to_28x28(&img, out, &err) == 0;
    int bad = 0;
    for (int i = 0; i < FM_IMAGE_PIXELS; i++) bad += out[i] != want[i];
    CHECK_MSG(ok && bad == 0, "%d of 784 differ", bad);

    /* Constants stay constant, shrinking by odd ratios or growing. */
    static const int sizes[][2] = {{100, 37}, {30, 30}, {14, 14}, {1, 1}, {5, 60}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        img = (fm__image){.w = sizes[k][0], .h = sizes[k][1], .pixels = src};
        memset(src, 77, sizeof src);
        ok = fm__image_to_28x28(&img, out, &err) == 0;
        bad = 0;
        for (int i = 0; i < FM_IMAGE_PIXELS; i++) bad += out[i] != 77;
        CHECK_MSG(ok && bad == 0, "%dx%d: %d differ", sizes[k][0], sizes[k][1], bad);
    }

    /* Growing 2 -> 28 columns: bilinear between the two pixel centres,
     * edges held. x = (i + 0.5) / 14 - 0.5. */
    img = (fm__image){.w = 2, .h = 28, .pixels = src};
    for (int y = 0; y < 28; y++) src[2 * y] = 0, src[2 * y + 1] = 255;
    ok = fm__image_to_28x28(&img, out, &err) == 0;
    CHECK(ok && out[0] == 0 && out[6] == 0 && out[27] == 255 && out[21] == 255);
    CHECK(out[13] == 118 && out[14] == 137 && out[28 * 5 + 13] == 118);

    img = (fm__image){.w = 0, .h = 5, .pixels = src};
    CHECK_ERR(fm__image_to_28x28(&img, out, &err), err, "cannot resize a 0x5 image", NULL);
}

/* fm_image_load of path is the pieces' result: read over `background`,
 * resized, inverted when asked; info as expected. */
static void expect_load(const char *what, const char *path, unsigned flags, int w, int h,
                        int colour, size_t transparent) {
    uint8_t out[FM_IMAGE_PIXELS], want[FM_IMAGE_PIXELS];
    fm_image_info info = {-1, -1, -1, 99};
    fm_err err;
    fm__image img;
    int invert = (flags & FM_IMAGE_INVERT) != 0;
    CHECK_MSG(fm__image_read(path, invert ? 255 : 0, &img, &err) == 0 &&
                  fm__image_to_28x28(&img, want, &err) == 0,
              "%s: %s", what, err.msg);
    fm__image_free(&img);
    if (invert)
        for (int i = 0; i < FM_IMAGE_PIXELS; i++) want[i] = (uint8_t)(255 - want[i]);
    CHECK_MSG(fm_image_load(path, flags, out, &info, &err) == 0, "%s: %s", what, err.msg);
    CHECK_MSG(!memcmp(out, want, sizeof out), "%s: not the pieces' pixels", what);
    CHECK_MSG(info.width == w && info.height == h && info.colour == colour &&
                  info.transparent == transparent,
              "%s: %dx%d colour %d transparent %zu", what, info.width, info.height, info.colour,
              info.transparent);
    CHECK(fm_image_load(path, flags, out, NULL, &err) == 0); /* info may be NULL */
}

static void load(void) {
    fm_err err;
    uint8_t px[FM_IMAGE_PIXELS], out[FM_IMAGE_PIXELS];
    for (int i = 0; i < FM_IMAGE_PIXELS; i++) px[i] = (uint8_t)(i * 13 + 5);
    /* a 28x28 grey picture is the image itself, or its negative */
    CHECK(fm_image_save_png(tu_path("load28.png"), px, 28, 28, &err) == 0);
    CHECK(fm_image_load(tu_path("load28.png"), 0, out, NULL, &err) == 0 &&
          !memcmp(out, px, sizeof px));
    CHECK(fm_image_load(tu_path("load28.png"), FM_IMAGE_INVERT, out, NULL, &err) == 0);
    int inverted = 1;
    for (int i = 0; i < FM_IMAGE_PIXELS; i++) inverted &= out[i] == 255 - px[i];
    CHECK(inverted);
    expect_load("grey 28x28", tu_path("load28.png"), 0, 28, 28, 0, 0);
    expect_load("palette", tu_path("pal.png"), 0, 4, 1, 1, 0); /* a palette is colour */
    expect_load("1-bit grey", tu_path("g1.png"), FM_IMAGE_INVERT, 4, 1, 0, 0);

    /* colour, larger: turned grey and shrunk */
    uint8_t rgb[56 * 56 * 3];
    for (int i = 0; i < 56 * 56; i++) {
        rgb[3 * i] = (uint8_t)(i % 56 * 4);
        rgb[3 * i + 1] = (uint8_t)(i / 56 * 4);
        rgb[3 * i + 2] = 50;
    }
    write_png(tu_path("rgb56.png"), 56, 56, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE, rgb, NULL, 0,
              NULL, 0);
    expect_load("colour 56x56", tu_path("rgb56.png"), 0, 56, 56, 1, 0);

    /* transparency: black ground, or white that ends black once inverted */
    uint8_t ga[28 * 28 * 2];
    for (int i = 0; i < 28 * 28; i++) {
        ga[2 * i] = 200;
        ga[2 * i + 1] = i < 28 ? 0 : i < 56 ? 128 : 255; /* row 0 clear, row 1 half, rest opaque */
    }
    write_png(tu_path("alpha.png"), 28, 28, PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, ga,
              NULL, 0, NULL, 0);
    CHECK(fm_image_load(tu_path("alpha.png"), 0, out, NULL, &err) == 0);
    CHECK(out[0] == 0 && out[28] == 100 && out[56] == 200); /* (200 a + 0 (255 - a)) / 255 */
    CHECK(fm_image_load(tu_path("alpha.png"), FM_IMAGE_INVERT, out, NULL, &err) == 0);
    CHECK(out[0] == 0 && out[28] == 255 - 227 && out[56] == 55); /* ground 255, then 255 - v */
    expect_load("grey and alpha", tu_path("alpha.png"), 0, 28, 28, 0, 56);
    expect_load("grey and alpha, inverted", tu_path("alpha.png"), FM_IMAGE_INVERT, 28, 28, 0, 56);

    /* PGM, ASCII and binary, grown to 28x28 */
    const char p2[] = "P2 2 2 3\n0 1\n2 3\n";
    tu_write(tu_path("load.pgm"), p2, sizeof p2 - 1);
    expect_load("P2 2x2", tu_path("load.pgm"), 0, 2, 2, 0, 0);
    CHECK(fm_image_load(tu_path("load.pgm"), 0, out, NULL, &err) == 0);
    CHECK(out[0] == 0 && out[27] == 85 && out[28 * 27] == 170 && out[FM_IMAGE_PIXELS - 1] == 255);
    tu_write(tu_path("load5.pgm"), "P5 28 28 255\n", 13);
    FILE *f = fopen(tu_path("load5.pgm"), "ab");
    CHECK(f && fwrite(px, 1, sizeof px, f) == sizeof px && fclose(f) == 0);
    CHECK(fm_image_load(tu_path("load5.pgm"), 0, out, NULL, &err) == 0 &&
          !memcmp(out, px, sizeof px));

    /* refusals name the file */
    const char *missing = tu_path("load-missing.png");
    CHECK_ERR(fm_image_load(missing, 0, out, NULL, &err), err, missing, "No such file");
    CHECK_ERR(fm_image_load(tu_path("text.png"), 0, out, NULL, &err), err, "text.png",
              "not a PNG or PGM (P5/P2) image");
    CHECK_ERR(fm_image_load(tu_path("short.pgm"), FM_IMAGE_INVERT, out, NULL, &err), err,
              "short.pgm", "truncated PGM data");
    CHECK_ERR(fm_image_load(tu_path("cut.png"), 0, out, NULL, &err), err, "cut.png",
              "bad PNG: the file ends early");
    CHECK_ERR(fm_image_load(tu_path("load28.png"), 6, out, NULL, &err), err, "load28.png",
              "unknown image flags 0x6");
}

int main(void) {
    tu_init("test_image");
    png_files();
    pgm_files();
    bad_files();
    resize();
    load();
    return check_finish();
}
