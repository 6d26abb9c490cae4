/* kq.c - tensor types: half/bfloat conversion, the type table, run-time dispatch and the matmul
 * driver (see kq.h, kq_impl.h).
 *
 * Matmul: activations are converted once per call to the weight's vec type (llama.cpp's choice:
 * Q8_0 for Q4_0/Q8_0, Q8_K for K-quants, F16/BF16 for F16/BF16), then every thread takes a
 * contiguous slice of output rows. Within a slice, tokens go in chunks that stay in cache; each
 * chunk is swept by KQ_TILE_R x KQ_TILE_T register tiles (gemm) where the ISA has one, and by
 * vec_dot elsewhere (edges, single tokens).
 */
#include "nn/kq_impl.h"

#include "base/log.h"
#include "base/mem.h"

#include <pthread.h>
#include <stdlib.h>
#include <cpuid.h>
#include <string.h>

/* ---- half and bfloat ---- */

float kq_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    uint32_t bits;
    float f;

    if (exp == 0x1F) {
        bits = sign | 0x7F800000 | (mant << 13); // inf, nan (payload kept)
    } else if (exp) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else {
        f = (float)mant * 0x1p-24f; // zero or subnormal: exact in float
        memcpy(&bits, &f, sizeof(bits));
        bits |= sign;
    }
    memcpy(&f, &bits, sizeof(f));
    return f;
}

uint16_t kq_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7FFFFFFF;

    if (ax > 0x7F800000) // nan: keep it quiet and keep the top payload bits
        return (uint16_t)(sign | 0x7E00 | ((ax >> 13) & 0x3FF));
    if (ax >= 0x477FF000) // >= 65520 rounds to infinity (ties to even)
        return (uint16_t)(sign | 0x7C00);
    if (ax < 0x38800000) { // below 2^-14: subnormal half; v*2^24 is exact, round half to even
        float v;
        memcpy(&v, &ax, sizeof(v));
        v = v * 0x1p24f + 0x1p23f; // the addition rounds to an integer, ties to even
        return (uint16_t)(sign | (uint16_t)(v - 0x1p23f));
    }
    ax += 0xFFF + ((ax >> 13) & 1); // round to nearest, ties to even, on the 13 dropped bits
    return (uint16_t)(sign | ((ax - 0x38000000) >> 13));
}

float kq_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

uint16_t kq_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    if ((x & 0x7FFFFFFF) > 0x7F800000) // nan: force quiet (as ggml)
        return (uint16_t)((x >> 16) | 64);
    return (uint16_t)((x + (0x7FFF + ((x >> 16) & 1))) >> 16);
}

/* ---- type table ---- */

int64_t kq__block_size(enum gguf_ttype t)
{
    if (t == KQ_T_Q8_0X)
        return KQ_QK;
    switch (t) {
    case GGUF_T_F32:
    case GGUF_T_F16:
    case GGUF_T_BF16:
        return 1;
    case GGUF_T_Q8_0:
    case GGUF_T_Q4_0:
        return KQ_QK;
    case GGUF_T_Q4_K:
    case GGUF_T_Q5_K:
    case GGUF_T_Q6_K:
    case GGUF_T_Q8_K:
        return KQ_QK_K;
    default:
        return 0;
    }
}

size_t kq__block_bytes(enum gguf_ttype t)
{
    if (t == KQ_T_Q8_0X)
        return sizeof(float) + KQ_QK + sizeof(int32_t);
    switch (t) {
    case GGUF_T_F32:
        return 4;
    case GGUF_T_F16:
    case GGUF_T_BF16:
        return 2;
    case GGUF_T_Q8_0:
        return sizeof(struct kq_block_q8_0);
    case GGUF_T_Q4_0:
        return sizeof(struct kq_block_q4_0);
    case GGUF_T_Q4_K:
        return sizeof(struct kq_block_q4_K);
    case GGUF_T_Q5_K:
        return sizeof(struct kq_block_q5_K);
    case GGUF_T_Q6_K:
        return sizeof(struct kq_block_q6_K);
    case GGUF_T_Q8_K:
        return sizeof(struct kq_block_q8_K);
    default:
        return 0;
    }
}

