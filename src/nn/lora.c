/* lora.c - LoRA adapters: reading, checking against a base, building, writing, and the math
 * (contracts and the file format in lora.h). Validation follows llama.cpp's
 * llama_adapter_lora_init, with messages that name the tensor. */
#include "nn/lora.h"

#include "base/mem.h"
#include "nn/kq.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LORA_ARCH_MAX 64

struct lora_adapter {
    char arch[LORA_ARCH_MAX];
    float alpha;
    int n, cap;
    struct lora_weight *w; // (n), sorted by name once loaded
};

static bool str_is(const struct gguf_str *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->ptr && s->len == n && !memcmp(s->ptr, lit, n);
}

static bool ends_with(const char *p, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && !memcmp(p + len - n, suffix, n);
}

static int clip(uint64_t len)
{
    return len > 64 ? 64 : (int)len;
}

/* ---- building ---- */

int lora_adapter_new(const char *arch, float alpha, struct lora_adapter **out, struct tw_err *err)
{
    struct lora_adapter *a;

    *out = NULL;
    if (!arch || !*arch || strlen(arch) >= LORA_ARCH_MAX)
        return tw_errf(err, TW_EINVAL, "LoRA adapter architecture '%s' is empty or too long",
                       arch ? arch : "");
    if (!isfinite(alpha))
        return tw_errf(err, TW_EINVAL, "LoRA alpha %g is not a finite number", (double)alpha);
    a = tw_calloc(1, sizeof(*a));
    if (!a)
        return tw_errf(err, TW_ENOMEM, "out of memory making a LoRA adapter");
    memcpy(a->arch, arch, strlen(arch) + 1);
    a->alpha = alpha;
    *out = a;
    return TW_OK;
}

void lora_adapter_free(struct lora_adapter *a)
{
    if (!a)
        return;
    for (int i = 0; i < a->n; i++) {
        tw_free(a->w[i].a);
        tw_free(a->w[i].b);
    }
    tw_free(a->w);
    tw_free(a);
}

/* A new zeroed slot for 'name' (len bytes) with room for its matrices. */
static int add_slot(struct lora_adapter *a, const char *name, size_t len, int64_t n_in,
                    int64_t n_out, int r, bool embd, struct lora_weight **out, struct tw_err *err)
{
    struct lora_weight *w = NULL;
    size_t na, nb;

    if (len == 0 || len >= LORA_NAME_MAX)
        return tw_errf(err, TW_EINVAL, "LoRA base tensor name '%.*s' is empty or longer than %d",
                       clip(len), name, LORA_NAME_MAX - 1);
    if (r < 1 || r > LORA_MAX_RANK)
        return tw_errf(err, TW_ELIMIT, "LoRA tensor '%.*s' has rank %d, outside [1, %d]", clip(len),
                       name, r, LORA_MAX_RANK);
    if (n_in < 1 || n_out < 1 || n_in > (INT64_C(1) << 32) || n_out > (INT64_C(1) << 32))
        return tw_errf(err, TW_EINVAL, "LoRA tensor '%.*s' has a bad shape [%lld, %lld]", clip(len),
                       name, (long long)n_in, (long long)n_out);
    if (a->n == a->cap) {
        int cap = a->cap ? 2 * a->cap : 16;
        struct lora_weight *nw = tw_reallocarray(a->w, (size_t)cap, sizeof(*nw));
        if (!nw)
            return tw_errf(err, TW_ENOMEM, "out of memory adding LoRA tensor '%.*s'", clip(len),
                           name);
        a->w = nw;
        a->cap = cap;
    }
    w = &a->w[a->n];
    memset(w, 0, sizeof(*w));
    memcpy(w->name, name, len);
    w->n_in = n_in;
    w->n_out = n_out;
    w->r = r;
    w->embd = embd;
    if (tw_size_mul((size_t)r, (size_t)(embd ? n_out : n_in), &na) < 0 ||
        tw_size_mul((size_t)r, (size_t)(embd ? n_in : n_out), &nb) < 0)
        return tw_errf(err, TW_ELIMIT, "LoRA tensor '%.*s' is too large", clip(len), name);
    w->a = tw_mallocarray(na, sizeof(float));
    w->b = tw_mallocarray(nb, sizeof(float));
    if (!w->a || !w->b) {
        tw_free(w->a);
        tw_free(w->b);
        return tw_errf(err, TW_ENOMEM, "out of memory for LoRA tensor '%.*s' (rank %d)", clip(len),
                       name, r);
    }
    a->n++;
    *out = w;
    return TW_OK;
}

