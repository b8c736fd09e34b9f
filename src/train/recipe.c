/* Training recipes: small text files of "key = value" lines ('#' starts a
 * comment) that set the recipe fields of fm_train_params, and the built-in
 * ones (configs/recipes/, compiled in). One table of keys drives the parser,
 * the canonical text a run records and the documentation's key list, so the
 * three cannot disagree. */
#include "train/recipe.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/named.h"

typedef enum { KEY_INT, KEY_FLOAT, KEY_DOUBLE, KEY_BOOL, KEY_CHOICE, KEY_TEXT } key_kind;

typedef struct {
    const char *name;
    key_kind kind;
    size_t offset; /* into fm_train_params */
    double lo, hi; /* inclusive, unless lo_open / hi_open exclude them; KEY_TEXT: hi
                      is the field's size */
    int lo_open, hi_open;
    const char *doc;
    const char *const *choices; /* KEY_CHOICE: the words, NULL-ended; the int is the index */
} recipe_key;

#define AT(field) offsetof(fm_train_params, field)

/* In the order of the FM_OPTIMIZER_, FM_SCHEDULE_, FM_TTA_ and FM_PRECISION_ values. */
static const char *const optimizers[] = {"adam", "adamw", "sgd", NULL};
static const char *const schedules[] = {"plateau", "constant", "cosine", "linear", "onecycle",
                                        NULL};
static const char *const fills[] = {"zero", "random", NULL};
static const char *const ttas[] = {"none", "flip", NULL};
static const char *const precisions[] = {"fp32", "bf16", "auto", NULL};

#define CHOICE(name, field, list, doc) {name, KEY_CHOICE, AT(field), 0, 0, 0, 0, doc, list}

