/* kq_avx512.c - AVX-512 kernels (compiled with -mavx512f/bw/vl/dq; called only when the CPU has
 * them). Float kernels use 16-wide FMAs with masked tails; the Q8_0/Q4_0 integer dot products use
 * VNNI (vpdpbusd) when the CPU has it. Entries left NULL come from the AVX2 table.
 */
#include "nn/kq_impl.h"

#include <immintrin.h>
#include <string.h>

static inline float f16(uint16_t h)
{
    return _cvtsh_ss(h);
}

static inline __m512 load_bf16(const uint16_t *p)
{
    __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}
static inline __m512 load_bf16_mask(const uint16_t *p, __mmask16 m)
{
    __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

#define LOAD_F32(p) _mm512_loadu_ps(p)
#define LOADM_F32(p, m) _mm512_maskz_loadu_ps(m, p)
#define LOAD_F16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define LOADM_F16(p, m) _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p))
#define LOAD_BF16(p) load_bf16(p)
#define LOADM_BF16(p, m) load_bf16_mask(p, m)

/* ---- float dot products: 4 accumulators, masked tail ---- */

#define DEF_DOT(name, T, LOAD, LOADM)                                                              \
    static float name(int64_t n, const void *w, const void *x)                                     \
    {                                                                                              \
        const T *a = w, *b = x;                                                                    \
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                                \
        int64_t i = 0;                                                                             \
        for (; i + 64 <= n; i += 64) {                                                             \
            s0 = _mm512_fmadd_ps(LOAD(a + i), LOAD(b + i), s0);                                    \
            s1 = _mm512_fmadd_ps(LOAD(a + i + 16), LOAD(b + i + 16), s1);                          \
            s2 = _mm512_fmadd_ps(LOAD(a + i + 32), LOAD(b + i + 32), s2);                          \
            s3 = _mm512_fmadd_ps(LOAD(a + i + 48), LOAD(b + i + 48), s3);                          \
        }                                                                                          \
        for (; i + 16 <= n; i += 16)                                                               \
            s0 = _mm512_fmadd_ps(LOAD(a + i), LOAD(b + i), s0);                                    \
        if (i < n) {                                                                               \
            const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);                                  \
            s1 = _mm512_fmadd_ps(LOADM(a + i, m), LOADM(b + i, m), s1);                            \
        }                                                                                          \
        return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));  \
    }

DEF_DOT(dot_f32, float, LOAD_F32, LOADM_F32)
DEF_DOT(dot_f16, uint16_t, LOAD_F16, LOADM_F16)
DEF_DOT(dot_bf16, uint16_t, LOAD_BF16, LOADM_BF16)

/* ---- float gemm: 4 x 4 register tile ---- */

/* Sums each of 4 vectors and returns the 4 sums in one __m128 (a transposing reduction: cheaper
 * than 4 separate reductions). */
static inline __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d)
{
    /* 512 -> 256: add halves */
    __m256 a8 = _mm256_add_ps(_mm512_castps512_ps256(a),
                              _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
    __m256 b8 = _mm256_add_ps(_mm512_castps512_ps256(b),
                              _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(b), 1)));
    __m256 c8 = _mm256_add_ps(_mm512_castps512_ps256(c),
                              _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(c), 1)));
    __m256 d8 = _mm256_add_ps(_mm512_castps512_ps256(d),
                              _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(d), 1)));
    __m256 ab = _mm256_hadd_ps(a8, b8); // a01 a23 b01 b23 | a45 a67 b45 b67
    __m256 cd = _mm256_hadd_ps(c8, d8);
    __m256 abcd = _mm256_hadd_ps(ab, cd); // a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

