/* test_train_gguf.c - the training graph on a real model: stories260K loaded into it gives
 * llama.cpp's logits and our decoder's, llama.cpp's test LoRA adapter gives llama.cpp's adapter
 * logits, adapters round-trip through GGUF, and LoRA / full fine-tuning on it are checked
 * against finite differences and make the loss fall. */
#include "test.h"

#include "base/mem.h"
#include "nn/gguf.h"
#include "nn/llm.h"
#include "nn/lora.h"
#include "nn/train.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

#define MODEL     "data/models/stories260K.gguf"
#define ADAPTER   "refs/lora/stories260K-test-lora.gguf"
#define LOGIT_TOL 1e-4 // F32 weights: llama.cpp and our decoder agree to ~1e-5 on |logit| <= 18

/* Max |a - b| over the last-position logits of every case of 'cases' for the model m. */
static double cases_max_diff(struct train_llama *m, const cJSON *cases, int *n_cases)
{
    const cJSON *cs;
    double worst = 0;
    struct tw_err err = TW_ERR_INIT;
    *n_cases = 0;
    cJSON_ArrayForEach(cs, cases)
    {
        int32_t ids[64];
        float want[512], *logits;
        int n = test_json_ids(cJSON_GetObjectItem(cs, "prompt_ids"), ids, 64);
        int nv = test_json_floats(cJSON_GetObjectItem(cs, "last_logits"), want, 512);
        if (n < 1 || n > 64 || nv != 512)
            return 1e9;
        logits = tw_mallocarray((size_t)n * 512, sizeof(float));
        if (!logits || train_llama_logits(m, ids, 1, n, NULL, logits, &err) < 0) {
            fprintf(stderr, "  %s\n", err.msg);
            tw_free(logits);
            return 1e9;
        }
        for (int v = 0; v < 512; v++)
            worst = fmax(worst, fabs(logits[(size_t)(n - 1) * 512 + v] - want[v]));
        tw_free(logits);
        ++*n_cases;
    }
    return worst;
}

TEST(train_stories260K_graph_matches_llama_cpp_and_decoder)
{
    struct llm_model *lm = NULL;
    struct llm_ctx *ctx = NULL;
    struct train_llama *full = NULL, *frozen = NULL;
    struct tw_err err = TW_ERR_INIT;
    cJSON *j = test_json_load("refs/stories260K.json");
    static const int32_t in[18] = {1,   365, 49,  418, 291, 160, 59, 0, 306,
                                   506, 304, 278, 127, 1,   2,   3,  4, 511};
    float *a = NULL, *b = NULL, *c = NULL;
    double d_full, d_frozen, d_dec = 0;
    int n_cases, n_cases2;
    CHECK(j != NULL);
    CHECK_OK(llm_model_load(test_shared(MODEL), &lm, &err), &err);
    CHECK_OK(train_llama_from_llm(lm, 0, &full, &err), &err);
    CHECK_OK(train_llama_from_llm(lm, 1, &frozen, &err), &err);
    d_full = cases_max_diff(full, cJSON_GetObjectItem(j, "cases"), &n_cases);
    d_frozen = cases_max_diff(frozen, cJSON_GetObjectItem(j, "cases"), &n_cases2);
    printf("  vs llama.cpp last logits (%d prompts): full %.3g, frozen in place %.3g\n", n_cases,
           d_full, d_frozen);
    /* every position against our decoder, on ids spanning the vocabulary */
    a = tw_mallocarray(18 * 512, sizeof(float));
    b = tw_mallocarray(18 * 512, sizeof(float));
    c = tw_mallocarray(18 * 512, sizeof(float));
    CHECK_OK(llm_ctx_new(lm, 64, LLM_KV_F32, 1, &ctx, &err), &err);
    CHECK_OK(llm_decode(ctx, in, 18, a, LLM_LOGITS_ALL, &err), &err);
    CHECK_OK(train_llama_logits(full, in, 1, 18, NULL, b, &err), &err);
    CHECK_OK(train_llama_logits(frozen, in, 1, 18, NULL, c, &err), &err);
    for (int i = 0; i < 18 * 512; i++)
        d_dec = fmax(d_dec, fmax(fabs(a[i] - b[i]), fabs(a[i] - c[i])));
    printf("  vs our decoder, all 18 positions: max |diff| %.3g\n", d_dec);
    tw_free(a);
    tw_free(b);
    tw_free(c);
    llm_ctx_free(ctx);
    train_llama_free(full);
    train_llama_free(frozen);
    llm_model_free(lm);
    cJSON_Delete(j);
    CHECK_EQ_INT(n_cases, 5);
    CHECK(d_full <= LOGIT_TOL);
    CHECK(d_frozen <= LOGIT_TOL);
    CHECK(d_dec <= LOGIT_TOL);
}

