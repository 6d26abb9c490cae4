/* kq_avx512.c - AVX-512 kernels (compiled with -mavx512f/bw/vl/dq; called only when the CPU has
 * them). Float kernels use 16-wide FMAs with masked tails; the Q8_0/Q4_0 integer dot products use
 * VNNI (vpdpbusd) when the CPU has it. Entries left NULL come from the AVX2 table.
 */
#include "nn/kq_impl.h"

#include <immintrin.h>
#include <stddef.h>
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

/* ---- Q8_0 / Q4_0 against Q8_0X activations: two blocks per 512-bit vector ----
 *
 * The activations' quants are contiguous (kq_impl.h), so a pair of blocks is one 64-byte load.
 * With AVX-512 VNNI and VBMI (Ice Lake, Zen 4) the two weight blocks of a pair are gathered from
 * one masked 36-byte load by vpermb, their scales by vpermw; vpdpbusd does the byte dot products.
 * Without them: 128/256-bit loads and maddubs + madd. */

#define VNNI_TARGET __attribute__((target("avx512vnni,avx512vbmi,avx512bw,avx512f")))

/* u8 x s8 -> 16 x int32 added to acc; inputs keep maddubs from saturating (|u| <= 128). */
static inline __m512i dp_u8s8(__m512i acc, __m512i u, __m512i s)
{
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s),
                                                   _mm512_set1_epi16(1)));
}
VNNI_TARGET static inline __m512i dp_u8s8_vnni(__m512i acc, __m512i u, __m512i s)
{
    return _mm512_dpbusd_epi32(acc, u, s);
}

/* Weight pairs, plain: quants in weight order, and the two f16 scales as floats 0 and 1. */
static inline __m512i load2_q8_0(const struct kq_block_q8_0 *b, __m128 *d)
{
    *d = _mm_cvtph_ps(_mm_setr_epi16((short)b[0].d, (short)b[1].d, 0, 0, 0, 0, 0, 0));
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b[0].qs)),
                              _mm256_loadu_si256((const __m256i *)b[1].qs), 1);
}

static inline __m512i load2_q4_0(const struct kq_block_q4_0 *b, __m128 *d)
{
    *d = _mm_cvtph_ps(_mm_setr_epi16((short)b[0].d, (short)b[1].d, 0, 0, 0, 0, 0, 0));
    const __m128i a = _mm_loadu_si128((const __m128i *)b[0].qs);
    const __m128i c = _mm_loadu_si128((const __m128i *)b[1].qs);
    const __m256i ac = _mm256_set_m128i(c, a);
    const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(ac), _mm256_srli_epi16(ac, 4), 1);
    /* z = [a, c, a>>4, c>>4]: reorder lanes to [a, a>>4, c, c>>4] */
    return _mm512_and_si512(_mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0)),
                            _mm512_set1_epi8(0x0F));
}

/* Weight pairs with VBMI: blocks i and i+1 are bytes 0..35 from b (a masked load never touches
 * memory past them). Q4_0: d at bytes 0 and 18, nibbles at 2..17 and 20..35. */
VNNI_TARGET static inline __m512i load2_q4_0_vbmi(const struct kq_block_q4_0 *b, __m128 *d)
{
    const __m512i v = _mm512_maskz_loadu_epi8(0xFFFFFFFFFull, b);
    const __m512i idx = _mm512_set_epi8(35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21,
                                        20, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22,
                                        21, 20, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3,
                                        2, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2);
    const __m512i sh = _mm512_set_epi64(0x0004000400040004ll, 0x0004000400040004ll, 0, 0,
                                        0x0004000400040004ll, 0x0004000400040004ll, 0, 0);
    const __m512i didx = _mm512_castsi128_si512(_mm_setr_epi16(0, 9, 0, 0, 0, 0, 0, 0));
    *d = _mm_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(didx, v)));
    return _mm512_and_si512(_mm512_srlv_epi16(_mm512_permutexvar_epi8(idx, v), sh),
                            _mm512_set1_epi8(0x0F));
}
VNNI_TARGET static inline __m512i load2_q8_0_vbmi(const struct kq_block_q8_0 *b, __m128 *d)
{
    return load2_q8_0(b, d);
}

/* [s0 x 8, s1 x 8] from floats 0 and 1 of s. */
static inline __m512 spread2(__m128 s)
{
    const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(s));
}

/* Q8_0 weights are signed: |w| against y with w's sign. Q4_0 weights are nibbles q for q - 8:
 * dot(q, y) + c where c = -dot(8, y) (computed once per activation pair). */
#define Q8_0_TERM(DP, w, y, c)                                                                     \
    DP(c, _mm512_abs_epi8(w),                                                                      \
       _mm512_mask_sub_epi8(y, _mm512_movepi8_mask(w), _mm512_setzero_si512(), y))
#define Q4_0_TERM(DP, w, y, c) DP(c, w, y)
#define Q8_0_OFF(DP, y) _mm512_setzero_si512()
#define Q4_0_OFF(DP, y)                                                                            \
    _mm512_sub_epi32(_mm512_setzero_si512(), DP(_mm512_setzero_si512(), _mm512_set1_epi8(8), y))

/* One block (the odd last one) in plain C. */
static float tail_q8_0(const struct kq_block_q8_0 *a, const int8_t *q, float dy)
{
    int s = 0;
    for (int j = 0; j < KQ_QK; j++)
        s += a->qs[j] * q[j];
    return s * (f16(a->d) * dy);
}
static float tail_q4_0(const struct kq_block_q4_0 *a, const int8_t *q, float dy)
{
    int s = 0;
    for (int j = 0; j < KQ_QK / 2; j++)
        s += ((a->qs[j] & 0xF) - 8) * q[j] + ((a->qs[j] >> 4) - 8) * q[j + 16];
    return s * (f16(a->d) * dy);
}

#define DEF_DOT_Q(name, WB, LOAD2, TERM, OFF, DP, ATTR, TAIL)                                      \
    ATTR static float name(int64_t n, const void *w, const void *x)                                \
    {                                                                                              \
        const WB *a = w;                                                                           \
        const float *xd = kq__q8x_d(x);                                                            \
        const int8_t *xq = kq__q8x_qs(x, n);                                                       \
        const int64_t nb = n / KQ_QK;                                                              \
        __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;                                            \
        int64_t i = 0;                                                                             \
        for (; i + 4 <= nb; i += 4) {                                                              \
            __m128 d0, d1;                                                                         \
            const __m512i y0 = _mm512_loadu_si512(xq + i * KQ_QK);                                 \
            const __m512i y1 = _mm512_loadu_si512(xq + (i + 2) * KQ_QK);                           \
            const __m512i p0 = TERM(DP, LOAD2(a + i, &d0), y0, OFF(DP, y0));                       \
            const __m512i p1 = TERM(DP, LOAD2(a + i + 2, &d1), y1, OFF(DP, y1));                   \
            const __m128 dy = _mm_loadu_ps(xd + i);                                                \
            const __m512 s0 = spread2(_mm_mul_ps(d0, dy));                                         \
            const __m512 s1 = spread2(_mm_mul_ps(d1, _mm_movehl_ps(dy, dy)));                      \
            acc0 = _mm512_fmadd_ps(s0, _mm512_cvtepi32_ps(p0), acc0);                              \
            acc1 = _mm512_fmadd_ps(s1, _mm512_cvtepi32_ps(p1), acc1);                              \
        }                                                                                          \
        for (; i + 2 <= nb; i += 2) {                                                              \
            __m128 d0;                                                                             \
            const __m512i y0 = _mm512_loadu_si512(xq + i * KQ_QK);                                 \
            const __m512i p0 = TERM(DP, LOAD2(a + i, &d0), y0, OFF(DP, y0));                       \
            const __m512 s0 = spread2(_mm_mul_ps(d0, _mm_setr_ps(xd[i], xd[i + 1], 0, 0)));        \
            acc0 = _mm512_fmadd_ps(s0, _mm512_cvtepi32_ps(p0), acc0);                              \
        }                                                                                          \
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));                               \
        if (i < nb)                                                                                \
            sum += TAIL(a + i, xq + i * KQ_QK, xd[i]);                                             \
        return sum;                                                                                \
    }

/* Token generation with VNNI + VBMI, 16 blocks per step: each pair of blocks gives one vpdpbusd
 * of unsigned weights (Q4_0 nibbles q, Q8_0 quants + 128) against the activations; the 8 pair
 * vectors are folded into one vector of 16 block sums by a transposing reduction, the offset
 * (8 or 128 times the block's activation sum, from Q8_0X) comes off once per block, and one
 * FMA applies the 16 scales. Rows shorter than 16 blocks, and the rest, go through the pairs. */

/* Lane b = the sum of block b, from P[p] = [block 2p in lanes 0-7 | block 2p+1 in 8-15]. */
VNNI_TARGET static inline __m512i fold16_blocks(const __m512i *P)
{
    __m512i A[4], B[2];
    for (int k = 0; k < 4; k++)
        A[k] = _mm512_add_epi32(_mm512_unpacklo_epi32(P[2 * k], P[2 * k + 1]),
                                _mm512_unpackhi_epi32(P[2 * k], P[2 * k + 1]));
    for (int k = 0; k < 2; k++)
        B[k] = _mm512_add_epi32(_mm512_unpacklo_epi64(A[2 * k], A[2 * k + 1]),
                                _mm512_unpackhi_epi64(A[2 * k], A[2 * k + 1]));
    /* 128-bit lane L of B[k] holds lane-L partials of P[4k..4k+3]; L 0-1 are the pair's first
     * block, 2-3 its second */
    const __m512i G = _mm512_add_epi32(_mm512_shuffle_i32x4(B[0], B[1], 0x88),
                                       _mm512_shuffle_i32x4(B[0], B[1], 0xDD));
    /* G lane 4(2k+h)+j = block 8k+2j+h: put block b in lane b */
    const __m512i idx = _mm512_set_epi32(15, 11, 14, 10, 13, 9, 12, 8, 7, 3, 6, 2, 5, 1, 4, 0);
    return _mm512_permutexvar_epi32(idx, G);
}

/* The 16 f16 scales at word offsets 0 and 'second' of eight 64-byte vectors, as floats. */
VNNI_TARGET static inline __m512 gather16_d(const __m512i *V, short second)
{
    const __m512i i1 = _mm512_castsi128_si512(_mm_setr_epi16(0, second, 32, (short)(32 + second),
                                                             0, 0, 0, 0));
    const __m512i i2 = _mm512_castsi128_si512(_mm_setr_epi16(0, 1, 2, 3, 32, 33, 34, 35));
    const __m512i i3 = _mm512_castsi256_si512(_mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 32, 33, 34,
                                                                35, 36, 37, 38, 39));
    __m512i m[4], q[2];
    for (int k = 0; k < 4; k++)
        m[k] = _mm512_permutex2var_epi16(V[2 * k], i1, V[2 * k + 1]);
    q[0] = _mm512_permutex2var_epi16(m[0], i2, m[1]);
    q[1] = _mm512_permutex2var_epi16(m[2], i2, m[3]);
    return _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(q[0], i3, q[1])));
}

/* One step of up to 16 blocks (r = the number left, 1..16): masked loads keep the last step
 * inside the row; missing blocks contribute zero. */
