/* kq_avx2.c - AVX2/FMA/F16C kernels (compiled with -mavx2 -mfma -mf16c; called only when the
 * CPU has them). Each one matches its reference in kq_ref.c: integer block sums are exact, only
 * the order of float additions differs.
 */
#include "nn/kq_impl.h"

#include <immintrin.h>
#include <string.h>

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float f16(uint16_t h)
{
    return _cvtsh_ss(h);
}

/* ---- f32 / f16 / bf16 ---- */

static void dequant_f16(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++)
        dst[i] = f16(h[i]);
}

static void from_f32_f16(const float *x, void *dst, int64_t n)
{
    uint16_t *h = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        h[i] = kq_f32_to_f16(x[i]);
}

static inline __m256 load_bf16(const uint16_t *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

static void dequant_bf16(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, load_bf16(h + i));
    for (; i < n; i++)
        dst[i] = kq_bf16_to_f32(h[i]);
}

#define LOAD_F32(p) _mm256_loadu_ps(p)
#define LOAD_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define LOAD_BF16(p) load_bf16(p)

/* Four independent accumulators hide the FMA latency; the tail is scalar. */
#define DEF_DOT(name, T, LOAD, CVT)                                                                \
    static float name(int64_t n, const void *w, const void *x)                                     \
    {                                                                                              \
        const T *a = w, *b = x;                                                                    \
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                                \
        int64_t i = 0;                                                                             \
        for (; i + 32 <= n; i += 32) {                                                             \
            s0 = _mm256_fmadd_ps(LOAD(a + i), LOAD(b + i), s0);                                    \
            s1 = _mm256_fmadd_ps(LOAD(a + i + 8), LOAD(b + i + 8), s1);                            \
            s2 = _mm256_fmadd_ps(LOAD(a + i + 16), LOAD(b + i + 16), s2);                          \
            s3 = _mm256_fmadd_ps(LOAD(a + i + 24), LOAD(b + i + 24), s3);                          \
        }                                                                                          \
        for (; i + 8 <= n; i += 8)                                                                 \
            s0 = _mm256_fmadd_ps(LOAD(a + i), LOAD(b + i), s0);                                    \
        float sum = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));            \
        for (; i < n; i++)                                                                         \
            sum += CVT(a[i]) * CVT(b[i]);                                                          \
        return sum;                                                                                \
    }

#define CVT_F32(v) (v)
DEF_DOT(dot_f32, float, LOAD_F32, CVT_F32)
DEF_DOT(dot_f16, uint16_t, LOAD_F16, f16)
DEF_DOT(dot_bf16, uint16_t, LOAD_BF16, kq_bf16_to_f32)

/* Register tile KQ_TILE_R x KQ_TILE_T = 4 x 4: per step of 8, 4 weight and 4 activation loads
 * feed 16 FMAs. */
#define DEF_GEMM(name, T, LOAD, CVT)                                                               \
    static void name(int64_t n, const void *w, size_t w_stride, const void *x, size_t x_stride,    \
                     float *y, int64_t y_stride)                                                   \
    {                                                                                              \
        const T *a[4], *b[4];                                                                      \
        for (int k = 0; k < 4; k++) {                                                              \
            a[k] = (const T *)((const char *)w + k * w_stride);                                    \
            b[k] = (const T *)((const char *)x + k * x_stride);                                    \
        }                                                                                          \
        __m256 acc[4][4];                                                                          \
        for (int r = 0; r < 4; r++)                                                                \
            for (int t = 0; t < 4; t++)                                                            \
                acc[r][t] = _mm256_setzero_ps();                                                   \
        int64_t i = 0;                                                                             \
        for (; i + 8 <= n; i += 8) {                                                               \
            __m256 va[4], vb[4];                                                                   \
            for (int k = 0; k < 4; k++) {                                                          \
                va[k] = LOAD(a[k] + i);                                                            \
                vb[k] = LOAD(b[k] + i);                                                            \
            }                                                                                      \
            for (int r = 0; r < 4; r++)                                                            \
                for (int t = 0; t < 4; t++)                                                        \
                    acc[r][t] = _mm256_fmadd_ps(va[r], vb[t], acc[r][t]);                          \
        }                                                                                          \
        for (int r = 0; r < 4; r++)                                                                \
            for (int t = 0; t < 4; t++) {                                                          \
                float s = hsum8(acc[r][t]);                                                        \
                for (int64_t j = i; j < n; j++)                                                    \
                    s += CVT(a[r][j]) * CVT(b[t][j]);                                              \
                y[t * y_stride + r] = s;                                                           \
            }                                                                                      \
    }

