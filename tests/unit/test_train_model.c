/* test_train_model.c - the tiny Llama training graph: whole-model gradient checks against
 * finite differences of its double twin, LoRA, gradient accumulation, overfitting, resume. */
#include "test.h"

#include "base/mem.h"
#include "base/pool.h"
#include "nn/gguf.h"
#include "nn/kq.h"
#include "nn/train.h"

#include <stdint.h>
#include <stdlib.h>

/* The model of the brief: 2 layers, dim 16, 4 query heads over 2 kv heads, vocab 32, seq 8. */
static struct train_llama_cfg tiny_cfg(void)
{
    struct train_llama_cfg c = {.n_vocab = 32,
                                .n_embd = 16,
                                .n_layer = 2,
                                .n_head = 4,
                                .n_head_kv = 2,
                                .n_ff = 32,
                                .n_rot = 0,
                                .rope_type = TRAIN_ROPE_NORM,
                                .rope_base = 10000.0f,
                                .norm_eps = 1e-5f,
                                .tied_output = 0};
    return c;
}

enum { SEQ = 8 };

/* Two fixed sequences of 8 tokens; targets are the next token (the last wraps). */
static const int32_t tok2[2 * SEQ] = {1, 7, 3, 19, 30, 7, 2, 11, 1, 4, 4, 25, 9, 31, 0, 17};
static const int32_t tgt2[2 * SEQ] = {7, 3, 19, 30, 7, 2, 11, 5, 4, 4, 25, 9, 31, 0, 17, 8};
static const uint8_t mask2[2 * SEQ] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1};

/* Weights large enough that every path carries a real gradient: matrices U(-s, s) with
 * s = 1.5 / sqrt(n_in)-ish, norm weights around 1. */
static void randomize(struct train_llama *m, uint64_t seed, int only_lora_b)
{
    struct train_rng rng;
    int n;
    struct train_param *p = train_llama_params(m, &n);
    train_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        int is_norm = strstr(p[i].name, "_norm.") != NULL;
        int is_b = strstr(p[i].name, ".lora_b") != NULL;
        if (only_lora_b && !is_b)
            continue;
        for (size_t e = 0; e < p[i].n; e++) {
            float u = 2 * train_rng_float(&rng) - 1;
            p[i].w[e] = is_norm ? 1 + 0.3f * u : 0.4f * u;
        }
    }
}

#define GC_H         1e-6
#define GC_TOL       1e-3 // f32 analytic gradients
#define GC_TOL64     1e-5 // f64 analytic gradients (the same backward in double)
#define GC_FLOOR_REL 1e-2 // components under 1% of the tensor's largest are judged absolutely
#define GC_FLOOR_ABS 1e-7

/* |a - n| relative to the larger magnitude, or to 'floor' when both are below it. */
static double gc_rel(double a, double n, double floor)
{
    return fabs(a - n) / fmax(fmax(fabs(a), fabs(n)), floor);
}
#define GC_PER 64 // elements per tensor (random), keeps the check to a few seconds under ASan

/* Checks the f32 analytic gradients of every trainable tensor of m (after forward + backward
 * with dloss 1 from rng state rng0) against central differences of the double twin. */
