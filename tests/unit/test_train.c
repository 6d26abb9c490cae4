/* test_train.c - training ops: f32 analytic gradients against central finite differences of the
 * double twins; RNG, AdamW, clipping and schedules. The tiny model is in test_train_model.c. */
#include "test.h"

#include "base/mem.h"
#include "base/pool.h"
#include "nn/gguf.h"
#include "nn/kq.h"
#include "nn/train.h"

#include <stdint.h>
#include <stdlib.h>

/* ---- gradient-check harness ---- */

/* One input of an op: its f32 values (what the analytic backward saw), the double copy the
 * numeric derivative perturbs, and the f32 analytic gradient. */
struct gc_in {
    const char *name;
    float *f;
    double *d;
    float *ga;
    size_t n;
};

/* Error of an analytic gradient a against a numeric one n, relative to the larger magnitude,
 * with an absolute floor so that components that are zero up to rounding (|a|, |n| < floor)
 * are judged absolutely. docs/training.md explains the choice. */
static double gc_rel(double a, double n, double floor_abs)
{
    double den = fmax(fmax(fabs(a), fabs(n)), floor_abs);
    return fabs(a - n) / den;
}

#define GC_H       1e-6 // central-difference step, relative to max(1, |x|)
#define GC_TOL     1e-3 // relative error allowed for f32 analytic gradients
#define GC_FLOOR   1e-5 // gradient magnitude under which errors are absolute
#define GC_MAX_PER 256  // elements checked per input (randomly chosen beyond that)

/* Central differences of loss() (which reads the double inputs) for up to GC_MAX_PER elements of
 * each input; returns the worst relative error and prints it per input. */
static double gc_run(const char *op, struct gc_in *in, int n_in, double (*loss)(void *), void *ctx)
{
    double worst = 0;
    struct train_rng rng;
    train_rng_seed(&rng, 99);
    for (int k = 0; k < n_in; k++) {
        double w = 0;
        size_t n_check = in[k].n < GC_MAX_PER ? in[k].n : GC_MAX_PER;
        for (size_t c = 0; c < n_check; c++) {
            size_t e = in[k].n <= GC_MAX_PER ? c : train_rng_next(&rng) % in[k].n;
            double x0 = in[k].d[e], h = GC_H * fmax(1.0, fabs(x0)), lp, lm, num, r;
            in[k].d[e] = x0 + h;
            lp = loss(ctx);
            in[k].d[e] = x0 - h;
            lm = loss(ctx);
            in[k].d[e] = x0;
            num = (lp - lm) / (2 * h);
            r = gc_rel(in[k].ga[e], num, GC_FLOOR);
            if (r > w)
                w = r;
            if (r > GC_TOL)
                fprintf(stderr, "  %s d%s[%zu]: analytic %.9g numeric %.9g rel %.3g\n", op,
                        in[k].name, e, (double)in[k].ga[e], num, r);
        }
        printf("  gradcheck %-8s d%-6s max rel err %.3g (%zu of %zu checked)\n", op, in[k].name, w,
               n_check, in[k].n);
        if (w > worst)
            worst = w;
    }
    return worst;
}

/* Random f32 values in [-s, s) and their exact double copies. */
static void fill(struct train_rng *rng, float *f, double *d, size_t n, float s)
{
    for (size_t i = 0; i < n; i++) {
        f[i] = (2 * train_rng_float(rng) - 1) * s;
        if (d)
            d[i] = f[i];
    }
}

static double dot64(const double *a, const float *r, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * r[i];
    return s;
}

/* ---- embedding ---- */

struct embed_ctx {
    double *emb, *x;
    float *r;
    int32_t tok[6];
};

static double embed_loss(void *p)
{
    struct embed_ctx *c = p;
    train_embed_fwd_f64(c->emb, 5, c->tok, 6, c->x);
    return dot64(c->x, c->r, 30);
}

TEST(train_embed_gather_and_scatter_add)
{
    enum { V = 7, C = 5, T = 6 };
    float emb[V * C], x[T * C], r[T * C], demb[V * C] = {0};
    double emb64[V * C], x64[T * C];
    struct embed_ctx c = {emb64, x64, r, {3, 0, 3, 6, 1, 3}};
    struct train_rng rng;
    train_rng_seed(&rng, 1);
    fill(&rng, emb, emb64, V * C, 1);
    fill(&rng, r, NULL, T * C, 1);
    train_embed_fwd(emb, C, c.tok, T, x);
    CHECK(x[2 * C + 4] == emb[3 * C + 4] && x[3 * C] == emb[6 * C]);
    train_embed_bwd(demb, C, c.tok, T, r);
    /* token 3 appears three times: its row gets the sum */
    CHECK_NEAR(demb[3 * C + 1], r[0 * C + 1] + r[2 * C + 1] + r[5 * C + 1], 1e-6);
    CHECK(demb[2 * C] == 0 && demb[4 * C + 3] == 0 && demb[5 * C] == 0);
    struct gc_in in[] = {{"emb", emb, emb64, demb, V * C}};
    CHECK(gc_run("embed", in, 1, embed_loss, &c) <= GC_TOL);
}

/* ---- rmsnorm ---- */

struct norm_ctx {
    double *x, *w, *y, *rstd;
    float *r;
};

static double norm_loss(void *p)
{
    struct norm_ctx *c = p;
    train_rmsnorm_fwd_f64(c->x, c->w, 3, 8, 1e-5, c->y, c->rstd);
    return dot64(c->y, c->r, 24);
}

TEST(train_rmsnorm_gradcheck)
{
    enum { T = 3, C = 8 };
    float x[T * C], w[C], y[T * C], rstd[T], r[T * C], dx[T * C] = {0}, dw[C] = {0};
    double x64[T * C], w64[C], y64[T * C], rstd64[T];
    struct norm_ctx c = {x64, w64, y64, rstd64, r};
    struct train_rng rng;
    double ms = 0;
    train_rng_seed(&rng, 2);
    fill(&rng, x, x64, T * C, 2);
    fill(&rng, w, w64, C, 1.5f);
    fill(&rng, r, NULL, T * C, 1);
    train_rmsnorm_fwd(x, w, T, C, 1e-5f, y, rstd);
    for (int i = 0; i < C; i++)
        ms += (double)x[C + i] * x[C + i] / C;
    CHECK_NEAR(rstd[1], 1 / sqrt(ms + 1e-5), 1e-5);
    CHECK_NEAR(y[C + 3], x[C + 3] * w[3] / sqrt(ms + 1e-5), 1e-5);
    train_rmsnorm_bwd(r, x, w, rstd, T, C, dx, dw);
    struct gc_in in[] = {{"x", x, x64, dx, T * C}, {"w", w, w64, dw, C}};
    CHECK(gc_run("rmsnorm", in, 2, norm_loss, &c) <= GC_TOL);
}

/* ---- matmul ---- */

struct mm_ctx {
    double *x, *w, *b, *y;
    float *r;
};

static double mm_loss(void *p)
{
    struct mm_ctx *c = p;
    train_matmul_fwd_f64(c->x, c->w, c->b, 3, 5, 4, c->y, NULL);
    return dot64(c->y, c->r, 12);
}