DEF_GEMM(gemm_f32, float, LOAD_F32, CVT_F32)
DEF_GEMM(gemm_f16, uint16_t, LOAD_F16, f16)
DEF_GEMM(gemm_bf16, uint16_t, LOAD_BF16, kq_bf16_to_f32)

/* ---- integer helpers ---- */

/* 32 signed bytes times 32 signed bytes, summed in 8 int32 lanes (as floats). maddubs needs an
 * unsigned left side: |a| against b carrying a's sign. */
static inline __m256 mul_sum_i8(__m256i a, __m256i b)
{
    const __m256i ax = _mm256_sign_epi8(a, a);
    const __m256i sb = _mm256_sign_epi8(b, a);
    const __m256i p16 = _mm256_maddubs_epi16(ax, sb);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/* 32 unsigned bytes (< 128) times 32 signed bytes -> 8 int32 lanes. */
static inline __m256i mul_sum_u8_i8(__m256i a, __m256i b)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
}

/* The 32 nibbles of a Q4_0 block as bytes 0..15, in weight order. */
static inline __m256i q4_0_bytes(const uint8_t *qs)
{
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

/* ---- Q8_0 and Q4_0 against Q8_0 ---- */

static void dequant_q8_0(const void *src, float *dst, int64_t n)
{
    const struct kq_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / KQ_QK; i++) {
        const __m256 d = _mm256_set1_ps(f16(b[i].d));
        for (int j = 0; j < KQ_QK; j += 8) {
            __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b[i].qs + j)));
            _mm256_storeu_ps(dst + i * KQ_QK + j, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
        }
    }
}

static void dequant_q4_0(const void *src, float *dst, int64_t n)
{
    const struct kq_block_q4_0 *b = src;
    for (int64_t i = 0; i < n / KQ_QK; i++) {
        const __m256 d = _mm256_set1_ps(f16(b[i].d));
        const __m256i q = _mm256_sub_epi8(q4_0_bytes(b[i].qs), _mm256_set1_epi8(8));
        const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
        const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
        for (int k = 0; k < 4; k++) {
            __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[k]));
            _mm256_storeu_ps(dst + i * KQ_QK + 8 * k, _mm256_mul_ps(f, d));
        }
    }
}

/* Activation quantization to Q8_0 (the reference's arithmetic, vectorized: max|x|/127, then
 * round half away from zero of x/d). */
static void from_f32_q8_0(const float *x, void *dst, int64_t n)
{
    float *dd = dst;
    int8_t *qs = (int8_t *)dst + (n / KQ_QK) * (int64_t)sizeof(float);
    int32_t *sums = (int32_t *)(void *)(qs + n);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / KQ_QK; i++, x += KQ_QK) {
        __m256 v[4], m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        dd[i] = f16(kq_f32_to_f16(d));
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            __m256 s = _mm256_mul_ps(v[k], vid);
            /* roundf: add 0.5 with the sign of s, truncate (exact for |s| <= 127.5). */
            __m256 h = _mm256_or_ps(_mm256_and_ps(s, sign), _mm256_set1_ps(0.5f));
            __m256 r = _mm256_round_ps(_mm256_add_ps(s, h), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            q[k] = _mm256_cvttps_epi32(r);
        }
        /* Pack 32 int32 to 32 int8 in order: packs works within 128-bit lanes, then permute. */
        __m256i p01 = _mm256_packs_epi32(q[0], q[1]);
        __m256i p23 = _mm256_packs_epi32(q[2], q[3]);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)(qs + i * KQ_QK), p);
        __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
        int32_t sum = _mm_cvtsi128_si32(s4);
        memcpy(&sums[i], &sum, sizeof(sum));
    }
}