static double model_gradcheck(struct train_llama *m, const struct train_rng *rng0,
                              const uint8_t *mask, int n_checked_min)
{
    struct tw_err err = TW_ERR_INIT;
    struct train_llama_f64 *d = NULL;
    struct train_rng pick;
    struct train_param *p;
    struct train_param_f64 *pd;
    double worst = 0, loss64;
    float loss;
    int n, nd, n_checked = 0;
    struct train_rng rng = *rng0;

    if (train_llama_forward(m, tok2, tgt2, mask, 2, SEQ, &rng, &loss, &err) < 0 ||
        train_llama_backward(m, 1.0f, &err) < 0 || train_llama_f64_from(m, &d, &err) < 0) {
        fprintf(stderr, "  %s\n", err.msg);
        return 1e9;
    }
    p = train_llama_params(m, &n);
    pd = train_llama_f64_params(d, &nd);
    rng = *rng0;
    train_llama_f64_forward(d, tok2, tgt2, mask, 2, SEQ, &rng, &loss64, &err);
    train_llama_f64_backward(d, 1.0, &err);
    printf("  loss f32 %.9g f64 %.12g\n", (double)loss, loss64);
    if (fabs(loss - loss64) > 1e-5 * fabs(loss64))
        worst = 1e9;
    train_rng_seed(&pick, 5);
    for (int i = 0; i < n && n == nd; i++) {
        double w = 0, w64 = 0, scale = 0, num[GC_PER];
        size_t idx[GC_PER];
        if (!p[i].g)
            continue;
        for (int c = 0; c < GC_PER; c++) {
            size_t e = idx[c] = train_rng_next(&pick) % p[i].n;
            double x0 = pd[i].w[e], h = GC_H * fmax(1.0, fabs(x0)), lp, lm;
            pd[i].w[e] = x0 + h;
            rng = *rng0;
            train_llama_f64_forward(d, tok2, tgt2, mask, 2, SEQ, &rng, &lp, &err);
            pd[i].w[e] = x0 - h;
            rng = *rng0;
            train_llama_f64_forward(d, tok2, tgt2, mask, 2, SEQ, &rng, &lm, &err);
            pd[i].w[e] = x0;
            num[c] = (lp - lm) / (2 * h);
            scale = fmax(scale, fabs(num[c]));
        }
        for (int c = 0; c < GC_PER; c++) {
            double a = p[i].g[idx[c]], a64 = pd[i].g[idx[c]];
            double r = gc_rel(a, num[c], fmax(GC_FLOOR_REL * scale, GC_FLOOR_ABS));
            double r64 = gc_rel(a64, num[c], fmax(GC_FLOOR_REL * scale, GC_FLOOR_ABS));
            if (r > GC_TOL || r64 > GC_TOL64)
                fprintf(stderr, "  d%s[%zu]: f32 %.9g f64 %.12g numeric %.12g rel %.3g / %.3g\n",
                        p[i].name, idx[c], a, a64, num[c], r, r64);
            w = fmax(w, r);
            w64 = fmax(w64, r64);
        }
        printf("  gradcheck %-32s max rel err f32 %.3g f64 %.3g (max |g| %.3g)\n", p[i].name, w,
               w64, scale);
        worst = fmax(worst, fmax(w, w64 * GC_TOL / GC_TOL64));
        n_checked++;
    }
    if (n != nd || n_checked < n_checked_min || err.code) {
        fprintf(stderr, "  %d tensors checked (want >= %d), %d vs %d tensors: %s\n", n_checked,
                n_checked_min, n, nd, err.msg);
        worst = 1e9;
    }
    train_llama_f64_free(d);
    return worst;
}

TEST(train_model_gradcheck_full)
{
    struct train_llama_cfg cfg = tiny_cfg();
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_rng rng;
    int n;
    CHECK_OK(train_llama_new(&cfg, 1, &m, &err), &err);
    randomize(m, 11, 0);
    train_llama_params(m, &n);
    CHECK_EQ_INT(n, 1 + 9 * 2 + 2);
    train_rng_seed(&rng, 0);
    double worst = model_gradcheck(m, &rng, mask2, n);
    train_llama_free(m);
    CHECK(worst <= GC_TOL);
}

TEST(train_model_gradcheck_tied_neox_partial_rope)
{
    struct train_llama_cfg cfg = tiny_cfg();
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_rng rng;
    int n;
    cfg.tied_output = 1;
    cfg.rope_type = TRAIN_ROPE_NEOX;
    cfg.n_rot = 2;
    cfg.n_head_kv = 1;
    CHECK_OK(train_llama_new(&cfg, 2, &m, &err), &err);
    randomize(m, 12, 0);
    train_llama_params(m, &n);
    CHECK_EQ_INT(n, 1 + 9 * 2 + 1);
    train_rng_seed(&rng, 0);
    double worst = model_gradcheck(m, &rng, NULL, n);
    train_llama_free(m);
    CHECK(worst <= GC_TOL);
}

TEST(train_model_gradcheck_lora_with_dropout)
{
    struct train_llama_cfg cfg = tiny_cfg();
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_rng rng;
    struct train_param *p;
    int n;
    CHECK_OK(train_llama_new(&cfg, 3, &m, &err), &err);
    randomize(m, 13, 0);
    CHECK_OK(train_llama_add_lora(m, TRAIN_LORA_ALL, 2, 4.0f, 0.25f, 77, &err), &err);
    randomize(m, 14, 1); // B != 0 so that A has a gradient
    p = train_llama_params(m, &n);
    CHECK_EQ_INT(n, 21 + 2 * 7 * 2);
    for (int i = 0; i < 21; i++)
        CHECK(p[i].g == NULL && p[i].m == NULL); // the base is frozen
    CHECK_EQ_STR(p[21].name, "blk.0.attn_q.weight.lora_a");
    CHECK_EQ_INT(p[21].n, 2 * 16);
    CHECK_EQ_STR(p[n - 1].name, "blk.1.ffn_down.weight.lora_b");
    CHECK_EQ_INT(p[n - 1].n, 16 * 2);
    train_rng_seed(&rng, 1234);
    double worst = model_gradcheck(m, &rng, mask2, 28);
    train_llama_free(m);
    CHECK(worst <= GC_TOL);
}

/* Summing n micro-batch gradients, each taken with dloss = 1/n, equals the gradient of the
 * full batch (equal token counts per micro-batch, so the mean of means is the mean). */
