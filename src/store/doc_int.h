/* doc_int.h - what the store's .c files share: the backend interface behind struct doc_store
 * [SQLite sqlite3_vfs, curl Curl_handler]. A backend fills a doc_store_ops table; doc.c checks
 * arguments once and dispatches. */
#ifndef TW_DOC_INT_H
#define TW_DOC_INT_H

#include "store/doc.h"

#include <stdbool.h>

struct doc_store_ops {
    const char *name; // "sqlite"
    /* 'in' is validated; 'hash' is its content hash; 'out' (may be NULL) receives the outputs */
    int (*put)(struct doc_store *s, const struct doc *in, const char *hash, struct doc *out,
               enum doc_put_result *result, struct tw_err *err);
    int (*get)(struct doc_store *s, const char *key, bool by_id, struct doc **out,
               struct tw_err *err);
    int (*del)(struct doc_store *s, const char *key, bool by_id, char id_out[DOC_ID_LEN + 1],
               struct tw_err *err);
    int (*prune)(struct doc_store *s, const char *source, const char *const *seen_urls,
                 size_t n_seen, size_t *n_deleted, struct tw_err *err);
    int (*list)(struct doc_store *s, const struct doc_list_opts *o,
                int (*fn)(void *ctx, const struct doc *d, const char *json), void *ctx,
                struct tw_err *err);
    int (*count)(struct doc_store *s, const char *kind, int64_t *n, struct tw_err *err);
    int (*changes_read)(struct doc_store *s, int64_t after_seq, size_t max_events,
                        struct doc_event **out, size_t *n_out, struct tw_err *err);
    int (*last_seq)(struct doc_store *s, int64_t *seq, struct tw_err *err);
    /* one cheap check: has anything been committed by anyone since the last call? */
    int (*changed)(struct doc_store *s, bool *changed, struct tw_err *err);
    int (*offset_get)(struct doc_store *s, const char *consumer, int64_t *seq, struct tw_err *err);
    int (*offset_commit)(struct doc_store *s, const char *consumer, int64_t seq,
                         struct tw_err *err);
    void (*close)(struct doc_store *s);
};

struct doc_store {
    const struct doc_store_ops *ops;
};

/* Opens the SQLite backend in directory 'dir' (doc_sqlite.c). */
int doc__sqlite_open(const char *dir, struct doc_store **out, struct tw_err *err);

/* A heap document: one block holding the struct and copies of its strings. 'strs' are the
 * string fields in struct order (kind, platform, url, source, author_name, author_handle, title,
 * subtitle, content, lang), each NULL or NUL-terminated. */
struct doc *doc__new(const char *const strs[10], const size_t lens[10]);

/* True when s[0..len) is valid UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
bool doc__utf8_valid(const char *s, size_t len);

#endif
