/* enc.c - the BERT encoder (see enc.h). */
#include "nn/enc.h"

#include "base/mem.h"
#include "nn/kq.h"
#include "nn/weights.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define ENC_MAX_LAYERS 256
#define ENC_MAX_EMBD 16384
#define ENC_MAX_CTX 65536

struct enc_layer {
    const struct gguf_tensor *wq, *wk, *wv, *wo, *up, *down;
    const float *bq, *bk, *bv, *bo, *bup, *bdown; // biases (zeros when the file has none)
    const float *ln1_w, *ln1_b;                   // attn_output_norm
    const float *ln2_w, *ln2_b;                   // layer_output_norm
};

struct enc_model {
    struct enc_hparams hp;
    struct gguf_file *owned; // when loaded from a path
    const struct gguf_file *f;
    const struct gguf_tensor *tok_embd, *type_embd, *pos_embd;
    const float *ln0_w, *ln0_b;
    struct enc_layer *layers;
    float *f32; // all vectors, one allocation
    size_t f32_used, f32_cap;
};

/* ---- GELU as llama.cpp computes it on the CPU ---- */

static float gelu_table[1 << 16]; // GELU of every F16 input, rounded to F16, stored as F32
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

static float gelu_f32(float x)
{
    const float sqrt_2_over_pi = 0.79788456080286535587989211986876f;
    const float coef_a = 0.044715f;
    return 0.5f * x * (1.0f + tanhf(sqrt_2_over_pi * x * (1.0f + coef_a * x * x)));
}

static void gelu_init(void)
{
    for (uint32_t i = 0; i < (1u << 16); i++)
        gelu_table[i] = kq_f16_to_f32(kq_f32_to_f16(gelu_f32(kq_f16_to_f32((uint16_t)i))));
}

float enc_gelu(float x)
{
    pthread_once(&gelu_once, gelu_init);
    if (x <= -10.0f)
        return 0.0f;
    if (x >= 10.0f)
        return x;
    return gelu_table[kq_f32_to_f16(x)];
}

/* ---- loading ---- */

static int get_int(const struct gguf_file *f, const char *key, int64_t def, int64_t lo,
                   int64_t hi, int *out, struct tw_err *err)
{
    int64_t v;
    int rc = gguf_get_i64(f, key, def, &v, err);
    if (rc < 0)
        return rc;
    if (v < lo || v > hi)
        return tw_errf(err, TW_EFORMAT, "'%s' is %lld, expected %lld..%lld", key, (long long)v,
                       (long long)lo, (long long)hi);
    *out = (int)v;
    return 0;
}

static int load_hparams(struct enc_model *m, struct tw_err *err)
{
    struct enc_hparams *hp = &m->hp;
    struct gguf_str arch;
    int pooling = ENC_POOL_MEAN, rc;

    if ((rc = gguf_get_str(m->f, "general.architecture", &arch, err)) < 0)
        return rc;
    if (!arch.ptr || arch.len != 4 || memcmp(arch.ptr, "bert", 4))
        return tw_errf(err, TW_EUNSUP, "architecture '%.*s' is not an encoder we support (bert)",
                       arch.ptr ? (int)(arch.len > 64 ? 64 : arch.len) : 4,
                       arch.ptr ? arch.ptr : "none");
    if ((rc = get_int(m->f, "bert.block_count", -1, 1, ENC_MAX_LAYERS, &hp->n_layer, err)) ||
        (rc = get_int(m->f, "bert.embedding_length", -1, 1, ENC_MAX_EMBD, &hp->n_embd, err)) ||
        (rc = get_int(m->f, "bert.context_length", 512, 1, ENC_MAX_CTX, &hp->n_ctx, err)) ||
        (rc = get_int(m->f, "bert.feed_forward_length", -1, 1, 4 * ENC_MAX_EMBD, &hp->n_ff,
                      err)) ||
        (rc = get_int(m->f, "bert.attention.head_count", -1, 1, 1024, &hp->n_head, err)) ||
        (rc = get_int(m->f, "tokenizer.ggml.token_type_count", 2, 1, 64, &hp->n_token_types,
                      err)) ||
        (rc = get_int(m->f, "bert.pooling_type", ENC_POOL_MEAN, 0, 4, &pooling, err)))
        return rc;
    if ((rc = gguf_get_f32(m->f, "bert.attention.layer_norm_epsilon", 1e-12f, &hp->ln_eps, err)))
        return rc;
    if (hp->n_embd % hp->n_head)
        return tw_errf(err, TW_EFORMAT, "embedding length %d is not a multiple of %d heads",
                       hp->n_embd, hp->n_head);
    if (pooling != ENC_POOL_MEAN && pooling != ENC_POOL_CLS && pooling != ENC_POOL_NONE)
        return tw_errf(err, TW_EUNSUP, "pooling type %d is not supported (0 none, 1 mean, 2 cls)",
                       pooling);
    hp->pooling = pooling == ENC_POOL_NONE ? ENC_POOL_MEAN : (enum enc_pooling)pooling;
    return 0;
}

