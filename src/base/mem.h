/* mem.h - the one allocator every module goes through (STYLE §5).
 *
 * All allocation goes through tw_malloc and friends so that tests can fail the Nth call
 * (tw_mem_fail_after) and count live blocks (tw_mem_live) to find leaks. The counters are
 * atomic; allocation is thread-safe like malloc's.
 */
#ifndef TW_MEM_H
#define TW_MEM_H

#include <stddef.h>

void *tw_malloc(size_t size);
void *tw_calloc(size_t n, size_t size);
void *tw_realloc(void *p, size_t size);
/* n*size with an overflow check: NULL on overflow or exhaustion. */
void *tw_mallocarray(size_t n, size_t size);
void *tw_reallocarray(void *p, size_t n, size_t size);
void tw_free(void *p);
/* A NUL-terminated copy of s (or of s[0..len)); NULL on exhaustion. */
char *tw_strdup(const char *s);
char *tw_strndup(const char *s, size_t len);

/* Testing: make the allocation after the next 'n' successful ones fail (n < 0: never). */
void tw_mem_fail_after(long n);
/* Number of blocks handed out and not yet freed through tw_free (tw_malloc family only). */
long tw_mem_live(void);

/* Size arithmetic that reports overflow: returns 0 and sets *out, or -1 on overflow. */
static inline int tw_size_mul(size_t a, size_t b, size_t *out)
{
    if (a && b > (size_t)-1 / a)
        return -1;
    *out = a * b;
    return 0;
}
static inline int tw_size_add(size_t a, size_t b, size_t *out)
{
    if (b > (size_t)-1 - a)
        return -1;
    *out = a + b;
    return 0;
}

#endif
