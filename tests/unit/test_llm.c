/* test_llm.c - the decoder against llama.cpp's outputs on the same GGUF files
 * (shared/refs/README.md says how they were made).
 *
 * Tolerances (absolute, on raw logits):
 *   F32 weights, F32 KV          1e-4   (stories260K, |logit| up to ~18)
 *   F32 weights, F16 KV          3e-2   (llama.cpp's own F16-KV run moves logits by up to 1.2e-2
 *                                from its F32-KV reference; we measure 1.1e-2)
 *   F16 weights (tiny-random)    TINY_F16_TOL: llama.cpp rounds activations to F16 before F16
 *                                dot products, we keep them in F32
 *   quantized synth-tiny         3e-2   llama.cpp quantizes activations to 8 bits, we do not
 */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "base/rng.h"
#include "nn/gguf.h"
#include "nn/llm.h"
#include "nn/sample.h"
#include "nn/tok.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

#define TINY_F16_TOL 2e-3

struct run {
    struct llm_model *m;
    struct llm_ctx *c;
    float *logits; // (n_tok, V)
    int V;
};

static int run_open(struct run *r, const char *rel, int n_ctx, enum llm_kv_type kv, int threads,
                    struct tw_err *err)
{
    memset(r, 0, sizeof(*r));
    int rc = llm_model_load(test_shared(rel), &r->m, err);
    if (rc < 0)
        return rc;
    r->V = llm_n_vocab(r->m);
    r->logits = tw_mallocarray((size_t)r->V * 64, sizeof(float));
    rc = llm_ctx_new(r->m, n_ctx, kv, threads, &r->c, err);
    return rc;
}

static void run_close(struct run *r)
{
    llm_ctx_free(r->c);
    llm_model_free(r->m);
    tw_free(r->logits);
}

/* Greedy continuation of n tokens after logits 'last'; ids into out. */
static int greedy(struct run *r, const float *last, int n, int32_t *out, struct tw_err *err)
{
    float *l = tw_mallocarray((size_t)r->V, sizeof(float));
    memcpy(l, last, (size_t)r->V * sizeof(float));
    for (int i = 0; i < n; i++) {
        out[i] = llm_argmax(l, r->V);
        if (i + 1 < n && llm_decode(r->c, &out[i], 1, l, 0, err) < 0) {
            tw_free(l);
            return -1;
        }
    }
    tw_free(l);
    return 0;
}

TEST(stories260K_greedy200_from_bos)
{
    struct tw_err err = TW_ERR_INIT;
    struct run r;
    size_t len;
    char *text = test_read_file(test_shared("data/models/stories260K.greedy200.ids.txt"), &len);
    int32_t want[256], got[200];
    int n = 0;
    CHECK(text != NULL);
    for (char *p = text, *end; n < 256; p = end) {
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        want[n++] = (int32_t)v;
    }
    tw_free(text);
    CHECK_EQ_INT(n, 201);
    CHECK_EQ_INT(want[0], 1);
    CHECK_OK(run_open(&r, "data/models/stories260K.gguf", 256, LLM_KV_F32, 1, &err), &err);
    CHECK_OK(llm_decode(r.c, want, 1, r.logits, 0, &err), &err);
    CHECK_OK(greedy(&r, r.logits, 200, got, &err), &err);
    for (int i = 0; i < 200; i++)
        CHECK_MSG(got[i] == want[i + 1], "token %d: %d != %d", i, got[i], want[i + 1]);
    run_close(&r);
}

/* Compares one model with one refs JSON (stories260K.json layout). tol: logits; kv: cache type;
 * check_greedy: compare the greedy ids; chunk: feed the prompt in pieces of this many tokens
 * (0: all at once). */
