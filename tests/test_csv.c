/* The CSV loader and writer on small files: the accepted variants (header or
 * not, CRLF, no final newline, trailing blank lines) and one bad file per
 * kind of error, each message naming the file, the line/column and the
 * problem. Also the default data folder. */
#include "check.h"
#include "data/testutil.h"

#include <sys/wait.h>
#include <unistd.h>

/* Appends a row: the label text then 784 pixels, pixel j = (j * 7 + seed) % 256;
 * when col > 0 the field in that 1-based column is `text` instead; n_pixels
 * is how many pixel fields to write. Returns the new end. */
static char *row(char *p, const char *label, int n_pixels, int col, const char *text, int seed,
                 const char *eol) {
    p += sprintf(p, "%s", col == 1 ? text : label);
    for (int j = 0; j < n_pixels; j++) {
        if (col == j + 2) p += sprintf(p, ",%s", text);
        else p += sprintf(p, ",%d", (j * 7 + seed) % 256);
    }
    return p + sprintf(p, "%s", eol);
}

static char *header(char *p, const char *eol) {
    p += sprintf(p, "label");
    for (int j = 1; j <= FM_IMAGE_PIXELS; j++) p += sprintf(p, ",pixel%d", j);
    return p + sprintf(p, "%s", eol);
}

static char text[1 << 16];

/* Writes text[0..end) to name and loads it; returns the loader's result. */
static int load(const char *name, const char *end, fm_images *imgs, fm_err *err) {
    tu_write(tu_path(name), text, (size_t)(end - text));
    return fm_data_load_csv(tu_path(name), imgs, err);
}

/* The three rows written by good(): labels 3, 0, 9, seeds 0, 1, 2. */
static void check_good(const char *what, int rc, const fm_images *imgs, const fm_err *err) {
    CHECK_MSG(rc == 0, "%s: %s", what, err->msg);
    if (rc) return;
    CHECK(imgs->count == 3);
    CHECK(imgs->labels[0] == 3 && imgs->labels[1] == 0 && imgs->labels[2] == 9);
    int bad = 0;
    for (size_t i = 0; i < imgs->count; i++)
        for (int j = 0; j < FM_IMAGE_PIXELS; j++)
            bad += imgs->pixels[i * FM_IMAGE_PIXELS + j] != (j * 7 + (int)i) % 256;
    CHECK_MSG(bad == 0, "%s: %d pixels differ", what, bad);
}

static void good(void) {
    fm_images imgs;
    fm_err err;
    const char *eols[2] = {"\n", "\r\n"};
    for (int e = 0; e < 2; e++)
        for (int with_header = 0; with_header < 2; with_header++)
            for (int final_newline = 0; final_newline < 2; final_newline++) {
                char *p = text;
                if (with_header) p = header(p, eols[e]);
                p = row(p, "3", 784, 0, NULL, 0, eols[e]);
                p = row(p, "0", 784, 0, NULL, 1, eols[e]);
                p = row(p, "9", 784, 0, NULL, 2, final_newline ? eols[e] : "");
                char what[64];
                snprintf(what, sizeof what, "%s header %d newline %d", e ? "CRLF" : "LF",
                         with_header, final_newline);
                check_good(what, load("good.csv", p, &imgs, &err), &imgs, &err);
                fm_images_free(&imgs);
            }

    /* A byte order mark, leading zeros and trailing blank lines are fine too. */
    char *p = header(text, "\n");
    memmove(text + 3, text, (size_t)(p - text));
    memcpy(text, "\xef\xbb\xbf", 3);
    p = row(p + 3, "03", 784, 0, NULL, 0, "\n");
    p = row(p, "0", 784, 0, NULL, 1, "\n");
    p = row(p, "009", 784, 0, NULL, 2, "\n\n\r\n");
    check_good("BOM, zeros, blank end", load("good.csv", p, &imgs, &err), &imgs, &err);
    fm_images_free(&imgs);
}

