/* medium_web.c - Medium on the web: an author's feed, or single article pages.
 *
 *     medium.com/@user, user.medium.com      --> https://medium.com/feed/@user (RSS, the last
 *     medium.com/feed/@user                       posts with full content:encoded HTML)
 *     any other Medium URL (an article)      --> the page, html_extract_article
 *
 * Medium's feed holds only the most recent posts; the official export (src/collect/medium.c)
 * has them all.
 */
#include "collect/collect.h"

#include "base/buf.h"
#include "base/mem.h"

#include <string.h>

char *src_medium_feed_url(const char *url)
{
    const char *h = strstr(url, "://");
    const char *path;
    size_t hl;
    struct tw_buf b = TW_BUF_INIT;
    if (!h)
        return NULL;
    h += 3;
    hl = strcspn(h, "/?#");
    path = h + hl;
    if (hl == 10 && !strncasecmp(h, "medium.com", 10)) {
        /* /@user or /@user/ (a profile); /feed/@user is a feed already */
        if (path[0] == '/' && path[1] == '@') {
            size_t ul = strcspn(path + 2, "/?#");
            if (path[2 + ul] == '/' && path[3 + ul] && path[3 + ul] != '?' && path[3 + ul] != '#')
                return NULL; /* /@user/slug: an article */
            tw_buf_printf(&b, "https://medium.com/feed/@%.*s", (int)ul, path + 2);
            return tw_buf_detach(&b, NULL);
        }
        return NULL;
    }
    if (hl > 11 && !strncasecmp(h + hl - 11, ".medium.com", 11) && (!*path || !strcmp(path, "/"))) {
        tw_buf_printf(&b, "https://%.*s/feed", (int)hl, h);
        return tw_buf_detach(&b, NULL);
    }
    return NULL;
}

int src_medium_crawl(const char *url, const struct src_opts *o, struct src_net *net,
                     struct src_sink *sink, struct tw_err *err)
{
    struct http_response r;
    char *feed = src_medium_feed_url(url);
    const char *target = feed ? feed : url;
    int rc;

    rc = http_get(net->http, target, NULL, 0, &r, err);
    if (rc < 0) {
        tw_free(feed);
        return rc;
    }
    if (feed_is_feed(r.body, r.body_len) || strstr(r.content_type, "xml")) {
        rc = src_feed_emit(r.url, r.body, r.body_len, "medium", o, sink, err);
        if (rc > 0)
            rc = 0;
    } else {
        rc = src_web_page_emit(r.url, r.body, r.body_len, "medium", NULL, o, sink, err);
    }
    http_response_release(&r);
    tw_free(feed);
    return rc;
}
