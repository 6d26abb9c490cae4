/* bench_vector.c - `twin bench vector`: HNSW build time and QPS at recall@10 targets, against
 * hnswlib on the same data and parameters in the same run (bench/hnswlib_peer.cpp). */
#include "cli/cli.h"

#include "base/mem.h"
#include "vector/vec.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BV_K        10
#define BV_DIM      384
#define BV_LATENT   48
#define BV_NOISE    0.5f
#define BV_EF_MAX_N 32

/* Times are wall clock and this process's CPU time; the machine is shared, so CPU time is the
 * steadier basis for ratios and the summary uses it. */
struct bv_point {
    uint32_t ef;
    double recall, qps, qps_cpu;
};

struct bv_run {
    double build_s, build_cpu_s;
    struct bv_point pts[BV_EF_MAX_N];
    int n_pts;
};

static double bv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double bv_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Exact top-k by inner product for every query. Loops base rows outside and queries inside, so
 * the query block stays in cache while the base streams through once. */
static void bv_truth(const float *base, uint32_t n, const float *qs, uint32_t nq, uint32_t dim,
                     uint64_t *truth, float *truth_d)
{
    for (size_t i = 0; i < (size_t)nq * BV_K; i++) {
        truth[i] = UINT64_MAX;
        truth_d[i] = -INFINITY;
    }
    for (uint32_t b = 0; b < n; b++) {
        const float *x = base + (size_t)b * dim;
        for (uint32_t q = 0; q < nq; q++) {
            float d = vec_dot(qs + (size_t)q * dim, x, dim);
            float *td = truth_d + (size_t)q * BV_K;
            uint64_t *ti = truth + (size_t)q * BV_K;
            int j;
            if (d <= td[BV_K - 1])
                continue;
            // Insertion into the sorted (descending) top-k list.
            for (j = BV_K - 1; j > 0 && td[j - 1] < d; j--) {
                td[j] = td[j - 1];
                ti[j] = ti[j - 1];
            }
            td[j] = d;
            ti[j] = b;
        }
    }
}

