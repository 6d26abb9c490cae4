/* vec_dist.c - reference distance kernels and the run-time choice of the fast ones. */
#include "vector/vec.h"
#include "vector/vec_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

float vec_dot_ref(const float *a, const float *b, size_t n)
{
    float s = 0.0f;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

float vec_l2sq_ref(const float *a, const float *b, size_t n)
{
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}

int vec__cpu_has(const char *isa)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!strcmp(isa, "avx2"))
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (!strcmp(isa, "avx512"))
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("fma");
#endif
    return !strcmp(isa, "scalar");
}

static struct vec__kernels kernels = {"scalar", vec_dot_ref, vec_l2sq_ref};
static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;

static void kernels_init(void)
{
    const char *force = getenv("TWIN_VEC_ISA");
    int allow512 = !force || !strcmp(force, "avx512");
    int allow2 = allow512 || !strcmp(force, "avx2");

#if defined(__x86_64__)
    if (allow512 && vec__cpu_has("avx512")) {
        kernels = (struct vec__kernels){"avx512", vec__dot_avx512, vec__l2sq_avx512};
        return;
    }
    if (allow2 && vec__cpu_has("avx2")) {
        kernels = (struct vec__kernels){"avx2", vec__dot_avx2, vec__l2sq_avx2};
        return;
    }
#else
    (void)allow2;
#endif
}

const struct vec__kernels *vec__kernels(void)
{
    pthread_once(&kernels_once, kernels_init);
    return &kernels;
}

float vec_dot(const float *a, const float *b, size_t n)
{
    return vec__kernels()->dot(a, b, n);
}

float vec_l2sq(const float *a, const float *b, size_t n)
{
    return vec__kernels()->l2sq(a, b, n);
}

const char *vec_isa(void)
{
    return vec__kernels()->isa;
}

/* ---- checksum ---- */

/* A 4-lane multiply-rotate hash over 8-byte words (the shape of xxHash64's inner loop): four
 * independent lanes keep the multiplier busy, so it runs near memory speed, which matters because
 * opening an index hashes the whole file. */
#define H_P1 0x9E3779B185EBCA87ULL
#define H_P2 0xC2B2AE3D27D4EB4FULL
#define H_P3 0x165667B19E3779F9ULL

static inline unsigned long long rotl64(unsigned long long x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline unsigned long long h_round(unsigned long long acc, unsigned long long w)
{
    return rotl64(acc + w * H_P2, 31) * H_P1;
}

unsigned long long vec__hash64(const void *data, size_t len, unsigned long long seed)
{
    const unsigned char *p = data;
    unsigned long long a0 = seed + H_P1 + H_P2, a1 = seed + H_P2, a2 = seed, a3 = seed - H_P1;
    unsigned long long h, w;
    size_t i = 0;

    for (; i + 32 <= len; i += 32) {
        unsigned long long w4[4];
        memcpy(w4, p + i, 32);
        a0 = h_round(a0, w4[0]);
        a1 = h_round(a1, w4[1]);
        a2 = h_round(a2, w4[2]);
        a3 = h_round(a3, w4[3]);
    }
    h = rotl64(a0, 1) + rotl64(a1, 7) + rotl64(a2, 12) + rotl64(a3, 18);
    h = (h ^ h_round(0, a0)) * H_P1 + H_P3;
    h = (h ^ h_round(0, a1)) * H_P1 + H_P3;
    h = (h ^ h_round(0, a2)) * H_P1 + H_P3;
    h = (h ^ h_round(0, a3)) * H_P1 + H_P3;
    h += (unsigned long long)len;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, p + i, 8);
        h = rotl64(h ^ h_round(0, w), 27) * H_P1 + H_P3;
    }
    for (; i < len; i++)
        h = rotl64(h ^ (p[i] * H_P3), 11) * H_P1;
    h ^= h >> 33;
    h *= H_P2;
    h ^= h >> 29;
    h *= H_P3;
    h ^= h >> 32;
    return h;
}
