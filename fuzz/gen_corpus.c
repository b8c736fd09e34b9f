/* Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/):
 * small valid files of every kind the readers accept, written through the
 * library's own writers where it has them, plus a few near misses. The
 * committed corpus was made with it; rerun it after a format change:
 *
 *   build-fuzz/fuzz_gen_corpus fuzz/corpus configs
 *
 * Inputs that once crashed a target live next to these seeds, named
 * crash-<what>; this program leaves them alone. */
#define _GNU_SOURCE /* fopencookie */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data.h"
#include "model/model.h"
#include "model/safetensors.h"

static char out_dir[2048];

static void die(const char *what, const char *why) {
    fprintf(stderr, "gen_corpus: %s: %s\n", what, why);
    exit(1);
}

static const char *path_of(const char *target, const char *name) {
    static char buf[2][4096];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", out_dir, target);
    if (mkdir(buf[k], 0755) && errno != EEXIST) die(buf[k], strerror(errno));
    snprintf(buf[k], sizeof buf[k], "%s/%s/%s", out_dir, target, name);
    return buf[k];
}

static void spit(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f)) die(path, "cannot write");
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) die(path, strerror(errno));
    static unsigned char buf[1 << 20];
    *n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    unsigned char *b = malloc(*n + 1);
    memcpy(b, buf, *n);
    return b;
}

/* fuzz_idx inputs: a flags byte, then the file. */
static void idx_seed(const char *name, unsigned flags, const void *data, size_t n) {
    unsigned char *b = malloc(n + 1);
    b[0] = (unsigned char)flags;
    memcpy(b + 1, data, n);
    spit(path_of("idx", name), b, n + 1);
    free(b);
}

static void gen_data(void) {
    fm_images imgs;
    fm_err err;
    if (fm_images_alloc(&imgs, 2, &err)) die("alloc", err.msg);
    for (int i = 0; i < 2 * FM_IMAGE_PIXELS; i++) /* mostly 0, some 1-3 digit values */
        imgs.pixels[i] = (uint8_t)(i % 5 == 0 ? (i * 37) % 256 : 0);
    imgs.labels[0] = 9;
    imgs.labels[1] = 0;

    /* CSV: the writer's own form (header + 2 rows), then hand-made variants
     * of one row (no header, CRLF, BOM, blank tail, no final newline). */
    const char *tmp = path_of("csv", "tmp");
    if (fm__csv_write(tmp, &imgs, &err)) die("csv", err.msg);
    size_t n;
    unsigned char *csv = slurp(tmp, &n);
    remove(tmp);
    spit(path_of("csv", "header-2rows.csv"), csv, n);
    free(csv);
    char row[4096];
    size_t r = (size_t)snprintf(row, sizeof row, "%u", imgs.labels[0]);
    for (int j = 0; j < FM_IMAGE_PIXELS; j++)
        r += (size_t)snprintf(row + r, sizeof row - r, ",%u", imgs.pixels[j]);
    char buf[16384];
    snprintf(buf, sizeof buf, "%s\n", row);
    spit(path_of("csv", "row.csv"), buf, strlen(buf));
    snprintf(buf, sizeof buf, "%s\r\n%s\r\n", row, row);
    spit(path_of("csv", "crlf.csv"), buf, strlen(buf));
    snprintf(buf, sizeof buf, "\xef\xbb\xbf%s\n\n\n", row);
    spit(path_of("csv", "bom-blank-tail.csv"), buf, strlen(buf));
    spit(path_of("csv", "no-final-newline.csv"), row, r);
    /* near misses: a short row, a pixel out of range, a blank line inside */
    snprintf(buf, sizeof buf, "%s\n1,2,3\n", row);
    spit(path_of("csv", "short-row.csv"), buf, strlen(buf));
    snprintf(buf, sizeof buf, "%.*s,256\n", (int)(r - 2), row);
    spit(path_of("csv", "out-of-range.csv"), buf, strlen(buf));
    snprintf(buf, sizeof buf, "%s\n\n%s\n", row, row);
    spit(path_of("csv", "blank-inside.csv"), buf, strlen(buf));
    spit(path_of("csv", "bom-only.csv"), "\xef\xbb\xbf", 3); /* once read past the line */

    /* IDX: plain files as the harness gets them, then the writer's gzip files. */
    unsigned char ih[16 + 2 * FM_IMAGE_PIXELS] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28};
    memcpy(ih + 16, imgs.pixels, 2 * FM_IMAGE_PIXELS);
    unsigned char lh[10] = {0, 0, 8, 1, 0, 0, 0, 2, 9, 0};
    idx_seed("images-plain", 0x00, ih, sizeof ih);
    idx_seed("labels-plain", 0x01, lh, sizeof lh);
    idx_seed("images-harness-gz", 0x02, ih, sizeof ih);
    idx_seed("labels-harness-gz-both", 0x0f, lh, sizeof lh);
    idx_seed("images-companion-gz", 0x04, ih, sizeof ih);
    unsigned char bad[10] = {0, 0, 8, 1, 0, 0, 0, 2, 3, 10}; /* label 10 */
    idx_seed("labels-out-of-range", 0x01, bad, sizeof bad);
    unsigned char big[16] = {0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 28, 0, 0, 0, 28};
    idx_seed("images-huge-count", 0x00, big, sizeof big);
    char ip[4096], lp[4096];
    snprintf(ip, sizeof ip, "%s", path_of("idx", "tmp-images.gz"));
    snprintf(lp, sizeof lp, "%s", path_of("idx", "tmp-labels.gz"));
    if (fm__idx_write(ip, lp, &imgs, &err)) die("idx", err.msg);
    unsigned char *gz = slurp(ip, &n);
    idx_seed("images-gz", 0x00, gz, n);
    free(gz);
    gz = slurp(lp, &n);
    idx_seed("labels-gz", 0x01, gz, n);
    free(gz);
    remove(ip);
    remove(lp);
    fm_images_free(&imgs);
}