VNNI_TARGET static inline __m512 step16_q4_0(const struct kq_block_q4_0 *a, const float *xd,
                                             const int8_t *xq, const int32_t *xs, int r,
                                             __m512 acc)
{
    const __m512i idx = _mm512_set_epi8(35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21,
                                        20, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22,
                                        21, 20, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3,
                                        2, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2);
    const __m512i sh = _mm512_set_epi64(0x0004000400040004ll, 0x0004000400040004ll, 0, 0,
                                        0x0004000400040004ll, 0x0004000400040004ll, 0, 0);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512i V[8], P[8];
    for (int p = 0; p < 8; p++) {
        const int cnt = r - 2 * p >= 2 ? 2 : r - 2 * p;
        if (cnt <= 0) {
            V[p] = P[p] = _mm512_setzero_si512();
            continue;
        }
        V[p] = _mm512_maskz_loadu_epi8(cnt == 2 ? 0xFFFFFFFFFull : 0x3FFFFull, a + 2 * p);
        const __m512i q =
            _mm512_and_si512(_mm512_srlv_epi16(_mm512_permutexvar_epi8(idx, V[p]), sh), m4);
        const __m512i y = _mm512_maskz_loadu_epi8(cnt == 2 ? ~0ull : 0xFFFFFFFFull,
                                                  xq + 2 * p * KQ_QK);
        P[p] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, y);
    }
    const __mmask16 mb = (__mmask16)((1u << r) - 1);
    const __m512i S = _mm512_sub_epi32(fold16_blocks(P),
                                       _mm512_slli_epi32(_mm512_maskz_loadu_epi32(mb, xs), 3));
    const __m512 d = _mm512_mul_ps(gather16_d(V, 9), _mm512_maskz_loadu_ps(mb, xd));
    return _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(S), acc);
}

VNNI_TARGET static float dot16_q4_0(int64_t n, const void *w, const void *x)
{
    const struct kq_block_q4_0 *a = w;
    const float *xd = kq__q8x_d(x);
    const int8_t *xq = kq__q8x_qs(x, n);
    const int32_t *xs = kq__q8x_s(x, n);
    const int64_t nb = n / KQ_QK;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    int64_t i = 0;
    for (; i + 32 <= nb; i += 32) {
        acc0 = step16_q4_0(a + i, xd + i, xq + i * KQ_QK, xs + i, 16, acc0);
        acc1 = step16_q4_0(a + i + 16, xd + i + 16, xq + (i + 16) * KQ_QK, xs + i + 16, 16, acc1);
    }
    for (; i < nb; i += 16)
        acc0 = step16_q4_0(a + i, xd + i, xq + i * KQ_QK, xs + i, nb - i < 16 ? (int)(nb - i) : 16,
                           acc0);
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

VNNI_TARGET static inline __m512 step16_q8_0(const struct kq_block_q8_0 *a, const float *xd,
                                             const int8_t *xq, const int32_t *xs, int r,
                                             __m512 acc)
{
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i V[8], P[8];
    for (int p = 0; p < 8; p++) {
        const int cnt = r - 2 * p >= 2 ? 2 : r - 2 * p;
        if (cnt <= 0) {
            V[p] = P[p] = _mm512_setzero_si512();
            continue;
        }
        const struct kq_block_q8_0 *b = a + 2 * p;
        V[p] = _mm512_maskz_loadu_epi8(cnt == 2 ? ~0ull : 0x3FFFFFFFFull, b); // d at words 0, 17
        __m512i q = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b[0].qs));
        if (cnt == 2)
            q = _mm512_inserti64x4(q, _mm256_loadu_si256((const __m256i *)b[1].qs), 1);
        const __m512i y = _mm512_maskz_loadu_epi8(cnt == 2 ? ~0ull : 0xFFFFFFFFull,
                                                  xq + 2 * p * KQ_QK);
        /* (q + 128) as unsigned; the 128 * sum(y) comes off below. Missing halves: y is 0. */
        P[p] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(q, flip), y);
    }
    const __mmask16 mb = (__mmask16)((1u << r) - 1);
    const __m512i S = _mm512_sub_epi32(fold16_blocks(P),
                                       _mm512_slli_epi32(_mm512_maskz_loadu_epi32(mb, xs), 7));
    const __m512 d = _mm512_mul_ps(gather16_d(V, 17), _mm512_maskz_loadu_ps(mb, xd));
    return _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(S), acc);
}

VNNI_TARGET static float dot16_q8_0(int64_t n, const void *w, const void *x)
{
    const struct kq_block_q8_0 *a = w;
    const float *xd = kq__q8x_d(x);
    const int8_t *xq = kq__q8x_qs(x, n);
    const int32_t *xs = kq__q8x_s(x, n);
    const int64_t nb = n / KQ_QK;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    int64_t i = 0;
    for (; i + 32 <= nb; i += 32) {
        acc0 = step16_q8_0(a + i, xd + i, xq + i * KQ_QK, xs + i, 16, acc0);
        acc1 = step16_q8_0(a + i + 16, xd + i + 16, xq + (i + 16) * KQ_QK, xs + i + 16, 16, acc1);
    }
    for (; i < nb; i += 16)
        acc0 = step16_q8_0(a + i, xd + i, xq + i * KQ_QK, xs + i, nb - i < 16 ? (int)(nb - i) : 16,
                           acc0);
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

DEF_DOT_Q(dot_q8_0, struct kq_block_q8_0, load2_q8_0, Q8_0_TERM, Q8_0_OFF, dp_u8s8, , tail_q8_0)
DEF_DOT_Q(dot2_q8_0_vnni, struct kq_block_q8_0, load2_q8_0_vbmi, Q8_0_TERM, Q8_0_OFF, dp_u8s8_vnni,
          VNNI_TARGET, tail_q8_0)
DEF_DOT_Q(dot2_q4_0_vnni, struct kq_block_q4_0, load2_q4_0_vbmi, Q4_0_TERM, Q4_0_OFF, dp_u8s8_vnni,
          VNNI_TARGET, tail_q4_0)

/* Rows of whole 16-block steps take the folded kernel, others (768 = 24 blocks, ...) the pairs:
 * a partial step wastes most of its fold. */
static float dot_q8_0_vnni(int64_t n, const void *w, const void *x)
{
    return (n / KQ_QK) % 16 ? dot2_q8_0_vnni(n, w, x) : dot16_q8_0(n, w, x);
}
static float dot_q4_0_vnni(int64_t n, const void *w, const void *x)
{
    return (n / KQ_QK) % 16 ? dot2_q4_0_vnni(n, w, x) : dot16_q4_0(n, w, x);
}

DEF_DOT_Q(dot_q4_0, struct kq_block_q4_0, load2_q4_0, Q4_0_TERM, Q4_0_OFF, dp_u8s8, , tail_q4_0)

/* 4 rows x 4 tokens, two blocks per step: each unpacked weight pair serves 4 tokens, each
 * activation pair (with its Q4_0 offset) 4 rows. An odd last block goes through the tail. */
#define DEF_GEMM_Q(name, WB, LOAD2, TERM, OFF, DP, ATTR, TAIL)                                     \
    ATTR static void name(int64_t n, const void *w, size_t w_stride, const void *x,                \
                          size_t x_stride, float *y, int64_t y_stride)                             \
    {                                                                                              \
        const WB *a[4];                                                                            \
        const float *bd[4];                                                                        \
        const int8_t *bq[4];                                                                       \
        for (int k = 0; k < 4; k++) {                                                              \
            a[k] = (const WB *)((const char *)w + k * w_stride);                                   \
            bd[k] = kq__q8x_d((const char *)x + k * x_stride);                                     \
            bq[k] = kq__q8x_qs((const char *)x + k * x_stride, n);                                 \
        }                                                                                          \
        const int64_t nb = n / KQ_QK;                                                              \
        __m512 acc[4][4];                                                                          \
        for (int r = 0; r < 4; r++)                                                                \
            for (int t = 0; t < 4; t++)                                                            \
                acc[r][t] = _mm512_setzero_ps();                                                   \
        int64_t i = 0;                                                                             \
        for (; i + 2 <= nb; i += 2) {                                                              \
            __m512i qa[4], qb[4], off[4];                                                          \
            __m512 da[4], db[4];                                                                   \
            for (int k = 0; k < 4; k++) {                                                          \
                __m128 d;                                                                          \
                qa[k] = LOAD2(a[k] + i, &d);                                                       \
                da[k] = spread2(d);                                                                \
                qb[k] = _mm512_loadu_si512(bq[k] + i * KQ_QK);                                     \
                off[k] = OFF(DP, qb[k]);                                                           \
                db[k] = spread2(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(bd[k] + i))));  \
            }                                                                                      \
            for (int r = 0; r < 4; r++)                                                            \
                for (int t = 0; t < 4; t++)                                                        \
                    acc[r][t] = _mm512_fmadd_ps(                                                   \
                        _mm512_mul_ps(da[r], db[t]),                                               \
                        _mm512_cvtepi32_ps(TERM(DP, qa[r], qb[t], off[t])), acc[r][t]);            \
        }                                                                                          \
        for (int t = 0; t < 4; t++) {                                                              \
            __m128 s = reduce4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]);                        \
            if (i < nb) {                                                                          \
                const int8_t *q = bq[t] + i * KQ_QK;                                               \
                s = _mm_add_ps(s, _mm_setr_ps(TAIL(a[0] + i, q, bd[t][i]),                         \
                                              TAIL(a[1] + i, q, bd[t][i]),                         \
                                              TAIL(a[2] + i, q, bd[t][i]),                         \
                                              TAIL(a[3] + i, q, bd[t][i])));                       \
            }                                                                                      \
            _mm_storeu_ps(y + t * y_stride, s);                                                    \
        }                                                                                          \
    }

DEF_GEMM_Q(gemm_q8_0, struct kq_block_q8_0, load2_q8_0, Q8_0_TERM, Q8_0_OFF, dp_u8s8, , tail_q8_0)
DEF_GEMM_Q(gemm_q4_0, struct kq_block_q4_0, load2_q4_0, Q4_0_TERM, Q4_0_OFF, dp_u8s8, , tail_q4_0)
DEF_GEMM_Q(gemm_q8_0_vnni, struct kq_block_q8_0, load2_q8_0_vbmi, Q8_0_TERM, Q8_0_OFF,
           dp_u8s8_vnni, VNNI_TARGET, tail_q8_0)
DEF_GEMM_Q(gemm_q4_0_vnni, struct kq_block_q4_0, load2_q4_0_vbmi, Q4_0_TERM, Q4_0_OFF,
           dp_u8s8_vnni, VNNI_TARGET, tail_q4_0)

/* ---- Q4_0 / Q8_0 panels (prompt processing, VNNI) ----
 *
 * pack16 turns 16 weight rows into unsigned bytes (Q4_0: the nibble q for q - 8; Q8_0: q + 128)
 * laid out so that 64 bytes hold 4 consecutive weights of each of the 16 rows, plus the rows'
 * block scales as f32. panel16 then needs no horizontal sums: vpdpbusd of such a vector with a
 * broadcast 4 activation bytes gives 16 rows' partial dot products in 16 lanes, and one FMA per
 * block applies the 16 row scales times the token's scale; the offset (8 or 128 times the
 * block's activation sum) comes off per block. This is llama.cpp's "repacked Q4_0" idea, with
 * the repacking done per call on 16 rows at a time so that the weights stay in GGUF layout. */

