/* fstore.c - the feature store on SQLite with a derived HNSW index (see fstore.h). */
#include "vector/fstore.h"

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "vector/lexical.h"
#include "vector/vec.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FS_PATH_MAX 4096
#define RRF_K 60.0

struct vec_store {
    sqlite3 *db;
    char dir[FS_PATH_MAX];
    char index_path[FS_PATH_MAX];
    struct vec_index *idx; // NULL until synced (and always for a lexical-only store)
    bool idx_dirty;
    bool in_txn;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS cleaned("
    " doc_id TEXT PRIMARY KEY, kind TEXT NOT NULL, platform TEXT, author_id TEXT, author TEXT,"
    " url TEXT, title TEXT, published_at INTEGER, content TEXT NOT NULL, content_hash TEXT,"
    " version INTEGER);"
    "CREATE TABLE IF NOT EXISTS chunks("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id TEXT NOT NULL UNIQUE, doc_id TEXT NOT NULL,"
    " chunk_index INTEGER NOT NULL, kind TEXT NOT NULL, platform TEXT, author_id TEXT,"
    " author TEXT, url TEXT, title TEXT, published_at INTEGER, text TEXT NOT NULL,"
    " start INTEGER NOT NULL, \"end\" INTEGER NOT NULL, embedding_model TEXT, vector BLOB);"
    "CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);"
    "CREATE TABLE IF NOT EXISTS chunk_log("
    " lsn INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL, chunk_seq INTEGER NOT NULL);"
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5("
    " title, text, content='chunks', content_rowid='seq', tokenize='twin');"
    "CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN"
    " INSERT INTO chunks_fts(rowid, title, text) VALUES (new.seq, new.title, new.text);"
    " INSERT INTO chunk_log(op, chunk_seq) VALUES ('add', new.seq); END;"
    "CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN"
    " INSERT INTO chunks_fts(chunks_fts, rowid, title, text)"
    "  VALUES ('delete', old.seq, old.title, old.text);"
    " INSERT INTO chunk_log(op, chunk_seq) VALUES ('del', old.seq); END;"
    "CREATE VIEW IF NOT EXISTS cleaned_article AS SELECT * FROM cleaned WHERE kind = 'article';"
    "CREATE VIEW IF NOT EXISTS cleaned_post AS SELECT * FROM cleaned WHERE kind = 'post';"
    "CREATE VIEW IF NOT EXISTS cleaned_code AS SELECT * FROM cleaned WHERE kind = 'code';"
    "CREATE VIEW IF NOT EXISTS vector_article AS SELECT * FROM chunks WHERE kind = 'article';"
    "CREATE VIEW IF NOT EXISTS vector_post AS SELECT * FROM chunks WHERE kind = 'post';"
    "CREATE VIEW IF NOT EXISTS vector_code AS SELECT * FROM chunks WHERE kind = 'code';";

static int db_err(struct vec_store *s, struct tw_err *err, const char *what)
{
    return tw_errf(err, TW_EDB, "%s: %s", what, sqlite3_errmsg(s->db));
}

static int exec(struct vec_store *s, const char *sql, struct tw_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = tw_errf(err, TW_EDB, "feature store: %s", msg ? msg : "sqlite error");
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

static int prepare(struct vec_store *s, const char *sql, sqlite3_stmt **st, struct tw_err *err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_err(s, err, "feature store query");
    return 0;
}

int vec_store_open(const char *dir, struct vec_store **out, struct tw_err *err)
{
    struct vec_store *s;
    char path[FS_PATH_MAX];
    int rc;

    *out = NULL;
    if (strlen(dir) > FS_PATH_MAX - 32)
        return tw_errf(err, TW_ELIMIT, "data directory path is too long");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return tw_errf(err, TW_EIO, "cannot create '%s': %s", dir, strerror(errno));
    s = tw_calloc(1, sizeof(*s));
    if (!s)
        return tw_errf(err, TW_ENOMEM, "out of memory opening the feature store");
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    snprintf(s->index_path, sizeof(s->index_path), "%s/vectors.hnsw", dir);
    snprintf(path, sizeof(path), "%s/features.db", dir);
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rc = tw_errf(err, TW_EDB, "cannot open '%s': %s", path,
                     s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 10000);
    if ((rc = lex_register(s->db, err)) < 0 ||
        (rc = exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err)) < 0 ||
        (rc = exec(s, schema, err)) < 0) {
        tw_err_ctx(err, "opening '%s'", path);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    sqlite3_close(s->db);
    tw_free(s);
    return rc;
}

void vec_store_close(struct vec_store *s)
{
    if (!s)
        return;
    if (s->in_txn)
        vec_store_rollback(s);
    vec_index_free(s->idx);
    sqlite3_close(s->db);
    tw_free(s);
}

/* ---- meta ---- */

static int meta_get(struct vec_store *s, const char *key, char *val, size_t cap, bool *found,
                    struct tw_err *err)
{
    sqlite3_stmt *st;
    int rc;
    *found = false;
    if (cap)
        val[0] = '\0';
    if ((rc = prepare(s, "SELECT value FROM meta WHERE key = ?", &st, err)) < 0)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *found = true;
        snprintf(val, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? 0 : db_err(s, err, "reading feature store meta");
    }
    sqlite3_finalize(st);
    return rc;
}

static int meta_set(struct vec_store *s, const char *key, const char *val, struct tw_err *err)
{
    sqlite3_stmt *st;
    int rc;
    if ((rc = prepare(s, "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                         "SET value = excluded.value", &st, err)) < 0)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, val, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(s, err, "writing feature store meta");
    sqlite3_finalize(st);
    return rc;
}

int vec_store_model(struct vec_store *s, char *name, size_t cap, int *dim, struct tw_err *err)
{
    char d[32];
    bool found;
    int rc;
    *dim = 0;
    if ((rc = meta_get(s, "embedding_model", name, cap, &found, err)) < 0 ||
        (rc = meta_get(s, "dim", d, sizeof(d), &found, err)) < 0)
        return rc;
    if (found)
        *dim = (int)strtol(d, NULL, 10);
    return 0;
}

static int count_rows(struct vec_store *s, const char *sql, int64_t *n, struct tw_err *err)
{
    sqlite3_stmt *st;
    int rc;
    if ((rc = prepare(s, sql, &st, err)) < 0)
        return rc;
    rc = sqlite3_step(st);
    *n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    rc = rc == SQLITE_ROW ? 0 : db_err(s, err, "counting feature store rows");
    sqlite3_finalize(st);
    return rc;
}

int vec_store_set_model(struct vec_store *s, const char *name, int dim, struct tw_err *err)
{
    char cur[256], d[32];
    int cur_dim, rc;
    int64_t n;

    if ((rc = vec_store_model(s, cur, sizeof(cur), &cur_dim, err)) < 0)
        return rc;
    if (!strcmp(cur, name) && cur_dim == dim)
        return 0;
    if ((rc = count_rows(s, "SELECT count(*) FROM chunks", &n, err)) < 0)
        return rc;
    if (n > 0)
        return tw_errf(err, TW_ESTATE,
                       "the feature store holds chunks embedded with '%s' (%d dimensions), not "
                       "'%s' (%d); run 'twin stream --reset' to rebuild it with the new model",
                       cur[0] ? cur : "no model", cur_dim, name[0] ? name : "no model", dim);
    snprintf(d, sizeof(d), "%d", dim);
    if ((rc = meta_set(s, "embedding_model", name, err)) < 0 || (rc = meta_set(s, "dim", d, err)))
        return rc;
    vec_index_free(s->idx);
    s->idx = NULL;
    return 0;
}

/* ---- transactions, offsets ---- */

int vec_store_begin(struct vec_store *s, struct tw_err *err)
{
    int rc = exec(s, "BEGIN IMMEDIATE", err);
    if (rc == 0)
        s->in_txn = true;
    return rc;
}

int vec_store_commit(struct vec_store *s, struct tw_err *err)
{
    int rc = exec(s, "COMMIT", err);
    if (rc == 0)
        s->in_txn = false;
    return rc;
}

void vec_store_rollback(struct vec_store *s)
{
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->in_txn = false;
}

int vec_store_offset(struct vec_store *s, const char *consumer, int64_t *seq, struct tw_err *err)
{
    char key[128], val[32];
    bool found;
    int rc;
    snprintf(key, sizeof(key), "offset:%s", consumer);
    if ((rc = meta_get(s, key, val, sizeof(val), &found, err)) < 0)
        return rc;
    *seq = found ? strtoll(val, NULL, 10) : 0;
    return 0;
}

int vec_store_set_offset(struct vec_store *s, const char *consumer, int64_t seq,
                         struct tw_err *err)
{
    char key[128], val[32];
    snprintf(key, sizeof(key), "offset:%s", consumer);
    snprintf(val, sizeof(val), "%lld", (long long)seq);
    return meta_set(s, key, val, err);
}

/* ---- documents ---- */

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_time(sqlite3_stmt *st, int i, int64_t t)
{
    if (t == INT64_MIN)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, t);
}

int vec_store_delete_doc(struct vec_store *s, const char *doc_id, struct tw_err *err)
{
    sqlite3_stmt *st;
    int rc;
    static const char *const sql[] = {"DELETE FROM chunks WHERE doc_id = ?",
                                      "DELETE FROM cleaned WHERE doc_id = ?"};
    for (int i = 0; i < 2; i++) {
        if ((rc = prepare(s, sql[i], &st, err)) < 0)
            return rc;
        sqlite3_bind_text(st, 1, doc_id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(s, err, "deleting a document");
        sqlite3_finalize(st);
        if (rc)
            return rc;
    }
    return 0;
}

int vec_store_put_doc(struct vec_store *s, const struct vec_doc *d, const struct vec_chunk *chunks,
                      size_t n_chunks, struct tw_err *err)
{
    sqlite3_stmt *st = NULL;
    char model[256];
    int dim, rc;

    if ((rc = vec_store_model(s, model, sizeof(model), &dim, err)) < 0 ||
        (rc = vec_store_delete_doc(s, d->doc_id, err)) < 0)
        return rc;
    if ((rc = prepare(s, "INSERT INTO cleaned(doc_id, kind, platform, author_id, author, url, "
                         "title, published_at, content, content_hash, version) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", &st, err)) < 0)
        return rc;
    sqlite3_bind_text(st, 1, d->doc_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, d->kind, -1, SQLITE_STATIC);
    bind_text_or_null(st, 3, d->platform);
    bind_text_or_null(st, 4, d->author_id);
    bind_text_or_null(st, 5, d->author);
    bind_text_or_null(st, 6, d->url);
    bind_text_or_null(st, 7, d->title);
    bind_time(st, 8, d->published_at);
    sqlite3_bind_text(st, 9, d->content, (int)d->content_len, SQLITE_STATIC);
    bind_text_or_null(st, 10, d->content_hash);
    sqlite3_bind_int64(st, 11, d->version);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(s, err, "storing a cleaned document");
    sqlite3_finalize(st);
    if (rc)
        return rc;
    if ((rc = prepare(s, "INSERT INTO chunks(chunk_id, doc_id, chunk_index, kind, platform, "
                         "author_id, author, url, title, published_at, text, start, \"end\", "
                         "embedding_model, vector) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", &st, err)) < 0)
        return rc;
    for (size_t i = 0; i < n_chunks && !rc; i++) {
        const struct vec_chunk *c = &chunks[i];
        if (c->end < c->start || c->end > d->content_len) {
            rc = tw_errf(err, TW_EINVAL, "chunk %d of '%s' is outside the content", c->chunk_index,
                         d->doc_id);
            break;
        }
        sqlite3_bind_text(st, 1, c->chunk_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, d->doc_id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, c->chunk_index);
        sqlite3_bind_text(st, 4, d->kind, -1, SQLITE_STATIC);
        bind_text_or_null(st, 5, d->platform);
        bind_text_or_null(st, 6, d->author_id);
        bind_text_or_null(st, 7, d->author);
        bind_text_or_null(st, 8, d->url);
        bind_text_or_null(st, 9, d->title);
        bind_time(st, 10, d->published_at);
        sqlite3_bind_text(st, 11, d->content + c->start, (int)(c->end - c->start), SQLITE_STATIC);
        sqlite3_bind_int64(st, 12, (int64_t)c->start);
        sqlite3_bind_int64(st, 13, (int64_t)c->end);
        if (c->vector && dim > 0) {
            sqlite3_bind_text(st, 14, model, -1, SQLITE_STATIC);
            sqlite3_bind_blob(st, 15, c->vector, dim * (int)sizeof(float), SQLITE_STATIC);
        } else {
            sqlite3_bind_null(st, 14);
            sqlite3_bind_null(st, 15);
        }
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_err(s, err, "storing a chunk");
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    sqlite3_finalize(st);
    return rc;
}

int vec_store_reset(struct vec_store *s, struct tw_err *err)
{
    int rc = exec(s, "BEGIN IMMEDIATE; DELETE FROM chunks; DELETE FROM cleaned; "
                     "DELETE FROM chunk_log; DELETE FROM meta; "
                     "INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild'); COMMIT;", err);
    if (rc < 0) {
        vec_store_rollback(s);
        return rc;
    }
    vec_index_free(s->idx);
    s->idx = NULL;
    if (unlink(s->index_path) != 0 && errno != ENOENT)
        return tw_errf(err, TW_EIO, "cannot remove '%s': %s", s->index_path, strerror(errno));
    return 0;
}

/* ---- the derived HNSW index ---- */

static int max_lsn(struct vec_store *s, int64_t *lsn, struct tw_err *err)
{
    return count_rows(s, "SELECT coalesce(max(lsn), 0) FROM chunk_log", lsn, err);
}

static int rebuild_index(struct vec_store *s, int dim, struct tw_err *err)
{
    struct vec_params p = VEC_PARAMS_INIT((uint32_t)dim, VEC_METRIC_COSINE);
    struct vec_index *idx = NULL;
    sqlite3_stmt *st = NULL;
    int64_t lsn;
    int rc;

    if ((rc = exec(s, "BEGIN", err)) < 0) /* one snapshot of rows and log */
        return rc;
    if ((rc = max_lsn(s, &lsn, err)) < 0 || (rc = vec_index_new(&p, &idx, err)) < 0 ||
        (rc = prepare(s, "SELECT seq, vector FROM chunks WHERE vector IS NOT NULL ORDER BY seq",
                      &st, err)) < 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 1) != dim * (int)sizeof(float)) {
            rc = tw_errf(err, TW_EFORMAT, "chunk %lld has a vector of %d bytes, expected %d",
                         (long long)sqlite3_column_int64(st, 0), sqlite3_column_bytes(st, 1),
                         dim * (int)sizeof(float));
            goto out;
        }
        if ((rc = vec_index_add(idx, (uint64_t)sqlite3_column_int64(st, 0),
                                sqlite3_column_blob(st, 1), err)) < 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : db_err(s, err, "reading chunk vectors");
    vec_index_set_max_seq(idx, (uint64_t)lsn);
out:
    sqlite3_finalize(st);
    exec(s, "ROLLBACK", NULL); /* read-only transaction */
    if (rc < 0) {
        vec_index_free(idx);
        return rc;
    }
    vec_index_free(s->idx);
    s->idx = idx;
    s->idx_dirty = true;
    return 0;
}

/* Applies chunk_log entries after the index's lsn. */
static int replay_log(struct vec_store *s, int dim, struct tw_err *err)
{
    sqlite3_stmt *log = NULL, *vec = NULL;
    uint64_t last = vec_index_max_seq(s->idx);
    int rc;

    if ((rc = exec(s, "BEGIN", err)) < 0) /* one snapshot of the log and the rows */
        return rc;
    if ((rc = prepare(s, "SELECT lsn, op, chunk_seq FROM chunk_log WHERE lsn > ? ORDER BY lsn",
                      &log, err)) < 0 ||
        (rc = prepare(s, "SELECT vector FROM chunks WHERE seq = ? AND vector IS NOT NULL", &vec,
                      err)) < 0)
        goto out;
    sqlite3_bind_int64(log, 1, (int64_t)last);
    while ((rc = sqlite3_step(log)) == SQLITE_ROW) {
        int64_t lsn = sqlite3_column_int64(log, 0), seq = sqlite3_column_int64(log, 2);
        const char *op = (const char *)sqlite3_column_text(log, 1);
        struct tw_err e2 = TW_ERR_INIT;
        if (op && !strcmp(op, "add")) {
            sqlite3_bind_int64(vec, 1, seq);
            /* A row deleted since has no vector here; its 'del' entry follows. */
            if (sqlite3_step(vec) == SQLITE_ROW &&
                sqlite3_column_bytes(vec, 0) == dim * (int)sizeof(float) &&
                !vec_index_has(s->idx, (uint64_t)seq, NULL)) {
                if ((rc = vec_index_add(s->idx, (uint64_t)seq, sqlite3_column_blob(vec, 0),
                                        err)) < 0) {
                    sqlite3_reset(vec);
                    goto out;
                }
            }
            sqlite3_reset(vec);
        } else if (vec_index_has(s->idx, (uint64_t)seq, NULL)) {
            vec_index_delete(s->idx, (uint64_t)seq, &e2);
        }
        last = (uint64_t)lsn;
        s->idx_dirty = true;
    }
    rc = rc == SQLITE_DONE ? 0 : db_err(s, err, "reading the chunk log");
    if (rc == 0 && last != vec_index_max_seq(s->idx))
        vec_index_set_max_seq(s->idx, last);
out:
    sqlite3_finalize(log);
    sqlite3_finalize(vec);
    exec(s, "ROLLBACK", NULL);
    return rc;
}

int vec_store_sync_index(struct vec_store *s, bool rebuild, struct tw_err *err)
{
    char model[256];
    int dim, rc;
    int64_t lsn;

    if ((rc = vec_store_model(s, model, sizeof(model), &dim, err)) < 0)
        return rc;
    if (dim <= 0)
        return 0;
    if (rebuild)
        return rebuild_index(s, dim, err);
    if (!s->idx) {
        struct tw_err e2 = TW_ERR_INIT;
        struct vec_params p;
        if (access(s->index_path, F_OK) != 0)
            return rebuild_index(s, dim, err);
        if (vec_index_open(s->index_path, &s->idx, &e2) < 0) {
            tw_log(TW_LOG_WARN, "feature", "%s; rebuilding it from features.db", e2.msg);
            return rebuild_index(s, dim, err);
        }
        vec_index_params(s->idx, &p);
        if ((rc = max_lsn(s, &lsn, err)) < 0)
            return rc;
        if ((int)p.dim != dim || vec_index_max_seq(s->idx) > (uint64_t)lsn) {
            tw_log(TW_LOG_WARN, "feature", "'%s' does not match features.db; rebuilding it",
                   s->index_path);
            return rebuild_index(s, dim, err);
        }
        s->idx_dirty = false;
    }
    return replay_log(s, dim, err);
}

int vec_store_save_index(struct vec_store *s, struct tw_err *err)
{
    if (!s->idx || !s->idx_dirty)
        return 0;
    if (vec_index_save(s->idx, s->index_path, err) < 0)
        return tw_err_ctx(err, "saving the vector index");
    s->idx_dirty = false;
    return 0;
}

int vec_store_stats(struct vec_store *s, struct vec_store_stats *st, struct tw_err *err)
{
    int rc;
    if ((rc = count_rows(s, "SELECT count(*) FROM cleaned", &st->n_docs, err)) < 0 ||
        (rc = count_rows(s, "SELECT count(*) FROM chunks", &st->n_chunks, err)) < 0)
        return rc;
    st->n_vectors = s->idx ? (int64_t)vec_index_count(s->idx) : -1;
    return 0;
}

/* ---- search ---- */

struct ranked {
    int64_t seq;
    double score;
};

/* " AND kind = ?N ..." for the query's filters; binds start at 'first'. */
static void filter_sql(const struct vec_query *q, struct tw_buf *b, const char *alias, int first)
{
    int i = first;
    if (q->kind)
        tw_buf_printf(b, " AND %skind = ?%d", alias, i++);
    if (q->platform)
        tw_buf_printf(b, " AND %splatform = ?%d", alias, i++);
    if (q->author) {
        tw_buf_printf(b, " AND (%sauthor_id = ?%d OR %sauthor = ?%d)", alias, i, alias, i);
        i++;
    }
    if (q->since != INT64_MIN)
        tw_buf_printf(b, " AND %spublished_at >= ?%d", alias, i++);
}

static void filter_bind(const struct vec_query *q, sqlite3_stmt *st, int first)
{
    int i = first;
    if (q->kind)
        sqlite3_bind_text(st, i++, q->kind, -1, SQLITE_STATIC);
    if (q->platform)
        sqlite3_bind_text(st, i++, q->platform, -1, SQLITE_STATIC);
    if (q->author)
        sqlite3_bind_text(st, i++, q->author, -1, SQLITE_STATIC);
    if (q->since != INT64_MIN)
        sqlite3_bind_int64(st, i++, q->since);
}

static bool has_filter(const struct vec_query *q)
{
    return q->kind || q->platform || q->author || q->since != INT64_MIN;
}

static int search_lexical(struct vec_store *s, const struct vec_query *q, int k,
                          struct ranked *out, int *n, struct tw_err *err)
{
    struct tw_buf match = TW_BUF_INIT, sql = TW_BUF_INIT;
    sqlite3_stmt *st = NULL;
    int rc;

    *n = 0;
    rc = q->text ? lex_build_match(q->text, strlen(q->text), &match) : TW_ENOENT;
    if (rc == TW_ENOENT || match.len == 0) {
        tw_buf_release(&match);
        return 0;
    }
    tw_buf_printf(&sql,
                  "SELECT c.seq, twin_bm25f(chunks_fts, %g, %g, %g, 1.0) AS score FROM chunks_fts "
                  "JOIN chunks c ON c.seq = chunks_fts.rowid WHERE chunks_fts MATCH ?1",
                  LEX_BM25F_K1, LEX_BM25F_B, LEX_TITLE_WEIGHT);
    filter_sql(q, &sql, "c.", 2);
    tw_buf_printf(&sql, " ORDER BY score DESC, c.seq LIMIT %d", k);
    if (sql.err || match.err) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory building a query");
        goto out;
    }
    if ((rc = prepare(s, sql.data, &st, err)) < 0)
        goto out;
    sqlite3_bind_text(st, 1, match.data, (int)match.len, SQLITE_STATIC);
    filter_bind(q, st, 2);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < k) {
        out[*n].seq = sqlite3_column_int64(st, 0);
        out[(*n)++].score = sqlite3_column_double(st, 1);
    }
    rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_err(s, err, "lexical search");
out:
    sqlite3_finalize(st);
    tw_buf_release(&match);
    tw_buf_release(&sql);
    return rc;
}

struct seq_set {
    int64_t *v;
    size_t n;
};

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int in_set(void *ctx, uint64_t id)
{
    const struct seq_set *set = ctx;
    int64_t key = (int64_t)id;
    return bsearch(&key, set->v, set->n, sizeof(*set->v), cmp_i64) != NULL;
}

/* The seqs of the chunks the filters admit, sorted. */
static int filter_set(struct vec_store *s, const struct vec_query *q, struct seq_set *set,
                      struct tw_err *err)
{
    struct tw_buf sql = TW_BUF_INIT;
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    int rc;

    tw_buf_puts(&sql, "SELECT seq FROM chunks WHERE vector IS NOT NULL");
    filter_sql(q, &sql, "", 1);
    tw_buf_puts(&sql, " ORDER BY seq");
    if ((rc = prepare(s, sql.data, &st, err)) < 0)
        goto out;
    filter_bind(q, st, 1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (set->n == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            int64_t *v = tw_reallocarray(set->v, ncap, sizeof(*v));
            if (!v) {
                rc = tw_errf(err, TW_ENOMEM, "out of memory filtering");
                goto out;
            }
            set->v = v;
            cap = ncap;
        }
        set->v[set->n++] = sqlite3_column_int64(st, 0);
    }
    rc = rc == SQLITE_DONE ? 0 : db_err(s, err, "filtering chunks");
out:
    sqlite3_finalize(st);
    tw_buf_release(&sql);
    return rc;
}

static int search_vector(struct vec_store *s, const struct vec_query *q, int k, struct ranked *out,
                         int *n, struct tw_err *err)
{
    struct vec_hit *hits = NULL;
    struct seq_set set = {NULL, 0};
    uint32_t n_hits = 0;
    int rc;

    *n = 0;
    if (!s->idx && (rc = vec_store_sync_index(s, false, err)) < 0)
        return rc;
    if (!s->idx)
        return 0;
    if (has_filter(q) && (rc = filter_set(s, q, &set, err)) < 0)
        goto out;
    hits = tw_mallocarray((size_t)k, sizeof(*hits));
    if (!hits) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory searching");
        goto out;
    }
    rc = vec_index_search(s->idx, q->vector, (uint32_t)k, 0, has_filter(q) ? in_set : NULL, &set,
                          0, hits, &n_hits, err);
    for (uint32_t i = 0; rc == 0 && i < n_hits; i++) {
        out[i].seq = (int64_t)hits[i].id;
        out[i].score = 1.0 - hits[i].dist;
        *n = (int)i + 1;
    }
out:
    tw_free(set.v);
    tw_free(hits);
    return rc;
}

static int cmp_ranked(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Reciprocal-rank fusion of two rankings into 'out' (deduplicated by seq). */
static int fuse(const struct ranked *a, int na, const struct ranked *b, int nb, struct ranked *out)
{
    int n = 0;
    for (int l = 0; l < 2; l++) {
        const struct ranked *r = l ? b : a;
        int nr = l ? nb : na;
        for (int i = 0; i < nr; i++) {
            int j = 0;
            while (j < n && out[j].seq != r[i].seq)
                j++;
            if (j == n)
                out[n++] = (struct ranked){r[i].seq, 0};
            out[j].score += 1.0 / (RRF_K + i + 1);
        }
    }
    qsort(out, (size_t)n, sizeof(*out), cmp_ranked);
    return n;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    return tw_strdup(t ? t : "");
}

static int load_hits(struct vec_store *s, const struct ranked *r, int n, struct vec_hit_row *out,
                     struct tw_err *err)
{
    sqlite3_stmt *st;
    int rc;
    if ((rc = prepare(s, "SELECT chunk_id, doc_id, kind, platform, author, url, title, text, "
                         "coalesce(published_at, -9223372036854775808), start, \"end\" "
                         "FROM chunks WHERE seq = ?", &st, err)) < 0)
        return rc;
    for (int i = 0; i < n; i++) {
        struct vec_hit_row *h = &out[i];
        sqlite3_bind_int64(st, 1, r[i].seq);
        if (sqlite3_step(st) != SQLITE_ROW) {
            rc = tw_errf(err, TW_EDB, "chunk %lld vanished during the search",
                         (long long)r[i].seq);
            break;
        }
        h->score = r[i].score;
        h->seq = r[i].seq;
        snprintf(h->chunk_id, sizeof(h->chunk_id), "%s", sqlite3_column_text(st, 0));
        snprintf(h->doc_id, sizeof(h->doc_id), "%s", sqlite3_column_text(st, 1));
        h->kind = col_dup(st, 2);
        h->platform = col_dup(st, 3);
        h->author = col_dup(st, 4);
        h->url = col_dup(st, 5);
        h->title = col_dup(st, 6);
        h->text = col_dup(st, 7);
        h->published_at = sqlite3_column_int64(st, 8);
        h->start = sqlite3_column_int64(st, 9);
        h->end = sqlite3_column_int64(st, 10);
        sqlite3_reset(st);
        if (!h->kind || !h->platform || !h->author || !h->url || !h->title || !h->text) {
            rc = tw_errf(err, TW_ENOMEM, "out of memory reading hits");
            break;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

int vec_store_search(struct vec_store *s, const struct vec_query *q, struct vec_hit_row **out,
                     size_t *n_out, enum vec_mode *used_mode, struct tw_err *err)
{
    enum vec_mode mode = q->mode;
    struct ranked *lex = NULL, *vec = NULL, *fused = NULL;
    int n_lex = 0, n_vec = 0, n = 0, k = q->k, wide, rc = 0;
    char model[256];
    int dim;
    struct vec_hit_row *hits = NULL;

    *out = NULL;
    *n_out = 0;
    if (k < 1 || k > 1000)
        return tw_errf(err, TW_EINVAL, "k is %d, expected 1..1000", k);
    if ((rc = vec_store_model(s, model, sizeof(model), &dim, err)) < 0)
        return rc;
    if (dim <= 0 || !q->vector)
        mode = VEC_MODE_LEXICAL;
    if (used_mode)
        *used_mode = mode;
    wide = mode == VEC_MODE_HYBRID ? (k * 2 > 20 ? k * 2 : 20) : k;
    lex = tw_calloc((size_t)wide, sizeof(*lex));
    vec = tw_calloc((size_t)wide, sizeof(*vec));
    fused = tw_calloc((size_t)wide * 2, sizeof(*fused));
    if (!lex || !vec || !fused) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory searching");
        goto out;
    }
    if (mode != VEC_MODE_VECTOR && (rc = search_lexical(s, q, wide, lex, &n_lex, err)) < 0)
        goto out;
    if (mode != VEC_MODE_LEXICAL && (rc = search_vector(s, q, wide, vec, &n_vec, err)) < 0)
        goto out;
    if (mode == VEC_MODE_HYBRID)
        n = fuse(vec, n_vec, lex, n_lex, fused);
    else if (mode == VEC_MODE_VECTOR)
        memcpy(fused, vec, (size_t)(n = n_vec) * sizeof(*fused));
    else
        memcpy(fused, lex, (size_t)(n = n_lex) * sizeof(*fused));
    if (n > k)
        n = k;
    if (n > 0) {
        hits = tw_calloc((size_t)n, sizeof(*hits));
        if (!hits) {
            rc = tw_errf(err, TW_ENOMEM, "out of memory searching");
            goto out;
        }
        if ((rc = load_hits(s, fused, n, hits, err)) < 0) {
            vec_hits_free(hits, (size_t)n);
            hits = NULL;
            goto out;
        }
    }
    *out = hits;
    *n_out = (size_t)n;
out:
    tw_free(lex);
    tw_free(vec);
    tw_free(fused);
    return rc;
}

void vec_hits_free(struct vec_hit_row *h, size_t n)
{
    if (!h)
        return;
    for (size_t i = 0; i < n; i++) {
        tw_free(h[i].kind);
        tw_free(h[i].platform);
        tw_free(h[i].author);
        tw_free(h[i].url);
        tw_free(h[i].title);
        tw_free(h[i].text);
    }
    tw_free(h);
}
