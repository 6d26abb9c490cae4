/* lora.h - LoRA adapters in llama.cpp's GGUF format: load, validate against a base model,
 * apply (the math the decoder calls), merge into a base model, write (engine-notes §6).
 *
 * Adapter file (what llama.cpp's llama_adapter_lora_init reads and convert_lora_to_gguf.py
 * writes):
 *
 *     general.type = "adapter"   adapter.type = "lora"   general.architecture = base's
 *     adapter.lora.alpha (f32; missing or 0: the scale is the user scale alone)
 *     for each adapted base tensor W (ne = [n_in, n_out], n_out rows of n_in):
 *         "<W name>.lora_a"  ne = [n_in, r]    A: r rows of n_in      (row-major r x n_in)
 *         "<W name>.lora_b"  ne = [r, n_out]   B: n_out rows of r     (row-major n_out x r)
 *     token_embd.weight (ne = [C, V]) is flipped, as llama.cpp's input embedding reads it:
 *         "token_embd.weight.lora_a"  ne = [r, V]   one row of r per token
 *         "token_embd.weight.lora_b"  ne = [r, C]   one row of r per channel
 *     "*_norm.weight" tensors are skipped (llama.cpp ignores them); any other name is an error.
 *
 * Effect, per adapted matmul y = W x:  y += s * B (A x)   with  s = user_scale * alpha / r
 * (s = user_scale when alpha is 0), r = lora_b's first dimension; for token_embd the embedding
 * of token t gets s * B A[t] added. Merging folds the same into the weight: W += s * (B·A).
 *
 * A/B may be stored as F32, F16 or BF16; they are decoded to F32 on load. Quantized adapters
 * are refused (llama-export-lora refuses them too).
 *
 * Ownership and threads: an adapter owns F32 copies of its matrices and nothing else (the file
 * is closed after loading). It is immutable once loaded or built, so any number of threads may
 * read it; lora_adapter_add mutates and needs the one owner.
 */
#ifndef TW_LORA_H
#define TW_LORA_H

#include "base/err.h"
#include "base/pool.h"
#include "nn/gguf.h"

#include <stdbool.h>
#include <stdint.h>

#define LORA_MAX_RANK     4096 // r above this is refused as hostile
#define LORA_NAME_MAX     64   // base tensor names with the NUL (GGUF names are < 64)
#define LORA_MAX_ADAPTERS 16   // adapters applied or merged at once

/* One adapted base tensor. Fields are read-only for callers. */
struct lora_weight {
    char name[LORA_NAME_MAX]; // base tensor name, e.g. "blk.0.attn_q.weight"
    int64_t n_in;             // base ne[0]: row length (C for token_embd)
    int64_t n_out;            // base ne[1]: rows (V for token_embd)
    int r;                    // rank (lora_b ne[0])
    bool embd;                // token_embd layout (A is (n_out, r), B is (n_in, r))
    float *a;                 // (r, n_in) row-major; embd: (n_out, r)
    float *b;                 // (n_out, r) row-major; embd: (n_in, r)
};

struct lora_adapter;

/* Reads the adapter at 'path': metadata, tensor pairs, their shapes and types (the checks that
 * need no base model). Errors name the file and the tensor: "'x.gguf': LoRA tensor
 * 'blk.0.attn_q.weight.lora_a' has no matching 'blk.0.attn_q.weight.lora_b'". On failure *out
 * is NULL. */
int lora_adapter_load(const char *path, struct lora_adapter **out, struct tw_err *err);
/* The same over an open file ('name' is used in messages); the file may be closed afterwards. */
int lora_adapter_from_gguf(const struct gguf_file *f, const char *name, struct lora_adapter **out,
                           struct tw_err *err);
/* An empty adapter for base architecture 'arch' with 'alpha' (0: no alpha key is written and the
 * scale is the user scale), to fill with lora_adapter_add and save with lora_adapter_write. */
int lora_adapter_new(const char *arch, float alpha, struct lora_adapter **out, struct tw_err *err);
/* Adds (copies) one adapted tensor: base tensor 'name' of ne [n_in, n_out], A (r, n_in) and
 * B (n_out, r) row-major f32 (for "token_embd.weight": A (n_out, r), B (n_in, r), as in the file).
 * A name added twice, a bad rank or shape is TW_EINVAL. */
