/* test_store.c - the document store and its change log: upserts and their events, gap-free
 * sequences, trigger atomicity, offsets, prune, bad input, reopen, follow-mode waits, and crash
 * safety under SIGKILL. Documents are the real skeeto blog posts from the shared corpus. */
#include "test.h"

#include "base/err.h"
#include "base/mem.h"
#include "base/sha256.h"
#include "base/time.h"
#include "store/doc.h"

#include <cJSON.h>
#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the corpus ---- */

struct post {
    char url[256];
    char title[256];
    int64_t date;
    char *content; // whole file, tw_malloc'd
};

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads up to max posts of the skeeto corpus in file-name order; returns the count. */
static size_t load_posts(struct post *posts, size_t max)
{
    const char *dir = test_shared("data/corpora/skeeto/_posts");
    char *names[600];
    size_t n_names = 0, n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return 0;
    while ((e = readdir(d)) && n_names < 600)
        if (e->d_name[0] != '.')
            names[n_names++] = tw_strdup(e->d_name);
    closedir(d);
    qsort(names, n_names, sizeof(names[0]), name_cmp);
    for (size_t i = 0; i < n_names; i++) {
        if (n < max) {
            struct post *p = &posts[n];
            char path[1024];
            size_t len;
            struct tw_err err = TW_ERR_INIT;
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
            p->content = test_read_file(path, &len);
            if (p->content) {
                snprintf(p->url, sizeof(p->url), "https://nullprogram.com/%s", names[i]);
                char *t = strstr(p->content, "\ntitle: ");
                char *nl = t ? strchr(t + 8, '\n') : NULL;
                snprintf(p->title, sizeof(p->title), "%.*s", t && nl ? (int)(nl - t - 8) : 0,
                         t ? t + 8 : "");
                if (tw_time_parse(names[i], 10, &p->date, &err) != 0)
                    p->date = DOC_TIME_UNKNOWN;
                n++;
            }
        }
        tw_free(names[i]);
    }
    return n;
}

static void free_posts(struct post *posts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tw_free(posts[i].content);
}

static struct doc post_doc(const struct post *p)
{
    struct doc d;
    memset(&d, 0, sizeof(d));
    d.kind = "article";
    d.platform = "web";
    d.url = p->url;
    d.source = "https://nullprogram.com/feed/";
    d.author_name = "Chris Wellons";
    d.author_handle = "skeeto";
    d.title = p->title;
    d.content = p->content;
    d.lang = "en";
    d.published_at = p->date;
    d.fetched_at = DOC_TIME_UNKNOWN;
    return d;
}

static struct doc_store *open_store(const char *name)
{
    struct tw_err err = TW_ERR_INIT;
    struct doc_store *s = NULL;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", test_tmpdir(), name);
    if (doc_store_open(dir, &s, &err) != 0)
        fprintf(stderr, "  open %s: %s\n", dir, err.msg);
    return s;
}

/* Reads every event into *ev; returns the count (or -1). */
static long read_all(struct doc_store *s, int64_t after, struct doc_event **ev)
{
    struct tw_err err = TW_ERR_INIT;
    size_t n;
    if (doc_changes_read(s, after, 100000, ev, &n, &err) != 0) {
        fprintf(stderr, "  read: %s\n", err.msg);
        return -1;
    }
    return (long)n;
}

/* ---- upserts and their events ---- */

