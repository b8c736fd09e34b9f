/* The bf16 training tables (src/kernels/fast/bf16.c) against the reference
 * kernels run on operands rounded to bf16 by this file's own rounding.
 *
 * A bf16 op's result is, for each output, an fp32 sum of exact products of
 * bf16-rounded factors. So the reference op (double sums) applied to copies
 * of the operands rounded here differs from it only by the fp32 summation,
 * which test_kernels.c's bound covers: |bf16 - ref| <= TOL * S + u*|ref|, S
 * the sum of |terms| (the reference op on |rounded operands|). Checked too:
 * - rounding itself, bit for bit, through 1x1 products by 1.0: ties to even,
 *   overflow to infinity, subnormals to zero, NaN kept;
 * - that the tables do round: against the reference on the unrounded
 *   operands the same bound fails, by the 2^-9 of a bf16 factor;
 * - 1 and 2 threads, repeatable to the bit, and nothing written past the
 *   end of any output or workspace;
 * - where the CPU has AVX512_BF16, the vdpbf16ps table against the emulated
 *   one (the same bound; it also says how many outputs agree to the bit).
 *   Elsewhere that table prints a SKIP line: its numerics are the emulated
 *   tables', whose products and sums it makes in the same order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fmnist/fmnist.h"
#include "kernels/kernels.h"
#include "kerneltest.h"

static float from_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static uint32_t to_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* x rounded to bf16 by comparing the two neighbours in double (ties: the
 * even one), subnormals to signed zero, NaN to a NaN. */
static float bf16_round(float x) {
    uint32_t u = to_bits(x);
    if (isnan(x)) return x;
    if (fpclassify(x) == FP_SUBNORMAL) return from_bits(u & 0x80000000u);
    if (isinf(x) || x == 0.0f) return x;
    /* the neighbours toward and away from zero; past the largest finite one,
     * the one away is 2^128 in value (IEEE's rule) and infinity in bits */
    uint32_t down = u & 0xffff0000u, up = down + 0x10000u;
    double ulp = ldexp(1.0, ilogb(from_bits(down)) - 7);
    double dd = fabs((double)x - from_bits(down)), du = fabs(fabs((double)from_bits(down)) + ulp - fabs((double)x));
    if (dd < du) return from_bits(down);
    if (du < dd) return from_bits(up);
    return (down >> 16) & 1u ? from_bits(up) : from_bits(down);
}

static float *rounded(const float *x, size_t len, int absolute) {
    float *p = malloc(sizeof(float) * (len ? len : 1));
    for (size_t i = 0; i < len; i++) p[i] = absolute ? fabsf(bf16_round(x[i])) : bf16_round(x[i]);
    return p;
}

static float *copy(const float *x, size_t len) {
    float *p = malloc(sizeof(float) * (len + GUARD));
    memcpy(p, x, sizeof(float) * (len + GUARD));
    return p;
}

/* Largest |got - ref| / (tol*mag + u*|ref|): <= 1 passes. */
static double worst(const float *got, const float *ref, const float *mag, size_t len) {
    double w = 0.0;
    for (size_t i = 0; i < len; i++) {
        double d = fabs((double)got[i] - ref[i]);
        double lim = TOL_SUM * mag[i] + U_EPS * fabs(ref[i]) + 1e-30;
        if (!(d <= lim * 1e30)) return INFINITY;
        if (d / lim > w) w = d / lim;
    }
    return w;
}

static size_t same_bits(const float *a, const float *b, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += memcmp(a + i, b + i, sizeof(float)) == 0;
    return n;
}

/* The tables under test: the emulated one on every fast table this CPU runs,
 * and the vdpbf16ps and AMX ones where it has the instructions. */
#define MAX_TABLES 5
static const fm__kernels *tables[MAX_TABLES];
static int n_tables;
static const fm__kernels *hw, *hw_twin; /* the instruction, and its emulated twin */

/* The three results of one table on one op, for the comparisons. */
typedef struct results {
    float *fwd, *bwd, *dw, *db;
} results;

