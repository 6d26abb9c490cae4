/* train_model.c - a Llama-family decoder assembled from the training ops: a forward that saves
 * its activations, a backward that adds into the trainable tensors' gradients, and LoRA adapters
 * over a frozen base.
 *
 * Like train_ops.c this text is compiled twice: as is (struct train_llama, floats) and from
 * train_model_f64.c (struct train_llama_f64, doubles), so gradient checks run the very same
 * graph in double. Contracts in train.h.
 *
 * Tensors live in params[], in this order (L layers, n_lt = 9, or 12 with QKV biases, each):
 *
 *   0                   token_embd            [V][C]
 *   1 + n_lt l + 0..8   attn_norm [C], attn_q [Hq*hd][C], attn_k [Hkv*hd][C], attn_v [Hkv*hd][C],
 *                       attn_output [C][Hq*hd], ffn_norm [C], ffn_gate [F][C], ffn_up [F][C],
 *                       ffn_down [C][F]
 *               9..11   attn_q.bias [Hq*hd], attn_k.bias [Hkv*hd], attn_v.bias [Hkv*hd]
 *   1 + n_lt L          output_norm           [C]
 *   2 + n_lt L          output                [V][C]   (absent when tied)
 *   then per layer and target (q k v o gate up down order): lora_a [r][n_in], lora_b [n_out][r]
 *
 * Base values, gradients and moments are three carved allocations (weights: one block; g, m, v:
 * one block of 3x the size); adapters get their own block of 4x their size. A frozen base
 * matrix may instead be used in place in any kq type (train_llama_set_frozen: QLoRA); the f32
 * graph then goes through train_qmatmul_fwd/_bwd_x, and the f64 twin gets its dequantized
 * values.
 */
#include "nn/train.h"

#include "base/mem.h"
#include "nn/kq.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#ifdef TRAIN_F64
typedef double treal;
#define OP(name) name##_f64
#define LL(name) train_llama_f64_##name
#define LLAMA    train_llama_f64
#define PARAM    train_param_f64
#else
typedef float treal;
#define OP(name) name
#define LL(name) train_llama_##name
#define LLAMA    train_llama
#define PARAM    train_param
#endif

#ifdef TRAIN_F64
#define HAS_QDATA(p) 0
#else
#define HAS_QDATA(p) ((p)->qdata != NULL)
#endif

/* Attention state kept per layer for the backward: the f32 graph keeps each row's log-sum-exp
 * and recomputes the probabilities (train_attn_bwd_kq); the f64 twin keeps the probabilities. */
#ifdef TRAIN_F64
#define ATT_SAVED(n_seq, H, T) ((size_t)(n_seq) * (size_t)(H) * (size_t)(T) * (size_t)(T))
#else
#define ATT_SAVED(n_seq, H, T) ((size_t)(n_seq) * (size_t)(H) * (size_t)(T))
#endif

#define N_LAYER_T 12 // per layer at most: 9 weights + 3 biases
#define N_TARGET  7

/* Target bit k adapts layer tensor target_tensor[k]. */
static const int target_tensor[N_TARGET] = {1, 2, 3, 4, 6, 7, 8};
static const char *const layer_names[N_LAYER_T] = {
    "attn_norm.weight",   "attn_q.weight",   "attn_k.weight",   "attn_v.weight",
    "attn_output.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
    "ffn_down.weight",    "attn_q.bias",     "attn_k.bias",     "attn_v.bias"};

struct lora_slot {
    int pa, pb;  // param indices of A and B; 0 when this slot has no adapter
    treal *u;    // saved A x, [n_tok][r]
    treal *drop; // saved dropout multipliers, [n_tok][n_in], or NULL
};

struct layer_acts {
    treal *xn1, *rstd1, *q, *k, *v, *ao, *hmid, *xn2, *rstd2, *g, *u, *h;
    treal *att; // f32: log-sum-exp per (seq, head, row); f64: probabilities (ATT_SAVED)
};

struct LLAMA {
    struct train_llama_cfg cfg;
    int hd, n_rot, qd, kvd; // head dim, rotated dims, Hq*hd, Hkv*hd
    int n_lt;               // tensors per layer (9, or 12 with QKV biases)
    struct train_rope_cfg rope;
    float *rope_freqs; // owned copy of cfg->rope_freqs, or NULL
    struct tw_pool *pool;

    struct PARAM *params;
    int n_params;
    int n_base;        // tensors before the adapters
    char (*names)[64]; // params[i].name storage
    treal *base_w;     // one block for the base weights
    treal *base_gmv;   // g, m, v of the base (NULL once frozen)
    treal *lora_block; // w, g, m, v of the adapters
    unsigned lora_targets;
    int lora_r;
    float lora_alpha, lora_dropout;
    treal lora_scale;
    int drop_on;            // the last forward applied dropout (had an rng)
    struct lora_slot *lora; // [n_layer][N_TARGET]

    /* activations of the last forward, sized for cap_tok tokens and cap_att probabilities */
    treal *acts;
    size_t cap_tok, cap_att;
    int cap_T;
    int cap_nth; // threads the attention scratch is sized for (f32)
    int n_seq, T, have_fwd;
    int32_t *tokens, *targets, *pos;
    uint8_t *mask;
    int has_mask;
    treal *res;                 // residual stream, [n_layer + 1][n_tok][C]
    struct layer_acts *la;      // [n_layer]
    treal *xnf, *rstdf, *probs; // final norm, its rstd, softmax [n_tok][V]
    /* backward scratch */
    treal *dres, *dhmid, *dxn, *dq, *dk, *dv, *dao, *dg, *du, *dh, *dlogits;
    treal *mm_scratch; // train_matmul_bwd_kq's (f32 only)
    treal *at_scratch; // train_attn_*_kq's (f32 only)
    treal *lo_scratch; // train_lora_*_kq's (f32 only)
};

/* n_in and n_out of layer matrix j. */
static void layer_dims(const struct LLAMA *m, int j, int *n_in, int *n_out)
{
    int C = m->cfg.n_embd, F = m->cfg.n_ff;
    static const int out_kind[N_LAYER_T] = {0, 1, 2, 2, 3, 0, 4, 4, 3, 1, 2, 2};
    *n_in = j == 4 ? m->qd : j == 8 ? F : C;
    switch (out_kind[j]) {
    case 1:
        *n_out = m->qd;
        break;
    case 2:
        *n_out = m->kvd;
        break;
    case 4:
        *n_out = F;
        break;
    default:
        *n_out = C;
    }
}