TEST(train_lora_adapter_matches_llama_cpp)
{
    struct llm_model *lm = NULL;
    struct gguf_file *af = NULL;
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    cJSON *j = test_json_load("refs/lora/stories260K-lora.json");
    unsigned targets = 0;
    int r = 0, n_cases = 0;
    float alpha = 0;
    double d;
    CHECK(j != NULL);
    CHECK_OK(llm_model_load(test_shared(MODEL), &lm, &err), &err);
    CHECK_OK(gguf_open(test_shared(ADAPTER), &af, &err), &err);
    CHECK_OK(train_llama_from_llm(lm, 1, &m, &err), &err);
    CHECK_OK(train_llama_lora_load(m, af, &err), &err);
    CHECK(train_llama_lora(m, &targets, &r, &alpha, NULL));
    CHECK_EQ_INT(targets, TRAIN_LORA_Q | TRAIN_LORA_V | TRAIN_LORA_UP);
    CHECK_EQ_INT(r, 4);
    CHECK(alpha == 8.0f);
    d = cases_max_diff(m, cJSON_GetObjectItem(cJSON_GetObjectItem(j, "runs"), "adapter_scale_1.0"),
                       &n_cases);
    printf("  adapter at scale 1 vs llama.cpp (%d prompts): max |diff| %.3g\n", n_cases, d);
    /* a second adapter is refused; a base model is not an adapter */
    CHECK_EQ_INT(train_llama_lora_load(m, af, &err), TW_ESTATE);
    tw_err_clear(&err);
    train_llama_free(m);
    m = NULL;
    gguf_close(af);
    af = NULL;
    CHECK_OK(gguf_open(test_shared(MODEL), &af, &err), &err);
    CHECK_OK(train_llama_from_llm(lm, 1, &m, &err), &err);
    CHECK_EQ_INT(train_llama_lora_load(m, af, &err), TW_EFORMAT);
    CHECK(strstr(err.msg, "not an adapter") != NULL);
    train_llama_free(m);
    gguf_close(af);
    llm_model_free(lm);
    cJSON_Delete(j);
    CHECK_EQ_INT(n_cases, 3);
    CHECK(d <= LOGIT_TOL);
}

/* Trains a few LoRA steps on stories260K, saves the adapter, reads it back into a fresh graph:
 * the same tensors bit for bit, the same logits, the keys llama.cpp reads. */
TEST(train_lora_save_load_roundtrip)
{
    static const int32_t ids[9] = {1, 403, 407, 261, 378, 1, 2, 300, 17};
    struct llm_model *lm = NULL;
    struct gguf_file *f = NULL;
    struct train_llama *a = NULL, *b = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_adamw opt = TRAIN_ADAMW_DEFAULT;
    struct train_param *pa, *pb;
    struct gguf_str s = {NULL, 0};
    char path[600];
    float loss, la[8 * 512], lb[8 * 512], alpha;
    int n, nb, same = 1, moved = 0;
    snprintf(path, sizeof(path), "%s/adapter.gguf", test_tmpdir());
    CHECK_OK(llm_model_load(test_shared(MODEL), &lm, &err), &err);
    CHECK_OK(train_llama_from_llm(lm, 1, &a, &err), &err);
    CHECK_OK(train_llama_add_lora(a, TRAIN_LORA_ALL, 2, 4.0f, 0.0f, 5, &err), &err);
    pa = train_llama_params(a, &n);
    for (int step = 1; step <= 3; step++) {
        train_grad_zero(pa, n, NULL);
        CHECK_OK(train_llama_forward(a, ids, ids + 1, NULL, 1, 8, NULL, &loss, &err), &err);
        CHECK_OK(train_llama_backward(a, 1.0f, &err), &err);
        train_adamw_step(&opt, 1e-2f, step, pa, n, NULL);
    }
    CHECK_OK(train_llama_lora_save(a, "llama", path, &err), &err);
    CHECK_OK(gguf_open(path, &f, &err), &err);
    CHECK_OK(gguf_get_str(f, "general.type", &s, &err), &err);
    CHECK(s.len == 7 && !memcmp(s.ptr, "adapter", 7));
    CHECK_OK(gguf_get_f32(f, "adapter.lora.alpha", 0, &alpha, &err), &err);
    CHECK(alpha == 4.0f);
    CHECK_EQ_INT(gguf_n_tensors(f), 5 * 7 * 2);
    const struct gguf_tensor *t = gguf_find_tensor(f, "blk.4.ffn_down.weight.lora_a");
    CHECK(t && t->ne[0] == 172 && t->ne[1] == 2 && t->type == GGUF_T_F32);
    CHECK_OK(train_llama_from_llm(lm, 1, &b, &err), &err);
    CHECK_OK(train_llama_lora_load(b, f, &err), &err);
    pb = train_llama_params(b, &nb);
    CHECK_EQ_INT(n, nb);
    for (int i = 0; i < n; i++)
        if (pa[i].g) {
            same &= !strcmp(pa[i].name, pb[i].name) &&
                    !memcmp(pa[i].w, pb[i].w, pa[i].n * sizeof(float));
            if (strstr(pa[i].name, "lora_b"))
                for (size_t e = 0; e < pa[i].n; e++)
                    moved |= pa[i].w[e] != 0;
        }
    CHECK_OK(train_llama_logits(a, ids, 1, 8, NULL, la, &err), &err);
    CHECK_OK(train_llama_logits(b, ids, 1, 8, NULL, lb, &err), &err);
    CHECK(memcmp(la, lb, sizeof(la)) == 0);
    /* the inference side: lora.h merges the trained adapter into the base; our decoder on the
     * merged file computes what the training graph computes */
    {
        struct lora_adapter *ad = NULL;
        struct lora_merge_stats st;
        struct llm_model *merged = NULL;
        struct llm_ctx *ctx = NULL;
        char mpath[600];
        double d = 0;
        snprintf(mpath, sizeof(mpath), "%s/trained-merged.gguf", test_tmpdir());
        CHECK_OK(lora_adapter_load(path, &ad, &err), &err);
        struct lora_merge_input in = {ad, 1.0f};
        CHECK_OK(lora_merge_file(test_shared(MODEL), &in, 1, mpath, NULL, NULL, &st, &err), &err);
        CHECK_EQ_INT(st.n_merged, 5 * 7);
        CHECK_OK(llm_model_load(mpath, &merged, &err), &err);
        CHECK_OK(llm_ctx_new(merged, 64, LLM_KV_F32, 1, &ctx, &err), &err);
        CHECK_OK(llm_decode(ctx, ids, 8, lb, LLM_LOGITS_ALL, &err), &err);
        for (int i = 0; i < 8 * 512; i++)
            d = fmax(d, fabs(la[i] - lb[i]));
        printf("  trained adapter merged by lora.h, our decoder vs graph: %.3g\n", d);
        llm_ctx_free(ctx);
        llm_model_free(merged);
        lora_adapter_free(ad);
        CHECK(d <= LOGIT_TOL);
    }
    train_llama_free(a);
    train_llama_free(b);
    gguf_close(f);
    llm_model_free(lm);
    CHECK(same && moved);
}

