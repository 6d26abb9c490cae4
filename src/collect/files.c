/* files.c - local files: markdown, HTML and plain text, with Jekyll/Hugo front matter. */
#include "collect/collect_int.h"

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "collect/html.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum file_fmt { FMT_NONE, FMT_MARKDOWN, FMT_HTML, FMT_TEXT };

static enum file_fmt fmt_of(const char *name)
{
    static const char *const md[] = {"md", "markdown", "mdown", "mkd", "mkdn", NULL};
    const char *ext = src__ext(name);
    for (int i = 0; md[i]; i++)
        if (!strcasecmp(ext, md[i]))
            return FMT_MARKDOWN;
    if (!strcasecmp(ext, "html") || !strcasecmp(ext, "htm") || !strcasecmp(ext, "xhtml"))
        return FMT_HTML;
    if (!strcasecmp(ext, "txt") || !strcasecmp(ext, "text"))
        return FMT_TEXT;
    return FMT_NONE;
}

static bool want_file(const char *name, void *ctx)
{
    (void)ctx;
    return fmt_of(name) != FMT_NONE;
}

/* Jekyll's "YYYY-MM-DD-slug.ext": the date and the slug (a view into name). */
static bool jekyll_name(const char *name, int64_t *t, const char **slug, size_t *slug_len)
{
    const char *base = strrchr(name, '/'), *dot;
    base = base ? base + 1 : name;
    dot = strrchr(base, '.');
    if (!dot || dot == base)
        dot = base + strlen(base);
    *slug = base;
    *slug_len = (size_t)(dot - base);
    if (*slug_len < 11 || base[10] != '-' || src__parse_time(base, 10, t) != 0)
        return false;
    *slug += 11;
    *slug_len -= 11;
    return true;
}

enum liquid { LIQ_NONE, LIQ_HIGHLIGHT, LIQ_END, LIQ_RAW };

/* Classifies a line holding only a Liquid tag; *lang is the highlight language. */
static enum liquid liquid_line(const char *p, size_t k, const char **lang, size_t *lang_len)
{
    const char *q, *end;
    while (k && (*p == ' ' || *p == '\t'))
        p++, k--;
    if (k < 2 || p[0] != '{' || p[1] != '%')
        return LIQ_NONE;
    q = p + 2;
    end = p + k;
    while (q < end && *q == ' ')
        q++;
    if ((size_t)(end - q) >= 12 && !strncmp(q, "endhighlight", 12))
        return LIQ_END;
    if ((size_t)(end - q) >= 9 && !strncmp(q, "highlight", 9)) {
        const char *l = q + 9, *le;
        while (l < end && *l == ' ')
            l++;
        le = l;
        while (le < end && !isspace((unsigned char)*le) && *le != '%')
            le++;
        *lang = l;
        *lang_len = (size_t)(le - l);
        return LIQ_HIGHLIGHT;
    }
    if (((size_t)(end - q) >= 3 && !strncmp(q, "raw", 3)) ||
        ((size_t)(end - q) >= 6 && !strncmp(q, "endraw", 6)))
        return LIQ_RAW;
    return LIQ_NONE;
}

struct md_state {
    bool fence;   // inside a ``` or ~~~ fenced block
    bool comment; // inside an HTML comment that spans lines
};

/* Copies one markdown line, leaving out HTML comments (<!-- ... -->, also across lines) outside
 * code: fenced blocks, indented blocks and `spans` keep them. */
static void md_line(const char *line, size_t n, bool liquid_code, struct md_state *st,
                    struct tw_buf *b)
{
    size_t k = 0, ind = 0;
    while (ind < n && line[ind] == ' ')
        ind++;
    if (!st->comment && n - ind >= 3 &&
        (!strncmp(line + ind, "```", 3) || !strncmp(line + ind, "~~~", 3)))
        st->fence = !st->fence;
    if (liquid_code || st->fence || (!st->comment && (ind >= 4 || (n && line[0] == '\t')))) {
        tw_buf_add(b, line, n);
        return;
    }
    while (k < n) {
        if (st->comment) {
            const char *end = src__memcasemem(line + k, n - k, "-->");
            if (!end)
                return;
            k = (size_t)(end - line) + 3;
            st->comment = false;
            continue;
        }
        {
            const char *open = src__memcasemem(line + k, n - k, "<!--");
            const char *tick = memchr(line + k, '`', n - k);
            if (!open || (tick && tick < open)) {
                tw_buf_add(b, line + k, n - k);
                return;
            }
            tw_buf_add(b, line + k, (size_t)(open - (line + k)));
            k = (size_t)(open - line) + 4;
            st->comment = true;
        }
    }
}

/* Rewrites Liquid tags line by line: in markdown a highlight block becomes a fence; in HTML it
 * becomes <pre><code> with its text escaped (the code is not markup). raw/endraw go. */
