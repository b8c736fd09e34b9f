/* The shared utilities of src/core: the strict decimal reader, path joining,
 * whole-file reads and the training streams of core/draws.h. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "core/draws.h"
#include "core/file.h"
#include "core/parse.h"
#include "data/testutil.h"

static void parse_u64(void) {
    uint64_t v = 7;
    CHECK(fm__parse_u64("0", 10, &v) == 0 && v == 0);
    CHECK(fm__parse_u64("42", 42, &v) == 0 && v == 42);
    CHECK(fm__parse_u64("18446744073709551615", UINT64_MAX, &v) == 0 && v == UINT64_MAX);
    v = 7;
    /* what strtoull would take but metadata must not hold */
    const char *bad[] = {"",   "+1", " 1", "1 ", "-1", "0x10", "1e3", "1.0",
                         "18446744073709551616", "99999999999999999999", "12a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(fm__parse_u64(bad[i], UINT64_MAX, &v) == -1 && v == 7, "'%s' accepted", bad[i]);
    CHECK(fm__parse_u64("43", 42, &v) == -1 && v == 7); /* above max */
    CHECK(fm__parse_u64("00042", 42, &v) == 0 && v == 42);
}

static void path_join(void) {
    char out[16];
    fm_err err;
    CHECK(fm__path_join(out, sizeof out, "runs", "log.csv", &err) == 0 && !strcmp(out, "runs/log.csv"));
    /* 15 characters fit in 16 bytes, 16 do not */
    CHECK(fm__path_join(out, sizeof out, "abcdefg", "1234567", &err) == 0);
    CHECK(fm__path_join(out, sizeof out, "abcdefgh", "1234567", &err) == -1);
    CHECK(strstr(err.msg, "abcdefgh: path too long") != NULL);
}

static void read_file(void) {
    fm_err err;
    char *data = (char *)1;
    size_t len = 1;
    const char *path = tu_path("ten.txt");
    tu_write(path, "0123456789", 10);
    CHECK(fm__read_file(path, 10, &data, &len, &err) == 0 && len == 10);
    CHECK(data && !memcmp(data, "0123456789", 11)); /* NUL after the last byte */
    free(data);
    CHECK(fm__read_file(path, 9, &data, &len, &err) == -1 && !data && len == 0);
    CHECK(strstr(err.msg, "larger than 9 bytes") != NULL);

    const char *empty = tu_path("empty.txt");
    tu_write(empty, "", 0);
    CHECK(fm__read_file(empty, 10, &data, &len, &err) == 0 && len == 0 && data && !*data);
    free(data);

    /* past the first growth step, so the doubling is exercised */
    size_t big = 70000;
    char *bytes = malloc(big);
    for (size_t i = 0; i < big; i++) bytes[i] = (char)('a' + i % 26);
    const char *bigpath = tu_path("big.txt");
    tu_write(bigpath, bytes, big);
    CHECK(fm__read_file(bigpath, big, &data, &len, &err) == 0 && len == big);
    CHECK(data && !memcmp(data, bytes, big));
    free(data);
    CHECK(fm__read_file(bigpath, big - 1, &data, &len, &err) == -1);
    free(bytes);

    CHECK(fm__read_file(tu_path("missing.txt"), 10, &data, &len, &err) == -1);
    CHECK(strstr(err.msg, "missing.txt: cannot open: No such file") != NULL);
    CHECK(fm__read_file(tu_path(""), 10, &data, &len, &err) == -1); /* a folder */
}

/* A stream is a function of its four words: the same words give the same
 * draws, a change in any one word (or a layer name in the purpose) other
 * draws; the uniforms of one stream are spread over [0, 1). */
static void streams(void) {
    static const uint64_t base[4] = {42, 3, 1000, FM__DRAW_AUGMENT};
    fm_rng a, b;
    fm__rng_stream(&a, base[0], base[1], base[2], base[3]);
    fm__rng_stream(&b, base[0], base[1], base[2], base[3]);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    for (int w = 0; w < 4; w++) {
        uint64_t v[4];
        memcpy(v, base, sizeof v);
        v[w] ^= 1; /* one bit */
        fm__rng_stream(&b, v[0], v[1], v[2], v[3]);
        fm_rng a2 = a;
        CHECK_MSG(fm_rng_next(&a2) != fm_rng_next(&b), "word %d does not change the stream", w);
    }
    uint64_t d1 = fm__purpose_named(FM__DRAW_DROPOUT, "dropout"),
             d2 = fm__purpose_named(FM__DRAW_DROPOUT, "dropout_1");
    CHECK(d1 != d2 && (d1 & 0xff) == FM__DRAW_DROPOUT && (d2 & 0xff) == FM__DRAW_DROPOUT);
    double sum = 0;
    int lo = 0;
    for (int i = 0; i < 10000; i++) {
        float u = fm_rng_uniform(&a);
        CHECK(u >= 0.0f && u < 1.0f);
        sum += u;
        lo += u < 0.5f;
    }
    CHECK(sum / 10000 > 0.48 && sum / 10000 < 0.52 && lo > 4850 && lo < 5150);
    /* consecutive samples' first draws are not correlated into a pattern */
    int rising = 0;
    float prev = -1.0f;
    for (uint64_t i = 0; i < 2000; i++) {
        fm__rng_stream(&b, 42, 3, i, FM__DRAW_AUGMENT);
        float u = fm_rng_uniform(&b);
        rising += u > prev;
        prev = u;
    }
    CHECK(rising > 900 && rising < 1100);
}

int main(void) {
    tu_init("test_core");
    streams();
    parse_u64();
    path_join();
    read_file();
    return check_finish();
}
