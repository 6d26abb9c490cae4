/* train_ops.c - forward and backward of every op of the Llama-family decoder, and LoRA.
 *
 * This text is compiled twice: on its own with treal = float (the ops used for training), and
 * from train_ops_f64.c with TRAIN_F64 defined, treal = double and every name suffixed _f64 (the
 * twins used for gradient checks). Keep it free of anything that differs between the two but
 * the macros below and the f32 matmul forward (kq_matmul). Contracts are in train.h.
 */
#include "nn/kq.h"
#include "nn/train.h"

#include <math.h>
#include <string.h>

#ifdef TRAIN_F64
typedef double treal;
#define OP(name)     name##_f64
#define TR_SQRT(x)   sqrt(x)
#define TR_EXP(x)    exp(x)
#define TR_LOG(x)    log(x)
#define TR_COS(x)    cos(x)
#define TR_SIN(x)    sin(x)
#define TR_POW(x, y) pow(x, y)
#else
typedef float treal;
#define OP(name)     name
#define TR_SQRT(x)   sqrtf(x)
#define TR_EXP(x)    expf(x)
#define TR_LOG(x)    logf(x)
#define TR_COS(x)    cosf(x)
#define TR_SIN(x)    sinf(x)
#define TR_POW(x, y) powf(x, y)
#endif

/* ---- embedding ---- */

void OP(train_embed_fwd)(const treal *emb, int C, const int32_t *tok, int n_tok, treal *x)
{
    for (int t = 0; t < n_tok; t++)
        memcpy(x + (size_t)t * C, emb + (size_t)tok[t] * C, (size_t)C * sizeof(*x));
}

void OP(train_embed_bwd)(treal *demb, int C, const int32_t *tok, int n_tok, const treal *dx)
{
    for (int t = 0; t < n_tok; t++) {
        treal *restrict d = demb + (size_t)tok[t] * C;
        const treal *restrict g = dx + (size_t)t * C;
        for (int c = 0; c < C; c++)
            d[c] += g[c];
    }
}

/* ---- rmsnorm ---- */

void OP(train_rmsnorm_fwd)(const treal *x, const treal *w, int n_tok, int C, treal eps, treal *y,
                           treal *rstd)
{
    for (int t = 0; t < n_tok; t++) {
        const treal *restrict xt = x + (size_t)t * C;
        treal *restrict yt = y + (size_t)t * C;
        double ss = 0; // like ggml: the sum of squares in double, the rest in treal
        for (int c = 0; c < C; c++)
            ss += (double)xt[c] * xt[c];
        treal mean = (treal)(ss / C);
        treal r = (treal)1 / TR_SQRT(mean + eps);
        rstd[t] = r;
        for (int c = 0; c < C; c++)
            yt[c] = xt[c] * r * w[c];
    }
}

/* y = w * x * r with r = (mean(x^2) + eps)^-1/2, so dr/dx_j = -r^3 x_j / C and
 * dx_j = r * (dy_j w_j - xhat_j * mean_i(dy_i w_i xhat_i)), xhat = x r. */
void OP(train_rmsnorm_bwd)(const treal *dy, const treal *x, const treal *w, const treal *rstd,
                           int n_tok, int C, treal *dx, treal *dw)
{
    for (int t = 0; t < n_tok; t++) {
        const treal *restrict xt = x + (size_t)t * C;
        const treal *restrict dyt = dy + (size_t)t * C;
        treal r = rstd[t];
        treal dot = 0;
        for (int c = 0; c < C; c++)
            dot += dyt[c] * w[c] * xt[c] * r;
        dot /= (treal)C;
        if (dx) {
            treal *restrict dxt = dx + (size_t)t * C;
            for (int c = 0; c < C; c++)
                dxt[c] += r * (dyt[c] * w[c] - xt[c] * r * dot);
        }
        if (dw)
            for (int c = 0; c < C; c++)
                dw[c] += dyt[c] * xt[c] * r;
    }
}

/* ---- matmul ---- */

struct mm_ctx {
    const treal *x, *w, *b, *dy;
    treal *y, *dx, *dw, *db;
    int n_tok, n_in, n_out;
};