size_t kq__row_bytes(enum gguf_ttype t, int64_t n)
{
    int64_t bs = kq__block_size(t);
    return bs ? (size_t)(n / bs) * kq__block_bytes(t) : 0;
}

enum gguf_ttype kq__vec_type(enum gguf_ttype t)
{
    switch (t) {
    case GGUF_T_Q8_0:
    case GGUF_T_Q4_0:
        return KQ_T_Q8_0X;
    case GGUF_T_Q4_K:
    case GGUF_T_Q5_K:
    case GGUF_T_Q6_K:
        return GGUF_T_Q8_K;
    default:
        return t;
    }
}

int kq_type_supported(enum gguf_ttype t)
{
    switch (t) {
    case GGUF_T_F32:
    case GGUF_T_F16:
    case GGUF_T_BF16:
    case GGUF_T_Q8_0:
    case GGUF_T_Q4_0:
    case GGUF_T_Q4_K:
    case GGUF_T_Q5_K:
    case GGUF_T_Q6_K:
        return 1;
    default:
        return 0;
    }
}

/* ---- dispatch ---- */

static struct kq_ops ops_ref, ops_avx2, ops_avx512, ops_avx512_plain;
static const struct kq_ops *ops_cur = &ops_ref;
static const char *isa_cur = "scalar";
static int have_avx2, have_avx512;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* Entries an ISA leaves NULL come from the table below it. */
static void ops_inherit(struct kq_ops *ops, const struct kq_ops *lower)
{
    for (int t = 0; t < GGUF_T_COUNT; t++) {
        struct kq_type_ops *o = &ops->type[t];
        const struct kq_type_ops *l = &lower->type[t];
        if (!o->dequant)
            o->dequant = l->dequant;
        if (!o->from_float)
            o->from_float = l->from_float;
        if (!o->vec_dot)
            o->vec_dot = l->vec_dot;
        if (!o->gemm)
            o->gemm = l->gemm;
        if (!o->gemv_x16)
            o->gemv_x16 = l->gemv_x16;
        if (!o->pack16 || !o->panel16) { // the panel format is the table's own: all three go
            o->pack16 = l->pack16;
            o->panel16 = l->panel16;
            o->x16_panel16 = l->x16_panel16;
        }
    }
}

/* CPUID leaf 1, ECX bit 29. clang 14's __builtin_cpu_supports does not know "f16c". */
static bool cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}

static void kq_init_once(void)
{
    const char *force = getenv("TWIN_KQ");

    kq_ref_table(&ops_ref);
    __builtin_cpu_init();
    have_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    have_avx512 = have_avx2 && __builtin_cpu_supports("avx512f") &&
                  __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                  __builtin_cpu_supports("avx512dq");
    if (have_avx2) {
        kq_avx2_table(&ops_avx2);
        ops_inherit(&ops_avx2, &ops_ref);
    }
    if (have_avx512) {
        kq_avx512_table(&ops_avx512, __builtin_cpu_supports("avx512vnni") &&
                                            __builtin_cpu_supports("avx512vbmi"));
        ops_inherit(&ops_avx512, &ops_avx2);
        kq_avx512_table(&ops_avx512_plain, 0);
        ops_inherit(&ops_avx512_plain, &ops_avx2);
    }
    if (have_avx512 && !(force && (!strcmp(force, "scalar") || !strcmp(force, "avx2")))) {
        ops_cur = &ops_avx512;
        isa_cur = "avx512";
    } else if (have_avx2 && !(force && !strcmp(force, "scalar"))) {
        ops_cur = &ops_avx2;
        isa_cur = "avx2";
    }
    if (force && strcmp(force, isa_cur))
        tw_log(TW_LOG_WARN, "kq", "TWIN_KQ=%s: using %s kernels", force, isa_cur);
}

void kq_init(void)
{
    pthread_once(&init_once, kq_init_once);
}

const char *kq_isa(void)
{
    kq_init();
    return isa_cur;
}

const struct kq_ops *kq__ops(void)
{
    kq_init();
    return ops_cur;
}

const struct kq_ops *kq__ops_ref(void)
{
    kq_init();
    return &ops_ref;
}

