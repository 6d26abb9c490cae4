/* github.c - a GitHub user's (or organization's) repositories, or one repository.
 *
 *     github.com/<user>        --GET {api}/users/<user>/repos?per_page=100&type=owner-->
 *                                 JSON array per page, next page from the Link header (same
 *                                 origin as the API only: the token goes nowhere else);
 *                                 public, non-fork repositories are imported with
 *                                 src_git_import_as(clone_url, html_url)
 *     github.com/<user>/<repo> --GET {api}/repos/<user>/<repo>--> the same, for one
 *
 * The API base is https://api.github.com unless net->github_api says otherwise (tests point it
 * at a local server). robots.txt is not asked: the REST API is governed by its own terms and
 * rate limits, and api.github.com's robots.txt is meant for web crawlers.
 */
#include "collect/collect.h"

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define GITHUB_API_DEFAULT "https://api.github.com"
#define GITHUB_NAME_MAX 100

static int valid_name(const char *s, size_t n)
{
    if (n == 0 || n > GITHUB_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return !(n <= 2 && s[0] == '.'); /* "." and ".." */
}

/* "https://github.com/user[/repo[.git]][/...]" -> user, repo (repo may be empty). */
static int parse_github_url(const char *url, char user[GITHUB_NAME_MAX + 1],
                            char repo[GITHUB_NAME_MAX + 1])
{
    const char *h = strstr(url, "://"), *p;
    size_t n;
    if (!h)
        return -1;
    h += 3;
    if (!strncasecmp(h, "www.", 4))
        h += 4;
    if (strncasecmp(h, "github.com", 10) || (h[10] != '/' && h[10] != 0))
        return -1;
    p = h + 10;
    if (*p == '/')
        p++;
    n = strcspn(p, "/?#");
    if (!valid_name(p, n))
        return -1;
    memcpy(user, p, n);
    user[n] = 0;
    p += n;
    repo[0] = 0;
    if (*p == '/') {
        p++;
        n = strcspn(p, "/?#");
        if (n > 4 && !memcmp(p + n - 4, ".git", 4))
            n -= 4;
        if (n && !valid_name(p, n))
            return -1;
        memcpy(repo, p, n);
        repo[n] = 0;
    }
    return 0;
}

static int api_get(struct src_net *net, const struct src_opts *o, const char *url,
                   struct http_response *r, struct tw_err *err)
{
    char auth[600];
    int rc;
    const char *hdrs[4] = {"Accept: application/vnd.github+json",
                           "X-GitHub-Api-Version: 2022-11-28", NULL, NULL};
    if (o && o->github_token && *o->github_token) {
        if (strlen(o->github_token) > 512 || strpbrk(o->github_token, "\r\n"))
            return tw_errf(err, TW_EINVAL, "github token is malformed");
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->github_token);
        hdrs[2] = auth;
    }
    rc = http_get(net->http, url, hdrs, HTTP_GET_NO_ROBOTS, r, err);
    if (rc == TW_EHTTP && (r->status == 403 || r->status == 429))
        tw_err_ctx(err, "GitHub API rate limit or access denied%s",
                   hdrs[2] ? "" : " (set TWIN_GITHUB_TOKEN or github.token for a higher limit)");
    return rc;
}

static int is_sink_error(int rc)
{
    return rc == TW_EDB || rc == TW_ENOMEM || rc == TW_EINTERNAL;
}

/* Imports one repository object of the API. Returns 0 (imported, skipped or reported) or a
 * sink error. */
static int import_repo_json(const cJSON *repo, int explicit_repo, const struct src_opts *o,
                            struct src_sink *sink, size_t *n_repos, struct tw_err *err)
{
    const cJSON *clone = cJSON_GetObjectItemCaseSensitive(repo, "clone_url");
    const cJSON *html = cJSON_GetObjectItemCaseSensitive(repo, "html_url");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(repo, "full_name");
    const char *label;
    struct tw_err e2 = TW_ERR_INIT;
    int rc;

