/* test_http_crawl.c - the crawlers (Medium, Substack, web, GitHub) end to end against a server on
 * 127.0.0.1 serving saved real pages, feeds and recorded GitHub API responses. */
#include "test.h"

#include "httpd_test.h"

#include "base/mem.h"
#include "collect/collect.h"

#include <cJSON.h>
#include <stdlib.h>

#define MAX_DOCS 64
#define MAX_FAILS 16

struct got {
    char *url[MAX_DOCS], *title[MAX_DOCS], *content[MAX_DOCS], *platform[MAX_DOCS];
    char *source[MAX_DOCS];
    long long published[MAX_DOCS];
    size_t n;
    char *fail_item[MAX_FAILS], *fail_msg[MAX_FAILS];
    size_t n_fail;
};

static int got_emit(void *ctx, const struct doc *d, struct tw_err *err)
{
    struct got *g = ctx;
    if (g->n >= MAX_DOCS)
        return tw_errf(err, TW_ELIMIT, "too many documents");
    g->url[g->n] = tw_strdup(d->url);
    g->title[g->n] = tw_strdup(d->title ? d->title : "");
    g->content[g->n] = tw_strdup(d->content);
    g->platform[g->n] = tw_strdup(d->platform);
    g->source[g->n] = tw_strdup(d->source ? d->source : "");
    g->published[g->n] = d->published_at;
    g->n++;
    return 0;
}

static void got_fail(void *ctx, const char *item, const char *msg)
{
    struct got *g = ctx;
    if (g->n_fail >= MAX_FAILS)
        return;
    g->fail_item[g->n_fail] = tw_strdup(item);
    g->fail_msg[g->n_fail] = tw_strdup(msg);
    g->n_fail++;
}

static void got_release(struct got *g)
{
    for (size_t i = 0; i < g->n; i++) {
        tw_free(g->url[i]);
        tw_free(g->title[i]);
        tw_free(g->content[i]);
        tw_free(g->platform[i]);
        tw_free(g->source[i]);
    }
    for (size_t i = 0; i < g->n_fail; i++) {
        tw_free(g->fail_item[i]);
        tw_free(g->fail_msg[i]);
    }
    memset(g, 0, sizeof(*g));
}

static int find_url(const struct got *g, const char *url)
{
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->url[i], url))
            return (int)i;
    return -1;
}

static int find_fail(const struct got *g, const char *item_part, const char *msg_part)
{
    for (size_t i = 0; i < g->n_fail; i++)
        if (strstr(g->fail_item[i], item_part) && strstr(g->fail_msg[i], msg_part))
            return (int)i;
    return -1;
}

static struct http_client *fast_client(void)
{
    struct http_opts o;
    struct http_client *c = NULL;
    struct tw_err err = TW_ERR_INIT;
    http_opts_default(&o);
    o.user_agent = "twin/test";
    o.rate = 1000;
    o.backoff_ms = 20;
    o.retry_max_ms = 2000;
    o.timeout_ms = 10000;
    if (http_client_new(&o, &c, &err) < 0)
        fprintf(stderr, "http_client_new: %s\n", err.msg);
    return c;
}

static char *fmt(const char *f, const char *a)
{
    static char bufs[16][1024];
    static int slot;
    char *b = bufs[slot++ & 15];
    snprintf(b, 1024, f, a);
    return b;
}

/* ---- Medium ---- */

