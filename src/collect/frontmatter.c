/* frontmatter.c - Jekyll/Hugo front matter: YAML between "---" fences, TOML between "+++" fences.
 *
 * Only what a document needs is read: flat scalar keys (title, subtitle/description, author, date,
 * draft/published) and the tags list (flow "[a, b]", a YAML block list, or a TOML array). Nested
 * maps, anchors and other YAML features are skipped, not interpreted. The front matter is bounded
 * (FM_MAX bytes) and every value is bounded by it.
 */
#include "collect/collect_int.h"

#include "base/buf.h"
#include "base/mem.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define FM_MAX ((size_t)256 << 10)

struct fm_line {
    const char *s;
    size_t len;
    int no; // 1-based line number in the file
};

/* Next line of text[*pos..len) without its line end; false at the end. */
static bool next_line(const char *text, size_t len, size_t *pos, struct fm_line *l)
{
    size_t i = *pos, e;
    if (i >= len)
        return false;
    e = i;
    while (e < len && text[e] != '\n')
        e++;
    l->s = text + i;
    l->len = e - i;
    if (l->len && l->s[l->len - 1] == '\r')
        l->len--;
    l->no++;
    *pos = e < len ? e + 1 : e;
    return true;
}

static bool is_fence(const struct fm_line *l, const char *fence)
{
    size_t n = l->len;
    while (n > 3 && (l->s[n - 1] == ' ' || l->s[n - 1] == '\t'))
        n--;
    return n == 3 && !memcmp(l->s, fence, 3);
}

static void trim(const char **s, size_t *len)
{
    while (*len && isspace((unsigned char)**s))
        (*s)++, (*len)--;
    while (*len && isspace((unsigned char)(*s)[*len - 1]))
        (*len)--;
}

/* Appends the UTF-8 encoding of code point cp. */
static void put_utf8(struct tw_buf *b, unsigned long cp)
{
    unsigned char u[4];
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        cp = 0xfffd;
    if (cp < 0x80) {
        tw_buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xc0 | (cp >> 6));
        u[1] = (unsigned char)(0x80 | (cp & 0x3f));
        tw_buf_add(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xe0 | (cp >> 12));
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp & 0x3f));
        tw_buf_add(b, u, 3);
    } else {
        u[0] = (unsigned char)(0xf0 | (cp >> 18));
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (unsigned char)(0x80 | (cp & 0x3f));
        tw_buf_add(b, u, 4);
    }
}

/* Decodes one scalar at s[0..len): "double" (with escapes), 'single' ('' is a quote) or plain
 * (an inline " #" comment ends it). *used is how many bytes the scalar took (for lists).
 * 'stop' lists extra characters that end a plain scalar (",]" inside flow lists). */
static char *scalar(const char *s, size_t len, const char *stop, size_t *used)
{
    struct tw_buf b = TW_BUF_INIT;
    size_t i = 0;
    tw_buf_init(&b, FM_MAX);
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i < len && s[i] == '"') {
        for (i++; i < len && s[i] != '"'; i++) {
            if (s[i] != '\\' || i + 1 >= len) {
                tw_buf_putc(&b, s[i]);
                continue;
            }
            switch (s[++i]) {
            case 'n':
                tw_buf_putc(&b, '\n');
                break;
            case 't':
                tw_buf_putc(&b, '\t');
                break;
            case 'r':
                break;
            case '0':
                break;
            case 'u': {
                unsigned long cp = 0;
                int k;
                for (k = 0; k < 4 && i + 1 < len && isxdigit((unsigned char)s[i + 1]); k++) {
                    char c = s[++i];
                    cp = cp * 16 + (unsigned long)(isdigit((unsigned char)c)
                                                       ? c - '0'
                                                       : (tolower(c) - 'a' + 10));
                }
                put_utf8(&b, k == 4 ? cp : 0xfffd);
                break;
            }
            default:
                tw_buf_putc(&b, s[i]);
                break;
            }
        }
        if (i < len)
            i++; // closing quote
    } else if (i < len && s[i] == '\'') {
        for (i++; i < len; i++) {
            if (s[i] == '\'') {
                if (i + 1 < len && s[i + 1] == '\'') {
                    tw_buf_putc(&b, '\'');
                    i++;
                    continue;
                }
                i++;
                break;
            }
            tw_buf_putc(&b, s[i]);
        }
    } else {
        size_t start = i, end;
        while (i < len && !(stop && strchr(stop, s[i])) &&
               !(s[i] == '#' && i > start && (s[i - 1] == ' ' || s[i - 1] == '\t')))
            i++;
        end = i;
        while (end > start && isspace((unsigned char)s[end - 1]))
            end--;
        tw_buf_add(&b, s + start, end - start);
    }
    *used = i;
    if (b.err) {
        tw_buf_release(&b);
        return NULL;
    }
    return tw_buf_detach(&b, NULL);
}