    label = cJSON_IsString(html) ? html->valuestring
            : cJSON_IsString(name) ? name->valuestring
                                   : "repository";
    if (!explicit_repo && (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(repo, "fork")) ||
                           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(repo, "private")))) {
        tw_log(TW_LOG_INFO, "crawl", "'%s' skipped (fork or private)", label);
        return 0;
    }
    if (!cJSON_IsString(clone) || !cJSON_IsString(html)) {
        sink->fail(sink->ctx, label, "repository without clone_url or html_url");
        return 0;
    }
    rc = src_git_import_as(clone->valuestring, html->valuestring, o, sink, &e2);
    if (rc < 0 && is_sink_error(rc))
        return tw_errf(err, rc, "%s", e2.msg);
    if (rc < 0)
        sink->fail(sink->ctx, html->valuestring, e2.msg);
    else
        ++*n_repos;
    return 0;
}

static int same_origin(const char *a, const char *b)
{
    const char *ha = strstr(a, "://"), *hb = strstr(b, "://");
    size_t na, nb;
    if (!ha || !hb || ha - a != hb - b || strncasecmp(a, b, (size_t)(ha - a)))
        return 0;
    na = strcspn(ha + 3, "/?#");
    nb = strcspn(hb + 3, "/?#");
    return na == nb && !strncasecmp(ha + 3, hb + 3, na);
}

int src_github_crawl(const char *url, const struct src_opts *o, struct src_net *net,
                     struct src_sink *sink, struct tw_err *err)
{
    char user[GITHUB_NAME_MAX + 1], repo[GITHUB_NAME_MAX + 1];
    const char *api = net->github_api && *net->github_api ? net->github_api : GITHUB_API_DEFAULT;
    size_t api_len = strlen(api), max_pages = net->max_pages ? net->max_pages : 200;
    struct tw_buf next = TW_BUF_INIT;
    size_t n_repos = 0, page = 0;
    int rc = 0;

    while (api_len && api[api_len - 1] == '/')
        api_len--;
    if (parse_github_url(url, user, repo) < 0)
        return tw_errf(err, TW_EINVAL,
                       "'%s': not a GitHub user or repository URL (https://github.com/<user>"
                       "[/<repo>])",
                       url);
    if (repo[0])
        tw_buf_printf(&next, "%.*s/repos/%s/%s", (int)api_len, api, user, repo);
    else
        tw_buf_printf(&next, "%.*s/users/%s/repos?per_page=100&type=owner", (int)api_len, api,
                      user);
    if (next.err)
        return tw_errf(err, TW_ENOMEM, "out of memory crawling '%s'", url);
    while (next.len && page < max_pages) {
        struct http_response r;
        cJSON *json, *it;
        char *link, *nx;
        page++;
        rc = api_get(net, o, next.data, &r, err);
        if (rc < 0)
            break;
        json = cJSON_ParseWithLength(r.body, r.body_len);
        link = http_response_header(&r, "link");
        http_response_release(&r);
        if (repo[0] ? !cJSON_IsObject(json) : !cJSON_IsArray(json)) {
            rc = tw_errf(err, TW_EFORMAT, "'%s': not a JSON %s", next.data,
                         repo[0] ? "repository object" : "array of repositories");
            cJSON_Delete(json);
            tw_free(link);
            break;
        }
        if (repo[0]) {
            rc = import_repo_json(json, 1, o, sink, &n_repos, err);
        } else {
            cJSON_ArrayForEach(it, json)
            {
                rc = import_repo_json(it, 0, o, sink, &n_repos, err);
                if (rc < 0)
                    break;
            }
        }
        cJSON_Delete(json);
        nx = repo[0] ? NULL : http_link_next(link);
        tw_free(link);
        tw_buf_reset(&next);
        if (rc < 0) {
            tw_free(nx);
            break;
        }
        if (nx && !same_origin(nx, api)) {
            tw_log(TW_LOG_WARN, "crawl", "'%s': next page '%s' is not on the API host; stopped",
                   url, nx);
        } else if (nx) {
            tw_buf_puts(&next, nx);
        }
        tw_free(nx);
    }
    tw_buf_release(&next);
    if (rc < 0)
        return tw_err_ctx(err, "github '%s'", url);
    tw_log(TW_LOG_INFO, "crawl", "github '%s': %zu repositories imported", url, n_repos);
    return TW_OK;
}