static void free_results(results *r) { free(r->fwd), free(r->bwd), free(r->dw), free(r->db); }

/* One table's results g (written with workspace ws of nws floats) against
 * the reference's r with magnitudes m: nothing past any end, each op
 * within the bound. who names the table, threads and shape. */
static void check_results(const char *who, const results *g, const results *r, const results *m,
                          size_t nout, size_t nin, size_t nw, size_t nb, const float *ws,
                          size_t nws) {
    CHECK_MSG(guard_ok(g->fwd, nout) && guard_ok(g->bwd, nin) && guard_ok(g->dw, nw) &&
                  guard_ok(g->db, nb) && guard_ok(ws, nws),
              "%s wrote past an end", who);
    double e[4] = {worst(g->fwd, r->fwd, m->fwd, nout), worst(g->bwd, r->bwd, m->bwd, nin),
                   worst(g->dw, r->dw, m->dw, nw), worst(g->db, r->db, m->db, nb)};
    static const char *const op[] = {"forward", "backward data", "backward weights",
                                     "backward bias"};
    for (int i = 0; i < 4; i++)
        CHECK_MSG(e[i] <= 1.0, "%s %s: error %.3g x tolerance", who, op[i], e[i]);
}

/* relu (n) is the ReLU of plain, exactly. */
static void check_relu(const char *who, const float *relu, const float *plain, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += relu[i] != (plain[i] > 0.0f ? plain[i] : 0.0f);
    CHECK_MSG(bad == 0, "%s: ReLU changed %zu outputs wrongly", who, bad);
}

static int rounds_matter; /* shapes where the unrounded reference failed the bound, as it should */

