/* doc.c - the store's public interface: argument checks, document validation, heap documents,
 * and dispatch to the backend chosen by URL. */
#include "store/doc_int.h"

#include "base/mem.h"
#include "base/sha256.h"
#include "base/time.h"
#include "base/uuid.h"

#include <string.h>
#include <time.h>

static const char *const kinds[] = {"article", "post", "code", NULL};
static const char *const platforms[] = {"medium", "substack", "linkedin", "github",
                                        "web",    "file",     NULL};

/* Years 1..9999: what RFC 3339 can write. */
#define TIME_MIN (-62135596800LL)
#define TIME_MAX 253402300799LL

static int in_list(const char *s, const char *const *list)
{
    if (!s)
        return 0;
    for (int i = 0; list[i]; i++)
        if (!strcmp(s, list[i]))
            return 1;
    return 0;
}

int doc_kind_is_valid(const char *kind)
{
    return in_list(kind, kinds);
}

int doc_platform_is_valid(const char *platform)
{
    return in_list(platform, platforms);
}

bool doc__utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p, cp, n;
        if (c < 0x80) {
            if (c == 0)
                return false;
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 4, cp = c & 0x07;
        else
            return false;
        if ((size_t)(end - p) < n)
            return false;
        for (unsigned i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n;
    }
    return true;
}

static int check_str(const struct doc *d, const char *field, const char *v, size_t max,
                     struct tw_err *err)
{
    size_t n;
    if (!v)
        return TW_OK;
    n = strnlen(v, max + 1);
    if (n > max)
        return tw_errf(err, TW_EINVAL, "document '%.200s': %s is longer than %zu bytes",
                       d->url ? d->url : "", field, max);
    if (!doc__utf8_valid(v, n))
        return tw_errf(err, TW_EINVAL, "document '%.200s': %s is not valid UTF-8",
                       d->url ? d->url : "", field);
    return TW_OK;
}

static int check_time(const struct doc *d, const char *field, int64_t t, struct tw_err *err)
{
    if (t != DOC_TIME_UNKNOWN && (t < TIME_MIN || t > TIME_MAX))
        return tw_errf(err, TW_EINVAL,
                       "document '%.200s': %s %lld is outside years 1..9999 (unix seconds)",
                       d->url ? d->url : "", field, (long long)t);
    return TW_OK;
}

int doc_validate(const struct doc *d, struct tw_err *err)
{
    int rc;
    if (!d)
        return tw_errf(err, TW_EINVAL, "no document given");
    if (!d->url || !*d->url)
        return tw_errf(err, TW_EINVAL, "document has no url (the url is its key)");
    if ((rc = check_str(d, "url", d->url, DOC_URL_MAX, err)) < 0)
        return rc;
    if (!doc_kind_is_valid(d->kind))
        return tw_errf(err, TW_EINVAL,
                       "document '%.200s': kind '%.40s' is not article, post or code", d->url,
                       d->kind ? d->kind : "(none)");
    if (!doc_platform_is_valid(d->platform))
        return tw_errf(err, TW_EINVAL,
                       "document '%.200s': platform '%.40s' is not medium, substack, linkedin, "
                       "github, web or file",
                       d->url, d->platform ? d->platform : "(none)");
    if (!d->content)
        return tw_errf(err, TW_EINVAL, "document '%.200s' has no content", d->url);
    if (strnlen(d->content, DOC_CONTENT_MAX + 1) > DOC_CONTENT_MAX)
        return tw_errf(err, TW_ELIMIT,
                       "document '%.200s': content is longer than %zu bytes (DOC_CONTENT_MAX)",
                       d->url, DOC_CONTENT_MAX);
    if ((rc = check_str(d, "content", d->content, DOC_CONTENT_MAX, err)) < 0 ||
        (rc = check_str(d, "source", d->source, DOC_URL_MAX, err)) < 0 ||
        (rc = check_str(d, "author name", d->author_name, DOC_FIELD_MAX, err)) < 0 ||
        (rc = check_str(d, "author handle", d->author_handle, DOC_FIELD_MAX, err)) < 0 ||
        (rc = check_str(d, "title", d->title, DOC_FIELD_MAX, err)) < 0 ||
        (rc = check_str(d, "subtitle", d->subtitle, DOC_FIELD_MAX, err)) < 0 ||
        (rc = check_str(d, "lang", d->lang, DOC_LANG_MAX, err)) < 0 ||
        (rc = check_time(d, "published_at", d->published_at, err)) < 0 ||
        (rc = check_time(d, "fetched_at", d->fetched_at, err)) < 0)
        return rc;
    if (d->author_handle && !d->author_name)
        return tw_errf(err, TW_EINVAL,
                       "document '%.200s': author handle '%.64s' given without an author name",
                       d->url, d->author_handle);
    return TW_OK;
}

