/* attn.h - the decoder's causal attention over its KV cache, and the fast element-wise kernels
 * of the forward pass (exp, SwiGLU).
 *
 * Cache layout, per layer (d = head_dim, dp = d rounded up to 16, BK = ATTN_BK):
 *
 *     k[kv_head][pos / BK][i < d][pos % BK]    keys transposed in blocks of BK positions
 *     v[kv_head][pos][j < dp]                  values, rows padded with zeros to dp
 *
 * in F32 or F16. Keys are stored transposed so that the scores of a block of query rows against
 * a block of BK keys are broadcast-multiply-adds over whole vectors (no horizontal sums), for the
 * one-token decode as well as for the prefill; value rows are padded so that P.V is whole
 * vectors too.
 *
 * attn_run computes, for every query row (token t, head h) of a chunk of T tokens at positions
 * pos0..pos0+T-1 (with an F16 cache, q rounded to F16 first, as llama.cpp's F16 dot products
 * round their activations),
 *
 *     out[t][h] = sum_p softmax_p(scale * q[t][h] . k[p][h / group]) v[p][h / group],
 *                 p = 0..pos0+t (causal)
 *
 * tiled as flash attention: a tile is up to ATTN_ROWS query rows of one K/V head group, run
 * against blocks of BK keys with an online softmax (running max and sum); blocks past a tile's
 * last position are skipped. Each row's result depends only on its own query and the cache
 * (blocks start at multiples of BK), not on the tiling, the chunk or the thread count. Kernels
 * for AVX-512 and AVX2 are chosen at run time from kq_isa(); a plain version runs elsewhere.
 *
 * Thread-safety: all functions are pure apart from the memory they are given; attn_run may run
 * on several threads at once with distinct 'ith' (each uses its own part of the scratch).
 */
#ifndef TW_ATTN_H
#define TW_ATTN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ATTN_BK 32   // key positions per block of the K layout
#define ATTN_ROWS 64 // query rows per tile (at least one token's group of heads)

/* Shapes of one model's attention and of its cache. Fill with attn_dims_init. */
struct attn_dims {
    int n_head;  // H query heads
    int n_kv;    // K/V heads, divides n_head
    int d;       // head_dim
    int dp;      // d rounded up to 16: stride of a value row
    int n_blk;   // blocks of ATTN_BK positions the cache holds
    bool f16;    // cache elements are F16 (else F32)
    int tile_t;  // tokens per tile: max(1, ATTN_ROWS / group)
};

/* Sets the shapes for a cache of at least n_ctx positions. The caller has checked that
 * 0 < n_kv, n_kv divides n_head, 0 < d and 0 < n_ctx. */
void attn_dims_init(struct attn_dims *a, int n_head, int n_kv, int d, int n_ctx, bool f16);
/* Elements (of 2 or 4 bytes) of one layer's K cache and of its V cache. Allocate them zeroed:
 * the padding lanes are read (multiplied by zero weights) and must hold finite values. */
size_t attn_k_elems(const struct attn_dims *a);
size_t attn_v_elems(const struct attn_dims *a);
/* Bytes of scratch attn_run needs for each worker (a multiple of 64). */
size_t attn_scratch_size(const struct attn_dims *a);

/* Writes the keys and values of T tokens at positions pos0.. (kc, vc: (T, n_kv*d) f32 rows)
 * into one layer's cache k, v. pos0 + T must be within n_blk * ATTN_BK. */
void attn_store(const struct attn_dims *a, void *k, void *v, int pos0, int T, const float *kc,
                const float *vc);

/* One call's attention over one layer. */
struct attn_job {
    const struct attn_dims *a;
    const void *k, *v;     // this layer's cache, positions 0..pos0+T-1 written
    const float *q;        // (T, n_head*d) queries, already rotated
    float *out;            // (T, n_head*d)
    int T, pos0;
    float scale;           // usually 1/sqrt(d)
    unsigned char *scratch; // nth * attn_scratch_size(a) bytes, as aligned as malloc gives
};

/* Worker ith of nth (tw_pool_run's signature; arg is a struct attn_job): computes its share of
 * the tiles of job->out. */
void attn_run(void *arg, int ith, int nth);

/* The definition, one (token, head) at a time, on plain row-major caches kr, vr: (pos, n_kv*d)
 * f32, softmax summed in double. For tests; a->f16 is ignored (round q, k and v first). */
void attn_ref(const struct attn_dims *a, const float *kr, const float *vr, const float *q,
              float *out, int T, int pos0, float scale);

/* y[i] = exp(x[i]) for n values, to about 2 ulp (see attn.c); x below about -104 gives 0, above
 * about 88.7 a value of 2^128 scale (inf). NaN gives an unspecified value. y may equal x. The
 * result for x[i] does not depend on i or n. */
void attn_exp(const float *x, float *y, size_t n);
/* g[i] = silu(g[i]) * u[i] = g[i] / (1 + exp(-g[i])) * u[i] (SwiGLU), with attn_exp's exp. */
void attn_silu_mul(float *g, const float *u, size_t n);

#endif
