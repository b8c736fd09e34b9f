/* Training-time augmentation, per image in this order, each block switched
 * on by fm__aug_params:
 * - affine: Keras's ImageDataGenerator(rotation_range=10, zoom_range=0.1,
 *   horizontal_flip=True), the notebook's: one affine map per image about the
 *   centre ((N-1)/2), bilinear sampling, edge pixels repeated outside the
 *   image (fill_mode 'nearest');
 * - flip: a horizontal flip alone, with probability 1/2;
 * - translate: pad-and-crop, an integer shift of up to N pixels on each
 *   axis, black (0) where the shift uncovers;
 * - erasing: torchvision's RandomErasing (Zhong et al. 2017), a random
 *   rectangle set to 0 or to uniform noise.
 * The bytes are scaled to [0, 1] (fm__pixel_scale) before flip, translate and
 * erasing, which work on the floats. */
#ifndef FM_TRAIN_AUGMENT_H
#define FM_TRAIN_AUGMENT_H

#include "core/draws.h"
#include "fmnist/fmnist.h"

typedef struct fm__aug {
    double angle;  /* degrees; positive turns the picture counter-clockwise */
    double zx, zy; /* inverse-map scales: > 1 shows more of the plane (content shrinks) */
    int flip;      /* mirror left-right (after the rotation and zoom, as Keras) */
} fm__aug;

#define FM__AUG_ROTATION 10.0 /* degrees, uniform in [-10, 10] */
#define FM__AUG_ZOOM 0.1      /* uniform in [0.9, 1.1], x and y independently */
#define FM__AUG_TRANSLATE_MAX (FM_IMAGE_COLS - 1)
#define FM__AUG_ERASE_ATTEMPTS 10 /* torchvision's */

/* Which blocks run, with their settings (the recipe keys of the same names;
 * augment is `affine` here). */
typedef struct fm__aug_params {
    int affine;             /* the notebook's rotation, zoom and flip */
    int flip;               /* flip alone (refused with affine, which flips already) */
    int translate;          /* N: shifts uniform in [-N, N] on each axis; 0 off */
    float erase_prob;       /* probability that an image is erased; 0 off */
    float erase_area_min;   /* the rectangle's area as a fraction of the */
    float erase_area_max;   /*   image's, uniform in [min, max] */
    float erase_aspect_min; /* a: aspect h/w log-uniform in [a, 1/a] */
    int erase_random_fill;  /* uniform [0, 1) per pixel, else 0 */
} fm__aug_params;

/* Every block off; the erasing ranges at the recipe defaults (area 0.02 to
 * 0.33, aspect from 0.3), so setting erase_prob alone turns erasing on. */
fm__aug_params fm__aug_params_none(void);

/* 0 when a is usable: translate 0..27, erase_prob in [0, 1],
 * 0 < erase_area_min <= erase_area_max <= 1, 0 < erase_aspect_min <= 1 (also
 * when erasing is off), not affine and flip together; else -1 with err
 * naming the recipe key. */
int fm__aug_params_check(const fm__aug_params *a, fm_err *err);

/* The identity: angle 0, zoom 1, no flip. */
fm__aug fm__aug_identity(void);

/* Draws one image's transform. Order of draws from rng, one uniform each:
 * angle, zx, zy, flip (flip when the uniform < 0.5). */
fm__aug fm__aug_draw(fm_rng *rng);

/* dst (rows, cols) floats = src (rows, cols) bytes warped by a, then scaled
 * as every input is (fm__pixel_scale).
 * Output pixel (x, y) samples the source at
 *   c + R(angle) . diag(zx, zy) . (x' - cx, y - cy),  x' = flip ? cols-1-x : x,
 * with c = ((cols-1)/2, (rows-1)/2), coordinates clamped to the image. */
void fm__aug_warp(float *dst, const uint8_t *src, int rows, int cols, const fm__aug *a);

/* An integer uniform in [0, n), 0 < n <= 2^24, from one fm_rng_uniform u:
 * floor(u * n), exact in double (u has 24 bits). Each value then has
 * probability within 2^-24 of 1/n: relative bias below n / 2^24, 3.4e-6 for
 * the largest n used here (2 * 27 + 1). One draw always (fm_rng_below would
 * be exact but rejects, rarely, into a second draw). */
int fm__aug_randint(fm_rng *rng, int n);

/* Mirrors img (rows, cols) left-right in place. */
void fm__aug_mirror(float *img, int rows, int cols);

/* Shifts img (rows, cols) in place by dx columns right and dy rows down:
 * out(x, y) = in(x - dx, y - dy), 0 where that is outside the image (all 0
 * when |dx| >= cols or |dy| >= rows). */
void fm__aug_translate(float *img, int rows, int cols, int dx, int dy);

/* An erasing rectangle: rows [top, top + h), columns [left, left + w). */
typedef struct fm__aug_rect {
    int top, left, h, w;
} fm__aug_rect;

/* Decides whether a (rows, cols) image is erased and where, as torchvision's
 * RandomErasing: with probability erase_prob (one uniform u, erased when
 * u < erase_prob), up to FM__AUG_ERASE_ATTEMPTS attempts of two uniforms
 *   area   = rows * cols * (area_min + u1 (area_max - area_min))
 *   aspect = exp(log a + u2 (log(1/a) - log a)),  a = erase_aspect_min
 *   h = round(sqrt(area * aspect)), w = round(sqrt(area / aspect))
 * (round: to nearest, ties to even, as Python's round), the first with
 * h < rows and w < cols taken, then top = fm__aug_randint(rows - h + 1),
 * left = fm__aug_randint(cols - w + 1). 1 with *r set when erased; 0 when not
 * (the first uniform, or all attempts failed). erase_prob 0 draws nothing. */
int fm__aug_erase_draw(fm__aug_rect *r, int rows, int cols, const fm__aug_params *ap, fm_rng *rng);

/* Sets rectangle r of img (cols wide) to 0, or with random_fill to one
 * fm_rng_uniform per pixel in row-major order. */
void fm__aug_erase(float *img, int cols, const fm__aug_rect *r, int random_fill, fm_rng *rng);

/* dst (1, 28, 28) from the image's bytes src, ap having passed
 * fm__aug_params_check, its draws from rng in order: affine 4 (fm__aug_draw)
 * then the warp, else the plain scaling; flip 1 (mirrored when < 0.5);
 * translate 2 (dx, dy = fm__aug_randint(2N + 1) - N); erasing as
 * fm__aug_erase_draw, then its fill. A block that is off draws nothing. */
void fm__aug_image(float *dst, const uint8_t *src, const fm__aug_params *ap, fm_rng *rng);

/* Fills dst (n, 1, 28, 28) from images idx[0..n) of imgs, each as
 * fm__aug_image with its own stream (d->seed, d->epoch, idx[i], augment):
 * an image's augmentation depends on the epoch and the image alone. */
void fm__aug_batch(float *dst, const fm_images *imgs, const uint32_t *idx, int n,
                   const fm__aug_params *ap, const fm__draws *d);

#endif