TEST(store_insert_update_unchanged_delete_events)
{
    struct tw_err err = TW_ERR_INIT;
    struct post posts[2];
    CHECK_EQ_INT(load_posts(posts, 2), 2);
    struct doc_store *s = open_store("events");
    CHECK(s != NULL);
    struct doc d = post_doc(&posts[0]);
    enum doc_put_result r;

    CHECK_OK(doc_store_put_fill(s, &d, &r, &err), &err);
    CHECK_EQ_INT(r, DOC_PUT_INSERTED);
    CHECK_EQ_INT(d.version, 1);
    char want_hash[65], first_id[DOC_ID_LEN + 1];
    tw_sha256_hex(d.content, strlen(d.content), want_hash);
    CHECK_EQ_STR(d.content_hash, want_hash);
    CHECK_EQ_INT(strlen(d.id), 36);
    CHECK_EQ_INT(strlen(d.author_id), 36);
    memcpy(first_id, d.id, sizeof(first_id));

    /* same content again: no event, same version; a new title is kept silently */
    d.title = "null program is Alive (retitled)";
    CHECK_OK(doc_store_put_fill(s, &d, &r, &err), &err);
    CHECK_EQ_INT(r, DOC_PUT_UNCHANGED);
    CHECK_EQ_INT(d.version, 1);
    CHECK_EQ_STR(d.id, first_id);

    /* new content: update, version 2, same id */
    char *edited = tw_malloc(strlen(posts[0].content) + 32);
    CHECK(edited != NULL);
    snprintf(edited, strlen(posts[0].content) + 32, "%s\nEdited.\n", posts[0].content);
    d.content = edited;
    CHECK_OK(doc_store_put_fill(s, &d, &r, &err), &err);
    CHECK_EQ_INT(r, DOC_PUT_UPDATED);
    CHECK_EQ_INT(d.version, 2);
    CHECK_EQ_STR(d.id, first_id);

    struct doc e = post_doc(&posts[1]);
    CHECK_OK(doc_store_put(s, &e, &r, &err), &err);
    CHECK_EQ_INT(r, DOC_PUT_INSERTED);
    char del_id[DOC_ID_LEN + 1];
    CHECK_OK(doc_store_delete(s, posts[1].url, del_id, &err), &err);
    CHECK_EQ_INT(doc_store_delete(s, posts[1].url, NULL, &err), TW_ENOENT);
    CHECK(strstr(err.msg, posts[1].url) != NULL);
    tw_err_clear(&err);

    struct doc_event *ev;
    long n = read_all(s, 0, &ev);
    CHECK_EQ_INT(n, 4);
    const char *ops[4] = {"insert", "update", "insert", "delete"};
    for (long i = 0; i < n; i++) {
        CHECK_EQ_INT(ev[i].seq, i + 1);
        CHECK_EQ_STR(ev[i].op, ops[i]);
        CHECK_EQ_STR(ev[i].kind, "article");
        cJSON *j = cJSON_Parse(ev[i].json);
        CHECK_MSG(j != NULL, "event %ld is not JSON: %.200s", i, ev[i].json);
        /* the key order of DESIGN §3 */
        const char *keys[6] = {"seq", "op", "kind", "id", "at", "document"};
        int k = 0;
        for (cJSON *c = j->child; c; c = c->next, k++)
            if (k >= 6 || strcmp(c->string, keys[k]))
                break;
        int has_doc = cJSON_GetObjectItem(j, "document") != NULL;
        CHECK_EQ_INT(k, has_doc ? 6 : 5);
        CHECK_EQ_INT(cJSON_GetObjectItem(j, "seq")->valuedouble, i + 1);
        CHECK_EQ_STR(cJSON_GetObjectItem(j, "op")->valuestring, ops[i]);
        CHECK_EQ_STR(cJSON_GetObjectItem(j, "id")->valuestring, ev[i].doc_id);
        const char *at = cJSON_GetObjectItem(j, "at")->valuestring;
        int64_t at_t;
        CHECK_OK(tw_time_parse(at, strlen(at), &at_t, &err), &err);
        CHECK_EQ_INT(at_t, ev[i].at);
        CHECK(has_doc == (i != 3));
        if (has_doc) {
            cJSON *doc = cJSON_GetObjectItem(j, "document");
            CHECK_EQ_STR(cJSON_GetObjectItem(doc, "url")->valuestring,
                         i == 2 ? posts[1].url : posts[0].url);
            CHECK_EQ_STR(cJSON_GetObjectItem(doc, "author")->valuestring, "Chris Wellons");
            CHECK_EQ_STR(cJSON_GetObjectItem(doc, "platform")->valuestring, "web");
            CHECK_EQ_STR(cJSON_GetObjectItem(doc, "lang")->valuestring, "en");
            CHECK(cJSON_IsNull(cJSON_GetObjectItem(doc, "subtitle")));
            char pub[TW_TIME_STR_MAX];
            tw_time_format(i == 2 ? posts[1].date : posts[0].date, pub);
            CHECK_EQ_STR(cJSON_GetObjectItem(doc, "published_at")->valuestring, pub);
            CHECK_EQ_INT(cJSON_GetObjectItem(doc, "version")->valuedouble, i == 1 ? 2 : 1);
            const char *content = cJSON_GetObjectItem(doc, "content")->valuestring;
            char h[65];
            tw_sha256_hex(content, strlen(content), h);
            CHECK_EQ_STR(cJSON_GetObjectItem(doc, "content_hash")->valuestring, h);
            CHECK_EQ_STR(content, i == 0 ? posts[0].content : i == 1 ? edited : posts[1].content);
            /* the update carries the title stored silently before it */
            if (i == 1)
                CHECK_EQ_STR(cJSON_GetObjectItem(doc, "title")->valuestring,
                             "null program is Alive (retitled)");
        } else {
            CHECK_EQ_STR(ev[i].doc_id, del_id);
        }
        cJSON_Delete(j);
    }
    doc_events_free(ev, (size_t)n);
    int64_t last;
    CHECK_OK(doc_changes_last_seq(s, &last, &err), &err);
    CHECK_EQ_INT(last, 4);

    /* get by id and by url return the stored fields */
    struct doc *g;
    CHECK_OK(doc_store_get(s, first_id, &g, &err), &err);
    CHECK_EQ_STR(g->url, posts[0].url);
    CHECK_EQ_STR(g->content, edited);
    CHECK_EQ_STR(g->author_name, "Chris Wellons");
    CHECK_EQ_STR(g->author_handle, "skeeto");
    CHECK_EQ_INT(g->version, 2);
    CHECK_EQ_INT(g->published_at, posts[0].date);
    CHECK(g->subtitle == NULL);
    doc_free(g);
    CHECK_OK(doc_store_get(s, posts[0].url, &g, &err), &err);
    CHECK_EQ_STR(g->id, first_id);
    doc_free(g);
    CHECK_EQ_INT(doc_store_get(s, posts[1].url, &g, &err), TW_ENOENT);
    CHECK(g == NULL);
    tw_free(edited);
    free_posts(posts, 2);
    doc_store_close(s);
}

