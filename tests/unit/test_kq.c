/* test_kq.c - tensor types and kernels: half/bfloat rounding, quantization error bounds, every
 * fast kernel against its reference on random data and odd shapes, and the matmul driver. */
#include "base/mem.h"
#include "base/pool.h"
#include "nn/gguf.h"
#include "nn/kq.h"
#include "nn/kq_impl.h"
#include "test.h"

#include <cJSON.h>
#include <float.h>
#include <stdint.h>
#include <stdlib.h>

/* ---- helpers ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd_u32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static float rnd_uniform(void) // (0, 1)
{
    return ((rnd_u32() >> 8) + 0.5f) / 16777216.0f;
}

static float rnd_gauss(void)
{
    float u = rnd_uniform(), v = rnd_uniform();
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

static float *gauss_vec(int64_t n, float scale)
{
    float *v = tw_mallocarray((size_t)n, sizeof(float));
    for (int64_t i = 0; v && i < n; i++)
        v[i] = rnd_gauss() * scale;
    return v;
}

static const enum gguf_ttype all_types[] = {GGUF_T_F32,  GGUF_T_F16,  GGUF_T_BF16,
                                            GGUF_T_Q8_0, GGUF_T_Q4_0, GGUF_T_Q4_K,
                                            GGUF_T_Q5_K, GGUF_T_Q6_K};
#define N_TYPES (sizeof(all_types) / sizeof(all_types[0]))

static const char *tname(enum gguf_ttype t)
{
    switch (t) {
    case GGUF_T_F32: return "f32";
    case GGUF_T_F16: return "f16";
    case GGUF_T_BF16: return "bf16";
    case GGUF_T_Q8_0: return "q8_0";
    case GGUF_T_Q4_0: return "q4_0";
    case GGUF_T_Q4_K: return "q4_k";
    case GGUF_T_Q5_K: return "q5_k";
    case GGUF_T_Q6_K: return "q6_k";
    default: return "?";
    }
}

static const char *const isas[] = {"avx2", "avx512", "avx512-novnni"};

static void *quantized(enum gguf_ttype t, const float *x, int64_t n)
{
    void *q = tw_malloc(kq__row_bytes(t, n) + 1);
    if (q)
        kq_quant(t, x, q, n);
    return q;
}

/* ---- half and bfloat ---- */

TEST(kq_f16_roundtrip_all)
{
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) // nan
            continue;
        float f = kq_f16_to_f32((uint16_t)h);
        CHECK_EQ_INT(kq_f32_to_f16(f), h);
    }
    CHECK_EQ_INT(kq_f32_to_f16(65504.0f), 0x7BFF);
    CHECK_EQ_INT(kq_f32_to_f16(65519.0f), 0x7BFF);
    CHECK_EQ_INT(kq_f32_to_f16(65520.0f), 0x7C00); // tie rounds to even: infinity
    CHECK_EQ_INT(kq_f32_to_f16(1e10f), 0x7C00);
    CHECK_EQ_INT(kq_f32_to_f16(-1e10f), 0xFC00);
    CHECK(isnan(kq_f16_to_f32(kq_f32_to_f16(NAN))));
    CHECK_EQ_INT(kq_f32_to_f16(0x1p-25f), 0);      // half of the smallest subnormal: even
    CHECK_EQ_INT(kq_f32_to_f16(0x1.8p-24f), 2);    // 1.5 units: to even (2)
    CHECK_EQ_INT(kq_f32_to_f16(-0x1p-24f), 0x8001);
    CHECK_EQ_INT(kq_f32_to_f16(1.0f + 0x1p-11f), 0x3C00); // tie between 1 and 1+2^-10: even
    CHECK_EQ_INT(kq_f32_to_f16(1.0f + 0x1.8p-10f), 0x3C02);
}

/* Random floats: the result is the nearest half (ties to even). */
TEST(kq_f16_nearest)
{
    for (int i = 0; i < 200000; i++) {
        uint32_t bits = rnd_u32();
        bits = (bits & 0x80000000u) | (0x33000000u + bits % (0x477FE000u - 0x33000000u));
        float f;
        memcpy(&f, &bits, sizeof(f));
        uint16_t h = kq_f32_to_f16(f);
        double e = fabs((double)kq_f16_to_f32(h) - f);
        uint16_t hs[2] = {(uint16_t)(h + 1), (uint16_t)(h - 1)};
        for (int k = 0; k < 2; k++) {
            if ((hs[k] & 0x7C00) == 0x7C00 || ((hs[k] ^ h) & 0x8000))
                continue;
            double e2 = fabs((double)kq_f16_to_f32(hs[k]) - f);
            CHECK_MSG(e < e2 || (e == e2 && !(h & 1)), "f=%a h=%#x", (double)f, h);
        }
    }
}

