/* llm.c - Llama-family decoder: loading a GGUF model, the KV cache and the forward pass
 * (the block is drawn in llm.h). Numerics follow ggml's CPU backend where it matters for
 * agreement with llama.cpp: RMSNorm sums squares in double, RoPE builds its angles by repeated
 * float multiplication, softmax sums in double. */
#include "nn/llm.h"

#include "base/log.h"
#include "base/mem.h"
#include "base/pool.h"
#include "nn/attn.h"
#include "nn/kq.h"
#include "nn/weights.h"
#include "nn/lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LLM_MAX_EMBD 65536
#define LLM_MAX_LAYER 1024
#define LLM_MAX_HEAD 1024
#define LLM_MAX_FF (1 << 20)
#define LLM_MAX_VOCAB (1 << 24)
#define LLM_MAX_CTX (1 << 20)
#define LLM_DEFAULT_CTX 4096
#define LLM_MAX_HEAD_DIM 4096

/* ---- model ---- */

struct llm_layer {
    const struct gguf_tensor *wq, *wk, *wv, *wo;      // (C, H*d), (C, KV*d), (C, KV*d), (H*d, C)
    const struct gguf_tensor *w_gate, *w_up, *w_down; // (C, F), (C, F), (F, C)
    const float *attn_norm, *ffn_norm;                // (C)
    const float *bq, *bk, *bv;                        // (H*d), (KV*d), (KV*d); NULL if absent
};

struct llm_model {
    struct llm_hparams hp;
    const struct gguf_file *f;
    struct gguf_file *owned;               // set when llm_model_load opened the file
    const struct gguf_tensor *tok_embd;    // (C, V)
    const struct gguf_tensor *output;      // (C, V); == tok_embd when tied
    const float *output_norm;              // (C)
    const float *rope_freqs;               // (n_rot / 2) frequency divisors; NULL if absent
    struct llm_layer *layers;              // (n_layer)
    float *f32;                            // norms and biases, one allocation
    size_t f32_used, f32_cap;
    struct llm_lora_link *lora;            // (n_lora) adapted weights, sorted by w; NULL if none
    int n_lora, n_adapters;
    struct llm_packed *packed;             // (n_packed) repacked weights, sorted by t
    int n_packed;
};

/* A weight matrix copied into the kernels' repacked layout at load (kq_pack). */
struct llm_packed {
    const struct gguf_tensor *t;
    struct kq_packed *p;
};

/* One weight of one applied LoRA adapter (llm_model_apply_lora). */
struct llm_lora_link {
    const struct gguf_tensor *w;  // the base weight as the forward pass multiplies it
    const struct lora_weight *lw;
    float s;                      // effective multiplier
    int seq;                      // order applied (keeps the sum order stable)
};

static const char *arch_name(enum llm_arch a)
{
    return a == LLM_ARCH_QWEN2 ? "qwen2" : "llama";
}

