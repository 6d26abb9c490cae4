/* hnsw_int.h - the index's in-memory layout, shared by hnsw.c (graph) and hnsw_file.c (files).
 * The layout is drawn in vec.h; the file sections are these arrays as they are in memory. */
#ifndef TW_HNSW_INT_H
#define TW_HNSW_INT_H

#include "vector/vec.h"
#include "vector/vec_int.h"

#include <pthread.h>
#include <stdint.h>

struct hnsw__ctx; // per-search scratch (visited tags, heaps), pooled

struct vec_index {
    pthread_rwlock_t lock;   // shared: searches, saves, getters; exclusive: changes
    struct vec_params p;     //
    uint32_t M0;             // level-0 links per node (2 * M)
    size_t vec_bytes;        // dim * 4, rounded up to 4: where the links start in a node block
    size_t stride;           // bytes per level-0 node block (multiple of 64)
    vec__dist_fn dot;        // kernels, fixed at creation
    vec__dist_fn l2sq;       //

    uint8_t *nodes;          // (cap, stride) level-0 blocks, 64-byte aligned
    void *nodes_raw;         // the allocation 'nodes' is carved from (NULL when mapped)
    uint64_t *ids;           // (cap) slot -> external id
    uint8_t *levels;         // (cap) slot -> top level
    uint8_t *dead;           // (cap) 1 = deleted
    uint32_t *upper_off;     // (cap) slot -> first upper block in 'upper' (levels > 0)
    uint32_t *upper;         // (upper_cap) upper-level link blocks of (1 + M) u32
    size_t upper_len;        // u32 used in 'upper'
    size_t upper_cap;        //
    uint32_t n;              // slots in use (live + deleted)
    uint32_t cap;            // slots allocated
    uint32_t n_dead;         // deleted slots
    int64_t entry;           // entry point slot, -1 when empty
    int max_level;           // level of the entry point
    uint64_t max_seq;        // highest feature-store row sequence contained
    uint64_t rng;            // level generator state

    uint64_t *map_keys;      // id map: open addressing, linear probing (live ids only)
    uint32_t *map_vals;      // slot + 1; 0 = empty
    size_t map_cap;          // power of two
    size_t map_len;          //

    void *file_map;          // mmap of the file the arrays point into (NULL: arrays are owned)
    size_t file_len;         //
    void *file_copy;         // tw_malloc'd buffer the arrays point into (vec_index_load_mem)

    pthread_mutex_t ctx_lock; // guards the scratch pool
    struct hnsw__ctx *ctx_free; // pooled search scratch
};

/* Sets the derived sizes and kernels from idx->p (already validated). */
void hnsw__init_layout(struct vec_index *idx);
/* Checks params; on failure returns 'code' and fills err naming 'what' (an index or a file). */
int hnsw__check_params(const struct vec_params *p, const char *what, int code,
                       struct tw_err *err);
/* Builds the id map from the live slots; TW_EFORMAT on a duplicate live id. */
int hnsw__map_build(struct vec_index *idx, const char *what, struct tw_err *err);
/* Allocates and zeroes the lock and pools of a calloc'd index. */
int hnsw__sync_init(struct vec_index *idx, struct tw_err *err);

static inline float *hnsw__vec(const struct vec_index *idx, uint32_t s)
{
    return (float *)(idx->nodes + (size_t)s * idx->stride);
}

static inline uint32_t *hnsw__links0(const struct vec_index *idx, uint32_t s)
{
    return (uint32_t *)(idx->nodes + (size_t)s * idx->stride + idx->vec_bytes);
}

static inline uint32_t *hnsw__links(const struct vec_index *idx, uint32_t s, int level)
{
    if (level == 0)
        return hnsw__links0(idx, s);
    return idx->upper + idx->upper_off[s] + (size_t)(level - 1) * (1 + idx->p.M);
}

#endif
