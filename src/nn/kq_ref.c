/* kq_ref.c - the reference (scalar) kernels: block decoders exact to ggml's, quantizers that
 * follow llama.cpp's reference quantizers step by step (no importance matrix), and the dot
 * products of weight rows with activations converted to the weight's vec type (kq_impl.h).
 * These are the definitions the SIMD versions are tested against; keep them plain.
 */
#include "nn/kq_impl.h"

#include <math.h>
#include <string.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define GROUP_MAX_EPS 1e-15f

/* ---- conversions ---- */

static void dequant_f32(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void dequant_f16(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = kq_f16_to_f32(h[i]);
}

static void dequant_bf16(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = kq_bf16_to_f32(h[i]);
}

static void quant_f32(const float *x, void *dst, int64_t n)
{
    memcpy(dst, x, (size_t)n * sizeof(float));
}

static void quant_f16(const float *x, void *dst, int64_t n)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++)
        h[i] = kq_f32_to_f16(x[i]);
}

static void quant_bf16(const float *x, void *dst, int64_t n)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++)
        h[i] = kq_f32_to_bf16(x[i]);
}

/* ---- block decoders ---- */

void kq_dequant_q8_0_ref(const void *src, float *dst, int64_t n)
{
    const struct kq_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / KQ_QK; i++) {
        const float d = kq_f16_to_f32(b[i].d);
        for (int j = 0; j < KQ_QK; j++)
            dst[i * KQ_QK + j] = b[i].qs[j] * d;
    }
}

