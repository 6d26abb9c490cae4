/* hnsw.c - the HNSW graph: insert, delete, compact, filtered and exact search (see vec.h).
 *
 * The algorithm is Malkov & Yashunin's (arXiv:1603.09320): greedy descent through the sparse
 * upper levels, then a beam search of width ef on level 0; neighbours are picked with the
 * "heuristic" (keep a candidate only if it is closer to the new point than to every neighbour
 * kept so far), which keeps links pointing in diverse directions. Deleted slots stay in the graph
 * as waypoints but never enter a result. A filter works the same way: rejected slots are walked
 * through, never returned, and the beam keeps widening until it holds ef admitted slots.
 */
#include "vector/hnsw_int.h"

#include "base/mem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct hnsw__pair {
    float d;
    uint32_t s;
};

/* Per-search scratch, pooled so a query allocates nothing in the steady state. */
struct hnsw__ctx {
    struct hnsw__ctx *next;
    uint16_t *tags;          // (tags_cap) visited[s] == gen
    size_t tags_cap;         //
    uint16_t gen;            //
    struct hnsw__pair *cand; // min-heap of slots to expand
    size_t n_cand, cand_cap; //
    struct hnsw__pair *res;  // max-heap of the best admitted slots
    size_t n_res, res_cap;   //
    float *q;                // (dim) the query, normalized under cosine
    uint32_t q_cap;          //
    int oom;                 // sticky: a heap could not grow
};

/* ---- small helpers ---- */

static inline float dist_qs(const struct vec_index *idx, const float *q, uint32_t s)
{
    if (idx->p.metric == VEC_METRIC_L2)
        return idx->l2sq(q, hnsw__vec(idx, s), idx->p.dim);
    return 1.0f - idx->dot(q, hnsw__vec(idx, s), idx->p.dim);
}

static inline float dist_ss(const struct vec_index *idx, uint32_t a, uint32_t b)
{
    return dist_qs(idx, hnsw__vec(idx, a), b);
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int pair_cmp(const void *a, const void *b)
{
    const struct hnsw__pair *x = a, *y = b;
    if (x->d != y->d)
        return x->d < y->d ? -1 : 1;
    return x->s < y->s ? -1 : x->s > y->s;
}

/* ---- heaps ---- */

static int heap_grow(struct hnsw__ctx *c, struct hnsw__pair **h, size_t *cap, size_t need)
{
    size_t ncap = *cap ? *cap : 64;
    struct hnsw__pair *nh;
    if (need <= *cap)
        return 0;
    while (ncap < need)
        ncap *= 2;
    nh = tw_reallocarray(*h, ncap, sizeof(**h));
    if (!nh) {
        c->oom = 1;
        return -1;
    }
    *h = nh;
    *cap = ncap;
    return 0;
}

/* 'above(a, b)': a belongs nearer the top; max = 0 for the candidate min-heap, 1 for results. */
static inline int above(struct hnsw__pair a, struct hnsw__pair b, int max)
{
    return max ? a.d > b.d : a.d < b.d;
}

static void heap_push(struct hnsw__pair *h, size_t *n, struct hnsw__pair v, int max)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!above(v, h[p], max))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static struct hnsw__pair heap_pop(struct hnsw__pair *h, size_t *n, int max)
{
    struct hnsw__pair top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, b = l;
        if (l >= m)
            break;
        if (r < m && above(h[r], h[l], max))
            b = r;
        if (!above(h[b], last, max))
            break;
        h[i] = h[b];
        i = b;
    }
    if (m)
        h[i] = last;
    return top;
}

static inline void cand_push(struct hnsw__ctx *c, float d, uint32_t s)
{
    if (c->n_cand == c->cand_cap && heap_grow(c, &c->cand, &c->cand_cap, c->n_cand + 1) < 0)
        return;
    heap_push(c->cand, &c->n_cand, (struct hnsw__pair){d, s}, 0);
}

/* Adds to the result heap, keeping at most 'ef' (the worst drops out). */
static inline void res_push(struct hnsw__ctx *c, float d, uint32_t s, size_t ef)
{
    if (c->n_res == c->res_cap && heap_grow(c, &c->res, &c->res_cap, c->n_res + 1) < 0)
        return;
    heap_push(c->res, &c->n_res, (struct hnsw__pair){d, s}, 1);
    if (c->n_res > ef)
        heap_pop(c->res, &c->n_res, 1);
}

/* ---- search scratch pool ---- */

