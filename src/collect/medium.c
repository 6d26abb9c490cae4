/* medium.c - Medium's official export (zip or folder): posts/NAME.html in h-entry markup.
 *
 *     <article class="h-entry">
 *       <header><h1 class="p-name">Title</h1></header>
 *       <section data-field="subtitle" class="p-summary">Subtitle</section>
 *       <section data-field="body" class="e-content"> ... </section>
 *       <footer> <a class="p-author h-card" href="https://medium.com/@handle">Name</a>
 *                <time class="dt-published" datetime="2018-08-11T11:23:34.123Z">
 *                <a class="p-canonical" href="https://medium.com/@handle/slug-id"> </footer>
 *     </article>
 *
 * Drafts carry neither a canonical link nor a publish time. Responses (comments on other posts)
 * are exported as posts too: they have no subtitle and their title is the start of their text.
 */
#include "collect/collect_int.h"

#include "base/log.h"
#include "base/mem.h"
#include "collect/html.h"

#include <gumbo.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool want_medium(const char *name, void *ctx)
{
    const char *slash = strrchr(name, '/');
    (void)ctx;
    if (!slash || strcasecmp(src__ext(name), "html"))
        return false;
    return (slash - name >= 5 && !strncmp(slash - 5, "posts", 5)) ||
           !strcasecmp(slash + 1, "profile.html");
}

struct mpost {
    const GumboNode *title, *subtitle, *body, *time, *canonical, *author, *u_url;
};

static void scan(void *ctx, const GumboNode *n)
{
    struct mpost *m = ctx;
    const GumboAttribute *f = gumbo_get_attribute(&n->v.element.attributes, "data-field");
    if (f && f->value && !strcmp(f->value, "subtitle") && !m->subtitle)
        m->subtitle = n;
    if (f && f->value && !strcmp(f->value, "body") && !m->body)
        m->body = n;
    if (!m->title && html__has_class(n, "p-name"))
        m->title = n;
    if (!m->time && html__has_class(n, "dt-published"))
        m->time = n;
    if (!m->canonical && html__has_class(n, "p-canonical"))
        m->canonical = n;
    if (!m->author && html__has_class(n, "p-author"))
        m->author = n;
    if (!m->u_url && html__has_class(n, "u-url"))
        m->u_url = n;
}

static const char *href(const GumboNode *n, const char *name)
{
    const GumboAttribute *a = n ? gumbo_get_attribute(&n->v.element.attributes, name) : NULL;
    return a && a->value && a->value[0] ? a->value : NULL;
}

/* "https://medium.com/@handle/..." or "@handle" -> "handle" (heap), else NULL. */
static char *handle_of(const char *s)
{
    const char *at = s ? strchr(s, '@') : NULL;
    size_t n = 0;
    if (!at)
        return NULL;
    at++;
    while (at[n] && at[n] != '/' && at[n] != '?' && at[n] != '#' && at[n] != ' ')
        n++;
    return n ? tw_strndup(at, n) : NULL;
}

/* The profile's handle (profile/profile.html: <a class="u-url">@handle</a>), or NULL. */
static char *profile_handle(const struct src_tree *t)
{
    size_t prefix;
    long i = src__tree_find_marker(t, "profile/profile.html", &prefix);
    char *data = NULL, *h = NULL;
    size_t len;
    struct tw_err e = TW_ERR_INIT;
    GumboOutput *g;
    struct mpost m;
    if (i < 0 || src__tree_read(t, (size_t)i, &data, &len, &e) < 0 || len > HTML_INPUT_MAX) {
        tw_free(data);
        return NULL;
    }
    g = gumbo_parse_with_options(&kGumboDefaultOptions, data, len);
    memset(&m, 0, sizeof(m));
    if (g && html__walk(g->document, scan, &m, &e) == 0 && m.u_url) {
        h = handle_of(href(m.u_url, "href"));
    }
    if (g)
        gumbo_destroy_output(&kGumboDefaultOptions, g);
    tw_free(data);
    return h;
}

/* Drops a leading "#... <text>" line equal to 'text' (Medium repeats title and subtitle as the
 * first headings of the body). */
