/* test_http.c - the HTTP client and robots.txt, against a real server on 127.0.0.1. */
#include "test.h"

#include "httpd_test.h"

#include "base/mem.h"
#include "collect/collect.h"

#include <stdlib.h>
#include <time.h>
#include <zlib.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A fast client for tests: no rate limit to speak of, short waits. */
static struct http_client *fast_client(long timeout_ms)
{
    struct http_opts o;
    struct http_client *c = NULL;
    struct tw_err err = TW_ERR_INIT;
    http_opts_default(&o);
    o.user_agent = "twin/test";
    o.rate = 1000;
    o.backoff_ms = 50;
    o.retry_max_ms = 1500;
    o.timeout_ms = timeout_ms;
    o.connect_timeout_ms = 5000;
    if (http_client_new(&o, &c, &err) < 0)
        fprintf(stderr, "http_client_new: %s\n", err.msg);
    return c;
}

static char url_buf[8][512];
static int url_slot;
static const char *U(struct httpd_test *h, const char *path)
{
    char *b = url_buf[url_slot++ & 7];
    snprintf(b, 512, "%s%s", httpd_test_base(h), path);
    return b;
}

/* ---- robots.txt ---- */

static const char robots_txt[] = "# comment\n"
                                 "User-agent: googlebot\n"
                                 "Disallow: /\n"
                                 "\n"
                                 "User-agent: *\n"
                                 "Disallow: /private/\n"
                                 "Allow: /private/open\n"
                                 "Disallow: /*.pdf$\n"
                                 "Disallow: /tmp*/cache\n"
                                 "Sitemap: https://example.com/sitemap.xml\n";

TEST(robots_longest_match_and_wildcards)
{
    struct robots *r = NULL;
    struct tw_err err = TW_ERR_INIT;
    CHECK_OK(robots_parse(robots_txt, sizeof(robots_txt) - 1, "twin", &r, &err), &err);
    CHECK(robots_allowed(r, "/"));
    CHECK(robots_allowed(r, "/blog/post"));
    CHECK(!robots_allowed(r, "/private/"));
    CHECK(!robots_allowed(r, "/private/x"));
    CHECK(robots_allowed(r, "/private/open"));    /* longer Allow wins */
    CHECK(robots_allowed(r, "/private/opener")); /* prefix match */
    CHECK(!robots_allowed(r, "/docs/a.pdf"));
    CHECK(robots_allowed(r, "/docs/a.pdf?x=1")); /* '$' anchors the end */
    CHECK(!robots_allowed(r, "/tmp123/cache/x"));
    CHECK(robots_allowed(r, "/tmp123/other"));
    CHECK(robots_allowed(r, "/robots.txt"));
    robots_free(r);
}

TEST(robots_agent_group_wins_over_star)
{
    static const char junk[] = "User-agent: *\nDisallow:\n\x01\xff junk\n";
    static const char txt[] = "User-agent: *\nDisallow: /\n\n"
                              "User-agent: other\nUser-agent: Twin\nDisallow: /no\nAllow: /\n";
    struct robots *r = NULL;
    struct tw_err err = TW_ERR_INIT;
    CHECK_OK(robots_parse(txt, sizeof(txt) - 1, "twin", &r, &err), &err);
    CHECK(robots_allowed(r, "/yes"));
    CHECK(!robots_allowed(r, "/no/x"));
    robots_free(r);
    /* A bot named differently falls back to the '*' group. */
    CHECK_OK(robots_parse(txt, sizeof(txt) - 1, "twinkle", &r, &err), &err);
    CHECK(!robots_allowed(r, "/yes"));
    robots_free(r);
    /* Empty Disallow allows everything; garbage is skipped. */
    CHECK_OK(robots_parse(junk, sizeof(junk) - 1, "twin", &r, &err), &err);
    CHECK(robots_allowed(r, "/anything"));
    robots_free(r);
}