int lora_adapter_add(struct lora_adapter *a, const char *name, int64_t n_in, int64_t n_out, int r,
                     const float *A, const float *B, struct tw_err *err);
/* Writes the adapter as a GGUF file llama.cpp loads (F32 tensors, general.type, adapter.type,
 * adapter.lora.alpha, general.architecture), atomically (temp + rename). */
int lora_adapter_write(const struct lora_adapter *a, const char *path, struct tw_err *err);
void lora_adapter_free(struct lora_adapter *a);

const char *lora_adapter_arch(const struct lora_adapter *a);
float lora_adapter_alpha(const struct lora_adapter *a);
int lora_adapter_n_weights(const struct lora_adapter *a);
/* The i-th adapted tensor (0 <= i < n_weights): sorted by name when loaded, else in order added. */
const struct lora_weight *lora_adapter_weight(const struct lora_adapter *a, int i);
/* The adapted tensor for base tensor 'name' (len bytes, not NUL-terminated), or NULL. */
const struct lora_weight *lora_adapter_find(const struct lora_adapter *a, const char *name,
                                            size_t len);
/* The multiplier s for the adapter's tensor w at 'user_scale' (llama.cpp's get_scale). */
float lora_scale(const struct lora_adapter *a, const struct lora_weight *w, float user_scale);

/* Checks the adapter against a base model file: same general.architecture, every adapted tensor
 * present in the base, 2-D, of matching shape (lora_a not transposed, flipped token_embd).
 * Errors name the tensor: "LoRA pair 'blk.0.attn_k.weight.lora_a' [64, 4], '.lora_b' [4, 64]
 * does not fit base [64, 32]; expected lora_a [n_in, r], lora_b [r, n_out]". */
int lora_adapter_check(const struct lora_adapter *a, const struct gguf_file *base,
                       struct tw_err *err);

/* ---- math (the decoder and merge call these) ---- */

/* y[t] += s * B (A x[t]) for n_tok tokens: x (n_tok, n_in), y (n_tok, n_out), tokens split
 * across 'pool' (may be NULL). Not for embd weights. */
void lora_matmul_add(const struct lora_weight *w, float s, const float *x, int64_t n_tok, float *y,
                     struct tw_pool *pool);
/* x (n_in = C) += s * B A[id]: the embedding row of token 'id' (embd weights only). */
void lora_embd_add(const struct lora_weight *w, float s, int32_t id, float *x);
/* logits (n_out = V) += s * A (B^T x) for an output tied to token_embd (embd weights only): the
 * logits the merged embedding matrix would give. */
void lora_embd_logits_add(const struct lora_weight *w, float s, const float *x, float *logits);
/* W += s * (B·A) over a row-major (n_out, n_in) f32 matrix (for embd: W[v][c] += s * A[v]·B[c]),
 * rows split across 'pool' (may be NULL). Deltas are summed over k in double, as ggml does. */
void lora_delta_add(const struct lora_weight *w, float s, float *W, struct tw_pool *pool);

/* ---- merge (lora_merge.c) ---- */

struct lora_merge_input {
    const struct lora_adapter *a;
    float scale; // user scale
};

struct lora_merge_stats {
    int64_t n_tensors; // tensors written
    int64_t n_merged;  // of which had an adapter folded in
};

/* Writes base model 'base' with every adapted tensor replaced by W + sum_i s_i (B_i·A_i), as
 * llama-export-lora does, to 'out' (atomically). 'type' NULL: merged tensors are F32 when the
 * base tensor is F32, else F16 (quantized bases are dequantized first); other tensors and all
 * metadata are copied; general.file_type becomes MOSTLY_F16 (1) if any merged tensor is F16,
 * else stays the base's (ALL_F32, 0, when absent). 'type' one of kq_quantize_types(): the merge
 * is done in F32 and the whole model then converted as kq_quantize_file does. Every adapter
 * must pass lora_adapter_check against 'base'. */
int lora_merge_file(const char *base, const struct lora_merge_input *in, int n_in, const char *out,
                    const char *type, struct tw_pool *pool, struct lora_merge_stats *st,
                    struct tw_err *err);

#endif
