/* Learning-rate schedules (schedule.h): closed forms of the step. */
#include "train/schedule.h"

#include <math.h>

#include "core/error.h"

#define PI 3.14159265358979323846 /* PI is not in strict C11 */

void fm__schedule_warmup(fm__schedule *s, fm__sched_kind kind, double lr, int64_t warmup_steps,
                         double warmup_start, double floor) {
    *s = (fm__schedule){.kind = kind, .lr = lr, .warmup_steps = warmup_steps,
                        .warmup_start = warmup_start, .floor = floor};
}

void fm__schedule_onecycle(fm__schedule *s, double max_lr) {
    *s = (fm__schedule){.kind = FM__SCHED_ONECYCLE, .lr = max_lr, .pct_start = 0.3,
                        .div_factor = 25.0, .final_div_factor = 1e4};
}

static int unit(double v) { return v >= 0 && v <= 1; }
static int positive(double v) { return v > 0 && isfinite(v); }

int fm__schedule_check(const fm__schedule *s, int64_t total, fm_err *err) {
    if (total < 1)
        return fm__err(err, "learning-rate schedule: %lld steps (needs 1 or more)",
                       (long long)total);
    if (!positive(s->lr))
        return fm__err(err, "learning-rate schedule: rate %g is not a finite number > 0", s->lr);
    switch (s->kind) {
    case FM__SCHED_CONSTANT:
    case FM__SCHED_COSINE:
    case FM__SCHED_LINEAR:
        if (s->warmup_steps < 0)
            return fm__err(err, "learning-rate schedule: %lld warm-up steps",
                           (long long)s->warmup_steps);
        if (!unit(s->warmup_start))
            return fm__err(err, "learning-rate schedule: warm-up start %g is not in [0, 1]",
                           s->warmup_start);
        if (!unit(s->floor))
            return fm__err(err, "learning-rate schedule: floor %g is not in [0, 1]", s->floor);
        return 0;
    case FM__SCHED_ONECYCLE:
        if (!unit(s->pct_start))
            return fm__err(err, "one-cycle schedule: pct_start %g is not in [0, 1]", s->pct_start);
        if (!positive(s->div_factor) || !positive(s->final_div_factor))
            return fm__err(err,
                           "one-cycle schedule: div_factor %g and final_div_factor %g must be "
                           "finite and > 0",
                           s->div_factor, s->final_div_factor);
        return 0;
    }
    return fm__err(err, "learning-rate schedule: kind %d is unknown", (int)s->kind);
}

/* OneCycleLR.get_lr for one parameter group, its expressions in its order
 * (so the same doubles come out), phases ending at steps end1 and total - 1. */
static double onecycle(const fm__schedule *s, int64_t step, int64_t total) {
    double initial = s->lr / s->div_factor;
    double min_lr = initial / s->final_div_factor;
    double end1 = s->pct_start * (double)total - 1.0, end2 = (double)(total - 1);
    double x = (double)step, from, to, start, end;
    if (x <= end1) {
        from = initial, to = s->lr, start = 0.0, end = end1;
    } else {
        from = s->lr, to = min_lr, start = end1, end = end2;
    }
    double pct = end > start ? (x - start) / (end - start) : 1.0; /* torch: 0 / 0 */
    if (s->anneal_linear) return (to - from) * pct + from;
    return to + (from - to) / 2.0 * (cos(PI * pct) + 1.0);
}

double fm__schedule_lr(const fm__schedule *s, int64_t step, int64_t total) {
    if (step > total - 1) step = total - 1;
    if (s->kind == FM__SCHED_ONECYCLE) return onecycle(s, step, total);
    int64_t w = s->warmup_steps;
    if (step < w)
        return s->lr * (s->warmup_start + (1.0 - s->warmup_start) * (double)step / (double)w);
    double p = (double)(step - w), d = (double)(total - w), f = s->floor;
    switch (s->kind) {
    case FM__SCHED_COSINE: return s->lr * (f + (1.0 - f) * (1.0 + cos(PI * p / d)) / 2.0);
    case FM__SCHED_LINEAR: return s->lr * (1.0 - (1.0 - f) * p / d);
    default: return s->lr;
    }
}