static struct hnsw__ctx *ctx_get(struct vec_index *idx)
{
    struct hnsw__ctx *c;
    pthread_mutex_lock(&idx->ctx_lock);
    c = idx->ctx_free;
    if (c)
        idx->ctx_free = c->next;
    pthread_mutex_unlock(&idx->ctx_lock);
    if (!c)
        c = tw_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->oom = 0;
    c->n_cand = c->n_res = 0;
    if (c->tags_cap < idx->n) {
        size_t ncap = (size_t)idx->cap > idx->n ? idx->cap : idx->n;
        uint16_t *t = tw_calloc(ncap, sizeof(*t));
        if (!t)
            goto fail;
        tw_free(c->tags);
        c->tags = t;
        c->tags_cap = ncap;
        c->gen = 0;
    }
    if (c->q_cap < idx->p.dim) {
        float *q = tw_mallocarray(idx->p.dim, sizeof(*q));
        if (!q)
            goto fail;
        tw_free(c->q);
        c->q = q;
        c->q_cap = idx->p.dim;
    }
    return c;
fail:
    tw_free(c->tags);
    tw_free(c->q);
    tw_free(c->cand);
    tw_free(c->res);
    tw_free(c);
    return NULL;
}

static void ctx_put(struct vec_index *idx, struct hnsw__ctx *c)
{
    pthread_mutex_lock(&idx->ctx_lock);
    c->next = idx->ctx_free;
    idx->ctx_free = c;
    pthread_mutex_unlock(&idx->ctx_lock);
}

static void ctx_free_all(struct vec_index *idx)
{
    while (idx->ctx_free) {
        struct hnsw__ctx *c = idx->ctx_free;
        idx->ctx_free = c->next;
        tw_free(c->tags);
        tw_free(c->q);
        tw_free(c->cand);
        tw_free(c->res);
        tw_free(c);
    }
}

/* Starts a new visited set (tags are cleared only when the 16-bit generation wraps). */
static void visited_reset(struct hnsw__ctx *c)
{
    if (++c->gen == 0) {
        memset(c->tags, 0, c->tags_cap * sizeof(*c->tags));
        c->gen = 1;
    }
}

/* ---- id map ---- */

static inline size_t map_hash(uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t)id;
}

/* Slot of a live id, or -1. */
static int64_t map_find(const struct vec_index *idx, uint64_t id)
{
    size_t mask = idx->map_cap - 1, i;
    if (!idx->map_cap)
        return -1;
    for (i = map_hash(id) & mask; idx->map_vals[i]; i = (i + 1) & mask)
        if (idx->map_keys[i] == id)
            return (int64_t)idx->map_vals[i] - 1;
    return -1;
}

static int map_resize(struct vec_index *idx, size_t ncap)
{
    uint64_t *keys = tw_calloc(ncap, sizeof(*keys));
    uint32_t *vals = tw_calloc(ncap, sizeof(*vals));
    if (!keys || !vals) {
        tw_free(keys);
        tw_free(vals);
        return TW_ENOMEM;
    }
    for (size_t j = 0; j < idx->map_cap; j++) {
        size_t i;
        if (!idx->map_vals[j])
            continue;
        for (i = map_hash(idx->map_keys[j]) & (ncap - 1); vals[i]; i = (i + 1) & (ncap - 1))
            ;
        keys[i] = idx->map_keys[j];
        vals[i] = idx->map_vals[j];
    }
    tw_free(idx->map_keys);
    tw_free(idx->map_vals);
    idx->map_keys = keys;
    idx->map_vals = vals;
    idx->map_cap = ncap;
    return 0;
}

/* Room for one more id (done before any other change, so a failure changes nothing). */
static int map_reserve(struct vec_index *idx)
{
    if ((idx->map_len + 1) * 2 <= idx->map_cap)
        return 0;
    return map_resize(idx, idx->map_cap ? idx->map_cap * 2 : 64);
}

static void map_put(struct vec_index *idx, uint64_t id, uint32_t slot)
{
    size_t mask = idx->map_cap - 1, i;
    for (i = map_hash(id) & mask; idx->map_vals[i]; i = (i + 1) & mask)
        ;
    idx->map_keys[i] = id;
    idx->map_vals[i] = slot + 1;
    idx->map_len++;
}

/* Removes a present id; backward-shift deletion keeps probe chains without tombstones. */
static void map_del(struct vec_index *idx, uint64_t id)
{
    size_t mask = idx->map_cap - 1, i, j;
    for (i = map_hash(id) & mask; idx->map_keys[i] != id || !idx->map_vals[i]; i = (i + 1) & mask)
        ;
    idx->map_vals[i] = 0;
    idx->map_len--;
    for (j = (i + 1) & mask; idx->map_vals[j]; j = (j + 1) & mask) {
        size_t home = map_hash(idx->map_keys[j]) & mask;
        // Move j back to the hole i if its home does not lie cyclically in (i, j].
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            idx->map_keys[i] = idx->map_keys[j];
            idx->map_vals[i] = idx->map_vals[j];
            idx->map_vals[j] = 0;
            i = j;
        }
    }
}