TEST(train_model_gradient_accumulation_equals_full_batch)
{
    struct train_llama_cfg cfg = tiny_cfg();
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_param *p;
    float loss_full, l0, l1, *full = NULL;
    size_t total = 0, off = 0;
    double max_diff = 0, max_abs = 0;
    int n;
    CHECK_OK(train_llama_new(&cfg, 4, &m, &err), &err);
    randomize(m, 15, 0);
    p = train_llama_params(m, &n);
    for (int i = 0; i < n; i++)
        total += p[i].n;
    full = tw_mallocarray(total, sizeof(float));
    CHECK(full != NULL);
    train_grad_zero(p, n, NULL);
    CHECK_OK(train_llama_forward(m, tok2, tgt2, NULL, 2, SEQ, NULL, &loss_full, &err), &err);
    CHECK_OK(train_llama_backward(m, 1.0f, &err), &err);
    for (int i = 0; i < n; i++, off += p[i - 1].n)
        memcpy(full + off, p[i].g, p[i].n * sizeof(float));
    train_grad_zero(p, n, NULL);
    CHECK_OK(train_llama_forward(m, tok2, tgt2, NULL, 1, SEQ, NULL, &l0, &err), &err);
    CHECK_OK(train_llama_backward(m, 0.5f, &err), &err);
    CHECK_OK(train_llama_forward(m, tok2 + SEQ, tgt2 + SEQ, NULL, 1, SEQ, NULL, &l1, &err), &err);
    CHECK_OK(train_llama_backward(m, 0.5f, &err), &err);
    CHECK_NEAR((l0 + l1) / 2, loss_full, 1e-6);
    off = 0;
    for (int i = 0; i < n; i++) {
        for (size_t e = 0; e < p[i].n; e++) {
            max_diff = fmax(max_diff, fabs(p[i].g[e] - full[off + e]));
            max_abs = fmax(max_abs, fabs(full[off + e]));
        }
        off += p[i].n;
    }
    printf("  accumulated vs full-batch gradient: max |diff| %.3g, max |g| %.3g\n", max_diff,
           max_abs);
    tw_free(full);
    train_llama_free(m);
    CHECK(max_abs > 1e-2);
    CHECK(max_diff <= 1e-6 * max_abs);
}

/* With a loss mask the micro-batches count different numbers of tokens: weighting each by its
 * share of the counted tokens (dloss = n_i / N) gives the full-batch gradient. */
TEST(train_model_accumulation_with_masks_weights_by_token_share)
{
    static const uint8_t mask3[2 * SEQ] = {0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1};
    struct train_llama_cfg cfg = tiny_cfg();
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_param *p;
    float loss_full, l0, l1, *full = NULL;
    size_t total = 0, off = 0;
    double max_diff = 0, max_abs = 0;
    int n;
    CHECK_OK(train_llama_new(&cfg, 4, &m, &err), &err);
    randomize(m, 18, 0);
    p = train_llama_params(m, &n);
    for (int i = 0; i < n; i++)
        total += p[i].n;
    full = tw_mallocarray(total, sizeof(float));
    CHECK(full != NULL);
    train_grad_zero(p, n, NULL);
    CHECK_OK(train_llama_forward(m, tok2, tgt2, mask3, 2, SEQ, NULL, &loss_full, &err), &err);
    CHECK_OK(train_llama_backward(m, 1.0f, &err), &err);
    for (int i = 0; i < n; off += p[i].n, i++)
        memcpy(full + off, p[i].g, p[i].n * sizeof(float));
    train_grad_zero(p, n, NULL);
    CHECK_OK(train_llama_forward(m, tok2, tgt2, mask3, 1, SEQ, NULL, &l0, &err), &err);
    CHECK_OK(train_llama_backward(m, 7.0f / 12, &err), &err);
    CHECK_OK(train_llama_forward(m, tok2 + SEQ, tgt2 + SEQ, mask3 + SEQ, 1, SEQ, NULL, &l1, &err),
             &err);
    CHECK_OK(train_llama_backward(m, 5.0f / 12, &err), &err);
    CHECK_NEAR(l0 * 7 / 12 + l1 * 5 / 12, loss_full, 1e-6);
    off = 0;
    for (int i = 0; i < n; off += p[i].n, i++)
        for (size_t e = 0; e < p[i].n; e++) {
            max_diff = fmax(max_diff, fabs(p[i].g[e] - full[off + e]));
            max_abs = fmax(max_abs, fabs(full[off + e]));
        }
    printf("  masked micro-batches vs full batch: max |diff| %.3g, max |g| %.3g\n", max_diff,
           max_abs);
    tw_free(full);
    train_llama_free(m);
    CHECK(max_abs > 1e-2);
    CHECK(max_diff <= 1e-6 * max_abs);
}