static void check_refs(const char *model, const char *refs, double tol, enum llm_kv_type kv,
                       int threads, int check_greedy, int chunk)
{
    struct tw_err err = TW_ERR_INIT;
    struct run r;
    cJSON *j = test_json_load(refs), *cases, *cs;
    double worst = 0;
    CHECK(j != NULL);
    cases = cJSON_GetObjectItem(j, "cases");
    CHECK(cJSON_IsArray(cases));
    CHECK_OK(run_open(&r, model, 128, kv, threads, &err), &err);
    struct tok *tk;
    CHECK_OK(tok_new_from_gguf(llm_model_gguf(r.m), &tk, &err), &err);
    cJSON_ArrayForEach(cs, cases)
    {
        int32_t ids[64], want_gen[128], got_gen[128];
        int n = test_json_ids(cJSON_GetObjectItem(cs, "prompt_ids"), ids, 64);
        int n_gen = test_json_ids(cJSON_GetObjectItem(cs, "greedy_ids"), want_gen, 128);
        const cJSON *top5 = cJSON_GetObjectItem(cs, "prompt_top5_per_pos");
        const cJSON *argmax = cJSON_GetObjectItem(cs, "prompt_argmax_per_pos");
        const cJSON *last = cJSON_GetObjectItem(cs, "last_logits");
        const cJSON *top50 = cJSON_GetObjectItem(cs, "last_top50");
        const cJSON *pos, *e;
        int t = 0;

        /* the prompt through our tokenizer gives llama.cpp's ids */
        {
            const cJSON *pr = cJSON_GetObjectItem(cs, "prompt");
            int32_t tids[64];
            size_t n_tids = 0;
            CHECK(cJSON_IsString(pr));
            CHECK_OK(tok_encode(tk, pr->valuestring, strlen(pr->valuestring), true, false, tids,
                                64, &n_tids, &err),
                     &err);
            CHECK_EQ_INT(n_tids, n);
            for (int i = 0; i < n && i < 64; i++)
                CHECK_EQ_INT(tids[i], ids[i]);
        }
        if (n > 64 || n_gen > 128 || !top5 || !top50) {
            cJSON_Delete(j);
            tok_free(tk);
            run_close(&r);
            TEST_FAIL_("refs case does not fit the test's buffers");
        }
        llm_ctx_reset(r.c);
        if (chunk > 0) {
            for (int done = 0; done < n; done += chunk) {
                int k = n - done < chunk ? n - done : chunk;
                CHECK_OK(llm_decode(r.c, ids + done, k, r.logits + (size_t)done * r.V,
                                    LLM_LOGITS_ALL, &err),
                         &err);
            }
        } else {
            CHECK_OK(llm_decode(r.c, ids, n, r.logits, LLM_LOGITS_ALL, &err), &err);
        }
        CHECK_EQ_INT(llm_ctx_n_past(r.c), n);
        /* per position: argmax and the logits of llama.cpp's top 5 */
        cJSON_ArrayForEach(pos, top5)
        {
            const float *l = r.logits + (size_t)t * r.V;
            cJSON_ArrayForEach(e, pos)
            {
                int id = cJSON_GetArrayItem(e, 0)->valueint;
                double want = cJSON_GetArrayItem(e, 1)->valuedouble, d = fabs(l[id] - want);
                worst = d > worst ? d : worst;
                CHECK_MSG(d <= tol, "pos %d id %d: %.6f vs %.6f", t, id, l[id], want);
            }
            if (argmax && check_greedy)
                CHECK_EQ_INT(llm_argmax(l, r.V), cJSON_GetArrayItem(argmax, t)->valueint);
            t++;
        }
        CHECK_EQ_INT(t, n);
        const float *l = r.logits + (size_t)(n - 1) * r.V;
        if (last) {
            CHECK_EQ_INT(cJSON_GetArraySize(last), r.V);
            int i = 0;
            cJSON_ArrayForEach(e, last)
            {
                double d = fabs(l[i] - e->valuedouble);
                worst = d > worst ? d : worst;
                CHECK_MSG(d <= tol, "last logit %d: %.6f vs %.6f", i, l[i], e->valuedouble);
                i++;
            }
        }
        cJSON_ArrayForEach(e, top50)
        {
            int id = cJSON_GetArrayItem(e, 0)->valueint;
            double d = fabs(l[id] - cJSON_GetArrayItem(e, 1)->valuedouble);
            worst = d > worst ? d : worst;
            CHECK_MSG(d <= tol, "top50 id %d: %.6f vs %.6f", id, l[id],
                      cJSON_GetArrayItem(e, 1)->valuedouble);
        }
        if (check_greedy) {
            CHECK_OK(greedy(&r, l, n_gen, got_gen, &err), &err);
            for (int i = 0; i < n_gen; i++)
                CHECK_MSG(got_gen[i] == want_gen[i], "greedy step %d: %d != %d", i, got_gen[i],
                          want_gen[i]);
        }
    }
    fprintf(stderr, "  %s (kv %s, %d threads): max |logit diff| %.3g (tol %g)\n", model,
            kv == LLM_KV_F16 ? "f16" : "f32", threads, worst, tol);
    cJSON_Delete(j);
    tok_free(tk);
    run_close(&r);
}

