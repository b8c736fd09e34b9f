/* Writing and reading the training checkpoint, checkpoint.safetensors (its
 * contents are listed in checkpoint.h). */
#include "train/checkpoint.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* ---- scalar state ------------------------------------------------------- */

typedef enum { K_INT, K_I64, K_F64, K_F32 } kind;

typedef struct {
    const char *name;
    kind kind;
    void *ptr;
    int min_zero; /* integers: must not be negative */
} field;

/* Every scalar of the state under its tensor name. */
static size_t scalar_fields(fm__train_state *s, field *f) {
    size_t n = 0;
#define F(name, k, p) f[n++] = (field){"train." name, k, p, 1}
#define S(name, k, p) f[n++] = (field){"train." name, k, p, 0}
    F("epoch", K_INT, &s->epoch);
    F("step", K_INT, &s->step);
    F("stop", K_INT, &s->stop);
    F("loss_sum", K_F64, &s->loss_sum);
    F("correct", K_I64, &s->correct);
    F("seen", K_I64, &s->seen);
    F("epoch_seconds", K_F64, &s->epoch_seconds);
    F("seconds", K_F64, &s->seconds);
    /* Adam's names, kept for every optimizer: files already written use them */
    F("adam.lr", K_F32, &s->opt.lr);
    F("adam.t", K_I64, &s->opt.t);
    S("early_stopping.best", K_F64, &s->es.best);
    F("early_stopping.best_epoch", K_INT, &s->es.best_epoch);
    F("early_stopping.wait", K_INT, &s->es.wait);
    F("early_stopping.stopped_epoch", K_INT, &s->es.stopped_epoch);
    S("reduce_lr.best", K_F64, &s->rlr.best);
    F("reduce_lr.wait", K_INT, &s->rlr.wait);
    F("reduce_lr.reductions", K_INT, &s->rlr.reductions);
    /* Keras's name for the best saver, kept: files already written use it */
    S("model_checkpoint.best", K_F64, &s->saver.best);
    F("model_checkpoint.best_epoch", K_INT, &s->saver.best_epoch);
    S("result.loss", K_F64, &s->r.loss);
    S("result.accuracy", K_F64, &s->r.accuracy);
    S("result.val_loss", K_F64, &s->r.val_loss);
    S("result.val_accuracy", K_F64, &s->r.val_accuracy);
    S("result.best_val_accuracy", K_F64, &s->r.best_val_accuracy);
    S("result.restored_val_loss", K_F64, &s->r.restored_val_loss);
    S("result.restored_val_accuracy", K_F64, &s->r.restored_val_accuracy);
#undef F
#undef S
    return n;
}
#define MAX_FIELDS 32

/* ---- the recipe ------------------------------------------------------------ */

#define META_LOG "fmnist.train.log"

typedef struct {
    char key[48];
    char value[1100];
} recipe_kv;

/* The recipe as metadata text; floats with enough digits to read back exactly. */
static size_t recipe_meta(const fm_train_params *p, uint64_t fingerprint, size_t train_count,
                          size_t val_count, recipe_kv *kv) {
    size_t n = 0;
#define KV(k, ...) \
    (snprintf(kv[n].key, sizeof kv[n].key, "fmnist.train." k), \
     snprintf(kv[n].value, sizeof kv[n].value, __VA_ARGS__), n++)
    KV("epochs", "%d", p->epochs);
    KV("batch", "%d", p->batch);
    KV("lr", "%.9g", (double)p->lr);
    KV("seed", "%" PRIu64, p->seed);
    KV("augment", "%d", p->augment);
    KV("es_patience", "%d", p->es_patience);
    KV("lr_patience", "%d", p->lr_patience);
    KV("lr_factor", "%.9g", (double)p->lr_factor);
    KV("min_lr", "%.9g", (double)p->min_lr);
    KV("val_split", "%.17g", p->val_split);
    KV("limit", "%zu", p->limit);
    KV("threads", "%d", p->threads);
    KV("model_source", "%s", p->model_source ? p->model_source : "");
    KV("data_dir", "%s", p->data_dir ? p->data_dir : "");
    KV("data_format", "%s", p->data_format ? p->data_format : "");
    KV("train_count", "%zu", train_count);
    KV("val_count", "%zu", val_count);
    KV("data_fingerprint", "%016" PRIx64, fingerprint);
#undef KV
    return n;
}
#define MAX_RECIPE 20

