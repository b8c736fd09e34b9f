/* Augmentation (train/augment.h):
 * - the affine map, bilinear sampling and edge fill on known patterns, and its
 *   draws' ranges and order;
 * - the settings check; fm__aug_randint's mapping and spread; mirror and
 *   translate moving pixels exactly (black where uncovered); erasing a given
 *   rectangle (zeros, or uniforms drawn in row-major order);
 * - the erasing rectangles over many draws: sizes consistent with the area
 *   and aspect ranges, corners over their whole range, how often an image is
 *   erased against the binomial spread;
 * - fm__aug_image over a batch from one generator: each block off gives the
 *   scaled input and draws nothing, the affine alone draws and warps as
 *   fm__aug_draw and fm__aug_warp, a seed repeats and another differs;
 * - fm__aug_batch: image i from its own stream (seed, epoch, idx[i]), so an
 *   image is augmented alike wherever it sits in whichever batch, and
 *   differently in another epoch or run;
 * - against an independent reference (tests/torch/gen_augment_fixture.py,
 *   torchvision's rules written out with torch ops, fed fm_rng's stream
 *   ported to Python; no Python is needed here): the erasing decisions and
 *   rectangles, and whole batches through every block. Exact, except where
 *   the affine warps (TOL_AUG, its float rounding as in
 *   test_torch_reference). */
#include "check.h"
#include "model/safetensors.h"
#include "train/augment.h"

#include <string.h>

#define TOL_AUG 1e-5

static uint8_t img[29 * 29];
static float out[29 * 29];

static void fill_random(uint8_t *p, int n, uint64_t seed) {
    fm_rng r;
    fm_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) p[i] = (uint8_t)fm_rng_below(&r, 256);
}

/* ---- settings -------------------------------------------------------- */

static void expect_refused(const fm__aug_params *a, const char *needle) {
    fm_err err;
    err.msg[0] = '\0';
    int rc = fm__aug_params_check(a, &err);
    CHECK_MSG(rc == -1 && strstr(err.msg, needle), "want a refusal naming '%s', got %d '%s'",
              needle, rc, err.msg);
}

static void test_params_check(void) {
    fm_err err;
    const fm__aug_params none = fm__aug_params_none();
    CHECK(!none.affine && !none.flip && none.translate == 0 && none.erase_prob == 0.0f &&
          !none.erase_random_fill);
    CHECK(fm__aug_params_check(&none, &err) == 0);
    fm__aug_params a = none;
    a.affine = 1;
    CHECK(fm__aug_params_check(&a, &err) == 0);
    a.flip = 1;
    expect_refused(&a, "already flips");
    /* the edges of every range are accepted */
    a = none;
    a.flip = 1, a.translate = 27, a.erase_prob = 1.0f, a.erase_random_fill = 1;
    a.erase_area_min = a.erase_area_max = 1.0f, a.erase_aspect_min = 1.0f;
    CHECK(fm__aug_params_check(&a, &err) == 0);
    a = none;
    a.translate = -1;
    expect_refused(&a, "translate -1");
    a.translate = 28;
    expect_refused(&a, "translate 28");
    const float bad_prob[] = {-0.01f, 1.01f, NAN, INFINITY};
    for (int i = 0; i < 4; i++) {
        a = none;
        a.erase_prob = bad_prob[i];
        expect_refused(&a, "erase_prob");
    }
    /* checked also while erasing is off: a recipe cannot hold a bad range unseen */
    const float bad_area[][2] = {{0.0f, 0.33f}, {-0.1f, 0.33f}, {0.5f, 0.33f}, {0.02f, 1.01f},
                                 {NAN, 0.33f}, {0.02f, NAN}};
    for (int i = 0; i < 6; i++) {
        a = none;
        a.erase_area_min = bad_area[i][0], a.erase_area_max = bad_area[i][1];
        expect_refused(&a, "erase_area_min");
    }
    const float bad_aspect[] = {0.0f, -0.3f, 1.01f, NAN};
    for (int i = 0; i < 4; i++) {
        a = none;
        a.erase_aspect_min = bad_aspect[i];
        expect_refused(&a, "erase_aspect_min");
    }
}