static int cfg_check(const struct train_llama_cfg *c, struct tw_err *err)
{
#define CFG_RANGE(field, lo, hi)                                                                   \
    if (c->field < (lo) || c->field > (hi))                                                        \
        return tw_errf(err, TW_EINVAL, "model config: %s = %d, expected %d..%d", #field,           \
                       (int)c->field, (int)(lo), (int)(hi));
    CFG_RANGE(n_vocab, 1, TRAIN_LLAMA_MAX_VOCAB)
    CFG_RANGE(n_embd, 1, TRAIN_LLAMA_MAX_DIM)
    CFG_RANGE(n_layer, 1, TRAIN_LLAMA_MAX_LAYER)
    CFG_RANGE(n_head, 1, c->n_embd)
    CFG_RANGE(n_head_kv, 1, c->n_head)
    CFG_RANGE(n_ff, 1, TRAIN_LLAMA_MAX_DIM)
#undef CFG_RANGE
    if (c->n_embd % c->n_head)
        return tw_errf(err, TW_EINVAL, "model config: n_embd %d is not a multiple of n_head %d",
                       c->n_embd, c->n_head);
    if (c->n_head % c->n_head_kv)
        return tw_errf(err, TW_EINVAL, "model config: n_head %d is not a multiple of n_head_kv %d",
                       c->n_head, c->n_head_kv);
    if (c->n_rot < 0 || c->n_rot > c->n_embd / c->n_head || c->n_rot % 2)
        return tw_errf(err, TW_EINVAL, "model config: n_rot %d must be even and <= head dim %d",
                       c->n_rot, c->n_embd / c->n_head);
    if (c->rope_type != TRAIN_ROPE_NORM && c->rope_type != TRAIN_ROPE_NEOX)
        return tw_errf(err, TW_EINVAL, "model config: unknown rope type %d", (int)c->rope_type);
    if (!(c->rope_base > 0) || !(c->norm_eps > 0) || !(c->rope_freq_scale >= 0))
        return tw_errf(err, TW_EINVAL,
                       "model config: rope_base and norm_eps must be positive, "
                       "rope_freq_scale not negative");
    for (int i = 0; c->rope_freqs && i < (c->n_rot ? c->n_rot : c->n_embd / c->n_head) / 2; i++)
        if (!(c->rope_freqs[i] > 0))
            return tw_errf(err, TW_EINVAL, "model config: rope_freqs[%d] = %g, must be positive", i,
                           (double)c->rope_freqs[i]);
    return TW_OK;
}

static int grow_params(struct LLAMA *m, int n, struct tw_err *err)
{
    struct PARAM *p = tw_reallocarray(m->params, (size_t)n, sizeof(*p));
    char(*names)[64];
    if (!p)
        return tw_errf(err, TW_ENOMEM, "out of memory for %d model tensors", n);
    m->params = p;
    names = tw_reallocarray(m->names, (size_t)n, sizeof(*names));
    if (!names)
        return tw_errf(err, TW_ENOMEM, "out of memory for %d model tensors", n);
    m->names = names;
    for (int i = 0; i < m->n_params; i++) // names moved: re-point
        m->params[i].name = m->names[i];
    return TW_OK;
}

/* A tensor of GGUF shape [ne0, ne1] (ne1 = 1 for vectors). */
static void add_param(struct LLAMA *m, const char *name, int ne0, int ne1, int decay)
{
    struct PARAM *p = &m->params[m->n_params];
    /* Tensor names are at most 63 bytes (GGUF's limit), so the copy never cuts one. */
    size_t len = strnlen(name, sizeof(m->names[0]) - 1);
    memcpy(m->names[m->n_params], name, len);
    m->names[m->n_params][len] = '\0';
    memset(p, 0, sizeof(*p));
    p->name = m->names[m->n_params];
    p->ne[0] = ne0;
    p->ne[1] = ne1;
    p->n = (size_t)ne0 * (size_t)ne1;
    p->decay = decay;
    m->n_params++;
}

static int is_matrix(const char *name)
{
    return !strstr(name, "_norm.") && !strstr(name, ".bias");
}

/* frozen: no gradients or moments, and no values for the matrices (each gets an in-place
 * weight from train_llama_set_frozen). */
static int llama_create(const struct train_llama_cfg *cfg, uint64_t seed, int frozen,
                        struct LLAMA **out, struct tw_err *err)
{
    struct LLAMA *m;
    struct train_rng rng;
    size_t total = 0, off = 0;
    int rc, n_base;
    char name[64];

