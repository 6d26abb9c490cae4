/* train.h - training core: ops with forward + hand-written backward, LoRA, AdamW, LR schedules,
 * a seeded RNG, and a small Llama-family training graph assembled from the ops.
 *
 * Conventions (the same as the inference engine and GGUF):
 *   - Everything is row-major. Activations are [n_tok][C]: n_tok = n_seq * T tokens, sequence
 *     after sequence. A weight W is [n_out][n_in] (GGUF ne = [n_in, n_out]); a matmul computes
 *     y[t][o] = sum_i W[o][i] x[t][i] (+ b[o]).
 *   - Backward functions ADD into their gradient outputs (dx += ..., dW += ...), as in llm.c: a
 *     tensor used twice (a residual stream, tied embeddings) or over several micro-batches simply
 *     accumulates. Callers zero gradients before the first contribution. A gradient output given
 *     as NULL is not computed.
 *   - Forward functions overwrite their outputs, except where a contract says "adds".
 *
 * Precision: every op and the model exist twice from one source (train_ops.c, train_model.c):
 * the f32 versions used for training, and *_f64 twins with double in place of float, compiled
 * from the same text with a type switch (train_ops_f64.c, train_model_f64.c). The twins exist
 * for gradient checks: central finite differences taken on the double forward are exact enough
 * (~1e-10) to judge the f32 analytic gradients; see docs/training.md. The f32 graph runs its
 * matmuls and attention through the kq kernels (train_*_kq, train_quant.c); the plain ops are
 * their definitions.
 *
 * Files: train_ops.c (ops), train_optim.c (rng, AdamW, clipping, schedules), train_model.c (the
 * graph), train_quant.c (kq paths), train_gguf.c (GGUF models, adapters, checkpoints).
 *
 *   layer l (pre-norm Llama block), n_tok tokens:
 *     x ─┬─ rmsnorm(attn_norm) ─ q,k,v = W x (+LoRA) ─ rope(q,k) ─ causal GQA attention ─ Wo ─(+)─┐
 *        └──────────────────────────────────────────────────────────────────────────────────────┘
 *     h ─┬─ rmsnorm(ffn_norm) ─ down( silu(gate x) * (up x) ) ─(+)─▶ next layer
 *        └─────────────────────────────────────────────────────┘
 *   final: rmsnorm(output_norm) ─ output (or tied token_embd) ─ logits ─ cross-entropy(mask)
 *
 * Thread-safety: ops are pure functions of their arguments; those taking a tw_pool split rows
 * across it (NULL pool = the calling thread). A train_llama belongs to one thread. The RNG is a
 * value owned by its caller.
 */
#ifndef TW_TRAIN_H
#define TW_TRAIN_H

#include "base/err.h"
#include "base/pool.h"
#include "nn/gguf.h"

#include <stddef.h>
#include <stdint.h>

/* ---- RNG: xoshiro256** seeded through splitmix64 ---- */

/* The whole generator state: save it by copying the struct (or train_rng_save for a portable
 * byte form) and the sequence resumes exactly. */
struct train_rng {
    uint64_t s[4];
};

#define TRAIN_RNG_STATE_BYTES 32

void train_rng_seed(struct train_rng *rng, uint64_t seed);
uint64_t train_rng_next(struct train_rng *rng);
/* Uniform in [0, 1) with 24 random bits (exactly representable as float and double). */
float train_rng_float(struct train_rng *rng);
/* Standard normal (Box-Muller on two 53-bit uniforms). */
double train_rng_normal(struct train_rng *rng);
/* Little-endian bytes of the state, for checkpoints. */
void train_rng_save(const struct train_rng *rng, uint8_t out[TRAIN_RNG_STATE_BYTES]);
/* Restores a saved state. Returns TW_EFORMAT if the bytes are not a valid state (all zero). */
int train_rng_restore(struct train_rng *rng, const uint8_t in[TRAIN_RNG_STATE_BYTES],
                      struct tw_err *err);

