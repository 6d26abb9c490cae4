/* pool.h - a fixed pool of worker threads for data-parallel kernels (STYLE §6) [ggml, llama2.c].
 *
 * tw_pool_run(pool, fn, ctx) calls fn(ctx, ith, nth) once for every ith in [0, nth) where nth is
 * the pool's thread count (the calling thread takes ith = 0) and returns when all are done. Each
 * worker takes a contiguous slice of the outer loop; no locks inside kernels. A NULL pool runs
 * fn(ctx, 0, 1) on the caller. One thread drives a pool at a time.
 */
#ifndef TW_POOL_H
#define TW_POOL_H

#include "base/err.h"

struct tw_pool;

/* n_threads <= 0 means the number of online CPUs. */
int tw_pool_new(int n_threads, struct tw_pool **out, struct tw_err *err);
void tw_pool_free(struct tw_pool *pool);
int tw_pool_size(const struct tw_pool *pool);
void tw_pool_run(struct tw_pool *pool, void (*fn)(void *ctx, int ith, int nth), void *ctx);

/* The slice [*start, *end) of n items for worker ith of nth. */
static inline void tw_pool_slice(long n, int ith, int nth, long *start, long *end)
{
    long per = (n + nth - 1) / nth;
    *start = per * ith < n ? per * ith : n;
    *end = *start + per < n ? *start + per : n;
}

#endif