const struct kq_ops *kq__ops_isa(const char *isa)
{
    kq_init();
    if (!strcmp(isa, "scalar"))
        return &ops_ref;
    if (!strcmp(isa, "avx2"))
        return have_avx2 ? &ops_avx2 : NULL;
    if (!strcmp(isa, "avx512"))
        return have_avx512 ? &ops_avx512 : NULL;
    if (!strcmp(isa, "avx512-novnni"))
        return have_avx512 ? &ops_avx512_plain : NULL;
    return NULL;
}

int kq_set_isa(const char *isa)
{
    const struct kq_ops *ops = kq__ops_isa(isa);
    if (!ops)
        return -1;
    ops_cur = ops;
    isa_cur = ops == &ops_avx512   ? "avx512"
              : ops == &ops_avx512_plain ? "avx512-novnni"
              : ops == &ops_avx2     ? "avx2"
                                     : "scalar";
    return 0;
}

int64_t kq_fma_burn(int64_t iters)
{
    kq_init();
    if (ops_cur == &ops_avx512 || ops_cur == &ops_avx512_plain)
        return kq__fma_burn_avx512(iters);
    if (ops_cur == &ops_avx2)
        return kq__fma_burn_avx2(iters);
    /* Scalar: 8 independent chains so that latency does not hide the throughput. */
    volatile float seed = 1.0f;
    float a[8], m = 0.999999f, c = 1e-7f;
    for (int k = 0; k < 8; k++)
        a[k] = seed + k;
    for (int64_t i = 0; i < iters; i++)
        for (int k = 0; k < 8; k++)
            a[k] = a[k] * m + c;
    seed = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
    return iters * 8 * 2;
}

/* ---- public kernels ---- */

void kq_dequant(enum gguf_ttype t, const void *src, float *dst, int64_t n)
{
    TW_ASSERT(kq_type_supported(t) && n % kq__block_size(t) == 0);
    kq__ops()->type[t].dequant(src, dst, n);
}

void kq_quant(enum gguf_ttype t, const float *src, void *dst, int64_t n)
{
    TW_ASSERT(kq_type_supported(t) && n % kq__block_size(t) == 0);
    switch (t) {
    case GGUF_T_Q8_0:
        kq_quant_q8_0_ref(src, dst, n);
        break;
    case GGUF_T_Q4_0:
        kq_quant_q4_0_ref(src, dst, n);
        break;
    case GGUF_T_Q4_K:
        kq_quant_q4_K_ref(src, dst, n);
        break;
    case GGUF_T_Q5_K:
        kq_quant_q5_K_ref(src, dst, n);
        break;
    case GGUF_T_Q6_K:
        kq_quant_q6_K_ref(src, dst, n);
        break;
    default: // F32, F16, BF16: the vec type is the type itself
        kq__ops()->type[t].from_float(src, dst, n);
        break;
    }
}

#define DOT_CHUNK 4096 // floats converted at a time by kq_dot (a multiple of every block size)

float kq_dot(enum gguf_ttype t, const void *row, const float *x, int64_t n)
{
    TW_ASSERT(kq_type_supported(t) && n % kq__block_size(t) == 0);
    const struct kq_type_ops *o = &kq__ops()->type[t];
    const enum gguf_ttype vt = kq__vec_type(t);
    if (vt == GGUF_T_F32)
        return o->vec_dot(n, row, x);

    /* Convert x piecewise into a stack buffer: dot products add up across blocks. */
    _Alignas(64) unsigned char buf[DOT_CHUNK * 2 + 64];
    const char *w = row;
    float sum = 0;
    for (int64_t i = 0; i < n; i += DOT_CHUNK) {
        int64_t m = n - i < DOT_CHUNK ? n - i : DOT_CHUNK;
        o->from_float(x + i, buf, m);
        sum += o->vec_dot(m, w, buf);
        w += kq__row_bytes(t, m);
    }
    return sum;
}

/* ---- matmul ---- */