int lora_adapter_add(struct lora_adapter *a, const char *name, int64_t n_in, int64_t n_out, int r,
                     const float *A, const float *B, struct tw_err *err)
{
    size_t len = name ? strlen(name) : 0;
    struct lora_weight *w = NULL;
    int rc;

    if (len && lora_adapter_find(a, name, len))
        return tw_errf(err, TW_EINVAL, "LoRA tensor '%s' added twice", name);
    rc = add_slot(a, name ? name : "", len, n_in, n_out, r,
                  ends_with(name, len, "token_embd.weight"), &w, err);
    if (rc < 0)
        return rc;
    memcpy(w->a, A, (size_t)r * (size_t)(w->embd ? n_out : n_in) * sizeof(float));
    memcpy(w->b, B, (size_t)r * (size_t)(w->embd ? n_in : n_out) * sizeof(float));
    return TW_OK;
}

/* ---- reading ---- */

struct lora_ent {
    const char *name; // base name (the tensor name without its suffix)
    size_t len;
    int is_b;
    const struct gguf_tensor *t;
};

static int ent_cmp(const void *x, const void *y)
{
    const struct lora_ent *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->name, b->name, n);
    if (c)
        return c;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return a->is_b - b->is_b;
}

static int check_ab_tensor(const struct gguf_tensor *t, struct tw_err *err)
{
    if (t->type != GGUF_T_F32 && t->type != GGUF_T_F16 && t->type != GGUF_T_BF16)
        return tw_errf(err, TW_EUNSUP,
                       "LoRA tensor '%.*s' has type %s; only f32, f16 and bf16 "
                       "adapters are supported (re-export it as f16 or f32)",
                       clip(t->name.len), t->name.ptr, gguf_type_name(t->type));
    if (t->ne[2] != 1 || t->ne[3] != 1)
        return tw_errf(err, TW_EFORMAT,
                       "LoRA tensor '%.*s' has shape [%lld, %lld, %lld, %lld], "
                       "expected a matrix",
                       clip(t->name.len), t->name.ptr, (long long)t->ne[0], (long long)t->ne[1],
                       (long long)t->ne[2], (long long)t->ne[3]);
    return TW_OK;
}

/* One a/b pair into a new weight, with the checks that need no base model. */
static int load_pair(struct lora_adapter *ad, const struct lora_ent *ea, const struct lora_ent *eb,
                     struct tw_err *err)
{
    const struct gguf_tensor *a = ea->t, *b = eb->t;
    bool embd = ends_with(ea->name, ea->len, "token_embd.weight");
    struct lora_weight *w = NULL;
    int64_t r = b->ne[0], n_in, n_out;
    int rc;