/* Trains on one fixed sequence until the loss is near zero; returns the steps taken or -1. */
static int overfit(struct train_llama *m, int max_steps, float lr, float *first, float *last)
{
    struct train_adamw opt = TRAIN_ADAMW_DEFAULT;
    struct train_sched sched = {TRAIN_DECAY_COSINE, lr, lr / 10, 10, max_steps};
    struct tw_err err = TW_ERR_INIT;
    struct train_rng rng;
    struct train_param *p;
    int n;
    p = train_llama_params(m, &n);
    train_rng_seed(&rng, 3);
    opt.weight_decay = 0.01f;
    for (int step = 0; step < max_steps; step++) {
        float loss;
        train_grad_zero(p, n, NULL);
        if (train_llama_forward(m, tok2, tgt2, NULL, 1, SEQ, &rng, &loss, &err) < 0 ||
            train_llama_backward(m, 1.0f, &err) < 0)
            return -1;
        if (step == 0)
            *first = loss;
        *last = loss;
        if (loss < 0.05f)
            return step;
        train_clip_grad_norm(p, n, 1.0, NULL);
        train_adamw_step(&opt, train_sched_lr(&sched, step), step + 1, p, n, NULL);
    }
    return -1;
}

TEST(train_model_overfits_a_fixed_sequence)
{
    struct train_llama_cfg cfg = tiny_cfg();
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    float first = 0, last = 0;
    int steps;
    CHECK_OK(train_llama_new(&cfg, 5, &m, &err), &err);
    steps = overfit(m, 400, 1e-2f, &first, &last);
    printf("  full training: loss %.4f -> %.4f in %d steps\n", first, last, steps);
    train_llama_free(m);
    CHECK_NEAR(first, log(32.0), 0.1); // N(0, 0.02) init: close to uniform over 32 tokens
    CHECK(steps > 0);
    CHECK(last < 0.05f);
}

TEST(train_model_lora_starts_at_the_base_and_learns)
{
    struct train_llama_cfg cfg = tiny_cfg();
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_param *p;
    float base_loss, lora_loss, first = 0, last = 0, *base_copy;
    size_t base_n = 0, off = 0;
    int n, steps;
    CHECK_OK(train_llama_new(&cfg, 6, &m, &err), &err);
    randomize(m, 16, 0);
    CHECK_OK(train_llama_forward(m, tok2, tgt2, mask2, 2, SEQ, NULL, &base_loss, &err), &err);
    CHECK_OK(train_llama_add_lora(m, TRAIN_LORA_ALL, 4, 8.0f, 0.0f, 9, &err), &err);
    CHECK_OK(train_llama_forward(m, tok2, tgt2, mask2, 2, SEQ, NULL, &lora_loss, &err), &err);
    printf("  base loss %.9g, step-0 LoRA loss %.9g\n", base_loss, lora_loss);
    CHECK(memcmp(&base_loss, &lora_loss, sizeof(float)) == 0); // bit for bit
    p = train_llama_params(m, &n);
    CHECK_EQ_INT(n, 21 + 2 * 7 * 2);
    for (int i = 0; i < 21; i++)
        base_n += p[i].n;
    base_copy = tw_mallocarray(base_n, sizeof(float));
    CHECK(base_copy != NULL);
    for (int i = 0; i < 21; off += p[i].n, i++)
        memcpy(base_copy + off, p[i].w, p[i].n * sizeof(float));
    steps = overfit(m, 300, 2e-2f, &first, &last);
    printf("  LoRA training: loss %.4f -> %.4f (%d steps)\n", first, last, steps);
    off = 0;
    int same = 1;
    for (int i = 0; i < 21; off += p[i].n, i++)
        same &= memcmp(base_copy + off, p[i].w, p[i].n * sizeof(float)) == 0;
    tw_free(base_copy);
    train_llama_free(m);
    CHECK(same); // the base never moves
    /* the output projection and final norm stay frozen, so the reachable loss has a floor (the
     * logits' range is bounded by the norm of output rows): assert a large drop, not ~0 */
    CHECK(last < first / 3);
}

/* qwen2-style: QKV biases, NEOX, linear rope scaling and per-pair frequency divisors. */
TEST(train_model_gradcheck_qkv_bias_scaled_rope)
{
    static const float freqs[2] = {1.0f, 3.0f};
    struct train_llama_cfg cfg = tiny_cfg();
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_rng rng;
    struct train_param *p;
    int n;
    cfg.qkv_bias = 1;
    cfg.rope_type = TRAIN_ROPE_NEOX;
    cfg.rope_freq_scale = 0.5f;
    cfg.rope_freqs = freqs;
    CHECK_OK(train_llama_new(&cfg, 8, &m, &err), &err);
    randomize(m, 19, 0);
    p = train_llama_params(m, &n);
    CHECK_EQ_INT(n, 1 + 12 * 2 + 2);
    CHECK_EQ_STR(p[1 + 9].name, "blk.0.attn_q.bias");
    CHECK_EQ_INT(p[1 + 10].n, 8);
    CHECK(train_llama_config(m)->rope_freqs != freqs); // copied
    train_rng_seed(&rng, 0);
    double worst = model_gradcheck(m, &rng, mask2, n);
    train_llama_free(m);
    CHECK(worst <= GC_TOL);
}

