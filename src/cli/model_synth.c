/* model_synth.c - `twin model synth`: a random-weight Llama (or Qwen2) GGUF of any shape with a
 * real vocabulary, for benchmarks and tests of the engine at sizes we have no real model for. */
#include "base/err.h"
#include "base/mem.h"
#include "cli/cli.h"
#include "nn/gguf.h"
#include "nn/kq.h"
#include "nn/sample.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct synth_opts {
    const char *out, *like, *arch;
    long dim, layers, heads, kv_heads, ff, ctx;
    enum gguf_ttype type;
    uint64_t seed;
};

static void synth_usage(FILE *f)
{
    fprintf(f,
            "usage: twin model synth OUT --like VOCAB.gguf --dim D --layers L --heads H\n"
            "                        --kv-heads K --ff F [--type T] [--seed S] [--ctx N]\n"
            "                        [--arch llama|qwen2]\n\n"
            "Writes a GGUF model with random weights (uniform, scaled by 1/sqrt(fan-in)) and the\n"
            "vocabulary (every tokenizer.* key) of VOCAB.gguf. --type is the type of every matrix\n"
            "(f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k; default f32); norms stay f32. qwen2 adds\n"
            "random Q/K/V biases. The same seed gives the same file.\n");
}

static int parse_long(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return cli_fail("model synth: %s '%s' must be an integer in [%ld, %ld]", opt, s, lo, hi);
    *out = v;
    return 0;
}

static int parse_type(const char *s, enum gguf_ttype *out)
{
    for (int t = 0; t < GGUF_T_COUNT; t++) {
        if (!strcmp(gguf_type_name((enum gguf_ttype)t), s) && kq_type_supported((enum gguf_ttype)t)) {
            *out = (enum gguf_ttype)t;
            return 0;
        }
    }
    return cli_fail("model synth: unknown or unsupported type '%s' (f32 f16 bf16 q8_0 q4_0 q4_k "
                    "q5_k q6_k)",
                    s);
}

/* Copies every tokenizer.* key of f. Returns the vocabulary size or -1. */
static long copy_vocab(struct gguf_writer *w, const struct gguf_file *f, const char *path)
{
    long n_vocab = -1;
    struct tw_err err = TW_ERR_INIT;

    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        struct gguf_str k = gguf_kv_key(f, i);
        char key[256];
        if (k.len < 10 || k.len >= sizeof(key) || memcmp(k.ptr, "tokenizer.", 10))
            continue;
        memcpy(key, k.ptr, k.len);
        key[k.len] = 0;
        switch (gguf_kv_type(f, i)) {
        case GGUF_V_STRING: {
            struct gguf_str s;
            char *v;
            if (gguf_get_str(f, key, &s, &err) < 0 || !(v = tw_strndup(s.ptr, s.len)))
                return -1;
            gguf_writer_set_str(w, key, v);
            tw_free(v);
            break;
        }
        case GGUF_V_ARRAY: {
            enum gguf_vtype at = gguf_kv_arr_type(f, i);
            uint64_t n = gguf_kv_arr_n(f, i);
            if (!strcmp(key, "tokenizer.ggml.tokens"))
                n_vocab = (long)n;
            if (at == GGUF_V_STRING) {
                struct gguf_str *v = tw_mallocarray(n ? n : 1, sizeof(*v));
                if (!v)
                    return -1;
                for (uint64_t j = 0; j < n; j++)
                    v[j] = gguf_kv_arr_str(f, i, j);
                gguf_writer_set_arr_str(w, key, v, n);
                tw_free(v);
            } else {
                gguf_writer_set_arr(w, key, at, gguf_kv_arr_data(f, i), n);
            }
            break;
        }
        case GGUF_V_BOOL: {
            bool b;
            if (gguf_get_bool(f, key, false, &b, &err) < 0)
                return -1;
            gguf_writer_set_bool(w, key, b);
            break;
        }
        case GGUF_V_F32:
        case GGUF_V_F64: {
            float x;
            if (gguf_get_f32(f, key, 0, &x, &err) < 0)
                return -1;
            gguf_writer_set_f32(w, key, x);
            break;
        }
        default: { // integers: ids and counts, all of which fit in u32 in real vocabularies
            int64_t x;
            if (gguf_get_i64(f, key, 0, &x, &err) < 0)
                return -1;
            if (x >= 0 && x <= (int64_t)UINT32_MAX)
                gguf_writer_set_u32(w, key, (uint32_t)x);
            else if (x >= INT32_MIN && x <= INT32_MAX)
                gguf_writer_set_i32(w, key, (int32_t)x);
            else
                gguf_writer_set_u64(w, key, (uint64_t)x);
            break;
        }
        }
    }
    if (err.code)
        cli_fail("model synth: reading '%s': %s", path, err.msg);
    return n_vocab;
}