    if ((rc = check_ab_tensor(a, err)) < 0 || (rc = check_ab_tensor(b, err)) < 0)
        return rc;
    if (embd) {
        /* flipped: A (r, V), B (r, C) in ne terms */
        if (a->ne[0] != r)
            return tw_errf(err, TW_EFORMAT,
                           "LoRA tensors '%.*s.lora_a' [%lld, %lld] and "
                           "'.lora_b' [%lld, %lld] differ in rank (token_embd expects lora_a "
                           "[r, n_vocab] and lora_b [r, n_embd])",
                           clip(ea->len), ea->name, (long long)a->ne[0], (long long)a->ne[1],
                           (long long)b->ne[0], (long long)b->ne[1]);
        n_in = b->ne[1];
        n_out = a->ne[1];
    } else {
        if (a->ne[1] != r)
            return tw_errf(err, TW_EFORMAT,
                           "LoRA tensor '%.*s.lora_a' [%lld, %lld] is not "
                           "transposed to match '.lora_b' [%lld, %lld] (expected lora_a [n_in, r] "
                           "and lora_b [r, n_out]; adapters of the old finetune format are not "
                           "supported)",
                           clip(ea->len), ea->name, (long long)a->ne[0], (long long)a->ne[1],
                           (long long)b->ne[0], (long long)b->ne[1]);
        n_in = a->ne[0];
        n_out = b->ne[1];
    }
    if (r < 1 || r > LORA_MAX_RANK)
        return tw_errf(err, TW_ELIMIT, "LoRA tensor '%.*s.lora_b' has rank %lld, outside [1, %d]",
                       clip(ea->len), ea->name, (long long)r, LORA_MAX_RANK);
    rc = add_slot(ad, ea->name, ea->len, n_in, n_out, (int)r, embd, &w, err);
    if (rc < 0)
        return rc;
    kq_dequant(a->type, a->data, w->a, a->ne[0] * a->ne[1]);
    kq_dequant(b->type, b->data, w->b, b->ne[0] * b->ne[1]);
    return TW_OK;
}

static int load_meta(struct lora_adapter **out, const struct gguf_file *f, struct tw_err *err)
{
    struct gguf_str type = {NULL, 0}, atype = {NULL, 0}, arch = {NULL, 0};
    char buf[LORA_ARCH_MAX];
    float alpha;
    int rc;

    if ((rc = gguf_get_str(f, "general.type", &type, err)) < 0 ||
        (rc = gguf_get_str(f, "adapter.type", &atype, err)) < 0 ||
        (rc = gguf_get_str(f, "general.architecture", &arch, err)) < 0 ||
        (rc = gguf_get_f32(f, "adapter.lora.alpha", 0.0f, &alpha, err)) < 0)
        return rc;
    if (!str_is(&type, "adapter"))
        return tw_errf(err, TW_EFORMAT,
                       "not an adapter: general.type is '%.*s', expected "
                       "'adapter'",
                       clip(type.len), type.ptr ? type.ptr : "");
    if (!str_is(&atype, "lora"))
        return tw_errf(err, TW_EUNSUP,
                       "not a LoRA adapter: adapter.type is '%.*s', expected "
                       "'lora'",
                       clip(atype.len), atype.ptr ? atype.ptr : "");
    if (!arch.ptr || arch.len == 0 || arch.len >= LORA_ARCH_MAX)
        return tw_errf(err, TW_EFORMAT,
                       "metadata 'general.architecture' is missing or longer "
                       "than %d bytes",
                       LORA_ARCH_MAX - 1);
    memcpy(buf, arch.ptr, arch.len);
    buf[arch.len] = '\0';
    if (!isfinite(alpha))
        return tw_errf(err, TW_EFORMAT, "metadata 'adapter.lora.alpha' is not a finite number");
    return lora_adapter_new(buf, alpha, out, err);
}

int lora_adapter_from_gguf(const struct gguf_file *f, const char *name, struct lora_adapter **out,
                           struct tw_err *err)
{
    struct lora_adapter *a = NULL;
    struct lora_ent *ents = NULL;
    int64_t n_t = gguf_n_tensors(f);
    size_t n = 0;
    int rc;

