/* train_quant.c - matmuls through a frozen weight of any kq type (QLoRA): the forward is the
 * inference kernel, the backward dequantizes on the fly. Contracts in train.h. */
#include "nn/kq.h"
#include "nn/train.h"

#include <math.h>
#include <string.h>

void train_qmatmul_fwd(enum gguf_ttype t, const void *w, int n_in, int n_out, const float *x,
                       int n_tok, float *y, struct tw_pool *pool)
{
    kq_matmul(t, w, n_in, n_out, x, n_tok, y, pool);
}

/* Values dequantized per call: a multiple of every block size (1, 32, 256). */
#define QBWD_CHUNK 256

struct qbwd_ctx {
    enum gguf_ttype type;
    const unsigned char *w;
    size_t row_bytes, blk, blk_bytes;
    const float *dy;
    float *dx;
    int n_in, n_out, n_tok;
};

/* Worker ith owns a block-aligned column slice of dx. For each row o it decodes its part of W's
 * row QBWD_CHUNK values at a time and adds dy[t][o] * W[o][i] to dx[t][i] for every token. */
static void qbwd_worker(void *arg, int ith, int nth)
{
    const struct qbwd_ctx *c = arg;
    float tmp[QBWD_CHUNK];
    long b0, b1;
    long per_chunk = (long)(QBWD_CHUNK / c->blk);
    tw_pool_slice((long)(c->n_in / (int)c->blk), ith, nth, &b0, &b1);
    for (int o = 0; o < c->n_out; o++) {
        const unsigned char *row = c->w + (size_t)o * c->row_bytes;
        for (long bs = b0; bs < b1; bs += per_chunk) {
            long nb = b1 - bs < per_chunk ? b1 - bs : per_chunk;
            size_t i0 = (size_t)bs * c->blk, n = (size_t)nb * c->blk;
            kq_dequant(c->type, row + (size_t)bs * c->blk_bytes, tmp, (int64_t)n);
            for (int t = 0; t < c->n_tok; t++) {
                float d = c->dy[(size_t)t * c->n_out + o];
                float *restrict dxt = c->dx + (size_t)t * c->n_in + i0;
                for (size_t i = 0; i < n; i++)
                    dxt[i] += d * tmp[i];
            }
        }
    }
}

void train_qmatmul_bwd_x(enum gguf_ttype t, const void *w, int n_in, int n_out, const float *dy,
                         int n_tok, float *dx, struct tw_pool *pool)
{
    struct qbwd_ctx c = {
        .type = t, .w = w, .dy = dy, .dx = dx, .n_in = n_in, .n_out = n_out, .n_tok = n_tok};
    c.blk = gguf_type_block_size(t);
    c.blk_bytes = gguf_type_block_bytes(t);
    c.row_bytes = gguf_row_size(t, n_in);
    TW_ASSERT(c.blk > 0 && c.blk <= QBWD_CHUNK && QBWD_CHUNK % c.blk == 0);
    TW_ASSERT(c.row_bytes > 0 && (size_t)n_in % c.blk == 0);
    tw_pool_run(pool, qbwd_worker, &c);
}

/* ---- matmul backward through the kq kernels ---- */

/* Output rows per block: the transposed block [n_in][MMB] stays small whatever n_out is. */
#define MMB 256

size_t train_matmul_bwd_kq_scratch(int n_tok, int n_in)
{
    return (size_t)n_in * MMB * 3 + (size_t)n_tok * MMB + 2 * (size_t)n_tok * n_in;
}

struct mmb_ctx {
    enum gguf_ttype type;
    const unsigned char *w;
    size_t row_bytes;
    const float *x, *dy;
    float *dx, *dw;
    int n_tok, n_in, n_out;
    int o0, ob;  // the current block of output rows
    float *rows; // [ob][n_in] dequantized rows (quantized W only)
    float *wt;   // [n_in][ob] the block transposed
    float *dyb;  // [n_tok][ob] dy's columns of the block (or [ob][n_tok] for dW)
    float *tmp;  // [n_tok][n_in] the block's share of dx
    float *xt;   // [n_in][n_tok] x transposed
    float *dwb;  // [ob][n_in] the block's share of dW
};