static void pack16_common(int64_t n, const uint8_t *w, size_t w_stride, size_t blk, int q4,
                          void *panel)
{
    const int64_t nb = n / KQ_QK;
    uint8_t *P = panel;
    float *dw = (float *)(void *)(P + (size_t)nb * 512);
    for (int r = 0; r < KQ_PANEL_R; r++) {
        const uint8_t *row = w + (size_t)r * w_stride;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *bp = row + b * blk;
            uint16_t h;
            uint8_t q[KQ_QK];
            memcpy(&h, bp, 2);
            dw[b * KQ_PANEL_R + r] = f16(h);
            if (q4) {
                const __m128i v = _mm_loadu_si128((const __m128i *)(bp + 2));
                const __m128i m4 = _mm_set1_epi8(0x0F);
                _mm_storeu_si128((__m128i *)q, _mm_and_si128(v, m4));
                _mm_storeu_si128((__m128i *)(q + 16), _mm_and_si128(_mm_srli_epi16(v, 4), m4));
            } else {
                _mm256_storeu_si256((__m256i *)q,
                                    _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(bp + 2)),
                                                     _mm256_set1_epi8((char)0x80)));
            }
            for (int g = 0; g < 8; g++)
                memcpy(P + b * 512 + g * 64 + r * 4, q + 4 * g, 4);
        }
    }
}

static void pack16_q4_0(int64_t n, const void *w, size_t w_stride, void *panel)
{
    pack16_common(n, w, w_stride, sizeof(struct kq_block_q4_0), 1, panel);
}
static void pack16_q8_0(int64_t n, const void *w, size_t w_stride, void *panel)
{
    pack16_common(n, w, w_stride, sizeof(struct kq_block_q8_0), 0, panel);
}

static inline __m512i bcast32(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* T tokens at once (1 or 4), each with two accumulator chains per block. */
#define PANEL_TOKENS(T)                                                                            \
    do {                                                                                           \
        const float *xd[T];                                                                        \
        const int8_t *xq[T];                                                                       \
        const int32_t *xs[T];                                                                      \
        __m512 f[T];                                                                               \
        for (int k = 0; k < T; k++) {                                                              \
            const char *xr = (const char *)x + (t + k) * x_stride;                                 \
            xd[k] = kq__q8x_d(xr);                                                                 \
            xq[k] = kq__q8x_qs(xr, n);                                                             \
            xs[k] = kq__q8x_s(xr, n);                                                              \
            f[k] = _mm512_setzero_ps();                                                            \
        }                                                                                          \
        for (int64_t b = 0; b < nb; b++) {                                                         \
            __m512i a0[T], a1[T];                                                                  \
            for (int k = 0; k < T; k++)                                                            \
                a0[k] = a1[k] = _mm512_setzero_si512();                                            \
            for (int g = 0; g < 8; g += 2) {                                                       \
                const __m512i u0 = _mm512_loadu_si512(P + b * 512 + g * 64);                       \
                const __m512i u1 = _mm512_loadu_si512(P + b * 512 + (g + 1) * 64);                 \
                for (int k = 0; k < T; k++) {                                                      \
                    a0[k] = _mm512_dpbusd_epi32(a0[k], u0, bcast32(xq[k] + b * KQ_QK + 4 * g));    \
                    a1[k] =                                                                        \
                        _mm512_dpbusd_epi32(a1[k], u1, bcast32(xq[k] + b * KQ_QK + 4 * g + 4));    \
                }                                                                                  \
            }                                                                                      \
            const __m512 d = _mm512_loadu_ps(dw + b * KQ_PANEL_R);                                 \
            for (int k = 0; k < T; k++) {                                                          \
                const __m512i S = _mm512_sub_epi32(_mm512_add_epi32(a0[k], a1[k]),                 \
                                                   _mm512_set1_epi32(xs[k][b] * (1 << shift)));    \
                f[k] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(xd[k][b])),                 \
                                       _mm512_cvtepi32_ps(S), f[k]);                               \
            }                                                                                      \
        }                                                                                          \
        for (int k = 0; k < T; k++)                                                                \
            _mm512_storeu_ps(y + (t + k) * y_stride, f[k]);                                        \
    } while (0)

VNNI_TARGET static inline void panel16_common(int64_t n, const void *panel, const void *x,
                                              size_t x_stride, int64_t n_tok, float *y,
                                              int64_t y_stride, int shift)
{
    const int64_t nb = n / KQ_QK;
    const uint8_t *P = panel;
    const float *dw = (const float *)(const void *)(P + (size_t)nb * 512);
    int64_t t = 0;
    for (; t + 4 <= n_tok; t += 4)
        PANEL_TOKENS(4);
    for (; t < n_tok; t++)
        PANEL_TOKENS(1);
}

VNNI_TARGET static void panel16_q4_0(int64_t n, const void *panel, const void *x, size_t x_stride,
                                     int64_t n_tok, float *y, int64_t y_stride)
{
    panel16_common(n, panel, x, x_stride, n_tok, y, y_stride, 3);
}
VNNI_TARGET static void panel16_q8_0(int64_t n, const void *panel, const void *x, size_t x_stride,
                                     int64_t n_tok, float *y, int64_t y_stride)
{
    panel16_common(n, panel, x, x_stride, n_tok, y, y_stride, 7);
}

/* ---- Q4_K / Q5_K panels ----
 *
 * Per super-block: 64 groups of 64 bytes (4 weights x 16 rows, values 0..31), then the 8
 * sub-blocks' scales and mins as 16 int32 each, then 16 f32 d and 16 f32 dmin. A sub-block's 8
 * vpdpbusd give 16 rows' sums, one vpmulld applies the 16 scales; the mins meet the token's
 * group-pair sums in one more vpmulld per sub-block. */

static inline void unpack_scales_k4(const uint8_t *s, uint64_t *sc, uint64_t *m);

#define KX_PANEL_BLOCK (64 * 64 + 2 * 8 * 64 + 2 * 64)

static void pack16_kx(int64_t n, const uint8_t *w, size_t w_stride, size_t blk, int q5,
                      void *panel)
{
    const int64_t nb = n / KQ_QK_K;
    for (int r = 0; r < KQ_PANEL_R; r++) {
        const uint8_t *row = w + (size_t)r * w_stride;
        for (int64_t i = 0; i < nb; i++) {
            const uint8_t *bp = row + i * blk;
            uint8_t *P = (uint8_t *)panel + i * KX_PANEL_BLOCK;
            int32_t *SC = (int32_t *)(void *)(P + 64 * 64), *MN = SC + 8 * 16;
            float *D = (float *)(void *)(MN + 8 * 16), *DM = D + 16;
            uint16_t h;
            uint64_t sc, mn;
            uint8_t q[KQ_QK_K];
            memcpy(&h, bp, 2);
            D[r] = f16(h);
            memcpy(&h, bp + 2, 2);
            DM[r] = f16(h);
            unpack_scales_k4(bp + 4, &sc, &mn);
            for (int j = 0; j < 8; j++) {
                SC[j * 16 + r] = (int32_t)((sc >> (8 * j)) & 0xFF);
                MN[j * 16 + r] = (int32_t)((mn >> (8 * j)) & 0xFF);
            }
            const uint8_t *qs = bp + 16 + (q5 ? 32 : 0), *qh = bp + 16;
            for (int c = 0; c < 4; c++)
                for (int l = 0; l < 32; l++) {
                    q[64 * c + l] = qs[32 * c + l] & 0xF;
                    q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
                    if (q5) {
                        q[64 * c + l] |= ((qh[l] >> (2 * c)) & 1) << 4;
                        q[64 * c + 32 + l] |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
                    }
                }
            for (int g = 0; g < 64; g++)
                memcpy(P + g * 64 + r * 4, q + 4 * g, 4);
        }
    }
}

static void pack16_q4_K(int64_t n, const void *w, size_t w_stride, void *panel)
{
    pack16_kx(n, w, w_stride, sizeof(struct kq_block_q4_K), 0, panel);
}
static void pack16_q5_K(int64_t n, const void *w, size_t w_stride, void *panel)
{
    pack16_kx(n, w, w_stride, sizeof(struct kq_block_q5_K), 1, panel);
}

#define PANEL_KX_TOKENS(T)                                                                         \
    do {                                                                                           \
        const struct kq_block_q8_K *yb[T];                                                         \
        __m512 f[T];                                                                               \
        for (int k = 0; k < T; k++) {                                                              \
            yb[k] = (const struct kq_block_q8_K *)((const char *)x + (t + k) * x_stride);         \
            f[k] = _mm512_setzero_ps();                                                            \
        }                                                                                          \
        for (int64_t i = 0; i < nb; i++) {                                                         \
            const uint8_t *P = (const uint8_t *)panel + i * KX_PANEL_BLOCK;                        \
            const int32_t *SC = (const int32_t *)(const void *)(P + 64 * 64), *MN = SC + 8 * 16;  \
            const float *D = (const float *)(const void *)(MN + 8 * 16), *DM = D + 16;            \
            __m512i s[T], m[T];                                                                    \
            for (int k = 0; k < T; k++)                                                            \
                s[k] = m[k] = _mm512_setzero_si512();                                              \
            for (int j = 0; j < 8; j++) {                                                          \
                __m512i a0[T], a1[T];                                                              \
                for (int k = 0; k < T; k++)                                                        \
                    a0[k] = a1[k] = _mm512_setzero_si512();                                        \
                for (int g = 0; g < 8; g += 2) {                                                   \
                    const __m512i u0 = _mm512_loadu_si512(P + (8 * j + g) * 64);                   \
                    const __m512i u1 = _mm512_loadu_si512(P + (8 * j + g + 1) * 64);               \
                    for (int k = 0; k < T; k++) {                                                  \
                        const int8_t *q = yb[k][i].qs + 32 * j + 4 * g;                            \
                        a0[k] = _mm512_dpbusd_epi32(a0[k], u0, bcast32(q));                        \
                        a1[k] = _mm512_dpbusd_epi32(a1[k], u1, bcast32(q + 4));                    \
                    }                                                                              \
                }                                                                                  \
                const __m512i sc = _mm512_loadu_si512(SC + 16 * j);                                \
                const __m512i mn = _mm512_loadu_si512(MN + 16 * j);                                \
                for (int k = 0; k < T; k++) {                                                      \
                    s[k] = _mm512_add_epi32(                                                       \
                        s[k], _mm512_mullo_epi32(_mm512_add_epi32(a0[k], a1[k]), sc));             \
                    m[k] = _mm512_add_epi32(                                                       \
                        m[k], _mm512_mullo_epi32(mn, _mm512_set1_epi32(yb[k][i].bsums[2 * j] +     \
                                                                       yb[k][i].bsums[2 * j + 1])));\
                }                                                                                  \
            }                                                                                      \
            const __m512 d = _mm512_loadu_ps(D), dm = _mm512_loadu_ps(DM);                         \
            for (int k = 0; k < T; k++) {                                                          \
                const __m512 dy = _mm512_set1_ps(yb[k][i].d);                                      \
                f[k] = _mm512_fmadd_ps(_mm512_mul_ps(d, dy), _mm512_cvtepi32_ps(s[k]), f[k]);      \
                f[k] = _mm512_fnmadd_ps(_mm512_mul_ps(dm, dy), _mm512_cvtepi32_ps(m[k]), f[k]);    \
            }                                                                                      \
        }                                                                                          \
        for (int k = 0; k < T; k++)                                                                \
            _mm512_storeu_ps(y + (t + k) * y_stride, f[k]);                                        \
    } while (0)

