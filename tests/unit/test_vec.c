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

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
