/* The run-folder rules, in the library and through the command, on tiny
 * data: one process per folder (the lock: refused from another process with
 * its pid, nested within one, gone with a killed holder, no file left after
 * a clean end; fm_train, run.json and the report all take it; fm_run_lock,
 * its public face, makes the folder when asked), no silent
 * overwrite of a finished run (refused naming --out and --overwrite; with
 * --overwrite the old run goes first; an unfinished one is never replaced),
 * and a resume given the run's own command line: recipe flags, --data,
 * --model and --out equal to the run's are accepted, a different value is
 * refused naming the flag and both values. */
#include <signal.h>

#include "check.h"
#include "clitest.h"
#include "core/lock.h"

static const char *net = "input 28 28 1\n"
                         "conv filters=2 kernel=3 padding=same activation=relu\n"
                         "maxpool 4\n"
                         "flatten\n"
                         "dense units=10 activation=softmax\n";

static char data[4200], cfg[4200];
static fm_images tr, va; /* data's training set split as fmnist train splits it */

static fm_train_params params(const char *dir) {
    fm_train_params p = fm_train_default_params();
    p.epochs = 1;
    p.batch = 16;
    p.seed = 5;
    p.threads = 1;
    p.out_dir = dir;
    p.model_source = cfg;
    p.data_dir = data;
    p.data_format = "idx";
    return p;
}

static int train(const fm_train_params *p, fm_train_result *r, fm_err *err) {
    fm_model *m = fm_model_parse(net, cfg, err);
    int rc = m ? fm_train(m, &tr, &va, p, r, err) : -1;
    fm_model_free(m);
    return rc;
}

/* ---- in another process ---------------------------------------------------- */

typedef struct {
    int rc;
    fm_err err;
} outcome;

/* Runs what(dir) in a child process; its return value and message (through
 * a pipe), or rc -2 when the child gave none. */
static outcome elsewhere(int (*what)(const char *dir, fm_err *err), const char *dir) {
    outcome o = {-2, {{0}}};
    int fds[2];
    if (pipe(fds) != 0) return o;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        outcome c = {0, {{0}}};
        c.rc = what(dir, &c.err);
        ssize_t n = write(fds[1], &c, sizeof c);
        _exit(n == (ssize_t)sizeof c ? 0 : 1);
    }
    close(fds[1]);
    if (read(fds[0], &o, sizeof o) != (ssize_t)sizeof o) o.rc = -2;
    close(fds[0]);
    waitpid(pid, NULL, 0);
    return o;
}

static int do_lock(const char *dir, fm_err *err) {
    fm__lock l;
    int rc = fm__lock_take(&l, dir, NULL, err);
    fm__lock_release(&l);
    return rc;
}

static int do_train(const char *dir, fm_err *err) {
    fm_train_params p = params(dir);
    p.overwrite = 1; /* the lock comes first anyway */
    fm_train_result r;
    return train(&p, &r, err);
}

static int do_run_json(const char *dir, fm_err *err) {
    fm_train_params p = params(dir);
    fm_train_result r = {0};
    return fm_train_write_run(&p, &r, NULL, err);
}

static int do_report(const char *dir, fm_err *err) { return fm_report_write(dir, data, NULL, err); }

static int do_report_elsewhere(const char *dir, fm_err *err) {
    return fm_report_write(dir, data, tu_path("elsewhere.html"), err);
}

/* Takes the lock and dies of SIGKILL holding it. */
static int do_die_holding(const char *dir, fm_err *err) {
    fm__lock l;
    if (fm__lock_take(&l, dir, NULL, err) == 0) raise(SIGKILL);
    return -1;
}