static const char *const tiny_cfgs[][2] = {
    {"tiny.cfg", "input 8 8 1\n"
                 "conv filters=2 kernel=3 padding=same activation=relu\n"
                 "batchnorm\n"
                 "maxpool 2\n"
                 "dropout 0.25\n"
                 "flatten\n"
                 "dense units=3 activation=softmax\n"},
    {"every-key.cfg", "# every layer and key\r\n"
                      "input 9 7 2   # H W C\r\n"
                      "conv filters=3 kernel=2 stride=2 padding=valid activation=linear\r\n"
                      "batchnorm momentum=0.9 eps=1e-5\r\n"
                      "relu\r\n"
                      "maxpool size=1\r\n"
                      "dropout rate=0.5\r\n"
                      "flatten\r\n"
                      "dense units=4 activation=relu\r\n"
                      "dense units=2\r\n"
                      "softmax\r\n"},
    {"bad-shape.cfg", "input 4 4 1\nconv filters=2 kernel=5\nflatten\ndense units=2 "
                      "activation=softmax\n"},
};

static void gen_models(const char *configs) {
    size_t n;
    for (size_t i = 0; i < sizeof tiny_cfgs / sizeof tiny_cfgs[0]; i++)
        spit(path_of("cfg", tiny_cfgs[i][0]), tiny_cfgs[i][1], strlen(tiny_cfgs[i][1]));
    const char *shipped[] = {"fashion-cnn.cfg", "fashion-cnn-readme.cfg"};
    for (int i = 0; i < 2; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", configs, shipped[i]);
        unsigned char *t = slurp(p, &n);
        spit(path_of("cfg", shipped[i]), t, n);
        free(t);
    }

    /* Models: the two tiny valid descriptions, saved after a seeded init (the
     * second with a training split and flip test-time augmentation recorded). */
    fm_err err;
    for (int i = 0; i < 2; i++) {
        fm_model *m = fm_model_parse(tiny_cfgs[i][1], tiny_cfgs[i][0], &err);
        if (!m) die(tiny_cfgs[i][0], err.msg);
        fm_rng rng;
        fm_rng_seed(&rng, 7);
        fm_model_init(m, &rng);
        char name[64];
        if (i == 1) { /* a trained model's file also records its split, maybe TTA */
            m->tta = FM_TTA_FLIP;
            m->has_split = 1;
            m->split_seed = 7;
            m->split_val = 0.2;
            m->split_limit = 1000;
        }
        snprintf(name, sizeof name, "%.20s.safetensors", tiny_cfgs[i][0]);
        if (fm_model_save(m, path_of("model", name), &err)) die(name, err.msg);
        fm_model_free(m);
    }
    /* An int8 model (quantization needs 28x28 images into 10 classes), with a
     * BatchNorm folded into the conv after it. */
    {
        static const char int8_cfg[] = "input 28 28 1\n"
                                       "conv filters=2 kernel=3 padding=same activation=relu\n"
                                       "batchnorm\n"
                                       "conv filters=2 kernel=3 stride=2\n"
                                       "flatten\n"
                                       "dense units=10 activation=softmax\n";
        fm_model *m = fm_model_parse(int8_cfg, "int8", &err);
        if (!m) die("int8", err.msg);
        fm_rng rng;
        fm_rng_seed(&rng, 7);
        fm_model_init(m, &rng);
        fm_images calib;
        if (fm_images_alloc(&calib, 4, &err)) die("alloc", err.msg);
        for (int i = 0; i < 4 * FM_IMAGE_PIXELS; i++) calib.pixels[i] = (uint8_t)(i * 7919 % 256);
        fm_quantize_params q = fm_quantize_default_params();
        if (fm_model_quantize(m, &calib, &q, &err) ||
            fm_model_save(m, path_of("model", "int8.safetensors"), &err))
            die("int8", err.msg);
        fm_images_free(&calib);
        fm_model_free(m);
    }
    /* A checkpoint-like file: the tiny model plus a foreign "train." tensor. */
    fm__st_file f;
    if (fm__st_read(&f, path_of("model", "tiny.cfg.safetensors"), &err)) die("read", err.msg);
    fm__st_entry e[32];
    size_t k = 0;
    for (; k < f.n_tensors && k < 31; k++) {
        const fm__st_tensor *t = &f.tensors[k];
        e[k] = (fm__st_entry){t->name, t->dtype, t->ndim, {0}, t->data};
        memcpy(e[k].shape, t->shape, sizeof t->shape);
    }
    const int64_t step = 12;
    e[k++] = (fm__st_entry){"train.step", FM__ST_I64, 0, {0}, &step};
    fm__st_kv meta[8];
    for (size_t j = 0; j < f.n_meta && j < 8; j++)
        meta[j] = (fm__st_kv){f.meta_keys[j], f.meta_values[j]};
    if (fm__st_write(path_of("model", "checkpoint.safetensors"), e, k, meta,
                     f.n_meta < 8 ? f.n_meta : 8, &err))
        die("checkpoint", err.msg);
    fm__st_close(&f);

    /* Thousands of member names, the last a duplicate (a 1 MiB header of these
     * once took 21 s to reject: the duplicate check was quadratic). */
    static char hdr[32768];
    size_t at = 8;
    at += (size_t)sprintf(hdr + at, "{");
    int i = 0;
    while (at < sizeof hdr - 64) at += (size_t)sprintf(hdr + at, "\"%x\":0,", i++);
    at += (size_t)sprintf(hdr + at, "\"%x\":0}", i - 1);
    for (int b = 0; b < 8; b++) hdr[b] = (char)((uint64_t)(at - 8) >> (8 * b));
    spit(path_of("model", "many-keys.safetensors"), hdr, at);
}

