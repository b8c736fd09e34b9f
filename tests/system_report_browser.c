/* End to end: `fmnist report` on a run folder built here, rendered by
 * headless Chromium to a screenshot, which must show a real page: the
 * expected size, mostly non-background pixels of many colours, the curve and
 * heat-map colours present, and no console errors. Skips (77) without
 * /usr/bin/chromium; the CLI checks before that still count. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fmnist/fmnist.h"

#define CHROMIUM "/usr/bin/chromium"
#define SHOT_W 1280
#define SHOT_H 2400
#define BROWSER_TIMEOUT_S 60

static char root[1024];

static void die(const char *what, const char *msg) {
    fprintf(stderr, "%s: %s\n", what, msg);
    exit(1);
}

static void make_dir(const char *path) {
    if (mkdir(path, 0755) && errno != EEXIST) die(path, strerror(errno));
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) die(path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

/* Runs argv with stdout+stderr into log_path; kills its process group after
 * timeout_s. Returns the exit status, or -1 on timeout or failure to start. */
static int run_logged(char *const argv[], const char *log_path, int timeout_s) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    setpgid(pid, pid);
    struct timespec nap = {0, 100 * 1000 * 1000};
    for (int waited = 0; waited < timeout_s * 10; waited++) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (r < 0) return -1;
        nanosleep(&nap, NULL);
    }
    /* the browser and every helper it started */
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fprintf(stderr, "%s did not finish within %d s: killed\n", argv[0], timeout_s);
    return -1;
}

/* Test images: the first 500 of the real test set when installed (so the
 * page looks like a real one), else patterned synthetic images. */
static void make_data(const char *dir) {
    fm_err err;
    fm_images real = {0}, imgs;
    int have_real = fm_data_load(FM_DEBIAN_DATA_DIR, FM_SET_TEST, &real, &err) == 0;
    if (fm_images_alloc(&imgs, 500, &err)) die("images", err.msg);
    for (size_t i = 0; i < imgs.count; i++) {
        if (have_real && i < real.count) {
            memcpy(imgs.pixels + i * FM_IMAGE_PIXELS, real.pixels + i * FM_IMAGE_PIXELS,
                   FM_IMAGE_PIXELS);
            imgs.labels[i] = real.labels[i];
            continue;
        }
        imgs.labels[i] = (uint8_t)(i % FM_NUM_CLASSES);
        for (int p = 0; p < FM_IMAGE_PIXELS; p++) {
            int r = p / FM_IMAGE_COLS, c = p % FM_IMAGE_COLS;
            int inside = abs(r - 14) < 4 + (int)imgs.labels[i] && abs(c - 14) < 12 - (int)imgs.labels[i];
            imgs.pixels[i * FM_IMAGE_PIXELS + p] = (uint8_t)(inside ? 120 + (p * 13 + i) % 120 : 0);
        }
    }
    make_dir(dir);
    if (fm_data_write(dir, FM_FORMAT_IDX, &imgs, &imgs, &err)) die(dir, err.msg);
    fm_images_free(&imgs);
    fm_images_free(&real);
}

/* A run folder as `fmnist train` leaves it: 30 epochs with two learning-rate
 * reductions, run.json, and a small model (random weights: the page does not
 * care how good it is). */