int fm__checkpoint_write(const char *path, const fm_model *m, const fm_train_params *p,
                         const fm__train_state *s, uint64_t fingerprint, size_t val_count,
                         fm_err *err) {
    fm__train_state *st = (fm__train_state *)s; /* the field table takes pointers; only read */
    field f[MAX_FIELDS];
    size_t nf = scalar_fields(st, f);
    union {
        int64_t i;
        double d;
        float f;
    } values[MAX_FIELDS];
    fm__st_entry e[MAX_FIELDS + 6];
    size_t n = 0;
    for (size_t i = 0; i < nf; i++) {
        fm__st_dtype dt = FM__ST_I64;
        if (f[i].kind == K_INT) values[i].i = *(int *)f[i].ptr;
        if (f[i].kind == K_I64) values[i].i = *(int64_t *)f[i].ptr;
        if (f[i].kind == K_F64) values[i].d = *(double *)f[i].ptr, dt = FM__ST_F64;
        if (f[i].kind == K_F32) values[i].f = *(float *)f[i].ptr, dt = FM__ST_F32;
        e[n++] = (fm__st_entry){.name = f[i].name, .dtype = dt, .ndim = 0, .data = &values[i]};
    }
    int64_t *order = malloc((s->count ? s->count : 1) * sizeof *order);
    if (!order) return fm__err(err, "%s: out of memory", path);
    for (size_t i = 0; i < s->count; i++) order[i] = s->order[i];
    e[n++] = (fm__st_entry){"train.adam_m", FM__ST_F32, 1, {m->n_params}, m->adam_m};
    e[n++] = (fm__st_entry){"train.adam_v", FM__ST_F32, 1, {m->n_params}, m->adam_v};
    e[n++] = (fm__st_entry){"train.best_state", FM__ST_F32, 1, {s->state_len}, s->best_state};
    e[n++] = (fm__st_entry){"train.order", FM__ST_I64, 1, {s->count}, order};
    if (s->ema) e[n++] = (fm__st_entry){"train.ema", FM__ST_F32, 1, {s->state_len}, s->ema};

    recipe_kv kv[MAX_RECIPE];
    size_t nkv = recipe_meta(p, fingerprint, s->count, val_count, kv);
    fm__st_kv meta[MAX_RECIPE + 3];
    for (size_t i = 0; i < nkv; i++) meta[i] = (fm__st_kv){kv[i].key, kv[i].value};
    meta[nkv++] = (fm__st_kv){META_LOG, s->log};
    /* only a name for the record: the recipe's values are the keys above and
     * the whole recipe's text */
    if (p->recipe) meta[nkv++] = (fm__st_kv){FM__CHECKPOINT_RECIPE_NAME, p->recipe};
    char *text = fm_train_recipe_text(p);
    if (!text) {
        free(order);
        return fm__err(err, "%s: out of memory", path);
    }
    meta[nkv++] = (fm__st_kv){FM__CHECKPOINT_RECIPE_TEXT, text};
    int rc = fm__model_save_with(m, path, e, n, meta, nkv, err);
    free(text);
    free(order);
    return rc;
}

/* ---- reading ------------------------------------------------------------- */

/* The tensor `name` with dtype and element count as expected, or an error. */
static const fm__st_tensor *want(const fm__st_file *f, const char *path, const char *name,
                                 fm__st_dtype dtype, int ndim, uint64_t count, fm_err *err) {
    const fm__st_tensor *t = fm__st_find(f, name);
    if (!t) {
        fm__err(err, "%s: missing tensor '%s' (not a training checkpoint?)", path, name);
        return NULL;
    }
    if (t->dtype != dtype || t->ndim != ndim || t->count != count) {
        fm__err(err, "%s: tensor '%s' should be %s with %" PRIu64 " element%s in %d dimension%s",
                path, name, fm__st_dtype_name(dtype), count, count == 1 ? "" : "s", ndim,
                ndim == 1 ? "" : "s");
        return NULL;
    }
    return t;
}

static int read_floats(const fm__st_file *f, const char *path, const char *name, float *dst,
                       size_t count, int non_negative, fm_err *err) {
    const fm__st_tensor *t = want(f, path, name, FM__ST_F32, 1, count, err);
    if (!t) return -1;
    fm__st_copy(t, dst);
    for (size_t i = 0; i < count; i++)
        if (!isfinite(dst[i]) || (non_negative && dst[i] < 0.0f))
            return fm__err(err, "%s: tensor '%s' holds %s value at index %zu", path, name,
                           isfinite(dst[i]) ? "a negative" : "a non-finite", i);
    return 0;
}

