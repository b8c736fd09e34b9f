/* Grey images in files: reading PNG and PGM, and resizing to the network's
 * 28x28 input, the pieces of fm_image_load (fmnist.h; it is what callers
 * use), which this file implements with them.
 *
 * Typical use:
 *     fm__image img;
 *     uint8_t x[FM_IMAGE_PIXELS];
 *     if (fm__image_read(path, &img, &err) < 0) return -1;
 *     int rc = fm__image_to_28x28(&img, x, &err);
 *     fm__image_free(&img);
 *
 * Fashion-MNIST images are light garments on a black background; a photo of
 * a dark garment on white needs inverting (255 - v) by the caller, which
 * knows what the picture shows. */
#ifndef FM_DATA_IMAGE_H
#define FM_DATA_IMAGE_H

#include "fmnist/fmnist.h"

/* Largest width or height accepted when reading, to refuse absurd headers
 * before allocating. */
#define FM__IMAGE_MAX_SIDE 16384

/* An 8-bit grey image of any size, row-major, w * h bytes. */
typedef struct fm__image {
    int w, h;
    uint8_t *pixels;
    size_t transparent; /* pixels that were not fully opaque (composited) */
    int colour;         /* a colour PNG (palette included), turned grey */
} fm__image;

/* Reads a PNG or PGM, chosen by the file's first bytes (not its name), into
 * 8-bit grey:
 *   PNG, any colour type and bit depth: palettes expanded, colour turned grey
 *     with libpng's default weights (0.2126 R + 0.7152 G + 0.0722 B), 16-bit
 *     reduced to 8, and pixels with alpha < 255 (an alpha channel or a tRNS
 *     chunk) composited over the grey level `background`:
 *     v' = (v a + background (255 - a)) / 255, rounded;
 *   PGM binary (P5) or ASCII (P2), any maxval up to 65535, rescaled to 0..255.
 * On failure img is zeroed and err names the file and the problem. */
int fm__image_read(const char *path, uint8_t background, fm__image *img, fm_err *err);
void fm__image_free(fm__image *img);

/* Resizes to 28x28, stretching to fill (the caller crops or pads first to
 * keep the aspect ratio): along each axis an area average where the image
 * shrinks and bilinear interpolation (pixel centres aligned, edges repeated)
 * where it grows; a 28x28 image is copied unchanged. */
int fm__image_to_28x28(const fm__image *img, uint8_t out[FM_IMAGE_PIXELS], fm_err *err);

#endif