static int get_hp_int(const struct gguf_file *f, enum llm_arch a, const char *suffix, int64_t def,
                      int64_t lo, int64_t hi, int *out, struct tw_err *err)
{
    char key[128];
    int64_t v;
    int rc;

    snprintf(key, sizeof(key), "%s.%s", arch_name(a), suffix);
    rc = gguf_get_i64(f, key, def, &v, err);
    if (rc < 0)
        return rc;
    if (v == INT64_MIN)
        return tw_errf(err, TW_EFORMAT, "metadata '%s' is missing", key);
    if (v < lo || v > hi)
        return tw_errf(err, TW_EFORMAT, "metadata '%s' = %lld out of range [%lld, %lld]", key,
                       (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return TW_OK;
}

static int get_hp_f32(const struct gguf_file *f, enum llm_arch a, const char *suffix, float def,
                      float *out, struct tw_err *err)
{
    char key[128];
    snprintf(key, sizeof(key), "%s.%s", arch_name(a), suffix);
    int rc = gguf_get_f32(f, key, def, out, err);
    if (rc < 0)
        return rc;
    if (!isfinite(*out))
        return tw_errf(err, TW_EFORMAT, "metadata '%s' is not a finite number", key);
    return TW_OK;
}

static int load_hparams(struct llm_model *m, struct tw_err *err)
{
    const struct gguf_file *f = m->f;
    struct llm_hparams *hp = &m->hp;
    struct gguf_str s = {NULL, 0};
    char key[128];
    int rc;
    float factor;

    rc = gguf_get_str(f, "general.architecture", &s, err);
    if (rc < 0)
        return rc;
    if (!s.ptr)
        return tw_errf(err, TW_EFORMAT, "metadata 'general.architecture' is missing");
    if (s.len == 5 && !memcmp(s.ptr, "llama", 5))
        hp->arch = LLM_ARCH_LLAMA;
    else if (s.len == 5 && !memcmp(s.ptr, "qwen2", 5))
        hp->arch = LLM_ARCH_QWEN2;
    else
        return tw_errf(err, TW_EUNSUP, "architecture '%.*s' is not supported (llama, qwen2)",
                       (int)(s.len > 64 ? 64 : s.len), s.ptr);
    if ((rc = get_hp_int(f, hp->arch, "embedding_length", INT64_MIN, 1, LLM_MAX_EMBD, &hp->n_embd,
                         err)) < 0 ||
        (rc = get_hp_int(f, hp->arch, "block_count", INT64_MIN, 1, LLM_MAX_LAYER, &hp->n_layer,
                         err)) < 0 ||
        (rc = get_hp_int(f, hp->arch, "feed_forward_length", INT64_MIN, 1, LLM_MAX_FF, &hp->n_ff,
                         err)) < 0 ||
        (rc = get_hp_int(f, hp->arch, "attention.head_count", INT64_MIN, 1, LLM_MAX_HEAD,
                         &hp->n_head, err)) < 0 ||
        (rc = get_hp_int(f, hp->arch, "attention.head_count_kv", hp->n_head, 1, hp->n_head,
                         &hp->n_head_kv, err)) < 0 ||
        (rc = get_hp_int(f, hp->arch, "context_length", 2048, 1, LLM_MAX_CTX, &hp->n_ctx_train,
                         err)) < 0)
        return rc;
    if (hp->n_head % hp->n_head_kv)
        return tw_errf(err, TW_EFORMAT, "head count %d is not a multiple of the KV head count %d",
                       hp->n_head, hp->n_head_kv);
    if ((rc = get_hp_int(f, hp->arch, "attention.key_length", hp->n_embd / hp->n_head, 2,
                         LLM_MAX_HEAD_DIM,
                         &hp->head_dim, err)) < 0)
        return rc;
    {
        int vlen;
        if ((rc = get_hp_int(f, hp->arch, "attention.value_length", hp->head_dim, 1, 4096, &vlen,
                             err)) < 0)
            return rc;
        if (vlen != hp->head_dim)
            return tw_errf(err, TW_EUNSUP, "key length %d differs from value length %d",
                           hp->head_dim, vlen);
    }
    if ((rc = get_hp_int(f, hp->arch, "rope.dimension_count", hp->head_dim, 2, hp->head_dim,
                         &hp->n_rot, err)) < 0)
        return rc;
    if (hp->n_rot % 2 || hp->head_dim % 2)
        return tw_errf(err, TW_EFORMAT, "rotary dimension %d and head size %d must be even",
                       hp->n_rot, hp->head_dim);
    if ((rc = get_hp_f32(f, hp->arch, "rope.freq_base", 10000.0f, &hp->rope_base, err)) < 0 ||
        (rc = get_hp_f32(f, hp->arch, "attention.layer_norm_rms_epsilon", 1e-5f, &hp->rms_eps,
                         err)) < 0)
        return rc;
    if (hp->rope_base <= 0 || hp->rms_eps < 0)
        return tw_errf(err, TW_EFORMAT, "rope base %g or rms epsilon %g out of range",
                       (double)hp->rope_base, (double)hp->rms_eps);
    snprintf(key, sizeof(key), "%s.rope.scaling.type", arch_name(hp->arch));
    s.ptr = NULL;
    s.len = 0;
    if ((rc = gguf_get_str(f, key, &s, err)) < 0)
        return rc;
    if (s.ptr && !(s.len == 4 && !memcmp(s.ptr, "none", 4)) &&
        !(s.len == 6 && !memcmp(s.ptr, "linear", 6)))
        return tw_errf(err, TW_EUNSUP, "rope scaling '%.*s' is not supported (none, linear)",
                       (int)(s.len > 32 ? 32 : s.len), s.ptr);
    if ((rc = get_hp_f32(f, hp->arch, "rope.scale_linear", 0.0f, &factor, err)) < 0 ||
        (rc = get_hp_f32(f, hp->arch, "rope.scaling.factor", factor, &factor, err)) < 0)
        return rc;
    if (factor < 0)
        return tw_errf(err, TW_EFORMAT, "rope scaling factor %g is negative", (double)factor);
    hp->rope_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
    hp->rope_neox = hp->arch == LLM_ARCH_QWEN2;
    return TW_OK;
}

/* A weight tensor 'name' of shape [ne0, ne1] (ne1 = 1 for vectors). NULL with *rc = 0 if it is
 * absent and optional. */
static const struct gguf_tensor *get_tensor(const struct llm_model *m, const char *name,
                                            int64_t ne0, int64_t ne1, bool required, int *rc,
                                            struct tw_err *err)
{
    return nn_weight(m->f, name, ne0, ne1, required, rc, err);
}

/* A vector tensor decoded into the model's F32 area. */
static const float *get_vector(struct llm_model *m, const char *name, int64_t n, bool required,
                               int *rc, struct tw_err *err)
{
    const struct gguf_tensor *t = get_tensor(m, name, n, 1, required, rc, err);
    float *dst;

    if (!t)
        return NULL;
    if (m->f32_used + (size_t)n > m->f32_cap) {
        *rc = tw_errf(err, TW_EINTERNAL, "no room for tensor '%s'", name);
        return NULL;
    }
    dst = m->f32 + m->f32_used;
    m->f32_used += (size_t)n;
    kq_dequant(t->type, t->data, dst, n);
    return dst;
}

static int load_tensors(struct llm_model *m, struct tw_err *err)
{
    const struct llm_hparams *hp = &m->hp;
    int64_t C = hp->n_embd, F = hp->n_ff, qd = (int64_t)hp->n_head * hp->head_dim;
    int64_t kvd = (int64_t)hp->n_head_kv * hp->head_dim;
    char name[96];
    int rc = 0;
    size_t cap;

    m->tok_embd = gguf_find_tensor(m->f, "token_embd.weight");
    if (!m->tok_embd)
        return tw_errf(err, TW_EFORMAT, "tensor 'token_embd.weight' is missing");
    if (m->tok_embd->ne[1] < 1 || m->tok_embd->ne[1] > LLM_MAX_VOCAB)
        return tw_errf(err, TW_EFORMAT, "vocabulary size %lld out of range [1, %d]",
                       (long long)m->tok_embd->ne[1], LLM_MAX_VOCAB);
    m->hp.n_vocab = (int)m->tok_embd->ne[1];
    if (!get_tensor(m, "token_embd.weight", C, hp->n_vocab, true, &rc, err))
        return rc;
    m->output = get_tensor(m, "output.weight", C, hp->n_vocab, false, &rc, err);
    if (rc < 0)
        return rc;
    m->hp.tied_output = m->output == NULL;
    if (!m->output)
        m->output = m->tok_embd;

    /* norms (2 per layer + 1), optional biases, rope factors */
    cap = (size_t)(2 * hp->n_layer + 1) * (size_t)C +
          (size_t)hp->n_layer * (size_t)(qd + 2 * kvd) + (size_t)hp->n_rot / 2;
    m->f32 = tw_mallocarray(cap, sizeof(float));
    m->layers = tw_calloc((size_t)hp->n_layer, sizeof(*m->layers));
    if (!m->f32 || !m->layers)
        return tw_errf(err, TW_ENOMEM, "out of memory loading %d layers", hp->n_layer);
    m->f32_cap = cap;

    m->output_norm = get_vector(m, "output_norm.weight", C, true, &rc, err);
    if (rc < 0)
        return rc;
    m->rope_freqs = get_vector(m, "rope_freqs.weight", hp->n_rot / 2, false, &rc, err);
    if (rc < 0)
        return rc;
    for (int i = 0; i < hp->n_layer; i++) {
        struct llm_layer *l = &m->layers[i];
#define W(field, suffix, ne0, ne1)                                                                 \
    snprintf(name, sizeof(name), "blk.%d." suffix, i);                                             \
    if (!(l->field = get_tensor(m, name, ne0, ne1, true, &rc, err)))                              \
        return rc;
#define V(field, suffix, n, req)                                                                   \
    snprintf(name, sizeof(name), "blk.%d." suffix, i);                                             \
    l->field = get_vector(m, name, n, req, &rc, err);                                              \
    if (rc < 0)                                                                                    \
        return rc;
        W(wq, "attn_q.weight", C, qd);
        W(wk, "attn_k.weight", C, kvd);
        W(wv, "attn_v.weight", C, kvd);
        W(wo, "attn_output.weight", qd, C);
        W(w_gate, "ffn_gate.weight", C, F);
        W(w_up, "ffn_up.weight", C, F);
        W(w_down, "ffn_down.weight", F, C);
        V(attn_norm, "attn_norm.weight", C, true);
        V(ffn_norm, "ffn_norm.weight", C, true);
        /* qwen2 always has Q/K/V biases; some llama-arch conversions do too */
        V(bq, "attn_q.bias", qd, hp->arch == LLM_ARCH_QWEN2);
        V(bk, "attn_k.bias", kvd, hp->arch == LLM_ARCH_QWEN2);
        V(bv, "attn_v.bias", kvd, hp->arch == LLM_ARCH_QWEN2);
#undef W
#undef V
    }
    return TW_OK;
}

static int packed_cmp(const void *x, const void *y)
{
    uintptr_t a = (uintptr_t)((const struct llm_packed *)x)->t;
    uintptr_t b = (uintptr_t)((const struct llm_packed *)y)->t;
    return a < b ? -1 : a > b;
}

/* Each matrix is named once (output.weight, or token_embd.weight when tied, then each layer's
 * seven), so none is packed twice. */
static void pack_one(struct llm_model *m, const struct gguf_tensor *t, struct tw_pool *pool)
{
    int nomem = 0;
    struct kq_packed *p = kq_pack(t->type, t->data, t->ne[0], t->ne[1], pool, &nomem);
    if (!p) {
        if (nomem)
            tw_log(TW_LOG_WARN, "llm",
                   "no memory to repack '%.*s' (%.1f MiB): it is used in the file's layout",
                   (int)t->name.len, t->name.ptr, (double)t->nbytes / (1 << 20));
        return;
    }
    m->packed[m->n_packed++] = (struct llm_packed){t, p};
    /* a tied token_embd still gives rows to the embedding lookup: they come back from the
     * page cache when read */
    gguf_drop_pages(m->f, t->data, t->nbytes);
}

/* Repacks every matrix the kernels have a faster layout for (kq_pack), unless TWIN_REPACK=0,
 * on a pool of one thread per online CPU (a model has no pool of its own; packing is load
 * time). Out of memory is not an error: the weights are then used in place. */
static void pack_weights(struct llm_model *m)
{
    const char *env = getenv("TWIN_REPACK");
    const int n = 7 * m->hp.n_layer + 1;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    struct tw_pool *pool = NULL;
    struct tw_err err = TW_ERR_INIT;
    if (env && !strcmp(env, "0"))
        return;
    m->packed = tw_calloc((size_t)n, sizeof(*m->packed));
    if (!m->packed)
        return;
    if (tw_pool_new(cpus < 1 ? 1 : cpus > 64 ? 64 : (int)cpus, &pool, &err) < 0)
        pool = NULL; // pack on this thread
    pack_one(m, m->output, pool);
    for (int i = 0; i < m->hp.n_layer; i++) {
        const struct llm_layer *l = &m->layers[i];
        const struct gguf_tensor *w[7] = {l->wq, l->wk, l->wv, l->wo, l->w_gate, l->w_up,
                                          l->w_down};
        for (int k = 0; k < 7; k++)
            pack_one(m, w[k], pool);
    }
    tw_pool_free(pool);
    qsort(m->packed, (size_t)m->n_packed, sizeof(*m->packed), packed_cmp);
}

static const struct kq_packed *packed_of(const struct llm_model *m, const struct gguf_tensor *t)
{
    if (!m->n_packed)
        return NULL;
    const struct llm_packed key = {t, NULL};
    const struct llm_packed *hit =
        bsearch(&key, m->packed, (size_t)m->n_packed, sizeof(key), packed_cmp);
    return hit ? hit->p : NULL;
}

int llm_model_from_gguf(const struct gguf_file *f, struct llm_model **out, struct tw_err *err)
{
    struct llm_model *m;
    int rc;

    *out = NULL;
    kq_init();
    m = tw_calloc(1, sizeof(*m));
    if (!m)
        return tw_errf(err, TW_ENOMEM, "out of memory loading a model");
    m->f = f;
    rc = load_hparams(m, err);
    if (rc == 0)
        rc = load_tensors(m, err);
    if (rc < 0) {
        llm_model_free(m);
        return rc;
    }
    pack_weights(m);
    *out = m;
    return TW_OK;
}

int llm_model_load(const char *path, struct llm_model **out, struct tw_err *err)
{
    struct gguf_file *f;
    int rc;

    *out = NULL;
    rc = gguf_open(path, &f, err);
    if (rc < 0)
        return rc;
    rc = llm_model_from_gguf(f, out, err);
    if (rc < 0) {
        gguf_close(f);
        return tw_err_ctx(err, "loading '%s'", path);
    }
    (*out)->owned = f;
    return TW_OK;
}

void llm_model_free(struct llm_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_packed; i++)
        kq_packed_free(m->packed[i].p);
    tw_free(m->packed);
    tw_free(m->f32);
    tw_free(m->layers);
    tw_free(m->lora);
    gguf_close(m->owned);
    tw_free(m);
}

const struct llm_hparams *llm_model_hparams(const struct llm_model *m)
{
    return &m->hp;
}

const struct gguf_file *llm_model_gguf(const struct llm_model *m)
{
    return m->f;
}

int llm_n_vocab(const struct llm_model *m)
{
    return m->hp.n_vocab;
}

uint64_t llm_model_weight_bytes(const struct llm_model *m)
{
    uint64_t b = m->output->nbytes + m->f32_used * sizeof(float);
    b += gguf_row_size(m->tok_embd->type, m->hp.n_embd);
    for (int i = 0; i < m->hp.n_layer; i++) {
        const struct llm_layer *l = &m->layers[i];
        b += l->wq->nbytes + l->wk->nbytes + l->wv->nbytes + l->wo->nbytes;
        b += l->w_gate->nbytes + l->w_up->nbytes + l->w_down->nbytes;
    }
    return b;
}

/* ---- LoRA adapters applied at run time ---- */

static int lora_link_cmp(const void *x, const void *y)
{
    const struct llm_lora_link *a = x, *b = y;
    uintptr_t pa = (uintptr_t)a->w, pb = (uintptr_t)b->w;
    if (pa != pb)
        return pa < pb ? -1 : 1;
    return a->seq - b->seq;
}

/* Whether the forward pass multiplies by t (so an adapter on it takes effect). */
static bool is_matmul_weight(const struct llm_model *m, const struct gguf_tensor *t)
{
    if (t == m->tok_embd || t == m->output)
        return true;
    for (int i = 0; i < m->hp.n_layer; i++) {
        const struct llm_layer *l = &m->layers[i];
        if (t == l->wq || t == l->wk || t == l->wv || t == l->wo || t == l->w_gate ||
            t == l->w_up || t == l->w_down)
            return true;
    }
    return false;
}

int llm_model_apply_lora(struct llm_model *m, const struct lora_adapter *a, float scale,
                         struct tw_err *err)
{
    int n = lora_adapter_n_weights(a), rc;
    struct llm_lora_link *links;

    if (m->n_adapters >= LORA_MAX_ADAPTERS)
        return tw_errf(err, TW_ELIMIT, "more than %d LoRA adapters", LORA_MAX_ADAPTERS);
    if (!isfinite(scale))
        return tw_errf(err, TW_EINVAL, "LoRA scale %g is not a finite number", (double)scale);
    rc = lora_adapter_check(a, m->f, err);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n; i++) {
        const struct lora_weight *lw = lora_adapter_weight(a, i);
        if (!is_matmul_weight(m, gguf_find_tensor(m->f, lw->name)))
            return tw_errf(err, TW_EUNSUP, "LoRA tensor '%s.lora_a' adapts '%s', which the decoder "
                           "does not multiply by (adapters apply to attn_q/k/v/output, ffn_gate/"
                           "up/down, output and token_embd)", lw->name, lw->name);
    }
    links = tw_reallocarray(m->lora, (size_t)(m->n_lora + n), sizeof(*links));
    if (!links)
        return tw_errf(err, TW_ENOMEM, "out of memory applying a LoRA adapter");
    m->lora = links;
    for (int i = 0; i < n; i++) {
        const struct lora_weight *lw = lora_adapter_weight(a, i);
        struct llm_lora_link *l = &links[m->n_lora + i];
        l->w = gguf_find_tensor(m->f, lw->name);
        l->lw = lw;
        l->s = lora_scale(a, lw, scale);
        l->seq = m->n_lora + i;
    }
    m->n_lora += n;
    m->n_adapters++;
    qsort(m->lora, (size_t)m->n_lora, sizeof(*m->lora), lora_link_cmp);
    return TW_OK;
}

