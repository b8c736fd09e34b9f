/* The recipe optimizers (optim.h): Keras Adam through train/adam.c, AdamW
 * and SGD as flat loops over spans of the parameter block. */
#include "train/optim.h"

#include <math.h>

#include "core/error.h"
#include "train/adam.h"

void fm__optim_adam(fm__optim *o, float lr) {
    fm__adam a;
    fm__adam_init(&a, lr); /* one place for Keras's defaults */
    *o = (fm__optim){.kind = FM__OPTIM_ADAM, .lr = lr, .beta1 = a.beta1, .beta2 = a.beta2,
                     .eps = a.eps};
}

void fm__optim_adamw(fm__optim *o, float lr, float weight_decay) {
    *o = (fm__optim){.kind = FM__OPTIM_ADAMW, .lr = lr, .beta1 = 0.9f, .beta2 = 0.999f,
                     .eps = 1e-8f, .weight_decay = weight_decay};
}

void fm__optim_sgd(fm__optim *o, float lr, float momentum, int nesterov, float weight_decay) {
    *o = (fm__optim){.kind = FM__OPTIM_SGD, .lr = lr, .momentum = momentum,
                     .nesterov = nesterov, .weight_decay = weight_decay};
}

static const char *const kind_names[] = {"adam", "adamw", "sgd"};

/* -1 and why unless v is finite and >= 0. */
static int nonneg(const fm__optim *o, const char *name, float v, fm_err *err) {
    if (v >= 0 && isfinite(v)) return 0;
    return fm__err(err, "%s: %s %g is not a finite number >= 0", kind_names[o->kind], name, v);
}

/* -1 and why unless v is in [0, 1). */
static int unit(const fm__optim *o, const char *name, float v, fm_err *err) {
    if (v >= 0 && v < 1) return 0;
    return fm__err(err, "%s: %s %g is not in [0, 1)", kind_names[o->kind], name, v);
}

int fm__optim_check(const fm__optim *o, fm_err *err) {
    if ((int)o->kind < FM__OPTIM_ADAM || o->kind > FM__OPTIM_SGD)
        return fm__err(err, "optimizer kind %d is unknown", (int)o->kind);
    if (nonneg(o, "learning rate", o->lr, err) || nonneg(o, "weight decay", o->weight_decay, err))
        return -1;
    if (o->kind == FM__OPTIM_SGD) {
        if (unit(o, "momentum", o->momentum, err)) return -1;
        if (o->nesterov && o->momentum == 0)
            return fm__err(err, "sgd: Nesterov momentum needs a momentum above 0");
        return 0;
    }
    if (o->kind == FM__OPTIM_ADAM && o->weight_decay != 0)
        return fm__err(err, "adam: Keras Adam has no weight decay here (AdamW decouples it)");
    if (unit(o, "beta1", o->beta1, err) || unit(o, "beta2", o->beta2, err)) return -1;
    return nonneg(o, "epsilon", o->eps, err);
}

void fm__decay_from_model(fm__decay *d, const fm_model *m, int kernels_only) {
    d->n = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const fm__layer *l = &m->layers[i];
        for (int j = 0; j < l->type->n_tensors; j++) {
            const fm__tensor_decl *decl = &l->type->tensors[j];
            const fm__tensor *t = &l->t[j];
            if (!decl->trainable || !t->len || (kernels_only && decl->init != FM__INIT_GLOROT))
                continue;
            /* Offsets grow in model order (model.c plans them so): the spans
             * come out sorted, and a tensor right after the last span extends it. */
            if (d->n && d->span[d->n - 1].end == t->offset)
                d->span[d->n - 1].end = t->offset + t->len;
            else
                d->span[d->n++] = (fm__span){t->offset, t->offset + t->len};
        }
    }
}

/* The scalars of one step. decay is the weight decay inside a decay span
 * (AdamW: lr * wd; SGD: wd) and 0 outside, where w - 0 * w and g + 0 * w
 * leave the values as they are: no decay, same bits. */
typedef struct step_scalars {
    float decay;
    float c1, beta2, c2, step_size, bc2_sqrt, eps; /* AdamW */
    float momentum, lr;                            /* SGD */
    int nesterov;
} step_scalars;

