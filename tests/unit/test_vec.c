/* test_vec.c - vector index: kernels against the reference, HNSW recall against exact search,
 * deletes, filters, persistence and hostile files. */
#include "test.h"

#include "base/mem.h"
#include "vector/vec.h"
#include "vector/vec_int.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

/* The benchmark distribution (twin bench vector): 48-d latent, 384-d, noise 0.5. */
#define BENCH_DIM    384
#define BENCH_LATENT 48
#define BENCH_NOISE  0.5f

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

static float frand(uint64_t *s)
{
    return (float)lcg(s) / (float)(1ULL << 31) * 2.0f - 1.0f;
}

static float *synth(uint64_t seed, uint32_t n, uint32_t dim)
{
    struct tw_err err = TW_ERR_INIT;
    float *v = tw_mallocarray((size_t)n * dim, sizeof(float));
    if (!v || vec_synth(42, seed, n, dim, dim < BENCH_LATENT ? dim : BENCH_LATENT, BENCH_NOISE, v,
                        &err) < 0) {
        tw_free(v);
        return NULL;
    }
    return v;
}

/* ---- kernels ---- */

static void check_kernel_set(vec__dist_fn dot, vec__dist_fn l2sq, const char *isa)
{
    static const size_t dims[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 47, 63, 65, 100,
                                  127, 129, 255, 383, 384, 385, 1000, 1023};
    uint64_t s = 7;
    float *a = tw_malloc(1100 * sizeof(float)), *b = tw_malloc(1100 * sizeof(float));
    TW_ASSERT(a && b);
    for (size_t t = 0; t < sizeof(dims) / sizeof(dims[0]); t++) {
        size_t n = dims[t];
        // Offset by one float so the fast kernels see unaligned rows too.
        for (size_t i = 0; i < n + 1; i++) {
            a[i] = frand(&s);
            b[i] = frand(&s);
        }
        for (int off = 0; off < 2; off++) {
            double sa = 0;
            float ref = vec_dot_ref(a + off, b + off, n), got = dot(a + off, b + off, n);
            for (size_t i = 0; i < n; i++)
                sa += fabs((double)a[off + i] * b[off + i]);
            if (fabs(ref - got) > 1e-5 * (sa + 1)) {
                fprintf(stderr, "  %s dot n=%zu: %.9g vs ref %.9g\n", isa, n, got, ref);
                test__failed = 1;
            }
            ref = vec_l2sq_ref(a + off, b + off, n);
            got = l2sq(a + off, b + off, n);
            if (fabs(ref - got) > 1e-5 * (ref + 1)) {
                fprintf(stderr, "  %s l2sq n=%zu: %.9g vs ref %.9g\n", isa, n, got, ref);
                test__failed = 1;
            }
        }
    }
    tw_free(a);
    tw_free(b);
}

TEST(vec_kernels_match_reference_on_odd_dims)
{
    check_kernel_set(vec_dot, vec_l2sq, vec_isa());
    if (vec__cpu_has("avx2"))
        check_kernel_set(vec__dot_avx2, vec__l2sq_avx2, "avx2");
    if (vec__cpu_has("avx512"))
        check_kernel_set(vec__dot_avx512, vec__l2sq_avx512, "avx512");
    CHECK_NEAR(vec_dot_ref((const float[]){1, 2, 3}, (const float[]){4, -5, 6}, 3), 12, 0);
    CHECK_NEAR(vec_l2sq_ref((const float[]){1, 2, 3}, (const float[]){4, -5, 6}, 3), 67, 0);
}

TEST(vec_checksum_sees_every_byte)
{
    uint8_t buf[301];
    unsigned long long h0;
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 31 + 7);
    h0 = vec__hash64(buf, sizeof(buf), 0);
    CHECK(h0 == vec__hash64(buf, sizeof(buf), 0));
    CHECK(h0 != vec__hash64(buf, sizeof(buf), 1));
    CHECK(h0 != vec__hash64(buf, sizeof(buf) - 1, 0));
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] ^= 0x10;
        CHECK_MSG(vec__hash64(buf, sizeof(buf), 0) != h0, "flip at byte %zu not seen", i);
        buf[i] ^= 0x10;
    }
}

