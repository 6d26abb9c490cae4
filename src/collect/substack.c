/* substack.c - Substack's export (posts.csv + posts/<post_id>.html) and saved post pages.
 *
 *     post_id,post_date,is_published,email_sent_at,[inbox_sent_at,]type,audience,title,subtitle,
 *     podcast_url
 *     123401.plain-text,2019-07-26T20:48:19.814Z,TRUE,...,newsletter,everyone,Plain Text,...
 *
 * Titles and subtitles in posts.csv may hold HTML entities (&#x201C;); they are decoded. The
 * post body is an HTML fragment rendered with html_to_text. A post page (what the crawler
 * fetches) carries the post's own metadata as JSON in window._preloads; it wins over the
 * og:/JSON-LD tags, which are often social-preview variants of the title.
 */
#include "collect/collect_int.h"

#include "base/log.h"
#include "base/mem.h"
#include "collect/html.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SUBSTACK_ID_MAX 200

static bool want_substack(const char *name, void *ctx)
{
    const char *base = strrchr(name, '/');
    (void)ctx;
    base = base ? base + 1 : name;
    return !strcasecmp(base, "posts.csv") || !strcasecmp(src__ext(name), "html");
}

/* Decodes entities and collapses white space of a CSV text cell (heap, NULL if empty). */
static char *cell_text(const char *s, size_t len)
{
    char *out = NULL;
    struct tw_err e = TW_ERR_INIT;
    if (len == 0 || html_to_text(s, len, &out, &e) < 0)
        return NULL;
    for (char *p = out; *p; p++)
        if (*p == '\n')
            *p = ' ';
    if (!out[0]) {
        tw_free(out);
        return NULL;
    }
    return out;
}

struct scols {
    int id, date, published, email_sent, inbox_sent, type, title, subtitle;
};

static const char *cell(const struct csv_reader *r, int col, size_t *len)
{
    if (col < 0 || col >= r->n_fields) {
        *len = 0;
        return "";
    }
    *len = r->field_len[col];
    return r->field[col];
}

/* Finds posts/<id>.html (or posts/<numeric id>.html) under the export's prefix. */
static long find_post(const struct src_tree *t, const char *prefix, size_t prefix_len,
                      const char *id, size_t id_len)
{
    char name[512];
    size_t num = strspn(id, "0123456789");
    long i;
    if ((size_t)snprintf(name, sizeof(name), "%.*sposts/%.*s.html", (int)prefix_len, prefix,
                         (int)id_len, id) >= sizeof(name))
        return -1;
    i = src__tree_find(t, name);
    if (i >= 0 || num == 0 || num >= id_len)
        return i;
    snprintf(name, sizeof(name), "%.*sposts/%.*s.html", (int)prefix_len, prefix, (int)num, id);
    return src__tree_find(t, name);
}

