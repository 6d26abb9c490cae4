/* tok_int.h - internals shared by the tokenizer files (tok.c, tok_pre.c, unicode.c). */
#ifndef TW_TOK_INT_H
#define TW_TOK_INT_H

#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- unicode.c: code point classes as llama.cpp's unicode tables define them ---- */

enum tok_uc_flag {
    TOK_UC_UNDEFINED = 0x0001,   // unassigned (Cn)
    TOK_UC_NUMBER = 0x0002,      // \p{N}
    TOK_UC_LETTER = 0x0004,      // \p{L}
    TOK_UC_SEPARATOR = 0x0008,   // \p{Z}
    TOK_UC_MARK = 0x0010,        // \p{M}
    TOK_UC_PUNCTUATION = 0x0020, // \p{P}
    TOK_UC_SYMBOL = 0x0040,      // \p{S}
    TOK_UC_CONTROL = 0x0080,     // \p{C} other than Cn
    TOK_UC_CATEGORIES = 0x00ff,
    TOK_UC_WHITESPACE = 0x0100, // Unicode White_Space
};

/* Category flags of cp (one category bit, plus TOK_UC_WHITESPACE); TOK_UC_UNDEFINED for code
 * points past U+10FFFF. */
unsigned tok_uc_flags(uint32_t cp);
/* Simple lowercase mapping (UnicodeData field 13), cp itself when none. */
uint32_t tok_uc_tolower(uint32_t cp);
/* First code point of cp's canonical decomposition (NFD), cp itself when none. */
uint32_t tok_uc_nfd_first(uint32_t cp);
/* Decodes one code point at s[*off] the way llama.cpp does (no overlong or surrogate checks;
 * an invalid sequence yields U+FFFD and consumes one byte) and advances *off. */
uint32_t tok_uc_decode(const char *s, size_t len, size_t *off);
/* UTF-8 of cp into out (1-4 bytes); code points past U+10FFFF are written as U+FFFD. */
size_t tok_uc_encode(uint32_t cp, char *out);
/* Bytes of the UTF-8 sequence that starts with lead byte c (1 for continuation bytes). */
static inline size_t tok_uc_len(unsigned char c)
{
    static const unsigned char lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

/* GPT-2 byte-level encoding: byte b is the code point tok_uc_byte_cp(b); the inverse gives
 * the byte of such a code point, or -1. */
uint32_t tok_uc_byte_cp(uint8_t b);
int tok_uc_cp_byte(uint32_t cp);

/* ---- tok_pre.c: the regex pre-split of BPE vocabs ---- */

struct tok_pre;

/* Compiles the pre-tokenizer named by tokenizer.ggml.pre ("" means default). Sets the
 * vocab flags llama.cpp ties to the name (clean_spaces, ignore_merges, add_bos forced). */
int tok__pre_new(const char *name, size_t name_len, struct tok_pre **out, bool *clean_spaces,
                 bool *ignore_merges, bool *force_add_bos, struct tw_err *err);
void tok__pre_free(struct tok_pre *p);

/* A growable list of word lengths in code points. */
struct tok_lens {
    size_t *v;
    size_t n, cap;
};

/* Splits cps[0..n) into words; on success 'out' holds their lengths (summing to n). */
int tok__pre_split(const struct tok_pre *p, const uint32_t *cps, size_t n, struct tok_lens *out,
                   struct tw_err *err);

#endif