TEST(store_kind_may_not_change_and_author_is_shared)
{
    struct tw_err err = TW_ERR_INIT;
    struct post posts[3];
    CHECK_EQ_INT(load_posts(posts, 3), 3);
    struct doc_store *s = open_store("kind");
    CHECK(s != NULL);
    struct doc d = post_doc(&posts[0]);
    CHECK_OK(doc_store_put_fill(s, &d, NULL, &err), &err);
    d.kind = "post";
    CHECK_EQ_INT(doc_store_put(s, &d, NULL, &err), TW_EINVAL);
    CHECK_MSG(strstr(err.msg, "stored as a article") != NULL, "message: %s", err.msg);
    tw_err_clear(&err);
    struct doc e = post_doc(&posts[1]), f = post_doc(&posts[2]);
    f.author_name = NULL;
    f.author_handle = NULL;
    CHECK_OK(doc_store_put_fill(s, &e, NULL, &err), &err);
    CHECK_OK(doc_store_put_fill(s, &f, NULL, &err), &err);
    CHECK_EQ_STR(e.author_id, d.author_id); /* get-or-create by full name */
    CHECK_EQ_STR(f.author_id, "");
    int64_t last;
    CHECK_OK(doc_changes_last_seq(s, &last, &err), &err);
    CHECK_EQ_INT(last, 3); /* the refused put wrote nothing */
    free_posts(posts, 3);
    doc_store_close(s);
}

/* ---- sequences and atomicity, checked through a second, raw connection ---- */

static sqlite3 *raw_open(const char *name)
{
    char path[512];
    sqlite3 *db = NULL;
    snprintf(path, sizeof(path), "%s/%s/docs.db", test_tmpdir(), name);
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return NULL;
    sqlite3_busy_timeout(db, 10000);
    return db;
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -2;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

TEST(store_seqs_gap_free_and_events_atomic_with_documents)
{
    struct tw_err err = TW_ERR_INIT;
    struct post posts[6];
    CHECK_EQ_INT(load_posts(posts, 6), 6);
    struct doc_store *s = open_store("atomic");
    CHECK(s != NULL);
    for (int i = 0; i < 3; i++) {
        struct doc d = post_doc(&posts[i]);
        CHECK_OK(doc_store_put(s, &d, NULL, &err), &err);
    }
    sqlite3 *db = raw_open("atomic");
    CHECK(db != NULL);
    /* a transaction that inserts (firing the trigger) and rolls back leaves no event, no seq */
    CHECK_EQ_INT(sqlite3_exec(db,
                              "BEGIN; INSERT INTO documents(id, kind, platform, url, content,"
                              " fetched_at, content_hash) VALUES ('x', 'post', 'web', 'u:rb', 'c',"
                              " 0, 'h'); ROLLBACK;",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    /* one statement whose second row fails: the first row and its event go with it */
    CHECK(sqlite3_exec(db,
                       "INSERT INTO documents(id, kind, platform, url, content, fetched_at,"
                       " content_hash) SELECT 'y' || value, 'post', 'web', 'u:same', 'c', 0, 'h'"
                       " FROM json_each('[1,2]')",
                       NULL, NULL, NULL) != SQLITE_OK);
    /* a row the CHECK constraints refuse writes nothing either */
    CHECK(sqlite3_exec(db,
                       "INSERT INTO documents(id, kind, platform, url, content, fetched_at,"
                       " content_hash) VALUES ('z', 'poem', 'web', 'u:bad', 'c', 0, 'h')",
                       NULL, NULL, NULL) != SQLITE_OK);
    /* an update that keeps the hash is silent; one that changes it is an event */
    CHECK_EQ_INT(sqlite3_exec(db, "UPDATE documents SET title = 'T' WHERE rowid = 1", NULL, NULL,
                              NULL),
                 SQLITE_OK);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM changes"), 3);
    for (int i = 3; i < 6; i++) {
        struct doc d = post_doc(&posts[i]);
        CHECK_OK(doc_store_put(s, &d, NULL, &err), &err);
    }
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM changes"), 6);
    CHECK_EQ_INT(raw_int(db, "SELECT min(seq) FROM changes"), 1);
    CHECK_EQ_INT(raw_int(db, "SELECT max(seq) FROM changes"), 6);
    CHECK_EQ_INT(raw_int(db, "SELECT last_seq FROM change_seq"), 6);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM documents WHERE url LIKE 'u:%'"), 0);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM changes WHERE doc_id IN ('x','y1','y2','z')"),
                 0);
    /* every document has exactly its insert event, every event its document */
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM documents d WHERE (SELECT count(*) FROM"
                             " changes c WHERE c.doc_id = d.id AND c.op = 'insert') != 1"),
                 0);
    CHECK_EQ_INT(raw_int(db, "SELECT count(*) FROM changes c WHERE NOT EXISTS (SELECT 1 FROM"
                             " documents d WHERE d.id = c.doc_id)"),
                 0);
    CHECK_EQ_INT(raw_int(db, "PRAGMA user_version"), doc_store_schema_version());
    CHECK_EQ_STR((raw_int(db, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode ="
                              " 'wal'") == 1)
                     ? "wal"
                     : "not wal",
                 "wal");
    sqlite3_close(db);
    free_posts(posts, 6);
    doc_store_close(s);
}