static const recipe_key keys[] = {
    {"epochs", KEY_INT, AT(epochs), 1, 100000, 0, 0, "most epochs to run", NULL},
    {"batch", KEY_INT, AT(batch), 1, 65536, 0, 0, "images per training step", NULL},
    {"lr", KEY_FLOAT, AT(lr), 0, 10, 1, 0,
     "the initial (plateau, constant) or peak (warm-up, cosine, linear, onecycle) rate", NULL},
    {"augment", KEY_BOOL, AT(augment), 0, 1, 0, 0,
     "yes: rotate +-10 degrees, zoom 0.9-1.1, flip; no: none", NULL},
    {"flip", KEY_BOOL, AT(flip), 0, 1, 0, 0,
     "yes: flip left-right with probability 0.5 (not with augment, which flips)", NULL},
    {"translate", KEY_INT, AT(translate), 0, 27, 0, 0,
     "pad-and-crop: shift by whole pixels up to N each way, black fill", NULL},
    {"erase_prob", KEY_FLOAT, AT(erase_prob), 0, 1, 0, 0,
     "random erasing: the probability of erasing a rectangle of an image", NULL},
    {"erase_area_min", KEY_FLOAT, AT(erase_area_min), 0, 1, 1, 0,
     "random erasing: the rectangle's least share of the image", NULL},
    {"erase_area_max", KEY_FLOAT, AT(erase_area_max), 0, 1, 1, 0,
     "random erasing: the rectangle's largest share of the image", NULL},
    {"erase_aspect_min", KEY_FLOAT, AT(erase_aspect_min), 0, 1, 1, 0,
     "random erasing: aspect ratios from this to its inverse (log-uniform)", NULL},
    CHOICE("erase_fill", erase_random, fills, "random erasing: zero (black) or random noise"),
    {"val_split", KEY_DOUBLE, AT(val_split), 0, 0.99, 0, 0,
     "fraction of the training images held out for validation; 0: train on all", NULL},
    CHOICE("optimizer", optimizer, optimizers,
           "adam (Keras's, eps 1e-7), adamw (PyTorch's, eps 1e-8) or sgd (PyTorch's)"),
    {"weight_decay", KEY_FLOAT, AT(weight_decay), 0, 1, 0, 0,
     "adamw: decoupled, sgd: L2 in the gradient; adam: must be 0", NULL},
    {"decay_biases_norms", KEY_BOOL, AT(decay_biases_norms), 0, 1, 0, 0,
     "no: weight decay leaves out biases and BatchNorm's gamma and beta", NULL},
    {"momentum", KEY_FLOAT, AT(momentum), 0, 1, 0, 1, "sgd: momentum", NULL},
    {"nesterov", KEY_BOOL, AT(nesterov), 0, 1, 0, 0, "sgd: Nesterov momentum", NULL},
    CHOICE("schedule", schedule, schedules,
           "plateau (per epoch, on val_loss), or per step over the run: constant, cosine, "
           "linear (decay), onecycle"),
    {"warmup", KEY_FLOAT, AT(warmup), 0, 1, 0, 1,
     "constant, cosine, linear: share of the run's steps warming up linearly", NULL},
    {"warmup_start", KEY_FLOAT, AT(warmup_start), 0, 1, 0, 0,
     "the warm-up's first rate, a factor of lr", NULL},
    {"lr_floor", KEY_FLOAT, AT(lr_floor), 0, 1, 0, 0,
     "cosine, linear: the rate the decay heads to, a factor of lr", NULL},
    {"onecycle_pct_start", KEY_FLOAT, AT(onecycle_pct_start), 0, 1, 0, 0,
     "onecycle: share of the steps rising to lr", NULL},
    {"onecycle_div_factor", KEY_FLOAT, AT(onecycle_div_factor), 1, 1e6, 0, 0,
     "onecycle: the first rate is lr / this", NULL},
    {"onecycle_final_div_factor", KEY_FLOAT, AT(onecycle_final_div_factor), 1, 1e9, 0, 0,
     "onecycle: the last rate is lr / div_factor / this", NULL},
    {"early_stopping_patience", KEY_INT, AT(es_patience), 0, 100000, 0, 0,
     "EarlyStopping's patience (epochs, on val_loss); 0: off", NULL},
    {"plateau_patience", KEY_INT, AT(lr_patience), 1, 100000, 0, 0,
     "plateau: ReduceLROnPlateau's patience (epochs, on val_loss)", NULL},
    {"plateau_factor", KEY_FLOAT, AT(lr_factor), 0, 1, 1, 1, "plateau: the lr multiplier", NULL},
    {"min_lr", KEY_FLOAT, AT(min_lr), 0, 10, 0, 0, "plateau: the floor", NULL},
    {"save_best", KEY_BOOL, AT(save_best), 0, 1, 0, 0,
     "ModelCheckpoint: keep the best val_accuracy weights in best.safetensors", NULL},
    {"label_smoothing", KEY_FLOAT, AT(label_smoothing), 0, 1, 0, 1,
     "label smoothing of the training loss (validation and test loss stay plain)", NULL},
    {"ema", KEY_BOOL, AT(ema), 0, 1, 0, 0,
     "yes: validate and save a moving average of the weights and BatchNorm statistics", NULL},
    {"ema_decay", KEY_FLOAT, AT(ema_decay), 0, 1, 0, 1, "the average's decay per step", NULL},
    {"ema_warmup", KEY_BOOL, AT(ema_warmup), 0, 1, 0, 0,
     "yes: decay min(ema_decay, (1 + t) / (10 + t)) at step t", NULL},
    {"precise_bn", KEY_INT, AT(precise_bn), 0, 100000, 0, 0,
     "re-estimate BatchNorm statistics over this many training batches at the end; 0: off", NULL},
    CHOICE("tta", tta, ttas, "test-time augmentation the model applies: none or flip"),
    {"model", KEY_TEXT, AT(model), 0, sizeof(((fm_train_params *)0)->model), 0, 0,
     "the network: default (fmnist's default network, or --model), a built-in one "
     "(fashion-cnn, fashion-cnn-bn) or a model description file",
     NULL},
    CHOICE("precision", precision, precisions,
           "the training products: fp32; bf16 (bf16 factors, fp32 sums: AMX or AVX512_BF16 where the "
           "CPU has it, else emulated); auto (bf16 where the CPU has it, else fp32)"),
};
#define N_KEYS (sizeof keys / sizeof keys[0])

/* The built-in recipes' texts (generated from configs/recipes/ at build time). */
extern const char fm__recipe_notebook_text[];
extern const char fm__recipe_fast_text[];
extern const char fm__recipe_best_text[];

static const fm__named_text builtins[] = {{"notebook", fm__recipe_notebook_text},
                                          {"fast", fm__recipe_fast_text},
                                          {"best", fm__recipe_best_text}};
