/* feed.c - RSS 2.0 / RSS 1.0 / Atom feeds with a small, lenient, bounded XML tokenizer.
 *
 * Real feeds are often not well-formed XML (Medium's exports carry a stray '<' before CDATA;
 * HTML entities such as &nbsp; appear in titles), so the tokenizer never rejects: markup it cannot
 * read is text, unknown elements are skipped, and an unterminated construct ends the input.
 *
 *     bytes --tokenize--> start(name, attrs) | end(name) | text(raw, cdata?)
 *           --feed state--> channel title/link, items[] {title, link, guid, author, dates,
 *                                                       categories, content/summary HTML}
 *
 * Element names are matched by local name; the prefix only matters where feeds reuse a local
 * name (content:encoded, dc:creator, atom:link). Nothing here allocates per token; field text
 * accumulates in bounded buffers.
 */
#include "collect/collect.h"

#include "base/buf.h"
#include "base/mem.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define XML_DEPTH_MAX 256
#define FEED_FIELD_MAX ((size_t)8 << 20)

enum feed_field {
    FF_NONE = 0,
    FF_TITLE,
    FF_LINK,
    FF_GUID,
    FF_AUTHOR,
    FF_AUTHOR_NAME,
    FF_CONTENT,
    FF_SUMMARY,
    FF_CATEGORY,
    FF_PUBLISHED,
    FF_UPDATED,
    FF_CHANNEL_TITLE,
    FF_CHANNEL_LINK,
};

struct feed_parser {
    struct feed *f;
    int depth;
    int item_depth;    // depth of the open item/entry element, -1 outside
    int channel_depth; // depth of channel/feed, -1 before
    int field_depth;   // depth of the element whose text we capture, -1 none
    enum feed_field field;
    int field_xhtml;   // Atom type="xhtml": child markup is kept as HTML
    int field_text;    // Atom type="text": text is escaped into HTML
    int found_root;
    char field_name[64]; // qualified name of the field element, to close it over open children
    struct tw_buf text;
    struct feed_item *cur;
    int err; // sticky TW_ENOMEM
};

/* ---- small helpers ---- */

static int name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && !memcmp(name, want, len);
}

/* Splits "prefix:local" into the local part; *plen gets the prefix length (0 if none). */
static const char *local_name(const char *name, size_t len, size_t *llen, size_t *plen)
{
    const char *colon = memchr(name, ':', len);
    if (!colon) {
        *llen = len;
        *plen = 0;
        return name;
    }
    *plen = (size_t)(colon - name);
    *llen = len - *plen - 1;
    return colon + 1;
}

/* Finds attribute 'want' in the raw attribute text; returns a heap copy (undecoded) or NULL. */
static char *attr_get(const char *attrs, size_t len, const char *want)
{
    size_t i = 0, wl = strlen(want);
    while (i < len) {
        size_t ns, nl;
        char q;
        while (i < len && isspace((unsigned char)attrs[i]))
            i++;
        ns = i;
        while (i < len && !isspace((unsigned char)attrs[i]) && attrs[i] != '=' && attrs[i] != '/')
            i++;
        nl = i - ns;
        while (i < len && isspace((unsigned char)attrs[i]))
            i++;
        if (i >= len || attrs[i] != '=') {
            if (nl == 0)
                i++;
            continue;
        }
        i++;
        while (i < len && isspace((unsigned char)attrs[i]))
            i++;
        if (i >= len)
            break;
        q = attrs[i];
        if (q == '"' || q == '\'') {
            size_t vs = ++i;
            while (i < len && attrs[i] != q)
                i++;
            if (nl == wl && !memcmp(attrs + ns, want, wl))
                return tw_strndup(attrs + vs, i - vs);
            i++;
        } else {
            size_t vs = i;
            while (i < len && !isspace((unsigned char)attrs[i]))
                i++;
            if (nl == wl && !memcmp(attrs + ns, want, wl))
                return tw_strndup(attrs + vs, i - vs);
        }
    }
    return NULL;
}

static void put_utf8(struct tw_buf *b, unsigned long cp)
{
    char u[4];
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        tw_buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        tw_buf_add(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        tw_buf_add(b, u, 3);
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        tw_buf_add(b, u, 4);
    }
}