/* ---- ops (f32) ---- */

/* Token embedding, a gather: x[t] = emb[tok[t]] (C values). Ids must be < n_vocab (checked by
 * the caller: these ops never see unvalidated input). */
void train_embed_fwd(const float *emb, int C, const int32_t *tok, int n_tok, float *x);
/* Scatter-add: demb[tok[t]] += dx[t]. */
void train_embed_bwd(float *demb, int C, const int32_t *tok, int n_tok, const float *dx);

/* RMSNorm with weight: y[t] = x[t] * rstd[t] * w, rstd[t] = 1 / sqrt(mean(x[t]^2) + eps).
 * Saves rstd [n_tok] for the backward. */
void train_rmsnorm_fwd(const float *x, const float *w, int n_tok, int C, float eps, float *y,
                       float *rstd);
void train_rmsnorm_bwd(const float *dy, const float *x, const float *w, const float *rstd,
                       int n_tok, int C, float *dx, float *dw);

/* y = x W^T (+ b): x [n_tok][n_in], W [n_out][n_in], b [n_out] or NULL, y [n_tok][n_out].
 * Split across the pool by output rows. */
void train_matmul_fwd(const float *x, const float *w, const float *b, int n_tok, int n_in,
                      int n_out, float *y, struct tw_pool *pool);
/* dx += dy W, dW += dy^T x, db += sum_t dy. dx is split across the pool by input columns, dW
 * by its rows; each element is summed in the same order whatever the thread count. */
void train_matmul_bwd(const float *dy, const float *x, const float *w, int n_tok, int n_in,
                      int n_out, float *dx, float *dw, float *db, struct tw_pool *pool);

/* RoPE types, numbered as in llama.cpp: NORM rotates adjacent pairs (2i, 2i+1) (llama arch),
 * NEOX rotates (i, i + n_rot/2) (HF half-split: qwen2 and others). */
enum train_rope { TRAIN_ROPE_NORM = 0, TRAIN_ROPE_NEOX = 2 };

struct train_rope_cfg {
    enum train_rope mode;
    int n_rot;                 // rotated dims per head: even, <= head_dim
    float base;                // rope.freq_base (10000)
    float freq_scale;          // position multiplier, 1 / linear scaling factor (1: none)
    const float *freq_factors; // [n_rot / 2] divisors (rope_freqs.weight) or NULL
};

/* Rotates, in place, the first n_rot dims of each head of x [n_tok][n_head][head_dim] at
 * position pos[t]: pair i turns by freq_scale * pos * base^(-2i/n_rot) / freq_factors[i], the
 * power built by repeated multiplication as llama.cpp and our decoder do. */
void train_rope_fwd(float *x, int n_tok, int n_head, int head_dim, const int32_t *pos,
                    const struct train_rope_cfg *rc);
/* The backward is the inverse rotation, applied in place to the gradient. */
void train_rope_bwd(float *dx, int n_tok, int n_head, int head_dim, const int32_t *pos,
                    const struct train_rope_cfg *rc);

/* Causal self-attention with grouped-query heads over n_seq independent sequences of T tokens:
 * q [n_seq*T][n_head*hd], k and v [n_seq*T][n_head_kv*hd]; head h reads kv head
 * h / (n_head / n_head_kv). Scores are q.k / sqrt(hd), softmax over positions <= i. Saves the
 * probabilities att [n_seq][n_head][T][T] (zero above the diagonal); out [n_seq*T][n_head*hd].
 * n_head must be a multiple of n_head_kv. Split across the pool by (sequence, kv head). */
void train_attn_fwd(const float *q, const float *k, const float *v, int n_seq, int T, int n_head,
                    int n_head_kv, int hd, float *att, float *out, struct tw_pool *pool);