/* Finite differences on a real model: a few components of LoRA (over the frozen in-place base)
 * and of full fine-tuning gradients of stories260K, against the double twin. */
static double real_gradcheck(struct train_llama *m, const char *const *names, int n_names)
{
    static const int32_t ids[13] = {1, 403, 407, 261, 378, 1, 2, 300, 17, 99, 450, 12, 7};
    struct train_llama_f64 *d = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_param *p;
    struct train_param_f64 *pd;
    struct train_rng pick;
    double worst = 0;
    float loss;
    int n, nd;
    p = train_llama_params(m, &n);
    train_grad_zero(p, n, NULL);
    if (train_llama_forward(m, ids, ids + 1, NULL, 1, 12, NULL, &loss, &err) < 0 ||
        train_llama_backward(m, 1.0f, &err) < 0 || train_llama_f64_from(m, &d, &err) < 0) {
        fprintf(stderr, "  %s\n", err.msg);
        return 1e9;
    }
    pd = train_llama_f64_params(d, &nd);
    train_rng_seed(&pick, 3);
    for (int k = 0; k < n_names; k++) {
        int i = 0;
        double scale = 0, num[4], w = 0;
        size_t idx[4];
        while (i < n && strcmp(p[i].name, names[k]))
            i++;
        if (i == n || !p[i].g)
            return 1e9;
        for (int c = 0; c < 4; c++) {
            double x0, h, lp, lm;
            idx[c] = train_rng_next(&pick) % p[i].n;
            x0 = pd[i].w[idx[c]];
            h = 1e-6 * fmax(1.0, fabs(x0));
            pd[i].w[idx[c]] = x0 + h;
            train_llama_f64_forward(d, ids, ids + 1, NULL, 1, 12, NULL, &lp, &err);
            pd[i].w[idx[c]] = x0 - h;
            train_llama_f64_forward(d, ids, ids + 1, NULL, 1, 12, NULL, &lm, &err);
            pd[i].w[idx[c]] = x0;
            num[c] = (lp - lm) / (2 * h);
            scale = fmax(scale, fabs(num[c]));
        }
        for (int c = 0; c < 4; c++) {
            double a = p[i].g[idx[c]];
            w = fmax(w, fabs(a - num[c]) /
                            fmax(fmax(fabs(a), fabs(num[c])), fmax(1e-2 * scale, 1e-7)));
        }
        printf("  gradcheck %-32s max rel err %.3g (max |g| %.3g)\n", names[k], w, scale);
        worst = fmax(worst, w);
    }
    train_llama_f64_free(d);
    return err.code ? 1e9 : worst;
}

TEST(train_stories260K_lora_and_full_gradcheck)
{
    static const char *const lora[] = {"blk.0.attn_q.weight.lora_a", "blk.0.attn_q.weight.lora_b",
                                       "blk.4.ffn_down.weight.lora_a",
                                       "blk.4.ffn_down.weight.lora_b"};
    static const char *const full[] = {"token_embd.weight", "blk.2.attn_k.weight",
                                       "blk.3.ffn_norm.weight", "output_norm.weight"};
    struct llm_model *lm = NULL;
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_param *p;
    double w_lora, w_full;
    int n;
    CHECK_OK(llm_model_load(test_shared(MODEL), &lm, &err), &err);
    CHECK_OK(train_llama_from_llm(lm, 1, &m, &err), &err);
    CHECK_OK(train_llama_add_lora(m, TRAIN_LORA_ALL, 4, 8.0f, 0.0f, 6, &err), &err);
    p = train_llama_params(m, &n);
    for (int i = 0; i < n; i++) // B != 0 so that A has a gradient
        if (strstr(p[i].name, "lora_b"))
            for (size_t e = 0; e < p[i].n; e++)
                p[i].w[e] = 0.01f * (float)((e * 7 + (size_t)i) % 13) - 0.06f;
    w_lora = real_gradcheck(m, lora, 4);
    train_llama_free(m);
    m = NULL;
    CHECK_OK(train_llama_from_llm(lm, 0, &m, &err), &err);
    w_full = real_gradcheck(m, full, 4);
    train_llama_free(m);
    llm_model_free(lm);
    CHECK(w_lora <= 1e-3);
    CHECK(w_full <= 1e-3);
}

