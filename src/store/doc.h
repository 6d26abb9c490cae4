/* doc.h - the document store and its change log (DESIGN §1, §3).
 *
 * A document is one source item (an article, a post, a code file). Its id (a uuid) is stable
 * across re-crawls: the url is the natural key. Every insert, every update that changes the
 * content hash, and every delete appends one change event, in the same transaction, to a
 * gap-free, strictly increasing sequence. A consumer reads events after an offset.
 *
 *     doc_store_open("twin-data") --> docs.db (SQLite, WAL, schema version in user_version)
 *       documents(id, kind, platform, url UNIQUE, source, author_id, title, subtitle, content,
 *                 lang, published_at, fetched_at, content_hash, version)
 *       users(id, full_name UNIQUE, handles JSON {"platform": "handle"})
 *       changes(seq, op, kind, doc_id, at, event JSON)   <- written by triggers
 *       change_seq(last_seq)                             <- the counter the triggers advance
 *       consumer_offsets(consumer, seq, updated_at)
 *
 * Change events (DESIGN §3), one JSON object per line, in commit order:
 *
 *     {"seq":7,"op":"update","kind":"article","id":"<uuid>","at":"2026-11-28T21:00:00Z",
 *      "document":{"id","kind","platform","url","source","author_id","author","title",
 *                  "subtitle","content","lang","published_at","fetched_at","content_hash",
 *                  "version"}}
 *
 * Times are RFC 3339 UTC strings, null when unknown; "document" is absent on delete.
 * Sequence numbers come from a counter row that the triggers advance inside the writing
 * transaction, so a rolled-back write leaves no gap and seq order is commit order.
 *
 * What produces an event: a new url (insert, version 1); new content for a known url (update,
 * version + 1); a delete (rm, prune). A put with the same content produces no event and keeps
 * the version, but it does refresh the row's metadata (title, subtitle, kind, platform, lang,
 * published_at, source, fetched_at, and the author when one is given): the store always holds
 * what the source said last, while consumers see a new document version only when its text
 * changes. Consumers that need fresh metadata read it with doc_store_get().
 *
 * The store is reached through one C interface (struct doc_store) whose backend is chosen by URL
 * ("sqlite:DIR" or a plain directory; PostgreSQL/MongoDB backends can follow behind it).
 * Ownership: struct doc values passed in are borrowed for the call; values handed out are owned
 * by the caller and freed with doc_free(). Thread-safety: one thread owns a store handle; open
 * another handle per thread or process (SQLite WAL lets readers run beside the writer; writers
 * wait up to the busy timeout for each other).
 */
#ifndef TW_DOC_H
#define TW_DOC_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

#define DOC_TIME_UNKNOWN INT64_MIN
#define DOC_ID_LEN 36
#define DOC_CONTENT_MAX ((size_t)16 << 20) /* 16 MiB of normalized text per document */
#define DOC_URL_MAX 4096                     /* bytes of url and of source */
#define DOC_FIELD_MAX 8192                   /* bytes of title, subtitle, author name, handle */
#define DOC_LANG_MAX 35                      /* BCP 47 tags are short */

/* One document as sources produce it and the store returns it. Times are unix seconds (UTC),
 * DOC_TIME_UNKNOWN when unknown. Strings are UTF-8 and NUL-terminated; NULL means absent. */
struct doc {
    char id[DOC_ID_LEN + 1]; // uuid; empty on input (the store keeps or assigns it)
    const char *kind;        // "article" | "post" | "code"
    const char *platform;    // "medium" | "substack" | "linkedin" | "github" | "web" | "file"
    const char *url;         // unique natural key (a file:// URL for local files)
    const char *source;      // what produced it (export path, feed URL, repo URL); for --prune
    const char *author_name; // full name given with --author (input); resolved to author_id
    const char *author_handle; // the author's handle on this platform, if known (input)
    char author_id[DOC_ID_LEN + 1]; // output: users.id
    const char *title;
    const char *subtitle;
    const char *content; // normalized markdown-ish text
    const char *lang;    // BCP 47 tag if known ("en"), else NULL
    int64_t published_at;
    int64_t fetched_at;        // set by the store when DOC_TIME_UNKNOWN
    char content_hash[65];     // output: sha256 hex of content
    int64_t version;           // output: 1 on insert, +1 per content change
};

enum doc_put_result { DOC_PUT_INSERTED = 1, DOC_PUT_UPDATED, DOC_PUT_UNCHANGED };

struct doc_store;

/* ---- opening ---- */

/* Opens the store at 'url' ("sqlite:DIR" or DIR; the database is DIR/docs.db), creating the
 * directory and the schema if absent and migrating an older schema. On success *out is a new
 * store; close it with doc_store_close(). On failure returns a negative TW_E* code (TW_EUNSUP for
 * an unknown scheme such as postgres://, TW_EDB for a database newer than this build), fills
 * 'err' and leaves *out NULL. */
int doc_store_open(const char *url, struct doc_store **out, struct tw_err *err);
/* Closes the store; NULL does nothing. */
void doc_store_close(struct doc_store *s);
/* The schema version this build writes (PRAGMA user_version of docs.db). */
int doc_store_schema_version(void);

/* ---- documents ---- */

/* Checks d as doc_store_put() would: kind and platform from their lists, a non-empty url of at
 * most DOC_URL_MAX bytes, content present and at most DOC_CONTENT_MAX bytes, every string valid
 * UTF-8 without NUL and within its limit, times unknown or within years 1..9999. Returns 0 or
 * TW_EINVAL with a message naming the document's url and the field. */