static void make_run(const char *dir) {
    char path[1200];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/log.csv", dir);
    FILE *f = fopen(path, "w");
    if (!f) die(path, strerror(errno));
    fputs("epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds\n", f);
    for (int e = 1; e <= 30; e++) {
        double lr = e <= 12 ? 1e-3 : e <= 24 ? 5e-4 : 2.5e-4;
        double loss = 0.25 + 0.5 / e, vloss = 0.24 + 0.3 / e + (e > 18 ? 0.002 * (e - 18) : 0);
        fprintf(f, "%d,%.4f,%.4f,%.4f,%.4f,%g,%.1f\n", e, loss, 1 - loss / 3, vloss,
                0.96 - vloss / 3.5, lr, 40.0 + e % 3);
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/run.json", dir);
    write_text(path, "{\n  \"config\": {\"model\": \"tiny.cfg\", \"seed\": 42, \"batch\": 64, "
                     "\"lr\": 0.001, \"epochs_max\": 100, \"augment\": true},\n  \"results\": "
                     "{\"epochs_run\": 30, \"best_epoch\": 20, \"restored_epoch\": 18, "
                     "\"stopped_early\": true, \"train_seconds\": 1230}\n}\n");

    fm_err err;
    fm_model *m = fm_model_parse("input 28 28 1\n"
                                 "conv filters=4 kernel=3 padding=same activation=relu\n"
                                 "maxpool 2\nflatten\ndense units=10 activation=softmax\n",
                                 "tiny.cfg", &err);
    if (!m) die("model", err.msg);
    fm_rng rng;
    fm_rng_seed(&rng, 3);
    fm_model_init(m, &rng);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (fm_model_save(m, path, &err)) die(path, err.msg);
    fm_model_free(m);
}

/* The CLI around the library call: usage errors, a failing run folder, then
 * the page itself. Returns the report's path in out. */
static void check_cli(const char *bin, const char *run, const char *data, char *out) {
    char log[1100], bad[1100];
    snprintf(log, sizeof log, "%s/cli.log", root);
    char *no_run[] = {(char *)bin, "report", NULL};
    CHECK(run_logged(no_run, log, 30) == 2);
    char *text = read_text(log);
    CHECK(text && strstr(text, "--run is required"));
    free(text);

    snprintf(bad, sizeof bad, "%s/missing-run", root);
    char *missing[] = {(char *)bin, "report", "--run", bad, "--data", (char *)data, NULL};
    CHECK(run_logged(missing, log, 30) == 1);
    text = read_text(log);
    CHECK(text && strstr(text, "missing-run: no such run folder"));
    free(text);

    snprintf(out, 1200, "%s/report.html", run);
    remove(out);
    char *ok[] = {(char *)bin, "report", "--run", (char *)run, "--data", (char *)data, NULL};
    CHECK(run_logged(ok, log, 120) == 0);
    text = read_text(log);
    CHECK(text && strstr(text, "wrote ") && strstr(text, "report.html"));
    free(text);
    struct stat st;
    CHECK(stat(out, &st) == 0 && st.st_size > 10000);
}

/* Loads an RGB screenshot; NULL if unreadable. */
static uint8_t *load_png(const char *path, unsigned *w, unsigned *h) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) return NULL;
    img.format = PNG_FORMAT_RGB;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(img));
    if (!px || !png_image_finish_read(&img, NULL, px, 0, NULL)) {
        free(px);
        png_image_free(&img);
        return NULL;
    }
    *w = img.width;
    *h = img.height;
    return px;
}

static int near_color(const uint8_t *p, unsigned rgb, int tol) {
    return abs(p[0] - (int)(rgb >> 16)) <= tol && abs(p[1] - (int)((rgb >> 8) & 255)) <= tol &&
           abs(p[2] - (int)(rgb & 255)) <= tol;
}