TEST(kq_bf16)
{
    CHECK_EQ_INT(kq_f32_to_bf16(1.0f), 0x3F80);
    CHECK_EQ_INT(kq_f32_to_bf16(1.0f + 0x1p-8f), 0x3F80); // tie: even
    CHECK_EQ_INT(kq_f32_to_bf16(1.0f + 0x1.8p-7f), 0x3F82);
    CHECK(kq_bf16_to_f32(kq_f32_to_bf16(-3.5f)) == -3.5f);
    CHECK(isnan(kq_bf16_to_f32(kq_f32_to_bf16(NAN))));
    for (uint32_t h = 0; h < 65536; h++)
        if ((h & 0x7F80) != 0x7F80)
            CHECK_EQ_INT(kq_f32_to_bf16(kq_bf16_to_f32((uint16_t)h)), h);
}

/* ---- quantization error ---- */

/* RMSE of quantize+dequantize relative to the RMS of Gaussian data, per type. The bounds sit a
 * little above what llama.cpp's quantizers reach on such data (see docs/engine.md). */
TEST(kq_quant_error_bounds)
{
    const struct {
        enum gguf_ttype t;
        double lo, hi; // allowed range of relative RMSE
    } cases[] = {
        {GGUF_T_F32, 0, 0},          {GGUF_T_F16, 1e-5, 4e-4},    {GGUF_T_BF16, 1e-4, 3e-3},
        {GGUF_T_Q8_0, 2e-3, 8e-3},   {GGUF_T_Q6_K, 1e-2, 2.2e-2}, {GGUF_T_Q5_K, 2.5e-2, 4.5e-2},
        {GGUF_T_Q4_K, 5e-2, 9e-2}, {GGUF_T_Q4_0, 6e-2, 1.2e-1},
    };
    const int64_t n = 256 * 64;
    float *x = gauss_vec(n, 0.02f), *y = tw_mallocarray((size_t)n, sizeof(float));
    CHECK(x && y);
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        void *q = quantized(cases[k].t, x, n);
        CHECK(q);
        kq_dequant(cases[k].t, q, y, n);
        double se = 0, ss = 0;
        for (int64_t i = 0; i < n; i++) {
            se += (double)(y[i] - x[i]) * (y[i] - x[i]);
            ss += (double)x[i] * x[i];
        }
        double rel = sqrt(se / ss);
        if (getenv("KQ_VERBOSE"))
            fprintf(stderr, "%s rel rmse %.5f\n", tname(cases[k].t), rel);
        tw_free(q);
        CHECK_MSG(rel >= cases[k].lo && rel <= cases[k].hi, "%s: relative rmse %.5f not in [%g, %g]",
                  tname(cases[k].t), rel, cases[k].lo, cases[k].hi);
    }
    tw_free(x);
    tw_free(y);
}

/* Constant, zero and single-spike blocks: no division by zero, exact where representable. */
TEST(kq_quant_degenerate)
{
    const int64_t n = 512;
    float *x = tw_calloc((size_t)n, sizeof(float)), *y = tw_calloc((size_t)n, sizeof(float));
    CHECK(x && y);
    for (size_t k = 0; k < N_TYPES; k++) {
        enum gguf_ttype t = all_types[k];
        memset(x, 0, (size_t)n * sizeof(float));
        void *q = quantized(t, x, n);
        CHECK(q);
        kq_dequant(t, q, y, n);
        for (int64_t i = 0; i < n; i++)
            CHECK_MSG(y[i] == 0.0f, "%s zero -> %g at %lld", tname(t), (double)y[i],
                      (long long)i);
        tw_free(q);
        x[37] = 1.5f; // one spike: it must come back close
        q = quantized(t, x, n);
        kq_dequant(t, q, y, n);
        CHECK_MSG(fabsf(y[37] - 1.5f) < 0.02f, "%s spike -> %g", tname(t), (double)y[37]);
        for (int64_t i = 0; i < n; i++)
            if (i != 37)
                CHECK_MSG(fabsf(y[i]) < 0.1f, "%s spike leaks %g at %lld", tname(t),
                          (double)y[i], (long long)i);
        tw_free(q);
    }
    tw_free(x);
    tw_free(y);
}

/* ---- fast kernels against the references ---- */

static double dot_scale(enum gguf_ttype t, const void *w, const float *x, int64_t n)
{
    float *d = tw_mallocarray((size_t)n, sizeof(float));
    double s = 0;
    kq_dequant(t, w, d, n);
    for (int64_t i = 0; i < n; i++)
        s += fabs((double)d[i] * x[i]);
    tw_free(d);
    return s + 1e-30;
}

