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

/* ---- outer-product accumulation: the matmul backward without transposes ----
 *
 * Both gradients of y = x W^T are sums of outer products, Y[r][c] += sum_k A(r, k) B[k][c]:
 *   dx = dy W:     Y = dx [n_tok][n_in],  A(t, o) = dy[t][o],  B = W [n_out][n_in]
 *   dW = dy^T x:   Y = dW [n_out][n_in],  A(o, t) = dy[t][o],  B = x [n_tok][n_in]
 * B's rows are read as they lie and A's values are broadcast, so no operand is transposed. The
 * kernel is plain C on GCC/clang vector types, compiled for AVX-512, AVX2 and baseline x86-64
 * (target_clones picks one at load time). Every element is summed over k in increasing order,
 * each term a multiply then an add (never fused), whatever the ISA, the tile it falls in or the
 * thread that owns its column: results are the same on every machine and thread count. */

typedef float oa_v16 __attribute__((vector_size(64)));

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define OA_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define OA_CLONES
#endif

struct oa_ctx {
    int R, K, n_col; // Y is R x n_col, summed over k < K
    int kb;          // k per pass over a tile (OA_KB_DX, OA_KB_DW)
    const float *a;  // A(r, k) = a[r * a_r + k * a_k]
    size_t a_r, a_k;
    const float *b; // B[k][c] = b[k * ldb + c]
    size_t ldb;
    float *y; // Y[r][c] = y[r * ldy + c]
    size_t ldy;
};

/* k per pass over a tile. dx: W's panel of 128 x 64 floats (32 KiB) stays in L1 while every
 * token tile passes, and dx itself is small. dW: each pass reads and writes the dW tile from
 * memory, so x's panel (up to 1024 x 64 floats, in L2) is taken whole. */
#define OA_KB_DX       128
#define OA_KB_DW       1024
#define OA_LOAD(v, p)  memcpy(&(v), (p), sizeof(v))
#define OA_STORE(p, v) memcpy((p), &(v), sizeof(v))