VNNI_TARGET static void panel16_kx(int64_t n, const void *panel, const void *x, size_t x_stride,
                                   int64_t n_tok, float *y, int64_t y_stride)
{
    const int64_t nb = n / KQ_QK_K;
    int64_t t = 0;
    for (; t + 4 <= n_tok; t += 4)
        PANEL_KX_TOKENS(4);
    for (; t < n_tok; t++)
        PANEL_KX_TOKENS(1);
}

/* ---- Q6_K panels ----
 *
 * Per super-block: 64 groups of 64 bytes (values 0..63), the 16 sub-blocks' signed scales as 16
 * int32 each, 16 f32 d. Per sub-block of 16 weights: 4 vpdpbusd, the -32 offset as 32 times the
 * token's group sum, one vpmulld by the 16 rows' scales. */

#define Q6_PANEL_BLOCK (64 * 64 + 16 * 64 + 64)

static void pack16_q6_K(int64_t n, const void *w, size_t w_stride, void *panel)
{
    const int64_t nb = n / KQ_QK_K;
    for (int r = 0; r < KQ_PANEL_R; r++) {
        const struct kq_block_q6_K *row =
            (const struct kq_block_q6_K *)((const uint8_t *)w + (size_t)r * w_stride);
        for (int64_t i = 0; i < nb; i++) {
            const struct kq_block_q6_K *b = &row[i];
            uint8_t *P = (uint8_t *)panel + i * Q6_PANEL_BLOCK;
            int32_t *SC = (int32_t *)(void *)(P + 64 * 64);
            float *D = (float *)(void *)(SC + 16 * 16);
            uint8_t q[KQ_QK_K];
            D[r] = f16(b->d);
            for (int s = 0; s < 16; s++)
                SC[s * 16 + r] = b->scales[s];
            for (int h = 0; h < 2; h++) {
                const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
                uint8_t *o = q + 128 * h;
                for (int l = 0; l < 32; l++) {
                    o[l] = (uint8_t)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4));
                    o[l + 32] = (uint8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
                    o[l + 64] = (uint8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
                    o[l + 96] = (uint8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
                }
            }
            for (int g = 0; g < 64; g++)
                memcpy(P + g * 64 + r * 4, q + 4 * g, 4);
        }
    }
}

#define PANEL_Q6_TOKENS(T)                                                                         \
    do {                                                                                           \
        const struct kq_block_q8_K *yb[T];                                                         \
        __m512 f[T];                                                                               \
        for (int k = 0; k < T; k++) {                                                              \
            yb[k] = (const struct kq_block_q8_K *)((const char *)x + (t + k) * x_stride);         \
            f[k] = _mm512_setzero_ps();                                                            \
        }                                                                                          \
        for (int64_t i = 0; i < nb; i++) {                                                         \
            const uint8_t *P = (const uint8_t *)panel + i * Q6_PANEL_BLOCK;                        \
            const int32_t *SC = (const int32_t *)(const void *)(P + 64 * 64);                      \
            const float *D = (const float *)(const void *)(SC + 16 * 16);                          \
            __m512i s[T];                                                                          \
            for (int k = 0; k < T; k++)                                                            \
                s[k] = _mm512_setzero_si512();                                                     \
            for (int j = 0; j < 16; j++) {                                                         \
                const __m512i u0 = _mm512_loadu_si512(P + (4 * j) * 64);                           \
                const __m512i u1 = _mm512_loadu_si512(P + (4 * j + 1) * 64);                       \
                const __m512i u2 = _mm512_loadu_si512(P + (4 * j + 2) * 64);                       \
                const __m512i u3 = _mm512_loadu_si512(P + (4 * j + 3) * 64);                       \
                const __m512i sc = _mm512_loadu_si512(SC + 16 * j);                                \
                for (int k = 0; k < T; k++) {                                                      \
                    const int8_t *q = yb[k][i].qs + 16 * j;                                        \
                    __m512i a0 = _mm512_set1_epi32(-32 * yb[k][i].bsums[j]);                       \
                    __m512i a1 = _mm512_setzero_si512();                                           \
                    a0 = _mm512_dpbusd_epi32(a0, u0, bcast32(q));                                  \
                    a1 = _mm512_dpbusd_epi32(a1, u1, bcast32(q + 4));                              \
                    a0 = _mm512_dpbusd_epi32(a0, u2, bcast32(q + 8));                              \
                    a1 = _mm512_dpbusd_epi32(a1, u3, bcast32(q + 12));                             \
                    s[k] = _mm512_add_epi32(s[k],                                                  \
                                            _mm512_mullo_epi32(_mm512_add_epi32(a0, a1), sc));     \
                }                                                                                  \
            }                                                                                      \
            const __m512 d = _mm512_loadu_ps(D);                                                   \
            for (int k = 0; k < T; k++)                                                            \
                f[k] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(yb[k][i].d)),               \
                                       _mm512_cvtepi32_ps(s[k]), f[k]);                            \
        }                                                                                          \
        for (int k = 0; k < T; k++)                                                                \
            _mm512_storeu_ps(y + (t + k) * y_stride, f[k]);                                        \
    } while (0)

VNNI_TARGET static void panel16_q6_K(int64_t n, const void *panel, const void *x, size_t x_stride,
                                     int64_t n_tok, float *y, int64_t y_stride)
{
    const int64_t nb = n / KQ_QK_K;
    int64_t t = 0;
    for (; t + 4 <= n_tok; t += 4)
        PANEL_Q6_TOKENS(4);
    for (; t < n_tok; t++)
        PANEL_Q6_TOKENS(1);
}

/* ---- K-quants against Q8_K ----
 *
 * A 32-byte chunk c of Q4_K/Q5_K quants holds sub-block 2c in its low nibbles and 2c+1 in its high
 * ones, i.e. weights 64c..64c+63 in order once the chunk is broadcast to both halves of a vector
 * and the upper half is shifted by 4: one contiguous 64-byte load of activations matches it.
 * maddubs gives 16-bit pair sums, madd with the sub-block scales (vpermw from one vector of 8)
 * sums them to int32. Mins go through the Q8_K group sums. */

/* The 8 6-bit scales (*sc) and mins (*m) of a Q4_K/Q5_K block, one per byte, with 32-bit ops. */
static inline void unpack_scales_k4(const uint8_t *s, uint64_t *sc, uint64_t *m)
{
    uint32_t u0, u1, u2;
    memcpy(&u0, s, 4);
    memcpy(&u1, s + 4, 4);
    memcpy(&u2, s + 8, 4);
    const uint32_t sc_lo = u0 & 0x3F3F3F3Fu, m_lo = u1 & 0x3F3F3F3Fu;
    const uint32_t sc_hi = (u2 & 0x0F0F0F0Fu) | (((u0 >> 6) & 0x03030303u) << 4);
    const uint32_t m_hi = ((u2 >> 4) & 0x0F0F0F0Fu) | (((u1 >> 6) & 0x03030303u) << 4);
    *sc = sc_lo | (uint64_t)sc_hi << 32;
    *m = m_lo | (uint64_t)m_hi << 32;
}

/* 16-bit lanes 0-15 = v[2c], 16-31 = v[2c+1] (v: 8 int16 in the low 128 bits). */
static inline __m512i spread_pair(__m512i v, int c)
{
    const __m512i idx = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * c)),
                                           _mm256_set1_epi16((short)(2 * c + 1)), 1);
    return _mm512_permutexvar_epi16(idx, v);
}

/* Chunk c of 32 bytes as 64 quants 0..15 in weight order. */
static inline __m512i chunk_nibbles(const uint8_t *q)
{
    const __m512i z = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)q));
    const __m512i sh = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    return _mm512_and_si512(_mm512_srlv_epi16(z, sh), _mm512_set1_epi8(0x0F));
}

/* sum_j m_j * (bsums[2j] + bsums[2j+1]) as 4 int32 lanes. */
static inline __m128i mins_dot4(uint64_t m, const int16_t *bsums)
{
    const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bsums),
                                      _mm_loadu_si128((const __m128i *)(bsums + 8)));
    return _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)m)), bs);
}

static float dot_q4_K(int64_t n, const void *w, const void *x)
{
    const struct kq_block_q4_K *a = w;
    const struct kq_block_q8_K *b = x;
    __m512 acc = _mm512_setzero_ps();
    __m128 macc = _mm_setzero_ps();
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        uint64_t sc, mn;
        unpack_scales_k4(a[i].scales, &sc, &mn);
        const __m512i sc16 =
            _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
        __m512i s = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            const __m512i q = chunk_nibbles(a[i].qs + 32 * c);
            const __m512i y = _mm512_loadu_si512(b[i].qs + 64 * c);
            s = _mm512_add_epi32(
                s, _mm512_madd_epi16(_mm512_maddubs_epi16(q, y), spread_pair(sc16, c)));
        }
        const float dy = b[i].d;
        acc = _mm512_fmadd_ps(_mm512_set1_ps(f16(a[i].d) * dy), _mm512_cvtepi32_ps(s), acc);
        macc = _mm_fmadd_ps(_mm_set1_ps(f16(a[i].dmin) * dy),
                            _mm_cvtepi32_ps(mins_dot4(mn, b[i].bsums)), macc);
    }
    return _mm512_reduce_add_ps(acc) -
           _mm512_reduce_add_ps(_mm512_castps128_ps512(macc)); // upper lanes of the cast: zero
}

static float dot_q5_K(int64_t n, const void *w, const void *x)
{
    const struct kq_block_q5_K *a = w;
    const struct kq_block_q8_K *b = x;
    const __m512i sixteen = _mm512_set1_epi8(16);
    __m512 acc = _mm512_setzero_ps();
    __m128 macc = _mm_setzero_ps();
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        uint64_t sc, mn;
        unpack_scales_k4(a[i].scales, &sc, &mn);
        const __m512i sc16 =
            _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)a[i].qh));
        __m512i s = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            /* the 5th bit of weight l of sub-block 2c (2c+1) is bit 2c (2c+1) of qh[l] */
            const __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * c))),
                                                   _mm256_set1_epi8((char)(2 << (2 * c))), 1);
            const __m512i q = _mm512_mask_add_epi8(chunk_nibbles(a[i].qs + 32 * c),
                                                   _mm512_test_epi8_mask(qh, bit),
                                                   chunk_nibbles(a[i].qs + 32 * c), sixteen);
            const __m512i y = _mm512_loadu_si512(b[i].qs + 64 * c);
            s = _mm512_add_epi32(
                s, _mm512_madd_epi16(_mm512_maddubs_epi16(q, y), spread_pair(sc16, c)));
        }
        const float dy = b[i].d;
        acc = _mm512_fmadd_ps(_mm512_set1_ps(f16(a[i].d) * dy), _mm512_cvtepi32_ps(s), acc);
        macc = _mm_fmadd_ps(_mm_set1_ps(f16(a[i].dmin) * dy),
                            _mm_cvtepi32_ps(mins_dot4(mn, b[i].bsums)), macc);
    }
    return _mm512_reduce_add_ps(acc) - _mm512_reduce_add_ps(_mm512_castps128_ps512(macc));
}

/* Q6_K: q in 0..63 against y, each group of 16 weighted by its signed scale; the -32 offset
 * comes back as 32 * sum_s scale_s * bsums_s. Half h of the block: L = ql[64h..64h+63] gives
 * weights 0..63 (low nibbles) and 64..127 (high nibbles) of the half, in order. */