#ifdef TRAIN_F64 // the f32 forward is kq_matmul's
static void mm_fwd_worker(void *arg, int ith, int nth)
{
    const struct mm_ctx *c = arg;
    long o0, o1;
    tw_pool_slice(c->n_out, ith, nth, &o0, &o1);
    for (int t = 0; t < c->n_tok; t++) {
        const treal *restrict xt = c->x + (size_t)t * c->n_in;
        treal *restrict yt = c->y + (size_t)t * c->n_out;
        for (long o = o0; o < o1; o++) {
            const treal *restrict wo = c->w + (size_t)o * c->n_in;
            treal acc = c->b ? c->b[o] : 0;
            for (int i = 0; i < c->n_in; i++)
                acc += wo[i] * xt[i];
            yt[o] = acc;
        }
    }
}
#endif

void OP(train_matmul_fwd)(const treal *x, const treal *w, const treal *b, int n_tok, int n_in,
                          int n_out, treal *y, struct tw_pool *pool)
{
#ifndef TRAIN_F64
    /* f32: the inference kernel (SIMD, rows split across the pool), then the bias */
    kq_matmul(GGUF_T_F32, w, n_in, n_out, x, n_tok, y, pool);
    for (int t = 0; b && t < n_tok; t++)
        for (int o = 0; o < n_out; o++)
            y[(size_t)t * n_out + o] += b[o];
#else
    struct mm_ctx c = {
        .x = x, .w = w, .b = b, .y = y, .n_tok = n_tok, .n_in = n_in, .n_out = n_out};
    tw_pool_run(pool, mm_fwd_worker, &c);
#endif
}

/* Worker ith owns columns [i0, i1) of dx and rows [o0, o1) of dW and db: no two workers write
 * the same element, and each element's terms are added in the same order for any nth. */
static void mm_bwd_worker(void *arg, int ith, int nth)
{
    const struct mm_ctx *c = arg;
    long i0, i1, o0, o1;
    if (c->dx) {
        tw_pool_slice(c->n_in, ith, nth, &i0, &i1);
        for (int t = 0; t < c->n_tok; t++) {
            const treal *restrict dyt = c->dy + (size_t)t * c->n_out;
            treal *restrict dxt = c->dx + (size_t)t * c->n_in;
            for (int o = 0; o < c->n_out; o++) {
                const treal *restrict wo = c->w + (size_t)o * c->n_in;
                treal d = dyt[o];
                for (long i = i0; i < i1; i++)
                    dxt[i] += d * wo[i];
            }
        }
    }
    if (c->dw || c->db) {
        tw_pool_slice(c->n_out, ith, nth, &o0, &o1);
        for (long o = o0; o < o1; o++) {
            treal *restrict dwo = c->dw ? c->dw + (size_t)o * c->n_in : NULL;
            for (int t = 0; t < c->n_tok; t++) {
                const treal *restrict xt = c->x + (size_t)t * c->n_in;
                treal d = c->dy[(size_t)t * c->n_out + o];
                if (dwo)
                    for (int i = 0; i < c->n_in; i++)
                        dwo[i] += d * xt[i];
                if (c->db)
                    c->db[o] += d;
            }
        }
    }
}

void OP(train_matmul_bwd)(const treal *dy, const treal *x, const treal *w, int n_tok, int n_in,
                          int n_out, treal *dx, treal *dw, treal *db, struct tw_pool *pool)
{
    struct mm_ctx c = {.x = x,
                       .w = w,
                       .dy = dy,
                       .dx = dx,
                       .dw = dw,
                       .db = db,
                       .n_tok = n_tok,
                       .n_in = n_in,
                       .n_out = n_out};
    if (!dx && !dw && !db)
        return;
    tw_pool_run(pool, mm_bwd_worker, &c);
}

/* ---- rope ---- */

/* dir = +1 rotates by the position's angles, -1 by their negatives (the inverse). The angle of
 * pair i is built by repeated multiplication, as llama.cpp does, so that the forward here equals
 * the inference engine's. */
static void rope_apply(treal *x, int n_tok, int n_head, int hd, const int32_t *pos,
                       const struct train_rope_cfg *rc, treal dir)
{
    treal theta_scale = TR_POW((treal)rc->base, (treal)-2 / (treal)rc->n_rot);
    treal fscale = rc->freq_scale > 0 ? (treal)rc->freq_scale : (treal)1;
    int half = rc->n_rot / 2, neox = rc->mode == TRAIN_ROPE_NEOX;
    for (int t = 0; t < n_tok; t++) {
        treal *restrict xt = x + (size_t)t * n_head * hd;
        treal theta = (treal)pos[t];
        for (int i = 0; i < half; i++) { // pair i turns by the same angle in every head
            treal ff = rc->freq_factors ? (treal)rc->freq_factors[i] : (treal)1;
            treal a = fscale * (theta / ff);
            treal c = TR_COS(a), s = dir * TR_SIN(a);
            int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
            for (int h = 0; h < n_head; h++) {
                treal *restrict xh = xt + (size_t)h * hd;
                treal x0 = xh[i0], x1 = xh[i1];
                xh[i0] = x0 * c - x1 * s;
                xh[i1] = x0 * s + x1 * c;
            }
            theta *= theta_scale;
        }
    }
}

