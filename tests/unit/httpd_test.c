/* httpd_test.c - the tests' HTTP server (see httpd_test.h). Test code: plain malloc is fine. */
#include "httpd_test.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct httpd_test {
    struct MHD_Daemon *d;
    struct httpd_route *routes;
    size_t n_routes;
    pthread_mutex_t lock;
    int port;
    char base[64];
    char last_ua[256];
    char last_auth[256];
};

static int route_matches(const struct httpd_route *r, const char *path, const char *full)
{
    size_t n = strlen(r->path);
    if (n && r->path[n - 1] == '*')
        return !strncmp(full, r->path, n - 1);
    if (strchr(r->path, '?'))
        return !strcmp(full, r->path);
    return !strcmp(path, r->path);
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    char *q = cls;
    size_t n = strlen(q);
    (void)kind;
    snprintf(q + n, 2048 - n, "%s%s%s%s", n ? "&" : "?", key, value ? "=" : "", value ? value : "");
    return MHD_YES;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        *len = (size_t)n;
    return buf;
}

static void add_headers(struct MHD_Response *resp, const char *lines)
{
    char name[256], value[2048];
    const char *p = lines;
    while (p && *p) {
        const char *eol = strchr(p, '\n'), *colon = strchr(p, ':');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (colon && colon < p + len && (size_t)(colon - p) < sizeof(name)) {
            const char *v = colon + 1;
            size_t vlen;
            memcpy(name, p, (size_t)(colon - p));
            name[colon - p] = 0;
            while (*v == ' ')
                v++;
            vlen = (size_t)(p + len - v);
            if (vlen >= sizeof(value))
                vlen = sizeof(value) - 1;
            memcpy(value, v, vlen);
            value[vlen] = 0;
            MHD_add_response_header(resp, name, value);
        }
        p = eol ? eol + 1 : NULL;
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct httpd_test *h = cls;
    struct httpd_route r = {0};
    struct MHD_Response *resp;
    char full[4096], query[2048] = "";
    int found = 0, failing = 0;
    char *body = NULL;
    size_t body_len = 0;
    enum MHD_Result ret;
    (void)method, (void)version, (void)upload_data, (void)upload_data_size, (void)con_cls;

    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, query);
    snprintf(full, sizeof(full), "%s%s", url, query);
    pthread_mutex_lock(&h->lock);
    {
        const char *ua = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "User-Agent");
        const char *au = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        snprintf(h->last_ua, sizeof(h->last_ua), "%s", ua ? ua : "");
        snprintf(h->last_auth, sizeof(h->last_auth), "%s", au ? au : "");
    }
    for (size_t i = 0; i < h->n_routes; i++) {
        if (h->routes[i].path && route_matches(&h->routes[i], url, full)) {
            h->routes[i].hits++;
            failing = h->routes[i].hits <= h->routes[i].fail_times;
            r = h->routes[i];
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&h->lock);
    if (found && r.delay_ms > 0) {
        struct timespec ts = {r.delay_ms / 1000, (long)(r.delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (!found) {
        static const char nf[] = "not found";
        resp = MHD_create_response_from_buffer(sizeof(nf) - 1, (void *)nf, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, "Content-Type", "text/plain");
        ret = MHD_queue_response(conn, 404, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    if (failing) {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        add_headers(resp, r.fail_headers);
        ret = MHD_queue_response(conn, (unsigned)(r.fail_status ? r.fail_status : 503), resp);
        MHD_destroy_response(resp);
        return ret;
    }
    if (r.file) {
        body = read_all(r.file, &body_len);
        if (!body) {
            fprintf(stderr, "httpd_test: cannot read '%s'\n", r.file);
            body = strdup("");
            body_len = 0;
        }
    } else if (r.body) {
        body_len = r.body_len ? r.body_len : strlen(r.body);
        body = malloc(body_len + 1);
        memcpy(body, r.body, body_len);
    }
    resp = MHD_create_response_from_buffer(body_len, body ? body : (void *)"",
                                           body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (r.content_type)
        MHD_add_response_header(resp, "Content-Type", r.content_type);
    add_headers(resp, r.headers);
    ret = MHD_queue_response(conn, (unsigned)(r.status ? r.status : 200), resp);
    MHD_destroy_response(resp);
    return ret;
}

struct httpd_test *httpd_test_start(struct httpd_route *routes, size_t n_routes)
{
    struct httpd_test *h = calloc(1, sizeof(*h));
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;
    if (!h)
        return NULL;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h->routes = routes;
    h->n_routes = n_routes;
    pthread_mutex_init(&h->lock, NULL);
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_ERROR_LOG,
                            0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, &sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!h->d) {
        fprintf(stderr, "httpd_test: cannot start server on 127.0.0.1\n");
        pthread_mutex_destroy(&h->lock);
        free(h);
        return NULL;
    }
    info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    snprintf(h->base, sizeof(h->base), "http://127.0.0.1:%d", h->port);
    return h;
}

void httpd_test_set_routes(struct httpd_test *h, struct httpd_route *routes, size_t n_routes)
{
    pthread_mutex_lock(&h->lock);
    h->routes = routes;
    h->n_routes = n_routes;
    pthread_mutex_unlock(&h->lock);
}

int httpd_test_port(const struct httpd_test *h)
{
    return h->port;
}

const char *httpd_test_base(const struct httpd_test *h)
{
    return h->base;
}

int httpd_test_hits(struct httpd_test *h, const char *path)
{
    int n = 0;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->n_routes; i++)
        if (h->routes[i].path && !strcmp(h->routes[i].path, path))
            n += h->routes[i].hits;
    pthread_mutex_unlock(&h->lock);
    return n;
}

void httpd_test_last_headers(struct httpd_test *h, char ua[256], char auth[256])
{
    pthread_mutex_lock(&h->lock);
    memcpy(ua, h->last_ua, 256);
    memcpy(auth, h->last_auth, 256);
    pthread_mutex_unlock(&h->lock);
}

void httpd_test_stop(struct httpd_test *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