static void adamw_run(const step_scalars *s, float *w, const float *g, float *m, float *v,
                      size_t n) {
    const float decay = s->decay, c1 = s->c1, beta2 = s->beta2, c2 = s->c2;
    const float step_size = s->step_size, bc2_sqrt = s->bc2_sqrt, eps = s->eps;
    const ptrdiff_t count = (ptrdiff_t)n;
    /* Streams 7 floats per parameter like adam.c: bound by memory bandwidth,
     * shared better by two cores than one. */
#ifdef _OPENMP
#pragma omp parallel for simd schedule(static) if (count > 65536)
#endif
    for (ptrdiff_t i = 0; i < count; i++) {
        float gi = g[i];
        float wi = w[i] - decay * w[i]; /* decoupled: from the weight before the step */
        float mi = m[i] + (gi - m[i]) * c1;
        float vi = beta2 * v[i] + c2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
}

/* g + decay * w is the coupled decay (L2 in the gradient). Two loops, so
 * that each vectorises (a branch inside keeps GCC from it). */
static void sgd_run(const step_scalars *s, float *w, const float *g, float *b, size_t n) {
    const float decay = s->decay, momentum = s->momentum, lr = s->lr;
    const ptrdiff_t count = (ptrdiff_t)n;
    if (s->nesterov) {
#ifdef _OPENMP
#pragma omp parallel for simd schedule(static) if (count > 65536)
#endif
        for (ptrdiff_t i = 0; i < count; i++) {
            float gi = g[i] + decay * w[i];
            float bi = momentum * b[i] + gi;
            b[i] = bi;
            w[i] -= lr * (gi + momentum * bi);
        }
    } else {
#ifdef _OPENMP
#pragma omp parallel for simd schedule(static) if (count > 65536)
#endif
        for (ptrdiff_t i = 0; i < count; i++) {
            float bi = momentum * b[i] + (g[i] + decay * w[i]);
            b[i] = bi;
            w[i] -= lr * bi;
        }
    }
}

/* Elements [begin, end) of the block, with weight decay when decayed. */
static void run_part(fm__optim_kind kind, const step_scalars *s, float *w, const float *g,
                     float *m, float *v, size_t begin, size_t end, int decayed) {
    if (begin >= end) return;
    step_scalars p = *s;
    if (!decayed) p.decay = 0.0f;
    if (kind == FM__OPTIM_ADAMW)
        adamw_run(&p, w + begin, g + begin, m + begin, v + begin, end - begin);
    else
        sgd_run(&p, w + begin, g + begin, m + begin, end - begin);
}

void fm__optim_step(fm__optim *o, float *w, const float *g, float *m, float *v, size_t n,
                    const fm__decay *decay) {
    if (o->kind == FM__OPTIM_ADAM) {
        fm__adam a = {o->lr, o->beta1, o->beta2, o->eps, o->t};
        fm__adam_step(&a, w, g, m, v, n);
        o->t = a.t;
        return;
    }
    o->t++;
    step_scalars s;
    if (o->kind == FM__OPTIM_ADAMW) {
        /* Per-step scalars in double, as PyTorch computes them in Python
         * floats, each rounded to float once, as its float32 kernels take them. */
        double t = (double)o->t;
        s = (step_scalars){
            .decay = (float)((double)o->lr * o->weight_decay),
            .c1 = 1.0f - o->beta1,
            .beta2 = o->beta2,
            .c2 = 1.0f - o->beta2,
            .step_size = (float)((double)o->lr / (1.0 - pow((double)o->beta1, t))),
            .bc2_sqrt = (float)sqrt(1.0 - pow((double)o->beta2, t)),
            .eps = o->eps,
        };
    } else {
        s = (step_scalars){.decay = o->weight_decay, .momentum = o->momentum, .lr = o->lr,
                           .nesterov = o->nesterov};
    }
    if (!decay) {
        run_part(o->kind, &s, w, g, m, v, 0, n, 1);
        return;
    }
    /* The gaps before and between the spans without decay, the spans with it. */
    size_t at = 0;
    for (int i = 0; i < decay->n; i++) {
        run_part(o->kind, &s, w, g, m, v, at, decay->span[i].begin, 0);
        run_part(o->kind, &s, w, g, m, v, decay->span[i].begin, decay->span[i].end, 1);
        at = decay->span[i].end;
    }
    run_part(o->kind, &s, w, g, m, v, at, n, 0);
}