void OP(train_rope_fwd)(treal *x, int n_tok, int n_head, int head_dim, const int32_t *pos,
                        const struct train_rope_cfg *rc)
{
    rope_apply(x, n_tok, n_head, head_dim, pos, rc, 1);
}

void OP(train_rope_bwd)(treal *dx, int n_tok, int n_head, int head_dim, const int32_t *pos,
                        const struct train_rope_cfg *rc)
{
    rope_apply(dx, n_tok, n_head, head_dim, pos, rc, -1);
}

/* ---- attention ---- */

struct attn_ctx {
    const treal *q, *k, *v, *att, *dout;
    treal *att_out, *out, *dq, *dk, *dv;
    int n_seq, T, n_head, n_head_kv, hd;
};

static treal dot(const treal *restrict a, const treal *restrict b, int n)
{
    treal acc = 0;
    for (int i = 0; i < n; i++)
        acc += a[i] * b[i];
    return acc;
}

/* One unit of work is one (sequence, kv head) pair with the query heads that read it. */
static void attn_fwd_worker(void *arg, int ith, int nth)
{
    const struct attn_ctx *c = arg;
    int T = c->T, hd = c->hd, group = c->n_head / c->n_head_kv;
    size_t qs = (size_t)c->n_head * hd, ks = (size_t)c->n_head_kv * hd;
    treal scale = (treal)1 / TR_SQRT((treal)hd);
    long u0, u1;
    tw_pool_slice((long)c->n_seq * c->n_head_kv, ith, nth, &u0, &u1);
    for (long u = u0; u < u1; u++) {
        int s = (int)(u / c->n_head_kv), kv = (int)(u % c->n_head_kv);
        const treal *k = c->k + (size_t)s * T * ks + (size_t)kv * hd;
        const treal *v = c->v + (size_t)s * T * ks + (size_t)kv * hd;
        for (int h = kv * group; h < (kv + 1) * group; h++) {
            for (int i = 0; i < T; i++) {
                const treal *qi = c->q + ((size_t)s * T + i) * qs + (size_t)h * hd;
                treal *restrict p = c->att_out + (((size_t)s * c->n_head + h) * T + i) * T;
                treal *restrict oi = c->out + ((size_t)s * T + i) * qs + (size_t)h * hd;
                treal mx = -INFINITY, sum = 0;
                for (int j = 0; j <= i; j++) {
                    p[j] = dot(qi, k + (size_t)j * ks, hd) * scale;
                    if (p[j] > mx)
                        mx = p[j];
                }
                for (int j = 0; j <= i; j++) {
                    p[j] = TR_EXP(p[j] - mx);
                    sum += p[j];
                }
                for (int j = 0; j <= i; j++)
                    p[j] /= sum;
                for (int j = i + 1; j < T; j++)
                    p[j] = 0;
                memset(oi, 0, (size_t)hd * sizeof(*oi));
                for (int j = 0; j <= i; j++) {
                    const treal *vj = v + (size_t)j * ks;
                    for (int d = 0; d < hd; d++)
                        oi[d] += p[j] * vj[d];
                }
            }
        }
    }
}

void OP(train_attn_fwd)(const treal *q, const treal *k, const treal *v, int n_seq, int T,
                        int n_head, int n_head_kv, int hd, treal *att, treal *out,
                        struct tw_pool *pool)
{
    struct attn_ctx c = {.q = q,
                         .k = k,
                         .v = v,
                         .att_out = att,
                         .out = out,
                         .n_seq = n_seq,
                         .T = T,
                         .n_head = n_head,
                         .n_head_kv = n_head_kv,
                         .hd = hd};
    tw_pool_run(pool, attn_fwd_worker, &c);
}

/* With p = softmax(s), datt_j = dout_i . v_j and ds_j = p_j (datt_j - sum_l p_l datt_l);
 * dq_i += scale sum_j ds_j k_j, dk_j += scale ds_j q_i, dv_j += p_j dout_i. datt is computed
 * twice (once for the sum, once per use) so the backward needs no scratch memory. */