    *out = NULL;
    rc = cfg_check(cfg, err);
    if (rc < 0)
        return rc;
    m = tw_calloc(1, sizeof(*m));
    if (!m)
        return tw_errf(err, TW_ENOMEM, "out of memory for a model");
    m->cfg = *cfg;
    m->hd = cfg->n_embd / cfg->n_head;
    m->n_rot = cfg->n_rot ? cfg->n_rot : m->hd;
    m->qd = cfg->n_head * m->hd;
    m->kvd = cfg->n_head_kv * m->hd;
    m->n_lt = cfg->qkv_bias ? 12 : 9;
    m->rope = (struct train_rope_cfg){cfg->rope_type, m->n_rot, cfg->rope_base,
                                      cfg->rope_freq_scale > 0 ? cfg->rope_freq_scale : 1.0f, NULL};
    if (cfg->rope_freqs) {
        m->rope_freqs = tw_mallocarray((size_t)m->n_rot / 2, sizeof(float));
        if (!m->rope_freqs) {
            rc = tw_errf(err, TW_ENOMEM, "out of memory for rope frequencies");
            goto fail;
        }
        memcpy(m->rope_freqs, cfg->rope_freqs, (size_t)m->n_rot / 2 * sizeof(float));
        m->rope.freq_factors = m->rope_freqs;
    }
    m->cfg.rope_freqs = m->rope_freqs;
    n_base = 2 + m->n_lt * cfg->n_layer + !cfg->tied_output;
    rc = grow_params(m, n_base, err);
    if (rc < 0)
        goto fail;
    add_param(m, "token_embd.weight", cfg->n_embd, cfg->n_vocab, 1);
    for (int l = 0; l < cfg->n_layer; l++)
        for (int j = 0; j < m->n_lt; j++) {
            int n_in, n_out;
            layer_dims(m, j, &n_in, &n_out);
            snprintf(name, sizeof(name), "blk.%d.%s", l, layer_names[j]);
            if (j == 0 || j == 5 || j >= 9)
                add_param(m, name, n_out, 1, 0); // norms [C], biases [n_out]
            else
                add_param(m, name, n_in, n_out, 1);
        }
    add_param(m, "output_norm.weight", cfg->n_embd, 1, 0);
    if (!cfg->tied_output)
        add_param(m, "output.weight", cfg->n_embd, cfg->n_vocab, 1);
    m->n_base = m->n_params;
    for (int i = 0; i < m->n_params; i++)
        if (!frozen || !is_matrix(m->params[i].name))
            total += m->params[i].n; // dims <= 2^16, vocab <= 2^20, layers <= 256: no overflow
    m->base_w = tw_mallocarray(total, sizeof(treal));
    m->base_gmv = frozen ? NULL : tw_calloc(total * 3, sizeof(treal));
    if (!m->base_w || (!frozen && !m->base_gmv)) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory for %zu model parameters", total);
        goto fail;
    }
    train_rng_seed(&rng, seed);
    for (int i = 0; i < m->n_params; i++) {
        struct PARAM *p = &m->params[i];
        int is_norm = strstr(p->name, "_norm.") != NULL, is_bias = strstr(p->name, ".bias") != NULL;
        if (frozen && is_matrix(p->name))
            continue;
        p->w = m->base_w + off;
        if (!frozen) {
            p->g = m->base_gmv + off;
            p->m = m->base_gmv + total + off;
            p->v = m->base_gmv + 2 * total + off;
        }
        for (size_t k = 0; k < p->n; k++)
            p->w[k] = is_norm ? (treal)1 : is_bias ? 0 : (treal)(0.02 * train_rng_normal(&rng));
        off += p->n;
    }
    *out = m;
    return TW_OK;
fail:
    LL(free)(m);
    return rc;
}

int LL(new)(const struct train_llama_cfg *cfg, uint64_t seed, struct LLAMA **out,
            struct tw_err *err)
{
    return llama_create(cfg, seed, 0, out, err);
}

#ifndef TRAIN_F64
int train_llama_new_frozen(const struct train_llama_cfg *cfg, struct train_llama **out,
                           struct tw_err *err)
{
    return llama_create(cfg, 0, 1, out, err);
}
#endif

void LL(free)(struct LLAMA *m)
{
    if (!m)
        return;
    tw_free(m->acts);
    tw_free(m->la);
    tw_free(m->lora);
    tw_free(m->lora_block);
    tw_free(m->base_gmv);
    tw_free(m->base_w);
    tw_free(m->rope_freqs);
    tw_free(m->names);
    tw_free(m->params);
    tw_free(m);
}

struct PARAM *LL(params)(const struct LLAMA *m, int *n_params)
{
    *n_params = m->n_params;
    return m->params;
}

void LL(set_pool)(struct LLAMA *m, struct tw_pool *pool)
{
    m->pool = pool;
}

#ifndef TRAIN_F64
const struct train_llama_cfg *train_llama_config(const struct train_llama *m)
{
    return &m->cfg;
}

int train_llama_lora(const struct train_llama *m, unsigned *targets, int *r, float *alpha,
                     float *dropout)
{
    if (!m->lora_targets)
        return 0;
    if (targets)
        *targets = m->lora_targets;
    if (r)
        *r = m->lora_r;
    if (alpha)
        *alpha = m->lora_alpha;
    if (dropout)
        *dropout = m->lora_dropout;
    return 1;
}
#endif

/* ---- LoRA ---- */

int LL(add_lora)(struct LLAMA *m, unsigned targets, int r, float alpha, float dropout,
                 uint64_t seed, struct tw_err *err)
{
    struct train_rng rng;
    size_t total = 0, off = 0;
    int n_new = 0, rc, first;
    char name[96];

    if (m->lora_targets)
        return tw_errf(err, TW_ESTATE, "the model already has LoRA adapters");
    if (!targets || (targets & ~(unsigned)TRAIN_LORA_ALL))
        return tw_errf(err, TW_EINVAL, "LoRA targets 0x%x: expected a non-empty subset of 0x%x",
                       targets, (unsigned)TRAIN_LORA_ALL);
    if (r < 1 || r > TRAIN_LORA_MAX_RANK)
        return tw_errf(err, TW_EINVAL, "LoRA rank %d, expected 1..%d", r, TRAIN_LORA_MAX_RANK);
    if (!(alpha > 0) || !(dropout >= 0 && dropout < 1))
        return tw_errf(err, TW_EINVAL, "LoRA alpha %g must be > 0 and dropout %g in [0, 1)",
                       (double)alpha, (double)dropout);
    for (int k = 0; k < N_TARGET; k++)
        n_new += (targets >> k) & 1;
    n_new *= 2 * m->cfg.n_layer;
    m->lora = tw_calloc((size_t)m->cfg.n_layer * N_TARGET, sizeof(*m->lora));
    if (!m->lora)
        return tw_errf(err, TW_ENOMEM, "out of memory for LoRA adapters");
    rc = grow_params(m, m->n_params + n_new, err);
    if (rc < 0)
        goto fail;
    first = m->n_params;
    for (int l = 0; l < m->cfg.n_layer; l++)
        for (int k = 0; k < N_TARGET; k++) {
            int j = target_tensor[k], n_in, n_out;
            struct lora_slot *s = &m->lora[l * N_TARGET + k];
            if (!((targets >> k) & 1))
                continue;
            layer_dims(m, j, &n_in, &n_out);
            s->pa = m->n_params;
            snprintf(name, sizeof(name), "blk.%d.%s.lora_a", l, layer_names[j]);
            add_param(m, name, n_in, r, 0);
            s->pb = m->n_params;
            snprintf(name, sizeof(name), "blk.%d.%s.lora_b", l, layer_names[j]);
            add_param(m, name, r, n_out, 0);
            total += (size_t)r * n_in + (size_t)n_out * r;
        }
    m->lora_block = tw_calloc(total * 4, sizeof(treal));
    if (!m->lora_block) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory for %zu LoRA parameters", total);
        goto fail;
    }
    train_rng_seed(&rng, seed);
    for (int i = first; i < m->n_params; i++) {
        struct PARAM *p = &m->params[i];
        int is_a = (i - first) % 2 == 0;
        p->w = m->lora_block + off;
        p->g = m->lora_block + total + off;
        p->m = m->lora_block + 2 * total + off;
        p->v = m->lora_block + 3 * total + off;
        if (is_a) { // kaiming_uniform_(a = sqrt(5)): bound = 1 / sqrt(fan_in), fan_in = n_in
            double bound = 1.0 / sqrt((double)p->n / r);
            for (size_t e = 0; e < p->n; e++)
                p->w[e] = (treal)((2.0 * train_rng_float(&rng) - 1.0) * bound);
        }
        off += p->n;
    }
    for (int i = 0; i < m->n_base; i++)
        m->params[i].g = m->params[i].m = m->params[i].v = NULL;
    tw_free(m->base_gmv);
    m->base_gmv = NULL;
    m->lora_targets = targets;
    m->lora_r = r;
    m->lora_alpha = alpha;
    m->lora_dropout = dropout;
    m->lora_scale = (treal)alpha / (treal)r;
    m->have_fwd = 0;
    m->cap_tok = 0; // activations gain LoRA buffers: re-carve on the next forward
    return TW_OK;