static void test_lock(void) {
    char dir[4200], pid[64];
    snprintf(dir, sizeof dir, "%s", tu_path("locked"));
    snprintf(pid, sizeof pid, "(pid %ld)", (long)getpid());
    mkdir(dir, 0777);
    fm_err err;
    fm_train_params p = params(dir);
    fm_train_result r;
    CHECK_MSG(train(&p, &r, &err) == 0, "%s", err.msg); /* a finished run to report on */
    CHECK(!tu_exists(dir, FM__LOCK_FILE));                  /* let go at the end */

    fm__lock outer, inner;
    CHECK_MSG(fm__lock_take(&outer, dir, NULL, &err) == 0 && outer.fd >= 0, "%s", err.msg);
    CHECK(tu_exists(dir, FM__LOCK_FILE));
    /* nested in this process: fm__lock, run.json, the report */
    CHECK_MSG(fm__lock_take(&inner, dir, NULL, &err) == 0 && inner.fd < 0, "%s", err.msg);
    fm__lock_release(&inner);
    CHECK(tu_exists(dir, FM__LOCK_FILE));
    CHECK_MSG(do_run_json(dir, &err) == 0, "%s", err.msg);
    CHECK_MSG(do_report(dir, &err) == 0, "%s", err.msg);

    /* another process is refused by all of them, told this one's pid */
    int (*const refused[])(const char *, fm_err *) = {do_lock, do_train, do_run_json, do_report};
    const char *names[] = {"lock", "fm_train", "run.json", "report"};
    for (int i = 0; i < 4; i++) {
        outcome o = elsewhere(refused[i], dir);
        CHECK_MSG(o.rc == -1 && strstr(o.err.msg, dir) && strstr(o.err.msg, pid) &&
                      strstr(o.err.msg, "in use by another fmnist process"),
                  "%s from another process: rc %d, %s", names[i], o.rc, o.err.msg);
    }
    /* a report written elsewhere only reads the folder */
    outcome o = elsewhere(do_report_elsewhere, dir);
    CHECK_MSG(o.rc == 0, "report elsewhere: %s", o.err.msg);
    fm__lock_release(&outer);
    CHECK(!tu_exists(dir, FM__LOCK_FILE));
    o = elsewhere(do_lock, dir);
    CHECK_MSG(o.rc == 0, "after the release: %s", o.err.msg);

    /* a holder killed with SIGKILL leaves its file, but not its lock */
    o = elsewhere(do_die_holding, dir);
    CHECK(tu_exists(dir, FM__LOCK_FILE));
    CHECK_MSG(fm__lock_take(&outer, dir, NULL, &err) == 0 && outer.fd >= 0, "%s", err.msg);
    char lockfile[4400], *text;
    snprintf(lockfile, sizeof lockfile, "%s/%s", dir, FM__LOCK_FILE);
    text = tu_text(lockfile);
    CHECK_MSG(atol(text) == (long)getpid(), "lock file says '%s'", text);
    free(text);
    fm__lock_release(&outer);
}

static int do_public_lock(const char *dir, fm_err *err) {
    fm_run_lock *l = fm_run_lock_take(dir, NULL, "INSTEAD", err);
    fm_run_lock_release(l);
    return l ? 0 : -1;
}

/* fm_run_lock, the public face of the lock: makes the folder when asked,
 * nests, refuses another process with the caller's alternative. */
static void test_public_lock(void) {
    char dir[4200], file[4200];
    snprintf(dir, sizeof dir, "%s", tu_path("public/deeper"));
    fm_err err;
    int created = -1;
    CHECK(!fm_run_lock_take(dir, NULL, NULL, &err) && strstr(err.msg, "cannot create the lock file"));
    fm_run_lock *outer = fm_run_lock_take(dir, &created, NULL, &err);
    CHECK_MSG(outer && created == 1 && tu_exists(dir, FM__LOCK_FILE), "%s", err.msg);
    fm_run_lock *inner = fm_run_lock_take(dir, &created, NULL, &err);
    CHECK_MSG(inner && created == 0, "%s", err.msg);
    fm_run_lock_release(inner);
    CHECK(tu_exists(dir, FM__LOCK_FILE)); /* the outer hold keeps it */
    outcome o = elsewhere(do_public_lock, dir);
    CHECK_MSG(o.rc == -1 && strstr(o.err.msg, "in use by another fmnist process") &&
                  strstr(o.err.msg, "wait for it to end, or INSTEAD"),
              "rc %d, %s", o.rc, o.err.msg);
    fm_run_lock_release(outer);
    CHECK(!tu_exists(dir, FM__LOCK_FILE));
    o = elsewhere(do_public_lock, dir);
    CHECK_MSG(o.rc == 0, "after the release: %s", o.err.msg);
    fm_run_lock_release(NULL);
    /* a folder that cannot be made */
    snprintf(file, sizeof file, "%s", tu_path("public/plain-file"));
    tu_write(file, "x", 1);
    strcat(file, "/sub");
    CHECK(!fm_run_lock_take(file, &created, NULL, &err) && strstr(err.msg, "plain-file"));
}

/* ---- no silent overwrite ---------------------------------------------------- */