struct mm_ctx {
    const struct kq_type_ops *o;
    enum gguf_ttype t;
    const char *w;     // n_out rows of w_stride bytes
    size_t w_stride;
    const float *x;    // n_tok rows of n_in floats (the conversion input)
    const char *xq;    // n_tok rows of x_stride bytes in the vec type
    size_t x_stride;
    int64_t n_in, n_out, n_tok;
    float *y;          // n_tok rows of n_out
    char *panels;      // NULL, or one panel of panel_bytes per thread (pack16/panel16)
    size_t panel_bytes;
    const struct kq_packed *pk; // set: the weights are these groups (w, w_stride: its tail rows)
};

static void mm_convert(void *arg, int ith, int nth)
{
    struct mm_ctx *c = arg;
    long t0, t1;
    tw_pool_slice(c->n_tok, ith, nth, &t0, &t1);
    for (long t = t0; t < t1; t++)
        c->o->from_float(c->x + t * c->n_in, (char *)c->xq + t * c->x_stride, c->n_in);
}

/* Output rows per block: a block's weights (about 256 KiB) stay in L2 while every token passes
 * over them, so weights are read from memory once per call; the tokens come from L2/L3. */
static int64_t mm_row_block(size_t w_stride)
{
    int64_t n = (int64_t)((256 * 1024) / (w_stride ? w_stride : 1));
    n -= n % KQ_TILE_R;
    return n < KQ_TILE_R ? KQ_TILE_R : n;
}

/* Rows [r0, r1) x tokens [t0, t1) through vec_dot. */
static void mm_dots(const struct mm_ctx *c, int64_t r0, int64_t r1, int64_t t0, int64_t t1)
{
    for (int64_t r = r0; r < r1; r++) {
        const char *wr = c->w + r * c->w_stride;
        for (int64_t t = t0; t < t1; t++)
            c->y[t * c->n_out + r] = c->o->vec_dot(c->n_in, wr, c->xq + t * c->x_stride);
    }
}

static void mm_rows_x16(const struct mm_ctx *c, int ith, int nth);

static void mm_rows(void *arg, int ith, int nth)
{
    const struct mm_ctx *c = arg;
    const struct kq_type_ops *o = c->o;
    long r0, r1;

    if (c->pk) {
        mm_rows_x16(c, ith, nth);
        return;
    }
    /* Slices of whole tiles, so that tiles never straddle threads. */
    long n_tiles = (long)((c->n_out + KQ_TILE_R - 1) / KQ_TILE_R);
    tw_pool_slice(n_tiles, ith, nth, &r0, &r1);
    r0 *= KQ_TILE_R;
    r1 = r1 * KQ_TILE_R < c->n_out ? r1 * KQ_TILE_R : (long)c->n_out;
    if (r0 >= r1)
        return;
    if (c->panels) { // whole panels of 16 rows, every token over each
        void *panel = c->panels + (size_t)ith * c->panel_bytes;
        for (; r0 + KQ_PANEL_R <= r1; r0 += KQ_PANEL_R) {
            o->pack16(c->n_in, c->w + r0 * c->w_stride, c->w_stride, panel);
            o->panel16(c->n_in, panel, c->xq, c->x_stride, c->n_tok, c->y + r0, c->n_out);
        }
        if (r0 >= r1)
            return;
    }
    if (!o->gemm || c->n_tok < KQ_TILE_T) {
        mm_dots(c, r0, r1, 0, c->n_tok);
        return;
    }
    const int64_t rb = mm_row_block(c->w_stride);
    const int64_t t_full = c->n_tok - c->n_tok % KQ_TILE_T;
    for (int64_t b0 = r0; b0 < r1; b0 += rb) {
        const int64_t b1 = b0 + rb < r1 ? b0 + rb : r1;
        const int64_t r_full = b0 + (b1 - b0) - (b1 - b0) % KQ_TILE_R;
        /* One token tile (in L1) against every row tile of the block (in L2). */
        for (int64_t t = 0; t < t_full; t += KQ_TILE_T)
            for (int64_t r = b0; r < r_full; r += KQ_TILE_R)
                o->gemm(c->n_in, c->w + r * c->w_stride, c->w_stride, c->xq + t * c->x_stride,
                        c->x_stride, c->y + t * c->n_out + r, c->n_out);
        mm_dots(c, r_full, b1, 0, t_full);           // rows left over
        mm_dots(c, b0, b1, t_full, c->n_tok);        // tokens left over
    }
}