TEST(train_matmul_gradcheck)
{
    enum { T = 3, NI = 5, NO = 4 };
    float x[T * NI], w[NO * NI], b[NO], y[T * NO], r[T * NO];
    float dx[T * NI] = {0}, dw[NO * NI] = {0}, db[NO] = {0};
    double x64[T * NI], w64[NO * NI], b64[NO], y64[T * NO];
    struct mm_ctx c = {x64, w64, b64, y64, r};
    struct train_rng rng;
    train_rng_seed(&rng, 3);
    fill(&rng, x, x64, T * NI, 1);
    fill(&rng, w, w64, NO * NI, 1);
    fill(&rng, b, b64, NO, 1);
    fill(&rng, r, NULL, T * NO, 1);
    train_matmul_fwd(x, w, b, T, NI, NO, y, NULL);
    /* y[1][2] = W[2] . x[1] + b[2], W row-major [n_out][n_in] */
    CHECK_NEAR(y[1 * NO + 2],
               w[10] * x[5] + w[11] * x[6] + w[12] * x[7] + w[13] * x[8] + w[14] * x[9] + b[2],
               1e-5);
    train_matmul_bwd(r, x, w, T, NI, NO, dx, dw, db, NULL);
    struct gc_in in[] = {
        {"x", x, x64, dx, T * NI}, {"W", w, w64, dw, NO * NI}, {"b", b, b64, db, NO}};
    CHECK(gc_run("matmul", in, 3, mm_loss, &c) <= GC_TOL);
}

/* ---- rope ---- */

struct rope_ctx {
    double *x, *y;
    float *r;
    int n_rot;
    enum train_rope mode;
    const int32_t *pos;
};

enum { ROPE_T = 4, ROPE_H = 2, ROPE_HD = 6, ROPE_N = ROPE_T * ROPE_H * ROPE_HD };

static double rope_loss(void *p)
{
    struct rope_ctx *c = p;
    struct train_rope_cfg rc = {c->mode, c->n_rot, 10000.0f, 1.0f, NULL};
    memcpy(c->y, c->x, sizeof(double) * ROPE_N);
    train_rope_fwd_f64(c->y, ROPE_T, ROPE_H, ROPE_HD, c->pos, &rc);
    return dot64(c->y, c->r, ROPE_N);
}

static double rope_case(enum train_rope mode, int n_rot)
{
    static const int32_t pos[ROPE_T] = {0, 3, 7, 100};
    float x[ROPE_N], y[ROPE_N], r[ROPE_N], dx[ROPE_N];
    double x64[ROPE_N], y64[ROPE_N];
    struct rope_ctx c = {x64, y64, r, n_rot, mode, pos};
    struct train_rng rng;
    double worst = 0;
    train_rng_seed(&rng, 4);
    fill(&rng, x, x64, ROPE_N, 1);
    fill(&rng, r, NULL, ROPE_N, 1);
    struct train_rope_cfg rc = {mode, n_rot, 10000.0f, 1.0f, NULL};
    memcpy(y, x, sizeof(y));
    train_rope_fwd(y, ROPE_T, ROPE_H, ROPE_HD, pos, &rc);
    /* position 0 is the identity; dims past n_rot are untouched; norms are kept */
    for (int i = 0; i < ROPE_H * ROPE_HD; i++)
        worst = fmax(worst, fabs(y[i] - x[i]));
    for (int t = 0; t < ROPE_T; t++)
        for (int h = 0; h < ROPE_H; h++)
            for (int i = n_rot; i < ROPE_HD; i++)
                worst = fmax(worst, fabs(y[(t * ROPE_H + h) * ROPE_HD + i] -
                                         x[(t * ROPE_H + h) * ROPE_HD + i]));
    if (worst != 0)
        return 1;
    memcpy(dx, r, sizeof(dx));
    train_rope_bwd(dx, ROPE_T, ROPE_H, ROPE_HD, pos, &rc);
    struct gc_in in[] = {{"x", x, x64, dx, ROPE_N}};
    return gc_run(mode == TRAIN_ROPE_NORM ? "rope" : "ropeneox", in, 1, rope_loss, &c);
}

TEST(train_rope_norm_and_neox_gradcheck)
{
    CHECK(rope_case(TRAIN_ROPE_NORM, 6) <= GC_TOL);
    CHECK(rope_case(TRAIN_ROPE_NORM, 4) <= GC_TOL);
    CHECK(rope_case(TRAIN_ROPE_NEOX, 6) <= GC_TOL);
    CHECK(rope_case(TRAIN_ROPE_NEOX, 4) <= GC_TOL);
}

TEST(train_rope_pairs_follow_the_mode)
{
    /* one head of 4 dims at position 1: NORM turns (0,1) by 1 rad and (2,3) by 1e-2 rad
     * (base 10000, n_rot 4: theta_1 = 10000^(-1/2)); NEOX turns (0,2) and (1,3) */
    int32_t pos = 1;
    float a[4] = {1, 0, 1, 0}, b[4] = {1, 0, 1, 0}, c[4] = {1, 0, 1, 0};
    static const float factors[2] = {2.0f, 0.5f};
    struct train_rope_cfg norm = {TRAIN_ROPE_NORM, 4, 10000.0f, 1.0f, NULL};
    struct train_rope_cfg neox = {TRAIN_ROPE_NEOX, 4, 10000.0f, 1.0f, NULL};
    struct train_rope_cfg scaled = {TRAIN_ROPE_NORM, 4, 10000.0f, 0.25f, factors};
    train_rope_fwd(a, 1, 1, 4, &pos, &norm);
    CHECK_NEAR(a[0], cos(1.0), 1e-6);
    CHECK_NEAR(a[1], sin(1.0), 1e-6);
    CHECK_NEAR(a[2], cos(0.01), 1e-6);
    CHECK_NEAR(a[3], sin(0.01), 1e-6);
    train_rope_fwd(b, 1, 1, 4, &pos, &neox);
    /* pairs (0,2) by 1 rad: (1,1) -> (cos1 - sin1, sin1 + cos1); pair (1,3) is (0,0) */
    CHECK_NEAR(b[0], cos(1.0) - sin(1.0), 1e-6);
    CHECK_NEAR(b[2], sin(1.0) + cos(1.0), 1e-6);
    CHECK(b[1] == 0 && b[3] == 0);
    /* linear scaling 0.25 and frequency divisors 2 and 0.5: angles 0.125 and 0.005 */
    train_rope_fwd(c, 1, 1, 4, &pos, &scaled);
    CHECK_NEAR(c[1], sin(0.125), 1e-6);
    CHECK_NEAR(c[3], sin(0.005), 1e-6);
    /* the backward undoes the forward */
    train_rope_bwd(a, 1, 1, 4, &pos, &norm);
    CHECK_NEAR(a[0], 1, 1e-6);
    CHECK_NEAR(a[1], 0, 1e-6);
    CHECK_NEAR(a[2], 1, 1e-6);
    train_rope_bwd(c, 1, 1, 4, &pos, &scaled);
    CHECK_NEAR(c[0], 1, 1e-6);
    CHECK_NEAR(c[3], 0, 1e-6);
}

/* ---- attention ---- */

enum { AT_S = 2, AT_T = 5, AT_H = 4, AT_KV = 2, AT_HD = 3 };
enum { AT_QN = AT_S * AT_T * AT_H * AT_HD, AT_KN = AT_S * AT_T * AT_KV * AT_HD };
enum { AT_AN = AT_S * AT_H * AT_T * AT_T };

struct attn_ctx {
    double *q, *k, *v, *att, *out;
    float *r;
};