/* ---- offsets ---- */

TEST(store_consumer_offsets_are_durable)
{
    struct tw_err err = TW_ERR_INIT;
    struct post posts[4];
    CHECK_EQ_INT(load_posts(posts, 4), 4);
    struct doc_store *s = open_store("offsets");
    CHECK(s != NULL);
    for (int i = 0; i < 4; i++) {
        struct doc d = post_doc(&posts[i]);
        CHECK_OK(doc_store_put(s, &d, NULL, &err), &err);
    }
    int64_t off;
    CHECK_OK(doc_offset_get(s, "feature", &off, &err), &err);
    CHECK_EQ_INT(off, 0);
    CHECK_OK(doc_offset_commit(s, "feature", 3, &err), &err);
    CHECK_OK(doc_offset_commit(s, "twin:stream-2", 1, &err), &err);
    CHECK_EQ_INT(doc_offset_commit(s, "feature", 5, &err), TW_EINVAL);
    CHECK(strstr(err.msg, "past the last seq 4") != NULL);
    tw_err_clear(&err);
    CHECK_EQ_INT(doc_offset_commit(s, "bad name", 1, &err), TW_EINVAL);
    tw_err_clear(&err);
    CHECK_EQ_INT(doc_offset_get(s, "", &off, &err), TW_EINVAL);
    tw_err_clear(&err);
    doc_store_close(s);

    s = open_store("offsets");
    CHECK(s != NULL);
    CHECK_OK(doc_offset_get(s, "feature", &off, &err), &err);
    CHECK_EQ_INT(off, 3);
    CHECK_OK(doc_offset_get(s, "twin:stream-2", &off, &err), &err);
    CHECK_EQ_INT(off, 1);
    /* a consumer resumes after its offset */
    struct doc_event *ev;
    size_t n;
    CHECK_OK(doc_changes_read(s, 3, 10, &ev, &n, &err), &err);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(ev[0].seq, 4);
    doc_events_free(ev, n);
    /* batches of 3 walk the log without gaps or repeats */
    int64_t after = 0, expect = 1;
    for (;;) {
        CHECK_OK(doc_changes_read(s, after, 3, &ev, &n, &err), &err);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            CHECK_EQ_INT(ev[i].seq, expect++);
        after = ev[n - 1].seq;
        doc_events_free(ev, n);
    }
    CHECK_EQ_INT(expect, 5);
    CHECK_OK(doc_offset_commit(s, "feature", 0, &err), &err); /* rewinding is allowed */
    free_posts(posts, 4);
    doc_store_close(s);
}

/* ---- prune ---- */

TEST(store_prune_deletes_unseen_documents_of_one_source)
{
    struct tw_err err = TW_ERR_INIT;
    struct post posts[5];
    CHECK_EQ_INT(load_posts(posts, 5), 5);
    struct doc_store *s = open_store("prune");
    CHECK(s != NULL);
    for (int i = 0; i < 5; i++) {
        struct doc d = post_doc(&posts[i]);
        d.source = i < 4 ? "export-a.zip" : "export-b.zip";
        CHECK_OK(doc_store_put(s, &d, NULL, &err), &err);
    }
    const char *seen[] = {posts[1].url, posts[4].url, "https://elsewhere/"};
    size_t n_del;
    CHECK_OK(doc_store_prune(s, "export-a.zip", seen, 3, &n_del, &err), &err);
    CHECK_EQ_INT(n_del, 3);
    int64_t n;
    CHECK_OK(doc_store_count(s, NULL, &n, &err), &err);
    CHECK_EQ_INT(n, 2);
    struct doc *g;
    CHECK_OK(doc_store_get(s, posts[1].url, &g, &err), &err);
    doc_free(g);
    CHECK_OK(doc_store_get(s, posts[4].url, &g, &err), &err); /* other source untouched */
    doc_free(g);
    struct doc_event *ev;
    long ne = read_all(s, 5, &ev);
    CHECK_EQ_INT(ne, 3);
    for (long i = 0; i < ne; i++) {
        CHECK_EQ_STR(ev[i].op, "delete");
        CHECK(strstr(ev[i].json, "\"document\"") == NULL);
    }
    doc_events_free(ev, (size_t)ne);
    /* pruning again deletes nothing; an empty seen set empties the source */
    CHECK_OK(doc_store_prune(s, "export-a.zip", seen, 3, &n_del, &err), &err);
    CHECK_EQ_INT(n_del, 0);
    CHECK_OK(doc_store_prune(s, "export-a.zip", NULL, 0, &n_del, &err), &err);
    CHECK_EQ_INT(n_del, 1);
    CHECK_EQ_INT(doc_store_prune(s, "", NULL, 0, &n_del, &err), TW_EINVAL);
    free_posts(posts, 5);
    doc_store_close(s);
}

