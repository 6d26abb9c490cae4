/* substack_web.c - a Substack publication on the web.
 *
 *     https://pub.substack.com[/...]  --GET /feed-->  articles (content:encoded, full text of
 *                                                    free posts; only the latest ~20)
 *                                     --GET /api/v1/archive?sort=new&offset=N&limit=M-->
 *                                        every post, page by page (JSON array, empty at the end);
 *                                        those the feed lacked are fetched as pages (/p/<slug>)
 *     https://pub.substack.com/p/<slug> --> that post's page
 *
 * Paid-only posts are reported, not stored: their pages hold a teaser and a paywall.
 */
#include "collect/collect.h"
#include "collect/collect_int.h"

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/time.h"

#include <cJSON.h>
#include <string.h>

#define SUBSTACK_POSTS_MAX 100000

/* URLs emitted so far (from the feed), to fetch only the posts it lacked. */
struct seen {
    char **urls;
    size_t n;
    int err;
    struct src_sink *inner;
};

static int seen_has(const struct seen *s, const char *url)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->urls[i], url))
            return 1;
    return 0;
}

static void seen_add(struct seen *s, const char *url)
{
    char **p;
    if (s->n >= SUBSTACK_POSTS_MAX || seen_has(s, url))
        return;
    p = tw_reallocarray(s->urls, s->n + 1, sizeof(*p));
    if (!p) {
        s->err = 1;
        return;
    }
    s->urls = p;
    p[s->n] = tw_strdup(url);
    if (!p[s->n]) {
        s->err = 1;
        return;
    }
    s->n++;
}

static void seen_release(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        tw_free(s->urls[i]);
    tw_free(s->urls);
}

static int seen_emit(void *ctx, const struct doc *d, struct tw_err *err)
{
    struct seen *s = ctx;
    int rc = s->inner->emit(s->inner->ctx, d, err);
    if (rc == 0)
        seen_add(s, d->url);
    return rc;
}

static void seen_fail(void *ctx, const char *item, const char *msg)
{
    struct seen *s = ctx;
    s->inner->fail(s->inner->ctx, item, msg);
}

/* "https://pub.substack.com/p/slug?x" -> "https://pub.substack.com" (heap). */
static char *origin_of(const char *url)
{
    const char *h = strstr(url, "://");
    if (!h)
        return NULL;
    h += 3;
    return tw_strndup(url, (size_t)(h - url) + strcspn(h, "/?#"));
}

static int is_post_url(const char *url)
{
    const char *h = strstr(url, "://");
    const char *path = h ? h + 3 + strcspn(h + 3, "/?#") : url;
    return !strncmp(path, "/p/", 3) && path[3];
}

static int fetch_post(const char *url, const struct src_page_meta *meta, const struct src_opts *o,
                      struct src_net *net, struct src_sink *sink, struct tw_err *err)
{
    struct http_response r;
    int rc = http_get(net->http, url, NULL, 0, &r, err);
    if (rc < 0)
        return rc;
    rc = src_web_page_emit(r.url, r.body, r.body_len, "substack", meta, o, sink, err);
    http_response_release(&r);
    return rc;
}

static const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Is this error the sink's (a store failure) rather than the item's? */
static int is_sink_error(int rc)
{
    return rc == TW_EDB || rc == TW_ENOMEM || rc == TW_EINTERNAL;
}

/* One archive page: fetches posts not yet seen. Sets *n_posts to the page's entry count. */
static int archive_page(const char *base, size_t offset, size_t limit, struct seen *seen,
                        const struct src_opts *o, struct src_net *net, size_t *n_posts,
                        struct tw_err *err)
{
    struct tw_buf url = TW_BUF_INIT;
    struct http_response r;
    cJSON *arr = NULL, *post;
    int rc;