static void add_tag(struct fm_meta *m, char *t)
{
    if (!t)
        return;
    if (!t[0] || m->n_tags >= FM_TAGS_MAX) {
        tw_free(t);
        return;
    }
    m->tags[m->n_tags++] = t;
}

/* Flow list "[a, 'b', "c"]" (the brackets optional for YAML "tags: a b" we split on spaces). */
static void flow_list(struct fm_meta *m, const char *s, size_t len)
{
    size_t i = 0;
    trim(&s, &len);
    if (len && s[0] == '[') {
        s++, len--;
        if (len && s[len - 1] == ']')
            len--;
        while (i < len) {
            size_t used = 0;
            while (i < len && (s[i] == ' ' || s[i] == ','))
                i++;
            if (i >= len)
                break;
            add_tag(m, scalar(s + i, len - i, ",]", &used));
            i += used ? used : 1;
        }
        return;
    }
    /* Jekyll also accepts a space-separated string. */
    while (i < len) {
        size_t start;
        while (i < len && (s[i] == ' ' || s[i] == ','))
            i++;
        start = i;
        while (i < len && s[i] != ' ' && s[i] != ',')
            i++;
        if (i > start)
            add_tag(m, tw_strndup(s + start, i - start));
    }
}

static bool truthy(const char *v)
{
    return v && (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"));
}

/* Stores one key's scalar value; unknown keys are ignored. */
static void set_key(struct fm_meta *m, const char *key, size_t key_len, char *v)
{
#define KEY(k) (key_len == sizeof(k) - 1 && !strncasecmp(key, k, key_len))
    char **slot = NULL;
    if (KEY("title"))
        slot = &m->title;
    else if (KEY("subtitle") || (KEY("description") && !m->subtitle))
        slot = &m->subtitle;
    else if (KEY("author"))
        slot = &m->author;
    else if (KEY("date") || (KEY("publishdate") && !m->date))
        slot = &m->date;
    else if (KEY("draft"))
        m->draft = m->draft || truthy(v);
    else if (KEY("published"))
        m->draft = m->draft || (v && !strcasecmp(v, "false"));
#undef KEY
    if (slot) {
        tw_free(*slot);
        *slot = v;
    } else {
        tw_free(v);
    }
}

static bool key_is(const char *key, size_t key_len, const char *want)
{
    return key_len == strlen(want) && !strncasecmp(key, want, key_len);
}

/* A YAML block scalar ("|" or ">") continues on the more-indented lines that follow. */
static char *block_scalar(const char *text, size_t end, size_t *pos, struct fm_line *l, bool fold)
{
    struct tw_buf b = TW_BUF_INIT;
    struct fm_line nl;
    tw_buf_init(&b, FM_MAX);
    for (;;) {
        size_t save = *pos;
        nl = *l;
        if (!next_line(text, end, pos, &nl))
            break;
        if (nl.len && nl.s[0] != ' ' && nl.s[0] != '\t') {
            *pos = save;
            break;
        }
        *l = nl;
        {
            const char *s = nl.s;
            size_t n = nl.len;
            trim(&s, &n);
            if (b.len)
                tw_buf_putc(&b, fold ? ' ' : '\n');
            tw_buf_add(&b, s, n);
        }
    }
    if (b.err) {
        tw_buf_release(&b);
        return NULL;
    }
    return tw_buf_detach(&b, NULL);
}

static int parse_yaml(const char *text, size_t end, size_t pos, int first_no, struct fm_meta *m,
                      struct tw_err *err)
{
    struct fm_line l = {NULL, 0, first_no};
    bool in_tags = false;
    while (next_line(text, end, &pos, &l)) {
        const char *s = l.s, *colon;
        size_t n = l.len, key_len;
        if (n == 0 || s[0] == '#')
            continue;
        if (s[0] == ' ' || s[0] == '\t' || s[0] == '-') {
            /* A block list item ("- c") under tags:, or the inside of a nested map: skipped. */
            trim(&s, &n);
            if (in_tags && n && s[0] == '-') {
                size_t used;
                add_tag(m, scalar(s + 1, n - 1, NULL, &used));
            }
            continue;
        }
        in_tags = false;
        colon = memchr(s, ':', n);
        if (!colon)
            return tw_errf(err, TW_EFORMAT,
                           "front matter line %d: expected 'key: value', got '%.*s'", l.no,
                           (int)(n < 40 ? n : 40), s);
        key_len = (size_t)(colon - s);
        while (key_len && (s[key_len - 1] == ' ' || s[key_len - 1] == '\t'))
            key_len--;
        {
            const char *v = colon + 1;
            size_t vn = n - (size_t)(colon + 1 - s), used;
            trim(&v, &vn);
            if (key_is(s, key_len, "tags") || key_is(s, key_len, "categories")) {
                if (!key_is(s, key_len, "tags") && m->n_tags)
                    continue;
                in_tags = vn == 0;
                flow_list(m, v, vn);
                continue;
            }
            if (vn && (v[0] == '|' || v[0] == '>')) {
                set_key(m, s, key_len, block_scalar(text, end, &pos, &l, v[0] == '>'));
                continue;
            }
            set_key(m, s, key_len, scalar(v, vn, NULL, &used));
        }
    }
    return TW_OK;
}

static int parse_toml(const char *text, size_t end, size_t pos, int first_no, struct fm_meta *m,
                      struct tw_err *err)
{
    struct fm_line l = {NULL, 0, first_no};
    while (next_line(text, end, &pos, &l)) {
        const char *s = l.s, *eq, *line_end;
        size_t n = l.len, key_len, used;
        trim(&s, &n);
        line_end = s + n;
        if (n == 0 || s[0] == '#')
            continue;
        if (s[0] == '[')
            break; // a table: its keys are not the page's own
        eq = memchr(s, '=', n);
        if (!eq)
            return tw_errf(err, TW_EFORMAT,
                           "front matter line %d: expected 'key = value', got '%.*s'", l.no,
                           (int)(n < 40 ? n : 40), s);
        key_len = (size_t)(eq - s);
        while (key_len && (s[key_len - 1] == ' ' || s[key_len - 1] == '\t'))
            key_len--;
        if (key_len >= 2 && (s[0] == '"' || s[0] == '\'') && s[key_len - 1] == s[0])
            s++, key_len -= 2;
        {
            const char *v = eq + 1;
            size_t vn = (size_t)(line_end - v);
            trim(&v, &vn);
            if (key_is(s, key_len, "tags")) {
                flow_list(m, v, vn);
                continue;
            }
            set_key(m, s, key_len, scalar(v, vn, NULL, &used));
        }
    }
    return TW_OK;
}

int fm_parse(const char *text, size_t len, struct fm_meta *m, struct tw_err *err)
{
    struct fm_line l = {NULL, 0, 0};
    size_t pos = 0, body, end;
    const char *fence;
    int rc;

    memset(m, 0, sizeof(*m));
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3))
        pos = 3;
    if (!next_line(text, len, &pos, &l))
        return TW_OK;
    if (is_fence(&l, "---"))
        fence = "---";
    else if (is_fence(&l, "+++"))
        fence = "+++";
    else
        return TW_OK;
    /* Find the closing fence ("..." also ends YAML). */
    {
        struct fm_line c = l;
        size_t p = pos;
        end = (size_t)-1;
        while (p - pos <= FM_MAX && next_line(text, len, &p, &c)) {
            if (is_fence(&c, fence) || (fence[0] == '-' && is_fence(&c, "..."))) {
                end = (size_t)(c.s - text);
                body = p;
                break;
            }
        }
        if (end == (size_t)-1)
            return tw_errf(err, TW_EFORMAT,
                           "front matter opened with '%s' on line %d is never closed (within %zu "
                           "bytes)",
                           fence, l.no, FM_MAX);
    }
    rc = fence[0] == '-' ? parse_yaml(text, end, pos, l.no, m, err)
                         : parse_toml(text, end, pos, l.no, m, err);
    if (rc < 0) {
        fm_meta_release(m);
        return rc;
    }
    m->body_off = body;
    return TW_OK;
}

void fm_meta_release(struct fm_meta *m)
{
    if (!m)
        return;
    tw_free(m->title);
    tw_free(m->subtitle);
    tw_free(m->author);
    tw_free(m->date);
    for (int i = 0; i < m->n_tags; i++)
        tw_free(m->tags[i]);
    memset(m, 0, sizeof(*m));
}