static double attn_loss(void *p)
{
    struct attn_ctx *c = p;
    train_attn_fwd_f64(c->q, c->k, c->v, AT_S, AT_T, AT_H, AT_KV, AT_HD, c->att, c->out, NULL);
    return dot64(c->out, c->r, AT_QN);
}

TEST(train_attention_gqa_gradcheck)
{
    float q[AT_QN], k[AT_KN], v[AT_KN], att[AT_AN], out[AT_QN], r[AT_QN];
    float dq[AT_QN] = {0}, dk[AT_KN] = {0}, dv[AT_KN] = {0};
    double q64[AT_QN], k64[AT_KN], v64[AT_KN], att64[AT_AN], out64[AT_QN];
    struct attn_ctx c = {q64, k64, v64, att64, out64, r};
    struct train_rng rng;
    train_rng_seed(&rng, 5);
    fill(&rng, q, q64, AT_QN, 2);
    fill(&rng, k, k64, AT_KN, 2);
    fill(&rng, v, v64, AT_KN, 1);
    fill(&rng, r, NULL, AT_QN, 1);
    train_attn_fwd(q, k, v, AT_S, AT_T, AT_H, AT_KV, AT_HD, att, out, NULL);
    /* causal rows sum to one; position 0 sees only itself: out = v[0] of its kv head (head 3 of
     * sequence 1 reads kv head 1) */
    for (int row = 0; row < AT_S * AT_H * AT_T; row++) {
        double s = 0;
        int i = row % AT_T;
        for (int j = 0; j < AT_T; j++) {
            s += att[row * AT_T + j];
            if (j > i)
                CHECK(att[row * AT_T + j] == 0);
        }
        CHECK_NEAR(s, 1, 1e-6);
    }
    for (int d = 0; d < AT_HD; d++)
        CHECK_NEAR(out[(1 * AT_T + 0) * AT_H * AT_HD + 3 * AT_HD + d],
                   v[(1 * AT_T + 0) * AT_KV * AT_HD + 1 * AT_HD + d], 1e-6);
    train_attn_bwd(r, q, k, v, att, AT_S, AT_T, AT_H, AT_KV, AT_HD, dq, dk, dv, NULL);
    struct gc_in in[] = {
        {"q", q, q64, dq, AT_QN}, {"k", k, k64, dk, AT_KN}, {"v", v, v64, dv, AT_KN}};
    CHECK(gc_run("attn", in, 3, attn_loss, &c) <= GC_TOL);
}

/* ---- swiglu ---- */

struct swiglu_ctx {
    double *g, *u, *h;
    float *r;
};

static double swiglu_loss(void *p)
{
    struct swiglu_ctx *c = p;
    train_swiglu_fwd_f64(c->g, c->u, 20, c->h);
    return dot64(c->h, c->r, 20);
}

TEST(train_swiglu_gradcheck)
{
    float g[20], u[20], h[20], r[20], dg[20] = {0}, du[20] = {0};
    double g64[20], u64[20], h64[20];
    struct swiglu_ctx c = {g64, u64, h64, r};
    struct train_rng rng;
    train_rng_seed(&rng, 6);
    fill(&rng, g, g64, 20, 6);
    fill(&rng, u, u64, 20, 2);
    fill(&rng, r, NULL, 20, 1);
    train_swiglu_fwd(g, u, 20, h);
    CHECK_NEAR(h[7], g[7] / (1 + exp(-g[7])) * u[7], 1e-6);
    train_swiglu_bwd(r, g, u, 20, dg, du);
    struct gc_in in[] = {{"gate", g, g64, dg, 20}, {"up", u, u64, du, 20}};
    CHECK(gc_run("swiglu", in, 2, swiglu_loss, &c) <= GC_TOL);
}

TEST(train_add_and_acc)
{
    float a[3] = {1, 2, 3}, b[3] = {10, 20, 30}, y[3], d[3] = {1, 1, 1};
    train_add_fwd(a, b, 3, y);
    CHECK(y[0] == 11 && y[2] == 33);
    train_acc(d, y, 3);
    CHECK(d[1] == 23);
}

/* ---- cross-entropy ---- */

enum { XE_T = 5, XE_V = 7 };

struct xent_ctx {
    double *logits, *probs;
    const int32_t *targets;
    const uint8_t *mask;
};

static double xent_loss(void *p)
{
    struct xent_ctx *c = p;
    return train_xent_fwd_f64(c->logits, c->targets, c->mask, XE_T, XE_V, c->probs);
}

TEST(train_xent_masked_mean_and_gradcheck)
{
    static const int32_t tg[XE_T] = {2, 6, 0, 3, 3};
    static const uint8_t mask[XE_T] = {1, 0, 1, 1, 1};
    float lg[XE_T * XE_V], pr[XE_T * XE_V], dl[XE_T * XE_V] = {0}, loss;
    double lg64[XE_T * XE_V], pr64[XE_T * XE_V], want = 0;
    struct xent_ctx c = {lg64, pr64, tg, mask};
    struct train_rng rng;
    train_rng_seed(&rng, 7);
    fill(&rng, lg, lg64, XE_T * XE_V, 4);
    for (int t = 0; t < XE_T; t++) { // the definition, in double
        double se = 0;
        if (!mask[t])
            continue;
        for (int v = 0; v < XE_V; v++)
            se += exp(lg64[t * XE_V + v]);
        want += (log(se) - lg64[t * XE_V + tg[t]]) / 4;
    }
    loss = train_xent_fwd(lg, tg, mask, XE_T, XE_V, pr);
    CHECK_NEAR(loss, want, 1e-5);
    train_xent_bwd(pr, tg, mask, XE_T, XE_V, 1.0f, dl);
    for (int v = 0; v < XE_V; v++) // the masked position gets no gradient
        CHECK(dl[1 * XE_V + v] == 0);
    struct gc_in in[] = {{"logits", lg, lg64, dl, XE_T * XE_V}};
    CHECK(gc_run("xent", in, 1, xent_loss, &c) <= GC_TOL);
}

TEST(train_xent_is_stable_for_huge_logits)
{
    float lg[4] = {1000, -1000, 999, 1000}, pr[4], dl[4] = {0};
    int32_t tg = 2;
    float loss = train_xent_fwd(lg, &tg, NULL, 1, 4, pr);
    /* log(e^0 + e^-2000 + e^-1 + e^0) + 1 */
    CHECK_NEAR(loss, log(2 + exp(-1.0)) + 1, 1e-5);
    CHECK(isfinite(pr[0]) && pr[1] == 0);
    train_xent_bwd(pr, &tg, NULL, 1, 4, 1.0f, dl);
    CHECK_NEAR(dl[2], exp(-1.0) / (2 + exp(-1.0)) - 1, 1e-6);
    /* in place (probs aliasing logits) gives the same */
    CHECK(train_xent_fwd(lg, &tg, NULL, 1, 4, lg) == loss);
    CHECK(lg[0] == pr[0] && lg[2] == pr[2]);
    /* nothing counted: loss 0, no gradient */
    uint8_t none = 0;
    dl[0] = 0;
    CHECK(train_xent_fwd(lg, &tg, &none, 1, 4, pr) == 0);
    train_xent_bwd(pr, &tg, &none, 1, 4, 1.0f, dl);
    CHECK(dl[0] == 0);
}

/* ---- LoRA ---- */

enum { LO_T = 3, LO_I = 6, LO_O = 4, LO_R = 2 };

struct lora_ctx {
    double *x, *a, *b, *drop, *u, *y, *y0;
    float *r;
};