void train_attn_bwd(const float *dout, const float *q, const float *k, const float *v,
                    const float *att, int n_seq, int T, int n_head, int n_head_kv, int hd,
                    float *dq, float *dk, float *dv, struct tw_pool *pool);

/* SwiGLU: h = silu(g) * u over n values; silu(g) = g / (1 + exp(-g)). */
void train_swiglu_fwd(const float *g, const float *u, size_t n, float *h);
void train_swiglu_bwd(const float *dh, const float *g, const float *u, size_t n, float *dg,
                      float *du);

/* Residual add y = a + b; its backward is train_acc(da, dy) and train_acc(db, dy). */
void train_add_fwd(const float *a, const float *b, size_t n, float *y);
void train_acc(float *dst, const float *src, size_t n);

/* Cross-entropy of logits [n_tok][V] against targets [n_tok], averaged over the positions
 * where mask[t] != 0 (mask NULL: every position). Log-softmax is taken as x - max - log(sum
 * exp(x - max)). Saves the softmax in probs [n_tok][V] (may be the logits buffer itself).
 * Returns the mean loss, 0 when no position counts. Targets of counted positions must be < V. */
float train_xent_fwd(const float *logits, const int32_t *targets, const uint8_t *mask, int n_tok,
                     int V, float *probs);
/* dlogits += dloss / n_counted * (probs - onehot(target)) on counted positions. */
void train_xent_bwd(const float *probs, const int32_t *targets, const uint8_t *mask, int n_tok,
                    int V, float dloss, float *dlogits);

/* ---- LoRA: y = W x + scale * B (A drop(x)), scale = alpha / r ---- */

#define TRAIN_LORA_MAX_RANK 256

/* Dropout multipliers for the LoRA input: drop[i] = 0 with probability p, else 1 / (1 - p),
 * drawn from rng (so a saved rng state replays the same masks). 0 <= p < 1. */
void train_dropout_mask(struct train_rng *rng, float p, size_t n, float *drop);
/* Adds the adapter's contribution to y [n_tok][n_out]: u = A (x * drop) is saved [n_tok][r],
 * then y += scale * B u. A is [r][n_in], B is [n_out][r]; drop is [n_tok][n_in] or NULL (no
 * dropout). r <= TRAIN_LORA_MAX_RANK. The frozen base product W x is the caller's. */
void train_lora_fwd(const float *x, const float *drop, int n_tok, int n_in, int n_out, int r,
                    const float *a, const float *b, float scale, float *u, float *y);
/* dA, dB += their gradients; dx += the adapter path's share (the base path's share comes from
 * the base matmul's backward, with W frozen). */
void train_lora_bwd(const float *dy, const float *x, const float *drop, const float *u, int n_tok,
                    int n_in, int n_out, int r, const float *a, const float *b, float scale,
                    float *dx, float *da, float *db);

/* ---- frozen weights of any kq type (QLoRA) ---- */

/* y = W x through kq_matmul, with W n_out rows of n_in values of type t (kq_type_supported). */
void train_qmatmul_fwd(enum gguf_ttype t, const void *w, int n_in, int n_out, const float *x,
                       int n_tok, float *y, struct tw_pool *pool);
/* dx += dy W for a frozen W of type t: each thread dequantizes its block-aligned column slice
 * of every row on the fly (kq_dequant), so no f32 copy of W is ever made. */
void train_qmatmul_bwd_x(enum gguf_ttype t, const void *w, int n_in, int n_out, const float *dy,
                         int n_tok, float *dx, struct tw_pool *pool);

/* The fast matmul backward, for W of any kq type (dW only for F32): dx += dy W, dW += dy^T x,
 * db += sum_t dy, as sums of outer products read straight from W (F32) or from blocks of 256
 * rows dequantized into 'scratch' (train_matmul_bwd_kq_scratch(n_tok, n_in) floats, independent
 * of n_out), with no transposed copies. Every element adds its terms in the definition's order
 * as a multiply then an add (no fused multiply-add): equal to train_matmul_bwd /
 * train_qmatmul_bwd_x up to rounding, and the same bits for any thread count and ISA. */