/* ---- the pieces -------------------------------------------------------- */

static void test_randint(void) {
    /* floor(u * n) of one uniform each, always below n */
    fm_rng r1, r2;
    fm_rng_seed(&r1, 21);
    fm_rng_seed(&r2, 21);
    const int ns[] = {1, 2, 55, 1 << 24};
    int same = 1, in_range = 1;
    for (int i = 0; i < 4000; i++) {
        int n = ns[i % 4], k = fm__aug_randint(&r1, n);
        same &= k == (int)floor((double)fm_rng_uniform(&r2) * n);
        in_range &= k >= 0 && k < n;
    }
    CHECK(same && in_range);
    CHECK(fm_rng_next(&r1) == fm_rng_next(&r2));
    /* spread over the 55 shifts of translate 27: each count is binomial
     * (55,000, 1/55), mean 1000, sd 31.5; all 55 within 5 sd (a correct
     * mapping under another seed fails this with probability 55 * 5.7e-7) */
    int count[55] = {0};
    for (int i = 0; i < 55000; i++) count[fm__aug_randint(&r1, 55)]++;
    int worst = 0;
    for (int k = 0; k < 55; k++)
        if (abs(count[k] - 1000) > worst) worst = abs(count[k] - 1000);
    CHECK_MSG(worst <= 157, "a shift's count is %d from 1000", worst);
}

static void test_mirror_translate(void) {
    /* not square, so a row/column mix-up shows; values from 1 so black shows */
    enum { R = 5, C = 7 };
    float base[R * C], img[R * C];
    for (int i = 0; i < R * C; i++) base[i] = (float)(i + 1);
    memcpy(img, base, sizeof img);
    fm__aug_mirror(img, R, C);
    int same = 1;
    for (int y = 0; y < R; y++)
        for (int x = 0; x < C; x++) same &= img[y * C + x] == base[y * C + C - 1 - x];
    CHECK(same);
    /* every shift, past the edges too: out(x, y) = in(x - dx, y - dy) or 0 */
    int bad = 0;
    for (int dy = -R - 1; dy <= R + 1; dy++)
        for (int dx = -C - 1; dx <= C + 1; dx++) {
            memcpy(img, base, sizeof img);
            fm__aug_translate(img, R, C, dx, dy);
            for (int y = 0; y < R; y++)
                for (int x = 0; x < C; x++) {
                    int sx = x - dx, sy = y - dy;
                    float want = sx >= 0 && sx < C && sy >= 0 && sy < R ? base[sy * C + sx] : 0.0f;
                    if (img[y * C + x] != want && bad++ < 5)
                        fprintf(stderr, "shift (%d, %d): (%d, %d) is %g, want %g\n", dx, dy, x, y,
                                img[y * C + x], want);
                }
        }
    CHECK(bad == 0);
}

static void test_erase(void) {
    enum { N = 28 };
    float img[N * N];
    const fm__aug_rect rects[] = {{3, 5, 4, 6}, {0, 0, 27, 27}, {1, 1, 27, 27}, {27, 0, 1, 1}};
    for (int k = 0; k < 4; k++) {
        const fm__aug_rect *r = &rects[k];
        for (int fill = 0; fill < 2; fill++) {
            /* 2 outside [0, 1): an erased pixel cannot keep it */
            for (int i = 0; i < N * N; i++) img[i] = 2.0f;
            fm_rng r1, r2;
            fm_rng_seed(&r1, 41);
            fm_rng_seed(&r2, 41);
            fm__aug_erase(img, N, r, fill, &r1);
            int ok = 1;
            for (int y = 0; y < N; y++)
                for (int x = 0; x < N; x++) {
                    int in = y >= r->top && y < r->top + r->h && x >= r->left && x < r->left + r->w;
                    float v = img[y * N + x];
                    /* row-major order: the reference stream's next uniform */
                    if (!in)
                        ok &= v == 2.0f;
                    else if (!fill)
                        ok &= v == 0.0f;
                    else
                        ok &= v == fm_rng_uniform(&r2) && v < 1.0f;
                }
            CHECK_MSG(ok, "rect %d fill %d", k, fill);
            CHECK(fm_rng_next(&r1) == fm_rng_next(&r2)); /* h * w draws, or none */
        }
    }
}

