/* doc.h - the document store and its change log (DESIGN §1, §3).
 *
 * A document is one source item (an article, a post, a code file). Its id (a uuid) is stable
 * across re-crawls: the url is the natural key. Every insert, every update that changes the
 * content hash, and every delete appends one change event, in the same transaction, to a
 * gap-free, strictly increasing sequence. A consumer reads events after an offset.
 *
 *     doc_store_open("twin-data") --> docs.db (SQLite, WAL)
 *       documents(id, kind, platform, url UNIQUE, source, author_id, title, subtitle, content,
 *                 lang, published_at, fetched_at, content_hash, version)
 *       users(id, full_name, handles JSON)
 *       changes(seq, op, kind, doc_id, at, event JSON)   <- written by triggers
 *       consumer_offsets(consumer, seq)
 *
 * The store is reached through one C interface (struct doc_store) whose backend is chosen by URL
 * ("sqlite:DIR" or a plain directory; PostgreSQL/MongoDB backends can follow behind it).
 * Ownership: struct doc values passed in are borrowed for the call; values handed out are owned
 * by the caller and freed with doc_free(). Thread-safety: one thread owns a store handle; open
 * another handle per thread (SQLite WAL lets readers run beside the writer).
 */
#ifndef TW_DOC_H
#define TW_DOC_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

#define DOC_TIME_UNKNOWN INT64_MIN
#define DOC_ID_LEN 36
#define DOC_CONTENT_MAX ((size_t)16 << 20) /* 16 MiB of normalized text per document */

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

#endif