int hnsw__map_build(struct vec_index *idx, const char *what, struct tw_err *err)
{
    size_t cap = 64;
    uint32_t live = idx->n - idx->n_dead;
    while (cap < (size_t)live * 2 + 2)
        cap *= 2;
    if (map_resize(idx, cap) < 0)
        return tw_errf(err, TW_ENOMEM, "out of memory building the id map of %s", what);
    for (uint32_t s = 0; s < idx->n; s++) {
        if (idx->dead[s])
            continue;
        if (map_find(idx, idx->ids[s]) >= 0)
            return tw_errf(err, TW_EFORMAT, "%s: id %llu is live in two slots", what,
                           (unsigned long long)idx->ids[s]);
        map_put(idx, idx->ids[s], s);
    }
    return 0;
}

/* ---- layout, creation ---- */

int hnsw__check_params(const struct vec_params *p, const char *what, int code, struct tw_err *err)
{
    if (p->dim < 1 || p->dim > VEC_DIM_MAX)
        return tw_errf(err, code, "%s: dim %u outside 1..%d", what, p->dim, VEC_DIM_MAX);
    if ((unsigned)p->metric > VEC_METRIC_L2)
        return tw_errf(err, code, "%s: unknown metric %u", what, (unsigned)p->metric);
    if (p->M < 2 || p->M > VEC_M_MAX)
        return tw_errf(err, code, "%s: M %u outside 2..%d", what, p->M, VEC_M_MAX);
    if (p->ef_construction < 1 || p->ef_construction > VEC_EF_MAX)
        return tw_errf(err, code, "%s: ef_construction %u outside 1..%d", what,
                       p->ef_construction, VEC_EF_MAX);
    if (p->ef_search < 1 || p->ef_search > VEC_EF_MAX)
        return tw_errf(err, code, "%s: ef_search %u outside 1..%d", what, p->ef_search,
                       VEC_EF_MAX);
    return 0;
}

void hnsw__init_layout(struct vec_index *idx)
{
    const struct vec__kernels *k = vec__kernels();
    idx->M0 = 2 * idx->p.M;
    idx->vec_bytes = (size_t)idx->p.dim * sizeof(float);
    idx->stride = (idx->vec_bytes + (1 + (size_t)idx->M0) * sizeof(uint32_t) + 63) & ~(size_t)63;
    idx->dot = k->dot;
    idx->l2sq = k->l2sq;
}

int hnsw__sync_init(struct vec_index *idx, struct tw_err *err)
{
    if (pthread_rwlock_init(&idx->lock, NULL) != 0)
        return tw_errf(err, TW_EINTERNAL, "cannot create the index lock");
    if (pthread_mutex_init(&idx->ctx_lock, NULL) != 0) {
        pthread_rwlock_destroy(&idx->lock);
        return tw_errf(err, TW_EINTERNAL, "cannot create the index lock");
    }
    return 0;
}

int vec_index_new(const struct vec_params *p, struct vec_index **out, struct tw_err *err)
{
    struct vec_index *idx;
    int rc;

    *out = NULL;
    rc = hnsw__check_params(p, "new index", TW_EINVAL, err);
    if (rc < 0)
        return rc;
    idx = tw_calloc(1, sizeof(*idx));
    if (!idx)
        return tw_errf(err, TW_ENOMEM, "out of memory creating an index");
    idx->p = *p;
    idx->entry = -1;
    idx->rng = p->seed;
    hnsw__init_layout(idx);
    rc = hnsw__sync_init(idx, err);
    if (rc < 0) {
        tw_free(idx);
        return rc;
    }
    *out = idx;
    return 0;
}

/* Frees the slot arrays (owned or mapped) and the id map; the lock and pool stay. */
static void data_release(struct vec_index *idx)
{
    if (idx->file_map) {
        munmap(idx->file_map, idx->file_len);
    } else if (idx->file_copy) {
        tw_free(idx->file_copy);
    } else {
        tw_free(idx->nodes_raw);
        tw_free(idx->ids);
        tw_free(idx->levels);
        tw_free(idx->dead);
        tw_free(idx->upper_off);
        tw_free(idx->upper);
    }
    tw_free(idx->map_keys);
    tw_free(idx->map_vals);
    idx->file_map = idx->file_copy = idx->nodes_raw = NULL;
    idx->nodes = NULL;
    idx->ids = NULL;
    idx->levels = idx->dead = NULL;
    idx->upper_off = idx->upper = NULL;
    idx->map_keys = NULL;
    idx->map_vals = NULL;
    idx->map_cap = idx->map_len = 0;
}

void vec_index_free(struct vec_index *idx)
{
    if (!idx)
        return;
    data_release(idx);
    ctx_free_all(idx);
    pthread_mutex_destroy(&idx->ctx_lock);
    pthread_rwlock_destroy(&idx->lock);
    tw_free(idx);
}