/* A base whose matrices are read in place (here as kq F32, the same values): the graph goes
 * through kq_matmul, the on-the-fly dx and the dequantizing embedding gather, and the LoRA
 * gradients still match finite differences. */
TEST(train_model_gradcheck_lora_over_in_place_base)
{
    struct train_llama_cfg cfg = tiny_cfg();
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_rng rng;
    struct train_param *p;
    int n;
    CHECK_OK(train_llama_new(&cfg, 9, &m, &err), &err);
    randomize(m, 20, 0);
    CHECK_OK(train_llama_add_lora(m, TRAIN_LORA_ALL, 2, 4.0f, 0.0f, 78, &err), &err);
    randomize(m, 21, 1);
    p = train_llama_params(m, &n);
    CHECK_EQ_INT(train_llama_set_frozen(m, 1, GGUF_T_F32, p[1].w, &err), TW_EINVAL); // a norm
    CHECK(strstr(err.msg, "'blk.0.attn_norm.weight' is not a matrix") != NULL);
    tw_err_clear(&err);
    for (int i = 0; i < 21; i++)
        if (!strstr(p[i].name, "_norm."))
            CHECK_OK(train_llama_set_frozen(m, i, GGUF_T_F32, p[i].w, &err), &err);
    train_rng_seed(&rng, 0);
    double worst = model_gradcheck(m, &rng, mask2, 28);
    train_llama_free(m);
    CHECK(worst <= GC_TOL);
}

/* QLoRA on a Q8_0 base (dims a multiple of 32): the loss stays within activation-quantization
 * error of the dense model on the dequantized weights, and LoRA training still drives it down
 * while the quantized bytes stay untouched. */
TEST(train_model_qlora_over_q8_0_base)
{
    struct train_llama_cfg cfg = tiny_cfg();
    struct train_llama *q = NULL, *d = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_param *pq, *pd;
    unsigned char *blob = NULL, *copy = NULL;
    size_t off[21], total = 0;
    float lq, ld, first = 0, last = 0;
    int n, steps;
    cfg.n_embd = 32;
    cfg.n_ff = 64;
    CHECK_OK(train_llama_new(&cfg, 10, &q, &err), &err);
    CHECK_OK(train_llama_new(&cfg, 10, &d, &err), &err);
    randomize(q, 22, 0);
    CHECK_OK(train_llama_add_lora(q, TRAIN_LORA_ALL, 4, 8.0f, 0.0f, 79, &err), &err);
    CHECK_OK(train_llama_add_lora(d, TRAIN_LORA_ALL, 4, 8.0f, 0.0f, 79, &err), &err);
    pq = train_llama_params(q, &n);
    pd = train_llama_params(d, &n);
    for (int i = 0; i < 21; i++) {
        off[i] = total;
        total += pq[i].n / 32 * gguf_type_block_bytes(GGUF_T_Q8_0);
    }
    blob = tw_malloc(total);
    copy = tw_malloc(total);
    CHECK(blob && copy);
    for (int i = 0; i < 21; i++) {
        if (strstr(pq[i].name, "_norm.")) {
            memcpy(pd[i].w, pq[i].w, pq[i].n * sizeof(float));
            continue;
        }
        kq_quant(GGUF_T_Q8_0, pq[i].w, blob + off[i], (int64_t)pq[i].n);
        kq_dequant(GGUF_T_Q8_0, blob + off[i], pd[i].w, (int64_t)pq[i].n);
        CHECK_OK(train_llama_set_frozen(q, i, GGUF_T_Q8_0, blob + off[i], &err), &err);
    }
    memcpy(copy, blob, total);
    CHECK_OK(train_llama_forward(q, tok2, tgt2, mask2, 2, SEQ, NULL, &lq, &err), &err);
    CHECK_OK(train_llama_forward(d, tok2, tgt2, mask2, 2, SEQ, NULL, &ld, &err), &err);
    printf("  q8_0 in place loss %.6f, dense dequantized %.6f\n", lq, ld);
    CHECK_NEAR(lq, ld, 1e-2 * ld);
    steps = overfit(q, 150, 2e-2f, &first, &last);
    printf("  QLoRA training: loss %.4f -> %.4f (%d steps)\n", first, last, steps);
    CHECK(memcmp(blob, copy, total) == 0);
    tw_free(blob);
    tw_free(copy);
    train_llama_free(q);
    train_llama_free(d);
    CHECK(last < first / 3);
}