size_t train_matmul_bwd_kq_scratch(int n_tok, int n_in);
void train_matmul_bwd_kq(enum gguf_ttype t, const void *w, const float *x, const float *dy,
                         int n_tok, int n_in, int n_out, float *dx, float *dw, float *db,
                         float *scratch, struct tw_pool *pool);

/* Attention through the kq kernels: each thread of the pool takes whole heads (forward:
 * (sequence, head) pairs; backward: (sequence, kv head) pairs) and computes scores, outputs and
 * gradients as matmuls over contiguous copies in its own part of 'scratch'
 * (train_attn_kq_scratch(T, hd, n) floats for a pool of n threads, tw_pool_size). Same results
 * (up to rounding) as train_attn_fwd / train_attn_bwd, the definitions, and the same bits for
 * any thread count. The forward writes the probabilities to att (as the definition does) and/or
 * each row's log-sum-exp of the scaled scores to lse [n_seq][n_head][T]; either may be NULL.
 * The backward takes att, or, when att is NULL, recomputes the probabilities from q, k and lse:
 * O(T) saved per head instead of O(T^2). */
size_t train_attn_kq_scratch(int T, int hd, int n_threads);
void train_attn_fwd_kq(const float *q, const float *k, const float *v, int n_seq, int T, int n_head,
                       int n_head_kv, int hd, float *att, float *lse, float *out, float *scratch,
                       struct tw_pool *pool);
void train_attn_bwd_kq(const float *dout, const float *q, const float *k, const float *v,
                       const float *att, const float *lse, int n_seq, int T, int n_head,
                       int n_head_kv, int hd, float *dq, float *dk, float *dv, float *scratch,
                       struct tw_pool *pool);

/* The LoRA layer through the kq kernels: same contracts as train_lora_fwd / train_lora_bwd (the
 * definitions) with train_lora_kq_scratch(n_tok, n_in, n_out, r) floats of scratch. A zero B
 * still adds exactly nothing. */
size_t train_lora_kq_scratch(int n_tok, int n_in, int n_out, int r);
void train_lora_fwd_kq(const float *x, const float *drop, int n_tok, int n_in, int n_out, int r,
                       const float *a, const float *b, float scale, float *u, float *y,
                       float *scratch, struct tw_pool *pool);
void train_lora_bwd_kq(const float *dy, const float *x, const float *drop, const float *u,
                       int n_tok, int n_in, int n_out, int r, const float *a, const float *b,
                       float scale, float *dx, float *da, float *db, float *scratch,
                       struct tw_pool *pool);

/* ---- optimizer ---- */

/* One trainable (or frozen) tensor: its values, gradient and AdamW moments, n floats each.
 * g, m and v are NULL for a frozen tensor. 'decay' says whether weight decay applies (by
 * convention not to norms and biases). */
struct train_param {
    const char *name; // "blk.0.attn_q.weight", "blk.0.attn_q.weight.lora_a", ...
    float *w;
    float *g;
    float *m;
    float *v;
    size_t n;
    int64_t ne[2]; // GGUF shape: [n_in, n_out] for a matrix, [n, 1] for a vector
    int decay;
    const void *qdata;     // a frozen weight used in place (train_llama_set_frozen), or NULL
    enum gguf_ttype qtype; // its type
};

struct train_adamw {
    float beta1;        // 0.9
    float beta2;        // 0.999
    float eps;          // 1e-8
    float weight_decay; // decoupled (AdamW), e.g. 0.01; applied where param->decay
};

// clang-format off
#define TRAIN_ADAMW_DEFAULT {0.9f, 0.999f, 1e-8f, 0.0f}
// clang-format on

