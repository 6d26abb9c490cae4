/* lora_merge.c - folding LoRA adapters into a base model (lora_merge_file, see lora.h), the way
 * llama-export-lora does: each adapted tensor is decoded to F32, gets W += s * (B·A) from every
 * adapter in order, and is written as F32 (F32 base) or F16 (any other base type). With a
 * target type the merged model is written in F32 to a temporary file next to 'out' and then
 * converted by kq_quantize_file, so the quantization mixes are the same as `twin model
 * quantize`. */
#include "nn/lora.h"

#include "base/mem.h"
#include "nn/kq.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LLAMA_FTYPE_ALL_F32    0
#define LLAMA_FTYPE_MOSTLY_F16 1

/* Decodes base tensor t into a new f32 buffer and adds every adapter's delta. */
static int merge_one(const struct gguf_tensor *t, const char *name,
                     const struct lora_merge_input *in, int n_in, struct tw_pool *pool, float **out,
                     struct tw_err *err)
{
    int64_t n = t->ne[0] * t->ne[1];
    float *W;

    *out = NULL;
    if (!kq_type_supported(t->type))
        return tw_errf(err, TW_EUNSUP, "base tensor '%s' has type %s, which twin cannot decode",
                       name, gguf_type_name(t->type));
    W = tw_mallocarray((size_t)n, sizeof(float));
    if (!W)
        return tw_errf(err, TW_ENOMEM, "out of memory merging tensor '%s' (%lld values)", name,
                       (long long)n);
    kq_dequant(t->type, t->data, W, n);
    for (int i = 0; i < n_in; i++) {
        const struct lora_weight *w = lora_adapter_find(in[i].a, name, strlen(name));
        if (w)
            lora_delta_add(w, lora_scale(in[i].a, w, in[i].scale), W, pool);
    }
    *out = W;
    return TW_OK;
}

static int merge_write(const struct gguf_file *f, const char *base,
                       const struct lora_merge_input *in, int n_in, const char *out, bool keep_f32,
                       struct tw_pool *pool, struct lora_merge_stats *st, struct tw_err *err)
{
    int64_t n_t = gguf_n_tensors(f);
    struct gguf_writer *w = gguf_writer_new();
    void **bufs = tw_calloc((size_t)(n_t ? n_t : 1), sizeof(*bufs));
    bool any_f16 = false;
    uint32_t ftype;
    int rc = 0;

    if (!w || !bufs) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory merging into '%s'", base);
        goto done;
    }
    gguf_writer_copy_kv(w, f);
    for (int64_t i = 0; i < n_t; i++) {
        const struct gguf_tensor *t = gguf_tensor(f, i);
        char name[LORA_NAME_MAX];
        bool adapted = false;
        float *W;

        st->n_tensors++;
        /* the reader refuses names of 64 bytes or more, so this copy is whole */
        snprintf(name, sizeof(name), "%.*s", (int)t->name.len, t->name.ptr);
        for (int k = 0; k < n_in && !adapted; k++)
            adapted = lora_adapter_find(in[k].a, name, t->name.len) != NULL;
        if (!adapted) {
            gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
            continue;
        }
        rc = merge_one(t, name, in, n_in, pool, &W, err);
        if (rc < 0)
            goto done;
        bufs[i] = W;
        st->n_merged++;
        if (keep_f32 || t->type == GGUF_T_F32) {
            gguf_writer_add_tensor(w, name, GGUF_T_F32, t->n_dims, t->ne, W);
            continue;
        }
        /* F16 in place: the f16 values fit in the first half of the f32 buffer */
        int64_t n = t->ne[0] * t->ne[1];
        uint16_t *h = (uint16_t *)(void *)W;
        for (int64_t j = 0; j < n; j++)
            h[j] = kq_f32_to_f16(W[j]);
        gguf_writer_add_tensor(w, name, GGUF_T_F16, t->n_dims, t->ne, h);
        any_f16 = true;
    }
    if (any_f16) {
        gguf_writer_set_u32(w, "general.file_type", LLAMA_FTYPE_MOSTLY_F16);
    } else {
        rc = gguf_get_u32(f, "general.file_type", LLAMA_FTYPE_ALL_F32, &ftype, err);
        if (rc < 0)
            goto done;
        gguf_writer_set_u32(w, "general.file_type", ftype);
    }
    rc = gguf_writer_write(w, out, err);
done:
    for (int64_t i = 0; bufs && i < n_t; i++)
        tw_free(bufs[i]);
    tw_free(bufs);
    gguf_writer_free(w);
    return rc;
}

static bool is_type(const char *type)
{
    const char *p = kq_quantize_types();
    size_t n = strlen(type);
    while (n && (p = strstr(p, type))) {
        bool start = p == kq_quantize_types() || p[-1] == ' ';
        if (start && (p[n] == ' ' || p[n] == '\0'))
            return true;
        p += n;
    }
    return false;
}

int lora_merge_file(const char *base, const struct lora_merge_input *in, int n_in, const char *out,
                    const char *type, struct tw_pool *pool, struct lora_merge_stats *st,
                    struct tw_err *err)
{
    struct gguf_file *f = NULL;
    char tmp[4096];
    int rc;

    memset(st, 0, sizeof(*st));
    if (n_in < 1 || n_in > LORA_MAX_ADAPTERS)
        return tw_errf(err, TW_EINVAL, "merge takes 1 to %d adapters, not %d", LORA_MAX_ADAPTERS,
                       n_in);
    if (type && !is_type(type)) // fail before the work, not after it
        return tw_errf(err, TW_EINVAL, "unknown output type '%s' (one of: %s)", type,
                       kq_quantize_types());
    rc = gguf_open(base, &f, err);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n_in; i++) {
        rc = lora_adapter_check(in[i].a, f, err);
        if (rc < 0) {
            gguf_close(f);
            return tw_err_ctx(err, "adapter %d does not fit '%s'", i + 1, base);
        }
    }
    if (!type) {
        rc = merge_write(f, base, in, n_in, out, false, pool, st, err);
        goto done;
    }
    if (snprintf(tmp, sizeof(tmp), "%s.merge-f32.tmp", out) >= (int)sizeof(tmp)) {
        rc = tw_errf(err, TW_ELIMIT, "output path '%.64s...' is too long", out);
        goto done;
    }
    rc = merge_write(f, base, in, n_in, tmp, true, pool, st, err);
    if (rc == 0) {
        struct kq_quantize_stats qst;
        rc = kq_quantize_file(tmp, out, type, pool, &qst, err);
    }
    unlink(tmp);
done:
    gguf_close(f);
    return rc < 0 ? tw_err_ctx(err, "merging into '%s'", out) : TW_OK;
}