static void test_conv(fm__conv_shape s) {
    const fm__kernels *ref = fm__kernels_ref();
    size_t nin = (size_t)s.n * s.c * s.h * s.w, nout = (size_t)s.n * s.oc * s.oh * s.ow;
    size_t nw = (size_t)s.oc * s.c * s.k * s.k;
    float *in = rnd(nin), *w = rnd(nw), *b = rnd(s.oc), *dout = rnd(nout), *dw0 = rnd(nw),
          *db0 = rnd(s.oc);
    float *rin = rounded(in, nin, 0), *rw = rounded(w, nw, 0), *rdout = rounded(dout, nout, 0);
    float *ain = rounded(in, nin, 1), *aw = rounded(w, nw, 1), *adout = rounded(dout, nout, 1);
    float *ab = malloc(sizeof(float) * s.oc);
    for (int i = 0; i < s.oc; i++) ab[i] = fabsf(b[i]);
    char what[128];
    snprintf(what, sizeof what, "conv n%d c%d %dx%d oc%d k%d s%d pad %d,%d", s.n, s.c, s.h, s.w,
             s.oc, s.k, s.stride, s.pad_t, s.pad_l);

    /* the reference on rounded operands (r), on their magnitudes (m), unrounded (u) */
    results r = {rnd(nout), rnd(nin), copy(dw0, nw), copy(db0, s.oc)};
    results m = {rnd(nout), rnd(nin), malloc(sizeof(float) * nw), malloc(sizeof(float) * s.oc)};
    float *u = rnd(nout);
    ref->conv2d_forward(r.fwd, rin, rw, b, &s, 0, NULL);
    ref->conv2d_forward(m.fwd, ain, aw, ab, &s, 0, NULL);
    ref->conv2d_forward(u, in, w, b, &s, 0, NULL);
    ref->conv2d_backward_data(r.bwd, rdout, rw, &s, NULL);
    ref->conv2d_backward_data(m.bwd, adout, aw, &s, NULL);
    /* the bias gradient sums dout itself: no product, nothing rounded */
    float *scratch = malloc(sizeof(float) * nw), *gabs = malloc(sizeof(float) * nout);
    for (size_t i = 0; i < nout; i++) gabs[i] = fabsf(dout[i]);
    ref->conv2d_backward_weights(r.dw, NULL, rdout, rin, &s, NULL);
    ref->conv2d_backward_weights(scratch, r.db, dout, rin, &s, NULL);
    for (size_t i = 0; i < nw; i++) m.dw[i] = fabsf(dw0[i]);
    for (int i = 0; i < s.oc; i++) m.db[i] = fabsf(db0[i]);
    ref->conv2d_backward_weights(m.dw, NULL, adout, ain, &s, NULL);
    ref->conv2d_backward_weights(scratch, m.db, gabs, ain, &s, NULL);
    free(scratch), free(gabs);

    results got[MAX_TABLES][2];
    for (int t = 0; t < n_tables; t++) {
        const fm__kernels *k = tables[t];
        size_t nws = k->conv2d_workspace(&s);
        for (int th = 0; th < 2; th++) {
            fm_set_threads(1 + th);
            float *ws = rnd(nws);
            results *g = &got[t][th];
            *g = (results){rnd(nout), rnd(nin), copy(dw0, nw), copy(db0, s.oc)};
            k->conv2d_forward(g->fwd, in, w, b, &s, 0, ws);
            k->conv2d_backward_data(g->bwd, dout, w, &s, ws);
            k->conv2d_backward_weights(g->dw, g->db, dout, in, &s, ws);
            char who[200];
            snprintf(who, sizeof who, "%s/%dt %s", k->name, 1 + th, what);
            check_results(who, g, &r, &m, nout, nin, nw, s.oc, ws, nws);
            /* repeatable: the same call again gives the same bits */
            float *again = rnd(nout);
            k->conv2d_forward(again, in, w, b, &s, 0, ws);
            CHECK_MSG(!memcmp(again, g->fwd, sizeof(float) * nout), "%s not repeatable", who);
            /* with ReLU: the same outputs, negatives at zero */
            k->conv2d_forward(again, in, w, b, &s, 1, ws);
            check_relu(who, again, g->fwd, nout);
            free(again), free(ws);
        }
    }
    /* every table on 1 thread and 2 the same bits for forward and data (image order) */
    for (int t = 0; t < n_tables; t++)
        CHECK_MSG(!memcmp(got[t][0].fwd, got[t][1].fwd, sizeof(float) * nout) &&
                      !memcmp(got[t][0].bwd, got[t][1].bwd, sizeof(float) * nin),
                  "%s %s: 1 and 2 threads differ", tables[t]->name, what);
    /* with enough terms, the unrounded products are out of the bound by far */
    if (s.c * s.k * s.k >= 16 && n_tables) {
        double e = worst(got[0][0].fwd, u, m.fwd, nout);
        CHECK_MSG(e > 4.0, "%s %s: as close to the unrounded reference as to the rounded one "
                           "(%.3g x tolerance): operands not rounded?", tables[0]->name, what, e);
        rounds_matter++;
    }
    if (hw) {
        results *h = NULL, *e = NULL;
        for (int t = 0; t < n_tables; t++) {
            if (tables[t] == hw) h = &got[t][0];
            if (tables[t] == hw_twin) e = &got[t][0];
        }
        if (h && e)
            printf("%s %s: %zu of %zu forward outputs equal to the emulated table's bits\n",
                   hw->name, what, same_bits(h->fwd, e->fwd, nout), nout);
    }
    for (int t = 0; t < n_tables; t++)
        for (int th = 0; th < 2; th++) free_results(&got[t][th]);
    free_results(&r), free_results(&m), free(u);
    free(in), free(w), free(b), free(dout), free(dw0), free(db0), free(rin), free(rw), free(rdout);
    free(ain), free(aw), free(adout), free(ab);
}

