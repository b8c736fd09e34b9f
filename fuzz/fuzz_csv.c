/* libFuzzer target: the CSV reader (fm_data_load_csv, src/data/csv.c).
 *
 * The input is the whole file. Whatever it holds, the reader must return 0
 * or -1 with a message, never crash, leak or read out of bounds. When it
 * accepts a file, the set must be sane (labels 0..9) and survive a round trip
 * through the writer (fm__csv_write) byte for byte. */
#include "fuzz_util.h"

#include "data/data.h"

static fuzz_file input;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_file_open(&input, "input.csv");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_file_set(&input, data, size);
    fm_images imgs;
    fm_err err = {{0}};
    int rc = fm_data_load_csv(input.path, &imgs, &err);
    if (rc != 0) {
        FUZZ_ASSERT(rc == -1, "rc %d", rc);
        FUZZ_ASSERT(err.msg[0] && !strchr(err.msg, '\n'), "message '%s'", err.msg);
        FUZZ_ASSERT(!imgs.count && !imgs.pixels && !imgs.labels, "output left set on failure");
        return 0;
    }
    FUZZ_ASSERT(imgs.count > 0 && imgs.pixels && imgs.labels, "empty set accepted");
    for (size_t i = 0; i < imgs.count; i++) FUZZ_ASSERT(imgs.labels[i] <= 9, "label %u", imgs.labels[i]);

    /* Round trip: what was read, written back, reads back the same. */
    const char *path = fuzz_tmp_path("round.csv");
    FUZZ_ASSERT(fm__csv_write(path, &imgs, &err) == 0, "write: %s", err.msg);
    fm_images back;
    FUZZ_ASSERT(fm_data_load_csv(path, &back, &err) == 0, "reload: %s", err.msg);
    FUZZ_ASSERT(back.count == imgs.count, "%zu images back, %zu written", back.count, imgs.count);
    FUZZ_ASSERT(!memcmp(back.labels, imgs.labels, imgs.count), "labels differ");
    FUZZ_ASSERT(!memcmp(back.pixels, imgs.pixels, imgs.count * FM_IMAGE_PIXELS), "pixels differ");
    fm_images_free(&back);
    fm_images_free(&imgs);
    return 0;
}