#define MM_STACK 16384 // bytes of converted activations kept on the stack

void kq_matmul(enum gguf_ttype t, const void *w, int64_t n_in, int64_t n_out, const float *x,
               int64_t n_tok, float *y, struct tw_pool *pool)
{
    kq__matmul(kq__ops(), t, w, n_in, n_out, x, n_tok, y, pool);
}

static void matmul_impl(const struct kq_ops *ops, enum gguf_ttype t, const void *w, int64_t n_in,
                        int64_t n_out, const float *x, int64_t n_tok, float *y,
                        struct tw_pool *pool, const struct kq_packed *pk);
static void x16_no_memory(const struct mm_ctx *c, unsigned char *buf, size_t cap);

void kq__matmul(const struct kq_ops *ops, enum gguf_ttype t, const void *w, int64_t n_in,
                int64_t n_out, const float *x, int64_t n_tok, float *y, struct tw_pool *pool)
{
    matmul_impl(ops, t, w, n_in, n_out, x, n_tok, y, pool, NULL);
}

static void matmul_impl(const struct kq_ops *ops, enum gguf_ttype t, const void *w, int64_t n_in,
                        int64_t n_out, const float *x, int64_t n_tok, float *y,
                        struct tw_pool *pool, const struct kq_packed *pk)
{
    TW_ASSERT(kq_type_supported(t) && n_in % kq__block_size(t) == 0);
    TW_ASSERT(n_in >= 0 && n_out >= 0 && n_tok >= 0);
    if (!n_out || !n_tok)
        return;

    const enum gguf_ttype vt = kq__vec_type(t);
    struct mm_ctx c = {
        .o = &ops->type[t],
        .t = t,
        .w = w,
        .w_stride = kq__row_bytes(t, n_in),
        .x = x,
        .x_stride = kq__row_bytes(vt, n_in),
        .n_in = n_in,
        .n_out = n_out,
        .n_tok = n_tok,
        .y = y,
        .pk = pk,
    };
    _Alignas(64) unsigned char stack[MM_STACK];
    void *heap = NULL;

    if (vt == GGUF_T_F32) {
        c.xq = (const char *)x;
        tw_pool_run(pool, mm_rows, &c);
        return;
    }
    size_t need = c.x_stride * (size_t)n_tok;
    int64_t step = n_tok; // tokens converted per pass
    unsigned char *buf = stack;
    if (need > sizeof(stack)) {
        heap = tw_malloc(need);
        if (heap)
            buf = heap;
        else // no memory: go through in pieces that fit on the stack
            step = (int64_t)(sizeof(stack) / c.x_stride);
    }
    if (step == 0 && pk) {
        x16_no_memory(&c, stack, sizeof(stack));
        return;
    }
    if (step == 0) { // no memory and one converted row is larger than the stack buffer
        for (int64_t tk = 0; tk < n_tok; tk++)
            for (int64_t o = 0; o < n_out; o++)
                y[tk * n_out + o] = kq_dot(t, c.w + o * c.w_stride, x + tk * n_in, n_in);
        return;
    }
    /* Prompt processing with a panel kernel: scratch for one panel per thread. */
    void *panels = NULL;
    if ((pk ? c.o->x16_panel16 != NULL : c.o->pack16 != NULL) && c.o->panel16 &&
        step >= KQ_PANEL_MIN_TOK && n_out >= KQ_PANEL_R) {
        c.panel_bytes = (kq__panel_bytes(n_in) + 63) & ~(size_t)63;
        panels = tw_mallocarray((size_t)tw_pool_size(pool), c.panel_bytes);
        c.panels = panels;
    }
    for (int64_t t0 = 0; t0 < n_tok; t0 += step) {
        int64_t nt = n_tok - t0 < step ? n_tok - t0 : step;
        c.x = x + t0 * n_in;
        c.xq = (const char *)buf;
        c.n_tok = nt;
        c.y = y + t0 * n_out;
        if (nt == 1)
            mm_convert(&c, 0, 1);
        else
            tw_pool_run(pool, mm_convert, &c);
        tw_pool_run(pool, mm_rows, &c);
    }
    tw_free(panels);
    tw_free(heap);
}

