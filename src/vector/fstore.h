/* fstore.h - the feature store (DESIGN §1, §3): cleaned documents, chunks with their vectors, the
 * lexical index and the consumer offset in one SQLite file, plus an HNSW index derived from it.
 *
 *     DIR/features.db   (SQLite, WAL; the source of truth)
 *       cleaned(doc_id PK, kind, platform, author_id, author, url, title, published_at, content,
 *               content_hash, version)                       -> views cleaned_<kind>
 *       chunks(seq PK, chunk_id UNIQUE, doc_id, chunk_index, kind, platform, author_id, author,
 *              url, title, published_at, text, start, end, embedding_model, vector BLOB)
 *                                                            -> views vector_<kind>
 *       chunks_fts(title, text)  FTS5, tokenizer 'twin', kept by triggers on chunks
 *       chunk_log(lsn PK, op 'add'|'del', chunk_seq)        every chunk row added or removed
 *       meta(key PK, value)      embedding_model, dim, offset:<consumer>
 *     DIR/vectors.hnsw  the HNSW graph over chunk vectors (id = chunk seq), saved with the last
 *                       chunk_log lsn it contains
 *
 * A batch of changes (vec_store_begin .. vec_store_commit) writes chunks, vectors, lexical rows
 * and the consumer's offset in one transaction, so a crash loses or duplicates nothing. The HNSW
 * graph is derived: vec_store_sync_index() loads the file and replays chunk_log entries after
 * its lsn (or rebuilds it from the chunk rows when the file is missing, corrupt or stale), and
 * vec_store_save_index() writes it back atomically.
 * Ownership and threads: one thread uses a vec_store; open one per process or thread.
 */
#ifndef TW_FSTORE_H
#define TW_FSTORE_H

#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vec_store;

/* A cleaned document (one row of cleaned_<kind>). Strings are borrowed for the call. */
struct vec_doc {
    const char *doc_id, *kind, *platform, *author_id, *author, *url, *title;
    int64_t published_at; // unix seconds, INT64_MIN unknown
    const char *content;
    size_t content_len;
    const char *content_hash;
    int64_t version;
};

/* One chunk of a document: a slice [start, end) of its cleaned content. */
struct vec_chunk {
    const char *chunk_id;
    int chunk_index;
    size_t start, end;
    const float *vector; // dim floats, or NULL when the store is lexical-only
};

/* Opens (creating if absent) DIR/features.db. */
int vec_store_open(const char *dir, struct vec_store **out, struct tw_err *err);
/* Closes the store without saving the index (call vec_store_save_index first). */
void vec_store_close(struct vec_store *s);

/* The embedding model recorded in the store ("" when lexical-only or empty) and its dimension.
 * vec_store_set_model records them for an empty store; a store that already has chunks of
 * another model refuses (TW_ESTATE, "run 'twin stream --reset'"). */
int vec_store_model(struct vec_store *s, char *name, size_t cap, int *dim, struct tw_err *err);
int vec_store_set_model(struct vec_store *s, const char *name, int dim, struct tw_err *err);

int vec_store_begin(struct vec_store *s, struct tw_err *err);
int vec_store_commit(struct vec_store *s, struct tw_err *err);
void vec_store_rollback(struct vec_store *s);

/* The consumer's offset (0 when it never committed); set it inside the batch's transaction. */
int vec_store_offset(struct vec_store *s, const char *consumer, int64_t *seq, struct tw_err *err);
int vec_store_set_offset(struct vec_store *s, const char *consumer, int64_t seq,
                         struct tw_err *err);

/* Replaces the document's cleaned row and all of its chunks (inside a transaction). */
int vec_store_put_doc(struct vec_store *s, const struct vec_doc *d, const struct vec_chunk *chunks,
                      size_t n_chunks, struct tw_err *err);
/* Removes the document and its chunks; no error when it is absent. */
int vec_store_delete_doc(struct vec_store *s, const char *doc_id, struct tw_err *err);
/* Empties the store (documents, chunks, log, offsets, model) and removes the index file. */
int vec_store_reset(struct vec_store *s, struct tw_err *err);

/* Brings the in-memory HNSW graph up to date with the chunk rows (see the top of this file).
 * 'rebuild' ignores the file. Does nothing for a lexical-only store. */
int vec_store_sync_index(struct vec_store *s, bool rebuild, struct tw_err *err);
/* Writes the graph to DIR/vectors.hnsw atomically if it changed since it was loaded. */
int vec_store_save_index(struct vec_store *s, struct tw_err *err);

struct vec_store_stats {
    int64_t n_docs, n_chunks, n_vectors; // rows, and vectors in the HNSW graph (-1: not loaded)
};
int vec_store_stats(struct vec_store *s, struct vec_store_stats *st, struct tw_err *err);

/* ---- search ---- */

enum vec_mode { VEC_MODE_HYBRID = 0, VEC_MODE_VECTOR, VEC_MODE_LEXICAL };

struct vec_query {
    const char *text;     // for lexical and hybrid
    const float *vector;  // the query's embedding, for vector and hybrid (NULL: lexical only)
    enum vec_mode mode;
    int k;                // results wanted, 1..1000
    const char *kind;     // filters, NULL for any
    const char *author;   // author id or full name
    const char *platform;
    int64_t since;        // published at or after (INT64_MIN: any)
};

struct vec_hit_row {
    double score; // BM25F (lexical), cosine similarity (vector) or RRF (hybrid); higher is better
    int64_t seq;
    char chunk_id[37], doc_id[37];
    char *kind, *platform, *author, *url, *title, *text; // heap strings (vec_hits_free)
    int64_t published_at, start, end;
};

/* Runs the query. Hybrid fuses the vector and lexical rankings by reciprocal rank (k = 60),
 * deduplicated by chunk. A store without vectors answers every mode lexically (*used_mode says
 * which ran). Filters are applied inside each search, so k hits come back when k match. */
int vec_store_search(struct vec_store *s, const struct vec_query *q, struct vec_hit_row **out,
                     size_t *n_out, enum vec_mode *used_mode, struct tw_err *err);
void vec_hits_free(struct vec_hit_row *h, size_t n);

#endif
