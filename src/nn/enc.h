/* enc.h - the BERT-family encoder for embeddings (architecture `bert` as llama.cpp reads it).
 *
 *     x  = token_embd[id] + token_types[0] + position_embd[pos]
 *     x  = layernorm(x) * token_embd_norm.w + .b
 *     for each layer (post-LayerNorm):
 *         q, k, v = Wq x + bq, Wk x + bk, Wv x + bv
 *         x = layernorm(x + Wo softmax(q k^T / sqrt(d)) v + bo) * attn_output_norm
 *         x = layernorm(x + Wdown gelu(Wup x + bup) + bdown) * layer_output_norm
 *     pooled = mean over tokens (pooling_type 1) or the first token, [CLS] (2)
 *
 * Attention is bidirectional within a sequence; sequences of a batch never see each other.
 * GELU is llama.cpp's: the tanh approximation read from an F16 table (inputs and outputs
 * rounded to F16; x <= -10 gives 0, x >= 10 gives x), so our outputs match its to float
 * rounding rather than differing by the ~1e-3 of an exact erf-GELU.
 * Ownership and threads: a model is immutable after load and may be shared across threads;
 * enc_encode uses the caller's pool (NULL: single-threaded) and allocates its own scratch.
 */
#ifndef TW_ENC_H
#define TW_ENC_H

#include "base/err.h"
#include "base/pool.h"
#include "nn/gguf.h"

#include <stdbool.h>
#include <stdint.h>

enum enc_pooling { ENC_POOL_NONE = 0, ENC_POOL_MEAN = 1, ENC_POOL_CLS = 2 };

struct enc_hparams {
    int n_vocab;
    int n_ctx;    // maximum tokens per sequence (position embeddings)
    int n_embd;   // C
    int n_layer;
    int n_head;
    int n_ff;
    int n_token_types;
    float ln_eps; // attention.layer_norm_epsilon
    enum enc_pooling pooling;
};

struct enc_model;

/* Opens 'path' (GGUF, architecture bert), checks hyperparameters, tensor names, shapes and
 * types, and returns a model that owns the mapping. Errors name the file and the problem. */
int enc_model_load(const char *path, struct enc_model **out, struct tw_err *err);
/* The same over a file the caller keeps open until after enc_model_free. */
int enc_model_from_gguf(const struct gguf_file *f, struct enc_model **out, struct tw_err *err);
void enc_model_free(struct enc_model *m);
const struct enc_hparams *enc_model_hparams(const struct enc_model *m);
const struct gguf_file *enc_model_gguf(const struct enc_model *m);

/* Encodes n_seq sequences (seq i: ids[i][0..n_ids[i]), 1 <= n_ids[i] <= n_ctx). Writes the
 * pooled vector of each sequence to pooled[i * n_embd] (L2-normalized if 'normalize') and, if
 * 'hidden' is non-NULL, every token's final hidden state, sequences one after another
 * (sum(n_ids) * n_embd floats). 'pooling' ENC_POOL_NONE uses the model's own. Ids outside the
 * vocabulary or sequences longer than n_ctx are TW_EINVAL / TW_ELIMIT. */
int enc_encode(const struct enc_model *m, const int32_t *const *ids, const int *n_ids, int n_seq,
               enum enc_pooling pooling, bool normalize, float *pooled, float *hidden,
               struct tw_pool *pool, struct tw_err *err);

/* llama.cpp's CPU GELU (see above), for tests. */
float enc_gelu(float x);

#endif
