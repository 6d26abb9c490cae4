/* bench_kq.c - `twin bench kernels`: throughput of the tensor kernels per type, SIMD against the
 * scalar reference in the same run, and the machine's yardsticks (memory copy bandwidth, FMA
 * peak, best f32 matmul rate).
 */
#include "base/mem.h"
#include "base/pool.h"
#include "cli/cli.h"
#include "nn/kq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Seconds per call of fn(ctx): repeats until min_s has passed (at least 'min_runs' calls, after
 * one warm-up call) and keeps the fastest call, the least disturbed by other load. */
static double time_best(void (*fn)(void *), void *ctx, double min_s, int min_runs)
{
    double best = 1e30, start;
    fn(ctx);
    start = now_s();
    for (int i = 0; i < min_runs || now_s() - start < min_s; i++) {
        double t0 = now_s();
        fn(ctx);
        double dt = now_s() - t0;
        if (dt < best)
            best = dt;
        if (i > 1000)
            break;
    }
    return best;
}

static uint64_t rng = 88172645463325252ull;
static float gauss(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    float u = ((rng >> 40) + 0.5f) / 16777216.0f;
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    float v = ((rng >> 40) + 0.5f) / 16777216.0f;
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

/* A weight matrix of n_out rows of n_in values of type t: a quantized seed of up to 64 rows,
 * repeated (the values do not change the speed, and quantizing 100 MB takes long). */
static void *make_weights(enum gguf_ttype t, int64_t n_in, int64_t n_out, size_t *row_bytes)
{
    int64_t seed_rows = n_out < 64 ? n_out : 64;
    float *f = tw_mallocarray((size_t)(n_in * seed_rows), sizeof(float));
    size_t rb = gguf_row_size(t, n_in);
    char *w = tw_mallocarray((size_t)n_out, rb);
    if (!f || !w) {
        tw_free(f);
        tw_free(w);
        return NULL;
    }
    for (int64_t i = 0; i < n_in * seed_rows; i++)
        f[i] = gauss() * 0.02f;
    kq_quant(t, f, w, n_in * seed_rows);
    for (int64_t r = seed_rows; r < n_out; r++)
        memcpy(w + r * rb, w + (r % seed_rows) * rb, rb);
    tw_free(f);
    *row_bytes = rb;
    return w;
}

struct mm_job {
    enum gguf_ttype t;
    const void *w;
    int64_t n_in, n_out, n_tok;
    const float *x;
    float *y;
    struct tw_pool *pool;
};

static void run_matmul(void *arg)
{
    struct mm_job *j = arg;
    kq_matmul(j->t, j->w, j->n_in, j->n_out, j->x, j->n_tok, j->y, j->pool);
}

/* Token generation from memory: each call takes the next slice of about 1 MiB of a 64 MiB
 * matrix, so its weights are not in any cache (the cycle is twice the L3), and a call is short
 * enough (~0.1 ms) to run unpreempted on a busy machine. */
struct tg_job {
    struct mm_job mm;
    const char *base;
    size_t row_bytes;
    int64_t slice_rows, n_slices, next;
};

static void run_tg_slice(void *arg)
{
    struct tg_job *j = arg;
    j->mm.w = j->base + (size_t)(j->next * j->slice_rows) * j->row_bytes;
    j->mm.n_out = j->slice_rows;
    j->next = (j->next + 1) % j->n_slices;
    run_matmul(&j->mm);
}

/* The same over repacked slices (kq_pack), where the type has a packed layout. */
struct tgx_job {
    struct kq_packed **slices;
    int64_t n_slices, next;
    const float *x;
    float *y;
    struct tw_pool *pool;
};

static void run_tgx_slice(void *arg)
{
    struct tgx_job *j = arg;
    kq_matmul_packed(j->slices[j->next], j->x, 1, j->y, j->pool);
    j->next = (j->next + 1) % j->n_slices;
}

/* Packs each 1 MiB slice of the tg matrix; NULL when the type (or this CPU) has no packed
 * layout, or without memory. */
static struct kq_packed **pack_slices(const struct tg_job *jn)
{
    struct kq_packed **sl = tw_calloc((size_t)jn->n_slices, sizeof(*sl));
    for (int64_t i = 0; sl && i < jn->n_slices; i++) {
        sl[i] = kq_pack(jn->mm.t, jn->base + (size_t)(i * jn->slice_rows) * jn->row_bytes,
                        jn->mm.n_in, jn->slice_rows, jn->mm.pool, NULL);
        if (!sl[i]) {
            for (int64_t k = 0; k < i; k++)
                kq_packed_free(sl[k]);
            tw_free(sl);
            return NULL;
        }
    }
    return sl;
}

struct dq_job {
    enum gguf_ttype t;
    const void *w;
    float *out;
    int64_t n;
};

static void run_dequant(void *arg)
{
    struct dq_job *j = arg;
    kq_dequant(j->t, j->w, j->out, j->n);
}

struct copy_job {
    void *dst;
    const void *src;
    size_t n;
};

static void run_copy(void *arg)
{
    struct copy_job *j = arg;
    memcpy(j->dst, j->src, j->n);
}

struct burn_job {
    int64_t iters;
    int64_t flops[64];
};

static void burn_fn(void *arg, int ith, int nth)
{
    struct burn_job *b = arg;
    (void)nth;
    int64_t f = kq_fma_burn(b->iters);
    if (ith < 64)
        b->flops[ith] = f;
}

struct burn_all {
    struct burn_job *job;
    struct tw_pool *pool;
};

static void run_burn(void *arg)
{
    struct burn_all *a = arg;
    tw_pool_run(a->pool, burn_fn, a->job);
}

static float *gauss_vec(int64_t n)
{
    float *v = tw_mallocarray((size_t)n, sizeof(float));
    for (int64_t i = 0; v && i < n; i++)
        v[i] = gauss();
    return v;
}

static const enum gguf_ttype bench_types[] = {GGUF_T_F32,  GGUF_T_F16,  GGUF_T_BF16,
                                              GGUF_T_Q8_0, GGUF_T_Q4_0, GGUF_T_Q4_K,
                                              GGUF_T_Q5_K, GGUF_T_Q6_K};

static void bench_usage(FILE *f)
{
    fprintf(f, "usage: twin bench kernels [--threads N] [--quick] [--type NAME] [--isa SET]\n"
               "  Weights GB/s for token generation (n_tok 1, %s), GFLOP/s for prompt\n"
               "  processing (n_tok 128), each for the SIMD kernels and the scalar reference\n"
               "  in the same run; memcpy bandwidth and FMA peak as yardsticks.\n",
               "a 64 MiB matrix");
}

static int parse_type(const char *s, enum gguf_ttype *out)
{
    for (size_t k = 0; k < sizeof(bench_types) / sizeof(bench_types[0]); k++)
        if (!strcmp(s, gguf_type_name(bench_types[k]))) {
            *out = bench_types[k];
            return 0;
        }
    return -1;
}

struct bench_opts {
    int n_threads;
    int quick;
    int only; // restrict to one type
    enum gguf_ttype type;
};

static void bench_yardsticks(struct tw_pool *pool, const struct bench_opts *op)
{
    size_t n = (size_t)64 << 20;
    char *a = tw_malloc(n), *b = tw_malloc(n);
    if (a && b) {
        memset(a, 1, n);
        memset(b, 2, n);
        struct copy_job cj = {b, a, n};
        double s = time_best(run_copy, &cj, op->quick ? 0.1 : 0.4, 3);
        printf("memcpy 64 MiB (1 thread)   %8.1f GB/s copied (%.1f GB/s read+write)\n",
               n / s / 1e9, 2 * n / s / 1e9);
    }
    tw_free(a);
    tw_free(b);

    struct burn_job bj = {.iters = 2000000};
    struct burn_all ba = {&bj, NULL};
    double s1 = time_best(run_burn, &ba, 0.1, 3);
    ba.pool = pool;
    double sn = time_best(run_burn, &ba, 0.1, 3);
    int64_t fl = 0;
    for (int i = 0; i < tw_pool_size(pool) && i < 64; i++)
        fl += bj.flops[i];
    printf("f32 FMA peak (%s)       %8.1f GFLOP/s 1 thread, %.1f GFLOP/s %d threads\n",
           kq_isa(), bj.flops[0] / s1 / 1e9, fl / sn / 1e9, tw_pool_size(pool));
}

/* Best f32 matmul rate over a few prompt-processing shapes. */
static void bench_f32_peak(struct tw_pool *pool, const struct bench_opts *op)
{
    static const int64_t shapes[][3] = {{1024, 1024, 128}, {2048, 2048, 128}, {768, 3072, 512}};
    double best = 0;
    int bi = 0;
    for (int k = 0; k < (op->quick ? 1 : 3); k++) {
        size_t rb;
        void *w = make_weights(GGUF_T_F32, shapes[k][0], shapes[k][1], &rb);
        float *x = gauss_vec(shapes[k][0] * shapes[k][2]);
        float *y = tw_mallocarray((size_t)(shapes[k][1] * shapes[k][2]), sizeof(float));
        if (w && x && y) {
            struct mm_job j = {GGUF_T_F32, w, shapes[k][0], shapes[k][1], shapes[k][2], x, y, pool};
            double s = time_best(run_matmul, &j, op->quick ? 0.1 : 0.3, 3);
            double g = 2.0 * shapes[k][0] * shapes[k][1] * shapes[k][2] / s / 1e9;
            if (g > best)
                best = g, bi = k;
        }
        tw_free(w), tw_free(x), tw_free(y);
    }
    printf("f32 matmul best            %8.1f GFLOP/s (n_in %lld, n_out %lld, n_tok %lld, %d "
           "threads)\n",
           best, (long long)shapes[bi][0], (long long)shapes[bi][1], (long long)shapes[bi][2],
           tw_pool_size(pool));
}

static void bench_type(enum gguf_ttype t, struct tw_pool *pool, const struct bench_opts *op,
                       const char *isa)
{
    /* pp: the FFN shape of a 100M Llama (dim 768, FFN 2048), short enough per call that the
     * fastest of many calls escapes preemption on a shared machine */
    const int64_t n_in = 4096, pp_in = 768, pp_out = 2048, pp_tok = 128;
    size_t rb;
    int64_t tg_out = (int64_t)(((size_t)64 << 20) / gguf_row_size(t, n_in));
    void *w = make_weights(t, n_in, tg_out, &rb);
    size_t rb2;
    void *w2 = make_weights(t, pp_in, pp_out, &rb2);
    float *x = gauss_vec(pp_in * pp_tok > n_in ? pp_in * pp_tok : n_in);
    float *y = tw_mallocarray((size_t)(tg_out > pp_out * pp_tok ? tg_out : pp_out * pp_tok),
                              sizeof(float));
    float *dq = tw_mallocarray((size_t)1 << 22, sizeof(float));
    if (!w || !w2 || !x || !y || !dq) {
        printf("%-5s out of memory\n", gguf_type_name(t));
        goto out;
    }
    double tmin = op->quick ? 0.1 : 0.5;

    kq_set_isa(isa);
    struct dq_job dj = {t, w, dq, (int64_t)1 << 22};
    double s_dq = time_best(run_dequant, &dj, tmin, 3);
    /* dot: one thread over the first rows of the matrix (about 512 KiB, so from L2): the
     * kernels' own speed, least disturbed by other load on the machine */
    int64_t l2_rows = (int64_t)((512 * 1024) / rb);
    struct mm_job j1 = {t, w, n_in, l2_rows, 1, x, y, NULL};
    double s_dot = time_best(run_matmul, &j1, tmin, 10);
    double l2bytes = (double)rb * l2_rows;
    struct tg_job jn = {{t, w, n_in, tg_out, 1, x, y, pool}, w, rb, 0, 0, 0};
    jn.slice_rows = (int64_t)(((size_t)1 << 20) / rb);
    jn.n_slices = tg_out / jn.slice_rows;
    double s_tg = time_best(run_tg_slice, &jn, tmin, 64);
    const double slice_bytes = (double)rb * jn.slice_rows;
    struct tgx_job jx = {pack_slices(&jn), jn.n_slices, 0, x, y, pool};
    double s_tgx = jx.slices ? time_best(run_tgx_slice, &jx, tmin, 64) : 0;
    for (int64_t i = 0; jx.slices && i < jx.n_slices; i++)
        kq_packed_free(jx.slices[i]);
    tw_free(jx.slices);
    struct mm_job jp = {t, w2, pp_in, pp_out, pp_tok, x, y, pool};
    double s_pp = time_best(run_matmul, &jp, tmin, 3);

    kq_set_isa("scalar");
    double r_dq = time_best(run_dequant, &dj, 0.0, 1);
    double r_dot = time_best(run_matmul, &j1, 0.0, 3);
    double r_tg = time_best(run_tg_slice, &jn, 0.0, 8);
    double r_pp = op->quick ? 0 : time_best(run_matmul, &jp, 0.0, 1);
    kq_set_isa(isa);

    double flops = 2.0 * pp_in * pp_out * pp_tok;
    printf("%-5s %9.1f %5.1fx %9.1f %5.1fx %9.1f %5.1fx", gguf_type_name(t),
           4.0 * dj.n / s_dq / 1e9, r_dq / s_dq, l2bytes / s_dot / 1e9, r_dot / s_dot,
           slice_bytes / s_tg / 1e9, r_tg / s_tg);
    if (s_tgx > 0)
        printf(" %9.1f", slice_bytes / s_tgx / 1e9);
    else
        printf(" %9s", "-");
    printf(" %9.1f", flops / s_pp / 1e9);
    if (r_pp > 0)
        printf(" %5.1fx\n", r_pp / s_pp);
    else
        printf("      -\n");
    fflush(stdout);
out:
    tw_free(w), tw_free(w2), tw_free(x), tw_free(y), tw_free(dq);
}

TW_BENCH(kernels, "tensor kernels: dequant, dot, matmul GB/s and GFLOP/s per type, vs scalar")
{
    struct bench_opts op = {.n_threads = 0};
    struct tw_err err = TW_ERR_INIT;
    struct tw_pool *pool = NULL;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 256)
                return cli_fail("--threads wants a number from 1 to 256, not '%s'", argv[i]);
            op.n_threads = (int)v;
        } else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            if (kq_set_isa(argv[++i]) < 0)
                return cli_fail("kernel set '%s' is not available here (scalar avx2 avx512 "
                                "avx512-novnni)",
                                argv[i]);
        } else if (!strcmp(argv[i], "--quick")) {
            op.quick = 1;
        } else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            if (parse_type(argv[++i], &op.type))
                return cli_fail("unknown type '%s' (f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k)",
                                argv[i]);
            op.only = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            bench_usage(stdout);
            return 0;
        } else {
            bench_usage(stderr);
            return 2;
        }
    }
    if (tw_pool_new(op.n_threads, &pool, &err))
        return cli_fail("%s", err.msg);
    const char *isa = kq_isa();
    printf("kernels: %s, %d threads (figures are the fastest of repeated runs; the machine may be "
           "shared)\n",
           isa, tw_pool_size(pool));
    bench_yardsticks(pool, &op);
    bench_f32_peak(pool, &op);
    printf("\n%-5s %9s %6s %9s %6s %9s %6s %9s %9s %6s\n", "type", "dequant", "vs ref",
           "dot L2", "vs ref", "tg", "vs ref", "tg x16", "pp", "vs ref");
    printf("%-5s %9s %6s %9s %6s %9s %6s %9s %9s %6s\n", "", "GB/s out", "", "GB/s w", "",
           "GB/s w", "", "GB/s w", "GFLOP/s", "");
    for (size_t k = 0; k < sizeof(bench_types) / sizeof(bench_types[0]); k++) {
        if (op.only && bench_types[k] != op.type)
            continue;
        bench_type(bench_types[k], pool, &op, isa);
    }
    printf("\ndot L2: n_in 4096, 512 KiB of weights, n_tok 1, one thread; tg: the same on 1 MiB "
           "slices of a 64 MiB\nmatrix taken in turn (not in cache), all threads; tg x16: the "
           "same slices repacked\n(kq_pack, what the decoder uses; '-': no packed layout); pp: "
           "n_in 768, "
           "n_out 2048, n_tok 128 on all threads. vs ref: the "
           "scalar reference kernels' time over ours.\n");
    tw_pool_free(pool);
    return 0;
}