int fm__checkpoint_read_scalars(const fm__st_file *f, const char *path, fm__train_state *s,
                                fm_err *err) {
    field fl[MAX_FIELDS];
    size_t nf = scalar_fields(s, fl);
    for (size_t i = 0; i < nf; i++) {
        fm__st_dtype dt = fl[i].kind == K_F64 ? FM__ST_F64
                          : fl[i].kind == K_F32 ? FM__ST_F32
                                                : FM__ST_I64;
        const fm__st_tensor *t = want(f, path, fl[i].name, dt, 0, 1, err);
        if (!t) return -1;
        if (dt == FM__ST_I64) {
            int64_t v;
            fm__st_copy(t, &v);
            if ((fl[i].min_zero && v < 0) || (fl[i].kind == K_INT && v > INT32_MAX))
                return fm__err(err, "%s: tensor '%s' holds %" PRId64 ", out of range", path,
                               fl[i].name, v);
            if (fl[i].kind == K_INT)
                *(int *)fl[i].ptr = (int)v;
            else
                *(int64_t *)fl[i].ptr = v;
        } else if (dt == FM__ST_F64) {
            double v;
            fm__st_copy(t, &v);
            /* best values start at +-infinity; results start as NaN */
            if (fl[i].min_zero && !(v >= 0.0 && isfinite(v)))
                return fm__err(err, "%s: tensor '%s' holds %g, out of range", path, fl[i].name,
                               v);
            *(double *)fl[i].ptr = v;
        } else {
            float v;
            fm__st_copy(t, &v);
            if (!(v >= 0.0f && isfinite(v))) /* a schedule's rate may reach 0 */
                return fm__err(err, "%s: tensor '%s' holds %g, out of range", path, fl[i].name,
                               (double)v);
            *(float *)fl[i].ptr = v;
        }
    }
    return 0;
}

const char *fm__checkpoint_meta(const fm__st_file *f, const char *path, const char *key,
                                fm_err *err) {
    const char *v = fm__st_meta(f, key);
    if (!v) fm__err(err, "%s: missing metadata '%s' (not a training checkpoint?)", path, key);
    return v;
}

/* The text's line for `key` ("key = value"), into line (size > 1); "" when
 * there is none. */
static void recipe_line(const char *text, const char *key, char *line, size_t size) {
    size_t klen = strlen(key);
    line[0] = 0;
    for (const char *s = text; s && *s; s = strchr(s, '\n'), s = s ? s + 1 : NULL)
        if (!strncmp(s, key, klen) && s[klen] == ' ') {
            size_t len = strcspn(s, "\n");
            snprintf(line, size, "%.*s", (int)len, s);
            return;
        }
}

/* Every key of the recipe text but epochs (a resume may raise it) equal in
 * a and b; else -1 and the first that differs. A key the run's text lacks
 * came after its fmnist: the run had its default, as *p has from it. */
static int same_recipe_text(const char *path, const char *run, const char *now, fm_err *err) {
    for (const char *s = now; *s;) {
        size_t len = strcspn(s, "\n");
        char key[64], a[320], b[320]; /* the longest line: model = 255 characters */
        snprintf(key, sizeof key, "%.*s", (int)strcspn(s, " ="), s);
        s += len + (s[len] == '\n');
        if (!strcmp(key, "epochs")) continue;
        recipe_line(run, key, a, sizeof a);
        recipe_line(now, key, b, sizeof b);
        if (a[0] && strcmp(a, b)) {
            const char *was = strstr(a, " = "), *now = strstr(b, " = ");
            return fm__err(err, "%s: the run's %s is %s, not %s; a resume keeps the run's recipe",
                           path, key, was ? was + 3 : "not set", now ? now + 3 : "");
        }
    }
    return 0;
}

