/* http.c - the one HTTP client of every network source (libcurl).
 *
 * A request walks: scheme check -> robots.txt of the host (fetched once, cached) -> per-host
 * rate limit -> one libcurl transfer -> retry on 429/5xx (Retry-After or exponential backoff,
 * capped) -> redirect? (we follow ourselves so that every hop passes the same checks; at most
 * HTTP_MAX_REDIRECTS) -> text check of the body. All sizes and waits are bounded.
 */
#include "collect/collect.h"

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HTTP_HOSTS_MAX 4096
#define HTTP_HEADERS_MAX ((size_t)256 << 10)
#define HTTP_ROBOTS_BODY_MAX ((size_t)512 << 10)

struct http_host {
    char *origin;       // "https://example.com:443"
    struct robots *robots; // NULL until fetched
    long long next_ms;  // monotonic time before which no request may start
};

struct http_client {
    CURL *curl;
    struct http_opts o;
    char *user_agent;
    struct http_host *hosts;
    size_t n_hosts;
    long n_requests;
};

/* ---- time ---- */

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
    struct timespec ts;
    if (ms <= 0)
        return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- options, client ---- */

void http_opts_default(struct http_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->user_agent = NULL;
    o->connect_timeout_ms = 10000;
    o->timeout_ms = 30000;
    o->max_body = HTTP_BODY_MAX_DEFAULT;
    o->rate = 1.0;
    o->max_retries = 3;
    o->backoff_ms = 1000;
    o->retry_max_ms = 60000;
    o->obey_robots = 1;
}

static int curl_global_ready(struct tw_err *err)
{
    static int done; /* curl_global_init is not thread-safe before 7.84; call it once early */
    if (!done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return tw_errf(err, TW_ENET, "libcurl initialization failed");
        done = 1;
    }
    return TW_OK;
}

int http_client_new(const struct http_opts *o, struct http_client **out, struct tw_err *err)
{
    struct http_client *c;
    int rc;

    *out = NULL;
    rc = curl_global_ready(err);
    if (rc < 0)
        return rc;
    c = tw_calloc(1, sizeof(*c));
    if (!c)
        return tw_errf(err, TW_ENOMEM, "out of memory creating http client");
    if (o)
        c->o = *o;
    else
        http_opts_default(&c->o);
    if (c->o.max_body == 0)
        c->o.max_body = HTTP_BODY_MAX_DEFAULT;
    if (c->o.max_retries < 0)
        c->o.max_retries = 0;
    if (c->o.max_retries > 10)
        c->o.max_retries = 10;
    c->user_agent = tw_strdup(c->o.user_agent ? c->o.user_agent : HTTP_USER_AGENT_DEFAULT);
    c->o.user_agent = NULL;
    c->curl = curl_easy_init();
    if (!c->user_agent || !c->curl) {
        http_client_free(c);
        return tw_errf(err, TW_ENOMEM, "out of memory creating http client");
    }
    *out = c;
    return TW_OK;
}

void http_client_free(struct http_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_hosts; i++) {
        tw_free(c->hosts[i].origin);
        robots_free(c->hosts[i].robots);
    }
    tw_free(c->hosts);
    tw_free(c->user_agent);
    if (c->curl)
        curl_easy_cleanup(c->curl);
    tw_free(c);
}

long http_client_requests(const struct http_client *c)
{
    return c->n_requests;
}

void http_response_release(struct http_response *res)
{
    tw_free(res->url);
    tw_free(res->content_type);
    tw_free(res->body);
    tw_free(res->headers);
    res->url = res->content_type = res->body = res->headers = NULL;
    res->body_len = 0;
}

/* ---- URL parts ---- */

struct url_parts {
    char *origin; // scheme://host:port
    char *path;   // path?query
};

static void url_parts_release(struct url_parts *u)
{
    tw_free(u->origin);
    tw_free(u->path);
}