static float dot_q6_K(int64_t n, const void *w, const void *x)
{
    const struct kq_block_q6_K *a = w;
    const struct kq_block_q8_K *b = x;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(3);
    const __m512i shA = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i shB = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    /* vpermw indices: 8 lanes each of scales k, k+1, k+2, k+3 */
    const __m512i idx0 = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1,
                                          1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        const __m256i sc16 =
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)a[i].scales));
        const __m512i scv = _mm512_castsi256_si512(sc16);
        /* the offset: sum_s sc_s * bsums_s (16 products, int32) */
        __m256i off = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)b[i].bsums));
        __m512i s = _mm512_slli_epi32(_mm512_castsi256_si512(off), 5); // 32 * ..., subtracted
        s = _mm512_sub_epi32(_mm512_setzero_si512(),
                             _mm512_inserti64x4(s, _mm256_setzero_si256(), 1));
        for (int h = 0; h < 2; h++) {
            const __m512i L = _mm512_loadu_si512(a[i].ql + 64 * h);
            const __m512i QH =
                _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(a[i].qh + 32 * h)));
            const __m512i qA = _mm512_or_si512(
                _mm512_and_si512(L, m4),
                _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(QH, shA), m2), 4));
            const __m512i qB = _mm512_or_si512(
                _mm512_and_si512(_mm512_srli_epi16(L, 4), m4),
                _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(QH, shB), m2), 4));
            const int8_t *y = b[i].qs + 128 * h;
            const __m512i scA =
                _mm512_permutexvar_epi16(_mm512_add_epi16(idx0, _mm512_set1_epi16(8 * h)), scv);
            const __m512i scB = _mm512_permutexvar_epi16(
                _mm512_add_epi16(idx0, _mm512_set1_epi16(8 * h + 4)), scv);
            s = _mm512_add_epi32(
                s, _mm512_madd_epi16(_mm512_maddubs_epi16(qA, _mm512_loadu_si512(y)), scA));
            s = _mm512_add_epi32(
                s, _mm512_madd_epi16(_mm512_maddubs_epi16(qB, _mm512_loadu_si512(y + 64)), scB));
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(f16(a[i].d) * b[i].d), _mm512_cvtepi32_ps(s), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* ---- K-quant 4x4 tiles (prompt processing) ----
 *
 * Per super-block: every unpacked chunk of 4 weight rows meets the same chunk of 4 token rows;
 * the 16 int32 accumulators are then folded into one vector (lane 4r+t) by a transposing
 * reduction and scaled by d_r * dy_t in one multiply. Mins: the 8 mins of all 4 rows form one
 * vector of int16 that meets each token's 8 group sums in one madd. */

/* Lane k of the result = sum of the 16 lanes of v[k]. */
static inline __m512i reduce16_epi32(const __m512i *v)
{
    __m512i l1[8], l2[4], l3[2];
    for (int k = 0; k < 8; k++)
        l1[k] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * k], v[2 * k + 1]),
                                 _mm512_unpackhi_epi32(v[2 * k], v[2 * k + 1]));
    for (int k = 0; k < 4; k++)
        l2[k] = _mm512_add_epi32(_mm512_unpacklo_epi64(l1[2 * k], l1[2 * k + 1]),
                                 _mm512_unpackhi_epi64(l1[2 * k], l1[2 * k + 1]));
    for (int k = 0; k < 2; k++)
        l3[k] = _mm512_add_epi32(_mm512_shuffle_i32x4(l2[2 * k], l2[2 * k + 1], 0x88),
                                 _mm512_shuffle_i32x4(l2[2 * k], l2[2 * k + 1], 0xDD));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(l3[0], l3[1], 0x88),
                            _mm512_shuffle_i32x4(l3[0], l3[1], 0xDD));
}

/* Q4_K (qh == NULL) and Q5_K weights: a 4x4 tile. */
static inline void gemm_kx(int64_t n, const uint8_t *const *ws, size_t blk, size_t off_d,
                           size_t off_sc, size_t off_qh, size_t off_qs, int has_qh,
                           const struct kq_block_q8_K *const *b, float *y, int64_t y_stride)
{
    const __m512i idx_r = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i idx_t = _mm512_set_epi32(3, 2, 1, 0, 3, 2, 1, 0, 3, 2, 1, 0, 3, 2, 1, 0);
    const __m512i sixteen = _mm512_set1_epi8(16);
    __m512 facc = _mm512_setzero_ps(), macc[4];
    for (int t = 0; t < 4; t++)
        macc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        const uint8_t *blkp[4];
        __m512i sc16[4], qh[4];
        uint64_t mn[4];
        float dw[4], dm[4], dy[4];
        for (int r = 0; r < 4; r++) {
            uint64_t sc;
            uint16_t h;
            blkp[r] = ws[r] + i * blk;
            unpack_scales_k4(blkp[r] + off_sc, &sc, &mn[r]);
            sc16[r] = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
            memcpy(&h, blkp[r] + off_d, 2);
            dw[r] = f16(h);
            memcpy(&h, blkp[r] + off_d + 2, 2);
            dm[r] = f16(h);
            qh[r] = has_qh ? _mm512_broadcast_i64x4(
                                 _mm256_loadu_si256((const __m256i *)(blkp[r] + off_qh)))
                           : _mm512_setzero_si512();
        }
        for (int t = 0; t < 4; t++)
            dy[t] = b[t][i].d;
        __m512i acc[16];
        for (int k = 0; k < 16; k++)
            acc[k] = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            __m512i yv[4];
            for (int t = 0; t < 4; t++)
                yv[t] = _mm512_loadu_si512(b[t][i].qs + 64 * c);
            const __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * c))),
                                                   _mm256_set1_epi8((char)(2 << (2 * c))), 1);
            for (int r = 0; r < 4; r++) {
                __m512i q = chunk_nibbles(blkp[r] + off_qs + 32 * c);
                if (has_qh)
                    q = _mm512_mask_add_epi8(q, _mm512_test_epi8_mask(qh[r], bit), q, sixteen);
                const __m512i s = spread_pair(sc16[r], c);
                for (int t = 0; t < 4; t++)
                    acc[4 * r + t] = _mm512_add_epi32(
                        acc[4 * r + t], _mm512_madd_epi16(_mm512_maddubs_epi16(q, yv[t]), s));
            }
        }
        const __m128 dwv = _mm_loadu_ps(dw), dyv = _mm_loadu_ps(dy), dmv = _mm_loadu_ps(dm);
        const __m512 dd = _mm512_mul_ps(_mm512_permutexvar_ps(idx_r, _mm512_castps128_ps512(dwv)),
                                        _mm512_permutexvar_ps(idx_t, _mm512_castps128_ps512(dyv)));
        facc = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(reduce16_epi32(acc)), facc);
        /* mins: row r's 8 mins in 128-bit lane r, against token t's 8 group-pair sums */
        const __m512i M = _mm512_cvtepu8_epi16(
            _mm256_setr_epi64x((long long)mn[0], (long long)mn[1], (long long)mn[2], (long long)mn[3]));
        const __m512 dmr = _mm512_permutexvar_ps(idx_r, _mm512_castps128_ps512(dmv));
        for (int t = 0; t < 4; t++) {
            const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)b[t][i].bsums),
                                              _mm_loadu_si128((const __m128i *)(b[t][i].bsums + 8)));
            const __m512i P = _mm512_madd_epi16(M, _mm512_broadcast_i32x4(bs));
            macc[t] = _mm512_fmadd_ps(_mm512_mul_ps(dmr, _mm512_set1_ps(dy[t])),
                                      _mm512_cvtepi32_ps(P), macc[t]);
        }
    }
    float f[16], m[4][16];
    _mm512_storeu_ps(f, facc);
    for (int t = 0; t < 4; t++)
        _mm512_storeu_ps(m[t], macc[t]);
    for (int t = 0; t < 4; t++)
        for (int r = 0; r < 4; r++)
            y[t * y_stride + r] =
                f[4 * r + t] - (m[t][4 * r] + m[t][4 * r + 1] + m[t][4 * r + 2] + m[t][4 * r + 3]);
}

static void gemm_q4_K(int64_t n, const void *w, size_t w_stride, const void *x, size_t x_stride,
                      float *y, int64_t y_stride)
{
    const uint8_t *ws[4];
    const struct kq_block_q8_K *b[4];
    for (int k = 0; k < 4; k++) {
        ws[k] = (const uint8_t *)w + k * w_stride;
        b[k] = (const struct kq_block_q8_K *)((const char *)x + k * x_stride);
    }
    gemm_kx(n, ws, sizeof(struct kq_block_q4_K), offsetof(struct kq_block_q4_K, d),
            offsetof(struct kq_block_q4_K, scales), 0, offsetof(struct kq_block_q4_K, qs), 0, b, y,
            y_stride);
}

static void gemm_q5_K(int64_t n, const void *w, size_t w_stride, const void *x, size_t x_stride,
                      float *y, int64_t y_stride)
{
    const uint8_t *ws[4];
    const struct kq_block_q8_K *b[4];
    for (int k = 0; k < 4; k++) {
        ws[k] = (const uint8_t *)w + k * w_stride;
        b[k] = (const struct kq_block_q8_K *)((const char *)x + k * x_stride);
    }
    gemm_kx(n, ws, sizeof(struct kq_block_q5_K), offsetof(struct kq_block_q5_K, d),
            offsetof(struct kq_block_q5_K, scales), offsetof(struct kq_block_q5_K, qh),
            offsetof(struct kq_block_q5_K, qs), 1, b, y, y_stride);
}

/* Q6_K 4x4 tile: as dot_q6_K, with the unpacked halves of 4 rows meeting 4 tokens. */
static void gemm_q6_K(int64_t n, const void *w, size_t w_stride, const void *x, size_t x_stride,
                      float *y, int64_t y_stride)
{
    const struct kq_block_q6_K *a[4];
    const struct kq_block_q8_K *b[4];
    for (int k = 0; k < 4; k++) {
        a[k] = (const struct kq_block_q6_K *)((const char *)w + k * w_stride);
        b[k] = (const struct kq_block_q8_K *)((const char *)x + k * x_stride);
    }
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(3);
    const __m512i shA = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i shB = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    const __m512i idx0 = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1,
                                          1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i idx_r = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i idx_t = _mm512_set_epi32(3, 2, 1, 0, 3, 2, 1, 0, 3, 2, 1, 0, 3, 2, 1, 0);
    __m512 facc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        __m512i scv[4], acc[16];
        float dw[4], dy[4];
        for (int r = 0; r < 4; r++) {
            const __m256i sc16 =
                _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)a[r][i].scales));
            scv[r] = _mm512_castsi256_si512(sc16);
            dw[r] = f16(a[r][i].d);
            for (int t = 0; t < 4; t++) { // the -32 offset, per (r, t)
                __m256i off =
                    _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)b[t][i].bsums));
                acc[4 * r + t] = _mm512_sub_epi32(
                    _mm512_setzero_si512(),
                    _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_slli_epi32(off, 5)),
                                       _mm256_setzero_si256(), 1));
            }
        }
        for (int t = 0; t < 4; t++)
            dy[t] = b[t][i].d;
        for (int h = 0; h < 2; h++) {
            __m512i yA[4], yB[4];
            for (int t = 0; t < 4; t++) {
                yA[t] = _mm512_loadu_si512(b[t][i].qs + 128 * h);
                yB[t] = _mm512_loadu_si512(b[t][i].qs + 128 * h + 64);
            }
            for (int r = 0; r < 4; r++) {
                const __m512i L = _mm512_loadu_si512(a[r][i].ql + 64 * h);
                const __m512i QH = _mm512_broadcast_i64x4(
                    _mm256_loadu_si256((const __m256i *)(a[r][i].qh + 32 * h)));
                const __m512i qA = _mm512_or_si512(
                    _mm512_and_si512(L, m4),
                    _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(QH, shA), m2), 4));
                const __m512i qB = _mm512_or_si512(
                    _mm512_and_si512(_mm512_srli_epi16(L, 4), m4),
                    _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(QH, shB), m2), 4));
                const __m512i scA = _mm512_permutexvar_epi16(
                    _mm512_add_epi16(idx0, _mm512_set1_epi16((short)(8 * h))), scv[r]);
                const __m512i scB = _mm512_permutexvar_epi16(
                    _mm512_add_epi16(idx0, _mm512_set1_epi16((short)(8 * h + 4))), scv[r]);
                for (int t = 0; t < 4; t++) {
                    __m512i s = _mm512_madd_epi16(_mm512_maddubs_epi16(qA, yA[t]), scA);
                    s = _mm512_add_epi32(s, _mm512_madd_epi16(_mm512_maddubs_epi16(qB, yB[t]), scB));
                    acc[4 * r + t] = _mm512_add_epi32(acc[4 * r + t], s);
                }
            }
        }
        const __m512 dd =
            _mm512_mul_ps(_mm512_permutexvar_ps(idx_r, _mm512_castps128_ps512(_mm_loadu_ps(dw))),
                          _mm512_permutexvar_ps(idx_t, _mm512_castps128_ps512(_mm_loadu_ps(dy))));
        facc = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(reduce16_epi32(acc)), facc);
    }
    float f[16];
    _mm512_storeu_ps(f, facc);
    for (int t = 0; t < 4; t++)
        for (int r = 0; r < 4; r++)
            y[t * y_stride + r] = f[4 * r + t];
}