static const struct {
    const char *name;
    unsigned cp;
} entities[] = {
    {"lt", '<'},        {"gt", '>'},         {"amp", '&'},        {"quot", '"'},
    {"apos", '\''},     {"nbsp", 0xA0},      {"mdash", 0x2014},   {"ndash", 0x2013},
    {"hellip", 0x2026}, {"rsquo", 0x2019},   {"lsquo", 0x2018},   {"ldquo", 0x201C},
    {"rdquo", 0x201D},  {"copy", 0xA9},      {"reg", 0xAE},       {"trade", 0x2122},
};

/* Appends s[0..len) with character and entity references decoded; unknown ones stay as is. */
static void put_decoded(struct tw_buf *b, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(s + i, '&', len - i);
        size_t j, end;
        if (!amp) {
            tw_buf_add(b, s + i, len - i);
            return;
        }
        j = (size_t)(amp - s);
        tw_buf_add(b, s + i, j - i);
        end = j + 1;
        while (end < len && end - j < 12 && s[end] != ';' && s[end] != '&' && s[end] != '<')
            end++;
        if (end >= len || s[end] != ';') {
            tw_buf_putc(b, '&');
            i = j + 1;
            continue;
        }
        if (s[j + 1] == '#') {
            unsigned long cp = 0;
            int hex = j + 2 < end && (s[j + 2] == 'x' || s[j + 2] == 'X');
            size_t k = j + 2 + (size_t)hex;
            int ok = k < end;
            for (; k < end && ok; k++) {
                int c = (unsigned char)s[k], d;
                if (isdigit(c))
                    d = c - '0';
                else if (hex && isxdigit(c))
                    d = tolower(c) - 'a' + 10;
                else {
                    ok = 0;
                    break;
                }
                cp = cp * (hex ? 16 : 10) + (unsigned long)d;
                if (cp > 0x10FFFF)
                    cp = 0x110000; /* stays invalid, no overflow */
            }
            if (ok) {
                put_utf8(b, cp);
                i = end + 1;
                continue;
            }
        } else {
            size_t n = end - j - 1, e;
            for (e = 0; e < sizeof(entities) / sizeof(entities[0]); e++)
                if (strlen(entities[e].name) == n && !memcmp(s + j + 1, entities[e].name, n))
                    break;
            if (e < sizeof(entities) / sizeof(entities[0])) {
                put_utf8(b, entities[e].cp);
                i = end + 1;
                continue;
            }
        }
        tw_buf_putc(b, '&');
        i = j + 1;
    }
}

static void put_html_escaped(struct tw_buf *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '<')
            tw_buf_puts(b, "&lt;");
        else if (s[i] == '>')
            tw_buf_puts(b, "&gt;");
        else if (s[i] == '&')
            tw_buf_puts(b, "&amp;");
        else
            tw_buf_putc(b, s[i]);
    }
}

/* ---- dates ---- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    /* Howard Hinnant's algorithm: days since 1970-01-01 in the proleptic Gregorian calendar. */
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int read_int(const char **p, int min_digits, int max_digits, int *out)
{
    int n = 0, v = 0;
    while (n < max_digits && isdigit((unsigned char)**p)) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    *out = v;
    return n >= min_digits;
}

static int64_t make_time(int y, int mo, int d, int h, int mi, int s, int off_min)
{
    if (y < 1900 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 24 || mi > 59 ||
        s > 60)
        return INT64_MIN;
    return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - (int64_t)off_min * 60;
}

static int parse_zone(const char *p, int *off_min)
{
    static const struct {
        const char *name;
        int off;
    } zones[] = {{"GMT", 0},     {"UTC", 0},     {"UT", 0},      {"Z", 0},
                 {"EST", -300},  {"EDT", -240},  {"CST", -360},  {"CDT", -300},
                 {"MST", -420},  {"MDT", -360},  {"PST", -480},  {"PDT", -420}};
    int hh = 0, mm = 0, sign;
    while (*p == ' ')
        p++;
    *off_min = 0;
    if (!*p)
        return 1;
    if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (!read_int(&p, 2, 2, &hh))
            return 0;
        if (*p == ':')
            p++;
        read_int(&p, 0, 2, &mm);
        *off_min = sign * (hh * 60 + mm);
        return 1;
    }
    for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
        if (!strncasecmp(p, zones[i].name, strlen(zones[i].name))) {
            *off_min = zones[i].off;
            return 1;
        }
    }
    return 1; /* unknown zone names: treat as UTC */
}