    *out = NULL;
    rc = load_meta(&a, f, err);
    if (rc < 0)
        goto fail;
    ents = tw_mallocarray((size_t)(n_t ? n_t : 1), sizeof(*ents));
    if (!ents) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory reading %lld LoRA tensors", (long long)n_t);
        goto fail;
    }
    for (int64_t i = 0; i < n_t; i++) {
        const struct gguf_tensor *t = gguf_tensor(f, i);
        const char *p = t->name.ptr;
        size_t len = t->name.len;
        if (ends_with(p, len, ".lora_a") || ends_with(p, len, ".lora_b")) {
            ents[n].name = p;
            ents[n].len = len - 7;
            ents[n].is_b = p[len - 1] == 'b';
            ents[n].t = t;
            n++;
        } else if (!ends_with(p, len, "_norm.weight")) { // llama.cpp skips norm adapters
            rc = tw_errf(err, TW_EFORMAT,
                         "LoRA tensor '%.*s' has an unexpected suffix (expected "
                         ".lora_a or .lora_b)",
                         clip(len), p);
            goto fail;
        }
    }
    qsort(ents, n, sizeof(*ents), ent_cmp);
    for (size_t i = 0; i < n;) {
        const struct lora_ent *e = &ents[i];
        bool pair =
            i + 1 < n && ents[i + 1].len == e->len && !memcmp(ents[i + 1].name, e->name, e->len);
        if (pair && ents[i + 1].is_b == e->is_b) {
            rc = tw_errf(err, TW_EFORMAT, "LoRA tensor '%.*s' appears twice", clip(e->t->name.len),
                         e->t->name.ptr);
            goto fail;
        }
        if (!pair) {
            rc = tw_errf(err, TW_EFORMAT, "LoRA tensor '%.*s' has no matching '%.*s.lora_%c'",
                         clip(e->t->name.len), e->t->name.ptr, clip(e->len), e->name,
                         e->is_b ? 'a' : 'b');
            goto fail;
        }
        if (i + 2 < n && ents[i + 2].len == e->len && !memcmp(ents[i + 2].name, e->name, e->len)) {
            rc = tw_errf(err, TW_EFORMAT, "LoRA tensor '%.*s' appears twice",
                         clip(ents[i + 2].t->name.len), ents[i + 2].t->name.ptr);
            goto fail;
        }
        rc = load_pair(a, e, &ents[i + 1], err);
        if (rc < 0)
            goto fail;
        i += 2;
    }
    if (a->n == 0) {
        rc = tw_errf(err, TW_EFORMAT, "the adapter has no .lora_a/.lora_b tensor pairs");
        goto fail;
    }
    tw_free(ents);
    *out = a;
    return TW_OK;
fail:
    tw_free(ents);
    lora_adapter_free(a);
    return tw_err_ctx(err, "'%s'", name);
}

int lora_adapter_load(const char *path, struct lora_adapter **out, struct tw_err *err)
{
    struct gguf_file *f;
    int rc;

    *out = NULL;
    rc = gguf_open(path, &f, err);
    if (rc < 0)
        return rc;
    rc = lora_adapter_from_gguf(f, path, out, err);
    gguf_close(f);
    return rc;
}

/* ---- accessors ---- */

const char *lora_adapter_arch(const struct lora_adapter *a)
{
    return a->arch;
}

float lora_adapter_alpha(const struct lora_adapter *a)
{
    return a->alpha;
}

int lora_adapter_n_weights(const struct lora_adapter *a)
{
    return a->n;
}

const struct lora_weight *lora_adapter_weight(const struct lora_adapter *a, int i)
{
    return i >= 0 && i < a->n ? &a->w[i] : NULL;
}

const struct lora_weight *lora_adapter_find(const struct lora_adapter *a, const char *name,
                                            size_t len)
{
    for (int i = 0; i < a->n; i++)
        if (strlen(a->w[i].name) == len && !memcmp(a->w[i].name, name, len))
            return &a->w[i];
    return NULL;
}

float lora_scale(const struct lora_adapter *a, const struct lora_weight *w, float user_scale)
{
    return a->alpha != 0.0f ? user_scale * a->alpha / (float)w->r : user_scale;
}

/* ---- checking against a base model ---- */

int lora_adapter_check(const struct lora_adapter *a, const struct gguf_file *base,
                       struct tw_err *err)
{
    struct gguf_str arch = {NULL, 0};
    int rc = gguf_get_str(base, "general.architecture", &arch, err);