/* ---- bad input ---- */

TEST(store_rejects_invalid_documents_with_clear_errors)
{
    struct tw_err err = TW_ERR_INIT;
    struct post posts[1];
    CHECK_EQ_INT(load_posts(posts, 1), 1);
    struct doc_store *s = open_store("invalid");
    CHECK(s != NULL);
    struct doc base = post_doc(&posts[0]), d;
#define EXPECT_BAD(stmt_, code_, needle_)                                                          \
    do {                                                                                           \
        d = base;                                                                                  \
        stmt_;                                                                                     \
        tw_err_clear(&err);                                                                        \
        CHECK_EQ_INT(doc_store_put(s, &d, NULL, &err), code_);                                     \
        CHECK_MSG(strstr(err.msg, needle_) != NULL, "message '%s' lacks '%s'", err.msg, needle_);  \
    } while (0)
    EXPECT_BAD(d.kind = "poem", TW_EINVAL, "kind 'poem'");
    EXPECT_BAD(d.kind = NULL, TW_EINVAL, "kind '(none)'");
    EXPECT_BAD(d.platform = "myspace", TW_EINVAL, "platform 'myspace'");
    EXPECT_BAD(d.url = "", TW_EINVAL, "no url");
    EXPECT_BAD(d.url = NULL, TW_EINVAL, "no url");
    EXPECT_BAD(d.content = NULL, TW_EINVAL, "has no content");
    EXPECT_BAD(d.title = "bad \xc3\x28 utf8", TW_EINVAL, "title is not valid UTF-8");
    EXPECT_BAD(d.content = "overlong \xc0\xaf slash", TW_EINVAL, "content is not valid UTF-8");
    EXPECT_BAD(d.content = "surrogate \xed\xa0\x80", TW_EINVAL, "content is not valid UTF-8");
    EXPECT_BAD(d.lang = "this-is-not-a-language-tag-it-is-far-too-long", TW_EINVAL, "lang is longer");
    EXPECT_BAD(d.published_at = (int64_t)1 << 40, TW_EINVAL, "published_at");
    EXPECT_BAD(d.author_name = NULL, TW_EINVAL, "without an author name");
    char *big = tw_malloc(DOC_CONTENT_MAX + 2);
    CHECK(big != NULL);
    memset(big, 'a', DOC_CONTENT_MAX + 1);
    big[DOC_CONTENT_MAX + 1] = 0;
    d = base;
    d.content = big;
    tw_err_clear(&err);
    int rc = doc_store_put(s, &d, NULL, &err);
    tw_free(big);
    CHECK_EQ_INT(rc, TW_ELIMIT);
    CHECK(strstr(err.msg, "DOC_CONTENT_MAX") != NULL);
    CHECK(strstr(err.msg, posts[0].url) != NULL); /* errors name the document */
    int64_t last, n;
    CHECK_OK(doc_changes_last_seq(s, &last, &(struct tw_err){0}), &err);
    CHECK_EQ_INT(last, 0);
    tw_err_clear(&err);
    CHECK_OK(doc_store_count(s, NULL, &n, &err), &err);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(doc_store_count(s, "poem", &n, &err), TW_EINVAL);
    tw_err_clear(&err);
    CHECK_EQ_INT(doc_changes_read(s, -1, 10, &(struct doc_event *){0}, &(size_t){0}, &err),
                 TW_EINVAL);
    free_posts(posts, 1);
    doc_store_close(s);
#undef EXPECT_BAD
}