static int url_split(const char *url, struct url_parts *u, struct tw_err *err)
{
    CURLU *h = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    int rc = TW_OK;
    struct tw_buf b = TW_BUF_INIT;

    memset(u, 0, sizeof(*u));
    if (!h)
        return tw_errf(err, TW_ENOMEM, "out of memory parsing url '%s'", url);
    if (curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        rc = tw_errf(err, TW_EINVAL, "invalid url '%s'", url);
        goto out;
    }
    if (strcmp(scheme, "http") && strcmp(scheme, "https")) {
        rc = tw_errf(err, TW_EINVAL, "url '%s': scheme '%s' not supported (http and https only)",
                     url, scheme);
        goto out;
    }
    if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
        rc = tw_errf(err, TW_EINVAL, "invalid url '%s': no host", url);
        goto out;
    }
    curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    curl_url_get(h, CURLUPART_PATH, &path, 0);
    curl_url_get(h, CURLUPART_QUERY, &query, 0);
    tw_buf_printf(&b, "%s://%s:%s", scheme, host, port ? port : "");
    for (char *p = b.data; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    u->origin = tw_buf_detach(&b, NULL);
    tw_buf_printf(&b, "%s%s%s", path && *path ? path : "/", query ? "?" : "", query ? query : "");
    u->path = tw_buf_detach(&b, NULL);
    if (!u->origin || !u->path) {
        url_parts_release(u);
        rc = tw_errf(err, TW_ENOMEM, "out of memory parsing url '%s'", url);
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(h);
    return rc;
}

static struct http_host *host_get(struct http_client *c, const char *origin)
{
    for (size_t i = 0; i < c->n_hosts; i++)
        if (!strcmp(c->hosts[i].origin, origin))
            return &c->hosts[i];
    if (c->n_hosts == HTTP_HOSTS_MAX) {
        /* Bounded: forget the oldest host (its robots.txt is fetched again if needed). */
        tw_free(c->hosts[0].origin);
        robots_free(c->hosts[0].robots);
        memmove(c->hosts, c->hosts + 1, (c->n_hosts - 1) * sizeof(*c->hosts));
        c->n_hosts--;
    }
    if ((c->n_hosts & (c->n_hosts - 1)) == 0) {
        struct http_host *p =
            tw_reallocarray(c->hosts, c->n_hosts ? c->n_hosts * 2 : 4, sizeof(*p));
        if (!p)
            return NULL;
        c->hosts = p;
    }
    c->hosts[c->n_hosts].origin = tw_strdup(origin);
    if (!c->hosts[c->n_hosts].origin)
        return NULL;
    c->hosts[c->n_hosts].robots = NULL;
    c->hosts[c->n_hosts].next_ms = 0;
    return &c->hosts[c->n_hosts++];
}

/* ---- one transfer ---- */

struct xfer {
    struct tw_buf body;
    struct tw_buf headers;
    int too_big;
    int truncate; // keep the first max bytes and drop the rest instead of failing (robots.txt)
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    if (x->truncate && x->body.len + size * n > x->body.max_len) {
        tw_buf_add(&x->body, p, x->body.max_len - x->body.len);
        return x->body.err ? 0 : size * n;
    }
    if (tw_buf_add(&x->body, p, size * n) < 0) {
        x->too_big = x->body.err == TW_ELIMIT;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;
    /* A new status line starts a new response (1xx, proxies): keep only the last one's. */
    if (len >= 5 && !memcmp(p, "HTTP/", 5))
        tw_buf_reset(&x->headers);
    if (tw_buf_add(&x->headers, p, len) < 0)
        return 0;
    return len;
}

struct xfer_result {
    long status;
    char *redirect; // absolute Location target for 3xx, heap
    char *content_type;
    char *retry_after; // heap, NULL if absent
};

static char *header_find(const char *headers, const char *name)
{
    size_t n = strlen(name);
    const char *p = headers;
    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > n && !strncasecmp(p, name, n) && p[n] == ':') {
            const char *v = p + n + 1;
            size_t vlen = len - n - 1;
            while (vlen && (*v == ' ' || *v == '\t'))
                v++, vlen--;
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t' || v[vlen - 1] == '\n'))
                vlen--;
            return tw_strndup(v, vlen);
        }
        p = eol ? eol + 2 : NULL;
    }
    return NULL;
}

char *http_response_header(const struct http_response *res, const char *name)
{
    return res->headers ? header_find(res->headers, name) : NULL;
}

static int perform(struct http_client *c, const char *url, const char *const *headers,
                   long long timeout_ms, int follow, size_t max_body, struct xfer *x,
                   struct xfer_result *r, struct tw_err *err)
{
    struct curl_slist *sl = NULL;
    CURL *h = c->curl;
    CURLcode cc;
    char *ct = NULL, *loc = NULL;
    int rc = TW_OK;