static volatile sig_atomic_t stop_training;

/* The progress stream of the second seed run: the line that ends an epoch
 * (it carries val_loss) raises the interrupt flag. */
static ssize_t stop_after_epoch(void *cookie, const char *buf, size_t n) {
    (void)cookie;
    for (size_t i = 0; i + 8 <= n; i++)
        if (!memcmp(buf + i, "val_loss", 8)) stop_training = 1;
    return (ssize_t)n;
}

/* fuzz_checkpoint inputs: real checkpoints of a small network trained on 24
 * synthetic images in batches of 8, stopped by the interrupt flag: one after
 * its first step, one at the end of epoch 1 (a log line, the callbacks'
 * state after an epoch). */
static void gen_checkpoints(void) {
    static const char *const cfg = "input 28 28 1\n"
                                   "conv filters=1 kernel=3 padding=same activation=relu\n"
                                   "batchnorm\n"
                                   "maxpool 4\n"
                                   "dropout 0.25\n"
                                   "flatten\n"
                                   "dense units=10 activation=softmax\n";
    fm_images train, val;
    fm_err err;
    if (fm_images_alloc(&train, 24, &err) || fm_images_alloc(&val, 8, &err)) die("images", err.msg);
    for (size_t i = 0; i < 32; i++) {
        fm_images *set = i < 24 ? &train : &val;
        size_t k = i < 24 ? i : i - 24;
        set->labels[k] = (uint8_t)(i % 10);
        for (int j = 0; j < FM_IMAGE_PIXELS; j++)
            set->pixels[k * FM_IMAGE_PIXELS + (size_t)j] = (uint8_t)((i * 31 + (size_t)j * 7) % 256);
    }
    char dir[] = "/tmp/fmnist-gen-corpus-XXXXXX";
    if (!mkdtemp(dir)) die("mkdtemp", strerror(errno));
    static const char *const names[] = {"first-step.safetensors", "epoch-end.safetensors"};
    for (size_t r = 0; r < 2; r++) {
        stop_training = r == 0;
        FILE *progress = NULL;
        if (r == 1) {
            progress = fopencookie(NULL, "w", (cookie_io_functions_t){.write = stop_after_epoch});
            if (!progress) die("fopencookie", strerror(errno));
            setvbuf(progress, NULL, _IONBF, 0);
        }
        fm_model *m = fm_model_parse(cfg, "checkpoint-seed", &err);
        if (!m) die("checkpoint model", err.msg);
        fm_train_params p = fm_train_default_params();
        p.epochs = 3;
        p.batch = 8;
        p.threads = 1;
        p.out_dir = dir;
        p.progress = progress;
        p.interrupt = &stop_training;
        p.model_source = "checkpoint-seed";
        p.data_dir = "synthetic";
        p.data_format = "idx";
        fm_train_result res;
        if (fm_train(m, &train, &val, &p, &res, &err) == 0 || !res.interrupted)
            die("checkpoint run", err.msg);
        if (progress) fclose(progress);
        char ckpt[64];
        snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
        size_t n;
        unsigned char *b = slurp(ckpt, &n);
        spit(path_of("checkpoint", names[r]), b, n);
        free(b);
        static const char *const written[] = {"checkpoint.safetensors", "log.csv", "run.json",
                                              "model.safetensors", "best.safetensors"};
        for (size_t i = 0; i < sizeof written / sizeof written[0]; i++) {
            snprintf(ckpt, sizeof ckpt, "%s/%s", dir, written[i]);
            remove(ckpt);
        }
        fm_model_free(m);
    }
    if (rmdir(dir)) die(dir, strerror(errno));
    fm_images_free(&train);
    fm_images_free(&val);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s CORPUS_DIR CONFIGS_DIR\n", argv[0]);
        return 2;
    }
    snprintf(out_dir, sizeof out_dir, "%s", argv[1]);
    if (mkdir(out_dir, 0755) && errno != EEXIST) die(out_dir, strerror(errno));
    gen_data();
    gen_models(argv[2]);
    gen_checkpoints();
    return 0;
}
