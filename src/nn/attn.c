/* attn.c - tiled causal attention over the decoder's KV cache and the fast exp (attn.h). The
 * kernels are in attn_kern.inc, compiled here three times: for AVX-512, for AVX2 (both with
 * function target attributes, picked at run time like the kq kernels) and in plain C. */
#include "nn/attn.h"

#include "nn/kq.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ATTN_X86 1
#endif

/* A worker's scratch, carved out of its attn_scratch_size() bytes. */
struct attn_scratch {
    float *kt;  // (d, BK) a key block decoded from F16
    float *qh;  // (rows, d) the tile's queries rounded to F16 (F16 cache)
    float *s;   // (rows, BK) scores, then weights
    float *o;   // (rows, dp) output accumulators
    float *m;   // (rows) running max
    double *l;  // (rows) running sum
};

#define ATTN_KR_MAX 4 // the largest KR below: rows are padded to a multiple of it

static size_t round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

void attn_dims_init(struct attn_dims *a, int n_head, int n_kv, int d, int n_ctx, bool f16)
{
    int group = n_head / n_kv;
    a->n_head = n_head;
    a->n_kv = n_kv;
    a->d = d;
    a->dp = (d + 15) / 16 * 16;
    a->n_blk = (n_ctx + ATTN_BK - 1) / ATTN_BK;
    a->f16 = f16;
    a->tile_t = group < ATTN_ROWS ? ATTN_ROWS / group : 1;
}

size_t attn_k_elems(const struct attn_dims *a)
{
    return (size_t)a->n_kv * a->n_blk * ATTN_BK * a->d;
}

size_t attn_v_elems(const struct attn_dims *a)
{
    return (size_t)a->n_blk * ATTN_BK * a->n_kv * a->dp;
}

static size_t scratch_rows(const struct attn_dims *a)
{
    size_t rows = (size_t)a->tile_t * (size_t)(a->n_head / a->n_kv);
    return (rows + ATTN_KR_MAX - 1) / ATTN_KR_MAX * ATTN_KR_MAX;
}

size_t attn_scratch_size(const struct attn_dims *a)
{
    size_t rows = scratch_rows(a);
    return round64((size_t)a->d * ATTN_BK * sizeof(float)) +
           round64(rows * (size_t)a->d * sizeof(float)) +
           round64(rows * ATTN_BK * sizeof(float)) + round64(rows * a->dp * sizeof(float)) +
           round64(rows * sizeof(float)) + round64(rows * sizeof(double));
}

static void scratch_carve(const struct attn_dims *a, unsigned char *p, struct attn_scratch *sc)
{
    size_t rows = scratch_rows(a);
    sc->kt = (float *)p;
    p += round64((size_t)a->d * ATTN_BK * sizeof(float));
    sc->qh = (float *)p;
    p += round64(rows * (size_t)a->d * sizeof(float));
    sc->s = (float *)p;
    p += round64(rows * ATTN_BK * sizeof(float));
    sc->o = (float *)p;
    p += round64(rows * a->dp * sizeof(float));
    sc->m = (float *)p;
    p += round64(rows * sizeof(float));
    sc->l = (double *)p;
}

void attn_ref(const struct attn_dims *a, const float *kr, const float *vr, const float *q,
              float *out, int T, int pos0, float scale)
{
    const int H = a->n_head, d = a->d, group = a->n_head / a->n_kv;
    const size_t kvd = (size_t)a->n_kv * d, qd = (size_t)H * d;

    for (int t = 0; t < T; t++) {
        for (int h = 0; h < H; h++) {
            const float *qr = q + (size_t)t * qd + (size_t)h * d;
            float *o = out + (size_t)t * qd + (size_t)h * d;
            int n_pos = pos0 + t + 1, kvh = h / group;
            float max = -INFINITY;
            double sum = 0;
            for (int p = 0; p < n_pos; p++) {
                const float *kp = kr + (size_t)p * kvd + (size_t)kvh * d;
                float s = 0;
                for (int i = 0; i < d; i++)
                    s += qr[i] * kp[i];
                max = s * scale > max ? s * scale : max;
            }
            for (int i = 0; i < d; i++)
                o[i] = 0;
            for (int p = 0; p < n_pos; p++) {
                const float *kp = kr + (size_t)p * kvd + (size_t)kvh * d;
                const float *vp = vr + (size_t)p * kvd + (size_t)kvh * d;
                float s = 0;
                for (int i = 0; i < d; i++)
                    s += qr[i] * kp[i];
                float e = expf(s * scale - max);
                sum += e;
                for (int i = 0; i < d; i++)
                    o[i] += e * vp[i];
            }
            for (int i = 0; i < d; i++)
                o[i] = (float)(o[i] / sum);
        }
    }
}

