/* train_gguf.c - the training graph and GGUF: a decoder loaded by llm becomes a train_llama
 * (every weight trainable in f32, or a frozen base read in place for LoRA/QLoRA), and LoRA
 * adapters are read and written in llama.cpp's adapter format (engine-notes §6). Contracts in
 * train.h. */
#include "base/mem.h"
#include "nn/kq.h"
#include "nn/llm.h"
#include "nn/lora.h"
#include "nn/train.h"
#include "nn/weights.h"

#include <stdio.h>
#include <string.h>

static const char *const target_names[] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                           "ffn_gate", "ffn_up", "ffn_down"};
#define N_TARGETS ((int)(sizeof(target_names) / sizeof(target_names[0])))

static int cfg_from_hparams(const struct llm_hparams *hp, const struct gguf_file *f,
                            struct train_llama_cfg *cfg, const float **rope_freqs,
                            struct tw_err *err)
{
    const struct gguf_tensor *t;
    int rc = 0;

    if (hp->head_dim * hp->n_head != hp->n_embd)
        return tw_errf(err, TW_EUNSUP,
                       "head_dim %d x %d heads != n_embd %d is not supported "
                       "for training",
                       hp->head_dim, hp->n_head, hp->n_embd);
    memset(cfg, 0, sizeof(*cfg));
    cfg->n_vocab = hp->n_vocab;
    cfg->n_embd = hp->n_embd;
    cfg->n_layer = hp->n_layer;
    cfg->n_head = hp->n_head;
    cfg->n_head_kv = hp->n_head_kv;
    cfg->n_ff = hp->n_ff;
    cfg->n_rot = hp->n_rot;
    cfg->rope_type = hp->rope_neox ? TRAIN_ROPE_NEOX : TRAIN_ROPE_NORM;
    cfg->rope_base = hp->rope_base;
    cfg->rope_freq_scale = hp->rope_scale;
    cfg->norm_eps = hp->rms_eps;
    cfg->tied_output = hp->tied_output;
    cfg->qkv_bias = gguf_find_tensor(f, "blk.0.attn_q.bias") != NULL;
    *rope_freqs = NULL;
    t = nn_weight(f, "rope_freqs.weight", hp->n_rot / 2, 1, false, &rc, err);
    if (rc < 0)
        return rc;
    if (t) {
        if (t->type != GGUF_T_F32)
            return tw_errf(err, TW_EUNSUP, "rope_freqs.weight of type %s (expected f32)",
                           gguf_type_name(t->type));
        *rope_freqs = t->data; // GGUF data is aligned to at least 8 bytes
    }
    return TW_OK;
}

int train_llama_from_llm(const struct llm_model *lm, int frozen, struct train_llama **out,
                         struct tw_err *err)
{
    const struct gguf_file *f = llm_model_gguf(lm);
    struct train_llama_cfg cfg;
    struct train_llama *m = NULL;
    struct train_param *p;
    const float *rope_freqs;
    int rc, n;

    *out = NULL;
    rc = cfg_from_hparams(llm_model_hparams(lm), f, &cfg, &rope_freqs, err);
    if (rc < 0)
        return rc;
    cfg.rope_freqs = rope_freqs;
    rc = frozen ? train_llama_new_frozen(&cfg, &m, err) : train_llama_new(&cfg, 0, &m, err);
    if (rc < 0)
        return rc;
    p = train_llama_params(m, &n);
    for (int i = 0; i < n; i++) {
        const struct gguf_tensor *t =
            nn_weight(f, p[i].name, p[i].ne[0], p[i].ne[1], true, &rc, err);
        if (!t)
            goto fail;
        if (frozen && !p[i].w) {
            rc = train_llama_set_frozen(m, i, t->type, t->data, err);
            if (rc < 0)
                goto fail;
        } else {
            kq_dequant(t->type, t->data, p[i].w, (int64_t)p[i].n);
        }
    }
    *out = m;
    return TW_OK;
fail:
    train_llama_free(m);
    return rc;
}

/* ---- LoRA adapters (the file format is lora.h's) ---- */

/* "blk.<l>.<target>.weight": the target index and *layer, or -1. */
static int parse_base_name(const char *name, int *layer)
{
    char tail[64];
    int l, used = 0;
    if (sscanf(name, "blk.%d.%63[a-z_].weight%n", &l, tail, &used) != 2 || name[used] || l < 0)
        return -1;
    for (int k = 0; k < N_TARGETS; k++)
        if (!strcmp(tail, target_names[k])) {
            *layer = l;
            return k;
        }
    return -1;
}