TEST(stories260K_matches_llama_cpp)
{
    check_refs("data/models/stories260K.gguf", "refs/stories260K.json", 1e-4, LLM_KV_F32, 1, 1, 0);
}

TEST(stories260K_two_threads_and_chunked_prefill)
{
    /* prompt fed in pieces of 3 tokens through 2 workers: the cache carries across calls */
    check_refs("data/models/stories260K.gguf", "refs/stories260K.json", 1e-4, LLM_KV_F32, 2, 1, 3);
}

TEST(stories260K_f16_kv_cache)
{
    check_refs("data/models/stories260K.gguf", "refs/stories260K.json", 3e-2, LLM_KV_F16, 1, 1,
               0);
}

TEST(llama2_tiny_random_f16_weights)
{
    check_refs("data/models/llama-2-tiny-random.gguf", "refs/llama-2-tiny-random.json",
               TINY_F16_TOL, LLM_KV_F32, 1, 0, 0);
}

TEST(synth_tiny_quantized_types)
{
    static const char *const types[] = {"f32", "q8_0", "q4_0", "q4_k", "q4_k_m", "q6_k"};
    char model[96], refs[96];
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        snprintf(model, sizeof(model), "refs/models/synth-tiny-%s.gguf", types[i]);
        snprintf(refs, sizeof(refs), "refs/synth-tiny/gen-%s.json", types[i]);
        check_refs(model, refs, i == 0 ? 1e-4 : 3e-2, LLM_KV_F32, 2, 0, 0);
        if (test__failed)
            return;
    }
}

TEST(context_limit_and_bad_ids_are_errors)
{
    struct tw_err err = TW_ERR_INIT;
    struct run r;
    int32_t ids[20] = {1, 403, 407, 261, 378};
    CHECK_OK(run_open(&r, "data/models/stories260K.gguf", 8, LLM_KV_F32, 1, &err), &err);
    CHECK_EQ_INT(llm_ctx_n_ctx(r.c), 8);
    CHECK_OK(llm_decode(r.c, ids, 5, r.logits, 0, &err), &err);
    CHECK_EQ_INT(llm_decode(r.c, ids, 4, r.logits, 0, &err), TW_ELIMIT);
    CHECK(strstr(err.msg, "context full") != NULL);
    CHECK_EQ_INT(llm_ctx_n_past(r.c), 5);
    tw_err_clear(&err);
    ids[1] = 512;
    CHECK_EQ_INT(llm_decode(r.c, ids, 2, r.logits, 0, &err), TW_EINVAL);
    CHECK(strstr(err.msg, "512") != NULL);
    tw_err_clear(&err);
    CHECK_EQ_INT(llm_decode(r.c, ids, 0, r.logits, 0, &err), TW_EINVAL);
    tw_err_clear(&err);
    /* truncating back and re-decoding gives the same logits as the first time */
    float first[512];
    llm_ctx_reset(r.c);
    ids[1] = 403;
    CHECK_OK(llm_decode(r.c, ids, 3, first, 0, &err), &err);
    CHECK_OK(llm_decode(r.c, ids + 3, 2, r.logits, 0, &err), &err);
    llm_ctx_truncate(r.c, 2);
    CHECK_OK(llm_decode(r.c, ids + 2, 1, r.logits, 0, &err), &err);
    for (int i = 0; i < 512; i++)
        CHECK_NEAR(r.logits[i], first[i], 1e-6);
    run_close(&r);
}

/* Logits of every position of ids[0..n) fed in pieces of 'chunk' (the last 'steps' tokens one
 * at a time) on a fresh context; out: (n, V). */