/* ---- basic behaviour ---- */

TEST(vec_metrics_give_documented_distances)
{
    struct tw_err err = TW_ERR_INIT;
    const float a[2] = {3, 4}, b[2] = {0, 2}, q[2] = {0, 1};
    enum vec_metric m[3] = {VEC_METRIC_COSINE, VEC_METRIC_DOT, VEC_METRIC_L2};
    float want_a[3] = {1 - 0.8f, 1 - 4.0f, 9 + 9}, want_b[3] = {0, 1 - 2.0f, 1};
    for (int i = 0; i < 3; i++) {
        struct vec_params p = VEC_PARAMS_INIT(2, m[i]);
        struct vec_index *idx;
        struct vec_hit hits[3];
        uint32_t n;
        CHECK_OK(vec_index_new(&p, &idx, &err), &err);
        CHECK_OK(vec_index_add(idx, 10, a, &err), &err);
        CHECK_OK(vec_index_add(idx, 20, b, &err), &err);
        CHECK_OK(vec_index_search(idx, q, 3, 0, NULL, NULL, 0, hits, &n, &err), &err);
        CHECK_EQ_INT(n, 2);
        // b is nearer under cosine and L2; a (the longer vector) under the inner product.
        CHECK_EQ_INT(hits[0].id, m[i] == VEC_METRIC_DOT ? 10 : 20);
        CHECK_EQ_INT(hits[1].id, m[i] == VEC_METRIC_DOT ? 20 : 10);
        CHECK_NEAR(hits[0].id == 20 ? hits[0].dist : hits[1].dist, want_b[i], 1e-6);
        CHECK_NEAR(hits[0].id == 10 ? hits[0].dist : hits[1].dist, want_a[i], 1e-6);
        vec_index_free(idx);
    }
}

TEST(vec_rejects_bad_params_ids_and_vectors)
{
    struct tw_err err = TW_ERR_INIT;
    struct vec_params p = VEC_PARAMS_INIT(4, VEC_METRIC_COSINE);
    struct vec_index *idx = NULL;
    const float v[4] = {1, 0, 0, 0}, zero[4] = {0}, bad[4] = {1, NAN, 0, 0};
    struct vec_hit hit;
    uint32_t n;

    p.M = 1;
    CHECK_EQ_INT(vec_index_new(&p, &idx, &err), TW_EINVAL);
    CHECK(strstr(err.msg, "M 1 outside") != NULL);
    CHECK(idx == NULL);
    tw_err_clear(&err);
    p.M = 16;
    p.dim = 0;
    CHECK_EQ_INT(vec_index_new(&p, &idx, &err), TW_EINVAL);
    tw_err_clear(&err);
    p.dim = 4;
    CHECK_OK(vec_index_new(&p, &idx, &err), &err);
    CHECK_OK(vec_index_add(idx, 1, v, &err), &err);
    CHECK_EQ_INT(vec_index_add(idx, 1, v, &err), TW_EEXIST);
    tw_err_clear(&err);
    CHECK_EQ_INT(vec_index_add(idx, 2, zero, &err), TW_EINVAL);
    tw_err_clear(&err);
    CHECK_EQ_INT(vec_index_add(idx, 3, bad, &err), TW_EINVAL);
    tw_err_clear(&err);
    CHECK_EQ_INT(vec_index_delete(idx, 99, &err), TW_ENOENT);
    tw_err_clear(&err);
    CHECK_EQ_INT(vec_index_search(idx, v, 0, 0, NULL, NULL, 0, &hit, &n, &err), TW_EINVAL);
    tw_err_clear(&err);
    CHECK_EQ_INT(vec_index_count(idx), 1);
    CHECK_OK(vec_index_delete(idx, 1, &err), &err);
    CHECK_EQ_INT(vec_index_count(idx), 0);
    CHECK_OK(vec_index_search(idx, v, 1, 0, NULL, NULL, 0, &hit, &n, &err), &err);
    CHECK_EQ_INT(n, 0);
    // A deleted id can come back, in a new slot.
    CHECK_OK(vec_index_add(idx, 1, v, &err), &err);
    CHECK_OK(vec_index_search(idx, v, 1, 0, NULL, NULL, 0, &hit, &n, &err), &err);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(hit.id, 1);
    vec_index_free(idx);
}