/* ---- context ---- */

struct llm_ctx {
    const struct llm_model *m;
    int n_ctx;
    int n_past;
    enum llm_kv_type kv_type;
    size_t kv_elt;         // bytes per cached value (4 or 2)
    struct attn_dims ad;   // attention shapes and the cache layout (nn/attn.h)
    size_t k_layer, v_layer; // cached values per layer in k, v
    void *k, *v;           // (n_layer, k_layer), (n_layer, v_layer) in attn.h's layout
    struct tw_pool *pool;
    int n_threads;
    int n_batch;           // tokens per chunk: min(LLM_BATCH_MAX, n_ctx)
    float *x;              // (T, C) residual stream
    float *xb;             // (T, C) normed input
    float *q;              // (T, H*d)
    float *kc, *vc;        // (T, KV*d) new keys and values
    float *att;            // (T, H*d) attention output
    float *hb, *hb2;       // (T, F) FFN gate/up
    float *rope;           // (T, n_rot) cos, sin pairs
    unsigned char *attn_scratch; // (n_threads, attn_scratch_size) bytes
};

int llm_ctx_new(const struct llm_model *m, int n_ctx, enum llm_kv_type kv, int n_threads,
                struct llm_ctx **out, struct tw_err *err)
{
    const struct llm_hparams *hp = &m->hp;
    size_t kvd = (size_t)hp->n_head_kv * hp->head_dim, qd = (size_t)hp->n_head * hp->head_dim;
    size_t kv_n, kv_bytes, v_bytes, T;
    struct llm_ctx *c;
    int rc;