    if (rc < 0)
        return rc;
    if (!arch.ptr || strlen(a->arch) != arch.len || memcmp(a->arch, arch.ptr, arch.len))
        return tw_errf(err, TW_EINVAL,
                       "the LoRA adapter is for architecture '%s' but the base "
                       "model is '%.*s'",
                       a->arch, clip(arch.len), arch.ptr ? arch.ptr : "");
    for (int i = 0; i < a->n; i++) {
        const struct lora_weight *w = &a->w[i];
        const struct gguf_tensor *t = gguf_find_tensor(base, w->name);
        if (!t)
            return tw_errf(err, TW_EINVAL,
                           "LoRA tensor '%s.lora_a' adapts '%s', which the base "
                           "model does not have",
                           w->name, w->name);
        if (t->ne[0] == w->n_in && t->ne[1] == w->n_out && t->ne[2] == 1 && t->ne[3] == 1)
            continue;
        if (w->embd)
            return tw_errf(err, TW_EINVAL,
                           "LoRA pair '%s.lora_a' [%d, %lld], '.lora_b' [%d, "
                           "%lld] does not fit base [%lld, %lld]; token_embd expects lora_a "
                           "[r, n_vocab], lora_b [r, n_embd]",
                           w->name, w->r, (long long)w->n_out, w->r, (long long)w->n_in,
                           (long long)t->ne[0], (long long)t->ne[1]);
        return tw_errf(err, TW_EINVAL,
                       "LoRA pair '%s.lora_a' [%lld, %d], '.lora_b' [%d, %lld] "
                       "does not fit base [%lld, %lld]; expected lora_a [n_in, r], lora_b "
                       "[r, n_out]%s",
                       w->name, (long long)w->n_in, w->r, w->r, (long long)w->n_out,
                       (long long)t->ne[0], (long long)t->ne[1],
                       t->ne[0] == w->n_out && t->ne[1] == w->n_in ? " (A and B swapped?)" : "");
    }
    return TW_OK;
}

/* ---- writing ---- */

int lora_adapter_write(const struct lora_adapter *a, const char *path, struct tw_err *err)
{
    struct gguf_writer *w = gguf_writer_new();
    char name[LORA_NAME_MAX + 8];
    int rc;

    if (!w)
        return tw_errf(err, TW_ENOMEM, "out of memory writing '%s'", path);
    if (a->n == 0) {
        gguf_writer_free(w);
        return tw_errf(err, TW_EINVAL, "the LoRA adapter for '%s' has no tensors", path);
    }
    gguf_writer_set_str(w, "general.architecture", a->arch);
    gguf_writer_set_str(w, "general.type", "adapter");
    gguf_writer_set_str(w, "adapter.type", "lora");
    gguf_writer_set_f32(w, "adapter.lora.alpha", a->alpha);
    for (int i = 0; i < a->n; i++) {
        const struct lora_weight *lw = &a->w[i];
        int64_t ne_a[2], ne_b[2];
        if (lw->embd) {
            ne_a[0] = lw->r;
            ne_a[1] = lw->n_out;
            ne_b[0] = lw->r;
            ne_b[1] = lw->n_in;
        } else {
            ne_a[0] = lw->n_in;
            ne_a[1] = lw->r;
            ne_b[0] = lw->r;
            ne_b[1] = lw->n_out;
        }
        snprintf(name, sizeof(name), "%s.lora_a", lw->name);
        gguf_writer_add_tensor(w, name, GGUF_T_F32, 2, ne_a, lw->a);
        snprintf(name, sizeof(name), "%s.lora_b", lw->name);
        gguf_writer_add_tensor(w, name, GGUF_T_F32, 2, ne_b, lw->b);
    }
    rc = gguf_writer_write(w, path, err);
    gguf_writer_free(w);
    return rc;
}

/* ---- math ---- */

struct mm_job {
    const struct lora_weight *w;
    float s;
    const float *x;
    int64_t n_tok;
    float *y;
};

