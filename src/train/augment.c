/* The augmentation blocks: the notebook's affine (one inverse map per image),
 * flip, translate and random erasing. */
#include "train/augment.h"

#include <math.h>
#include <string.h>

#include "core/error.h"
#include "model/infer.h"

#define PI 3.14159265358979323846 /* M_PI is not in strict C11 */

fm__aug fm__aug_identity(void) { return (fm__aug){0.0, 1.0, 1.0, 0}; }

fm__aug fm__aug_draw(fm_rng *rng) {
    fm__aug a;
    a.angle = (2.0 * fm_rng_uniform(rng) - 1.0) * FM__AUG_ROTATION;
    a.zx = 1.0 + (2.0 * fm_rng_uniform(rng) - 1.0) * FM__AUG_ZOOM;
    a.zy = 1.0 + (2.0 * fm_rng_uniform(rng) - 1.0) * FM__AUG_ZOOM;
    a.flip = fm_rng_uniform(rng) < 0.5f;
    return a;
}

static int clampi(int v, int hi) { return v < 0 ? 0 : v > hi ? hi : v; }

void fm__aug_warp(float *dst, const uint8_t *src, int rows, int cols, const fm__aug *a) {
    double th = a->angle * (PI / 180.0);
    double cs = cos(th), sn = sin(th);
    /* Rows grow downwards, so "counter-clockwise on screen" reads
     * src = c + [[cos, -sin], [sin, cos]] . zoom . (dst - c) in (x, y). */
    double m00 = cs * a->zx, m01 = -sn * a->zy;
    double m10 = sn * a->zx, m11 = cs * a->zy;
    double cx = 0.5 * (cols - 1), cy = 0.5 * (rows - 1);
    for (int y = 0; y < rows; y++) {
        double dy = y - cy;
        for (int x = 0; x < cols; x++) {
            double dx = (a->flip ? cols - 1 - x : x) - cx;
            double sx = cx + m00 * dx + m01 * dy;
            double sy = cy + m10 * dx + m11 * dy;
            /* Bilinear over the four neighbours; clamping the indices repeats
             * the edge pixels outside (fill_mode 'nearest'). */
            double fx0 = floor(sx), fy0 = floor(sy);
            double fx = sx - fx0, fy = sy - fy0;
            int x0 = (int)fx0, y0 = (int)fy0;
            int xa = clampi(x0, cols - 1), xb = clampi(x0 + 1, cols - 1);
            int ya = clampi(y0, rows - 1), yb = clampi(y0 + 1, rows - 1);
            double top = src[ya * cols + xa] * (1.0 - fx) + src[ya * cols + xb] * fx;
            double bot = src[yb * cols + xa] * (1.0 - fx) + src[yb * cols + xb] * fx;
            double v = top * (1.0 - fy) + bot * fy;
            dst[y * cols + x] = fm__pixel_scale((float)v);
        }
    }
}

fm__aug_params fm__aug_params_none(void) {
    return (fm__aug_params){0, 0, 0, 0.0f, 0.02f, 0.33f, 0.3f, 0};
}

int fm__aug_params_check(const fm__aug_params *a, fm_err *err) {
    if (a->affine && a->flip)
        return fm__err(err,
                       "flip = yes with augment = yes: the notebook's affine already flips "
                       "half the images; use one of them");
    if (a->translate < 0 || a->translate > FM__AUG_TRANSLATE_MAX)
        return fm__err(err, "translate %d is not in 0..%d", a->translate, FM__AUG_TRANSLATE_MAX);
    /* written so that NaN fails too */
    if (!(a->erase_prob >= 0.0f && a->erase_prob <= 1.0f))
        return fm__err(err, "erase_prob %g is not in [0, 1]", a->erase_prob);
    if (!(a->erase_area_min > 0.0f && a->erase_area_min <= a->erase_area_max &&
          a->erase_area_max <= 1.0f))
        return fm__err(err, "erase_area_min %g and erase_area_max %g need 0 < min <= max <= 1",
                       a->erase_area_min, a->erase_area_max);
    if (!(a->erase_aspect_min > 0.0f && a->erase_aspect_min <= 1.0f))
        return fm__err(err, "erase_aspect_min %g is not in (0, 1]", a->erase_aspect_min);
    return 0;
}

int fm__aug_randint(fm_rng *rng, int n) { return (int)((double)fm_rng_uniform(rng) * n); }

