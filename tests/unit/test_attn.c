/* test_attn.c - the tiled attention and the fast exp against their plain definitions, on random
 * data with odd shapes, for every kernel set the CPU has (plain C, AVX2, AVX-512). */
#include "test.h"

#include "base/mem.h"
#include "base/rng.h"
#include "nn/attn.h"
#include "nn/kq.h"

#include <stdlib.h>

static const char *const isas[] = {"scalar", "avx2", "avx512"};

static float urand(uint64_t s[4], float lo, float hi)
{
    return lo + (hi - lo) * (float)(tw_rng_next(s) >> 40) / (float)(1 << 24);
}

struct case_ {
    int H, KV, d;
    int pos0, T;
    bool f16;
};

/* Runs attn_run on one case with nth workers (in turn, on this thread) into out. The cache
 * gets positions 0..pos0-1 in one attn_store call and the chunk's T in another. */
static void run_fast(const struct attn_dims *a, const float *kr, const float *vr,
                     const float *q, float *out, int T, int pos0, int nth, float scale)
{
    size_t elt = a->f16 ? 2 : 4, kvd = (size_t)a->n_kv * a->d;
    void *k = tw_calloc(attn_k_elems(a), elt), *v = tw_calloc(attn_v_elems(a), elt);
    unsigned char *scratch = tw_mallocarray((size_t)nth, attn_scratch_size(a));
    struct attn_job job = {a, k, v, q, out, T, pos0, scale, scratch};
    attn_store(a, k, v, 0, pos0, kr, vr);
    attn_store(a, k, v, pos0, T, kr + (size_t)pos0 * kvd, vr + (size_t)pos0 * kvd);
    for (int ith = 0; ith < nth; ith++)
        attn_run(&job, ith, nth);
    tw_free(k);
    tw_free(v);
    tw_free(scratch);
}

/* One case: the tiled result within 2e-6 of attn_ref, the same bits on 3 workers as on 1, and
 * the same bits when the chunk's last token comes as a second call (decode after prefill). */
static void check_case(const struct case_ *cs, uint64_t seed, double *worst_all)
{
    struct attn_dims a;
    uint64_t s[4];
    int n_pos = cs->pos0 + cs->T;
    size_t kvd = (size_t)cs->KV * cs->d, qd = (size_t)cs->H * cs->d;
    float *kr = tw_mallocarray((size_t)n_pos * kvd, sizeof(float));
    float *vr = tw_mallocarray((size_t)n_pos * kvd, sizeof(float));
    float *q = tw_mallocarray((size_t)cs->T * qd, sizeof(float));
    float *want = tw_mallocarray((size_t)cs->T * qd, sizeof(float));
    float *got = tw_mallocarray((size_t)cs->T * qd, sizeof(float));
    float *got3 = tw_mallocarray((size_t)cs->T * qd, sizeof(float));
    float *got_split = tw_mallocarray((size_t)cs->T * qd, sizeof(float));
    float scale = 1.0f / sqrtf((float)cs->d);
    double worst = 0;

    attn_dims_init(&a, cs->H, cs->KV, cs->d, n_pos + 7, cs->f16);
    tw_rng_seed(s, seed);
    for (size_t i = 0; i < (size_t)n_pos * kvd; i++) {
        kr[i] = urand(s, -2, 2);
        vr[i] = urand(s, -1, 1);
        if (cs->f16) { // the reference sees the values the cache holds
            kr[i] = kq_f16_to_f32(kq_f32_to_f16(kr[i]));
            vr[i] = kq_f16_to_f32(kq_f32_to_f16(vr[i]));
        }
    }
    for (size_t i = 0; i < (size_t)cs->T * qd; i++)
        q[i] = urand(s, -2, 2);
    if (cs->f16) { // the reference gets the F16-rounded queries the kernel uses
        for (size_t i = 0; i < (size_t)cs->T * qd; i++)
            got[i] = kq_f16_to_f32(kq_f32_to_f16(q[i]));
        attn_ref(&a, kr, vr, got, want, cs->T, cs->pos0, scale);
    } else {
        attn_ref(&a, kr, vr, q, want, cs->T, cs->pos0, scale);
    }
    run_fast(&a, kr, vr, q, got, cs->T, cs->pos0, 1, scale);
    run_fast(&a, kr, vr, q, got3, cs->T, cs->pos0, 3, scale);
    if (cs->T > 1) {
        run_fast(&a, kr, vr, q, got_split, cs->T - 1, cs->pos0, 2, scale);
        run_fast(&a, kr, vr, q + (size_t)(cs->T - 1) * qd, got_split + (size_t)(cs->T - 1) * qd,
                 1, cs->pos0 + cs->T - 1, 1, scale);
    } else {
        memcpy(got_split, got, qd * sizeof(float));
    }
    for (size_t i = 0; i < (size_t)cs->T * qd; i++) {
        double dd = fabs((double)got[i] - want[i]);
        worst = dd > worst ? dd : worst;
    }
    *worst_all = worst > *worst_all ? worst : *worst_all;
    bool same3 = !memcmp(got, got3, (size_t)cs->T * qd * sizeof(float));
    bool same_split = !memcmp(got, got_split, (size_t)cs->T * qd * sizeof(float));
    tw_free(kr);
    tw_free(vr);
    tw_free(q);
    tw_free(want);
    tw_free(got);
    tw_free(got3);
    tw_free(got_split);
    CHECK_MSG(worst <= 2e-6, "%s H %d KV %d d %d pos0 %d T %d %s: max |diff| %.3g", kq_isa(),
              cs->H, cs->KV, cs->d, cs->pos0, cs->T, cs->f16 ? "f16" : "f32", worst);
    CHECK_MSG(same3, "%s H %d d %d T %d: 3 workers differ from 1", kq_isa(), cs->H, cs->d, cs->T);
    CHECK_MSG(same_split, "%s H %d d %d T %d: the last token alone differs", kq_isa(), cs->H,
              cs->d, cs->T);
}

