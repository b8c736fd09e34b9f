/* Internal pieces of the data layer shared by its files (csv.c, idx.c,
 * data.c). */
#ifndef FM_DATA_DATA_H
#define FM_DATA_DATA_H

#include "fmnist/fmnist.h"

/* Longest path the data layer builds from a folder and a file name
 * (fm_data_files' size). */
#define FM__PATH_MAX FM_DATA_PATH_MAX

/* Writers for one set. Both write a temporary file next to the target and
 * rename it into place, so a failed write never leaves a half file behind. */
int fm__csv_write(const char *path, const fm_images *imgs, fm_err *err);
int fm__idx_write(const char *images_path, const char *labels_path, const fm_images *imgs,
                  fm_err *err);

#endif