fail:
    m->n_params = m->n_base;
    tw_free(m->lora);
    m->lora = NULL;
    return rc;
}

#ifndef TRAIN_F64
int train_llama_set_frozen(struct train_llama *m, int i, enum gguf_ttype type, const void *data,
                           struct tw_err *err)
{
    struct train_param *p;
    int n_in;
    size_t blk;
    if (i < 0 || i >= m->n_base)
        return tw_errf(err, TW_EINVAL, "tensor %d is not a base tensor (0..%d)", i, m->n_base - 1);
    p = &m->params[i];
    if (!is_matrix(p->name))
        return tw_errf(err, TW_EINVAL,
                       "'%s' is not a matrix; only matrices can be frozen in "
                       "place",
                       p->name);
    if (p->g)
        return tw_errf(err, TW_ESTATE, "'%s' is trainable; freeze the base first (add LoRA)",
                       p->name);
    n_in = (int)p->ne[0];
    blk = kq_type_supported(type) ? gguf_type_block_size(type) : 0;
    if (!blk || n_in % (int)blk)
        return tw_errf(err, TW_EINVAL, "'%s': type %s cannot be used for rows of %d values",
                       p->name, gguf_type_name(type), n_in);
    p->qdata = data;
    p->qtype = type;
    return TW_OK;
}
#endif

#ifdef TRAIN_F64
int train_llama_f64_from(const struct train_llama *src, struct train_llama_f64 **out,
                         struct tw_err *err)
{
    struct train_llama_f64 *m;
    struct train_param *sp;
    unsigned targets;
    int n_src, r, rc;
    float alpha, dropout;

    *out = NULL;
    rc = train_llama_f64_new(train_llama_config(src), 0, &m, err);
    if (rc < 0)
        return rc;
    if (train_llama_lora(src, &targets, &r, &alpha, &dropout)) {
        rc = train_llama_f64_add_lora(m, targets, r, alpha, dropout, 0, err);
        if (rc < 0)
            goto fail;
    }
    sp = train_llama_params(src, &n_src);
    TW_ASSERT(n_src == m->n_params);
    for (int i = 0; i < n_src; i++) {
        if (sp[i].qdata) { // dequantized into w, row by row through a bounded buffer
            float buf[256];
            size_t blk = gguf_type_block_size(sp[i].qtype), per = sizeof(buf) / sizeof(buf[0]);
            size_t bb = gguf_type_block_bytes(sp[i].qtype);
            per -= per % blk;
            for (size_t e = 0; e < sp[i].n; e += per) {
                size_t k = sp[i].n - e < per ? sp[i].n - e : per;
                kq_dequant(sp[i].qtype, (const char *)sp[i].qdata + e / blk * bb, buf, (int64_t)k);
                for (size_t j = 0; j < k; j++)
                    m->params[i].w[e + j] = buf[j];
            }
            continue;
        }
        if (!sp[i].w) {
            rc = tw_errf(err, TW_ESTATE, "tensor '%s' has no values", sp[i].name);
            goto fail;
        }
        for (size_t e = 0; e < sp[i].n; e++)
            m->params[i].w[e] = sp[i].w[e];
    }
    *out = m;
    return TW_OK;
fail:
    train_llama_f64_free(m);
    return rc;
}
#endif

/* ---- activations ---- */

/* Carves the activation block for n_tok tokens and n_att attention probabilities per layer.
 * Sizes are bounded by the config limits and TRAIN_LLAMA_MAX_TOKENS; the products are still
 * checked so that a bad combination fails cleanly. */
