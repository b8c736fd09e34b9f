/* The ONNX export run in onnxruntime (npm's onnxruntime-node under Node.js,
 * tests/onnx/ort_run.js): a small network with a BatchNorm between two
 * convs and flip test-time augmentation, trained for a moment on a slice of
 * the real data, exported as fp32 and, after fmnist quantize, as int8 QDQ.
 * On 300 test images onnxruntime's probabilities match fmnist's: fp32 within
 * 1e-4 with the same classes; int8 within 5e-3 (onnxruntime sums the
 * dequantized values in float where fmnist sums the integers exactly, and a
 * different last bit can round an activation to the next byte), with the
 * same class wherever fmnist's two most likely classes are 0.01 apart.
 * Skipped when Node.js, onnxruntime-node (scripts/ort.sh installs it into
 * .ort/) or the data set are missing. */
#include <sys/stat.h>

#include "check.h"
#include "clitest.h"

#define N_IMAGES 300

static int contains(const unsigned char *b, size_t n, const char *s) {
    size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(b + i, s, k)) return 1;
    return 0;
}

static int shell(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* onnxruntime's probabilities for the images in `images`: 0 or the script's exit status. */
static int ort_run(const char *node_path, const char *src, const char *onnx, const char *images,
                   const char *out) {
    char cmd[20000];
    snprintf(cmd, sizeof cmd,
             "NODE_PATH='%s' node '%s/tests/onnx/ort_run.js' '%s' '%s' %d '%s' 1 >'%s' 2>&1",
             node_path, src, onnx, images, N_IMAGES, out, tu_path("ort.txt"));
    return shell(cmd);
}

/* fmnist's probabilities of x through the model file at path. */
static float *fmnist_probs(const char *path, const float *x) {
    fm_err err;
    fm_model *m = fm_model_load(path, &err);
    float *p = malloc(N_IMAGES * 10 * sizeof *p);
    CHECK_MSG(m && fm_model_classify_batch(m, NULL, x, FM_PIXELS_F32, N_IMAGES, p, NULL, &err) == 0,
              "%s", err.msg);
    fm_model_free(m);
    return p;
}

static float *read_probs(const char *path) {
    size_t n = 0;
    float *p = (float *)tu_read(path, &n);
    CHECK_MSG(p && n == N_IMAGES * 10 * sizeof(float), "%s: %zu bytes", path, n);
    return p && n == N_IMAGES * 10 * sizeof(float) ? p : NULL;
}

/* ort against fm: the largest difference, and the classes that differ
 * where fm's top two are more than `margin` apart. */
static void compare(const char *what, const float *fm, const float *ort, double tol,
                    double margin) {
    if (!fm || !ort) return;
    double worst = 0.0;
    int differ = 0, ties = 0;
    for (int i = 0; i < N_IMAGES; i++) {
        const float *a = fm + i * 10, *b = ort + i * 10;
        int ca = 0, cb = 0;
        for (int k = 0; k < 10; k++) {
            double d = fabs((double)a[k] - b[k]);
            worst = d > worst ? d : worst;
            if (a[k] > a[ca]) ca = k;
            if (b[k] > b[cb]) cb = k;
        }
        float second = -1.0f;
        for (int k = 0; k < 10; k++)
            if (k != ca && a[k] > second) second = a[k];
        if (ca != cb) {
            if (a[ca] - second > margin) differ++;
            else ties++;
        }
    }
    printf("%s: largest difference %.3g, %d classes differ (%d more at near-ties)\n", what, worst,
           differ, ties);
    CHECK_MSG(worst <= tol, "%s: largest probability difference %g > %g", what, worst, tol);
    CHECK_MSG(differ == 0, "%s: %d classes differ", what, differ);
}

int main(void) {
    const char *src = getenv("FMNIST_SOURCE_DIR"), *node_path = getenv("FMNIST_ORT_NODE_PATH");
    if (!getenv("FMNIST_BIN") || !src || !node_path)
        SKIP("FMNIST_BIN, FMNIST_SOURCE_DIR or FMNIST_ORT_NODE_PATH is not set");
    fm_err err;
    fm_images train, test;
    if (fm_data_load(FM_DEBIAN_DATA_DIR, FM_SET_TRAIN, &train, &err) < 0 ||
        fm_data_load(FM_DEBIAN_DATA_DIR, FM_SET_TEST, &test, &err) < 0)
        SKIP("no Fashion-MNIST in " FM_DEBIAN_DATA_DIR " (%s)", err.msg);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "NODE_PATH='%s' node -e \"require('onnxruntime-node')\" >/dev/null 2>&1",
             node_path);
    if (shell(cmd) != 0)
        SKIP("Node.js or onnxruntime-node is missing (NODE_PATH %s; scripts/ort.sh installs it)",
             node_path);
    tu_init("system_onnx_ort");

    char data[4200], run_dir[4200], weights[4300], int8[4300], args[16384];
    snprintf(data, sizeof data, "%s", tu_path("data"));
    snprintf(run_dir, sizeof run_dir, "%s", tu_path("run"));
    snprintf(weights, sizeof weights, "%s/model.safetensors", run_dir);
    snprintf(int8, sizeof int8, "%s/model.int8.safetensors", run_dir);
    int rc = tu_train_int8_net(&train, &test, 600, N_IMAGES, "--set tta=flip");
    snprintf(args, sizeof args, "quantize --weights '%s' --data '%s' --calibration-images 200 "
                                "--no-eval",
             weights, data);
    rc = tu_run(args);
    CHECK_MSG(rc == 0, "quantize: exit %d: %s", rc, tu_output("err.txt"));

    char fp32_onnx[4300], int8_onnx[4300];
    snprintf(fp32_onnx, sizeof fp32_onnx, "%s/fp32.onnx", run_dir);
    snprintf(int8_onnx, sizeof int8_onnx, "%s/int8.onnx", run_dir);
    snprintf(args, sizeof args, "export --weights '%s' --onnx '%s'", weights, fp32_onnx);
    CHECK(tu_run(args) == 0);
    snprintf(args, sizeof args, "export --weights '%s' --onnx '%s'", int8, int8_onnx);
    rc = tu_run(args);
    CHECK_MSG(rc == 0, "export int8: %s", tu_output("err.txt"));

    /* the int8 graph is QDQ, and its weights are the int8 ones: a quarter the size */
    size_t nf = 0, nq = 0;
    unsigned char *bq = tu_read(int8_onnx, &nq);
    free(tu_read(fp32_onnx, &nf));
    CHECK(bq && contains(bq, nq, "QuantizeLinear") && contains(bq, nq, "DequantizeLinear"));
    CHECK_MSG(nq * 3 < nf, "%zu vs %zu bytes", nq, nf);
    free(bq);

    float *x = malloc(N_IMAGES * FM_IMAGE_PIXELS * sizeof *x);
    for (size_t i = 0; i < N_IMAGES * FM_IMAGE_PIXELS; i++) x[i] = test.pixels[i] / 255.0f;
    char images[4300], out_fp32[4300], out_int8[4300];
    snprintf(images, sizeof images, "%s", tu_path("images.f32"));
    snprintf(out_fp32, sizeof out_fp32, "%s", tu_path("ort-fp32.f32"));
    snprintf(out_int8, sizeof out_int8, "%s", tu_path("ort-int8.f32"));
    tu_write(images, x, N_IMAGES * FM_IMAGE_PIXELS * sizeof *x);
    rc = ort_run(node_path, src, fp32_onnx, images, out_fp32);
    CHECK_MSG(rc == 0, "onnxruntime fp32: exit %d: %s", rc, tu_output("ort.txt"));
    rc = ort_run(node_path, src, int8_onnx, images, out_int8);
    CHECK_MSG(rc == 0, "onnxruntime int8: exit %d: %s", rc, tu_output("ort.txt"));

    float *fm_fp32 = fmnist_probs(weights, x), *fm_int8 = fmnist_probs(int8, x);
    float *ort_fp32 = read_probs(out_fp32), *ort_int8 = read_probs(out_int8);
    compare("fp32", fm_fp32, ort_fp32, 1e-4, 0.0);
    compare("int8", fm_int8, ort_int8, 5e-3, 0.01);
    free(x);
    free(fm_fp32);
    free(fm_int8);
    free(ort_fp32);
    free(ort_int8);
    return check_finish();
}