/* A vector tensor decoded into the model's F32 area; zeros when optional and absent. */
static const float *vec(struct enc_model *m, const char *name, int64_t n, bool required, int *rc,
                        struct tw_err *err)
{
    const struct gguf_tensor *t = nn_weight(m->f, name, n, 1, required, rc, err);
    float *dst;
    if (*rc)
        return NULL;
    if (m->f32_used + (size_t)n > m->f32_cap) {
        *rc = tw_errf(err, TW_EINTERNAL, "no room for tensor '%s'", name);
        return NULL;
    }
    dst = m->f32 + m->f32_used;
    m->f32_used += (size_t)n;
    if (t)
        kq_dequant(t->type, t->data, dst, n);
    else
        memset(dst, 0, (size_t)n * sizeof(*dst));
    return dst;
}

static int load_tensors(struct enc_model *m, struct tw_err *err)
{
    const struct enc_hparams *hp = &m->hp;
    const int64_t C = hp->n_embd, F = hp->n_ff;
    char name[96];
    int rc;

    m->tok_embd = gguf_find_tensor(m->f, "token_embd.weight");
    if (!m->tok_embd)
        return tw_errf(err, TW_EFORMAT, "tensor 'token_embd.weight' is missing");
    m->hp.n_vocab = (int)(m->tok_embd->ne[1] > 0 && m->tok_embd->ne[1] < (1 << 24)
                              ? m->tok_embd->ne[1]
                              : 0);
    if (!nn_weight(m->f, "token_embd.weight", C, m->hp.n_vocab, true, &rc, err))
        return rc;
    if (!(m->type_embd = nn_weight(m->f, "token_types.weight", C, hp->n_token_types, true, &rc,
                                   err)) ||
        !(m->pos_embd = nn_weight(m->f, "position_embd.weight", C, hp->n_ctx, true, &rc, err)))
        return rc;
    m->f32_cap = (size_t)(4 + hp->n_layer * 12) * (size_t)(C > F ? C : F);
    m->f32 = tw_mallocarray(m->f32_cap, sizeof(float));
    m->layers = tw_calloc((size_t)hp->n_layer, sizeof(*m->layers));
    if (!m->f32 || !m->layers)
        return tw_errf(err, TW_ENOMEM, "out of memory loading the encoder");
    m->ln0_w = vec(m, "token_embd_norm.weight", C, true, &rc, err);
    if (!rc)
        m->ln0_b = vec(m, "token_embd_norm.bias", C, true, &rc, err);
    for (int l = 0; l < hp->n_layer && !rc; l++) {
        struct enc_layer *L = &m->layers[l];
#define W(field, suffix, ne0, ne1)                                                                 \
    do {                                                                                           \
        snprintf(name, sizeof(name), "blk.%d.%s", l, suffix);                                      \
        if (!(L->field = nn_weight(m->f, name, ne0, ne1, true, &rc, err)))                         \
            return rc;                                                                             \
    } while (0)
#define V(field, suffix, n, req)                                                                   \
    do {                                                                                           \
        snprintf(name, sizeof(name), "blk.%d.%s", l, suffix);                                      \
        L->field = vec(m, name, n, req, &rc, err);                                                 \
        if (rc)                                                                                    \
            return rc;                                                                             \
    } while (0)
        W(wq, "attn_q.weight", C, C);
        W(wk, "attn_k.weight", C, C);
        W(wv, "attn_v.weight", C, C);
        W(wo, "attn_output.weight", C, C);
        W(up, "ffn_up.weight", C, F);
        W(down, "ffn_down.weight", F, C);
        V(bq, "attn_q.bias", C, false);
        V(bk, "attn_k.bias", C, false);
        V(bv, "attn_v.bias", C, false);
        V(bo, "attn_output.bias", C, false);
        V(bup, "ffn_up.bias", F, false);
        V(bdown, "ffn_down.bias", C, false);
        V(ln1_w, "attn_output_norm.weight", C, true);
        V(ln1_b, "attn_output_norm.bias", C, true);
        V(ln2_w, "layer_output_norm.weight", C, true);
        V(ln2_b, "layer_output_norm.bias", C, true);
#undef W
#undef V
    }
    return rc;
}

