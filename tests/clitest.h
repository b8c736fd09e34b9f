/* Helpers for the tests that drive the fmnist command (system_*.c and the
 * command-line half of some unit tests) and for test_train's run folders:
 * run it with its output captured in the test's scratch folder (or start it
 * in the background and follow its checkpoint), read files back, compare
 * run logs. */
#ifndef FM_TESTS_CLITEST_H
#define FM_TESTS_CLITEST_H

#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "data/testutil.h"
#include "model/safetensors.h"

/* Runs `$FMNIST_BIN ARGS` with stdout in out.txt and stderr in err.txt of the
 * scratch folder (tu_init first); returns the exit status, -1 if it did not
 * exit normally. */
static inline int tu_run(const char *args) {
    char cmd[32768];
    const char *bin = getenv("FMNIST_BIN");
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", bin ? bin : "fmnist", args,
             tu_path("out.txt"), tu_path("err.txt"));
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Starts `sh -c "exec CMD"` with stdout in NAME.out and stderr in NAME.err
 * of the scratch folder; returns its pid. */
static inline pid_t tu_start(const char *cmd_line, const char *name) {
    char cmd[16384], out[64], err[64];
    snprintf(out, sizeof out, "%s.out", name);
    snprintf(err, sizeof err, "%s.err", name);
    snprintf(cmd, sizeof cmd, "exec %s >'%s' 2>'%s'", cmd_line, tu_path(out), tu_path(err));
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Exit status of pid (128 + signal when a signal ended it). */
static inline int tu_finish(pid_t pid) {
    int st;
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

static inline void tu_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Position recorded in a checkpoint: 0 and *epoch, *step set when it reads
 * as complete; -1 when it is absent or unreadable. */
static inline int tu_ckpt_position(const char *path, long *epoch, long *step) {
    fm__st_file f;
    if (fm__st_read(&f, path, NULL) < 0) return -1;
    const fm__st_tensor *e = fm__st_find(&f, "train.epoch"), *s = fm__st_find(&f, "train.step");
    int64_t v[2] = {-1, -1};
    if (e && s && e->dtype == FM__ST_I64 && s->dtype == FM__ST_I64) {
        fm__st_copy(e, &v[0]);
        fm__st_copy(s, &v[1]);
    }
    fm__st_close(&f);
    *epoch = (long)v[0];
    *step = (long)v[1];
    return v[0] >= 0 ? 0 : -1;
}

/* Waits (up to 10 minutes) until the checkpoint of run dir `run` shows at
 * least `epochs` epochs done and, when mid > 0, a position inside an epoch;
 * returns 0 then, -1 if the process ended first or time ran out. */
static inline int tu_wait_for_ckpt(pid_t pid, const char *run, long epochs, int mid) {
    char path[4200];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", run);
    for (int i = 0; i < 300000; i++) {
        long e, s;
        if (tu_ckpt_position(path, &e, &s) == 0 && e >= epochs && (!mid || s > 0)) return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) return -1;
        tu_sleep_ms(2);
    }
    return -1;
}

/* A file as a NUL-terminated string (caller frees); "" if unreadable. */
static inline char *tu_text(const char *path) {
    size_t n = 0;
    unsigned char *b = tu_read(path, &n);
    char *s = malloc(n + 1);
    if (!s) exit(1);
    if (b) memcpy(s, b, n);
    s[b ? n : 0] = 0;
    free(b);
    return s;
}

/* NAME (out.txt, err.txt, ...) of the scratch folder as a string: static,
 * overwritten by the next call; "" if unreadable. */
static inline const char *tu_output(const char *name) {
    static char text[65536];
    size_t n = 0;
    unsigned char *b = tu_read(tu_path(name), &n);
    if (n >= sizeof text) n = sizeof text - 1;
    if (b) memcpy(text, b, n);
    text[b ? n : 0] = 0;
    free(b);
    return text;
}

/* run_dir/log.csv without its last column (seconds, the one thing that
 * varies between runs); caller frees. */
static inline char *tu_log_sans_time(const char *run_dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/log.csv", run_dir);
    char *s = tu_text(path), *w = s;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        char *last = strrchr(line, ',');
        if (last) *last = 0;
        size_t n = strlen(line);
        memmove(w, line, n);
        w += n;
        *w++ = '\n';
    }
    *w = 0;
    return s;
}

/* The int8 tests' float model: a small network with a BatchNorm between two
 * convs (what int8 folds), trained for 2 epochs by the CLI on the first
 * n_train training and n_test test images of the real data, written as IDX
 * into the scratch folder's data/; the run folder is run/ (its model
 * run/model.safetensors), `flags` go to train. Returns train's exit status,
 * with the CHECK already made. */
static inline int tu_train_int8_net(const fm_images *train, const fm_images *test, size_t n_train,
                                    size_t n_test, const char *flags) {
    static const char net[] = "input 28 28 1\n"
                              "conv filters=8 kernel=3 padding=same activation=relu\n"
                              "batchnorm\n"
                              "conv filters=8 kernel=3 padding=same activation=relu\n"
                              "maxpool 2\n"
                              "flatten\n"
                              "dense units=32 activation=relu\n"
                              "dense units=10 activation=softmax\n";
    fm_err err;
    fm_images small_train = *train, small_test = *test;
    small_train.count = n_train;
    small_test.count = n_test;
    char data[4200], cfg[4200], run_dir[4200], args[16384];
    snprintf(data, sizeof data, "%s", tu_path("data"));
    snprintf(cfg, sizeof cfg, "%s", tu_path("small.cfg"));
    snprintf(run_dir, sizeof run_dir, "%s", tu_path("run"));
    mkdir(data, 0777);
    CHECK_MSG(fm_data_write(data, FM_FORMAT_IDX, &small_train, &small_test, &err) == 0, "%s",
              err.msg);
    tu_write(cfg, net, sizeof net - 1);
    snprintf(args, sizeof args,
             "train --model '%s' --data '%s' --out '%s' --epochs 2 --batch 32 --quiet %s", cfg,
             data, run_dir, flags);
    int rc = tu_run(args);
    CHECK_MSG(rc == 0, "train: exit %d: %s", rc, tu_output("err.txt"));
    return rc;
}

#endif