/* Tensors keep their data until the writer has written the file. */
struct synth_tensors {
    void **data;
    int n, cap;
};

static void *synth_keep(struct synth_tensors *t, void *p)
{
    if (!p)
        return NULL;
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        void **d = tw_reallocarray(t->data, (size_t)cap, sizeof(*d));
        if (!d) {
            tw_free(p);
            return NULL;
        }
        t->data = d;
        t->cap = cap;
    }
    t->data[t->n++] = p;
    return p;
}

/* A random matrix (or vector) of shape [ne0, ne1] in 'type'; vectors of norms are 1. */
static int synth_add(struct gguf_writer *w, struct synth_tensors *keep, struct llm_rng *rng,
                     const char *name, enum gguf_ttype type, int64_t ne0, int64_t ne1, float scale,
                     bool ones)
{
    int64_t n = ne0 * ne1, ne[2] = {ne0, ne1};
    float *x;
    void *data;

    if (gguf_row_size(type, ne0) == 0)
        return cli_fail("model synth: tensor '%s' has rows of %lld, not a multiple of %s's block "
                        "of %zu; choose sizes that are multiples of 256 or another --type",
                        name, (long long)ne0, gguf_type_name(type), gguf_type_block_size(type));
    x = tw_mallocarray((size_t)n, sizeof(float));
    if (!x)
        return cli_fail("model synth: out of memory for tensor '%s'", name);
    for (int64_t i = 0; i < n; i++)
        x[i] = ones ? 1.0f : (float)((llm_rng_uniform(rng) * 2.0 - 1.0) * scale);
    if (type == GGUF_T_F32) {
        data = synth_keep(keep, x);
    } else {
        data = synth_keep(keep, tw_malloc(gguf_row_size(type, ne0) * (size_t)ne1));
        if (data)
            kq_quant(type, x, data, n);
        tw_free(x);
    }
    if (!data)
        return cli_fail("model synth: out of memory for tensor '%s'", name);
    gguf_writer_add_tensor(w, name, type, ne1 == 1 ? 1 : 2, ne, data);
    return 0;
}

/* llama.cpp's general.file_type for a model whose matrices are all of type t */
static uint32_t file_type(enum gguf_ttype t)
{
    switch (t) {
    case GGUF_T_F16: return 1;
    case GGUF_T_Q4_0: return 2;
    case GGUF_T_Q8_0: return 7;
    case GGUF_T_Q4_K: return 14;
    case GGUF_T_Q5_K: return 16;
    case GGUF_T_Q6_K: return 18;
    case GGUF_T_BF16: return 32;
    default: return 0;
    }
}

static int synth_write(const struct synth_opts *o, struct gguf_writer *w, long V,
                       struct synth_tensors *keep)
{
    const char *a = o->arch;
    long C = o->dim, hd = o->dim / o->heads, kvd = hd * o->kv_heads, F = o->ff;
    float sc_c = 1.0f / sqrtf((float)C), sc_f = 1.0f / sqrtf((float)F);
    struct llm_rng rng;
    char key[128], name[96];
    int rc = 0;

    llm_rng_seed(&rng, o->seed);
    gguf_writer_set_str(w, "general.architecture", a);
    gguf_writer_set_str(w, "general.name", "twin synth");
    gguf_writer_set_u32(w, "general.file_type", file_type(o->type));
#define KEY(s) (snprintf(key, sizeof(key), "%s.%s", a, s), key)
    gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)o->ctx);
    gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)C);
    gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)o->layers);
    gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)F);
    gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)o->heads);
    gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)o->kv_heads);
    gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)hd);
    gguf_writer_set_f32(w, KEY("rope.freq_base"), 10000.0f);
    gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    gguf_writer_set_u32(w, KEY("vocab_size"), (uint32_t)V);
#undef KEY
    rc |= synth_add(w, keep, &rng, "token_embd.weight", o->type, C, V, 1.0f, false);
    rc |= synth_add(w, keep, &rng, "output_norm.weight", GGUF_T_F32, C, 1, 0, true);
    rc |= synth_add(w, keep, &rng, "output.weight", o->type, C, V, sc_c, false);
    for (long l = 0; l < o->layers && !rc; l++) {
#define T(suffix, type, ne0, ne1, sc, ones)                                                        \
    snprintf(name, sizeof(name), "blk.%ld.%s", l, suffix);                                         \
    rc |= synth_add(w, keep, &rng, name, type, ne0, ne1, sc, ones);
        T("attn_norm.weight", GGUF_T_F32, C, 1, 0, true);
        T("attn_q.weight", o->type, C, C, sc_c, false);
        T("attn_k.weight", o->type, C, kvd, sc_c, false);
        T("attn_v.weight", o->type, C, kvd, sc_c, false);
        if (!strcmp(a, "qwen2")) {
            T("attn_q.bias", GGUF_T_F32, C, 1, 0.5f, false);
            T("attn_k.bias", GGUF_T_F32, kvd, 1, 0.5f, false);
            T("attn_v.bias", GGUF_T_F32, kvd, 1, 0.5f, false);
        }
        T("attn_output.weight", o->type, C, C, sc_c, false);
        T("ffn_norm.weight", GGUF_T_F32, C, 1, 0, true);
        T("ffn_gate.weight", o->type, C, F, sc_c, false);
        T("ffn_up.weight", o->type, C, F, sc_c, false);
        T("ffn_down.weight", o->type, F, C, sc_f, false);
#undef T
    }
    return rc;
}