/* One bad row (line 3, after the header and a good row) per case. */
static void bad_fields(void) {
    static const struct {
        int col;
        const char *text, *expect;
    } cases[] = {
        {17, "12a", "line 3, column 17 (pixel16): '12a' is not an integer 0..255"},
        {2, "-1", "line 3, column 2 (pixel1): '-1' is not an integer"},
        {785, "256", "line 3, column 785 (pixel784): '256' is out of range 0..255"},
        {300, "99999999999", "column 300 (pixel299): '99999999999' is out of range"},
        {5, "", "line 3, column 5 (pixel4): empty field"},
        {6, " 5", "line 3, column 6 (pixel5): ' 5' is not an integer"},
        {7, "1.5", "column 7 (pixel6): '1.5' is not an integer"},
        {1, "10", "line 3, column 1 (label): '10' is out of range 0..9"},
        {1, "x", "line 3, column 1 (label): 'x' is not a label 0..9"},
        {1, "", "line 3, column 1 (label): empty field"},
        {9, "\x01\xff", "column 9 (pixel8): '\\x01\\xff' is not an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = header(text, "\n");
        p = row(p, "1", 784, 0, NULL, 0, "\n");
        p = row(p, "2", 784, cases[i].col, cases[i].text, 1, "\n");
        fm_images imgs;
        fm_err err;
        int rc = load("bad_field.csv", p, &imgs, &err);
        CHECK_ERR(rc, err, tu_path("bad_field.csv"), cases[i].expect);
        CHECK(imgs.count == 0 && !imgs.pixels && !imgs.labels);
    }
}

static void bad_files(void) {
    fm_images imgs;
    fm_err err;
    int rc;
    const char *missing = tu_path("missing.csv");
    rc = fm_data_load_csv(missing, &imgs, &err);
    CHECK_ERR(rc, err, missing, "No such file");

    rc = fm_data_load_csv(tu_path(""), &imgs, &err);
    CHECK_ERR(rc, err, tu_path(""), "is a folder");

    rc = load("empty.csv", text, &imgs, &err);
    CHECK_ERR(rc, err, tu_path("empty.csv"), "empty file");

    char *p = header(text, "\r\n");
    rc = load("header_only.csv", p, &imgs, &err);
    CHECK_ERR(rc, err, tu_path("header_only.csv"), "no images (only a header)");

    /* A first line that starts like a header must be the header exactly: the
     * error names the column of the first wrong byte and its field. */
    static const struct {
        const char *from, *to; /* the header with `from` made `to`; NULL: cut there */
        const char *expect;
    } near[] = {
        {",pixel3,", NULL, "line 1, column 20 (pixel2): the line ends where the header goes on "
                           "with ',pixel3,pixe...'"},
        {",pixel784", ",pixel784,extra", "line 1, column 6954 (pixel784): ',extra' after the "
                                         "header's last field"},
        {"label", "labels", "line 1, column 6 (label): 's' where the header has ','"},
        {"label", "Label", "line 1, column 1 (label): 'L' where the header has 'l'"},
        {",pixel9,", ",pixel9 ,", "line 1, column 69 (pixel9): ' ' where the header has ','"},
        {"label,", "\"label\",", "line 1, column 1 (label): '\"' where the header has 'l'"},
        {",pixel700,", ",Pixel700,", "line 1, column 6190 (pixel700): 'P' where the header has 'p'"},
        {",pixel5,", ",pixel5\xff,", "line 1, column 41 (pixel5): '\\xff' where the header has ','"},
    };
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
        char line[9000];
        header(line, "");
        char *at = strstr(line, near[i].from);
        p = text + sprintf(text, "%.*s", (int)(at - line), line);
        if (near[i].to) p += sprintf(p, "%s%s", near[i].to, at + strlen(near[i].from));
        p = row(p + sprintf(p, "\r\n"), "1", 784, 0, NULL, 0, "\n");
        rc = load("near_header.csv", p, &imgs, &err);
        CHECK_ERR(rc, err, tu_path("near_header.csv"), near[i].expect);
        CHECK_MSG(strstr(err.msg, "label,pixel1,...,pixel784 exactly, or a data row"), "%s",
                  err.msg);
    }

    p = header(text, "\n");
    p = row(p, "1", 784, 0, NULL, 0, "\n");
    p = row(p, "1", 783, 0, NULL, 0, "\n");
    rc = load("few.csv", p, &imgs, &err);
    CHECK_ERR(rc, err, tu_path("few.csv"), "line 3: 784 columns, expected 785");
    CHECK(!strstr(err.msg, "middle"));

    p = row(text, "1", 784, 0, NULL, 0, "\n");
    p = row(p, "1", 785, 0, NULL, 0, "\n");
    rc = load("many.csv", p, &imgs, &err);
    CHECK_ERR(rc, err, tu_path("many.csv"), "line 2: 786 columns, expected 785");

    p = row(text, "1", 784, 0, NULL, 0, "\n");
    p = row(p, "1", 784, 0, NULL, 0, ",\n"); /* trailing comma */
    rc = load("trailing_comma.csv", p, &imgs, &err);
    CHECK_ERR(rc, err, tu_path("trailing_comma.csv"), "line 2: 786 columns");

    /* The file stops in the middle of its last row, without a newline. */
    p = header(text, "\n");
    p = row(p, "1", 784, 0, NULL, 0, "\n");
    p = row(p, "1", 400, 0, NULL, 0, "");
    rc = load("truncated.csv", p, &imgs, &err);
    CHECK_ERR(rc, err, tu_path("truncated.csv"), "line 3: 401 columns, expected 785 (the file ends in the middle");

    p = header(text, "\n");
    p = row(p, "1", 784, 0, NULL, 0, "\n\n");
    p = row(p, "1", 784, 0, NULL, 0, "\n");
    rc = load("blank.csv", p, &imgs, &err);
    CHECK_ERR(rc, err, tu_path("blank.csv"), "line 3: blank line");

    /* Only a byte order mark, no newline: the first-line check must not look
     * at the byte after it (found by review while fuzzing; uninitialised). */
    memcpy(text, "\xef\xbb\xbf", 3);
    rc = load("bom_only.csv", text + 3, &imgs, &err);
    CHECK_ERR(rc, err, tu_path("bom_only.csv"), "line 1, column 1 (label): empty field");

    /* Binary garbage: a PNG signature, then pseudo-random bytes. */
    unsigned x = 12345;
    memcpy(text, "\x89PNG\r\n\x1a\n", 8);
    for (int i = 8; i < 5000; i++) text[i] = (char)((x = x * 1103515245u + 12345u) >> 24);
    rc = load("garbage.csv", text + 5000, &imgs, &err);
    CHECK_ERR(rc, err, tu_path("garbage.csv"), "line 1, column 1 (label): '\\x89PNG' is not a label");

    /* No newline within the 1 MiB read block: not a CSV of images. */
    char *big = malloc((1 << 20) + 10);
    memset(big, '1', (1 << 20) + 10);
    tu_write(tu_path("long.csv"), big, (1 << 20) + 10);
    free(big);
    rc = fm_data_load_csv(tu_path("long.csv"), &imgs, &err);
    CHECK_ERR(rc, err, tu_path("long.csv"), "line 1: longer than");
}

