/* train_quant.c - matmuls through a frozen weight of any kq type (QLoRA): the forward is the
 * inference kernel, the backward dequantizes on the fly. Contracts in train.h. */
#include "nn/kq.h"
#include "nn/train.h"

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
    struct qbwd_ctx c = {.type = t, .w = w, .dy = dy, .dx = dx, .n_in = n_in, .n_out = n_out,
                         .n_tok = n_tok};
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
    int o0, ob;              // the current block of output rows
    float *rows;             // [ob][n_in] dequantized rows (quantized W only)
    float *wt;               // [n_in][ob] the block transposed
    float *dyb;              // [n_tok][ob] dy's columns of the block (or [ob][n_tok] for dW)
    float *tmp;              // [n_tok][n_in] the block's share of dx
    float *xt;               // [n_in][n_tok] x transposed
    float *dwb;              // [ob][n_in] the block's share of dW
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
    const float *rows = c->type == GGUF_T_F32
                            ? (const float *)c->w + (size_t)c->o0 * c->n_in
                            : c->rows;
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
    struct mmb_ctx c = {.type = t, .w = w, .x = x, .dy = dy, .dx = dx, .dw = dw,
                        .n_tok = n_tok, .n_in = n_in, .n_out = n_out};
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