TEST(crawl_medium_feed_fixture)
{
    struct httpd_route routes[] = {
        {.path = "/robots.txt", .content_type = "text/plain", .body = "User-agent: *\nAllow: /\n"},
        {.path = "/feed/@John.Doe", .content_type = "text/xml; charset=UTF-8",
         .file = test_shared("data/exports/rss/medium_feed.jekyll-import.xml")},
        {.path = "/@John.Doe/basic-post-1a2b3c", .content_type = "text/html; charset=utf-8",
         .file = test_shared("data/exports/medium_export/posts/basic-post.html")},
    };
    struct httpd_test *h = httpd_test_start(routes, 3);
    struct got g = {0};
    struct src_sink sink = {got_emit, got_fail, &g};
    struct src_opts o = {.author_name = "John Doe"};
    struct src_net net = {.http = fast_client(), .platform = "medium"};
    struct tw_err err = TW_ERR_INIT;
    int i;
    CHECK(h && net.http);
    CHECK_OK(src_crawl_url(fmt("%s/feed/@John.Doe", httpd_test_base(h)), &o, &net, &sink, &err),
             &err);
    CHECK_EQ_INT(g.n_fail, 0);
    CHECK_EQ_INT(g.n, 2);
    /* Medium's "?source=rss-..." tracking parameter is not part of the URL */
    i = find_url(&g, "https://example.com/blog/this-is-a-dummy-post-50703370aea7");
    CHECK(i >= 0);
    CHECK_EQ_STR(g.title[i], "This is a Dummy Post");
    CHECK_EQ_STR(g.platform[i], "medium");
    CHECK_EQ_STR(g.content[i], "The quick brown fox jumps over the lazy dog");
    CHECK_EQ_INT(g.published[i], 1669104106);
    CHECK_EQ_STR(g.source[i], fmt("%s/feed/@John.Doe", httpd_test_base(h)));
    i = find_url(&g, "https://example.com/blog/how-i-cross-post-medium-articles-to-github-pages-"
                     "1cdf174bc674");
    CHECK(i >= 0);
    CHECK_EQ_STR(g.title[i], "How I cross post Medium articles to GitHub Pages");
    got_release(&g);
    /* one article page (a post as Medium renders it) */
    CHECK_OK(src_crawl_url(fmt("%s/@John.Doe/basic-post-1a2b3c", httpd_test_base(h)), &o, &net,
                           &sink, &err),
             &err);
    CHECK_EQ_INT(g.n, 1);
    CHECK_EQ_STR(g.url[0], fmt("%s/@John.Doe/basic-post-1a2b3c", httpd_test_base(h)));
    CHECK_EQ_STR(g.platform[0], "medium");
    CHECK_EQ_STR(g.title[0], "Basic Post Title");
    CHECK(strstr(g.content[0], "This is a paragraph of text and stuff.") != NULL);
    CHECK_EQ_INT(g.published[0], 1533986614);
    got_release(&g);
    http_client_free(net.http);
    httpd_test_stop(h);
}

TEST(crawl_survives_allocation_failures)
{
    struct httpd_route routes[] = {
        {.path = "/robots.txt", .status = 404},
        {.path = "/feed", .content_type = "application/rss+xml",
         .file = test_shared("data/exports/rss/medium_feed.jekyll-import.xml")},
        {.path = "/post", .content_type = "text/html",
         .file = test_shared("data/exports/substack_pages/substack-e2e-scrape.html")},
    };
    struct httpd_test *h = httpd_test_start(routes, 3);
    const char *urls[2];
    CHECK(h);
    urls[0] = fmt("%s/feed", httpd_test_base(h));
    urls[1] = fmt("%s/post", httpd_test_base(h));
    for (int u = 0; u < 2; u++) {
        int done = 0;
        for (long n = 0; n < 2000 && !done; n++) {
            struct got g = {0};
            struct src_sink sink = {got_emit, got_fail, &g};
            struct src_net net = {.http = fast_client()};
            struct tw_err err = TW_ERR_INIT;
            int rc;
            CHECK(net.http);
            tw_mem_fail_after(n);
            rc = src_crawl_url(urls[u], NULL, &net, &sink, &err);
            tw_mem_fail_after(-1);
            CHECK_MSG(rc == 0 || rc == TW_ENOMEM, "%s, allocation %ld: %d %s", urls[u], n, rc,
                      err.msg);
            done = rc == 0 && g.n_fail == 0 && g.n == (u == 0 ? 2u : 1u);
            got_release(&g);
            http_client_free(net.http);
        }
        CHECK_MSG(done, "%s never succeeded", urls[u]);
    }
    httpd_test_stop(h);
}