void kq_dequant_q4_0_ref(const void *src, float *dst, int64_t n)
{
    const struct kq_block_q4_0 *b = src;
    for (int64_t i = 0; i < n / KQ_QK; i++) {
        const float d = kq_f16_to_f32(b[i].d);
        for (int j = 0; j < KQ_QK / 2; j++) {
            dst[i * KQ_QK + j] = ((b[i].qs[j] & 0x0F) - 8) * d;
            dst[i * KQ_QK + j + KQ_QK / 2] = ((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

/* The 6-bit scale and min of sub-block j of a Q4_K/Q5_K super-block. */
static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

void kq_dequant_q4_K_ref(const void *src, float *dst, int64_t n)
{
    const struct kq_block_q4_K *b = src;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        const float d = kq_f16_to_f32(b[i].d);
        const float dmin = kq_f16_to_f32(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int c = 0; c < 4; c++, q += 32) {
            uint8_t sc, m;
            scale_min_k4(2 * c, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            scale_min_k4(2 * c + 1, b[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++)
                *dst++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++)
                *dst++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

void kq_dequant_q5_K_ref(const void *src, float *dst, int64_t n)
{
    const struct kq_block_q5_K *b = src;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        const float d = kq_f16_to_f32(b[i].d);
        const float dmin = kq_f16_to_f32(b[i].dmin);
        const uint8_t *ql = b[i].qs, *qh = b[i].qh;
        for (int c = 0; c < 4; c++, ql += 32) {
            const uint8_t u1 = (uint8_t)(1 << (2 * c)), u2 = (uint8_t)(2 << (2 * c));
            uint8_t sc, m;
            scale_min_k4(2 * c, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            scale_min_k4(2 * c + 1, b[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++)
                *dst++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *dst++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

void kq_dequant_q6_K_ref(const void *src, float *dst, int64_t n)
{
    const struct kq_block_q6_K *b = src;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        const float d = kq_f16_to_f32(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int h = 0; h < 2; h++, dst += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                dst[l] = d * sc[is] * q1;
                dst[l + 32] = d * sc[is + 2] * q2;
                dst[l + 64] = d * sc[is + 4] * q3;
                dst[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

/* ---- quantizers (llama.cpp's reference algorithms, no importance matrix) ---- */

/* Round to nearest, ties to even, for |v| < 2^22: adding 1.5*2^23 leaves the integer in the low
 * mantissa bits (the trick llama.cpp uses, so results match it bit for bit). */
static inline int nearest_int(float v)
{
    float f = v + 12582912.f;
    int32_t i;
    memcpy(&i, &f, sizeof(i));
    return (i & 0x007fffff) - 0x00400000;
}

void kq_quant_q8_0_ref(const float *x, void *dst, int64_t n)
{
    struct kq_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / KQ_QK; i++, x += KQ_QK) {
        float amax = 0.0f;
        for (int j = 0; j < KQ_QK; j++)
            amax = MAX(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = kq_f32_to_f16(d);
        for (int j = 0; j < KQ_QK; j++)
            b[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

void kq_quant_q4_0_ref(const float *x, void *dst, int64_t n)
{
    struct kq_block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / KQ_QK; i++, x += KQ_QK) {
        float amax = 0.0f, max = 0.0f; // the value of largest magnitude, with its sign
        for (int j = 0; j < KQ_QK; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        b[i].d = kq_f32_to_f16(d);
        for (int j = 0; j < KQ_QK / 2; j++) {
            /* x*id + 8.5 truncated toward zero is round-half-up of x*id + 8, at most 16. */
            const uint8_t q0 = (uint8_t)MIN(15, (int8_t)(x[j] * id + 8.5f));
            const uint8_t q1 = (uint8_t)MIN(15, (int8_t)(x[j + KQ_QK / 2] * id + 8.5f));
            b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* Scale and min for n values with weights w in nmax+1 levels: starts from the min/max grid, then
 * tries nstep+1 grids around it, fitting (scale, min) by weighted least squares on each, and
 * keeps the one with the least weighted squared error. Returns the scale, *the_min = -min. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep)
{
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)MAX(0, MIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = MAX(0, MIN(nmax, l));
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                cur_error += w[i] * (diff * diff);
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Symmetric scale for n values in [-nmax, nmax-1] (rmse_type 1 of llama.cpp: weights x^2),
 * searching 18 grids around nmax/max. L gets l + nmax. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = MAX(-nmax, MIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0)
            continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = MAX(-nmax, MIN(nmax - 1, l));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + MAX(-nmax, MIN(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Packs 8 sub-block (scale, min) 6-bit pairs into the 12 scale bytes of Q4_K/Q5_K. */
static void pack_scales_k4(uint8_t *dst, const uint8_t *ls, const uint8_t *lm)
{
    memset(dst, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            dst[j] = ls[j];
            dst[j + 4] = lm[j];
        } else {
            dst[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            dst[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            dst[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* Shared by Q4_K (nmax 15) and Q5_K (nmax 31): per-sub-block scales/mins, quantized to 6 bits
 * against the super-block's largest, then every weight re-quantized with the stored scales. */
static void quant_kx(const float *x, uint16_t *d_out, uint16_t *dmin_out, uint8_t *scales,
                     uint8_t *L, int nmax, float rmin, float rdelta, int nstep)
{
    float mins[8], sc[8], weights[32];
    uint8_t Laux[32], ls[8], lm[8];
    float max_scale = 0, max_min = 0;

    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            weights[l] = av_x + fabsf(x[32 * j + l]);
        sc[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin,
                                 rdelta, nstep);
        if (sc[j] > max_scale)
            max_scale = sc[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; j++) {
        /* Stored as uint8_t before the clamp, as llama.cpp does. */
        ls[j] = (uint8_t)MIN(63, (uint8_t)nearest_int(inv_scale * sc[j]));
        lm[j] = (uint8_t)MIN(63, (uint8_t)nearest_int(inv_min * mins[j]));
    }
    pack_scales_k4(scales, ls, lm);
    *d_out = kq_f32_to_f16(max_scale / 63.f);
    *dmin_out = kq_f32_to_f16(max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        scale_min_k4(j, scales, &s, &m);
        const float d = kq_f16_to_f32(*d_out) * s;
        if (!d)
            continue;
        const float dm = kq_f16_to_f32(*dmin_out) * m;
        for (int ii = 0; ii < 32; ii++) {
            int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)MAX(0, MIN(nmax, l));
        }
    }
}

void kq_quant_q4_K_ref(const float *x, void *dst, int64_t n)
{
    struct kq_block_q4_K *b = dst;
    uint8_t L[KQ_QK_K];
    for (int64_t i = 0; i < n / KQ_QK_K; i++, x += KQ_QK_K) {
        quant_kx(x, &b[i].d, &b[i].dmin, b[i].scales, L, 15, -1.f, 0.1f, 20);
        uint8_t *q = b[i].qs;
        for (int j = 0; j < KQ_QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

void kq_quant_q5_K_ref(const float *x, void *dst, int64_t n)
{
    struct kq_block_q5_K *b = dst;
    uint8_t L[KQ_QK_K];
    for (int64_t i = 0; i < n / KQ_QK_K; i++, x += KQ_QK_K) {
        quant_kx(x, &b[i].d, &b[i].dmin, b[i].scales, L, 31, -0.5f, 0.1f, 15);
        uint8_t *qh = b[i].qh, *ql = b[i].qs;
        memset(qh, 0, sizeof(b[i].qh));
        uint8_t m1 = 1, m2 = 2;
        for (int c = 0; c < KQ_QK_K; c += 64, ql += 32) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[c + j], l2 = L[c + j + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 = (uint8_t)(m1 << 2);
            m2 = (uint8_t)(m2 << 2);
        }
    }
}

void kq_quant_q6_K_ref(const float *x, void *dst, int64_t n)
{
    struct kq_block_q6_K *b = dst;
    int8_t L[KQ_QK_K];
    float scales[KQ_QK_K / 16];
    for (int64_t i = 0; i < n / KQ_QK_K; i++, x += KQ_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < KQ_QK_K / 16; ib++) {
            scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            if (fabsf(scales[ib]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&b[i], 0, sizeof(b[i]));
            continue;
        }
        float iscale = -128.f / max_scale;
        b[i].d = kq_f32_to_f16(1 / iscale);
        for (int ib = 0; ib < KQ_QK_K / 16; ib++)
            b[i].scales[ib] = (int8_t)MIN(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < KQ_QK_K / 16; j++) {
            float d = kq_f16_to_f32(b[i].d) * b[i].scales[j];
            if (!d)
                continue;
            for (int ii = 0; ii < 16; ii++) {
                int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(MAX(-32, MIN(31, l)) + 32);
            }
        }
        uint8_t *ql = b[i].ql, *qh = b[i].qh;
        for (int j = 0; j < KQ_QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

void kq_quant_q8_K_ref(const float *x, void *dst, int64_t n)
{
    struct kq_block_q8_K *b = dst;
    for (int64_t i = 0; i < n / KQ_QK_K; i++, x += KQ_QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < KQ_QK_K; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        if (!amax) {
            memset(&b[i], 0, sizeof(b[i]));
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < KQ_QK_K; j++)
            b[i].qs[j] = (int8_t)MIN(127, nearest_int(iscale * x[j]));
        for (int j = 0; j < KQ_QK_K / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++)
                sum += b[i].qs[j * 16 + ii];
            b[i].bsums[j] = (int16_t)sum;
        }
        b[i].d = 1 / iscale;
    }
}

/* Q8_0 quantization as llama.cpp's reference does it, stored as Q8_0X (kq_impl.h). */
void kq_quant_q8_0x_ref(const float *x, void *dst, int64_t n)
{
    float *d = dst;
    int8_t *qs = (int8_t *)dst + (n / KQ_QK) * (int64_t)sizeof(float);
    int32_t *sums = (int32_t *)(void *)(qs + n);
    for (int64_t i = 0; i < n / KQ_QK; i++, x += KQ_QK) {
        float amax = 0.0f;
        for (int j = 0; j < KQ_QK; j++)
            amax = MAX(amax, fabsf(x[j]));
        const float di = amax / 127;
        const float id = di ? 1.0f / di : 0.0f;
        d[i] = kq_f16_to_f32(kq_f32_to_f16(di));
        int32_t sum = 0;
        for (int j = 0; j < KQ_QK; j++) {
            qs[i * KQ_QK + j] = (int8_t)roundf(x[j] * id);
            sum += qs[i * KQ_QK + j];
        }
        memcpy(&sums[i], &sum, sizeof(sum));
    }
}

/* ---- dot products (weights x activations in the vec type) ---- */

static float dot_f32(int64_t n, const void *w, const void *x)
{
    const float *a = w, *b = x;
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)a[i] * b[i];
    return (float)sum;
}

static float dot_f16(int64_t n, const void *w, const void *x)
{
    const uint16_t *a = w, *b = x;
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)kq_f16_to_f32(a[i]) * kq_f16_to_f32(b[i]);
    return (float)sum;
}

static float dot_bf16(int64_t n, const void *w, const void *x)
{
    const uint16_t *a = w, *b = x;
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)kq_bf16_to_f32(a[i]) * kq_bf16_to_f32(b[i]);
    return (float)sum;
}

static float dot_q8_0(int64_t n, const void *w, const void *x)
{
    const struct kq_block_q8_0 *a = w;
    const float *xd = kq__q8x_d(x);
    const int8_t *xq = kq__q8x_qs(x, n);
    float sum = 0;
    for (int64_t i = 0; i < n / KQ_QK; i++) {
        int isum = 0;
        for (int j = 0; j < KQ_QK; j++)
            isum += a[i].qs[j] * xq[i * KQ_QK + j];
        sum += isum * (kq_f16_to_f32(a[i].d) * xd[i]);
    }
    return sum;
}

static float dot_q4_0(int64_t n, const void *w, const void *x)
{
    const struct kq_block_q4_0 *a = w;
    const float *xd = kq__q8x_d(x);
    const int8_t *xq = kq__q8x_qs(x, n);
    float sum = 0;
    for (int64_t i = 0; i < n / KQ_QK; i++) {
        const int8_t *q = xq + i * KQ_QK;
        int isum = 0;
        for (int j = 0; j < KQ_QK / 2; j++) {
            isum += ((a[i].qs[j] & 0xF) - 8) * q[j];
            isum += ((a[i].qs[j] >> 4) - 8) * q[j + KQ_QK / 2];
        }
        sum += isum * (kq_f16_to_f32(a[i].d) * xd[i]);
    }
    return sum;
}

/* Q4_K/Q5_K: sum_j sc_j * <q_j, y_j> scaled by d, minus the mins through the Q8_K group sums. */
static float dot_kx(const uint8_t *scales, uint16_t dh, uint16_t dminh, const uint8_t *q,
                    const struct kq_block_q8_K *y)
{
    int isum = 0, imin = 0;
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        scale_min_k4(j, scales, &sc, &m);
        int s = 0;
        for (int l = 0; l < 32; l++)
            s += q[32 * j + l] * y->qs[32 * j + l];
        isum += sc * s;
        imin += m * (y->bsums[2 * j] + y->bsums[2 * j + 1]);
    }
    return kq_f16_to_f32(dh) * y->d * isum - kq_f16_to_f32(dminh) * y->d * imin;
}

static float dot_q4_K(int64_t n, const void *w, const void *x)
{
    const struct kq_block_q4_K *a = w;
    const struct kq_block_q8_K *b = x;
    uint8_t q[KQ_QK_K];
    float sum = 0;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                q[64 * c + l] = a[i].qs[32 * c + l] & 0xF;
                q[64 * c + 32 + l] = a[i].qs[32 * c + l] >> 4;
            }
        sum += dot_kx(a[i].scales, a[i].d, a[i].dmin, q, &b[i]);
    }
    return sum;
}

static float dot_q5_K(int64_t n, const void *w, const void *x)
{
    const struct kq_block_q5_K *a = w;
    const struct kq_block_q8_K *b = x;
    uint8_t q[KQ_QK_K];
    float sum = 0;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                const uint8_t h = a[i].qh[l];
                q[64 * c + l] = (uint8_t)((a[i].qs[32 * c + l] & 0xF) | (((h >> (2 * c)) & 1) << 4));
                q[64 * c + 32 + l] =
                    (uint8_t)((a[i].qs[32 * c + l] >> 4) | (((h >> (2 * c + 1)) & 1) << 4));
            }
        sum += dot_kx(a[i].scales, a[i].d, a[i].dmin, q, &b[i]);
    }
    return sum;
}

static float dot_q6_K(int64_t n, const void *w, const void *x)
{
    const struct kq_block_q6_K *a = w;
    const struct kq_block_q8_K *b = x;
    int8_t q[KQ_QK_K];
    float sum = 0;
    for (int64_t i = 0; i < n / KQ_QK_K; i++) {
        const uint8_t *ql = a[i].ql, *qh = a[i].qh;
        for (int h = 0; h < 2; h++, ql += 64, qh += 32)
            for (int l = 0; l < 32; l++) {
                int8_t *o = q + 128 * h;
                o[l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                o[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                o[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                o[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        int isum = 0;
        for (int s = 0; s < 16; s++) {
            int si = 0;
            for (int l = 0; l < 16; l++)
                si += q[16 * s + l] * b[i].qs[16 * s + l];
            isum += a[i].scales[s] * si;
        }
        sum += kq_f16_to_f32(a[i].d) * b[i].d * isum;
    }
    return sum;
}

void kq_ref_table(struct kq_ops *ops)
{
    memset(ops, 0, sizeof(*ops));
    ops->type[GGUF_T_F32] =
        (struct kq_type_ops){.dequant = dequant_f32, .from_float = quant_f32, .vec_dot = dot_f32};
    ops->type[GGUF_T_F16] =
        (struct kq_type_ops){.dequant = dequant_f16, .from_float = quant_f16, .vec_dot = dot_f16};
    ops->type[GGUF_T_BF16] = (struct kq_type_ops){
        .dequant = dequant_bf16, .from_float = quant_bf16, .vec_dot = dot_bf16};
    ops->type[GGUF_T_Q8_0] = (struct kq_type_ops){
        .dequant = kq_dequant_q8_0_ref, .from_float = kq_quant_q8_0x_ref, .vec_dot = dot_q8_0};
    ops->type[GGUF_T_Q4_0] = (struct kq_type_ops){
        .dequant = kq_dequant_q4_0_ref, .from_float = kq_quant_q8_0x_ref, .vec_dot = dot_q4_0};
    ops->type[GGUF_T_Q4_K] = (struct kq_type_ops){
        .dequant = kq_dequant_q4_K_ref, .from_float = kq_quant_q8_K_ref, .vec_dot = dot_q4_K};
    ops->type[GGUF_T_Q5_K] = (struct kq_type_ops){
        .dequant = kq_dequant_q5_K_ref, .from_float = kq_quant_q8_K_ref, .vec_dot = dot_q5_K};
    ops->type[GGUF_T_Q6_K] = (struct kq_type_ops){
        .dequant = kq_dequant_q6_K_ref, .from_float = kq_quant_q8_K_ref, .vec_dot = dot_q6_K};
}