    *out = NULL;
    if (n_ctx <= 0)
        n_ctx = hp->n_ctx_train < LLM_DEFAULT_CTX ? hp->n_ctx_train : LLM_DEFAULT_CTX;
    if (n_ctx > LLM_MAX_CTX)
        return tw_errf(err, TW_EINVAL, "context of %d tokens is above the limit of %d", n_ctx,
                       LLM_MAX_CTX);
    if (kv != LLM_KV_F32 && kv != LLM_KV_F16)
        return tw_errf(err, TW_EINVAL, "unknown KV cache type %d", (int)kv);
    c = tw_calloc(1, sizeof(*c));
    if (!c)
        return tw_errf(err, TW_ENOMEM, "out of memory making a context");
    c->m = m;
    c->n_ctx = n_ctx;
    c->kv_type = kv;
    c->kv_elt = kv == LLM_KV_F16 ? 2 : 4;
    c->n_batch = n_ctx < LLM_BATCH_MAX ? n_ctx : LLM_BATCH_MAX;
    attn_dims_init(&c->ad, hp->n_head, hp->n_head_kv, hp->head_dim, n_ctx, kv == LLM_KV_F16);
    c->k_layer = attn_k_elems(&c->ad);
    c->v_layer = attn_v_elems(&c->ad);
    if (tw_size_mul((size_t)hp->n_layer, c->k_layer, &kv_n) < 0 ||
        tw_size_mul(kv_n, c->kv_elt, &kv_bytes) < 0 ||
        tw_size_mul((size_t)hp->n_layer, c->v_layer, &kv_n) < 0 ||
        tw_size_mul(kv_n, c->kv_elt, &v_bytes) < 0) {
        tw_free(c);
        return tw_errf(err, TW_ELIMIT, "KV cache for %d tokens is too large", n_ctx);
    }
    rc = tw_pool_new(n_threads, &c->pool, err);
    if (rc < 0) {
        tw_free(c);
        return rc;
    }
    c->n_threads = tw_pool_size(c->pool);
    T = (size_t)c->n_batch;
    /* zeroed: attention reads the padding of the last key block and of value rows */
    c->k = tw_calloc(1, kv_bytes ? kv_bytes : 1);
    c->v = tw_calloc(1, v_bytes ? v_bytes : 1);
    c->x = tw_mallocarray(T * (size_t)hp->n_embd, sizeof(float));
    c->xb = tw_mallocarray(T * (size_t)hp->n_embd, sizeof(float));
    c->q = tw_mallocarray(T * qd, sizeof(float));
    c->att = tw_mallocarray(T * qd, sizeof(float));
    c->kc = tw_mallocarray(T * kvd, sizeof(float));
    c->vc = tw_mallocarray(T * kvd, sizeof(float));
    c->hb = tw_mallocarray(T * (size_t)hp->n_ff, sizeof(float));
    c->hb2 = tw_mallocarray(T * (size_t)hp->n_ff, sizeof(float));
    c->rope = tw_mallocarray(T * (size_t)hp->n_rot, sizeof(float));
    c->attn_scratch = tw_mallocarray((size_t)c->n_threads, attn_scratch_size(&c->ad));
    if (!c->k || !c->v || !c->x || !c->xb || !c->q || !c->att || !c->kc || !c->vc || !c->hb ||
        !c->hb2 || !c->rope || !c->attn_scratch) {
        llm_ctx_free(c);
        return tw_errf(err, TW_ENOMEM, "out of memory making a context of %d tokens (KV cache %zu MiB)",
                       n_ctx, (kv_bytes + v_bytes) >> 20);
    }
    *out = c;
    return TW_OK;
}

