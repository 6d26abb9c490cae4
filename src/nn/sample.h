/* sample.h - choosing the next token from logits, and stop conditions for generation.
 *
 * A sampler applies, in llama.cpp's default order, to a copy of the logits:
 *
 *     penalties (repeat, frequency, presence over the last n tokens)
 *       -> top-k -> top-p -> min-p -> temperature -> draw (seeded PRNG)
 *
 * With temp <= 0 the draw is replaced by argmax (greedy; penalties still apply, the lowest id
 * wins a tie). The PRNG is our own xoshiro256** seeded through splitmix64, so the same seed, model
 * and prompt give the same tokens on every machine.
 *
 * Stop strings are matched on the generated text by llm_stop_scan(), which also says how many
 * trailing bytes might be the start of a stop string so a streaming caller holds them back.
 *
 * Ownership: a sampler owns its scratch (n_vocab candidates) and its history; free it with
 * llm_sampler_free(). Thread-safety: one thread uses a sampler at a time.
 */
#ifndef TW_SAMPLE_H
#define TW_SAMPLE_H

#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct llm_sampler_params {
    float temp;             // <= 0: greedy
    int top_k;              // <= 0: off
    float top_p;            // >= 1: off
    float min_p;            // <= 0: off
    float repeat_penalty;   // 1: off; > 1 discourages tokens seen in the window
    float freq_penalty;     // subtracted per occurrence in the window; 0: off
    float presence_penalty; // subtracted once if present in the window; 0: off
    int penalty_last_n;     // window of past tokens for the penalties (0: off)
    uint64_t seed;
};

/* llama.cpp's defaults: temp 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalties, window 64. */
#define LLM_SAMPLER_PARAMS_DEFAULT {0.8f, 40, 0.95f, 0.05f, 1.0f, 0.0f, 0.0f, 64, 0}

struct llm_sampler;

/* Makes a sampler for logits of n_vocab entries (1 <= n_vocab <= 1<<24). Parameters out of range
 * (negative top-p, repeat_penalty <= 0, ...) are TW_EINVAL with a message naming the option. */
int llm_sampler_new(const struct llm_sampler_params *p, int n_vocab, struct llm_sampler **out,
                    struct tw_err *err);
void llm_sampler_free(struct llm_sampler *s);
/* Records a token as part of the context (prompt or generated) for the penalties. */
void llm_sampler_accept(struct llm_sampler *s, int32_t id);
/* Forgets the history and reseeds the PRNG with the original seed. */
void llm_sampler_reset(struct llm_sampler *s);
/* Picks a token from logits[0..n_vocab) (not modified). Does not call llm_sampler_accept. */
int32_t llm_sampler_sample(struct llm_sampler *s, const float *logits);

/* Argmax of logits[0..n) (lowest index on ties). */
int32_t llm_argmax(const float *logits, int n);

/* The PRNG, exposed for tests and other samplers: xoshiro256** state seeded by splitmix64. */
struct llm_rng {
    uint64_t s[4];
};
void llm_rng_seed(struct llm_rng *r, uint64_t seed);
uint64_t llm_rng_next(struct llm_rng *r);
/* Uniform in [0, 1) with 53 bits. */
double llm_rng_uniform(struct llm_rng *r);

/* Looks for any of stops[0..n_stops) (NUL-terminated, non-empty) in text[0..len).
 * Returns the byte offset of the earliest full match, or -1 when none. When none matches,
 * *hold is the length of the longest suffix of text that is a proper prefix of some stop string
 * (bytes a streaming caller should not print yet); it is 0 when a match is found. */
long llm_stop_scan(const char *text, size_t len, const char *const *stops, int n_stops,
                   size_t *hold);

#endif