static void test_dense(int n, int in_dim, int out_dim) {
    const fm__kernels *ref = fm__kernels_ref();
    size_t nin = (size_t)n * in_dim, nout = (size_t)n * out_dim, nw = (size_t)in_dim * out_dim;
    float *in = rnd(nin), *w = rnd(nw), *b = rnd(out_dim), *dout = rnd(nout), *dw0 = rnd(nw),
          *db0 = rnd(out_dim);
    float *rin = rounded(in, nin, 0), *rw = rounded(w, nw, 0), *rdout = rounded(dout, nout, 0);
    float *ain = rounded(in, nin, 1), *aw = rounded(w, nw, 1), *adout = rounded(dout, nout, 1);
    float *ab = malloc(sizeof(float) * out_dim);
    for (int i = 0; i < out_dim; i++) ab[i] = fabsf(b[i]);
    char what[96];
    snprintf(what, sizeof what, "dense n%d in%d out%d", n, in_dim, out_dim);

    results r = {rnd(nout), rnd(nin), copy(dw0, nw), copy(db0, out_dim)};
    results m = {rnd(nout), rnd(nin), malloc(sizeof(float) * nw), malloc(sizeof(float) * out_dim)};
    float *u = rnd(nout);
    ref->dense_forward(r.fwd, rin, rw, b, n, in_dim, out_dim, 0, NULL);
    ref->dense_forward(m.fwd, ain, aw, ab, n, in_dim, out_dim, 0, NULL);
    ref->dense_forward(u, in, w, b, n, in_dim, out_dim, 0, NULL);
    ref->dense_backward_data(r.bwd, rdout, rw, n, in_dim, out_dim, NULL);
    ref->dense_backward_data(m.bwd, adout, aw, n, in_dim, out_dim, NULL);
    float *scratch = malloc(sizeof(float) * nw), *gabs = malloc(sizeof(float) * nout);
    for (size_t i = 0; i < nout; i++) gabs[i] = fabsf(dout[i]);
    ref->dense_backward_weights(r.dw, NULL, rdout, rin, n, in_dim, out_dim, NULL);
    ref->dense_backward_weights(scratch, r.db, dout, rin, n, in_dim, out_dim, NULL);
    for (size_t i = 0; i < nw; i++) m.dw[i] = fabsf(dw0[i]);
    for (int i = 0; i < out_dim; i++) m.db[i] = fabsf(db0[i]);
    ref->dense_backward_weights(m.dw, NULL, adout, ain, n, in_dim, out_dim, NULL);
    ref->dense_backward_weights(scratch, m.db, gabs, ain, n, in_dim, out_dim, NULL);
    free(scratch), free(gabs);

    float *first[MAX_TABLES] = {NULL};
    for (int t = 0; t < n_tables; t++) {
        const fm__kernels *k = tables[t];
        size_t nws = k->dense_workspace(n, in_dim, out_dim);
        results keep[2];
        for (int th = 0; th < 2; th++) {
            fm_set_threads(1 + th);
            float *ws = rnd(nws);
            results g = {rnd(nout), rnd(nin), copy(dw0, nw), copy(db0, out_dim)};
            k->dense_forward(g.fwd, in, w, b, n, in_dim, out_dim, 0, ws);
            k->dense_backward_data(g.bwd, dout, w, n, in_dim, out_dim, ws);
            k->dense_backward_weights(g.dw, g.db, dout, in, n, in_dim, out_dim, ws);
            char who[200];
            snprintf(who, sizeof who, "%s/%dt %s", k->name, 1 + th, what);
            check_results(who, &g, &r, &m, nout, nin, nw, out_dim, ws, nws);
            float *again = rnd(nout);
            k->dense_forward(again, in, w, b, n, in_dim, out_dim, 1, ws);
            check_relu(who, again, g.fwd, nout);
            free(again), free(ws);
            keep[th] = g;
        }
        /* each output is one tile's sum, whoever computes it: threads do not change bits */
        CHECK_MSG(!memcmp(keep[0].fwd, keep[1].fwd, sizeof(float) * nout) &&
                      !memcmp(keep[0].bwd, keep[1].bwd, sizeof(float) * nin) &&
                      !memcmp(keep[0].dw, keep[1].dw, sizeof(float) * nw),
                  "%s %s: 1 and 2 threads differ", k->name, what);
        if (k == hw || k == hw_twin) first[k == hw] = copy(keep[0].fwd, nout);
        free_results(&keep[0]), free_results(&keep[1]);
    }
    if (in_dim >= 16 && n_tables) {
        fm_set_threads(1);
        float *ws = rnd(tables[0]->dense_workspace(n, in_dim, out_dim)), *g = rnd(nout);
        tables[0]->dense_forward(g, in, w, b, n, in_dim, out_dim, 0, ws);
        double e = worst(g, u, m.fwd, nout);
        CHECK_MSG(e > 4.0, "%s %s: as close to the unrounded reference as to the rounded one "
                           "(%.3g x tolerance): operands not rounded?", tables[0]->name, what, e);
        rounds_matter++;
        free(ws), free(g);
    }
    if (first[0] && first[1])
        printf("%s %s: %zu of %zu forward outputs equal to the emulated table's bits\n", hw->name,
               what, same_bits(first[1], first[0], nout), nout);
    free(first[0]), free(first[1]);
    free_results(&r), free_results(&m), free(u);
    free(in), free(w), free(b), free(dout), free(dw0), free(db0), free(rin), free(rw), free(rdout);
    free(ain), free(aw), free(adout), free(ab);
}