/* ---- erasing over many draws ----------------------------------------- */

static int erased_count(fm__aug_params *a, float p, int draws, uint64_t seed) {
    fm_rng rng;
    fm_rng_seed(&rng, seed);
    a->erase_prob = p;
    int count = 0;
    fm__aug_rect r;
    for (int i = 0; i < draws; i++) count += fm__aug_erase_draw(&r, 28, 28, a, &rng);
    return count;
}

static void test_erase_draws(void) {
    enum { N = 28, D = 20000 };
    fm__aug_params a = fm__aug_params_none();
    a.erase_prob = 1.0f;
    const double amin = a.erase_area_min * N * N, amax = a.erase_area_max * N * N;
    const double asp = a.erase_aspect_min;
    fm_rng rng;
    fm_rng_seed(&rng, 31);
    int inside = 1, consistent = 1, area_lo = N * N, area_hi = 0;
    int top0 = 0, top_end = 0, left0 = 0, left_end = 0, mean_n = 0;
    double ratio_lo = 1e9, ratio_hi = 0, top_mean = 0;
    for (int i = 0; i < D; i++) {
        fm__aug_rect r;
        if (!fm__aug_erase_draw(&r, N, N, &a, &rng)) {
            CHECK_MSG(0, "draw %d: p 1 and no rectangle", i);
            continue;
        }
        inside &= r.h >= 1 && r.w >= 1 && r.h < N && r.w < N && r.top >= 0 && r.left >= 0 &&
                  r.top + r.h <= N && r.left + r.w <= N;
        /* h and w are sqrt(area * aspect) and sqrt(area / aspect) rounded:
         * each within 0.5, so the area lies in [(h-.5)(w-.5), (h+.5)(w+.5)]
         * and the aspect in [(h-.5)/(w+.5), (h+.5)/(w-.5)]; those must meet
         * the ranges */
        double h = r.h, w = r.w;
        consistent &= (h + 0.5) * (w + 0.5) >= amin && (h - 0.5) * (w - 0.5) <= amax;
        consistent &= (h + 0.5) / (w - 0.5) >= asp && (h - 0.5) / (w + 0.5) <= 1.0 / asp;
        area_lo = r.h * r.w < area_lo ? r.h * r.w : area_lo;
        area_hi = r.h * r.w > area_hi ? r.h * r.w : area_hi;
        ratio_lo = fmin(ratio_lo, h / w), ratio_hi = fmax(ratio_hi, h / w);
        top0 += r.top == 0, top_end += r.top == N - r.h;
        left0 += r.left == 0, left_end += r.left == N - r.w;
        if (r.h < N - 1) top_mean += (double)r.top / (N - r.h), mean_n++;
    }
    CHECK(inside);
    CHECK(consistent);
    /* the ranges are used to their ends: areas 15.7 to 258.7 pixels, aspects
     * 0.3 to 3.33 */
    CHECK_MSG(area_lo <= 18 && area_hi >= 240, "areas %d..%d", area_lo, area_hi);
    CHECK_MSG(ratio_lo < 0.36 && ratio_hi > 2.8, "aspects %g..%g", ratio_lo, ratio_hi);
    /* corners reach both ends; top / m (m = 28 - h >= 2 here) is uniform on
     * {0, 1/m, .., 1}: mean 1/2, variance (m + 2) / 12m <= 1/6, so the mean
     * of D has sd under 0.41 / sqrt(D) = 0.003; 5 of those */
    CHECK(top0 > 100 && top_end > 100 && left0 > 100 && left_end > 100);
    CHECK_MSG(fabs(top_mean / mean_n - 0.5) < 0.015, "mean relative top %g", top_mean / mean_n);

    /* how often: binomial(D, p) where every attempt failing is negligible
     * (an attempt fails when the aspect is within 0.055 of its log range's
     * ends at the largest area: under 0.11, ten in a row under 3e-10). At
     * p 0.3 the sd is sqrt(D p (1 - p)) = 64.8; 5 sd (a correct draw fails
     * with probability 6e-7 under another seed) */
    int n3 = erased_count(&a, 0.3f, D, 51);
    CHECK_MSG(abs(n3 - 6000) <= 324, "p 0.3: %d of %d erased", n3, D);
    int n05 = erased_count(&a, 0.05f, D, 52); /* sd 30.8 */
    CHECK_MSG(abs(n05 - 1000) <= 154, "p 0.05: %d of %d erased", n05, D);
    CHECK(erased_count(&a, 1.0f, D, 53) == D);
    /* p 0 is off: never, and no draws */
    fm_rng r1, r2;
    fm_rng_seed(&r1, 54);
    fm_rng_seed(&r2, 54);
    a.erase_prob = 0.0f;
    fm__aug_rect r;
    int any = 0;
    for (int i = 0; i < 100; i++) any |= fm__aug_erase_draw(&r, N, N, &a, &r1);
    CHECK(!any && fm_rng_next(&r1) == fm_rng_next(&r2));
}