#define DEF_GEMM(name, T, LOAD, LOADM)                                                             \
    static void name(int64_t n, const void *w, size_t w_stride, const void *x, size_t x_stride,    \
                     float *y, int64_t y_stride)                                                   \
    {                                                                                              \
        const T *a0 = w, *a1 = (const T *)((const char *)w + w_stride),                            \
                *a2 = (const T *)((const char *)w + 2 * w_stride),                                 \
                *a3 = (const T *)((const char *)w + 3 * w_stride);                                 \
        const T *b[4];                                                                             \
        for (int k = 0; k < 4; k++)                                                                \
            b[k] = (const T *)((const char *)x + k * x_stride);                                    \
        __m512 acc[4][4];                                                                          \
        for (int t = 0; t < 4; t++)                                                                \
            acc[0][t] = acc[1][t] = acc[2][t] = acc[3][t] = _mm512_setzero_ps();                   \
        int64_t i = 0;                                                                             \
        for (; i + 16 <= n; i += 16) {                                                             \
            const __m512 w0 = LOAD(a0 + i), w1 = LOAD(a1 + i), w2 = LOAD(a2 + i),                  \
                         w3 = LOAD(a3 + i);                                                        \
            for (int t = 0; t < 4; t++) {                                                          \
                const __m512 v = LOAD(b[t] + i);                                                   \
                acc[0][t] = _mm512_fmadd_ps(w0, v, acc[0][t]);                                     \
                acc[1][t] = _mm512_fmadd_ps(w1, v, acc[1][t]);                                     \
                acc[2][t] = _mm512_fmadd_ps(w2, v, acc[2][t]);                                     \
                acc[3][t] = _mm512_fmadd_ps(w3, v, acc[3][t]);                                     \
            }                                                                                      \
        }                                                                                          \
        if (i < n) {                                                                               \
            const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);                                  \
            const __m512 w0 = LOADM(a0 + i, m), w1 = LOADM(a1 + i, m), w2 = LOADM(a2 + i, m),      \
                         w3 = LOADM(a3 + i, m);                                                    \
            for (int t = 0; t < 4; t++) {                                                          \
                const __m512 v = LOADM(b[t] + i, m);                                               \
                acc[0][t] = _mm512_fmadd_ps(w0, v, acc[0][t]);                                     \
                acc[1][t] = _mm512_fmadd_ps(w1, v, acc[1][t]);                                     \
                acc[2][t] = _mm512_fmadd_ps(w2, v, acc[2][t]);                                     \
                acc[3][t] = _mm512_fmadd_ps(w3, v, acc[3][t]);                                     \
            }                                                                                      \
        }                                                                                          \
        for (int t = 0; t < 4; t++)                                                                \
            _mm_storeu_ps(y + t * y_stride, reduce4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]));  \
    }

DEF_GEMM(gemm_f32, float, LOAD_F32, LOADM_F32)
DEF_GEMM(gemm_f16, uint16_t, LOAD_F16, LOADM_F16)
DEF_GEMM(gemm_bf16, uint16_t, LOAD_BF16, LOADM_BF16)

void kq_avx512_table(struct kq_ops *ops)
{
    memset(ops, 0, sizeof(*ops));
    ops->type[GGUF_T_F32] = (struct kq_type_ops){NULL, NULL, dot_f32, gemm_f32};
    ops->type[GGUF_T_F16] = (struct kq_type_ops){NULL, NULL, dot_f16, gemm_f16};
    ops->type[GGUF_T_BF16] = (struct kq_type_ops){NULL, NULL, dot_bf16, gemm_bf16};
}

/* 12 independent FMA chains: enough to cover the FMA latency on two pipes. */
int64_t kq__fma_burn_avx512(int64_t iters)
{
    __m512 acc[12];
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < 12; k++)
        acc[k] = _mm512_set1_ps((float)k);
    for (int64_t i = 0; i < iters; i++)
        for (int k = 0; k < 12; k++)
            acc[k] = _mm512_fmadd_ps(acc[k], m, c);
    __m512 s = acc[0];
    for (int k = 1; k < 12; k++)
        s = _mm512_add_ps(s, acc[k]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return iters * 12 * 16 * 2;
}
