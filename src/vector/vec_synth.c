/* vec_synth.c - benchmark vectors shaped like sentence embeddings (see vec_synth in vec.h). */
#include "vector/vec.h"

#include "base/mem.h"

#include <math.h>

/* xoshiro256** seeded by splitmix64: fast, good enough for test data, same on every machine. */
struct rng {
    uint64_t s[4];
};

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static void rng_seed(struct rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        uint64_t z = (seed += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        r->s[i] = z ^ (z >> 31);
    }
}

static uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* A standard normal deviate (Box-Muller; the second value of each pair is dropped for
 * simplicity: this is test data, not a hot loop). */
static double rng_gauss(struct rng *r)
{
    double u1 = ((double)(rng_next(r) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(rng_next(r) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

int vec_synth(uint64_t matrix_seed, uint64_t seed, uint32_t n, uint32_t dim, uint32_t latent,
              float noise, float *out, struct tw_err *err)
{
    struct rng r;
    float *A, *z;

    if (!dim || dim > VEC_DIM_MAX || !latent || latent > VEC_DIM_MAX)
        return tw_errf(err, TW_EINVAL, "synthetic vectors: dim %u latent %u outside 1..%d", dim,
                       latent, VEC_DIM_MAX);
    A = tw_mallocarray((size_t)dim * latent, sizeof(*A));
    z = tw_mallocarray(latent, sizeof(*z));
    if (!A || !z) {
        tw_free(A);
        tw_free(z);
        return tw_errf(err, TW_ENOMEM, "out of memory making synthetic vectors");
    }
    rng_seed(&r, matrix_seed);
    for (size_t i = 0; i < (size_t)dim * latent; i++)
        A[i] = (float)rng_gauss(&r);
    rng_seed(&r, seed);
    for (uint32_t p = 0; p < n; p++) {
        float *x = out + (size_t)p * dim;
        double n2 = 0;
        for (uint32_t j = 0; j < latent; j++)
            z[j] = (float)rng_gauss(&r);
        for (uint32_t i = 0; i < dim; i++) {
            const float *row = A + (size_t)i * latent;
            double v = 0;
            for (uint32_t j = 0; j < latent; j++)
                v += (double)row[j] * z[j];
            v += noise * rng_gauss(&r);
            x[i] = (float)v;
            n2 += v * v;
        }
        n2 = n2 > 0 ? 1.0 / sqrt(n2) : 0;
        for (uint32_t i = 0; i < dim; i++)
            x[i] = (float)(x[i] * n2);
    }
    tw_free(A);
    tw_free(z);
    return 0;
}