/* ---- fm__aug_image, fm__aug_batch ------------------------------------ */

enum { BATCH_N = 16 };

/* images idx[0..n) of set through fm__aug_image, all from one generator rng */
static void aug_images(float *out, const fm_images *set, const uint32_t *idx, int n,
                       const fm__aug_params *a, fm_rng *rng) {
    for (int i = 0; i < n; i++)
        fm__aug_image(out + (size_t)i * FM_IMAGE_PIXELS,
                      set->pixels + (size_t)idx[i] * FM_IMAGE_PIXELS, a, rng);
}

static void run_batch(float *out, const fm_images *set, const fm__aug_params *a, uint64_t seed,
                      fm_rng *after) {
    uint32_t idx[BATCH_N];
    for (int i = 0; i < BATCH_N; i++) idx[i] = (uint32_t)(BATCH_N - 1 - i);
    fm_rng_seed(after, seed);
    aug_images(out, set, idx, BATCH_N, a, after);
}

/* fm__aug_batch: image i as fm__aug_image from the stream (seed, epoch,
 * idx[i], augment), whatever its position and company; another epoch or seed
 * gives other images. */
static void test_batch_streams(void) {
    static uint8_t px[BATCH_N * FM_IMAGE_PIXELS];
    static float b1[BATCH_N * FM_IMAGE_PIXELS], b2[BATCH_N * FM_IMAGE_PIXELS];
    float e[FM_IMAGE_PIXELS];
    fill_random(px, BATCH_N * FM_IMAGE_PIXELS, 62);
    fm_images set = {BATCH_N, px, NULL};
    fm__aug_params a = fm__aug_params_none();
    a.flip = 1, a.translate = 2, a.erase_prob = 0.5f, a.erase_random_fill = 1;
    uint32_t idx[BATCH_N], rev[3] = {9, 3, 5};
    for (int i = 0; i < BATCH_N; i++) idx[i] = (uint32_t)i;
    const fm__draws d = {5, 2, NULL};
    fm__aug_batch(b1, &set, idx, BATCH_N, &a, &d);
    int ok = 1;
    for (int i = 0; i < BATCH_N; i++) {
        fm_rng r;
        fm__rng_stream(&r, 5, 2, (uint64_t)i, FM__DRAW_AUGMENT);
        fm__aug_image(e, px + (size_t)i * FM_IMAGE_PIXELS, &a, &r);
        ok &= memcmp(e, b1 + (size_t)i * FM_IMAGE_PIXELS, sizeof e) == 0;
    }
    CHECK_MSG(ok, "fm__aug_batch differs from fm__aug_image on each image's stream");
    fm__aug_batch(b2, &set, rev, 3, &a, &d); /* other positions, another batch */
    for (int i = 0; i < 3; i++)
        CHECK(memcmp(b2 + (size_t)i * FM_IMAGE_PIXELS, b1 + (size_t)rev[i] * FM_IMAGE_PIXELS,
                     sizeof e) == 0);
    const fm__draws other_epoch = {5, 3, NULL}, other_seed = {6, 2, NULL};
    fm__aug_batch(b2, &set, idx, BATCH_N, &a, &other_epoch);
    CHECK(memcmp(b1, b2, sizeof b1) != 0);
    fm__aug_batch(b2, &set, idx, BATCH_N, &a, &other_seed);
    CHECK(memcmp(b1, b2, sizeof b1) != 0);
}