TEST(kq_isa_matches_ref)
{
    const struct kq_ops *ref = kq__ops_ref();
    const int64_t sizes[] = {96, 256, 512, 768, 800, 1024 + 256, 2304};
    const int64_t odd[] = {1, 3, 7, 15, 16, 17, 31, 33, 63, 65, 100, 129, 255};
    int tested = 0;
    for (size_t s = 0; s < sizeof(isas) / sizeof(isas[0]); s++) {
        const struct kq_ops *ops = kq__ops_isa(isas[s]);
        if (!ops)
            continue;
        for (size_t k = 0; k < N_TYPES; k++) {
            enum gguf_ttype t = all_types[k], vt = kq__vec_type(t);
            const struct kq_type_ops *o = &ops->type[t], *r = &ref->type[t];
            int64_t bs = kq__block_size(t);
            for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]) + sizeof(odd) / sizeof(odd[0]);
                 si++) {
                int64_t n = si < sizeof(sizes) / sizeof(sizes[0])
                                ? sizes[si]
                                : odd[si - sizeof(sizes) / sizeof(sizes[0])];
                if (n % bs)
                    continue;
                float *w = gauss_vec(n, 0.05f), *x = gauss_vec(n, 1.0f);
                float *d0 = tw_mallocarray((size_t)n, sizeof(float));
                float *d1 = tw_mallocarray((size_t)n, sizeof(float));
                void *wq = quantized(t, w, n);
                size_t xb = kq__row_bytes(vt, n);
                void *x0 = tw_calloc(1, xb + 1), *x1 = tw_calloc(1, xb + 1);
                CHECK(w && x && d0 && d1 && wq && x0 && x1);
                /* decoders: bit-exact */
                r->dequant(wq, d0, n);
                o->dequant(wq, d1, n);
                CHECK_MSG(!memcmp(d0, d1, (size_t)n * sizeof(float)), "%s %s dequant n=%lld",
                          isas[s], tname(t), (long long)n);
                /* activation conversion: byte-exact */
                r->from_float(x, x0, n);
                o->from_float(x, x1, n);
                CHECK_MSG(!memcmp(x0, x1, xb), "%s %s from_float n=%lld", isas[s],
                          tname(t), (long long)n);
                /* dot: same integer sums, float order differs */
                float a = r->vec_dot(n, wq, x0), b = o->vec_dot(n, wq, x0);
                double tol = 2e-6 * dot_scale(t, wq, x, n);
                CHECK_MSG(fabs((double)a - b) <= tol, "%s %s dot n=%lld: %.9g vs %.9g", isas[s],
                          tname(t), (long long)n, (double)a, (double)b);
                tw_free(w), tw_free(x), tw_free(d0), tw_free(d1), tw_free(wq), tw_free(x0),
                    tw_free(x1);
                tested++;
            }
        }
    }
    (void)tested;
}

/* Reference matmul: dequantized weights against activations converted as the kernels do. */
static void matmul_ref(enum gguf_ttype t, const void *w, int64_t n_in, int64_t n_out,
                       const float *x, int64_t n_tok, float *y)
{
    const struct kq_type_ops *r = &kq__ops_ref()->type[t];
    enum gguf_ttype vt = kq__vec_type(t);
    size_t xb = kq__row_bytes(vt, n_in), wb = kq__row_bytes(t, n_in);
    void *xq = tw_malloc(xb + 1);
    for (int64_t k = 0; k < n_tok; k++) {
        r->from_float(x + k * n_in, xq, n_in);
        for (int64_t o = 0; o < n_out; o++)
            y[k * n_out + o] = r->vec_dot(n_in, (const char *)w + o * wb, xq);
    }
    tw_free(xq);
}