static void mmb_dequant(void *arg, int ith, int nth)
{
    const struct mmb_ctx *c = arg;
    long k0, k1;
    tw_pool_slice(c->ob, ith, nth, &k0, &k1);
    for (long k = k0; k < k1; k++)
        kq_dequant(c->type, c->w + (size_t)(c->o0 + k) * c->row_bytes,
                   c->rows + (size_t)k * c->n_in, c->n_in);
}

static void mmb_transpose(void *arg, int ith, int nth)
{
    const struct mmb_ctx *c = arg;
    const float *rows =
        c->type == GGUF_T_F32 ? (const float *)c->w + (size_t)c->o0 * c->n_in : c->rows;
    long i0, i1;
    tw_pool_slice(c->n_in, ith, nth, &i0, &i1);
    for (long i = i0; i < i1; i++)
        for (int k = 0; k < c->ob; k++)
            c->wt[(size_t)i * c->ob + k] = rows[(size_t)k * c->n_in + i];
}

static void mmb_add_dx(void *arg, int ith, int nth)
{
    const struct mmb_ctx *c = arg;
    long i0, i1;
    tw_pool_slice(c->n_in, ith, nth, &i0, &i1);
    for (int t = 0; t < c->n_tok; t++)
        for (long i = i0; i < i1; i++)
            c->dx[(size_t)t * c->n_in + i] += c->tmp[(size_t)t * c->n_in + i];
}

static void mmb_transpose_x(void *arg, int ith, int nth)
{
    const struct mmb_ctx *c = arg;
    long i0, i1;
    tw_pool_slice(c->n_in, ith, nth, &i0, &i1);
    for (long i = i0; i < i1; i++)
        for (int t = 0; t < c->n_tok; t++)
            c->xt[(size_t)i * c->n_tok + t] = c->x[(size_t)t * c->n_in + i];
}

static void mmb_add_dw(void *arg, int ith, int nth)
{
    const struct mmb_ctx *c = arg;
    long k0, k1;
    tw_pool_slice(c->ob, ith, nth, &k0, &k1);
    for (long k = k0; k < k1; k++) {
        float *restrict d = c->dw + (size_t)(c->o0 + k) * c->n_in;
        const float *restrict s = c->dwb + (size_t)k * c->n_in;
        for (int i = 0; i < c->n_in; i++)
            d[i] += s[i];
    }
}

/* dx += dy W as, block by block of MMB output rows, (W_blk^T) dy_blk with the blocks transposed
 * (and dequantized) into scratch; dW += dy^T x as dy_blk^T x^T; both through kq_matmul (F32). */
void train_matmul_bwd_kq(enum gguf_ttype t, const void *w, const float *x, const float *dy,
                         int n_tok, int n_in, int n_out, float *dx, float *dw, float *db,
                         float *scratch, struct tw_pool *pool)
{
    struct mmb_ctx c = {.type = t,
                        .w = w,
                        .x = x,
                        .dy = dy,
                        .dx = dx,
                        .dw = dw,
                        .n_tok = n_tok,
                        .n_in = n_in,
                        .n_out = n_out};
    TW_ASSERT(kq_type_supported(t) && (!dw || t == GGUF_T_F32));
    c.row_bytes = gguf_row_size(t, n_in);
    c.rows = scratch;
    c.wt = c.rows + (size_t)n_in * MMB;
    c.dyb = c.wt + (size_t)n_in * MMB;
    c.tmp = c.dyb + (size_t)n_tok * MMB;
    c.xt = c.tmp + (size_t)n_tok * n_in;
    c.dwb = c.xt + (size_t)n_in * n_tok;
    TW_ASSERT(c.dwb + (size_t)n_in * MMB == scratch + train_matmul_bwd_kq_scratch(n_tok, n_in));
    if (dw)
        tw_pool_run(pool, mmb_transpose_x, &c);
    for (c.o0 = 0; c.o0 < n_out; c.o0 += MMB) {
        c.ob = n_out - c.o0 < MMB ? n_out - c.o0 : MMB;
        if (dx) {
            if (t != GGUF_T_F32)
                tw_pool_run(pool, mmb_dequant, &c);
            tw_pool_run(pool, mmb_transpose, &c);
            for (int tt = 0; tt < n_tok; tt++)
                memcpy(c.dyb + (size_t)tt * c.ob, dy + (size_t)tt * n_out + c.o0,
                       (size_t)c.ob * sizeof(float));
            kq_matmul(GGUF_T_F32, c.wt, c.ob, n_in, c.dyb, n_tok, c.tmp, pool);
            tw_pool_run(pool, mmb_add_dx, &c);
        }
        if (dw) {
            for (int k = 0; k < c.ob; k++)
                for (int tt = 0; tt < n_tok; tt++)
                    c.dyb[(size_t)k * n_tok + tt] = dy[(size_t)tt * n_out + c.o0 + k];
            kq_matmul(GGUF_T_F32, c.xt, n_tok, n_in, c.dyb, c.ob, c.dwb, pool);
            tw_pool_run(pool, mmb_add_dw, &c);
        }
    }
    for (int tt = 0; db && tt < n_tok; tt++)
        for (int o = 0; o < n_out; o++)
            db[o] += dy[(size_t)tt * n_out + o];
}

