/* pool.c - fixed pool of worker threads (see pool.h).
 *
 * One run is one "generation". The driver publishes fn/ctx, sets 'pending' to the number of
 * workers and bumps 'gen' (release); workers that see a new generation run their slice and
 * decrement 'pending' (acq_rel); the driver waits for 'pending' == 0 (acquire). Both sides spin
 * briefly (runs come back to back during a forward pass) and then sleep on a condition variable.
 * Lost wakeups are impossible because 'gen' is only bumped, and 'pending' only checked before
 * sleeping, under 'mu', and the sleeper re-checks under 'mu' before every wait.
 */
#include "base/pool.h"

#include "base/mem.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#define POOL_MAX_THREADS 256
#define POOL_SPIN 20000 // pause iterations before sleeping (tens of microseconds)

struct pool_worker {
    struct tw_pool *pool;
    pthread_t thread;
    int ith;
};

struct tw_pool {
    int n_threads;
    struct pool_worker *workers; // n_threads - 1 (the driver is ith 0)
    pthread_mutex_t mu;
    pthread_cond_t cv_work; // workers wait for a new generation
    pthread_cond_t cv_done; // the driver waits for pending == 0
    int n_sleeping;         // workers blocked on cv_work (under mu)
    bool driver_sleeping;   // the driver is blocked on cv_done (under mu)
    bool stop;              // under mu, also read atomically by spinners through 'gen'
    _Atomic unsigned gen;
    _Atomic int pending;
    void (*fn)(void *ctx, int ith, int nth); // written before gen is bumped
    void *ctx;
};

/* One step of a spin-wait: a pause, and every 1024th step a sched_yield, so that a spinner
 * gives its core to any other runnable thread (a loaded machine, more threads than cores) and
 * costs one cheap system call when there is none. */
static inline void pool_pause(int i)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if ((i & 1023) == 1023)
        sched_yield();
}

static void *pool_main(void *arg)
{
    struct pool_worker *w = arg;
    struct tw_pool *p = w->pool;
    unsigned seen = 0;

    for (;;) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        for (int i = 0; g == seen && i < POOL_SPIN; i++) {
            pool_pause(i);
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            p->n_sleeping++;
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && !p->stop)
                pthread_cond_wait(&p->cv_work, &p->mu);
            p->n_sleeping--;
            bool stop = p->stop;
            pthread_mutex_unlock(&p->mu);
            if (stop)
                return NULL;
        }
        seen = g;
        p->fn(p->ctx, w->ith, p->n_threads);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            if (p->driver_sleeping)
                pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

int tw_pool_new(int n_threads, struct tw_pool **out, struct tw_err *err)
{
    struct tw_pool *p;
    int rc;

    *out = NULL;
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    if (n_threads > POOL_MAX_THREADS)
        return tw_errf(err, TW_ELIMIT, "thread pool of %d threads exceeds the limit of %d",
                       n_threads, POOL_MAX_THREADS);
    p = tw_calloc(1, sizeof(*p));
    if (!p)
        return tw_errf(err, TW_ENOMEM, "out of memory creating a thread pool");
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    if (n_threads > 1) {
        p->workers = tw_calloc((size_t)n_threads - 1, sizeof(*p->workers));
        if (!p->workers) {
            rc = tw_errf(err, TW_ENOMEM, "out of memory creating a pool of %d threads",
                         n_threads);
            goto fail_free;
        }
    }
    for (int i = 0; i < n_threads - 1; i++) {
        struct pool_worker *w = &p->workers[i];
        w->pool = p;
        w->ith = i + 1;
        if (pthread_create(&w->thread, NULL, pool_main, w) != 0) {
            p->n_threads = i + 1; // tw_pool_free joins the ones started
            tw_pool_free(p);
            return tw_errf(err, TW_EINTERNAL, "cannot start thread %d of a pool of %d", i + 1,
                           n_threads);
        }
    }
    *out = p;
    return TW_OK;
fail_free:
    pthread_cond_destroy(&p->cv_done);
    pthread_cond_destroy(&p->cv_work);
    pthread_mutex_destroy(&p->mu);
    tw_free(p);
    return rc;
}

void tw_pool_free(struct tw_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads - 1; i++)
        pthread_join(p->workers[i].thread, NULL);
    pthread_cond_destroy(&p->cv_done);
    pthread_cond_destroy(&p->cv_work);
    pthread_mutex_destroy(&p->mu);
    tw_free(p->workers);
    tw_free(p);
}

int tw_pool_size(const struct tw_pool *p)
{
    return p ? p->n_threads : 1;
}

void tw_pool_run(struct tw_pool *p, void (*fn)(void *ctx, int ith, int nth), void *ctx)
{
    if (!p || p->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, p->n_threads - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    if (p->n_sleeping)
        pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);

    fn(ctx, 0, p->n_threads);

    for (int i = 0; i < POOL_SPIN; i++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0)
            return;
        pool_pause(i);
    }
    pthread_mutex_lock(&p->mu);
    p->driver_sleeping = true;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0)
        pthread_cond_wait(&p->cv_done, &p->mu);
    p->driver_sleeping = false;
    pthread_mutex_unlock(&p->mu);
}