static void test_batch_blocks(void) {
    static uint8_t px[BATCH_N * FM_IMAGE_PIXELS];
    static uint8_t lb[BATCH_N];
    static float scaled[BATCH_N * FM_IMAGE_PIXELS], o1[BATCH_N * FM_IMAGE_PIXELS],
        o2[BATCH_N * FM_IMAGE_PIXELS];
    fill_random(px, BATCH_N * FM_IMAGE_PIXELS, 61);
    for (int i = 0; i < BATCH_N; i++)
        for (int p = 0; p < FM_IMAGE_PIXELS; p++)
            scaled[i * FM_IMAGE_PIXELS + p] = px[(BATCH_N - 1 - i) * FM_IMAGE_PIXELS + p] / 255.0f;
    fm_images set = {BATCH_N, px, lb};
    fm_rng r1, r2;

    /* off: the scaled input, nothing drawn; erasing's other settings do not
     * matter while its probability is 0 */
    fm__aug_params off = fm__aug_params_none();
    fm__aug_params off2 = off;
    off2.erase_random_fill = 1, off2.erase_area_min = off2.erase_area_max = 1.0f;
    const fm__aug_params *offs[] = {&off, &off2};
    for (int k = 0; k < 2; k++) {
        run_batch(o1, &set, offs[k], 71, &r1);
        fm_rng_seed(&r2, 71);
        CHECK(memcmp(o1, scaled, sizeof o1) == 0);
        CHECK(fm_rng_next(&r1) == fm_rng_next(&r2));
    }

    /* each block alone and all together: it changes the images, the seed
     * repeats them and its state after, another seed changes them */
    fm__aug_params on[6];
    for (int k = 0; k < 6; k++) on[k] = off;
    on[0].affine = 1;
    on[1].flip = 1;
    on[2].translate = 2;
    on[3].erase_prob = 0.5f;
    on[4].erase_prob = 0.5f, on[4].erase_random_fill = 1;
    on[5].flip = 1, on[5].translate = 3, on[5].erase_prob = 0.7f, on[5].erase_random_fill = 1;
    for (int k = 0; k < 6; k++) {
        fm_err err;
        CHECK(fm__aug_params_check(&on[k], &err) == 0);
        run_batch(o1, &set, &on[k], 81, &r1);
        CHECK_MSG(memcmp(o1, scaled, sizeof o1) != 0, "block set %d changes nothing", k);
        run_batch(o2, &set, &on[k], 81, &r2);
        CHECK_MSG(memcmp(o1, o2, sizeof o1) == 0, "block set %d: the same seed differs", k);
        CHECK(fm_rng_next(&r1) == fm_rng_next(&r2));
        run_batch(o2, &set, &on[k], 82, &r2);
        CHECK_MSG(memcmp(o1, o2, sizeof o1) != 0, "block set %d: another seed, same images", k);
        /* values stay in [0, 1]: moved, zeroed, noise in [0, 1) */
        int in01 = 1;
        for (int i = 0; i < BATCH_N * FM_IMAGE_PIXELS; i++) in01 &= o1[i] >= 0.0f && o1[i] <= 1.0f;
        CHECK(in01);
    }

    /* flip alone: each image is its input or its mirror, by the one uniform */
    fm_rng_seed(&r2, 81);
    run_batch(o1, &set, &on[1], 81, &r1);
    int ok = 1;
    for (int i = 0; i < BATCH_N; i++) {
        float e[FM_IMAGE_PIXELS];
        memcpy(e, scaled + i * FM_IMAGE_PIXELS, sizeof e);
        if (fm_rng_uniform(&r2) < 0.5f) fm__aug_mirror(e, 28, 28);
        ok &= memcmp(e, o1 + i * FM_IMAGE_PIXELS, sizeof e) == 0;
    }
    CHECK(ok);
    /* translate alone: the input shifted by the two draws, x then y */
    fm_rng_seed(&r2, 81);
    run_batch(o1, &set, &on[2], 81, &r1);
    ok = 1;
    for (int i = 0; i < BATCH_N; i++) {
        float e[FM_IMAGE_PIXELS];
        memcpy(e, scaled + i * FM_IMAGE_PIXELS, sizeof e);
        int dx = (int)(fm_rng_uniform(&r2) * 5.0) - 2, dy = (int)(fm_rng_uniform(&r2) * 5.0) - 2;
        fm__aug_translate(e, 28, 28, dx, dy);
        ok &= memcmp(e, o1 + i * FM_IMAGE_PIXELS, sizeof e) == 0;
    }
    CHECK(ok);
    CHECK(fm_rng_next(&r1) == fm_rng_next(&r2));
}