/* One AdamW update of every param with a gradient, at 1-based step t (bias correction
 * 1 - beta^t), PyTorch's order: w -= lr * wd * w; m, v updated; w -= lr * mhat / (sqrt(vhat) +
 * eps). Moments start at zero (the model allocates them zeroed).
 *
 * These four pass over every gradient element by element, split across 'pool' (NULL: the calling
 * thread) in pieces of a fixed size; the results do not depend on the thread count. */
void train_adamw_step(const struct train_adamw *opt, float lr, long t, struct train_param *p,
                      int n_params, struct tw_pool *pool);
/* Global L2 norm of all gradients (accumulated in double, in a fixed order). If max_norm > 0 and
 * the norm exceeds it, scales every gradient by max_norm / norm. Returns the norm before
 * clipping. */
double train_clip_grad_norm(struct train_param *p, int n_params, double max_norm,
                            struct tw_pool *pool);
/* A whole optimizer step in two passes over the parameters instead of four: the norm (returned),
 * then AdamW on the gradients scaled as clipping to max_norm would scale them (max_norm <= 0:
 * no clipping), zeroing each gradient once used. The same bits as train_clip_grad_norm,
 * train_adamw_step and train_grad_zero in turn; gradients are zero afterwards, ready for the
 * next step's backward. */
double train_optim_step(const struct train_adamw *opt, float lr, long t, struct train_param *p,
                        int n_params, double max_norm, struct tw_pool *pool);
/* Multiplies every gradient by s (e.g. 1/n after summing n micro-batches). */
void train_grad_scale(struct train_param *p, int n_params, float s, struct tw_pool *pool);
void train_grad_zero(struct train_param *p, int n_params, struct tw_pool *pool);

enum train_decay { TRAIN_DECAY_CONSTANT = 0, TRAIN_DECAY_LINEAR, TRAIN_DECAY_COSINE };

/* Learning rate for 0-based step 'step': linear warmup lr_max * (step + 1) / warmup for the
 * first 'warmup' steps, then decay from lr_max to lr_min over the remaining total - warmup
 * steps (constant, linear or cosine), lr_min afterwards. */
struct train_sched {
    enum train_decay decay;
    float lr_max;
    float lr_min;
    long warmup;
    long total;
};
float train_sched_lr(const struct train_sched *s, long step);

/* ---- a Llama-family training graph ---- */

struct train_llama_cfg {
    int n_vocab;
    int n_embd; // C
    int n_layer;
    int n_head;    // query heads
    int n_head_kv; // key/value heads (GQA); divides n_head
    int n_ff;      // SwiGLU hidden size
    int n_rot;     // rotated dims per head; 0 = head_dim
    enum train_rope rope_type;
    float rope_base;         // 10000
    float rope_freq_scale;   // position multiplier; 0 or 1 = none
    const float *rope_freqs; // [n_rot / 2] frequency divisors, copied; NULL = none
    float norm_eps;          // 1e-5
    int tied_output;         // output projection reuses token_embd
    int qkv_bias;            // attn_q/k/v have biases (qwen2)
};

/* LoRA targets (which projections get an adapter). */
enum train_lora_target {
    TRAIN_LORA_Q = 1 << 0,
    TRAIN_LORA_K = 1 << 1,
    TRAIN_LORA_V = 1 << 2,
    TRAIN_LORA_O = 1 << 3,
    TRAIN_LORA_GATE = 1 << 4,
    TRAIN_LORA_UP = 1 << 5,
    TRAIN_LORA_DOWN = 1 << 6,
    TRAIN_LORA_ALL = 0x7f,
};

#define TRAIN_LLAMA_MAX_TOKENS (1 << 20) // n_seq * T per forward
#define TRAIN_LLAMA_MAX_DIM    (1 << 16) // n_embd, n_ff
#define TRAIN_LLAMA_MAX_VOCAB  (1 << 20) // n_vocab (llama3: 128256, qwen2: 151936)
#define TRAIN_LLAMA_MAX_LAYER  256

