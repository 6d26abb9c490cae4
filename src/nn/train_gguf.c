/* train_gguf.c - the training graph and GGUF: a decoder loaded by llm becomes a train_llama
 * (every weight trainable in f32, or a frozen base read in place for LoRA/QLoRA), and LoRA
 * adapters are read and written in llama.cpp's adapter format (engine-notes §6). Contracts in
 * train.h. */
#include "nn/kq.h"
#include "nn/llm.h"
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
        return tw_errf(err, TW_EUNSUP, "head_dim %d x %d heads != n_embd %d is not supported "
                       "for training", hp->head_dim, hp->n_head, hp->n_embd);
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
        const struct gguf_tensor *t = nn_weight(f, p[i].name, p[i].ne[0], p[i].ne[1], true, &rc,
                                                err);
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

/* ---- LoRA adapters ---- */

/* "blk.<l>.<target>.weight.lora_<a|b>": returns the target index and sets *layer and *is_b, or
 * -1 if the name is not an adapter tensor of a supported target. */
static int parse_lora_name(const struct gguf_str *name, int *layer, int *is_b)
{
    char buf[128], tail[64];
    int l, used = 0;
    if (name->len >= sizeof(buf))
        return -1;
    memcpy(buf, name->ptr, name->len);
    buf[name->len] = '\0';
    if (sscanf(buf, "blk.%d.%63[a-z_].weight.lora_%n", &l, tail, &used) != 2 || !used ||
        (strcmp(buf + used, "a") && strcmp(buf + used, "b")) || l < 0)
        return -1;
    for (int k = 0; k < N_TARGETS; k++)
        if (!strcmp(tail, target_names[k])) {
            *layer = l;
            *is_b = buf[used] == 'b';
            return k;
        }
    return -1;
}

int train_llama_lora_load(struct train_llama *m, const struct gguf_file *f, struct tw_err *err)
{
    const struct train_llama_cfg *cfg = train_llama_config(m);
    struct gguf_str type = {NULL, 0}, atype = {NULL, 0};
    unsigned targets = 0;
    int r = 0, rc, n;
    float alpha;
    struct train_param *p;

    if (train_llama_lora(m, NULL, NULL, NULL, NULL))
        return tw_errf(err, TW_ESTATE, "the model already has LoRA adapters");
    if ((rc = gguf_get_str(f, "general.type", &type, err)) < 0 ||
        (rc = gguf_get_str(f, "adapter.type", &atype, err)) < 0 ||
        (rc = gguf_get_f32(f, "adapter.lora.alpha", 0.0f, &alpha, err)) < 0)
        return rc;
    if (type.len != 7 || memcmp(type.ptr, "adapter", 7) || atype.len != 4 ||
        memcmp(atype.ptr, "lora", 4))
        return tw_errf(err, TW_EFORMAT, "not a LoRA adapter (general.type '%.*s', adapter.type "
                       "'%.*s')", (int)type.len, type.ptr ? type.ptr : "", (int)atype.len,
                       atype.ptr ? atype.ptr : "");
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const struct gguf_tensor *t = gguf_tensor(f, i);
        int layer, is_b, k = parse_lora_name(&t->name, &layer, &is_b);
        if (k < 0 || layer >= cfg->n_layer)
            return tw_errf(err, TW_EUNSUP, "adapter tensor '%.*s' is not supported (expected "
                           "blk.N.<attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down>"
                           ".weight.lora_a/b with N < %d)", (int)t->name.len, t->name.ptr,
                           cfg->n_layer);
        if (is_b) {
            if (r && t->ne[0] != r)
                return tw_errf(err, TW_EUNSUP, "adapter ranks differ (%d and %lld)", r,
                               (long long)t->ne[0]);
            r = (int)t->ne[0];
        }
        targets |= 1u << k;
    }
    if (!targets || !r)
        return tw_errf(err, TW_EFORMAT, "the adapter has no lora_b tensors");
    if (alpha == 0.0f) // llama.cpp: no alpha means a scale of 1
        alpha = (float)r;
    rc = train_llama_add_lora(m, targets, r, alpha, 0.0f, 0, err);
    if (rc < 0)
        return rc;
    /* Adapters absent from the file keep B = 0: they add nothing, like the missing adapter. */
    p = train_llama_params(m, &n);
    for (int i = 0; i < n; i++) {
        const struct gguf_tensor *t;
        if (!strstr(p[i].name, ".lora_"))
            continue;
        t = nn_weight(f, p[i].name, p[i].ne[0], p[i].ne[1], false, &rc, err);
        if (rc < 0)
            return tw_err_ctx(err, "adapter");
        if (!t) {
            if (strstr(p[i].name, ".lora_b"))
                memset(p[i].w, 0, p[i].n * sizeof(float));
            continue;
        }
        kq_dequant(t->type, t->data, p[i].w, (int64_t)p[i].n);
    }
    return TW_OK;
}

int train_llama_lora_save(const struct train_llama *m, const char *arch, const char *path,
                          struct tw_err *err)
{
    struct gguf_writer *w;
    struct train_param *p;
    float alpha;
    int n, rc;

    if (!train_llama_lora(m, NULL, NULL, &alpha, NULL))
        return tw_errf(err, TW_ESTATE, "the model has no LoRA adapters to save");
    w = gguf_writer_new();
    if (!w)
        return tw_errf(err, TW_ENOMEM, "out of memory writing '%s'", path);
    gguf_writer_set_str(w, "general.architecture", arch);
    gguf_writer_set_str(w, "general.type", "adapter");
    gguf_writer_set_str(w, "adapter.type", "lora");
    gguf_writer_set_f32(w, "adapter.lora.alpha", alpha);
    p = train_llama_params(m, &n);
    for (int i = 0; i < n; i++)
        if (strstr(p[i].name, ".lora_"))
            gguf_writer_add_tensor(w, p[i].name, GGUF_T_F32, 2, p[i].ne, p[i].w);
    rc = gguf_writer_write(w, path, err);
    gguf_writer_free(w);
    return rc;
}