static float dot_q8_0(int64_t n, const void *w, const void *x)
{
    const struct kq_block_q8_0 *a = w;
    const float *xd = kq__q8x_d(x);
    const int8_t *xq = kq__q8x_qs(x, n);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / KQ_QK; i++) {
        const __m256 d = _mm256_set1_ps(f16(a[i].d) * xd[i]);
        const __m256i qa = _mm256_loadu_si256((const __m256i *)a[i].qs);
        const __m256i qb = _mm256_loadu_si256((const __m256i *)(xq + i * KQ_QK));
        acc = _mm256_fmadd_ps(d, mul_sum_i8(qa, qb), acc);
    }
    return hsum8(acc);
}

static float dot_q4_0(int64_t n, const void *w, const void *x)
{
    const struct kq_block_q4_0 *a = w;
    const float *xd = kq__q8x_d(x);
    const int8_t *xq = kq__q8x_qs(x, n);
    const __m256i off = _mm256_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / KQ_QK; i++) {
        const __m256 d = _mm256_set1_ps(f16(a[i].d) * xd[i]);
        const __m256i qa = _mm256_sub_epi8(q4_0_bytes(a[i].qs), off);
        const __m256i qb = _mm256_loadu_si256((const __m256i *)(xq + i * KQ_QK));
        acc = _mm256_fmadd_ps(d, mul_sum_i8(qa, qb), acc);
    }
    return hsum8(acc);
}

/* 4 weight rows x 4 tokens per block: unpack each weight block once, reuse it for 4 tokens. */
#define DEF_GEMM_Q(name, WB, UNPACK)                                                               \
    static void name(int64_t n, const void *w, size_t w_stride, const void *x, size_t x_stride,    \
                     float *y, int64_t y_stride)                                                   \
    {                                                                                              \
        const WB *a[4];                                                                            \
        const float *bd[4];                                                                        \
        const int8_t *bq[4];                                                                       \
        for (int k = 0; k < 4; k++) {                                                              \
            a[k] = (const WB *)((const char *)w + k * w_stride);                                   \
            bd[k] = kq__q8x_d((const char *)x + k * x_stride);                                     \
            bq[k] = kq__q8x_qs((const char *)x + k * x_stride, n);                                 \
        }                                                                                          \
        __m256 acc[4][4];                                                                          \
        for (int r = 0; r < 4; r++)                                                                \
            for (int t = 0; t < 4; t++)                                                            \
                acc[r][t] = _mm256_setzero_ps();                                                   \
        for (int64_t i = 0; i < n / KQ_QK; i++) {                                                  \
            __m256i qa[4], qb[4];                                                                  \
            float da[4], db[4];                                                                    \
            for (int k = 0; k < 4; k++) {                                                          \
                qa[k] = UNPACK(a[k][i].qs);                                                        \
                da[k] = f16(a[k][i].d);                                                            \
                qb[k] = _mm256_loadu_si256((const __m256i *)(bq[k] + i * KQ_QK));                  \
                db[k] = bd[k][i];                                                                  \
            }                                                                                      \
            for (int r = 0; r < 4; r++)                                                            \
                for (int t = 0; t < 4; t++)                                                        \
                    acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(da[r] * db[t]),                     \
                                                mul_sum_i8(qa[r], qb[t]), acc[r][t]);              \
        }                                                                                          \
        for (int r = 0; r < 4; r++)                                                                \
            for (int t = 0; t < 4; t++)                                                            \
                y[t * y_stride + r] = hsum8(acc[r][t]);                                            \
    }

#define UNPACK_Q8_0(qs) _mm256_loadu_si256((const __m256i *)(qs))
#define UNPACK_Q4_0(qs) _mm256_sub_epi8(q4_0_bytes(qs), _mm256_set1_epi8(8))
DEF_GEMM_Q(gemm_q8_0, struct kq_block_q8_0, UNPACK_Q8_0)
DEF_GEMM_Q(gemm_q4_0, struct kq_block_q4_0, UNPACK_Q4_0)