static int64_t parse_rfc3339(const char *p)
{
    int y, mo, d, h = 0, mi = 0, s = 0, off = 0;
    if (!read_int(&p, 4, 4, &y) || *p++ != '-' || !read_int(&p, 2, 2, &mo) || *p++ != '-' ||
        !read_int(&p, 2, 2, &d))
        return INT64_MIN;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!read_int(&p, 2, 2, &h) || *p++ != ':' || !read_int(&p, 2, 2, &mi))
            return INT64_MIN;
        if (*p == ':') {
            p++;
            if (!read_int(&p, 2, 2, &s))
                return INT64_MIN;
            if (*p == '.' || *p == ',')
                for (p++; isdigit((unsigned char)*p); p++)
                    ;
        }
        if (!parse_zone(p, &off))
            return INT64_MIN;
    }
    return make_time(y, mo, d, h, mi, s, off);
}

static int64_t parse_rfc822(const char *p)
{
    static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    int d, y, h = 0, mi = 0, s = 0, mo = 0, off = 0;
    while (*p == ' ')
        p++;
    if (isalpha((unsigned char)*p)) { /* "Tue," */
        while (isalpha((unsigned char)*p))
            p++;
        if (*p == ',')
            p++;
        while (*p == ' ')
            p++;
    }
    if (!read_int(&p, 1, 2, &d))
        return INT64_MIN;
    while (*p == ' ' || *p == '-')
        p++;
    for (int i = 0; i < 12; i++)
        if (!strncasecmp(p, months + i * 3, 3))
            mo = i + 1;
    if (!mo)
        return INT64_MIN;
    while (isalpha((unsigned char)*p))
        p++;
    while (*p == ' ' || *p == '-')
        p++;
    {
        const char *ys = p;
        if (!read_int(&p, 2, 4, &y))
            return INT64_MIN;
        if (p - ys == 2)
            y += y < 50 ? 2000 : 1900;
    }
    while (*p == ' ')
        p++;
    if (isdigit((unsigned char)*p)) {
        if (!read_int(&p, 1, 2, &h) || *p++ != ':' || !read_int(&p, 2, 2, &mi))
            return INT64_MIN;
        if (*p == ':') {
            p++;
            if (!read_int(&p, 2, 2, &s))
                return INT64_MIN;
        }
    }
    if (!parse_zone(p, &off))
        return INT64_MIN;
    return make_time(y, mo, d, h, mi, s, off);
}

int64_t feed_parse_date(const char *s)
{
    int64_t t;
    if (!s)
        return INT64_MIN;
    while (isspace((unsigned char)*s))
        s++;
    t = parse_rfc3339(s);
    if (t == INT64_MIN)
        t = parse_rfc822(s);
    return t;
}

/* ---- feed state ---- */

static void item_release(struct feed_item *it)
{
    tw_free(it->title);
    tw_free(it->link);
    tw_free(it->guid);
    tw_free(it->author);
    tw_free(it->content_html);
    tw_free(it->summary_html);
    for (size_t i = 0; i < it->n_categories; i++)
        tw_free(it->categories[i]);
    tw_free(it->categories);
}

void feed_release(struct feed *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_items; i++)
        item_release(&f->items[i]);
    tw_free(f->items);
    tw_free(f->title);
    tw_free(f->link);
    memset(f, 0, sizeof(*f));
}

/* Trims surrounding whitespace; returns a heap copy or NULL on OOM. */
static char *dup_trimmed(const char *s, size_t len)
{
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    return tw_strndup(s, len);
}

static void set_once(struct feed_parser *p, char **slot, const char *s, size_t len)
{
    char *v;
    if (*slot)
        return;
    v = dup_trimmed(s, len);
    if (!v)
        p->err = TW_ENOMEM;
    else if (!*v)
        tw_free(v);
    else
        *slot = v;
}