/* Refuses a resume whose recipe, data or model differ from the run's. */
static int check_run(const fm__st_file *f, const char *path, const fm_train_params *p,
                     uint64_t fingerprint, size_t train_count, size_t val_count, fm_err *err) {
    /* checkpoints from before the recipe keys beyond the notebook's have only
     * the keys below, which such a run cannot have set otherwise */
    const char *run_text = fm__st_meta(f, FM__CHECKPOINT_RECIPE_TEXT);
    if (run_text) {
        char *now_text = fm_train_recipe_text(p);
        if (!now_text) return fm__err(err, "%s: out of memory", path);
        int rc = same_recipe_text(path, run_text, now_text, err);
        free(now_text);
        if (rc < 0) return -1;
    }
    recipe_kv now[MAX_RECIPE];
    size_t n = recipe_meta(p, fingerprint, train_count, val_count, now);
    /* epochs and threads may change; where things came from is only recorded */
    static const char *const free_keys[] = {"epochs", "threads", "model_source", "data_dir",
                                            "data_format"};
    for (size_t i = 0; i < n; i++) {
        const char *name = now[i].key + strlen("fmnist.train.");
        int is_free = 0;
        for (size_t j = 0; j < sizeof free_keys / sizeof free_keys[0]; j++)
            is_free |= !strcmp(name, free_keys[j]);
        if (is_free) continue;
        const char *run = fm__checkpoint_meta(f, path, now[i].key, err);
        if (!run) return -1;
        if (strcmp(run, now[i].value) == 0) continue;
        if (!strcmp(name, "data_fingerprint") || !strcmp(name, "train_count") ||
            !strcmp(name, "val_count"))
            return fm__err(err,
                           "%s: the data differ from the run's (%s %s, now %s); resume with "
                           "the run's data folder",
                           path, name, run, now[i].value);
        return fm__err(err, "%s: the run's %s is %s, not %s; a resume keeps the run's recipe",
                       path, name, run, now[i].value);
    }
    return 0;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static int read_state(const fm__st_file *f, const char *path, fm_model *m,
                      const fm_train_params *p, fm__train_state *s, uint64_t fingerprint,
                      size_t val_count, fm_err *err) {
    int rc = -1;
    int64_t *order = NULL;
    uint8_t *seen = NULL;
    const char *log;
    if (check_run(f, path, p, fingerprint, s->count, val_count, err) < 0 ||
        fm__model_read_weights(m, f, path, err) < 0 ||
        read_floats(f, path, "train.adam_m", m->adam_m, m->n_params, 0, err) < 0 ||
        read_floats(f, path, "train.adam_v", m->adam_v, m->n_params, 1, err) < 0 ||
        read_floats(f, path, "train.best_state", s->best_state, s->state_len, 0, err) < 0 ||
        (s->ema && read_floats(f, path, "train.ema", s->ema, s->state_len, 0, err) < 0) ||
        fm__checkpoint_read_scalars(f, path, s, err) < 0 ||
        !(log = fm__checkpoint_meta(f, path, META_LOG, err)))
        goto done;

    /* (a train.rng tensor, from an fmnist before per-sample streams, is
     * ignored: the run goes on with the streams) */
    const fm__st_tensor *t = want(f, path, "train.order", FM__ST_I64, 1, s->count, err);
    if (!t) goto done;
    order = malloc((s->count ? s->count : 1) * sizeof *order);
    seen = calloc(s->count ? s->count : 1, 1);
    if (!order || !seen) {
        fm__err(err, "%s: out of memory", path);
        goto done;
    }
    fm__st_copy(t, order);
    for (size_t i = 0; i < s->count; i++) {
        if (order[i] < 0 || (uint64_t)order[i] >= s->count || seen[order[i]]) {
            fm__err(err, "%s: tensor 'train.order' is not an order of the %zu training images "
                         "(index %zu)", path, s->count, i);
            goto done;
        }
        seen[order[i]] = 1;
        s->order[i] = (uint32_t)order[i];
    }

    size_t steps = (s->count + (size_t)p->batch - 1) / (size_t)p->batch;
    if ((size_t)s->step > steps || s->stop > 1 || s->seen > (int64_t)s->count ||
        s->correct > s->seen || (s->step == 0 && s->seen != 0)) {
        fm__err(err, "%s: inconsistent position (epoch %d, step %d of %zu, %" PRId64
                     " images seen)", path, s->epoch, s->step, steps, s->seen);
        goto done;
    }
    if (strncmp(log, "epoch,", 6) != 0 || count_lines(log) != s->epoch + 1) {
        fm__err(err, "%s: metadata '%s' does not hold the log of %d epoch%s", path, META_LOG,
                s->epoch, s->epoch == 1 ? "" : "s");
        goto done;
    }
    size_t len = strlen(log);
    char *copy = malloc(len + 1);
    if (!copy) {
        fm__err(err, "%s: out of memory", path);
        goto done;
    }
    memcpy(copy, log, len + 1);
    free(s->log);
    s->log = copy;
    s->log_len = len;
    s->log_cap = len + 1;
    rc = 0;
done:
    free(order);
    free(seen);
    return rc;
}

int fm__checkpoint_read(const fm__dist *d, const char *path, fm_model *m,
                        const fm_train_params *p, fm__train_state *s, uint64_t fingerprint,
                        size_t val_count, fm_err *err) {
    fm__st_file f;
    if (fm__dist_st_read(d, &f, path, err) < 0) return -1;
    int rc = read_state(&f, path, m, p, s, fingerprint, val_count, err);
    fm__st_close(&f);
    return fm__dist_agree(d, rc, err);
}