/* ---- K-quants against Q8_K ---- */

/* Scales and mins of the 8 sub-blocks of a Q4_K/Q5_K block, as 8 x int16 each. */
static inline void scales_mins_k4(const uint8_t *s, int16_t *sc, int16_t *m)
{
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (int16_t)((s[j + 8] & 0xF) | ((s[j] >> 6) << 4));
        m[j + 4] = (int16_t)((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
    }
}

/* sum_j m_j * (bsums[2j] + bsums[2j+1]) */
static inline int mins_dot(const int16_t *m, const int16_t *bsums)
{
    const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bsums),
                                      _mm_loadu_si128((const __m128i *)(bsums + 8)));
    __m128i p = _mm_madd_epi16(_mm_loadu_si128((const __m128i *)m), bs);
    p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0x4E));
    p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0xB1));
    return _mm_cvtsi128_si32(p);
}

static float dot_q4_K(int64_t n, const void *w, const void *x)
{
    const struct kq_block_q4_K *a = w;
    const struct kq_block_q8_K *b = x;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    float sum = 0;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        int16_t sc[8], mn[8];
        scales_mins_k4(a[i].scales, sc, mn);
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * c));
            const __m256i lo = _mm256_and_si256(q, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m256i y0 = _mm256_loadu_si256((const __m256i *)(b[i].qs + 64 * c));
            const __m256i y1 = _mm256_loadu_si256((const __m256i *)(b[i].qs + 64 * c + 32));
            __m256i p0 = _mm256_mullo_epi32(mul_sum_u8_i8(lo, y0), _mm256_set1_epi32(sc[2 * c]));
            __m256i p1 =
                _mm256_mullo_epi32(mul_sum_u8_i8(hi, y1), _mm256_set1_epi32(sc[2 * c + 1]));
            isum = _mm256_add_epi32(isum, _mm256_add_epi32(p0, p1));
        }
        const float d = f16(a[i].d) * b[i].d, dmin = f16(a[i].dmin) * b[i].d;
        sum += d * hsum8(_mm256_cvtepi32_ps(isum)) - dmin * mins_dot(mn, b[i].bsums);
    }
    return sum;
}

static float dot_q5_K(int64_t n, const void *w, const void *x)
{
    const struct kq_block_q5_K *a = w;
    const struct kq_block_q8_K *b = x;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    float sum = 0;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        int16_t sc[8], mn[8];
        scales_mins_k4(a[i].scales, sc, mn);
        const __m256i qh = _mm256_loadu_si256((const __m256i *)a[i].qh);
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * c));
            /* 5th bits: bit 2c and 2c+1 of each qh byte, moved to bit 4. */
            const __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one);
            const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_slli_epi16(h0, 4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                               _mm256_slli_epi16(h1, 4));
            const __m256i y0 = _mm256_loadu_si256((const __m256i *)(b[i].qs + 64 * c));
            const __m256i y1 = _mm256_loadu_si256((const __m256i *)(b[i].qs + 64 * c + 32));
            __m256i p0 = _mm256_mullo_epi32(mul_sum_u8_i8(lo, y0), _mm256_set1_epi32(sc[2 * c]));
            __m256i p1 =
                _mm256_mullo_epi32(mul_sum_u8_i8(hi, y1), _mm256_set1_epi32(sc[2 * c + 1]));
            isum = _mm256_add_epi32(isum, _mm256_add_epi32(p0, p1));
        }
        const float d = f16(a[i].d) * b[i].d, dmin = f16(a[i].dmin) * b[i].d;
        sum += d * hsum8(_mm256_cvtepi32_ps(isum)) - dmin * mins_dot(mn, b[i].bsums);
    }
    return sum;
}

/* Q6_K: q in 0..63 (unsigned, fits maddubs); the -32 offset comes back as 32 * sum(y) per
 * 16-group through the Q8_K bsums. */
