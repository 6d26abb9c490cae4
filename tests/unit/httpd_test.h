/* httpd_test.h - a small HTTP server for tests (libmicrohttpd), bound to 127.0.0.1 on a free port.
 *
 * It serves a table of routes that the test owns and may change while it runs (the server reads
 * the table on each request, under a lock). A route matches the request path exactly, or path
 * and query when the route's path has a '?'; a route path ending in '*' matches by prefix.
 * Unmatched requests get 404. Each route counts its hits. Thread-safety: the server answers on its
 * own threads; the test reads counts through httpd_test_hits().
 */
#ifndef TW_HTTPD_TEST_H
#define TW_HTTPD_TEST_H

#include <stddef.h>

struct httpd_route {
    const char *path;         // "/feed", "/api/v1/archive?sort=new&offset=0&limit=2", "/r/*"
    int status;               // 0 means 200
    const char *content_type; // NULL: no Content-Type header
    const char *body;         // NULL: empty (or 'file')
    size_t body_len;          // 0: strlen(body)
    const char *file;         // serve this file's bytes instead of 'body'
    const char *headers;      // extra header lines "Name: value\n..." or NULL
    int delay_ms;             // wait before answering
    int fail_times;           // the first N hits answer fail_status with fail_headers
    int fail_status;
    const char *fail_headers;
    int hits;                 // requests seen (written by the server)
};

struct httpd_test;

/* Starts the server over routes[0..n_routes). Returns NULL on failure (message on stderr). */
struct httpd_test *httpd_test_start(struct httpd_route *routes, size_t n_routes);
/* Replaces the route table (under the server's lock). */
void httpd_test_set_routes(struct httpd_test *h, struct httpd_route *routes, size_t n_routes);
int httpd_test_port(const struct httpd_test *h);
/* "http://127.0.0.1:PORT" into a static buffer per server. */
const char *httpd_test_base(const struct httpd_test *h);
int httpd_test_hits(struct httpd_test *h, const char *path);
/* User-Agent and Authorization of the last request ("" if absent). */
void httpd_test_last_headers(struct httpd_test *h, char ua[256], char auth[256]);
void httpd_test_stop(struct httpd_test *h);

#endif
