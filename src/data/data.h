/* Internal pieces of the data layer shared by its files (csv.c, idx.c,
 * data.c) and by the data verbs of the CLI. */
#ifndef FM_DATA_DATA_H
#define FM_DATA_DATA_H

#include "fmnist/fmnist.h"

/* Longest path the data layer builds from a folder and a file name. */
#define FM__PATH_MAX 4096

/* The files holding one set of a folder in a given layout: for CSV `images`
 * is the one file and `labels` is empty; for IDX each names the .gz file when
 * it exists, else the plain one. Fails when a file is missing or a path would
 * not fit. */
typedef struct fm__data_files {
    char images[FM__PATH_MAX];
    char labels[FM__PATH_MAX];
} fm__data_files;

int fm__data_files_find(const char *dir, fm_data_format format, fm_data_set set,
                        fm__data_files *files, fm_err *err);

/* Writers for one set. Both write a temporary file next to the target and
 * rename it into place, so a failed write never leaves a half file behind. */
int fm__csv_write(const char *path, const fm_images *imgs, fm_err *err);
int fm__idx_write(const char *images_path, const char *labels_path, const fm_images *imgs,
                  fm_err *err);

#endif