static int bv_write_file(const char *path, const float *base, uint32_t n, const float *qs,
                         uint32_t nq, uint32_t dim, const uint64_t *truth)
{
    FILE *f = fopen(path, "wb");
    uint32_t hdr[4] = {n, nq, dim, BV_K};
    int ok;
    if (!f)
        return -1;
    ok = fwrite("TWVB0001", 1, 8, f) == 8 && fwrite(hdr, 4, 4, f) == 4 &&
         fwrite(base, sizeof(float), (size_t)n * dim, f) == (size_t)n * dim &&
         fwrite(qs, sizeof(float), (size_t)nq * dim, f) == (size_t)nq * dim &&
         fwrite(truth, 8, (size_t)nq * BV_K, f) == (size_t)nq * BV_K;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Times a save and an open (mmap + checksums + full validation) of the built index, and checks
 * that the opened copy answers like the original. Failures are reported, not fatal. */
static void bv_file_times(struct vec_index *idx, const float *qs)
{
    struct tw_err err = TW_ERR_INIT;
    struct vec_index *back = NULL;
    struct vec_hit a[BV_K], b[BV_K];
    uint32_t na = 0, nb = 0;
    const char *tmp = getenv("TMPDIR");
    char path[PATH_MAX];
    double t0, t_save, t_open;
    FILE *f;
    long size = 0;
    int same;

    snprintf(path, sizeof(path), "%s/twin-bench-vector-%ld.twvec", tmp && *tmp ? tmp : "/tmp",
             (long)getpid());
    t0 = bv_now();
    if (vec_index_save(idx, path, &err) < 0) {
        fprintf(stderr, "twin: bench vector: %s\n", err.msg);
        return;
    }
    t_save = bv_now() - t0;
    t0 = bv_now();
    if (vec_index_open(path, &back, &err) < 0) {
        fprintf(stderr, "twin: bench vector: %s\n", err.msg);
        unlink(path);
        return;
    }
    t_open = bv_now() - t0;
    if ((f = fopen(path, "rb"))) {
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        fclose(f);
    }
    vec_index_search(idx, qs, BV_K, 0, NULL, NULL, 0, a, &na, &err);
    vec_index_search(back, qs, BV_K, 0, NULL, NULL, 0, b, &nb, &err);
    same = na == nb;
    for (uint32_t i = 0; same && i < na; i++)
        same = a[i].id == b[i].id && a[i].dist == b[i].dist;
    printf("twin    file %.1f MB: save %.0f ms (fsync included), open %.0f ms (mmap, checksums, "
           "validation), same results %s\n",
           size / 1e6, t_save * 1e3, t_open * 1e3, same ? "yes" : "NO");
    vec_index_free(back);
    unlink(path);
}

static int bv_ours(const float *base, uint32_t n, const float *qs, uint32_t nq, uint32_t dim,
                   const uint64_t *truth, uint32_t M, uint32_t efc, const uint32_t *efs, int n_ef,
                   struct bv_run *run)
{
    struct tw_err err = TW_ERR_INIT;
    struct vec_params p = VEC_PARAMS_INIT(dim, VEC_METRIC_DOT);
    struct vec_index *idx;
    struct vec_hit hits[BV_K];
    double t0, c0;

    p.M = M;
    p.ef_construction = efc;
    p.exact_below = 0;
    if (vec_index_new(&p, &idx, &err) < 0)
        return cli_fail("bench vector: %s", err.msg);
    t0 = bv_now();
    c0 = bv_cpu();
    for (uint32_t i = 0; i < n; i++) {
        if (vec_index_add(idx, i, base + (size_t)i * dim, &err) < 0) {
            vec_index_free(idx);
            return cli_fail("bench vector: %s", err.msg);
        }
    }
    run->build_s = bv_now() - t0;
    run->build_cpu_s = bv_cpu() - c0;
    printf("twin    build %.2f s wall, %.2f s cpu (%.0f vectors/s cpu)\n", run->build_s,
           run->build_cpu_s, n / run->build_cpu_s);
    fflush(stdout);
    for (int e = 0; e < n_ef; e++) {
        long found = 0;
        double t1 = bv_now(), c1 = bv_cpu(), secs, cpu;
        for (uint32_t q = 0; q < nq; q++) {
            uint32_t nh;
            if (vec_index_search(idx, qs + (size_t)q * dim, BV_K, efs[e], NULL, NULL, 0, hits, &nh,
                                 &err) < 0) {
                vec_index_free(idx);
                return cli_fail("bench vector: %s", err.msg);
            }
            for (uint32_t j = 0; j < nh; j++)
                for (int t = 0; t < BV_K; t++)
                    found += hits[j].id == truth[(size_t)q * BV_K + t];
        }
        secs = bv_now() - t1;
        cpu = bv_cpu() - c1;
        run->pts[e] = (struct bv_point){efs[e], (double)found / ((double)nq * BV_K), nq / secs,
                                        nq / cpu};
        printf("twin    ef %4u  recall@10 %.4f  %8.0f QPS wall %8.0f QPS cpu\n", efs[e],
               run->pts[e].recall, run->pts[e].qps, run->pts[e].qps_cpu);
        fflush(stdout);
    }
    run->n_pts = n_ef;
    bv_file_times(idx, qs);
    vec_index_free(idx);
    return 0;
}

static int bv_peer(const char *peer, const char *file, uint32_t n, uint32_t M, uint32_t efc,
                   const uint32_t *efs, int n_ef, struct bv_run *run)
{
    char cmd[8192], line[256];
    size_t len;
    FILE *p;
    int st;

    if (strchr(peer, '\'') || strchr(file, '\''))
        return cli_fail("bench vector: peer path has a quote");
    len = (size_t)snprintf(cmd, sizeof(cmd), "'%s' '%s' %u %u ", peer, file, M, efc);
    for (int e = 0; e < n_ef && len < sizeof(cmd) - 16; e++)
        len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, "%s%u", e ? "," : "", efs[e]);
    p = popen(cmd, "r");
    if (!p)
        return cli_fail("bench vector: cannot run '%s': %s", peer, strerror(errno));
    run->n_pts = 0;
    while (fgets(line, sizeof(line), p)) {
        struct bv_point pt;
        double b, bc;
        if (sscanf(line, "build %lf %lf", &b, &bc) == 2) {
            run->build_s = b;
            run->build_cpu_s = bc;
            printf("hnswlib build %.2f s wall, %.2f s cpu (%.0f vectors/s cpu)\n", b, bc, n / bc);
            fflush(stdout);
        } else if (sscanf(line, "ef %u %lf %lf %lf", &pt.ef, &pt.recall, &pt.qps, &pt.qps_cpu) ==
                       4 &&
                   run->n_pts < BV_EF_MAX_N) {
            run->pts[run->n_pts++] = pt;
            printf("hnswlib ef %4u  recall@10 %.4f  %8.0f QPS wall %8.0f QPS cpu\n", pt.ef,
                   pt.recall, pt.qps, pt.qps_cpu);
            fflush(stdout);
        }
    }
    st = pclose(p);
    if (st != 0 || run->n_pts != n_ef)
        return cli_fail("bench vector: peer '%s' failed (status %d)", peer, st);
    return 0;
}