struct doc *doc__new(const char *const strs[10], const size_t lens[10])
{
    size_t total = sizeof(struct doc), off;
    struct doc *d;
    char *p;
    const char **fields[10];

    for (int i = 0; i < 10; i++)
        if (strs[i] && (tw_size_add(total, lens[i] + 1, &total) < 0))
            return NULL;
    d = tw_malloc(total);
    if (!d)
        return NULL;
    memset(d, 0, sizeof(*d));
    d->published_at = d->fetched_at = DOC_TIME_UNKNOWN;
    fields[0] = &d->kind, fields[1] = &d->platform, fields[2] = &d->url, fields[3] = &d->source;
    fields[4] = &d->author_name, fields[5] = &d->author_handle, fields[6] = &d->title;
    fields[7] = &d->subtitle, fields[8] = &d->content, fields[9] = &d->lang;
    p = (char *)(d + 1);
    off = 0;
    for (int i = 0; i < 10; i++) {
        if (!strs[i])
            continue;
        memcpy(p + off, strs[i], lens[i]);
        p[off + lens[i]] = 0;
        *fields[i] = p + off;
        off += lens[i] + 1;
    }
    return d;
}

void doc_free(struct doc *d)
{
    tw_free(d);
}

/* ---- dispatch ---- */

int doc_store_open(const char *url, struct doc_store **out, struct tw_err *err)
{
    *out = NULL;
    if (!url || !*url)
        return tw_errf(err, TW_EINVAL, "no store given (a directory or sqlite:DIR)");
    if (!strncmp(url, "sqlite:", 7)) {
        url += 7;
        if (!strncmp(url, "//", 2)) // sqlite:///abs/dir
            url += 2;
        if (!*url)
            return tw_errf(err, TW_EINVAL, "store url 'sqlite:' names no directory");
    } else if (strstr(url, "://")) {
        return tw_errf(err, TW_EUNSUP,
                       "store '%.200s': this build has only the sqlite backend (sqlite:DIR)", url);
    }
    return doc__sqlite_open(url, out, err);
}

void doc_store_close(struct doc_store *s)
{
    if (s)
        s->ops->close(s);
}

static int put(struct doc_store *s, const struct doc *d, struct doc *out,
               enum doc_put_result *result, struct tw_err *err)
{
    char hash[TW_SHA256_HEX_LEN + 1];
    enum doc_put_result r;
    int rc = doc_validate(d, err);
    if (rc < 0)
        return rc;
    tw_sha256_hex(d->content, strlen(d->content), hash);
    rc = s->ops->put(s, d, hash, out, &r, err);
    if (rc == 0 && result)
        *result = r;
    return rc;
}

int doc_store_put(struct doc_store *s, const struct doc *d, enum doc_put_result *result,
                  struct tw_err *err)
{
    return put(s, d, NULL, result, err);
}

int doc_store_put_fill(struct doc_store *s, struct doc *d, enum doc_put_result *result,
                       struct tw_err *err)
{
    return put(s, d, d, result, err);
}

static int check_key(const char *key, struct tw_err *err)
{
    if (!key || !*key)
        return tw_errf(err, TW_EINVAL, "no document id or url given");
    if (strnlen(key, DOC_URL_MAX + 1) > DOC_URL_MAX)
        return tw_errf(err, TW_EINVAL, "document key '%.64s...' is longer than %d bytes", key,
                       DOC_URL_MAX);
    return TW_OK;
}

int doc_store_get(struct doc_store *s, const char *key, struct doc **out, struct tw_err *err)
{
    int rc;
    *out = NULL;
    if ((rc = check_key(key, err)) < 0)
        return rc;
    return s->ops->get(s, key, tw_uuid_is_valid(key), out, err);
}

int doc_store_delete(struct doc_store *s, const char *key, char id_out[DOC_ID_LEN + 1],
                     struct tw_err *err)
{
    int rc;
    if ((rc = check_key(key, err)) < 0)
        return rc;
    return s->ops->del(s, key, tw_uuid_is_valid(key), id_out, err);
}