/* LoRA fine-tuning of stories260K on a sequence it finds unlikely: the loss falls. */
TEST(train_stories260K_lora_learns_a_sequence)
{
    static const int32_t ids[18] = {1,  403, 17, 99,  450, 12,  7,   300, 211,
                                    88, 150, 5,  402, 33,  260, 190, 75,  2};
    struct llm_model *lm = NULL;
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_adamw opt = TRAIN_ADAMW_DEFAULT;
    struct train_sched sched = {TRAIN_DECAY_COSINE, 2e-2f, 2e-3f, 5, 60};
    struct train_param *p;
    float first = 0, loss = 0;
    int n;
    CHECK_OK(llm_model_load(test_shared(MODEL), &lm, &err), &err);
    CHECK_OK(train_llama_from_llm(lm, 1, &m, &err), &err);
    CHECK_OK(train_llama_add_lora(m, TRAIN_LORA_ALL, 8, 16.0f, 0.0f, 7, &err), &err);
    p = train_llama_params(m, &n);
    for (int step = 0; step < 60; step++) {
        train_grad_zero(p, n, NULL);
        CHECK_OK(train_llama_forward(m, ids, ids + 1, NULL, 1, 17, NULL, &loss, &err), &err);
        CHECK_OK(train_llama_backward(m, 1.0f, &err), &err);
        if (step == 0)
            first = loss;
        train_clip_grad_norm(p, n, 1.0, NULL);
        train_adamw_step(&opt, train_sched_lr(&sched, step), step + 1, p, n, NULL);
    }
    printf("  stories260K LoRA r=8: loss %.4f -> %.4f in 60 steps\n", first, loss);
    train_llama_free(m);
    llm_model_free(lm);
    CHECK(first > 3.0f);
    CHECK(loss < first / 4);
}

/* ---- checkpoints ---- */

static int lora_steps(struct train_llama *m, struct train_rng *rng, long from, int n_steps)
{
    static const int32_t ids[13] = {1, 403, 407, 261, 378, 1, 2, 300, 17, 99, 450, 12, 7};
    struct train_adamw opt = TRAIN_ADAMW_DEFAULT;
    struct tw_err err = TW_ERR_INIT;
    struct train_param *p;
    float loss;
    int n;
    p = train_llama_params(m, &n);
    opt.weight_decay = 0.01f;
    for (long s = from; s < from + n_steps; s++) {
        train_grad_zero(p, n, NULL);
        if (train_llama_forward(m, ids, ids + 1, NULL, 1, 12, rng, &loss, &err) < 0 ||
            train_llama_backward(m, 1.0f, &err) < 0)
            return -1;
        train_adamw_step(&opt, 1e-2f, s + 1, p, n, NULL);
    }
    return 0;
}

/* Stop after 2 steps, write a checkpoint, restore it into a fresh graph over the same base: 2
 * more steps on each give the same adapters bit for bit (dropout and weight decay on). */
TEST(train_checkpoint_resume_through_a_file)
{
    struct llm_model *lm = NULL;
    struct train_llama *a = NULL, *b = NULL;
    struct gguf_file *f = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_rng ra, rb;
    struct train_param *pa, *pb;
    char path[600];
    long step = -1;
    int n, nb, same = 1, n_lora = 0;
    unsigned targets = 0;
    snprintf(path, sizeof(path), "%s/ckpt.gguf", test_tmpdir());
    CHECK_OK(llm_model_load(test_shared(MODEL), &lm, &err), &err);
    CHECK_OK(train_llama_from_llm(lm, 1, &a, &err), &err);
    CHECK_OK(train_llama_add_lora(a, TRAIN_LORA_Q | TRAIN_LORA_DOWN, 2, 4.0f, 0.1f, 5, &err), &err);
    train_rng_seed(&ra, 77);
    CHECK_EQ_INT(lora_steps(a, &ra, 0, 2), 0);
    CHECK_OK(train_llama_checkpoint_save(a, 2, &ra, path, &err), &err);
    CHECK_EQ_INT(lora_steps(a, &ra, 2, 2), 0);
    CHECK_OK(gguf_open(path, &f, &err), &err);
    CHECK_EQ_INT(gguf_n_tensors(f), 5 * 2 * 2 * 3); // layers x targets x (A, B) x (w, m, v)
    CHECK_OK(train_llama_from_llm(lm, 1, &b, &err), &err);
    CHECK_OK(train_llama_checkpoint_load(b, f, &step, &rb, &err), &err);
    CHECK_EQ_INT(step, 2);
    CHECK(train_llama_lora(b, &targets, NULL, NULL, NULL));
    CHECK_EQ_INT(targets, TRAIN_LORA_Q | TRAIN_LORA_DOWN);
    CHECK_EQ_INT(lora_steps(b, &rb, step, 2), 0);
    pa = train_llama_params(a, &n);
    pb = train_llama_params(b, &nb);
    CHECK_EQ_INT(n, nb);
    for (int i = 0; i < n; i++)
        if (pa[i].g) {
            same &= !memcmp(pa[i].w, pb[i].w, pa[i].n * sizeof(float)) &&
                    !memcmp(pa[i].v, pb[i].v, pa[i].n * sizeof(float));
            n_lora++;
        }
    gguf_close(f);
    train_llama_free(a);
    train_llama_free(b);
    llm_model_free(lm);
    CHECK_EQ_INT(n_lora, 20);
    CHECK(same);
}

/* A full fine-tuning checkpoint restores every tensor; one from another shape is refused with
 * the tensor named; a base model is not a checkpoint. */