/* ---- attention through the kq kernels ---- */

size_t train_attn_kq_scratch(int T, int hd)
{
    return 3 * (size_t)T * T + 8 * (size_t)T * hd;
}

struct akq {
    int T, hd;
    float *a, *b, *c, *d;     // [T][hd] contiguous copies
    float *at, *bt, *ct, *dt; // [hd][T] transposes
    float *s1, *s2, *s3;      // [T][T]
};

static void akq_carve(struct akq *k, float *scratch, int T, int hd)
{
    size_t th = (size_t)T * hd, tt = (size_t)T * T;
    k->T = T;
    k->hd = hd;
    k->a = scratch;
    k->b = k->a + th;
    k->c = k->b + th;
    k->d = k->c + th;
    k->at = k->d + th;
    k->bt = k->at + th;
    k->ct = k->bt + th;
    k->dt = k->ct + th;
    k->s1 = k->dt + th;
    k->s2 = k->s1 + tt;
    k->s3 = k->s2 + tt;
}

/* Rows of one head (stride 'stride' floats between tokens) into a contiguous [T][hd] block and,
 * if t_out, its transpose [hd][T]. */
static void akq_gather(const float *src, size_t stride, int T, int hd, float *out, float *t_out)
{
    for (int t = 0; t < T; t++) {
        memcpy(out + (size_t)t * hd, src + (size_t)t * stride, (size_t)hd * sizeof(float));
        for (int d = 0; t_out && d < hd; d++)
            t_out[(size_t)d * T + t] = src[(size_t)t * stride + d];
    }
}

void train_attn_fwd_kq(const float *q, const float *k, const float *v, int n_seq, int T, int n_head,
                       int n_head_kv, int hd, float *att, float *lse, float *out, float *scratch,
                       struct tw_pool *pool)
{
    struct akq s;
    size_t qs = (size_t)n_head * hd, ks = (size_t)n_head_kv * hd;
    float scale = 1.0f / sqrtf((float)hd);
    int group = n_head / n_head_kv;
    akq_carve(&s, scratch, T, hd);
    for (int sq = 0; sq < n_seq; sq++)
        for (int h = 0; h < n_head; h++) {
            size_t kvo = (size_t)sq * T * ks + (size_t)(h / group) * hd;
            float *p = att ? att + (((size_t)sq * n_head + h) * T) * T : s.s2;
            float *lh = lse ? lse + ((size_t)sq * n_head + h) * T : NULL;
            akq_gather(q + (size_t)sq * T * qs + (size_t)h * hd, qs, T, hd, s.a, NULL);
            akq_gather(k + kvo, ks, T, hd, s.b, NULL);
            akq_gather(v + kvo, ks, T, hd, s.c, s.ct);
            kq_matmul(GGUF_T_F32, s.b, hd, T, s.a, T, s.s1, pool); // s1[i][j] = q_i . k_j
            for (int i = 0; i < T; i++) {
                const float *si = s.s1 + (size_t)i * T;
                float *pi = p + (size_t)i * T, mx = -INFINITY, sum = 0;
                for (int j = 0; j <= i; j++)
                    if (si[j] * scale > mx)
                        mx = si[j] * scale;
                for (int j = 0; j <= i; j++) {
                    pi[j] = expf(si[j] * scale - mx);
                    sum += pi[j];
                }
                for (int j = 0; j <= i; j++)
                    pi[j] /= sum;
                for (int j = i + 1; j < T; j++)
                    pi[j] = 0;
                if (lh)
                    lh[i] = mx + logf(sum);
            }
            kq_matmul(GGUF_T_F32, s.ct, T, hd, p, T, s.d, pool); // o_i = sum_j p_ij v_j
            for (int t = 0; t < T; t++)
                memcpy(out + ((size_t)sq * T + t) * qs + (size_t)h * hd, s.d + (size_t)t * hd,
                       (size_t)hd * sizeof(float));
        }
}