/* Many rows, so the parser crosses its 1 MiB read blocks mid-line, and the
 * writer's exact output: header, "\n" line ends, no trailing spaces. */
static void write_and_reload(void) {
    fm_images train, test, back;
    fm_err err;
    tu_make_set(&train, 1500, 1);
    tu_make_set(&test, 7, 2);
    const char *dir = tu_path("written");
    int rc = fm_data_write(dir, FM_FORMAT_CSV, &train, &test, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    fm_data_format format = FM_FORMAT_IDX;
    rc = fm_data_detect(dir, &format, &err);
    CHECK_MSG(rc == 0 && format == FM_FORMAT_CSV, "%s", err.msg);
    rc = fm_data_load(dir, FM_SET_TRAIN, &back, &err);
    CHECK_MSG(rc == 0 && tu_same_set(&train, &back), "%s", err.msg);
    fm_images_free(&back);
    rc = fm_data_load(dir, FM_SET_TEST, &back, &err);
    CHECK_MSG(rc == 0 && tu_same_set(&test, &back), "%s", err.msg);
    fm_images_free(&back);

    size_t n;
    unsigned char *bytes = tu_read(tu_path("written/fashion-mnist_test.csv"), &n);
    char *expect = header(text, "\n");
    for (size_t i = 0; i < test.count; i++) {
        expect += sprintf(expect, "%d", test.labels[i]);
        for (int j = 0; j < FM_IMAGE_PIXELS; j++)
            expect += sprintf(expect, ",%d", test.pixels[i * FM_IMAGE_PIXELS + j]);
        *expect++ = '\n';
    }
    CHECK(bytes && n == (size_t)(expect - text) && !memcmp(bytes, text, n));
    free(bytes);
    CHECK(access(tu_path("written/fashion-mnist_test.csv.tmp"), F_OK) != 0);

    /* Labels outside 0..9 are refused rather than written. */
    train.labels[5] = 10;
    rc = fm_data_write(tu_path("refused"), FM_FORMAT_CSV, &train, &test, &err);
    CHECK_ERR(rc, err, "train image 5 has label 10", NULL);
    fm_images_free(&train);
    fm_images_free(&test);
}

/* From a pipe there is no size to reserve by: rows are taken as they come,
 * growing the buffers (past the first 1024 rows here). */
static void from_pipe(void) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        FILE *f = fdopen(fds[1], "wb");
        for (int i = 0; i < 1100; i++) {
            char *p = row(text, i % 3 ? "4" : "6", 784, 0, NULL, i, "\n");
            fwrite(text, 1, (size_t)(p - text), f);
        }
        fclose(f);
        _exit(0);
    }
    close(fds[1]);
    char path[64];
    snprintf(path, sizeof path, "/dev/fd/%d", fds[0]);
    fm_images imgs;
    fm_err err;
    int rc = fm_data_load_csv(path, &imgs, &err);
    CHECK_MSG(rc == 0 && imgs.count == 1100, "%s", err.msg);
    int bad = 0;
    for (size_t i = 0; rc == 0 && i < imgs.count; i++) {
        bad += imgs.labels[i] != (i % 3 ? 4 : 6);
        bad += imgs.pixels[i * FM_IMAGE_PIXELS + 100] != (100 * 7 + (int)i) % 256;
    }
    CHECK(bad == 0);
    fm_images_free(&imgs);
    close(fds[0]);
    waitpid(pid, NULL, 0);
}

