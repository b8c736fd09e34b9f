/* `fmnist export` end to end. Both shipped networks, with random kernels and
 * every bias and BatchNorm value (gamma, beta, moving mean and variance)
 * moved off its initial value so a misplaced tensor shows, are saved,
 * exported by the CLI, and checked by tests/onnx/check_onnx.py: onnx's full
 * checker, then OpenCV's DNN module on the Fashion-MNIST test images against
 * fm_model_predict (same classes, probabilities within 1e-4). The same for
 * copies of two of them with flip test-time augmentation, whose graphs hold
 * the mirror and the mean (fm_model_predict applying it too), and whose
 * `export --no-tta` is the plain model's export, byte for byte. Also the
 * CLI's failure modes. Skipped when python3-onnx, python3-opencv or the
 * data set are missing (after the checks that need none of them). */
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "layertest.h"
#include "model/model.h"

#define PYTHON "/usr/bin/python3"
#define TEST_IMAGES "t10k-images-idx3-ubyte.gz"

static const char *bin, *src_dir;
static char dir[3072]; /* scratch folder; room left for file names */

/* Runs a shell command; its exit status, or -1 when it did not exit. */
static int run(const char *fmt, ...) {
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int same_file(const char *a, const char *b) {
    return run("cmp -s '%s' '%s'", a, b) == 0;
}

/* Biases and BatchNorm values away from 0/1 (every tensor not drawn at
 * random), so each one matters. */
static void perturb(fm_model *m, fm_rng *rng) {
    for (int i = 0; i < m->n_layers; i++) {
        const fm__layer *l = &m->layers[i];
        for (int j = 0; j < l->type->n_tensors; j++) {
            fm__init init = l->type->tensors[j].init;
            if (init == FM__INIT_GLOROT) continue;
            for (size_t e = 0; e < l->t[j].len; e++)
                l->t[j].data[e] = init == FM__INIT_ONE ? 0.5f + (float)fm_rng_uniform(rng)
                                                       : 0.2f * ((float)fm_rng_uniform(rng) - 0.5f);
        }
    }
}

/* Random weights put nearly every image in one class, with near-equal
 * probabilities, which would make "the same classes" a weak check. So the
 * last dense is adjusted on the last 200 test images: its bias moves
 * by minus each class's mean log-probability, so the class an image gets
 * depends on the image, and kernel and bias are scaled so that the logits
 * spread by about 1 across images, so the winner leads clearly. */
static int spread_classes(fm_model *m, const fm_images *test) {
    enum { N = 200 };
    const fm__layer *l = &m->layers[m->n_layers - 1];
    const int k = m->classes;
    float *p = malloc((size_t)N * k * sizeof *p);
    double *mean = calloc((size_t)k, sizeof *mean);
    fm_err err = {"out of memory"};
    int rc = p && mean ? fm_model_predict(m, test, test->count - N, N, p, &err) : -1;
    CHECK_MSG(rc == 0 && lt_is(l, "dense"), "calibration: %s", err.msg);
    if (rc == 0 && lt_is(l, "dense")) {
        for (int i = 0; i < N * k; i++) mean[i % k] += log(fmax(p[i], 1e-30)) / N;
        double var = 0;
        for (int i = 0; i < N * k; i++)
            var += pow(log(fmax(p[i], 1e-30)) - mean[i % k], 2) / (N * k);
        float scale = (float)(1.0 / sqrt(var + 1e-12));
        for (int c = 0; c < k; c++)
            l->t[1].data[c] = scale * (l->t[1].data[c] - (float)mean[c]);
        for (size_t j = 0; j < l->t[0].len; j++) l->t[0].data[j] *= scale;
    }
    free(p);
    free(mean);
    return rc || !lt_is(l, "dense");
}

/* configs/NAME.cfg -> DIR/NAME.safetensors with perturbed weights (classes
 * spread over `test` when given), exported by the CLI to DIR/NAME.onnx;
 * 0 when all of that worked. */
static int make_model(const char *name, uint64_t seed, const fm_images *test) {
    char cfg[4096], weights[4096], onnx[4096];
    snprintf(cfg, sizeof cfg, "%s/configs/%s.cfg", src_dir, name);
    snprintf(weights, sizeof weights, "%s/%s.safetensors", dir, name);
    snprintf(onnx, sizeof onnx, "%s/%s.onnx", dir, name);
    fm_err err;
    fm_model *m = fm_model_load_cfg(cfg, &err);
    CHECK_MSG(m, "%s", err.msg);
    if (!m) return -1;
    fm_rng rng;
    fm_rng_seed(&rng, seed);
    fm_model_init(m, &rng);
    perturb(m, &rng);
    if (test && spread_classes(m, test)) {
        fm_model_free(m);
        return -1;
    }
    int rc = fm_model_save(m, weights, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    fm_model_free(m);
    if (rc) return -1;
    remove(onnx);
    rc = run("'%s' export --weights '%s' --onnx '%s' >/dev/null", bin, weights, onnx);
    CHECK_MSG(rc == 0, "export of %s exited %d", name, rc);
    return rc ? -1 : 0;
}

/* DIR/NAME.safetensors with flip test-time augmentation as
 * DIR/NAME-flip.safetensors, exported to DIR/NAME-flip.onnx; its export
 * with --no-tta is NAME's own. When test is given, TTA must move fmnist's
 * probabilities on its first images, so that an export without the mirror
 * could not pass the comparison with OpenCV. 0 when all of that worked. */
static int make_flip(const char *name, const fm_images *test) {
    char weights[4096], flip[4096], onnx[4096], off[4096], plain[4096];
    snprintf(weights, sizeof weights, "%s/%s.safetensors", dir, name);
    snprintf(flip, sizeof flip, "%s/%s-flip.safetensors", dir, name);
    snprintf(onnx, sizeof onnx, "%s/%s-flip.onnx", dir, name);
    snprintf(off, sizeof off, "%s/%s-flip-off.onnx", dir, name);
    snprintf(plain, sizeof plain, "%s/%s.onnx", dir, name);
    fm_err err;
    fm_model *m = fm_model_load(weights, &err);
    CHECK_MSG(m, "%s", err.msg);
    if (!m) return -1;
    int rc = fm_model_set_tta(m, FM_TTA_FLIP, &err) || fm_model_save(m, flip, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (test && rc == 0) {
        enum { N = 100 };
        float p[N * FM_NUM_CLASSES], q[N * FM_NUM_CLASSES];
        CHECK(fm_model_predict(m, test, 0, N, p, &err) == 0);
        CHECK(fm_model_set_tta(m, FM_TTA_NONE, &err) == 0);
        CHECK(fm_model_predict(m, test, 0, N, q, &err) == 0);
        double moved = 0;
        for (int i = 0; i < N * FM_NUM_CLASSES; i++) moved = fmax(moved, fabs(p[i] - q[i]));
        CHECK_MSG(moved > 1e-2, "%s: flip moves probabilities by %g only", name, moved);
    }
    fm_model_free(m);
    if (rc) return -1;
    remove(onnx);
    int a = run("'%s' export --weights '%s' --onnx '%s' >'%s/flip.txt'", bin, flip, onnx, dir);
    int b = run("'%s' export --weights '%s' --onnx '%s' --no-tta >/dev/null", bin, flip, off);
    CHECK_MSG(a == 0 && b == 0, "export of %s-flip exited %d, with --no-tta %d", name, a, b);
    CHECK(run("grep -q '^test-time augmentation: flip' '%s/flip.txt'", dir) == 0);
    CHECK_MSG(same_file(off, plain), "export --no-tta of %s-flip is not %s.onnx", name, name);
    return a || b ? -1 : 0;
}

/* Failure modes: usage errors exit 2, bad input exits 1 with a message
 * naming the file, and no output or temporary file is left behind. */
static void check_cli(const char *weights, const char *onnx) {
    char out[4096], msg[4096], cfg[4096];
    snprintf(out, sizeof out, "%s/failed.onnx", dir);
    snprintf(msg, sizeof msg, "%s/stderr.txt", dir);
    snprintf(cfg, sizeof cfg, "%s/configs/fashion-cnn.cfg", src_dir);
    remove(out);
    CHECK(run("'%s' export --onnx '%s' 2>/dev/null", bin, out) == 2);
    CHECK(run("'%s' export --weights '%s' --onnx 2>/dev/null", bin, weights) == 2);
    CHECK(run("'%s' export --weights '%s' --onnx '%s' --bogus 2>/dev/null", bin, weights, out) == 2);
    CHECK(run("'%s' export --help >/dev/null", bin) == 0);
    CHECK(run("'%s' export --weights '%s/missing.safetensors' --onnx '%s' 2>'%s'", bin, dir, out,
              msg) == 1);
    CHECK(run("grep -q '^fmnist: .*missing.safetensors' '%s'", msg) == 0);
    /* a model description is not a saved model */
    CHECK(run("'%s' export --weights '%s' --onnx '%s' 2>/dev/null", bin, cfg, out) == 1);
    CHECK(access(out, F_OK) != 0);
    CHECK(run("'%s' export --weights '%s' --onnx '%s/no-such-dir/x.onnx' 2>'%s'", bin, weights,
              dir, msg) == 1);
    CHECK(run("grep -q 'no-such-dir' '%s'", msg) == 0);
    /* an export replaces an existing file, with the same bytes every time */
    FILE *f = fopen(out, "wb");
    CHECK(f && fputs("old contents", f) >= 0 && fclose(f) == 0);
    CHECK(run("'%s' export --weights '%s' --onnx '%s' >/dev/null", bin, weights, out) == 0);
    CHECK(same_file(out, onnx));
    CHECK(run("ls '%s' | grep -q '\\.tmp'", dir) == 1);
}

/* fmnist's probabilities for the first `count` test images, written raw for
 * the script, which then compares them with OpenCV's. */
static void check_with_opencv(const char *name, const fm_images *test, size_t count,
                              const char *tta) {
    char weights[4096], onnx[4096], probs_path[4096];
    snprintf(weights, sizeof weights, "%s/%s.safetensors", dir, name);
    snprintf(onnx, sizeof onnx, "%s/%s.onnx", dir, name);
    snprintf(probs_path, sizeof probs_path, "%s/%s.probs.f32", dir, name);
    fm_err err;
    fm_model *m = fm_model_load(weights, &err);
    CHECK_MSG(m, "%s", err.msg);
    float *probs = malloc(count * FM_NUM_CLASSES * sizeof *probs);
    CHECK(probs);
    if (!m || !probs) {
        fm_model_free(m);
        free(probs);
        return;
    }
    int rc = fm_model_predict(m, test, 0, count, probs, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    FILE *f = fopen(probs_path, "wb");
    CHECK(f && fwrite(probs, sizeof *probs, count * FM_NUM_CLASSES, f) == count * FM_NUM_CLASSES);
    CHECK(f && fclose(f) == 0);
    fm_model_free(m);
    free(probs);
    if (rc) return;
    rc = run(PYTHON " '%s/tests/onnx/check_onnx.py' '%s' '%s' '%s' %zu %s", src_dir, onnx,
             probs_path, FM_DEBIAN_DATA_DIR, count, tta);
    CHECK_MSG(rc == 0, "check_onnx.py on %s exited %d", name, rc);
}

int main(void) {
    bin = getenv("FMNIST_BIN");
    src_dir = getenv("FMNIST_SOURCE_DIR");
    const char *tmp = getenv("FMNIST_TEST_TMP");
    if (!bin || !src_dir || !tmp) {
        fprintf(stderr, "needs FMNIST_BIN, FMNIST_SOURCE_DIR and FMNIST_TEST_TMP (run by ctest)\n");
        return 1;
    }
    snprintf(dir, sizeof dir, "%s/system_onnx", tmp);
    mkdir(tmp, 0777);
    mkdir(dir, 0777);
    /* The notebook variant runs on the whole test set; the README variant,
     * which adds only a BatchNorm after a dense, the pooling variant and the
     * two with flip on its first 2000 images to keep the test short.
     * FMNIST_ONNX_IMAGES=N sets both counts. */
    long count = 10000, readme_count = 2000;
    const char *env = getenv("FMNIST_ONNX_IMAGES");
    if (env) count = readme_count = strtol(env, NULL, 10);

    const char *missing = NULL;
    if (run(PYTHON " -c 'import onnx, cv2, numpy' 2>/dev/null") != 0)
        missing = PYTHON " with onnx and cv2 (apt-get install python3-onnx python3-opencv)";
    else if (access(FM_DEBIAN_DATA_DIR "/" TEST_IMAGES, R_OK) != 0)
        missing = FM_DEBIAN_DATA_DIR "/" TEST_IMAGES " (apt-get install dataset-fashion-mnist)";
    fm_images test = {0};
    fm_err err;
    if (!missing) {
        int rc = fm_data_load(FM_DEBIAN_DATA_DIR, FM_SET_TEST, &test, &err);
        CHECK_MSG(rc == 0, "%s", err.msg);
        CHECK_MSG(rc != 0 || (count >= 1 && (size_t)count <= test.count &&
                              (size_t)readme_count <= test.count),
                  "FMNIST_ONNX_IMAGES=%s: expected 1 to %zu", env, test.count);
        if (check__failed) return check_finish();
    }

    int ok = make_model("fashion-cnn", 1, missing ? NULL : &test) == 0;
    if (ok) {
        char weights[4096], onnx[4096];
        snprintf(weights, sizeof weights, "%s/fashion-cnn.safetensors", dir);
        snprintf(onnx, sizeof onnx, "%s/fashion-cnn.onnx", dir);
        check_cli(weights, onnx);
    }
    /* README variant: BatchNormalization on the (N, 256) dense output too */
    ok = make_model("fashion-cnn-readme", 2, missing ? NULL : &test) == 0 && ok;
    /* average pooling and a global average pool (AveragePool, GlobalAveragePool + Flatten) */
    ok = make_model("fashion-cnn-gap", 3, missing ? NULL : &test) == 0 && ok;
    /* flip test-time augmentation on the notebook network and the pooling one */
    ok = ok && make_flip("fashion-cnn", missing ? NULL : &test) == 0;
    ok = ok && make_flip("fashion-cnn-gap", missing ? NULL : &test) == 0;

    if (missing) {
        if (check__failed) return check_finish(); /* what did run failed: report that */
        SKIP("the ONNX check needs %s", missing);
    }
    if (ok) {
        check_with_opencv("fashion-cnn", &test, (size_t)count, "none");
        check_with_opencv("fashion-cnn-readme", &test, (size_t)readme_count, "none");
        check_with_opencv("fashion-cnn-gap", &test, (size_t)readme_count, "none");
        check_with_opencv("fashion-cnn-flip", &test, (size_t)readme_count, "flip");
        check_with_opencv("fashion-cnn-gap-flip", &test, (size_t)readme_count, "flip");
    }
    fm_images_free(&test);
    return check_finish();
}
