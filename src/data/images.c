/* Sets of images in memory: allocation and the seeded train/validation split. */
#include "core/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int fm_images_alloc(fm_images *imgs, size_t count, fm_err *err) {
    memset(imgs, 0, sizeof *imgs);
    if (count == 0) return 0;
    if (count > SIZE_MAX / FM_IMAGE_PIXELS)
        return fm__err(err, "%zu images do not fit in memory", count);
    imgs->pixels = calloc(count, FM_IMAGE_PIXELS);
    imgs->labels = calloc(count, 1);
    if (!imgs->pixels || !imgs->labels) {
        fm_images_free(imgs);
        return fm__err(err, "out of memory for %zu images", count);
    }
    imgs->count = count;
    return 0;
}

void fm_images_free(fm_images *imgs) {
    if (!imgs) return;
    free(imgs->pixels);
    free(imgs->labels);
    memset(imgs, 0, sizeof *imgs);
}

/* Copies images idx[0..n) of src into dst. */
static void gather(const fm_images *src, const uint32_t *idx, size_t n, fm_images *dst) {
    for (size_t i = 0; i < n; i++) {
        memcpy(dst->pixels + i * FM_IMAGE_PIXELS, src->pixels + (size_t)idx[i] * FM_IMAGE_PIXELS,
               FM_IMAGE_PIXELS);
        dst->labels[i] = src->labels[idx[i]];
    }
}

int fm_images_split(const fm_images *all, double val_fraction, uint64_t seed, fm_images *train,
                    fm_images *val, fm_err *err) {
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    if (!(val_fraction >= 0.0 && val_fraction <= 1.0))
        return fm__err(err, "validation fraction %g is outside [0, 1]", val_fraction);
    if (all->count > UINT32_MAX)
        return fm__err(err, "%zu images are too many to split", all->count);
    /* nearest count, halves rounded up (60000 * 0.2 = 12000 exactly) */
    size_t n_val = (size_t)floor((double)all->count * val_fraction + 0.5);
    size_t n_train = all->count - n_val;
    uint32_t *idx = malloc((all->count ? all->count : 1) * sizeof *idx);
    if (!idx) return fm__err(err, "out of memory for %zu indices", all->count);
    for (size_t i = 0; i < all->count; i++) idx[i] = (uint32_t)i;
    fm_rng rng;
    fm_rng_seed(&rng, seed);
    fm_rng_shuffle_u32(&rng, idx, all->count);
    if (fm_images_alloc(val, n_val, err) < 0 || fm_images_alloc(train, n_train, err) < 0) {
        fm_images_free(val);
        free(idx);
        return -1;
    }
    gather(all, idx, n_val, val);
    gather(all, idx + n_val, n_train, train);
    free(idx);
    return 0;
}
