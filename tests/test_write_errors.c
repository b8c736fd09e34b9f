/* Every writer on a full disk or past a file size limit: the model file, the
 * training checkpoint, log.csv, run.json, the report, ONNX and the data
 * converters report the real cause with the file's name ("File too large"
 * under setrlimit(RLIMIT_FSIZE), "No space left on device" from /dev/full,
 * "Permission denied" in a read-only folder), leave the previous file
 * byte for byte as it was and leave no temporary file behind; the fmnist
 * command under `ulimit -f` says so too instead of dying of SIGXFSZ. */
#include <signal.h>
#include <sys/resource.h>

#include "check.h"
#include "clitest.h"

static const char *net = "input 28 28 1\n"
                         "conv filters=2 kernel=3 padding=same activation=relu\n"
                         "maxpool 4\n"
                         "flatten\n"
                         "dense units=10 activation=softmax\n";

/* Files may grow to `bytes` at most (RLIMIT_FSIZE's soft limit; 0 lifts it). */
static void limit_files(rlim_t bytes) {
    static struct rlimit saved;
    static int have;
    if (!have) have = getrlimit(RLIMIT_FSIZE, &saved) == 0;
    struct rlimit r = saved;
    if (bytes) r.rlim_cur = bytes;
    if (setrlimit(RLIMIT_FSIZE, &r) != 0) SKIP("setrlimit(RLIMIT_FSIZE) failed");
}

/* A copy of a file (caller frees), for "left as it was". */
typedef struct {
    unsigned char *bytes;
    size_t len;
} snapshot;

static snapshot snap(const char *path) {
    snapshot s;
    s.bytes = tu_read(path, &s.len);
    if (!s.bytes) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    return s;
}

/* rc is a failure naming path and `why`; the file is as in s and no
 * temporary file is left in dir. */
static void check_kept(const char *what, int rc, const fm_err *err, const char *path,
                       const char *why, snapshot s, const char *dir) {
    CHECK_MSG(rc < 0 && strstr(err->msg, path) && strstr(err->msg, why), "%s: rc %d, message: %s",
              what, rc, err->msg);
    size_t n;
    unsigned char *now = tu_read(path, &n);
    CHECK_MSG(now && n == s.len && !memcmp(now, s.bytes, n), "%s: %s changed", what, path);
    CHECK_MSG(tu_no_temp_files(dir), "%s: a temporary file is left in %s", what, dir);
    free(now);
    free(s.bytes);
}

static fm_images synth(size_t n, unsigned seed) {
    fm_images im;
    tu_make_set(&im, n, seed);
    return im;
}

static fm_train_params params(const char *dir) {
    fm_train_params p = fm_train_default_params();
    p.epochs = 1;
    p.batch = 16;
    p.threads = 1;
    p.out_dir = dir;
    p.model_source = "test-net";
    return p;
}