/* Rounding, bit for bit: x * 1.0 through a 1x1 conv of one channel and a
 * dense layer of one input, where the fp32 sum adds nothing. */
static void test_rounding(void) {
    static const uint32_t special[] = {
        0x3f800000u, 0x3f808000u /* tie, even below: down */, 0x3f818000u /* tie, odd: up */,
        0x3f808001u /* just above the tie: up */, 0x3f807fffu /* just below: down */,
        0x7f7fffffu /* largest float: rounds up to infinity */, 0xff7fffffu,
        0x00000001u /* subnormals: zero, keeping the sign */, 0x807fffffu,
        0x00800000u /* smallest normal: kept */, 0x7f800000u, 0xff800000u, 0x80000000u,
        0x7fc00000u /* NaN */, 0x7f800001u /* signalling NaN: stays a NaN */,
    };
    enum { N_SPECIAL = sizeof special / sizeof special[0], N = N_SPECIAL + 500 };
    float *x = rnd(N), one = 1.0f, zero = 0.0f;
    for (int i = 0; i < N_SPECIAL; i++) x[i] = from_bits(special[i]);
    for (int i = N_SPECIAL; i < N; i++) x[i] = from_bits((uint32_t)(fm_rng_uniform(&rng) * 4294967296.0));
    fm__conv_shape s = conv_shape(N, 1, 1, 1, 1, 1, 1, 0);
    for (int t = 0; t < n_tables; t++) {
        const fm__kernels *k = tables[t];
        float *ws = rnd(k->conv2d_workspace(&s)), *out = rnd(N);
        for (int via = 0; via < 2; via++) {
            if (via == 0) k->conv2d_forward(out, x, &one, &zero, &s, 0, ws);
            else {
                float *dws = rnd(k->dense_workspace(N, 1, 1));
                k->dense_forward(out, x, &one, &zero, N, 1, 1, 0, dws);
                free(dws);
            }
            int bad = 0;
            for (int i = 0; i < N; i++) {
                float want = bf16_round(x[i]);
                int ok = isnan(want) ? isnan(out[i]) : to_bits(out[i]) == to_bits(want + 0.0f);
                /* x*1 + 0: a signed zero comes out +0 */
                if (want == 0.0f) ok = out[i] == 0.0f;
                if (!ok && bad++ < 5)
                    fprintf(stderr, "%s %s: bf16(%a = 0x%08x) gave %a, want %a\n", k->name,
                            via ? "dense" : "conv", x[i], to_bits(x[i]), out[i], want);
            }
            CHECK_MSG(bad == 0, "%s: %d of %d values rounded wrongly", k->name, bad, N);
        }
        free(ws), free(out);
    }
    free(x);
}

