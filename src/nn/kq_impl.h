/* kq_impl.h - internals shared by kq*.c and nn/arch/<isa>/kq_*.c: block layouts, the per-type
 * kernel table and the reference kernels.
 *
 * Every weight type has a "vec type", the format activations are converted to before the dot
 * product (as llama.cpp does): F32 -> F32, F16 -> F16, BF16 -> BF16, Q8_0 and Q4_0 -> Q8_0,
 * Q4_K, Q5_K and Q6_K -> Q8_K. vec_dot(n, w, x) then multiplies one weight row with one converted
 * activation row; with integer quants the inner sums are exact integers, so a fast kernel differs
 * from its reference only in the order of float additions of per-block partial results.
 */
#ifndef TW_KQ_IMPL_H
#define TW_KQ_IMPL_H

#include "nn/kq.h"

#include <stddef.h>
#include <stdint.h>

#define KQ_QK 32   // weights per Q8_0 / Q4_0 block
#define KQ_QK_K 256 // weights per K-quant super-block

struct kq_block_q8_0 {
    uint16_t d;         // fp16 scale
    int8_t qs[KQ_QK];   // weight = d * q
};
struct kq_block_q4_0 {
    uint16_t d;           // fp16 scale
    uint8_t qs[KQ_QK / 2]; // byte j: weight j in the low nibble, weight j+16 in the high one
};
struct kq_block_q4_K {
    uint16_t d;              // fp16 super-scale
    uint16_t dmin;           // fp16 super-min
    uint8_t scales[12];      // 8 x (6-bit scale, 6-bit min), packed (engine-notes §7)
    uint8_t qs[KQ_QK_K / 2]; // 4 chunks of 32 bytes: low nibbles sub-block 2c, high 2c+1
};
struct kq_block_q5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];      // as Q4_K
    uint8_t qh[KQ_QK_K / 8]; // bit 2c (2c+1) of qh[l]: 5th bit of weight l of sub-block 2c (2c+1)
    uint8_t qs[KQ_QK_K / 2]; // low 4 bits, laid out as Q4_K
};
struct kq_block_q6_K {
    uint8_t ql[KQ_QK_K / 2];      // low 4 bits
    uint8_t qh[KQ_QK_K / 4];      // high 2 bits
    int8_t scales[KQ_QK_K / 16]; // 16 sub-block scales
    uint16_t d;                   // fp16 super-scale, at the end
};
struct kq_block_q8_K {
    float d;                      // f32 scale
    int8_t qs[KQ_QK_K];           // activation = d * q
    int16_t bsums[KQ_QK_K / 16];  // sums of groups of 16 qs
};

_Static_assert(sizeof(struct kq_block_q8_0) == 34, "q8_0 block layout");
_Static_assert(sizeof(struct kq_block_q4_0) == 18, "q4_0 block layout");
_Static_assert(sizeof(struct kq_block_q4_K) == 144, "q4_K block layout");
_Static_assert(sizeof(struct kq_block_q5_K) == 176, "q5_K block layout");
_Static_assert(sizeof(struct kq_block_q6_K) == 210, "q6_K block layout");
_Static_assert(sizeof(struct kq_block_q8_K) == 292, "q8_K block layout");

/* Activations for Q8_0/Q4_0 weights ("Q8_0X"). llama.cpp quantizes them to Q8_0 blocks; we keep
 * exactly its numbers (each scale is the Q8_0 block's f16 scale, widened to f32) in a layout that
 * SIMD loads well: a row of n values (n % 32 == 0) is its n/32 f32 scales, its n int8 quants (so
 * that two or more blocks are one contiguous load) and the n/32 int32 sums of each block's quants
 * (so that kernels can take offsets out of the inner loop: sum (q-8)*y = sum q*y - 8*sum y).
 *
 *   +---------------------+-------------------------------+---------------------+
 *   | d[0] ... d[nb-1]    | q[0] .................. q[n-1] | s[0] ... s[nb-1]    |
 *   | f32                 | int8                          | int32               |
 *   +---------------------+-------------------------------+---------------------+
 */