TEST(robots_empty_own_group_and_crawl_delay)
{
    /* A group naming us with an empty Disallow allows everything, whatever '*' says. */
    static const char txt[] = "User-agent: *\nDisallow: /\nCrawl-delay: 10\n\n"
                              "User-agent: twin\nDisallow:\nCrawl-delay: 0.25\n";
    static const char star[] = "User-agent: *\nCrawl-delay: 99999\nDisallow: /x\n";
    struct robots *r = NULL;
    struct tw_err err = TW_ERR_INIT;
    CHECK_OK(robots_parse(txt, sizeof(txt) - 1, "twin", &r, &err), &err);
    CHECK(robots_allowed(r, "/anything"));
    CHECK_EQ_INT(robots_crawl_delay_ms(r), 250);
    robots_free(r);
    CHECK_OK(robots_parse(txt, sizeof(txt) - 1, "other", &r, &err), &err);
    CHECK(!robots_allowed(r, "/anything"));
    CHECK_EQ_INT(robots_crawl_delay_ms(r), 10000);
    robots_free(r);
    CHECK_OK(robots_parse(star, sizeof(star) - 1, "twin", &r, &err), &err);
    CHECK_EQ_INT(robots_crawl_delay_ms(r), 60000); /* capped */
    CHECK(!robots_allowed(r, "/x/y"));
    robots_free(r);
}

TEST(retry_after_and_link_header)
{
    char *next;
    CHECK_EQ_INT(http_retry_after_ms("2", 0), 2000);
    CHECK_EQ_INT(http_retry_after_ms(" 0 ", 0), 0);
    CHECK_EQ_INT(http_retry_after_ms("soon", 0), -1);
    CHECK_EQ_INT(http_retry_after_ms("99999999999", 0), -1);
    /* HTTP date: Tue, 10 Oct 2017 16:00:00 GMT = 1507651200 */
    CHECK_EQ_INT(http_retry_after_ms("Tue, 10 Oct 2017 16:00:30 GMT", 1507651200), 30000);
    CHECK_EQ_INT(http_retry_after_ms("Tue, 10 Oct 2017 16:00:00 GMT", 1507651300), 0);
    /* The Link header of octokit's recorded pagination (page 2 of 5). */
    next = http_link_next("<https://api.github.com/repositories/1000/issues?per_page=3&page=1>; "
                          "rel=\"prev\", <https://api.github.com/repositories/1000/issues?per_"
                          "page=3&page=3>; rel=\"next\", <https://api.github.com/repositories/"
                          "1000/issues?per_page=3&page=5>; rel=\"last\"");
    CHECK_EQ_STR(next, "https://api.github.com/repositories/1000/issues?per_page=3&page=3");
    tw_free(next);
    CHECK(http_link_next("<https://x/?page=1>; rel=\"prev\", <https://x/?page=1>; rel=\"first\"") ==
          NULL);
    CHECK(http_link_next(NULL) == NULL);
    CHECK(http_link_next("garbage <unterminated") == NULL);
}

/* ---- the client against a server ---- */

static const char robots_body[] = "User-agent: *\nDisallow: /secret\n";

TEST(http_get_text_robots_and_user_agent)
{
    struct httpd_route routes[] = {
        {.path = "/robots.txt", .content_type = "text/plain", .body = robots_body},
        {.path = "/page", .content_type = "text/html; charset=UTF-8", .body = "<p>hi</p>"},
        {.path = "/secret", .content_type = "text/html", .body = "<p>no</p>"},
        {.path = "/missing", .status = 404, .content_type = "text/html", .body = "gone"},
    };
    struct httpd_test *h = httpd_test_start(routes, sizeof(routes) / sizeof(routes[0]));
    struct http_client *c = fast_client(5000);
    struct http_response res;
    struct tw_err err = TW_ERR_INIT;
    char ua[256], auth[256];
    const char *hdrs[] = {"Authorization: Bearer tok", NULL};
    CHECK(h && c);
    CHECK_OK(http_get(c, U(h, "/page"), hdrs, 0, &res, &err), &err);
    CHECK_EQ_INT(res.status, 200);
    CHECK_EQ_STR(res.body, "<p>hi</p>");
    CHECK_EQ_INT(res.body_len, 9);
    CHECK_EQ_STR(res.content_type, "text/html");
    CHECK_EQ_STR(res.url, U(h, "/page"));
    http_response_release(&res);
    httpd_test_last_headers(h, ua, auth);
    CHECK_EQ_STR(ua, "twin/test");
    CHECK_EQ_STR(auth, "Bearer tok");

    CHECK_EQ_INT(http_get(c, U(h, "/secret"), NULL, 0, &res, &err), TW_EBLOCKED);
    CHECK_MSG(strstr(err.msg, "disallowed by robots.txt") != NULL, "%s", err.msg);
    CHECK_EQ_INT(httpd_test_hits(h, "/secret"), 0);
    /* robots.txt was fetched once for the host and cached */
    CHECK_EQ_INT(httpd_test_hits(h, "/robots.txt"), 1);
    /* ... and is not asked for APIs that say so */
    tw_err_clear(&err);
    CHECK_OK(http_get(c, U(h, "/secret"), NULL, HTTP_GET_NO_ROBOTS, &res, &err), &err);
    http_response_release(&res);

    tw_err_clear(&err);
    CHECK_EQ_INT(http_get(c, U(h, "/missing"), NULL, 0, &res, &err), TW_EHTTP);
    CHECK_EQ_INT(res.status, 404);
    CHECK_MSG(strstr(err.msg, "404") != NULL, "%s", err.msg);
    http_client_free(c);
    httpd_test_stop(h);
}