static void akq_scatter_add(float *dst, size_t stride, int T, int hd, const float *src)
{
    for (int t = 0; t < T; t++)
        for (int d = 0; d < hd; d++)
            dst[(size_t)t * stride + d] += src[(size_t)t * hd + d];
}

static void akq_transpose(const float *src, int rows, int cols, float *dst)
{
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
}

void train_attn_bwd_kq(const float *dout, const float *q, const float *k, const float *v,
                       const float *att, const float *lse, int n_seq, int T, int n_head,
                       int n_head_kv, int hd, float *dq, float *dk, float *dv, float *scratch,
                       struct tw_pool *pool)
{
    struct akq s;
    size_t qs = (size_t)n_head * hd, ks = (size_t)n_head_kv * hd;
    float scale = 1.0f / sqrtf((float)hd);
    int group = n_head / n_head_kv;
    akq_carve(&s, scratch, T, hd);
    for (int sq = 0; sq < n_seq; sq++)
        for (int h = 0; h < n_head; h++) {
            size_t qo = (size_t)sq * T * qs + (size_t)h * hd;
            size_t kvo = (size_t)sq * T * ks + (size_t)(h / group) * hd;
            const float *p = att ? att + (((size_t)sq * n_head + h) * T) * T : s.s3;
            akq_gather(q + qo, qs, T, hd, s.a, s.at);
            akq_gather(k + kvo, ks, T, hd, s.b, s.bt);
            if (!att) { // recompute P = exp(q.k scale - lse) instead of keeping T^2 per head
                const float *lh = lse + ((size_t)sq * n_head + h) * T;
                kq_matmul(GGUF_T_F32, s.b, hd, T, s.a, T, s.s3, pool);
                for (int i = 0; i < T; i++) {
                    float *pi = s.s3 + (size_t)i * T;
                    for (int j = 0; j <= i; j++)
                        pi[j] = expf(pi[j] * scale - lh[i]);
                    for (int j = i + 1; j < T; j++)
                        pi[j] = 0;
                }
            }
            akq_gather(v + kvo, ks, T, hd, s.c, NULL);
            akq_gather(dout + qo, qs, T, hd, s.d, s.dt);
            /* dP = dO V^T; dS = P (dP - rowsum(P dP)) scale, in s1 */
            kq_matmul(GGUF_T_F32, s.c, hd, T, s.d, T, s.s1, pool);
            for (int i = 0; i < T; i++) {
                const float *pi = p + (size_t)i * T;
                float *di = s.s1 + (size_t)i * T, sum = 0;
                for (int j = 0; j <= i; j++)
                    sum += pi[j] * di[j];
                for (int j = 0; j <= i; j++)
                    di[j] = pi[j] * (di[j] - sum) * scale;
                for (int j = i + 1; j < T; j++)
                    di[j] = 0;
            }
            if (dq) { // dQ = dS K
                kq_matmul(GGUF_T_F32, s.bt, T, hd, s.s1, T, s.a, pool);
                akq_scatter_add(dq + qo, qs, T, hd, s.a);
            }
            /* s1 holds dS, p (att or s3) P; s2 takes each transpose in turn */
            if (dv) { // dV = P^T dO
                akq_transpose(p, T, T, s.s2);
                kq_matmul(GGUF_T_F32, s.dt, T, hd, s.s2, T, s.c, pool);
                akq_scatter_add(dv + kvo, ks, T, hd, s.c);
            }
            if (dk) { // dK = dS^T Q
                akq_transpose(s.s1, T, T, s.s2);
                kq_matmul(GGUF_T_F32, s.at, T, hd, s.s2, T, s.b, pool);
                akq_scatter_add(dk + kvo, ks, T, hd, s.b);
            }
        }
}

/* ---- LoRA through the kq kernels ---- */

