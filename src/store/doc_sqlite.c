/* doc_sqlite.c - the embedded backend: <dir>/docs.db, SQLite in WAL mode. The change log is
 * written by triggers, so an event commits or rolls back with its document (DESIGN §1, §3). */
#include "store/doc_int.h"

#include "base/log.h"
#include "base/mem.h"
#include "base/time.h"
#include "base/uuid.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 10000

/* ---- schema ---- */

/* An RFC 3339 UTC string of a unix-seconds column, NULL stays NULL. */
#define TS(x) "strftime('%Y-%m-%dT%H:%M:%SZ'," x ",'unixepoch')"

/* The document JSON of DESIGN §3 for row alias R ("NEW.", "OLD.", "d."): one definition used by
 * the triggers and by doc_store_list, so `twin docs --json` prints what events carry. */
#define DOC_JSON(R)                                                                                \
    "json_object('id'," R "id,'kind'," R "kind,'platform'," R "platform,'url'," R "url,'source'," R \
    "source,'author_id'," R "author_id,'author',(SELECT full_name FROM users WHERE id=" R          \
    "author_id),'title'," R "title,'subtitle'," R "subtitle,'content'," R "content,'lang'," R      \
    "lang,'published_at'," TS(R "published_at") ",'fetched_at'," TS(R "fetched_at")                \
    ",'content_hash'," R "content_hash,'version'," R "version)"

/* One event: advance the counter, then append the row that carries it, in the same statement
 * transaction as the document change that fired the trigger. */
#define EVENT_BODY(OP, R, DOC)                                                                     \
    " BEGIN UPDATE change_seq SET last_seq = last_seq + 1 WHERE id = 1;"                           \
    " INSERT INTO changes(seq, op, kind, doc_id, at, event) SELECT last_seq, '" OP "', " R         \
    "kind, " R "id, CAST(strftime('%s','now') AS INTEGER), json_object('seq', last_seq, 'op', '" OP \
    "', 'kind', " R "kind, 'id', " R "id, 'at', strftime('%Y-%m-%dT%H:%M:%SZ','now')" DOC ")"      \
    " FROM change_seq WHERE id = 1; END;"

static const char schema_v1[] =
    "CREATE TABLE users("
    " id TEXT PRIMARY KEY,"
    " full_name TEXT NOT NULL UNIQUE,"
    " handles TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(handles)),"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE documents("
    " id TEXT PRIMARY KEY,"
    " kind TEXT NOT NULL CHECK (kind IN ('article','post','code')),"
    " platform TEXT NOT NULL"
    "  CHECK (platform IN ('medium','substack','linkedin','github','web','file')),"
    " url TEXT NOT NULL UNIQUE CHECK (url <> ''),"
    " source TEXT,"
    " author_id TEXT REFERENCES users(id),"
    " title TEXT, subtitle TEXT,"
    " content TEXT NOT NULL,"
    " lang TEXT,"
    " published_at INTEGER,"
    " fetched_at INTEGER NOT NULL,"
    " content_hash TEXT NOT NULL,"
    " version INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX documents_kind ON documents(kind, url);"
    "CREATE INDEX documents_source ON documents(source);"
    "CREATE TABLE changes("
    " seq INTEGER PRIMARY KEY,"
    " op TEXT NOT NULL CHECK (op IN ('insert','update','delete')),"
    " kind TEXT NOT NULL,"
    " doc_id TEXT NOT NULL,"
    " at INTEGER NOT NULL,"
    " event TEXT NOT NULL);"
    "CREATE TABLE change_seq(id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL);"
    "INSERT INTO change_seq VALUES (1, 0);"
    "CREATE TABLE consumer_offsets("
    " consumer TEXT PRIMARY KEY,"
    " seq INTEGER NOT NULL CHECK (seq >= 0),"
    " updated_at INTEGER NOT NULL);"
    "CREATE TRIGGER documents_insert_event AFTER INSERT ON documents" EVENT_BODY(
        "insert", "NEW.", ", 'document', " DOC_JSON("NEW."))
    "CREATE TRIGGER documents_update_event AFTER UPDATE OF content_hash ON documents"
    " WHEN OLD.content_hash IS NOT NEW.content_hash" EVENT_BODY(
        "update", "NEW.", ", 'document', " DOC_JSON("NEW."))
    "CREATE TRIGGER documents_delete_event AFTER DELETE ON documents" EVENT_BODY("delete", "OLD.",
                                                                                 "");

/* migrations[v - 1] takes a database from user_version v - 1 to v. */
static const char *const migrations[SCHEMA_VERSION] = {schema_v1};

int doc_store_schema_version(void)
{
    return SCHEMA_VERSION;
}

/* ---- statements ---- */

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_USER_FIND,
    ST_USER_INSERT,
    ST_USER_HANDLE,
    ST_DOC_FIND,
    ST_DOC_INSERT,
    ST_DOC_UPDATE,
    ST_DOC_TOUCH,
    ST_GET_BY_ID,
    ST_GET_BY_URL,
    ST_DEL_FIND_ID,
    ST_DEL_FIND_URL,
    ST_DEL,
    ST_LIST,
    ST_LIST_JSON,
    ST_COUNT,
    ST_CHANGES,
    ST_LAST_SEQ,
    ST_DATA_VERSION,
    ST_OFFSET_GET,
    ST_OFFSET_SET,
    ST_PRUNE_CLEAR,
    ST_PRUNE_ADD,
    ST_PRUNE_DELETE,
    ST_COUNT_
};