void llm_ctx_free(struct llm_ctx *c)
{
    if (!c)
        return;
    tw_pool_free(c->pool);
    tw_free(c->k);
    tw_free(c->v);
    tw_free(c->x);
    tw_free(c->xb);
    tw_free(c->q);
    tw_free(c->att);
    tw_free(c->kc);
    tw_free(c->vc);
    tw_free(c->hb);
    tw_free(c->hb2);
    tw_free(c->rope);
    tw_free(c->attn_scratch);
    tw_free(c);
}

void llm_ctx_reset(struct llm_ctx *c)
{
    c->n_past = 0;
}

void llm_ctx_truncate(struct llm_ctx *c, int n_past)
{
    if (n_past >= 0 && n_past < c->n_past)
        c->n_past = n_past;
}

int llm_ctx_n_past(const struct llm_ctx *c)
{
    return c->n_past;
}

int llm_ctx_n_ctx(const struct llm_ctx *c)
{
    return c->n_ctx;
}

int llm_ctx_n_threads(const struct llm_ctx *c)
{
    return c->n_threads;
}

/* ---- forward pass ---- */

/* out = x / sqrt(mean(x^2) + eps) * w, one row of n */
static void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    /* eight partial sums in double: one serial chain of double adds was 3% of a long prompt;
     * the order moves the double sum by an ulp or so, far below the float mean's rounding */
    double acc[8] = {0}, ss = 0;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += (double)(x[i + k] * x[i + k]);
    for (; i < n; i++)
        ss += (double)(x[i] * x[i]);
    for (int k = 0; k < 8; k++)
        ss += acc[k];
    float mean = (float)(ss / n);
    float scale = 1.0f / sqrtf(mean + eps);
    for (i = 0; i < n; i++)
        out[i] = (x[i] * scale) * w[i];
}

