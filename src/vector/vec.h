/* vec.h - the feature store's vector index: HNSW graph, exact search, distance kernels.
 *
 * An index holds float vectors of one dimension under caller-chosen 64-bit external ids (a chunk
 * row id) and answers k-nearest-neighbour queries, approximately through a Hierarchical Navigable
 * Small World graph (Malkov & Yashunin) or exactly by a scan. Metrics:
 *
 *     VEC_METRIC_COSINE   dist = 1 - cos(a, b)    vectors are L2-normalized on insert and query
 *     VEC_METRIC_DOT      dist = 1 - a.b          inner product, as hnswlib's "ip" space
 *     VEC_METRIC_L2       dist = |a - b|^2        squared Euclidean
 *
 * Smaller is closer for every metric; hits come back sorted by increasing dist (ties by id).
 *
 * Data model. Every inserted vector takes the next internal slot. A slot is live or deleted: a
 * delete only marks a tombstone, so the graph stays navigable and deleted ids are never returned;
 * vec_index_compact() rebuilds the graph from the live slots. Ids map to live slots one to one.
 *
 *     level-0 node block (one per slot, 'stride' bytes, 64-byte aligned):
 *     +--------------------------+-----------+------------------------+---------+
 *     | float vec[dim]           | u32 count | u32 links[M0] (slots)  | padding |
 *     +--------------------------+-----------+------------------------+---------+
 *     upper levels: slot s with level L > 0 owns L blocks of (1 + M) u32, [count, links[M]], at
 *     upper[upper_off[s] + (l - 1) * (1 + M)] for l = 1..L.
 *
 * File format (vec_index_save / vec_index_open), little endian, version 1:
 *
 *     offset 0    header, 256 bytes: magic "TWVECIDX", version, header size, dim, metric, M, M0,
 *                 ef_construction, ef_search, n slots, n deleted, max_seq, entry slot, max level,
 *                 stride, upper length, rng state, section offsets, file size, body checksum,
 *                 header checksum
 *     then        nodes (n * stride) | ids (u64[n]) | levels (u8[n]) | deleted (u8[n]) |
 *                 upper_off (u32[n]) | upper (u32[upper_len]), each section 64-byte aligned
 *
 * The file is written to a temporary name, fsynced and renamed over the target, so a crash
 * leaves the old file or the new one. Opening maps the file (no copy), checks both checksums and
 * validates every count, link and offset, so a corrupt, truncated or hostile file is an error
 * that names the file, never a crash. The first change to an opened index copies it to memory.
 * The header carries 'max_seq', the highest feature-store row sequence the index contains, so
 * the owner can catch up from the rows after it (DESIGN §3).
 *
 * Thread-safety: an index has one read-write lock. Searches, saves and the getters take it
 * shared, so any number of threads may search at once; vec_index_add, _delete, _compact and
 * _set_max_seq take it exclusive (one writer at a time, readers wait while it works). A filter
 * callback runs under the shared lock and must not call back into the same index for a write.
 */
#ifndef TW_VEC_H
#define TW_VEC_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

/* ---- distance kernels ---- */

/* Dot product and squared L2 distance of n floats. The plain reference versions are the
 * definition; the dispatched ones use AVX-512 or AVX2 when the CPU has them (TWIN_VEC_ISA=scalar
 * or avx2 forces a lower set) and agree with the reference to float rounding. Pure, thread-safe. */
float vec_dot_ref(const float *a, const float *b, size_t n);
float vec_l2sq_ref(const float *a, const float *b, size_t n);
float vec_dot(const float *a, const float *b, size_t n);
float vec_l2sq(const float *a, const float *b, size_t n);
/* "avx512", "avx2" or "scalar": the kernel set in use. */
const char *vec_isa(void);

/* ---- index ---- */

enum vec_metric { VEC_METRIC_COSINE = 0, VEC_METRIC_DOT = 1, VEC_METRIC_L2 = 2 };

#define VEC_DIM_MAX       65536
#define VEC_M_MAX         128
#define VEC_EF_MAX        65536
#define VEC_SLOTS_MAX     ((uint32_t)1 << 30)
#define VEC_LEVEL_MAX     30

struct vec_params {
    uint32_t dim;             // vector length, 1..VEC_DIM_MAX
    enum vec_metric metric;   //
    uint32_t M;               // links per node on upper levels (2..VEC_M_MAX); 2*M on level 0
    uint32_t ef_construction; // candidate list size while inserting
    uint32_t ef_search;       // default candidate list size while searching (>= k is used)
    uint32_t exact_below;     // collections with fewer live vectors are searched exactly
    uint64_t seed;            // level generator seed; equal inserts give equal graphs
};