/* ./DATA wins when it holds both CSVs; then the Debian folder; else an error
 * saying how to get the data. Changes the working folder, so it runs last. */
static void default_dir(void) {
    fm_err err;
    const char *dir = tu_path("cwd_with_data");
    mkdir(dir, 0777);
    CHECK(chdir(dir) == 0);
    mkdir("DATA", 0777);
    char *p = row(text, "1", 784, 0, NULL, 0, "\n");
    tu_write("DATA/fashion-mnist_train.csv", text, (size_t)(p - text));
    const char *got = fm_data_default_dir(&err);
    struct stat st;
    int debian = stat(FM_DEBIAN_DATA_DIR, &st) == 0 && S_ISDIR(st.st_mode);
    /* Half the CSVs are not enough. */
    if (debian) CHECK(got && !strcmp(got, FM_DEBIAN_DATA_DIR));
    else CHECK_ERR(got ? 0 : -1, err, "sudo apt-get install dataset-fashion-mnist", "./DATA");
    tu_write("DATA/fashion-mnist_test.csv", text, (size_t)(p - text));
    got = fm_data_default_dir(&err);
    CHECK(got && !strcmp(got, "./DATA"));
    fm_images imgs;
    int rc = fm_data_load(got, FM_SET_TEST, &imgs, &err);
    CHECK_MSG(rc == 0 && imgs.count == 1, "%s", err.msg);
    fm_images_free(&imgs);
}

int main(void) {
    tu_init("test_csv");
    good();
    bad_fields();
    bad_files();
    write_and_reload();
    from_pipe();
    default_dir();
    return check_finish();
}