/* Stopping after k steps and resuming from copies of the weights, moments and rng state gives
 * bit-identical weights to training 2k steps straight, dropout included. */
static int train_steps(struct train_llama *m, struct train_rng *rng, int from, int steps)
{
    struct train_adamw opt = TRAIN_ADAMW_DEFAULT;
    struct tw_err err = TW_ERR_INIT;
    struct train_param *p;
    int n;
    float loss;
    p = train_llama_params(m, &n);
    for (int s = from; s < from + steps; s++) {
        train_grad_zero(p, n, NULL);
        if (train_llama_forward(m, tok2, tgt2, mask2, 2, SEQ, rng, &loss, &err) < 0 ||
            train_llama_backward(m, 1.0f, &err) < 0)
            return -1;
        train_adamw_step(&opt, 1e-2f, s + 1, p, n, NULL);
    }
    return 0;
}

static struct train_llama *lora_model(struct tw_err *err)
{
    struct train_llama_cfg cfg = tiny_cfg();
    struct train_llama *m = NULL;
    if (train_llama_new(&cfg, 7, &m, err) < 0)
        return NULL;
    if (train_llama_add_lora(m, TRAIN_LORA_ALL, 2, 2.0f, 0.1f, 10, err) < 0) {
        train_llama_free(m);
        return NULL;
    }
    return m;
}

TEST(train_model_resume_is_bit_identical)
{
    struct tw_err err = TW_ERR_INIT;
    struct train_llama *a = lora_model(&err), *b = lora_model(&err);
    struct train_rng ra, rb;
    uint8_t saved[TRAIN_RNG_STATE_BYTES];
    struct train_param *pa, *pb;
    int n, nb, same = 1;
    CHECK(a && b);
    train_rng_seed(&ra, 21);
    CHECK_EQ_INT(train_steps(a, &ra, 0, 3), 0);
    /* checkpoint a into b: values, moments, rng */
    pa = train_llama_params(a, &n);
    pb = train_llama_params(b, &nb);
    for (int i = 0; i < n; i++) {
        memcpy(pb[i].w, pa[i].w, pa[i].n * sizeof(float));
        if (pa[i].m) {
            memcpy(pb[i].m, pa[i].m, pa[i].n * sizeof(float));
            memcpy(pb[i].v, pa[i].v, pa[i].n * sizeof(float));
        }
    }
    train_rng_save(&ra, saved);
    CHECK_OK(train_rng_restore(&rb, saved, &err), &err);
    CHECK_EQ_INT(train_steps(a, &ra, 3, 3), 0);
    CHECK_EQ_INT(train_steps(b, &rb, 3, 3), 0);
    for (int i = 0; i < n; i++)
        same &= memcmp(pa[i].w, pb[i].w, pa[i].n * sizeof(float)) == 0;
    /* and the adapters did move */
    int moved = 0;
    for (int i = 21; i < n; i++)
        for (size_t e = 0; e < pa[i].n; e++)
            moved |= strstr(pa[i].name, "lora_b") && pa[i].w[e] != 0;
    train_llama_free(a);
    train_llama_free(b);
    CHECK(same);
    CHECK(moved);
}

/* The whole graph over 3 threads: the same loss and gradients to the last bit. */
TEST(train_model_threads_do_not_change_results)
{
    struct tw_err err = TW_ERR_INIT;
    struct train_llama *a = lora_model(&err), *b = lora_model(&err);
    struct tw_pool *pool = NULL;
    struct train_rng ra, rb;
    struct train_param *pa, *pb;
    float la, lb;
    int n, same = 1;
    CHECK(a && b);
    CHECK_OK(tw_pool_new(3, &pool, &err), &err);
    train_llama_set_pool(b, pool);
    randomize(a, 17, 1);
    randomize(b, 17, 1);
    train_rng_seed(&ra, 8);
    train_rng_seed(&rb, 8);
    CHECK_OK(train_llama_forward(a, tok2, tgt2, mask2, 2, SEQ, &ra, &la, &err), &err);
    CHECK_OK(train_llama_forward(b, tok2, tgt2, mask2, 2, SEQ, &rb, &lb, &err), &err);
    CHECK_OK(train_llama_backward(a, 1.0f, &err), &err);
    CHECK_OK(train_llama_backward(b, 1.0f, &err), &err);
    pa = train_llama_params(a, &n);
    pb = train_llama_params(b, &n);
    for (int i = 0; i < n; i++)
        if (pa[i].g)
            same &= memcmp(pa[i].g, pb[i].g, pa[i].n * sizeof(float)) == 0;
    train_llama_free(a);
    train_llama_free(b);
    tw_pool_free(pool);
    CHECK(memcmp(&la, &lb, sizeof(la)) == 0);
    CHECK(same);
}

