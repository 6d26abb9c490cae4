/* train_quant.c - matmuls through a frozen weight of any kq type (QLoRA): the forward is the
 * inference kernel, the backward dequantizes on the fly. Contracts in train.h. */
#include "nn/kq.h"
#include "nn/train.h"

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