TEST(http_rejects_other_schemes)
{
    struct http_client *c = fast_client(5000);
    struct http_response res;
    struct tw_err err = TW_ERR_INIT;
    CHECK_EQ_INT(http_get(c, "file:///etc/passwd", NULL, 0, &res, &err), TW_EINVAL);
    CHECK_MSG(strstr(err.msg, "scheme 'file' not supported") != NULL, "%s", err.msg);
    tw_err_clear(&err);
    CHECK_EQ_INT(http_get(c, "ftp://127.0.0.1/x", NULL, 0, &res, &err), TW_EINVAL);
    tw_err_clear(&err);
    CHECK_EQ_INT(http_get(c, "not a url", NULL, 0, &res, &err), TW_EINVAL);
    CHECK_EQ_INT(http_client_requests(c), 0);
    http_client_free(c);
}

TEST(http_retries_429_honouring_retry_after)
{
    struct httpd_route routes[] = {
        {.path = "/robots.txt", .status = 404},
        {.path = "/busy", .content_type = "text/plain", .body = "done", .fail_times = 1,
         .fail_status = 429, .fail_headers = "Retry-After: 1\n"},
        {.path = "/flaky", .content_type = "text/plain", .body = "ok", .fail_times = 2,
         .fail_status = 503},
        {.path = "/down", .content_type = "text/plain", .body = "never", .fail_times = 100,
         .fail_status = 500},
        {.path = "/capped", .content_type = "text/plain", .body = "capped", .fail_times = 1,
         .fail_status = 429, .fail_headers = "Retry-After: 100000\n"},
    };
    struct httpd_test *h = httpd_test_start(routes, sizeof(routes) / sizeof(routes[0]));
    struct http_client *c = fast_client(5000);
    struct http_response res;
    struct tw_err err = TW_ERR_INIT;
    long long t0;
    CHECK(h && c);
    t0 = now_ms();
    CHECK_OK(http_get(c, U(h, "/busy"), NULL, 0, &res, &err), &err);
    CHECK_EQ_STR(res.body, "done");
    http_response_release(&res);
    CHECK_EQ_INT(httpd_test_hits(h, "/busy"), 2);
    CHECK_MSG(now_ms() - t0 >= 950, "waited only %lld ms for Retry-After: 1", now_ms() - t0);

    CHECK_OK(http_get(c, U(h, "/flaky"), NULL, 0, &res, &err), &err); /* backoff 50, 100 ms */
    CHECK_EQ_STR(res.body, "ok");
    http_response_release(&res);
    CHECK_EQ_INT(httpd_test_hits(h, "/flaky"), 3);

    CHECK_EQ_INT(http_get(c, U(h, "/down"), NULL, 0, &res, &err), TW_EHTTP);
    CHECK_EQ_INT(res.status, 500);
    CHECK_EQ_INT(httpd_test_hits(h, "/down"), 4); /* 1 + max_retries (3) */

    /* Retry-After past the cap (1.5 s here) waits the cap, not a day. */
    tw_err_clear(&err);
    t0 = now_ms();
    CHECK_OK(http_get(c, U(h, "/capped"), NULL, 0, &res, &err), &err);
    http_response_release(&res);
    CHECK_MSG(now_ms() - t0 >= 1450, "waited %lld ms", now_ms() - t0);
    http_client_free(c);
    httpd_test_stop(h);
}