/* ---- plain C ---- */

static inline int32_t f2i(float f)
{
    int32_t i;
    memcpy(&i, &f, sizeof(i));
    return i;
}

static inline float i2f(int32_t i)
{
    float f;
    memcpy(&f, &i, sizeof(f));
    return f;
}

static inline float maxf(float a, float b)
{
    return a > b ? a : b;
}

static inline float minf(float a, float b)
{
    return a < b ? a : b;
}

#define SFX(name) name##_plain
#define TGT
#define V float
#define VI int32_t
#define VW 1
#define KR 1
#define VC 8
#define VLOAD(p) (*(p))
#define VSTORE(p, x) (*(p) = (x))
#define VSET1(x) (x)
#define VZERO() 0.0f
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VMUL(a, b) ((a) * (b))
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VDIV(a, b) ((a) / (b))
#define VMAX(a, b) maxf(a, b)
#define VMIN(a, b) minf(a, b)
#define VLOADH(p) kq_f16_to_f32(*(p))
#define VROUNDH(x) kq_f16_to_f32(kq_f32_to_f16(x))
#define VSTOREH(p, x) (*(p) = kq_f32_to_f16(x))
#define HMAX(x) (x)
#define VANYGT(x, f) ((x) > (f))
#define HSUM(x) (x)
#define VCASTI(x) f2i(x)
#define VCASTF(x) i2f(x)
#define VIADD(a, b) ((a) + (b))
#define VISUB(a, b) ((a) - (b))
#define VISET1(x) (x)
#define VISRA1(x) ((x) >> 1)
#define VISLL23(x) ((int32_t)((uint32_t)(x) << 23))
#include "nn/attn_kern.inc"

#ifdef ATTN_X86

/* ---- AVX2 ---- */

#define TGT_AVX2 __attribute__((target("avx2,fma,f16c")))

TGT_AVX2 static inline float hmax_avx2(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

TGT_AVX2 static inline float hsum_avx2(__m256 v)
{
    __m128 m = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_add_ps(m, _mm_movehl_ps(m, m));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

#define SFX(name) name##_avx2
#define TGT TGT_AVX2
#define V __m256
#define VI __m256i
#define VW 8
#define KR 2
#define VC 4
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, x) _mm256_storeu_ps(p, x)
#define VSET1(x) _mm256_set1_ps(x)
#define VZERO() _mm256_setzero_ps()
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define VDIV(a, b) _mm256_div_ps(a, b)
#define VMAX(a, b) _mm256_max_ps(a, b)
#define VMIN(a, b) _mm256_min_ps(a, b)
#define VLOADH(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define VROUNDH(x) _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT))
#define VSTOREH(p, x)                                                                              \
    _mm_storeu_si128((__m128i *)(void *)(p), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT))
#define HMAX(x) hmax_avx2(x)
#define VANYGT(x, f) (_mm256_movemask_ps(_mm256_cmp_ps(x, _mm256_set1_ps(f), _CMP_GT_OQ)) != 0)
#define HSUM(x) hsum_avx2(x)
#define VCASTI(x) _mm256_castps_si256(x)
#define VCASTF(x) _mm256_castsi256_ps(x)
#define VIADD(a, b) _mm256_add_epi32(a, b)
#define VISUB(a, b) _mm256_sub_epi32(a, b)
#define VISET1(x) _mm256_set1_epi32(x)
#define VISRA1(x) _mm256_srai_epi32(x, 1)
#define VISLL23(x) _mm256_slli_epi32(x, 23)
#include "nn/attn_kern.inc"

/* ---- AVX-512 ---- */

#define TGT_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,f16c")))

#define SFX(name) name##_avx512
#define TGT TGT_AVX512
#define V __m512
#define VI __m512i
#define VW 16
#define KR 4
#define VC 4
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, x) _mm512_storeu_ps(p, x)
#define VSET1(x) _mm512_set1_ps(x)
#define VZERO() _mm512_setzero_ps()
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VDIV(a, b) _mm512_div_ps(a, b)
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VMIN(a, b) _mm512_min_ps(a, b)
#define VLOADH(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p)))
#define VROUNDH(x) _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT))
#define VSTOREH(p, x)                                                                              \
    _mm256_storeu_si256((__m256i *)(void *)(p), _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT))