/* cos/sin for the n_rot/2 rotation angles of position pos, as ggml builds them */
static void rope_cache(const struct llm_model *m, int pos, float *cs)
{
    const struct llm_hparams *hp = &m->hp;
    float theta_scale = powf(hp->rope_base, -2.0f / (float)hp->n_rot);
    float theta = (float)pos;
    for (int i = 0; i < hp->n_rot / 2; i++) {
        float ff = m->rope_freqs ? m->rope_freqs[i] : 1.0f;
        float a = hp->rope_scale * (theta / ff);
        cs[2 * i] = cosf(a);
        cs[2 * i + 1] = sinf(a);
        theta *= theta_scale;
    }
}

/* Rotates each head of x (n_heads * head_dim values) by the angles in cs. */
static void rope_apply(const struct llm_hparams *hp, float *x, int n_heads, const float *cs)
{
    int half = hp->n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * hp->head_dim;
        for (int i = 0; i < half; i++) {
            int a = hp->rope_neox ? i : 2 * i;
            int b = hp->rope_neox ? i + half : 2 * i + 1;
            float c = cs[2 * i], s = cs[2 * i + 1];
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * c - x1 * s;
            v[b] = x0 * s + x1 * c;
        }
    }
}

/* Below this many multiply-adds a matmul or attention step runs on the calling thread: waking
 * the workers costs more than it saves (tens of microseconds on a busy machine). */
#define LLM_PAR_MIN_WORK (1 << 16)

/* The first link of weight w, or NULL. */
static const struct llm_lora_link *lora_first(const struct llm_model *m,
                                              const struct gguf_tensor *w)
{
    int lo = 0, hi = m->n_lora;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if ((uintptr_t)m->lora[mid].w < (uintptr_t)w)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->n_lora && m->lora[lo].w == w ? &m->lora[lo] : NULL;
}