static void long_prompt_logits(enum llm_kv_type kv, int threads, int chunk, int steps,
                               const int32_t *ids, int n, float *out)
{
    struct tw_err err = TW_ERR_INIT;
    struct run r;
    CHECK_OK(run_open(&r, "data/models/stories260K.gguf", 640, kv, threads, &err), &err);
    for (int done = 0; done < n;) {
        int k = done >= n - steps ? 1 : (n - steps - done < chunk ? n - steps - done : chunk);
        CHECK_OK(llm_decode(r.c, ids + done, k, out + (size_t)done * r.V, LLM_LOGITS_ALL, &err),
                 &err);
        done += k;
    }
    CHECK_EQ_INT(llm_ctx_n_past(r.c), n);
    run_close(&r);
}

/* A 600-token prompt (past the 512-token batch, across 19 blocks of the K cache) gives the same
 * logits at every position fed at once, in chunks of 37 on 2 threads, and with its last 24
 * tokens one at a time, for F32 and F16 caches: only the matmuls' order of sums differs. */
TEST(long_prompt_chunked_and_stepwise_agree)
{
    enum { N = 600, V = 512 };
    int32_t ids[N];
    uint64_t s[4];
    float *a = tw_mallocarray((size_t)N * V, sizeof(float));
    float *b = tw_mallocarray((size_t)N * V, sizeof(float));
    float *c = tw_mallocarray((size_t)N * V, sizeof(float));
    tw_rng_seed(s, 3);
    ids[0] = 1;
    for (int i = 1; i < N; i++)
        ids[i] = 3 + (int32_t)(tw_rng_next(s) % (V - 3));
    for (int kv = 0; kv < 2 && !test__failed; kv++) {
        enum llm_kv_type type = kv ? LLM_KV_F16 : LLM_KV_F32;
        double worst_b = 0, worst_c = 0;
        long_prompt_logits(type, 1, N, 0, ids, N, a);
        long_prompt_logits(type, 2, 37, 0, ids, N, b);
        long_prompt_logits(type, 1, N, 24, ids, N, c);
        for (size_t i = 0; i < (size_t)N * V; i++) {
            double db = fabs(a[i] - b[i]), dc = fabs(a[i] - c[i]);
            worst_b = db > worst_b ? db : worst_b;
            worst_c = dc > worst_c ? dc : worst_c;
        }
        fprintf(stderr, "  kv %s: chunks of 37 %.3g, last 24 one by one %.3g\n",
                kv ? "f16" : "f32", worst_b, worst_c);
        CHECK_MSG(worst_b <= 2e-5 && worst_c <= 2e-5, "kv %s: %.3g %.3g", kv ? "f16" : "f32",
                  worst_b, worst_c);
    }
    tw_free(a);
    tw_free(b);
    tw_free(c);
}

TEST(unsupported_architecture_is_refused)
{
    struct tw_err err = TW_ERR_INIT;
    struct llm_model *m = NULL;
    CHECK_EQ_INT(llm_model_load(test_shared("refs/models/tiny-bert-bge-synth.gguf"), &m, &err),
                 TW_EUNSUP);
    CHECK(m == NULL);
    CHECK_MSG(strstr(err.msg, "architecture 'bert' is not supported") != NULL, "%s", err.msg);
    CHECK(strstr(err.msg, "tiny-bert-bge-synth.gguf") != NULL);
}

/* ---- qwen2: NEOX RoPE and Q/K/V biases ----
 * llama.cpp's converter permutes the rows of each Q/K head of a llama-arch model so that RoPE
 * on adjacent pairs (2i, 2i+1) computes what HF's half-split rotation (i, i + d/2) computes on
 * the original rows; qwen2 files keep the original rows and use the half-split (NEOX) rotation.
 * So a qwen2 file made from synth-tiny by un-permuting Q/K rows (and biases) must give the same
 * logits as a llama file with the permuted biases. This checks NEOX rotation, the bias adds and
 * the loading of both architectures against each other. */