/* ---- growth ---- */

static int is_owned(const struct vec_index *idx)
{
    return !idx->file_map && !idx->file_copy;
}

/* Grows the owned slot arrays to 'cap' slots and 'upper_cap' upper words. A mapped index is
 * copied into owned arrays first. On failure nothing changes. */
static int reserve(struct vec_index *idx, uint32_t cap, size_t upper_cap)
{
    int copy = !is_owned(idx);
    void *raw = NULL;
    uint8_t *nodes;
    uint64_t *ids = NULL;
    uint8_t *levels = NULL, *dead = NULL;
    uint32_t *upper_off = NULL, *upper = NULL;
    size_t node_bytes;

    if (cap < idx->cap)
        cap = idx->cap;
    if (upper_cap < idx->upper_cap)
        upper_cap = idx->upper_cap;
    if (!copy && cap == idx->cap && upper_cap == idx->upper_cap)
        return 0;
    if (tw_size_mul(cap, idx->stride, &node_bytes) < 0 || node_bytes > SIZE_MAX - 64)
        return TW_ENOMEM;
    if (copy || cap != idx->cap) {
        raw = tw_malloc(node_bytes + 64);
        ids = tw_mallocarray(cap, sizeof(*ids));
        levels = tw_malloc(cap);
        dead = tw_malloc(cap);
        upper_off = tw_mallocarray(cap, sizeof(*upper_off));
        if (!raw || !ids || !levels || !dead || !upper_off)
            goto fail;
    }
    if (copy || upper_cap != idx->upper_cap) {
        upper = tw_mallocarray(upper_cap ? upper_cap : 1, sizeof(*upper));
        if (!upper)
            goto fail;
        if (idx->upper_len)
            memcpy(upper, idx->upper, idx->upper_len * sizeof(*upper));
    }
    if (raw) {
        nodes = (uint8_t *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
        if (idx->n) {
            memcpy(nodes, idx->nodes, (size_t)idx->n * idx->stride);
            memcpy(ids, idx->ids, (size_t)idx->n * sizeof(*ids));
            memcpy(levels, idx->levels, idx->n);
            memcpy(dead, idx->dead, idx->n);
            memcpy(upper_off, idx->upper_off, (size_t)idx->n * sizeof(*upper_off));
        }
        if (copy) {
            if (idx->file_map)
                munmap(idx->file_map, idx->file_len);
            tw_free(idx->file_copy);
            idx->file_map = idx->file_copy = NULL;
        } else {
            tw_free(idx->nodes_raw);
            tw_free(idx->ids);
            tw_free(idx->levels);
            tw_free(idx->dead);
            tw_free(idx->upper_off);
        }
        idx->nodes_raw = raw;
        idx->nodes = nodes;
        idx->ids = ids;
        idx->levels = levels;
        idx->dead = dead;
        idx->upper_off = upper_off;
        idx->cap = cap;
    }
    if (upper) {
        if (!copy)
            tw_free(idx->upper);
        idx->upper = upper;
        idx->upper_cap = upper_cap;
    }
    return 0;
fail:
    tw_free(raw);
    tw_free(ids);
    tw_free(levels);
    tw_free(dead);
    tw_free(upper_off);
    tw_free(upper);
    return TW_ENOMEM;
}

/* ---- graph search ---- */

/* Asks for every cache line of slot s's vector. */
static inline void prefetch_vec(const struct vec_index *idx, uint32_t s)
{
    const char *p = (const char *)hnsw__vec(idx, s);
    for (size_t off = 0; off < idx->vec_bytes; off += 64)
        __builtin_prefetch(p + off);
}

/* Greedy walk on one upper level from (*cur, *curd) to a local minimum. */
static void greedy(const struct vec_index *idx, const float *q, int level, uint32_t *cur,
                   float *curd)
{
    int changed = 1;
    while (changed) {
        const uint32_t *l = hnsw__links(idx, *cur, level);
        changed = 0;
        for (uint32_t j = 0; j < l[0]; j++) {
            float d = dist_qs(idx, q, l[1 + j]);
            if (d < *curd) {
                *curd = d;
                *cur = l[1 + j];
                changed = 1;
            }
        }
    }
}

struct admit {
    vec_filter_fn fn; // NULL: every live slot
    void *ctx;
};

static inline int admitted(const struct vec_index *idx, const struct admit *a, uint32_t s)
{
    return !idx->dead[s] && (!a->fn || a->fn(a->ctx, idx->ids[s]));
}

/* Beam search of width ef on 'level' from 'entry'; leaves the best ef admitted slots in c->res.
 * Every slot, admitted or not, is a waypoint; the beam stops only once it holds ef admitted
 * slots and the nearest unexpanded one is farther than the worst of them. */
static void search_layer(const struct vec_index *idx, struct hnsw__ctx *c, const float *q,
                         uint32_t entry, float entry_d, size_t ef, int level,
                         const struct admit *a)
{
    float lower = INFINITY;
    uint16_t *tags = c->tags;
    uint16_t gen;
    uint32_t todo[2 * VEC_M_MAX], n_todo;

    visited_reset(c);
    gen = c->gen;
    c->n_cand = c->n_res = 0;
    tags[entry] = gen;
    cand_push(c, entry_d, entry);
    if (admitted(idx, a, entry)) {
        res_push(c, entry_d, entry, ef);
        lower = entry_d;
    }
    while (c->n_cand && !c->oom) {
        struct hnsw__pair cur = heap_pop(c->cand, &c->n_cand, 0);
        const uint32_t *l;
        uint32_t cnt;
        if (cur.d > lower && c->n_res >= ef)
            break;
        l = hnsw__links(idx, cur.s, level);
        cnt = l[0];
        // Collect the unvisited neighbours first, then compute their distances while the next
        // one's whole vector streams in: memory latency, not arithmetic, bounds this loop once
        // the vectors outgrow the caches.
        n_todo = 0;
        for (uint32_t j = 0; j < cnt; j++) {
            uint32_t s = l[1 + j];
            if (tags[s] == gen)
                continue;
            tags[s] = gen;
            todo[n_todo++] = s;
        }
        if (n_todo)
            prefetch_vec(idx, todo[0]);
        for (uint32_t j = 0; j < n_todo; j++) {
            uint32_t s = todo[j];
            float d;
            if (j + 1 < n_todo)
                prefetch_vec(idx, todo[j + 1]);
            d = dist_qs(idx, q, s);
            if (c->n_res < ef || d < lower) {
                cand_push(c, d, s);
                if (admitted(idx, a, s)) {
                    res_push(c, d, s, ef);
                    if (c->oom)
                        return;
                    lower = c->res[0].d;
                }
            }
        }
    }
}

/* Picks up to m of the sorted candidates p[0..n) by the heuristic; returns how many, in p. */
static size_t select_neighbors(const struct vec_index *idx, struct hnsw__pair *p, size_t n,
                               size_t m)
{
    size_t kept = 0;
    if (n <= m)
        return n;
    for (size_t i = 0; i < n && kept < m; i++) {
        int good = 1;
        for (size_t j = 0; j < kept; j++) {
            if (dist_ss(idx, p[i].s, p[j].s) < p[i].d) {
                good = 0;
                break;
            }
        }
        if (good)
            p[kept++] = p[i];
    }
    return kept;
}

/* Adds the link e -> s on 'level', pruning e's list with the heuristic when it is full. */
static void link_back(struct vec_index *idx, uint32_t e, uint32_t s, int level,
                      struct hnsw__pair *scratch)
{
    uint32_t *l = hnsw__links(idx, e, level);
    uint32_t maxm = level ? idx->p.M : idx->M0;
    size_t n, kept;

    if (l[0] < maxm) {
        l[1 + l[0]] = s;
        l[0]++;
        return;
    }
    for (n = 0; n < l[0]; n++)
        scratch[n] = (struct hnsw__pair){dist_ss(idx, e, l[1 + n]), l[1 + n]};
    scratch[n++] = (struct hnsw__pair){dist_ss(idx, e, s), s};
    qsort(scratch, n, sizeof(*scratch), pair_cmp);
    kept = select_neighbors(idx, scratch, n, maxm);
    for (size_t i = 0; i < kept; i++)
        l[1 + i] = scratch[i].s;
    l[0] = (uint32_t)kept;
}

static int random_level(struct vec_index *idx)
{
    double u = ((double)(splitmix64(&idx->rng) >> 11) + 1.0) / 9007199254740993.0; // (0, 1]
    double lvl = -log(u) / log((double)idx->p.M);
    return lvl >= VEC_LEVEL_MAX ? VEC_LEVEL_MAX : (int)lvl;
}

/* Links the new slot s (vector written, levels set, no links yet) into the graph. */
static int connect_slot(struct vec_index *idx, uint32_t s)
{
    const float *q = hnsw__vec(idx, s);
    int level = idx->levels[s], top;
    struct admit live = {NULL, NULL};
    struct hnsw__ctx *c;
    struct hnsw__pair *sel = NULL, scratch[2 * VEC_M_MAX + 1];
    uint32_t cur;
    float curd;

    if (idx->entry < 0 || idx->n_dead == idx->n - 1) {
        // First live slot: it becomes the entry point (a graph of only tombstones is dropped
        // from view; its slots remain until compaction).
        idx->entry = s;
        idx->max_level = level;
        return 0;
    }
    c = ctx_get(idx);
    if (!c)
        return TW_ENOMEM;
    cur = (uint32_t)idx->entry;
    curd = dist_qs(idx, q, cur);
    for (int l = idx->max_level; l > level; l--)
        greedy(idx, q, l, &cur, &curd);
    top = level < idx->max_level ? level : idx->max_level;
    for (int l = top; l >= 0; l--) {
        size_t n, kept;
        uint32_t maxm = l ? idx->p.M : idx->M0;
        uint32_t *links = hnsw__links(idx, s, l);
        search_layer(idx, c, q, cur, curd, idx->p.ef_construction, l, &live);
        if (c->oom)
            break;
        n = c->n_res;
        if (!n)
            continue;
        sel = c->res; // sorted in place: the heap is not used again until the next search
        qsort(sel, n, sizeof(*sel), pair_cmp);
        cur = sel[0].s;
        curd = sel[0].d;
        kept = select_neighbors(idx, sel, n, idx->p.M < maxm ? idx->p.M : maxm);
        for (size_t i = 0; i < kept; i++)
            links[1 + i] = sel[i].s;
        links[0] = (uint32_t)kept;
        for (size_t i = 0; i < kept; i++)
            link_back(idx, sel[i].s, s, l, scratch);
    }
    if (c->oom) {
        ctx_put(idx, c);
        return TW_ENOMEM;
    }
    ctx_put(idx, c);
    if (level > idx->max_level) {
        idx->entry = s;
        idx->max_level = level;
    }
    return 0;
}

/* ---- changes ---- */

static int check_vector(const struct vec_index *idx, const float *v, double *norm2)
{
    double n2 = 0;
    for (uint32_t i = 0; i < idx->p.dim; i++) {
        if (!isfinite(v[i]))
            return -1;
        n2 += (double)v[i] * v[i];
    }
    *norm2 = n2;
    return 0;
}

int vec_index_add(struct vec_index *idx, uint64_t id, const float *v, struct tw_err *err)
{
    double norm2;
    uint32_t s;
    int level, rc;
    size_t need_upper;

    if (check_vector(idx, v, &norm2) < 0)
        return tw_errf(err, TW_EINVAL, "vector for id %llu has a non-finite value",
                       (unsigned long long)id);
    if (idx->p.metric == VEC_METRIC_COSINE && !(norm2 > 0))
        return tw_errf(err, TW_EINVAL, "vector for id %llu is zero; cosine needs a direction",
                       (unsigned long long)id);
    pthread_rwlock_wrlock(&idx->lock);
    if (map_find(idx, id) >= 0) {
        rc = tw_errf(err, TW_EEXIST, "id %llu is already in the index; delete it first",
                     (unsigned long long)id);
        goto out;
    }
    if (idx->n >= VEC_SLOTS_MAX) {
        rc = tw_errf(err, TW_ELIMIT, "index holds %u slots, the limit; compact it",
                     (unsigned)idx->n);
        goto out;
    }
    // The level is drawn from a copy of the state so a failed insert changes nothing.
    {
        uint64_t saved = idx->rng;
        level = random_level(idx);
        idx->rng = saved;
    }
    need_upper = idx->upper_len + (size_t)level * (1 + idx->p.M);
    if (need_upper > UINT32_MAX) {
        rc = tw_errf(err, TW_ELIMIT, "index upper levels are full; compact it");
        goto out;
    }
    rc = reserve(idx, idx->n < idx->cap ? idx->cap : (idx->cap ? idx->cap * 2 : 64),
                 need_upper <= idx->upper_cap ? idx->upper_cap
                                              : (need_upper > 2 * idx->upper_cap
                                                     ? need_upper + 1024
                                                     : 2 * idx->upper_cap));
    if (rc == 0)
        rc = map_reserve(idx);
    if (rc < 0) {
        rc = tw_errf(err, rc, "out of memory adding id %llu", (unsigned long long)id);
        goto out;
    }
    s = idx->n;
    {
        float *dst = hnsw__vec(idx, s);
        float scale = idx->p.metric == VEC_METRIC_COSINE ? (float)(1.0 / sqrt(norm2)) : 1.0f;
        for (uint32_t i = 0; i < idx->p.dim; i++)
            dst[i] = v[i] * scale;
        memset(idx->nodes + (size_t)s * idx->stride + idx->vec_bytes, 0,
               idx->stride - idx->vec_bytes);
    }
    idx->ids[s] = id;
    idx->levels[s] = (uint8_t)level;
    idx->dead[s] = 0;
    idx->upper_off[s] = (uint32_t)idx->upper_len;
    for (int l = 0; l < level; l++)
        idx->upper[idx->upper_len + (size_t)l * (1 + idx->p.M)] = 0;
    idx->n++;
    rc = connect_slot(idx, s);
    if (rc < 0) {
        // Half-linked: other slots may point at s already. Keep it as a tombstone, which is
        // always safe, and report the failure.
        idx->dead[s] = 1;
        idx->n_dead++;
        idx->upper_len = need_upper;
        rc = tw_errf(err, rc, "out of memory linking id %llu", (unsigned long long)id);
        goto out;
    }
    (void)random_level(idx); // commit the level draw
    idx->upper_len = need_upper;
    map_put(idx, id, s);
out:
    pthread_rwlock_unlock(&idx->lock);
    return rc;
}

int vec_index_delete(struct vec_index *idx, uint64_t id, struct tw_err *err)
{
    int64_t s;
    int rc = 0;

    pthread_rwlock_wrlock(&idx->lock);
    s = map_find(idx, id);
    if (s < 0) {
        rc = tw_errf(err, TW_ENOENT, "id %llu is not in the index", (unsigned long long)id);
        goto out;
    }
    rc = reserve(idx, idx->cap, idx->upper_cap); // a mapped index becomes owned
    if (rc < 0) {
        rc = tw_errf(err, rc, "out of memory deleting id %llu", (unsigned long long)id);
        goto out;
    }
    idx->dead[s] = 1;
    idx->n_dead++;
    map_del(idx, id);
out:
    pthread_rwlock_unlock(&idx->lock);
    return rc;
}

int vec_index_compact(struct vec_index *idx, struct tw_err *err)
{
    struct vec_index *fresh = NULL;
    int rc;

    pthread_rwlock_wrlock(&idx->lock);
    rc = vec_index_new(&idx->p, &fresh, err);
    if (rc < 0)
        goto out;
    fresh->rng = idx->p.seed;
    for (uint32_t s = 0; s < idx->n && rc == 0; s++)
        if (!idx->dead[s])
            rc = vec_index_add(fresh, idx->ids[s], hnsw__vec(idx, s), err);
    if (rc < 0) {
        rc = tw_err_ctx(err, "compacting the index");
        goto out;
    }
    data_release(idx);
#define TAKE(f) idx->f = fresh->f
    TAKE(nodes);
    TAKE(nodes_raw);
    TAKE(ids);
    TAKE(levels);
    TAKE(dead);
    TAKE(upper_off);
    TAKE(upper);
    TAKE(upper_len);
    TAKE(upper_cap);
    TAKE(n);
    TAKE(cap);
    TAKE(n_dead);
    TAKE(entry);
    TAKE(max_level);
    TAKE(rng);
    TAKE(map_keys);
    TAKE(map_vals);
    TAKE(map_cap);
    TAKE(map_len);
#undef TAKE
    fresh->nodes_raw = NULL;
    fresh->ids = NULL;
    fresh->levels = fresh->dead = NULL;
    fresh->upper_off = fresh->upper = NULL;
    fresh->map_keys = NULL;
    fresh->map_vals = NULL;
    // Search scratch sized for the old slot count stays valid: it only ever grows.
out:
    vec_index_free(fresh);
    pthread_rwlock_unlock(&idx->lock);
    return rc;
}

/* ---- search ---- */

/* Exact top-k over the admitted slots into c->res. */
static void search_exact(const struct vec_index *idx, struct hnsw__ctx *c, const float *q,
                         size_t k, const struct admit *a)
{
    c->n_res = 0;
    for (uint32_t s = 0; s < idx->n && !c->oom; s++) {
        float d;
        if (idx->dead[s])
            continue;
        if (a->fn && !a->fn(a->ctx, idx->ids[s]))
            continue;
        d = dist_qs(idx, q, s);
        if (c->n_res < k || d < c->res[0].d)
            res_push(c, d, s, k);
    }
}

/* True when a sample says the filter admits so few live slots that a scan beats the graph. */
static int filter_is_selective(const struct vec_index *idx, const struct admit *a)
{
    uint32_t n_sample = idx->n < 256 ? idx->n : 256, seen = 0, pass = 0;
    uint32_t live = idx->n - idx->n_dead;
    for (uint32_t i = 0; i < n_sample; i++) {
        uint32_t s = (uint32_t)((uint64_t)i * idx->n / n_sample);
        if (idx->dead[s])
            continue;
        seen++;
        pass += a->fn(a->ctx, idx->ids[s]) != 0;
    }
    if (!seen)
        return 1;
    // Under 5% admitted, or fewer admitted than the exact threshold: scan them.
    return pass * 20 < seen || (uint64_t)pass * live / seen < idx->p.exact_below;
}

static int hit_cmp(const void *a, const void *b)
{
    const struct vec_hit *x = a, *y = b;
    if (x->dist != y->dist)
        return x->dist < y->dist ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int vec_index_search(struct vec_index *idx, const float *q, uint32_t k, uint32_t ef,
                     vec_filter_fn filter, void *filter_ctx, unsigned flags, struct vec_hit *hits,
                     uint32_t *n_hits, struct tw_err *err)
{
    struct admit a = {filter, filter_ctx};
    struct hnsw__ctx *c = NULL;
    double norm2;
    uint32_t live;
    int rc = 0, exact;

    *n_hits = 0;
    if (k == 0 || k > VEC_EF_MAX)
        return tw_errf(err, TW_EINVAL, "k %u outside 1..%d", k, VEC_EF_MAX);
    if (ef > VEC_EF_MAX)
        return tw_errf(err, TW_EINVAL, "ef %u outside 0..%d", ef, VEC_EF_MAX);
    if (check_vector(idx, q, &norm2) < 0)
        return tw_errf(err, TW_EINVAL, "query vector has a non-finite value");
    if (idx->p.metric == VEC_METRIC_COSINE && !(norm2 > 0))
        return tw_errf(err, TW_EINVAL, "query vector is zero; cosine needs a direction");
    pthread_rwlock_rdlock(&idx->lock);
    live = idx->n - idx->n_dead;
    if (live == 0)
        goto out;
    c = ctx_get(idx);
    if (!c) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory searching the index");
        goto out;
    }
    if (idx->p.metric == VEC_METRIC_COSINE) {
        float scale = (float)(1.0 / sqrt(norm2));
        for (uint32_t i = 0; i < idx->p.dim; i++)
            c->q[i] = q[i] * scale;
    } else {
        memcpy(c->q, q, idx->p.dim * sizeof(float));
    }
    if (!ef)
        ef = idx->p.ef_search;
    if (ef < k)
        ef = k;
    exact = (flags & VEC_SEARCH_EXACT) || live < idx->p.exact_below || idx->entry < 0 ||
            (filter && filter_is_selective(idx, &a));
    if (!exact) {
        uint32_t cur = (uint32_t)idx->entry;
        float curd = dist_qs(idx, c->q, cur);
        for (int l = idx->max_level; l > 0; l--)
            greedy(idx, c->q, l, &cur, &curd);
        search_layer(idx, c, c->q, cur, curd, ef, 0, &a);
        exact = c->n_res < k && !c->oom; // too few found: make sure by scanning
    }
    if (exact)
        search_exact(idx, c, c->q, k, &a);
    if (c->oom) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory searching the index");
        goto out;
    }
    // Keep the best k of the heap, then order them (ties by id, so results are deterministic).
    while (c->n_res > k)
        heap_pop(c->res, &c->n_res, 1);
    for (size_t i = 0; i < c->n_res; i++)
        hits[i] = (struct vec_hit){idx->ids[c->res[i].s], c->res[i].d};
    qsort(hits, c->n_res, sizeof(*hits), hit_cmp);
    *n_hits = (uint32_t)c->n_res;
out:
    if (c)
        ctx_put(idx, c);
    pthread_rwlock_unlock(&idx->lock);
    return rc;
}