/* ---- recall ---- */

/* Mean recall@k of graph search against exact search over nq queries. */
static double recall_at(struct vec_index *idx, const float *qs, uint32_t nq, uint32_t dim,
                        uint32_t k, uint32_t ef, vec_filter_fn f, void *fctx)
{
    struct tw_err err = TW_ERR_INIT;
    struct vec_hit *a = tw_mallocarray(k, sizeof(*a)), *e = tw_mallocarray(k, sizeof(*e));
    long found = 0, total = 0;
    TW_ASSERT(a && e);
    for (uint32_t i = 0; i < nq; i++) {
        uint32_t na, ne;
        if (vec_index_search(idx, qs + (size_t)i * dim, k, ef, f, fctx, 0, a, &na, &err) < 0 ||
            vec_index_search(idx, qs + (size_t)i * dim, k, ef, f, fctx, VEC_SEARCH_EXACT, e, &ne,
                             &err) < 0) {
            found = -1;
            break;
        }
        for (uint32_t x = 0; x < ne; x++)
            for (uint32_t y = 0; y < na; y++)
                found += e[x].id == a[y].id;
        total += ne;
    }
    tw_free(a);
    tw_free(e);
    return found < 0 || !total ? -1 : (double)found / (double)total;
}

static struct vec_index *build(const float *base, uint32_t n, uint32_t dim, enum vec_metric m,
                               uint32_t exact_below)
{
    struct tw_err err = TW_ERR_INIT;
    struct vec_params p = VEC_PARAMS_INIT(dim, m);
    struct vec_index *idx;
    p.exact_below = exact_below;
    if (vec_index_new(&p, &idx, &err) < 0)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        if (vec_index_add(idx, 1000 + (uint64_t)i * 3, base + (size_t)i * dim, &err) < 0) {
            fprintf(stderr, "  add %u: %s\n", i, err.msg);
            vec_index_free(idx);
            return NULL;
        }
    }
    return idx;
}

TEST(vec_hnsw_recall_at_10_on_10k_benchmark_vectors)
{
    const uint32_t n = 10000, nq = 200;
    float *base = synth(1, n, BENCH_DIM), *qs = synth(2, nq, BENCH_DIM);
    struct vec_index *idx;
    double r;
    CHECK(base && qs);
    idx = build(base, n, BENCH_DIM, VEC_METRIC_DOT, 0);
    CHECK(idx != NULL);
    r = recall_at(idx, qs, nq, BENCH_DIM, 10, 0, NULL, NULL);
    fprintf(stderr, "  recall@10 at default ef_search on 10k: %.4f\n", r);
    CHECK_MSG(r >= 0.95, "recall %.4f", r);
    vec_index_free(idx);
    tw_free(base);
    tw_free(qs);
}

/* ---- deletes ---- */

static int id_is_deleted(uint64_t id)
{
    // Ids are 1000 + 3*i; every slot i with i % 3 != 0 is deleted below.
    return ((id - 1000) / 3) % 3 != 0;
}