int train_llama_lora_load(struct train_llama *m, const struct gguf_file *f, struct tw_err *err)
{
    const struct train_llama_cfg *cfg = train_llama_config(m);
    struct lora_adapter *ad = NULL;
    struct train_param *p;
    unsigned targets = 0;
    int r = 0, rc, n, layer;
    float scale = 0;

    if (train_llama_lora(m, NULL, NULL, NULL, NULL))
        return tw_errf(err, TW_ESTATE, "the model already has LoRA adapters");
    rc = lora_adapter_from_gguf(f, "adapter", &ad, err);
    if (rc < 0)
        return rc;
    for (int i = 0; i < lora_adapter_n_weights(ad); i++) {
        const struct lora_weight *w = lora_adapter_weight(ad, i);
        int k = w->embd ? -1 : parse_base_name(w->name, &layer);
        if (k < 0 || layer >= cfg->n_layer) {
            rc = tw_errf(err, TW_EUNSUP,
                         "adapter tensor '%s.lora_a' is not supported (expected "
                         "blk.N.<attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down>"
                         ".weight with N < %d)",
                         w->name, cfg->n_layer);
            goto out;
        }
        if (r && w->r != r) {
            rc = tw_errf(err, TW_EUNSUP, "adapter ranks differ (%d and %d at '%s')", r, w->r,
                         w->name);
            goto out;
        }
        r = w->r;
        scale = lora_scale(ad, w, 1.0f);
        targets |= 1u << k;
    }
    /* alpha such that alpha / r is llama.cpp's multiplier at user scale 1 */
    rc = train_llama_add_lora(m, targets, r, scale * (float)r, 0.0f, 0, err);
    if (rc < 0)
        goto out;
    /* Adapters absent from the file keep B = 0: they add nothing, like the missing adapter. */
    p = train_llama_params(m, &n);
    for (int i = 0; i < n; i++) {
        char base[96];
        const struct lora_weight *w;
        size_t len;
        int is_b;
        if (!strstr(p[i].name, ".lora_"))
            continue;
        len = strlen(p[i].name) - strlen(".lora_a");
        is_b = p[i].name[len + 6] == 'b';
        snprintf(base, sizeof(base), "%.*s", (int)len, p[i].name);
        w = lora_adapter_find(ad, base, len);
        if (!w) {
            if (is_b)
                memset(p[i].w, 0, p[i].n * sizeof(float));
            continue;
        }
        if (w->n_in != (is_b ? p[i - 1].ne[0] : p[i].ne[0]) ||
            w->n_out != (is_b ? p[i].ne[1] : p[i + 1].ne[1])) {
            rc = tw_errf(err, TW_EINVAL,
                         "adapter '%s.lora_%c' is for a [%lld, %lld] weight, the "
                         "model's is [%lld, %lld]",
                         base, is_b ? 'b' : 'a', (long long)w->n_in, (long long)w->n_out,
                         (long long)(is_b ? p[i - 1].ne[0] : p[i].ne[0]),
                         (long long)(is_b ? p[i].ne[1] : p[i + 1].ne[1]));
            goto out;
        }
        memcpy(p[i].w, is_b ? w->b : w->a, p[i].n * sizeof(float));
    }
    rc = TW_OK;
out:
    lora_adapter_free(ad);
    return rc;
}

int train_llama_lora_save(const struct train_llama *m, const char *arch, const char *path,
                          struct tw_err *err)
{
    struct lora_adapter *ad = NULL;
    struct train_param *p;
    float alpha;
    int n, r, rc;

    if (!train_llama_lora(m, NULL, &r, &alpha, NULL))
        return tw_errf(err, TW_ESTATE, "the model has no LoRA adapters to save");
    rc = lora_adapter_new(arch, alpha, &ad, err);
    if (rc < 0)
        return rc;
    p = train_llama_params(m, &n);
    for (int i = 0; i + 1 < n && rc >= 0; i++) {
        char base[96];
        size_t len;
        if (!strstr(p[i].name, ".lora_a"))
            continue;
        len = strlen(p[i].name) - strlen(".lora_a");
        snprintf(base, sizeof(base), "%.*s", (int)len, p[i].name);
        /* A is [r][n_in] (ne [n_in, r]), the next tensor B is [n_out][r] (ne [r, n_out]) */
        rc = lora_adapter_add(ad, base, p[i].ne[0], p[i + 1].ne[1], r, p[i].w, p[i + 1].w, err);
    }
    if (rc >= 0)
        rc = lora_adapter_write(ad, path, err);
    lora_adapter_free(ad);
    return rc;
}