TEST(crawl_medium_profile_to_feed_url)
{
    static const char *const cases[][2] = {
        {"https://medium.com/@ada", "https://medium.com/feed/@ada"},
        {"https://medium.com/@ada/", "https://medium.com/feed/@ada"},
        {"https://medium.com/@ada?tab=x", "https://medium.com/feed/@ada"},
        {"https://ada.medium.com/", "https://ada.medium.com/feed"},
        {"https://ada.medium.com", "https://ada.medium.com/feed"},
        {"https://medium.com/@ada/on-engines-50703370aea7", NULL},
        {"https://medium.com/feed/@ada", NULL},
        {"https://ada.medium.com/on-engines-50703370aea7", NULL},
        {"https://example.com/@ada", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *f = src_medium_feed_url(cases[i][0]);
        if (cases[i][1])
            CHECK_EQ_STR(f, cases[i][1]);
        else
            CHECK_MSG(f == NULL, "%s -> %s", cases[i][0], f);
        tw_free(f);
    }
}

/* ---- Substack: feed, then the archive API page by page, then post pages ---- */

static const char substack_feed[] =
    "<?xml version=\"1.0\"?><rss version=\"2.0\" "
    "xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel><title>Pub</title>"
    "<item><title>Fresh post</title><link>@BASE@/p/fresh</link>"
    "<pubDate>Wed, 06 Nov 2024 17:37:50 GMT</pubDate>"
    "<content:encoded><![CDATA[<p>Fresh words from the feed.</p>]]></content:encoded></item>"
    "</channel></rss>";

static char *subst_base(const char *s, const char *base)
{
    static char out[8][4096];
    static int slot;
    char *o = out[slot++ & 7];
    size_t n = 0, bl = strlen(base);
    for (const char *p = s; *p && n + bl + 1 < 4096;) {
        if (!strncmp(p, "@BASE@", 6)) {
            memcpy(o + n, base, bl);
            n += bl;
            p += 6;
        } else {
            o[n++] = *p++;
        }
    }
    o[n] = 0;
    return o;
}

TEST(crawl_substack_feed_archive_and_pages)
{
    static const char page0[] =
        "[{\"title\":\"Fresh post\",\"canonical_url\":\"@BASE@/p/fresh\",\"audience\":\"everyone\"},"
        "{\"title\":\"Plain Text\",\"canonical_url\":\"@BASE@/p/plain-text\","
        "\"audience\":\"everyone\",\"post_date\":\"2024-01-15T10:00:00.000Z\"}]";
    static const char page1[] =
        "[{\"title\":\"An audio episode\",\"canonical_url\":\"@BASE@/p/an-audio-episode\","
        "\"audience\":\"everyone\",\"type\":\"podcast\"},"
        "{\"title\":\"Members only\",\"canonical_url\":\"@BASE@/p/members\","
        "\"audience\":\"only_paid\"}]";
    static const char page2[] =
        "[{\"title\":\"Hello\",\"canonical_url\":\"@BASE@/p/hello-world\",\"audience\":\"everyone\"},"
        "{\"title\":\"Checked\",\"canonical_url\":\"@BASE@/p/checked\",\"audience\":\"everyone\"}]";
    static const char challenge[] =
        "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body><p>Verify you "
        "are human by completing the action below.</p></body></html>";
    struct httpd_route routes[] = {
        {.path = "/robots.txt", .status = 404},
        {.path = "/feed", .content_type = "application/rss+xml"},
        {.path = "/api/v1/archive?sort=new&offset=0&limit=2", .content_type = "application/json"},
        {.path = "/api/v1/archive?sort=new&offset=2&limit=2", .content_type = "application/json"},
        {.path = "/api/v1/archive?sort=new&offset=4&limit=2", .content_type = "application/json"},
        {.path = "/api/v1/archive?sort=new&offset=6&limit=2", .content_type = "application/json",
         .body = "[]"},
        {.path = "/p/plain-text", .content_type = "text/html",
         .file = test_shared("data/exports/substack_pages/substack-e2e-scrape.html")},
        {.path = "/p/an-audio-episode", .content_type = "text/html",
         .file = test_shared("data/exports/substack_pages/substack-podcast.html")},
        {.path = "/p/hello-world", .content_type = "text/html",
         .file = test_shared("data/exports/substack_pages/substack-hello-world.html")},
        {.path = "/p/checked", .status = 200, .content_type = "text/html", .body = challenge},
        {.path = "/p/members", .content_type = "text/html", .body = "<p>teaser</p>"},
        {.path = "/", .content_type = "text/html",
         .body = "<html><head><link rel=\"stylesheet\" href=\"https://substackcdn.com/min/"
                 "main.css\"></head><body><p>Pub home</p></body></html>"},
    };
    struct httpd_test *h = httpd_test_start(routes, 0);
    const char *base;
    struct got g = {0};
    struct src_sink sink = {got_emit, got_fail, &g};
    struct src_opts o = {.author_name = "Author Name"};
    struct src_net net = {.http = fast_client(), .platform = "substack", .substack_page_max = 2};
    struct tw_err err = TW_ERR_INIT;
    int i;
    CHECK(h && net.http);
    base = httpd_test_base(h);
    routes[1].body = subst_base(substack_feed, base);
    routes[2].body = subst_base(page0, base);
    routes[3].body = subst_base(page1, base);
    routes[4].body = subst_base(page2, base);
    httpd_test_set_routes(h, routes, sizeof(routes) / sizeof(routes[0]));
    CHECK_OK(src_crawl_url(fmt("%s/", base), &o, &net, &sink, &err), &err);
    /* the feed's post, plus two archive posts fetched as pages */
    CHECK_EQ_INT(g.n, 3);
    i = find_url(&g, fmt("%s/p/fresh", base));
    CHECK(i >= 0);
    CHECK_EQ_STR(g.content[i], "Fresh words from the feed.");
    CHECK_EQ_STR(g.platform[i], "substack");
    i = find_url(&g, fmt("%s/p/plain-text", base));
    CHECK(i >= 0);
    CHECK_EQ_STR(g.title[i], "Plain Text");
    CHECK_EQ_STR(g.content[i], "Body content, not testing this");
    CHECK_EQ_INT(g.published[i], 1705312800);
    CHECK(find_url(&g, fmt("%s/p/hello-world", base)) >= 0);
    /* not fetched again: the feed had it */
    CHECK_EQ_INT(httpd_test_hits(h, "/p/fresh"), 0);
    /* podcast without text, paid-only post, challenge page: reported, not stored */
    CHECK_EQ_INT(g.n_fail, 3);
    CHECK(find_fail(&g, "/p/an-audio-episode", "no article") >= 0);
    CHECK(find_fail(&g, "/p/members", "paid-only") >= 0);
    CHECK(find_fail(&g, "/p/checked", "bot challenge") >= 0);
    CHECK_EQ_INT(httpd_test_hits(h, "/p/members"), 0);
    CHECK_EQ_INT(httpd_test_hits(h, "/api/v1/archive?sort=new&offset=6&limit=2"), 1);
    got_release(&g);

    /* a Substack on its own domain is recognized from its home page */
    net.platform = NULL;
    CHECK_OK(src_crawl_url(fmt("%s/", base), &o, &net, &sink, &err), &err);
    CHECK_EQ_INT(g.n, 3);
    CHECK_EQ_INT(g.n_fail, 3);
    CHECK(find_url(&g, fmt("%s/p/plain-text", base)) >= 0);
    got_release(&g);

    /* one post URL: just that page */
    CHECK_OK(src_substack_crawl(fmt("%s/p/plain-text", base), &o, &net, &sink, &err), &err);
    CHECK_EQ_INT(g.n, 1);
    got_release(&g);
    /* a challenge page as a single URL is the URL's error */
    CHECK_EQ_INT(src_substack_crawl(fmt("%s/p/checked", base), &o, &net, &sink, &err),
                 TW_EBLOCKED);
    CHECK_EQ_INT(g.n, 0);
    http_client_free(net.http);
    httpd_test_stop(h);
}

/* ---- any web URL ---- */

TEST(crawl_web_page_feed_and_errors)
{
    static const char atom[] =
        "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>Blog</title>"
        "<entry><title>Entry one</title><link href=\"https://blog.example/one?utm_source=x&amp;"
        "k=v\"/><updated>2024-02-03T04:05:06Z</updated><content type=\"html\">&lt;p&gt;First "
        "entry.&lt;/p&gt;</content></entry>"
        "<entry><title>No link</title><content>text</content></entry></feed>";
    struct httpd_route routes[] = {
        {.path = "/robots.txt", .content_type = "text/plain",
         .body = "User-agent: *\nDisallow: /private\n"},
        {.path = "/post", .content_type = "text/html",
         .file = test_shared("data/exports/substack_pages/substack-hello-world.html")},
        {.path = "/atom", .content_type = "application/atom+xml", .body = atom},
        {.path = "/private/post", .content_type = "text/html", .body = "<p>secret</p>"},
        {.path = "/pdf", .content_type = "application/pdf", .body = "%PDF-1.4"},
    };
    struct httpd_test *h = httpd_test_start(routes, sizeof(routes) / sizeof(routes[0]));
    const char *base = httpd_test_base(h);
    struct got g = {0};
    struct src_sink sink = {got_emit, got_fail, &g};
    struct src_net net = {.http = fast_client()};
    struct tw_err err = TW_ERR_INIT;
    CHECK(h && net.http);
    CHECK_OK(src_crawl_url(fmt("%s/post", base), NULL, &net, &sink, &err), &err);
    CHECK_EQ_INT(g.n, 1);
    /* canonical URL is on another host: the fetched URL names the document */
    CHECK_EQ_STR(g.url[0], fmt("%s/post", base));
    CHECK_EQ_STR(g.platform[0], "web");
    CHECK_EQ_STR(g.title[0], "Social title");
    got_release(&g);
    CHECK_OK(src_crawl_url(fmt("%s/atom", base), NULL, &net, &sink, &err), &err);
    CHECK_EQ_INT(g.n, 1);
    CHECK_EQ_STR(g.url[0], "https://blog.example/one?k=v");
    CHECK_EQ_STR(g.content[0], "First entry.");
    CHECK_EQ_INT(g.published[0], 1706933106);
    CHECK_EQ_INT(g.n_fail, 1);
    CHECK(find_fail(&g, "/atom", "no http(s) link") >= 0);
    got_release(&g);
    CHECK_EQ_INT(src_crawl_url(fmt("%s/private/post", base), NULL, &net, &sink, &err),
                 TW_EBLOCKED);
    tw_err_clear(&err);
    CHECK_EQ_INT(src_crawl_url(fmt("%s/pdf", base), NULL, &net, &sink, &err), TW_EFORMAT);
    tw_err_clear(&err);
    CHECK_EQ_INT(src_crawl_url("ftp://example.com/x", NULL, &net, &sink, &err), TW_EINVAL);
    CHECK_EQ_INT(g.n, 0);
    http_client_free(net.http);
    httpd_test_stop(h);
}

/* ---- GitHub: REST API listing (recorded octokit fixtures) + clone ---- */

/* A tiny repository with two text files and a lock file; returns its path. */
static const char *small_repo(void)
{
    static char dir[2048];
    char cmd[8192];
    if (dir[0])
        return dir;
    snprintf(dir, sizeof(dir), "%s/hello-world", test_tmpdir());
    snprintf(cmd, sizeof(cmd),
             "mkdir -p '%s/src' && cd '%s' && printf 'Hello World!\\n' > README.md && "
             "printf 'print(1)\\n' > src/app.py && printf '{}\\n' > package-lock.json && "
             "git init -q . && git add -A && "
             "git -c user.name=T -c user.email=t@example.com commit -q -m init",
             dir, dir);
    if (system(cmd) != 0)
        dir[0] = 0;
    return dir[0] ? dir : NULL;
}

/* The recorded GET /repos/octokit-fixture-org/hello-world response, cloned from 'clone_url'. */
static cJSON *fixture_repo(const char *clone_url)
{
    size_t len;
    char *txt =
        test_read_file(test_shared("data/exports/github_api/get-repository.normalized-fixture.json"),
                       &len);
    cJSON *all, *resp;
    if (!txt)
        return NULL;
    all = cJSON_ParseWithLength(txt, len);
    tw_free(txt);
    resp = cJSON_DetachItemFromObject(cJSON_GetArrayItem(all, 0), "response");
    cJSON_Delete(all);
    if (resp)
        cJSON_ReplaceItemInObject(resp, "clone_url", cJSON_CreateString(clone_url));
    return resp;
}

/* The Link header of the recorded paginate-issues page 1, pointed at 'next'. */
static char *fixture_link(const char *next)
{
    static char out[1024];
    size_t len;
    char *txt = test_read_file(
        test_shared("data/exports/github_api/paginate-issues.normalized-fixture.json"), &len);
    cJSON *all;
    const cJSON *link;
    const char *v, *gt;
    if (!txt)
        return NULL;
    all = cJSON_ParseWithLength(txt, len);
    tw_free(txt);
    link = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(all, 0), "headers"), "link");
    v = cJSON_GetStringValue(link);
    /* "<https://api.github.com/...page=2>; rel=\"next\", <...>; rel=\"last\"": swap the target */
    gt = v ? strchr(v, '>') : NULL;
    if (gt)
        snprintf(out, sizeof(out), "Link: <%s%s\n", next, gt);
    cJSON_Delete(all);
    return gt ? out : NULL;
}