TEST(train_checkpoint_full_and_mismatch)
{
    struct train_llama_cfg cfg = {.n_vocab = 32,
                                  .n_embd = 16,
                                  .n_layer = 1,
                                  .n_head = 2,
                                  .n_head_kv = 1,
                                  .n_ff = 24,
                                  .rope_type = TRAIN_ROPE_NORM,
                                  .rope_base = 10000.0f,
                                  .norm_eps = 1e-5f};
    struct train_llama *a = NULL, *b = NULL, *c = NULL;
    struct gguf_file *f = NULL, *g = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_param *pa, *pb;
    char path[600];
    int n, same = 1;
    snprintf(path, sizeof(path), "%s/full.gguf", test_tmpdir());
    CHECK_OK(train_llama_new(&cfg, 1, &a, &err), &err);
    CHECK_OK(train_llama_new(&cfg, 2, &b, &err), &err);
    pa = train_llama_params(a, &n);
    pa[3].m[5] = 0.25f; // a moment that must survive
    CHECK_OK(train_llama_checkpoint_save(a, 7, NULL, path, &err), &err);
    CHECK_OK(gguf_open(path, &f, &err), &err);
    CHECK_OK(train_llama_checkpoint_load(b, f, NULL, NULL, &err), &err);
    pb = train_llama_params(b, &n);
    for (int i = 0; i < n; i++)
        same &= !memcmp(pa[i].w, pb[i].w, pa[i].n * sizeof(float));
    CHECK(same && pb[3].m[5] == 0.25f);
    cfg.n_ff = 32;
    CHECK_OK(train_llama_new(&cfg, 3, &c, &err), &err);
    CHECK(train_llama_checkpoint_load(c, f, NULL, NULL, &err) < 0);
    CHECK(strstr(err.msg, "checkpoint") && strstr(err.msg, "blk.0.ffn_gate.weight"));
    tw_err_clear(&err);
    CHECK_OK(gguf_open(test_shared(MODEL), &g, &err), &err);
    CHECK_EQ_INT(train_llama_checkpoint_load(c, g, NULL, NULL, &err), TW_EFORMAT);
    CHECK(strstr(err.msg, "not a training checkpoint") != NULL);
    gguf_close(g);
    gguf_close(f);
    train_llama_free(a);
    train_llama_free(b);
    train_llama_free(c);
}

/* ---- hostile adapters ---- */

struct bad_tensor {
    const char *name;
    int64_t ne0, ne1;
};

/* Writes an adapter with the given tensors and tries to load it into stories260K. */
static int try_adapter(struct llm_model *lm, const struct bad_tensor *ts, int n_ts, float *zeros,
                       struct tw_err *err)
{
    char path[600];
    struct gguf_writer *w = gguf_writer_new();
    struct gguf_file *f = NULL;
    struct train_llama *m = NULL;
    int rc;
    snprintf(path, sizeof(path), "%s/bad.gguf", test_tmpdir());
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_str(w, "general.type", "adapter");
    gguf_writer_set_str(w, "adapter.type", "lora");
    gguf_writer_set_f32(w, "adapter.lora.alpha", 8.0f);
    for (int i = 0; i < n_ts; i++) {
        int64_t ne[2] = {ts[i].ne0, ts[i].ne1};
        gguf_writer_add_tensor(w, ts[i].name, GGUF_T_F32, 2, ne, zeros);
    }
    rc = gguf_writer_write(w, path, err);
    gguf_writer_free(w);
    if (rc < 0)
        return 1;
    if (gguf_open(path, &f, err) < 0 || train_llama_from_llm(lm, 1, &m, err) < 0) {
        gguf_close(f);
        return 1;
    }
    rc = train_llama_lora_load(m, f, err);
    train_llama_free(m);
    gguf_close(f);
    return rc;
}

TEST(train_lora_load_rejects_bad_adapters)
{
    static const struct bad_tensor wrong_shape[] = {{"blk.0.attn_q.weight.lora_a", 63, 4},
                                                    {"blk.0.attn_q.weight.lora_b", 4, 64}};
    static const struct bad_tensor embd[] = {{"token_embd.weight.lora_a", 4, 512}, // flipped
                                             {"token_embd.weight.lora_b", 4, 64}};
    static const struct bad_tensor ranks[] = {{"blk.0.attn_q.weight.lora_a", 64, 4},
                                              {"blk.0.attn_q.weight.lora_b", 4, 64},
                                              {"blk.0.attn_v.weight.lora_a", 64, 2},
                                              {"blk.0.attn_v.weight.lora_b", 2, 32}};
    static const struct bad_tensor layer[] = {{"blk.5.attn_q.weight.lora_a", 64, 4},
                                              {"blk.5.attn_q.weight.lora_b", 4, 64}};
    static const struct bad_tensor suffix[] = {{"blk.0.attn_q.weight.lora_c", 64, 4}};
    static const struct bad_tensor only_a[] = {{"blk.0.attn_q.weight.lora_a", 64, 4}};
    static const struct bad_tensor ok[] = {{"blk.1.ffn_up.weight.lora_a", 64, 3},
                                           {"blk.1.ffn_up.weight.lora_b", 3, 172}};
    struct llm_model *lm = NULL;
    struct tw_err err = TW_ERR_INIT;
    float *zeros = tw_calloc(4096, sizeof(float));
    CHECK(zeros != NULL);
    CHECK_OK(llm_model_load(test_shared(MODEL), &lm, &err), &err);
    CHECK(try_adapter(lm, wrong_shape, 2, zeros, &err) < 0);
    CHECK(strstr(err.msg, "blk.0.attn_q.weight.lora_a") != NULL);
    tw_err_clear(&err);
    CHECK_EQ_INT(try_adapter(lm, embd, 2, zeros, &err), TW_EUNSUP);
    CHECK(strstr(err.msg, "token_embd.weight.lora_a' is not supported") != NULL);
    tw_err_clear(&err);
    CHECK_EQ_INT(try_adapter(lm, ranks, 4, zeros, &err), TW_EUNSUP);
    CHECK(strstr(err.msg, "ranks differ") != NULL);
    tw_err_clear(&err);
    CHECK_EQ_INT(try_adapter(lm, layer, 2, zeros, &err), TW_EUNSUP);
    tw_err_clear(&err);
    CHECK_EQ_INT(try_adapter(lm, suffix, 1, zeros, &err), TW_EFORMAT);
    tw_err_clear(&err);
    CHECK_EQ_INT(try_adapter(lm, only_a, 1, zeros, &err), TW_EFORMAT);
    tw_err_clear(&err);
    CHECK_OK(try_adapter(lm, ok, 2, zeros, &err), &err);
    llm_model_free(lm);
    tw_free(zeros);
}

