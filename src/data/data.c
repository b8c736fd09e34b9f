/* Folders of data: which layout a folder holds, where its files are, the
 * default folder, and loading/writing whole sets through csv.c and idx.c. */
#include "data/data.h"
#include "core/error.h"
#include "core/file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *const csv_names[2] = {"fashion-mnist_train.csv", "fashion-mnist_test.csv"};
/* [set][images, labels], without the optional .gz */
static const char *const idx_names[2][2] = {
    {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
    {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"},
};

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* dir/name + ext: the file names are the data set's own, so they fit. */
static int join(char *out, const char *dir, const char *name, const char *ext, fm_err *err) {
    char file[64];
    snprintf(file, sizeof file, "%s%s", name, ext);
    return fm__path_join(out, FM__PATH_MAX, dir, file, err);
}

/* dir/name.gz when it exists, else dir/name when that exists; -1 if neither. */
static int find_idx(char *out, const char *dir, const char *name, fm_err *err) {
    if (join(out, dir, name, ".gz", err) < 0) return -1;
    if (is_file(out)) return 0;
    if (join(out, dir, name, "", err) < 0) return -1;
    if (is_file(out)) return 0;
    return fm__err(err, "%s: missing %s.gz (or %s)", dir, name, name);
}

int fm_data_find_files(const char *dir, fm_data_format format, fm_data_set set,
                       fm_data_files *files, fm_err *err) {
    int s = set == FM_SET_TEST;
    files->labels[0] = 0;
    if (format == FM_FORMAT_CSV) {
        if (join(files->images, dir, csv_names[s], "", err) < 0) return -1;
        if (!is_file(files->images)) return fm__err(err, "%s: missing %s", dir, csv_names[s]);
        return 0;
    }
    if (find_idx(files->images, dir, idx_names[s][0], err) < 0) return -1;
    return find_idx(files->labels, dir, idx_names[s][1], err);
}

int fm_data_detect(const char *dir, fm_data_format *format, fm_err *err) {
    struct stat st;
    if (stat(dir, &st) != 0) return fm__err(err, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return fm__err(err, "%s: not a folder", dir);
    fm_data_files files;
    int csv = 0, idx = 0;
    for (int s = 0; s < 2; s++) {
        csv += fm_data_find_files(dir, FM_FORMAT_CSV, (fm_data_set)s, &files, NULL) == 0;
        for (int k = 0; k < 2; k++) idx += find_idx(files.images, dir, idx_names[s][k], NULL) == 0;
    }
    if (csv == 2) {
        *format = FM_FORMAT_CSV;
        return 0;
    }
    if (idx == 4) {
        *format = FM_FORMAT_IDX;
        return 0;
    }
    /* Half a layout: name the first missing file. */
    if (csv == 1)
        for (int s = 0; s < 2; s++)
            if (fm_data_find_files(dir, FM_FORMAT_CSV, (fm_data_set)s, &files, err) < 0) return -1;
    if (idx > 0)
        for (int s = 0; s < 2; s++)
            if (fm_data_find_files(dir, FM_FORMAT_IDX, (fm_data_set)s, &files, err) < 0) return -1;
    return fm__err(err,
                   "%s: no Fashion-MNIST data (expected %s and %s, or %s.gz and the other three IDX "
                   "files)",
                   dir, csv_names[0], csv_names[1], idx_names[0][0]);
}

const char *fm_data_default_dir(fm_err *err) {
    static const char local[] = "./DATA";
    if (is_file("./DATA/fashion-mnist_train.csv") && is_file("./DATA/fashion-mnist_test.csv"))
        return local;
    struct stat st;
    if (stat(FM_DEBIAN_DATA_DIR, &st) == 0 && S_ISDIR(st.st_mode)) return FM_DEBIAN_DATA_DIR;
    fm__err(err,
            "no Fashion-MNIST data found: install it with `sudo apt-get install "
            "dataset-fashion-mnist` (into %s), or put the Kaggle CSVs %s and %s in ./DATA",
            FM_DEBIAN_DATA_DIR, csv_names[0], csv_names[1]);
    return NULL;
}

int fm_data_load(const char *dir, fm_data_set set, fm_images *out, fm_err *err) {
    memset(out, 0, sizeof *out);
    fm_data_format format;
    fm_data_files files;
    if (fm_data_detect(dir, &format, err) < 0) return -1;
    if (fm_data_find_files(dir, format, set, &files, err) < 0) return -1;
    if (format == FM_FORMAT_CSV) return fm_data_load_csv(files.images, out, err);
    return fm_data_load_idx(files.images, files.labels, out, err);
}

/* Refuses sets the loaders would refuse, so what is written reads back. */
static int check_set(const char *dir, const char *name, const fm_images *imgs, fm_err *err) {
    if (imgs->count == 0) return fm__err(err, "%s: the %s set is empty", dir, name);
    for (size_t i = 0; i < imgs->count; i++)
        if (imgs->labels[i] > 9)
            return fm__err(err, "%s: %s image %zu has label %u, outside 0..9", dir, name, i,
                           imgs->labels[i]);
    return 0;
}

int fm_data_write(const char *dir, fm_data_format format, const fm_images *train,
                  const fm_images *test, fm_err *err) {
    if (check_set(dir, "train", train, err) < 0 || check_set(dir, "test", test, err) < 0) return -1;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return fm__err(err, "%s: %s", dir, strerror(errno));
    const fm_images *sets[2] = {train, test};
    char images[FM__PATH_MAX], labels[FM__PATH_MAX];
    for (int s = 0; s < 2; s++) {
        if (format == FM_FORMAT_CSV) {
            if (join(images, dir, csv_names[s], "", err) < 0) return -1;
            if (fm__csv_write(images, sets[s], err) < 0) return -1;
        } else {
            if (join(images, dir, idx_names[s][0], ".gz", err) < 0 ||
                join(labels, dir, idx_names[s][1], ".gz", err) < 0)
                return -1;
            if (fm__idx_write(images, labels, sets[s], err) < 0) return -1;
        }
    }
    return 0;
}
