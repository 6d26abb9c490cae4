/* feat.h - the feature pipeline: per-kind cleaning, chunking and embedding text (DESIGN §3).
 *
 *   document --feat_clean--> cleaned text (stored in cleaned_<kind>)
 *            --feat_chunk--> [start, end) byte ranges of the cleaned text, within a token budget
 *            --feat_embed_text--> what the encoder sees for each chunk
 *
 * A chunk's text is always a slice of the cleaned text (never re-decoded from tokens), and its
 * id is derived from (document id, chunk index, text hash), so reprocessing is idempotent.
 *
 * Chunking per kind, with the budget counted by the embedding model's tokenizer:
 *   article  heading sections, then paragraphs (a fenced code block is one), then sentences,
 *            then words; never mid-sentence unless one sentence exceeds the budget
 *   post     whole, unless over budget: then paragraphs, sentences, words
 *   code     blank-line-separated blocks, then lines, then words
 * Consecutive small units are packed together; below the section level a new chunk repeats
 * trailing units of the previous one up to 'overlap_tokens'.
 * All functions are pure and thread-safe.
 */
#ifndef TW_FEAT_H
#define TW_FEAT_H

#include "base/buf.h"
#include "base/err.h"

#include <stddef.h>

enum feat_kind { FEAT_ARTICLE = 0, FEAT_POST, FEAT_CODE };

/* "article" | "post" | "code"; TW_EINVAL for others. */
int feat_kind_parse(const char *kind, enum feat_kind *out);

/* Cleans 'text' for its kind into a heap string *out (tw_free):
 *   all kinds  invalid UTF-8 rejected (TW_EFORMAT), CRLF -> LF
 *   article    NFC; trailing spaces cut and blank-line runs collapsed outside code fences
 *   post       as article, plus mathematical alphanumeric letters (U+1D400..U+1D7FF, the "bold"
 *              and "italic" of LinkedIn posts) mapped to their ASCII letters and digits, and URLs
 *              normalized (scheme and host lowercased, utm_* / fbclid / gclid parameters dropped)
 *   code       unchanged (whitespace and indentation exact) */
int feat_clean(enum feat_kind kind, const char *text, size_t len, char **out, size_t *out_len,
               struct tw_err *err);

/* Appends to 'out' the text the encoder sees for one chunk: for posts the slice without emoji
 * (pictographs, modifiers, joiners, variation selectors); for code "path\n" then the slice; for
 * articles the slice. */
int feat_embed_text(enum feat_kind kind, const char *path, const char *slice, size_t len,
                    struct tw_buf *out);

/* Language of a source file from its extension ("c", "python", …), or "text". */
const char *feat_code_language(const char *path);

/* Returns the number of tokens of text[0, len), or a negative TW_E* code. */
typedef int (*feat_count_fn)(void *ctx, const char *text, size_t len);

/* A token counter for when no embedding model is configured: whitespace-separated words, each
 * counted as ceil(bytes / 4) but at least 1 (close to WordPiece on English prose). */
int feat_count_approx(void *ctx, const char *text, size_t len);

struct feat_chunker {
    int max_tokens;     // budget per chunk (the model's maximum minus its special tokens)
    int overlap_tokens; // repeated from the previous chunk below the section level
    feat_count_fn count;
    void *count_ctx;
};

struct feat_chunk {
    size_t start, end; // byte range in the cleaned text, trimmed of surrounding whitespace
    int n_tokens;      // tokens counted for the chunk (the sum over its units)
};

#define FEAT_MAX_CHUNKS 100000

/* Splits text into chunks. On success *out is a tw_malloc'd array of *n_out chunks in text
 * order (NULL and 0 for blank text). */
int feat_chunk(const struct feat_chunker *c, enum feat_kind kind, const char *text, size_t len,
               struct feat_chunk **out, size_t *n_out, struct tw_err *err);

/* A stable uuid-shaped id: sha256 of "doc_id:index:sha256(text)", formatted 8-4-4-4-12. */
void feat_chunk_id(const char *doc_id, int index, const char *text, size_t len, char out[37]);

#endif