int doc_validate(const struct doc *d, struct tw_err *err);

/* Stores one document in its own transaction, upserting by url: a new url is inserted with a new
 * id and version 1; a known url with different content is updated (same id, version + 1); the
 * same content leaves content and version alone (see the top of this file). The store computes
 * content_hash (sha256 hex of content), resolves author_name to a user (get-or-create by
 * full_name, recording author_handle under the platform) and sets fetched_at to now when
 * unknown. d->id, d->author_id, d->content_hash and d->version are ignored on input. *result
 * (if non-NULL) says what happened. Returns 0 or a negative code with 'err' set; on failure
 * nothing was written. */
int doc_store_put(struct doc_store *s, const struct doc *d, enum doc_put_result *result,
                  struct tw_err *err);
/* doc_store_put that also writes back d->id, d->author_id, d->content_hash, d->version and
 * d->fetched_at as stored. */
int doc_store_put_fill(struct doc_store *s, struct doc *d, enum doc_put_result *result,
                       struct tw_err *err);

/* Looks a document up by id (when 'key' is a uuid) or url. On success *out is a heap document
 * (one block; free it with doc_free()). TW_ENOENT when there is none. */
int doc_store_get(struct doc_store *s, const char *key, struct doc **out, struct tw_err *err);
/* Frees a document returned by the store; NULL does nothing. */
void doc_free(struct doc *d);

/* Deletes the document with this id or url in one transaction, appending a delete event.
 * TW_ENOENT when there is none. If id_out is non-NULL it receives the deleted id. */
int doc_store_delete(struct doc_store *s, const char *key, char id_out[DOC_ID_LEN + 1],
                     struct tw_err *err);

/* Deletes, in one transaction, every document whose source is 'source' and whose url is not
 * among seen_urls[0..n_seen) (for `import --prune`), one delete event each. *n_deleted (if
 * non-NULL) gets the count. n_seen may be 0 (prunes the whole source). */
int doc_store_prune(struct doc_store *s, const char *source, const char *const *seen_urls,
                    size_t n_seen, size_t *n_deleted, struct tw_err *err);

struct doc_list_opts {
    const char *kind;   // only this kind; NULL for all
    const char *source; // only documents of this source; NULL for all
    int with_json;      // also hand the document's JSON (as in events) to the callback
};

/* Calls fn(ctx, d, json) for each matching document in (kind, url) order; d and json are lent for
 * the call (json NULL unless opts->with_json). fn returns 0 to go on, a positive value to stop
 * (doc_store_list returns 0) or a negative code to stop with that code (fn fills its own error).
 * opts may be NULL. */
int doc_store_list(struct doc_store *s, const struct doc_list_opts *opts,
                   int (*fn)(void *ctx, const struct doc *d, const char *json), void *ctx,
                   struct tw_err *err);
/* Number of documents of 'kind' (NULL: all). */
int doc_store_count(struct doc_store *s, const char *kind, int64_t *n, struct tw_err *err);

/* ---- change log ---- */

/* One change event as read back from the log. */
struct doc_event {
    int64_t seq;                 // position in the log, 1, 2, 3, ... without gaps
    char op[8];                  // "insert" | "update" | "delete"
    char kind[8];                // the document's kind
    char doc_id[DOC_ID_LEN + 1]; // the document's id
    int64_t at;                  // commit time, unix seconds
    char *json;                  // the event as JSON (DESIGN §3), NUL-terminated, owned
    size_t json_len;
};

#define DOC_EVENTS_MAX_BYTES ((size_t)64 << 20) // one read returns at most this much JSON (but
                                                // always at least one event)

/* Reads up to max_events events with seq > after_seq in seq order into a new array *out (free
 * with doc_events_free()); *n_out may be 0 when there are none. Stops early once
 * DOC_EVENTS_MAX_BYTES of JSON are read. */
int doc_changes_read(struct doc_store *s, int64_t after_seq, size_t max_events,
                     struct doc_event **out, size_t *n_out, struct tw_err *err);
void doc_events_free(struct doc_event *ev, size_t n);
/* The seq of the newest event (0 when the log is empty). */
int doc_changes_last_seq(struct doc_store *s, int64_t *seq, struct tw_err *err);
/* Waits until an event with seq > after_seq exists, without busy polling: it checks PRAGMA
 * data_version (which changes when another connection commits) with sleeps backing off from
 * 5 ms to 200 ms. Returns 0 when one exists, TW_ETIMEOUT after timeout_ms (< 0: wait forever). */
int doc_changes_wait(struct doc_store *s, int64_t after_seq, int timeout_ms, struct tw_err *err);

/* A consumer's committed offset: the seq of the last event it has fully processed (0 when it
 * never committed). Consumer names are 1..64 bytes of [A-Za-z0-9_.:-]. */
int doc_offset_get(struct doc_store *s, const char *consumer, int64_t *seq, struct tw_err *err);
/* Durably records consumer's offset (0 <= seq <= last seq; it may move backwards to replay). */
int doc_offset_commit(struct doc_store *s, const char *consumer, int64_t seq, struct tw_err *err);

/* ---- names ---- */

/* True when kind / platform is one of the values listed in struct doc. */
int doc_kind_is_valid(const char *kind);
int doc_platform_is_valid(const char *platform);

#endif
