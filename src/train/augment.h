/* Training-time augmentation as Keras's ImageDataGenerator(rotation_range=10,
 * zoom_range=0.1, horizontal_flip=True) does it: one affine map per image
 * about the centre ((N-1)/2), bilinear sampling, edge pixels repeated outside
 * the image (fill_mode 'nearest'), and the bytes scaled to [0, 1]. */
#ifndef FM_TRAIN_AUGMENT_H
#define FM_TRAIN_AUGMENT_H

#include "fmnist/fmnist.h"

typedef struct fm__aug {
    double angle;  /* degrees; positive turns the picture counter-clockwise */
    double zx, zy; /* inverse-map scales: > 1 shows more of the plane (content shrinks) */
    int flip;      /* mirror left-right (after the rotation and zoom, as Keras) */
} fm__aug;

#define FM__AUG_ROTATION 10.0 /* degrees, uniform in [-10, 10] */
#define FM__AUG_ZOOM 0.1      /* uniform in [0.9, 1.1], x and y independently */

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

/* PLACEHOLDER until the aug branch lands */
typedef struct fm__aug_params {
    int affine, flip, translate;
    float erase_prob, erase_area_min, erase_area_max, erase_aspect_min;
    int erase_random_fill;
} fm__aug_params;
fm__aug_params fm__aug_params_none(void);
int fm__aug_params_check(const fm__aug_params *a, fm_err *err);
void fm__aug_batch(float *dst, const fm_images *imgs, const uint32_t *idx, int n,
                   const fm__aug_params *ap, fm_rng *rng);

#endif