#define DOC_COLS                                                                                   \
    "d.id, d.kind, d.platform, d.url, d.source, d.author_id, u.full_name,"                         \
    " json_extract(u.handles, '$.' || d.platform), d.title, d.subtitle, d.content, d.lang,"       \
    " d.published_at, d.fetched_at, d.content_hash, d.version"
#define DOC_FROM " FROM documents d LEFT JOIN users u ON u.id = d.author_id"
#define LIST_WHERE                                                                                 \
    " WHERE (?1 IS NULL OR d.kind = ?1) AND (?2 IS NULL OR d.source = ?2) ORDER BY d.kind, d.url"

static const char *const stmt_sql[ST_COUNT_] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_USER_FIND] = "SELECT id FROM users WHERE full_name = ?1",
    [ST_USER_INSERT] = "INSERT INTO users(id, full_name, handles, created_at) VALUES (?1, ?2, "
                       "'{}', ?3)",
    [ST_USER_HANDLE] = "UPDATE users SET handles = json_set(handles, '$.' || ?2, ?3) WHERE id = ?1"
                       " AND json_extract(handles, '$.' || ?2) IS NOT ?3",
    [ST_DOC_FIND] = "SELECT id, content_hash, version, kind FROM documents WHERE url = ?1",
    [ST_DOC_INSERT] = "INSERT INTO documents(id, kind, platform, url, source, author_id, title,"
                      " subtitle, content, lang, published_at, fetched_at, content_hash, version)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 1)",
    [ST_DOC_UPDATE] = "UPDATE documents SET platform = ?3, source = ?5,"
                      " author_id = COALESCE(?6, author_id), title = ?7, subtitle = ?8,"
                      " content = ?9, lang = ?10, published_at = ?11, fetched_at = ?12,"
                      " content_hash = ?13, version = version + 1 WHERE id = ?1",
    [ST_DOC_TOUCH] = "UPDATE documents SET platform = ?3, source = ?5,"
                     " author_id = COALESCE(?6, author_id), title = ?7, subtitle = ?8,"
                     " lang = ?10, published_at = ?11, fetched_at = ?12 WHERE id = ?1",
    [ST_GET_BY_ID] = "SELECT " DOC_COLS DOC_FROM " WHERE d.id = ?1",
    [ST_GET_BY_URL] = "SELECT " DOC_COLS DOC_FROM " WHERE d.url = ?1",
    [ST_DEL_FIND_ID] = "SELECT id FROM documents WHERE id = ?1",
    [ST_DEL_FIND_URL] = "SELECT id FROM documents WHERE url = ?1",
    [ST_DEL] = "DELETE FROM documents WHERE id = ?1",
    [ST_LIST] = "SELECT " DOC_COLS ", NULL" DOC_FROM LIST_WHERE,
    [ST_LIST_JSON] = "SELECT " DOC_COLS ", " DOC_JSON("d.") DOC_FROM LIST_WHERE,
    [ST_COUNT] = "SELECT count(*) FROM documents WHERE ?1 IS NULL OR kind = ?1",
    [ST_CHANGES] = "SELECT seq, op, kind, doc_id, at, event FROM changes WHERE seq > ?1"
                   " ORDER BY seq LIMIT ?2",
    [ST_LAST_SEQ] = "SELECT last_seq FROM change_seq WHERE id = 1",
    [ST_DATA_VERSION] = "PRAGMA data_version",
    [ST_OFFSET_GET] = "SELECT seq FROM consumer_offsets WHERE consumer = ?1",
    [ST_OFFSET_SET] = "INSERT INTO consumer_offsets(consumer, seq, updated_at) VALUES (?1, ?2, ?3)"
                      " ON CONFLICT(consumer) DO UPDATE SET seq = excluded.seq,"
                      " updated_at = excluded.updated_at",
    [ST_PRUNE_CLEAR] = "DELETE FROM temp.prune_seen",
    [ST_PRUNE_ADD] = "INSERT OR IGNORE INTO temp.prune_seen(url) VALUES (?1)",
    [ST_PRUNE_DELETE] = "DELETE FROM documents WHERE source = ?1 AND url NOT IN"
                        " (SELECT url FROM temp.prune_seen)",
};