/* HF row (h, j*d/2 + i) = GGUF row (h, 2i + j) */
static void unpermute_rows(const float *src, float *dst, int n_head, int d, int64_t row_len)
{
    for (int h = 0; h < n_head; h++)
        for (int i = 0; i < d / 2; i++)
            for (int j = 0; j < 2; j++)
                memcpy(dst + ((size_t)h * d + (size_t)j * (d / 2) + i) * row_len,
                       src + ((size_t)h * d + 2 * (size_t)i + j) * row_len,
                       (size_t)row_len * sizeof(float));
}

static int write_variant(const struct gguf_file *f, const struct llm_hparams *hp, bool qwen2,
                         float *const *bias, float *const *wperm, const char *path,
                         struct tw_err *err)
{
    const char *a = qwen2 ? "qwen2" : "llama";
    struct gguf_writer *w = gguf_writer_new();
    char key[96];
    int rc;
    gguf_writer_set_str(w, "general.architecture", a);
#define SETU(k, v) (snprintf(key, sizeof(key), "%s." k, a), gguf_writer_set_u32(w, key, (uint32_t)(v)))
    SETU("context_length", hp->n_ctx_train);
    SETU("embedding_length", hp->n_embd);
    SETU("block_count", hp->n_layer);
    SETU("feed_forward_length", hp->n_ff);
    SETU("attention.head_count", hp->n_head);
    SETU("attention.head_count_kv", hp->n_head_kv);
    SETU("rope.dimension_count", hp->n_rot);
#undef SETU
    snprintf(key, sizeof(key), "%s.attention.layer_norm_rms_epsilon", a);
    gguf_writer_set_f32(w, key, hp->rms_eps);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor *t = gguf_tensor(f, i);
        char name[96];
        int layer;
        const void *data = t->data;
        snprintf(name, sizeof(name), "%.*s", (int)t->name.len, t->name.ptr);
        if (qwen2 && sscanf(name, "blk.%d.", &layer) == 1 && layer < hp->n_layer) {
            if (strstr(name, "attn_q.weight"))
                data = wperm[2 * layer];
            else if (strstr(name, "attn_k.weight"))
                data = wperm[2 * layer + 1];
        }
        gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, data);
    }
    for (int l = 0; l < hp->n_layer; l++) {
        static const char *const nm[3] = {"attn_q", "attn_k", "attn_v"};
        for (int k = 0; k < 3; k++) {
            char name[64];
            int64_t ne[1] = {(int64_t)(k == 0 ? hp->n_head : hp->n_head_kv) * hp->head_dim};
            snprintf(name, sizeof(name), "blk.%d.%s.bias", l, nm[k]);
            gguf_writer_add_tensor(w, name, GGUF_T_F32, 1, ne,
                                   bias[(size_t)(qwen2 ? 0 : 1) * 3 * hp->n_layer + 3 * l + k]);
        }
    }
    rc = gguf_writer_write(w, path, err);
    gguf_writer_free(w);
    return rc;
}