TEST(store_open_urls_reopen_and_newer_schema)
{
    struct tw_err err = TW_ERR_INIT;
    struct doc_store *s = NULL;
    char dir[512], url[600];
    snprintf(dir, sizeof(dir), "%s/nested/data", test_tmpdir());
    snprintf(url, sizeof(url), "sqlite:%s", dir);
    CHECK_OK(doc_store_open(url, &s, &err), &err);
    struct post posts[1];
    CHECK_EQ_INT(load_posts(posts, 1), 1);
    struct doc d = post_doc(&posts[0]);
    CHECK_OK(doc_store_put_fill(s, &d, NULL, &err), &err);
    doc_store_close(s);
    CHECK_OK(doc_store_open(dir, &s, &err), &err);
    struct doc *g;
    CHECK_OK(doc_store_get(s, d.id, &g, &err), &err);
    CHECK_EQ_STR(g->content, posts[0].content);
    doc_free(g);
    doc_store_close(s);
    free_posts(posts, 1);

    CHECK_EQ_INT(doc_store_open("postgres://localhost/twin", &s, &err), TW_EUNSUP);
    CHECK(s == NULL);
    tw_err_clear(&err);
    CHECK_EQ_INT(doc_store_open("sqlite:", &s, &err), TW_EINVAL);
    tw_err_clear(&err);
    char file[600];
    snprintf(file, sizeof(file), "%s/nested/data/docs.db", test_tmpdir());
    CHECK_EQ_INT(doc_store_open(file, &s, &err), TW_EIO); /* a file, not a directory */
    tw_err_clear(&err);

    /* a database from a newer twin is refused, not modified */
    sqlite3 *db;
    CHECK_EQ_INT(sqlite3_open(file, &db), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CHECK_EQ_INT(doc_store_open(dir, &s, &err), TW_EDB);
    CHECK_MSG(strstr(err.msg, "schema version 99") != NULL, "message: %s", err.msg);
}

/* ---- listing ---- */

struct list_ctx {
    int n;
    char last_url[256];
    int sorted;
    char json_of_first[64];
    char *json;
};

static int on_doc(void *ctx, const struct doc *d, const char *json)
{
    struct list_ctx *c = ctx;
    if (c->n && strcmp(c->last_url, d->url) > 0)
        c->sorted = 0;
    snprintf(c->last_url, sizeof(c->last_url), "%s", d->url);
    if (json && !c->json)
        c->json = tw_strdup(json);
    c->n++;
    return 0;
}

static int stop_after_two(void *ctx, const struct doc *d, const char *json)
{
    (void)d;
    (void)json;
    return ++*(int *)ctx == 2 ? 1 : 0;
}

/* The real corpus: every post stored, hashed like SOURCES.md lists it, listed in order, and the
 * list JSON equal to the JSON the insert event carries. */
TEST(store_whole_corpus_round_trip)
{
    struct tw_err err = TW_ERR_INIT;
    static struct post posts[600];
    size_t n = load_posts(posts, 600);
    CHECK(n > 400);
    struct doc_store *s = open_store("corpus");
    CHECK(s != NULL);
    for (size_t i = 0; i < n; i++) {
        struct doc d = post_doc(&posts[i]);
        d.kind = i % 3 == 0 ? "post" : "article";
        enum doc_put_result r;
        CHECK_OK(doc_store_put(s, &d, &r, &err), &err);
        CHECK_EQ_INT(r, DOC_PUT_INSERTED);
    }
    int64_t count, posts_n, last;
    CHECK_OK(doc_store_count(s, NULL, &count, &err), &err);
    CHECK_OK(doc_store_count(s, "post", &posts_n, &err), &err);
    CHECK_OK(doc_changes_last_seq(s, &last, &err), &err);
    CHECK_EQ_INT(count, (int64_t)n);
    CHECK_EQ_INT(posts_n, (int64_t)(n + 2) / 3);
    CHECK_EQ_INT(last, (int64_t)n);

    /* the content hash is the file's sha256, the one SOURCES.md lists */
    struct doc *g;
    CHECK_OK(doc_store_get(s, "https://nullprogram.com/2007-09-01-intro.markdown", &g, &err),
             &err);
    CHECK_EQ_STR(g->content_hash,
                 "1d76e42323390243b0544e0251034d381b52cce4e6f782d6c3c11f709fc10b99");
    doc_free(g);

    struct list_ctx lc = {0, "", 1, "", NULL};
    struct doc_list_opts o = {"post", NULL, 1};
    CHECK_OK(doc_store_list(s, &o, on_doc, &lc, &err), &err);
    CHECK_EQ_INT(lc.n, posts_n);
    CHECK(lc.sorted);
    CHECK(lc.json != NULL);
    /* find the insert event of the first listed post and compare its document */
    cJSON *listed = cJSON_Parse(lc.json);
    CHECK(listed != NULL);
    const char *id = cJSON_GetObjectItem(listed, "id")->valuestring;
    struct doc_event *ev;
    long ne = read_all(s, 0, &ev);
    CHECK_EQ_INT(ne, (long)n);
    int found = 0;
    for (long i = 0; i < ne; i++) {
        if (strcmp(ev[i].doc_id, id))
            continue;
        cJSON *e = cJSON_Parse(ev[i].json);
        found = e && cJSON_Compare(cJSON_GetObjectItem(e, "document"), listed, 1);
        cJSON_Delete(e);
    }
    doc_events_free(ev, (size_t)ne);
    cJSON_Delete(listed);
    tw_free(lc.json);
    CHECK(found);
    int k = 0;
    CHECK_OK(doc_store_list(s, NULL, stop_after_two, &k, &err), &err);
    CHECK_EQ_INT(k, 2);

    /* a second run over the same corpus changes nothing */
    for (size_t i = 0; i < n; i += 7) {
        struct doc d = post_doc(&posts[i]);
        d.kind = i % 3 == 0 ? "post" : "article";
        enum doc_put_result r;
        CHECK_OK(doc_store_put(s, &d, &r, &err), &err);
        CHECK_EQ_INT(r, DOC_PUT_UNCHANGED);
    }
    CHECK_OK(doc_changes_last_seq(s, &last, &err), &err);
    CHECK_EQ_INT(last, (int64_t)n);
    free_posts(posts, n);
    doc_store_close(s);
}

/* ---- follow mode ---- */

TEST(store_wait_returns_on_a_commit_from_another_process)
{
    struct tw_err err = TW_ERR_INIT;
    struct post posts[2];
    CHECK_EQ_INT(load_posts(posts, 2), 2);
    struct doc_store *s = open_store("wait");
    CHECK(s != NULL);
    CHECK_EQ_INT(doc_changes_wait(s, 0, 30, &err), TW_ETIMEOUT);
    tw_err_clear(&err);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct doc_store *w;
        struct tw_err e2 = TW_ERR_INIT;
        usleep(150 * 1000);
        char dir[512];
        snprintf(dir, sizeof(dir), "%s/wait", test_tmpdir());
        if (doc_store_open(dir, &w, &e2) != 0)
            _exit(1);
        struct doc d = post_doc(&posts[0]);
        _exit(doc_store_put(w, &d, NULL, &e2) == 0 ? 0 : 2);
    }
    int rc = doc_changes_wait(s, 0, 60000, &err);
    int status;
    waitpid(pid, &status, 0);
    CHECK_OK(rc, &err);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_OK(doc_changes_wait(s, 0, 0, &err), &err); /* already there: no wait */
    CHECK_EQ_INT(doc_changes_wait(s, 1, 20, &err), TW_ETIMEOUT);
    free_posts(posts, 2);
    doc_store_close(s);
}

