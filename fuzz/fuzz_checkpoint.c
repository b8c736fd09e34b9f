/* libFuzzer target: the training checkpoint readers (src/train/resume.c,
 * src/train/checkpoint.c).
 *
 * The input is the whole checkpoint.safetensors of a run folder. First
 * fm_train_resume_load, which reads the recorded recipe and the model as
 * `fmnist train --resume` does before it has any data. When that accepts the
 * file, fm__checkpoint_read as fm_train calls it, given the data counts and
 * fingerprint the file itself records, so an input gets past "other data" to
 * the checks of the training state: Adam moments, EarlyStopping's snapshot,
 * data order, position in the epoch and the epoch log.
 *
 * A state the reader accepts must be consistent (the order a permutation of
 * the training images, one log line per finished epoch) and survive a round
 * trip: fm__checkpoint_write, then fm__checkpoint_read into a fresh model,
 * gives the same weights, moments and state bit for bit. */
#include <inttypes.h>
#include <math.h>

#include "fuzz_util.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "dist/dist.h"
#include "train/checkpoint.h"

static fuzz_file input;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_file_open(&input, "input.safetensors");
    /* fm_train_resume_load takes a run folder: the temporary folder, whose
     * checkpoint is a link to the input */
    if (symlink(input.path, fuzz_tmp_path(FM__CHECKPOINT_FILE)) != 0) {
        perror("fuzz_checkpoint: symlink");
        abort();
    }
    return 0;
}

/* The data counts and fingerprint the checkpoint records; -1 when they are
 * missing or malformed (the reader then refuses the file anyway). */
static int recorded_data(const char *path, size_t *train_count, size_t *val_count,
                         uint64_t *fingerprint) {
    fm__st_file f;
    fm_err err;
    if (fm__st_read(&f, path, &err) < 0) return -1;
    const char *tc = fm__st_meta(&f, "fmnist.train.train_count");
    const char *vc = fm__st_meta(&f, "fmnist.train.val_count");
    const char *fp = fm__st_meta(&f, "fmnist.train.data_fingerprint");
    int ok = tc && vc && fp && sscanf(tc, "%zu", train_count) == 1 &&
             sscanf(vc, "%zu", val_count) == 1 && sscanf(fp, "%" SCNx64, fingerprint) == 1;
    fm__st_close(&f);
    return ok ? 0 : -1;
}

static int same_floats(const float *a, const float *b, size_t n) {
    return n == 0 || !memcmp(a, b, n * sizeof *a);
}

/* Steps per epoch of count images in p's batches, as fm_train counts them. */
static int steps_of(size_t count, const fm_train_params *p) {
    return (int)((count + (size_t)p->batch - 1) / (size_t)p->batch);
}

static void round_trip(const fm_model *m, const fm_train_params *p, const fm__train_state *s,
                       uint64_t fingerprint, size_t val_count) {
    const char *path = fuzz_tmp_path("round-trip.safetensors");
    fm_err err = {{0}};
    int rc = fm__checkpoint_write(path, m, p, s, fingerprint, val_count, &err);
    FUZZ_ASSERT(rc == 0, "cannot write back an accepted checkpoint: %s", err.msg);
    fm_model *m2 = fm_model_parse(fm_model_description(m), "round trip", &err);
    FUZZ_ASSERT(m2, "description no longer parses: %s", err.msg);
    fm__train_state s2;
    FUZZ_ASSERT(fm__train_state_init(&s2, m2, p, s->count, steps_of(s->count, p)) == 0,
                "out of memory");
    rc = fm__checkpoint_read(fm__dist_world(), path, m2, p, &s2, fingerprint, val_count, &err);
    FUZZ_ASSERT(rc == 0, "cannot read back its own checkpoint: %s", err.msg);
    FUZZ_ASSERT(same_floats(m->params, m2->params, m->n_params) &&
                    same_floats(m->stats, m2->stats, m->n_stats) &&
                    same_floats(m->adam_m, m2->adam_m, m->n_params) &&
                    same_floats(m->adam_v, m2->adam_v, m->n_params),
                "weights or moments changed in the round trip");
    FUZZ_ASSERT(same_floats(s->best_state, s2.best_state, s->state_len), "best_state changed");
    FUZZ_ASSERT(!s->ema || same_floats(s->ema, s2.ema, s->state_len), "the average changed");
    FUZZ_ASSERT(!memcmp(s->order, s2.order, s->count * sizeof *s->order), "order changed");
    FUZZ_ASSERT(s->epoch == s2.epoch && s->step == s2.step && s->stop == s2.stop &&
                    s->seen == s2.seen && s->correct == s2.correct,
                "position changed");
    FUZZ_ASSERT(!strcmp(s->log, s2.log), "log changed");
    fm__train_state_free(&s2);
    fm_model_free(m2);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_file_set(&input, data, size);
    fm_train_params p = fm_train_default_params();
    fm_train_resume_info info;
    fm_err err = {{0}};
    fm_model *m = fm_train_resume_load(fuzz_tmpdir(), &p, &info, &err);
    if (!m) {
        FUZZ_ASSERT(err.msg[0] && !strchr(err.msg, '\n'), "message '%s'", err.msg);
        return 0;
    }
    FUZZ_ASSERT(p.resume && p.batch >= 1 && p.epochs >= 1, "resume_load accepted a bad recipe");

    size_t train_count, val_count;
    uint64_t fingerprint;
    fm__train_state s = {0};
    /* The order tensor holds 8 bytes per training image: a larger count is
     * refused by the reader, so it need not be allocated here. */
    if (recorded_data(input.path, &train_count, &val_count, &fingerprint) == 0 &&
        train_count <= size / 8 &&
        fm__train_state_init(&s, m, &p, train_count, steps_of(train_count, &p)) == 0) {
        err.msg[0] = 0;
        if (fm__checkpoint_read(fm__dist_world(), input.path, m, &p, &s, fingerprint, val_count,
                                &err) == 0) {
            uint8_t *seen = calloc(train_count ? train_count : 1, 1);
            FUZZ_ASSERT(seen, "out of memory");
            for (size_t i = 0; i < train_count; i++) {
                FUZZ_ASSERT(s.order[i] < train_count && !seen[s.order[i]], "order[%zu]", i);
                seen[s.order[i]] = 1;
            }
            free(seen);
            int lines = 0;
            for (const char *c = s.log; *c; c++) lines += *c == '\n';
            FUZZ_ASSERT(lines == s.epoch + 1, "%d log lines for %d epochs", lines, s.epoch);
            round_trip(m, &p, &s, fingerprint, val_count);
        } else {
            FUZZ_ASSERT(err.msg[0] && !strchr(err.msg, '\n'), "message '%s'", err.msg);
        }
    }
    fm__train_state_free(&s);
    fm_model_free(m);
    return 0;
}
