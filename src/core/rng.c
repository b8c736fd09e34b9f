/* xoshiro256** (Blackman & Vigna), seeded with splitmix64; the training
 * streams of core/draws.h seeded from a hash of their names. */
#include "core/draws.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void fm_rng_seed(fm_rng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
}

uint64_t fm_rng_next(fm_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float fm_rng_uniform(fm_rng *rng) {
    return (float)(fm_rng_next(rng) >> 40) * (1.0f / 16777216.0f);
}

uint32_t fm_rng_below(fm_rng *rng, uint32_t n) {
    /* Lemire's multiply-shift with rejection: no modulo bias. */
    uint64_t m = (uint64_t)(uint32_t)(fm_rng_next(rng) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(fm_rng_next(rng) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

void fm_rng_shuffle_u32(fm_rng *rng, uint32_t *a, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = fm_rng_below(rng, (uint32_t)i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* splitmix64's finaliser over the four words in turn: each word changes
 * every bit of the seed, and distinct names give distinct streams but for
 * 64-bit collisions. */
void fm__rng_stream(fm_rng *rng, uint64_t seed, uint64_t epoch, uint64_t sample,
                    uint64_t purpose) {
    uint64_t words[4] = {seed, epoch, sample, purpose}, h = 0x6a09e667f3bcc908ULL;
    for (int i = 0; i < 4; i++) {
        uint64_t x = h ^ words[i];
        h = splitmix64(&x);
    }
    fm_rng_seed(rng, h);
}

uint64_t fm__purpose_named(fm__purpose base, const char *name) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = (h ^ *c) * 0x100000001b3ULL;
    return (uint64_t)base | h << 8;
}