static double lora_loss(void *p)
{
    struct lora_ctx *c = p;
    memcpy(c->y, c->y0, sizeof(double) * LO_T * LO_O);
    train_lora_fwd_f64(c->x, c->drop, LO_T, LO_I, LO_O, LO_R, c->a, c->b, 1.5, c->u, c->y);
    return dot64(c->y, c->r, LO_T * LO_O);
}

TEST(train_lora_layer_gradcheck_with_dropout)
{
    float x[LO_T * LO_I], a[LO_R * LO_I], b[LO_O * LO_R], drop[LO_T * LO_I], u[LO_T * LO_R];
    float y[LO_T * LO_O], r[LO_T * LO_O];
    float dx[LO_T * LO_I] = {0}, da[LO_R * LO_I] = {0}, db[LO_O * LO_R] = {0};
    double x64[LO_T * LO_I], a64[LO_R * LO_I], b64[LO_O * LO_R], drop64[LO_T * LO_I];
    double u64[LO_T * LO_R], y64[LO_T * LO_O], y064[LO_T * LO_O];
    struct lora_ctx c = {x64, a64, b64, drop64, u64, y64, y064, r};
    struct train_rng rng, rng2;
    int zeros = 0;
    train_rng_seed(&rng, 8);
    fill(&rng, x, x64, LO_T * LO_I, 1);
    fill(&rng, a, a64, LO_R * LO_I, 1);
    fill(&rng, b, b64, LO_O * LO_R, 1);
    fill(&rng, y, y064, LO_T * LO_O, 1);
    fill(&rng, r, NULL, LO_T * LO_O, 1);
    rng2 = rng;
    train_dropout_mask(&rng, 0.3f, LO_T * LO_I, drop);
    train_dropout_mask_f64(&rng2, 0.3f, LO_T * LO_I, drop64);
    for (int i = 0; i < LO_T * LO_I; i++) {
        CHECK(drop[i] == 0 || fabs(drop[i] - 1 / 0.7) < 1e-6);
        CHECK(drop64[i] == 0 ? drop[i] == 0 : drop[i] != 0); // same rng, same mask
        zeros += drop[i] == 0;
    }
    CHECK(zeros > 0 && zeros < LO_T * LO_I);
    train_lora_fwd(x, drop, LO_T, LO_I, LO_O, LO_R, a, b, 1.5f, u, y);
    train_lora_bwd(r, x, drop, u, LO_T, LO_I, LO_O, LO_R, a, b, 1.5f, dx, da, db);
    struct gc_in in[] = {{"x", x, x64, dx, LO_T * LO_I},
                         {"A", a, a64, da, LO_R * LO_I},
                         {"B", b, b64, db, LO_O * LO_R}};
    CHECK(gc_run("lora", in, 3, lora_loss, &c) <= GC_TOL);
}

TEST(train_lora_with_zero_b_adds_nothing)
{
    float x[LO_T * LO_I], a[LO_R * LO_I], b[LO_O * LO_R] = {0}, u[LO_T * LO_R];
    float y[LO_T * LO_O], y0[LO_T * LO_O];
    struct train_rng rng;
    train_rng_seed(&rng, 9);
    fill(&rng, x, NULL, LO_T * LO_I, 1);
    fill(&rng, a, NULL, LO_R * LO_I, 1);
    fill(&rng, y, NULL, LO_T * LO_O, 1);
    memcpy(y0, y, sizeof(y));
    train_lora_fwd(x, NULL, LO_T, LO_I, LO_O, LO_R, a, b, 2.0f, u, y);
    CHECK(memcmp(y, y0, sizeof(y)) == 0);
}

/* ---- RNG ---- */

TEST(train_rng_is_seeded_and_resumable)
{
    struct train_rng a, b, c;
    uint8_t saved[TRAIN_RNG_STATE_BYTES], zero[TRAIN_RNG_STATE_BYTES] = {0};
    uint64_t seq[8];
    struct tw_err err = TW_ERR_INIT;
    double mean = 0, var = 0;
    train_rng_seed(&a, 42);
    train_rng_seed(&b, 42);
    train_rng_seed(&c, 43);
    CHECK(train_rng_next(&a) == train_rng_next(&b));
    CHECK(train_rng_next(&a) != train_rng_next(&c));
    train_rng_save(&a, saved);
    for (int i = 0; i < 8; i++)
        seq[i] = train_rng_next(&a);
    CHECK_OK(train_rng_restore(&b, saved, &err), &err);
    for (int i = 0; i < 8; i++)
        CHECK(train_rng_next(&b) == seq[i]);
    CHECK_EQ_INT(train_rng_restore(&b, zero, &err), TW_EFORMAT);
    CHECK(strstr(err.msg, "all zero") != NULL);
    for (int i = 0; i < 20000; i++) {
        float u = train_rng_float(&a);
        double z = train_rng_normal(&a);
        CHECK(u >= 0 && u < 1);
        mean += z / 20000;
        var += z * z / 20000;
    }
    CHECK_NEAR(mean, 0, 0.05);
    CHECK_NEAR(var, 1, 0.05);
}

/* ---- optimizer ---- */

TEST(train_adamw_matches_the_reference_update)
{
    /* two steps by hand, in double, of PyTorch's AdamW (lr 0.1, wd 0.1) on one decayed and one
     * undecayed tensor */
    float w[2] = {0.5f, -1.0f}, g[2], m[2] = {0}, v[2] = {0}, nw = 2.0f, ng, nm = 0, nv = 0;
    struct train_param p[2] = {
        {.name = "w", .w = w, .g = g, .m = m, .v = v, .n = 2, .decay = 1},
        {.name = "norm", .w = &nw, .g = &ng, .m = &nm, .v = &nv, .n = 1, .decay = 0}};
    struct train_adamw opt = {0.9f, 0.999f, 1e-8f, 0.1f};
    double rw[2] = {0.5, -1.0}, rm[2] = {0}, rv[2] = {0}, rn = 2.0, rnm = 0, rnv = 0;
    for (int t = 1; t <= 2; t++) {
        double gg[2] = {t == 1 ? 0.3 : -0.2, t == 1 ? -0.05 : 0.4}, gn = 0.7;
        double b1 = 0.9, b2 = 0.999, bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
        g[0] = (float)gg[0];
        g[1] = (float)gg[1];
        ng = (float)gn;
        train_adamw_step(&opt, 0.1f, t, p, 2, NULL);
        for (int i = 0; i < 2; i++) {
            rw[i] -= 0.1 * 0.1 * rw[i];
            rm[i] = b1 * rm[i] + (1 - b1) * gg[i];
            rv[i] = b2 * rv[i] + (1 - b2) * gg[i] * gg[i];
            rw[i] -= 0.1 * (rm[i] / bc1) / (sqrt(rv[i] / bc2) + 1e-8);
        }
        rnm = b1 * rnm + (1 - b1) * gn;
        rnv = b2 * rnv + (1 - b2) * gn * gn;
        rn -= 0.1 * (rnm / bc1) / (sqrt(rnv / bc2) + 1e-8);
    }
    CHECK_NEAR(w[0], rw[0], 1e-6);
    CHECK_NEAR(w[1], rw[1], 1e-6);
    CHECK_NEAR(nw, rn, 1e-6);
    /* step 1 moves every weight by lr (Adam's first step is sign(g) * lr) plus decay */
    CHECK(fabs(rw[0] - 0.5) > 0.1);
}

