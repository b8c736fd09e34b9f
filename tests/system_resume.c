/* Nothing lost: a run killed with SIGKILL part-way through an epoch, or
 * stopped with Ctrl-C (SIGINT) or SIGTERM, resumes from its checkpoint with
 * `fmnist train --resume` and ends with the weights and epoch log of a run
 * never stopped; a second Ctrl-C exits at once and still leaves a complete
 * checkpoint; resuming with the starting command line works, resuming with
 * other data, another model or another recipe, and starting afresh over an
 * unfinished run, are refused. Real data (the first
 * 1000 training images, augmentation and dropout on), the default network. */
#include "check.h"
#include "clitest.h"

#include <signal.h>

static const char *bin;

/* Starts `fmnist ARGS` (its output in NAME.out / NAME.err) and returns its pid. */
static pid_t start(const char *args, const char *name) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s", bin, args);
    return tu_start(cmd, name);
}

static int same_file(const char *a_dir, const char *b_dir, const char *name) {
    char path[4200];
    size_t na, nb;
    snprintf(path, sizeof path, "%s/%s", a_dir, name);
    unsigned char *a = tu_read(path, &na);
    snprintf(path, sizeof path, "%s/%s", b_dir, name);
    unsigned char *b = tu_read(path, &nb);
    int same = a && b && na == nb && !memcmp(a, b, na);
    free(a);
    free(b);
    return same;
}

/* The run in `dir` ended exactly as the reference run did. */
static void check_same_as_ref(const char *ref, const char *dir, const char *what) {
    char *a = tu_log_sans_time(ref), *b = tu_log_sans_time(dir);
    CHECK_MSG(!strcmp(a, b) && strstr(a, "\n3,"), "%s: logs differ:\n%s\n%s", what, a, b);
    free(a);
    free(b);
    CHECK_MSG(same_file(ref, dir, "model.safetensors"), "%s: model.safetensors differs", what);
    CHECK_MSG(same_file(ref, dir, "best.safetensors"), "%s: best.safetensors differs", what);
    CHECK_MSG(!tu_exists(dir, "checkpoint.safetensors"), "%s: checkpoint left after the end", what);
    CHECK_MSG(tu_exists(dir, "report.html") && tu_exists(dir, "run.json"), "%s: no report/run.json",
              what);
}

#define ARGS "train --epochs 3 --batch 20 --threads 2 --seed 11 --quiet"

/* `fmnist ARGS` fails with exit status `status` and says `fragment`. */
static void expect_refusal(const char *args, int status, const char *fragment) {
    int rc = tu_run(args);
    const char *msg = tu_output("err.txt");
    CHECK_MSG(rc == status && strstr(msg, fragment), "fmnist %s: exit %d, stderr: %s", args, rc,
              msg);
}

/* Resumes the run in `dir` (with `start`, the command that started it, when
 * not NULL) and checks it ends exactly as the reference. */
static void resume_matches_ref(const char *ref, const char *dir, const char *start,
                               const char *what) {
    char args[20000];
    if (start)
        snprintf(args, sizeof args, "%s --resume '%s'", start, dir);
    else
        snprintf(args, sizeof args, "train --resume '%s' --quiet", dir);
    int rc = tu_run(args);
    CHECK_MSG(rc == 0, "%s: exit %d: %s", what, rc, tu_output("err.txt"));
    check_same_as_ref(ref, dir, what);
}