/* ---- whole models ---- */

/* Last-position logits of every case of 'cases' through our decoder on the model at 'path'. */
static double decoder_cases_diff(const char *path, const cJSON *cases, int *n_cases)
{
    struct llm_model *lm = NULL;
    struct llm_ctx *ctx = NULL;
    struct tw_err err = TW_ERR_INIT;
    const cJSON *cs;
    double worst = 0;
    *n_cases = 0;
    if (llm_model_load(path, &lm, &err) < 0 || llm_ctx_new(lm, 64, LLM_KV_F32, 1, &ctx, &err) < 0) {
        fprintf(stderr, "  %s\n", err.msg);
        llm_model_free(lm);
        return 1e9;
    }
    cJSON_ArrayForEach(cs, cases)
    {
        int32_t ids[64];
        float want[512], got[512];
        int n = test_json_ids(cJSON_GetObjectItem(cs, "prompt_ids"), ids, 64);
        test_json_floats(cJSON_GetObjectItem(cs, "last_logits"), want, 512);
        llm_ctx_reset(ctx);
        if (n < 1 || n > 64 || llm_decode(ctx, ids, n, got, 0, &err) < 0) {
            worst = 1e9;
            break;
        }
        for (int v = 0; v < 512; v++)
            worst = fmax(worst, fabs(got[v] - want[v]));
        ++*n_cases;
    }
    llm_ctx_free(ctx);
    llm_model_free(lm);
    return worst;
}

/* Merging llama.cpp's test adapter into stories260K gives llama-export-lora's tensors, and the
 * merged file gives llama.cpp's merged-model logits through our decoder. */
TEST(train_merge_matches_llama_export_lora)
{
    struct llm_model *lm = NULL;
    struct gguf_file *af = NULL, *ours = NULL, *ref = NULL;
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    cJSON *j = test_json_load("refs/lora/stories260K-lora.json");
    char path[600];
    double worst = 0, d_logits;
    int n_cases = 0, n_cmp = 0;
    CHECK(j != NULL);
    snprintf(path, sizeof(path), "%s/merged.gguf", test_tmpdir());
    CHECK_OK(llm_model_load(test_shared(MODEL), &lm, &err), &err);
    CHECK_OK(gguf_open(test_shared(ADAPTER), &af, &err), &err);
    CHECK_OK(train_llama_from_llm(lm, 1, &m, &err), &err);
    CHECK_OK(train_llama_lora_load(m, af, &err), &err);
    CHECK_OK(train_llama_save_model(m, llm_model_gguf(lm), 0, path, &err), &err);
    CHECK_OK(gguf_open(path, &ours, &err), &err);
    CHECK_OK(gguf_open(test_shared("refs/lora/stories260K-test-lora-merged.gguf"), &ref, &err),
             &err);
    CHECK_EQ_INT(gguf_n_tensors(ours), gguf_n_tensors(ref));
    for (int64_t k = 0; k < gguf_n_tensors(ref); k++) {
        const struct gguf_tensor *rt = gguf_tensor(ref, k), *ot;
        char name[96];
        snprintf(name, sizeof(name), "%.*s", (int)rt->name.len, rt->name.ptr);
        ot = gguf_find_tensor(ours, name);
        CHECK_MSG(ot && ot->type == GGUF_T_F32 && rt->type == GGUF_T_F32 &&
                      ot->nbytes == rt->nbytes,
                  "%s", name);
        for (uint64_t e = 0; e < rt->nbytes / 4; e++)
            worst = fmax(worst, fabs(((const float *)ot->data)[e] - ((const float *)rt->data)[e]));
        n_cmp++;
    }
    d_logits = decoder_cases_diff(
        path, cJSON_GetObjectItem(cJSON_GetObjectItem(j, "runs"), "merged"), &n_cases);
    printf("  merged vs llama-export-lora: %d tensors, max |diff| %.3g; logits (%d prompts) "
           "%.3g\n",
           n_cmp, worst, n_cases, d_logits);
    gguf_close(ours);
    gguf_close(ref);
    gguf_close(af);
    train_llama_free(m);
    llm_model_free(lm);
    cJSON_Delete(j);
    CHECK(n_cmp > 40);
    CHECK(worst <= 1e-6);
    CHECK_EQ_INT(n_cases, 3);
    CHECK(d_logits <= LOGIT_TOL);
}

/* A fully fine-tuned model saved as GGUF loads in our decoder and computes what the training
 * graph computes. */
