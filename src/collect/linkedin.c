/* linkedin.c - LinkedIn data export: Shares.csv (alone, in the export folder, or in its zip).
 *
 *     Date,ShareLink,ShareCommentary,SharedUrl,MediaUrl,Visibility
 *     2023-05-04 14:03:21,https://www.linkedin.com/feed/update/urn:li:share:1/,"Line one""
 *     """"
 *     ""Line two",,,MEMBER_NETWORK
 *
 * LinkedIn writes each line break of a post as quote, newline, quote after CSV decoding (so an
 * inner line reads "text" and a blank line reads ""); unquote_lines() undoes that.
 */
#include "collect/collect_int.h"

#include "base/log.h"
#include "base/mem.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define LI_TITLE_MAX 100

/* True when every line break in s is written as "\n" (quote, LF, quote), CR LF allowed. */
static bool has_quoted_breaks(const char *s, size_t len)
{
    bool any = false;
    for (size_t i = 0; i < len; i++) {
        size_t nl = i;
        if (s[i] != '\n')
            continue;
        if (nl > 0 && s[nl - 1] == '\r')
            nl--;
        if (nl == 0 || s[nl - 1] != '"' || i + 1 >= len || s[i + 1] != '"')
            return false;
        any = true;
    }
    return any;
}

/* Removes LinkedIn's quotes around line breaks in place; returns the new length. */
static size_t unquote_lines(char *s, size_t len)
{
    size_t w = 0;
    if (!has_quoted_breaks(s, len))
        return len;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' && i + 2 < len && s[i + 1] == '\n' && s[i + 2] == '"') {
            s[w++] = '\n';
            i += 2;
        } else if (s[i] == '"' && i + 3 < len && s[i + 1] == '\r' && s[i + 2] == '\n' &&
                   s[i + 3] == '"') {
            s[w++] = '\n';
            i += 3;
        } else {
            s[w++] = s[i];
        }
    }
    s[w] = '\0';
    return w;
}

/* The post's first line, cut at a UTF-8 boundary near LI_TITLE_MAX bytes with "…". */
static char *title_of(const char *content)
{
    size_t n = strcspn(content, "\n"), cut = n;
    char *t;
    if (n <= LI_TITLE_MAX)
        return tw_strndup(content, n);
    cut = LI_TITLE_MAX;
    while (cut > 0 && ((unsigned char)content[cut] & 0xc0) == 0x80)
        cut--;
    t = tw_malloc(cut + 4);
    if (!t)
        return NULL;
    memcpy(t, content, cut);
    memcpy(t + cut, "\xe2\x80\xa6", 4);
    return t;
}

static bool want_shares(const char *name, void *ctx)
{
    const char *base = strrchr(name, '/');
    (void)ctx;
    return !strcasecmp(base ? base + 1 : name, "Shares.csv");
}

struct li_cols {
    int date, link, text;
};

