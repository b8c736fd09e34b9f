/* fm_images_split: sizes (rounded), every image in exactly one part,
 * determinism per seed, the input untouched; and fm_images_alloc/free. */
#include "check.h"
#include "data/testutil.h"

/* Image i carries i in its first four pixels, so copies can be traced. */
static void make_traceable(fm_images *all, size_t n) {
    tu_make_set(all, n, 0);
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) all->pixels[i * FM_IMAGE_PIXELS + b] = (uint8_t)(i >> (8 * b));
}

static size_t origin(const fm_images *s, size_t i) {
    const uint8_t *p = s->pixels + i * FM_IMAGE_PIXELS;
    return (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
}

/* Each part holds whole copies of distinct images and together they hold all. */
static void check_partition(const fm_images *all, const fm_images *train, const fm_images *val) {
    unsigned char *seen = calloc(all->count, 1);
    int bad = 0;
    const fm_images *parts[2] = {train, val};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < parts[s]->count; i++) {
            size_t o = origin(parts[s], i);
            if (o >= all->count || seen[o]++ ||
                memcmp(parts[s]->pixels + i * FM_IMAGE_PIXELS, all->pixels + o * FM_IMAGE_PIXELS,
                       FM_IMAGE_PIXELS) ||
                parts[s]->labels[i] != all->labels[o])
                bad++;
        }
    CHECK_MSG(bad == 0 && train->count + val->count == all->count, "%d bad copies", bad);
    free(seen);
}

static void split(void) {
    fm_images all, train, val, train2, val2;
    fm_err err;
    make_traceable(&all, 1000);
    fm_images copy;
    tu_make_set(&copy, 1000, 0);
    memcpy(copy.pixels, all.pixels, 1000 * FM_IMAGE_PIXELS);

    int rc = fm_images_split(&all, 0.2, 42, &train, &val, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    CHECK(train.count == 800 && val.count == 200);
    check_partition(&all, &train, &val);
    CHECK(tu_same_set(&all, &copy));

    /* Shuffled, not the first or last 200 in order. */
    size_t in_order = 0;
    for (size_t i = 0; i < val.count; i++) in_order += origin(&val, i) == i;
    CHECK(in_order < 20);

    /* Same seed, same split; another seed, another split. */
    rc = fm_images_split(&all, 0.2, 42, &train2, &val2, &err);
    CHECK(rc == 0 && tu_same_set(&train, &train2) && tu_same_set(&val, &val2));
    fm_images_free(&train2);
    fm_images_free(&val2);
    rc = fm_images_split(&all, 0.2, 43, &train2, &val2, &err);
    CHECK(rc == 0 && val2.count == 200 && !tu_same_set(&val, &val2));
    check_partition(&all, &train2, &val2);
    fm_images_free(&train2);
    fm_images_free(&val2);

    /* The split is a shuffle of indices by fm_rng: the first 200 go to val. */
    uint32_t idx[1000];
    for (uint32_t i = 0; i < 1000; i++) idx[i] = i;
    fm_rng rng;
    fm_rng_seed(&rng, 42);
    fm_rng_shuffle_u32(&rng, idx, 1000);
    int same = 1;
    for (size_t i = 0; i < 200; i++) same &= origin(&val, i) == idx[i];
    for (size_t i = 0; i < 800; i++) same &= origin(&train, i) == idx[200 + i];
    CHECK(same);
    fm_images_free(&train);
    fm_images_free(&val);

    /* Rounding to the nearest count, and the ends of the range. */
    static const struct {
        size_t n;
        double f;
        size_t n_val;
    } sizes[] = {{10, 0.25, 3}, {10, 0.24, 2}, {7, 0.5, 4}, {1000, 0.0, 0}, {1000, 1.0, 1000},
                 {1, 0.2, 0}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        fm_images sub = all;
        sub.count = sizes[k].n;
        rc = fm_images_split(&sub, sizes[k].f, 7, &train, &val, &err);
        CHECK_MSG(rc == 0 && val.count == sizes[k].n_val && train.count == sizes[k].n - sizes[k].n_val,
                  "%zu x %g: %zu val", sizes[k].n, sizes[k].f, val.count);
        check_partition(&sub, &train, &val);
        fm_images_free(&train);
        fm_images_free(&val);
    }

    rc = fm_images_split(&all, 1.5, 42, &train, &val, &err);
    CHECK_ERR(rc, err, "validation fraction 1.5 is outside [0, 1]", NULL);
    rc = fm_images_split(&all, -0.1, 42, &train, &val, &err);
    CHECK_ERR(rc, err, "outside [0, 1]", NULL);
    rc = fm_images_split(&all, NAN, 42, &train, &val, &err);
    CHECK_ERR(rc, err, "outside [0, 1]", NULL);
    CHECK(!train.pixels && !val.pixels && train.count == 0);
    fm_images_free(&all);
    fm_images_free(&copy);
}

static void alloc(void) {
    fm_images imgs;
    fm_err err;
    int rc = fm_images_alloc(&imgs, 3, &err);
    CHECK(rc == 0 && imgs.count == 3 && imgs.pixels && imgs.labels);
    int nonzero = 0;
    for (int i = 0; i < 3 * FM_IMAGE_PIXELS; i++) nonzero += imgs.pixels[i] != 0;
    for (int i = 0; i < 3; i++) nonzero += imgs.labels[i] != 0;
    CHECK(nonzero == 0);
    fm_images_free(&imgs);
    CHECK(imgs.count == 0 && !imgs.pixels && !imgs.labels);
    fm_images_free(&imgs); /* twice is harmless */
    fm_images_free(NULL);
    rc = fm_images_alloc(&imgs, 0, &err);
    CHECK(rc == 0 && imgs.count == 0);
    rc = fm_images_alloc(&imgs, SIZE_MAX / 100, &err);
    CHECK_ERR(rc, err, "images do not fit in memory", NULL);
}

int main(void) {
    split();
    alloc();
    return check_finish();
}