/* ---- activation quantization to Q8_K (the reference's arithmetic, byte for byte) ---- */

static void from_f32_q8_K(const float *x, void *dst, int64_t n)
{
    struct kq_block_q8_K *b = dst;
    const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
    for (int64_t i = 0; i < n / KQ_QK_K; i++, x += KQ_QK_K) {
        __m512 v[16], m = _mm512_setzero_ps();
        for (int k = 0; k < 16; k++) {
            v[k] = _mm512_loadu_ps(x + 16 * k);
            m = _mm512_max_ps(m, _mm512_and_ps(v[k], abs_mask));
        }
        const float amax = _mm512_reduce_max_ps(m);
        if (!amax) {
            memset(&b[i], 0, sizeof(b[i]));
            continue;
        }
        /* the first value of largest magnitude, with its sign (as the reference picks it) */
        float max = 0;
        const __m512 va = _mm512_set1_ps(amax);
        for (int k = 0; k < 16; k++) {
            __mmask16 hit = _mm512_cmp_ps_mask(_mm512_and_ps(v[k], abs_mask), va, _CMP_EQ_OQ);
            if (hit) {
                max = x[16 * k + __builtin_ctz(hit)];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m512 vs = _mm512_set1_ps(iscale);
        for (int k = 0; k < 16; k++) {
            /* round half to even, as nearest_int; never above 127 */
            __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(vs, v[k])),
                                         _mm512_set1_epi32(127));
            _mm_storeu_si128((__m128i *)(b[i].qs + 16 * k), _mm512_cvtepi32_epi8(q));
            b[i].bsums[k] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        b[i].d = 1 / iscale;
    }
}

/* ---- repacked weights (x16 layout, kq_impl.h): token generation without shuffles ----
 *
 * One 64-byte load holds 4 quant bytes of each of 16 rows. Its low nibbles (v & 0x0F) meet 4
 * broadcast activation bytes in one vpdpbusd, giving 16 rows' partial sums in 16 lanes; its high
 * nibbles are taken as v & 0xF0, i.e. 16 times the nibble, so the shift comes once per sum
 * (exact: every product is a multiple of 16). No horizontal sums, no per-row shuffles: the
 * scales of the 16 rows are vectors too. */

#define X16_Q4_0_BLOCK (16 * 18)
#define X16_Q8_0_BLOCK (16 * 34)
#define X16_Q4_K_BLOCK (16 * 144)
#define X16_Q5_K_BLOCK (16 * 176)

static inline __attribute__((always_inline)) __m512 x16_d(const uint8_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

/* The entry point for n_tok = 1..4 tokens, each a specialization of IMPL. */
#define DEF_GEMV_X16(name, IMPL, ATTR)                                                             \
    ATTR static void name(int64_t n, const void *g, const void *x, size_t x_stride, int n_tok,     \
                          float *y, int64_t y_stride)                                              \
    {                                                                                              \
        switch (n_tok) {                                                                           \
        case 1:                                                                                    \
            IMPL(n, g, x, x_stride, 1, y, y_stride);                                               \
            break;                                                                                 \
        case 2:                                                                                    \
            IMPL(n, g, x, x_stride, 2, y, y_stride);                                               \
            break;                                                                                 \
        case 3:                                                                                    \
            IMPL(n, g, x, x_stride, 3, y, y_stride);                                               \
            break;                                                                                 \
        default:                                                                                   \
            IMPL(n, g, x, x_stride, 4, y, y_stride);                                               \
            break;                                                                                 \
        }                                                                                          \
    }


/* Q4_0 and Q8_0 (q8): the block's 8 value vectors u[j] hold weights 4j..4j+3 of 16 rows. Q8_0:
 * the quants flipped to unsigned (q + 128, one xor). Q4_0: low nibbles for j < 4, high nibbles
 * as v & 0xF0 (16 times the value: the sum is shifted back once) for j >= 4. The offset (128 or
 * 8 times the block's activation sum) comes off per block. */
VNNI_TARGET static inline __attribute__((always_inline)) void
gemv_x16_b32_t(int64_t n, const uint8_t *G, const void *x, size_t x_stride, const int T,
               float *y, int64_t y_stride, const int q8)
{
    const int64_t nb = n / KQ_QK;
    const __m512i z = _mm512_setzero_si512();
    const float *xd[KQ_X16_TOK];
    const int8_t *xq[KQ_X16_TOK];
    const int32_t *xs[KQ_X16_TOK];
    __m512 f[KQ_X16_TOK];
    for (int k = 0; k < T; k++) {
        const char *xr = (const char *)x + (size_t)k * x_stride;
        xd[k] = kq__q8x_d(xr);
        xq[k] = kq__q8x_qs(xr, n);
        xs[k] = kq__q8x_s(xr, n);
        f[k] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++, G += q8 ? X16_Q8_0_BLOCK : X16_Q4_0_BLOCK) {
        __m512i u[8];
        for (int j = 0; j < (q8 ? 8 : 4); j++) {
            const __m512i v = _mm512_loadu_si512(G + 32 + 64 * j);
            if (q8) {
                u[j] = _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
            } else {
                u[j] = _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
                u[j + 4] = _mm512_and_si512(v, _mm512_set1_epi8((char)0xF0));
            }
        }
        const __m512 d = x16_d(G);
        for (int k = 0; k < T; k++) {
            const int8_t *q = xq[k] + b * KQ_QK;
            __m512i a0 = z, a1 = z, h0 = z, h1 = z;
            for (int j = 0; j < 4; j += 2) {
                a0 = _mm512_dpbusd_epi32(a0, u[j], bcast32(q + 4 * j));
                a1 = _mm512_dpbusd_epi32(a1, u[j + 1], bcast32(q + 4 * j + 4));
                h0 = _mm512_dpbusd_epi32(h0, u[j + 4], bcast32(q + 16 + 4 * j));
                h1 = _mm512_dpbusd_epi32(h1, u[j + 5], bcast32(q + 20 + 4 * j));
            }
            __m512i H = _mm512_add_epi32(h0, h1);
            if (!q8)
                H = _mm512_srai_epi32(H, 4);
            const __m512i S =
                _mm512_sub_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), H),
                                 _mm512_set1_epi32(xs[k][b] * (q8 ? 128 : 8)));
            f[k] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(xd[k][b])),
                                   _mm512_cvtepi32_ps(S), f[k]);
        }
    }
    for (int k = 0; k < T; k++)
        _mm512_storeu_ps(y + k * y_stride, f[k]);
}

VNNI_TARGET static inline __attribute__((always_inline)) void
gemv_x16_q4_0_t(int64_t n, const uint8_t *G, const void *x, size_t x_stride, const int T,
                float *y, int64_t y_stride)
{
    gemv_x16_b32_t(n, G, x, x_stride, T, y, y_stride, 0);
}

VNNI_TARGET static inline __attribute__((always_inline)) void
gemv_x16_q8_0_t(int64_t n, const uint8_t *G, const void *x, size_t x_stride, const int T,
                float *y, int64_t y_stride)
{
    gemv_x16_b32_t(n, G, x, x_stride, T, y, y_stride, 1);
}

DEF_GEMV_X16(gemv_x16_q4_0, gemv_x16_q4_0_t, VNNI_TARGET)

/* F32: column i of the 16 rows is one vector; each meets the broadcast x[i] of up to 4 tokens
 * in one FMA, 4 columns in flight per token. Prompts go through here too, 4 tokens at a time
 * (one load, four broadcasts, four FMAs per column: FMA-bound, the group in L2). */
static inline __attribute__((always_inline)) void gemv_x16_f32_t(int64_t n, const float *G,
                                                                 const void *x, size_t x_stride,
                                                                 const int T, float *y,
                                                                 int64_t y_stride)
{
    const float *xr[KQ_X16_TOK];
    __m512 acc[KQ_X16_TOK][4];
    for (int k = 0; k < T; k++) {
        xr[k] = (const float *)(const void *)((const char *)x + (size_t)k * x_stride);
        for (int u = 0; u < 4; u++)
            acc[k][u] = _mm512_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
            const __m512 w = _mm512_loadu_ps(G + 16 * (i + u));
            for (int k = 0; k < T; k++)
                acc[k][u] = _mm512_fmadd_ps(w, _mm512_set1_ps(xr[k][i + u]), acc[k][u]);
        }
    }
    for (; i < n; i++) {
        const __m512 w = _mm512_loadu_ps(G + 16 * i);
        for (int k = 0; k < T; k++)
            acc[k][0] = _mm512_fmadd_ps(w, _mm512_set1_ps(xr[k][i]), acc[k][0]);
    }
    for (int k = 0; k < T; k++)
        _mm512_storeu_ps(y + k * y_stride,
                         _mm512_add_ps(_mm512_add_ps(acc[k][0], acc[k][1]),
                                       _mm512_add_ps(acc[k][2], acc[k][3])));
}

DEF_GEMV_X16(gemv_x16_f32, gemv_x16_f32_t, )


DEF_GEMV_X16(gemv_x16_q8_0, gemv_x16_q8_0_t, VNNI_TARGET)

static void x16_panel16_q8_0(int64_t n, const void *g, void *panel)
{
    const int64_t nb = n / KQ_QK;
    const uint8_t *G = g;
    uint8_t *P = panel;
    float *dw = (float *)(void *)(P + (size_t)nb * 512);
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (int64_t b = 0; b < nb; b++, G += X16_Q8_0_BLOCK) {
        _mm512_storeu_ps(dw + b * KQ_PANEL_R, x16_d(G));
        for (int j = 0; j < 8; j++)
            _mm512_storeu_si512(P + b * 512 + j * 64,
                                _mm512_xor_si512(_mm512_loadu_si512(G + 32 + 64 * j), flip));
    }
}

