/* fm_train_resume_load: what `fmnist train --resume` needs from a run
 * folder's checkpoint before it has any data (the recorded recipe, the
 * position and the model); fm_train then reads the rest. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/parse.h"
#include "dist/dist.h"
#include "train/checkpoint.h"

fm_model *fm_train_resume_load(const char *run_dir, fm_train_params *p,
                               fm_train_resume_info *info, fm_err *err) {
    char path[4096];
    if (fm__path_join(path, sizeof path, run_dir, FM__CHECKPOINT_FILE, err) < 0) return NULL;
    /* process 0 reads it for every process of a run across processes */
    const fm__dist *d = fm__dist_world();
    FILE *probe = d->rank == 0 ? fopen(path, "rb") : NULL;
    int found = d->rank != 0 || probe
                    ? 0
                    : fm__err(err, "%s: no training checkpoint to resume from (%s)", path,
                              strerror(errno));
    if (probe) fclose(probe);
    if (fm__dist_agree(d, found, err) < 0) return NULL;
    fm__st_file f;
    if (fm__dist_st_read(d, &f, path, err) < 0) return NULL;
    fm_model *m = NULL;
    memset(info, 0, sizeof *info);

    /* The whole recipe where the checkpoint has it; the keys below (all that
     * older checkpoints hold) then agree with it. */
    const char *text = fm__st_meta(&f, FM__CHECKPOINT_RECIPE_TEXT);
    if (text) {
        fm_err why;
        if (fm_train_recipe_apply(p, text, path, &why) < 0) {
            fm__err(err, "%s: the recorded recipe is not valid: %s", path, why.msg);
            goto fail;
        }
    }
    static const char *const int_keys[] = {"epochs", "batch", "augment", "es_patience",
                                           "lr_patience", "threads"};
    int *const int_dst[] = {&p->epochs, &p->batch, &p->augment, &p->es_patience,
                            &p->lr_patience, &info->threads};
    static const char *const float_keys[] = {"lr", "lr_factor", "min_lr", "val_split"};
    char key[64];
    for (size_t i = 0; i < sizeof int_keys / sizeof int_keys[0]; i++) {
        snprintf(key, sizeof key, "fmnist.train.%s", int_keys[i]);
        const char *v = fm__checkpoint_meta(&f, path, key, err);
        uint64_t x;
        if (!v) goto fail;
        if (fm__parse_u64(v, 1000000, &x) < 0) {
            fm__err(err, "%s: metadata '%s' = '%.40s' is not a valid number", path, key, v);
            goto fail;
        }
        *int_dst[i] = (int)x;
    }
    for (size_t i = 0; i < sizeof float_keys / sizeof float_keys[0]; i++) {
        snprintf(key, sizeof key, "fmnist.train.%s", float_keys[i]);
        const char *v = fm__checkpoint_meta(&f, path, key, err);
        if (!v) goto fail;
        char *end;
        double x = strtod(v, &end);
        if (end == v || *end || !isfinite(x) || x < 0) {
            fm__err(err, "%s: metadata '%s' = '%.40s' is not a valid number", path, key, v);
            goto fail;
        }
        if (i == 0) p->lr = (float)x;
        if (i == 1) p->lr_factor = (float)x;
        if (i == 2) p->min_lr = (float)x;
        if (i == 3) p->val_split = x;
    }
    const char *seed = fm__checkpoint_meta(&f, path, "fmnist.train.seed", err);
    const char *limit = seed ? fm__checkpoint_meta(&f, path, "fmnist.train.limit", err) : NULL;
    if (!limit) goto fail;
    uint64_t sv, lv;
    if (fm__parse_u64(seed, UINT64_MAX, &sv) < 0 || fm__parse_u64(limit, SIZE_MAX, &lv) < 0) {
        fm__err(err, "%s: metadata seed '%.40s' / limit '%.40s' are not valid numbers", path, seed,
                limit);
        goto fail;
    }
    p->seed = sv;
    p->limit = (size_t)lv;
    const char *src = fm__checkpoint_meta(&f, path, "fmnist.train.model_source", err);
    const char *dir = src ? fm__checkpoint_meta(&f, path, "fmnist.train.data_dir", err) : NULL;
    if (!dir) goto fail;
    snprintf(info->model_source, sizeof info->model_source, "%s", src);
    snprintf(info->data_dir, sizeof info->data_dir, "%s", dir);
    const char *recipe = fm__st_meta(&f, FM__CHECKPOINT_RECIPE_NAME);
    snprintf(info->recipe, sizeof info->recipe, "%s", recipe ? recipe : "");
    p->recipe = info->recipe[0] ? info->recipe : NULL;
    p->out_dir = run_dir;
    fm_err why;
    if (fm__train_check_params(p, &why) < 0) { /* caught here, before any data is loaded */
        fm__err(err, "%s: the recorded recipe is not valid: %s", path, why.msg);
        goto fail;
    }

    fm__train_state s = {0};
    if (fm__checkpoint_read_scalars(&f, path, &s, err) < 0) goto fail;
    info->epoch = s.epoch;
    info->step = s.step;
    fm__st_close(&f);

    if (!(m = fm_model_load(path, err))) return NULL;
    p->resume = 1;
    p->init = 0;
    return m;
fail:
    fm__st_close(&f);
    return NULL;
}