/* Full fine-tuning over 3 threads (every tensor trainable: RMSNorm's weight gradient is split by
 * columns, the matmul gradients by 16-column units, the optimizer by pieces): the same loss,
 * gradients and, after two optimizer steps, weights and moments as on one thread. */
TEST(train_model_full_threads_do_not_change_results)
{
    struct train_llama_cfg cfg = tiny_cfg();
    struct tw_err err = TW_ERR_INIT;
    struct train_llama *m[2] = {NULL, NULL};
    struct tw_pool *pool = NULL;
    struct train_adamw opt = {0.9f, 0.999f, 1e-8f, 0.01f};
    struct train_param *p[2];
    float loss[2][2];
    int n, same_g = 1, same_w = 1;
    CHECK_OK(tw_pool_new(3, &pool, &err), &err);
    for (int k = 0; k < 2; k++) {
        CHECK_OK(train_llama_new(&cfg, 5, &m[k], &err), &err);
        if (!m[k])
            return;
        randomize(m[k], 21, 0);
    }
    train_llama_set_pool(m[1], pool);
    for (int step = 0; step < 2; step++) {
        for (int k = 0; k < 2; k++) {
            CHECK_OK(train_llama_forward(m[k], tok2, tgt2, mask2, 2, SEQ, NULL, &loss[k][step],
                                         &err),
                     &err);
            CHECK_OK(train_llama_backward(m[k], 1.0f, &err), &err);
            p[k] = train_llama_params(m[k], &n);
        }
        for (int i = 0; i < n; i++)
            same_g &= memcmp(p[0][i].g, p[1][i].g, p[0][i].n * sizeof(float)) == 0;
        train_optim_step(&opt, 1e-2f, step + 1, p[1], n, 0.5, pool);
        if (step == 0) { // one thread, the unfused passes: the same bits as the fused one
            train_clip_grad_norm(p[0], n, 0.5, NULL);
            train_adamw_step(&opt, 1e-2f, step + 1, p[0], n, NULL);
            train_grad_zero(p[0], n, NULL);
        } else {
            train_optim_step(&opt, 1e-2f, step + 1, p[0], n, 0.5, NULL);
        }
    }
    for (int i = 0; i < n; i++) {
        same_w &= memcmp(p[0][i].w, p[1][i].w, p[0][i].n * sizeof(float)) == 0;
        same_w &= memcmp(p[0][i].m, p[1][i].m, p[0][i].n * sizeof(float)) == 0;
        same_w &= memcmp(p[0][i].v, p[1][i].v, p[0][i].n * sizeof(float)) == 0;
    }
    CHECK(memcmp(loss[0], loss[1], sizeof(loss[0])) == 0);
    CHECK(loss[0][1] < loss[0][0]); // the steps did something
    CHECK(same_g);
    CHECK(same_w);
    train_llama_free(m[0]);
    train_llama_free(m[1]);
    tw_pool_free(pool);
}

/* Without an rng the forward is an evaluation: no dropout, the same loss every time and the
 * loss the model has without dropout; with an rng, dropout changes it. */
TEST(train_model_no_rng_means_no_dropout)
{
    struct train_llama_cfg cfg = tiny_cfg();
    struct train_llama *m = NULL, *plain = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_rng rng;
    struct train_param *pm, *pp;
    float l1, l2, l0, ld;
    int n;
    CHECK_OK(train_llama_new(&cfg, 1, &m, &err), &err);
    CHECK_OK(train_llama_new(&cfg, 1, &plain, &err), &err);
    CHECK_OK(train_llama_add_lora(m, TRAIN_LORA_ALL, 2, 4.0f, 0.5f, 3, &err), &err);
    CHECK_OK(train_llama_add_lora(plain, TRAIN_LORA_ALL, 2, 4.0f, 0.0f, 3, &err), &err);
    pm = train_llama_params(m, &n);
    pp = train_llama_params(plain, &n);
    for (int i = 0; i < n; i++) // B != 0 so that dropout matters
        for (size_t e = 0; e < pm[i].n; e++)
            if (strstr(pm[i].name, "lora_b"))
                pm[i].w[e] = pp[i].w[e] = 0.05f * (float)(e % 7) - 0.15f;
    CHECK_OK(train_llama_forward(m, tok2, tgt2, NULL, 1, SEQ, NULL, &l1, &err), &err);
    CHECK_OK(train_llama_forward(m, tok2, tgt2, NULL, 1, SEQ, NULL, &l2, &err), &err);
    CHECK_OK(train_llama_forward(plain, tok2, tgt2, NULL, 1, SEQ, NULL, &l0, &err), &err);
    train_rng_seed(&rng, 4);
    CHECK_OK(train_llama_forward(m, tok2, tgt2, NULL, 1, SEQ, &rng, &ld, &err), &err);
    CHECK_OK(train_llama_backward(m, 1.0f, &err), &err);
    train_llama_free(m);
    train_llama_free(plain);
    CHECK(l1 == l2 && l1 == l0);
    CHECK(ld != l1);
}