#define N_BUILTINS (sizeof builtins / sizeof builtins[0])

const char *fm_train_recipe_builtin(const char *name) {
    return fm__named_find(builtins, N_BUILTINS, name);
}

int fm_train_recipe_load(fm_train_params *p, const char *name_or_file, fm_err *err) {
    const char *text = fm_train_recipe_builtin(name_or_file);
    if (text) {
        if (fm_train_recipe_apply(p, text, name_or_file, err) < 0) return -1;
    } else {
        char *data;
        size_t len;
        if (!fm__named_is_file(name_or_file)) {
            char names[256];
            fm__named_list(builtins, N_BUILTINS, names, sizeof names);
            return fm__err(err, "%s: no such built-in recipe (built in: %s) and no such file (a "
                                "recipe file's name has a '.' or a '/')",
                           name_or_file, names);
        }
        if (fm__read_file(name_or_file, 1u << 20, &data, &len, err) < 0) return -1;
        int rc = memchr(data, 0, len)
                     ? fm__err(err, "%s: not a text file (contains NUL bytes)", name_or_file)
                     : fm_train_recipe_apply(p, data, name_or_file, err);
        free(data);
        if (rc < 0) return -1;
    }
    p->recipe = name_or_file;
    return 0;
}

static void *field(fm_train_params *p, const recipe_key *k) { return (char *)p + k->offset; }

static const void *cfield(const fm_train_params *p, const recipe_key *k) {
    return (const char *)p + k->offset;
}

/* "a, b or c": k's choices. */
static void choice_list(const recipe_key *k, char *buf, size_t size) {
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; k->choices[i] && n < size; i++) {
        const char *sep = i == 0 ? "" : k->choices[i + 1] ? ", " : " or ";
        n += (size_t)snprintf(buf + n, size - n, "%s%s", sep, k->choices[i]);
    }
}

/* Sets k in p from the text v; -1 with err "SOURCE:LINE: ..." when v is not
 * a value of k. */
static int set_value(fm_train_params *p, const recipe_key *k, const char *v, const char *source,
                     int line, fm_err *err) {
    if (k->kind == KEY_BOOL) {
        if (!strcmp(v, "yes")) *(int *)field(p, k) = 1;
        else if (!strcmp(v, "no")) *(int *)field(p, k) = 0;
        else
            return fm__err(err, "%s:%d: %s: '%.40s' is not yes or no", source, line, k->name, v);
        return 0;
    }
    if (k->kind == KEY_TEXT) {
        if (strlen(v) >= (size_t)k->hi)
            return fm__err(err, "%s:%d: %s: longer than %d characters", source, line, k->name,
                           (int)k->hi - 1);
        strcpy((char *)field(p, k), v);
        return 0;
    }
    if (k->kind == KEY_CHOICE) {
        for (int i = 0; k->choices[i]; i++)
            if (!strcmp(v, k->choices[i])) {
                *(int *)field(p, k) = i;
                return 0;
            }
        char words[128];
        choice_list(k, words, sizeof words);
        return fm__err(err, "%s:%d: %s: '%.40s' is not one of %s", source, line, k->name, v,
                       words);
    }
    char *end;
    errno = 0;
    double x = k->kind == KEY_INT ? (double)strtol(v, &end, 10) : strtod(v, &end);
    if (errno == ERANGE || end == v || *end || !isfinite(x))
        return fm__err(err, "%s:%d: %s: '%.40s' is not %s", source, line, k->name, v,
                       k->kind == KEY_INT ? "an integer" : "a number");
    /* a float key is checked as the float it becomes (1e-50 is 0 there) */
    if (k->kind == KEY_FLOAT) x = (double)(float)x;
    if (x < k->lo || (k->lo_open && x == k->lo) || x > k->hi || (k->hi_open && x == k->hi))
        return fm__err(err, "%s:%d: %s = %g is out of range %c%g, %g%c", source, line, k->name, x,
                       k->lo_open ? '(' : '[', k->lo, k->hi, k->hi_open ? ')' : ']');
    if (k->kind == KEY_INT) *(int *)field(p, k) = (int)x;
    else if (k->kind == KEY_FLOAT) *(float *)field(p, k) = (float)x;
    else *(double *)field(p, k) = x;
    return 0;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) e--;
    *e = 0;
    return s;
}

