/* fmnist quantize end to end: a small network with a BatchNorm between two
 * convs, trained for a moment on a slice of the real data, quantized; the
 * int8 file then runs in eval (whose accuracy is the one quantize printed),
 * predict and the report's verbs like any model file; bench --int8; and the
 * refusals: no --weights, an int8 input, an output over the input, a bad
 * count, a missing file. Its ONNX export is in system_onnx_ort. */
#include <sys/stat.h>

#include "check.h"
#include "clitest.h"
#include "core/json.h"

/* stderr is exactly one line starting "fmnist: " and holding `want` */
static int one_line_error(const char *want) {
    const char *e = tu_output("err.txt");
    const char *nl = strchr(e, '\n');
    return !strncmp(e, "fmnist: ", 8) && nl && nl[1] == 0 && strstr(e, want);
}

int main(void) {
    if (!getenv("FMNIST_BIN")) SKIP("FMNIST_BIN is not set");
    fm_err err;
    fm_images train, test;
    if (fm_data_load(FM_DEBIAN_DATA_DIR, FM_SET_TRAIN, &train, &err) < 0 ||
        fm_data_load(FM_DEBIAN_DATA_DIR, FM_SET_TEST, &test, &err) < 0)
        SKIP("no Fashion-MNIST in " FM_DEBIAN_DATA_DIR " (%s)", err.msg);
    tu_init("system_quantize");

    char data[4200], cfg[4200], run_dir[4200], weights[4300], int8[4300], args[16384];
    snprintf(data, sizeof data, "%s", tu_path("data"));
    snprintf(cfg, sizeof cfg, "%s", tu_path("small.cfg"));
    snprintf(run_dir, sizeof run_dir, "%s", tu_path("run"));
    snprintf(weights, sizeof weights, "%s/model.safetensors", run_dir);
    snprintf(int8, sizeof int8, "%s/model.int8.safetensors", run_dir);
    int rc = tu_train_int8_net(&train, &test, 600, 300, "");

    /* quantize: both accuracies and the file, at the default name */
    snprintf(args, sizeof args, "quantize --weights '%s' --data '%s' --calibration-images 100",
             weights, data);
    rc = tu_run(args);
    const char *out = tu_output("out.txt");
    CHECK_MSG(rc == 0, "quantize: exit %d: %s", rc, tu_output("err.txt"));
    CHECK_MSG(strstr(out, "calibration: 100 training images") && strstr(out, "  fp32 0.") &&
                  strstr(out, " points") && strstr(out, "(int8, "),
              "%s", out);
    double printed = -1;
    const char *at = strstr(out, "  int8 ");
    if (at) printed = strtod(at + 7, NULL);
    CHECK(tu_exists(run_dir, "model.int8.safetensors"));
    struct stat fs, qs;
    CHECK(stat(weights, &fs) == 0 && stat(int8, &qs) == 0 && qs.st_size * 3 < fs.st_size);

    /* eval runs the int8 file and says so; its accuracy is quantize's */
    snprintf(args, sizeof args, "eval --weights '%s' --data '%s' --json", int8, data);
    rc = tu_run(args);
    out = tu_output("out.txt");
    fm__json *j = fm__json_parse(out, strlen(out), 0, &err);
    const fm__json *prec = j ? fm__json_get(j, "precision") : NULL;
    const fm__json *acc = j ? fm__json_get(j, "accuracy") : NULL;
    CHECK_MSG(rc == 0 && prec && prec->type == FM__JSON_STRING && !strcmp(prec->string, "int8"),
              "%s", out);
    CHECK_MSG(acc && fabs(acc->number - printed) < 5e-5, "eval %g, quantize printed %g",
              acc ? acc->number : -1.0, printed);
    fm__json_free(j);
    snprintf(args, sizeof args, "eval --weights '%s' --data '%s'", int8, data);
    rc = tu_run(args);
    CHECK(rc == 0 && strstr(tu_output("out.txt"), "model:    int8\n"));
    snprintf(args, sizeof args, "eval --weights '%s' --data '%s'", weights, data);
    rc = tu_run(args);
    CHECK(rc == 0 && !strstr(tu_output("out.txt"), "model:"));

    /* predict classifies with it */
    char png[4200];
    snprintf(png, sizeof png, "%s", tu_path("test0.png"));
    CHECK_MSG(fm_image_save_png(png, test.pixels, 28, 28, &err) == 0, "%s", err.msg);
    snprintf(args, sizeof args, "predict --weights '%s' '%s'", int8, png);
    rc = tu_run(args);
    CHECK_MSG(rc == 0 && strstr(tu_output("out.txt"), "test0.png: "), "%s",
              tu_output("err.txt"));

    /* -o names the file */
    char other[4300];
    snprintf(other, sizeof other, "%s/other.safetensors", run_dir);
    snprintf(args, sizeof args, "quantize --weights '%s' --data '%s' -o '%s' --no-eval "
                                "--calibration-images 20",
             weights, data, other);
    rc = tu_run(args);
    CHECK(rc == 0 && tu_exists(run_dir, "other.safetensors") &&
          !strstr(tu_output("out.txt"), "fp32 0."));

    /* bench --int8 times the quantized network too */
    snprintf(args, sizeof args,
             "bench --model '%s' --steps 1 --warmup 0 --batch 4 --infer-batch 8 --int8", cfg);
    rc = tu_run(args);
    CHECK_MSG(rc == 0 && strstr(tu_output("out.txt"), "\ninfer_int8_img_per_s="), "%s%s",
              tu_output("out.txt"), tu_output("err.txt"));

    /* refusals, each one line */
    rc = tu_run("quantize");
    CHECK(rc == 2 && one_line_error("--weights FILE is required"));
    snprintf(args, sizeof args, "quantize --weights '%s' --data '%s'", int8, data);
    rc = tu_run(args);
    CHECK(rc == 1 && one_line_error("is an int8 model already"));
    snprintf(args, sizeof args, "quantize --weights '%s' -o '%s'", weights, weights);
    rc = tu_run(args);
    CHECK(rc == 2 && one_line_error("would overwrite the float model"));
    snprintf(args, sizeof args, "quantize --weights '%s' --calibration-images 0", weights);
    rc = tu_run(args);
    CHECK(rc == 2 && one_line_error("--calibration-images: 0 is out of range"));
    snprintf(args, sizeof args, "quantize --weights '%s/none.safetensors' --data '%s'", run_dir,
             data);
    rc = tu_run(args);
    CHECK(rc == 1 && one_line_error("none.safetensors"));

    return check_finish();
}
