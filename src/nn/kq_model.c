/* kq_model.c - quantizing a whole GGUF model (kq_quantize_file, see kq.h).
 *
 * Tensor by tensor: 2-D weights get the target type (or, for the _M mixes, llama.cpp's choice
 * per tensor), everything else is copied as it is. Sources that are not F32 are decoded first.
 * Rows are split across the pool's threads; the output is written by the GGUF writer
 * (temp + rename).
 */
#include "nn/kq_impl.h"

#include "base/mem.h"

#include <stdio.h>
#include <string.h>

struct qtype {
    const char *name;
    enum gguf_ttype base;
    int mix;           // 1: llama.cpp's _M mix (more bits for some attn_v/ffn_down, output Q6_K)
    uint32_t file_type; // general.file_type (llama_ftype)
};

static const struct qtype qtypes[] = {
    {"f32", GGUF_T_F32, 0, 0},     {"f16", GGUF_T_F16, 0, 1},     {"bf16", GGUF_T_BF16, 0, 32},
    {"q8_0", GGUF_T_Q8_0, 0, 7},   {"q4_0", GGUF_T_Q4_0, 0, 2},   {"q4_k", GGUF_T_Q4_K, 0, 14},
    {"q5_k", GGUF_T_Q5_K, 0, 16},  {"q6_k", GGUF_T_Q6_K, 0, 18},  {"q4_k_m", GGUF_T_Q4_K, 1, 15},
    {"q5_k_m", GGUF_T_Q5_K, 1, 17},
};

const char *kq_quantize_types(void)
{
    return "f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k q4_k_m q5_k_m";
}

static int ends_with(const struct gguf_str *s, const char *suffix)
{
    size_t n = strlen(suffix);
    return s->len >= n && !memcmp(s->ptr + s->len - n, suffix, n);
}