TEST(http_redirect_chain_and_limit)
{
    static char loc[8][64];
    struct httpd_route routes[10] = {{.path = "/robots.txt", .status = 404}};
    struct httpd_test *h;
    struct http_client *c = fast_client(5000);
    struct http_response res;
    struct tw_err err = TW_ERR_INIT;
    /* /r6 -> /r5 -> ... -> /r1 -> /r0 (200): /r5 is five hops away, /r6 six */
    h = httpd_test_start(routes, 0);
    CHECK(h && c);
    for (int i = 0; i <= 6; i++) {
        static char paths[8][16];
        snprintf(paths[i], sizeof(paths[i]), "/r%d", i);
        routes[i + 1].path = paths[i];
        if (i == 0) {
            routes[i + 1].content_type = "text/plain";
            routes[i + 1].body = "arrived";
        } else {
            routes[i + 1].status = i % 2 ? 302 : 301;
            /* alternate absolute and relative Location values */
            if (i % 2)
                snprintf(loc[i], sizeof(loc[i]), "Location: /r%d\n", i - 1);
            else
                snprintf(loc[i], sizeof(loc[i]), "Location: %s/r%d\n", httpd_test_base(h),
                         i - 1);
            routes[i + 1].headers = loc[i];
        }
    }
    httpd_test_set_routes(h, routes, 8);
    CHECK_OK(http_get(c, U(h, "/r5"), NULL, 0, &res, &err), &err);
    CHECK_EQ_STR(res.body, "arrived");
    CHECK_EQ_STR(res.url, U(h, "/r0"));
    http_response_release(&res);
    CHECK_EQ_INT(http_get(c, U(h, "/r6"), NULL, 0, &res, &err), TW_ELIMIT);
    CHECK_MSG(strstr(err.msg, "more than 5 redirects") != NULL, "%s", err.msg);
    CHECK_EQ_INT(httpd_test_hits(h, "/r0"), 1); /* the sixth hop was never taken */
    http_client_free(c);
    httpd_test_stop(h);
}

TEST(http_redirect_elsewhere_drops_credentials)
{
    static char loc[128];
    struct httpd_route rb[] = {
        {.path = "/robots.txt", .status = 404},
        {.path = "/land", .content_type = "text/plain", .body = "landed"},
    };
    struct httpd_route ra[] = {
        {.path = "/robots.txt", .status = 404},
        {.path = "/hop", .status = 302, .headers = loc},
        {.path = "/self", .status = 301, .headers = "Location: /own\n"},
        {.path = "/own", .content_type = "text/plain", .body = "own"},
    };
    struct httpd_test *b = httpd_test_start(rb, 2), *a = httpd_test_start(ra, 4);
    struct http_client *c = fast_client(5000);
    struct http_response res;
    struct tw_err err = TW_ERR_INIT;
    const char *hdrs[] = {"Authorization: Bearer secret", NULL};
    char ua[256], auth[256];
    CHECK(a && b && c);
    snprintf(loc, sizeof(loc), "Location: %s/land\n", httpd_test_base(b));
    CHECK_OK(http_get(c, U(a, "/hop"), hdrs, 0, &res, &err), &err);
    CHECK_EQ_STR(res.body, "landed");
    http_response_release(&res);
    httpd_test_last_headers(b, ua, auth);
    CHECK_EQ_STR(auth, ""); /* the other origin never saw the token */
    CHECK_EQ_STR(ua, "twin/test");
    CHECK_OK(http_get(c, U(a, "/self"), hdrs, 0, &res, &err), &err);
    CHECK_EQ_STR(res.body, "own");
    http_response_release(&res);
    httpd_test_last_headers(a, ua, auth);
    CHECK_EQ_STR(auth, "Bearer secret"); /* same origin: kept */
    http_client_free(c);
    httpd_test_stop(a);
    httpd_test_stop(b);
}

TEST(http_redirect_to_file_scheme_rejected)
{
    struct httpd_route routes[] = {
        {.path = "/robots.txt", .status = 404},
        {.path = "/evil", .status = 302, .headers = "Location: file:///etc/passwd\n"},
    };
    struct httpd_test *h = httpd_test_start(routes, 2);
    struct http_client *c = fast_client(5000);
    struct http_response res;
    struct tw_err err = TW_ERR_INIT;
    CHECK(h && c);
    CHECK(http_get(c, U(h, "/evil"), NULL, 0, &res, &err) < 0);
    CHECK_MSG(strstr(err.msg, "file") != NULL, "%s", err.msg);
    http_client_free(c);
    httpd_test_stop(h);
}