int main(void) {
    tu_init("test_write_errors");
    signal(SIGXFSZ, SIG_IGN); /* what fmnist.h asks of library users */
    const char *big = "File too large";
    fm_err err;
    fm_images tr = synth(64, 1), va = synth(16, 2), te = synth(20, 3);
    char run[4200], data[4200], path[4400], path2[4500];
    snprintf(run, sizeof run, "%s", tu_path("run"));
    snprintf(data, sizeof data, "%s", tu_path("data"));
    mkdir(data, 0777);
    CHECK_MSG(fm_data_write(data, FM_FORMAT_IDX, &tr, &te, &err) == 0, "%s", err.msg);

    /* A finished run to write over: model files, log.csv, run.json, report. */
    fm_model *m = fm_model_parse(net, "test-net", &err);
    if (!m) SKIP("the test network does not parse: %s", err.msg);
    fm_train_params p = params(run);
    fm_train_result r;
    CHECK_MSG(fm_train(m, &tr, &va, &p, &r, &err) == 0, "%s", err.msg);
    CHECK_MSG(fm_report_write(run, data, NULL, &err) == 0, "%s", err.msg);

    /* the model file */
    snprintf(path, sizeof path, "%s/model.safetensors", run);
    snapshot s = snap(path);
    limit_files(s.len / 2);
    int rc = fm_model_save(m, path, &err);
    limit_files(0);
    check_kept("model", rc, &err, path, big, s, run);

    /* run.json */
    snprintf(path, sizeof path, "%s/run.json", run);
    s = snap(path);
    limit_files(s.len / 2);
    rc = fm_train_write_run(&p, &r, NULL, &err);
    limit_files(0);
    check_kept("run.json", rc, &err, path, big, s, run);

    /* the report */
    snprintf(path, sizeof path, "%s/report.html", run);
    s = snap(path);
    limit_files(s.len / 2);
    rc = fm_report_write(run, data, NULL, &err);
    limit_files(0);
    check_kept("report", rc, &err, path, big, s, run);

    /* ONNX */
    snprintf(path, sizeof path, "%s/model.onnx", run);
    CHECK_MSG(fm_model_export_onnx(m, path, &err) == 0, "%s", err.msg);
    s = snap(path);
    limit_files(s.len / 2);
    rc = fm_model_export_onnx(m, path, &err);
    limit_files(0);
    check_kept("ONNX", rc, &err, path, big, s, run);

    /* the converters, CSV and gzipped IDX */
    const char *names[2] = {"fashion-mnist_train.csv", "train-images-idx3-ubyte.gz"};
    for (int f = 0; f < 2; f++) {
        char conv[4300];
        snprintf(conv, sizeof conv, "%s/convert-%d", tu_path("."), f);
        mkdir(conv, 0777);
        fm_data_format fmt = f ? FM_FORMAT_IDX : FM_FORMAT_CSV;
        CHECK_MSG(fm_data_write(conv, fmt, &tr, &te, &err) == 0, "%s", err.msg);
        snprintf(path, sizeof path, "%s/%s", conv, names[f]);
        s = snap(path);
        limit_files(s.len / 2);
        rc = fm_data_write(conv, fmt, &tr, &te, &err);
        limit_files(0);
        check_kept(names[f], rc, &err, path, big, s, conv);
    }
    fm_model_free(m);

    /* An unfinished run (stopped after its first step, checkpoint written):
     * resuming it where log.csv cannot be written, then where the next
     * checkpoint cannot, keeps both files as they were. */
    char unf[4200];
    snprintf(unf, sizeof unf, "%s", tu_path("unfinished"));
    volatile sig_atomic_t stop_now = 1;
    p = params(unf);
    p.epochs = 2;
    p.checkpoint_steps = 1;
    p.interrupt = &stop_now;
    m = fm_model_parse(net, "test-net", &err);
    rc = m ? fm_train(m, &tr, &va, &p, &r, &err) : -1;
    fm_model_free(m);
    CHECK_MSG(rc < 0 && r.interrupted, "%s", err.msg);
    stop_now = 0;
    snprintf(path, sizeof path, "%s/log.csv", unf);
    snprintf(path2, sizeof path2, "%s/checkpoint.safetensors", unf);
    for (int step = 0; step < 2; step++) {
        fm_train_params rp = fm_train_default_params();
        fm_train_resume_info info;
        m = fm_train_resume_load(unf, &rp, &info, &err);
        CHECK_MSG(m != NULL, "%s", err.msg);
        if (!m) break;
        rp.threads = 1;
        rp.checkpoint_steps = 1;
        rp.model_source = "test-net"; /* as recorded: the checkpoint keeps its size */
        snapshot log = snap(path), ckpt = snap(path2);
        /* first below log.csv's size, then below the checkpoint's only */
        limit_files(step == 0 ? log.len / 2 : ckpt.len - 1);
        rc = fm_train(m, &tr, &va, &rp, &r, &err);
        limit_files(0);
        fm_model_free(m);
        const char *target = step == 0 ? path : path2;
        snapshot other = step == 0 ? ckpt : log;
        check_kept(step == 0 ? "log.csv" : "checkpoint", rc, &err, target, big,
                   step == 0 ? log : ckpt, unf);
        size_t n;
        unsigned char *now = tu_read(step == 0 ? path2 : path, &n);
        CHECK_MSG(now && n == other.len && !memcmp(now, other.bytes, n),
                  "step %d: the other file changed", step);
        free(now);
        free(other.bytes);
    }

    /* A full disk: the temporary file is /dev/full, every write fails. */
    if (access("/dev/full", W_OK) == 0) {
        m = fm_model_parse(net, "test-net", &err);
        snprintf(path, sizeof path, "%s/model.safetensors", run);
        snprintf(path2, sizeof path2, "%s.tmp", path);
        s = snap(path);
        CHECK(m && symlink("/dev/full", path2) == 0);
        rc = m ? fm_model_save(m, path, &err) : -1;
        check_kept("full disk", rc, &err, path, "No space left on device", s, run);
        CHECK(access(path2, F_OK) != 0);
        fm_model_free(m);
    } else {
        fprintf(stderr, "note: no /dev/full: the full-disk check did not run\n");
    }

    /* A folder the process may not write into (root may write anywhere). */
    if (geteuid() != 0) {
        char ro[4300];
        snprintf(ro, sizeof ro, "%s", tu_path("read-only"));
        mkdir(ro, 0777);
        snprintf(path, sizeof path, "%s/model.safetensors", ro);
        tu_write(path, "old", 3);
        chmod(ro, 0555);
        m = fm_model_parse(net, "test-net", &err);
        s = snap(path);
        rc = m ? fm_model_save(m, path, &err) : -1;
        fm_model_free(m);
        chmod(ro, 0777);
        check_kept("read-only folder", rc, &err, path, "Permission denied", s, ro);
    } else {
        fprintf(stderr, "note: running as root: the permission check did not run\n");
    }

    /* The command under `ulimit -f 1` (512 bytes): an error naming the file,
     * exit status 1, not death by SIGXFSZ (153). */
    if (getenv("FMNIST_BIN")) {
        char args[9000], conv[4300];
        snprintf(conv, sizeof conv, "%s", tu_path("convert-cli"));
        snprintf(args, sizeof args, "convert --to csv '%s' '%s'", data, conv);
        char cmd[10000];
        snprintf(cmd, sizeof cmd, "sh -c \"ulimit -f 1; exec '%s' %s\" >'%s' 2>'%s'",
                 getenv("FMNIST_BIN"), args, tu_path("out.txt"), tu_path("err.txt"));
        int st = system(cmd);
        const char *msg = tu_output("err.txt");
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(msg, "fashion-mnist_train.csv") &&
                      strstr(msg, big),
                  "status %d, stderr: %s", st, msg);
        CHECK(tu_no_temp_files(conv));
    }

    fm_images_free(&tr);
    fm_images_free(&va);
    fm_images_free(&te);
    return check_finish();
}