static int acts_reserve(struct LLAMA *m, size_t n_tok, size_t n_att, int T, struct tw_err *err)
{
    const struct train_llama_cfg *c = &m->cfg;
    size_t C = (size_t)c->n_embd, F = (size_t)c->n_ff, V = (size_t)c->n_vocab;
    size_t L = (size_t)c->n_layer, per_layer, lora = 0, total, ints, mm_scratch = 0;
    size_t at_scratch = 0, lo_scratch = 0;
    size_t qd = (size_t)m->qd, kvd = (size_t)m->kvd;
    treal *p;
    char *ip;

    int nth = tw_pool_size(m->pool);
    if (n_tok <= m->cap_tok && n_att <= m->cap_att && T <= m->cap_T && nth <= m->cap_nth)
        return TW_OK;
    for (int l = 0; m->lora && l < c->n_layer; l++)
        for (int k = 0; k < N_TARGET; k++)
            if (m->lora[l * N_TARGET + k].pa) {
                int n_in, n_out;
                layer_dims(m, target_tensor[k], &n_in, &n_out);
                lora += (size_t)m->lora_r + (m->lora_dropout > 0 ? (size_t)n_in : 0);
#ifndef TRAIN_F64
                size_t ls = train_lora_kq_scratch((int)n_tok, n_in, n_out, m->lora_r);
                lo_scratch = ls > lo_scratch ? ls : lo_scratch;
#endif
            }
    /* per token: rstd1, rstd2 and the [C], [qd], [kvd], [F] activations of each layer */
    per_layer = 2 + 3 * C + 2 * qd + 2 * kvd + 3 * F;
    total = per_layer * L + C * (L + 1) + C + 1 + V // layers, residuals, xnf, rstdf, probs
            + 3 * C + 2 * qd + 2 * kvd + 3 * F + V  // backward scratch
            + lora;
#ifndef TRAIN_F64
    mm_scratch =
        train_matmul_bwd_kq_scratch((int)n_tok, C > qd ? (C > F ? C : F) : (qd > F ? qd : F));
    at_scratch = train_attn_kq_scratch(T, m->hd, nth);
#endif
    if (tw_size_mul(total, n_tok, &total) < 0 || tw_size_mul(n_att, L, &ints) < 0 ||
        tw_size_add(total, ints, &total) < 0 || tw_size_add(total, mm_scratch, &total) < 0 ||
        tw_size_add(total, at_scratch, &total) < 0 || tw_size_add(total, lo_scratch, &total) < 0 ||
        tw_size_mul(total, sizeof(treal), &total) < 0 ||
        tw_size_mul(n_tok, 3 * sizeof(int32_t) + 1, &ints) < 0 ||
        tw_size_add(total, ints, &total) < 0)
        return tw_errf(err, TW_ELIMIT, "activations for %zu tokens overflow", n_tok);
    tw_free(m->acts);
    m->cap_tok = m->cap_att = 0;
    m->cap_T = 0;
    m->acts = tw_malloc(total);
    if (!m->la)
        m->la = tw_calloc(L, sizeof(*m->la));
    if (!m->acts || !m->la)
        return tw_errf(err, TW_ENOMEM, "out of memory for activations (%zu bytes, %zu tokens)",
                       total, n_tok);
    p = m->acts;
#define CARVE(ptr, n)                                                                              \
    do {                                                                                           \
        (ptr) = p;                                                                                 \
        p += (n);                                                                                  \
    } while (0)
    CARVE(m->res, (L + 1) * n_tok * C);
    for (size_t l = 0; l < L; l++) {
        struct layer_acts *a = &m->la[l];
        CARVE(a->xn1, n_tok * C);
        CARVE(a->rstd1, n_tok);
        CARVE(a->q, n_tok * qd);
        CARVE(a->k, n_tok * kvd);
        CARVE(a->v, n_tok * kvd);
        CARVE(a->att, n_att);
        CARVE(a->ao, n_tok * qd);
        CARVE(a->hmid, n_tok * C);
        CARVE(a->xn2, n_tok * C);
        CARVE(a->rstd2, n_tok);
        CARVE(a->g, n_tok * F);
        CARVE(a->u, n_tok * F);
        CARVE(a->h, n_tok * F);
    }
    for (int l = 0; m->lora && l < c->n_layer; l++)
        for (int k = 0; k < N_TARGET; k++) {
            struct lora_slot *s = &m->lora[l * N_TARGET + k];
            int n_in, n_out;
            if (!s->pa)
                continue;
            layer_dims(m, target_tensor[k], &n_in, &n_out);
            CARVE(s->u, n_tok * (size_t)m->lora_r);
            s->drop = NULL;
            if (m->lora_dropout > 0)
                CARVE(s->drop, n_tok * (size_t)n_in);
        }
    CARVE(m->xnf, n_tok * C);
    CARVE(m->rstdf, n_tok);
    CARVE(m->probs, n_tok * V);
    CARVE(m->dres, n_tok * C);
    CARVE(m->dhmid, n_tok * C);
    CARVE(m->dxn, n_tok * C);
    CARVE(m->dq, n_tok * qd);
    CARVE(m->dk, n_tok * kvd);
    CARVE(m->dv, n_tok * kvd);
    CARVE(m->dao, n_tok * qd);
    CARVE(m->dg, n_tok * F);
    CARVE(m->du, n_tok * F);
    CARVE(m->dh, n_tok * F);
    CARVE(m->dlogits, n_tok * V);
    CARVE(m->mm_scratch, mm_scratch);
    CARVE(m->at_scratch, at_scratch);
    CARVE(m->lo_scratch, lo_scratch);
#undef CARVE
    ip = (char *)p;
    m->tokens = (int32_t *)ip;
    m->targets = m->tokens + n_tok;
    m->pos = m->targets + n_tok;
    m->mask = (uint8_t *)(m->pos + n_tok);
    m->cap_tok = n_tok;
    m->cap_att = n_att;
    m->cap_T = T;
    m->cap_nth = nth;
    return TW_OK;
}

/* ---- per-token and element-wise ops across the pool ----
 *
 * Each thread runs the plain op on its slice of tokens (or values), so the results are the op's
 * own for any thread count. RMSNorm's weight gradient sums over tokens: each thread takes a
 * slice of its columns and adds every token in order, with the op's expression. */

enum ew_kind { EW_NORM_FWD, EW_NORM_BWD, EW_SWIGLU_FWD, EW_SWIGLU_BWD };

struct ew_ctx {
    enum ew_kind kind;
    const treal *in0, *in1, *in2, *in3;
    treal *out0, *out1;
    int n_tok, C;
    size_t n;
    treal eps;
};

static void ew_worker(void *arg, int ith, int nth)
{
    const struct ew_ctx *e = arg;
    size_t C = (size_t)e->C;
    long a, b;
    switch (e->kind) {
    case EW_NORM_FWD: // x, w -> y, rstd
        tw_pool_slice(e->n_tok, ith, nth, &a, &b);
        if (a < b)
            OP(train_rmsnorm_fwd)
            (e->in0 + a * C, e->in1, (int)(b - a), e->C, e->eps, e->out0 + a * C, e->out1 + a);
        break;
    case EW_NORM_BWD: // dy, x, w, rstd -> dx, dw
        tw_pool_slice(e->n_tok, ith, nth, &a, &b);
        if (a < b && e->out0)
            OP(train_rmsnorm_bwd)
            (e->in0 + a * C, e->in1 + a * C, e->in2, e->in3 + a, (int)(b - a), e->C,
             e->out0 + a * C, NULL);
        tw_pool_slice(e->C, ith, nth, &a, &b);
        for (int t = 0; e->out1 && t < e->n_tok; t++) {
            const treal *restrict dyt = e->in0 + (size_t)t * C, *restrict xt = e->in1 + t * C;
            treal r = e->in3[t], *restrict dw = e->out1;
            for (long c = a; c < b; c++)
                dw[c] += dyt[c] * xt[c] * r;
        }
        break;
    case EW_SWIGLU_FWD: // g, u -> h
        tw_pool_slice((long)e->n, ith, nth, &a, &b);
        if (a < b)
            OP(train_swiglu_fwd)(e->in0 + a, e->in1 + a, (size_t)(b - a), e->out0 + a);
        break;
    case EW_SWIGLU_BWD: // dh, g, u -> dg, du
        tw_pool_slice((long)e->n, ith, nth, &a, &b);
        if (a < b)
            OP(train_swiglu_bwd)
            (e->in0 + a, e->in1 + a, e->in2 + a, (size_t)(b - a), e->out0 ? e->out0 + a : NULL,
             e->out1 ? e->out1 + a : NULL);
        break;
    }
}