static void drop_heading(char *content, const char *text)
{
    char *p = content, *eol;
    size_t tl;
    if (!text || !*text)
        return;
    while (*p == '#')
        p++;
    if (p == content || *p != ' ')
        return;
    p++;
    tl = strlen(text);
    eol = strchr(p, '\n');
    if ((eol ? (size_t)(eol - p) : strlen(p)) != tl || strncmp(p, text, tl))
        return;
    p = eol ? eol : p + tl;
    while (*p == '\n')
        p++;
    memmove(content, p, strlen(p) + 1);
}

/* Canonical links already used in this export: an open-addressing hash set (the export is
 * untrusted and may hold many posts, so no linear scans). */
struct seen {
    char **url;    // slots, NULL when empty
    char **item;   // the file that used it
    size_t n, cap; // cap is a power of two
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; // FNV-1a
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static const char *seen_find(const struct seen *s, const char *url)
{
    if (!s->cap)
        return NULL;
    for (size_t i = hash_str(url) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->url[i])
            return NULL;
        if (!strcmp(s->url[i], url))
            return s->item[i];
    }
}

static void seen_put(struct seen *s, char *url, char *item)
{
    size_t i = hash_str(url) & (s->cap - 1);
    while (s->url[i])
        i = (i + 1) & (s->cap - 1);
    s->url[i] = url;
    s->item[i] = item;
    s->n++;
}

static int seen_add(struct seen *s, const char *url, const char *item)
{
    char *u, *it;
    if ((s->n + 1) * 2 > s->cap) {
        struct seen bigger = {NULL, NULL, 0, s->cap ? s->cap * 2 : 64};
        bigger.url = tw_calloc(bigger.cap, sizeof(*bigger.url));
        bigger.item = tw_calloc(bigger.cap, sizeof(*bigger.item));
        if (!bigger.url || !bigger.item) {
            tw_free(bigger.url);
            tw_free(bigger.item);
            return TW_ENOMEM;
        }
        for (size_t i = 0; i < s->cap; i++)
            if (s->url[i])
                seen_put(&bigger, s->url[i], s->item[i]);
        tw_free(s->url);
        tw_free(s->item);
        *s = bigger;
    }
    u = tw_strdup(url);
    it = tw_strdup(item);
    if (!u || !it) {
        tw_free(u);
        tw_free(it);
        return TW_ENOMEM;
    }
    seen_put(s, u, it);
    return TW_OK;
}

static void seen_release(struct seen *s)
{
    for (size_t i = 0; i < s->cap; i++) {
        tw_free(s->url[i]);
        tw_free(s->item[i]);
    }
    tw_free(s->url);
    tw_free(s->item);
}

struct mctx {
    const struct src_tree *t;
    const struct src_opts *o;
    struct src_sink *sink;
    const char *handle; // profile handle
    struct seen seen;
};

