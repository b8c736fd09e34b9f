/* libFuzzer target: the IDX reader (fm_data_load_idx, src/data/idx.c), plain
 * and gzipped.
 *
 * Input layout: one flags byte, then the content of one IDX file.
 *   bit 0   0: the content is the images file (idx3), 1: the labels file (idx1)
 *   bit 1   gzip the content before handing it over (the IDX structure is
 *           fuzzed through the gzip path); when clear the content goes as is,
 *           so seeds that are themselves .gz files fuzz the gzip stream
 *   bit 2   gzip the companion file too
 *   bit 3   compression level 9 instead of 1 (where bits 1 or 2 ask for gzip)
 * The other file of the pair is generated valid, holding as many items as the
 * fuzzed header claims (bytes 4..7 of the content) when that is 1..16, else
 * one; so the images file must load before the labels file is reached, and
 * counts that disagree are covered too.
 *
 * The reader must return 0 or -1 with a message, never crash, leak, read out
 * of bounds or allocate more than the data holds (libFuzzer's -rss_limit_mb
 * and -malloc_limit_mb catch that). An accepted pair must have labels 0..9
 * and survive a round trip through the writer (fm__idx_write, gzipped). */
#include "fuzz_util.h"

#include <zlib.h>

#include "data/data.h"

static fuzz_file images, labels;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_file_open(&images, "images-idx3-ubyte");
    fuzz_file_open(&labels, "labels-idx1-ubyte");
    return 0;
}

/* data[0..size) as a gzip stream (malloc'd, *out_size bytes). */
static unsigned char *gzip(const unsigned char *data, size_t size, int level, size_t *out_size) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    size_t cap = deflateBound(&z, (uLong)size) + 32;
    unsigned char *out = malloc(cap);
    if (!out) abort();
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)size;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
    *out_size = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static void set_file(fuzz_file *f, const unsigned char *data, size_t size, int gz, int level) {
    if (!gz) {
        fuzz_file_set(f, data, size);
        return;
    }
    size_t n;
    unsigned char *z = gzip(data, size, level, &n);
    fuzz_file_set(f, z, n);
    free(z);
}

static void put_be32(unsigned char *b, uint32_t v) {
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return -1; /* not worth keeping */
    const unsigned flags = data[0];
    const unsigned char *content = data + 1;
    const size_t len = size - 1;
    const int fuzz_labels = flags & 1, gz = (flags >> 1) & 1, gz_other = (flags >> 2) & 1;
    const int level = (flags & 8) ? 9 : 1;

    uint32_t count = 1;
    if (len >= 8) {
        uint32_t claim = (uint32_t)content[4] << 24 | (uint32_t)content[5] << 16 |
                         (uint32_t)content[6] << 8 | content[7];
        if (claim >= 1 && claim <= 16) count = claim;
    }
    /* The companion: a valid file of `count` items. */
    unsigned char other[16 + 16 * FM_IMAGE_PIXELS];
    size_t other_len;
    memset(other, 0, 16);
    other[2] = 0x08;
    put_be32(other + 4, count);
    if (fuzz_labels) {
        other[3] = 3;
        put_be32(other + 8, FM_IMAGE_ROWS);
        put_be32(other + 12, FM_IMAGE_COLS);
        for (size_t i = 0; i < (size_t)count * FM_IMAGE_PIXELS; i++)
            other[16 + i] = (unsigned char)(i * 7);
        other_len = 16 + (size_t)count * FM_IMAGE_PIXELS;
    } else {
        other[3] = 1;
        for (uint32_t i = 0; i < count; i++) other[8 + i] = (unsigned char)(i % 10);
        other_len = 8 + count;
    }
    set_file(fuzz_labels ? &labels : &images, content, len, gz, level);
    set_file(fuzz_labels ? &images : &labels, other, other_len, gz_other, level);

    fm_images imgs;
    fm_err err = {{0}};
    int rc = fm_data_load_idx(images.path, labels.path, &imgs, &err);
    if (rc != 0) {
        FUZZ_ASSERT(rc == -1, "rc %d", rc);
        FUZZ_ASSERT(err.msg[0] && !strchr(err.msg, '\n'), "message '%s'", err.msg);
        FUZZ_ASSERT(!imgs.count && !imgs.pixels && !imgs.labels, "output left set on failure");
        return 0;
    }
    FUZZ_ASSERT(imgs.count > 0 && imgs.pixels && imgs.labels, "empty set accepted");
    for (size_t i = 0; i < imgs.count; i++) FUZZ_ASSERT(imgs.labels[i] <= 9, "label %u", imgs.labels[i]);

    /* Round trip through the (gzipping) writer. */
    const char *ip = fuzz_tmp_path("round-images-idx3-ubyte.gz");
    const char *lp = fuzz_tmp_path("round-labels-idx1-ubyte.gz");
    FUZZ_ASSERT(fm__idx_write(ip, lp, &imgs, &err) == 0, "write: %s", err.msg);
    fm_images back;
    FUZZ_ASSERT(fm_data_load_idx(ip, lp, &back, &err) == 0, "reload: %s", err.msg);
    FUZZ_ASSERT(back.count == imgs.count, "%zu images back, %zu written", back.count, imgs.count);
    FUZZ_ASSERT(!memcmp(back.labels, imgs.labels, imgs.count), "labels differ");
    FUZZ_ASSERT(!memcmp(back.pixels, imgs.pixels, imgs.count * FM_IMAGE_PIXELS), "pixels differ");
    fm_images_free(&back);
    fm_images_free(&imgs);
    return 0;
}