/* ---- against the reference ------------------------------------------- */

static fm__st_file fx;
static char fx_path[1024];

/* A malloc'd copy of the named float32 tensor, its element count in *count
 * (and its first dimension in *rows when given); NULL, and a failed check,
 * when absent or of another type. */
static float *load(const char *name, size_t *count, size_t *rows) {
    const fm__st_tensor *t = fm__st_find(&fx, name);
    int ok = t && t->dtype == FM__ST_F32;
    CHECK_MSG(ok, "%s: %s: missing, or not F32", fx_path, name);
    if (!ok) return NULL;
    float *p = malloc(t->count * sizeof *p);
    if (p) fm__st_copy(t, p);
    *count = t->count;
    if (rows) *rows = t->shape[0];
    return p;
}

static void reference_rects(void) {
    size_t n, k_n, ns, nd, na;
    float *prm = load("rect.params", &n, &k_n), *seeds = load("rect.seeds", &ns, NULL);
    float *draws = load("rect.draws", &nd, NULL), *after = load("rect.after", &na, NULL);
    if (prm && seeds && draws && after && n == k_n * 4 && ns == k_n && na == k_n &&
        nd % (k_n * 5) == 0) {
        size_t m_n = nd / (k_n * 5);
        for (size_t k = 0; k < k_n; k++) {
            fm__aug_params a = fm__aug_params_none();
            a.erase_prob = prm[4 * k], a.erase_area_min = prm[4 * k + 1];
            a.erase_area_max = prm[4 * k + 2], a.erase_aspect_min = prm[4 * k + 3];
            fm_err err;
            CHECK(fm__aug_params_check(&a, &err) == 0);
            fm_rng rng;
            fm_rng_seed(&rng, (uint64_t)seeds[k]);
            int bad = 0;
            for (size_t m = 0; m < m_n; m++) {
                const float *e = draws + (k * m_n + m) * 5;
                fm__aug_rect r = {0, 0, 0, 0};
                int got = fm__aug_erase_draw(&r, 28, 28, &a, &rng);
                int same = got == e[0] && r.top == e[1] && r.left == e[2] && r.h == e[3] &&
                           r.w == e[4];
                if (!same && bad++ < 3)
                    fprintf(stderr,
                            "rect case %zu draw %zu: %d (%d, %d, %dx%d), want %g (%g, %g, %gx%g)\n",
                            k, m, got, r.top, r.left, r.h, r.w, e[0], e[1], e[2], e[3], e[4]);
            }
            CHECK_MSG(bad == 0, "rect case %zu: %d of %zu draws differ", k, bad, m_n);
            CHECK_MSG(fm_rng_uniform(&rng) == after[k], "rect case %zu: another count of draws", k);
        }
    } else {
        CHECK_MSG(0, "%s: rect.* have inconsistent sizes", fx_path);
    }
    free(prm), free(seeds), free(draws), free(after);
}