TEST(kq_matmul_shapes)
{
    struct tw_err err = TW_ERR_INIT;
    struct tw_pool *pool = NULL;
    CHECK_OK(tw_pool_new(3, &pool, &err), &err);
    const char *sets[] = {"scalar", "avx2", "avx512", "avx512-novnni"};
    for (size_t k = 0; k < N_TYPES; k++) {
        enum gguf_ttype t = all_types[k];
        /* odd block counts exercise the pairwise kernels' tails */
        int64_t n_in = kq__block_size(t) == 1 ? 77 : kq__block_size(t) == 32 ? 544 : 512;
        for (int64_t n_out = 1; n_out <= 13; n_out += 3) {
            for (int64_t n_tok = 1; n_tok <= 17; n_tok += (n_tok < 6 ? 1 : 5)) {
                float *w = gauss_vec(n_in * n_out, 0.05f), *x = gauss_vec(n_in * n_tok, 1.0f);
                void *wq = quantized(t, w, n_in * n_out);
                float *y0 = tw_calloc((size_t)(n_out * n_tok), sizeof(float));
                float *y1 = tw_calloc((size_t)(n_out * n_tok), sizeof(float));
                CHECK(w && x && wq && y0 && y1);
                matmul_ref(t, wq, n_in, n_out, x, n_tok, y0);
                for (size_t s = 0; s < 4; s++) {
                    const struct kq_ops *ops = kq__ops_isa(sets[s]);
                    if (!ops)
                        continue;
                    for (int pl = 0; pl < 2; pl++) {
                        memset(y1, 0xFF, (size_t)(n_out * n_tok) * sizeof(float));
                        kq__matmul(ops, t, wq, n_in, n_out, x, n_tok, y1, pl ? pool : NULL);
                        for (int64_t i = 0; i < n_out * n_tok; i++) {
                            int64_t o = i % n_out, tk = i / n_out;
                            double tol = 2e-6 * dot_scale(t, (const char *)wq +
                                                                 o * kq__row_bytes(t, n_in),
                                                          x + tk * n_in, n_in);
                            CHECK_MSG(fabs((double)y0[i] - y1[i]) <= tol,
                                      "%s %s n_out=%lld n_tok=%lld y[%lld]: %.9g vs %.9g", sets[s],
                                      tname(t), (long long)n_out, (long long)n_tok,
                                      (long long)i, (double)y0[i], (double)y1[i]);
                        }
                    }
                }
                tw_free(w), tw_free(x), tw_free(wq), tw_free(y0), tw_free(y1);
            }
        }
    }
    tw_pool_free(pool);
}

/* Larger shapes: whole 16-row panels and 4x4 tiles with rows and tokens left over, several
 * threads each taking a slice. */
TEST(kq_matmul_panels)
{
    struct tw_err err = TW_ERR_INIT;
    struct tw_pool *pool = NULL;
    CHECK_OK(tw_pool_new(3, &pool, &err), &err);
    /* n_out, n_tok, and n_in for 32-blocks (768: whole 4-block steps of the 4-row dot) */
    const int64_t shapes[][3] = {{16, 16, 800}, {37, 21, 800}, {70, 33, 800},
                                 {37, 1, 768},  {23, 3, 768},  {16, 17, 768}};
    for (size_t k = 0; k < N_TYPES; k++) {
        enum gguf_ttype t = all_types[k];
        for (size_t sh = 0; sh < sizeof(shapes) / sizeof(shapes[0]); sh++) {
            int64_t n_out = shapes[sh][0], n_tok = shapes[sh][1];
            int64_t n_in = kq__block_size(t) == 1    ? 77
                           : kq__block_size(t) == 32 ? shapes[sh][2]
                                                     : 512;
            float *w = gauss_vec(n_in * n_out, 0.05f), *x = gauss_vec(n_in * n_tok, 1.0f);
            void *wq = quantized(t, w, n_in * n_out);
            float *y0 = tw_calloc((size_t)(n_out * n_tok), sizeof(float));
            float *y1 = tw_calloc((size_t)(n_out * n_tok), sizeof(float));
            CHECK(w && x && wq && y0 && y1);
            matmul_ref(t, wq, n_in, n_out, x, n_tok, y0);
            for (int pl = 0; pl < 2; pl++) {
                memset(y1, 0xFF, (size_t)(n_out * n_tok) * sizeof(float));
                kq_matmul(t, wq, n_in, n_out, x, n_tok, y1, pl ? pool : NULL);
                for (int64_t i = 0; i < n_out * n_tok; i++) {
                    int64_t o = i % n_out, tk = i / n_out;
                    double tol = 2e-6 * dot_scale(t, (const char *)wq + o * kq__row_bytes(t, n_in),
                                                  x + tk * n_in, n_in);
                    CHECK_MSG(fabs((double)y0[i] - y1[i]) <= tol,
                              "%s %s n_out=%lld n_tok=%lld y[%lld]: %.9g vs %.9g", kq_isa(),
                              tname(t), (long long)n_out, (long long)n_tok, (long long)i,
                              (double)y0[i], (double)y1[i]);
                }
            }
            tw_free(w), tw_free(x), tw_free(wq), tw_free(y0), tw_free(y1);
        }
    }
    tw_pool_free(pool);
}

/* Repacked weights (kq_pack, the x16 layout): packing is a permutation of the rows' bytes
 * (unpacking gives them back exactly), and kq_matmul_packed equals the reference matmul to float
 * rounding for token generation (1 token), small batches (gemv over 2-4 tokens), prompts
 * (panels) and the rows left over after the groups of 16, on one thread and three. */