struct doc_sqlite {
    struct doc_store base;
    sqlite3 *db;
    char *path;                   // <dir>/docs.db, for messages
    sqlite3_stmt *st[ST_COUNT_];  // prepared on first use
    int64_t data_version;         // last PRAGMA data_version seen
    bool prune_table;             // temp.prune_seen exists
};

static struct doc_sqlite *ds_of(struct doc_store *s)
{
    return (struct doc_sqlite *)s;
}

static int db_err(struct doc_sqlite *ds, struct tw_err *err, const char *what)
{
    return tw_errf(err, TW_EDB, "%s in '%s': %s", what, ds->path, sqlite3_errmsg(ds->db));
}

/* The prepared statement id, reset and with bindings cleared; NULL with 'err' set on failure. */
static sqlite3_stmt *stmt(struct doc_sqlite *ds, enum stmt_id id, struct tw_err *err)
{
    sqlite3_stmt *st = ds->st[id];
    if (!st) {
        if (sqlite3_prepare_v3(ds->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
            SQLITE_OK) {
            db_err(ds, err, "preparing a statement");
            return NULL;
        }
        ds->st[id] = st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Runs a statement that returns no rows (or whose rows do not matter). */
static int exec_stmt(struct doc_sqlite *ds, sqlite3_stmt *st, struct tw_err *err, const char *what)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return db_err(ds, err, what);
    return TW_OK;
}

static int run(struct doc_sqlite *ds, enum stmt_id id, struct tw_err *err, const char *what)
{
    sqlite3_stmt *st = stmt(ds, id, err);
    if (!st)
        return TW_EDB;
    return exec_stmt(ds, st, err, what);
}

static int begin(struct doc_sqlite *ds, struct tw_err *err)
{
    return run(ds, ST_BEGIN, err, "starting a write transaction");
}

static int commit(struct doc_sqlite *ds, struct tw_err *err)
{
    return run(ds, ST_COMMIT, err, "committing");
}

static void rollback(struct doc_sqlite *ds)
{
    if (!sqlite3_get_autocommit(ds->db))
        run(ds, ST_ROLLBACK, NULL, "rolling back");
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_time(sqlite3_stmt *st, int i, int64_t t)
{
    if (t == DOC_TIME_UNKNOWN)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, t);
}

static void copy_id(char dst[DOC_ID_LEN + 1], const unsigned char *src)
{
    snprintf(dst, DOC_ID_LEN + 1, "%s", src ? (const char *)src : "");
}

/* ---- put ---- */

/* The id of the user named d->author_name, created if new; records the platform handle. */
static int resolve_author(struct doc_sqlite *ds, const struct doc *d, char id[DOC_ID_LEN + 1],
                          struct tw_err *err)
{
    sqlite3_stmt *st;
    int rc;

    id[0] = 0;
    if (!d->author_name || !*d->author_name)
        return TW_OK;
    if (!(st = stmt(ds, ST_USER_FIND, err)))
        return TW_EDB;
    bind_text(st, 1, d->author_name);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        copy_id(id, sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_err(ds, err, "looking up the author");
    if (!id[0]) {
        if ((rc = tw_uuid_v4(id, err)) < 0)
            return rc;
        if (!(st = stmt(ds, ST_USER_INSERT, err)))
            return TW_EDB;
        bind_text(st, 1, id);
        bind_text(st, 2, d->author_name);
        sqlite3_bind_int64(st, 3, tw_time_now());
        if ((rc = exec_stmt(ds, st, err, "adding the author")) < 0)
            return rc;
    }
    if (d->author_handle && *d->author_handle) {
        if (!(st = stmt(ds, ST_USER_HANDLE, err)))
            return TW_EDB;
        bind_text(st, 1, id);
        bind_text(st, 2, d->platform);
        bind_text(st, 3, d->author_handle);
        if ((rc = exec_stmt(ds, st, err, "recording the author's handle")) < 0)
            return rc;
    }
    return TW_OK;
}

static void bind_doc(sqlite3_stmt *st, const struct doc *in, const char *id, const char *author_id,
                     const char *hash, int64_t fetched_at, bool with_content)
{
    bind_text(st, 1, id);
    if (sqlite3_bind_parameter_index(st, "?2"))
        bind_text(st, 2, in->kind);
    bind_text(st, 3, in->platform);
    if (sqlite3_bind_parameter_index(st, "?4"))
        bind_text(st, 4, in->url);
    bind_text(st, 5, in->source);
    bind_text(st, 6, author_id[0] ? author_id : NULL);
    bind_text(st, 7, in->title);
    bind_text(st, 8, in->subtitle);
    if (with_content) {
        sqlite3_bind_text(st, 9, in->content, -1, SQLITE_STATIC);
        bind_text(st, 13, hash);
    }
    bind_text(st, 10, in->lang);
    bind_time(st, 11, in->published_at);
    sqlite3_bind_int64(st, 12, fetched_at);
}

static int sq_put_locked(struct doc_sqlite *ds, const struct doc *in, const char *hash,
                         struct doc *out, enum doc_put_result *result, struct tw_err *err)
{
    char author_id[DOC_ID_LEN + 1], id[DOC_ID_LEN + 1] = "", old_hash[65] = "", old_kind[16] = "";
    int64_t version = 0, fetched_at = in->fetched_at;
    sqlite3_stmt *st;
    int rc;

    if (fetched_at == DOC_TIME_UNKNOWN)
        fetched_at = tw_time_now();
    if ((rc = resolve_author(ds, in, author_id, err)) < 0)
        return rc;
    if (!(st = stmt(ds, ST_DOC_FIND, err)))
        return TW_EDB;
    bind_text(st, 1, in->url);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        copy_id(id, sqlite3_column_text(st, 0));
        snprintf(old_hash, sizeof(old_hash), "%s", (const char *)sqlite3_column_text(st, 1));
        version = sqlite3_column_int64(st, 2);
        snprintf(old_kind, sizeof(old_kind), "%s", (const char *)sqlite3_column_text(st, 3));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_err(ds, err, "looking up the document");

    if (!id[0]) {
        if ((rc = tw_uuid_v4(id, err)) < 0)
            return rc;
        if (!(st = stmt(ds, ST_DOC_INSERT, err)))
            return TW_EDB;
        bind_doc(st, in, id, author_id, hash, fetched_at, true);
        if ((rc = exec_stmt(ds, st, err, "inserting the document")) < 0)
            return rc;
        version = 1;
        *result = DOC_PUT_INSERTED;
    } else {
        /* The kind picks the feature-store collection a consumer filed the document under, so
         * it may not change behind the consumer's back. */
        if (strcmp(old_kind, in->kind))
            return tw_errf(err, TW_EINVAL,
                           "document '%.200s' is stored as a %s, not a %s; remove it first "
                           "(twin rm) to store it as a %s",
                           in->url, old_kind, in->kind, in->kind);
        bool changed = strcmp(old_hash, hash) != 0;
        if (!(st = stmt(ds, changed ? ST_DOC_UPDATE : ST_DOC_TOUCH, err)))
            return TW_EDB;
        bind_doc(st, in, id, author_id, hash, fetched_at, changed);
        if ((rc = exec_stmt(ds, st, err, "updating the document")) < 0)
            return rc;
        version += changed;
        *result = changed ? DOC_PUT_UPDATED : DOC_PUT_UNCHANGED;
    }
    if (out) {
        memcpy(out->id, id, sizeof(out->id));
        memcpy(out->author_id, author_id, sizeof(out->author_id));
        memcpy(out->content_hash, hash, 65);
        out->version = version;
        out->fetched_at = fetched_at;
    }
    return TW_OK;
}

static int sq_put(struct doc_store *s, const struct doc *in, const char *hash, struct doc *out,
                  enum doc_put_result *result, struct tw_err *err)
{
    struct doc_sqlite *ds = ds_of(s);
    int rc = begin(ds, err);
    if (rc < 0)
        return tw_err_ctx(err, "storing '%.200s'", in->url);
    rc = sq_put_locked(ds, in, hash, out, result, err);
    if (rc == 0)
        rc = commit(ds, err);
    if (rc < 0) {
        rollback(ds);
        return rc;
    }
    return TW_OK;
}

/* ---- reading documents ---- */

/* Points d's fields into the current row of a DOC_COLS statement (valid until the next step). */
static void row_doc(sqlite3_stmt *st, struct doc *d)
{
    const char **f[10] = {&d->kind,     &d->platform, &d->url,     &d->source,  &d->author_name,
                          &d->author_handle, &d->title, &d->subtitle, &d->content, &d->lang};
    static const int col[10] = {1, 2, 3, 4, 6, 7, 8, 9, 10, 11};
    memset(d, 0, sizeof(*d));
    copy_id(d->id, sqlite3_column_text(st, 0));
    copy_id(d->author_id, sqlite3_column_text(st, 5));
    for (int i = 0; i < 10; i++)
        *f[i] = (const char *)sqlite3_column_text(st, col[i]);
    d->published_at = sqlite3_column_type(st, 12) == SQLITE_NULL ? DOC_TIME_UNKNOWN
                                                                 : sqlite3_column_int64(st, 12);
    d->fetched_at = sqlite3_column_type(st, 13) == SQLITE_NULL ? DOC_TIME_UNKNOWN
                                                               : sqlite3_column_int64(st, 13);
    snprintf(d->content_hash, sizeof(d->content_hash), "%s",
             (const char *)sqlite3_column_text(st, 14));
    d->version = sqlite3_column_int64(st, 15);
}

static int sq_get(struct doc_store *s, const char *key, bool by_id, struct doc **out,
                  struct tw_err *err)
{
    struct doc_sqlite *ds = ds_of(s);
    sqlite3_stmt *st = stmt(ds, by_id ? ST_GET_BY_ID : ST_GET_BY_URL, err);
    struct doc row, *d;
    int rc;

    if (!st)
        return TW_EDB;
    bind_text(st, 1, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return tw_errf(err, TW_ENOENT, "no document with %s '%.200s'", by_id ? "id" : "url", key);
    }
    if (rc != SQLITE_ROW) {
        rc = db_err(ds, err, "reading a document");
        sqlite3_reset(st);
        return rc;
    }
    row_doc(st, &row);
    {
        const char *strs[10] = {row.kind,  row.platform, row.url,      row.source,
                                row.author_name, row.author_handle, row.title,
                                row.subtitle, row.content, row.lang};
        size_t lens[10];
        for (int i = 0; i < 10; i++)
            lens[i] = strs[i] ? strlen(strs[i]) : 0;
        d = doc__new(strs, lens);
    }
    if (d) {
        memcpy(d->id, row.id, sizeof(d->id));
        memcpy(d->author_id, row.author_id, sizeof(d->author_id));
        memcpy(d->content_hash, row.content_hash, sizeof(d->content_hash));
        d->published_at = row.published_at;
        d->fetched_at = row.fetched_at;
        d->version = row.version;
    }
    sqlite3_reset(st);
    if (!d)
        return tw_errf(err, TW_ENOMEM, "out of memory reading document '%.200s'", key);
    *out = d;
    return TW_OK;
}

static int sq_list(struct doc_store *s, const struct doc_list_opts *o,
                   int (*fn)(void *ctx, const struct doc *d, const char *json), void *ctx,
                   struct tw_err *err)
{
    struct doc_sqlite *ds = ds_of(s);
    sqlite3_stmt *st = stmt(ds, o->with_json ? ST_LIST_JSON : ST_LIST, err);
    struct doc row;
    int rc, cb = 0;

    if (!st)
        return TW_EDB;
    bind_text(st, 1, o->kind);
    bind_text(st, 2, o->source);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        row_doc(st, &row);
        cb = fn(ctx, &row, o->with_json ? (const char *)sqlite3_column_text(st, 16) : NULL);
        if (cb != 0)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        cb = db_err(ds, err, "listing documents");
    sqlite3_reset(st);
    return cb < 0 ? cb : TW_OK;
}

static int sq_count(struct doc_store *s, const char *kind, int64_t *n, struct tw_err *err)
{
    struct doc_sqlite *ds = ds_of(s);
    sqlite3_stmt *st = stmt(ds, ST_COUNT, err);
    int rc;
    if (!st)
        return TW_EDB;
    bind_text(st, 1, kind);
    rc = sqlite3_step(st);
    *n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? TW_OK : db_err(ds, err, "counting documents");
}

/* ---- deleting ---- */

static int sq_del(struct doc_store *s, const char *key, bool by_id, char id_out[DOC_ID_LEN + 1],
                  struct tw_err *err)
{
    struct doc_sqlite *ds = ds_of(s);
    char id[DOC_ID_LEN + 1] = "";
    sqlite3_stmt *st;
    int rc = begin(ds, err);

    if (rc < 0)
        return rc;
    if (!(st = stmt(ds, by_id ? ST_DEL_FIND_ID : ST_DEL_FIND_URL, err))) {
        rc = TW_EDB;
        goto fail_rollback;
    }
    bind_text(st, 1, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        copy_id(id, sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = db_err(ds, err, "looking up the document");
        goto fail_rollback;
    }
    if (!id[0]) {
        rc = tw_errf(err, TW_ENOENT, "no document with %s '%.200s'", by_id ? "id" : "url", key);
        goto fail_rollback;
    }
    if (!(st = stmt(ds, ST_DEL, err))) {
        rc = TW_EDB;
        goto fail_rollback;
    }
    bind_text(st, 1, id);
    if ((rc = exec_stmt(ds, st, err, "deleting the document")) < 0 || (rc = commit(ds, err)) < 0)
        goto fail_rollback;
    if (id_out)
        memcpy(id_out, id, DOC_ID_LEN + 1);
    return TW_OK;
fail_rollback:
    rollback(ds);
    return rc;
}

static int sq_prune(struct doc_store *s, const char *source, const char *const *seen_urls,
                    size_t n_seen, size_t *n_deleted, struct tw_err *err)
{
    struct doc_sqlite *ds = ds_of(s);
    sqlite3_stmt *st;
    int rc;

    if (!ds->prune_table) {
        if (sqlite3_exec(ds->db, "CREATE TEMP TABLE IF NOT EXISTS prune_seen(url TEXT PRIMARY KEY)",
                         NULL, NULL, NULL) != SQLITE_OK)
            return db_err(ds, err, "creating the prune table");
        ds->prune_table = true;
    }
    if ((rc = begin(ds, err)) < 0)
        return rc;
    if ((rc = run(ds, ST_PRUNE_CLEAR, err, "clearing the prune table")) < 0)
        goto fail_rollback;
    for (size_t i = 0; i < n_seen; i++) {
        if (!seen_urls[i]) {
            rc = tw_errf(err, TW_EINVAL, "seen url %zu is NULL", i);
            goto fail_rollback;
        }
        if (!(st = stmt(ds, ST_PRUNE_ADD, err))) {
            rc = TW_EDB;
            goto fail_rollback;
        }
        bind_text(st, 1, seen_urls[i]);
        if ((rc = exec_stmt(ds, st, err, "recording a seen url")) < 0)
            goto fail_rollback;
    }
    if (!(st = stmt(ds, ST_PRUNE_DELETE, err))) {
        rc = TW_EDB;
        goto fail_rollback;
    }
    bind_text(st, 1, source);
    if ((rc = exec_stmt(ds, st, err, "pruning documents")) < 0)
        goto fail_rollback;
    if (n_deleted)
        *n_deleted = (size_t)sqlite3_changes(ds->db); // trigger rows are not counted
    if ((rc = run(ds, ST_PRUNE_CLEAR, err, "clearing the prune table")) < 0 ||
        (rc = commit(ds, err)) < 0)
        goto fail_rollback;
    return TW_OK;
fail_rollback:
    if (n_deleted)
        *n_deleted = 0;
    rollback(ds);
    return tw_err_ctx(err, "pruning source '%.200s'", source);
}

/* ---- change log ---- */

static int sq_changes_read(struct doc_store *s, int64_t after_seq, size_t max_events,
                           struct doc_event **out, size_t *n_out, struct tw_err *err)
{
    struct doc_sqlite *ds = ds_of(s);
    sqlite3_stmt *st = stmt(ds, ST_CHANGES, err);
    struct doc_event *ev = NULL;
    size_t n = 0, cap = 0, bytes = 0;
    int rc;

    if (!st)
        return TW_EDB;
    sqlite3_bind_int64(st, 1, after_seq);
    sqlite3_bind_int64(st, 2, max_events > INT64_MAX ? INT64_MAX : (int64_t)max_events);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *json = (const char *)sqlite3_column_text(st, 5);
        size_t len = (size_t)sqlite3_column_bytes(st, 5);
        if (n && bytes + len > DOC_EVENTS_MAX_BYTES)
            break;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct doc_event *ne = tw_reallocarray(ev, ncap, sizeof(*ne));
            if (!ne)
                goto fail_nomem;
            ev = ne;
            cap = ncap;
        }
        struct doc_event *e = &ev[n];
        memset(e, 0, sizeof(*e));
        e->seq = sqlite3_column_int64(st, 0);
        snprintf(e->op, sizeof(e->op), "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(e->kind, sizeof(e->kind), "%s", (const char *)sqlite3_column_text(st, 2));
        copy_id(e->doc_id, sqlite3_column_text(st, 3));
        e->at = sqlite3_column_int64(st, 4);
        e->json = tw_strndup(json ? json : "", len);
        if (!e->json)
            goto fail_nomem;
        e->json_len = len;
        bytes += len;
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = db_err(ds, err, "reading the change log");
        sqlite3_reset(st);
        doc_events_free(ev, n);
        return rc;
    }
    sqlite3_reset(st);
    *out = ev;
    *n_out = n;
    return TW_OK;
fail_nomem:
    sqlite3_reset(st);
    doc_events_free(ev, n);
    return tw_errf(err, TW_ENOMEM, "out of memory reading the change log after seq %lld",
                   (long long)after_seq);
}

static int sq_last_seq(struct doc_store *s, int64_t *seq, struct tw_err *err)
{
    struct doc_sqlite *ds = ds_of(s);
    sqlite3_stmt *st = stmt(ds, ST_LAST_SEQ, err);
    int rc;
    if (!st)
        return TW_EDB;
    rc = sqlite3_step(st);
    *seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? TW_OK : db_err(ds, err, "reading the last seq");
}

static int sq_changed(struct doc_store *s, bool *changed, struct tw_err *err)
{
    struct doc_sqlite *ds = ds_of(s);
    sqlite3_stmt *st = stmt(ds, ST_DATA_VERSION, err);
    int64_t v;
    int rc;
    if (!st)
        return TW_EDB;
    rc = sqlite3_step(st);
    v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return db_err(ds, err, "reading data_version");
    *changed = v != ds->data_version;
    ds->data_version = v;
    return TW_OK;
}

static int sq_offset_get(struct doc_store *s, const char *consumer, int64_t *seq,
                         struct tw_err *err)
{
    struct doc_sqlite *ds = ds_of(s);
    sqlite3_stmt *st = stmt(ds, ST_OFFSET_GET, err);
    int rc;
    if (!st)
        return TW_EDB;
    bind_text(st, 1, consumer);
    rc = sqlite3_step(st);
    *seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_err(ds, err, "reading a consumer offset");
    return TW_OK;
}

static int sq_offset_commit(struct doc_store *s, const char *consumer, int64_t seq,
                            struct tw_err *err)
{
    struct doc_sqlite *ds = ds_of(s);
    sqlite3_stmt *st;
    int64_t last;
    int rc = begin(ds, err);
    if (rc < 0)
        return rc;
    if ((rc = sq_last_seq(s, &last, err)) < 0)
        goto fail_rollback;
    if (seq > last) {
        rc = tw_errf(err, TW_EINVAL, "offset %lld for consumer '%s' is past the last seq %lld",
                     (long long)seq, consumer, (long long)last);
        goto fail_rollback;
    }
    if (!(st = stmt(ds, ST_OFFSET_SET, err))) {
        rc = TW_EDB;
        goto fail_rollback;
    }
    bind_text(st, 1, consumer);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_int64(st, 3, tw_time_now());
    if ((rc = exec_stmt(ds, st, err, "committing a consumer offset")) < 0 ||
        (rc = commit(ds, err)) < 0)
        goto fail_rollback;
    return TW_OK;
fail_rollback:
    rollback(ds);
    return rc;
}

/* ---- open / close ---- */

static void sq_close(struct doc_store *s)
{
    struct doc_sqlite *ds = ds_of(s);
    for (int i = 0; i < ST_COUNT_; i++)
        sqlite3_finalize(ds->st[i]);
    if (sqlite3_close(ds->db) != SQLITE_OK)
        tw_log(TW_LOG_WARN, "store", "closing '%s': %s", ds->path, sqlite3_errmsg(ds->db));
    tw_free(ds->path);
    tw_free(ds);
}

static const struct doc_store_ops sqlite_ops = {
    "sqlite",      sq_put,          sq_get,      sq_del,     sq_prune,
    sq_list,       sq_count,        sq_changes_read, sq_last_seq, sq_changed,
    sq_offset_get, sq_offset_commit, sq_close,
};

/* mkdir -p for the data directory. */
static int make_dirs(const char *dir, struct tw_err *err)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n >= sizeof(path))
        return tw_errf(err, TW_EINVAL, "data directory '%.200s...' is too long", dir);
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != 0)
            continue;
        char c = path[i];
        path[i] = 0;
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return tw_errf(err, TW_EIO, "cannot create directory '%s': %s", path, strerror(errno));
        path[i] = c;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return tw_errf(err, TW_EIO, "data directory '%s' is not a directory", dir);
    return TW_OK;
}

