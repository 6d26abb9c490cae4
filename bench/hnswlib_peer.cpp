// hnswlib_peer.cpp - the peer for `twin bench vector`: builds hnswlib (Debian's libhnswlib-dev)
// on the benchmark file that bench_vector wrote and sweeps ef, one thread, printing
//     build WALL_SECONDS CPU_SECONDS
//     ef EF RECALL QPS_WALL QPS_CPU
// (CPU time is this process's: on a shared machine it is steadier than wall time.)
// File (little endian): "TWVB0001", u32 n, nq, dim, k, f32 base[n*dim], f32 queries[nq*dim],
// u64 truth[nq*k] (base row numbers of the exact k nearest by inner product).
// Usage: hnswlib_peer FILE M EF_CONSTRUCTION EF[,EF...]
#include <hnswlib/hnswlib.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <unordered_set>
#include <vector>

static double now()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

static double cpu_now()
{
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        std::fprintf(stderr, "usage: hnswlib_peer FILE M EF_CONSTRUCTION EF[,EF...]\n");
        return 2;
    }
    FILE *f = std::fopen(argv[1], "rb");
    char magic[8];
    uint32_t hdr[4];
    if (!f || std::fread(magic, 1, 8, f) != 8 || std::memcmp(magic, "TWVB0001", 8) ||
        std::fread(hdr, 4, 4, f) != 4) {
        std::fprintf(stderr, "hnswlib_peer: cannot read '%s'\n", argv[1]);
        return 1;
    }
    size_t n = hdr[0], nq = hdr[1], dim = hdr[2], k = hdr[3];
    std::vector<float> base(n * dim), qs(nq * dim);
    std::vector<uint64_t> truth(nq * k);
    if (std::fread(base.data(), 4, base.size(), f) != base.size() ||
        std::fread(qs.data(), 4, qs.size(), f) != qs.size() ||
        std::fread(truth.data(), 8, truth.size(), f) != truth.size()) {
        std::fprintf(stderr, "hnswlib_peer: '%s' is truncated\n", argv[1]);
        return 1;
    }
    std::fclose(f);
    size_t M = std::strtoul(argv[2], nullptr, 10), efc = std::strtoul(argv[3], nullptr, 10);

    hnswlib::InnerProductSpace space(dim);
    double t0 = now(), c0 = cpu_now();
    hnswlib::HierarchicalNSW<float> index(&space, n, M, efc, 100);
    for (size_t i = 0; i < n; i++)
        index.addPoint(base.data() + i * dim, i);
    std::printf("build %.3f %.3f\n", now() - t0, cpu_now() - c0);
    std::fflush(stdout);

    std::string efs = argv[4];
    size_t pos = 0;
    while (pos < efs.size()) {
        size_t comma = efs.find(',', pos);
        if (comma == std::string::npos)
            comma = efs.size();
        size_t ef = std::strtoul(efs.substr(pos, comma - pos).c_str(), nullptr, 10);
        pos = comma + 1;
        index.setEf(ef);
        size_t found = 0;
        std::vector<std::vector<size_t>> got(nq);
        double t1 = now(), c1 = cpu_now();
        for (size_t q = 0; q < nq; q++) {
            auto res = index.searchKnn(qs.data() + q * dim, k);
            while (!res.empty()) {
                got[q].push_back(res.top().second);
                res.pop();
            }
        }
        double secs = now() - t1, cpu = cpu_now() - c1;
        for (size_t q = 0; q < nq; q++) {
            std::unordered_set<uint64_t> want(truth.begin() + q * k, truth.begin() + (q + 1) * k);
            for (size_t id : got[q])
                found += want.count(id);
        }
        std::printf("ef %zu %.4f %.1f %.1f\n", ef, (double)found / (double)(nq * k), nq / secs,
                    nq / cpu);
        std::fflush(stdout);
    }
    return 0;
}