TEST(qwen2_neox_with_bias_equals_permuted_llama)
{
    struct tw_err err = TW_ERR_INIT;
    struct llm_model *base, *mq = NULL, *ml = NULL;
    struct llm_ctx *cq = NULL, *cl = NULL;
    const struct llm_hparams *hp;
    float *bias[64] = {0}, *wperm[32] = {0};
    float lq[512 * 6], ll[512 * 6];
    int32_t ids[6] = {1, 403, 407, 261, 378, 432};
    char pq[512], pl[512];
    struct llm_rng rng;
    double worst = 0;

    CHECK_OK(llm_model_load(test_shared("refs/models/synth-tiny-f32.gguf"), &base, &err), &err);
    hp = llm_model_hparams(base);
    const struct gguf_file *f = llm_model_gguf(base);
    CHECK(hp->n_layer <= 10 && hp->n_rot == hp->head_dim && llm_n_vocab(base) == 512);
    llm_rng_seed(&rng, 99);
    for (int l = 0; l < hp->n_layer; l++) {
        for (int k = 0; k < 3; k++) {
            int n_head = k == 0 ? hp->n_head : hp->n_head_kv, n = n_head * hp->head_dim;
            float *b = tw_mallocarray((size_t)n, sizeof(float));
            float *bp = tw_mallocarray((size_t)n, sizeof(float));
            for (int i = 0; i < n; i++)
                b[i] = (float)(llm_rng_uniform(&rng) - 0.5);
            if (k < 2)
                unpermute_rows(b, bp, n_head, hp->head_dim, 1);
            else
                memcpy(bp, b, (size_t)n * sizeof(float));
            bias[3 * l + k] = bp;                    // qwen2: HF order
            bias[3 * hp->n_layer + 3 * l + k] = b;   // llama: GGUF order
        }
        for (int k = 0; k < 2; k++) {
            char name[64];
            snprintf(name, sizeof(name), "blk.%d.%s.weight", l, k ? "attn_k" : "attn_q");
            const struct gguf_tensor *t = gguf_find_tensor(f, name);
            CHECK(t && t->type == GGUF_T_F32);
            wperm[2 * l + k] = tw_mallocarray((size_t)(t->ne[0] * t->ne[1]), sizeof(float));
            unpermute_rows(t->data, wperm[2 * l + k], k ? hp->n_head_kv : hp->n_head,
                           hp->head_dim, t->ne[0]);
        }
    }
    snprintf(pq, sizeof(pq), "%s/qwen2.gguf", test_tmpdir());
    snprintf(pl, sizeof(pl), "%s/llama-bias.gguf", test_tmpdir());
    CHECK_OK(write_variant(f, hp, true, bias, wperm, pq, &err), &err);
    CHECK_OK(write_variant(f, hp, false, bias, wperm, pl, &err), &err);
    CHECK_OK(llm_model_load(pq, &mq, &err), &err);
    CHECK_OK(llm_model_load(pl, &ml, &err), &err);
    CHECK(llm_model_hparams(mq)->arch == LLM_ARCH_QWEN2 && llm_model_hparams(mq)->rope_neox);
    CHECK(!llm_model_hparams(ml)->rope_neox);
    CHECK_OK(llm_ctx_new(mq, 16, LLM_KV_F32, 1, &cq, &err), &err);
    CHECK_OK(llm_ctx_new(ml, 16, LLM_KV_F32, 1, &cl, &err), &err);
    CHECK_OK(llm_decode(cq, ids, 6, lq, LLM_LOGITS_ALL, &err), &err);
    CHECK_OK(llm_decode(cl, ids, 6, ll, LLM_LOGITS_ALL, &err), &err);
    for (int i = 0; i < 512 * 6; i++) {
        double d = fabs(lq[i] - ll[i]);
        worst = d > worst ? d : worst;
    }
    fprintf(stderr, "  qwen2 vs permuted llama: max |logit diff| %.3g\n", worst);
    CHECK(worst < 1e-4);
    /* and the biases matter: the base model (no biases) differs */
    struct llm_ctx *cb;
    CHECK_OK(llm_ctx_new(base, 16, LLM_KV_F32, 1, &cb, &err), &err);
    CHECK_OK(llm_decode(cb, ids, 6, lq, LLM_LOGITS_ALL, &err), &err);
    worst = 0;
    for (int i = 0; i < 512 * 6; i++)
        worst = fmax(worst, fabs(lq[i] - ll[i]));
    CHECK(worst > 1e-2);
    llm_ctx_free(cb);
    llm_ctx_free(cq);
    llm_ctx_free(cl);
    llm_model_free(mq);
    llm_model_free(ml);
    llm_model_free(base);
    for (int i = 0; i < 64; i++)
        tw_free(bias[i]);
    for (int i = 0; i < 32; i++)
        tw_free(wperm[i]);
}