static int one_row(const struct src_tree *t, const struct csv_reader *r, const struct scols *c,
                   const char *prefix, size_t prefix_len, const char *csv_item,
                   const struct src_opts *o, struct src_sink *sink, struct tw_err *err)
{
    struct tw_err e = TW_ERR_INIT;
    char row[SUBSTACK_ID_MAX + 64], url[SUBSTACK_ID_MAX + 256];
    char *data = NULL, *content = NULL, *title = NULL, *subtitle = NULL, *item = NULL;
    const char *id, *v, *kind, *slug;
    size_t id_len, vl, len;
    long fi;
    struct doc d;
    int64_t when;
    int rc = TW_OK;

    id = cell(r, c->id, &id_len);
    if (id_len == 0 || id_len > SUBSTACK_ID_MAX || memchr(id, '/', id_len)) {
        src__fail(sink, csv_item, "row at line %ld: bad post_id '%.*s'", r->line,
                  (int)(id_len < 60 ? id_len : 60), id);
        return TW_OK;
    }
    snprintf(row, sizeof(row), "post %.*s", (int)id_len, id);
    v = cell(r, c->published, &vl);
    if (!(vl == 4 && !strncasecmp(v, "true", 4)) && !(o && o->include_drafts)) {
        tw_log(TW_LOG_INFO, "collect", "skipping unpublished Substack %s (use --drafts)", row);
        return TW_OK;
    }
    v = cell(r, c->type, &vl);
    if (vl == 4 && !strncasecmp(v, "page", 4)) {
        tw_log(TW_LOG_INFO, "collect", "skipping Substack page %s", row);
        return TW_OK;
    }
    kind = vl == 6 && !strncasecmp(v, "thread", 6) ? "post" : "article";
    fi = find_post(t, prefix, prefix_len, id, id_len);
    if (fi < 0) {
        src__fail(sink, csv_item, "%s: no posts/%.*s.html in the export", row, (int)id_len, id);
        return TW_OK;
    }
    item = src__tree_item(t, (size_t)fi);
    if (!item)
        return tw_errf(err, TW_ENOMEM, "out of memory importing %s", row);
    if (src__tree_read(t, (size_t)fi, &data, &len, &e) < 0 ||
        html_to_text(data, len, &content, &e) < 0) {
        src__fail(sink, item, "%s", e.msg);
        goto done;
    }
    if (!content[0]) {
        src__fail(sink, item, "no text content");
        goto done;
    }
    v = cell(r, c->title, &vl);
    title = cell_text(v, vl);
    v = cell(r, c->subtitle, &vl);
    subtitle = cell_text(v, vl);
    slug = memchr(id, '.', id_len);
    if (o && o->author_handle && slug && slug + 1 < id + id_len)
        snprintf(url, sizeof(url), "https://%s.substack.com/p/%.*s", o->author_handle,
                 (int)(id + id_len - slug - 1), slug + 1);
    else
        snprintf(url, sizeof(url), "substack:%.*s", (int)id_len, id);
    memset(&d, 0, sizeof(d));
    d.kind = kind;
    d.platform = "substack";
    d.url = url;
    d.source = t->path;
    d.author_name = o ? o->author_name : NULL;
    d.author_handle = o ? o->author_handle : NULL;
    d.title = title;
    d.subtitle = subtitle;
    d.content = content;
    d.published_at = DOC_TIME_UNKNOWN;
    d.fetched_at = DOC_TIME_UNKNOWN;
    {
        int cols[] = {c->date, c->email_sent, c->inbox_sent};
        for (int k = 0; k < 3; k++) {
            v = cell(r, cols[k], &vl);
            if (vl && src__parse_time(v, vl, &when) == 0) {
                d.published_at = when;
                break;
            }
        }
    }
    if (sink->emit(sink->ctx, &d, &e) < 0)
        rc = tw_errf(err, e.code ? e.code : TW_EIO, "storing '%s': %s", item, e.msg);
done:
    tw_free(item);
    tw_free(data);
    tw_free(content);
    tw_free(title);
    tw_free(subtitle);
    return rc;
}

int src_substack_import(const char *path, const struct src_opts *o, struct src_sink *sink,
                        struct tw_err *err)
{
    struct src_tree t;
    struct csv_reader r;
    struct scols c;
    struct tw_err e = TW_ERR_INIT;
    char *csv = NULL, *csv_item = NULL, *dir = NULL;
    const char *open_path = path, *base = strrchr(path, '/');
    size_t prefix_len = 0, len;
    long ci;
    int rc;

    /* posts.csv itself names the export folder around it. */
    if (!strcasecmp(base ? base + 1 : path, "posts.csv")) {
        dir = base ? tw_strndup(path, (size_t)(base - path)) : tw_strdup(".");
        if (!dir)
            return tw_errf(err, TW_ENOMEM, "out of memory opening '%s'", path);
        open_path = dir[0] ? dir : "/";
    }
    rc = src__tree_open(open_path, want_substack, NULL, &t, err);
    tw_free(dir);
    if (rc < 0)
        return rc;
    ci = src__tree_find_marker(&t, "posts.csv", &prefix_len);
    if (ci < 0) {
        rc = tw_errf(err, TW_ENOENT, "'%s': no posts.csv in this Substack export", path);
        goto done;
    }
    csv_item = src__tree_item(&t, (size_t)ci);
    if (!csv_item) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory importing '%s'", path);
        goto done;
    }
    rc = src__tree_read(&t, (size_t)ci, &csv, &len, err);
    if (rc < 0)
        goto done;
    csv_init(&r, csv, len);
    rc = csv_next(&r, &e);
    if (rc <= 0) {
        rc = tw_errf(err, TW_EFORMAT, "'%s': %s", csv_item, rc == 0 ? "empty, no header" : e.msg);
        csv_release(&r);
        goto done;
    }
    c.id = csv_column(&r, "post_id");
    c.date = csv_column(&r, "post_date");
    c.published = csv_column(&r, "is_published");
    c.email_sent = csv_column(&r, "email_sent_at");
    c.inbox_sent = csv_column(&r, "inbox_sent_at");
    c.type = csv_column(&r, "type");
    c.title = csv_column(&r, "title");
    c.subtitle = csv_column(&r, "subtitle");
    if (c.id < 0 || c.published < 0) {
        rc = tw_errf(err, TW_EFORMAT,
                     "'%s': not a Substack posts.csv (no post_id and is_published columns)",
                     csv_item);
        csv_release(&r);
        goto done;
    }
    rc = TW_OK;
    for (;;) {
        int k;
        tw_err_clear(&e);
        k = csv_next(&r, &e);
        if (k == 0)
            break;
        if (k == TW_ENOMEM) {
            rc = tw_errf(err, k, "'%s': %s", csv_item, e.msg);
            break;
        }
        if (k < 0) {
            src__fail(sink, csv_item, "%s", e.msg);
            continue;
        }
        if (r.n_fields == 1 && r.field_len[0] == 0)
            continue;
        rc = one_row(&t, &r, &c, t.e[ci].name, prefix_len, csv_item, o, sink, err);
        if (rc < 0)
            break;
    }
    csv_release(&r);