void fm__aug_mirror(float *img, int rows, int cols) {
    for (int y = 0; y < rows; y++) {
        float *r = img + (size_t)y * cols;
        for (int x = 0; x < cols / 2; x++) {
            float t = r[x];
            r[x] = r[cols - 1 - x];
            r[cols - 1 - x] = t;
        }
    }
}

void fm__aug_translate(float *img, int rows, int cols, int dx, int dy) {
    int adx = dx < 0 ? -dx : dx;
    /* Row y takes row y - dy: walking away from the rows still to be read
     * (bottom up when moving down) lets it work in place. */
    for (int k = 0; k < rows; k++) {
        int y = dy > 0 ? rows - 1 - k : k, sy = y - dy;
        float *d = img + (size_t)y * cols;
        if (sy < 0 || sy >= rows || adx >= cols) {
            memset(d, 0, (size_t)cols * sizeof *d);
            continue;
        }
        const float *s = img + (size_t)sy * cols;
        if (dx >= 0) {
            memmove(d + dx, s, (size_t)(cols - dx) * sizeof *d);
            memset(d, 0, (size_t)dx * sizeof *d);
        } else {
            memmove(d, s + adx, (size_t)(cols - adx) * sizeof *d);
            memset(d + cols - adx, 0, (size_t)adx * sizeof *d);
        }
    }
}

int fm__aug_erase_draw(fm__aug_rect *r, int rows, int cols, const fm__aug_params *ap, fm_rng *rng) {
    if (ap->erase_prob == 0.0f || !(fm_rng_uniform(rng) < ap->erase_prob)) return 0;
    double area = (double)rows * cols;
    double amin = ap->erase_area_min, amax = ap->erase_area_max;
    double lo = log((double)ap->erase_aspect_min), hi = log(1.0 / ap->erase_aspect_min);
    for (int i = 0; i < FM__AUG_ERASE_ATTEMPTS; i++) {
        double e = area * (amin + fm_rng_uniform(rng) * (amax - amin));
        double aspect = exp(lo + fm_rng_uniform(rng) * (hi - lo));
        /* nearbyint rounds ties to even in the default rounding mode */
        int h = (int)nearbyint(sqrt(e * aspect)), w = (int)nearbyint(sqrt(e / aspect));
        if (h < rows && w < cols) {
            r->h = h;
            r->w = w;
            r->top = fm__aug_randint(rng, rows - h + 1);
            r->left = fm__aug_randint(rng, cols - w + 1);
            return 1;
        }
    }
    return 0;
}

void fm__aug_erase(float *img, int cols, const fm__aug_rect *r, int random_fill, fm_rng *rng) {
    for (int y = r->top; y < r->top + r->h; y++) {
        float *d = img + (size_t)y * cols + r->left;
        for (int x = 0; x < r->w; x++) d[x] = random_fill ? fm_rng_uniform(rng) : 0.0f;
    }
}

void fm__aug_image(float *out, const uint8_t *src, const fm__aug_params *ap, fm_rng *rng) {
    const int R = FM_IMAGE_ROWS, C = FM_IMAGE_COLS;
    if (ap->affine) {
        fm__aug a = fm__aug_draw(rng);
        fm__aug_warp(out, src, R, C, &a);
    } else {
        fm__input_scale(out, src, FM_IMAGE_PIXELS);
    }
    if (ap->flip && fm_rng_uniform(rng) < 0.5f) fm__aug_mirror(out, R, C);
    if (ap->translate > 0) {
        int dx = fm__aug_randint(rng, 2 * ap->translate + 1) - ap->translate;
        int dy = fm__aug_randint(rng, 2 * ap->translate + 1) - ap->translate;
        fm__aug_translate(out, R, C, dx, dy);
    }
    fm__aug_rect r;
    if (fm__aug_erase_draw(&r, R, C, ap, rng)) fm__aug_erase(out, C, &r, ap->erase_random_fill, rng);
}

void fm__aug_batch(float *dst, const fm_images *imgs, const uint32_t *idx, int n,
                   const fm__aug_params *ap, const fm__draws *d) {
    for (int i = 0; i < n; i++) {
        fm_rng rng;
        fm__rng_stream(&rng, d->seed, d->epoch, idx[i], FM__DRAW_AUGMENT);
        fm__aug_image(dst + (size_t)i * FM_IMAGE_PIXELS,
                      imgs->pixels + (size_t)idx[i] * FM_IMAGE_PIXELS, ap, &rng);
    }
}