/* CPU-time QPS at the smallest swept ef reaching 'target' recall (wall QPS in *wall); 0 when
 * none does. */
static double bv_qps_at(const struct bv_run *r, double target, uint32_t *ef, double *wall)
{
    for (int i = 0; i < r->n_pts; i++) {
        if (r->pts[i].recall >= target) {
            *ef = r->pts[i].ef;
            *wall = r->pts[i].qps;
            return r->pts[i].qps_cpu;
        }
    }
    *ef = 0;
    *wall = 0;
    return 0;
}

/* The hnswlib peer: --peer, else bench/hnswlib_peer next to the binary, else build-release's. */
static const char *bv_find_peer(const char *given, char *buf, size_t cap)
{
    ssize_t n;
    char *slash;
    if (given)
        return given;
    n = readlink("/proc/self/exe", buf, cap - 32);
    if (n > 0) {
        buf[n] = 0;
        slash = strrchr(buf, '/');
        if (slash) {
            snprintf(slash, cap - (size_t)(slash - buf), "/bench/hnswlib_peer");
            if (access(buf, X_OK) == 0)
                return buf;
        }
    }
    if (access("build-release/bench/hnswlib_peer", X_OK) == 0)
        return "build-release/bench/hnswlib_peer";
    return NULL;
}

static int bv_parse_efs(const char *s, uint32_t *efs, int *n_ef)
{
    *n_ef = 0;
    while (*s && *n_ef < BV_EF_MAX_N) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v < 1 || v > VEC_EF_MAX)
            return -1;
        efs[(*n_ef)++] = (uint32_t)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return *n_ef ? 0 : -1;
}

static void bv_usage(FILE *f)
{
    fprintf(f, "usage: twin bench vector [--n N] [--queries N] [--M M] [--efc EF]\n"
               "                        [--ef EF,EF,...] [--peer PATH | --no-peer]\n\n"
               "Builds an HNSW index (inner product, 1 thread) over N synthetic 384-d vectors\n"
               "shaped like sentence embeddings, sweeps ef and prints recall@10 and QPS, then\n"
               "runs hnswlib (bench/hnswlib_peer, built by 'make bench') on the same data and\n"
               "prints the ratios. Defaults: --n 100000 --queries 1000 --M 16 --efc 200.\n");
}