TEST(kq_packed_matches_ref)
{
    struct tw_err err = TW_ERR_INIT;
    struct tw_pool *pool = NULL;
    CHECK_OK(tw_pool_new(3, &pool, &err), &err);
    static const enum gguf_ttype types[] = {GGUF_T_F32,  GGUF_T_Q8_0, GGUF_T_Q4_0,
                                            GGUF_T_Q4_K, GGUF_T_Q5_K, GGUF_T_Q6_K};
    /* n_out, n_tok: whole groups, groups + tail rows, 1..5 tokens, panel sizes */
    const int64_t shapes[][2] = {{16, 1}, {37, 1}, {48, 2}, {37, 3}, {64, 4},
                                 {53, 5}, {16, 16}, {37, 21}, {70, 33}};
    int packed_any = 0;
    for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
        enum gguf_ttype t = types[k];
        for (size_t sh = 0; sh < sizeof(shapes) / sizeof(shapes[0]); sh++) {
            int64_t n_out = shapes[sh][0], n_tok = shapes[sh][1];
            int64_t n_in = kq__block_size(t) == KQ_QK_K ? 768   // 3 super-blocks
                           : kq__block_size(t) == KQ_QK ? 800    // 25 blocks
                                                        : 803;   // 4 columns per step, 3 left
            size_t rb = kq__row_bytes(t, n_in);
            float *w = gauss_vec(n_in * n_out, 0.05f), *x = gauss_vec(n_in * n_tok, 1.0f);
            void *wq = quantized(t, w, n_in * n_out);
            unsigned char *g = tw_malloc(rb * 16), *back = tw_malloc(rb * 16);
            float *y0 = tw_calloc((size_t)(n_out * n_tok), sizeof(float));
            float *y1 = tw_calloc((size_t)(n_out * n_tok), sizeof(float));
            CHECK(w && x && wq && g && back && y0 && y1);
            kq__pack_x16(t, n_in, wq, rb, g);
            kq__unpack_x16(t, n_in, g, back, rb);
            CHECK(memcmp(back, wq, rb * 16) == 0);
            CHECK(memcmp(g, wq, rb * 16) != 0);
            int nomem = 1;
            struct kq_packed *p = kq_pack(t, wq, n_in, n_out, pool, &nomem);
            CHECK_EQ_INT(nomem, 0);
            if (!p) { // no x16 kernels on this CPU: the layout is still checked above
                CHECK(!kq__ops()->type[t].gemv_x16);
                tw_free(w), tw_free(x), tw_free(wq), tw_free(g), tw_free(back);
                tw_free(y0), tw_free(y1);
                continue;
            }
            packed_any = 1;
            CHECK_EQ_INT(kq_packed_bytes(p), (long long)(rb * (size_t)n_out));
            matmul_ref(t, wq, n_in, n_out, x, n_tok, y0);
            for (int pl = 0; pl < 2; pl++) {
                memset(y1, 0xFF, (size_t)(n_out * n_tok) * sizeof(float));
                kq_matmul_packed(p, x, n_tok, y1, pl ? pool : NULL);
                for (int64_t i = 0; i < n_out * n_tok; i++) {
                    int64_t o = i % n_out, tk = i / n_out;
                    double tol = 2e-6 * dot_scale(t, (const char *)wq + o * rb, x + tk * n_in,
                                                  n_in);
                    CHECK_MSG(fabs((double)y0[i] - y1[i]) <= tol,
                              "packed %s n_out=%lld n_tok=%lld y[%lld]: %.9g vs %.9g", tname(t),
                              (long long)n_out, (long long)n_tok, (long long)i, (double)y0[i],
                              (double)y1[i]);
                }
            }
            kq_packed_free(p);
            tw_free(w), tw_free(x), tw_free(wq), tw_free(g), tw_free(back);
            tw_free(y0), tw_free(y1);
        }
    }
    if (!strcmp(kq_isa(), "avx512") && kq__ops_isa("avx512")->type[GGUF_T_Q4_0].gemv_x16)
        CHECK(packed_any);
    /* no packed layout: other types, fewer than 16 rows */
    float *w = gauss_vec(256 * 16, 0.05f);
    void *q8 = quantized(GGUF_T_BF16, w, 256 * 16), *q4 = quantized(GGUF_T_Q4_0, w, 256 * 16);
    CHECK(w && q8 && q4);
    CHECK(kq_pack(GGUF_T_BF16, q8, 256, 16, NULL, NULL) == NULL);
    CHECK(kq_pack(GGUF_T_F16, q4, 256, 16, NULL, NULL) == NULL);
    CHECK(kq_pack(GGUF_T_Q4_0, q4, 256, 15, NULL, NULL) == NULL);
    tw_free(w), tw_free(q8), tw_free(q4);
    tw_pool_free(pool);
}

