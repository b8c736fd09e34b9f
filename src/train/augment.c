/* Random rotation, zoom and flip: one inverse affine map per image. */
#include "train/augment.h"

#include <math.h>

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

fm__aug_params fm__aug_params_none(void) { return (fm__aug_params){0}; }
int fm__aug_params_check(const fm__aug_params *a, fm_err *err) { (void)a; (void)err; return 0; }
void fm__aug_batch(float *dst, const fm_images *imgs, const uint32_t *idx, int n,
                   const fm__aug_params *ap, fm_rng *rng) {
    int augment = ap->affine;
    for (int i = 0; i < n; i++) {
        const uint8_t *src = imgs->pixels + (size_t)idx[i] * FM_IMAGE_PIXELS;
        float *out = dst + (size_t)i * FM_IMAGE_PIXELS;
        if (augment) {
            fm__aug a = fm__aug_draw(rng);
            fm__aug_warp(out, src, FM_IMAGE_ROWS, FM_IMAGE_COLS, &a);
        } else {
            fm__input_scale(out, src, FM_IMAGE_PIXELS);
        }
    }
}