static void liquid_body(const char *s, size_t len, bool html, struct tw_buf *b)
{
    size_t i = 0;
    bool in_code = false;
    struct md_state md = {false, false};
    while (i < len) {
        const char *line = s + i, *eol = memchr(line, '\n', len - i), *lang = NULL;
        size_t n = eol ? (size_t)(eol - line) : len - i, lang_len = 0;
        enum liquid lq = liquid_line(line, n, &lang, &lang_len);
        i += n + (eol ? 1 : 0);
        if (lq == LIQ_HIGHLIGHT && !in_code) {
            in_code = true;
            if (html) {
                tw_buf_puts(b, "<pre><code>");
            } else {
                tw_buf_puts(b, "```");
                tw_buf_add(b, lang, lang_len);
                tw_buf_putc(b, '\n');
            }
            continue;
        }
        if (lq == LIQ_END && in_code) {
            in_code = false;
            tw_buf_puts(b, html ? "</code></pre>\n" : "```\n");
            continue;
        }
        if (lq == LIQ_RAW)
            continue;
        if (html && in_code) {
            for (size_t k = 0; k < n; k++) {
                if (line[k] == '<')
                    tw_buf_puts(b, "&lt;");
                else if (line[k] == '>')
                    tw_buf_puts(b, "&gt;");
                else if (line[k] == '&')
                    tw_buf_puts(b, "&amp;");
                else
                    tw_buf_putc(b, line[k]);
            }
        } else if (!html) {
            md_line(line, n, in_code, &md, b);
        } else {
            tw_buf_add(b, line, n);
        }
        tw_buf_putc(b, '\n');
    }
    if (in_code)
        tw_buf_puts(b, html ? "</code></pre>\n" : "```\n");
}

/* The first "# Heading" line of markdown text, or NULL. */
static char *first_heading(const char *s)
{
    while (*s) {
        const char *eol = strchr(s, '\n');
        size_t n = eol ? (size_t)(eol - s) : strlen(s);
        if (n > 2 && s[0] == '#') {
            size_t k = 0;
            while (k < n && s[k] == '#')
                k++;
            if (k <= 6 && k < n && s[k] == ' ')
                return tw_strndup(s + k + 1, n - k - 1);
        }
        if (!eol)
            break;
        s = eol + 1;
    }
    return NULL;
}

/* A title from a slug: "my-first_post" -> "my first post". */
static char *slug_title(const char *slug, size_t n)
{
    char *t = tw_strndup(slug, n);
    if (t)
        for (char *p = t; *p; p++)
            if (*p == '-' || *p == '_')
                *p = ' ';
    return t;
}

struct file_doc {
    struct fm_meta fm;
    char *content, *title;
    struct html_article page; // a whole saved page: its extracted metadata
};

static void file_doc_release(struct file_doc *f)
{
    fm_meta_release(&f->fm);
    tw_free(f->content);
    tw_free(f->title);
    html_article_release(&f->page);
}

/* A saved web page (not a Jekyll fragment): no front matter and an <html> or <body> tag. */
static bool is_whole_page(const struct fm_meta *fm, const char *body, size_t len)
{
    size_t n = len < 8192 ? len : 8192;
    return fm->body_off == 0 &&
           (src__memcasemem(body, n, "<html") || src__memcasemem(body, n, "<body"));
}

/* Converts one file's bytes; returns a message (static or in 'msg') on failure, else NULL. */
static const char *convert(const char *name, const char *data, size_t len, enum file_fmt fmt,
                           struct file_doc *f, char *msg, size_t msg_cap)
{
    struct tw_err err = TW_ERR_INIT;
    const char *body, *nul, *slug;
    size_t body_len, bad, slug_len;
    int64_t t;

