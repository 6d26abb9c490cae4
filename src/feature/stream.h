/* stream.h - the streaming feature pipeline (DESIGN §1, §3): a consumer of the document store's
 * change log that cleans, chunks and embeds each document its own way and keeps the feature
 * store (vector + lexical) exactly in sync.
 *
 *   change log --read after offset--> batch of events
 *     --clean + chunk (worker threads)--> --embed (encoder, worker threads)-->
 *     --one transaction: cleaned rows, chunks, vectors, lexical rows, new offset--> feature store
 *     --replay into the HNSW graph, saved now and then
 *
 * The offset lives in the feature store and moves in the same transaction as the batch's
 * writes, so a crash at any point loses nothing and duplicates nothing (at-least-once reading,
 * exactly-once effect). Events of a batch are applied in log order.
 * Ownership and threads: a feat_embedder is immutable after open and may be shared; the stream
 * runs on the calling thread and uses the embedder's pool for its workers.
 */
#ifndef TW_STREAM_H
#define TW_STREAM_H

#include "base/err.h"
#include "base/pool.h"
#include "store/doc.h"
#include "vector/fstore.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- the embedding model ---- */

struct feat_embedder;

/* Loads a BERT-family GGUF (encoder + its WordPiece tokenizer) with n_threads workers (<= 0:
 * all CPUs). */
int feat_embedder_open(const char *path, int n_threads, struct feat_embedder **out,
                       struct tw_err *err);
void feat_embedder_free(struct feat_embedder *e);
/* "file.gguf" (base name): what the feature store records. */
const char *feat_embedder_name(const struct feat_embedder *e);
int feat_embedder_dim(const struct feat_embedder *e);
/* Tokens a chunk may have: the model's context minus [CLS] and [SEP]. */
int feat_embedder_max_tokens(const struct feat_embedder *e);
struct tw_pool *feat_embedder_pool(struct feat_embedder *e);
/* feat_count_fn over the embedder (ctx is the embedder): tokens without [CLS]/[SEP]. */
int feat_embedder_count(void *ctx, const char *text, size_t len);
/* L2-normalized embeddings of n texts into out[n * dim]; texts longer than the model's context
 * are truncated (keeping [SEP] last). */
int feat_embedder_embed(struct feat_embedder *e, const char *const *texts, const size_t *lens,
                        int n, float *out, struct tw_err *err);

/* ---- the pipeline ---- */

#define FEAT_CONSUMER "feature"

struct feat_stream_opts {
    int batch_events;   // events per transaction (default 64)
    int max_tokens;     // chunk budget (default min(256, model limit); 128 lexical-only)
    int overlap_tokens; // < 0: max_tokens / 8
    bool follow;        // wait for new events until *stop is set
    int save_every_ms;  // follow mode: save the HNSW graph at most this often (default 5000)
    /* Called after each committed batch: events done, events known, chunks written so far. */
    void (*progress)(void *ctx, int64_t done, int64_t total, int64_t chunks);
    void *progress_ctx;
};

struct feat_stream_stats {
    int64_t events, upserts, deletes, chunks, errors;
};

/* Runs the pipeline from the committed offset until the log is drained (or, with follow, until
 * *stop becomes non-zero). emb NULL indexes lexically only. A document that cannot be processed
 * (invalid content) is logged, counted in errors and skipped; store errors stop the run with
 * nothing of the failed batch written. */
int feat_stream_run(struct doc_store *ds, struct vec_store *vs, struct feat_embedder *emb,
                    const struct feat_stream_opts *o, volatile sig_atomic_t *stop,
                    struct feat_stream_stats *st, struct tw_err *err);

#endif