done:
    tw_free(csv);
    tw_free(csv_item);
    src__tree_release(&t);
    return rc;
}

/* ---- post pages ---- */

/* Decodes the JavaScript string literal starting at s (just after its opening quote) into b;
 * returns false when it is not closed. */
static bool js_string(const char *s, const char *end, struct tw_buf *b)
{
    while (s < end && *s != '"') {
        if (*s != '\\') {
            tw_buf_putc(b, *s++);
            continue;
        }
        if (++s >= end)
            return false;
        switch (*s) {
        case 'n':
            tw_buf_putc(b, '\n');
            break;
        case 't':
            tw_buf_putc(b, '\t');
            break;
        case 'r':
            tw_buf_putc(b, '\r');
            break;
        case 'u':
            /* Keep \uXXXX escaped: the decoded text is JSON, whose parser handles them. */
            tw_buf_puts(b, "\\u");
            break;
        case '"':
            tw_buf_putc(b, '"');
            break;
        case '\\':
            tw_buf_putc(b, '\\');
            break;
        default:
            tw_buf_putc(b, *s);
            break;
        }
        s++;
    }
    return s < end;
}

/* The "post" object of window._preloads = JSON.parse("..."), or NULL. */
static cJSON *preloads_post(const char *html, size_t len)
{
    const char *end = html + len, *p = html, *q = NULL;
    struct tw_buf b = TW_BUF_INIT;
    cJSON *root = NULL, *post;
    /* The assignment, not the other uses (window._preloads.sentry_dsn ...). */
    while ((p = src__memcasemem(p, (size_t)(end - p), "window._preloads"))) {
        const char *a = p + 16;
        p = a;
        while (a < end && (*a == ' ' || *a == '\t'))
            a++;
        if (a < end && *a == '=') {
            q = src__memcasemem(a, (size_t)(end - a), "JSON.parse(\"");
            if (q && q - a <= 16)
                break;
            q = NULL;
        }
    }
    if (!q)
        return NULL;
    tw_buf_init(&b, HTML_INPUT_MAX);
    if (js_string(q + 12, end, &b) && !b.err)
        root = cJSON_ParseWithLength(b.data, b.len);
    tw_buf_release(&b);
    if (!root)
        return NULL;
    post = cJSON_DetachItemFromObjectCaseSensitive(root, "post");
    cJSON_Delete(root);
    if (post && !cJSON_IsObject(post)) {
        cJSON_Delete(post);
        return NULL;
    }
    return post;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

int src_substack_page(const char *html, size_t len, const char *url, const char *source,
                      const struct src_opts *o, struct src_sink *sink, struct tw_err *err)
{
    struct html_article a;
    struct doc d;
    struct tw_err e = TW_ERR_INIT;
    cJSON *post;
    const char *v;
    char *title = NULL, *subtitle = NULL;
    int64_t t;
    int rc = html_extract_article(html, len, &a, err);
    if (rc < 0)
        return rc;
    post = preloads_post(html, len);
    memset(&d, 0, sizeof(d));
    d.kind = "article";
    d.platform = "substack";
    d.url = post && jstr(post, "canonical_url") ? jstr(post, "canonical_url")
            : a.canonical_url                   ? a.canonical_url
                                                : url;
    d.source = source;
    d.author_name = o ? o->author_name : NULL;
    d.author_handle = o ? o->author_handle : NULL;
    if (post && (v = jstr(post, "title")))
        title = cell_text(v, strlen(v));
    if (post && (v = jstr(post, "subtitle")))
        subtitle = cell_text(v, strlen(v));
    d.title = title ? title : a.title;
    d.subtitle = subtitle ? subtitle : a.subtitle;
    d.content = a.content;
    d.published_at = a.published_at;
    if (post && (v = jstr(post, "post_date")) && src__parse_time(v, strlen(v), &t) == 0)
        d.published_at = t;
    if (post && (v = jstr(post, "type")) && !strcmp(v, "thread"))
        d.kind = "post";
    d.fetched_at = DOC_TIME_UNKNOWN;
    if (!d.url) {
        rc = tw_errf(err, TW_EINVAL, "substack page has no canonical URL and none was given");
    } else if (sink->emit(sink->ctx, &d, &e) < 0) {
        rc = tw_errf(err, e.code ? e.code : TW_EIO, "storing '%s': %s", d.url, e.msg);
    }
    tw_free(title);
    tw_free(subtitle);
    cJSON_Delete(post);
    html_article_release(&a);
    return rc;
}
