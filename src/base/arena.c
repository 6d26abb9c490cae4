/* arena.c - chunked bump allocator with cleanup callbacks. */
#include "base/arena.h"

#include "base/err.h"
#include "base/mem.h"

#include <string.h>

struct tw_arena_chunk {
    struct tw_arena_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

struct tw_arena_cleanup {
    struct tw_arena_cleanup *next;
    void (*fn)(void *);
    void *arg;
};

void tw_arena_init(struct tw_arena *a, size_t chunk_size)
{
    a->head = NULL;
    a->cleanups = NULL;
    a->chunk_size = chunk_size ? chunk_size : 64 * 1024;
    a->used = 0;
}

void tw_arena_release(struct tw_arena *a)
{
    while (a->cleanups) {
        struct tw_arena_cleanup *c = a->cleanups;
        a->cleanups = c->next;
        c->fn(c->arg);
    }
    while (a->head) {
        struct tw_arena_chunk *c = a->head;
        a->head = c->next;
        tw_free(c);
    }
    a->used = 0;
}

void *tw_arena_alloc(struct tw_arena *a, size_t size)
{
    struct tw_arena_chunk *c = a->head;
    size_t need = (size + 15) & ~(size_t)15;
    void *p;

    if (need < size)
        return NULL;
    if (!c || c->size - c->used < need) {
        size_t csize = need > a->chunk_size ? need : a->chunk_size;
        size_t total;
        if (tw_size_add(sizeof(*c), csize, &total) < 0)
            return NULL;
        c = tw_malloc(total);
        if (!c)
            return NULL;
        c->size = csize;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    p = c->data + c->used;
    c->used += need;
    a->used += need;
    return p;
}

void *tw_arena_calloc(struct tw_arena *a, size_t n, size_t size)
{
    size_t total;
    void *p;
    if (tw_size_mul(n, size, &total) < 0)
        return NULL;
    p = tw_arena_alloc(a, total);
    if (p)
        memset(p, 0, total);
    return p;
}

char *tw_arena_strndup(struct tw_arena *a, const char *s, size_t len)
{
    char *p = tw_arena_alloc(a, len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *tw_arena_strdup(struct tw_arena *a, const char *s)
{
    return tw_arena_strndup(a, s, strlen(s));
}

int tw_arena_on_free(struct tw_arena *a, void (*fn)(void *), void *arg)
{
    struct tw_arena_cleanup *c = tw_arena_alloc(a, sizeof(*c));
    if (!c)
        return TW_ENOMEM;
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
    return 0;
}