TEST(train_full_finetune_saves_a_loadable_model)
{
    static const int32_t ids[13] = {1, 403, 407, 261, 378, 1, 2, 300, 17, 99, 450, 12, 7};
    struct llm_model *lm = NULL, *out = NULL;
    struct llm_ctx *ctx = NULL;
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_adamw opt = TRAIN_ADAMW_DEFAULT;
    struct train_param *p;
    char path[600];
    float loss, first = 0, *a = tw_mallocarray(12 * 512, sizeof(float));
    float *b = tw_mallocarray(12 * 512, sizeof(float));
    double d = 0;
    int n;
    CHECK(a && b);
    snprintf(path, sizeof(path), "%s/full.gguf", test_tmpdir());
    CHECK_OK(llm_model_load(test_shared(MODEL), &lm, &err), &err);
    CHECK_OK(train_llama_from_llm(lm, 0, &m, &err), &err);
    p = train_llama_params(m, &n);
    for (int step = 1; step <= 5; step++) {
        train_grad_zero(p, n, NULL);
        CHECK_OK(train_llama_forward(m, ids, ids + 1, NULL, 1, 12, NULL, &loss, &err), &err);
        CHECK_OK(train_llama_backward(m, 1.0f, &err), &err);
        if (step == 1)
            first = loss;
        train_adamw_step(&opt, 1e-3f, step, p, n, NULL);
    }
    CHECK_OK(train_llama_save_model(m, llm_model_gguf(lm), 0, path, &err), &err);
    CHECK_OK(train_llama_logits(m, ids, 1, 12, NULL, a, &err), &err);
    CHECK_OK(llm_model_load(path, &out, &err), &err);
    CHECK_OK(llm_ctx_new(out, 64, LLM_KV_F32, 1, &ctx, &err), &err);
    CHECK_OK(llm_decode(ctx, ids, 12, b, LLM_LOGITS_ALL, &err), &err);
    for (int i = 0; i < 12 * 512; i++)
        d = fmax(d, fabs(a[i] - b[i]));
    printf("  full fine-tuning: loss %.3f -> %.3f; saved model vs graph logits %.3g\n", first, loss,
           d);
    llm_ctx_free(ctx);
    llm_model_free(out);
    train_llama_free(m);
    llm_model_free(lm);
    tw_free(a);
    tw_free(b);
    CHECK(loss < first);
    CHECK(d <= LOGIT_TOL);
}

/* A model trained from scratch in another shape, saved with stories260K's tokenizer metadata,
 * describes itself: our decoder loads it and computes what the graph computes. */
TEST(train_from_scratch_saves_a_loadable_model)
{
    static const int32_t ids[13] = {1, 403, 407, 261, 378, 1, 2, 300, 17, 99, 450, 12, 7};
    struct train_llama_cfg cfg = {.n_vocab = 512,
                                  .n_embd = 32,
                                  .n_layer = 2,
                                  .n_head = 4,
                                  .n_head_kv = 2,
                                  .n_ff = 64,
                                  .rope_type = TRAIN_ROPE_NORM,
                                  .rope_base = 10000.0f,
                                  .norm_eps = 1e-5f,
                                  .tied_output = 1};
    struct gguf_file *base = NULL;
    struct llm_model *out = NULL;
    struct llm_ctx *ctx = NULL;
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_adamw opt = TRAIN_ADAMW_DEFAULT;
    struct train_param *p;
    char path[600];
    float loss, *a = tw_mallocarray(12 * 512, sizeof(float));
    float *b = tw_mallocarray(12 * 512, sizeof(float));
    double d = 0;
    int n;
    CHECK(a && b);
    snprintf(path, sizeof(path), "%s/scratch.gguf", test_tmpdir());
    CHECK_OK(train_llama_new(&cfg, 3, &m, &err), &err);
    p = train_llama_params(m, &n);
    for (int step = 1; step <= 3; step++) {
        train_grad_zero(p, n, NULL);
        CHECK_OK(train_llama_forward(m, ids, ids + 1, NULL, 1, 12, NULL, &loss, &err), &err);
        CHECK_OK(train_llama_backward(m, 1.0f, &err), &err);
        train_adamw_step(&opt, 1e-2f, step, p, n, NULL);
    }
    CHECK_OK(gguf_open(test_shared(MODEL), &base, &err), &err);
    CHECK_OK(train_llama_save_model(m, base, 0, path, &err), &err);
    CHECK_OK(train_llama_logits(m, ids, 1, 12, NULL, a, &err), &err);
    CHECK_OK(llm_model_load(path, &out, &err), &err);
    CHECK_EQ_INT(llm_model_hparams(out)->n_embd, 32);
    CHECK(llm_model_hparams(out)->tied_output);
    CHECK_OK(llm_ctx_new(out, 64, LLM_KV_F32, 1, &ctx, &err), &err);
    CHECK_OK(llm_decode(ctx, ids, 12, b, LLM_LOGITS_ALL, &err), &err);
    for (int i = 0; i < 12 * 512; i++)
        d = fmax(d, fabs(a[i] - b[i]));
    printf("  from scratch (dim 32, 2 layers): saved model vs graph logits %.3g\n", d);
    llm_ctx_free(ctx);
    llm_model_free(out);
    gguf_close(base);
    train_llama_free(m);
    tw_free(a);
    tw_free(b);
    CHECK(d <= LOGIT_TOL);
}

/* Every allocation of loading, adapting, running and saving fails in turn: a clean error, no
 * leak (the harness counts tw_malloc blocks), never a crash. Each save is its own loop so that
 * only its last, successful round writes a file. */
static int save_step(struct train_llama *m, const struct gguf_file *base, int which,
                     const char *path, struct tw_err *e)
{
    return which ? train_llama_save_model(m, base, 1, path, e)
                 : train_llama_checkpoint_save(m, 1, NULL, path, e);
}