/* Defaults: M 16, ef_construction 200, ef_search 128, exact_below 1024, seed 100. */
#define VEC_PARAMS_INIT(dim_, metric_) {(dim_), (metric_), 16, 200, 128, 1024, 100}

struct vec_index;

struct vec_hit {
    uint64_t id; // external id
    float dist;  // distance to the query (see the metric table above)
};

/* Payload filter: return nonzero to admit 'id'. Called during the search, under the index's
 * shared lock, possibly many times per query and for ids that end up not in the result. */
typedef int (*vec_filter_fn)(void *ctx, uint64_t id);

/* Creates an empty index. On failure returns a negative TW_E* code, fills 'err', *out NULL. */
int vec_index_new(const struct vec_params *p, struct vec_index **out, struct tw_err *err);
/* Frees the index (and unmaps its file); NULL does nothing. No search may be running. */
void vec_index_free(struct vec_index *idx);

/* Inserts vector 'v' (dim floats) under 'id'. TW_EEXIST if 'id' is live (delete it first to
 * replace it), TW_EINVAL for a non-finite value or a zero vector under the cosine metric,
 * TW_ELIMIT past VEC_SLOTS_MAX slots, TW_ENOMEM. On failure the index is unchanged. */
int vec_index_add(struct vec_index *idx, uint64_t id, const float *v, struct tw_err *err);
/* Marks 'id' deleted: it is never returned again. TW_ENOENT if it is not live. */
int vec_index_delete(struct vec_index *idx, uint64_t id, struct tw_err *err);
/* Rebuilds the graph from the live vectors, dropping tombstones (the cost of building anew).
 * On failure the index is unchanged. */
int vec_index_compact(struct vec_index *idx, struct tw_err *err);

enum vec_search_flags {
    VEC_SEARCH_EXACT = 1 << 0, // scan every live vector instead of walking the graph
};

/* The k nearest live vectors to 'q' that the filter admits (filter NULL: all), into hits[0..k),
 * sorted by increasing dist; *n_hits is the number found (< k only when fewer live vectors
 * match). ef 0 means the index's ef_search; the graph search uses max(ef, k). A filter that
 * admits few vectors switches to an exact scan over the admitted ones, and a graph search that
 * finds fewer than k matches falls back to that scan, so k hits come back when k exist. */
int vec_index_search(struct vec_index *idx, const float *q, uint32_t k, uint32_t ef,
                     vec_filter_fn filter, void *filter_ctx, unsigned flags, struct vec_hit *hits,
                     uint32_t *n_hits, struct tw_err *err);

/* Writes the index to 'path' atomically (temp file, fsync, rename). */
int vec_index_save(struct vec_index *idx, const char *path, struct tw_err *err);
/* Maps and validates an index file (see the format above); *out is a new index. */
int vec_index_open(const char *path, struct vec_index **out, struct tw_err *err);
/* Same validation over a buffer (the fuzz target's entry point); the buffer is copied. */
int vec_index_load_mem(const void *data, size_t len, const char *name, struct vec_index **out,
                       struct tw_err *err);

/* Live vectors, deleted slots, and the parameters in use. */
uint32_t vec_index_count(struct vec_index *idx);
uint32_t vec_index_n_deleted(struct vec_index *idx);
void vec_index_params(struct vec_index *idx, struct vec_params *out);
/* True when 'id' is live; copies its stored vector (normalized under cosine) into v if non-NULL. */
int vec_index_has(struct vec_index *idx, uint64_t id, float *v);
/* The highest feature-store row sequence the index contains (0 for a new index). */
uint64_t vec_index_max_seq(struct vec_index *idx);
void vec_index_set_max_seq(struct vec_index *idx, uint64_t seq);

/* ---- benchmark data ---- */

/* Fills out[n * dim] with vectors like real sentence embeddings (low intrinsic dimension): a
 * 'latent'-d standard Gaussian, mapped to 'dim' by a fixed random standard Gaussian matrix,
 * plus N(0, noise^2) per coordinate, then L2-normalized. The matrix depends on
 * 'matrix_seed' only, the points on 'seed', so base and query sets share one matrix. */
int vec_synth(uint64_t matrix_seed, uint64_t seed, uint32_t n, uint32_t dim, uint32_t latent,
              float noise, float *out, struct tw_err *err);

#endif