int fm_train_recipe_apply(fm_train_params *p, const char *text, const char *source, fm_err *err) {
    size_t len = strlen(text);
    char *buf = malloc(len + 1);
    if (!buf) return fm__err(err, "%s: out of memory", source);
    memcpy(buf, text, len + 1);
    /* Changes land in a copy, so a recipe with a mistake changes nothing. */
    fm_train_params q = *p;
    unsigned char seen[N_KEYS] = {0};
    int line = 0, rc = 0;
    for (char *s = buf; s && !rc;) {
        char *next = strchr(s, '\n');
        if (next) *next++ = 0;
        line++;
        char *hash = strchr(s, '#');
        if (hash) *hash = 0;
        char *l = trim(s);
        s = next;
        if (!*l) continue;
        char *eq = strchr(l, '=');
        if (!eq) {
            rc = fm__err(err, "%s:%d: expected 'key = value', got '%.40s'", source, line, l);
            break;
        }
        *eq = 0;
        char *key = trim(l), *value = trim(eq + 1);
        size_t k = 0;
        while (k < N_KEYS && strcmp(keys[k].name, key)) k++;
        if (k == N_KEYS) {
            char known[512];
            size_t n = 0;
            for (size_t j = 0; j < N_KEYS && n < sizeof known; j++)
                n += (size_t)snprintf(known + n, sizeof known - n, "%s%s", j ? ", " : "",
                                      keys[j].name);
            rc = fm__err(err, "%s:%d: unknown key '%.40s' (expected %s)", source, line, key, known);
        } else if (seen[k]) {
            rc = fm__err(err, "%s:%d: %s given twice", source, line, key);
        } else if (!*value) {
            rc = fm__err(err, "%s:%d: %s has no value", source, line, key);
        } else {
            seen[k] = 1;
            rc = set_value(&q, &keys[k], value, source, line, err);
        }
    }
    free(buf);
    if (rc) return -1;
    *p = q;
    return 0;
}

/* The shortest decimal that reads back as v (as a float when is_float). */
static void write_number(FILE *f, double v, int is_float) {
    char buf[32];
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        double back = strtod(buf, NULL);
        if (is_float ? (float)back == (float)v : back == v) break;
    }
    fputs(buf, f);
}

/* k's value in p: yes/no (or, for JSON, true/false) and numbers that read
 * back to the same bits. */
static void write_value(FILE *f, const fm_train_params *p, const recipe_key *k, int json) {
    const void *v = cfield(p, k);
    if (k->kind == KEY_BOOL)
        fputs(*(const int *)v ? (json ? "true" : "yes") : (json ? "false" : "no"), f);
    else if (k->kind == KEY_CHOICE)
        fprintf(f, json ? "\"%s\"" : "%s", k->choices[*(const int *)v]);
    else if (k->kind == KEY_TEXT && json) fm_json_write_string(f, (const char *)v);
    else if (k->kind == KEY_TEXT) fputs((const char *)v, f);
    else if (k->kind == KEY_INT) fprintf(f, "%d", *(const int *)v);
    else if (k->kind == KEY_FLOAT) write_number(f, (double)*(const float *)v, 1);
    else write_number(f, *(const double *)v, 0);
}

char *fm_train_recipe_text(const fm_train_params *p) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    for (size_t i = 0; i < N_KEYS; i++) {
        fprintf(f, "%s = ", keys[i].name);
        write_value(f, p, &keys[i], 0);
        fputc('\n', f);
    }
    if (fclose(f)) {
        free(text);
        return NULL;
    }
    return text;
}

void fm_train_recipe_keys(FILE *out) {
    const fm_train_params def = fm_train_default_params();
    for (size_t i = 0; i < N_KEYS; i++) {
        fprintf(out, "  %-26s %s (default ", keys[i].name, keys[i].doc);
        write_value(out, &def, &keys[i], 0);
        fputs(")\n", out);
    }
}

void fm__recipe_write_json(FILE *f, const fm_train_params *p) {
    fputs("{\"name\": ", f);
    if (p->recipe) fm_json_write_string(f, p->recipe);
    else fputs("null", f);
    for (size_t i = 0; i < N_KEYS; i++) {
        fprintf(f, ", \"%s\": ", keys[i].name);
        write_value(f, p, &keys[i], 1);
    }
    fputc('}', f);
}