static void check_screenshot(const char *png) {
    unsigned w = 0, h = 0;
    uint8_t *px = load_png(png, &w, &h);
    CHECK_MSG(px != NULL, "%s: not a readable PNG", png);
    if (!px) return;
    CHECK_MSG(w == SHOT_W && h == SHOT_H, "screenshot is %ux%u", w, h);

    /* a rendered page: little of it plain page background or white, many
     * colours (images, charts, text anti-aliasing) */
    size_t n = (size_t)w * h, background = 0, white = 0, val_curve = 0, heat_dark = 0;
    uint8_t *seen = calloc(1 << 15, 1);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = px + 3 * i;
        background += near_color(p, 0xf3f4f6, 2);
        white += near_color(p, 0xffffff, 2);
        /* Okabe-Ito vermillion in the learning-curve band at the top (the same
         * colour outlines misclassified images further down) */
        val_curve += i / w < 800 && near_color(p, 0xD55E00, 24);
        heat_dark += near_color(p, 0x08306b, 16);  /* darkest heat-map cells (the diagonal) */
        unsigned key = (unsigned)(p[0] >> 3) << 10 | (unsigned)(p[1] >> 3) << 5 | (p[2] >> 3);
        if (!seen[key]) seen[key] = 1, distinct++;
    }
    free(seen);
    free(px);
    fprintf(stderr, "screenshot: %zu colours (15-bit), background %.1f%%, white %.1f%%, "
                    "validation-curve pixels %zu, dark heat-map pixels %zu\n",
            distinct, 100.0 * background / n, 100.0 * white / n, val_curve, heat_dark);
    CHECK_MSG(distinct >= 200, "only %zu distinct colours: a blank or broken page", distinct);
    CHECK(background < n * 9 / 10 && white < n * 9 / 10);
    CHECK(background + white < n * 97 / 100);
    CHECK_MSG(val_curve >= 200, "validation curves not drawn (%zu pixels)", val_curve);
    CHECK_MSG(heat_dark >= 500, "confusion heat map not drawn (%zu pixels)", heat_dark);
}

int main(void) {
    const char *bin = getenv("FMNIST_BIN"), *tmp = getenv("FMNIST_TEST_TMP");
    if (!bin) SKIP("FMNIST_BIN is not set (run through ctest)");
    snprintf(root, sizeof root, "%s/report_browser", tmp ? tmp : "test-tmp");
    if (tmp) make_dir(tmp);
    make_dir(root);

    char run[1100], data[1100], out[1200];
    snprintf(run, sizeof run, "%s/run", root);
    snprintf(data, sizeof data, "%s/data", root);
    make_data(data);
    make_run(run);
    check_cli(bin, run, data, out);

    if (access(CHROMIUM, X_OK) != 0) {
        if (check__failed) return check_finish();
        SKIP("%s not found: install Debian's chromium package to render the report", CHROMIUM);
    }

    /* a fresh profile each time, so no state from earlier runs leaks in */
    char profile[1300], shot[1300], log[1300], url[PATH_MAX + 8], prof_arg[1400], shot_arg[1400];
    snprintf(profile, sizeof profile, "%s/profile-XXXXXX", root);
    if (!mkdtemp(profile)) die(profile, strerror(errno));
    snprintf(shot, sizeof shot, "%s/report.png", root);
    snprintf(log, sizeof log, "%s/chromium.log", root);
    char abs_out[PATH_MAX];
    if (!realpath(out, abs_out)) die(out, strerror(errno));
    snprintf(url, sizeof url, "file://%s", abs_out);
    snprintf(prof_arg, sizeof prof_arg, "--user-data-dir=%s", profile);
    snprintf(shot_arg, sizeof shot_arg, "--screenshot=%s", shot);
    remove(shot);
    char size_arg[64];
    snprintf(size_arg, sizeof size_arg, "--window-size=%d,%d", SHOT_W, SHOT_H);
    char *argv[] = {CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                    "--enable-logging=stderr", "--v=0", prof_arg, size_arg, shot_arg, url, NULL};
    int rc = run_logged(argv, log, BROWSER_TIMEOUT_S);
    CHECK_MSG(rc == 0, "chromium exited with %d (see %s)", rc, log);

    /* console messages are logged as "CONSOLE(line)"; a page without scripts
     * should produce none, and no resource may fail to load */
    char *text = read_text(log);
    CHECK(text != NULL);
    if (text) {
        CHECK_MSG(!strstr(text, "CONSOLE("), "console output in %s", log);
        CHECK_MSG(!strstr(text, "Uncaught"), "script error in %s", log);
        CHECK_MSG(!strstr(text, "net::ERR_"), "failed resource load in %s", log);
        CHECK_MSG(!strstr(text, "Not allowed to load"), "blocked resource in %s", log);
    }
    free(text);
    check_screenshot(shot);
    return check_finish();
}