/* ---- repacked weights (x16, kq_impl.h) ---- */

struct kq_packed {
    enum gguf_ttype t;
    int64_t n_in, n_out;
    int64_t n_groups;     // whole groups of KQ_PANEL_R rows
    size_t row_bytes;     // one GGUF row
    size_t group_bytes;   // KQ_PANEL_R rows
    unsigned char *data;  // n_groups groups, then the n_out % 16 rows left in the GGUF layout
};

int kq__x16_type(enum gguf_ttype t)
{
    return t == GGUF_T_F32 || t == GGUF_T_Q8_0 || t == GGUF_T_Q4_0 || t == GGUF_T_Q4_K ||
           t == GGUF_T_Q5_K || t == GGUF_T_Q6_K;
}

/* The pieces of a block: 'count' runs of 'size' bytes from src_off in the GGUF block go to
 * dst_off + i * dst_step + r * size in the group's block (i < count, r = the row). */
struct x16_piece {
    unsigned short src_off, size, count, dst_off, dst_step;
};
static const struct x16_piece x16_q8_0[] = {{0, 2, 1, 0, 0}, {2, 4, 8, 32, 64}};
static const struct x16_piece x16_q4_0[] = {{0, 2, 1, 0, 0}, {2, 4, 4, 32, 64}};
static const struct x16_piece x16_q4_K[] = {{0, 2, 1, 0, 0}, {2, 2, 1, 32, 0}, {4, 4, 3, 64, 64},
                                            {16, 4, 32, 256, 64}};
static const struct x16_piece x16_q5_K[] = {{0, 2, 1, 0, 0},     {2, 2, 1, 32, 0},
                                            {4, 4, 3, 64, 64},   {16, 4, 8, 256, 64},
                                            {48, 4, 32, 768, 64}};
/* Q6_K: after d and the scales, 16 triples of 192 bytes in the order the kernel reads them:
 * (ql[64h + 4j], ql[64h + 32 + 4j], qh[32h + 4j]) for h = 0..1, j = 0..7. */
static const struct x16_piece x16_q6_K[] = {
    {208, 2, 1, 0, 0},        {192, 4, 4, 32, 64},       {0, 4, 8, 288, 192},
    {32, 4, 8, 352, 192},     {64, 4, 8, 1824, 192},     {96, 4, 8, 1888, 192},
    {128, 4, 16, 416, 192},
};

/* F32: a transpose of 16 rows x n columns. */
static void x16_copy_f32(int64_t n, float *g, float *w, size_t w_stride, int to_group)
{
    float *row[KQ_PANEL_R];
    for (int r = 0; r < KQ_PANEL_R; r++)
        row[r] = (float *)(void *)((unsigned char *)w + (size_t)r * w_stride);
    for (int64_t i = 0; i < n; i++) // 16 sequential streams one way, one the other
        for (int r = 0; r < KQ_PANEL_R; r++) {
            if (to_group)
                g[i * KQ_PANEL_R + r] = row[r][i];
            else
                row[r][i] = g[i * KQ_PANEL_R + r];
        }
}

/* n bytes (2 or 4) from a to z: a fixed-size copy the compiler inlines (a run-time size made
 * every piece a library call: 130 MB/s of packing). */
static inline void x16_move(unsigned char *z, const unsigned char *a, unsigned n)
{
    if (n == 4)
        memcpy(z, a, 4);
    else
        memcpy(z, a, 2);
}