static void norm_fwd(struct LLAMA *m, const treal *x, const treal *w, int n_tok, treal *y,
                     treal *rstd)
{
    struct ew_ctx e = {.kind = EW_NORM_FWD,
                       .in0 = x,
                       .in1 = w,
                       .out0 = y,
                       .out1 = rstd,
                       .n_tok = n_tok,
                       .C = m->cfg.n_embd,
                       .eps = m->cfg.norm_eps};
    tw_pool_run(m->pool, ew_worker, &e);
}

static void norm_bwd(struct LLAMA *m, const treal *dy, const treal *x, const treal *w,
                     const treal *rstd, int n_tok, treal *dx, treal *dw)
{
    struct ew_ctx e = {.kind = EW_NORM_BWD,
                       .in0 = dy,
                       .in1 = x,
                       .in2 = w,
                       .in3 = rstd,
                       .out0 = dx,
                       .out1 = dw,
                       .n_tok = n_tok,
                       .C = m->cfg.n_embd};
    tw_pool_run(m->pool, ew_worker, &e);
}

static void swiglu_fwd(struct LLAMA *m, const treal *g, const treal *u, size_t n, treal *h)
{
    struct ew_ctx e = {.kind = EW_SWIGLU_FWD, .in0 = g, .in1 = u, .out0 = h, .n = n};
    tw_pool_run(m->pool, ew_worker, &e);
}

static void swiglu_bwd(struct LLAMA *m, const treal *dh, const treal *g, const treal *u, size_t n,
                       treal *dg, treal *du)
{
    struct ew_ctx e = {
        .kind = EW_SWIGLU_BWD, .in0 = dh, .in1 = g, .in2 = u, .out0 = dg, .out1 = du, .n = n};
    tw_pool_run(m->pool, ew_worker, &e);
}

/* ---- forward ---- */

static struct PARAM *layer_p(const struct LLAMA *m, int l, int j)
{
    return &m->params[1 + m->n_lt * l + j];
}

static treal *layer_w(const struct LLAMA *m, int l, int j)
{
    return layer_p(m, l, j)->w;
}

static treal *layer_g(const struct LLAMA *m, int l, int j)
{
    return layer_p(m, l, j)->g;
}

/* The bias of layer matrix j (q, k, v with qkv_bias), or NULL. */
static struct PARAM *layer_bias(const struct LLAMA *m, int l, int j)
{
    return m->n_lt > 9 && j >= 1 && j <= 3 ? layer_p(m, l, 8 + j) : NULL;
}

/* y = W x (+ b) for a dense or frozen in-place (kq) weight. */
static void mat_fwd(struct LLAMA *m, const struct PARAM *w, const struct PARAM *b, const treal *x,
                    int n_tok, int n_in, int n_out, treal *y)
{
#ifndef TRAIN_F64
    if (w->qdata) {
        train_qmatmul_fwd(w->qtype, w->qdata, n_in, n_out, x, n_tok, y, m->pool);
        for (int t = 0; b && t < n_tok; t++)
            for (int o = 0; o < n_out; o++)
                y[(size_t)t * n_out + o] += b->w[o];
        return;
    }
#endif
    OP(train_matmul_fwd)(x, w->w, b ? b->w : NULL, n_tok, n_in, n_out, y, m->pool);
}

/* dx += dy W; dW and db accumulate when trainable. */
static void mat_bwd(struct LLAMA *m, const struct PARAM *w, const struct PARAM *b, const treal *dy,
                    const treal *x, int n_tok, int n_in, int n_out, treal *dx)
{
#ifndef TRAIN_F64
    /* f32: through the SIMD kernels (train_matmul_bwd and train_qmatmul_bwd_x are the plain
     * definitions it is tested against) */
    train_matmul_bwd_kq(w->qdata ? w->qtype : GGUF_T_F32, w->qdata ? w->qdata : w->w, x, dy, n_tok,
                        n_in, n_out, dx, w->qdata ? NULL : w->g, b ? b->g : NULL, m->mm_scratch,
                        m->pool);
#else
    OP(train_matmul_bwd)(dy, x, w->w, n_tok, n_in, n_out, dx, w->g, b ? b->g : NULL, m->pool);
#endif
}

/* y = W_j x (+ b_j) (+ scale B A drop(x)) for layer l's matrix j. */
static void proj_fwd(struct LLAMA *m, int l, int j, const treal *x, int n_tok, treal *y,
                     struct train_rng *rng)
{
    int n_in, n_out;
    layer_dims(m, j, &n_in, &n_out);
    mat_fwd(m, layer_p(m, l, j), layer_bias(m, l, j), x, n_tok, n_in, n_out, y);
    if (m->lora) {
        for (int k = 0; k < N_TARGET; k++) {
            struct lora_slot *s = &m->lora[l * N_TARGET + k];
            if (target_tensor[k] != j || !s->pa)
                continue;
            if (m->drop_on)
                OP(train_dropout_mask)(rng, m->lora_dropout, (size_t)n_tok * n_in, s->drop);
#ifndef TRAIN_F64
            train_lora_fwd_kq(x, m->drop_on ? s->drop : NULL, n_tok, n_in, n_out, m->lora_r,
                              m->params[s->pa].w, m->params[s->pb].w, m->lora_scale, s->u, y,
                              m->lo_scratch, m->pool);
#else
            OP(train_lora_fwd)
            (x, m->drop_on ? s->drop : NULL, n_tok, n_in, n_out, m->lora_r, m->params[s->pa].w,
             m->params[s->pb].w, m->lora_scale, s->u, y);
#endif
        }
    }
}

/* dx += the gradient of proj_fwd's output dy with respect to x; gradients of the trainable
 * tensors (W_j and b_j unless frozen, the adapter's A and B) accumulate. */
