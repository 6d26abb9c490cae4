/* mem.c - allocation wrappers with failure injection and a live-block counter. */
#include "base/mem.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long mem_live;
static atomic_long mem_fail_countdown = -1;

static int mem_should_fail(void)
{
    long n = atomic_load(&mem_fail_countdown);
    if (n < 0)
        return 0;
    if (n == 0)
        return 1;
    atomic_fetch_sub(&mem_fail_countdown, 1);
    return 0;
}

void tw_mem_fail_after(long n)
{
    atomic_store(&mem_fail_countdown, n);
}

long tw_mem_live(void)
{
    return atomic_load(&mem_live);
}

void *tw_malloc(size_t size)
{
    void *p;
    if (mem_should_fail())
        return NULL;
    p = malloc(size ? size : 1);
    if (p)
        atomic_fetch_add(&mem_live, 1);
    return p;
}

void *tw_calloc(size_t n, size_t size)
{
    void *p;
    if (mem_should_fail())
        return NULL;
    p = calloc(n ? n : 1, size ? size : 1);
    if (p)
        atomic_fetch_add(&mem_live, 1);
    return p;
}

void *tw_realloc(void *p, size_t size)
{
    void *q;
    if (!p)
        return tw_malloc(size);
    if (mem_should_fail())
        return NULL;
    q = realloc(p, size ? size : 1);
    return q;
}

void *tw_mallocarray(size_t n, size_t size)
{
    size_t total;
    if (tw_size_mul(n, size, &total) < 0)
        return NULL;
    return tw_malloc(total);
}

void *tw_reallocarray(void *p, size_t n, size_t size)
{
    size_t total;
    if (tw_size_mul(n, size, &total) < 0)
        return NULL;
    return tw_realloc(p, total);
}

void tw_free(void *p)
{
    if (!p)
        return;
    atomic_fetch_sub(&mem_live, 1);
    free(p);
}

char *tw_strndup(const char *s, size_t len)
{
    char *p = tw_malloc(len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *tw_strdup(const char *s)
{
    return tw_strndup(s, strlen(s));
}