static void x16_copy(enum gguf_ttype t, int64_t n, unsigned char *g, unsigned char *w,
                     size_t w_stride, int to_group)
{
    TW_ASSERT(kq__x16_type(t));
    if (t == GGUF_T_F32) {
        x16_copy_f32(n, (float *)(void *)g, (float *)(void *)w, w_stride, to_group);
        return;
    }
    const size_t bb = kq__block_bytes(t);
    const int64_t nb = n / kq__block_size(t);
    const struct x16_piece *pc = t == GGUF_T_Q8_0   ? x16_q8_0
                                 : t == GGUF_T_Q4_0 ? x16_q4_0
                                 : t == GGUF_T_Q4_K ? x16_q4_K
                                 : t == GGUF_T_Q5_K ? x16_q5_K
                                                    : x16_q6_K;
    const int np = t == GGUF_T_Q8_0 || t == GGUF_T_Q4_0 ? 2
                   : t == GGUF_T_Q4_K                  ? 4
                   : t == GGUF_T_Q5_K                  ? 5
                                                       : 7;
    for (int r = 0; r < KQ_PANEL_R; r++)
        for (int64_t b = 0; b < nb; b++) {
            unsigned char *src = w + (size_t)r * w_stride + (size_t)b * bb;
            unsigned char *dst = g + (size_t)b * bb * KQ_PANEL_R;
            for (int k = 0; k < np; k++)
                for (int i = 0; i < pc[k].count; i++) {
                    unsigned char *a = src + pc[k].src_off + (size_t)i * pc[k].size;
                    unsigned char *z = dst + pc[k].dst_off + (size_t)i * pc[k].dst_step +
                                       (size_t)r * pc[k].size;
                    if (to_group)
                        x16_move(z, a, pc[k].size);
                    else
                        x16_move(a, z, pc[k].size);
                }
        }
}

void kq__pack_x16(enum gguf_ttype t, int64_t n, const void *w, size_t w_stride, void *g)
{
    x16_copy(t, n, g, (unsigned char *)(uintptr_t)w, w_stride, 1);
}

void kq__unpack_x16(enum gguf_ttype t, int64_t n, const void *g, void *w, size_t w_stride)
{
    x16_copy(t, n, (unsigned char *)(uintptr_t)g, w, w_stride, 0);
}

struct pack_job {
    struct kq_packed *p;
    const unsigned char *w;
};

static void pack_groups(void *arg, int ith, int nth)
{
    const struct pack_job *j = arg;
    const struct kq_packed *p = j->p;
    long g0, g1;
    tw_pool_slice((long)p->n_groups, ith, nth, &g0, &g1);
    for (long g = g0; g < g1; g++)
        kq__pack_x16(p->t, p->n_in, j->w + (size_t)g * p->group_bytes, p->row_bytes,
                     p->data + (size_t)g * p->group_bytes);
}

struct kq_packed *kq_pack(enum gguf_ttype t, const void *w, int64_t n_in, int64_t n_out,
                          struct tw_pool *pool, int *nomem)
{
    const struct kq_ops *ops = kq__ops();
    if (nomem)
        *nomem = 0;
    if (!kq__x16_type(t) || !ops->type[t].gemv_x16 || n_in <= 0 || n_out < KQ_PANEL_R ||
        n_in % kq__block_size(t))
        return NULL;
    struct kq_packed *p = tw_calloc(1, sizeof(*p));
    if (!p)
        goto nomem;
    p->t = t;
    p->n_in = n_in;
    p->n_out = n_out;
    p->n_groups = n_out / KQ_PANEL_R;
    p->row_bytes = kq__row_bytes(t, n_in);
    p->group_bytes = p->row_bytes * KQ_PANEL_R;
    const size_t tail = (size_t)(n_out % KQ_PANEL_R) * p->row_bytes;
    p->data = tw_malloc((size_t)p->n_groups * p->group_bytes + tail);
    if (!p->data) {
        tw_free(p);
        goto nomem;
    }
    struct pack_job j = {p, w};
    tw_pool_run(pool, pack_groups, &j);
    if (tail)
        memcpy(p->data + (size_t)p->n_groups * p->group_bytes,
               (const unsigned char *)w + (size_t)p->n_groups * p->group_bytes, tail);
    return p;
nomem:
    if (nomem)
        *nomem = 1;
    return NULL;
}

void kq_packed_free(struct kq_packed *p)
{
    if (!p)
        return;
    tw_free(p->data);
    tw_free(p);
}

size_t kq_packed_bytes(const struct kq_packed *p)
{
    return (size_t)p->n_out * p->row_bytes;
}