int enc_model_from_gguf(const struct gguf_file *f, struct enc_model **out, struct tw_err *err)
{
    struct enc_model *m;
    int rc;

    *out = NULL;
    m = tw_calloc(1, sizeof(*m));
    if (!m)
        return tw_errf(err, TW_ENOMEM, "out of memory loading the encoder");
    m->f = f;
    if ((rc = load_hparams(m, err)) < 0 || (rc = load_tensors(m, err)) < 0) {
        enc_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int enc_model_load(const char *path, struct enc_model **out, struct tw_err *err)
{
    struct gguf_file *f;
    int rc;

    *out = NULL;
    if ((rc = gguf_open(path, &f, err)) < 0)
        return rc;
    if ((rc = enc_model_from_gguf(f, out, err)) < 0) {
        gguf_close(f);
        return tw_err_ctx(err, "'%s'", path);
    }
    (*out)->owned = f;
    return 0;
}

void enc_model_free(struct enc_model *m)
{
    if (!m)
        return;
    tw_free(m->layers);
    tw_free(m->f32);
    gguf_close(m->owned);
    tw_free(m);
}

const struct enc_hparams *enc_model_hparams(const struct enc_model *m)
{
    return &m->hp;
}

const struct gguf_file *enc_model_gguf(const struct enc_model *m)
{
    return m->f;
}

/* ---- forward ---- */

/* One row of an embedding table (any supported type) as floats. */
static void embd_row(const struct gguf_tensor *t, int64_t row, float *dst)
{
    size_t rs = gguf_row_size(t->type, t->ne[0]);
    kq_dequant(t->type, (const char *)t->data + (size_t)row * rs, dst, t->ne[0]);
}

/* ggml_norm: mean and variance accumulated in double, then scale, weight and bias in float. */
static void layernorm(float *x, int n, const float *w, const float *b, float eps)
{
    double sum = 0, sum2 = 0;
    float mean, scale;
    for (int i = 0; i < n; i++)
        sum += (double)x[i];
    mean = (float)(sum / n);
    for (int i = 0; i < n; i++) {
        float v = x[i] - mean;
        x[i] = v;
        sum2 += (double)(v * v);
    }
    scale = 1.0f / sqrtf((float)(sum2 / n) + eps);
    for (int i = 0; i < n; i++)
        x[i] = x[i] * scale * w[i] + b[i];
}

/* The per-token work between matmuls, split across the pool by tokens:
 *   EPI_BIAS3   q, k, v += their biases
 *   EPI_RES_LN  x = layernorm(x + y + b)        (after the output and down projections)
 *   EPI_GELU    ff = gelu(ff + b) */
enum epi_op { EPI_BIAS3, EPI_RES_LN, EPI_GELU };

struct epi_job {
    enum epi_op op;
    int T, n; // tokens, row width
    float *x, *y, *z;
    const float *b0, *b1, *b2, *w, *lb; // biases; layernorm weight and bias
    float eps;
};

static void epi_worker(void *arg, int ith, int nth)
{
    const struct epi_job *j = arg;
    long t0, t1;
    tw_pool_slice(j->T, ith, nth, &t0, &t1);
    for (long t = t0; t < t1; t++) {
        const size_t o = (size_t)t * j->n;
        switch (j->op) {
        case EPI_BIAS3:
            for (int i = 0; i < j->n; i++) {
                j->x[o + i] += j->b0[i];
                j->y[o + i] += j->b1[i];
                j->z[o + i] += j->b2[i];
            }
            break;
        case EPI_RES_LN:
            for (int i = 0; i < j->n; i++)
                j->x[o + i] += j->y[o + i] + j->b0[i];
            layernorm(j->x + o, j->n, j->w, j->lb, j->eps);
            break;
        case EPI_GELU:
            for (int i = 0; i < j->n; i++)
                j->x[o + i] = enc_gelu(j->x[o + i] + j->b0[i]);
            break;
        }
    }
}

struct attn_job {
    const float *q, *k, *v; // [T][C]
    float *out;             // [T][C]
    const int *seq_start;   // per token: first token of its sequence
    const int *seq_end;     // per token: one past its sequence's last token
    int T, C, n_head, max_len;
    float *scratch;         // nth * max_len floats
};

static void attn_worker(void *arg, int ith, int nth)
{
    struct attn_job *j = arg;
    const int d = j->C / j->n_head;
    const float scale = 1.0f / sqrtf((float)d);
    float *p = j->scratch + (size_t)ith * j->max_len;
    long t0, t1;

    tw_pool_slice(j->T, ith, nth, &t0, &t1);
    for (long t = t0; t < t1; t++) {
        const int s0 = j->seq_start[t], s1 = j->seq_end[t];
        for (int h = 0; h < j->n_head; h++) {
            const float *q = j->q + (size_t)t * j->C + (size_t)h * d;
            float *o = j->out + (size_t)t * j->C + (size_t)h * d;
            float mx = -INFINITY;
            double sum = 0;
            for (int u = s0; u < s1; u++) {
                const float *k = j->k + (size_t)u * j->C + (size_t)h * d;
                float dot = 0;
                for (int i = 0; i < d; i++)
                    dot += q[i] * k[i];
                p[u - s0] = dot * scale;
                if (p[u - s0] > mx)
                    mx = p[u - s0];
            }
            for (int u = 0; u < s1 - s0; u++) {
                p[u] = expf(p[u] - mx);
                sum += (double)p[u];
            }
            memset(o, 0, (size_t)d * sizeof(*o));
            for (int u = s0; u < s1; u++) {
                const float *v = j->v + (size_t)u * j->C + (size_t)h * d;
                const float wgt = (float)(p[u - s0] / sum);
                for (int i = 0; i < d; i++)
                    o[i] += wgt * v[i];
            }
        }
    }
}

static void matmul(const struct gguf_tensor *w, const float *x, int T, float *y,
                   struct tw_pool *pool)
{
    kq_matmul(w->type, w->data, w->ne[0], w->ne[1], x, T, y, pool);
}

int enc_encode(const struct enc_model *m, const int32_t *const *ids, const int *n_ids, int n_seq,
               enum enc_pooling pooling, bool normalize, float *pooled, float *hidden,
               struct tw_pool *pool, struct tw_err *err)
{
    const struct enc_hparams *hp = &m->hp;
    const int C = hp->n_embd, F = hp->n_ff;
    int T = 0, max_len = 0, nth = pool ? tw_pool_size(pool) : 1;
    float *x = NULL, *q = NULL, *k = NULL, *v = NULL, *a = NULL, *ff = NULL, *scratch = NULL;
    int *seq_start = NULL, *seq_end = NULL;
    float *row = NULL;
    int rc = 0;

    if (n_seq <= 0)
        return tw_errf(err, TW_EINVAL, "no sequences to encode");
    for (int s = 0; s < n_seq; s++) {
        if (n_ids[s] < 1)
            return tw_errf(err, TW_EINVAL, "sequence %d is empty", s);
        if (n_ids[s] > hp->n_ctx)
            return tw_errf(err, TW_ELIMIT, "sequence %d has %d tokens, the model takes at most %d",
                           s, n_ids[s], hp->n_ctx);
        for (int i = 0; i < n_ids[s]; i++)
            if (ids[s][i] < 0 || ids[s][i] >= hp->n_vocab)
                return tw_errf(err, TW_EINVAL, "token id %d is outside the vocabulary (%d)",
                               ids[s][i], hp->n_vocab);
        if (T > (1 << 24) - n_ids[s])
            return tw_errf(err, TW_ELIMIT, "too many tokens in one batch");
        T += n_ids[s];
        if (n_ids[s] > max_len)
            max_len = n_ids[s];
    }
    if (pooling == ENC_POOL_NONE)
        pooling = hp->pooling;
    x = tw_mallocarray((size_t)T * C, sizeof(float));
    q = tw_mallocarray((size_t)T * C, sizeof(float));
    k = tw_mallocarray((size_t)T * C, sizeof(float));
    v = tw_mallocarray((size_t)T * C, sizeof(float));
    a = tw_mallocarray((size_t)T * C, sizeof(float));
    ff = tw_mallocarray((size_t)T * F, sizeof(float));
    scratch = tw_mallocarray((size_t)nth * max_len, sizeof(float));
    seq_start = tw_mallocarray((size_t)T, sizeof(int));
    seq_end = tw_mallocarray((size_t)T, sizeof(int));
    row = tw_mallocarray((size_t)C, sizeof(float));
    if (!x || !q || !k || !v || !a || !ff || !scratch || !seq_start || !seq_end || !row) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory encoding %d tokens", T);
        goto out;
    }

    /* Embeddings: token + type 0 + position, then LayerNorm. */
    for (int s = 0, t = 0; s < n_seq; s++) {
        int t0 = t;
        for (int i = 0; i < n_ids[s]; i++, t++) {
            float *xt = x + (size_t)t * C;
            seq_start[t] = t0;
            seq_end[t] = t0 + n_ids[s];
            embd_row(m->tok_embd, ids[s][i], xt);
            embd_row(m->type_embd, 0, row);
            for (int c = 0; c < C; c++)
                xt[c] += row[c];
            embd_row(m->pos_embd, i, row);
            for (int c = 0; c < C; c++)
                xt[c] += row[c];
            layernorm(xt, C, m->ln0_w, m->ln0_b, hp->ln_eps);
        }
    }

    for (int l = 0; l < hp->n_layer; l++) {
        const struct enc_layer *L = &m->layers[l];
        struct attn_job job = {q, k, v, a, seq_start, seq_end, T, C, hp->n_head, max_len, scratch};
        matmul(L->wq, x, T, q, pool);
        matmul(L->wk, x, T, k, pool);
        matmul(L->wv, x, T, v, pool);
        struct epi_job bias = {EPI_BIAS3, T, C, q, k, v, L->bq, L->bk, L->bv, NULL, NULL, 0};
        struct epi_job ln1 = {EPI_RES_LN, T, C, x, q, NULL, L->bo, NULL, NULL,
                              L->ln1_w, L->ln1_b, hp->ln_eps};
        struct epi_job gelu = {EPI_GELU, T, F, ff, NULL, NULL, L->bup, NULL, NULL, NULL, NULL, 0};
        struct epi_job ln2 = {EPI_RES_LN, T, C, x, q, NULL, L->bdown, NULL, NULL,
                              L->ln2_w, L->ln2_b, hp->ln_eps};
        tw_pool_run(pool, epi_worker, &bias);
        tw_pool_run(pool, attn_worker, &job);
        matmul(L->wo, a, T, q, pool); /* q is free again: attention output projection */
        tw_pool_run(pool, epi_worker, &ln1);
        matmul(L->up, x, T, ff, pool);
        tw_pool_run(pool, epi_worker, &gelu);
        matmul(L->down, ff, T, q, pool);
        tw_pool_run(pool, epi_worker, &ln2);
    }

    if (hidden)
        memcpy(hidden, x, (size_t)T * C * sizeof(float));
    for (int s = 0, t = 0; s < n_seq; t += n_ids[s], s++) {
        float *p = pooled + (size_t)s * C;
        if (pooling == ENC_POOL_CLS) {
            memcpy(p, x + (size_t)t * C, (size_t)C * sizeof(float));
        } else {
            const float w = 1.0f / (float)n_ids[s];
            memset(p, 0, (size_t)C * sizeof(float));
            for (int i = 0; i < n_ids[s]; i++)
                for (int c = 0; c < C; c++)
                    p[c] += x[(size_t)(t + i) * C + c] * w;
        }
        if (normalize) {
            double norm = 0;
            for (int c = 0; c < C; c++)
                norm += (double)p[c] * p[c];
            norm = sqrt(norm);
            if (norm > 0)
                for (int c = 0; c < C; c++)
                    p[c] = (float)(p[c] / norm);
        }
    }
out:
    tw_free(x);
    tw_free(q);
    tw_free(k);
    tw_free(v);
    tw_free(a);
    tw_free(ff);
    tw_free(scratch);
    tw_free(seq_start);
    tw_free(seq_end);
    tw_free(row);
    return rc;
}