int main(void) {
    bin = getenv("FMNIST_BIN");
    const char *src = getenv("FMNIST_SOURCE_DIR");
    if (!bin || !src) SKIP("FMNIST_BIN or FMNIST_SOURCE_DIR is not set");
    fm_err err;
    fm_images train, test;
    if (fm_data_load(FM_DEBIAN_DATA_DIR, FM_SET_TRAIN, &train, &err) < 0 ||
        fm_data_load(FM_DEBIAN_DATA_DIR, FM_SET_TEST, &test, &err) < 0)
        SKIP("no Fashion-MNIST data (apt-get install dataset-fashion-mnist): %s", err.msg);
    tu_init("system_resume");

    /* 1000 training images (800 train, 40 steps of 20; 200 validation) and a
     * small test set, so the report at the end stays quick. Another folder
     * differs in one pixel: a resume must notice. */
    train.count = 1000;
    test.count = 100;
    char data[4200], other[4200], model[4200], args[20000];
    snprintf(data, sizeof data, "%s", tu_path("data"));
    snprintf(other, sizeof other, "%s", tu_path("other"));
    snprintf(model, sizeof model, "%s/configs/fashion-cnn.cfg", src);
    mkdir(data, 0777);
    mkdir(other, 0777);
    CHECK_MSG(fm_data_write(data, FM_FORMAT_IDX, &train, &test, &err) == 0, "%s", err.msg);
    train.pixels[123] ^= 1;
    CHECK_MSG(fm_data_write(other, FM_FORMAT_IDX, &train, &test, &err) == 0, "%s", err.msg);
    train.count = 60000;
    test.count = 10000;
    fm_images_free(&train);
    fm_images_free(&test);

    char ref[4200], killed[4200], intr[4200], twice[4200], term[4200];
    snprintf(ref, sizeof ref, "%s", tu_path("ref"));
    snprintf(killed, sizeof killed, "%s", tu_path("killed"));
    snprintf(intr, sizeof intr, "%s", tu_path("intr"));
    snprintf(twice, sizeof twice, "%s", tu_path("twice"));
    snprintf(term, sizeof term, "%s", tu_path("term"));

    /* The reference: never stopped. */
    snprintf(args, sizeof args, ARGS " --data '%s' --model '%s' --out '%s'", data, model, ref);
    int rc = tu_run(args);
    CHECK_MSG(rc == 0, "reference run: exit %d: %s", rc, tu_output("err.txt"));
    CHECK(!tu_exists(ref, "checkpoint.safetensors"));

    /* SIGKILL inside the second epoch (checkpoints every 3 steps), then resume. */
    snprintf(args, sizeof args, ARGS " --data '%s' --model '%s' --out '%s' --checkpoint-steps 3",
             data, model, killed);
    pid_t pid = start(args, "killed");
    CHECK_MSG(tu_wait_for_ckpt(pid, killed, 1, 1) == 0, "no mid-epoch checkpoint appeared");
    kill(pid, SIGKILL);
    CHECK(tu_finish(pid) == 128 + SIGKILL);
    char ckpt[4300];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", killed);
    long e = -1, s = -1;
    CHECK_MSG(tu_ckpt_position(ckpt, &e, &s) == 0 && e >= 1, "after SIGKILL: checkpoint unreadable");
    fm_model *m = fm_model_load(ckpt, &err); /* it is a model file too */
    CHECK_MSG(m != NULL, "%s", err.msg);
    fm_model_free(m);
    CHECK(!tu_exists(killed, "model.safetensors"));
    if (getenv("FMNIST_TEST_VERBOSE")) fprintf(stderr, "killed at epoch %ld, step %ld\n", e, s);

    /* Refusals, while an unfinished run is there. */
    snprintf(args, sizeof args, ARGS " --data '%s' --model '%s' --out '%s'", data, model, killed);
    expect_refusal(args, 1, "unfinished run");
    snprintf(args, sizeof args, "train --resume '%s' --batch 8", killed);
    expect_refusal(args, 2, "--batch 8 differs from the run's 20");
    snprintf(args, sizeof args, "train --resume '%s' --data '%s' --quiet", killed, other);
    expect_refusal(args, 2, "differs from the run's data folder");
    snprintf(args, sizeof args, "train --resume '%s' --model '%s/configs/fashion-cnn-readme.cfg'",
             killed, src);
    expect_refusal(args, 2, "its description differs from the run's");
    snprintf(args, sizeof args, "train --resume '%s' --model fashion-cnn-bn", killed);
    expect_refusal(args, 2, "--model fashion-cnn-bn: its description differs from the run's");
    snprintf(args, sizeof args, "train --resume '%s'", ref);
    expect_refusal(args, 1, "no training checkpoint");

    /* The resume with the command that started the run (as a job script
     * restarts it): every value repeats the recorded one. */
    char start_args[16000];
    snprintf(start_args, sizeof start_args,
             ARGS " --data '%s' --model '%s' --out '%s' --checkpoint-steps 3", data, model, killed);
    resume_matches_ref(ref, killed, start_args, "SIGKILL + resume");

    /* Ctrl-C in the second epoch: the step ends, a checkpoint is written, the
     * process says how to resume and exits 130. */
    snprintf(args, sizeof args, ARGS " --data '%s' --model '%s' --out '%s'", data, model, intr);
    pid = start(args, "intr");
    CHECK_MSG(tu_wait_for_ckpt(pid, intr, 1, 0) == 0, "Ctrl-C run: no checkpoint appeared");
    kill(pid, SIGINT);
    rc = tu_finish(pid);
    char *msg = tu_text(tu_path("intr.err"));
    /* (inside epoch 2 unless the signal beat the loop past the epoch's end) */
    CHECK_MSG(rc == 130 && strstr(msg, "interrupted") &&
                  strstr(msg, "resume with: fmnist train --resume"),
              "Ctrl-C: exit %d, stderr: %s", rc, msg);
    free(msg);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", intr);
    CHECK_MSG(tu_ckpt_position(ckpt, &e, &s) == 0 && e == 1,
              "Ctrl-C: checkpoint at epoch %ld step %ld, expected in epoch 2", e, s);
    CHECK(!tu_exists(intr, "model.safetensors"));
    /* the data folder and the recipe come from the checkpoint */
    resume_matches_ref(ref, intr, NULL, "Ctrl-C + resume");

    /* Ctrl-C twice: out at once (no step finished first), the last
     * checkpoint intact and resumable. */
    snprintf(args, sizeof args, ARGS " --data '%s' --model '%s' --out '%s'", data, model, twice);
    pid = start(args, "twice");
    CHECK_MSG(tu_wait_for_ckpt(pid, twice, 1, 0) == 0, "Ctrl-C twice: no checkpoint appeared");
    kill(pid, SIGINT);
    /* the second once the first has landed (two pending signals would merge) */
    for (int i = 0; i < 60000; i++) {
        msg = tu_text(tu_path("twice.err"));
        int landed = strstr(msg, "stopping after this step") != NULL;
        free(msg);
        if (landed) break;
        tu_sleep_ms(1);
    }
    kill(pid, SIGINT);
    rc = tu_finish(pid);
    msg = tu_text(tu_path("twice.err"));
    CHECK_MSG(rc == 130 && strstr(msg, "interrupted again"), "Ctrl-C twice: exit %d, %s", rc,
              msg);
    free(msg);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", twice);
    CHECK_MSG(tu_ckpt_position(ckpt, &e, &s) == 0 && e >= 1, "Ctrl-C twice: checkpoint unreadable");
    resume_matches_ref(ref, twice, NULL, "Ctrl-C twice + resume");

    /* SIGTERM behaves as the first Ctrl-C, with exit status 143. */
    snprintf(args, sizeof args, ARGS " --data '%s' --model '%s' --out '%s'", data, model, term);
    pid = start(args, "term");
    CHECK_MSG(tu_wait_for_ckpt(pid, term, 1, 0) == 0, "SIGTERM run: no checkpoint appeared");
    kill(pid, SIGTERM);
    rc = tu_finish(pid);
    msg = tu_text(tu_path("term.err"));
    CHECK_MSG(rc == 143 && strstr(msg, "resume with"), "SIGTERM: exit %d, %s", rc, msg);
    free(msg);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", term);
    CHECK_MSG(tu_ckpt_position(ckpt, &e, &s) == 0 && e >= 1, "SIGTERM: checkpoint unreadable");
    return check_finish();
}