/* Out of memory: kq_pack reports it and leaks nothing; kq_matmul_packed without memory for the
 * converted activations (a row larger than its stack buffer) still gives the right answer. */
TEST(kq_packed_out_of_memory)
{
    const int64_t n_in = 24576, n_out = 19; // Q8_0X row of 25.3 KB, over the 16 KB stack buffer
    float *w = gauss_vec(n_in * n_out, 0.05f), *x = gauss_vec(n_in, 1.0f);
    void *wq = quantized(GGUF_T_Q4_0, w, n_in * n_out);
    float *y0 = tw_calloc((size_t)n_out, sizeof(float)), *y1 = tw_calloc((size_t)n_out, 4);
    CHECK(w && x && wq && y0 && y1);
    for (long k = 0; k < 2; k++) {
        int nomem = 0;
        tw_mem_fail_after(k);
        struct kq_packed *p = kq_pack(GGUF_T_Q4_0, wq, n_in, n_out, NULL, &nomem);
        tw_mem_fail_after(-1);
        CHECK(p == NULL);
        CHECK_EQ_INT(nomem, kq__ops()->type[GGUF_T_Q4_0].gemv_x16 != NULL);
    }
    struct kq_packed *p = kq_pack(GGUF_T_Q4_0, wq, n_in, n_out, NULL, NULL);
    if (p) {
        matmul_ref(GGUF_T_Q4_0, wq, n_in, n_out, x, 1, y0);
        tw_mem_fail_after(0);
        kq_matmul_packed(p, x, 1, y1, NULL);
        tw_mem_fail_after(-1);
        for (int64_t o = 0; o < n_out; o++) {
            double tol = 2e-6 * dot_scale(GGUF_T_Q4_0,
                                          (const char *)wq + o * kq__row_bytes(GGUF_T_Q4_0, n_in),
                                          x, n_in);
            CHECK_MSG(fabs((double)y0[o] - y1[o]) <= tol, "y[%lld]: %.9g vs %.9g", (long long)o,
                      (double)y0[o], (double)y1[o]);
        }
        kq_packed_free(p);
    }
    tw_free(w), tw_free(x), tw_free(wq), tw_free(y0), tw_free(y1);
}

/* Activation quantization costs about 1e-2 relative against a float dot product of the
 * dequantized weights; the float types stay within rounding. */
TEST(kq_dot_vs_float)
{
    const int64_t n = 4096 + 512;
    for (size_t k = 0; k < N_TYPES; k++) {
        enum gguf_ttype t = all_types[k];
        float *w = gauss_vec(n, 0.05f), *x = gauss_vec(n, 1.0f);
        float *d = tw_mallocarray((size_t)n, sizeof(float));
        void *wq = quantized(t, w, n);
        CHECK(w && x && d && wq);
        kq_dequant(t, wq, d, n);
        double exact = 0, scale = 0;
        for (int64_t i = 0; i < n; i++) {
            exact += (double)d[i] * x[i];
            scale += fabs((double)d[i] * x[i]);
        }
        float got = kq_dot(t, wq, x, n);
        double tol = t == GGUF_T_F32 ? 1e-6 : t == GGUF_T_F16 || t == GGUF_T_BF16 ? 5e-3 : 1e-2;
        CHECK_MSG(fabs(got - exact) <= tol * scale, "%s: %.7g vs %.7g (scale %.4g)",
                  tname(t), (double)got, exact, scale);
        tw_free(w), tw_free(x), tw_free(d), tw_free(wq);
    }
}

TEST(kq_dispatch)
{
    const char *isa = kq_isa();
    CHECK(!strcmp(isa, "scalar") || !strcmp(isa, "avx2") || !strcmp(isa, "avx512"));
    CHECK(kq__ops_isa("scalar") != NULL);
    CHECK(kq__ops_isa("neon") == NULL);
    const char *force = getenv("TWIN_KQ");
    if (force && !strcmp(force, "scalar"))
        CHECK_EQ_STR(isa, "scalar");
    for (size_t k = 0; k < N_TYPES; k++)
        CHECK(kq_type_supported(all_types[k]));
    CHECK(!kq_type_supported(GGUF_T_Q4_1));
    CHECK(!kq_type_supported(GGUF_T_Q8_K)); // internal activation format only
}

/* ---- exactness against llama.cpp (shared/refs/synth-tiny) ---- */