static void add_category(struct feed_parser *p, const char *s, size_t len)
{
    struct feed_item *it = p->cur;
    char **c;
    char *v;
    if (!it || it->n_categories >= FEED_CATEGORIES_MAX)
        return;
    v = dup_trimmed(s, len);
    if (!v) {
        p->err = TW_ENOMEM;
        return;
    }
    if (!*v) {
        tw_free(v);
        return;
    }
    c = tw_reallocarray(it->categories, it->n_categories + 1, sizeof(*c));
    if (!c) {
        tw_free(v);
        p->err = TW_ENOMEM;
        return;
    }
    it->categories = c;
    c[it->n_categories++] = v;
}

static void field_done(struct feed_parser *p)
{
    struct feed_item *it = p->cur;
    const char *s = p->text.data;
    size_t n = p->text.len;
    if (p->text.err == TW_ENOMEM)
        p->err = TW_ENOMEM;
    switch (p->field) {
    case FF_CHANNEL_TITLE:
        set_once(p, &p->f->title, s, n);
        break;
    case FF_CHANNEL_LINK:
        set_once(p, &p->f->link, s, n);
        break;
    case FF_TITLE:
        set_once(p, &it->title, s, n);
        break;
    case FF_LINK:
        set_once(p, &it->link, s, n);
        break;
    case FF_GUID:
        set_once(p, &it->guid, s, n);
        break;
    case FF_AUTHOR:
    case FF_AUTHOR_NAME:
        set_once(p, &it->author, s, n);
        break;
    case FF_CONTENT:
        set_once(p, &it->content_html, s, n);
        break;
    case FF_SUMMARY:
        set_once(p, &it->summary_html, s, n);
        break;
    case FF_CATEGORY:
        add_category(p, s, n);
        break;
    case FF_PUBLISHED:
    case FF_UPDATED: {
        char *v = dup_trimmed(s, n);
        int64_t t = v ? feed_parse_date(v) : INT64_MIN;
        if (!v)
            p->err = TW_ENOMEM;
        if (p->field == FF_PUBLISHED && it->published_at == INT64_MIN)
            it->published_at = t;
        if (p->field == FF_UPDATED && it->updated_at == INT64_MIN)
            it->updated_at = t;
        tw_free(v);
        break;
    }
    case FF_NONE:
        break;
    }
    p->field = FF_NONE;
    p->field_depth = -1;
    p->field_xhtml = p->field_text = 0;
    tw_buf_reset(&p->text);
}

static enum feed_field item_field(const char *loc, size_t ll, const char *pre, size_t pl)
{
    if (name_is(loc, ll, "title") && !pl)
        return FF_TITLE;
    if (name_is(loc, ll, "link"))
        return FF_LINK;
    if ((name_is(loc, ll, "guid") || name_is(loc, ll, "id")) && !pl)
        return FF_GUID;
    if (name_is(loc, ll, "creator") || (name_is(loc, ll, "author") && !pl))
        return FF_AUTHOR;
    if (name_is(loc, ll, "encoded") && pl == 7 && !memcmp(pre, "content", 7))
        return FF_CONTENT;
    if (name_is(loc, ll, "content") && !pl)
        return FF_CONTENT;
    if ((name_is(loc, ll, "description") || name_is(loc, ll, "summary")) && !pl)
        return FF_SUMMARY;
    if (name_is(loc, ll, "category") && !pl)
        return FF_CATEGORY;
    if (name_is(loc, ll, "pubDate") || name_is(loc, ll, "published") ||
        name_is(loc, ll, "date") || name_is(loc, ll, "issued"))
        return FF_PUBLISHED;
    if (name_is(loc, ll, "updated") || name_is(loc, ll, "modified"))
        return FF_UPDATED;
    return FF_NONE;
}