TEST(vec_deleted_ids_are_never_returned_and_compaction_drops_them)
{
    struct tw_err err = TW_ERR_INIT;
    const uint32_t n = 3000, nq = 100, dim = 64;
    float *base = synth(3, n, dim), *qs = synth(4, nq, dim);
    struct vec_index *idx;
    struct vec_hit hits[20];
    uint32_t nh;
    double r;
    CHECK(base && qs);
    idx = build(base, n, dim, VEC_METRIC_COSINE, 0);
    CHECK(idx != NULL);
    for (uint32_t i = 0; i < n; i++)
        if (id_is_deleted(1000 + (uint64_t)i * 3))
            CHECK_OK(vec_index_delete(idx, 1000 + (uint64_t)i * 3, &err), &err);
    CHECK_EQ_INT(vec_index_count(idx), n / 3);
    CHECK_EQ_INT(vec_index_n_deleted(idx), n - n / 3);
    for (uint32_t i = 0; i < nq; i++) {
        CHECK_OK(vec_index_search(idx, qs + (size_t)i * dim, 20, 0, NULL, NULL, 0, hits, &nh, &err),
                 &err);
        CHECK_EQ_INT(nh, 20);
        for (uint32_t j = 0; j < nh; j++)
            CHECK_MSG(!id_is_deleted(hits[j].id), "deleted id %llu returned",
                      (unsigned long long)hits[j].id);
        // The query's own base vector, if live, is its nearest neighbour: the delete must not
        // have hidden live vectors.
        CHECK_OK(vec_index_search(idx, base + (size_t)i * 3 * dim, 1, 0, NULL, NULL, 0, hits, &nh,
                                  &err), &err);
        CHECK_EQ_INT(hits[0].id, 1000 + (uint64_t)i * 9);
    }
    r = recall_at(idx, qs, nq, dim, 10, 0, NULL, NULL);
    CHECK_MSG(r >= 0.9, "recall with 2/3 deleted %.4f", r);
    CHECK_OK(vec_index_compact(idx, &err), &err);
    CHECK_EQ_INT(vec_index_n_deleted(idx), 0);
    CHECK_EQ_INT(vec_index_count(idx), n / 3);
    CHECK(vec_index_has(idx, 1000, NULL));
    CHECK(!vec_index_has(idx, 1003, NULL));
    r = recall_at(idx, qs, nq, dim, 10, 0, NULL, NULL);
    CHECK_MSG(r >= 0.95, "recall after compaction %.4f", r);
    vec_index_free(idx);
    tw_free(base);
    tw_free(qs);
}

/* ---- filters ---- */

struct mod_filter {
    uint64_t mod, rem;
    long calls;
};

static int mod_admit(void *ctx, uint64_t id)
{
    struct mod_filter *f = ctx;
    f->calls++;
    return (id - 1000) / 3 % f->mod == f->rem;
}

TEST(vec_filters_apply_during_search_and_still_return_k)
{
    struct tw_err err = TW_ERR_INIT;
    const uint32_t n = 5000, nq = 50, dim = 96;
    float *base = synth(5, n, dim), *qs = synth(6, nq, dim);
    struct vec_index *idx;
    struct vec_hit hits[10];
    uint32_t nh;
    uint64_t mods[] = {2, 10, 50, 1000, 4000};
    CHECK(base && qs);
    // exact_below 0: 1/2 and 1/10 walk the graph, the rarer filters switch to a scan.
    idx = build(base, n, dim, VEC_METRIC_COSINE, 0);
    CHECK(idx != NULL);
    for (size_t m = 0; m < sizeof(mods) / sizeof(mods[0]); m++) {
        struct mod_filter f = {mods[m], 1, 0};
        uint32_t matching = 0;
        double r;
        for (uint32_t i = 0; i < n; i++)
            matching += i % mods[m] == 1;
        for (uint32_t i = 0; i < nq; i++) {
            CHECK_OK(vec_index_search(idx, qs + (size_t)i * dim, 10, 0, mod_admit, &f, 0, hits,
                                      &nh, &err), &err);
            CHECK_EQ_INT(nh, matching < 10 ? matching : 10);
            for (uint32_t j = 0; j < nh; j++)
                CHECK_EQ_INT((hits[j].id - 1000) / 3 % mods[m], 1);
        }
        r = recall_at(idx, qs, nq, dim, 10, 0, mod_admit, &f);
        fprintf(stderr, "  filter 1/%llu: recall@10 %.4f\n", (unsigned long long)mods[m], r);
        CHECK_MSG(r >= 0.95, "filtered recall 1/%llu: %.4f", (unsigned long long)mods[m], r);
    }
    vec_index_free(idx);
    tw_free(base);
    tw_free(qs);
}

/* ---- persistence ---- */

static int same_results(struct vec_index *a, struct vec_index *b, const float *qs, uint32_t nq,
                        uint32_t dim)
{
    struct tw_err err = TW_ERR_INIT;
    struct vec_hit ha[10], hb[10];
    for (uint32_t i = 0; i < nq; i++) {
        uint32_t na, nb;
        if (vec_index_search(a, qs + (size_t)i * dim, 10, 0, NULL, NULL, 0, ha, &na, &err) < 0 ||
            vec_index_search(b, qs + (size_t)i * dim, 10, 0, NULL, NULL, 0, hb, &nb, &err) < 0 ||
            na != nb)
            return 0;
        for (uint32_t j = 0; j < na; j++)
            if (ha[j].id != hb[j].id || ha[j].dist != hb[j].dist)
                return 0;
    }
    return 1;
}