size_t train_lora_kq_scratch(int n_tok, int n_in, int n_out, int r)
{
    size_t t = (size_t)n_tok, i = (size_t)n_in, o = (size_t)n_out, k = (size_t)r;
    size_t mx = i > o ? i : o;
    return t * i + t * mx + i * t + o * t + k * o + 2 * k * t + i * k + t * k + o * k + k * i;
}

struct lkq {
    float *xd, *tmp, *xdt, *dyt, *bt, *ut, *dut, *at, *du, *dbt, *dat;
};

static void lkq_carve(struct lkq *s, float *p, int n_tok, int n_in, int n_out, int r)
{
    size_t t = (size_t)n_tok, i = (size_t)n_in, o = (size_t)n_out, k = (size_t)r;
    s->xd = p;
    s->tmp = s->xd + t * i;
    s->xdt = s->tmp + t * (i > o ? i : o);
    s->dyt = s->xdt + i * t;
    s->bt = s->dyt + o * t;
    s->ut = s->bt + k * o;
    s->dut = s->ut + k * t;
    s->at = s->dut + k * t;
    s->du = s->at + i * k;
    s->dbt = s->du + t * k;
    s->dat = s->dbt + o * k;
}

/* x * drop (or x) into dst; returns what to use as the adapter's input. */
static const float *lkq_input(const float *x, const float *drop, size_t n, float *dst)
{
    if (!drop)
        return x;
    for (size_t e = 0; e < n; e++)
        dst[e] = x[e] * drop[e];
    return dst;
}

void train_lora_fwd_kq(const float *x, const float *drop, int n_tok, int n_in, int n_out, int r,
                       const float *a, const float *b, float scale, float *u, float *y,
                       float *scratch, struct tw_pool *pool)
{
    struct lkq s;
    const float *xd;
    lkq_carve(&s, scratch, n_tok, n_in, n_out, r);
    xd = lkq_input(x, drop, (size_t)n_tok * n_in, s.xd);
    kq_matmul(GGUF_T_F32, a, n_in, r, xd, n_tok, u, pool);     // u = A xd
    kq_matmul(GGUF_T_F32, b, r, n_out, u, n_tok, s.tmp, pool); // B u
    for (size_t e = 0; e < (size_t)n_tok * n_out; e++)
        y[e] += scale * s.tmp[e];
}

void train_lora_bwd_kq(const float *dy, const float *x, const float *drop, const float *u,
                       int n_tok, int n_in, int n_out, int r, const float *a, const float *b,
                       float scale, float *dx, float *da, float *db, float *scratch,
                       struct tw_pool *pool)
{
    struct lkq s;
    const float *xd;
    lkq_carve(&s, scratch, n_tok, n_in, n_out, r);
    xd = lkq_input(x, drop, (size_t)n_tok * n_in, s.xd);
    akq_transpose(b, n_out, r, s.bt);
    kq_matmul(GGUF_T_F32, s.bt, n_out, r, dy, n_tok, s.du, pool); // du = scale B^T dy
    for (size_t e = 0; e < (size_t)n_tok * r; e++)
        s.du[e] *= scale;
    if (db) { // dB += scale dy^T u
        akq_transpose(dy, n_tok, n_out, s.dyt);
        akq_transpose(u, n_tok, r, s.ut);
        kq_matmul(GGUF_T_F32, s.ut, n_tok, r, s.dyt, n_out, s.dbt, pool);
        for (size_t e = 0; e < (size_t)n_out * r; e++)
            db[e] += scale * s.dbt[e];
    }
    if (da) { // dA += du^T xd
        akq_transpose(xd, n_tok, n_in, s.xdt);
        akq_transpose(s.du, n_tok, r, s.dut);
        kq_matmul(GGUF_T_F32, s.xdt, n_tok, n_in, s.dut, r, s.dat, pool);
        for (size_t e = 0; e < (size_t)r * n_in; e++)
            da[e] += s.dat[e];
    }
    if (dx) { // dx += (du A) * drop
        akq_transpose(a, r, n_in, s.at);
        kq_matmul(GGUF_T_F32, s.at, r, n_in, s.du, n_tok, s.tmp, pool);
        for (size_t e = 0; e < (size_t)n_tok * n_in; e++)
            dx[e] += drop ? s.tmp[e] * drop[e] : s.tmp[e];
    }
}