/* One post. Returns a negative code only to stop the import (store failure, out of memory). */
static int one_post(struct mctx *x, size_t i, const char *item, struct tw_err *err)
{
    struct tw_err e = TW_ERR_INIT;
    char *data = NULL, *title = NULL, *subtitle = NULL, *content = NULL, *author_handle = NULL,
         *url = NULL;
    const char *canon, *dt, *prev;
    size_t len;
    GumboOutput *g = NULL;
    struct mpost m;
    struct doc d;
    int64_t t;
    int rc = TW_OK;

    if (src__tree_read(x->t, i, &data, &len, &e) < 0) {
        src__fail(x->sink, item, "%s", e.msg);
        return TW_OK;
    }
    if (len > HTML_INPUT_MAX) {
        src__fail(x->sink, item, "html is %zu bytes, the limit is %zu", len,
                  (size_t)HTML_INPUT_MAX);
        goto done;
    }
    g = gumbo_parse_with_options(&kGumboDefaultOptions, data, len);
    memset(&m, 0, sizeof(m));
    if (!g || html__walk(g->document, scan, &m, &e) < 0) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory parsing '%s'", item);
        goto done;
    }
    if (!m.body) {
        src__fail(x->sink, item, "no body section (data-field=\"body\"); not a Medium post");
        goto done;
    }
    canon = href(m.canonical, "href");
    dt = href(m.time, "datetime");
    if (!canon && !dt && !(x->o && x->o->include_drafts)) {
        tw_log(TW_LOG_INFO, "collect", "skipping Medium draft '%s' (use --drafts)", item);
        goto done;
    }
    if (html__node_text(m.body, &content, &e) < 0) {
        src__fail(x->sink, item, "%s", e.msg);
        goto done;
    }
    title = m.title ? html__node_line(m.title) : NULL;
    subtitle = m.subtitle ? html__node_line(m.subtitle) : NULL;
    if (subtitle && !subtitle[0]) {
        tw_free(subtitle);
        subtitle = NULL;
    }
    if (!m.subtitle && title && title[0] && !strncmp(content, title, strlen(title))) {
        tw_log(TW_LOG_INFO, "collect", "skipping Medium response '%s'", item);
        goto done;
    }
    drop_heading(content, title);
    drop_heading(content, subtitle);
    if (!content[0]) {
        src__fail(x->sink, item, "no text content");
        goto done;
    }
    url = canon ? tw_strdup(canon) : src__tree_url(x->t, i);
    if (!url) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory importing '%s'", item);
        goto done;
    }
    prev = seen_find(&x->seen, url);
    if (prev) {
        src__fail(x->sink, item, "canonical link '%s' is also the link of '%s'", url, prev);
        goto done;
    }
    if (seen_add(&x->seen, url, item) < 0) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory importing '%s'", item);
        goto done;
    }
    author_handle = handle_of(href(m.author, "href"));
    memset(&d, 0, sizeof(d));
    d.kind = "article";
    d.platform = "medium";
    d.url = url;
    d.source = x->t->path;
    d.author_name = x->o ? x->o->author_name : NULL;
    d.author_handle = x->o && x->o->author_handle ? x->o->author_handle
                      : x->handle                 ? x->handle
                                                  : author_handle;
    d.title = title && title[0] ? title : NULL;
    d.subtitle = subtitle;
    d.content = content;
    d.published_at = dt && src__parse_time(dt, strlen(dt), &t) == 0 ? t : DOC_TIME_UNKNOWN;
    d.fetched_at = DOC_TIME_UNKNOWN;
    if (x->sink->emit(x->sink->ctx, &d, &e) < 0)
        rc = tw_errf(err, e.code ? e.code : TW_EIO, "storing '%s': %s", item, e.msg);
done:
    if (g)
        gumbo_destroy_output(&kGumboDefaultOptions, g);
    tw_free(data);
    tw_free(title);
    tw_free(subtitle);
    tw_free(content);
    tw_free(author_handle);
    tw_free(url);
    return rc;
}

int src_medium_import(const char *path, const struct src_opts *o, struct src_sink *sink,
                      struct tw_err *err)
{
    struct src_tree t;
    struct mctx x;
    char *handle;
    size_t n_posts = 0;
    int rc = src__tree_open(path, want_medium, NULL, &t, err);
    if (rc < 0)
        return rc;
    memset(&x, 0, sizeof(x));
    handle = profile_handle(&t);
    x.t = &t;
    x.o = o;
    x.sink = sink;
    x.handle = handle;
    for (size_t i = 0; i < t.n && rc == TW_OK; i++) {
        const char *name = t.e[i].name, *slash = strrchr(name, '/');
        char *item;
        if (!slash || slash - name < 5 || strncmp(slash - 5, "posts", 5) ||
            strcasecmp(src__ext(name), "html"))
            continue;
        n_posts++;
        item = src__tree_item(&t, i);
        if (!item) {
            rc = tw_errf(err, TW_ENOMEM, "out of memory importing '%s'", path);
            break;
        }
        rc = one_post(&x, i, item, err);
        tw_free(item);
    }
    if (rc == TW_OK && n_posts == 0)
        rc = tw_errf(err, TW_ENOENT, "'%s': no posts/*.html in this Medium export", path);
    seen_release(&x.seen);
    tw_free(handle);
    src__tree_release(&t);
    return rc;
}