static int migrate(struct doc_sqlite *ds, struct tw_err *err)
{
    sqlite3_stmt *st;
    int version, rc;
    char *msg = NULL;

    if ((rc = begin(ds, err)) < 0)
        return rc;
    if (sqlite3_prepare_v2(ds->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
        rc = db_err(ds, err, "reading the schema version");
        goto fail_rollback;
    }
    rc = sqlite3_step(st);
    version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (version < 0) {
        rc = db_err(ds, err, "reading the schema version");
        goto fail_rollback;
    }
    if (version > SCHEMA_VERSION) {
        rc = tw_errf(err, TW_EDB,
                     "'%s' has schema version %d; this twin knows up to %d (upgrade twin)",
                     ds->path, version, SCHEMA_VERSION);
        goto fail_rollback;
    }
    for (int v = version; v < SCHEMA_VERSION; v++) {
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
        if (sqlite3_exec(ds->db, migrations[v], NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(ds->db, pragma, NULL, NULL, &msg) != SQLITE_OK) {
            rc = tw_errf(err, TW_EDB, "migrating '%s' to schema version %d: %s", ds->path, v + 1,
                         msg ? msg : sqlite3_errmsg(ds->db));
            sqlite3_free(msg);
            goto fail_rollback;
        }
        if (v > 0 || version > 0)
            tw_log(TW_LOG_INFO, "store", "migrated '%s' to schema version %d", ds->path, v + 1);
    }
    return commit(ds, err);
fail_rollback:
    rollback(ds);
    return rc;
}

int doc__sqlite_open(const char *dir, struct doc_store **out, struct tw_err *err)
{
    struct doc_sqlite *ds;
    char *msg = NULL;
    int rc;
    bool changed;

    if ((rc = make_dirs(dir, err)) < 0)
        return rc;
    ds = tw_calloc(1, sizeof(*ds));
    if (!ds)
        return tw_errf(err, TW_ENOMEM, "out of memory opening store '%s'", dir);
    ds->base.ops = &sqlite_ops;
    size_t plen = strlen(dir) + sizeof("/docs.db");
    ds->path = tw_malloc(plen);
    if (!ds->path) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory opening store '%s'", dir);
        goto fail_free;
    }
    snprintf(ds->path, plen, "%s/docs.db", dir);
    if (sqlite3_open_v2(ds->path, &ds->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = tw_errf(err, TW_EDB, "cannot open '%s': %s", ds->path,
                     ds->db ? sqlite3_errmsg(ds->db) : "out of memory");
        goto fail_close;
    }
    sqlite3_busy_timeout(ds->db, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(ds->db, 1);
    /* WAL: readers (the feature pipeline) run beside the writer (import); NORMAL sync: a commit
     * survives a process crash; an OS crash may lose the last commits but never half of one. */
    if (sqlite3_exec(ds->db,
                     "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                     " PRAGMA foreign_keys = ON;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        rc = tw_errf(err, TW_EDB, "cannot open '%s': %s", ds->path,
                     msg ? msg : sqlite3_errmsg(ds->db));
        sqlite3_free(msg);
        goto fail_close;
    }
    if ((rc = migrate(ds, err)) < 0)
        goto fail_close;
    if ((rc = sq_changed(&ds->base, &changed, err)) < 0)
        goto fail_close;
    *out = &ds->base;
    return TW_OK;
fail_close:
    for (int i = 0; i < ST_COUNT_; i++)
        sqlite3_finalize(ds->st[i]);
    sqlite3_close(ds->db);
fail_free:
    tw_free(ds->path);
    tw_free(ds);
    return rc;
}