TEST(train_clip_scales_to_the_global_norm)
{
    float g1[2] = {3, 0}, g2[1] = {4}, w[3] = {0};
    struct train_param p[3] = {{.name = "a", .w = w, .g = g1, .n = 2},
                               {.name = "frozen", .w = w, .n = 1},
                               {.name = "b", .w = w, .g = g2, .n = 1}};
    CHECK_NEAR(train_clip_grad_norm(p, 3, 10.0, NULL), 5.0, 1e-12);
    CHECK(g1[0] == 3 && g2[0] == 4); // under the limit: untouched
    CHECK_NEAR(train_clip_grad_norm(p, 3, 1.0, NULL), 5.0, 1e-12);
    CHECK_NEAR(g1[0], 0.6, 1e-6);
    CHECK_NEAR(g2[0], 0.8, 1e-6);
    CHECK_NEAR(train_clip_grad_norm(p, 3, 0, NULL), 1.0, 1e-6);
    train_grad_zero(p, 3, NULL);
    CHECK(g1[0] == 0 && g1[1] == 0 && g2[0] == 0);
}

/* The optimizer passes split tensors into fixed pieces across the pool: tensors of several
 * pieces (one of them frozen, one tiny) give the same norm, clipped gradients and AdamW update,
 * bit for bit, on 1 and 3 threads; the norm is the double sum of squares. train_optim_step, the
 * fused pass, gives those very bits and leaves the gradients zero. */
TEST(train_optimizer_threaded_equal_single_thread)
{
    enum { NA = 100003, NB = 7, NC = 40000 };
    static const size_t len[3] = {NA, NB, NC};
    struct tw_pool *pool = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_rng rng;
    struct train_adamw opt = {0.9f, 0.999f, 1e-8f, 0.1f};
    struct train_param p[3][4];
    float *buf[3];
    size_t total = NA + NB + NC;
    double ss = 0, n1, n3, nf;
    int zero = 1;
    CHECK_OK(tw_pool_new(3, &pool, &err), &err);
    train_rng_seed(&rng, 12);
    for (int r = 0; r < 3; r++) {
        float *b = buf[r] = tw_mallocarray(total * 4, sizeof(float));
        size_t off = 0;
        CHECK(b != NULL);
        if (!b)
            return;
        for (int k = 0; k < 3; k++) {
            p[r][k] = (struct train_param){.name = "t",
                                           .w = b + off,
                                           .g = b + total + off,
                                           .m = b + 2 * total + off,
                                           .v = b + 3 * total + off,
                                           .n = len[k],
                                           .decay = k != 1};
            off += len[k];
        }
        p[r][3] = (struct train_param){.name = "frozen", .w = b, .n = 5};
    }
    for (size_t i = 0; i < total; i++) {
        buf[0][i] = train_rng_float(&rng) - 0.5f;                   // w
        buf[0][total + i] = 0.01f * (train_rng_float(&rng) - 0.5f); // g
        buf[0][2 * total + i] = buf[0][3 * total + i] = 0;
        ss += (double)buf[0][total + i] * buf[0][total + i];
    }
    memcpy(buf[1], buf[0], total * 4 * sizeof(float));
    memcpy(buf[2], buf[0], total * 4 * sizeof(float));
    n1 = train_clip_grad_norm(p[0], 4, 0.5, NULL);
    n3 = train_clip_grad_norm(p[1], 4, 0.5, pool);
    CHECK(n1 == n3);
    CHECK_NEAR(n1, sqrt(ss), 1e-9 * sqrt(ss));
    CHECK(n1 > 0.5); // so the gradients were scaled
    train_adamw_step(&opt, 1e-2f, 1, p[0], 4, NULL);
    train_adamw_step(&opt, 1e-2f, 1, p[1], 4, pool);
    nf = train_optim_step(&opt, 1e-2f, 1, p[2], 4, 0.5, pool);
    CHECK(nf == n1);
    for (size_t i = 0; i < total; i++)
        zero &= buf[2][total + i] == 0;
    CHECK(zero);
    train_grad_zero(p[1], 4, pool);
    CHECK(memcmp(buf[1], buf[2], total * 4 * sizeof(float)) == 0); // w, g = 0, m, v
    for (long t = 2; t <= 3; t++) {
        for (size_t i = 0; i < total; i++) // fresh gradients, under the clipping norm now
            buf[0][total + i] = buf[1][total + i] = buf[2][total + i] =
                1e-4f * (train_rng_float(&rng) - 0.5f);
        train_clip_grad_norm(p[0], 4, 0.5, NULL);
        train_adamw_step(&opt, 1e-2f, t, p[0], 4, NULL);
        train_clip_grad_norm(p[1], 4, 0.5, pool);
        train_adamw_step(&opt, 1e-2f, t, p[1], 4, pool);
        train_optim_step(&opt, 1e-2f, t, p[2], 4, 0.5, NULL);
    }
    CHECK(memcmp(buf[0], buf[1], total * 4 * sizeof(float)) == 0);
    CHECK(buf[0][2 * total] != 0 && buf[0][2 * total + total - 1] != 0); // moments moved
    train_grad_zero(p[1], 4, pool);
    CHECK(memcmp(buf[1], buf[2], total * 4 * sizeof(float)) == 0);
    zero = 1;
    for (size_t i = 0; i < total; i++)
        zero &= buf[1][total + i] == 0;
    CHECK(zero);
    for (int r = 0; r < 3; r++)
        tw_free(buf[r]);
    tw_pool_free(pool);
}

TEST(train_schedule_warms_up_then_decays)
{
    struct train_sched cos_s = {TRAIN_DECAY_COSINE, 1.0f, 0.1f, 10, 110};
    struct train_sched lin_s = {TRAIN_DECAY_LINEAR, 1.0f, 0.0f, 0, 100};
    struct train_sched con_s = {TRAIN_DECAY_CONSTANT, 0.5f, 0.0f, 4, 100};
    CHECK_NEAR(train_sched_lr(&cos_s, 0), 0.1, 1e-7);
    CHECK_NEAR(train_sched_lr(&cos_s, 4), 0.5, 1e-7);
    CHECK_NEAR(train_sched_lr(&cos_s, 9), 1.0, 1e-7);
    CHECK_NEAR(train_sched_lr(&cos_s, 10), 1.0, 1e-7);
    CHECK_NEAR(train_sched_lr(&cos_s, 60), 0.55, 1e-6); // halfway: (max + min) / 2
    CHECK_NEAR(train_sched_lr(&cos_s, 110), 0.1, 1e-7);
    CHECK_NEAR(train_sched_lr(&cos_s, 500), 0.1, 1e-7);
    for (long s = 10; s < 110; s++)
        CHECK(train_sched_lr(&cos_s, s + 1) <= train_sched_lr(&cos_s, s));
    CHECK_NEAR(train_sched_lr(&lin_s, 0), 1.0, 1e-7);
    CHECK_NEAR(train_sched_lr(&lin_s, 25), 0.75, 1e-6);
    CHECK_NEAR(train_sched_lr(&lin_s, 100), 0.0, 1e-7);
    CHECK_NEAR(train_sched_lr(&con_s, 1), 0.25, 1e-7);
    CHECK_NEAR(train_sched_lr(&con_s, 99), 0.5, 1e-7);
}

/* ---- threads ---- */

/* Odd shapes over 3 threads give bit-identical results to the calling thread alone: each
 * element is owned by one worker and summed in the same order. */