TEST(unsupported_tensor_type_is_refused)
{
    struct tw_err err = TW_ERR_INIT;
    struct gguf_file *f;
    struct gguf_writer *w;
    struct llm_model *m = (struct llm_model *)1;
    char path[512];
    void *q5 = NULL;

    CHECK_OK(gguf_open(test_shared("refs/models/synth-tiny-f32.gguf"), &f, &err), &err);
    w = gguf_writer_new();
    gguf_writer_copy_kv(w, f);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor *t = gguf_tensor(f, i);
        char name[96];
        snprintf(name, sizeof(name), "%.*s", (int)t->name.len, t->name.ptr);
        if (!strcmp(name, "blk.1.ffn_up.weight")) {
            size_t bytes = gguf_row_size(GGUF_T_Q5_0, t->ne[0]) * (size_t)t->ne[1];
            q5 = tw_calloc(1, bytes);
            gguf_writer_add_tensor(w, name, GGUF_T_Q5_0, t->n_dims, t->ne, q5);
        } else {
            gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
        }
    }
    snprintf(path, sizeof(path), "%s/q5_0.gguf", test_tmpdir());
    CHECK_OK(gguf_writer_write(w, path, &err), &err);
    gguf_writer_free(w);
    gguf_close(f);
    tw_free(q5);
    CHECK_EQ_INT(llm_model_load(path, &m, &err), TW_EUNSUP);
    CHECK(m == NULL);
    CHECK_MSG(strstr(err.msg, "tensor 'blk.1.ffn_up.weight' has type q5_0") != NULL, "%s",
              err.msg);
}

/* output.weight absent: the logits use token_embd. A file with output.weight = a copy of
 * token_embd must give the same logits as one without output.weight. */
static int write_tied(const struct gguf_file *f, bool explicit_output, const char *path,
                      struct tw_err *err)
{
    struct gguf_writer *w = gguf_writer_new();
    const struct gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    int rc;
    gguf_writer_copy_kv(w, f);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor *t = gguf_tensor(f, i);
        char name[96];
        snprintf(name, sizeof(name), "%.*s", (int)t->name.len, t->name.ptr);
        if (strcmp(name, "output.weight"))
            gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
        else if (explicit_output)
            gguf_writer_add_tensor(w, name, emb->type, emb->n_dims, emb->ne, emb->data);
    }
    rc = gguf_writer_write(w, path, err);
    gguf_writer_free(w);
    return rc;
}

TEST(tied_output_uses_token_embd)
{
    struct tw_err err = TW_ERR_INIT;
    struct gguf_file *f;
    struct llm_model *mt, *me, *mo;
    struct llm_ctx *ct, *ce, *co;
    char pt[512], pe[512];
    int32_t ids[5] = {1, 403, 407, 261, 378};
    static float lt[512 * 5], le[512 * 5], lo[512 * 5];
    double same = 0, other = 0;

    CHECK_OK(gguf_open(test_shared("refs/models/synth-tiny-f32.gguf"), &f, &err), &err);
    snprintf(pt, sizeof(pt), "%s/tied.gguf", test_tmpdir());
    snprintf(pe, sizeof(pe), "%s/explicit.gguf", test_tmpdir());
    CHECK_OK(write_tied(f, false, pt, &err), &err);
    CHECK_OK(write_tied(f, true, pe, &err), &err);
    CHECK_OK(llm_model_load(pt, &mt, &err), &err);
    CHECK_OK(llm_model_load(pe, &me, &err), &err);
    CHECK_OK(llm_model_from_gguf(f, &mo, &err), &err);
    CHECK(llm_model_hparams(mt)->tied_output && !llm_model_hparams(me)->tied_output);
    CHECK_OK(llm_ctx_new(mt, 8, LLM_KV_F32, 1, &ct, &err), &err);
    CHECK_OK(llm_ctx_new(me, 8, LLM_KV_F32, 1, &ce, &err), &err);
    CHECK_OK(llm_ctx_new(mo, 8, LLM_KV_F32, 1, &co, &err), &err);
    CHECK_OK(llm_decode(ct, ids, 5, lt, LLM_LOGITS_ALL, &err), &err);
    CHECK_OK(llm_decode(ce, ids, 5, le, LLM_LOGITS_ALL, &err), &err);
    CHECK_OK(llm_decode(co, ids, 5, lo, LLM_LOGITS_ALL, &err), &err);
    for (int i = 0; i < 512 * 5; i++) {
        same = fmax(same, fabs(lt[i] - le[i]));
        other = fmax(other, fabs(lt[i] - lo[i]));
    }
    CHECK_EQ_INT(same, 0);
    CHECK(other > 1e-2); // the original output.weight is not token_embd
    llm_ctx_free(ct);
    llm_ctx_free(ce);
    llm_ctx_free(co);
    llm_model_free(mt);
    llm_model_free(me);
    llm_model_free(mo);
    gguf_close(f);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