static int near_rel(double a, double b, double rel)
{
    return fabs(a - b) <= rel * fmax(fabs(a), fabs(b)) + 1e-12;
}

static int64_t tensor_n(const struct gguf_tensor *t)
{
    int64_t n = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        n *= t->ne[d];
    return n;
}

/* Our decoders against ggml's dequantization of every tensor of one file: the sums, the sum of
 * absolute values and of squares to 1e-5, the first and last 16 values to 1e-6 (the JSON keeps
 * 9 significant digits). */
static void check_dequant_file(const char *q)
{
    char rel[128];
    struct tw_err err = TW_ERR_INIT;
    struct gguf_file *f = NULL;
    size_t len = 0;

    snprintf(rel, sizeof(rel), "refs/synth-tiny/dequant-%s.json", q);
    char *text = test_read_file(test_shared(rel), &len);
    CHECK_MSG(text, "cannot read %s", test_shared(rel));
    cJSON *root = cJSON_Parse(text);
    tw_free(text);
    CHECK(root);
    snprintf(rel, sizeof(rel), "refs/models/synth-tiny-%s.gguf", q);
    CHECK_OK(gguf_open(test_shared(rel), &f, &err), &err);
    const cJSON *tensors = cJSON_GetObjectItem(root, "tensors");
    CHECK(cJSON_GetArraySize(tensors) == gguf_n_tensors(f));
    const cJSON *jt;
    int n_checked = 0;
    cJSON_ArrayForEach(jt, tensors)
    {
        const char *name = cJSON_GetObjectItem(jt, "name")->valuestring;
        const struct gguf_tensor *t = gguf_find_tensor(f, name);
        CHECK_MSG(t, "%s: tensor '%s' missing", q, name);
        CHECK_EQ_INT(t->type, cJSON_GetObjectItem(jt, "type_id")->valueint);
        CHECK_EQ_INT(t->nbytes, (int64_t)cJSON_GetObjectItem(jt, "nbytes")->valuedouble);
        CHECK(kq_type_supported(t->type));
        int64_t n = tensor_n(t);
        float *v = tw_mallocarray((size_t)n, sizeof(float));
        CHECK(v);
        kq_dequant(t->type, t->data, v, n);
        double sum = 0, sum_abs = 0, sum_sq = 0;
        for (int64_t i = 0; i < n; i++) {
            sum += v[i];
            sum_abs += fabs(v[i]);
            sum_sq += (double)v[i] * v[i];
        }
        const cJSON *first = cJSON_GetObjectItem(jt, "first16");
        const cJSON *last = cJSON_GetObjectItem(jt, "last16");
        int ok = near_rel(sum_abs, cJSON_GetObjectItem(jt, "sum_abs")->valuedouble, 1e-5) &&
                 near_rel(sum_sq, cJSON_GetObjectItem(jt, "sum_sq")->valuedouble, 1e-5) &&
                 fabs(sum - cJSON_GetObjectItem(jt, "sum")->valuedouble) <= 1e-5 * sum_abs;
        for (int i = 0; ok && i < 16; i++)
            ok = near_rel(v[i], cJSON_GetArrayItem(first, i)->valuedouble, 1e-6) &&
                 near_rel(v[n - 16 + i], cJSON_GetArrayItem(last, i)->valuedouble, 1e-6);
        tw_free(v);
        CHECK_MSG(ok, "%s: tensor '%s' (%s) differs from ggml's dequantization: sum %.9g sum_abs "
                      "%.9g sum_sq %.9g",
                  q, name, tname(t->type), sum, sum_abs, sum_sq);
        n_checked++;
    }
    CHECK(n_checked > 0);
    gguf_close(f);
    cJSON_Delete(root);
}

TEST(kq_dequant_matches_ggml)
{
    const char *files[] = {"f32", "q8_0", "q4_0", "q4_k", "q4_k_m", "q6_k"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        check_dequant_file(files[i]);
        if (test__failed)
            return;
    }
}

/* Our quantizers against llama-quantize (no importance matrix): quantizing the F32 model's
 * tensors must give the bytes of the quantized files, block for block. */
