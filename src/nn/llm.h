/* llm.h - the Llama-family decoder: model load from GGUF, KV cache, forward pass.
 *
 * Architectures: `llama` (also Mistral, SmolLM, TinyLlama: same graph) and `qwen2` (QKV bias,
 * NEOX RoPE). One block, for each of n_layer layers, over the residual stream x (T tokens, C):
 *
 *     h  = rmsnorm(x) * attn_norm
 *     q, k, v = Wq h (+bq), Wk h (+bk), Wv h (+bv)        GQA: n_head_kv <= n_head K/V heads
 *     q, k = rope(q, k, pos)                               NORM (pairs 2i,2i+1) or NEOX (i, i+d/2)
 *     x += Wo softmax(q k^T / sqrt(d) + causal) v          K, V appended to the KV cache
 *     h  = rmsnorm(x) * ffn_norm
 *     x += Wdown (silu(Wgate h) * Wup h)
 *
 * then logits = Wout rmsnorm(x) * output_norm, with Wout = token_embd when output.weight is
 * absent (tied). Weights of any type kq_matmul supports are used in place from the mapping;
 * norms and biases are copied out as F32. A model whose architecture or tensor types are not
 * supported is refused with a message naming what is missing.
 *
 * KV cache (per context, one per conversation), F32 or F16, in nn/attn.h's layout:
 *
 *     k[layer][kv_head][pos / 32][head_dim][pos % 32]   keys transposed in blocks of 32
 *     v[layer][kv_head][pos][head_dim rounded up to 16]
 *
 * Attention is tiled (flash-attention style, nn/attn.h): a row's result depends on its own
 * query and the cache only, so it is the same whatever the chunking or the thread count.
 * llm_decode() appends n tokens at positions n_past..n_past+n-1: prompt tokens go through each
 * matmul together (batched prefill, in chunks of at most LLM_BATCH_MAX tokens), then one token
 * at a time for generation. Passing the context limit is an error (TW_ELIMIT), nothing is
 * written.
 *
 * Ownership and threads: a model is immutable after load and may be shared by any number of
 * contexts on any threads; it must outlive them. A context is used by one thread at a time; it
 * owns its KV cache, scratch and a pool of n_threads workers for the matmuls and attention.
 */
#ifndef TW_LLM_H
#define TW_LLM_H

#include "base/err.h"
#include "nn/gguf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LLM_BATCH_MAX 512

enum llm_arch { LLM_ARCH_LLAMA = 0, LLM_ARCH_QWEN2 };
enum llm_kv_type { LLM_KV_F32 = 0, LLM_KV_F16 };

struct llm_hparams {
    enum llm_arch arch;
    int n_vocab;      // V
    int n_ctx_train;  // context length the model was trained for
    int n_embd;       // C
    int n_layer;
    int n_head;       // H
    int n_head_kv;    // K/V heads (GQA), divides n_head
    int head_dim;     // per head, usually C / H
    int n_ff;         // FFN hidden size
    int n_rot;        // rotated dims per head (<= head_dim)
    bool rope_neox;   // half-split rotation (qwen2) instead of adjacent pairs (llama)
    float rope_base;  // rope.freq_base (10000 when absent)
    float rope_scale; // position multiplier: 1 / rope.scaling.factor (linear), 1 when absent
    float rms_eps;    // attention.layer_norm_rms_epsilon
    bool tied_output; // output.weight absent: logits use token_embd
};

struct llm_model;

/* Opens 'path' (GGUF), checks architecture, hyperparameters, tensor names, shapes and types,
 * and returns a model that owns the mapping. Errors name the file and what is wrong or missing:
 * "'m.gguf': architecture 'gpt2' is not supported (llama, qwen2)". */
int llm_model_load(const char *path, struct llm_model **out, struct tw_err *err);
/* The same over an open file that the caller keeps open (and closes) after llm_model_free. */
int llm_model_from_gguf(const struct gguf_file *f, struct llm_model **out, struct tw_err *err);
void llm_model_free(struct llm_model *m);
const struct llm_hparams *llm_model_hparams(const struct llm_model *m);
/* The file the model reads (for the tokenizer and metadata); lives as long as the model. */
const struct gguf_file *llm_model_gguf(const struct llm_model *m);
int llm_n_vocab(const struct llm_model *m);
/* Bytes of weights one token's forward pass reads (every matrix once, embeddings one row). */
uint64_t llm_model_weight_bytes(const struct llm_model *m);

struct lora_adapter;

/* Applies LoRA adapter 'a' (nn/lora.h) at user scale 'scale' at run time: every later forward
 * pass adds s * B (A x) to the matmuls of the adapted weights (s = scale * alpha / r), adds
 * s * B A[id] to adapted token embeddings and, when the output is tied to token_embd, the
 * matching logits term (the logits of the merged model). Several adapters may be applied (up
 * to LORA_MAX_ADAPTERS); they add up. The adapter is checked against the model's file first;
 * an adapter for another architecture, a tensor the base lacks or one of another shape, or a
 * tensor the decoder does not multiply by (norms, biases) is an error and changes nothing.
 * 'a' is borrowed and must outlive the model. Call it before making contexts (the model is
 * otherwise immutable). */
int llm_model_apply_lora(struct llm_model *m, const struct lora_adapter *a, float scale,
                         struct tw_err *err);

struct llm_ctx;

/* A context of n_ctx positions (n_ctx <= 0: the model's n_ctx_train, at most 4096) with a KV
 * cache of 'kv' type and n_threads workers (<= 0: all CPUs). n_ctx above 1<<20 or a cache that
 * cannot be allocated is an error. */
int llm_ctx_new(const struct llm_model *m, int n_ctx, enum llm_kv_type kv, int n_threads,
                struct llm_ctx **out, struct tw_err *err);
void llm_ctx_free(struct llm_ctx *c);
/* Forgets every position (an empty KV cache). */
void llm_ctx_reset(struct llm_ctx *c);
/* Keeps the first n_past positions (n_past <= current), e.g. to reuse a shared prompt prefix. */
void llm_ctx_truncate(struct llm_ctx *c, int n_past);
int llm_ctx_n_past(const struct llm_ctx *c);
int llm_ctx_n_ctx(const struct llm_ctx *c);
int llm_ctx_n_threads(const struct llm_ctx *c);

enum llm_decode_flags {
    LLM_LOGITS_ALL = 1 << 0, // logits for every token (n * n_vocab floats), not just the last
};

/* Runs ids[0..n) through the model at the next n positions. If 'logits' is non-NULL it receives
 * n_vocab floats for the last token, or n * n_vocab with LLM_LOGITS_ALL. Ids outside the
 * vocabulary are TW_EINVAL and more tokens than the context has room for are TW_ELIMIT; in both
 * cases the context is unchanged. */
int llm_decode(struct llm_ctx *c, const int32_t *ids, int n, float *logits, unsigned flags,
               struct tw_err *err);

#endif