static void proj_bwd(struct LLAMA *m, int l, int j, const treal *dy, const treal *x, int n_tok,
                     treal *dx)
{
    int n_in, n_out;
    layer_dims(m, j, &n_in, &n_out);
    mat_bwd(m, layer_p(m, l, j), layer_bias(m, l, j), dy, x, n_tok, n_in, n_out, dx);
    if (m->lora) {
        for (int k = 0; k < N_TARGET; k++) {
            struct lora_slot *s = &m->lora[l * N_TARGET + k];
            if (target_tensor[k] != j || !s->pa)
                continue;
#ifndef TRAIN_F64
            train_lora_bwd_kq(dy, x, m->drop_on ? s->drop : NULL, s->u, n_tok, n_in, n_out,
                              m->lora_r, m->params[s->pa].w, m->params[s->pb].w, m->lora_scale, dx,
                              m->params[s->pa].g, m->params[s->pb].g, m->lo_scratch, m->pool);
#else
            OP(train_lora_bwd)
            (dy, x, m->drop_on ? s->drop : NULL, s->u, n_tok, n_in, n_out, m->lora_r,
             m->params[s->pa].w, m->params[s->pb].w, m->lora_scale, dx, m->params[s->pa].g,
             m->params[s->pb].g);
#endif
        }
    }
}

/* x[t] = token_embd[tok[t]], dequantizing rows of a frozen in-place table. */
static void embed_fwd(const struct LLAMA *m, const int32_t *tok, int n_tok, treal *x)
{
    const struct PARAM *e = &m->params[0];
    int C = m->cfg.n_embd;
#ifndef TRAIN_F64
    if (e->qdata) {
        size_t row = gguf_row_size(e->qtype, C);
        for (int t = 0; t < n_tok; t++)
            kq_dequant(e->qtype, (const char *)e->qdata + (size_t)tok[t] * row, x + (size_t)t * C,
                       C);
        return;
    }
#endif
    OP(train_embed_fwd)(e->w, C, tok, n_tok, x);
}

static int check_ids(const int32_t *ids, const uint8_t *mask, size_t n, int V, const char *what,
                     struct tw_err *err)
{
    for (size_t t = 0; t < n; t++)
        if ((!mask || mask[t]) && (ids[t] < 0 || ids[t] >= V))
            return tw_errf(err, TW_EINVAL,
                           "%s id %d at position %zu is outside the vocabulary "
                           "(%d tokens)",
                           what, (int)ids[t], t, V);
    return TW_OK;
}

/* Runs the graph up to the logits (left in m->probs), saving the activations. targets and mask
 * may be NULL (no loss). */
static int forward_logits(struct LLAMA *m, const int32_t *tokens, const int32_t *targets,
                          const uint8_t *mask, int n_seq, int T, struct train_rng *rng,
                          struct tw_err *err)
{
    const struct train_llama_cfg *c = &m->cfg;
    int C = c->n_embd, F = c->n_ff, V = c->n_vocab, n_tok, rc;
    const struct PARAM *onorm = &m->params[m->n_base - 1 - !c->tied_output];
    const struct PARAM *outp = c->tied_output ? &m->params[0] : &m->params[m->n_base - 1];

    m->have_fwd = 0;
    if (n_seq < 1 || T < 1 || (long)n_seq * T > TRAIN_LLAMA_MAX_TOKENS)
        return tw_errf(err, TW_EINVAL, "batch of %d x %d tokens: expected 1..%d tokens", n_seq, T,
                       TRAIN_LLAMA_MAX_TOKENS);
    m->drop_on = m->lora_dropout > 0 && rng; // no rng: evaluation, no dropout
    for (int i = 0; i < m->n_base; i++)
        if (!m->params[i].w && !HAS_QDATA(&m->params[i]))
            return tw_errf(err, TW_ESTATE, "tensor '%s' has no values (train_llama_set_frozen)",
                           m->params[i].name);
    n_tok = n_seq * T;
    rc = check_ids(tokens, NULL, (size_t)n_tok, V, "token", err);
    if (rc >= 0 && targets)
        rc = check_ids(targets, mask, (size_t)n_tok, V, "target", err);
    if (rc >= 0)
        rc = acts_reserve(m, (size_t)n_tok, ATT_SAVED(n_seq, c->n_head, T), T, err);
    if (rc < 0)
        return rc;
    m->n_seq = n_seq;
    m->T = T;
    memcpy(m->tokens, tokens, (size_t)n_tok * sizeof(*tokens));
    if (targets)
        memcpy(m->targets, targets, (size_t)n_tok * sizeof(*targets));
    m->has_mask = mask != NULL;
    if (mask)
        memcpy(m->mask, mask, (size_t)n_tok);
    for (int t = 0; t < n_tok; t++)
        m->pos[t] = t % T;

    embed_fwd(m, m->tokens, n_tok, m->res);
    for (int l = 0; l < c->n_layer; l++) {
        struct layer_acts *a = &m->la[l];
        treal *x = m->res + (size_t)l * n_tok * C, *y = x + (size_t)n_tok * C;
        norm_fwd(m, x, layer_w(m, l, 0), n_tok, a->xn1, a->rstd1);
        proj_fwd(m, l, 1, a->xn1, n_tok, a->q, rng);
        proj_fwd(m, l, 2, a->xn1, n_tok, a->k, rng);
        proj_fwd(m, l, 3, a->xn1, n_tok, a->v, rng);
        OP(train_rope_fwd)(a->q, n_tok, c->n_head, m->hd, m->pos, &m->rope);
        OP(train_rope_fwd)(a->k, n_tok, c->n_head_kv, m->hd, m->pos, &m->rope);
#ifndef TRAIN_F64
        train_attn_fwd_kq(a->q, a->k, a->v, n_seq, T, c->n_head, c->n_head_kv, m->hd, NULL, a->att,
                          a->ao, m->at_scratch, m->pool);
#else
        OP(train_attn_fwd)
        (a->q, a->k, a->v, n_seq, T, c->n_head, c->n_head_kv, m->hd, a->att, a->ao, m->pool);
#endif
        proj_fwd(m, l, 4, a->ao, n_tok, a->hmid, rng);
        OP(train_acc)(a->hmid, x, (size_t)n_tok * C);
        norm_fwd(m, a->hmid, layer_w(m, l, 5), n_tok, a->xn2, a->rstd2);
        proj_fwd(m, l, 6, a->xn2, n_tok, a->g, rng);
        proj_fwd(m, l, 7, a->xn2, n_tok, a->u, rng);
        swiglu_fwd(m, a->g, a->u, (size_t)n_tok * F, a->h);
        proj_fwd(m, l, 8, a->h, n_tok, y, rng);
        OP(train_acc)(y, a->hmid, (size_t)n_tok * C);
    }
    norm_fwd(m, m->res + (size_t)c->n_layer * n_tok * C, onorm->w, n_tok, m->xnf, m->rstdf);
    mat_fwd(m, outp, NULL, m->xnf, n_tok, C, V, m->probs);
    return TW_OK;
}