    memset(r, 0, sizeof(*r));
    tw_buf_init(&x->body, max_body);
    tw_buf_init(&x->headers, HTTP_HEADERS_MAX);
    x->too_big = 0;
    for (size_t i = 0; headers && headers[i]; i++) {
        struct curl_slist *t = curl_slist_append(sl, headers[i]);
        if (!t) {
            curl_slist_free_all(sl);
            return tw_errf(err, TW_ENOMEM, "out of memory requesting '%s'", url);
        }
        sl = t;
    }
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, (long)follow);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)HTTP_MAX_REDIRECTS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->o.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    if (!x->truncate)
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    if (sl)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
    c->n_requests++;
    cc = curl_easy_perform(h);
    curl_slist_free_all(sl);
    if (cc != CURLE_OK) {
        if (cc == CURLE_OPERATION_TIMEDOUT)
            rc = tw_errf(err, TW_ETIMEOUT, "'%s': timed out after %lld ms", url, timeout_ms);
        else if (cc == CURLE_FILESIZE_EXCEEDED || (cc == CURLE_WRITE_ERROR && x->too_big))
            rc = tw_errf(err, TW_ELIMIT, "'%s': response body larger than %zu bytes", url,
                         max_body);
        else if (cc == CURLE_WRITE_ERROR)
            rc = tw_errf(err, TW_ENOMEM, "out of memory reading '%s'", url);
        else if (cc == CURLE_TOO_MANY_REDIRECTS)
            rc = tw_errf(err, TW_ELIMIT, "'%s': more than %d redirects", url,
                         HTTP_MAX_REDIRECTS);
        else if (cc == CURLE_UNSUPPORTED_PROTOCOL)
            rc = tw_errf(err, TW_EINVAL, "'%s': protocol not supported (http and https only)",
                         url);
        else
            rc = tw_errf(err, TW_ENET, "'%s': %s", url, curl_easy_strerror(cc));
        goto fail;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc);
    {
        /* "Text/HTML; charset=utf-8" -> "text/html" */
        size_t n = 0;
        const char *s = ct ? ct : "";
        while (*s == ' ')
            s++;
        while (s[n] && s[n] != ';' && s[n] != ' ')
            n++;
        r->content_type = tw_strndup(s, n);
        for (size_t i = 0; r->content_type && i < n; i++)
            r->content_type[i] = (char)tolower((unsigned char)r->content_type[i]);
    }
    r->redirect = loc ? tw_strdup(loc) : NULL;
    r->retry_after = header_find(x->headers.data, "retry-after");
    if (!r->content_type || (loc && !r->redirect) || x->body.err || x->headers.err) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory reading '%s'", url);
        goto fail;
    }
    return TW_OK;
fail:
    tw_free(r->content_type);
    tw_free(r->redirect);
    tw_free(r->retry_after);
    memset(r, 0, sizeof(*r));
    tw_buf_release(&x->body);
    tw_buf_release(&x->headers);
    return rc;
}

static void xfer_result_release(struct xfer_result *r)
{
    tw_free(r->content_type);
    tw_free(r->redirect);
    tw_free(r->retry_after);
    memset(r, 0, sizeof(*r));
}

/* ---- retry-after, link ---- */

long http_retry_after_ms(const char *value, long long now)
{
    const char *p = value;
    long long secs = 0;
    time_t t;
    if (!value)
        return -1;
    while (*p == ' ')
        p++;
    if (isdigit((unsigned char)*p)) {
        while (isdigit((unsigned char)*p)) {
            secs = secs * 10 + (*p++ - '0');
            if (secs > 86400LL * 365)
                return -1;
        }
        while (*p == ' ')
            p++;
        return *p ? -1 : (long)(secs * 1000);
    }
    t = curl_getdate(p, NULL);
    if (t == (time_t)-1)
        return -1;
    if ((long long)t <= now)
        return 0;
    if ((long long)t - now > 86400LL * 365)
        return -1;
    return (long)(((long long)t - now) * 1000);
}

char *http_link_next(const char *link)
{
    const char *p = link;
    if (!link)
        return NULL;
    while (*p) {
        const char *lt = strchr(p, '<'), *gt, *end, *rel;
        if (!lt)
            return NULL;
        gt = strchr(lt, '>');
        if (!gt)
            return NULL;
        end = strchr(gt, ',');
        if (!end)
            end = gt + strlen(gt);
        /* look for rel="next" (or rel=next, or "next" among several rel values) in gt..end */
        for (rel = gt; rel && rel < end; rel++) {
            if (!strncasecmp(rel, "rel=", 4)) {
                const char *v = rel + 4;
                size_t vlen;
                int quoted = *v == '"';
                if (quoted)
                    v++;
                vlen = 0;
                while (v + vlen < end && v[vlen] != (quoted ? '"' : ';'))
                    vlen++;
                for (size_t i = 0; i + 4 <= vlen; i++) {
                    if (!strncasecmp(v + i, "next", 4) && (i == 0 || v[i - 1] == ' ') &&
                        (i + 4 == vlen || v[i + 4] == ' ' || v[i + 4] == ';'))
                        return tw_strndup(lt + 1, (size_t)(gt - lt - 1));
                }
                break;
            }
        }
        p = *end ? end + 1 : end;
    }
    return NULL;
}