static void attn_bwd_worker(void *arg, int ith, int nth)
{
    const struct attn_ctx *c = arg;
    int T = c->T, hd = c->hd, group = c->n_head / c->n_head_kv;
    size_t qs = (size_t)c->n_head * hd, ks = (size_t)c->n_head_kv * hd;
    treal scale = (treal)1 / TR_SQRT((treal)hd);
    long u0, u1;
    tw_pool_slice((long)c->n_seq * c->n_head_kv, ith, nth, &u0, &u1);
    for (long u = u0; u < u1; u++) {
        int s = (int)(u / c->n_head_kv), kv = (int)(u % c->n_head_kv);
        size_t kvo = (size_t)s * T * ks + (size_t)kv * hd;
        const treal *k = c->k + kvo, *v = c->v + kvo;
        treal *dk = c->dk ? c->dk + kvo : NULL, *dv = c->dv ? c->dv + kvo : NULL;
        for (int h = kv * group; h < (kv + 1) * group; h++) {
            for (int i = 0; i < T; i++) {
                size_t qo = ((size_t)s * T + i) * qs + (size_t)h * hd;
                const treal *qi = c->q + qo, *doi = c->dout + qo;
                treal *dqi = c->dq ? c->dq + qo : NULL;
                const treal *p = c->att + (((size_t)s * c->n_head + h) * T + i) * T;
                treal sum = 0;
                for (int j = 0; j <= i; j++)
                    sum += p[j] * dot(doi, v + (size_t)j * ks, hd);
                for (int j = 0; j <= i; j++) {
                    treal ds = p[j] * (dot(doi, v + (size_t)j * ks, hd) - sum) * scale;
                    const treal *kj = k + (size_t)j * ks;
                    if (dqi)
                        for (int d = 0; d < hd; d++)
                            dqi[d] += ds * kj[d];
                    if (dk)
                        for (int d = 0; d < hd; d++)
                            dk[(size_t)j * ks + d] += ds * qi[d];
                    if (dv)
                        for (int d = 0; d < hd; d++)
                            dv[(size_t)j * ks + d] += p[j] * doi[d];
                }
            }
        }
    }
}

void OP(train_attn_bwd)(const treal *dout, const treal *q, const treal *k, const treal *v,
                        const treal *att, int n_seq, int T, int n_head, int n_head_kv, int hd,
                        treal *dq, treal *dk, treal *dv, struct tw_pool *pool)
{
    struct attn_ctx c = {.q = q,
                         .k = k,
                         .v = v,
                         .att = att,
                         .dout = dout,
                         .dq = dq,
                         .dk = dk,
                         .dv = dv,
                         .n_seq = n_seq,
                         .T = T,
                         .n_head = n_head,
                         .n_head_kv = n_head_kv,
                         .hd = hd};
    tw_pool_run(pool, attn_bwd_worker, &c);
}

/* ---- swiglu, add ---- */

void OP(train_swiglu_fwd)(const treal *g, const treal *u, size_t n, treal *h)
{
    for (size_t i = 0; i < n; i++)
        h[i] = g[i] / ((treal)1 + TR_EXP(-g[i])) * u[i];
}

/* silu'(g) = s (1 + g (1 - s)) with s = sigmoid(g). */
void OP(train_swiglu_bwd)(const treal *dh, const treal *g, const treal *u, size_t n, treal *dg,
                          treal *du)
{
    for (size_t i = 0; i < n; i++) {
        treal s = (treal)1 / ((treal)1 + TR_EXP(-g[i]));
        if (dg)
            dg[i] += dh[i] * u[i] * s * ((treal)1 + g[i] * ((treal)1 - s));
        if (du)
            du[i] += dh[i] * g[i] * s;
    }
}

void OP(train_add_fwd)(const treal *a, const treal *b, size_t n, treal *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

void OP(train_acc)(treal *dst, const treal *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] += src[i];
}

/* ---- cross-entropy ---- */