static int synth_args(int argc, char **argv, struct synth_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (a[0] != '-') {
            if (o->out)
                return cli_fail("model synth: unexpected argument '%s'", a);
            o->out = a;
            continue;
        }
        if (!v)
            return cli_fail("model synth: option '%s' needs a value", a);
        i++;
        if (!strcmp(a, "--like"))
            o->like = v;
        else if (!strcmp(a, "--arch"))
            o->arch = v;
        else if (!strcmp(a, "--dim"))
            rc = parse_long(a, v, 2, 65536, &o->dim);
        else if (!strcmp(a, "--layers"))
            rc = parse_long(a, v, 1, 1024, &o->layers);
        else if (!strcmp(a, "--heads"))
            rc = parse_long(a, v, 1, 1024, &o->heads);
        else if (!strcmp(a, "--kv-heads"))
            rc = parse_long(a, v, 1, 1024, &o->kv_heads);
        else if (!strcmp(a, "--ff"))
            rc = parse_long(a, v, 1, 1 << 20, &o->ff);
        else if (!strcmp(a, "--ctx"))
            rc = parse_long(a, v, 1, 1 << 20, &o->ctx);
        else if (!strcmp(a, "--type"))
            rc = parse_type(v, &o->type);
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            o->seed = strtoull(v, &end, 10);
            if (errno || end == v || *end)
                return cli_fail("model synth: --seed '%s' must be a non-negative integer", v);
        } else
            return cli_fail("model synth: unknown option '%s'; see 'twin model synth --help'", a);
        if (rc)
            return rc;
    }
    if (!o->out || !o->like || !o->dim || !o->layers || !o->heads || !o->ff) {
        synth_usage(stderr);
        return 2;
    }
    if (!o->kv_heads)
        o->kv_heads = o->heads;
    if (strcmp(o->arch, "llama") && strcmp(o->arch, "qwen2"))
        return cli_fail("model synth: --arch '%s' must be llama or qwen2", o->arch);
    if (o->dim % o->heads || (o->dim / o->heads) % 2 || o->heads % o->kv_heads)
        return cli_fail("model synth: --dim %ld must split into %ld heads of an even size, and "
                        "--heads a multiple of --kv-heads %ld",
                        o->dim, o->heads, o->kv_heads);
    return 0;
}

TW_SUBCOMMAND(model, synth, "OUT --like VOCAB.gguf --dim D ...: write a random-weight model")
{
    struct synth_opts o = {NULL, NULL, "llama", 0, 0, 0, 0, 0, 2048, GGUF_T_F32, 0};
    struct tw_err err = TW_ERR_INIT;
    struct gguf_file *vf = NULL;
    struct gguf_writer *w = NULL;
    struct synth_tensors keep = {NULL, 0, 0};
    long V;
    int rc;

    if (cli_wants_help(argc, argv)) {
        synth_usage(stdout);
        return 0;
    }
    rc = synth_args(argc, argv, &o);
    if (rc)
        return rc;
    if (gguf_open(o.like, &vf, &err) < 0)
        return cli_fail("model synth: %s", err.msg);
    w = gguf_writer_new();
    if (!w) {
        gguf_close(vf);
        return cli_fail("model synth: out of memory");
    }
    V = copy_vocab(w, vf, o.like);
    if (V <= 0) {
        rc = cli_fail("model synth: '%s' has no vocabulary (tokenizer.ggml.tokens)", o.like);
        goto out;
    }
    rc = synth_write(&o, w, V, &keep);
    if (rc)
        goto out;
    if (gguf_writer_write(w, o.out, &err) < 0) {
        rc = cli_fail("model synth: %s", err.msg);
        goto out;
    }
    fprintf(stderr, "twin: wrote '%s': %s, dim %ld, %ld layers, %ld/%ld heads, ff %ld, vocab %ld, "
                    "%s\n",
            o.out, o.arch, o.dim, o.layers, o.heads, o.kv_heads, o.ff, V, gguf_type_name(o.type));
out:
    gguf_writer_free(w);
    for (int i = 0; i < keep.n; i++)
        tw_free(keep.data[i]);
    tw_free(keep.data);
    gguf_close(vf);
    return rc;
}
