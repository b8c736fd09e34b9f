/* The data verbs end to end on the real data set: `fmnist data` on the Debian
 * IDX files and on CSVs converted from them, IDX -> CSV -> IDX -> CSV keeping
 * every byte, `fmnist show`, and the CLI's exit codes for bad input. */
#include "check.h"
#include "clitest.h"
#include "data/image.h"

#include <sys/wait.h>

static const char *bin;

/* Runs `fmnist ARGS` (in folder `cwd` when given) with stdout and stderr in
 * out.txt and err.txt; returns the exit status. */
static int run(const char *cwd, const char *args) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s%s%s'%s' %s >'%s' 2>'%s'", cwd ? "cd '" : "", cwd ? cwd : "",
             cwd ? "' && " : "", bin, args, tu_path("out.txt"), tu_path("err.txt"));
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The counts (training, train, val, test) of class k in a report of `fmnist data`. */
static int class_counts(const char *out, int k, unsigned long c[4]) {
    char start[32];
    snprintf(start, sizeof start, "\n%d %s ", k, fm_class_names[k]);
    const char *line = strstr(out, start);
    c[0] = c[1] = c[2] = c[3] = 0;
    return line && sscanf(line + strlen(start), "%lu %lu %lu %lu", &c[0], &c[1], &c[2], &c[3]) == 4;
}

/* Checks the report of `fmnist data` on the full set; returns the part after
 * the file list (counts and statistics), which must not depend on the layout. */
static const char *check_report(const char *what, const char *layout) {
    const char *out = tu_output("out.txt");
    CHECK_MSG(strstr(out, layout), "%s: no '%s' in:\n%s", what, layout, out);
    CHECK_MSG(strstr(out, "images: 60000 training = 48000 train + 12000 val (val-split 0.2, seed 42); "
                          "10000 test"),
              "%s:\n%s", what, out);
    CHECK_MSG(strstr(out, "pixels/255 over the 60000 training images: mean 0.2860, std 0.3530"), "%s:\n%s",
              what, out);
    for (int k = 0; k < FM_NUM_CLASSES; k++) {
        unsigned long c[4];
        CHECK_MSG(class_counts(out, k, c) && c[0] == 6000 && c[1] + c[2] == 6000 && c[3] == 1000,
                  "%s: class %d: %lu %lu %lu %lu", what, k, c[0], c[1], c[2], c[3]);
    }
    const char *counts = strstr(out, "images: ");
    return counts ? counts : "";
}

/* Whether two files hold the same bytes once decompressed (gzread reads
 * plain files as they are), compared a block at a time. */
static int same_data(const char *a, const char *b) {
    gzFile ga = gzopen(a, "rb"), gb = gzopen(b, "rb");
    static unsigned char x[1 << 20], y[1 << 20];
    int same = ga && gb, na, nb;
    long long total = 0;
    while (same) {
        na = gzread(ga, x, sizeof x);
        nb = gzread(gb, y, sizeof y);
        same = na >= 0 && na == nb && !memcmp(x, y, (size_t)na);
        total += na;
        if (na <= 0) break;
    }
    if (ga) gzclose(ga);
    if (gb) gzclose(gb);
    return same && total > 0;
}

