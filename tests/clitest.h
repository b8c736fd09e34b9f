/* Helpers for the tests that drive the fmnist command (system_*.c and the
 * command-line half of some unit tests) and for test_train's run folders:
 * run it with its output captured in the test's scratch folder, read files
 * back, compare run logs. */
#ifndef FM_TESTS_CLITEST_H
#define FM_TESTS_CLITEST_H

#include <sys/wait.h>

#include "data/testutil.h"

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
