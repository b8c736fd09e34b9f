/* A build without libpng (FM_PNG=OFF; only such builds run this test): PGM
 * still loads, while reading or writing a PNG fails with one line that says
 * why and what to do instead, rather than "not an image". */
#include "check.h"
#include "data/testutil.h"

#include <fmnist/fmnist.h>
#include <string.h>

int main(void) {
    tu_init("nopng");
    fm_err err = {{0}};
    uint8_t px[FM_IMAGE_PIXELS];

    char pgm[64 + FM_IMAGE_PIXELS];
    int n = snprintf(pgm, 64, "P5\n28 28\n255\n");
    memset(pgm + n, 200, FM_IMAGE_PIXELS);
    char pgm_path[4352];
    snprintf(pgm_path, sizeof pgm_path, "%s", tu_path("a.pgm"));
    tu_write(pgm_path, pgm, (size_t)n + FM_IMAGE_PIXELS);
    CHECK(fm_image_load(pgm_path, 0, px, NULL, &err) == 0);
    CHECK(px[0] == 200 && px[FM_IMAGE_PIXELS - 1] == 200);

    /* The PNG signature and an IHDR start: recognised as PNG, then refused. */
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                        0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    char png_path[4352];
    snprintf(png_path, sizeof png_path, "%s", tu_path("a.png"));
    tu_write(png_path, png, sizeof png);
    CHECK(fm_image_load(png_path, 0, px, NULL, &err) == -1);
    CHECK_MSG(strstr(err.msg, "a.png") && strstr(err.msg, "without libpng") &&
                  strstr(err.msg, "PGM"),
              "%s", err.msg);

    CHECK(fm_image_save_png(tu_path("out.png"), px, 28, 28, &err) == -1);
    CHECK_MSG(strstr(err.msg, "without libpng"), "%s", err.msg);
    return check_finish();
}