TEST(train_ops_threaded_equal_single_thread)
{
    enum { T = 5, NI = 37, NO = 23 };
    struct tw_pool *pool = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_rng rng;
    float x[T * NI], w[NO * NI], b[NO], dy[T * NO], y1[T * NO], y3[T * NO];
    float dx1[T * NI] = {0}, dx3[T * NI] = {0}, dw1[NO * NI] = {0}, dw3[NO * NI] = {0};
    float db1[NO] = {0}, db3[NO] = {0};
    float q[AT_QN], k[AT_KN], v[AT_KN], att1[AT_AN], att3[AT_AN], o1[AT_QN], o3[AT_QN];
    float dq1[AT_QN] = {0}, dq3[AT_QN] = {0}, dk1[AT_KN] = {0}, dk3[AT_KN] = {0};
    float dv1[AT_KN] = {0}, dv3[AT_KN] = {0};
    CHECK_OK(tw_pool_new(3, &pool, &err), &err);
    train_rng_seed(&rng, 10);
    fill(&rng, x, NULL, T * NI, 1);
    fill(&rng, w, NULL, NO * NI, 1);
    fill(&rng, b, NULL, NO, 1);
    fill(&rng, dy, NULL, T * NO, 1);
    train_matmul_fwd(x, w, b, T, NI, NO, y1, NULL);
    train_matmul_fwd(x, w, b, T, NI, NO, y3, pool);
    train_matmul_bwd(dy, x, w, T, NI, NO, dx1, dw1, db1, NULL);
    train_matmul_bwd(dy, x, w, T, NI, NO, dx3, dw3, db3, pool);
    fill(&rng, q, NULL, AT_QN, 2);
    fill(&rng, k, NULL, AT_KN, 2);
    fill(&rng, v, NULL, AT_KN, 1);
    train_attn_fwd(q, k, v, AT_S, AT_T, AT_H, AT_KV, AT_HD, att1, o1, NULL);
    train_attn_fwd(q, k, v, AT_S, AT_T, AT_H, AT_KV, AT_HD, att3, o3, pool);
    train_attn_bwd(o1, q, k, v, att1, AT_S, AT_T, AT_H, AT_KV, AT_HD, dq1, dk1, dv1, NULL);
    train_attn_bwd(o1, q, k, v, att1, AT_S, AT_T, AT_H, AT_KV, AT_HD, dq3, dk3, dv3, pool);
    tw_pool_free(pool);
    CHECK(memcmp(y1, y3, sizeof(y1)) == 0);
    CHECK(memcmp(dx1, dx3, sizeof(dx1)) == 0);
    CHECK(memcmp(dw1, dw3, sizeof(dw1)) == 0);
    CHECK(memcmp(db1, db3, sizeof(db1)) == 0);
    CHECK(memcmp(att1, att3, sizeof(att1)) == 0 && memcmp(o1, o3, sizeof(o1)) == 0);
    CHECK(memcmp(dq1, dq3, sizeof(dq1)) == 0);
    CHECK(memcmp(dk1, dk3, sizeof(dk1)) == 0 && memcmp(dv1, dv3, sizeof(dv1)) == 0);
}

/* ---- frozen quantized weights ---- */

/* dx through a frozen kq weight (a real tensor of the synthetic quantized models, 256 rows of
 * 512) equals the dense backward through its dequantized values, over 1 and 3 threads; the
 * forward (kq_matmul, which quantizes activations like llama.cpp) stays close to the dense one. */
static void qmatmul_case(const char *file, int *ok)
{
    enum { T = 3 };
    struct gguf_file *f = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct tw_pool *pool = NULL;
    const struct gguf_tensor *t;
    struct train_rng rng;
    float *wf = NULL, *x = NULL, *dy = NULL, *dx_ref = NULL, *dx1 = NULL, *dx3 = NULL;
    float *y_ref = NULL, *y = NULL;
    double max_dx = 0, diff_dx = 0, max_y = 0, diff_y = 0;
    int n_in, n_out;

    *ok = 0;
    if (gguf_open(test_shared(file), &f, &err) < 0 || tw_pool_new(3, &pool, &err) < 0) {
        fprintf(stderr, "  %s: %s\n", file, err.msg);
        goto out;
    }
    t = gguf_find_tensor(f, "blk.0.ffn_down.weight");
    if (!t || !kq_type_supported(t->type)) {
        fprintf(stderr, "  %s: no usable blk.0.ffn_down.weight\n", file);
        goto out;
    }
    n_in = (int)t->ne[0];
    n_out = (int)t->ne[1];
    wf = tw_mallocarray((size_t)n_in * n_out, sizeof(float));
    x = tw_mallocarray((size_t)T * n_in, sizeof(float));
    dy = tw_mallocarray((size_t)T * n_out, sizeof(float));
    y_ref = tw_mallocarray((size_t)T * n_out, sizeof(float));
    y = tw_mallocarray((size_t)T * n_out, sizeof(float));
    dx_ref = tw_calloc((size_t)T * n_in, sizeof(float));
    dx1 = tw_calloc((size_t)T * n_in, sizeof(float));
    dx3 = tw_calloc((size_t)T * n_in, sizeof(float));
    if (!wf || !x || !dy || !y_ref || !y || !dx_ref || !dx1 || !dx3)
        goto out;
    kq_dequant(t->type, t->data, wf, (int64_t)n_in * n_out);
    train_rng_seed(&rng, 11);
    fill(&rng, x, NULL, (size_t)T * n_in, 1);
    fill(&rng, dy, NULL, (size_t)T * n_out, 1);
    train_matmul_bwd(dy, NULL, wf, T, n_in, n_out, dx_ref, NULL, NULL, NULL);
    train_qmatmul_bwd_x(t->type, t->data, n_in, n_out, dy, T, dx1, NULL);
    train_qmatmul_bwd_x(t->type, t->data, n_in, n_out, dy, T, dx3, pool);
    for (size_t i = 0; i < (size_t)T * n_in; i++) {
        max_dx = fmax(max_dx, fabs(dx_ref[i]));
        diff_dx = fmax(diff_dx, fabs(dx_ref[i] - dx1[i]));
    }
    train_matmul_fwd(x, wf, NULL, T, n_in, n_out, y_ref, NULL);
    train_qmatmul_fwd(t->type, t->data, n_in, n_out, x, T, y, pool);
    for (size_t i = 0; i < (size_t)T * n_out; i++) {
        max_y = fmax(max_y, fabs(y_ref[i]));
        diff_y = fmax(diff_y, fabs(y_ref[i] - y[i]));
    }
    printf("  %s %s [%d][%d]: dx max |diff| %.3g of %.3g; y max |diff| %.3g of %.3g\n", file,
           gguf_type_name(t->type), n_out, n_in, diff_dx, max_dx, diff_y, max_y);
    *ok = max_dx > 0 && diff_dx <= 1e-6 * max_dx &&
          memcmp(dx1, dx3, (size_t)T * n_in * sizeof(float)) == 0 && max_y > 0 &&
          diff_y <= 2e-2 * max_y;
out:
    tw_free(wf);
    tw_free(x);
    tw_free(dy);
    tw_free(y_ref);
    tw_free(y);
    tw_free(dx_ref);
    tw_free(dx1);
    tw_free(dx3);
    tw_pool_free(pool);
    gguf_close(f);
}