    *n_posts = 0;
    tw_buf_printf(&url, "%s/api/v1/archive?sort=new&offset=%zu&limit=%zu", base, offset, limit);
    if (url.err)
        return tw_errf(err, TW_ENOMEM, "out of memory crawling '%s'", base);
    rc = http_get(net->http, url.data, NULL, 0, &r, err);
    if (rc < 0)
        goto out;
    arr = cJSON_ParseWithLength(r.body, r.body_len);
    http_response_release(&r);
    if (!cJSON_IsArray(arr)) {
        rc = tw_errf(err, TW_EFORMAT, "'%s': not a JSON array of posts", url.data);
        goto out;
    }
    cJSON_ArrayForEach(post, arr)
    {
        const char *purl = json_str(post, "canonical_url");
        const char *aud = json_str(post, "audience");
        const char *date = json_str(post, "post_date");
        struct src_page_meta meta = {json_str(post, "title"), json_str(post, "subtitle"),
                                     DOC_TIME_UNKNOWN};
        struct tw_err e2 = TW_ERR_INIT;
        int64_t t;
        ++*n_posts;
        if (!purl || (strncmp(purl, "https://", 8) && strncmp(purl, "http://", 7))) {
            src__fail(seen->inner, url.data, "post %zu has no canonical_url",
                      offset + *n_posts);
            continue;
        }
        if (seen_has(seen, purl))
            continue;
        if (aud && (!strcmp(aud, "only_paid") || !strcmp(aud, "founding"))) {
            src__fail(seen->inner, purl, "paid-only post (audience '%s'): not public, not stored",
                      aud);
            continue;
        }
        if (date && tw_time_parse(date, strlen(date), &t, NULL) == 0)
            meta.published_at = t;
        rc = fetch_post(purl, &meta, o, net, seen->inner, &e2);
        if (rc < 0 && is_sink_error(rc)) {
            tw_errf(err, rc, "%s", e2.msg);
            goto out;
        }
        if (rc < 0)
            seen->inner->fail(seen->inner->ctx, purl, e2.msg);
        else
            seen_add(seen, purl);
        rc = 0;
    }
out:
    cJSON_Delete(arr);
    tw_buf_release(&url);
    return rc;
}

int src_substack_crawl(const char *url, const struct src_opts *o, struct src_net *net,
                       struct src_sink *sink, struct tw_err *err)
{
    struct seen seen = {NULL, 0, 0, sink};
    struct src_sink wrap = {seen_emit, seen_fail, &seen};
    struct tw_buf feed_url = TW_BUF_INIT;
    struct http_response r;
    struct tw_err feed_err = TW_ERR_INIT, arch_err = TW_ERR_INIT;
    size_t limit = net->substack_page_max ? net->substack_page_max : 50;
    size_t max_pages = net->max_pages ? net->max_pages : 200;
    size_t offset = 0;
    char *base;
    int rc, feed_ok = 0, arch_ok = 0;

    if (is_post_url(url))
        return fetch_post(url, NULL, o, net, sink, err);
    base = origin_of(url);
    if (!base)
        return tw_errf(err, TW_EINVAL, "'%s': not a Substack URL", url);
    /* 1. the feed: full text of the latest posts, cheaply */
    tw_buf_printf(&feed_url, "%s/feed", base);
    rc = feed_url.err ? tw_errf(&feed_err, TW_ENOMEM, "out of memory")
                      : http_get(net->http, feed_url.data, NULL, 0, &r, &feed_err);
    if (rc == 0) {
        rc = src_feed_emit(r.url, r.body, r.body_len, "substack", o, &wrap, &feed_err);
        http_response_release(&r);
        if (rc < 0 && is_sink_error(rc)) {
            rc = tw_errf(err, rc, "%s", feed_err.msg);
            goto out;
        }
        feed_ok = rc >= 0;
    }
    /* 2. the archive: every post, newest first */
    for (size_t page = 0; page < max_pages; page++) {
        size_t n = 0;
        rc = archive_page(base, offset, limit, &seen, o, net, &n, &arch_err);
        if (rc < 0) {
            if (is_sink_error(rc)) {
                rc = tw_errf(err, rc, "%s", arch_err.msg);
                goto out;
            }
            break;
        }
        arch_ok = 1;
        if (n == 0)
            break;
        offset += n;
    }
    if (seen.err) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory crawling '%s'", url);
        goto out;
    }
    if (!feed_ok && !arch_ok) {
        rc = tw_errf(err, feed_err.code ? feed_err.code : arch_err.code,
                     "substack '%s': feed: %s; archive: %s", base, feed_err.msg, arch_err.msg);
        goto out;
    }
    if (!feed_ok)
        tw_log(TW_LOG_WARN, "crawl", "substack '%s': feed failed (%s); used the archive", base,
               feed_err.msg);
    if (arch_err.code)
        tw_log(TW_LOG_WARN, "crawl", "substack '%s': archive: %s", base, arch_err.msg);
    rc = TW_OK;
out:
    seen_release(&seen);
    tw_buf_release(&feed_url);
    tw_free(base);
    return rc;
}
