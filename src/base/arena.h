/* arena.h - a scope's memory, freed in one go (STYLE §5) [nginx pool, ggml context].
 *
 * Allocations are carved from chunks; tw_arena_release() frees them all and runs the cleanup
 * callbacks registered with tw_arena_on_free() in reverse order (to close fds with the scope).
 * An arena belongs to one thread.
 */
#ifndef TW_ARENA_H
#define TW_ARENA_H

#include <stddef.h>

struct tw_arena_chunk;
struct tw_arena_cleanup;

struct tw_arena {
    struct tw_arena_chunk *head;       // current chunk (private)
    struct tw_arena_cleanup *cleanups; // LIFO (private)
    size_t chunk_size;                 // default chunk payload size
    size_t used;                       // total bytes handed out
};

#define TW_ARENA_INIT {NULL, NULL, 64 * 1024, 0}

void tw_arena_init(struct tw_arena *a, size_t chunk_size);
void tw_arena_release(struct tw_arena *a);
/* 16-byte aligned, uninitialized; NULL on exhaustion or overflow. */
void *tw_arena_alloc(struct tw_arena *a, size_t size);
void *tw_arena_calloc(struct tw_arena *a, size_t n, size_t size);
char *tw_arena_strndup(struct tw_arena *a, const char *s, size_t len);
char *tw_arena_strdup(struct tw_arena *a, const char *s);
/* Runs fn(arg) at release. Returns 0 or TW_ENOMEM. */
int tw_arena_on_free(struct tw_arena *a, void (*fn)(void *), void *arg);

#endif
