/* The IDX loader and writer on small files, gzipped and plain: good pairs,
 * one bad file per kind of error (each message naming the file, the byte
 * offset and the problem), headers claiming absurd counts (which must fail
 * before allocating: under ASan a 3 TB malloc would abort the test), layout
 * detection, and CSV <-> IDX round trips through the library. */
#include <errno.h>
#include <sys/stat.h>

#include "check.h"
#include "data/testutil.h"

#define N 5

static uint8_t images[16 + N * FM_IMAGE_PIXELS];
static uint8_t labels[8 + N];

static void put_be32(uint8_t *b, uint32_t v) {
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

/* A valid pair of N images and labels. */
static void make_pair(void) {
    memcpy(images, "\0\0\x08\x03", 4);
    put_be32(images + 4, N);
    put_be32(images + 8, 28);
    put_be32(images + 12, 28);
    for (int i = 0; i < N * FM_IMAGE_PIXELS; i++) images[16 + i] = (uint8_t)(i * 13 + 5);
    memcpy(labels, "\0\0\x08\x01", 4);
    put_be32(labels + 4, N);
    for (int i = 0; i < N; i++) labels[8 + i] = (uint8_t)(9 - i);
}

static void write_as(const char *name, const void *data, size_t n, int gz) {
    if (gz) tu_write_gz(tu_path(name), data, n);
    else tu_write(tu_path(name), data, n);
}

static int load(const char *img_name, const char *lbl_name, fm_images *out, fm_err *err) {
    return fm_data_load_idx(tu_path(img_name), tu_path(lbl_name), out, err);
}

static void good(void) {
    for (int gz = 0; gz < 4; gz++) { /* bit 0: images gzipped, bit 1: labels gzipped */
        make_pair();
        write_as("img", images, sizeof images, gz & 1);
        write_as("lbl", labels, sizeof labels, gz & 2);
        fm_images imgs;
        fm_err err;
        int rc = load("img", "lbl", &imgs, &err);
        CHECK_MSG(rc == 0, "gz %d: %s", gz, err.msg);
        if (rc) continue;
        CHECK(imgs.count == N);
        CHECK(!memcmp(imgs.pixels, images + 16, N * FM_IMAGE_PIXELS));
        CHECK(!memcmp(imgs.labels, labels + 8, N));
        fm_images_free(&imgs);
    }
}

/* Writes the images file (after `edit`), a good labels file, loads, and
 * expects an error naming the images file and `expect`. */
static void bad_images(const char *what, size_t len, int gz, const char *expect) {
    write_as("bad_img", images, len, gz);
    tu_write(tu_path("good_lbl"), labels, sizeof labels);
    fm_images imgs;
    fm_err err;
    int rc = load("bad_img", "good_lbl", &imgs, &err);
    CHECK_ERR(rc, err, tu_path("bad_img"), expect);
    if (rc == 0) fprintf(stderr, "  (%s loaded)\n", what);
    CHECK(imgs.count == 0 && !imgs.pixels && !imgs.labels);
}

static void bad_labels(size_t len, int gz, const char *expect) {
    tu_write(tu_path("good_img"), images, sizeof images);
    write_as("bad_lbl", labels, len, gz);
    fm_images imgs;
    fm_err err;
    int rc = load("good_img", "bad_lbl", &imgs, &err);
    CHECK_ERR(rc, err, tu_path("bad_lbl"), expect);
}

static void bad(void) {
    fm_images imgs;
    fm_err err;
    int rc;
    for (int gz = 0; gz < 2; gz++) {
        make_pair();
        bad_images("empty", 0, gz, "empty file");
        bad_images("3 bytes", 3, gz, "offset 0: not an IDX file");
        bad_images("header cut", 10, gz, "offset 10: truncated header (10 of 16 bytes)");
        bad_images("data cut", sizeof images - 10, gz, "the header says 5 images");
        images[0] = 0x1f;
        bad_images("magic", sizeof images, gz, "offset 0: not an IDX file (bad magic number)");
        make_pair();
        images[2] = 0x0d;
        bad_images("type", sizeof images, gz, "offset 2: data type 0x0d, expected 0x08");
        make_pair();
        images[3] = 2;
        bad_images("dims", sizeof images, gz, "offset 3: 2 dimensions, expected 3 for images");
        make_pair();
        put_be32(images + 12, 32);
        bad_images("32 wide", sizeof images, gz, "offset 8: images are 28x32, expected 28x28");
        make_pair();
        put_be32(images + 4, 0);
        bad_images("no images", 16, gz, "offset 4: the header says 0 images");
        /* 4 billion images claimed, 5 present: found from the file size
         * (plain) or from the data running out (gzipped), never malloc'd. */
        make_pair();
        put_be32(images + 4, 0xffffffffu);
        bad_images("absurd count", sizeof images, gz, "the header says 4294967295 images");
        make_pair();

        /* Labels: the labels file given as images and vice versa. */
        tu_write(tu_path("lbl_as_img"), labels, sizeof labels);
        rc = load("lbl_as_img", "lbl_as_img", &imgs, &err);
        CHECK_ERR(rc, err, "offset 3: 1 dimensions, expected 3 for images", NULL);
        tu_write(tu_path("img_as_lbl"), images, sizeof images);
        tu_write(tu_path("good_img"), images, sizeof images);
        rc = load("good_img", "img_as_lbl", &imgs, &err);
        CHECK_ERR(rc, err, tu_path("img_as_lbl"), "offset 3: 3 dimensions, expected 1 for labels");

        labels[8 + 3] = 10;
        bad_labels(sizeof labels, gz, "offset 11: label 10 (item 3) is out of range 0..9");
        make_pair();
        bad_labels(sizeof labels - 1, gz, "truncated: the header says 5 labels");
        put_be32(labels + 4, 4000000000u);
        bad_labels(sizeof labels, gz, "the header says 4000000000 labels");
        make_pair();
        put_be32(labels + 4, N - 1);
        tu_write(tu_path("good_img"), images, sizeof images);
        write_as("short_lbl", labels, sizeof labels - 1, gz);
        rc = load("good_img", "short_lbl", &imgs, &err);
        CHECK_ERR(rc, err, "has 5 images but", "has 4 labels");
        make_pair();
    }
    /* Trailing bytes after the last image are an error, not ignored. */
    uint8_t longer[sizeof images + 3] = {0};
    memcpy(longer, images, sizeof images);
    for (int gz = 0; gz < 2; gz++) {
        write_as("long_img", longer, sizeof longer, gz);
        tu_write(tu_path("good_lbl"), labels, sizeof labels);
        rc = load("long_img", "good_lbl", &imgs, &err);
        CHECK_ERR(rc, err, tu_path("long_img"), "offset 3936: ");
        CHECK(strstr(err.msg, "unexpected data after the last of 5 images"));
    }

    /* Broken gzip: cut short, and bytes flipped inside the deflate data. */
    tu_write_gz(tu_path("cut.gz"), images, sizeof images);
    size_t n;
    unsigned char *gz = tu_read(tu_path("cut.gz"), &n);
    CHECK(gz && n > 40);
    tu_write(tu_path("cut.gz"), gz, n - 6);
    tu_write(tu_path("good_lbl"), labels, sizeof labels);
    rc = load("cut.gz", "good_lbl", &imgs, &err);
    CHECK_ERR(rc, err, tu_path("cut.gz"), "corrupt or truncated gzip");
    for (size_t i = 20; i < n - 8; i += 7) gz[i] ^= 0x5a;
    tu_write(tu_path("flipped.gz"), gz, n);
    rc = load("flipped.gz", "good_lbl", &imgs, &err);
    CHECK_ERR(rc, err, tu_path("flipped.gz"), "corrupt or truncated gzip");
    free(gz);

    rc = load("nothing_here", "good_lbl", &imgs, &err);
    CHECK_ERR(rc, err, tu_path("nothing_here"), "No such file");
    rc = fm_data_load_idx(tu_path(""), tu_path("good_lbl"), &imgs, &err);
    CHECK_ERR(rc, err, "is a folder", NULL);
}

static void detect(void) {
    fm_err err;
    fm_data_format format;
    char dir[4096]; /* tu_path's buffers rotate */
    snprintf(dir, sizeof dir, "%s", tu_path("detect"));
    mkdir(dir, 0777);
    int rc = fm_data_detect(dir, &format, &err);
    CHECK_ERR(rc, err, dir, "no Fashion-MNIST data");
    rc = fm_data_detect(tu_path("detect/none"), &format, &err);
    CHECK_ERR(rc, err, "detect/none", "No such file");

    /* Plain and gzipped files mix; three of four is an error naming the fourth. */
    make_pair();
    tu_write(tu_path("detect/train-images-idx3-ubyte"), images, sizeof images);
    tu_write_gz(tu_path("detect/train-labels-idx1-ubyte.gz"), labels, sizeof labels);
    tu_write_gz(tu_path("detect/t10k-images-idx3-ubyte.gz"), images, sizeof images);
    rc = fm_data_detect(dir, &format, &err);
    CHECK_ERR(rc, err, dir, "missing t10k-labels-idx1-ubyte.gz (or t10k-labels-idx1-ubyte)");
    tu_write(tu_path("detect/fashion-mnist_test.csv"), "x", 1);
    rc = fm_data_detect(dir, &format, &err);
    CHECK_ERR(rc, err, dir, "missing fashion-mnist_train.csv");
    remove(tu_path("detect/fashion-mnist_test.csv"));
    tu_write(tu_path("detect/t10k-labels-idx1-ubyte"), labels, sizeof labels);
    rc = fm_data_detect(dir, &format, &err);
    CHECK_MSG(rc == 0 && format == FM_FORMAT_IDX, "%s", err.msg);
    /* which file of each pair: the .gz when it is there, else the plain one */
    fm_data_files files;
    rc = fm_data_find_files(dir, FM_FORMAT_IDX, FM_SET_TRAIN, &files, &err);
    CHECK_MSG(rc == 0 && !strcmp(files.images, tu_path("detect/train-images-idx3-ubyte")) &&
                  !strcmp(files.labels, tu_path("detect/train-labels-idx1-ubyte.gz")),
              "%s: %s, %s", err.msg, files.images, files.labels);
    tu_write_gz(tu_path("detect/t10k-labels-idx1-ubyte.gz"), labels, sizeof labels);
    rc = fm_data_find_files(dir, FM_FORMAT_IDX, FM_SET_TEST, &files, &err);
    CHECK_MSG(rc == 0 && !strcmp(files.labels, tu_path("detect/t10k-labels-idx1-ubyte.gz")),
              "%s: %s", err.msg, files.labels);
    rc = fm_data_find_files(dir, FM_FORMAT_CSV, FM_SET_TEST, &files, &err);
    CHECK_ERR(rc, err, dir, "missing fashion-mnist_test.csv");
    fm_images imgs;
    rc = fm_data_load(dir, FM_SET_TEST, &imgs, &err);
    CHECK_MSG(rc == 0 && imgs.count == N, "%s", err.msg);
    fm_images_free(&imgs);

    /* Half the CSV layout next to a whole IDX one: IDX. Both whole: CSV. */
    tu_write(tu_path("detect/fashion-mnist_train.csv"), "x", 1);
    rc = fm_data_detect(dir, &format, &err);
    CHECK_MSG(rc == 0 && format == FM_FORMAT_IDX, "%s", err.msg);
    tu_write(tu_path("detect/fashion-mnist_test.csv"), "x", 1);
    rc = fm_data_detect(dir, &format, &err);
    CHECK_MSG(rc == 0 && format == FM_FORMAT_CSV, "%s", err.msg);
    rc = fm_data_find_files(dir, FM_FORMAT_CSV, FM_SET_TEST, &files, &err);
    CHECK_MSG(rc == 0 && !strcmp(files.images, tu_path("detect/fashion-mnist_test.csv")) &&
                  files.labels[0] == 0,
              "%s", err.msg);
    rc = fm_data_load(dir, FM_SET_TRAIN, &imgs, &err);
    CHECK_ERR(rc, err, "detect/fashion-mnist_train.csv", "line 1");
}

/* IDX -> CSV -> IDX and CSV -> IDX -> CSV keep every byte. */
static void round_trips(void) {
    fm_images train, test, a, b;
    fm_err err;
    tu_make_set(&train, 300, 3);
    tu_make_set(&test, 20, 4);
    int rc = fm_data_write(tu_path("rt_idx"), FM_FORMAT_IDX, &train, &test, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);

    /* The written files are the standard ones and decompress to header + data. */
    gzFile g = gzopen(tu_path("rt_idx/t10k-images-idx3-ubyte.gz"), "rb");
    uint8_t raw[16 + 20 * FM_IMAGE_PIXELS + 1];
    int got = g ? gzread(g, raw, sizeof raw) : -1;
    if (g) gzclose(g);
    CHECK(got == 16 + 20 * FM_IMAGE_PIXELS);
    CHECK(!memcmp(raw, "\0\0\x08\x03\0\0\0\x14\0\0\0\x1c\0\0\0\x1c", 16));
    CHECK(!memcmp(raw + 16, test.pixels, 20 * FM_IMAGE_PIXELS));
    g = gzopen(tu_path("rt_idx/train-labels-idx1-ubyte.gz"), "rb");
    got = g ? gzread(g, raw, sizeof raw) : -1;
    if (g) gzclose(g);
    CHECK(got == 8 + 300 && !memcmp(raw, "\0\0\x08\x01\0\0\x01\x2c", 8) && !memcmp(raw + 8, train.labels, 300));

    for (int s = 0; s < 2; s++) {
        const fm_images *orig = s ? &test : &train;
        fm_data_set set = s ? FM_SET_TEST : FM_SET_TRAIN;
        rc = fm_data_load(tu_path("rt_idx"), set, &a, &err);
        CHECK_MSG(rc == 0 && tu_same_set(orig, &a), "%s", err.msg);
        fm_images_free(&a);
    }
    /* IDX -> CSV -> IDX */
    rc = fm_data_load(tu_path("rt_idx"), FM_SET_TRAIN, &a, &err);
    rc |= fm_data_load(tu_path("rt_idx"), FM_SET_TEST, &b, &err);
    rc |= fm_data_write(tu_path("rt_csv"), FM_FORMAT_CSV, &a, &b, &err);
    fm_images_free(&a);
    fm_images_free(&b);
    rc |= fm_data_load(tu_path("rt_csv"), FM_SET_TRAIN, &a, &err);
    rc |= fm_data_load(tu_path("rt_csv"), FM_SET_TEST, &b, &err);
    rc |= fm_data_write(tu_path("rt_idx2"), FM_FORMAT_IDX, &a, &b, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    CHECK(tu_same_set(&train, &a) && tu_same_set(&test, &b));
    fm_images_free(&a);
    fm_images_free(&b);
    static const char *const idx_files[4] = {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz"};
    for (int i = 0; i < 4; i++) {
        char x[64], y[64];
        snprintf(x, sizeof x, "rt_idx/%s", idx_files[i]);
        snprintf(y, sizeof y, "rt_idx2/%s", idx_files[i]);
        size_t nx, ny;
        unsigned char *bx = tu_read(tu_path(x), &nx), *by = tu_read(tu_path(y), &ny);
        CHECK_MSG(bx && by && nx == ny && !memcmp(bx, by, nx), "%s differs", idx_files[i]);
        free(bx);
        free(by);
    }
    /* CSV -> IDX -> CSV */
    rc = fm_data_load(tu_path("rt_idx2"), FM_SET_TRAIN, &a, &err);
    rc |= fm_data_load(tu_path("rt_idx2"), FM_SET_TEST, &b, &err);
    rc |= fm_data_write(tu_path("rt_csv2"), FM_FORMAT_CSV, &a, &b, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    fm_images_free(&a);
    fm_images_free(&b);
    static const char *const csv_files[2] = {"fashion-mnist_train.csv", "fashion-mnist_test.csv"};
    for (int i = 0; i < 2; i++) {
        char x[64], y[64];
        snprintf(x, sizeof x, "rt_csv/%s", csv_files[i]);
        snprintf(y, sizeof y, "rt_csv2/%s", csv_files[i]);
        size_t nx, ny;
        unsigned char *bx = tu_read(tu_path(x), &nx), *by = tu_read(tu_path(y), &ny);
        CHECK_MSG(bx && by && nx == ny && !memcmp(bx, by, nx), "%s differs", csv_files[i]);
        free(bx);
        free(by);
    }
    fm_images_free(&train);
    fm_images_free(&test);
}

/* Writing over an older set replaces every file whole, and a file that
 * cannot be put in place fails with its name, leaving no temporary file. */
static void atomic_writes(void) {
    fm_images train, test, a;
    fm_err err;
    tu_make_set(&train, 40, 11);
    tu_make_set(&test, 9, 12);
    int rc = fm_data_write(tu_path("rt_idx"), FM_FORMAT_IDX, &train, &test, &err); /* over round_trips' */
    CHECK_MSG(rc == 0, "%s", err.msg);
    rc = fm_data_load(tu_path("rt_idx"), FM_SET_TRAIN, &a, &err);
    CHECK_MSG(rc == 0 && tu_same_set(&train, &a), "%s", err.msg);
    if (rc == 0) fm_images_free(&a);
    CHECK(tu_no_temp_files(tu_path("rt_idx")));

    /* a folder where the labels file should go: the rename fails */
    CHECK(mkdir(tu_path("rt_bad"), 0777) == 0 || errno == EEXIST);
    CHECK(mkdir(tu_path("rt_bad/train-labels-idx1-ubyte.gz"), 0777) == 0 || errno == EEXIST);
    err.msg[0] = 0;
    CHECK(fm_data_write(tu_path("rt_bad"), FM_FORMAT_IDX, &train, &test, &err) == -1);
    CHECK_MSG(strstr(err.msg, "rt_bad/train-labels-idx1-ubyte.gz: write failed") != NULL, "%s",
              err.msg);
    CHECK(tu_no_temp_files(tu_path("rt_bad")));
    fm_images_free(&train);
    fm_images_free(&test);
}

int main(void) {
    tu_init("test_idx");
    good();
    bad();
    detect();
    round_trips();
    atomic_writes();
    return check_finish();
}