treal OP(train_xent_fwd)(const treal *logits, const int32_t *targets, const uint8_t *mask,
                         int n_tok, int V, treal *probs)
{
    double total = 0;
    long n = 0;
    for (int t = 0; t < n_tok; t++) {
        const treal *x = logits + (size_t)t * V;
        treal *p = probs + (size_t)t * V; // may alias x: read x[target] before writing
        treal mx = -INFINITY, xt;
        double sum = 0;
        if (mask && !mask[t])
            continue;
        for (int v = 0; v < V; v++)
            if (x[v] > mx)
                mx = x[v];
        for (int v = 0; v < V; v++)
            sum += TR_EXP(x[v] - mx);
        xt = x[targets[t]];
        total += (double)(mx + TR_LOG((treal)sum) - xt);
        n++;
        for (int v = 0; v < V; v++)
            p[v] = TR_EXP(x[v] - mx) / (treal)sum;
    }
    return n ? (treal)(total / (double)n) : 0;
}

void OP(train_xent_bwd)(const treal *probs, const int32_t *targets, const uint8_t *mask, int n_tok,
                        int V, treal dloss, treal *dlogits)
{
    long n = 0;
    treal f;
    for (int t = 0; t < n_tok; t++)
        n += !mask || mask[t];
    if (!n)
        return;
    f = dloss / (treal)n;
    for (int t = 0; t < n_tok; t++) {
        const treal *p = probs + (size_t)t * V;
        treal *d = dlogits + (size_t)t * V;
        if (mask && !mask[t])
            continue;
        for (int v = 0; v < V; v++)
            d[v] += f * p[v];
        d[targets[t]] -= f;
    }
}

/* ---- LoRA ---- */

void OP(train_dropout_mask)(struct train_rng *rng, float p, size_t n, treal *drop)
{
    treal keep = (treal)1 / ((treal)1 - (treal)p);
    for (size_t i = 0; i < n; i++)
        drop[i] = train_rng_float(rng) < p ? 0 : keep;
}

void OP(train_lora_fwd)(const treal *x, const treal *drop, int n_tok, int n_in, int n_out, int r,
                        const treal *a, const treal *b, treal scale, treal *u, treal *y)
{
    TW_ASSERT(r > 0 && r <= TRAIN_LORA_MAX_RANK);
    for (int t = 0; t < n_tok; t++) {
        const treal *xt = x + (size_t)t * n_in;
        const treal *dt = drop ? drop + (size_t)t * n_in : NULL;
        treal *restrict ut = u + (size_t)t * r;
        treal *restrict yt = y + (size_t)t * n_out;
        for (int k = 0; k < r; k++) {
            const treal *ak = a + (size_t)k * n_in;
            treal acc = 0;
            if (dt)
                for (int i = 0; i < n_in; i++)
                    acc += ak[i] * (xt[i] * dt[i]);
            else
                acc = dot(ak, xt, n_in);
            ut[k] = acc;
        }
        for (int o = 0; o < n_out; o++)
            yt[o] += scale * dot(b + (size_t)o * r, ut, r);
    }
}

/* z = B u, y += scale z: dB += scale dy^T u; du = scale B^T dy; dA += du^T xd; dxd = A^T du;
 * dx += dxd * drop. */
void OP(train_lora_bwd)(const treal *dy, const treal *x, const treal *drop, const treal *u,
                        int n_tok, int n_in, int n_out, int r, const treal *a, const treal *b,
                        treal scale, treal *dx, treal *da, treal *db)
{
    treal du[TRAIN_LORA_MAX_RANK];
    TW_ASSERT(r > 0 && r <= TRAIN_LORA_MAX_RANK);
    for (int t = 0; t < n_tok; t++) {
        const treal *dyt = dy + (size_t)t * n_out;
        const treal *ut = u + (size_t)t * r;
        const treal *xt = x + (size_t)t * n_in;
        const treal *dt = drop ? drop + (size_t)t * n_in : NULL;
        for (int k = 0; k < r; k++)
            du[k] = 0;
        for (int o = 0; o < n_out; o++) {
            const treal *bo = b + (size_t)o * r;
            treal d = scale * dyt[o];
            for (int k = 0; k < r; k++)
                du[k] += d * bo[k];
            if (db)
                for (int k = 0; k < r; k++)
                    db[(size_t)o * r + k] += d * ut[k];
        }
        for (int k = 0; k < r; k++) {
            const treal *ak = a + (size_t)k * n_in;
            if (da) {
                treal *restrict dak = da + (size_t)k * n_in;
                for (int i = 0; i < n_in; i++)
                    dak[i] += du[k] * (dt ? xt[i] * dt[i] : xt[i]);
            }
            if (dx) {
                treal *restrict dxt = dx + (size_t)t * n_in;
                for (int i = 0; i < n_in; i++)
                    dxt[i] += du[k] * ak[i] * (dt ? dt[i] : (treal)1);
            }
        }
    }
}