static void reference_batches(void) {
    size_t ni, nimg, nx, np, nc, ns, no, na;
    float *imgs = load("batch.images", &ni, &nimg), *fidx = load("batch.idx", &nx, NULL);
    float *prm = load("aug.params", &np, &nc), *seeds = load("aug.seeds", &ns, NULL);
    float *outs = load("aug.out", &no, NULL), *after = load("aug.after", &na, NULL);
    uint8_t *px = ni ? malloc(ni) : NULL;
    float *got = nx ? malloc(nx * FM_IMAGE_PIXELS * sizeof *got) : NULL;
    uint32_t idx[64];
    if (imgs && fidx && prm && seeds && outs && after && px && got &&
        ni == nimg * FM_IMAGE_PIXELS && nx <= 64 && np == nc * 8 && ns == nc && na == nc &&
        no == nc * nx * FM_IMAGE_PIXELS) {
        for (size_t i = 0; i < ni; i++) px[i] = (uint8_t)imgs[i];
        for (size_t i = 0; i < nx; i++) idx[i] = (uint32_t)fidx[i];
        fm_images set = {nimg, px, NULL};
        for (size_t c = 0; c < nc; c++) {
            const float *q = prm + 8 * c;
            fm__aug_params a = {(int)q[0], (int)q[1], (int)q[2], q[3], q[4], q[5], q[6], (int)q[7]};
            fm_err err;
            CHECK(fm__aug_params_check(&a, &err) == 0);
            fm_rng rng;
            fm_rng_seed(&rng, (uint64_t)seeds[c]);
            aug_images(got, &set, idx, (int)nx, &a, &rng);
            const float *want = outs + c * nx * FM_IMAGE_PIXELS;
            double err_max = 0;
            for (size_t i = 0; i < nx * FM_IMAGE_PIXELS; i++) {
                double d = fabs((double)got[i] - want[i]);
                if (!(d <= err_max)) err_max = d; /* NaN too */
            }
            double tol = a.affine ? TOL_AUG : 0.0;
            CHECK_MSG(err_max <= tol,
                      "batch case %zu (affine %d flip %d translate %d erase %g [%g, %g] %g "
                      "fill %d): max error %.3g, allowed %.3g",
                      c, a.affine, a.flip, a.translate, a.erase_prob, a.erase_area_min,
                      a.erase_area_max, a.erase_aspect_min, a.erase_random_fill, err_max, tol);
            CHECK_MSG(fm_rng_uniform(&rng) == after[c], "batch case %zu: another count of draws",
                      c);
        }
    } else {
        CHECK_MSG(0, "%s: batch.* or aug.* have inconsistent sizes", fx_path);
    }
    free(imgs), free(fidx), free(prm), free(seeds), free(outs), free(after), free(px), free(got);
}

static void test_reference(void) {
    const char *dir = getenv("FMNIST_SOURCE_DIR");
    snprintf(fx_path, sizeof fx_path, "%s/tests/fixtures/torch_augment_blocks.safetensors",
             dir ? dir : ".");
    fm_err err;
    if (fm__st_read(&fx, fx_path, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    /* the reference's port of fm_rng reads the same stream */
    size_t n1, n2;
    float *seed = load("rng.seed", &n1, NULL), *u = load("rng.uniforms", &n2, NULL);
    if (seed && u && n1 == 1) {
        fm_rng rng;
        fm_rng_seed(&rng, (uint64_t)seed[0]);
        int same = 1;
        for (size_t i = 0; i < n2; i++) same &= fm_rng_uniform(&rng) == u[i];
        CHECK_MSG(same, "the reference's generator differs from fm_rng");
    }
    free(seed), free(u);
    reference_rects();
    reference_batches();
    fm__st_close(&fx);
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
        fm__aug_params none = fm__aug_params_none(), affine = none;
        affine.affine = 1;
        aug_images(b, &set, idx, 2, &none, &r1);
        CHECK(b[5] == px[2 * FM_IMAGE_PIXELS + 5] / 255.0f);
        CHECK(b[FM_IMAGE_PIXELS + 700] == px[700] / 255.0f);
        CHECK(fm_rng_next(&r1) == fm_rng_next(&r2));
        aug_images(b, &set, idx, 2, &affine, &r1);
        for (int i = 0; i < 2; i++) {
            fm__aug a = fm__aug_draw(&r2);
            fm__aug_warp(e, px + idx[i] * FM_IMAGE_PIXELS, 28, 28, &a);
            CHECK(memcmp(e, b + i * FM_IMAGE_PIXELS, sizeof e) == 0);
        }
        CHECK(fm_rng_next(&r1) == fm_rng_next(&r2));
    }
    test_params_check();
    test_randint();
    test_mirror_translate();
    test_erase();
    test_erase_draws();
    test_batch_blocks();
    test_batch_streams();
    test_reference();
    return check_finish();
}