static char *path_in_tmp(const char *name)
{
    static char path[8][512];
    static int slot;
    char *p = path[slot++ % 8];
    snprintf(p, sizeof(path[0]), "%s/%s", test_tmpdir(), name);
    return p;
}

TEST(vec_save_open_round_trip_gives_identical_results)
{
    struct tw_err err = TW_ERR_INIT;
    const uint32_t n = 2000, nq = 50, dim = 48;
    float *base = synth(7, n + 10, dim), *qs = synth(8, nq, dim);
    struct vec_index *idx, *back = NULL, *fresh = NULL;
    struct vec_params p;
    const char *path = path_in_tmp("a.twvec");
    CHECK(base && qs);
    idx = build(base, n, dim, VEC_METRIC_L2, 0);
    CHECK(idx != NULL);
    CHECK_OK(vec_index_delete(idx, 1000 + 3 * 5, &err), &err);
    vec_index_set_max_seq(idx, 123456789012345ULL);
    CHECK_OK(vec_index_save(idx, path, &err), &err);
    CHECK_OK(vec_index_open(path, &back, &err), &err);
    CHECK_EQ_INT(vec_index_count(back), n - 1);
    CHECK_EQ_INT(vec_index_n_deleted(back), 1);
    CHECK(vec_index_max_seq(back) == 123456789012345ULL);
    vec_index_params(back, &p);
    CHECK_EQ_INT(p.dim, dim);
    CHECK_EQ_INT(p.metric, VEC_METRIC_L2);
    CHECK_EQ_INT(p.M, 16);
    CHECK(same_results(idx, back, qs, nq, dim));
    // Changes after open (the mapped file is copied first) match the same changes in memory.
    for (uint32_t i = n; i < n + 10; i++) {
        CHECK_OK(vec_index_add(idx, 1000 + (uint64_t)i * 3, base + (size_t)i * dim, &err), &err);
        CHECK_OK(vec_index_add(back, 1000 + (uint64_t)i * 3, base + (size_t)i * dim, &err), &err);
    }
    CHECK_OK(vec_index_delete(idx, 1000, &err), &err);
    CHECK_OK(vec_index_delete(back, 1000, &err), &err);
    CHECK(same_results(idx, back, qs, nq, dim));
    // Saving over the old file replaces it; the reopened copy still agrees.
    CHECK_OK(vec_index_save(back, path, &err), &err);
    CHECK_OK(vec_index_open(path, &fresh, &err), &err);
    CHECK(same_results(idx, fresh, qs, nq, dim));
    vec_index_free(fresh);
    vec_index_free(back);
    vec_index_free(idx);
    tw_free(base);
    tw_free(qs);
}

TEST(vec_empty_index_round_trips)
{
    struct tw_err err = TW_ERR_INIT;
    struct vec_params p = VEC_PARAMS_INIT(3, VEC_METRIC_DOT);
    struct vec_index *idx, *back;
    const char *path = path_in_tmp("empty.twvec");
    const float v[3] = {1, 2, 3};
    struct vec_hit hit;
    uint32_t n;
    CHECK_OK(vec_index_new(&p, &idx, &err), &err);
    CHECK_OK(vec_index_save(idx, path, &err), &err);
    CHECK_OK(vec_index_open(path, &back, &err), &err);
    CHECK_EQ_INT(vec_index_count(back), 0);
    CHECK_OK(vec_index_add(back, 5, v, &err), &err);
    CHECK_OK(vec_index_search(back, v, 1, 0, NULL, NULL, 0, &hit, &n, &err), &err);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(hit.id, 5);
    vec_index_free(back);
    vec_index_free(idx);
}

/* Recomputes both checksums of an index image, as a hostile writer would. */
static void reseal(uint8_t *img, size_t len)
{
    TW_ASSERT(vec__file_reseal(img, len) == 0);
}