static int import_csv(const char *csv, size_t len, const char *item, const char *source,
                      const struct src_opts *o, struct src_sink *sink, struct tw_err *err)
{
    struct csv_reader r;
    struct li_cols col;
    struct tw_err e = TW_ERR_INIT;
    int rc;

    csv_init(&r, csv, len);
    rc = csv_next(&r, &e);
    if (rc <= 0) {
        csv_release(&r);
        return tw_errf(err, TW_EFORMAT, "'%s': %s", item,
                       rc == 0 ? "empty file, no header" : e.msg);
    }
    col.date = csv_column(&r, "Date");
    col.link = csv_column(&r, "ShareLink");
    col.text = csv_column(&r, "ShareCommentary");
    if (col.link < 0 || col.text < 0) {
        csv_release(&r);
        return tw_errf(err, TW_EFORMAT,
                       "'%s': not a LinkedIn Shares.csv (no ShareLink and ShareCommentary columns)",
                       item);
    }
    for (;;) {
        char row[64], *content = NULL, *title = NULL;
        struct doc d;
        size_t clen;
        int64_t t;
        long line;

        tw_err_clear(&e);
        rc = csv_next(&r, &e);
        if (rc == 0)
            break;
        line = r.line;
        if (rc < 0) {
            if (rc == TW_ENOMEM) {
                rc = tw_errf(err, rc, "'%s': %s", item, e.msg);
                break;
            }
            src__fail(sink, item, "%s", e.msg);
            continue;
        }
        if (r.n_fields == 1 && r.field_len[0] == 0)
            continue; // blank line
        snprintf(row, sizeof(row), "row at line %ld", line);
        if (r.n_fields <= col.text || r.n_fields <= col.link) {
            src__fail(sink, item, "%s: %d fields, the header has more", row, r.n_fields);
            continue;
        }
        if (r.field_len[col.text] == 0)
            continue; // a plain reshare: nothing the author wrote
        if (r.field_len[col.link] == 0) {
            src__fail(sink, item, "%s: no ShareLink", row);
            continue;
        }
        clen = unquote_lines((char *)r.field[col.text], r.field_len[col.text]);
        if (src__utf8_invalid_at(r.field[col.text], clen) < clen) {
            src__fail(sink, item, "%s: ShareCommentary is not valid UTF-8", row);
            continue;
        }
        if (src__text_normalize(r.field[col.text], clen, &content, &e) < 0) {
            src__fail(sink, item, "%s: %s", row, e.msg);
            continue;
        }
        if (!content[0]) {
            tw_free(content);
            continue;
        }
        title = title_of(content);
        memset(&d, 0, sizeof(d));
        d.kind = "post";
        d.platform = "linkedin";
        d.url = r.field[col.link];
        d.source = source;
        d.author_name = o ? o->author_name : NULL;
        d.author_handle = o ? o->author_handle : NULL;
        d.title = title;
        d.content = content;
        d.published_at = DOC_TIME_UNKNOWN;
        d.fetched_at = DOC_TIME_UNKNOWN;
        if (col.date >= 0 && r.n_fields > col.date &&
            src__parse_time(r.field[col.date], r.field_len[col.date], &t) == 0)
            d.published_at = t;
        tw_err_clear(&e);
        rc = title ? sink->emit(sink->ctx, &d, &e) : tw_errf(&e, TW_ENOMEM, "out of memory");
        tw_free(title);
        tw_free(content);
        if (rc < 0) {
            rc = tw_errf(err, e.code ? e.code : rc, "storing '%s' %s: %s", item, row, e.msg);
            break;
        }
    }
    csv_release(&r);
    return rc < 0 ? rc : TW_OK;
}

int src_linkedin_import(const char *path, const struct src_opts *o, struct src_sink *sink,
                        struct tw_err *err)
{
    struct src_tree t;
    long found = -1;
    char *data = NULL, *item = NULL;
    size_t len;
    int rc = src__tree_open(path, want_shares, NULL, &t, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < t.n && found < 0; i++)
        if (want_shares(t.e[i].name, NULL) &&
            (t.is_file || !strchr(t.e[i].name, '/') ||
             strchr(t.e[i].name, '/') == strrchr(t.e[i].name, '/')))
            found = (long)i;
    if (found < 0) {
        rc = tw_errf(err, TW_ENOENT, "'%s': no Shares.csv in this LinkedIn export", path);
        goto done;
    }
    item = src__tree_item(&t, (size_t)found);
    if (!item) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory importing '%s'", path);
        goto done;
    }
    rc = src__tree_read(&t, (size_t)found, &data, &len, err);
    if (rc < 0) {
        tw_err_ctx(err, "'%s'", item);
        goto done;
    }
    rc = import_csv(data, len, item, t.path, o, sink, err);
done:
    tw_free(data);
    tw_free(item);
    src__tree_release(&t);
    return rc;
}
