/* web.c - any web URL: feeds to articles, pages to articles (html.c does the extraction).
 *
 *     url --http_get--> feed?  --src_feed_emit-->  one article per item (html_to_text)
 *                       page?  --src_web_page_emit--> html_extract_article, unless the page is a
 *                                                    bot challenge or paywall interstitial
 */
#include "collect/collect.h"
#include "collect/collect_int.h"
#include "collect/html.h"

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Drops tracking parameters from a URL's query: Medium's "source=...", and "utm_*". */
static char *url_untrack(const char *url)
{
    const char *q = strchr(url, '?');
    const char *hash;
    struct tw_buf b = TW_BUF_INIT;
    int first = 1;
    if (!q)
        return tw_strdup(url);
    hash = strchr(q, '#');
    tw_buf_add(&b, url, (size_t)(q - url));
    for (const char *p = q + 1; p < (hash ? hash : q + strlen(q));) {
        const char *amp = strchr(p, '&');
        const char *end = amp && (!hash || amp < hash) ? amp : (hash ? hash : p + strlen(p));
        size_t n = (size_t)(end - p);
        int drop = (n >= 7 && !strncmp(p, "source=", 7)) || (n >= 4 && !strncmp(p, "utm_", 4)) ||
                   n == 0;
        if (!drop) {
            tw_buf_putc(&b, first ? '?' : '&');
            tw_buf_add(&b, p, n);
            first = 0;
        }
        p = *end == '&' ? end + 1 : end;
        if (end == hash || !*end)
            break;
    }
    if (hash)
        tw_buf_puts(&b, hash);
    if (b.err) {
        tw_buf_release(&b);
        return NULL;
    }
    return tw_buf_detach(&b, NULL);
}

static int is_http_url(const char *s)
{
    return s && (!strncmp(s, "https://", 8) || !strncmp(s, "http://", 7));
}

/* One feed item as a document. Returns 1 emitted, 0 reported as failed, < 0 sink error. */
static int emit_item(const char *feed_url, size_t idx, const struct feed_item *it,
                     const char *platform, const struct src_opts *o, struct src_sink *sink,
                     struct tw_err *err)
{
    const char *link = it->link ? it->link : (is_http_url(it->guid) ? it->guid : NULL);
    const char *html = it->content_html ? it->content_html : it->summary_html;
    char *url = NULL, *text = NULL, *title = NULL;
    struct tw_err e2 = TW_ERR_INIT;
    struct doc d;
    char item[64];
    int rc;

    snprintf(item, sizeof(item), "item %zu", idx + 1);
    if (!is_http_url(link)) {
        src__fail(sink, feed_url, "%s ('%s') has no http(s) link", item,
                  it->title ? it->title : "untitled");
        return 0;
    }
    url = url_untrack(link);
    if (!url)
        return tw_errf(err, TW_ENOMEM, "out of memory reading feed '%s'", feed_url);
    if (!html || html_to_text(html, strlen(html), &text, &e2) < 0 || !text[0]) {
        src__fail(sink, url, "feed item has no text%s%s", e2.code ? ": " : "", e2.msg);
        tw_free(text);
        tw_free(url);
        return 0;
    }
    /* Atom titles may be HTML ("&lt;i&gt;x&lt;/i&gt;" decodes to "<i>x</i>") */
    if (it->title && strchr(it->title, '<')) {
        tw_err_clear(&e2);
        if (html_to_text(it->title, strlen(it->title), &title, &e2) < 0)
            title = NULL;
    }
    memset(&d, 0, sizeof(d));
    d.kind = "article";
    d.platform = platform;
    d.url = url;
    d.source = feed_url;
    d.author_name = o ? o->author_name : NULL;
    d.author_handle = o ? o->author_handle : NULL;
    d.title = title ? title : it->title;
    d.content = text;
    d.published_at = it->published_at != INT64_MIN ? it->published_at : it->updated_at;
    d.fetched_at = DOC_TIME_UNKNOWN;
    rc = sink->emit(sink->ctx, &d, err);
    tw_free(title);
    tw_free(text);
    tw_free(url);
    return rc < 0 ? rc : 1;
}

int src_feed_emit(const char *feed_url, const char *xml, size_t len, const char *platform,
                  const struct src_opts *o, struct src_sink *sink, struct tw_err *err)
{
    struct feed f;
    int rc, n = 0;

    rc = feed_parse(xml, len, &f, err);
    if (rc < 0) {
        feed_release(&f);
        return tw_err_ctx(err, "feed '%s'", feed_url);
    }
    for (size_t i = 0; i < f.n_items; i++) {
        rc = emit_item(feed_url, i, &f.items[i], platform, o, sink, err);
        if (rc < 0) {
            feed_release(&f);
            return rc;
        }
        n += rc;
    }
    feed_release(&f);
    return n;
}

