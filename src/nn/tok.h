/* tok.h - tokenizers built from GGUF metadata, matching llama.cpp's ids exactly.
 *
 *   tokenizer.ggml.model   kind      algorithm
 *   "llama"                TOK_SPM   SentencePiece-style bigram merges by score, byte fallback
 *                                    <0xNN>, space prefix, ' ' -> U+2581
 *   "gpt2"                 TOK_BPE   byte-level BPE by merge rank after a regex pre-split chosen
 *                                    by tokenizer.ggml.pre (gpt-2, llama-bpe/llama3, qwen2,
 *                                    smollm, starcoder, refact, falcon, mpt, deepseek-llm,
 *                                    deepseek-coder, default, ...)
 *   "bert"                 TOK_WPM   WordPiece: strip accents (NFD), lowercase, split on
 *                                    whitespace/punctuation/CJK, greedy longest match, [UNK]
 *
 * Encoding first splits the text on special tokens (control and unknown tokens only when
 * parse_special is set; user-defined tokens always, as llama.cpp does), then runs the model's
 * algorithm on each text fragment. add_special adds BOS/EOS (SPM, BPE, per the add_* flags) or
 * [CLS] ... [SEP] (WPM). Decoding maps ids back to bytes: byte tokens, U+2581 -> ' ', the GPT-2
 * byte decoder, and the clean-up of spaces before punctuation that the vocab asks for.
 *
 * A struct tok copies what it needs from the GGUF file (the file may be closed afterwards), is
 * immutable after tok_new_from_gguf and may be used from any number of threads at once.
 */
#ifndef TW_TOK_H
#define TW_TOK_H

#include "base/buf.h"
#include "base/err.h"
#include "nn/gguf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOK_NULL (-1) // "no such token" (an absent special id)

enum tok_kind { TOK_SPM = 1, TOK_BPE = 2, TOK_WPM = 3 };

/* Token attributes (llama.cpp's llama_token_attr), from tokenizer.ggml.token_type plus the
 * adjustments llama.cpp makes by token text (EOT/EOG tokens become CONTROL, ...). */
enum tok_attr {
    TOK_ATTR_UNDEFINED = 0,
    TOK_ATTR_UNKNOWN = 1 << 0,
    TOK_ATTR_UNUSED = 1 << 1,
    TOK_ATTR_NORMAL = 1 << 2,
    TOK_ATTR_CONTROL = 1 << 3,
    TOK_ATTR_USER_DEFINED = 1 << 4,
    TOK_ATTR_BYTE = 1 << 5,
    TOK_ATTR_LSTRIP = 1 << 7,
    TOK_ATTR_RSTRIP = 1 << 8,
};

struct tok;

/* Builds the tokenizer described by f's tokenizer.ggml.* keys. Unknown models or
 * pre-tokenizers, missing or mistyped arrays and out-of-range ids are errors naming the key
 * (TW_EFORMAT or TW_EUNSUP). On success *out is a new tokenizer; free it with tok_free(). */
int tok_new_from_gguf(const struct gguf_file *f, struct tok **out, struct tw_err *err);
void tok_free(struct tok *t);

/* Tokenizes text[0..len). Writes at most 'cap' ids and sets *n_out to the number of ids the
 * text needs; if that exceeds cap, returns TW_ELIMIT (call again with a bigger buffer; ids may
 * be NULL with cap 0 just to count). Any
 * bytes are accepted (invalid UTF-8 is read as U+FFFD, as llama.cpp does). Texts longer than
 * TOK_MAX_TEXT bytes are refused with TW_ELIMIT (*n_out stays 0); a pathological word on which
 * a pre-tokenizer regex exceeds PCRE2's match limits gives TW_EUNSUP. */
#define TOK_MAX_TEXT ((size_t)1 << 28)
int tok_encode(const struct tok *t, const char *text, size_t len, bool add_special,
               bool parse_special, int32_t *ids, size_t cap, size_t *n_out, struct tw_err *err);

/* The bytes token 'id' stands for (llama_token_to_piece with lstrip 0): control and unknown
 * tokens give "" unless 'special'. Returns the piece length; if it exceeds cap nothing is
 * written and the negated length is returned. An id out of range gives 0. */
int32_t tok_piece(const struct tok *t, int32_t id, bool special, char *buf, size_t cap);

/* Appends the text of ids[0..n) to 'out' (llama_detokenize): remove_special drops a leading
 * BOS / trailing EOS the vocab adds; unparse_special renders control tokens. Returns 0 or the
 * buffer's error. */
int tok_decode(const struct tok *t, const int32_t *ids, size_t n, bool remove_special,
               bool unparse_special, struct tw_buf *out);

enum tok_kind tok_kind(const struct tok *t);
int32_t tok_n_vocab(const struct tok *t);
/* Special ids, TOK_NULL when the vocab has none. For WPM, BOS is [CLS] and SEP is [SEP]. */
int32_t tok_bos(const struct tok *t);
int32_t tok_eos(const struct tok *t);
int32_t tok_eot(const struct tok *t);
int32_t tok_unk(const struct tok *t);
int32_t tok_sep(const struct tok *t);
int32_t tok_pad(const struct tok *t);
int32_t tok_nl(const struct tok *t);
bool tok_add_bos(const struct tok *t);
bool tok_add_eos(const struct tok *t);
/* True for ids that end generation (EOS, EOT, EOM and tokens such as <|im_end|>). */
bool tok_is_eog(const struct tok *t, int32_t id);
/* The token's vocabulary text (not NUL-terminated; *len set); NULL when id is out of range. */
const char *tok_token_text(const struct tok *t, int32_t id, size_t *len);
/* Attribute bits (enum tok_attr); 0 when id is out of range. */
unsigned tok_attr(const struct tok *t, int32_t id);
/* Id of the token whose text is exactly text[0..len), or TOK_NULL. */
int32_t tok_find(const struct tok *t, const char *text, size_t len);

#endif