/* ---- getters ---- */

uint32_t vec_index_count(struct vec_index *idx)
{
    uint32_t n;
    pthread_rwlock_rdlock(&idx->lock);
    n = idx->n - idx->n_dead;
    pthread_rwlock_unlock(&idx->lock);
    return n;
}

uint32_t vec_index_n_deleted(struct vec_index *idx)
{
    uint32_t n;
    pthread_rwlock_rdlock(&idx->lock);
    n = idx->n_dead;
    pthread_rwlock_unlock(&idx->lock);
    return n;
}

void vec_index_params(struct vec_index *idx, struct vec_params *out)
{
    pthread_rwlock_rdlock(&idx->lock);
    *out = idx->p;
    pthread_rwlock_unlock(&idx->lock);
}

int vec_index_has(struct vec_index *idx, uint64_t id, float *v)
{
    int64_t s;
    pthread_rwlock_rdlock(&idx->lock);
    s = map_find(idx, id);
    if (s >= 0 && v)
        memcpy(v, hnsw__vec(idx, (uint32_t)s), idx->p.dim * sizeof(float));
    pthread_rwlock_unlock(&idx->lock);
    return s >= 0;
}

uint64_t vec_index_max_seq(struct vec_index *idx)
{
    uint64_t seq;
    pthread_rwlock_rdlock(&idx->lock);
    seq = idx->max_seq;
    pthread_rwlock_unlock(&idx->lock);
    return seq;
}

void vec_index_set_max_seq(struct vec_index *idx, uint64_t seq)
{
    pthread_rwlock_wrlock(&idx->lock);
    idx->max_seq = seq;
    pthread_rwlock_unlock(&idx->lock);
}