int doc_store_prune(struct doc_store *s, const char *source, const char *const *seen_urls,
                    size_t n_seen, size_t *n_deleted, struct tw_err *err)
{
    if (n_deleted)
        *n_deleted = 0;
    if (!source || !*source)
        return tw_errf(err, TW_EINVAL, "prune needs a source (what the import read)");
    if (n_seen && !seen_urls)
        return tw_errf(err, TW_EINVAL, "prune of '%.200s': %zu seen urls but no array", source,
                       n_seen);
    return s->ops->prune(s, source, seen_urls, n_seen, n_deleted, err);
}

int doc_store_list(struct doc_store *s, const struct doc_list_opts *opts,
                   int (*fn)(void *ctx, const struct doc *d, const char *json), void *ctx,
                   struct tw_err *err)
{
    static const struct doc_list_opts none = {NULL, NULL, 0};
    if (opts && opts->kind && !doc_kind_is_valid(opts->kind))
        return tw_errf(err, TW_EINVAL, "kind '%.40s' is not article, post or code", opts->kind);
    return s->ops->list(s, opts ? opts : &none, fn, ctx, err);
}

int doc_store_count(struct doc_store *s, const char *kind, int64_t *n, struct tw_err *err)
{
    if (kind && !doc_kind_is_valid(kind))
        return tw_errf(err, TW_EINVAL, "kind '%.40s' is not article, post or code", kind);
    return s->ops->count(s, kind, n, err);
}

/* ---- change log ---- */

int doc_changes_read(struct doc_store *s, int64_t after_seq, size_t max_events,
                     struct doc_event **out, size_t *n_out, struct tw_err *err)
{
    *out = NULL;
    *n_out = 0;
    if (after_seq < 0)
        return tw_errf(err, TW_EINVAL, "change-log offset %lld is negative", (long long)after_seq);
    if (max_events == 0)
        return TW_OK;
    return s->ops->changes_read(s, after_seq, max_events, out, n_out, err);
}

void doc_events_free(struct doc_event *ev, size_t n)
{
    if (!ev)
        return;
    for (size_t i = 0; i < n; i++)
        tw_free(ev[i].json);
    tw_free(ev);
}

int doc_changes_last_seq(struct doc_store *s, int64_t *seq, struct tw_err *err)
{
    return s->ops->last_seq(s, seq, err);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int doc_changes_wait(struct doc_store *s, int64_t after_seq, int timeout_ms, struct tw_err *err)
{
    int64_t last, deadline = timeout_ms >= 0 ? tw_time_mono_ms() + timeout_ms : INT64_MAX;
    int delay = 5, rc;
    bool changed = true;

    for (;;) {
        if (changed) {
            if ((rc = s->ops->last_seq(s, &last, err)) < 0)
                return rc;
            if (last > after_seq)
                return TW_OK;
        }
        int64_t now = tw_time_mono_ms();
        if (now >= deadline)
            return tw_errf(err, TW_ETIMEOUT, "no change-log event after seq %lld within %d ms",
                           (long long)after_seq, timeout_ms);
        sleep_ms((int)(deadline - now < delay ? deadline - now : delay));
        delay = delay * 2 > 200 ? 200 : delay * 2;
        if ((rc = s->ops->changed(s, &changed, err)) < 0)
            return rc;
        if (changed)
            delay = 5; // writes come in bursts: look again soon
    }
}

static int check_consumer(const char *c, struct tw_err *err)
{
    size_t n = c ? strnlen(c, 65) : 0;
    if (n == 0 || n > 64)
        return tw_errf(err, TW_EINVAL, "consumer name '%.64s' must be 1..64 bytes", c ? c : "");
    for (size_t i = 0; i < n; i++) {
        char ch = c[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == ':' || ch == '-'))
            return tw_errf(err, TW_EINVAL,
                           "consumer name '%.64s' may hold only letters, digits and _ . : -", c);
    }
    return TW_OK;
}

int doc_offset_get(struct doc_store *s, const char *consumer, int64_t *seq, struct tw_err *err)
{
    int rc = check_consumer(consumer, err);
    if (rc < 0)
        return rc;
    return s->ops->offset_get(s, consumer, seq, err);
}

int doc_offset_commit(struct doc_store *s, const char *consumer, int64_t seq, struct tw_err *err)
{
    int rc = check_consumer(consumer, err);
    if (rc < 0)
        return rc;
    if (seq < 0)
        return tw_errf(err, TW_EINVAL, "offset %lld for consumer '%s' is negative",
                       (long long)seq, consumer);
    return s->ops->offset_commit(s, consumer, seq, err);
}