TEST(vec_corrupt_truncated_and_hostile_files_are_rejected)
{
    struct tw_err err = TW_ERR_INIT;
    const uint32_t n = 300, dim = 20;
    float *base = synth(9, n, dim);
    struct vec_index *idx, *back;
    const char *path = path_in_tmp("c.twvec"), *bad = path_in_tmp("bad.twvec");
    uint8_t *img, *mut;
    size_t len;
    uint64_t s = 99;
    uint32_t v;
    CHECK(base);
    idx = build(base, n, dim, VEC_METRIC_COSINE, 0);
    CHECK(idx != NULL);
    CHECK_OK(vec_index_save(idx, path, &err), &err);
    img = (uint8_t *)test_read_file(path, &len);
    CHECK(img != NULL);
    mut = tw_malloc(len);
    CHECK(mut != NULL);

    // Every truncation, sampled, is rejected by vec_index_open with a size message.
    for (size_t cut = 0; cut < len; cut += 1 + cut / 3) {
        CHECK_EQ_INT(test_write_file(bad, img, cut), 0);
        tw_err_clear(&err);
        CHECK_MSG(vec_index_open(bad, &back, &err) < 0, "truncated at %zu accepted", cut);
        CHECK(back == NULL);
        CHECK(strstr(err.msg, bad) != NULL);
    }
    // Single-byte corruption anywhere is caught (checksums, then structure).
    for (int t = 0; t < 400; t++) {
        size_t at = t < 256 ? (size_t)t : (size_t)(lcg(&s) % len);
        memcpy(mut, img, len);
        mut[at] ^= (uint8_t)(1 + lcg(&s) % 255);
        tw_err_clear(&err);
        CHECK_MSG(vec_index_load_mem(mut, len, "m", &back, &err) < 0, "flip at %zu accepted", at);
    }
    // Not an index at all.
    tw_err_clear(&err);
    CHECK_EQ_INT(vec_index_load_mem("hello world", 11, "x.txt", &back, &err), TW_EFORMAT);
    CHECK_EQ_STR(err.msg, "'x.txt' is 11 bytes, shorter than the 256-byte header");
    // A newer format version is named.
    memcpy(mut, img, len);
    v = 2;
    memcpy(mut + 8, &v, 4);
    reseal(mut, len);
    tw_err_clear(&err);
    CHECK_EQ_INT(vec_index_load_mem(mut, len, "v2", &back, &err), TW_EUNSUP);
    CHECK(strstr(err.msg, "version 2") != NULL);
    // Valid checksums over a link that points outside the graph: caught by validation.
    memcpy(mut, img, len);
    {
        uint64_t stride, off_nodes;
        memcpy(&stride, mut + 72, 8);
        memcpy(&off_nodes, mut + 104, 8);
        v = 1;
        memcpy(mut + off_nodes + 7 * stride + dim * 4, &v, 4); // slot 7: one link
        v = 1u << 29;
        memcpy(mut + off_nodes + 7 * stride + dim * 4 + 4, &v, 4); // to a slot that is not there
    }
    reseal(mut, len);
    tw_err_clear(&err);
    CHECK_EQ_INT(vec_index_load_mem(mut, len, "h", &back, &err), TW_EFORMAT);
    CHECK_MSG(strstr(err.msg, "slot 7 links to slot 536870912") != NULL, "%s", err.msg);
    // Sealed but with a duplicate live id.
    memcpy(mut, img, len);
    {
        uint64_t off_ids, id0;
        memcpy(&off_ids, mut + 112, 8);
        memcpy(&id0, mut + off_ids, 8);
        memcpy(mut + off_ids + 8, &id0, 8);
    }
    reseal(mut, len);
    tw_err_clear(&err);
    CHECK_EQ_INT(vec_index_load_mem(mut, len, "d", &back, &err), TW_EFORMAT);
    CHECK(strstr(err.msg, "live in two slots") != NULL);
    // The untouched image still loads.
    tw_err_clear(&err);
    CHECK_OK(vec_index_load_mem(img, len, "ok", &back, &err), &err);
    vec_index_free(back);
    tw_free(mut);
    tw_free(img);
    vec_index_free(idx);
    tw_free(base);
}