static void check_quant_file(const char *q, const struct gguf_file *f32)
{
    char rel[128];
    struct tw_err err = TW_ERR_INIT;
    struct gguf_file *f = NULL;
    snprintf(rel, sizeof(rel), "refs/models/synth-tiny-%s.gguf", q);
    CHECK_OK(gguf_open(test_shared(rel), &f, &err), &err);
    long blocks = 0, same = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor *t = gguf_tensor(f, i);
        if (t->type == GGUF_T_F32)
            continue;
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)t->name.len, t->name.ptr);
        const struct gguf_tensor *src = gguf_find_tensor(f32, name);
        CHECK_MSG(src && src->type == GGUF_T_F32, "no f32 source for '%s'", name);
        int64_t n = tensor_n(t);
        CHECK_EQ_INT(tensor_n(src), n);
        unsigned char *out = tw_malloc(t->nbytes);
        CHECK(out);
        kq_quant(t->type, src->data, out, n);
        size_t bb = kq__block_bytes(t->type);
        for (size_t off = 0; off < t->nbytes; off += bb, blocks++)
            same += !memcmp(out + off, (const unsigned char *)t->data + off, bb);
        tw_free(out);
    }
    gguf_close(f);
    if (getenv("KQ_VERBOSE"))
        fprintf(stderr, "%s: %ld of %ld blocks identical\n", q, same, blocks);
    CHECK_MSG(blocks > 0 && same == blocks, "%s: %ld of %ld blocks identical to llama-quantize's",
              q, same, blocks);
}

TEST(kq_quant_matches_llama_quantize)
{
    struct tw_err err = TW_ERR_INIT;
    struct gguf_file *f32 = NULL;
    CHECK_OK(gguf_open(test_shared("refs/models/synth-tiny-f32.gguf"), &f32, &err), &err);
    const char *files[] = {"q8_0", "q4_0", "q4_k", "q4_k_m", "q6_k"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && !test__failed; i++)
        check_quant_file(files[i], f32);
    gguf_close(f32);
}

/* The whole-model quantizer against llama-quantize's files: every tensor has the type and the
 * bytes of the reference (tensor order differs: llama-quantize sorts them). */
TEST(kq_quantize_file_matches)
{
    const char *types[] = {"q4_k_m", "q4_0", "q6_k"};
    struct tw_err err = TW_ERR_INIT;
    struct tw_pool *pool = NULL;
    CHECK_OK(tw_pool_new(2, &pool, &err), &err);
    for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
        char out[4096], ref[128];
        struct kq_quantize_stats st;
        struct gguf_file *a = NULL, *b = NULL;
        snprintf(out, sizeof(out), "%s/%s.gguf", test_tmpdir(), types[k]);
        snprintf(ref, sizeof(ref), "refs/models/synth-tiny-%s.gguf", types[k]);
        CHECK_OK(kq_quantize_file(test_shared("refs/models/synth-tiny-f32.gguf"), out, types[k],
                                  pool, &st, &err),
                 &err);
        CHECK_EQ_INT(st.n_tensors, 21);
        CHECK_EQ_INT(st.n_quantized, 16);
        CHECK_OK(gguf_open(out, &a, &err), &err);
        CHECK_OK(gguf_open(test_shared(ref), &b, &err), &err);
        CHECK_EQ_INT(gguf_n_tensors(a), gguf_n_tensors(b));
        for (int64_t i = 0; i < gguf_n_tensors(b); i++) {
            const struct gguf_tensor *tb = gguf_tensor(b, i);
            char name[128];
            snprintf(name, sizeof(name), "%.*s", (int)tb->name.len, tb->name.ptr);
            const struct gguf_tensor *ta = gguf_find_tensor(a, name);
            CHECK_MSG(ta, "%s: '%s' missing", types[k], name);
            CHECK_MSG(ta->type == tb->type && ta->nbytes == tb->nbytes &&
                          !memcmp(ta->data, tb->data, tb->nbytes),
                      "%s: tensor '%s' differs (type %s vs %s)", types[k], name, tname(ta->type),
                      tname(tb->type));
        }
        uint32_t ft = 0;
        CHECK_OK(gguf_get_u32(a, "general.file_type", 0, &ft, &err), &err);
        uint32_t ft_ref = 1;
        CHECK_OK(gguf_get_u32(b, "general.file_type", 0, &ft_ref, &err), &err);
        CHECK_EQ_INT(ft, ft_ref);
        gguf_close(a);
        gguf_close(b);
    }
    struct kq_quantize_stats st;
    char out[4096];
    snprintf(out, sizeof(out), "%s/bad.gguf", test_tmpdir());
    CHECK(kq_quantize_file(test_shared("refs/models/synth-tiny-f32.gguf"), out, "q3_k", pool,
                           &st, &err) == TW_EINVAL);
    CHECK(strstr(err.msg, "'q3_k'"));
    tw_err_clear(&err);
    CHECK(kq_quantize_file("/nonexistent/m.gguf", out, "q4_0", pool, &st, &err) < 0);
    CHECK(strstr(err.msg, "/nonexistent/m.gguf"));
    tw_pool_free(pool);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