void kq_matmul_packed(const struct kq_packed *p, const float *x, int64_t n_tok, float *y,
                      struct tw_pool *pool)
{
    matmul_impl(kq__ops(), p->t, p->data + (size_t)p->n_groups * p->group_bytes, p->n_in,
                p->n_out, x, n_tok, y, pool, p);
}

/* The rows after the last group (GGUF layout at c->w) x every token, through vec_dot. */
static void x16_tail(const struct mm_ctx *c)
{
    const int64_t r0 = c->pk->n_groups * KQ_PANEL_R;
    for (int64_t r = r0; r < c->n_out; r++) {
        const char *wr = c->w + (r - r0) * c->w_stride;
        for (int64_t t = 0; t < c->n_tok; t++)
            c->y[t * c->n_out + r] = c->o->vec_dot(c->n_in, wr, c->xq + t * c->x_stride);
    }
}

/* Whole groups per thread, the tail rows as one more unit. Prompts (c->panels) unpack each
 * group into the panel kernel's layout; fewer tokens go through gemv_x16, 4 at a time. */
static void mm_rows_x16(const struct mm_ctx *c, int ith, int nth)
{
    const struct kq_packed *p = c->pk;
    const struct kq_type_ops *o = c->o;
    const long units = (long)p->n_groups + (p->n_out % KQ_PANEL_R ? 1 : 0);
    long u0, u1;
    tw_pool_slice(units, ith, nth, &u0, &u1);
    for (long u = u0; u < u1; u++) {
        if (u == p->n_groups) {
            x16_tail(c);
            continue;
        }
        const unsigned char *g = p->data + (size_t)u * p->group_bytes;
        float *yg = c->y + u * KQ_PANEL_R;
        if (c->panels) {
            void *panel = c->panels + (size_t)ith * c->panel_bytes;
            o->x16_panel16(c->n_in, g, panel);
            o->panel16(c->n_in, panel, c->xq, c->x_stride, c->n_tok, yg, c->n_out);
            continue;
        }
        for (int64_t t = 0; t < c->n_tok; t += KQ_X16_TOK) {
            const int nt = c->n_tok - t < KQ_X16_TOK ? (int)(c->n_tok - t) : KQ_X16_TOK;
            o->gemv_x16(c->n_in, g, c->xq + t * c->x_stride, c->x_stride, nt,
                        yg + t * c->n_out, c->n_out);
        }
    }
}

/* No memory for the converted activations and one row does not fit the stack buffer: a chunk
 * of blocks at a time (a group's blocks [b0, b1) are contiguous, and sums add across blocks). */
static void x16_no_memory(const struct mm_ctx *c, unsigned char *buf, size_t cap)
{
    const struct kq_packed *p = c->pk;
    const enum gguf_ttype vt = kq__vec_type(p->t);
    const int64_t bs = kq__block_size(p->t);
    const size_t bb = kq__block_bytes(p->t);
    int64_t chunk = (int64_t)(cap / kq__block_bytes(vt)) * kq__block_size(vt);
    chunk -= chunk % bs;
    TW_ASSERT(chunk > 0);
    for (int64_t t = 0; t < c->n_tok; t++) {
        float *yt = c->y + t * c->n_out;
        for (int64_t r = 0; r < c->n_out; r++)
            yt[r] = 0;
        for (int64_t i = 0; i < c->n_in; i += chunk) {
            const int64_t m = c->n_in - i < chunk ? c->n_in - i : chunk;
            const size_t off = (size_t)(i / bs) * bb;
            float part[KQ_PANEL_R];
            c->o->from_float(c->x + t * c->n_in + i, buf, m);
            for (int64_t g = 0; g < p->n_groups; g++) {
                c->o->gemv_x16(m, p->data + (size_t)g * p->group_bytes + off * KQ_PANEL_R, buf,
                               0, 1, part, 0);
                for (int r = 0; r < KQ_PANEL_R; r++)
                    yt[g * KQ_PANEL_R + r] += part[r];
            }
            for (int64_t r = p->n_groups * KQ_PANEL_R; r < c->n_out; r++)
                yt[r] += c->o->vec_dot(m, c->w + (r - p->n_groups * KQ_PANEL_R) * c->w_stride +
                                              off, buf);
        }
    }
}