/* The 8 scales and mins of 16 rows (x16 Q4_K block at G): sc[0] holds sub-blocks 0-3 (a byte
 * each) of every row, sc[1] 4-7; mn likewise. */
static inline __attribute__((always_inline)) void x16_scales_k4(const uint8_t *G, __m512i sc[2],
                                                                __m512i mn[2])
{
    const __m512i u0 = _mm512_loadu_si512(G + 64), u1 = _mm512_loadu_si512(G + 128);
    const __m512i u2 = _mm512_loadu_si512(G + 192);
    const __m512i m6 = _mm512_set1_epi32(0x3F3F3F3F), m4 = _mm512_set1_epi32(0x0F0F0F0F);
    const __m512i m2 = _mm512_set1_epi32(0x03030303);
    sc[0] = _mm512_and_si512(u0, m6);
    mn[0] = _mm512_and_si512(u1, m6);
    sc[1] = _mm512_or_si512(_mm512_and_si512(u2, m4),
                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u0, 6), m2), 4));
    mn[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u2, 4), m4),
                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(u1, 6), m2), 4));
}

static inline int32_t pair16(int a, int b)
{
    return (int32_t)((uint32_t)(uint16_t)a | (uint32_t)(uint16_t)b << 16);
}

/* The end of a Q4_K/Q5_K x16 block for T tokens: f += d*dy*s - dmin*dy*M, where M = the sum
 * over sub-blocks j of m_j * (the token's sum over sub-block j), as int16 pairs (m_j <= 63,
 * |sum| <= 32 * 128) through vpmaddwd. */
static inline __attribute__((always_inline)) void
x16_kx_finish(const uint8_t *G, const __m512i mn[2], const __m512i *s,
              const struct kq_block_q8_K *const *yb, int64_t i, const int T, __m512 *f)
{
    const __m512i w16 = _mm512_set1_epi32(0x00FF00FF);
    const __m512i e0 = _mm512_and_si512(mn[0], w16);
    const __m512i o0 = _mm512_and_si512(_mm512_srli_epi32(mn[0], 8), w16);
    const __m512i e1 = _mm512_and_si512(mn[1], w16);
    const __m512i o1 = _mm512_and_si512(_mm512_srli_epi32(mn[1], 8), w16);
    const __m512 d = x16_d(G), dm = x16_d(G + 32);
    for (int k = 0; k < T; k++) {
        const int16_t *bs = yb[k][i].bsums;
        int t[8];
        for (int j = 0; j < 8; j++)
            t[j] = bs[2 * j] + bs[2 * j + 1];
        __m512i M = _mm512_madd_epi16(e0, _mm512_set1_epi32(pair16(t[0], t[2])));
        M = _mm512_add_epi32(M, _mm512_madd_epi16(o0, _mm512_set1_epi32(pair16(t[1], t[3]))));
        M = _mm512_add_epi32(M, _mm512_madd_epi16(e1, _mm512_set1_epi32(pair16(t[4], t[6]))));
        M = _mm512_add_epi32(M, _mm512_madd_epi16(o1, _mm512_set1_epi32(pair16(t[5], t[7]))));
        const __m512 dy = _mm512_set1_ps(yb[k][i].d);
        f[k] = _mm512_fmadd_ps(_mm512_mul_ps(d, dy), _mm512_cvtepi32_ps(s[k]), f[k]);
        f[k] = _mm512_fnmadd_ps(_mm512_mul_ps(dm, dy), _mm512_cvtepi32_ps(M), f[k]);
    }
}

/* The panel header of a Q4_K/Q5_K x16 block (scales and mins as int32, d and dmin as f32). */
static inline void x16_kx_panel_header(const uint8_t *G, uint8_t *P)
{
    const __m512i ff = _mm512_set1_epi32(0xFF);
    int32_t *SC = (int32_t *)(void *)(P + 64 * 64), *MN = SC + 8 * 16;
    float *D = (float *)(void *)(MN + 8 * 16), *DM = D + 16;
    __m512i sc[2], mn[2];
    x16_scales_k4(G, sc, mn);
    for (int j = 0; j < 8; j++) {
        _mm512_storeu_si512(SC + 16 * j,
                            _mm512_and_si512(_mm512_srli_epi32(sc[j >> 2], 8 * (j & 3)), ff));
        _mm512_storeu_si512(MN + 16 * j,
                            _mm512_and_si512(_mm512_srli_epi32(mn[j >> 2], 8 * (j & 3)), ff));
    }
    _mm512_storeu_ps(D, x16_d(G));
    _mm512_storeu_ps(DM, x16_d(G + 32));
}

/* Values (c, j) of a Q4_K/Q5_K x16 block: weights 4j..4j+3 of sub-blocks 2c (*lo) and 2c+1
 * (*hi) of 16 rows. Q4_K's *hi is 16 times the value (v & 0xF0, one op less per vector; the
 * sums are shifted back once); Q5_K's come with their 5th bits. */
static inline __attribute__((always_inline)) void x16_q5_pair(const uint8_t *G, int c, int j,
                                                              __m512i *lo, __m512i *hi);

static inline __attribute__((always_inline)) void x16_kx_vals(const uint8_t *G, const int q5,
                                                              int c, int j, __m512i *lo,
                                                              __m512i *hi)
{
    if (q5) {
        x16_q5_pair(G, c, j, lo, hi);
        return;
    }
    const __m512i v = _mm512_loadu_si512(G + 256 + 64 * (8 * c + j));
    *lo = _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
    *hi = _mm512_and_si512(v, _mm512_set1_epi8((char)0xF0));
}

VNNI_TARGET static inline __attribute__((always_inline)) void
gemv_x16_kx_t(int64_t n, const uint8_t *G, const void *x, size_t x_stride, const int T,
              float *y, int64_t y_stride, const int q5)
{
    const int64_t nb = n / KQ_QK_K;
    const __m512i z = _mm512_setzero_si512(), ff = _mm512_set1_epi32(0xFF);
    const struct kq_block_q8_K *yb[KQ_X16_TOK];
    __m512 f[KQ_X16_TOK];
    for (int k = 0; k < T; k++) {
        yb[k] = (const struct kq_block_q8_K *)((const char *)x + (size_t)k * x_stride);
        f[k] = _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < nb; i++, G += q5 ? X16_Q5_K_BLOCK : X16_Q4_K_BLOCK) {
        __m512i sc[2], mn[2], s[KQ_X16_TOK];
        x16_scales_k4(G, sc, mn);
        for (int k = 0; k < T; k++)
            s[k] = z;
        for (int c = 0; c < 4; c++) {
            const __m512i sa = _mm512_and_si512(_mm512_srli_epi32(sc[c >> 1], 16 * (c & 1)), ff);
            const __m512i sb =
                _mm512_and_si512(_mm512_srli_epi32(sc[c >> 1], 16 * (c & 1) + 8), ff);
            __m512i a0[KQ_X16_TOK], a1[KQ_X16_TOK], h0[KQ_X16_TOK], h1[KQ_X16_TOK];
            for (int k = 0; k < T; k++)
                a0[k] = a1[k] = h0[k] = h1[k] = z;
            for (int j = 0; j < 8; j += 2) {
                __m512i l0, g0, l1, g1;
                x16_kx_vals(G, q5, c, j, &l0, &g0);
                x16_kx_vals(G, q5, c, j + 1, &l1, &g1);
                for (int k = 0; k < T; k++) {
                    const int8_t *q = yb[k][i].qs + 64 * c + 4 * j;
                    a0[k] = _mm512_dpbusd_epi32(a0[k], l0, bcast32(q));
                    a1[k] = _mm512_dpbusd_epi32(a1[k], l1, bcast32(q + 4));
                    h0[k] = _mm512_dpbusd_epi32(h0[k], g0, bcast32(q + 32));
                    h1[k] = _mm512_dpbusd_epi32(h1[k], g1, bcast32(q + 36));
                }
            }
            for (int k = 0; k < T; k++) {
                const __m512i A = _mm512_add_epi32(a0[k], a1[k]);
                __m512i H = _mm512_add_epi32(h0[k], h1[k]);
                if (!q5)
                    H = _mm512_srai_epi32(H, 4);
                s[k] = _mm512_add_epi32(s[k], _mm512_add_epi32(_mm512_mullo_epi32(A, sa),
                                                               _mm512_mullo_epi32(H, sb)));
            }
        }
        x16_kx_finish(G, mn, s, yb, i, T, f);
    }
    for (int k = 0; k < T; k++)
        _mm512_storeu_ps(y + k * y_stride, f[k]);
}

VNNI_TARGET static inline __attribute__((always_inline)) void
gemv_x16_q4_K_t(int64_t n, const uint8_t *G, const void *x, size_t x_stride, const int T,
                float *y, int64_t y_stride)
{
    gemv_x16_kx_t(n, G, x, x_stride, T, y, y_stride, 0);
}
DEF_GEMV_X16(gemv_x16_q4_K, gemv_x16_q4_K_t, VNNI_TARGET)

/* Q6_K (3360 bytes per block): d at 0, scales at 32 (4 vectors of 4 bytes x 16 rows), then 16
 * triples of vectors (two of ql, one of qh) in reading order. Weights l..l+3 of the four
 * quarters of half h come
 * out of two ql vectors and one qh vector as 6-bit values in bytes; -32 goes through the
 * activation group sums; one vpmulld per 16-weight sub-block applies the 16 rows' scales. */
#define X16_Q6_K_BLOCK (16 * 210)

/* The four quarters' values of half h, l = 4j..4j+3: weights 128h + 32q + l, q = 0..3. */
static inline __attribute__((always_inline)) void x16_q6_quarters(const uint8_t *G, int h, int j,
                                                                  __m512i q[4])
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const uint8_t *P = G + 288 + 192 * (8 * h + j);
    const __m512i la = _mm512_loadu_si512(P), lb = _mm512_loadu_si512(P + 64);
    const __m512i qh = _mm512_loadu_si512(P + 128);
    q[0] = _mm512_or_si512(_mm512_and_si512(la, m4),
                           _mm512_and_si512(_mm512_slli_epi16(qh, 4), m30));
    q[1] = _mm512_or_si512(_mm512_and_si512(lb, m4),
                           _mm512_and_si512(_mm512_slli_epi16(qh, 2), m30));
    q[2] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(la, 4), m4),
                           _mm512_and_si512(qh, m30));
    q[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(lb, 4), m4),
                           _mm512_and_si512(_mm512_srli_epi16(qh, 2), m30));
}

/* Sub-block s's signed scale in the 16 lanes (byte s%4 of vector s/4). */
static inline __attribute__((always_inline)) __m512i x16_q6_scale(const __m512i *sv, int s)
{
    return _mm512_srai_epi32(_mm512_slli_epi32(sv[s >> 2], 24 - 8 * (s & 3)), 24);
}