int LL(forward)(struct LLAMA *m, const int32_t *tokens, const int32_t *targets, const uint8_t *mask,
                int n_seq, int T, struct train_rng *rng, treal *loss, struct tw_err *err)
{
    int rc = forward_logits(m, tokens, targets, mask, n_seq, T, rng, err);
    if (rc < 0)
        return rc;
    *loss = OP(train_xent_fwd)(m->probs, m->targets, mask ? m->mask : NULL, n_seq * T,
                               m->cfg.n_vocab, m->probs);
    m->have_fwd = 1;
    return TW_OK;
}

int LL(logits)(struct LLAMA *m, const int32_t *tokens, int n_seq, int T, struct train_rng *rng,
               treal *logits, struct tw_err *err)
{
    int rc = forward_logits(m, tokens, NULL, NULL, n_seq, T, rng, err);
    if (rc < 0)
        return rc;
    memcpy(logits, m->probs, (size_t)n_seq * T * m->cfg.n_vocab * sizeof(treal));
    return TW_OK;
}

/* ---- backward ---- */

int LL(backward)(struct LLAMA *m, treal dloss, struct tw_err *err)
{
    const struct train_llama_cfg *c = &m->cfg;
    int C = c->n_embd, F = c->n_ff, V = c->n_vocab, n_tok = m->n_seq * m->T;
    struct PARAM *onorm = &m->params[m->n_base - 1 - !c->tied_output];
    struct PARAM *outp = c->tied_output ? &m->params[0] : &m->params[m->n_base - 1];
    size_t nC = (size_t)n_tok * C;

    if (!m->have_fwd)
        return tw_errf(err, TW_ESTATE, "backward without a forward");
    memset(m->dlogits, 0, (size_t)n_tok * V * sizeof(treal));
    OP(train_xent_bwd)
    (m->probs, m->targets, m->has_mask ? m->mask : NULL, n_tok, V, dloss, m->dlogits);
    memset(m->dxn, 0, nC * sizeof(treal));
    mat_bwd(m, outp, NULL, m->dlogits, m->xnf, n_tok, C, V, m->dxn);
    memset(m->dres, 0, nC * sizeof(treal));
    norm_bwd(m, m->dxn, m->res + (size_t)c->n_layer * nC, onorm->w, m->rstdf, n_tok, m->dres,
             onorm->g);
    for (int l = c->n_layer - 1; l >= 0; l--) {
        struct layer_acts *a = &m->la[l];
        const treal *x = m->res + (size_t)l * nC;
        size_t nF = (size_t)n_tok * F;
        /* res[l+1] = hmid + down(swiglu(gate xn2, up xn2)), xn2 = norm(hmid) */
        memset(m->dh, 0, nF * sizeof(treal));
        proj_bwd(m, l, 8, m->dres, a->h, n_tok, m->dh);
        memset(m->dg, 0, nF * sizeof(treal));
        memset(m->du, 0, nF * sizeof(treal));
        swiglu_bwd(m, m->dh, a->g, a->u, nF, m->dg, m->du);
        memset(m->dxn, 0, nC * sizeof(treal));
        proj_bwd(m, l, 6, m->dg, a->xn2, n_tok, m->dxn);
        proj_bwd(m, l, 7, m->du, a->xn2, n_tok, m->dxn);
        memcpy(m->dhmid, m->dres, nC * sizeof(treal));
        norm_bwd(m, m->dxn, a->hmid, layer_w(m, l, 5), a->rstd2, n_tok, m->dhmid, layer_g(m, l, 5));
        /* hmid = x + Wo attn(rope(Wq xn1), rope(Wk xn1), Wv xn1), xn1 = norm(x) */
        memset(m->dao, 0, (size_t)n_tok * m->qd * sizeof(treal));
        proj_bwd(m, l, 4, m->dhmid, a->ao, n_tok, m->dao);
        memset(m->dq, 0, (size_t)n_tok * m->qd * sizeof(treal));
        memset(m->dk, 0, (size_t)n_tok * m->kvd * sizeof(treal));
        memset(m->dv, 0, (size_t)n_tok * m->kvd * sizeof(treal));
#ifndef TRAIN_F64
        /* a pool larger than the forward's would outgrow the scratch: same bits on one thread */
        train_attn_bwd_kq(m->dao, a->q, a->k, a->v, NULL, a->att, m->n_seq, m->T, c->n_head,
                          c->n_head_kv, m->hd, m->dq, m->dk, m->dv, m->at_scratch,
                          tw_pool_size(m->pool) <= m->cap_nth ? m->pool : NULL);
#else
        OP(train_attn_bwd)
        (m->dao, a->q, a->k, a->v, a->att, m->n_seq, m->T, c->n_head, c->n_head_kv, m->hd, m->dq,
         m->dk, m->dv, m->pool);
#endif
        OP(train_rope_bwd)(m->dq, n_tok, c->n_head, m->hd, m->pos, &m->rope);
        OP(train_rope_bwd)(m->dk, n_tok, c->n_head_kv, m->hd, m->pos, &m->rope);
        memset(m->dxn, 0, nC * sizeof(treal));
        proj_bwd(m, l, 1, m->dq, a->xn1, n_tok, m->dxn);
        proj_bwd(m, l, 2, m->dk, a->xn1, n_tok, m->dxn);
        proj_bwd(m, l, 3, m->dv, a->xn1, n_tok, m->dxn);
        memcpy(m->dres, m->dhmid, nC * sizeof(treal));
        norm_bwd(m, m->dxn, x, layer_w(m, l, 0), a->rstd1, n_tok, m->dres, layer_g(m, l, 0));
    }
    if (m->params[0].g)
        OP(train_embed_bwd)(m->params[0].g, C, m->tokens, n_tok, m->dres);
    return TW_OK;
}