/* ---- checkpoints ---- */

#define CKPT_TYPE "twin-train-checkpoint"

int train_llama_checkpoint_save(const struct train_llama *m, long step, const struct train_rng *rng,
                                const char *path, struct tw_err *err)
{
    uint8_t rng_bytes[TRAIN_RNG_STATE_BYTES];
    char(*names)[80] = NULL;
    struct gguf_writer *w;
    struct train_param *p;
    unsigned targets;
    int n, rc, r, k = 0;
    float alpha, dropout;

    p = train_llama_params(m, &n);
    w = gguf_writer_new();
    names = tw_mallocarray((size_t)n * 2, sizeof(*names));
    if (!w || !names) {
        gguf_writer_free(w);
        tw_free(names);
        return tw_errf(err, TW_ENOMEM, "out of memory writing checkpoint '%s'", path);
    }
    gguf_writer_set_str(w, "general.type", CKPT_TYPE);
    gguf_writer_set_u64(w, "twin.train.step", (uint64_t)step);
    if (rng) {
        train_rng_save(rng, rng_bytes);
        gguf_writer_set_arr(w, "twin.train.rng", GGUF_V_U8, rng_bytes, TRAIN_RNG_STATE_BYTES);
    }
    if (train_llama_lora(m, &targets, &r, &alpha, &dropout)) {
        gguf_writer_set_u32(w, "twin.train.lora.targets", targets);
        gguf_writer_set_u32(w, "twin.train.lora.rank", (uint32_t)r);
        gguf_writer_set_f32(w, "twin.train.lora.alpha", alpha);
        gguf_writer_set_f32(w, "twin.train.lora.dropout", dropout);
    }
    for (int i = 0; i < n; i++) {
        if (!p[i].g)
            continue; // frozen: it comes from the base model
        gguf_writer_add_tensor(w, p[i].name, GGUF_T_F32, 2, p[i].ne, p[i].w);
        snprintf(names[k], sizeof(names[0]), "%s.adam_m", p[i].name);
        gguf_writer_add_tensor(w, names[k++], GGUF_T_F32, 2, p[i].ne, p[i].m);
        snprintf(names[k], sizeof(names[0]), "%s.adam_v", p[i].name);
        gguf_writer_add_tensor(w, names[k++], GGUF_T_F32, 2, p[i].ne, p[i].v);
    }
    rc = gguf_writer_write(w, path, err);
    gguf_writer_free(w);
    tw_free(names);
    return rc;
}

/* The F32 tensor 'name' of shape ne, copied into dst. */
static int ckpt_tensor(const struct gguf_file *f, const char *name, const int64_t *ne, float *dst,
                       struct tw_err *err)
{
    int rc = 0;
    const struct gguf_tensor *t = nn_weight(f, name, ne[0], ne[1], true, &rc, err);
    if (!t)
        return rc;
    if (t->type != GGUF_T_F32)
        return tw_errf(err, TW_EFORMAT, "checkpoint tensor '%s' is %s, expected f32", name,
                       gguf_type_name(t->type));
    memcpy(dst, t->data, (size_t)(ne[0] * ne[1]) * sizeof(float));
    return TW_OK;
}

static int ckpt_lora(struct train_llama *m, const struct gguf_file *f, struct tw_err *err)
{
    uint32_t targets, r;
    unsigned have_t;
    int have_r, rc;
    float alpha, dropout, have_a, have_d;

    if ((rc = gguf_get_u32(f, "twin.train.lora.targets", 0, &targets, err)) < 0 ||
        (rc = gguf_get_u32(f, "twin.train.lora.rank", 0, &r, err)) < 0 ||
        (rc = gguf_get_f32(f, "twin.train.lora.alpha", 0, &alpha, err)) < 0 ||
        (rc = gguf_get_f32(f, "twin.train.lora.dropout", 0, &dropout, err)) < 0)
        return rc;
    if (!targets)
        return TW_OK; // a full fine-tuning checkpoint
    if (!train_llama_lora(m, &have_t, &have_r, &have_a, &have_d))
        return train_llama_add_lora(m, targets, (int)r, alpha, dropout, 0, err);
    if (have_t != targets || have_r != (int)r || have_a != alpha || have_d != dropout)
        return tw_errf(err, TW_EINVAL,
                       "checkpoint adapters (targets 0x%x, rank %u, alpha %g) "
                       "differ from the model's (0x%x, %d, %g)",
                       targets, r, (double)alpha, have_t, have_r, (double)have_a);
    return TW_OK;
}