/* y += the adapters' terms for y = w x over T tokens (x (T, ne0), y (T, ne1)). */
static void lora_matmul(const struct llm_model *m, const struct gguf_tensor *w, const float *x,
                        int T, float *y, struct tw_pool *pool)
{
    const struct llm_lora_link *l = lora_first(m, w), *end = m->lora + m->n_lora;
    for (; l && l < end && l->w == w; l++) {
        if (!l->lw->embd) {
            int64_t work = (int64_t)T * l->lw->r * (w->ne[0] + w->ne[1]);
            lora_matmul_add(l->lw, l->s, x, T, y, work >= LLM_PAR_MIN_WORK ? pool : NULL);
            continue;
        }
        for (int t = 0; t < T; t++) // tied output: the logits of the merged embedding
            lora_embd_logits_add(l->lw, l->s, x + (size_t)t * w->ne[0],
                                 y + (size_t)t * w->ne[1]);
    }
}

/* The adapters' terms for the embedding row x of token id. */
static void lora_embd(const struct llm_model *m, int32_t id, float *x)
{
    const struct llm_lora_link *l = lora_first(m, m->tok_embd), *end = m->lora + m->n_lora;
    for (; l && l < end && l->w == m->tok_embd; l++)
        lora_embd_add(l->lw, l->s, id, x);
}

static void matmul(struct llm_ctx *c, const struct gguf_tensor *w, const float *x, int T, float *y)
{
    int64_t work = w->ne[0] * w->ne[1] * T;
    const struct kq_packed *p = packed_of(c->m, w);
    struct tw_pool *pool = work >= LLM_PAR_MIN_WORK ? c->pool : NULL;
    if (p)
        kq_matmul_packed(p, x, T, y, pool);
    else
        kq_matmul(w->type, w->data, w->ne[0], w->ne[1], x, T, y, pool);
    if (c->m->n_lora)
        lora_matmul(c->m, w, x, T, y, c->pool);
}

static void add_bias(float *y, const float *b, int T, size_t n)
{
    if (!b)
        return;
    for (int t = 0; t < T; t++)
        for (size_t i = 0; i < n; i++)
            y[(size_t)t * n + i] += b[i];
}

/* Below this many values an element-wise step runs on the calling thread: the one-token decode,
 * and small models, where a step is a few microseconds (about what waking the workers costs). */
#define LLM_EW_PAR_MIN (1 << 16)

/* The element-wise steps of a chunk, split over tokens: worker ith of nth takes a slice. */
struct ew_job {
    struct llm_ctx *c;
    int T;
    int layer;
    const float *w; // addnorm: the norm's weight
    bool add;       // addnorm: x += xb first (the residual of the step before)
};

/* x += xb when add, then xb = rmsnorm(x) * w, for the worker's tokens */
static void addnorm_worker(void *arg, int ith, int nth)
{
    const struct ew_job *j = arg;
    struct llm_ctx *c = j->c;
    size_t C = (size_t)c->m->hp.n_embd;
    long start, end;

    tw_pool_slice(j->T, ith, nth, &start, &end);
    for (long t = start; t < end; t++) {
        float *x = c->x + (size_t)t * C, *xb = c->xb + (size_t)t * C;
        if (j->add)
            for (size_t i = 0; i < C; i++)
                x[i] += xb[i];
        rmsnorm(xb, x, j->w, (int)C, c->m->hp.rms_eps);
    }
}

/* RoPE on the worker's tokens' q and k, then their k and v into the cache */
static void rope_store_worker(void *arg, int ith, int nth)
{
    const struct ew_job *j = arg;
    struct llm_ctx *c = j->c;
    const struct llm_hparams *hp = &c->m->hp;
    size_t qd = (size_t)hp->n_head * hp->head_dim, kvd = (size_t)hp->n_head_kv * hp->head_dim;
    long start, end;

    tw_pool_slice(j->T, ith, nth, &start, &end);
    for (long t = start; t < end; t++) {
        const float *cs = c->rope + (size_t)t * hp->n_rot;
        rope_apply(hp, c->q + (size_t)t * qd, hp->n_head, cs);
        rope_apply(hp, c->kc + (size_t)t * kvd, hp->n_head_kv, cs);
    }
    if (start < end)
        attn_store(&c->ad, (char *)c->k + (size_t)j->layer * c->k_layer * c->kv_elt,
                   (char *)c->v + (size_t)j->layer * c->v_layer * c->kv_elt,
                   c->n_past + (int)start, (int)(end - start), c->kc + (size_t)start * kvd,
                   c->vc + (size_t)start * kvd);
}

/* hb = silu(hb) * hb2 (SwiGLU) for the worker's tokens */
static void swiglu_worker(void *arg, int ith, int nth)
{
    const struct ew_job *j = arg;
    size_t F = (size_t)j->c->m->hp.n_ff;
    long start, end;

    tw_pool_slice(j->T, ith, nth, &start, &end);
    if (start < end)
        attn_silu_mul(j->c->hb + (size_t)start * F, j->c->hb2 + (size_t)start * F,
                      (size_t)(end - start) * F);
}

