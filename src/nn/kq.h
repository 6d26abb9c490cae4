/* kq.h - tensor types and kernels: conversion, quantization, fused dot products, matmul.
 *
 * Every kernel has a plain reference version (the definition, kq_*_ref) and fast versions for
 * AVX2 and AVX-512 in src/nn/arch/<isa>/, picked at run time from the CPU's features. The public
 * entry points below dispatch. Quantized formats are ggml's (engine-notes §7); blocks are decoded
 * exactly as ggml decodes them.
 *
 * Matmul convention (ggml's): a weight W of GGUF shape ne=[n_in, n_out] is n_out rows of n_in
 * values of its type. kq_matmul computes, for every token t < n_tok and output o < n_out,
 *     y[t*n_out + o] = sum_i W[o, i] * x[t*n_in + i]
 * with x and y in f32. Thread-safety: kernels are pure; kq_init() is idempotent and thread-safe.
 */
#ifndef TW_KQ_H
#define TW_KQ_H

#include "base/pool.h"
#include "nn/gguf.h"

#include <stdint.h>

/* Detects CPU features and fills the dispatch table (called implicitly by the kernels). */
void kq_init(void);
/* "avx512", "avx2" or "scalar" (or what kq_set_isa chose): the kernel set in use
 * (TWIN_KQ=scalar|avx2 forces a lower one). */
const char *kq_isa(void);

/* Switches the kernel set to "scalar", "avx2", "avx512" or "avx512-novnni" (AVX-512 without
 * its 8-bit dot product instructions) (for benchmarks and tests; call it
 * while no kernel runs). Returns 0, or -1 if the CPU or build lacks that set. */
int kq_set_isa(const char *isa);
/* Runs 'iters' rounds of independent f32 FMAs in registers with the widest vectors of the kernel
 * set in use, on the calling thread; returns the number of floating-point operations done (time
 * it to get the core's peak GFLOP/s). */
int64_t kq_fma_burn(int64_t iters);

float kq_f16_to_f32(uint16_t h);
uint16_t kq_f32_to_f16(float f);
float kq_bf16_to_f32(uint16_t h);
uint16_t kq_f32_to_bf16(float f);

/* True if the type can be dequantized/used in kq_matmul (F32 F16 BF16 Q8_0 Q4_0 Q4_K Q5_K Q6_K). */
int kq_type_supported(enum gguf_ttype t);
/* Decodes n values (n a multiple of the block size) of type t at src into dst. */
void kq_dequant(enum gguf_ttype t, const void *src, float *dst, int64_t n);
/* Encodes n floats as type t, the way llama.cpp's quantizer does (no importance matrix). */
void kq_quant(enum gguf_ttype t, const float *src, void *dst, int64_t n);
/* Dot product of one row of type t (n values) with n floats. */
float kq_dot(enum gguf_ttype t, const void *row, const float *x, int64_t n);
/* y = W x for n_tok tokens, split across the pool's threads by output rows. */
void kq_matmul(enum gguf_ttype t, const void *w, int64_t n_in, int64_t n_out, const float *x,
               int64_t n_tok, float *y, struct tw_pool *pool);

/* ---- repacked weights ----
 *
 * A weight matrix copied once into the layout this CPU's fastest kernels read (llama.cpp's
 * "repack"): groups of 16 rows interleaved block by block, so that token generation runs
 * without horizontal sums or per-row shuffles and prompt processing unpacks panels from it. The
 * same bytes in another order, plus the n_out % 16 rows left over in the GGUF layout: no more
 * memory than the tensor. Results equal kq_matmul's up to the order of float additions. */
struct kq_packed;

/* A packed copy of 'w' (GGUF rows, type t, n_out rows of n_in), packed across 'pool' (may be
 * NULL). Returns NULL when t has no packed layout with the kernel set in use (use kq_matmul on
 * w), or on allocation failure (*nomem set, when not NULL). The copy does not refer to w. */
struct kq_packed *kq_pack(enum gguf_ttype t, const void *w, int64_t n_in, int64_t n_out,
                          struct tw_pool *pool, int *nomem);
void kq_packed_free(struct kq_packed *p);
size_t kq_packed_bytes(const struct kq_packed *p);
/* kq_matmul of the matrix p was made from. */
void kq_matmul_packed(const struct kq_packed *p, const float *x, int64_t n_tok, float *y,
                      struct tw_pool *pool);

/* ---- whole models (kq_model.c) ---- */

struct kq_quantize_stats {
    int64_t n_tensors;   // tensors written
    int64_t n_quantized; // of which converted to another type
    uint64_t bytes_in;   // tensor data read
    uint64_t bytes_out;  // tensor data written
};

/* Writes a copy of the GGUF model 'in' to 'out' (atomically) with its 2-D weights converted to
 * 'type': "f32" "f16" "bf16" "q8_0" "q4_0" "q4_k" "q5_k" "q6_k" put every 2-D weight in that type
 * (llama-quantize --pure); "q4_k_m" "q5_k_m" are llama.cpp's mixes (output.weight and the
 * attn_v/ffn_down weights of the first and last eighth of the layers and every third layer
 * between in Q6_K). Other tensors (norms, biases) are copied unchanged; a row length that is
 * not a multiple of the type's block falls back to Q8_0 (or F16). Quantized bytes are those of
 * llama-quantize without an importance matrix. Rows are split across 'pool' (may be NULL).
 * Metadata is copied, with general.file_type set. On failure returns a negative TW_E* code
 * naming the file and tensor. */
int kq_quantize_file(const char *in, const char *out, const char *type, struct tw_pool *pool,
                     struct kq_quantize_stats *st, struct tw_err *err);
/* The type names kq_quantize_file accepts, space-separated. */
const char *kq_quantize_types(void);

#endif