#define KQ_T_Q8_0X ((enum gguf_ttype)64)
static inline const float *kq__q8x_d(const void *row)
{
    return (const float *)row;
}
static inline const int8_t *kq__q8x_qs(const void *row, int64_t n)
{
    return (const int8_t *)row + (n / KQ_QK) * (int64_t)sizeof(float);
}
static inline const int32_t *kq__q8x_s(const void *row, int64_t n)
{
    return (const int32_t *)(const void *)((const int8_t *)row +
                                           (n / KQ_QK) * (int64_t)sizeof(float) + n);
}

/* Kernels of one weight type. 'gemm' is optional: it computes the full tile
 *     y[t*y_stride + r] = vec_dot(n, w + r*w_stride, x + t*x_stride)   r < KQ_TILE_R, t < KQ_TILE_T
 * reusing loaded weights and activations (register tiling); edges go through vec_dot. */
#define KQ_TILE_R 4
#define KQ_TILE_T 4
struct kq_type_ops {
    void (*dequant)(const void *src, float *dst, int64_t n);
    void (*from_float)(const float *x, void *dst, int64_t n); // to the vec type
    float (*vec_dot)(int64_t n, const void *w, const void *x);
    void (*gemm)(int64_t n, const void *w, size_t w_stride, const void *x, size_t x_stride,
                 float *y, int64_t y_stride);
    /* Optional panel path for prompt processing: pack16 rearranges KQ_PANEL_R weight rows into
     * a panel of kq__panel_bytes(n) bytes once, panel16 then runs n_tok tokens over it:
     *     y[t*y_stride + r] = vec_dot(n, w + r*w_stride, x + t*x_stride)   r < 16, t < n_tok */
    void (*pack16)(int64_t n, const void *w, size_t w_stride, void *panel);
    void (*panel16)(int64_t n, const void *panel, const void *x, size_t x_stride, int64_t n_tok,
                    float *y, int64_t y_stride);
    /* Optional repacked weights (kq_pack): groups of KQ_PANEL_R rows in the x16 layout below.
     * gemv_x16 multiplies one group with n_tok (1..KQ_X16_TOK) activation rows,
     *     y[t*y_stride + r] = vec_dot(n, row r, x + t*x_stride)   r < 16, t < n_tok
     * and x16_panel16 turns a group into the pack16 panel (prompt processing). */
    void (*gemv_x16)(int64_t n, const void *g, const void *x, size_t x_stride, int n_tok,
                     float *y, int64_t y_stride);
    void (*x16_panel16)(int64_t n, const void *g, void *panel);
};

/* The x16 layout: the bytes of 16 GGUF rows of an F32, Q8_0, Q4_0, Q4_K, Q5_K or Q6_K weight,
 * reordered so that one 64-byte load holds 4 quant bytes (F32: one value) of each of the 16
 * rows and the rows' scales are vectors.
 * Same size as the rows. Block by block (b = block index, r = row 0..15, j = 0..3):
 *
 *   F32 (64 bytes per column):   4r              column i of row r (16 rows' values of a column
 *                                                    form a vector)
 *   Q8_0 (544 bytes per block):  [0, 32)         d of row r at 2r (f16)
 *                                32 + 64k + 4r + j   qs[4k + j] of row r        k = 0..7
 *   Q4_0 (288 bytes per block):  [0, 32)         d of row r at 2r (f16)
 *                                32 + 64k + 4r + j   qs[4k + j] of row r        k = 0..3
 *   Q4_K (2304 bytes per block): [0, 32)         d of row r at 2r, [32, 64) dmin
 *                                64 + 64m + 4r + j   scales[4m + j] of row r    m = 0..2
 *                                256 + 64k + 4r + j  qs[4k + j] of row r        k = 0..31
 *   Q5_K (2816 bytes per block): [0, 256)        as Q4_K
 *                                256 + 64k + 4r + j  qh[4k + j] of row r        k = 0..7
 *                                768 + 64k + 4r + j  qs[4k + j] of row r        k = 0..31
 *   Q6_K (3360 bytes per block): [0, 32)         d of row r at 2r (f16)
 *                                32 + 64m + 4r + j   scales[4m + j] of row r    m = 0..3
 *                                288 + 192(8h + k) + 64s + 4r + j, h = 0..1, k = 0..7:
 *                                  s = 0: ql[64h + 4k + j], 1: ql[64h + 32 + 4k + j],
 *                                  2: qh[32h + 4k + j] of row r (read in this order)
 *
 * so a Q8_0 vector holds weights 4k..4k+3 of 16 rows, a Q4 vector's low nibbles weights
 * 4k'..4k'+3 of a sub-block (Q4_0: k' = k; Q4_K: sub-block 2(k/8), k' = k%8) and its high
 * nibbles the same weights of the next half (Q4_0: +16; Q4_K: sub-block 2(k/8)+1). llama.cpp
 * repacks Q4_0/Q4_K the same way (8 rows, "q4_0_8x8"). */