TEST(tiled_attention_matches_reference)
{
    /* GQA groups of 3, 2, 1 and 8; head sizes 64, 8 (stories260K), 24, 80 (not multiples of
     * 16) and 128; T not a multiple of the tile; pos0 inside and at the edge of key blocks;
     * up to 340 positions (11 key blocks) */
    static const struct case_ cases[] = {
        {12, 4, 64, 0, 70, false},  {12, 4, 64, 33, 22, true},  {8, 4, 8, 0, 37, false},
        {8, 4, 8, 31, 1, true},     {4, 4, 24, 5, 19, false},   {6, 2, 80, 64, 9, true},
        {8, 1, 16, 0, 65, false},   {2, 1, 128, 100, 3, false}, {12, 4, 64, 95, 1, false},
        {12, 4, 64, 40, 90, true},  {12, 4, 64, 300, 40, true}, {8, 2, 64, 0, 200, false},
    };
    const char *orig = kq_isa();
    int n_isa = 0;
    for (size_t i = 0; i < sizeof(isas) / sizeof(isas[0]); i++) {
        if (kq_set_isa(isas[i]) < 0)
            continue;
        double worst = 0;
        n_isa++;
        for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
            check_case(&cases[c], 1000 + c, &worst);
            if (test__failed)
                break;
        }
        fprintf(stderr, "  %s: max |tiled - reference| %.3g over %zu cases\n", isas[i], worst,
                sizeof(cases) / sizeof(cases[0]));
        if (test__failed)
            break;
    }
    kq_set_isa(orig);
    CHECK(n_isa >= 1);
}

/* The F16 cache holds exactly kq_f32_to_f16's bits (the kernels convert with vcvtps2ph): ties,
 * subnormals, overflow to inf, -0, inf and NaN included; keys land transposed, values in rows. */