struct train_llama;

/* Allocates a model with all weights trainable: matrices ~ N(0, 0.02), norm weights 1. The
 * config is validated (TW_EINVAL names the bad field). */
int train_llama_new(const struct train_llama_cfg *cfg, uint64_t seed, struct train_llama **out,
                    struct tw_err *err);
/* The same config as a frozen base to be given in-place weights: norms and biases are f32 (1 and
 * 0, to be written), nothing is trainable, and every matrix has no values (w NULL) until
 * train_llama_set_frozen gives it one; a forward before that is TW_ESTATE. Add adapters with
 * train_llama_add_lora. This is how a large quantized model is trained with LoRA without an f32
 * copy of its weights. */
int train_llama_new_frozen(const struct train_llama_cfg *cfg, struct train_llama **out,
                           struct tw_err *err);
void train_llama_free(struct train_llama *m);
const struct train_llama_cfg *train_llama_config(const struct train_llama *m);
/* The model's tensors in a fixed order (base tensors, then adapters' A and B per matrix), named
 * as in GGUF. The array and the tensors are the model's; w may be written (to load weights).
 * g, m and v are NULL for frozen tensors; w is NULL for a matrix read in place (qdata set, or
 * still unset in a train_llama_new_frozen model). */
struct train_param *train_llama_params(const struct train_llama *m, int *n_params);

/* Freezes every base tensor (their g/m/v become NULL) and adds rank-r adapters on the chosen
 * projections of every layer: A ~ U(-1/sqrt(n_in), 1/sqrt(n_in)) (PEFT's Kaiming-uniform with
 * a = sqrt(5)) from 'seed', B = 0, so the adapted model computes exactly what the base does
 * until the first update. dropout in [0, 1) applies to the adapter input. Once per model. */
int train_llama_add_lora(struct train_llama *m, unsigned targets, int r, float alpha, float dropout,
                         uint64_t seed, struct tw_err *err);
/* The adapter settings: returns 1 and fills the non-NULL outputs if the model has adapters, 0
 * otherwise. */
int train_llama_lora(const struct train_llama *m, unsigned *targets, int *r, float *alpha,
                     float *dropout);

/* Makes base tensor i (a matrix: token_embd, attn_*, ffn_*, output) a frozen weight of kq type
 * 'type' read in place from 'data' (n values, rows of n_in a multiple of the type's block), as
 * for QLoRA over a quantized GGUF. Its f32 values are no longer used; 'data' must outlive the
 * model. The tensor must already be frozen (after train_llama_add_lora). TW_EINVAL names the
 * tensor when the type or shape does not fit. */
int train_llama_set_frozen(struct train_llama *m, int i, enum gguf_ttype type, const void *data,
                           struct tw_err *err);

/* Runs the model on n_seq sequences of T tokens (tokens and targets [n_seq*T], mask as in
 * train_xent_fwd), saves what the backward needs, and sets *loss. LoRA dropout masks are drawn
 * from 'rng'; rng NULL means evaluation: no dropout. Token and target ids are checked against
 * n_vocab (TW_EINVAL). The activations are the model's, reused across calls. */
int train_llama_forward(struct train_llama *m, const int32_t *tokens, const int32_t *targets,
                        const uint8_t *mask, int n_seq, int T, struct train_rng *rng, float *loss,
                        struct tw_err *err);
/* The forward without a loss: logits [n_seq*T][n_vocab] of every position (raw, before
 * softmax), to evaluate or to compare with the inference decoder (rng NULL: no dropout).
 * Leaves no backward state. */
int train_llama_logits(struct train_llama *m, const int32_t *tokens, int n_seq, int T,
                       struct train_rng *rng, float *logits, struct tw_err *err);