int main(void) {
    fm_rng_seed(&rng, 11);
    static const char *const bases[] = {"avx512", "avx2", "portable"};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        const fm__kernels *base = fm__kernels_by_name(bases[i]);
        const fm__kernels *k = base ? fm__kernels_bf16_emulated(base) : NULL;
        if (!k) {
            printf("SKIP: %s-bf16emu: no %s table on this CPU/build\n", bases[i], bases[i]);
            continue;
        }
        tables[n_tables++] = k;
        if (i == 0) hw_twin = k;
    }
    CHECK(!fm__kernels_bf16_emulated(fm__kernels_ref()));
    hw = fm__kernels_bf16_avx512();
    if (hw) tables[n_tables++] = hw;
    else
        printf("SKIP: avx512-bf16 (vdpbf16ps): this CPU or build has no AVX512_BF16; its order "
               "of products and sums is the emulated tables', tested here\n");
    if (!hw) hw_twin = NULL;
    /* AMX's tdpbf16ps sums in its own order: it is held to the bound alone */
    const fm__kernels *amx = fm__kernels_bf16_amx();
    if (amx) tables[n_tables++] = amx;
    else printf("SKIP: amx-bf16 (tdpbf16ps): this CPU, OS or build has no AMX-BF16\n");
    CHECK(fm__kernels_bf16() == (amx ? amx : hw));
    for (int t = 0; t < n_tables; t++) printf("testing %s\n", tables[t]->name);

    /* which table training at each precision gets */
    CHECK(fm__kernels_for_precision(FM_PRECISION_FP32) == fm__kernels_select());
    const fm__kernels *autok = fm__kernels_for_precision(FM_PRECISION_AUTO);
    const fm__kernels *instr = fm__kernels_bf16();
    CHECK(instr ? autok == instr || fm__kernels_fp32_base(fm__kernels_select()) != fm__kernels_avx512()
                : autok == fm__kernels_select());
    const fm__kernels *bf = fm__kernels_for_precision(FM_PRECISION_BF16);
    CHECK(bf && strstr(bf->name, "bf16"));
    CHECK(fm_kernels_train_name(FM_PRECISION_BF16) && !strcmp(fm_kernels_train_name(FM_PRECISION_BF16), bf->name));
    CHECK(!strcmp(fm_precision_name(FM_PRECISION_AUTO), "auto") && !fm_precision_name(3));

    test_rounding();
    /* n, c, h, w, oc, k, stride, same */
    static const int convs[][8] = {
        {3, 1, 28, 28, 64, 3, 1, 1},  {2, 64, 14, 14, 128, 3, 1, 1}, {1, 128, 14, 14, 128, 3, 1, 1},
        {7, 5, 7, 7, 17, 3, 1, 1},    {3, 17, 14, 14, 5, 3, 2, 1},   {2, 3, 28, 28, 17, 5, 1, 1},
        {1, 3, 5, 5, 5, 1, 1, 0},     {1, 1, 1, 1, 1, 1, 1, 1},      {7, 1, 1, 1, 1, 3, 1, 1},
        {1, 32, 13, 13, 48, 3, 1, 0}, {3, 64, 5, 5, 64, 5, 2, 1},    {5, 20, 9, 11, 7, 3, 1, 1},
    };
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        const int *v = convs[i];
        test_conv(conv_shape(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]));
    }
    static const int dense[][3] = {{1, 1, 1},     {3, 7, 5},    {7, 33, 17}, {32, 6272, 256},
                                   {5, 256, 10},  {17, 48, 64}, {130, 2100, 13}, {64, 300, 129}};
    for (size_t i = 0; i < sizeof dense / sizeof dense[0]; i++)
        test_dense(dense[i][0], dense[i][1], dense[i][2]);
    CHECK_MSG(n_tables == 0 || rounds_matter >= 10, "only %d shapes showed the rounding",
              rounds_matter);
    if (n_tables == 0) SKIP("no bf16 table in this build");
    return check_finish();
}