TEST(http_timeout_binary_and_size_limit)
{
    static const char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    static const char nul_text[] = "text\0with a NUL";
    static char big[70000];
    struct httpd_route routes[] = {
        {.path = "/robots.txt", .status = 404},
        {.path = "/slow", .content_type = "text/html", .body = "late", .delay_ms = 3000},
        {.path = "/img", .content_type = "image/png", .body = png, .body_len = sizeof(png) - 1},
        {.path = "/nul", .content_type = "text/plain", .body = nul_text,
         .body_len = sizeof(nul_text) - 1},
        {.path = "/big", .content_type = "text/plain", .body = big, .body_len = sizeof(big)},
    };
    struct httpd_test *h = httpd_test_start(routes, sizeof(routes) / sizeof(routes[0]));
    struct http_client *c;
    struct http_opts o;
    struct http_response res;
    struct tw_err err = TW_ERR_INIT;
    long long t0;
    memset(big, 'a', sizeof(big));
    http_opts_default(&o);
    o.rate = 0;
    o.timeout_ms = 500;
    o.max_body = 65536;
    CHECK(h);
    CHECK_OK(http_client_new(&o, &c, &err), &err);
    t0 = now_ms();
    CHECK_EQ_INT(http_get(c, U(h, "/slow"), NULL, 0, &res, &err), TW_ETIMEOUT);
    CHECK_MSG(strstr(err.msg, "timed out") != NULL, "%s", err.msg);
    CHECK_MSG(now_ms() - t0 < 2900, "took %lld ms", now_ms() - t0);
    tw_err_clear(&err);
    CHECK_EQ_INT(http_get(c, U(h, "/img"), NULL, 0, &res, &err), TW_EFORMAT);
    CHECK_MSG(strstr(err.msg, "binary response (content type 'image/png')") != NULL, "%s",
              err.msg);
    tw_err_clear(&err);
    CHECK_EQ_INT(http_get(c, U(h, "/nul"), NULL, 0, &res, &err), TW_EFORMAT);
    CHECK_MSG(strstr(err.msg, "NUL") != NULL, "%s", err.msg);
    tw_err_clear(&err);
    CHECK_OK(http_get(c, U(h, "/img"), NULL, HTTP_GET_ALLOW_BINARY, &res, &err), &err);
    CHECK_EQ_INT(res.body_len, sizeof(png) - 1);
    http_response_release(&res);
    CHECK_EQ_INT(http_get(c, U(h, "/big"), NULL, 0, &res, &err), TW_ELIMIT);
    CHECK_MSG(strstr(err.msg, "larger than 65536 bytes") != NULL, "%s", err.msg);
    http_client_free(c);
    httpd_test_stop(h);
}

