/* crawl.c - one URL to the source that knows it (DESIGN §1: sources never write to the store). */
#include "collect/collect.h"

#include <string.h>

/* The host of 'url' as (pointer, length), lowercase comparison left to the caller. */
static const char *url_host(const char *url, size_t *len)
{
    const char *h = strstr(url, "://");
    if (!h) {
        *len = 0;
        return url;
    }
    h += 3;
    *len = strcspn(h, "/?#:");
    return h;
}

static int host_is(const char *h, size_t n, const char *name)
{
    return strlen(name) == n && !strncasecmp(h, name, n);
}

static int host_ends(const char *h, size_t n, const char *suffix)
{
    size_t s = strlen(suffix);
    return n > s && !strncasecmp(h + n - s, suffix, s);
}

int src_crawl_url(const char *url, const struct src_opts *o, struct src_net *net,
                  struct src_sink *sink, struct tw_err *err)
{
    const char *p = net->platform;
    size_t n;
    const char *h = url_host(url, &n);

    if (strncmp(url, "https://", 8) && strncmp(url, "http://", 7))
        return tw_errf(err, TW_EINVAL, "'%s': not an http(s) URL", url);
    if (!p) {
        if (host_is(h, n, "github.com") || host_is(h, n, "www.github.com"))
            p = "github";
        else if (host_is(h, n, "medium.com") || host_ends(h, n, ".medium.com"))
            p = "medium";
        else if (host_ends(h, n, ".substack.com"))
            p = "substack";
        else
            p = "web";
    }
    if (!strcmp(p, "github"))
        return src_github_crawl(url, o, net, sink, err);
    if (!strcmp(p, "medium"))
        return src_medium_crawl(url, o, net, sink, err);
    if (!strcmp(p, "substack"))
        return src_substack_crawl(url, o, net, sink, err);
    if (!strcmp(p, "web"))
        return src_web_crawl(url, o, net, sink, err);
    return tw_errf(err, TW_EINVAL, "unknown platform '%s' (medium, substack, github or web)", p);
}