static void test_overwrite(void) {
    char dir[4200], path[4400];
    snprintf(dir, sizeof dir, "%s", tu_path("finished"));
    fm_err err;
    fm_train_params p = params(dir);
    fm_train_result r;
    CHECK_MSG(train(&p, &r, &err) == 0, "%s", err.msg);
    CHECK_MSG(fm_report_write(dir, data, NULL, &err) == 0, "%s", err.msg);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    size_t n0, n1;
    unsigned char *before = tu_read(path, &n0);

    p.seed = 6;
    int rc = train(&p, &r, &err);
    CHECK_MSG(rc < 0 && strstr(err.msg, dir) && strstr(err.msg, "holds a finished run") &&
                  strstr(err.msg, "--out") && strstr(err.msg, "--overwrite"),
              "%s", err.msg);
    unsigned char *after = tu_read(path, &n1);
    CHECK(before && after && n0 == n1 && !memcmp(before, after, n0));
    free(after);
    CHECK(tu_exists(dir, "report.html") && tu_exists(dir, "run.json"));

    /* with overwrite the old run goes first (the report too: fm_train does
     * not write one), then the new one is written */
    char *progress = NULL;
    size_t len = 0;
    p.overwrite = 1;
    p.progress = open_memstream(&progress, &len);
    rc = train(&p, &r, &err);
    fclose(p.progress);
    p.progress = NULL;
    CHECK_MSG(rc == 0, "%s", err.msg);
    CHECK_MSG(progress && strstr(progress, "Replacing the finished run in "), "%s", progress);
    free(progress);
    after = tu_read(path, &n1);
    CHECK(after && (n0 != n1 || memcmp(before, after, n0)));
    free(before);
    free(after);
    CHECK(!tu_exists(dir, "report.html") && tu_exists(dir, "run.json") && tu_exists(dir, "best.safetensors"));

    /* an unfinished run is not replaced, overwrite or not */
    volatile sig_atomic_t stop_now = 1;
    p.interrupt = &stop_now;
    snprintf(dir, sizeof dir, "%s", tu_path("unfinished"));
    p.out_dir = dir;
    rc = train(&p, &r, &err);
    CHECK(rc < 0 && r.interrupted);
    p.interrupt = NULL;
    rc = train(&p, &r, &err);
    CHECK_MSG(rc < 0 && strstr(err.msg, "unfinished run"), "%s", err.msg);
    CHECK(tu_exists(dir, "checkpoint.safetensors"));
}

/* ---- the command -------------------------------------------------------------- */

/* `fmnist ARGS` exits with `status`, its stderr one line holding `fragment`. */
static void expect(const char *args, int status, const char *fragment) {
    int rc = tu_run(args);
    const char *msg = tu_output("err.txt");
    const char *nl = strchr(msg, '\n');
    CHECK_MSG(rc == status && (!fragment || strstr(msg, fragment)) &&
                  (status == 0 || (nl && !nl[1])),
              "fmnist %s: exit %d, stderr: %s", args, rc, msg);
}