TEST(train_qmatmul_backward_through_frozen_quantized_weights)
{
    static const char *const files[] = {
        "refs/models/synth-tiny-f32.gguf",  "refs/models/synth-tiny-q8_0.gguf",
        "refs/models/synth-tiny-q4_0.gguf", "refs/models/synth-tiny-q4_k.gguf",
        "refs/models/synth-tiny-q6_k.gguf",
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        int ok;
        qmatmul_case(files[i], &ok);
        CHECK_MSG(ok, "%s", files[i]);
    }
}

/* The fast backward (outer products; blocks of 256 dequantized rows) against the definition, on odd
 * shapes with more than one block, dense and through a real Q4_K tensor, over 1 and 3 threads. */
TEST(train_matmul_bwd_kq_matches_the_definition)
{
    enum { T = 7, NI = 150, NO = 300 }; // NI: two 64-column tiles, one of 16, 6 single columns
    struct tw_pool *pool = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_rng rng;
    struct gguf_file *f = NULL;
    const struct gguf_tensor *qt;
    float *x = tw_mallocarray(T * 512, sizeof(float)), *w = tw_mallocarray(NO * NI, sizeof(float));
    float *dy = tw_mallocarray(T * 512, sizeof(float));
    float *dx0 = tw_calloc(T * 512, sizeof(float)), *dx1 = tw_calloc(T * 512, sizeof(float));
    float *dx3 = tw_calloc(T * 512, sizeof(float));
    float *dw0 = tw_calloc(NO * NI, sizeof(float)), *dw1 = tw_calloc(NO * NI, sizeof(float));
    float *dw3 = tw_calloc(NO * NI, sizeof(float));
    float db0[NO] = {0}, db1[NO] = {0};
    float *scratch = tw_mallocarray(train_matmul_bwd_kq_scratch(T, 512), sizeof(float));
    double ddx = 0, mdx = 0, ddw = 0, mdw = 0, ddb = 0, dq = 0, mq = 0;
    int same;
    CHECK(x && w && dy && dx0 && dx1 && dx3 && dw0 && dw1 && dw3 && scratch);
    CHECK_OK(tw_pool_new(3, &pool, &err), &err);
    train_rng_seed(&rng, 12);
    fill(&rng, x, NULL, T * NI, 1);
    fill(&rng, w, NULL, NO * NI, 1);
    fill(&rng, dy, NULL, T * NO, 1);
    train_matmul_bwd(dy, x, w, T, NI, NO, dx0, dw0, db0, NULL);
    train_matmul_bwd_kq(GGUF_T_F32, w, x, dy, T, NI, NO, dx1, dw1, db1, scratch, NULL);
    train_matmul_bwd_kq(GGUF_T_F32, w, x, dy, T, NI, NO, dx3, dw3, NULL, scratch, pool);
    for (int i = 0; i < T * NI; i++) {
        ddx = fmax(ddx, fabs(dx0[i] - dx1[i]));
        mdx = fmax(mdx, fabs(dx0[i]));
    }
    for (int i = 0; i < NO * NI; i++) {
        ddw = fmax(ddw, fabs(dw0[i] - dw1[i]));
        mdw = fmax(mdw, fabs(dw0[i]));
    }
    for (int i = 0; i < NO; i++)
        ddb = fmax(ddb, fabs(db0[i] - db1[i]));
    same = !memcmp(dx1, dx3, T * NI * sizeof(float)) && !memcmp(dw1, dw3, NO * NI * sizeof(float));
    /* through a quantized weight: blk.0.ffn_down of the Q4_K model, 256 rows of 512 */
    CHECK_OK(gguf_open(test_shared("refs/models/synth-tiny-q4_k.gguf"), &f, &err), &err);
    qt = gguf_find_tensor(f, "blk.0.ffn_down.weight");
    CHECK(qt && qt->ne[0] == 512);
    memset(dx0, 0, T * 512 * sizeof(float));
    memset(dx1, 0, T * 512 * sizeof(float));
    fill(&rng, dy, NULL, T * 256, 1);
    train_qmatmul_bwd_x(qt->type, qt->data, 512, 256, dy, T, dx0, NULL);
    train_matmul_bwd_kq(qt->type, qt->data, NULL, dy, T, 512, 256, dx1, NULL, NULL, scratch, pool);
    for (int i = 0; i < T * 512; i++) {
        dq = fmax(dq, fabs(dx0[i] - dx1[i]));
        mq = fmax(mq, fabs(dx0[i]));
    }
    printf("  kq backward vs definition: dx %.3g of %.3g, dW %.3g of %.3g, db %.3g; q4_k dx "
           "%.3g of %.3g\n",
           ddx, mdx, ddw, mdw, ddb, dq, mq);
    gguf_close(f);
    tw_pool_free(pool);
    tw_free(x);
    tw_free(w);
    tw_free(dy);
    tw_free(dx0);
    tw_free(dx1);
    tw_free(dx3);
    tw_free(dw0);
    tw_free(dw1);
    tw_free(dw3);
    tw_free(scratch);
    CHECK(mdx > 0.1 && ddx <= 1e-5 * mdx);
    CHECK(mdw > 0.1 && ddw <= 1e-5 * mdw);
    CHECK(ddb <= 1e-5);
    CHECK(mq > 0.1 && dq <= 1e-5 * mq);
    CHECK(same);
}

/* A weight narrower than 64 columns with many rows (dW split across threads by bands of rows):
 * the same bits over 1 and 3 threads, and the definition's values. */
TEST(train_matmul_bwd_kq_narrow_weight)
{
    enum { T = 9, NI = 20, NO = 150 };
    struct tw_pool *pool = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_rng rng;
    float x[T * NI], w[NO * NI], dy[T * NO], dx0[T * NI] = {0}, dx1[T * NI] = {0};
    float dx3[T * NI] = {0}, dw0[NO * NI] = {0}, dw1[NO * NI] = {0}, dw3[NO * NI] = {0};
    float scratch[NI * 256];
    double d = 0, mx = 0;
    CHECK(train_matmul_bwd_kq_scratch(T, NI) <= sizeof(scratch) / sizeof(float));
    CHECK_OK(tw_pool_new(3, &pool, &err), &err);
    train_rng_seed(&rng, 14);
    fill(&rng, x, NULL, T * NI, 1);
    fill(&rng, w, NULL, NO * NI, 1);
    fill(&rng, dy, NULL, T * NO, 1);
    train_matmul_bwd(dy, x, w, T, NI, NO, dx0, dw0, NULL, NULL);
    train_matmul_bwd_kq(GGUF_T_F32, w, x, dy, T, NI, NO, dx1, dw1, NULL, scratch, NULL);
    train_matmul_bwd_kq(GGUF_T_F32, w, x, dy, T, NI, NO, dx3, dw3, NULL, scratch, pool);
    tw_pool_free(pool);
    for (int i = 0; i < NO * NI; i++) {
        d = fmax(d, fabs(dw0[i] - dw1[i]));
        mx = fmax(mx, fabs(dw0[i]));
    }
    for (int i = 0; i < T * NI; i++)
        d = fmax(d, fabs(dx0[i] - dx1[i]));
    CHECK(mx > 0.1 && d <= 1e-5 * mx);
    CHECK(!memcmp(dw1, dw3, sizeof(dw1)) && !memcmp(dx1, dx3, sizeof(dx1)));
}

/* Attention through the kq kernels against the plain definition (GQA, two sequences, odd sizes),
 * keeping the probabilities or only the log-sum-exp, over 1 and 3 threads (heads split across
 * them: the same bits). */
