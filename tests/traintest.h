/* What the fm_train tests share: a small synthetic task and one call that
 * trains a network described by text into a run folder. */
#ifndef FM_TESTS_TRAINTEST_H
#define FM_TESTS_TRAINTEST_H

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fmnist/fmnist.h"

/* rc < 0 and the message holds the fragment. */
#define CHECK_FAILS_WITH(rc, err, fragment) \
    CHECK_MSG((rc) < 0 && strstr((err).msg, (fragment)), "rc %d, message: %s", (rc), (err).msg)

/* n images; class c: a bright bar across row 3 + 2c on a noisy dark ground. */
static inline fm_images tt_bars(size_t n, uint64_t seed) {
    fm_images im;
    fm_err err;
    if (fm_images_alloc(&im, n, &err) < 0) exit(1);
    fm_rng r;
    fm_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % FM_NUM_CLASSES);
        uint8_t *px = im.pixels + i * FM_IMAGE_PIXELS;
        for (int p = 0; p < FM_IMAGE_PIXELS; p++) px[p] = (uint8_t)fm_rng_below(&r, 60);
        for (int x = 4; x < 24; x++) px[(3 + 2 * c) * FM_IMAGE_COLS + x] = 230;
        im.labels[i] = (uint8_t)c;
    }
    return im;
}

/* fm_train of the network `net` (description text) into dir with p; the
 * trained model goes to *out (the caller frees it), or is freed when out is
 * NULL. */
static inline int tt_train(const char *net, const char *dir, const fm_images *tr,
                           const fm_images *va, fm_train_params p, fm_train_result *r,
                           fm_model **out, fm_err *err) {
    fm_model *m = fm_model_parse(net, "test-net", err);
    if (!m) return -1;
    p.out_dir = dir;
    int rc = fm_train(m, tr, va, &p, r, err);
    if (out)
        *out = m;
    else
        fm_model_free(m);
    return rc;
}

#endif