static void on_start(struct feed_parser *p, const char *name, size_t len, const char *attrs,
                     size_t alen, int empty)
{
    size_t ll, pl;
    const char *loc = local_name(name, len, &ll, &pl);
    int depth = ++p->depth; /* the element's depth */

    if (p->field != FF_NONE && p->field_xhtml) {
        /* markup inside Atom xhtml content is HTML */
        tw_buf_putc(&p->text, '<');
        tw_buf_add(&p->text, loc, ll);
        while (alen && isspace((unsigned char)*attrs))
            attrs++, alen--;
        if (alen) {
            tw_buf_putc(&p->text, ' ');
            tw_buf_add(&p->text, attrs, alen);
        }
        tw_buf_puts(&p->text, empty ? "/>" : ">");
        goto out;
    }
    if (p->field != FF_NONE) {
        if (p->field == FF_AUTHOR && name_is(loc, ll, "name")) {
            /* Atom <author><name>: the name alone, not the whole author text */
            tw_buf_reset(&p->text);
            p->field = FF_AUTHOR_NAME;
            p->field_depth = depth;
        }
        goto out;
    }
    if (name_is(loc, ll, "rss") || name_is(loc, ll, "RDF") || name_is(loc, ll, "feed") ||
        name_is(loc, ll, "channel")) {
        p->found_root = 1;
        if (name_is(loc, ll, "feed"))
            p->f->is_atom = 1;
        if (p->channel_depth < 0 && !name_is(loc, ll, "rss") && !name_is(loc, ll, "RDF"))
            p->channel_depth = depth;
        goto out;
    }
    if (p->item_depth < 0 && (name_is(loc, ll, "item") || name_is(loc, ll, "entry"))) {
        struct feed_item *items;
        if (!p->found_root || p->f->n_items >= FEED_ITEMS_MAX)
            goto out;
        items = tw_reallocarray(p->f->items, p->f->n_items + 1, sizeof(*items));
        if (!items) {
            p->err = TW_ENOMEM;
            goto out;
        }
        p->f->items = items;
        p->cur = &items[p->f->n_items++];
        memset(p->cur, 0, sizeof(*p->cur));
        p->cur->published_at = p->cur->updated_at = INT64_MIN;
        p->item_depth = depth;
        goto out;
    }
    if (p->item_depth >= 0 && depth == p->item_depth + 1) {
        enum feed_field ff = item_field(loc, ll, name, pl);
        if (ff == FF_LINK) {
            char *href = attr_get(attrs, alen, "href");
            if (href) {
                char *rel = attr_get(attrs, alen, "rel");
                if (!rel || !strcmp(rel, "alternate")) {
                    struct tw_buf b = TW_BUF_INIT;
                    put_decoded(&b, href, strlen(href));
                    if (b.err)
                        p->err = TW_ENOMEM;
                    else
                        set_once(p, &p->cur->link, b.data, b.len);
                    tw_buf_release(&b);
                }
                tw_free(rel);
                tw_free(href);
                goto out;
            }
        }
        if (ff == FF_CATEGORY) {
            char *term = attr_get(attrs, alen, "term");
            if (term) {
                struct tw_buf b = TW_BUF_INIT;
                put_decoded(&b, term, strlen(term));
                add_category(p, b.data, b.len);
                tw_buf_release(&b);
                tw_free(term);
                goto out;
            }
        }
        if (ff == FF_NONE || empty)
            goto out;
        p->field = ff;
        p->field_depth = depth;
        snprintf(p->field_name, sizeof(p->field_name), "%.*s", (int)len, name);
        if (ff == FF_CONTENT || ff == FF_SUMMARY) {
            char *type = attr_get(attrs, alen, "type");
            if (type && !strcmp(type, "xhtml"))
                p->field_xhtml = 1;
            else if (type && (!strcmp(type, "text") || !strcmp(type, "text/plain")) &&
                     p->f->is_atom)
                p->field_text = 1;
            tw_free(type);
        }
        goto out;
    }
    if (p->item_depth < 0 && p->channel_depth >= 0 && depth == p->channel_depth + 1 && !pl) {
        if (name_is(loc, ll, "title") && !empty) {
            p->field = FF_CHANNEL_TITLE;
            p->field_depth = depth;
            snprintf(p->field_name, sizeof(p->field_name), "title");
        } else if (name_is(loc, ll, "link")) {
            char *href = attr_get(attrs, alen, "href");
            char *rel = href ? attr_get(attrs, alen, "rel") : NULL;
            if (href && (!rel || !strcmp(rel, "alternate")))
                set_once(p, &p->f->link, href, strlen(href));
            else if (!href && !empty) {
                p->field = FF_CHANNEL_LINK;
                p->field_depth = depth;
                snprintf(p->field_name, sizeof(p->field_name), "link");
            }
            tw_free(href);
            tw_free(rel);
        }
    }
out:
    if (empty)
        p->depth--;
    if (p->depth >= XML_DEPTH_MAX)
        p->depth = XML_DEPTH_MAX; /* pathological nesting: keep counting, bounded */
}