/* ---- crash safety ---- */

#define CRASH_DOCS 120

/* The child: puts CRASH_DOCS posts, then edits every third one (only the edits when
 * edits_only), writing one byte to 'fd' per document stored so the parent knows how far it got.
 * Never returns. */
static void crash_child(const char *dir, struct post *posts, size_t n, int fd, int edits_only)
{
    struct tw_err err = TW_ERR_INIT;
    struct doc_store *s;
    if (doc_store_open(dir, &s, &err) != 0)
        _exit(1);
    for (int pass = edits_only; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            if (pass == 1 && i % 3)
                continue;
            struct doc d = post_doc(&posts[i]);
            char *c = NULL;
            if (pass == 1) {
                size_t len = strlen(posts[i].content) + 16;
                c = tw_malloc(len);
                if (!c)
                    _exit(1);
                snprintf(c, len, "%s\nrev 2\n", posts[i].content);
                d.content = c;
            }
            int rc = doc_store_put(s, &d, NULL, &err);
            tw_free(c);
            if (rc != 0)
                _exit(2);
            if (write(fd, "x", 1) != 1)
                _exit(1);
        }
    }
    doc_store_close(s);
    _exit(0);
}

/* The invariants a crash may not break. Returns NULL or what is wrong. */
static const char *crash_invariants(sqlite3 *db)
{
    if (raw_int(db, "PRAGMA integrity_check") == -2)
        return "integrity check failed to run";
    if (raw_int(db, "SELECT count(*) FROM changes") != raw_int(db, "SELECT last_seq FROM change_seq"))
        return "count of events differs from last_seq";
    if (raw_int(db, "SELECT count(*) FROM changes") > 0 &&
        (raw_int(db, "SELECT min(seq) FROM changes") != 1 ||
         raw_int(db, "SELECT max(seq) FROM changes") != raw_int(db, "SELECT count(*) FROM changes")))
        return "seqs have gaps";
    if (raw_int(db, "SELECT count(*) FROM documents d WHERE (SELECT count(*) FROM changes c"
                    " WHERE c.doc_id = d.id AND c.op = 'insert') != 1"))
        return "a document without exactly one insert event";
    if (raw_int(db, "SELECT count(*) FROM changes c WHERE NOT EXISTS"
                    " (SELECT 1 FROM documents d WHERE d.id = c.doc_id)"))
        return "an event without its document";
    if (raw_int(db, "SELECT count(*) FROM documents d WHERE d.version != (SELECT count(*) FROM"
                    " changes c WHERE c.doc_id = d.id)"))
        return "a version that does not match the number of events";
    if (raw_int(db, "SELECT count(*) FROM documents d WHERE d.content_hash != (SELECT"
                    " json_extract(event, '$.document.content_hash') FROM changes c WHERE"
                    " c.doc_id = d.id ORDER BY seq DESC LIMIT 1)"))
        return "a document whose last event carries another content hash";
    return NULL;
}

