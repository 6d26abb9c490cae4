/* cmd_crawl.c - `twin crawl URL...`: collect a person's writing from the web into the store. */
#include "cli/cli.h"
#include "cli/cli_store.h"

#include "base/mem.h"
#include "collect/collect.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: twin crawl [--data DIR] [--config FILE] --author \"Full Name\" [--handle H]\n"
            "                  [--rate R] [--timeout SECONDS] [--platform P] URL...\n\n"
            "Collects documents from each URL into the document store:\n"
            "  https://medium.com/@user          the author's Medium feed (latest posts)\n"
            "  https://medium.com/@user/slug     one Medium article\n"
            "  https://pub.substack.com          a Substack: feed, archive API, post pages\n"
            "  https://github.com/user[/repo]    public non-fork repositories, one code document\n"
            "                                    per text file (libgit2 clone)\n"
            "  any other URL                     an RSS/Atom feed or an article page\n\n"
            "  --author NAME    whose writing this is (required; or `author` in twin.conf)\n"
            "  --handle H       the author's handle on the platform\n"
            "  --rate R         requests per second per host (default 1; crawl.rate)\n"
            "  --timeout S      seconds per request (default 30; crawl.timeout)\n"
            "  --platform P     medium|substack|github|web: treat every URL as that source\n"
            "                   (a Substack on its own domain needs --platform substack)\n\n"
            "robots.txt is obeyed; 429 and 5xx answers are retried with backoff. GitHub: a token\n"
            "in github.token or TWIN_GITHUB_TOKEN raises the API rate limit; TWIN_GITHUB_API\n"
            "changes the API base URL. Prints one line per failed item or URL and a summary\n"
            "`imported N, updated N, unchanged N, failed N`; exits 1 if anything failed.\n");
}

/* The code documents one repository (one source) yielded in this run: a repository is read
 * whole at HEAD, so its documents of earlier commits and deleted files can go. */
struct repo_seen {
    char *source;
    char **urls;
    size_t n;
    int incomplete; // the source reported a failure: keep what it has
};

struct crawl_counts {
    struct doc_store *store;
    long imported, updated, unchanged, failed, removed;
    struct repo_seen *repos; // for the URL being crawled
    size_t n_repos;
    int oom;
};

static void repos_release(struct crawl_counts *c)
{
    for (size_t i = 0; i < c->n_repos; i++) {
        for (size_t j = 0; j < c->repos[i].n; j++)
            tw_free(c->repos[i].urls[j]);
        tw_free(c->repos[i].urls);
        tw_free(c->repos[i].source);
    }
    tw_free(c->repos);
    c->repos = NULL;
    c->n_repos = 0;
    c->oom = 0;
}

static void repos_add(struct crawl_counts *c, const char *source, const char *url)
{
    struct repo_seen *r = NULL;
    char **urls;
    for (size_t i = c->n_repos; i-- > 0;) {
        if (!strcmp(c->repos[i].source, source)) {
            r = &c->repos[i];
            break;
        }
    }
    if (!r) {
        struct repo_seen *p = tw_reallocarray(c->repos, c->n_repos + 1, sizeof(*p));
        if (!p) {
            c->oom = 1;
            return;
        }
        c->repos = p;
        r = &p[c->n_repos];
        memset(r, 0, sizeof(*r));
        r->source = tw_strdup(source);
        if (!r->source) {
            c->oom = 1;
            return;
        }
        c->n_repos++;
    }
    urls = tw_reallocarray(r->urls, r->n + 1, sizeof(*urls));
    if (!urls) {
        c->oom = 1;
        return;
    }
    r->urls = urls;
    urls[r->n] = tw_strdup(url);
    if (!urls[r->n]) {
        c->oom = 1;
        return;
    }
    r->n++;
}

/* After a URL crawled without error: each repository's documents not seen this time go. */
static void repos_prune(struct crawl_counts *c, const char *url)
{
    size_t removed = 0;
    if (c->oom) {
        cli_fail("crawl: %s: out of memory; earlier commits' documents were kept", url);
        return;
    }
    for (size_t i = 0; i < c->n_repos; i++) {
        struct tw_err err = TW_ERR_INIT;
        size_t n = 0;
        if (c->repos[i].incomplete)
            continue;
        if (doc_store_prune(c->store, c->repos[i].source, (const char *const *)c->repos[i].urls,
                            c->repos[i].n, &n, &err) < 0) {
            cli_fail("crawl: %s: %s", c->repos[i].source, err.msg);
            c->failed++;
            continue;
        }
        removed += n;
    }
    if (removed)
        fprintf(stderr, "crawled %s: removed %zu documents of earlier commits or deleted files\n",
                url, removed);
    c->removed += (long)removed;
}

static int on_emit(void *ctx, const struct doc *d, struct tw_err *err)
{
    struct crawl_counts *c = ctx;
    enum doc_put_result res;
    struct tw_err e2 = TW_ERR_INIT;
    int rc = doc_store_put(c->store, d, &res, &e2);
    if (rc == TW_EINVAL) {
        /* this document is unfit (a field too long, bad UTF-8): the item fails, the crawl goes on */
        cli_fail("crawl: %s: %s", d->url ? d->url : "document", e2.msg);
        c->failed++;
        return 0;
    }
    if (rc < 0)
        return tw_errf(err, rc, "%s", e2.msg);
    if (d->kind && !strcmp(d->kind, "code") && d->source && d->url)
        repos_add(c, d->source, d->url);
    if (res == DOC_PUT_INSERTED)
        c->imported++;
    else if (res == DOC_PUT_UPDATED)
        c->updated++;
    else
        c->unchanged++;
    return 0;
}