/* llama.cpp's use_more_bits: the first and last eighth of the layers and every third between. */
static int use_more_bits(int i, int n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

struct conv_ctx {
    enum gguf_ttype src_type, dst_type;
    const char *src;
    char *dst;
    int64_t ne0, n_rows;
    size_t src_row, dst_row;
    float *scratch; // one row of f32 per thread
};

static void conv_rows(void *arg, int ith, int nth)
{
    struct conv_ctx *c = arg;
    long r0, r1;
    float *row = c->scratch + (size_t)ith * (size_t)c->ne0;
    tw_pool_slice(c->n_rows, ith, nth, &r0, &r1);
    for (long r = r0; r < r1; r++) {
        const float *x = (const float *)(c->src + r * c->src_row);
        if (c->src_type != GGUF_T_F32) {
            kq_dequant(c->src_type, c->src + r * c->src_row, row, c->ne0);
            x = row;
        }
        kq_quant(c->dst_type, x, c->dst + r * c->dst_row, c->ne0);
    }
}

int kq_quantize_file(const char *in, const char *out, const char *type, struct tw_pool *pool,
                     struct kq_quantize_stats *st, struct tw_err *err)
{
    const struct qtype *qt = NULL;
    struct gguf_file *f = NULL;
    struct gguf_writer *w = NULL;
    void **bufs = NULL;
    float *scratch = NULL;
    int64_t n_t, n_v = 0, n_down = 0, i_v = 0, i_down = 0;
    int rc;

    memset(st, 0, sizeof(*st));
    for (size_t k = 0; k < sizeof(qtypes) / sizeof(qtypes[0]); k++)
        if (!strcmp(type, qtypes[k].name))
            qt = &qtypes[k];
    if (!qt)
        return tw_errf(err, TW_EINVAL, "unknown quantization type '%s' (one of: %s)", type,
                       kq_quantize_types());
    rc = gguf_open(in, &f, err);
    if (rc < 0)
        return rc;
    n_t = gguf_n_tensors(f);
    for (int64_t i = 0; i < n_t; i++) {
        const struct gguf_tensor *t = gguf_tensor(f, i);
        n_v += ends_with(&t->name, "attn_v.weight");
        n_down += ends_with(&t->name, "ffn_down.weight");
    }
    bufs = tw_calloc((size_t)(n_t ? n_t : 1), sizeof(*bufs));
    w = gguf_writer_new();
    if (!bufs || !w) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory quantizing '%s'", in);
        goto done;
    }
    gguf_writer_copy_kv(w, f);
    gguf_writer_set_u32(w, "general.file_type", qt->file_type);
    if (qt->base != GGUF_T_F32 && qt->base != GGUF_T_F16 && qt->base != GGUF_T_BF16)
        gguf_writer_set_u32(w, "general.quantization_version", 2);

    for (int64_t i = 0; i < n_t; i++) {
        const struct gguf_tensor *t = gguf_tensor(f, i);
        char name[256];
        enum gguf_ttype dt = qt->base;
        snprintf(name, sizeof(name), "%.*s", (int)(t->name.len < 255 ? t->name.len : 255),
                 t->name.ptr);
        st->n_tensors++;
        st->bytes_in += t->nbytes;

        int quantize = t->n_dims >= 2 && ends_with(&t->name, "weight");
        if (quantize && qt->mix) {
            if (!strcmp(name, "output.weight"))
                dt = GGUF_T_Q6_K;
            else if (ends_with(&t->name, "attn_v.weight") && use_more_bits((int)i_v++, (int)n_v))
                dt = GGUF_T_Q6_K;
            else if (ends_with(&t->name, "ffn_down.weight") &&
                     use_more_bits((int)i_down++, (int)n_down))
                dt = GGUF_T_Q6_K;
        }
        /* Rows that do not split into K-quant super-blocks: Q8_0 where possible (llama.cpp
         * would use Q5_0/Q5_1, which we do not implement), else F16. */
        if (quantize && t->ne[0] % kq__block_size(dt))
            dt = t->ne[0] % KQ_QK == 0 ? GGUF_T_Q8_0 : GGUF_T_F16;
        if (quantize && !kq_type_supported(t->type)) {
            rc = tw_errf(err, TW_EUNSUP, "'%s': tensor '%s' has type %s, which twin cannot decode",
                         in, name, gguf_type_name(t->type));
            goto done;
        }
        if (!quantize || dt == t->type) {
            gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
            st->bytes_out += t->nbytes;
            continue;
        }
        int64_t n_rows = 1;
        for (uint32_t d = 1; d < GGUF_MAX_DIMS; d++)
            n_rows *= t->ne[d];
        size_t dst_row = kq__row_bytes(dt, t->ne[0]);
        bufs[i] = tw_mallocarray((size_t)n_rows, dst_row);
        tw_free(scratch);
        scratch = tw_mallocarray((size_t)tw_pool_size(pool) * (size_t)t->ne[0], sizeof(float));
        if (!bufs[i] || !scratch) {
            rc = tw_errf(err, TW_ENOMEM, "out of memory quantizing tensor '%s' of '%s'", name, in);
            goto done;
        }
        struct conv_ctx c = {t->type, dt, t->data, bufs[i], t->ne[0], n_rows,
                             kq__row_bytes(t->type, t->ne[0]), dst_row, scratch};
        tw_pool_run(pool, conv_rows, &c);
        gguf_writer_add_tensor(w, name, dt, t->n_dims, t->ne, bufs[i]);
        st->n_quantized++;
        st->bytes_out += (uint64_t)n_rows * dst_row;
    }
    rc = gguf_writer_write(w, out, err);
done:
    for (int64_t i = 0; bufs && i < n_t; i++)
        tw_free(bufs[i]);
    tw_free(bufs);
    tw_free(scratch);
    gguf_writer_free(w);
    gguf_close(f);
    return rc < 0 ? rc : TW_OK;
}