/* "https://Host:443/x" -> compares scheme-less host parts case-insensitively. */
static int same_host(const char *a, const char *b)
{
    const char *ha = strstr(a, "://"), *hb = strstr(b, "://");
    size_t na, nb;
    if (!ha || !hb)
        return 0;
    ha += 3;
    hb += 3;
    na = strcspn(ha, "/?#");
    nb = strcspn(hb, "/?#");
    return na == nb && !strncasecmp(ha, hb, na);
}

int src_web_page_emit(const char *url, const char *html, size_t len, const char *platform,
                      const struct src_page_meta *meta, const struct src_opts *o,
                      struct src_sink *sink, struct tw_err *err)
{
    struct html_article a;
    struct doc d;
    int rc;

    if (html_is_bot_challenge(html, len))
        return tw_errf(err, TW_EBLOCKED,
                       "'%s': a bot challenge or paywall page (\"Just a moment...\", \"Verify you "
                       "are human\"), not the article; not stored",
                       url);
    memset(&a, 0, sizeof(a));
    rc = html_extract_article(html, len, &a, err);
    if (rc < 0) {
        html_article_release(&a);
        return tw_err_ctx(err, "page '%s'", url);
    }
    memset(&d, 0, sizeof(d));
    d.kind = "article";
    d.platform = platform;
    d.url = a.canonical_url && is_http_url(a.canonical_url) && same_host(a.canonical_url, url)
                ? a.canonical_url
                : url;
    d.source = url;
    d.author_name = o ? o->author_name : NULL;
    d.author_handle = o ? o->author_handle : NULL;
    d.title = a.title ? a.title : meta ? meta->title : NULL;
    d.subtitle = a.subtitle ? a.subtitle : meta ? meta->subtitle : NULL;
    d.content = a.content;
    d.published_at = a.published_at != INT64_MIN
                         ? a.published_at
                         : meta ? meta->published_at : DOC_TIME_UNKNOWN;
    d.fetched_at = DOC_TIME_UNKNOWN;
    if (!a.content || !a.content[0]) {
        html_article_release(&a);
        return tw_errf(err, TW_ENOENT, "page '%s': no article text found", url);
    }
    rc = sink->emit(sink->ctx, &d, err);
    html_article_release(&a);
    return rc;
}

static int is_feed_type(const char *ct)
{
    return !strcmp(ct, "application/rss+xml") || !strcmp(ct, "application/atom+xml") ||
           !strcmp(ct, "application/rdf+xml") || !strcmp(ct, "application/feed+xml");
}

/* Skips leading whitespace and a BOM; true when the body starts like XML or a feed. */
static int looks_like_feed(const struct http_response *r)
{
    if (is_feed_type(r->content_type))
        return 1;
    if (!strcmp(r->content_type, "text/html") || !strcmp(r->content_type, "application/xhtml+xml"))
        return 0;
    {
        const char *p = r->body;
        size_t n = r->body_len;
        if (n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
            p += 3, n -= 3;
        while (n && isspace((unsigned char)*p))
            p++, n--;
        return feed_is_feed(p, n);
    }
}

/* "https://host" or "https://host/" (a site's home page)? */
static int is_root(const char *url)
{
    const char *h = strstr(url, "://");
    const char *path = h ? h + 3 + strcspn(h + 3, "/?#") : url;
    return !*path || !strcmp(path, "/");
}

int src_web_crawl(const char *url, const struct src_opts *o, struct src_net *net,
                  struct src_sink *sink, struct tw_err *err)
{
    struct http_response r;
    int rc;

    rc = http_get(net->http, url, NULL, 0, &r, err);
    if (rc < 0)
        return rc;
    if (!looks_like_feed(&r) && is_root(r.url) &&
        src__memcasemem(r.body, r.body_len < 65536 ? r.body_len : 65536, "substackcdn.com")) {
        /* a Substack publication on its own domain: its feed and archive, not its home page */
        http_response_release(&r);
        return src_substack_crawl(url, o, net, sink, err);
    }
    if (looks_like_feed(&r)) {
        rc = src_feed_emit(r.url, r.body, r.body_len, "web", o, sink, err);
        if (rc > 0)
            rc = 0;
    } else {
        rc = src_web_page_emit(r.url, r.body, r.body_len, "web", NULL, o, sink, err);
    }
    http_response_release(&r);
    return rc;
}