TEST(train_attention_kq_matches_the_definition)
{
    enum { S = 2, T = 13, H = 6, KV = 2, HD = 5 };
    enum { QN = S * T * H * HD, KN = S * T * KV * HD, AN = S * H * T * T };
    struct tw_pool *pool = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_rng rng;
    float q[QN], k[KN], v[KN], dout[QN], att0[AN], att1[AN], o0[QN], o1[QN], o3[QN];
    float dq0[QN] = {0}, dk0[KN] = {0}, dv0[KN] = {0}, dq1[QN] = {0}, dk1[KN] = {0};
    float dv1[KN] = {0}, dq3[QN] = {0}, dk3[KN] = {0}, dv3[KN] = {0}, lse[S * H * T];
    float dq4[QN] = {0}, dk4[KN] = {0}, dv4[KN] = {0};
    float *scratch = tw_mallocarray(train_attn_kq_scratch(T, HD, 3), sizeof(float));
    double d = 0, d3 = 0, mx = 0;
    CHECK(scratch != NULL);
    CHECK_OK(tw_pool_new(3, &pool, &err), &err);
    train_rng_seed(&rng, 13);
    fill(&rng, q, NULL, QN, 2);
    fill(&rng, k, NULL, KN, 2);
    fill(&rng, v, NULL, KN, 1);
    fill(&rng, dout, NULL, QN, 1);
    train_attn_fwd(q, k, v, S, T, H, KV, HD, att0, o0, NULL);
    train_attn_fwd_kq(q, k, v, S, T, H, KV, HD, att1, NULL, o1, scratch, NULL);
    train_attn_fwd_kq(q, k, v, S, T, H, KV, HD, NULL, lse, o3, scratch, pool);
    train_attn_bwd(dout, q, k, v, att0, S, T, H, KV, HD, dq0, dk0, dv0, NULL);
    train_attn_bwd_kq(dout, q, k, v, att1, NULL, S, T, H, KV, HD, dq1, dk1, dv1, scratch, NULL);
    /* from the log-sum-exp alone (probabilities recomputed), over 3 threads */
    train_attn_bwd_kq(dout, q, k, v, NULL, lse, S, T, H, KV, HD, dq3, dk3, dv3, scratch, pool);
    train_attn_bwd_kq(dout, q, k, v, NULL, lse, S, T, H, KV, HD, dq4, dk4, dv4, scratch, NULL);
    for (int i = 0; i < AN; i++)
        d = fmax(d, fabs(att0[i] - att1[i]));
    for (int i = 0; i < QN; i++) {
        d = fmax(d, fmax(fabs(o0[i] - o1[i]), fabs(dq0[i] - dq1[i])));
        mx = fmax(mx, fabs(dq0[i]));
    }
    for (int i = 0; i < KN; i++)
        d = fmax(d, fmax(fabs(dk0[i] - dk1[i]), fabs(dv0[i] - dv1[i])));
    for (int i = 0; i < QN; i++)
        d3 = fmax(d3, fmax(fabs(dq0[i] - dq3[i]), fabs(o0[i] - o3[i])));
    for (int i = 0; i < KN; i++)
        d3 = fmax(d3, fmax(fabs(dk0[i] - dk3[i]), fabs(dv0[i] - dv3[i])));
    printf("  kq attention vs definition: max |diff| %.3g, recomputing from lse %.3g (max |dq| "
           "%.3g)\n",
           d, d3, mx);
    tw_pool_free(pool);
    tw_free(scratch);
    CHECK(mx > 0.1 && d <= 1e-5 && d3 <= 1e-5);
    CHECK(!memcmp(o1, o3, sizeof(o1)));
    /* heads split across threads: the same bits as on one */
    CHECK(!memcmp(dq3, dq4, sizeof(dq3)) && !memcmp(dk3, dk4, sizeof(dk3)));
    CHECK(!memcmp(dv3, dv4, sizeof(dv3)));
}

/* The LoRA layer through the kq kernels against the definition, with dropout, over 1 and 3
 * threads; a zero B adds exactly nothing. */
TEST(train_lora_kq_matches_the_definition)
{
    enum { T = 9, NI = 37, NO = 23, R = 3 };
    struct tw_pool *pool = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_rng rng;
    float x[T * NI], a[R * NI], b[NO * R], drop[T * NI], dy[T * NO], u0[T * R], u1[T * R];
    float y0[T * NO], y1[T * NO], y3[T * NO], zb[NO * R] = {0};
    float dx0[T * NI] = {0}, da0[R * NI] = {0}, db0[NO * R] = {0};
    float dx1[T * NI] = {0}, da1[R * NI] = {0}, db1[NO * R] = {0};
    float dx3[T * NI] = {0}, da3[R * NI] = {0}, db3[NO * R] = {0};
    float *scratch = tw_mallocarray(train_lora_kq_scratch(T, NI, NO, R), sizeof(float));
    double d = 0;
    CHECK(scratch != NULL);
    CHECK_OK(tw_pool_new(3, &pool, &err), &err);
    train_rng_seed(&rng, 14);
    fill(&rng, x, NULL, T * NI, 1);
    fill(&rng, a, NULL, R * NI, 1);
    fill(&rng, b, NULL, NO * R, 1);
    fill(&rng, dy, NULL, T * NO, 1);
    fill(&rng, y0, NULL, T * NO, 1);
    memcpy(y1, y0, sizeof(y0));
    memcpy(y3, y0, sizeof(y0));
    train_dropout_mask(&rng, 0.2f, T * NI, drop);
    train_lora_fwd(x, drop, T, NI, NO, R, a, b, 1.5f, u0, y0);
    train_lora_fwd_kq(x, drop, T, NI, NO, R, a, b, 1.5f, u1, y1, scratch, NULL);
    train_lora_fwd_kq(x, drop, T, NI, NO, R, a, b, 1.5f, u1, y3, scratch, pool);
    train_lora_bwd(dy, x, drop, u0, T, NI, NO, R, a, b, 1.5f, dx0, da0, db0);
    train_lora_bwd_kq(dy, x, drop, u1, T, NI, NO, R, a, b, 1.5f, dx1, da1, db1, scratch, NULL);
    train_lora_bwd_kq(dy, x, drop, u1, T, NI, NO, R, a, b, 1.5f, dx3, da3, db3, scratch, pool);
    for (int i = 0; i < T * NO; i++)
        d = fmax(d, fabs(y0[i] - y1[i]));
    for (int i = 0; i < T * NI; i++)
        d = fmax(d, fabs(dx0[i] - dx1[i]));
    for (int i = 0; i < R * NI; i++)
        d = fmax(d, fabs(da0[i] - da1[i]));
    for (int i = 0; i < NO * R; i++)
        d = fmax(d, fabs(db0[i] - db1[i]));
    printf("  kq LoRA vs definition: max |diff| %.3g\n", d);
    CHECK(d <= 1e-5);
    CHECK(!memcmp(y1, y3, sizeof(y1)) && !memcmp(dx1, dx3, sizeof(dx1)));
    CHECK(!memcmp(da1, da3, sizeof(da1)) && !memcmp(db1, db3, sizeof(db1)));
    memcpy(y1, y0, sizeof(y0));
    train_lora_fwd_kq(x, NULL, T, NI, NO, R, a, zb, 2.0f, u1, y1, scratch, pool);
    CHECK(!memcmp(y1, y0, sizeof(y0)));
    tw_pool_free(pool);
    tw_free(scratch);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