TEST(http_gzip_and_rate_limit)
{
    static unsigned char gz[256];
    static const char text[] = "compressed text compressed text compressed text";
    struct httpd_route routes[] = {
        {.path = "/robots.txt", .status = 404},
        {.path = "/gz", .content_type = "text/plain", .headers = "Content-Encoding: gzip\n"},
        {.path = "/p", .content_type = "text/plain", .body = "p"},
    };
    struct httpd_test *h = httpd_test_start(routes, 3);
    struct http_client *c;
    struct http_opts o;
    struct http_response res;
    struct tw_err err = TW_ERR_INIT;
    z_stream z;
    long long t0;
    memset(&z, 0, sizeof(z));
    CHECK(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    z.next_in = (unsigned char *)text;
    z.avail_in = sizeof(text) - 1;
    z.next_out = gz;
    z.avail_out = sizeof(gz);
    CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
    routes[1].body = (const char *)gz;
    routes[1].body_len = z.total_out;
    deflateEnd(&z);
    http_opts_default(&o);
    o.rate = 5; /* 200 ms apart */
    CHECK(h);
    CHECK_OK(http_client_new(&o, &c, &err), &err);
    CHECK_OK(http_get(c, U(h, "/gz"), NULL, 0, &res, &err), &err);
    CHECK_EQ_STR(res.body, text);
    http_response_release(&res);
    t0 = now_ms();
    for (int i = 0; i < 3; i++) {
        CHECK_OK(http_get(c, U(h, "/p"), NULL, 0, &res, &err), &err);
        http_response_release(&res);
    }
    /* robots + /gz + 3 x /p = 5 requests at 5/s: the last three start >= 3 x 200 ms later */
    CHECK_MSG(now_ms() - t0 >= 590, "3 requests at 5/s took only %lld ms", now_ms() - t0);
    CHECK_EQ_INT(http_client_requests(c), 5);
    http_client_free(c);
    httpd_test_stop(h);
}

TEST(http_obeys_crawl_delay)
{
    struct httpd_route routes[] = {
        {.path = "/robots.txt", .content_type = "text/plain",
         .body = "User-agent: *\nCrawl-delay: 0.3\n"},
        {.path = "/p", .content_type = "text/plain", .body = "p"},
    };
    struct httpd_test *h = httpd_test_start(routes, 2);
    struct http_client *c = fast_client(5000); /* 1000 requests/s: the delay is robots.txt's */
    struct http_response res;
    struct tw_err err = TW_ERR_INIT;
    long long t0;
    CHECK(h && c);
    CHECK_OK(http_get(c, U(h, "/p"), NULL, 0, &res, &err), &err);
    http_response_release(&res);
    t0 = now_ms();
    for (int i = 0; i < 2; i++) {
        CHECK_OK(http_get(c, U(h, "/p"), NULL, 0, &res, &err), &err);
        http_response_release(&res);
    }
    CHECK_MSG(now_ms() - t0 >= 550, "2 requests with Crawl-delay 0.3 took %lld ms",
              now_ms() - t0);
    http_client_free(c);
    httpd_test_stop(h);
}

TEST(http_unreachable_robots_disallows)
{
    struct httpd_route routes[] = {
        {.path = "/robots.txt", .status = 500, .body = "oops"},
        {.path = "/page", .content_type = "text/html", .body = "<p>x</p>"},
    };
    struct httpd_test *h = httpd_test_start(routes, 2);
    struct http_client *c;
    struct http_opts o;
    struct http_response res;
    struct tw_err err = TW_ERR_INIT;
    http_opts_default(&o);
    o.rate = 0;
    CHECK(h);
    CHECK_OK(http_client_new(&o, &c, &err), &err);
    CHECK_EQ_INT(http_get(c, U(h, "/page"), NULL, 0, &res, &err), TW_EBLOCKED);
    CHECK_EQ_INT(httpd_test_hits(h, "/page"), 0);
    http_client_free(c);
    httpd_test_stop(h);
}

TEST(http_huge_robots_txt_is_truncated_not_fatal)
{
    static char big[700000];
    static const char head[] = "User-agent: *\nDisallow: /secret\n";
    struct httpd_route routes[] = {
        {.path = "/robots.txt", .content_type = "text/plain", .body = big},
        {.path = "/page", .content_type = "text/html", .body = "<p>x</p>"},
        {.path = "/secret", .content_type = "text/html", .body = "<p>s</p>"},
    };
    struct httpd_test *h;
    struct http_client *c = fast_client(5000);
    struct http_response res;
    struct tw_err err = TW_ERR_INIT;
    memset(big, '#', sizeof(big) - 1);
    memcpy(big, head, sizeof(head) - 1);
    for (size_t i = sizeof(head) + 80; i < sizeof(big) - 1; i += 80)
        big[i] = '\n';
    h = httpd_test_start(routes, 3);
    CHECK(h && c);
    CHECK_OK(http_get(c, U(h, "/page"), NULL, 0, &res, &err), &err);
    http_response_release(&res);
    CHECK_EQ_INT(http_get(c, U(h, "/secret"), NULL, 0, &res, &err), TW_EBLOCKED);
    http_client_free(c);
    httpd_test_stop(h);
}

TEST(http_survives_allocation_failures)
{
    struct httpd_route routes[] = {
        {.path = "/robots.txt", .content_type = "text/plain", .body = robots_body},
        {.path = "/a", .status = 302, .headers = "Location: /b\n"},
        {.path = "/b", .content_type = "text/html", .body = "<p>b</p>"},
    };
    struct httpd_test *h = httpd_test_start(routes, 3);
    int ok = 0;
    CHECK(h);
    for (long n = 0; n < 200 && !ok; n++) {
        struct http_client *c = NULL;
        struct http_opts o;
        struct http_response res;
        struct tw_err err = TW_ERR_INIT;
        int rc;
        http_opts_default(&o);
        o.rate = 0;
        tw_mem_fail_after(n);
        rc = http_client_new(&o, &c, &err);
        if (rc == 0) {
            rc = http_get(c, U(h, "/a"), NULL, 0, &res, &err);
            if (rc == 0) {
                ok = !strcmp(res.body, "<p>b</p>");
                http_response_release(&res);
            }
            http_client_free(c);
        }
        tw_mem_fail_after(-1);
        CHECK_MSG(rc == 0 || rc == TW_ENOMEM, "allocation %ld: %d %s", n, rc, err.msg);
    }
    CHECK(ok);
    httpd_test_stop(h);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