/* One worker's tokens: u = A x (the fast f32 dot), then y += (B u) * s. */
static void mm_tokens(void *arg, int ith, int nth)
{
    const struct mm_job *j = arg;
    const struct lora_weight *w = j->w;
    const int64_t n_in = w->n_in, n_out = w->n_out;
    const int r = w->r;
    float u[LORA_MAX_RANK];
    long t0, t1;

    tw_pool_slice((long)j->n_tok, ith, nth, &t0, &t1);
    for (long t = t0; t < t1; t++) {
        const float *xt = j->x + t * n_in;
        float *yt = j->y + t * n_out;
        for (int k = 0; k < r; k++)
            u[k] = kq_dot(GGUF_T_F32, w->a + (size_t)k * (size_t)n_in, xt, n_in);
        for (int64_t o = 0; o < n_out; o++) // scaled after the product, as ggml does
            yt[o] += kq_dot(GGUF_T_F32, w->b + (size_t)o * (size_t)r, u, r) * j->s;
    }
}

void lora_matmul_add(const struct lora_weight *w, float s, const float *x, int64_t n_tok, float *y,
                     struct tw_pool *pool)
{
    struct mm_job j = {w, s, x, n_tok, y};
    if (n_tok > 1 && pool)
        tw_pool_run(pool, mm_tokens, &j);
    else
        mm_tokens(&j, 0, 1);
}

void lora_embd_add(const struct lora_weight *w, float s, int32_t id, float *x)
{
    const int r = w->r;
    const float *at = w->a + (size_t)id * (size_t)r;

    for (int64_t c = 0; c < w->n_in; c++) {
        const float *bc = w->b + (size_t)c * (size_t)r;
        float acc = 0;
        for (int k = 0; k < r; k++)
            acc += bc[k] * at[k];
        x[c] += acc * s;
    }
}

void lora_embd_logits_add(const struct lora_weight *w, float s, const float *x, float *logits)
{
    const int r = w->r;
    float u[LORA_MAX_RANK];

    for (int k = 0; k < r; k++)
        u[k] = 0;
    for (int64_t c = 0; c < w->n_in; c++) { // u = B^T x
        const float *bc = w->b + (size_t)c * (size_t)r;
        for (int k = 0; k < r; k++)
            u[k] += bc[k] * x[c];
    }
    for (int64_t v = 0; v < w->n_out; v++) {
        const float *av = w->a + (size_t)v * (size_t)r;
        float acc = 0;
        for (int k = 0; k < r; k++)
            acc += av[k] * u[k];
        logits[v] += acc * s;
    }
}

struct delta_job {
    const struct lora_weight *w;
    float s;
    float *W;
};

static void delta_rows(void *arg, int ith, int nth)
{
    const struct delta_job *j = arg;
    const struct lora_weight *w = j->w;
    const int64_t n_in = w->n_in;
    const int r = w->r;
    long o0, o1;

    tw_pool_slice((long)w->n_out, ith, nth, &o0, &o1);
    for (long o = o0; o < o1; o++) {
        float *row = j->W + (size_t)o * (size_t)n_in;
        for (int64_t i = 0; i < n_in; i++) {
            double acc = 0; // ggml_vec_dot_f32 sums short rows in double
            if (w->embd) {  // W[v][c] += s * A[v]·B[c]
                const float *av = w->a + (size_t)o * (size_t)r, *bc = w->b + (size_t)i * r;
                for (int k = 0; k < r; k++)
                    acc += (double)(av[k] * bc[k]);
            } else { // W[o][i] += s * sum_k B[o][k] A[k][i]
                const float *bo = w->b + (size_t)o * (size_t)r;
                for (int k = 0; k < r; k++)
                    acc += (double)(w->a[(size_t)k * (size_t)n_in + (size_t)i] * bo[k]);
            }
            float d = (float)acc;
            d = d * j->s;
            row[i] = d + row[i];
        }
    }
}

void lora_delta_add(const struct lora_weight *w, float s, float *W, struct tw_pool *pool)
{
    struct delta_job j = {w, s, W};
    tw_pool_run(pool, delta_rows, &j);
}