/* Rows [r, r + NR) x columns [c, c + 16 NV) over k in [k0, k1), in registers. */
#define OA_TILE(NR, NV)                                                                            \
    do {                                                                                           \
        oa_v16 acc[NR][NV], bv[NV];                                                                \
        for (int j = 0; j < NR; j++)                                                               \
            for (int v = 0; v < NV; v++)                                                           \
                OA_LOAD(acc[j][v], o->y + (size_t)(r + j) * o->ldy + c + 16 * v);                  \
        for (int k = k0; k < k1; k++) {                                                            \
            const float *bk = o->b + (size_t)k * o->ldb + c;                                       \
            const float *ak = o->a + (size_t)k * o->a_k + (size_t)r * o->a_r;                      \
            for (int v = 0; v < NV; v++)                                                           \
                OA_LOAD(bv[v], bk + 16 * v);                                                       \
            for (int j = 0; j < NR; j++) {                                                         \
                const float s = ak[(size_t)j * o->a_r];                                            \
                for (int v = 0; v < NV; v++) {                                                     \
                    oa_v16 prod = bv[v] * s; /* a separate statement: never contracted to FMA */   \
                    acc[j][v] += prod;                                                             \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (int j = 0; j < NR; j++)                                                               \
            for (int v = 0; v < NV; v++)                                                           \
                OA_STORE(o->y + (size_t)(r + j) * o->ldy + c + 16 * v, acc[j][v]);                 \
    } while (0)

/* Rows [r0, r1) x columns [c0, c1) of Y, c0 a multiple of 16: tiles of 4 rows x 64 columns,
 * narrower at the edges, the last c1 % 16 columns one value at a time (the same operations in
 * the same order). */
OA_CLONES static void oa_cols(const struct oa_ctx *o, int r0, int r1, int c0, int c1)
{
    int cv = c0 + (c1 - c0) / 16 * 16;
    for (int c = c0; c < cv;) {
        int nv = cv - c >= 64 ? 4 : 1;
        for (int k0 = 0; k0 < o->K; k0 += o->kb) {
            int k1 = o->K - k0 < o->kb ? o->K : k0 + o->kb, r = r0;
            if (nv == 4) {
                for (; r + 4 <= r1; r += 4) {
                    /* the next tile's rows of Y: dW comes from memory, one tile at a time */
                    for (int j = 4; j < 8 && k0 == 0 && r + j < r1; j++)
                        for (int v = 0; v < 4; v++)
                            __builtin_prefetch(o->y + (size_t)(r + j) * o->ldy + c + 16 * v, 1);
                    OA_TILE(4, 4);
                }
                for (; r < r1; r++)
                    OA_TILE(1, 4);
            } else {
                for (; r + 4 <= r1; r += 4)
                    OA_TILE(4, 1);
                for (; r < r1; r++)
                    OA_TILE(1, 1);
            }
        }
        c += 16 * nv;
    }
    for (int r = r0; r < r1 && cv < c1; r++)
        for (int c = cv; c < c1; c++) {
            float acc = o->y[(size_t)r * o->ldy + c];
            for (int k = 0; k < o->K; k++) {
                float prod =
                    o->b[(size_t)k * o->ldb + c] * o->a[(size_t)r * o->a_r + (size_t)k * o->a_k];
                acc += prod;
            }
            o->y[(size_t)r * o->ldy + c] = acc;
        }
}

/* Up to three independent products in one pool run. Each is split across the threads by
 * 16-column units or, if it has few columns (LoRA's dB), by 4-row bands. */
struct oa_job {
    int n;
    struct oa_ctx o[3];
};

static void oa_worker(void *arg, int ith, int nth)
{
    const struct oa_job *j = arg;
    for (int i = 0; i < j->n; i++) {
        const struct oa_ctx *o = &j->o[i];
        long u0, u1;
        if (o->n_col < 64 && o->R >= 64) {
            tw_pool_slice((o->R + 3) / 4, ith, nth, &u0, &u1);
            if (u0 < u1)
                oa_cols(o, (int)u0 * 4, u1 * 4 < o->R ? (int)u1 * 4 : o->R, 0, o->n_col);
        } else {
            tw_pool_slice((o->n_col + 15) / 16, ith, nth, &u0, &u1);
            if (u0 < u1)
                oa_cols(o, 0, o->R, (int)u0 * 16, u1 * 16 < o->n_col ? (int)u1 * 16 : o->n_col);
        }
    }
}

static void oa_run(struct oa_job *j, struct tw_pool *pool)
{
    if (j->n)
        tw_pool_run(pool, oa_worker, j);
}

/* ---- matmul backward through the kq kernels ---- */

/* Output rows dequantized per block (quantized W): the block [MMB][n_in] stays small. */
#define MMB 256

size_t train_matmul_bwd_kq_scratch(int n_tok, int n_in)
{
    (void)n_tok;
    return (size_t)n_in * MMB;
}

struct mmb_ctx {
    enum gguf_ttype type;
    const unsigned char *w;
    size_t row_bytes;
    int n_in, o0, ob; // the current block of output rows
    float *rows;      // [ob][n_in] dequantized rows
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

/* dx += dy W and dW += dy^T x as outer-product sums (oa_cols), straight from W for F32; a
 * quantized W is dequantized MMB rows at a time into scratch and summed block after block, so
 * every element still adds its terms in row order. */
void train_matmul_bwd_kq(enum gguf_ttype t, const void *w, const float *x, const float *dy,
                         int n_tok, int n_in, int n_out, float *dx, float *dw, float *db,
                         float *scratch, struct tw_pool *pool)
{
    struct oa_job j = {.n = 0};
    TW_ASSERT(kq_type_supported(t) && (!dw || t == GGUF_T_F32));
    if (dx)
        j.o[j.n++] = (struct oa_ctx){.R = n_tok,
                                     .K = n_out,
                                     .n_col = n_in,
                                     .kb = OA_KB_DX,
                                     .a = dy,
                                     .a_r = (size_t)n_out,
                                     .a_k = 1,
                                     .b = w,
                                     .ldb = (size_t)n_in,
                                     .y = dx,
                                     .ldy = (size_t)n_in};
    if (dw)
        j.o[j.n++] = (struct oa_ctx){.R = n_out,
                                     .K = n_tok,
                                     .n_col = n_in,
                                     .kb = OA_KB_DW,
                                     .a = dy,
                                     .a_r = 1,
                                     .a_k = (size_t)n_out,
                                     .b = x,
                                     .ldb = (size_t)n_in,
                                     .y = dw,
                                     .ldy = (size_t)n_in};
    if (t == GGUF_T_F32) {
        oa_run(&j, pool);
    } else if (dx) {
        struct mmb_ctx c = {.type = t, .w = w, .n_in = n_in, .rows = scratch};
        c.row_bytes = gguf_row_size(t, n_in);
        j.o[0].b = scratch;
        for (c.o0 = 0; c.o0 < n_out; c.o0 += MMB) {
            c.ob = n_out - c.o0 < MMB ? n_out - c.o0 : MMB;
            tw_pool_run(pool, mmb_dequant, &c);
            j.o[0].a = dy + c.o0;
            j.o[0].K = c.ob;
            oa_run(&j, pool);
        }
    }
    for (int tt = 0; db && tt < n_tok; tt++)
        for (int oo = 0; oo < n_out; oo++)
            db[oo] += dy[(size_t)tt * n_out + oo];
}

/* ---- attention through the kq kernels ----
 *
 * Each thread takes whole heads (forward: (sequence, head) pairs; backward: (sequence, kv head)
 * pairs with their query heads, since those share dK and dV) and runs their small matmuls on
 * its own, in its own slice of the scratch: two pool barriers per call instead of several per
 * head. A head's arithmetic does not depend on the thread that runs it. */

/* Floats of scratch per thread. */
static size_t akq_per_thread(int T, int hd)
{
    return 3 * (size_t)T * T + 8 * (size_t)T * hd;
}

size_t train_attn_kq_scratch(int T, int hd, int n_threads)
{
    return akq_per_thread(T, hd) * (size_t)(n_threads > 1 ? n_threads : 1);
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

struct akq_ctx {
    const float *q, *k, *v, *att_in, *lse_in, *dout;
    float *att, *lse, *out, *dq, *dk, *dv, *scratch;
    int n_seq, T, n_head, n_head_kv, hd;
};

static void akq_fwd_head(const struct akq_ctx *c, struct akq *s, int sq, int h)
{
    int T = c->T, hd = c->hd, n_head = c->n_head, group = c->n_head / c->n_head_kv;
    size_t qs = (size_t)n_head * hd, ks = (size_t)c->n_head_kv * hd;
    float scale = 1.0f / sqrtf((float)hd);
    size_t kvo = (size_t)sq * T * ks + (size_t)(h / group) * hd;
    float *p = c->att ? c->att + (((size_t)sq * n_head + h) * T) * T : s->s2;
    float *lh = c->lse ? c->lse + ((size_t)sq * n_head + h) * T : NULL;
    akq_gather(c->q + (size_t)sq * T * qs + (size_t)h * hd, qs, T, hd, s->a, NULL);
    akq_gather(c->k + kvo, ks, T, hd, s->b, NULL);
    akq_gather(c->v + kvo, ks, T, hd, s->c, s->ct);
    kq_matmul(GGUF_T_F32, s->b, hd, T, s->a, T, s->s1, NULL); // s1[i][j] = q_i . k_j
    for (int i = 0; i < T; i++) {
        const float *si = s->s1 + (size_t)i * T;
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
    kq_matmul(GGUF_T_F32, s->ct, T, hd, p, T, s->d, NULL); // o_i = sum_j p_ij v_j
    for (int t = 0; t < T; t++)
        memcpy(c->out + ((size_t)sq * T + t) * qs + (size_t)h * hd, s->d + (size_t)t * hd,
               (size_t)hd * sizeof(float));
}

static void akq_fwd_worker(void *arg, int ith, int nth)
{
    const struct akq_ctx *c = arg;
    struct akq s;
    long u0, u1;
    akq_carve(&s, c->scratch + akq_per_thread(c->T, c->hd) * (size_t)ith, c->T, c->hd);
    tw_pool_slice((long)c->n_seq * c->n_head, ith, nth, &u0, &u1);
    for (long u = u0; u < u1; u++)
        akq_fwd_head(c, &s, (int)(u / c->n_head), (int)(u % c->n_head));
}

void train_attn_fwd_kq(const float *q, const float *k, const float *v, int n_seq, int T, int n_head,
                       int n_head_kv, int hd, float *att, float *lse, float *out, float *scratch,
                       struct tw_pool *pool)
{
    struct akq_ctx c = {.q = q,
                        .k = k,
                        .v = v,
                        .att = att,
                        .lse = lse,
                        .out = out,
                        .scratch = scratch,
                        .n_seq = n_seq,
                        .T = T,
                        .n_head = n_head,
                        .n_head_kv = n_head_kv,
                        .hd = hd};
    tw_pool_run(pool, akq_fwd_worker, &c);
}

static void akq_bwd_head(const struct akq_ctx *c, struct akq *s, int sq, int h)
{
    int T = c->T, hd = c->hd, n_head = c->n_head, group = c->n_head / c->n_head_kv;
    size_t qs = (size_t)n_head * hd, ks = (size_t)c->n_head_kv * hd;
    float scale = 1.0f / sqrtf((float)hd);
    size_t qo = (size_t)sq * T * qs + (size_t)h * hd;
    size_t kvo = (size_t)sq * T * ks + (size_t)(h / group) * hd;
    const float *p = c->att_in ? c->att_in + (((size_t)sq * n_head + h) * T) * T : s->s3;
    akq_gather(c->q + qo, qs, T, hd, s->a, s->at);
    akq_gather(c->k + kvo, ks, T, hd, s->b, s->bt);
    if (!c->att_in) { // recompute P = exp(q.k scale - lse) instead of keeping T^2 per head
        const float *lh = c->lse_in + ((size_t)sq * n_head + h) * T;
        kq_matmul(GGUF_T_F32, s->b, hd, T, s->a, T, s->s3, NULL);
        for (int i = 0; i < T; i++) {
            float *pi = s->s3 + (size_t)i * T;
            for (int j = 0; j <= i; j++)
                pi[j] = expf(pi[j] * scale - lh[i]);
            for (int j = i + 1; j < T; j++)
                pi[j] = 0;
        }
    }
    akq_gather(c->v + kvo, ks, T, hd, s->c, NULL);
    akq_gather(c->dout + qo, qs, T, hd, s->d, s->dt);
    /* dP = dO V^T; dS = P (dP - rowsum(P dP)) scale, in s1 */
    kq_matmul(GGUF_T_F32, s->c, hd, T, s->d, T, s->s1, NULL);
    for (int i = 0; i < T; i++) {
        const float *pi = p + (size_t)i * T;
        float *di = s->s1 + (size_t)i * T, sum = 0;
        for (int j = 0; j <= i; j++)
            sum += pi[j] * di[j];
        for (int j = 0; j <= i; j++)
            di[j] = pi[j] * (di[j] - sum) * scale;
        for (int j = i + 1; j < T; j++)
            di[j] = 0;
    }
    if (c->dq) { // dQ = dS K
        kq_matmul(GGUF_T_F32, s->bt, T, hd, s->s1, T, s->a, NULL);
        akq_scatter_add(c->dq + qo, qs, T, hd, s->a);
    }
    /* s1 holds dS, p (att or s3) P; s2 takes each transpose in turn */
    if (c->dv) { // dV = P^T dO
        akq_transpose(p, T, T, s->s2);
        kq_matmul(GGUF_T_F32, s->dt, T, hd, s->s2, T, s->c, NULL);
        akq_scatter_add(c->dv + kvo, ks, T, hd, s->c);
    }
    if (c->dk) { // dK = dS^T Q
        akq_transpose(s->s1, T, T, s->s2);
        kq_matmul(GGUF_T_F32, s->at, T, hd, s->s2, T, s->b, NULL);
        akq_scatter_add(c->dk + kvo, ks, T, hd, s->b);
    }
}

/* A unit is a (sequence, kv head) pair: its query heads go in order, so dK and dV gather their
 * terms in the same order whatever the split. */
static void akq_bwd_worker(void *arg, int ith, int nth)
{
    const struct akq_ctx *c = arg;
    struct akq s;
    int group = c->n_head / c->n_head_kv;
    long u0, u1;
    akq_carve(&s, c->scratch + akq_per_thread(c->T, c->hd) * (size_t)ith, c->T, c->hd);
    tw_pool_slice((long)c->n_seq * c->n_head_kv, ith, nth, &u0, &u1);
    for (long u = u0; u < u1; u++) {
        int sq = (int)(u / c->n_head_kv), kv = (int)(u % c->n_head_kv);
        for (int h = kv * group; h < (kv + 1) * group; h++)
            akq_bwd_head(c, &s, sq, h);
    }
}

void train_attn_bwd_kq(const float *dout, const float *q, const float *k, const float *v,
                       const float *att, const float *lse, int n_seq, int T, int n_head,
                       int n_head_kv, int hd, float *dq, float *dk, float *dv, float *scratch,
                       struct tw_pool *pool)
{
    struct akq_ctx c = {.q = q,
                        .k = k,
                        .v = v,
                        .att_in = att,
                        .lse_in = lse,
                        .dout = dout,
                        .dq = dq,
                        .dk = dk,
                        .dv = dv,
                        .scratch = scratch,
                        .n_seq = n_seq,
                        .T = T,
                        .n_head = n_head,
                        .n_head_kv = n_head_kv,
                        .hd = hd};
    tw_pool_run(pool, akq_bwd_worker, &c);
}

/* ---- LoRA through the kq kernels ---- */

size_t train_lora_kq_scratch(int n_tok, int n_in, int n_out, int r)
{
    size_t t = (size_t)n_tok, i = (size_t)n_in, o = (size_t)n_out, k = (size_t)r;
    return 2 * t * i + k * o + 2 * t * k;
}

struct lkq {
    float *xd;  // [n_tok][n_in] the dropped-out input
    float *tmp; // [n_tok][n_in] (du A) before the dropout mask
    float *bt;  // [r][n_out] B transposed
    float *us;  // [n_tok][r] scale * u
    float *du;  // [n_tok][r]
};

static void lkq_carve(struct lkq *s, float *p, int n_tok, int n_in, int n_out, int r)
{
    size_t t = (size_t)n_tok, i = (size_t)n_in, o = (size_t)n_out, k = (size_t)r;
    s->xd = p;
    s->tmp = s->xd + t * i;
    s->bt = s->tmp + t * i;
    s->us = s->bt + k * o;
    s->du = s->us + t * k;
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

/* u = A xd through kq_matmul (r rows); y += (scale u) B^T and the whole backward as outer-product
 * sums (train_matmul_bwd_kq, F32): threaded, no transposes but B's, every element's terms in a
 * fixed order whatever the thread count. */
void train_lora_fwd_kq(const float *x, const float *drop, int n_tok, int n_in, int n_out, int r,
                       const float *a, const float *b, float scale, float *u, float *y,
                       float *scratch, struct tw_pool *pool)
{
    struct lkq s;
    const float *xd;
    lkq_carve(&s, scratch, n_tok, n_in, n_out, r);
    xd = lkq_input(x, drop, (size_t)n_tok * n_in, s.xd);
    kq_matmul(GGUF_T_F32, a, n_in, r, xd, n_tok, u, pool); // u = A xd
    akq_transpose(b, n_out, r, s.bt);
    for (size_t e = 0; e < (size_t)n_tok * r; e++)
        s.us[e] = scale * u[e];
    /* y[t][o] += sum_k us[t][k] B[o][k]: "dx += dy W" with W = B^T (r rows of n_out) */
    train_matmul_bwd_kq(GGUF_T_F32, s.bt, NULL, s.us, n_tok, n_out, r, y, NULL, NULL, NULL, pool);
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
    for (size_t e = 0; e < (size_t)n_tok * r; e++) {
        s.us[e] = scale * u[e];
        s.du[e] = 0;
    }
    /* du = dy B (then scaled), dB += dy^T (scale u): W = B, n_out rows of r */
    train_matmul_bwd_kq(GGUF_T_F32, b, s.us, dy, n_tok, r, n_out, s.du, db, NULL, NULL, pool);
    for (size_t e = 0; e < (size_t)n_tok * r; e++)
        s.du[e] *= scale;
    /* dx += (du A) * drop, dA += du^T xd: W = A, r rows of n_in */
    float *dxa = dx;
    if (dx && drop) {
        memset(s.tmp, 0, (size_t)n_tok * n_in * sizeof(float));
        dxa = s.tmp;
    }
    train_matmul_bwd_kq(GGUF_T_F32, a, xd, s.du, n_tok, n_in, r, dxa, da, NULL, NULL, pool);
    if (dx && drop)
        for (size_t e = 0; e < (size_t)n_tok * n_in; e++)
            dx[e] += s.tmp[e] * drop[e];
}