static void on_end(struct feed_parser *p, const char *name, size_t len)
{
    size_t ll, pl;
    const char *loc = local_name(name, len, &ll, &pl);
    if (p->item_depth >= 0 && p->depth > p->item_depth && !p->field_xhtml &&
        (name_is(loc, ll, "item") || name_is(loc, ll, "entry"))) {
        /* children left open: the item's end tag closes them all */
        if (p->field != FF_NONE)
            field_done(p);
        p->depth = p->item_depth;
    }
    if (p->field != FF_NONE && p->field != FF_AUTHOR_NAME && !p->field_xhtml &&
        p->depth > p->field_depth && name_is(name, len, p->field_name))
        p->depth = p->field_depth; /* "<title>a <b>b</title>": the field's end tag closes it */
    if (p->field != FF_NONE && p->field_depth == p->depth) {
        field_done(p);
    } else if (p->field == FF_AUTHOR_NAME && p->depth < p->field_depth) {
        field_done(p);
    } else if (p->field != FF_NONE && p->field_xhtml && p->depth > p->field_depth) {
        tw_buf_puts(&p->text, "</");
        tw_buf_add(&p->text, loc, ll);
        tw_buf_putc(&p->text, '>');
    }
    if (p->item_depth >= 0 && p->depth == p->item_depth) {
        if (p->field != FF_NONE)
            field_done(p);
        p->item_depth = -1;
        p->cur = NULL;
    }
    if (p->depth > 0)
        p->depth--;
}

static void on_text(struct feed_parser *p, const char *s, size_t len, int cdata)
{
    if (p->field == FF_NONE || p->depth < p->field_depth)
        return;
    if (p->field == FF_AUTHOR && p->depth > p->field_depth)
        return; /* text of other author children (email, uri) */
    if (p->field_xhtml && !cdata)
        tw_buf_add(&p->text, s, len); /* already HTML */
    else if (p->field_text) {
        struct tw_buf t = TW_BUF_INIT;
        if (cdata)
            tw_buf_add(&t, s, len);
        else
            put_decoded(&t, s, len);
        put_html_escaped(&p->text, t.data, t.len);
        tw_buf_release(&t);
    } else if (cdata)
        tw_buf_add(&p->text, s, len);
    else
        put_decoded(&p->text, s, len);
}

/* ---- tokenizer ---- */

static const char *find(const char *s, const char *end, const char *pat)
{
    size_t n = strlen(pat);
    if ((size_t)(end - s) < n)
        return NULL;
    return memmem(s, (size_t)(end - s), pat, n);
}

static int is_name_start(int c)
{
    return isalpha(c) || c == '_' || c == ':' || c >= 0x80;
}

static int is_name_char(int c)
{
    return is_name_start(c) || isdigit(c) || c == '-' || c == '.';
}

