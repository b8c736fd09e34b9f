/* Writing 8-bit grey PNG pictures: into memory (the report embeds them) or
 * into a file, atomically (fm_image_save_png, for fmnist show). */
#ifndef FM_CORE_PNG_H
#define FM_CORE_PNG_H

#include <stddef.h>
#include <stdint.h>

#include "fmnist/fmnist.h"

/* pixels (h, w) row-major -> a malloc'd PNG in *png (*len bytes). */
int fm__png_encode_grey(const uint8_t *pixels, int w, int h, uint8_t **png, size_t *len,
                        fm_err *err);
/* Writing such a picture into a file is fm_image_save_png (fmnist.h). */

#endif