TEST(train_model_rejects_bad_input)
{
    struct train_llama_cfg cfg = tiny_cfg();
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    int32_t bad[SEQ];
    float loss;
    cfg.n_head_kv = 3;
    CHECK_EQ_INT(train_llama_new(&cfg, 1, &m, &err), TW_EINVAL);
    CHECK(m == NULL);
    CHECK(strstr(err.msg, "n_head 4 is not a multiple of n_head_kv 3") != NULL);
    tw_err_clear(&err);
    cfg = tiny_cfg();
    cfg.n_vocab = 0;
    CHECK_EQ_INT(train_llama_new(&cfg, 1, &m, &err), TW_EINVAL);
    CHECK(strstr(err.msg, "n_vocab = 0") != NULL);
    tw_err_clear(&err);
    cfg = tiny_cfg();
    CHECK_OK(train_llama_new(&cfg, 1, &m, &err), &err);
    CHECK_EQ_INT(train_llama_backward(m, 1.0f, &err), TW_ESTATE);
    tw_err_clear(&err);
    memcpy(bad, tok2, sizeof(bad));
    bad[5] = 32;
    CHECK_EQ_INT(train_llama_forward(m, bad, tgt2, NULL, 1, SEQ, NULL, &loss, &err), TW_EINVAL);
    CHECK_EQ_STR(err.msg, "token id 32 at position 5 is outside the vocabulary (32 tokens)");
    tw_err_clear(&err);
    bad[5] = 3;
    bad[0] = -1; // a masked target may be anything (an ignore index) ...
    CHECK_OK(train_llama_forward(m, tok2, bad, mask2, 1, SEQ, NULL, &loss, &err), &err);
    /* ... an unmasked one may not */
    CHECK_EQ_INT(train_llama_forward(m, tok2, bad, NULL, 1, SEQ, NULL, &loss, &err), TW_EINVAL);
    tw_err_clear(&err);
    CHECK_EQ_INT(train_llama_backward(m, 1.0f, &err), TW_ESTATE); // the failed forward cleared it
    tw_err_clear(&err);
    CHECK_EQ_INT(train_llama_forward(m, tok2, tgt2, NULL, 0, SEQ, NULL, &loss, &err), TW_EINVAL);
    tw_err_clear(&err);
    CHECK_EQ_INT(train_llama_add_lora(m, 0, 4, 8.0f, 0.0f, 1, &err), TW_EINVAL);
    tw_err_clear(&err);
    CHECK_EQ_INT(train_llama_add_lora(m, TRAIN_LORA_Q, 0, 8.0f, 0.0f, 1, &err), TW_EINVAL);
    tw_err_clear(&err);
    CHECK_EQ_INT(train_llama_add_lora(m, TRAIN_LORA_Q, 4, 8.0f, 1.0f, 1, &err), TW_EINVAL);
    tw_err_clear(&err);
    CHECK_OK(train_llama_add_lora(m, TRAIN_LORA_Q, 4, 8.0f, 0.5f, 1, &err), &err);
    CHECK_EQ_INT(train_llama_add_lora(m, TRAIN_LORA_Q, 4, 8.0f, 0.5f, 1, &err), TW_ESTATE);
    tw_err_clear(&err);
    train_llama_free(m);
}

TEST(train_model_survives_allocation_failures)
{
    struct train_llama_cfg cfg = tiny_cfg();
    int failures = 0, done = 0;
    for (long k = 0; k < 64 && !done; k++) {
        struct train_llama *m = NULL;
        struct tw_err err = TW_ERR_INIT;
        struct train_rng rng;
        float loss;
        int rc;
        train_rng_seed(&rng, 1);
        tw_mem_fail_after(k);
        rc = train_llama_new(&cfg, 1, &m, &err);
        if (rc >= 0)
            rc = train_llama_add_lora(m, TRAIN_LORA_ALL, 2, 4.0f, 0.1f, 1, &err);
        if (rc >= 0)
            rc = train_llama_forward(m, tok2, tgt2, NULL, 1, SEQ, &rng, &loss, &err);
        if (rc >= 0)
            rc = train_llama_backward(m, 1.0f, &err);
        tw_mem_fail_after(-1);
        if (rc < 0) {
            CHECK_EQ_INT(rc, TW_ENOMEM);
            CHECK(strstr(err.msg, "out of memory") != NULL);
            failures++;
        } else {
            done = 1;
        }
        train_llama_free(m);
    }
    CHECK(done);
    CHECK(failures >= 5);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