static void tokenize(struct feed_parser *p, const char *s, size_t len)
{
    const char *q = s, *end = s + len;
    while (q < end && !p->err) {
        const char *lt = memchr(q, '<', (size_t)(end - q)), *gt;
        if (!lt) {
            on_text(p, q, (size_t)(end - q), 0);
            return;
        }
        if (lt > q)
            on_text(p, q, (size_t)(lt - q), 0);
        q = lt;
        if (end - q >= 4 && !memcmp(q, "<!--", 4)) {
            gt = find(q + 4, end, "-->");
            q = gt ? gt + 3 : end;
        } else if (end - q >= 9 && !memcmp(q, "<![CDATA[", 9)) {
            gt = find(q + 9, end, "]]>");
            on_text(p, q + 9, (size_t)((gt ? gt : end) - (q + 9)), 1);
            q = gt ? gt + 3 : end;
        } else if (end - q >= 2 && q[1] == '?') {
            gt = find(q + 2, end, "?>");
            q = gt ? gt + 2 : end;
        } else if (end - q >= 2 && q[1] == '!') {
            /* DOCTYPE; an internal subset ends with "]>" */
            const char *br = memchr(q, '[', (size_t)(end - q));
            gt = memchr(q, '>', (size_t)(end - q));
            if (br && gt && br < gt)
                gt = find(br, end, "]>");
            q = gt ? gt + 1 : end;
        } else if (end - q >= 2 && q[1] == '/' && end - q >= 3 &&
                   is_name_start((unsigned char)q[2])) {
            const char *n = q + 2, *ne = n;
            while (ne < end && is_name_char((unsigned char)*ne))
                ne++;
            on_end(p, n, (size_t)(ne - n));
            gt = memchr(ne, '>', (size_t)(end - ne));
            q = gt ? gt + 1 : end;
        } else if (end - q >= 2 && is_name_start((unsigned char)q[1])) {
            const char *n = q + 1, *ne = n, *a;
            char quote = 0;
            int empty;
            while (ne < end && is_name_char((unsigned char)*ne))
                ne++;
            /* the tag ends at the first '>' outside quotes */
            for (a = ne; a < end; a++) {
                if (quote) {
                    if (*a == quote)
                        quote = 0;
                } else if (*a == '"' || *a == '\'') {
                    quote = *a;
                } else if (*a == '>') {
                    break;
                }
            }
            if (a >= end)
                return; /* unterminated tag: end of input */
            empty = a > ne && a[-1] == '/';
            on_start(p, n, (size_t)(ne - n), ne, (size_t)((empty ? a - 1 : a) - ne), empty);
            q = a + 1;
        } else {
            /* A '<' that starts no markup is text. Medium exports write "<<![CDATA[": a stray
             * '<' right before markup is dropped, not glued to the content. */
            if (!(end - q >= 2 && q[1] == '<'))
                on_text(p, q, 1, 0);
            q++;
        }
    }
}

int feed_parse(const char *xml, size_t len, struct feed *out, struct tw_err *err)
{
    struct feed_parser p;

    memset(out, 0, sizeof(*out));
    if (len > FEED_INPUT_MAX)
        return tw_errf(err, TW_ELIMIT, "feed of %zu bytes is larger than the limit of %zu", len,
                       FEED_INPUT_MAX);
    memset(&p, 0, sizeof(p));
    p.f = out;
    p.item_depth = p.channel_depth = p.field_depth = -1;
    tw_buf_init(&p.text, FEED_FIELD_MAX);
    /* a UTF-8 byte order mark */
    if (len >= 3 && !memcmp(xml, "\xEF\xBB\xBF", 3))
        xml += 3, len -= 3;
    tokenize(&p, xml, len);
    if (!p.err && p.field != FF_NONE && p.cur)
        field_done(&p); /* truncated input: keep what the open field had */
    tw_buf_release(&p.text);
    if (p.err)
        return tw_errf(err, TW_ENOMEM, "out of memory parsing feed");
    if (!p.found_root)
        return tw_errf(err, TW_EFORMAT, "not an RSS or Atom feed (no <rss>, <channel> or <feed>)");
    return TW_OK;
}

bool feed_is_feed(const char *body, size_t len)
{
    /* The root element within the first KiB, after the prolog and comments. */
    size_t n = len < 1024 ? len : 1024;
    const char *p = body, *end = body + n;
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt || end - lt < 2)
            return false;
        if (lt[1] == '?' || lt[1] == '!') {
            p = lt + 2;
            continue;
        }
        return (end - lt >= 4 && !memcmp(lt, "<rss", 4)) ||
               (end - lt >= 5 && !memcmp(lt, "<feed", 5)) ||
               (end - lt >= 8 && !memcmp(lt, "<rdf:RDF", 8));
    }
    return false;
}
