/* httpd_serve.c - the e2e tests' HTTP server: serves a routes file on 127.0.0.1 until killed.
 *
 *     httpd-serve ROUTES PORTFILE
 *
 * Writes the chosen port to PORTFILE once listening. ROUTES has one route per line, fields
 * separated by tabs ('#' starts a comment line):
 *
 *     PATH  STATUS  CONTENT-TYPE  BODY  [DELAY_MS  FAIL_TIMES  FAIL_STATUS  FAIL_HEADERS  HEADERS]
 *
 * (trailing fields may be left out; "-" or 0 means none). BODY is a file path, "=text" for inline text, or "-" for empty. HEADERS and FAIL_HEADERS are
 * "Name: value" lines joined with '|' ("-" for none). "@BASE@" in inline bodies and headers
 * becomes http://127.0.0.1:PORT. Files are read on each request, so they may be written later.
 */
#include "httpd_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ROUTES 256

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static char *subst(const char *s, const char *base)
{
    size_t n = strlen(s) + 1, bl = strlen(base);
    char *out;
    size_t o = 0;
    for (const char *p = strstr(s, "@BASE@"); p; p = strstr(p + 6, "@BASE@"))
        n += bl;
    out = malloc(n);
    for (const char *p = s; *p;) {
        if (!strncmp(p, "@BASE@", 6)) {
            memcpy(out + o, base, bl);
            o += bl;
            p += 6;
        } else if (*p == '|') {
            out[o++] = '\n';
            p++;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = 0;
    return out;
}

int main(int argc, char **argv)
{
    static struct httpd_route routes[MAX_ROUTES];
    static char *fields[MAX_ROUTES][9];
    size_t n = 0;
    char line[8192];
    FILE *f, *pf;
    struct httpd_test *h;

    if (argc != 3) {
        fprintf(stderr, "usage: httpd-serve ROUTES PORTFILE\n");
        return 2;
    }
    f = fopen(argv[1], "r");
    if (!f) {
        fprintf(stderr, "httpd-serve: cannot open '%s'\n", argv[1]);
        return 1;
    }
    while (n < MAX_ROUTES && fgets(line, sizeof(line), f)) {
        char *save = NULL, *tok;
        int k = 0;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        for (tok = strtok_r(line, "\t", &save); tok && k < 9; tok = strtok_r(NULL, "\t", &save))
            fields[n][k++] = strdup(tok);
        if (k < 4) {
            fprintf(stderr, "httpd-serve: route line needs 4 fields: %s\n", line);
            return 1;
        }
        n++;
    }
    fclose(f);
    h = httpd_test_start(routes, 0);
    if (!h)
        return 1;
    for (size_t i = 0; i < n; i++) {
        char **fl = fields[i];
        struct httpd_route *r = &routes[i];
        r->path = fl[0];
        r->status = (int)strtol(fl[1], NULL, 10);
        r->content_type = strcmp(fl[2], "-") ? fl[2] : NULL;
        if (fl[3][0] == '=')
            r->body = subst(fl[3] + 1, httpd_test_base(h));
        else if (strcmp(fl[3], "-"))
            r->file = fl[3];
        if (fl[4])
            r->delay_ms = (int)strtol(fl[4], NULL, 10);
        if (fl[5] && fl[6]) {
            r->fail_times = (int)strtol(fl[5], NULL, 10);
            r->fail_status = (int)strtol(fl[6], NULL, 10);
        }
        if (fl[7] && strcmp(fl[7], "-"))
            r->fail_headers = subst(fl[7], httpd_test_base(h));
        if (fl[8] && strcmp(fl[8], "-"))
            r->headers = subst(fl[8], httpd_test_base(h));
    }
    httpd_test_set_routes(h, routes, n);
    pf = fopen(argv[2], "w");
    if (!pf || fprintf(pf, "%d\n", httpd_test_port(h)) < 0 || fclose(pf) != 0) {
        fprintf(stderr, "httpd-serve: cannot write '%s'\n", argv[2]);
        httpd_test_stop(h);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop)
        pause();
    httpd_test_stop(h);
    return 0;
}