#define HMAX(x) _mm512_reduce_max_ps(x)
#define VANYGT(x, f) (_mm512_cmp_ps_mask(x, _mm512_set1_ps(f), _CMP_GT_OQ) != 0)
#define HSUM(x) _mm512_reduce_add_ps(x)
#define VCASTI(x) _mm512_castps_si512(x)
#define VCASTF(x) _mm512_castsi512_ps(x)
#define VIADD(a, b) _mm512_add_epi32(a, b)
#define VISUB(a, b) _mm512_sub_epi32(a, b)
#define VISET1(x) _mm512_set1_epi32(x)
#define VISRA1(x) _mm512_srai_epi32(x, 1)
#define VISLL23(x) _mm512_slli_epi32(x, 23)
#include "nn/attn_kern.inc"

#endif /* ATTN_X86 */

/* ---- dispatch ---- */

struct attn_kernels {
    void (*tile)(const struct attn_job *job, int kvh, int t0, int t1, struct attn_scratch *sc);
    void (*exp_n)(const float *x, float *y, size_t n);
    void (*silu_mul_n)(float *g, const float *u, size_t n);
    void (*to_f16)(const float *x, uint16_t *y, int n);
};

static const struct attn_kernels kern_plain = {tile_plain, exp_n_plain, silu_mul_n_plain,
                                              to_f16_plain};
#ifdef ATTN_X86
static const struct attn_kernels kern_avx2 = {tile_avx2, exp_n_avx2, silu_mul_n_avx2, to_f16_avx2};
static const struct attn_kernels kern_avx512 = {tile_avx512, exp_n_avx512, silu_mul_n_avx512,
                                               to_f16_avx512};
#endif

/* The set matching kq's kernels (kq_isa(), which TWIN_KQ and kq_set_isa choose). */
static const struct attn_kernels *kernels(void)
{
#ifdef ATTN_X86
    const char *isa = kq_isa();
    if (!strncmp(isa, "avx512", 6))
        return &kern_avx512;
    if (!strcmp(isa, "avx2"))
        return &kern_avx2;
#endif
    return &kern_plain;
}

void attn_run(void *arg, int ith, int nth)
{
    const struct attn_job *job = arg;
    const struct attn_dims *a = job->a;
    const struct attn_kernels *k = kernels();
    long n_tiles = (job->T + a->tile_t - 1) / a->tile_t, n_items = n_tiles * a->n_kv;
    struct attn_scratch sc;

    scratch_carve(a, job->scratch + (size_t)ith * attn_scratch_size(a), &sc);
    /* items in turn (not in slices): tiles late in the chunk see more keys, and taking every
     * nth item gives each worker a like share of early and late ones */
    for (long it = ith; it < n_items; it += nth) {
        int tile = (int)(it / a->n_kv), kvh = (int)(it % a->n_kv);
        int t0 = tile * a->tile_t, t1 = t0 + a->tile_t < job->T ? t0 + a->tile_t : job->T;
        k->tile(job, kvh, t0, t1, &sc);
    }
}

void attn_store(const struct attn_dims *a, void *k, void *v, int pos0, int T, const float *kc,
                const float *vc)
{
    const int d = a->d, n_kv = a->n_kv;
    const size_t kvd = (size_t)n_kv * d;
    void (*to_f16)(const float *x, uint16_t *y, int n) = kernels()->to_f16;
    uint16_t kh[256];

    for (int t = 0; t < T; t++) {
        int p = pos0 + t;
        for (int h = 0; h < n_kv; h++) {
            const float *kr = kc + (size_t)t * kvd + (size_t)h * d;
            const float *vr = vc + (size_t)t * kvd + (size_t)h * d;
            size_t ko = ((size_t)h * a->n_blk + (size_t)(p / ATTN_BK)) * d * ATTN_BK + p % ATTN_BK;
            size_t vo = ((size_t)h * a->n_blk * ATTN_BK + (size_t)p) * a->dp;
            if (!a->f16) {
                for (int i = 0; i < d; i++)
                    ((float *)k)[ko + (size_t)i * ATTN_BK] = kr[i];
                memcpy((float *)v + vo, vr, (size_t)d * sizeof(float));
                continue;
            }
            to_f16(vr, (uint16_t *)v + vo, d);
            for (int i0 = 0; i0 < d; i0 += 256) { // keys through a small buffer: they go strided
                int n = d - i0 < 256 ? d - i0 : 256;
                to_f16(kr + i0, kh, n);
                for (int i = 0; i < n; i++)
                    ((uint16_t *)k)[ko + (size_t)(i0 + i) * ATTN_BK] = kh[i];
            }
        }
    }
}

void attn_exp(const float *x, float *y, size_t n)
{
    kernels()->exp_n(x, y, n);
}

void attn_silu_mul(float *g, const float *u, size_t n)
{
    kernels()->silu_mul_n(g, u, n);
}