    memset(f, 0, sizeof(*f));
    f->page.published_at = DOC_TIME_UNKNOWN;
    if (len == 0)
        return "file is empty";
    nul = memchr(data, '\0', len);
    if (nul) {
        snprintf(msg, msg_cap, "binary file (NUL byte at offset %zu)", (size_t)(nul - data));
        return msg;
    }
    bad = src__utf8_invalid_at(data, len);
    if (bad < len && fmt != FMT_HTML) {
        snprintf(msg, msg_cap,
                 "not valid UTF-8 (bad byte 0x%02x at offset %zu); convert it to "
                 "UTF-8 first",
                 (unsigned char)data[bad], bad);
        return msg;
    }
    if (fm_parse(data, len, &f->fm, &err) < 0) {
        snprintf(msg, msg_cap, "%s", err.msg);
        return msg;
    }
    body = data + f->fm.body_off;
    body_len = len - f->fm.body_off;
    {
        struct tw_buf b = TW_BUF_INIT;
        int rc;
        tw_buf_init(&b, SRC_FILE_MAX + (SRC_FILE_MAX >> 1));
        if (fmt == FMT_TEXT)
            tw_buf_add(&b, body, body_len);
        else
            liquid_body(body, body_len, fmt == FMT_HTML, &b);
        if (b.err) {
            tw_buf_release(&b);
            snprintf(msg, msg_cap, "text is too long to convert");
            return msg;
        }
        if (fmt == FMT_HTML && is_whole_page(&f->fm, body, body_len)) {
            /* The page's main content, as for a crawled page; its metadata fills the gaps. */
            rc = html_extract_article(b.data, b.len, &f->page, &err);
            if (rc == TW_OK) {
                f->content = f->page.content;
                f->page.content = NULL;
            }
        } else {
            rc = fmt == FMT_HTML ? html_to_text(b.data, b.len, &f->content, &err)
                                 : src__text_normalize(b.data, b.len, &f->content, &err);
        }
        tw_buf_release(&b);
        if (rc < 0) {
            snprintf(msg, msg_cap, "%s", err.msg);
            return msg;
        }
    }
    if (!f->content[0])
        return "no text content";
    if (strlen(f->content) > DOC_CONTENT_MAX) {
        snprintf(msg, msg_cap, "text is %zu bytes, the limit is %zu", strlen(f->content),
                 (size_t)DOC_CONTENT_MAX);
        return msg;
    }
    if (f->fm.title && f->fm.title[0])
        f->title = tw_strdup(f->fm.title);
    else if (f->page.title)
        f->title = tw_strdup(f->page.title);
    else if (fmt == FMT_MARKDOWN && (f->title = first_heading(f->content)))
        ;
    else if (jekyll_name(name, &t, &slug, &slug_len))
        f->title = slug_title(slug, slug_len);
    else {
        const char *base = strrchr(name, '/'), *dot;
        base = base ? base + 1 : name;
        dot = strrchr(base, '.');
        f->title = slug_title(base, dot && dot != base ? (size_t)(dot - base) : strlen(base));
    }
    if (!f->title)
        return "out of memory";
    return NULL;
}

int src_files_import(const char *path, const struct src_opts *o, struct src_sink *sink,
                     struct tw_err *err)
{
    struct src_tree t;
    int rc = src__tree_open(path, want_file, NULL, &t, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < t.n && rc == TW_OK; i++) {
        enum file_fmt fmt = fmt_of(t.e[i].name);
        struct tw_err e = TW_ERR_INIT;
        struct file_doc f;
        struct doc d;
        char *data = NULL, *item, *url;
        const char *why, *slug;
        char msg[300];
        size_t len, slug_len;
        int64_t when;

        if (fmt == FMT_NONE) {
            if (t.is_file)
                rc = tw_errf(err, TW_EUNSUP,
                             "'%s': not a file type twin imports (markdown, html, text) or a "
                             "known export",
                             path);
            continue;
        }
        item = src__tree_item(&t, i);
        url = src__tree_url(&t, i);
        if (!item || !url) {
            tw_free(item);
            tw_free(url);
            rc = tw_errf(err, TW_ENOMEM, "out of memory importing '%s'", path);
            break;
        }
        if (src__tree_read(&t, i, &data, &len, &e) < 0) {
            src__fail(sink, item, "%s", e.msg);
            goto next;
        }
        why = convert(t.e[i].name, data, len, fmt, &f, msg, sizeof(msg));
        if (why) {
            src__fail(sink, item, "%s", why);
            file_doc_release(&f);
            goto next;
        }
        if (f.fm.draft && !(o && o->include_drafts)) {
            tw_log(TW_LOG_INFO, "collect", "skipping draft '%s' (use --drafts)", item);
            file_doc_release(&f);
            goto next;
        }
        memset(&d, 0, sizeof(d));
        d.kind = "article";
        d.platform = "file";
        d.url = url;
        d.source = t.path;
        d.author_name = o ? o->author_name : NULL;
        d.author_handle = o ? o->author_handle : NULL;
        d.title = f.title;
        d.subtitle = f.fm.subtitle ? f.fm.subtitle : f.page.subtitle;
        d.content = f.content;
        d.published_at = DOC_TIME_UNKNOWN;
        d.fetched_at = DOC_TIME_UNKNOWN;
        if (f.fm.date && src__parse_time(f.fm.date, strlen(f.fm.date), &when) == 0)
            d.published_at = when;
        else if (f.page.published_at != DOC_TIME_UNKNOWN)
            d.published_at = f.page.published_at;
        else if (jekyll_name(t.e[i].name, &when, &slug, &slug_len))
            d.published_at = when;
        if (sink->emit(sink->ctx, &d, &e) < 0) {
            rc = tw_errf(err, e.code ? e.code : TW_EIO, "storing '%s': %s", item, e.msg);
        }
        file_doc_release(&f);
    next:
        tw_free(data);
        tw_free(item);
        tw_free(url);
    }
    src__tree_release(&t);
    return rc;
}