/* Back-propagates dloss (1 for the mean loss; 1/n to average n micro-batches) from the last
 * forward and ADDS the gradients into every trainable tensor's g. TW_ESTATE without a forward. */
int train_llama_backward(struct train_llama *m, float dloss, struct tw_err *err);
/* Threads for the matmuls and attention (NULL: the calling thread). The pool must outlive use. */
void train_llama_set_pool(struct train_llama *m, struct tw_pool *pool);

/* ---- GGUF: base models and llama.cpp LoRA adapters (train_gguf.c) ---- */

struct llm_model;

/* A training graph with the weights of a decoder loaded by llm_model_load (its architecture,
 * hyperparameters, RoPE settings, biases, tied output). frozen = 0: every tensor is copied
 * (dequantized) into trainable f32 (full fine-tuning). frozen = 1: the base is frozen, norms and
 * biases are copied, and every matrix is read in place in its own type from the model's mapping
 * (LoRA / QLoRA: add adapters with train_llama_add_lora); 'lm' must then outlive the graph.
 * A model the graph cannot represent (head_dim * n_head != n_embd) is TW_EUNSUP. */
int train_llama_from_llm(const struct llm_model *lm, int frozen, struct train_llama **out,
                         struct tw_err *err);
/* Adds the adapters of a llama.cpp LoRA GGUF (read and checked by lora_adapter_from_gguf: F32,
 * F16 or BF16 pairs blk.N.<target>.weight.lora_a ne [n_in, r] / lora_b ne [r, n_out]) to a model
 * without adapters, as train_llama_add_lora would, with the file's values (dropout 0) and alpha
 * set so that alpha / r is llama.cpp's multiplier at user scale 1. Projections the file has no
 * adapter for get B = 0, i.e. none. Adapters on token_embd or output, of different ranks, or of
 * another shape than the model's are refused, naming the tensor. */
int train_llama_lora_load(struct train_llama *m, const struct gguf_file *f, struct tw_err *err);
/* Writes the model's adapters as a llama.cpp LoRA GGUF at 'path' through lora_adapter_write
 * (atomically: temp + rename): general.architecture = arch (the base model's),
 * adapter.lora.alpha, F32 tensors. */
int train_llama_lora_save(const struct train_llama *m, const char *arch, const char *path,
                          struct tw_err *err);

/* Writes the whole model as a GGUF at 'path' (atomically), readable by llm_model_load and
 * llama.cpp: the metadata of 'base' (the file the model came from, for its tokenizer; NULL: none)
 * with the architecture keys rewritten from the graph's config, every base tensor with the
 * adapters merged in (W + alpha/r B A, as llama-export-lora does) and the base's other tensors
 * (rope_freqs ...) as they are. Tensors are F32, except with 'requantize', where each matrix
 * read in place in a quantized type is quantized back to that type after merging (kq_quant).
 * For full fine-tuning, or training from scratch with a base's tokenizer, this is the trained
 * model. */
int train_llama_save_model(const struct train_llama *m, const struct gguf_file *base,
                           int requantize, const char *path, struct tw_err *err);
/* Writes the training state at 'path' (a GGUF, atomically): every trainable tensor with its AdamW
 * moments ("<name>", "<name>.adam_m", "<name>.adam_v", F32), the step, the rng state (if rng is
 * non-NULL) and the adapter settings. Frozen tensors are not written: they come from the base
 * model. */
int train_llama_checkpoint_save(const struct train_llama *m, long step, const struct train_rng *rng,
                                const char *path, struct tw_err *err);
/* Restores a checkpoint into a model built the same way (same config; adapters are added from
 * the checkpoint's settings if the model has none, and must match if it has). Sets *step and
 * *rng (when non-NULL). Every trainable tensor must be present with its shape, else an error
 * names it; on error the model's values may be partly overwritten. */
int train_llama_checkpoint_load(struct train_llama *m, const struct gguf_file *f, long *step,
                                struct train_rng *rng, struct tw_err *err);

