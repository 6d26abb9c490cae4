/* test_pool.c - the thread pool: every slice runs exactly once per run, runs are ordered (a run
 * sees all writes of the previous one), sizes and the NULL pool. */
#include "base/mem.h"
#include "base/pool.h"
#include "test.h"

#include <stdatomic.h>
#include <time.h>

struct count_ctx {
    _Atomic int calls;
    _Atomic long mask; // bit ith set by worker ith
    int nth_seen[64];
};

static void count_fn(void *arg, int ith, int nth)
{
    struct count_ctx *c = arg;
    atomic_fetch_add(&c->calls, 1);
    atomic_fetch_or(&c->mask, 1L << ith);
    c->nth_seen[ith] = nth;
}

TEST(pool_each_ith_once)
{
    struct tw_err err = TW_ERR_INIT;
    for (int n = 1; n <= 5; n++) {
        struct tw_pool *p = NULL;
        CHECK_OK(tw_pool_new(n, &p, &err), &err);
        CHECK_EQ_INT(tw_pool_size(p), n);
        for (int run = 0; run < 200; run++) {
            struct count_ctx c = {0};
            tw_pool_run(p, count_fn, &c);
            CHECK_EQ_INT(atomic_load(&c.calls), n);
            CHECK_EQ_INT(atomic_load(&c.mask), (1L << n) - 1);
            for (int i = 0; i < n; i++)
                CHECK_EQ_INT(c.nth_seen[i], n);
        }
        tw_pool_free(p);
    }
}

TEST(pool_null_runs_on_caller)
{
    struct count_ctx c = {0};
    tw_pool_run(NULL, count_fn, &c);
    CHECK_EQ_INT(atomic_load(&c.calls), 1);
    CHECK_EQ_INT(c.nth_seen[0], 1);
    CHECK_EQ_INT(tw_pool_size(NULL), 1);
    tw_pool_free(NULL);
}

/* Each run adds its slice of a[i] += b[i], then the next run reads what all threads wrote in the
 * previous one: a missing barrier or a lost wakeup shows up as a wrong sum (or a hang). */
struct chain_ctx {
    long n;
    const long *src; // read, written by the previous run
    long *dst;
};

static void chain_fn(void *arg, int ith, int nth)
{
    struct chain_ctx *c = arg;
    long s, e;
    tw_pool_slice(c->n, ith, nth, &s, &e);
    for (long i = s; i < e; i++)
        c->dst[i] = c->src[(i + 1) % c->n] + 1;
}

TEST(pool_runs_are_ordered)
{
    struct tw_err err = TW_ERR_INIT;
    struct tw_pool *p = NULL;
    const long n = 1001;
    long *x = tw_calloc((size_t)n, sizeof(long)), *y = tw_calloc((size_t)n, sizeof(long));
    CHECK(x && y);
    CHECK_OK(tw_pool_new(3, &p, &err), &err);
    for (int run = 0; run < 2000; run++) {
        struct chain_ctx c = {n, run % 2 ? y : x, run % 2 ? x : y};
        tw_pool_run(p, chain_fn, &c);
    }
    /* After R runs every element is R (each run adds one to a neighbour's value). */
    for (long i = 0; i < n; i++)
        CHECK_EQ_INT(x[i], 2000);
    tw_pool_free(p);
    tw_free(x);
    tw_free(y);
}

/* Workers fall asleep between runs far apart, and wake up again. */
TEST(pool_wakes_after_sleep)
{
    struct tw_err err = TW_ERR_INIT;
    struct tw_pool *p = NULL;
    CHECK_OK(tw_pool_new(2, &p, &err), &err);
    for (int run = 0; run < 5; run++) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        struct count_ctx c = {0};
        tw_pool_run(p, count_fn, &c);
        CHECK_EQ_INT(atomic_load(&c.calls), 2);
    }
    tw_pool_free(p);
}

TEST(pool_slice_covers)
{
    for (long n = 0; n < 40; n++)
        for (int nth = 1; nth <= 7; nth++) {
            long prev = 0;
            for (int i = 0; i < nth; i++) {
                long s, e;
                tw_pool_slice(n, i, nth, &s, &e);
                CHECK_EQ_INT(s, prev);
                CHECK(e >= s);
                prev = e;
            }
            CHECK_EQ_INT(prev, n);
        }
}

TEST(pool_limits)
{
    struct tw_err err = TW_ERR_INIT;
    struct tw_pool *p = NULL;
    CHECK(tw_pool_new(100000, &p, &err) == TW_ELIMIT);
    CHECK(p == NULL);
    CHECK(strstr(err.msg, "100000") != NULL);
    tw_err_clear(&err);
    CHECK_OK(tw_pool_new(0, &p, &err), &err); // online CPUs
    CHECK(tw_pool_size(p) >= 1);
    tw_pool_free(p);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