int train_llama_checkpoint_load(struct train_llama *m, const struct gguf_file *f, long *step,
                                struct train_rng *rng, struct tw_err *err)
{
    struct gguf_str type = {NULL, 0};
    struct train_param *p;
    int64_t st;
    char name[96];
    int n, rc;

    if ((rc = gguf_get_str(f, "general.type", &type, err)) < 0)
        return rc;
    if (type.len != strlen(CKPT_TYPE) || memcmp(type.ptr, CKPT_TYPE, type.len))
        return tw_errf(err, TW_EFORMAT, "not a training checkpoint (general.type '%.*s')",
                       (int)type.len, type.ptr ? type.ptr : "");
    if ((rc = gguf_get_i64(f, "twin.train.step", 0, &st, err)) < 0)
        return rc;
    if (st < 0)
        return tw_errf(err, TW_EFORMAT, "checkpoint step %lld is negative", (long long)st);
    if (rng) {
        int64_t k = gguf_find_key(f, "twin.train.rng");
        if (k < 0 || gguf_kv_type(f, k) != GGUF_V_ARRAY || gguf_kv_arr_type(f, k) != GGUF_V_U8 ||
            gguf_kv_arr_n(f, k) != TRAIN_RNG_STATE_BYTES)
            return tw_errf(err, TW_EFORMAT, "checkpoint has no twin.train.rng (%d bytes)",
                           TRAIN_RNG_STATE_BYTES);
        rc = train_rng_restore(rng, gguf_kv_arr_data(f, k), err);
        if (rc < 0)
            return tw_err_ctx(err, "checkpoint");
    }
    rc = ckpt_lora(m, f, err);
    if (rc < 0)
        return rc;
    p = train_llama_params(m, &n);
    for (int i = 0; i < n; i++) {
        if (!p[i].g)
            continue;
        rc = ckpt_tensor(f, p[i].name, p[i].ne, p[i].w, err);
        snprintf(name, sizeof(name), "%s.adam_m", p[i].name);
        if (rc >= 0)
            rc = ckpt_tensor(f, name, p[i].ne, p[i].m, err);
        snprintf(name, sizeof(name), "%s.adam_v", p[i].name);
        if (rc >= 0)
            rc = ckpt_tensor(f, name, p[i].ne, p[i].v, err);
        if (rc < 0)
            return tw_err_ctx(err, "checkpoint");
    }
    if (step)
        *step = (long)st;
    return TW_OK;
}

/* ---- whole models ---- */

/* The values of tensor p with its adapter (if any) merged in: w + scale * B A, in f32. */
static void merged_values(const struct train_param *p, const struct train_param *a,
                          const struct train_param *b, float scale, float *out)
{
    if (p->w)
        memcpy(out, p->w, p->n * sizeof(float));
    else
        kq_dequant(p->qtype, p->qdata, out, (int64_t)p->n);
    if (!a)
        return;
    int64_t n_in = p->ne[0], n_out = p->ne[1], r = a->ne[1];
    for (int64_t o = 0; o < n_out; o++) {
        float *row = out + o * n_in;
        for (int64_t k = 0; k < r; k++) {
            float s = scale * b->w[o * r + k];
            const float *ak = a->w + k * n_in;
            for (int64_t i = 0; i < n_in; i++)
                row[i] += s * ak[i];
        }
    }
}

/* The architecture keys from the graph's config (they override the base's, so that a model of
 * another shape, e.g. trained from scratch with the base's tokenizer, describes itself). */
static void write_hparams(struct gguf_writer *w, const struct gguf_file *base,
                          const struct train_llama_cfg *c)
{
    struct gguf_str a = {NULL, 0};
    char arch[32], key[96];
    if (base && gguf_get_str(base, "general.architecture", &a, NULL) >= 0 && a.ptr &&
        a.len < sizeof(arch))
        snprintf(arch, sizeof(arch), "%.*s", (int)a.len, a.ptr);
    else
        snprintf(arch, sizeof(arch), "%s", c->qkv_bias ? "qwen2" : "llama");
    gguf_writer_set_str(w, "general.architecture", arch);
#define HP_U32(suffix, v)                                                                          \
    snprintf(key, sizeof(key), "%s." suffix, arch);                                                \
    gguf_writer_set_u32(w, key, (uint32_t)(v))
#define HP_F32(suffix, v)                                                                          \
    snprintf(key, sizeof(key), "%s." suffix, arch);                                                \
    gguf_writer_set_f32(w, key, (v))
    HP_U32("embedding_length", c->n_embd);
    HP_U32("block_count", c->n_layer);
    HP_U32("feed_forward_length", c->n_ff);
    HP_U32("attention.head_count", c->n_head);
    HP_U32("attention.head_count_kv", c->n_head_kv);
    HP_U32("rope.dimension_count", c->n_rot ? c->n_rot : c->n_embd / c->n_head);
    HP_U32("vocab_size", c->n_vocab);
    HP_F32("rope.freq_base", c->rope_base);
    HP_F32("attention.layer_norm_rms_epsilon", c->norm_eps);
    if (c->rope_freq_scale > 0 && c->rope_freq_scale != 1.0f) {
        snprintf(key, sizeof(key), "%s.rope.scaling.type", arch);
        gguf_writer_set_str(w, key, "linear");
        HP_F32("rope.scaling.factor", 1.0f / c->rope_freq_scale);
    }
#undef HP_U32
#undef HP_F32
}