static char *json_print(cJSON *j)
{
    static char out[4][65536];
    static int slot;
    char *s = cJSON_PrintUnformatted(j), *o = out[slot++ & 3];
    snprintf(o, sizeof(out[0]), "%s", s ? s : "");
    free(s);
    return o;
}

TEST(crawl_github_user_repos_paginated)
{
    struct httpd_route routes[] = {
        {.path = "/users/ada/repos?per_page=100&type=owner", .content_type =
                                                                 "application/json; charset=utf-8"},
        {.path = "/users/ada/repos?per_page=100&type=owner&page=2",
         .content_type = "application/json; charset=utf-8"},
        {.path = "/repos/octokit-fixture-org/hello-world", .content_type = "application/json"},
        {.path = "/users/limited/repos?per_page=100&type=owner", .status = 403,
         .content_type = "application/json",
         .body = "{\"message\":\"API rate limit exceeded\"}",
         .headers = "X-RateLimit-Remaining: 0\n"},
    };
    struct httpd_test *h = httpd_test_start(routes, 0);
    const char *repo = small_repo(), *base;
    char clone[4200], sha[64] = "", cmd[4300], next[512], ua[256], auth[256];
    cJSON *r1, *fork, *priv, *broken, *p1, *p2;
    struct got g = {0};
    struct src_sink sink = {got_emit, got_fail, &g};
    struct src_opts o = {.author_name = "Ada", .github_token = "tok123"};
    struct src_net net = {.http = fast_client()};
    struct tw_err err = TW_ERR_INIT;
    FILE *p;
    CHECK(h && repo && net.http);
    base = httpd_test_base(h);
    net.github_api = base;
    snprintf(clone, sizeof(clone), "file://%s", repo);
    snprintf(cmd, sizeof(cmd), "git -C '%s' rev-parse HEAD", repo);
    p = popen(cmd, "r");
    CHECK(p && fgets(sha, sizeof(sha), p));
    pclose(p);
    sha[strcspn(sha, "\n")] = 0;

    /* page 1: the recorded repository (cloned from our local copy) and a fork of it */
    r1 = fixture_repo(clone);
    CHECK(r1 != NULL);
    fork = cJSON_Duplicate(r1, 1);
    cJSON_ReplaceItemInObject(fork, "fork", cJSON_CreateTrue());
    cJSON_ReplaceItemInObject(fork, "html_url",
                              cJSON_CreateString("https://github.com/ada/forked"));
    p1 = cJSON_CreateArray();
    cJSON_AddItemToArray(p1, cJSON_Duplicate(r1, 1));
    cJSON_AddItemToArray(p1, fork);
    /* page 2: a private repository and one whose clone fails */
    priv = cJSON_Duplicate(r1, 1);
    cJSON_ReplaceItemInObject(priv, "private", cJSON_CreateTrue());
    broken = cJSON_Duplicate(r1, 1);
    cJSON_ReplaceItemInObject(broken, "clone_url",
                              cJSON_CreateString("file:///nonexistent/twin-test-repo"));
    cJSON_ReplaceItemInObject(broken, "html_url",
                              cJSON_CreateString("https://github.com/ada/broken"));
    p2 = cJSON_CreateArray();
    cJSON_AddItemToArray(p2, priv);
    cJSON_AddItemToArray(p2, broken);
    routes[0].body = json_print(p1);
    snprintf(next, sizeof(next), "%s/users/ada/repos?per_page=100&type=owner&page=2", base);
    routes[0].headers = fixture_link(next);
    CHECK(routes[0].headers != NULL);
    routes[1].body = json_print(p2);
    routes[2].body = json_print(r1);
    cJSON_Delete(p1);
    cJSON_Delete(p2);
    cJSON_Delete(r1);
    httpd_test_set_routes(h, routes, 4);

    CHECK_OK(src_crawl_url("https://github.com/ada", &o, &net, &sink, &err), &err);
    /* README.md and src/app.py of the one public non-fork repository; the lock file skipped */
    CHECK_EQ_INT(g.n, 2);
    CHECK(find_url(&g, fmt("https://github.com/octokit-fixture-org/hello-world/blob/%s/README.md",
                           sha)) >= 0);
    CHECK(find_url(&g, fmt("https://github.com/octokit-fixture-org/hello-world/blob/%s/src/app.py",
                           sha)) >= 0);
    CHECK_EQ_STR(g.title[0], "hello-world/README.md");
    CHECK_EQ_STR(g.content[0], "Hello World!\n");
    CHECK_EQ_STR(g.platform[0], "github");
    CHECK_EQ_INT(g.n_fail, 1);
    CHECK(find_fail(&g, "https://github.com/ada/broken", "cannot clone") >= 0);
    CHECK_EQ_INT(httpd_test_hits(h, "/users/ada/repos?per_page=100&type=owner&page=2"), 1);
    httpd_test_last_headers(h, ua, auth);
    CHECK_EQ_STR(ua, "twin/test");
    CHECK_EQ_STR(auth, "Bearer tok123");
    got_release(&g);

    /* one repository by URL: GET /repos/<owner>/<repo> */
    CHECK_OK(src_crawl_url("https://github.com/octokit-fixture-org/hello-world", &o, &net, &sink,
                           &err),
             &err);
    CHECK_EQ_INT(g.n, 2);
    got_release(&g);
    CHECK_EQ_INT(src_crawl_url("https://github.com/", &o, &net, &sink, &err), TW_EINVAL);
    tw_err_clear(&err);
    o.github_token = NULL;
    CHECK_EQ_INT(src_crawl_url("https://github.com/limited", &o, &net, &sink, &err), TW_EHTTP);
    CHECK_MSG(strstr(err.msg, "rate limit") && strstr(err.msg, "TWIN_GITHUB_TOKEN") &&
                  strstr(err.msg, "403"),
              "%s", err.msg);
    http_client_free(net.http);
    httpd_test_stop(h);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