VNNI_TARGET static inline __attribute__((always_inline)) void
gemv_x16_q6_K_t(int64_t n, const uint8_t *G, const void *x, size_t x_stride, const int T,
                float *y, int64_t y_stride)
{
    const int64_t nb = n / KQ_QK_K;
    const __m512i z = _mm512_setzero_si512();
    const struct kq_block_q8_K *yb[KQ_X16_TOK];
    __m512 f[KQ_X16_TOK];
    for (int k = 0; k < T; k++) {
        yb[k] = (const struct kq_block_q8_K *)((const char *)x + (size_t)k * x_stride);
        f[k] = _mm512_setzero_ps();
    }
    for (int64_t i = 0; i < nb; i++, G += X16_Q6_K_BLOCK) {
        __m512i sv[4], s[KQ_X16_TOK];
        for (int m = 0; m < 4; m++)
            sv[m] = _mm512_loadu_si512(G + 32 + 64 * m);
        for (int k = 0; k < T; k++)
            s[k] = z;
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
#pragma GCC unroll 2
            for (int jj = 0; jj < 2; jj++) { // sub-blocks 8h + 2q + jj, q = 0..3
                __m512i acc[KQ_X16_TOK][4];
                for (int k = 0; k < T; k++)
                    for (int q = 0; q < 4; q++)
                        acc[k][q] = z;
#pragma GCC unroll 4
                for (int j = 4 * jj; j < 4 * jj + 4; j++) {
                    __m512i qv[4];
                    x16_q6_quarters(G, h, j, qv);
                    for (int k = 0; k < T; k++) {
                        const int8_t *yq = yb[k][i].qs + 128 * h + 4 * j;
#pragma GCC unroll 4
                        for (int q = 0; q < 4; q++)
                            acc[k][q] = _mm512_dpbusd_epi32(acc[k][q], qv[q], bcast32(yq + 32 * q));
                    }
                }
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++) {
                    const int sb = 8 * h + 2 * q + jj;
                    const __m512i sc = x16_q6_scale(sv, sb);
                    for (int k = 0; k < T; k++) {
                        const __m512i S = _mm512_sub_epi32(
                            acc[k][q], _mm512_set1_epi32(32 * yb[k][i].bsums[sb]));
                        s[k] = _mm512_add_epi32(s[k], _mm512_mullo_epi32(S, sc));
                    }
                }
            }
        const __m512 d = x16_d(G);
        for (int k = 0; k < T; k++)
            f[k] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(yb[k][i].d)),
                                   _mm512_cvtepi32_ps(s[k]), f[k]);
    }
    for (int k = 0; k < T; k++)
        _mm512_storeu_ps(y + k * y_stride, f[k]);
}

DEF_GEMV_X16(gemv_x16_q6_K, gemv_x16_q6_K_t, VNNI_TARGET)

static void x16_panel16_q6_K(int64_t n, const void *g, void *panel)
{
    const int64_t nb = n / KQ_QK_K;
    const uint8_t *G = g;
    for (int64_t i = 0; i < nb; i++, G += X16_Q6_K_BLOCK) {
        uint8_t *P = (uint8_t *)panel + i * Q6_PANEL_BLOCK;
        int32_t *SC = (int32_t *)(void *)(P + 64 * 64);
        float *D = (float *)(void *)(SC + 16 * 16);
        __m512i sv[4];
        for (int m = 0; m < 4; m++)
            sv[m] = _mm512_loadu_si512(G + 32 + 64 * m);
        for (int sb = 0; sb < 16; sb++)
            _mm512_storeu_si512(SC + 16 * sb, x16_q6_scale(sv, sb));
        _mm512_storeu_ps(D, x16_d(G));
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 8; j++) {
                __m512i qv[4];
                x16_q6_quarters(G, h, j, qv);
                for (int q = 0; q < 4; q++)
                    _mm512_storeu_si512(P + (32 * h + 8 * q + j) * 64, qv[q]);
            }
    }
}

/* Q5_K (2816 bytes per block): the Q4_K header, then qh as 8 vectors (bytes 4j..4j+3 of 16
 * rows; bit 2c / 2c+1 of a byte is the 5th bit of that weight in sub-block 2c / 2c+1), then qs
 * as Q4_K. Values 0..31 for vpdpbusd, built with shifts and masks. */

static inline __attribute__((always_inline)) void x16_q5_pair(const uint8_t *G, int c, int j,
                                                              __m512i *lo, __m512i *hi)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F), one = _mm512_set1_epi8(1);
    const __m512i v = _mm512_loadu_si512(G + 768 + 64 * (8 * c + j));
    const __m512i h = _mm512_loadu_si512(G + 256 + 64 * j);
    const __m512i bl = _mm512_and_si512(_mm512_srl_epi16(h, _mm_cvtsi32_si128(2 * c)), one);
    const __m512i bh = _mm512_and_si512(_mm512_srl_epi16(h, _mm_cvtsi32_si128(2 * c + 1)), one);
    *lo = _mm512_or_si512(_mm512_and_si512(v, m4), _mm512_slli_epi16(bl, 4));
    *hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), m4),
                          _mm512_slli_epi16(bh, 4));
}

VNNI_TARGET static inline __attribute__((always_inline)) void
gemv_x16_q5_K_t(int64_t n, const uint8_t *G, const void *x, size_t x_stride, const int T,
                float *y, int64_t y_stride)
{
    gemv_x16_kx_t(n, G, x, x_stride, T, y, y_stride, 1);
}

DEF_GEMV_X16(gemv_x16_q5_K, gemv_x16_q5_K_t, VNNI_TARGET)

static void x16_panel16_q5_K(int64_t n, const void *g, void *panel)
{
    const int64_t nb = n / KQ_QK_K;
    const uint8_t *G = g;
    for (int64_t i = 0; i < nb; i++, G += X16_Q5_K_BLOCK) {
        uint8_t *P = (uint8_t *)panel + i * KX_PANEL_BLOCK;
        x16_kx_panel_header(G, P);
        for (int c = 0; c < 4; c++)
            for (int j = 0; j < 8; j++) {
                __m512i lo, hi;
                x16_q5_pair(G, c, j, &lo, &hi);
                _mm512_storeu_si512(P + (16 * c + j) * 64, lo);
                _mm512_storeu_si512(P + (16 * c + 8 + j) * 64, hi);
            }
    }
}

/* x16 group -> the pack16 panels above (prompt processing). */
static void x16_panel16_q4_0(int64_t n, const void *g, void *panel)
{
    const int64_t nb = n / KQ_QK;
    const uint8_t *G = g;
    uint8_t *P = panel;
    float *dw = (float *)(void *)(P + (size_t)nb * 512);
    const __m512i lo = _mm512_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++, G += X16_Q4_0_BLOCK) {
        _mm512_storeu_ps(dw + b * KQ_PANEL_R, x16_d(G));
        for (int j = 0; j < 4; j++) {
            const __m512i v = _mm512_loadu_si512(G + 32 + 64 * j);
            _mm512_storeu_si512(P + b * 512 + j * 64, _mm512_and_si512(v, lo));
            _mm512_storeu_si512(P + b * 512 + (j + 4) * 64,
                                _mm512_and_si512(_mm512_srli_epi16(v, 4), lo));
        }
    }
}

static void x16_panel16_q4_K(int64_t n, const void *g, void *panel)
{
    const int64_t nb = n / KQ_QK_K;
    const uint8_t *G = g;
    const __m512i lo = _mm512_set1_epi8(0x0F);
    for (int64_t i = 0; i < nb; i++, G += X16_Q4_K_BLOCK) {
        uint8_t *P = (uint8_t *)panel + i * KX_PANEL_BLOCK;
        x16_kx_panel_header(G, P);
        for (int c = 0; c < 4; c++)
            for (int j = 0; j < 8; j++) {
                const __m512i v = _mm512_loadu_si512(G + 256 + 64 * (8 * c + j));
                _mm512_storeu_si512(P + (16 * c + j) * 64, _mm512_and_si512(v, lo));
                _mm512_storeu_si512(P + (16 * c + 8 + j) * 64,
                                    _mm512_and_si512(_mm512_srli_epi16(v, 4), lo));
            }
    }
}

void kq_avx512_table(struct kq_ops *ops, int vnni)
{
    memset(ops, 0, sizeof(*ops));
    ops->type[GGUF_T_F32] =
        (struct kq_type_ops){.vec_dot = dot_f32, .gemm = gemm_f32, .gemv_x16 = gemv_x16_f32};
    /* dot_f16 stays AVX2: 512-bit vcvtph2ps made it slower on Zen 4 (35 vs 55 GB/s from L2) */
    ops->type[GGUF_T_F16] = (struct kq_type_ops){.gemm = gemm_f16};
    ops->type[GGUF_T_BF16] = (struct kq_type_ops){.vec_dot = dot_bf16, .gemm = gemm_bf16};
    if (vnni) {
        ops->type[GGUF_T_Q8_0] = (struct kq_type_ops){.vec_dot = dot_q8_0_vnni,
                                                      .gemm = gemm_q8_0_vnni,
                                                      .pack16 = pack16_q8_0,
                                                      .panel16 = panel16_q8_0};
        ops->type[GGUF_T_Q4_0] = (struct kq_type_ops){.vec_dot = dot_q4_0_vnni,
                                                      .gemm = gemm_q4_0_vnni,
                                                      .pack16 = pack16_q4_0,
                                                      .panel16 = panel16_q4_0};
    } else {
        ops->type[GGUF_T_Q8_0] = (struct kq_type_ops){.vec_dot = dot_q8_0, .gemm = gemm_q8_0};
        ops->type[GGUF_T_Q4_0] = (struct kq_type_ops){.vec_dot = dot_q4_0, .gemm = gemm_q4_0};
    }
    ops->type[GGUF_T_Q4_K] =
        (struct kq_type_ops){.from_float = from_f32_q8_K, .vec_dot = dot_q4_K, .gemm = gemm_q4_K};
    ops->type[GGUF_T_Q5_K] =
        (struct kq_type_ops){.from_float = from_f32_q8_K, .vec_dot = dot_q5_K, .gemm = gemm_q5_K};
    if (vnni) {
        ops->type[GGUF_T_Q8_0].gemv_x16 = gemv_x16_q8_0;
        ops->type[GGUF_T_Q8_0].x16_panel16 = x16_panel16_q8_0;
        ops->type[GGUF_T_Q4_0].gemv_x16 = gemv_x16_q4_0;
        ops->type[GGUF_T_Q4_0].x16_panel16 = x16_panel16_q4_0;
        ops->type[GGUF_T_Q4_K].gemv_x16 = gemv_x16_q4_K;
        ops->type[GGUF_T_Q4_K].x16_panel16 = x16_panel16_q4_K;
        ops->type[GGUF_T_Q4_K].pack16 = pack16_q4_K;
        ops->type[GGUF_T_Q4_K].panel16 = panel16_kx;
        ops->type[GGUF_T_Q5_K].pack16 = pack16_q5_K;
        ops->type[GGUF_T_Q5_K].panel16 = panel16_kx;
        ops->type[GGUF_T_Q5_K].gemv_x16 = gemv_x16_q5_K;
        ops->type[GGUF_T_Q5_K].x16_panel16 = x16_panel16_q5_K;
    }
    ops->type[GGUF_T_Q6_K] =
        (struct kq_type_ops){.from_float = from_f32_q8_K, .vec_dot = dot_q6_K, .gemm = gemm_q6_K};
    if (vnni) {
        ops->type[GGUF_T_Q6_K].pack16 = pack16_q6_K;
        ops->type[GGUF_T_Q6_K].panel16 = panel16_q6_K;
        ops->type[GGUF_T_Q6_K].gemv_x16 = gemv_x16_q6_K;
        ops->type[GGUF_T_Q6_K].x16_panel16 = x16_panel16_q6_K;
    }
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