TEST(f16_store_matches_kq_f32_to_f16)
{
    struct attn_dims a;
    enum { H = 2, D = 40, T = 3, POS0 = 30 };
    float kc[T * H * D], vc[T * H * D];
    static const float special[] = {0.0f,     -0.0f,    1.0f + 0x1p-11f, 1.0f + 0x3p-11f,
                                    0x1p-20f, -0x1p-24f, 0x1p-25f,       6e-8f,
                                    65504.0f, 65520.0f, -1e9f,           INFINITY,
                                    -INFINITY, NAN,     0x1.ffcp-15f,   3.14159f};
    uint64_t s[4];
    const char *orig = kq_isa();
    tw_rng_seed(s, 11);
    for (int i = 0; i < T * H * D; i++) {
        kc[i] = i % 3 ? urand(s, -70000, 70000) * (i % 2 ? 1e-9f : 1.0f) : special[i % 16];
        vc[i] = i % 5 ? urand(s, -2, 2) : special[(i / 5) % 16];
    }
    attn_dims_init(&a, H, H, D, 64, true);
    for (size_t k = 0; k < sizeof(isas) / sizeof(isas[0]); k++) {
        int bad = 0;
        if (kq_set_isa(isas[k]) < 0)
            continue;
        uint16_t *kh = tw_calloc(attn_k_elems(&a), 2), *vh = tw_calloc(attn_v_elems(&a), 2);
        attn_store(&a, kh, vh, POS0, T, kc, vc);
        for (int t = 0; t < T; t++) {
            int p = POS0 + t;
            for (int h = 0; h < H; h++)
                for (int i = 0; i < D; i++) {
                    size_t x = ((size_t)t * H + h) * D + i;
                    size_t ko = ((size_t)h * a.n_blk + p / ATTN_BK) * D * ATTN_BK +
                                (size_t)i * ATTN_BK + p % ATTN_BK;
                    size_t vo = ((size_t)h * a.n_blk * ATTN_BK + p) * a.dp + i;
                    bad += kh[ko] != kq_f32_to_f16(kc[x]);
                    bad += vh[vo] != kq_f32_to_f16(vc[x]);
                }
        }
        tw_free(kh);
        tw_free(vh);
        if (bad) {
            kq_set_isa(orig);
            TEST_FAIL_("%s: %d cached F16 values differ from kq_f32_to_f16", isas[k], bad);
        }
    }
    kq_set_isa(orig);
}

/* The relative error of attn_exp against exp() in double over [-87, 88.7] (normal results), and
 * its edges: exp(-inf) = 0, exp(0) = 1, tiny results flush to 0. */
TEST(fast_exp_max_relative_error)
{
    const size_t n = 1 << 20;
    float *x = tw_mallocarray(n, sizeof(float)), *y = tw_mallocarray(n, sizeof(float));
    const char *orig = kq_isa();
    for (size_t i = 0; i < n; i++)
        x[i] = -87.0f + (88.7f + 87.0f) * (float)i / (float)(n - 1);
    x[7] = 0.0f;
    for (size_t k = 0; k < sizeof(isas) / sizeof(isas[0]); k++) {
        double worst = 0, worst_x = 0;
        if (kq_set_isa(isas[k]) < 0)
            continue;
        attn_exp(x, y, n - 3); // a tail that is not a whole vector
        attn_exp(x + n - 3, y + n - 3, 3);
        for (size_t i = 0; i < n; i++) {
            double e = exp((double)x[i]), rel = fabs(y[i] - e) / e;
            if (rel > worst) {
                worst = rel;
                worst_x = x[i];
            }
        }
        float edge[4] = {-INFINITY, -200.0f, 0.0f, -110.0f}, out[4];
        attn_exp(edge, out, 4);
        fprintf(stderr, "  %s: max relative error %.3g (%.2f ulp) at x = %.6g\n", kq_isa(), worst,
                worst / 5.96e-8, worst_x);
        if (worst > 1.5e-7 || out[0] != 0.0f || out[1] != 0.0f || out[2] != 1.0f ||
            out[3] != 0.0f) {
            kq_set_isa(orig);
            tw_free(x);
            tw_free(y);
            TEST_FAIL_("%s: exp max relative error %.3g at %.6g, exp(-inf) %g, exp(0) %g",
                       isas[k], worst, worst_x, out[0], out[2]);
        }
    }
    kq_set_isa(orig);
    tw_free(x);
    tw_free(y);
}

TEST(silu_mul_matches_definition)
{
    enum { N = 1000 };
    float g[N], u[N], g0[N];
    uint64_t s[4];
    const char *orig = kq_isa();
    tw_rng_seed(s, 7);
    for (int i = 0; i < N; i++) {
        g0[i] = urand(s, -30, 30);
        u[i] = urand(s, -3, 3);
    }
    g0[0] = -120.0f; // exp(-g) past the float range: silu is -0
    g0[1] = 0.0f;
    for (size_t k = 0; k < sizeof(isas) / sizeof(isas[0]); k++) {
        double worst = 0;
        if (kq_set_isa(isas[k]) < 0)
            continue;
        memcpy(g, g0, sizeof(g));
        attn_silu_mul(g, u, N);
        for (int i = 0; i < N; i++) {
            double want = g0[i] / (1.0 + exp(-(double)g0[i])) * u[i];
            double rel = fabs(g[i] - want) / (fabs(want) + 1e-30);
            worst = rel > worst ? rel : worst;
        }
        CHECK_MSG(worst < 1e-6, "%s: silu*u max relative error %.3g", kq_isa(), worst);
        CHECK(fabsf(g[0]) < 1e-30f && g[1] == 0.0f);
    }
    kq_set_isa(orig);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