/* ---- rate limit, robots ---- */

/* Waits for the host's turn, then books the next one: 1/rate later, or the robots.txt
 * Crawl-delay if that is longer. */
static void rate_wait(struct http_client *c, struct http_host *h)
{
    long long now = mono_ms(), gap = 0;
    if (h->next_ms > now)
        sleep_ms(h->next_ms - now);
    if (c->o.rate > 0) {
        double g = 1000.0 / c->o.rate;
        gap = (long long)(g > 3600000.0 ? 3600000.0 : g);
    }
    if (c->o.obey_robots && robots_crawl_delay_ms(h->robots) > gap)
        gap = robots_crawl_delay_ms(h->robots);
    if (gap > 0)
        h->next_ms = mono_ms() + gap;
}

static int robots_load(struct http_client *c, struct http_host *h, struct tw_err *err)
{
    struct tw_buf url = TW_BUF_INIT;
    struct xfer x;
    struct xfer_result r;
    struct tw_err e2 = TW_ERR_INIT;
    const char *origin = h->origin;
    int rc;
    char agent[64];
    size_t n = 0;

    /* Our product token: the User-Agent up to the first '/' ("twin/0.1.0" -> "twin"). */
    while (c->user_agent[n] && c->user_agent[n] != '/' && n + 1 < sizeof(agent)) {
        agent[n] = c->user_agent[n];
        n++;
    }
    agent[n] = 0;
    tw_buf_printf(&url, "%s/robots.txt", origin);
    if (url.err)
        return tw_errf(err, TW_ENOMEM, "out of memory fetching robots.txt");
    rate_wait(c, h);
    x.truncate = 1; /* RFC 9309 §2.5: parse the first 500 KiB at least, ignore the rest */
    rc = perform(c, url.data, NULL, c->o.timeout_ms, 1, HTTP_ROBOTS_BODY_MAX, &x, &r, &e2);
    if (rc < 0) {
        /* The host did not answer at all: the URL fails with that error; robots.txt is asked
         * again next time (nothing cached). */
        tw_buf_release(&url);
        return tw_errf(err, rc, "%s", e2.msg);
    }
    if (r.status >= 500 || r.status == 429) {
        /* RFC 9309 §2.3.1.4: a robots.txt that errors means complete disallow. */
        tw_log(TW_LOG_WARN, "http", "robots.txt of '%s' unavailable (status %ld): not crawling it",
               origin, r.status);
        rc = robots_new_all(0, &h->robots, err);
    } else if (r.status >= 200 && r.status < 300) {
        rc = robots_parse(x.body.data, x.body.len, agent, &h->robots, err);
    } else {
        rc = robots_new_all(1, &h->robots, err); /* 4xx: no rules */
    }
    xfer_result_release(&r);
    tw_buf_release(&x.body);
    tw_buf_release(&x.headers);
    tw_buf_release(&url);
    return rc;
}

static int is_text_type(const char *ct)
{
    static const char *const ok[] = {"text/", "application/xml", "application/json",
                                     "application/javascript", "application/x-javascript",
                                     "application/xhtml"};
    if (!*ct)
        return 1;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!strncmp(ct, ok[i], strlen(ok[i])))
            return 1;
    /* application/rss+xml, application/atom+xml, application/vnd.github+json, ... */
    {
        size_t n = strlen(ct);
        if ((n > 4 && !strcmp(ct + n - 4, "+xml")) || (n > 5 && !strcmp(ct + n - 5, "+json")))
            return 1;
    }
    return 0;
}

