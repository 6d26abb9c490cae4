/* lexical.h - the lexical side of the feature store: an English analyzer, an FTS5 tokenizer
 * built on it, BM25 query building, and IR evaluation (MAP, nDCG, P@k as NIST trec_eval).
 *
 * Analyzer: text -> terms. Words are maximal runs of Unicode letters and digits (utf8proc
 * categories), lowercased, with a trailing possessive "'s" removed; English stop words are
 * dropped; ASCII words are reduced by the Porter (1980) stemmer. Each term keeps the byte range
 * [start, end) of its word in the input, so FTS5 highlights and snippets point at the original.
 *
 *     "The Wing's slipstream effects"  ->  wing[4,10) slipstream[11,21) effect[22,29)
 *
 * lex_register() installs that analyzer as the FTS5 tokenizer "twin" on a connection:
 *     CREATE VIRTUAL TABLE t USING fts5(title, body, tokenize='twin');
 * lex_build_match() turns a free-text query into an FTS5 MATCH expression: an OR of the query's
 * distinct content words, each quoted (so no query text is ever parsed as FTS5 syntax).
 * Retrieval quality is measured with vector/ireval.h (trec_eval's measures).
 * All functions are thread-safe (no global state after the stop-word table is built).
 */
#ifndef TW_LEXICAL_H
#define TW_LEXICAL_H

#include "base/buf.h"
#include "base/err.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#define LEX_TERM_MAX 64 /* longer words are cut (bytes); a term never exceeds this */

/* Called for each term: the analyzed term (not NUL-terminated) and its word's byte range. A
 * non-zero return stops the analysis and is returned by lex_analyze. */
typedef int (*lex_term_fn)(void *ctx, const char *term, size_t term_len, size_t start,
                           size_t end);

/* Runs the analyzer over text[0, len). Invalid UTF-8 bytes separate words. Returns 0 or the
 * callback's non-zero value. */
int lex_analyze(const char *text, size_t len, lex_term_fn fn, void *ctx);

/* Porter-stems the lowercase ASCII word w[0, *len) in place, updating *len. */
void lex_porter_stem(char *w, size_t *len);

/* True if the lowercase word is an English stop word. */
bool lex_is_stopword(const char *w, size_t len);

/* Ranking defaults for twin_bm25f (see lex_register): chosen on Cranfield (docs/lexical.md). */
#define LEX_BM25F_K1 2.5
#define LEX_BM25F_B 0.75
#define LEX_TITLE_WEIGHT 3.0

/* Registers on db the "twin" tokenizer and the FTS5 ranking function
 *     twin_bm25f(table, k1, b, weight_col0, weight_col1, ...)   (higher is better)
 * BM25F: per-column length-normalized term frequencies are weighted and summed before
 * saturation; IDF as FTS5's bm25(). */
int lex_register(sqlite3 *db, struct tw_err *err);

/* Appends to 'out' an FTS5 MATCH expression for the free-text query: '"w1" OR "w2" ...' over
 * its distinct non-stop words (raw words, which FTS5 passes through the same tokenizer).
 * Returns TW_ENOENT when the query has no content word, TW_ELIMIT past 64 words (the rest are
 * dropped, the expression is still usable), 0 otherwise. */
int lex_build_match(const char *query, size_t len, struct tw_buf *out);

#endif