static void run_ew(struct llm_ctx *c, void (*fn)(void *, int, int), struct ew_job *j,
                   size_t n_values)
{
    if (n_values >= LLM_EW_PAR_MIN && j->T > 1)
        tw_pool_run(c->pool, fn, j);
    else
        fn(j, 0, 1);
}

/* Forward pass of T <= n_batch tokens at positions n_past..; logits for the last token
 * (out_all == 0) or for all T (out_all) into 'logits' when non-NULL. Each layer's FFN output
 * is added to the residual stream by the next norm (addnorm_worker). */
static void forward_chunk(struct llm_ctx *c, const int32_t *ids, int T, float *logits,
                          int out_all)
{
    const struct llm_model *m = c->m;
    const struct llm_hparams *hp = &m->hp;
    int C = hp->n_embd, F = hp->n_ff, pos0 = c->n_past;
    size_t qd = (size_t)hp->n_head * hp->head_dim, kvd = (size_t)hp->n_head_kv * hp->head_dim;
    size_t row = gguf_row_size(m->tok_embd->type, C);
    struct ew_job ew = {c, T, 0, NULL, false};
    struct attn_job job = {&c->ad, NULL, NULL, c->q, c->att, T, pos0,
                           1.0f / sqrtf((float)hp->head_dim), c->attn_scratch};

    for (int t = 0; t < T; t++) {
        const uint8_t *r = (const uint8_t *)m->tok_embd->data + (size_t)ids[t] * row;
        kq_dequant(m->tok_embd->type, r, c->x + (size_t)t * C, C);
        if (m->n_lora)
            lora_embd(m, ids[t], c->x + (size_t)t * C);
        rope_cache(m, pos0 + t, c->rope + (size_t)t * hp->n_rot);
    }
    for (int l = 0; l < hp->n_layer; l++) {
        const struct llm_layer *L = &m->layers[l];

        ew.w = L->attn_norm;
        ew.add = l > 0;
        run_ew(c, addnorm_worker, &ew, (size_t)T * C);
        matmul(c, L->wq, c->xb, T, c->q);
        matmul(c, L->wk, c->xb, T, c->kc);
        matmul(c, L->wv, c->xb, T, c->vc);
        add_bias(c->q, L->bq, T, qd);
        add_bias(c->kc, L->bk, T, kvd);
        add_bias(c->vc, L->bv, T, kvd);
        ew.layer = l;
        run_ew(c, rope_store_worker, &ew, (size_t)T * (qd + 2 * kvd));
        job.k = (const char *)c->k + (size_t)l * c->k_layer * c->kv_elt;
        job.v = (const char *)c->v + (size_t)l * c->v_layer * c->kv_elt;
        if ((int64_t)T * (pos0 + T) * (int64_t)qd >= LLM_PAR_MIN_WORK)
            tw_pool_run(c->pool, attn_run, &job);
        else
            attn_run(&job, 0, 1);
        matmul(c, L->wo, c->att, T, c->xb);

        ew.w = L->ffn_norm;
        ew.add = true;
        run_ew(c, addnorm_worker, &ew, (size_t)T * C);
        matmul(c, L->w_gate, c->xb, T, c->hb);
        matmul(c, L->w_up, c->xb, T, c->hb2);
        run_ew(c, swiglu_worker, &ew, (size_t)T * F);
        matmul(c, L->w_down, c->hb, T, c->xb);
    }
    c->n_past += T;
    if (!logits)
        return;
    ew.w = m->output_norm;
    ew.add = hp->n_layer > 0;
    if (out_all) {
        run_ew(c, addnorm_worker, &ew, (size_t)T * C);
        matmul(c, m->output, c->xb, T, logits);
    } else {
        float *x = c->x + (size_t)(T - 1) * C, *xb = c->xb + (size_t)(T - 1) * C;
        if (ew.add)
            for (int i = 0; i < C; i++)
                x[i] += xb[i];
        rmsnorm(c->xb, x, m->output_norm, C, hp->rms_eps);
        matmul(c, m->output, c->xb, 1, logits);
    }
}

int llm_decode(struct llm_ctx *c, const int32_t *ids, int n, float *logits, unsigned flags,
               struct tw_err *err)
{
    int V = c->m->hp.n_vocab;

    if (n <= 0)
        return tw_errf(err, TW_EINVAL, "decode needs at least one token, got %d", n);
    if (n > c->n_ctx - c->n_past)
        return tw_errf(err, TW_ELIMIT,
                       "context full: %d tokens in the cache + %d new exceed the context of %d; "
                       "use a larger context (-c) or a shorter prompt",
                       c->n_past, n, c->n_ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return tw_errf(err, TW_EINVAL, "token id %d at position %d is outside the vocabulary of %d",
                           (int)ids[i], i, V);
    for (int done = 0; done < n;) {
        int T = n - done < c->n_batch ? n - done : c->n_batch;
        float *out = NULL;
        if (logits && (flags & LLM_LOGITS_ALL))
            out = logits + (size_t)done * V;
        else if (logits && done + T == n)
            out = logits;
        forward_chunk(c, ids + done, T, out, (flags & LLM_LOGITS_ALL) != 0);
        done += T;
    }
    return TW_OK;
}
