/* collect_sink.h - a test sink that keeps copies of what a source emits (test_collect_*.c). */
#ifndef TW_TEST_COLLECT_SINK_H
#define TW_TEST_COLLECT_SINK_H

#include "base/mem.h"
#include "collect/collect.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdint.h>
#include <string.h>

#define CS_MAX 1024

struct cs_doc {
    char *kind, *platform, *url, *source, *author, *handle, *title, *subtitle, *content;
    int64_t published_at;
};

struct cs {
    struct cs_doc d[CS_MAX];
    int n;
    char *fail_item[CS_MAX], *fail_msg[CS_MAX];
    int n_fail;
    int stop_after; // emit returns an error after this many (0: never)
};

static inline char *cs_dup(const char *s)
{
    return s ? tw_strdup(s) : NULL;
}

static inline int cs_emit(void *ctx, const struct doc *d, struct tw_err *err)
{
    struct cs *c = ctx;
    struct cs_doc *o;
    if (c->stop_after && c->n >= c->stop_after)
        return tw_errf(err, TW_EDB, "sink full");
    if (c->n >= CS_MAX)
        return tw_errf(err, TW_ELIMIT, "test sink holds %d documents", CS_MAX);
    o = &c->d[c->n++];
    o->kind = cs_dup(d->kind);
    o->platform = cs_dup(d->platform);
    o->url = cs_dup(d->url);
    o->source = cs_dup(d->source);
    o->author = cs_dup(d->author_name);
    o->handle = cs_dup(d->author_handle);
    o->title = cs_dup(d->title);
    o->subtitle = cs_dup(d->subtitle);
    o->content = cs_dup(d->content);
    o->published_at = d->published_at;
    return 0;
}

static inline void cs_fail(void *ctx, const char *item, const char *message)
{
    struct cs *c = ctx;
    if (c->n_fail >= CS_MAX)
        return;
    c->fail_item[c->n_fail] = tw_strdup(item);
    c->fail_msg[c->n_fail] = tw_strdup(message);
    c->n_fail++;
}

static inline struct src_sink cs_sink(struct cs *c)
{
    struct src_sink s = {cs_emit, cs_fail, c};
    memset(c, 0, sizeof(*c));
    return s;
}

/* The document whose url ends with 'suffix', or NULL. */
static inline const struct cs_doc *cs_find(const struct cs *c, const char *suffix)
{
    size_t n = strlen(suffix);
    for (int i = 0; i < c->n; i++) {
        size_t l = c->d[i].url ? strlen(c->d[i].url) : 0;
        if (l >= n && !strcmp(c->d[i].url + l - n, suffix))
            return &c->d[i];
    }
    return NULL;
}

/* Index of the failure whose item ends with 'suffix', or -1. */
static inline int cs_find_fail(const struct cs *c, const char *suffix)
{
    size_t n = strlen(suffix);
    for (int i = 0; i < c->n_fail; i++) {
        size_t l = strlen(c->fail_item[i]);
        if (l >= n && !strcmp(c->fail_item[i] + l - n, suffix))
            return i;
    }
    return -1;
}

static inline void cs_release(struct cs *c)
{
    for (int i = 0; i < c->n; i++) {
        struct cs_doc *o = &c->d[i];
        tw_free(o->kind);
        tw_free(o->platform);
        tw_free(o->url);
        tw_free(o->source);
        tw_free(o->author);
        tw_free(o->handle);
        tw_free(o->title);
        tw_free(o->subtitle);
        tw_free(o->content);
    }
    for (int i = 0; i < c->n_fail; i++) {
        tw_free(c->fail_item[i]);
        tw_free(c->fail_msg[i]);
    }
    c->n = c->n_fail = 0;
}

/* Writes a zip at 'path' holding n entries (names[i], datas[i] as C strings). 0 on success. */
static inline int cs_write_zip(const char *path, const char *const *names, const char *const *datas,
                               int n)
{
    struct archive *a = archive_write_new();
    int rc = 0;
    if (!a)
        return -1;
    archive_write_set_format_zip(a);
    if (archive_write_open_filename(a, path) != ARCHIVE_OK) {
        archive_write_free(a);
        return -1;
    }
    for (int i = 0; i < n && rc == 0; i++) {
        struct archive_entry *e = archive_entry_new();
        size_t len = strlen(datas[i]);
        archive_entry_set_pathname(e, names[i]);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)len);
        if (archive_write_header(a, e) != ARCHIVE_OK ||
            archive_write_data(a, datas[i], len) != (la_ssize_t)len)
            rc = -1;
        archive_entry_free(e);
    }
    if (archive_write_close(a) != ARCHIVE_OK)
        rc = -1;
    archive_write_free(a);
    return rc;
}

#endif