/* One URL without redirects: robots, rate limit, retries. */
static int get_one(struct http_client *c, const char *url, const char *const *headers,
                   unsigned flags, struct xfer *x, struct xfer_result *r, struct tw_err *err)
{
    struct url_parts u;
    struct http_host *h;
    long long deadline_ms;
    int rc;

    rc = url_split(url, &u, err);
    if (rc < 0)
        return rc;
    h = host_get(c, u.origin);
    if (!h) {
        url_parts_release(&u);
        return tw_errf(err, TW_ENOMEM, "out of memory requesting '%s'", url);
    }
    if (c->o.obey_robots && !(flags & HTTP_GET_NO_ROBOTS)) {
        if (!h->robots) {
            rc = robots_load(c, h, err);
            if (rc < 0)
                goto out;
        }
        if (!robots_allowed(h->robots, u.path)) {
            rc = tw_errf(err, TW_EBLOCKED, "'%s': disallowed by robots.txt of '%s'", url,
                         u.origin);
            goto out;
        }
    }
    deadline_ms = c->o.timeout_ms;
    for (int attempt = 0;; attempt++) {
        long long wait;
        long ra;
        rate_wait(c, h);
        x->truncate = 0;
        rc = perform(c, url, headers, deadline_ms, 0, c->o.max_body, x, r, err);
        if (rc < 0)
            goto out;
        if (!(r->status == 429 || (r->status >= 500 && r->status != 501)) ||
            attempt >= c->o.max_retries)
            break;
        wait = (long long)c->o.backoff_ms << attempt;
        ra = http_retry_after_ms(r->retry_after, (long long)time(NULL));
        if (ra >= 0)
            wait = ra;
        if (wait > c->o.retry_max_ms)
            wait = c->o.retry_max_ms;
        tw_log(TW_LOG_WARN, "http", "'%s': status %ld; retry %d of %d in %lld ms", url,
               r->status, attempt + 1, c->o.max_retries, wait);
        xfer_result_release(r);
        tw_buf_release(&x->body);
        tw_buf_release(&x->headers);
        /* The wait counts against the host, so other requests to it wait too. */
        if (mono_ms() + wait > h->next_ms)
            h->next_ms = mono_ms() + wait;
    }
out:
    url_parts_release(&u);
    return rc;
}

/* Same scheme, host and port? (false when either does not parse) */
static int same_origin(const char *a, const char *b)
{
    struct url_parts ua, ub;
    int same;
    if (url_split(a, &ua, NULL) < 0)
        return 0;
    if (url_split(b, &ub, NULL) < 0) {
        url_parts_release(&ua);
        return 0;
    }
    same = !strcmp(ua.origin, ub.origin);
    url_parts_release(&ua);
    url_parts_release(&ub);
    return same;
}

int http_get(struct http_client *c, const char *url, const char *const *headers, unsigned flags,
             struct http_response *res, struct tw_err *err)
{
    struct xfer x;
    struct xfer_result r;
    char *cur;
    int rc;

    memset(res, 0, sizeof(*res));
    cur = tw_strdup(url);
    if (!cur)
        return tw_errf(err, TW_ENOMEM, "out of memory requesting '%s'", url);
    for (int hop = 0;; hop++) {
        rc = get_one(c, cur, headers, flags, &x, &r, err);
        if (rc < 0)
            goto fail;
        if (r.status >= 300 && r.status < 400 && r.redirect) {
            if (hop >= HTTP_MAX_REDIRECTS) {
                rc = tw_errf(err, TW_ELIMIT, "'%s': more than %d redirects (last to '%s')", url,
                             HTTP_MAX_REDIRECTS, r.redirect);
                goto fail_xfer;
            }
            /* Credentials stay with their origin, as curl does: a redirect elsewhere is asked
             * without the caller's extra headers (Authorization). */
            if (headers && !same_origin(cur, r.redirect))
                headers = NULL;
            tw_free(cur);
            cur = r.redirect;
            r.redirect = NULL;
            xfer_result_release(&r);
            tw_buf_release(&x.body);
            tw_buf_release(&x.headers);
            continue;
        }
        break;
    }
    res->status = r.status;
    if (r.status < 200 || r.status >= 300) {
        rc = tw_errf(err, TW_EHTTP, "'%s': HTTP status %ld", cur, r.status);
        goto fail_xfer;
    }
    if (!(flags & HTTP_GET_ALLOW_BINARY)) {
        if (!is_text_type(r.content_type)) {
            rc = tw_errf(err, TW_EFORMAT, "'%s': binary response (content type '%s'), not text",
                         cur, r.content_type);
            goto fail_xfer;
        }
        if (memchr(x.body.data, 0, x.body.len)) {
            rc = tw_errf(err, TW_EFORMAT, "'%s': binary response (NUL bytes in the body)", cur);
            goto fail_xfer;
        }
    }
    res->url = cur;
    res->content_type = r.content_type;
    r.content_type = NULL;
    res->body = tw_buf_detach(&x.body, &res->body_len);
    res->headers = tw_buf_detach(&x.headers, NULL);
    xfer_result_release(&r);
    if (!res->body || !res->headers) {
        http_response_release(res);
        return tw_errf(err, TW_ENOMEM, "out of memory reading '%s'", url);
    }
    return TW_OK;
fail_xfer:
    xfer_result_release(&r);
    tw_buf_release(&x.body);
    tw_buf_release(&x.headers);
fail:
    tw_free(cur);
    return rc;
}