TW_BENCH(vector, "HNSW build time and QPS at recall@10 0.90/0.95/0.99 vs hnswlib")
{
    uint32_t n = 100000, nq = 1000, M = 16, efc = 200;
    uint32_t efs[BV_EF_MAX_N] = {10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768};
    int n_ef = 13, no_peer = 0, rc = 1;
    const char *peer_arg = NULL, *peer;
    char peer_buf[PATH_MAX], file[PATH_MAX] = "";
    float *base = NULL, *qs = NULL, *truth_d = NULL;
    uint64_t *truth = NULL;
    struct bv_run ours = {0}, theirs = {0};
    struct tw_err err = TW_ERR_INIT;
    double t0;
    static const double targets[3] = {0.90, 0.95, 0.99};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            bv_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--no-peer")) {
            no_peer = 1;
        } else if (v && !strcmp(a, "--n")) {
            n = (uint32_t)strtoul(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--queries")) {
            nq = (uint32_t)strtoul(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--M")) {
            M = (uint32_t)strtoul(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--efc")) {
            efc = (uint32_t)strtoul(v, NULL, 10), i++;
        } else if (v && !strcmp(a, "--peer")) {
            peer_arg = v, i++;
        } else if (v && !strcmp(a, "--ef")) {
            if (bv_parse_efs(v, efs, &n_ef) < 0)
                return cli_fail("bench vector: bad --ef list '%s'", v);
            i++;
        } else {
            bv_usage(stderr);
            return 2;
        }
    }
    if (n < BV_K || n > 10000000 || nq < 1 || nq > 100000)
        return cli_fail("bench vector: --n must be %d..10000000 and --queries 1..100000", BV_K);
    peer = no_peer ? NULL : bv_find_peer(peer_arg, peer_buf, sizeof(peer_buf));
    if (!no_peer && !peer)
        fprintf(stderr, "twin: bench vector: no hnswlib peer (run 'make bench' or pass --peer); "
                        "measuring twin only\n");

    base = tw_mallocarray((size_t)n * BV_DIM, sizeof(float));
    qs = tw_mallocarray((size_t)nq * BV_DIM, sizeof(float));
    truth = tw_mallocarray((size_t)nq * BV_K, sizeof(*truth));
    truth_d = tw_mallocarray((size_t)nq * BV_K, sizeof(*truth_d));
    if (!base || !qs || !truth || !truth_d) {
        cli_fail("bench vector: out of memory for %u vectors", n);
        goto out;
    }
    printf("data: %u base + %u query vectors, %d-d (48-d latent, noise 0.5), kernels %s\n", n, nq,
           BV_DIM, vec_isa());
    fflush(stdout);
    t0 = bv_now();
    if (vec_synth(42, 1, n, BV_DIM, BV_LATENT, BV_NOISE, base, &err) < 0 ||
        vec_synth(42, 2, nq, BV_DIM, BV_LATENT, BV_NOISE, qs, &err) < 0) {
        cli_fail("bench vector: %s", err.msg);
        goto out;
    }
    bv_truth(base, n, qs, nq, BV_DIM, truth, truth_d);
    printf("data + exact truth: %.1f s\n", bv_now() - t0);
    fflush(stdout);
    if (peer) {
        const char *tmp = getenv("TMPDIR");
        int fd;
        snprintf(file, sizeof(file), "%s/twin-bench-vector-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        fd = mkstemp(file);
        if (fd < 0 || (close(fd), bv_write_file(file, base, n, qs, nq, BV_DIM, truth) < 0)) {
            cli_fail("bench vector: cannot write '%s': %s", file, strerror(errno));
            goto out;
        }
    }
    printf("params: M %u, ef_construction %u, inner product, 1 thread, k %d\n", M, efc, BV_K);
    if (bv_ours(base, n, qs, nq, BV_DIM, truth, M, efc, efs, n_ef, &ours))
        goto out;
    if (peer && bv_peer(peer, file, n, M, efc, efs, n_ef, &theirs))
        goto out;

    printf("\nsummary (n %u, queries %u; QPS per CPU second, wall in brackets):\n", n, nq);
    if (peer)
        printf("  build: twin %.2f s cpu [%.2f wall], hnswlib %.2f s cpu [%.2f wall], "
               "ratio %.2fx [%.2fx] (hnswlib time / twin time)\n",
               ours.build_cpu_s, ours.build_s, theirs.build_cpu_s, theirs.build_s,
               theirs.build_cpu_s / ours.build_cpu_s, theirs.build_s / ours.build_s);
    else
        printf("  build: twin %.2f s cpu [%.2f wall]\n", ours.build_cpu_s, ours.build_s);
    for (int t = 0; t < 3; t++) {
        uint32_t ef_o, ef_t = 0;
        double wo, wt = 0;
        double qo = bv_qps_at(&ours, targets[t], &ef_o, &wo);
        double qt = peer ? bv_qps_at(&theirs, targets[t], &ef_t, &wt) : 0;
        printf("  recall@10 >= %.2f: twin ", targets[t]);
        if (qo > 0)
            printf("%.0f QPS [%.0f] (ef %u)", qo, wo, ef_o);
        else
            printf("not reached");
        if (peer) {
            printf(", hnswlib ");
            if (qt > 0)
                printf("%.0f QPS [%.0f] (ef %u)", qt, wt, ef_t);
            else
                printf("not reached");
            if (qo > 0 && qt > 0)
                printf(", ratio %.2fx [%.2fx]", qo / qt, wo / wt);
        }
        printf("\n");
    }
    rc = 0;
out:
    if (file[0])
        unlink(file);
    tw_free(base);
    tw_free(qs);
    tw_free(truth);
    tw_free(truth_d);
    return rc;
}
