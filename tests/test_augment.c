/* Augmentation: the affine map, bilinear sampling and edge fill on known
 * patterns, and the random draws' ranges and order. */
#include "check.h"
#include "train/augment.h"

#include <string.h>

static uint8_t img[29 * 29];
static float out[29 * 29];

static void fill_random(uint8_t *p, int n, uint64_t seed) {
    fm_rng r;
    fm_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) p[i] = (uint8_t)fm_rng_below(&r, 256);
}

int main(void) {
    const int N = 28;

    /* identity: the image back, scaled exactly like the no-augment path */
    fill_random(img, N * N, 1);
    fm__aug id = fm__aug_identity();
    fm__aug_warp(out, img, N, N, &id);
    int same = 1;
    for (int i = 0; i < N * N; i++) same &= out[i] == img[i] / 255.0f;
    CHECK(same);

    /* pure flip mirrors left-right */
    fm__aug fl = id;
    fl.flip = 1;
    fm__aug_warp(out, img, N, N, &fl);
    same = 1;
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++) same &= out[y * N + x] == img[y * N + (N - 1 - x)] / 255.0f;
    CHECK(same);

    /* 90 degrees counter-clockwise: the right column becomes the top row,
     * dst[y][x] = src[x][N-1-y] */
    fm__aug r90 = id;
    r90.angle = 90.0;
    fm__aug_warp(out, img, N, N, &r90);
    double worst = 0;
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++) {
            double d = fabs(out[y * N + x] - img[x * N + (N - 1 - y)] / 255.0);
            if (d > worst) worst = d;
        }
    CHECK_MSG(worst < 1e-6, "worst %g", worst);

    /* zoom 1.1 keeps the centre pixel of an odd image; others move inwards:
     * dst[14][24] samples src column 14 + 1.1 * 10 = 25 */
    {
        const int M = 29;
        fill_random(img, M * M, 2);
        fm__aug z = id;
        z.zx = z.zy = 1.1;
        fm__aug_warp(out, img, M, M, &z);
        CHECK(out[14 * M + 14] == img[14 * M + 14] / 255.0f);
        CHECK_NEAR(out[14 * M + 24], img[14 * M + 25] / 255.0, 1e-6);
        CHECK_NEAR(out[24 * M + 14], img[25 * M + 14] / 255.0, 1e-6);
    }

    /* bilinear sampling is exact on a linear ramp v = 10x + y: rotation 30,
     * zoom 0.5 / 0.75 on a 9x9 never leaves the image */
    {
        const int M = 9;
        for (int y = 0; y < M; y++)
            for (int x = 0; x < M; x++) img[y * M + x] = (uint8_t)(10 * x + y);
        fm__aug a = {30.0, 0.5, 0.75, 0};
        fm__aug_warp(out, img, M, M, &a);
        double th = 30.0 * 3.14159265358979323846 / 180.0, cs = cos(th), sn = sin(th);
        worst = 0;
        for (int y = 0; y < M; y++)
            for (int x = 0; x < M; x++) {
                double dx = x - 4.0, dy = y - 4.0;
                double sx = 4.0 + cs * 0.5 * dx - sn * 0.75 * dy;
                double sy = 4.0 + sn * 0.5 * dx + cs * 0.75 * dy;
                double d = fabs(out[y * M + x] - (10 * sx + sy) / 255.0);
                if (d > worst) worst = d;
            }
        CHECK_MSG(worst < 1e-6, "worst %g", worst);
        /* half-pixel positions with zoom 0.5 along x only: dst[y][x] = 10(2 + x/2) + y */
        fm__aug h = {0.0, 0.5, 1.0, 0};
        fm__aug_warp(out, img, M, M, &h);
        CHECK(out[3 * M + 1] == (float)(10 * 2.5 + 3) / 255.0f);
    }

    /* fill repeats the edges: zoom 3 on a 5x5 samples far outside */
    {
        const int M = 5;
        fill_random(img, M * M, 3);
        fm__aug z = {0.0, 3.0, 3.0, 0};
        fm__aug_warp(out, img, M, M, &z);
        CHECK(out[0] == img[0] / 255.0f);                           /* top-left corner */
        CHECK(out[M * M - 1] == img[M * M - 1] / 255.0f);           /* bottom-right */
        CHECK(out[2 * M + 0] == img[2 * M + 0] / 255.0f);           /* left edge, centre row */
        CHECK(out[0 * M + 2] == img[0 * M + 2] / 255.0f);           /* top edge, centre column */
        CHECK(out[2 * M + 4] == img[2 * M + 4] / 255.0f);           /* right edge */
        CHECK(out[2 * M + 2] == img[2 * M + 2] / 255.0f);           /* centre */
    }

    /* random draws: ranges, rough uniformity, independence of zx and zy */
    {
        fm_rng r;
        fm_rng_seed(&r, 7);
        int flips = 0, in_range = 1, zx_ne_zy = 0;
        double amin = 1e9, amax = -1e9, zmin = 1e9, zmax = -1e9, asum = 0;
        const int D = 20000;
        for (int i = 0; i < D; i++) {
            fm__aug a = fm__aug_draw(&r);
            in_range &= a.angle >= -10.0 && a.angle <= 10.0;
            in_range &= a.zx >= 0.9 && a.zx <= 1.1 && a.zy >= 0.9 && a.zy <= 1.1;
            in_range &= a.flip == 0 || a.flip == 1;
            flips += a.flip;
            zx_ne_zy += a.zx != a.zy;
            asum += a.angle;
            amin = fmin(amin, a.angle), amax = fmax(amax, a.angle);
            zmin = fmin(zmin, fmin(a.zx, a.zy)), zmax = fmax(zmax, fmax(a.zx, a.zy));
        }
        CHECK(in_range);
        CHECK(amin < -9.9 && amax > 9.9);
        CHECK(zmin < 0.905 && zmax > 1.095);
        CHECK_MSG(fabs(asum / D) < 0.2, "mean angle %g", asum / D);
        CHECK_MSG(abs(flips - D / 2) < 400, "flips %d of %d", flips, D);
        CHECK(zx_ne_zy > D - 10);
    }

    /* the documented draw order: angle, zx, zy, flip, one uniform each */
    {
        fm_rng r1, r2;
        fm_rng_seed(&r1, 9);
        fm_rng_seed(&r2, 9);
        fm__aug a = fm__aug_draw(&r1);
        float u0 = fm_rng_uniform(&r2), u1 = fm_rng_uniform(&r2), u2 = fm_rng_uniform(&r2),
              u3 = fm_rng_uniform(&r2);
        CHECK(a.angle == (2.0 * u0 - 1.0) * 10.0);
        CHECK(a.zx == 1.0 + (2.0 * u1 - 1.0) * 0.1);
        CHECK(a.zy == 1.0 + (2.0 * u2 - 1.0) * 0.1);
        CHECK(a.flip == (u3 < 0.5f));
        CHECK(fm_rng_next(&r1) == fm_rng_next(&r2));
    }

    /* batches: no augment is /255 and draws nothing; augment warps image by
     * image with draws in index order */
    {
        static uint8_t px[3 * FM_IMAGE_PIXELS];
        static uint8_t lb[3];
        static float b[2 * FM_IMAGE_PIXELS], e[FM_IMAGE_PIXELS];
        fill_random(px, 3 * FM_IMAGE_PIXELS, 4);
        fm_images set = {3, px, lb};
        uint32_t idx[2] = {2, 0};
        fm_rng r1, r2;
        fm_rng_seed(&r1, 11);
        fm_rng_seed(&r2, 11);
        fm__aug_batch(b, &set, idx, 2, &(fm__aug_params){.affine = 0}, &r1);
        CHECK(b[5] == px[2 * FM_IMAGE_PIXELS + 5] / 255.0f);
        CHECK(b[FM_IMAGE_PIXELS + 700] == px[700] / 255.0f);
        CHECK(fm_rng_next(&r1) == fm_rng_next(&r2));
        fm__aug_batch(b, &set, idx, 2, &(fm__aug_params){.affine = 1}, &r1);
        for (int i = 0; i < 2; i++) {
            fm__aug a = fm__aug_draw(&r2);
            fm__aug_warp(e, px + idx[i] * FM_IMAGE_PIXELS, 28, 28, &a);
            CHECK(memcmp(e, b + i * FM_IMAGE_PIXELS, sizeof e) == 0);
        }
    }
    return check_finish();
}