static void conversions(void) {
    char args[8192], first[16384];
    snprintf(args, sizeof args, "data --data %s", FM_DEBIAN_DATA_DIR);
    CHECK(run(NULL, args) == 0);
    snprintf(first, sizeof first, "%s", check_report("IDX", "(IDX layout)"));

    snprintf(args, sizeof args, "convert --to csv %s '%s'", FM_DEBIAN_DATA_DIR, tu_path("csv"));
    CHECK_MSG(run(NULL, args) == 0, "%s", tu_output("err.txt"));
    CHECK(strstr(tu_output("out.txt"), "fashion-mnist_train.csv (60000 images)"));
    snprintf(args, sizeof args, "data --data '%s'", tu_path("csv"));
    CHECK(run(NULL, args) == 0);
    CHECK_MSG(!strcmp(first, check_report("CSV", "(CSV layout)")), "the reports differ");

    snprintf(args, sizeof args, "convert --to idx '%s' '%s'", tu_path("csv"), tu_path("idx"));
    CHECK_MSG(run(NULL, args) == 0, "%s", tu_output("err.txt"));
    static const char *const idx[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    for (int i = 0; i < 4; i++) {
        char orig[4096], name[64];
        snprintf(orig, sizeof orig, "%s/%s", FM_DEBIAN_DATA_DIR, idx[i]);
        snprintf(name, sizeof name, "idx/%s", idx[i]);
        CHECK_MSG(same_data(orig, tu_path(name)), "%s differs from the original", name);
    }

    snprintf(args, sizeof args, "convert --to csv '%s' '%s'", tu_path("idx"), tu_path("csv2"));
    CHECK_MSG(run(NULL, args) == 0, "%s", tu_output("err.txt"));
    CHECK(same_data(tu_path("csv/fashion-mnist_train.csv"), tu_path("csv2/fashion-mnist_train.csv")));
    CHECK(same_data(tu_path("csv/fashion-mnist_test.csv"), tu_path("csv2/fashion-mnist_test.csv")));
}

static void show(void) {
    char args[8192];
    fm_err err;
    fm_images test;
    CHECK(fm_data_load(tu_path("idx"), FM_SET_TEST, &test, &err) == 0);
    snprintf(args, sizeof args, "show --data '%s' --set test --index 3 -o '%s'", tu_path("idx"),
             tu_path("one.png"));
    CHECK_MSG(run(NULL, args) == 0, "%s", tu_output("err.txt"));
    CHECK(strstr(tu_output("out.txt"), "one.png (224x224): test image 3 of"));
    fm__image img;
    int rc = fm__image_read(tu_path("one.png"), 0, &img, &err);
    CHECK_MSG(rc == 0 && img.w == 224 && img.h == 224, "%s", err.msg);
    int bad = 0;
    for (int y = 0; rc == 0 && y < 224; y++)
        for (int x = 0; x < 224; x++)
            bad += img.pixels[y * 224 + x] != test.pixels[3 * FM_IMAGE_PIXELS + (y / 8) * 28 + x / 8];
    CHECK_MSG(bad == 0, "%d pixels differ from test image 3", bad);
    fm__image_free(&img);
    fm_images_free(&test);

    /* The default: a grid of the training set, written in the working folder. */
    CHECK(run(tu_path("idx"), "show --data .") == 0);
    CHECK(strstr(tu_output("out.txt"), "wrote show.png (604x604): the first 10 images of each class"));
    rc = fm__image_read(tu_path("idx/show.png"), 0, &img, &err);
    CHECK_MSG(rc == 0 && img.w == 604 && img.h == 604, "%s", err.msg);
    fm__image_free(&img);
}

/* A CSV row with the given label; returns its length. */
static size_t csv_row(char *out, const char *label) {
    char *p = out + sprintf(out, "%s", label);
    for (int i = 0; i < FM_IMAGE_PIXELS; i++) p += sprintf(p, ",%d", i % 256);
    *p++ = '\n';
    return (size_t)(p - out);
}

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void errors(void) {
    char args[8192];
    /* Without --data and without ./DATA: the Debian folder. */
    mkdir(tu_path("empty"), 0777);
    CHECK(run(tu_path("empty"), "show --set test --index 0") == 0);
    CHECK(strstr(tu_output("out.txt"), "test image 0 of " FM_DEBIAN_DATA_DIR ", label 9 (Ankle boot)"));

    /* --val-split and --seed, on a small folder. */
    mkdir(tu_path("small"), 0777);
    char row[4096], rows[11 * 4096];
    size_t n = 0;
    for (int i = 0; i < 10; i++) n += csv_row(rows + n, i % 2 ? "3" : "5");
    tu_write(tu_path("small/fashion-mnist_train.csv"), rows, n);
    tu_write(tu_path("small/fashion-mnist_test.csv"), row, csv_row(row, "0"));
    snprintf(args, sizeof args, "data --data '%s' --val-split 0.3 --seed 7", tu_path("small"));
    CHECK(run(NULL, args) == 0);
    CHECK_MSG(strstr(tu_output("out.txt"), "10 training = 7 train + 3 val (val-split 0.3, seed 7); 1 test"),
              "%s", tu_output("out.txt"));
    unsigned long c[4];
    CHECK(class_counts(tu_output("out.txt"), 5, c) && c[0] == 5 && c[1] + c[2] == 5 && c[3] == 0);
    CHECK(class_counts(tu_output("out.txt"), 0, c) && c[0] == 0 && c[3] == 1);

    snprintf(args, sizeof args, "data --data '%s'", tu_path("nowhere"));
    CHECK(run(NULL, args) == 1);
    CHECK(strstr(tu_output("err.txt"), "fmnist: ") && strstr(tu_output("err.txt"), "nowhere: No such file"));

    /* A bad label in the test CSV: exit 1 naming the file, line and column. */
    mkdir(tu_path("bad"), 0777);
    tu_write(tu_path("bad/fashion-mnist_train.csv"), row, csv_row(row, "7"));
    tu_write(tu_path("bad/fashion-mnist_test.csv"), row, csv_row(row, "12"));
    snprintf(args, sizeof args, "data --data '%s'", tu_path("bad"));
    CHECK(run(NULL, args) == 1);
    CHECK_MSG(strstr(tu_output("err.txt"), "fashion-mnist_test.csv: line 1, column 1 (label): '12' is out of range"),
              "%s", tu_output("err.txt"));

    static const struct {
        const char *args, *err;
        int status;
    } usage[] = {
        {"data --bogus", "unknown option '--bogus'", 2},
        {"data extra", "unexpected argument 'extra'", 2},
        {"data -zq", "data: unknown option '-z'", 2}, /* inside a cluster */
        {"show --grid=2", "show: --grid takes no value", 2},
        {"show -o", "show: -o needs a value", 2},
        {"data --val-split 2", "--val-split: 2 is out of range", 2},
        {"data --seed x", "--seed: 'x' is not an integer", 2},
        {"convert --to csv only_one", "expected SRC_DIR and DST_DIR", 2},
        {"convert a b", "--to csv|idx is required", 2},
        {"convert --to png a b", "'png' is not csv or idx", 2},
        {"show --index 1 --grid", "--index and --grid exclude each other", 2},
        {"show --set val", "'val' is not train or test", 2},
        {"show --scale 0", "--scale: 0 is out of range", 2},
        {"show --data " FM_DEBIAN_DATA_DIR " --set test --index 10000", "--index: 10000 is out of range [0, 9999]", 2},
    };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        int st = run(NULL, usage[i].args);
        const char *e = tu_output("err.txt");
        CHECK_MSG(st == usage[i].status && strstr(e, usage[i].err) && lines(e) == 1,
                  "fmnist %s: status %d, stderr: %s", usage[i].args, st, e);
    }
    static const char *const verbs[3] = {"data", "convert", "show"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "%s --help", verbs[i]);
        char want[32];
        snprintf(want, sizeof want, "usage: fmnist %s", verbs[i]);
        CHECK(run(NULL, args) == 0 && strstr(tu_output("out.txt"), want));
    }
    /* the top level: --version, a bare call and an unknown verb */
    CHECK(run(NULL, "--version") == 0 && !strcmp(tu_output("out.txt"), "fmnist " FM_VERSION "\n"));
    CHECK(run(NULL, "") == 2 && strstr(tu_output("err.txt"), "usage: fmnist VERB"));
    CHECK(run(NULL, "dance") == 2 && strstr(tu_output("err.txt"), "unknown verb 'dance'"));
}

int main(void) {
    struct stat st;
    if (stat(FM_DEBIAN_DATA_DIR "/train-images-idx3-ubyte.gz", &st) != 0)
        SKIP("no data set in " FM_DEBIAN_DATA_DIR " (sudo apt-get install dataset-fashion-mnist)");
    bin = getenv("FMNIST_BIN");
    CHECK_MSG(bin && access(bin, X_OK) == 0, "FMNIST_BIN is not set to the fmnist CLI");
    if (!bin || access(bin, X_OK) != 0) return check_finish();
    tu_init("system_data");
    conversions();
    show();
    errors();
    return check_finish();
}