TEST(vec_open_missing_file_names_it)
{
    struct tw_err err = TW_ERR_INIT;
    struct vec_index *idx;
    const char *path = path_in_tmp("nope.twvec");
    CHECK_EQ_INT(vec_index_open(path, &idx, &err), TW_ENOENT);
    CHECK(strstr(err.msg, "nope.twvec") != NULL);
}

/* ---- concurrency ---- */

struct reader_arg {
    struct vec_index *idx;
    const float *qs;
    uint32_t nq, dim;
    int failures;
};

static void *reader(void *p)
{
    struct reader_arg *a = p;
    struct tw_err err = TW_ERR_INIT;
    struct vec_hit hits[5];
    for (int round = 0; round < 5; round++) {
        for (uint32_t i = 0; i < a->nq; i++) {
            uint32_t nh;
            if (vec_index_search(a->idx, a->qs + (size_t)i * a->dim, 5, 0, NULL, NULL, 0, hits,
                                 &nh, &err) < 0 ||
                nh != 5)
                a->failures++;
        }
    }
    return NULL;
}

TEST(vec_readers_search_while_one_writer_inserts)
{
    struct tw_err err = TW_ERR_INIT;
    const uint32_t n0 = 500, n1 = 1500, nq = 40, dim = 32;
    float *base = synth(10, n1, dim), *qs = synth(11, nq, dim);
    struct vec_index *idx;
    pthread_t th[2];
    struct reader_arg ra[2];
    CHECK(base && qs);
    idx = build(base, n0, dim, VEC_METRIC_COSINE, 0);
    CHECK(idx != NULL);
    for (int t = 0; t < 2; t++) {
        ra[t] = (struct reader_arg){idx, qs, nq, dim, 0};
        CHECK_EQ_INT(pthread_create(&th[t], NULL, reader, &ra[t]), 0);
    }
    for (uint32_t i = n0; i < n1; i++) {
        if (vec_index_add(idx, 1000 + (uint64_t)i * 3, base + (size_t)i * dim, &err) < 0)
            break;
        if (i % 7 == 0)
            vec_index_delete(idx, 1000 + (uint64_t)(i - n0) * 3, &err);
    }
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    CHECK_EQ_INT(err.code, 0);
    CHECK_EQ_INT(ra[0].failures + ra[1].failures, 0);
    CHECK_EQ_INT(vec_index_count(idx) + vec_index_n_deleted(idx), n1);
    vec_index_free(idx);
    tw_free(base);
    tw_free(qs);
}

TEST(vec_survives_allocation_failures)
{
    struct tw_err err = TW_ERR_INIT;
    const uint32_t n = 200, dim = 8;
    float *base = synth(12, n, dim);
    CHECK(base);
    // Fail the k-th allocation in turn: every call fails cleanly or succeeds, nothing leaks.
    for (long k = 0; k < 60; k++) {
        struct vec_params p = VEC_PARAMS_INIT(dim, VEC_METRIC_COSINE);
        struct vec_index *idx = NULL;
        struct vec_hit hits[5];
        uint32_t nh;
        p.exact_below = 0;
        tw_mem_fail_after(k);
        if (vec_index_new(&p, &idx, &err) == 0) {
            for (uint32_t i = 0; i < n; i++)
                vec_index_add(idx, i, base + (size_t)i * dim, &err);
            vec_index_search(idx, base, 5, 0, NULL, NULL, 0, hits, &nh, &err);
            vec_index_compact(idx, &err);
        }
        tw_mem_fail_after(-1);
        if (idx) {
            // What was added is consistent: every live id finds itself.
            for (uint32_t i = 0; i < n; i++) {
                if (!vec_index_has(idx, i, NULL))
                    continue;
                tw_err_clear(&err);
                CHECK_OK(vec_index_search(idx, base + (size_t)i * dim, 1, 0, NULL, NULL, 0, hits,
                                          &nh, &err), &err);
                CHECK_EQ_INT(nh, 1);
            }
        }
        vec_index_free(idx);
        tw_err_clear(&err);
    }
    tw_free(base);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