TEST(train_gguf_paths_survive_allocation_failures)
{
    static const int32_t ids[5] = {1, 403, 407, 261, 378};
    struct llm_model *lm = NULL;
    struct gguf_file *af = NULL;
    struct train_llama *keep = NULL;
    struct tw_err err = TW_ERR_INIT;
    char path[600];
    int failures = 0, done = 0;
    snprintf(path, sizeof(path), "%s/oom.gguf", test_tmpdir());
    CHECK_OK(llm_model_load(test_shared(MODEL), &lm, &err), &err);
    CHECK_OK(gguf_open(test_shared(ADAPTER), &af, &err), &err);
    for (long k = 0; k < 1000 && !done; k++) {
        struct train_llama *m = NULL;
        struct tw_err e = TW_ERR_INIT;
        float loss;
        int rc;
        tw_mem_fail_after(k);
        rc = train_llama_from_llm(lm, (int)(k & 1), &m, &e);
        if (rc >= 0)
            rc = train_llama_lora_load(m, af, &e);
        if (rc >= 0)
            rc = train_llama_forward(m, ids, ids + 1, NULL, 1, 4, NULL, &loss, &e);
        if (rc >= 0)
            rc = train_llama_backward(m, 1.0f, &e);
        tw_mem_fail_after(-1);
        if (rc < 0) {
            CHECK_MSG(e.code != 0 && e.msg[0], "rc %d without a message", rc);
            failures++;
            train_llama_free(m);
        } else {
            done = 1;
            keep = m;
        }
    }
    CHECK(done);
    for (int which = 0; which < 2; which++) {
        done = 0;
        for (long k = 0; k < 1000 && !done; k++) {
            struct tw_err e = TW_ERR_INIT;
            int rc;
            tw_mem_fail_after(k);
            rc = save_step(keep, llm_model_gguf(lm), which, path, &e);
            tw_mem_fail_after(-1);
            if (rc < 0) {
                CHECK_MSG(e.code != 0 && e.msg[0], "rc %d without a message", rc);
                failures++;
            } else {
                done = 1;
            }
        }
        CHECK(done);
    }
    train_llama_free(keep);
    gguf_close(af);
    llm_model_free(lm);
    printf("  %d allocation failures handled\n", failures);
    CHECK(failures >= 10);
}

/* LoRA over a quantized base, merged and quantized back: the saved Q8_0 model keeps its types and
 * computes, in our decoder, what the adapted graph computes up to the re-quantization. */
TEST(train_merge_requantizes_a_q8_0_base)
{
    static const int32_t ids[9] = {1, 403, 407, 261, 378, 1, 2, 300, 17};
    struct llm_model *lm = NULL, *out = NULL;
    struct llm_ctx *ctx = NULL;
    struct gguf_file *f = NULL;
    struct train_llama *m = NULL;
    struct tw_err err = TW_ERR_INIT;
    struct train_param *p;
    char path[600];
    float *a = tw_mallocarray(8 * 512, sizeof(float)), *b = tw_mallocarray(8 * 512, sizeof(float));
    double d = 0, mx = 0, moved = 0;
    int n;
    CHECK(a && b);
    snprintf(path, sizeof(path), "%s/q8.gguf", test_tmpdir());
    CHECK_OK(llm_model_load(test_shared("refs/models/synth-tiny-q8_0.gguf"), &lm, &err), &err);
    CHECK_OK(train_llama_from_llm(lm, 1, &m, &err), &err);
    CHECK_OK(train_llama_add_lora(m, TRAIN_LORA_ALL, 4, 8.0f, 0.0f, 3, &err), &err);
    p = train_llama_params(m, &n);
    for (int i = 0; i < n; i++) // an adapter that changes something
        if (strstr(p[i].name, "lora_b"))
            for (size_t e = 0; e < p[i].n; e++)
                p[i].w[e] = 0.02f * (float)((e * 5 + (size_t)i) % 11) - 0.1f;
    CHECK_OK(train_llama_save_model(m, llm_model_gguf(lm), 1, path, &err), &err);
    CHECK_OK(gguf_open(path, &f, &err), &err);
    CHECK(gguf_find_tensor(f, "blk.1.ffn_up.weight")->type == GGUF_T_Q8_0);
    CHECK(gguf_find_tensor(f, "blk.1.ffn_norm.weight")->type == GGUF_T_F32);
    CHECK_OK(train_llama_logits(m, ids, 1, 8, NULL, a, &err), &err);
    CHECK_OK(llm_model_load(path, &out, &err), &err);
    CHECK_OK(llm_ctx_new(out, 64, LLM_KV_F32, 1, &ctx, &err), &err);
    CHECK_OK(llm_decode(ctx, ids, 8, b, LLM_LOGITS_ALL, &err), &err);
    llm_ctx_free(ctx);
    ctx = NULL;
    for (int i = 0; i < 8 * 512; i++) {
        d = fmax(d, fabs(a[i] - b[i]));
        mx = fmax(mx, fabs(a[i]));
    }
    /* and the adapter mattered: the base alone computes something else */
    CHECK_OK(llm_ctx_new(lm, 64, LLM_KV_F32, 1, &ctx, &err), &err);
    CHECK_OK(llm_decode(ctx, ids, 8, b, LLM_LOGITS_ALL, &err), &err);
    for (int i = 0; i < 8 * 512; i++)
        moved = fmax(moved, fabs(a[i] - b[i]));
    printf("  q8_0 merged + requantized vs graph: max |diff| %.3g of |logit| %.3g (adapter moved "
           "logits by %.3g)\n",
           d, mx, moved);
    llm_ctx_free(ctx);
    llm_model_free(out);
    gguf_close(f);
    train_llama_free(m);
    llm_model_free(lm);
    tw_free(a);
    tw_free(b);
    CHECK(d <= 3e-2 * mx);
    CHECK(moved > 10 * d);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