static void on_fail(void *ctx, const char *item, const char *message)
{
    struct crawl_counts *c = ctx;
    cli_fail("crawl: %s: %s", item, message);
    c->failed++;
    /* A repository that failed part-way (its source is the failed item) is not pruned. */
    for (size_t i = 0; i < c->n_repos; i++)
        if (!strcmp(c->repos[i].source, item))
            c->repos[i].incomplete = 1;
}

static int parse_rate(const char *s, double *out)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 1000 || isnan(v))
        return cli_fail("--rate '%s': expected requests per second in (0, 1000]", s);
    *out = v;
    return 0;
}

TW_COMMAND(crawl, "collect writing from the web: Medium, Substack, GitHub, feeds, pages")
{
    struct cli_env env;
    struct doc_store *store = NULL;
    struct http_client *http = NULL;
    struct http_opts ho;
    struct src_opts so = {0};
    struct src_net net = {0};
    struct crawl_counts counts = {0};
    struct src_sink sink = {on_emit, on_fail, &counts};
    struct tw_err err = TW_ERR_INIT;
    const char *rate_s = NULL, *timeout_s = NULL;
    char ua[64];
    int n_urls = 0, status = 0;
    char **urls;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (cli_env_init(&env, &argc, argv))
        return 1;
    urls = tw_calloc((size_t)argc, sizeof(*urls));
    if (!urls) {
        cli_env_release(&env);
        return cli_fail("out of memory");
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "--author"))
            slot = &so.author_name;
        else if (!strcmp(a, "--handle"))
            slot = &so.author_handle;
        else if (!strcmp(a, "--rate"))
            slot = &rate_s;
        else if (!strcmp(a, "--timeout"))
            slot = &timeout_s;
        else if (!strcmp(a, "--platform"))
            slot = &net.platform;
        if (slot) {
            if (i + 1 >= argc) {
                status = cli_fail("%s needs a value", a);
                goto out;
            }
            *slot = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            status = cli_fail("unknown option '%s' (see twin crawl --help)", a);
            goto out;
        } else {
            urls[n_urls++] = argv[i];
        }
    }
    if (n_urls == 0) {
        usage(stderr);
        status = 2;
        goto out;
    }
    if (!so.author_name)
        so.author_name = tw_config_get(env.cfg, "author");
    if (!so.author_name || !*so.author_name) {
        status = cli_fail("crawl: --author \"Full Name\" is required (whose writing is this?)");
        goto out;
    }
    if (net.platform && strcmp(net.platform, "medium") && strcmp(net.platform, "substack") &&
        strcmp(net.platform, "github") && strcmp(net.platform, "web")) {
        status = cli_fail("--platform '%s': expected medium, substack, github or web",
                          net.platform);
        goto out;
    }
    http_opts_default(&ho);
    snprintf(ua, sizeof(ua), "twin/%s", cli_version);
    ho.user_agent = ua;
    if (!rate_s)
        rate_s = tw_config_get(env.cfg, "crawl.rate");
    if (rate_s && parse_rate(rate_s, &ho.rate)) {
        status = 1;
        goto out;
    }
    if (!timeout_s)
        timeout_s = tw_config_get(env.cfg, "crawl.timeout");
    if (timeout_s) {
        long long t;
        if (cli_parse_int("--timeout", timeout_s, 1, 3600, &t)) {
            status = 1;
            goto out;
        }
        ho.timeout_ms = (long)t * 1000;
    }
    so.github_token = tw_config_get(env.cfg, "github.token");
    net.github_api = tw_config_get(env.cfg, "github.api");
    if (http_client_new(&ho, &http, &err) < 0) {
        status = cli_fail("crawl: %s", err.msg);
        goto out;
    }
    net.http = http;
    if (cli_store_open(&env, &store)) {
        status = 1;
        goto out;
    }
    counts.store = store;
    for (int i = 0; i < n_urls; i++) {
        long before = counts.imported + counts.updated + counts.unchanged;
        int rc;
        tw_err_clear(&err);
        rc = src_crawl_url(urls[i], &so, &net, &sink, &err);
        if (rc < 0) {
            repos_release(&counts);
            cli_fail("crawl: %s", err.msg);
            counts.failed++;
            if (rc == TW_EDB || rc == TW_ENOMEM)
                break; /* the store itself failed: later URLs would too */
            continue;
        }
        repos_prune(&counts, urls[i]);
        repos_release(&counts);
        fprintf(stderr, "crawled %s: %ld documents\n", urls[i],
                counts.imported + counts.updated + counts.unchanged - before);
    }
    printf("imported %ld, updated %ld, unchanged %ld, failed %ld\n", counts.imported,
           counts.updated, counts.unchanged, counts.failed);
    status = counts.failed ? 1 : 0;
out:
    repos_release(&counts);
    doc_store_close(store);
    http_client_free(http);
    tw_free(urls);
    cli_env_release(&env);
    return status;
}