int train_llama_save_model(const struct train_llama *m, const struct gguf_file *base,
                           int requantize, const char *path, struct tw_err *err)
{
    struct gguf_writer *w;
    struct train_param *p;
    float **bufs = NULL, alpha = 0;
    void **qbufs = NULL;
    int n, n_base = 0, rc, r = 0;
    char name[96];

    p = train_llama_params(m, &n);
    while (n_base < n && !strstr(p[n_base].name, ".lora_"))
        n_base++;
    train_llama_lora(m, NULL, &r, &alpha, NULL);
    w = gguf_writer_new();
    bufs = tw_calloc((size_t)n_base, sizeof(*bufs));
    qbufs = tw_calloc((size_t)n_base, sizeof(*qbufs));
    if (!w || !bufs || !qbufs) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory writing '%s'", path);
        goto out;
    }
    if (base)
        gguf_writer_copy_kv(w, base);
    write_hparams(w, base, train_llama_config(m));
    if (!requantize)
        gguf_writer_set_u32(w, "general.file_type", 0); // all F32
    for (int i = 0; i < n_base; i++) {
        const struct train_param *a = NULL, *b = NULL;
        snprintf(name, sizeof(name), "%s.lora_a", p[i].name);
        for (int j = n_base; j < n; j++)
            if (!strcmp(p[j].name, name)) {
                a = &p[j];
                b = &p[j + 1]; // lora_b follows its lora_a
            }
        bufs[i] = tw_mallocarray(p[i].n, sizeof(float));
        if (!bufs[i]) {
            rc = tw_errf(err, TW_ENOMEM, "out of memory for tensor '%s'", p[i].name);
            goto out;
        }
        merged_values(&p[i], a, b, r ? alpha / (float)r : 0.0f, bufs[i]);
        if (requantize && p[i].qdata && p[i].qtype != GGUF_T_F32) {
            size_t bytes = gguf_row_size(p[i].qtype, p[i].ne[0]) * (size_t)p[i].ne[1];
            qbufs[i] = tw_malloc(bytes);
            if (!qbufs[i]) {
                rc = tw_errf(err, TW_ENOMEM, "out of memory for tensor '%s'", p[i].name);
                goto out;
            }
            kq_quant(p[i].qtype, bufs[i], qbufs[i], (int64_t)p[i].n);
            gguf_writer_add_tensor(w, p[i].name, p[i].qtype, 2, p[i].ne, qbufs[i]);
            continue;
        }
        gguf_writer_add_tensor(w, p[i].name, GGUF_T_F32, p[i].ne[1] > 1 ? 2 : 1, p[i].ne, bufs[i]);
    }
    /* tensors of the base the graph has no use for (rope_freqs.weight ...) pass through */
    for (int64_t k = 0; base && k < gguf_n_tensors(base); k++) {
        const struct gguf_tensor *t = gguf_tensor(base, k);
        /* the graph's own tensors, and the base's output when the graph ties it, are not the
         * base's to pass on */
        snprintf(name, sizeof(name), "%.*s", (int)t->name.len, t->name.ptr);
        int known = !strncmp(name, "blk.", 4) || !strcmp(name, "output.weight") ||
                    !strcmp(name, "token_embd.weight") || !strcmp(name, "output_norm.weight");
        if (!known)
            gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
    }
    rc = gguf_writer_write(w, path, err);
out:
    for (int i = 0; bufs && i < n_base; i++)
        tw_free(bufs[i]);
    for (int i = 0; qbufs && i < n_base; i++)
        tw_free(qbufs[i]);
    tw_free(bufs);
    tw_free(qbufs);
    gguf_writer_free(w);
    return rc;
}