/* ---- double-precision twins, for gradient checks ---- */

struct train_param_f64 {
    const char *name;
    double *w;
    double *g;
    double *m;
    double *v;
    size_t n;
    int64_t ne[2];
    int decay;
};

void train_embed_fwd_f64(const double *emb, int C, const int32_t *tok, int n_tok, double *x);
void train_embed_bwd_f64(double *demb, int C, const int32_t *tok, int n_tok, const double *dx);
void train_rmsnorm_fwd_f64(const double *x, const double *w, int n_tok, int C, double eps,
                           double *y, double *rstd);
void train_rmsnorm_bwd_f64(const double *dy, const double *x, const double *w, const double *rstd,
                           int n_tok, int C, double *dx, double *dw);
void train_matmul_fwd_f64(const double *x, const double *w, const double *b, int n_tok, int n_in,
                          int n_out, double *y, struct tw_pool *pool);
void train_matmul_bwd_f64(const double *dy, const double *x, const double *w, int n_tok, int n_in,
                          int n_out, double *dx, double *dw, double *db, struct tw_pool *pool);
void train_rope_fwd_f64(double *x, int n_tok, int n_head, int head_dim, const int32_t *pos,
                        const struct train_rope_cfg *rc);
void train_rope_bwd_f64(double *dx, int n_tok, int n_head, int head_dim, const int32_t *pos,
                        const struct train_rope_cfg *rc);
void train_attn_fwd_f64(const double *q, const double *k, const double *v, int n_seq, int T,
                        int n_head, int n_head_kv, int hd, double *att, double *out,
                        struct tw_pool *pool);
void train_attn_bwd_f64(const double *dout, const double *q, const double *k, const double *v,
                        const double *att, int n_seq, int T, int n_head, int n_head_kv, int hd,
                        double *dq, double *dk, double *dv, struct tw_pool *pool);
void train_swiglu_fwd_f64(const double *g, const double *u, size_t n, double *h);
void train_swiglu_bwd_f64(const double *dh, const double *g, const double *u, size_t n, double *dg,
                          double *du);
void train_add_fwd_f64(const double *a, const double *b, size_t n, double *y);
void train_acc_f64(double *dst, const double *src, size_t n);
double train_xent_fwd_f64(const double *logits, const int32_t *targets, const uint8_t *mask,
                          int n_tok, int V, double *probs);
void train_xent_bwd_f64(const double *probs, const int32_t *targets, const uint8_t *mask, int n_tok,
                        int V, double dloss, double *dlogits);
void train_dropout_mask_f64(struct train_rng *rng, float p, size_t n, double *drop);
void train_lora_fwd_f64(const double *x, const double *drop, int n_tok, int n_in, int n_out, int r,
                        const double *a, const double *b, double scale, double *u, double *y);
void train_lora_bwd_f64(const double *dy, const double *x, const double *drop, const double *u,
                        int n_tok, int n_in, int n_out, int r, const double *a, const double *b,
                        double scale, double *dx, double *da, double *db);

/* A double copy of an f32 model (weights, adapters, config): same tensors in the same order,
 * same forward. Its forward consumes the rng exactly as the f32 forward does, so equal rng
 * states give equal dropout masks. */
struct train_llama_f64;
int train_llama_f64_from(const struct train_llama *src, struct train_llama_f64 **out,
                         struct tw_err *err);
void train_llama_f64_free(struct train_llama_f64 *m);
struct train_param_f64 *train_llama_f64_params(const struct train_llama_f64 *m, int *n_params);
int train_llama_f64_forward(struct train_llama_f64 *m, const int32_t *tokens,
                            const int32_t *targets, const uint8_t *mask, int n_seq, int T,
                            struct train_rng *rng, double *loss, struct tw_err *err);
int train_llama_f64_backward(struct train_llama_f64 *m, double dloss, struct tw_err *err);

#endif