static float dot_q6_K(int64_t n, const void *w, const void *x)
{
    const struct kq_block_q6_K *a = w;
    const struct kq_block_q8_K *b = x;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    float sum = 0;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        __m256i isum = _mm256_setzero_si256();
        int ioff = 0;
        for (int s = 0; s < 16; s++)
            ioff += a[i].scales[s] * b[i].bsums[s];
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = a[i].ql + 64 * h, *qhp = a[i].qh + 32 * h;
            const int8_t *sc = a[i].scales + 8 * h;
            const int8_t *yq = b[i].qs + 128 * h;
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)qhp);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
            q[1] = _mm256_or_si256(
                _mm256_and_si256(l1, m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
            q[2] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
            q[3] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
            for (int k = 0; k < 4; k++) {
                const __m256i y = _mm256_loadu_si256((const __m256i *)(yq + 32 * k));
                /* 16-bit pair sums, then per-16 scale: lanes 0-3 are l 0..15, 4-7 l 16..31. */
                const __m256i p16 = _mm256_maddubs_epi16(q[k], y);
                const __m256i scv = _mm256_setr_epi16(
                    sc[2 * k], sc[2 * k], sc[2 * k], sc[2 * k], sc[2 * k], sc[2 * k], sc[2 * k],
                    sc[2 * k], sc[2 * k + 1], sc[2 * k + 1], sc[2 * k + 1], sc[2 * k + 1],
                    sc[2 * k + 1], sc[2 * k + 1], sc[2 * k + 1], sc[2 * k + 1]);
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p16, scv));
            }
        }
        const float d = f16(a[i].d) * b[i].d;
        int total = 0;
        {
            __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(isum),
                                       _mm256_extracti128_si256(isum, 1));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
            s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
            total = _mm_cvtsi128_si32(s4);
        }
        sum += d * (float)(total - 32 * ioff);
    }
    return sum;
}

void kq_avx2_table(struct kq_ops *ops)
{
    memset(ops, 0, sizeof(*ops));
    ops->type[GGUF_T_F32] = (struct kq_type_ops){.vec_dot = dot_f32, .gemm = gemm_f32};
    ops->type[GGUF_T_F16] = (struct kq_type_ops){
        .dequant = dequant_f16, .from_float = from_f32_f16, .vec_dot = dot_f16, .gemm = gemm_f16};
    ops->type[GGUF_T_BF16] =
        (struct kq_type_ops){.dequant = dequant_bf16, .vec_dot = dot_bf16, .gemm = gemm_bf16};
    ops->type[GGUF_T_Q8_0] = (struct kq_type_ops){.dequant = dequant_q8_0,
                                                  .from_float = from_f32_q8_0,
                                                  .vec_dot = dot_q8_0,
                                                  .gemm = gemm_q8_0};
    ops->type[GGUF_T_Q4_0] = (struct kq_type_ops){.dequant = dequant_q4_0,
                                                  .from_float = from_f32_q8_0,
                                                  .vec_dot = dot_q4_0,
                                                  .gemm = gemm_q4_0};
    ops->type[GGUF_T_Q4_K] = (struct kq_type_ops){.vec_dot = dot_q4_K};
    ops->type[GGUF_T_Q5_K] = (struct kq_type_ops){.vec_dot = dot_q5_K};
    ops->type[GGUF_T_Q6_K] = (struct kq_type_ops){.vec_dot = dot_q6_K};
}

/* 12 independent FMA chains: enough to cover the FMA latency on two pipes. */
int64_t kq__fma_burn_avx2(int64_t iters)
{
    __m256 acc[12];
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < 12; k++)
        acc[k] = _mm256_set1_ps((float)k);
    for (int64_t i = 0; i < iters; i++)
        for (int k = 0; k < 12; k++)
            acc[k] = _mm256_fmadd_ps(acc[k], m, c);
    __m256 s = acc[0];
    for (int k = 1; k < 12; k++)
        s = _mm256_add_ps(s, acc[k]);
    volatile float sink = hsum8(s);
    (void)sink;
    return iters * 12 * 8 * 2;
}