static void test_command(void) {
    if (!getenv("FMNIST_BIN")) {
        fprintf(stderr, "note: FMNIST_BIN is not set: the command's checks did not run\n");
        return;
    }
    char dir[4200], args[20000], msg[9000];
#define COMMON "train --data '%s' --model '%s' --batch 16 --seed 5 --threads 1 --quiet"

    /* held by this process: the command is refused, naming the folder and pid */
    snprintf(dir, sizeof dir, "%s", tu_path("cli-locked"));
    mkdir(dir, 0777);
    fm__lock l;
    fm_err err;
    CHECK_MSG(fm__lock_take(&l, dir, NULL, &err) == 0, "%s", err.msg);
    snprintf(args, sizeof args, COMMON " --epochs 1 --out '%s'", data, cfg, dir);
    snprintf(msg, sizeof msg, "fmnist: %s: in use by another fmnist process (pid %ld)", dir,
             (long)getpid());
    expect(args, 1, msg);
    snprintf(args, sizeof args, "report --run '%s' --data '%s'", dir, data);
    expect(args, 1, msg);
    fm__lock_release(&l);
    CHECK(!tu_exists(dir, "log.csv"));

    /* free: it runs; again: refused, nothing touched; with --overwrite: replaced */
    snprintf(args, sizeof args, COMMON " --epochs 1 --out '%s'", data, cfg, dir);
    expect(args, 0, NULL);
    CHECK(tu_exists(dir, "report.html") && !tu_exists(dir, FM__LOCK_FILE));
    snprintf(msg, sizeof msg,
             "fmnist: %s: holds a finished run (model.safetensors); choose another folder (--out "
             "DIR) or replace that run (--overwrite)",
             dir);
    expect(args, 1, msg);
    CHECK(tu_exists(dir, "report.html"));
    snprintf(args, sizeof args, COMMON " --epochs 1 --out '%s' --overwrite", data, cfg, dir);
    expect(args, 0, NULL);
    CHECK(tu_exists(dir, "report.html") && tu_exists(dir, "model.safetensors"));
    /* a run that never starts leaves no folder */
    snprintf(args, sizeof args, "train --data '%s/nope' --out '%s'", data, tu_path("never"));
    expect(args, 1, "nope");
    CHECK(access(tu_path("never"), F_OK) != 0);

    /* An unfinished run (the library's, recorded as the command records it)
     * resumed with the command line that started it. */
    snprintf(dir, sizeof dir, "%s", tu_path("cli-resume"));
    volatile sig_atomic_t stop_now = 1;
    fm_train_params p = params(dir);
    p.epochs = 2;
    p.interrupt = &stop_now;
    fm_train_result r;
    CHECK(train(&p, &r, &err) < 0 && r.interrupted);
    char other_data[4200], other_cfg[4200], other_dir[4200];
    snprintf(other_data, sizeof other_data, "%s", tu_path("other-data"));
    snprintf(other_cfg, sizeof other_cfg, "%s", tu_path("other.cfg"));
    snprintf(other_dir, sizeof other_dir, "%s", tu_path("other-run"));
    mkdir(other_data, 0777);
    mkdir(other_dir, 0777);
    const char *other_net = "input 28 28 1\nflatten\ndense units=10 activation=softmax\n";
    tu_write(other_cfg, other_net, strlen(other_net));
    const char *ckpt = "checkpoint.safetensors); a resume keeps the run's recipe";
    static const struct {
        const char *flags, *expect;
    } bad[] = {
        {"--seed 6", "fmnist: train: --seed 6 differs from the run's 5 (recorded in "},
        {"--batch 32", "fmnist: train: --batch 32 differs from the run's 16 (recorded in "},
        {"--lr 0.002", "fmnist: train: --lr 0.002 differs from the run's 0.001 (recorded in "},
        {"--limit 50", "fmnist: train: --limit 50 differs from the run's 0 (all images) ("},
        {"--val-split 0.3", "fmnist: train: --val-split 0.3 differs from the run's 0.2 ("},
        {"--no-augment", "fmnist: train: --no-augment differs from the run's augmentation on ("},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "train --resume '%s' %s", dir, bad[i].flags);
        expect(args, 2, bad[i].expect);
        CHECK_MSG(strstr(tu_output("err.txt"), ckpt), "%s", tu_output("err.txt"));
    }
    snprintf(args, sizeof args, "train --resume '%s' --out '%s'", dir, other_dir);
    snprintf(msg, sizeof msg, "fmnist: train: --out %s is not the folder being resumed, %s",
             other_dir, dir);
    expect(args, 2, msg);
    snprintf(args, sizeof args, "train --resume '%s' --data '%s'", dir, other_data);
    snprintf(msg, sizeof msg, "fmnist: train: --data %s differs from the run's data folder %s", other_data,
             data);
    expect(args, 2, msg);
    snprintf(args, sizeof args, "train --resume '%s' --model '%s'", dir, other_cfg);
    snprintf(msg, sizeof msg, "fmnist: train: --model %s: its description differs from the run's (%s,",
             other_cfg, cfg);
    expect(args, 2, msg);
    CHECK(tu_exists(dir, "checkpoint.safetensors") && !tu_exists(dir, FM__LOCK_FILE));

    /* the run's own command with --resume added, paths spelt differently */
    snprintf(args, sizeof args,
             COMMON " --lr 0.001 --val-split 0.2 --epochs 2 --out '%s/.' --resume '%s'", data,
             cfg, dir, dir);
    expect(args, 0, NULL);
    CHECK_MSG(strstr(tu_output("out.txt"), "(resumed after epoch 0, step 1)"), "%s",
              tu_output("out.txt"));
    CHECK(!tu_exists(dir, "checkpoint.safetensors") && tu_exists(dir, "model.safetensors"));
#undef COMMON
}

int main(void) {
    tu_init("test_run_folder");
    fm_err err;
    fm_images train_set, test_set, all;
    tu_make_set(&train_set, 96, 1);
    tu_make_set(&test_set, 20, 2);
    snprintf(data, sizeof data, "%s", tu_path("data"));
    snprintf(cfg, sizeof cfg, "%s", tu_path("net.cfg"));
    mkdir(data, 0777);
    tu_write(cfg, net, strlen(net));
    CHECK_MSG(fm_data_write(data, FM_FORMAT_IDX, &train_set, &test_set, &err) == 0, "%s", err.msg);
    /* the split fmnist train makes of it */
    CHECK_MSG(fm_data_load(data, FM_SET_TRAIN, &all, &err) == 0 &&
                  fm_images_split(&all, 0.2, 5, &tr, &va, &err) == 0,
              "%s", err.msg);
    fm_images_free(&all);
    fm_images_free(&train_set);
    fm_images_free(&test_set);

    test_lock();
    test_public_lock();
    test_overwrite();
    test_command();
    fm_images_free(&tr);
    fm_images_free(&va);
    return check_finish();
}