TEST(store_survives_sigkill_at_any_point)
{
    static struct post posts[CRASH_DOCS];
    size_t n = load_posts(posts, CRASH_DOCS);
    CHECK_EQ_INT(n, CRASH_DOCS);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/crash", test_tmpdir());
    /* kill after 1, 17, 60, 100 and 150 documents: inside first inserts, later inserts and the
     * update pass; the child keeps writing while the parent reacts, so the kill lands at an
     * arbitrary point of some later transaction */
    const int kill_after[] = {1, 17, 60, 100, 150};
    int stored_before = 0;
    for (size_t k = 0; k < sizeof(kill_after) / sizeof(kill_after[0]); k++) {
        int fds[2];
        CHECK_EQ_INT(pipe(fds), 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            crash_child(dir, posts, n, fds[1], 0);
        }
        close(fds[1]);
        int got = 0;
        char buf[64];
        while (got < kill_after[k]) {
            ssize_t r = read(fds[0], buf, 1);
            if (r <= 0)
                break;
            got += (int)r;
        }
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        close(fds[0]);
        CHECK_MSG(got >= kill_after[k] || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
                  "child stopped early after %d documents (status %d)", got, status);
        sqlite3 *db = raw_open("crash");
        CHECK(db != NULL);
        const char *bad = crash_invariants(db);
        int64_t docs = raw_int(db, "SELECT count(*) FROM documents");
        sqlite3_close(db);
        CHECK_MSG(bad == NULL, "after kill %zu: %s", k, bad);
        CHECK(docs >= stored_before); /* nothing committed is lost */
        stored_before = (int)docs;
    }
    /* a run to the end finishes the job with no duplicates; a rerun of the edits is a no-op */
    for (int edits_only = 0; edits_only < 2; edits_only++) {
        int fds[2];
        CHECK_EQ_INT(pipe(fds), 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            crash_child(dir, posts, n, fds[1], edits_only);
        }
        close(fds[1]);
        char buf[256];
        while (read(fds[0], buf, sizeof(buf)) > 0)
            ;
        close(fds[0]);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        sqlite3 *db = raw_open("crash");
        CHECK(db != NULL);
        const char *bad = crash_invariants(db);
        int64_t docs = raw_int(db, "SELECT count(*) FROM documents");
        int64_t urls = raw_int(db, "SELECT count(DISTINCT url) FROM documents");
        int64_t events = raw_int(db, "SELECT count(*) FROM changes");
        sqlite3_close(db);
        CHECK_MSG(bad == NULL, "after the full run: %s", bad);
        CHECK_EQ_INT(docs, CRASH_DOCS);
        CHECK_EQ_INT(urls, CRASH_DOCS);
        if (edits_only)
            CHECK_EQ_INT(events, stored_before);
        stored_before = (int)events;
    }
    /* untouched posts were stored once (version 1); edited ones went original -> edited in each
     * run that reached them, so they end at an even version holding the edit */
    struct tw_err err = TW_ERR_INIT;
    struct doc_store *s;
    CHECK_OK(doc_store_open(dir, &s, &err), &err);
    for (size_t i = 0; i < n; i++) {
        struct doc *g;
        CHECK_OK(doc_store_get(s, posts[i].url, &g, &err), &err);
        int64_t v = g->version;
        int edited = strstr(g->content, "\nrev 2\n") != NULL;
        doc_free(g);
        if (i % 3)
            CHECK_MSG(v == 1 && !edited, "post %zu: version %lld", i, (long long)v);
        else
            CHECK_MSG(v >= 2 && v % 2 == 0 && edited, "post %zu: version %lld", i, (long long)v);
    }
    doc_store_close(s);
    free_posts(posts, n);
}

/* ---- allocation failures ---- */

/* Every tw_malloc failure on the store's paths is a clean TW_ENOMEM (or success), never a crash,
 * a leak or a half-written change (SQLite's own allocations are not ours to fail). */
TEST(store_survives_each_allocation_failure)
{
    struct post posts[2];
    CHECK_EQ_INT(load_posts(posts, 2), 2);
    char dir[512];
    int n_failed = 0, n_ok = 0;
    for (long k = 0; k < 40; k++) {
        struct tw_err err = TW_ERR_INIT;
        struct doc_store *s = NULL;
        snprintf(dir, sizeof(dir), "%s/oom%ld", test_tmpdir(), k);
        tw_mem_fail_after(k);
        int rc = doc_store_open(dir, &s, &err);
        if (rc == 0) {
            struct doc d = post_doc(&posts[k % 2]);
            struct doc *g = NULL;
            struct doc_event *ev = NULL;
            size_t n = 0;
            rc = doc_store_put(s, &d, NULL, &err);
            if (rc == 0)
                rc = doc_store_get(s, d.url, &g, &err);
            if (rc == 0)
                rc = doc_changes_read(s, 0, 10, &ev, &n, &err);
            doc_free(g);
            doc_events_free(ev, n);
            doc_store_close(s);
        }
        tw_mem_fail_after(-1);
        if (rc != 0) {
            CHECK_MSG(rc == TW_ENOMEM, "k=%ld: rc %d: %s", k, rc, err.msg);
            CHECK(err.msg[0] != 0);
            n_failed++;
        } else {
            n_ok++;
        }
        /* whatever happened, the store is consistent and usable */
        sqlite3 *db;
        char path[600];
        snprintf(path, sizeof(path), "%s/docs.db", dir);
        int opened = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK;
        const char *bad = opened && raw_int(db, "SELECT count(*) FROM sqlite_master") > 0
                              ? crash_invariants(db)
                              : NULL;
        sqlite3_close(db); /* a failed open still allocates a handle */
        CHECK_MSG(bad == NULL, "k=%ld: %s", k, bad);
    }
    CHECK(n_failed > 0);
    CHECK(n_ok > 0); /* the loop reached past the last allocation */
    free_posts(posts, 2);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
