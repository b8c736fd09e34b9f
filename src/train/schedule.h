/* Per-step learning-rate schedules for the training recipes (issue 12): the
 * rate of step s (0-based, the s-th optimizer update) of a run of `total`
 * steps as a pure function, computed in double (the optimizer rounds it to
 * its float lr). Plain data, so a recipe can hold it and a checkpoint needs
 * nothing but the step count.
 *
 * Warm-up and decay (kinds CONSTANT, COSINE, LINEAR), W = warmup_steps,
 * D = total - W, f = floor:
 *   s < W:  lr * (start + (1 - start) * s / W)       linear warm-up from start * lr
 *   s >= W, p = s - W in [0, D):
 *     CONSTANT  lr
 *     COSINE    lr * (f + (1 - f) * (1 + cos(pi p / D)) / 2)
 *     LINEAR    lr * (1 - (1 - f) * p / D)
 * i.e. torch's LinearLR(start, 1, total_iters=W) for the warm-up, then
 * CosineAnnealingLR(T_max=D, eta_min=f*lr) or LinearLR(1, f, total_iters=D):
 * the floor is where the decay would be one step after the last update.
 *
 * ONECYCLE is torch.optim.lr_scheduler.OneCycleLR (three_phase=False, no
 * momentum cycling), lr its max_lr: from lr/div_factor up to lr over steps
 * 0 .. pct_start*total - 1, then down to lr/div_factor/final_div_factor at
 * step total - 1, by half a cosine (or linearly, anneal_linear), with its
 * expressions as they are. Where torch divides by zero (a phase of no width:
 * pct_start * total = 1, or total = 1 with pct_start = 1) that step takes
 * the phase's end value.
 *
 * A step past the end keeps the last step's rate. Used by
 * tests/test_optim.c (against torch's schedulers,
 * tests/torch/gen_fixtures.py); meant for the recipe wiring of fm_train,
 * which sets the optimizer's rate from it before each step. */
#ifndef FM_TRAIN_SCHEDULE_H
#define FM_TRAIN_SCHEDULE_H

#include <stdint.h>

#include "fmnist/fmnist.h"

typedef enum fm__sched_kind {
    FM__SCHED_CONSTANT,
    FM__SCHED_COSINE,
    FM__SCHED_LINEAR,
    FM__SCHED_ONECYCLE
} fm__sched_kind;

typedef struct fm__schedule {
    fm__sched_kind kind;
    double lr;              /* the peak rate: after the warm-up; one-cycle's max_lr */
    int64_t warmup_steps;   /* CONSTANT, COSINE, LINEAR: 0 for none */
    double warmup_start;    /* factor of lr at step 0 of the warm-up, in [0, 1] */
    double floor;           /* COSINE, LINEAR: factor of lr the decay heads to, in [0, 1] */
    double pct_start;       /* ONECYCLE: share of the steps spent rising, in [0, 1] (0.3) */
    double div_factor;      /* ONECYCLE: first rate lr / div_factor (25) */
    double final_div_factor; /* ONECYCLE: last rate lr / div_factor / final_div_factor (1e4) */
    int anneal_linear;      /* ONECYCLE: linear annealing; 0 is cosine (torch's default) */
} fm__schedule;

/* CONSTANT, COSINE or LINEAR (kind) at peak rate lr after warmup_steps of
 * warm-up from warmup_start * lr, the decay heading to floor * lr (unused
 * by CONSTANT). warmup_steps 0 with CONSTANT is the plain rate lr. */
void fm__schedule_warmup(fm__schedule *s, fm__sched_kind kind, double lr, int64_t warmup_steps,
                         double warmup_start, double floor);
/* ONECYCLE with torch's defaults: pct_start 0.3, div_factor 25,
 * final_div_factor 1e4, cosine; a recipe may change them afterwards. */
void fm__schedule_onecycle(fm__schedule *s, double max_lr);

/* 0 when s is usable for a run of total steps: total >= 1, lr finite and
 * > 0, warm-up steps >= 0, the factors and pct_start in [0, 1], the
 * divisors finite and > 0; otherwise -1 and what is wrong. */
int fm__schedule_check(const fm__schedule *s, int64_t total, fm_err *err);

/* The rate of step `step` >= 0 (0-based; total - 1 and beyond give the
 * last step's) of a run of total >= 1 steps. */
double fm__schedule_lr(const fm__schedule *s, int64_t step, int64_t total);

#endif