#define KQ_X16_TOK 4
/* True if t has an x16 layout; kq__pack_x16/unpack convert 16 rows of n weights (stride in
 * bytes) to one group and back. */
int kq__x16_type(enum gguf_ttype t);
void kq__pack_x16(enum gguf_ttype t, int64_t n, const void *w, size_t w_stride, void *g);
void kq__unpack_x16(enum gguf_ttype t, int64_t n, const void *g, void *w, size_t w_stride);

#define KQ_PANEL_R 16
#define KQ_PANEL_MIN_TOK 16 // fewer tokens do not pay for packing
/* Scratch for one panel of 16 rows of n weights: 16 bytes per weight column, plus scales (Q4_0/
 * Q8_0: 16 f32 per 32 weights; K-quants: 16 int32 scales and mins per 32, 32 f32 per 256). */
static inline size_t kq__panel_bytes(int64_t n)
{
    return (size_t)n * KQ_PANEL_R + (size_t)n * 8;
}

/* The tables: index by enum gguf_ttype; a NULL entry falls back to the lower ISA's. */
struct kq_ops {
    struct kq_type_ops type[GGUF_T_COUNT];
};

int64_t kq__block_size(enum gguf_ttype t);
size_t kq__block_bytes(enum gguf_ttype t);
size_t kq__row_bytes(enum gguf_ttype t, int64_t n);
/* The vec type of weight type t (see the top of this file). */
enum gguf_ttype kq__vec_type(enum gguf_ttype t);
/* The kernel table in use after dispatch (never NULL entries for supported types). */
const struct kq_ops *kq__ops(void);
/* The reference table; and the table of a given ISA ("scalar", "avx2", "avx512", and
 * "avx512-novnni" for AVX-512 without VNNI), NULL if the CPU lacks it. Tests compare them. */
const struct kq_ops *kq__ops_ref(void);
const struct kq_ops *kq__ops_isa(const char *isa);

/* kq_matmul with a given kernel table (tests compare the ISAs through it). */
void kq__matmul(const struct kq_ops *ops, enum gguf_ttype t, const void *w, int64_t n_in,
                int64_t n_out, const float *x, int64_t n_tok, float *y, struct tw_pool *pool);

/* Reference kernels (kq_ref.c): the definitions. */
void kq_dequant_q8_0_ref(const void *src, float *dst, int64_t n);
void kq_dequant_q4_0_ref(const void *src, float *dst, int64_t n);
void kq_dequant_q4_K_ref(const void *src, float *dst, int64_t n);
void kq_dequant_q5_K_ref(const void *src, float *dst, int64_t n);
void kq_dequant_q6_K_ref(const void *src, float *dst, int64_t n);
void kq_quant_q8_0_ref(const float *x, void *dst, int64_t n);
void kq_quant_q4_0_ref(const float *x, void *dst, int64_t n);
void kq_quant_q4_K_ref(const float *x, void *dst, int64_t n);
void kq_quant_q5_K_ref(const float *x, void *dst, int64_t n);
void kq_quant_q6_K_ref(const float *x, void *dst, int64_t n);
void kq_quant_q8_K_ref(const float *x, void *dst, int64_t n);
void kq_quant_q8_0x_ref(const float *x, void *dst, int64_t n);
void kq_ref_table(struct kq_ops *ops);

/* Arch tables (src/nn/arch/<isa>/): fill the entries they accelerate. */
void kq_avx2_table(struct kq_ops *ops);
/* vnni: the CPU has AVX-512 VNNI and VBMI (vpdpbusd, vpermb) for the 8-bit dot products. */
void kq_avx512_table(struct kq_ops *ops, int vnni);
int64_t kq__fma_burn_avx2(int64_t iters);
int64_t kq__fma_burn_avx512(int64_t iters);

#endif
