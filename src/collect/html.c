/* html.c - HTML to markdown-ish text, readability-style article extraction, challenge pages.
 *
 * Rendering walks the gumbo tree iteratively (an explicit stack, so hostile nesting cannot blow
 * the C stack) and writes into a bounded buffer with a small block model: a block element asks for
 * a line break or a blank line before the next content, and the next content writes them together
 * with the line's prefix (block quote "> ", list indentation and marker, heading "# "). Text
 * outside <pre> has its white space collapsed; <pre> text is collected raw and written as a fenced
 * block. The result goes through src__text_normalize (UTF-8 repair, NFC, blank-line runs).
 */
#include "collect/html.h"

#include "base/buf.h"
#include "base/mem.h"
#include "collect/collect_int.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <gumbo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTML_LIST_MAX   16              // list nesting tracked for markers and indentation
#define HTML_TEXT_MAX   DOC_CONTENT_MAX // rendered text bound
#define HTML_JSONLD_MAX ((size_t)1 << 20)
#define HTML_DEPTH_MAX  2000 // estimated element nesting refused before parsing

/* ---- rendering ---- */

struct render {
    struct tw_buf out;
    struct tw_buf pre; // raw text of the current <pre>
    int pending_nl;    // newlines owed before the next content (0..2)
    bool space;        // a collapsed white space owed before the next content
    bool cell_sep;     // a " | " owed (table cell after the first)
    int quote;         // block quote depth
    int last_quote;    // quote depth of the last content written
    int n_list;        // list nesting
    bool list_ordered[HTML_LIST_MAX];
    int list_n[HTML_LIST_MAX];
    int in_li;       // open <li> count
    char marker[24]; // pending line marker ("# ", "- ", "3. "); "" when none
    int pre_depth;   // > 0 inside <pre>
};

static bool has_attr_word(const GumboElement *el, const char *name, const char *const *words)
{
    const GumboAttribute *a = gumbo_get_attribute(&el->attributes, name);
    if (!a || !a->value)
        return false;
    for (int i = 0; words[i]; i++)
        if (src__memcasemem(a->value, strlen(a->value), words[i]))
            return true;
    return false;
}

/* Elements whose whole subtree is not content. */
static bool is_dropped(const GumboNode *n)
{
    static const char *const widgets[] = {"share",          "subscribe", "social", "newsletter",
                                          "button-wrapper", "cookie",    "advert", "sidebar",
                                          "popup",          "modal",     NULL};
    const GumboElement *el = &n->v.element;
    const GumboAttribute *a;
    switch (el->tag) {
    case GUMBO_TAG_SCRIPT:
    case GUMBO_TAG_STYLE:
    case GUMBO_TAG_NOSCRIPT:
    case GUMBO_TAG_TEMPLATE:
    case GUMBO_TAG_NAV:
    case GUMBO_TAG_FOOTER:
    case GUMBO_TAG_HEADER:
    case GUMBO_TAG_ASIDE:
    case GUMBO_TAG_FORM:
    case GUMBO_TAG_IFRAME:
    case GUMBO_TAG_SVG:
    case GUMBO_TAG_MATH:
    case GUMBO_TAG_BUTTON:
    case GUMBO_TAG_SELECT:
    case GUMBO_TAG_TEXTAREA:
    case GUMBO_TAG_OBJECT:
    case GUMBO_TAG_EMBED:
    case GUMBO_TAG_CANVAS:
    case GUMBO_TAG_AUDIO:
    case GUMBO_TAG_VIDEO:
    case GUMBO_TAG_HEAD:
    case GUMBO_TAG_TITLE:
    case GUMBO_TAG_INPUT:
        return true;
    default:
        break;
    }
    if (gumbo_get_attribute(&el->attributes, "hidden"))
        return true;
    a = gumbo_get_attribute(&el->attributes, "aria-hidden");
    if (a && a->value && !strcasecmp(a->value, "true"))
        return true;
    a = gumbo_get_attribute(&el->attributes, "style");
    if (a && a->value && src__memcasemem(a->value, strlen(a->value), "display:none"))
        return true;
    return has_attr_word(el, "class", widgets) || has_attr_word(el, "id", widgets);
}

static void put_prefix(struct render *r, bool first_line)
{
    for (int i = 0; i < r->quote; i++)
        tw_buf_puts(&r->out, "> ");
    if (r->in_li && r->n_list > 0) {
        int indent = 2 * (r->n_list - 1) + (first_line && r->marker[0] ? 0 : 2);
        for (int i = 0; i < indent; i++)
            tw_buf_putc(&r->out, ' ');
    }
}

/* Writes what is owed before content: line breaks, the line prefix and marker, or a space. */
static void begin_content(struct render *r)
{
    bool new_line = r->out.len == 0;
    if (r->out.len > 0 && r->pending_nl > 0) {
        for (int i = 0; i < r->pending_nl; i++) {
            tw_buf_putc(&r->out, '\n');
            /* A blank line inside a quote keeps the quote's marker; one that leaves or enters
             * a quote does not. */
            int depth = r->quote < r->last_quote ? r->quote : r->last_quote;
            if (i + 1 < r->pending_nl)
                for (int k = 0; k < depth; k++)
                    tw_buf_putc(&r->out, '>');
        }
        new_line = true;
    }
    r->pending_nl = 0;
    r->last_quote = r->quote;
    if (new_line) {
        put_prefix(r, true);
        if (r->marker[0])
            tw_buf_puts(&r->out, r->marker);
        r->marker[0] = '\0';
        r->space = false;
        r->cell_sep = false;
        return;
    }
    if (r->cell_sep) {
        tw_buf_puts(&r->out, " | ");
        r->cell_sep = false;
        r->space = false;
    } else if (r->space) {
        tw_buf_putc(&r->out, ' ');
        r->space = false;
    }
}

static void block_break(struct render *r, int n)
{
    if (r->out.len > 0 && r->pending_nl < n)
        r->pending_nl = n;
    r->space = false;
}

static void emit_text(struct render *r, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    if (r->pre_depth > 0) {
        tw_buf_puts(&r->pre, s);
        return;
    }
    while (*p) {
        size_t run = 0;
        if (isspace(*p) || (p[0] == 0xc2 && p[1] == 0xa0)) {
            if (r->out.len > 0)
                r->space = true;
            p += *p == 0xc2 ? 2 : 1;
            continue;
        }
        while (p[run] && !isspace(p[run]) && !(p[run] == 0xc2 && p[run + 1] == 0xa0))
            run++;
        begin_content(r);
        tw_buf_add(&r->out, p, run);
        p += run;
    }
}

/* Writes the collected <pre> text as a fenced block: leading and trailing blank lines go, the
 * common indentation goes, and a first line indented only by the markup's own layout is
 * aligned with the rest. */
static void flush_pre(struct render *r)
{
    const char *s = r->pre.data, *end = s + r->pre.len;
    size_t min_indent = (size_t)-1, first_indent = 0;
    bool dropped_blank = false;
    const char *first;

    /* Skip leading blank lines. */
    for (;;) {
        const char *q = s;
        while (q < end && (*q == ' ' || *q == '\t'))
            q++;
        if (q < end && *q == '\n') {
            s = q + 1;
            dropped_blank = true;
            continue;
        }
        break;
    }
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    if (s >= end) {
        tw_buf_reset(&r->pre);
        return;
    }
    first = s;
    for (const char *q = s; q < end;) {
        const char *eol = memchr(q, '\n', (size_t)(end - q));
        size_t ind = 0;
        if (!eol)
            eol = end;
        while (q + ind < eol && (q[ind] == ' ' || q[ind] == '\t'))
            ind++;
        if (q == first)
            first_indent = ind;
        else if (q + ind < eol && ind < min_indent)
            min_indent = ind;
        q = eol + 1;
    }
    if (min_indent == (size_t)-1 || (!dropped_blank && first_indent < min_indent))
        min_indent = first_indent < min_indent ? first_indent : min_indent;
    block_break(r, 2);
    begin_content(r);
    tw_buf_puts(&r->out, "```\n");
    for (const char *q = s; q < end;) {
        const char *eol = memchr(q, '\n', (size_t)(end - q));
        size_t skip = q == first ? first_indent : min_indent, avail;
        if (!eol)
            eol = end;
        avail = (size_t)(eol - q);
        if (q != first && skip > avail)
            skip = avail;
        if (q == first && dropped_blank && first_indent > min_indent)
            skip = first_indent; // layout indentation of the markup, not of the code
        else if (q == first)
            skip = first_indent < min_indent ? first_indent : min_indent;
        if (q != first)
            put_prefix(r, false);
        tw_buf_add(&r->out, q + skip, avail - skip);
        tw_buf_putc(&r->out, '\n');
        q = eol + 1;
    }
    put_prefix(r, false);
    tw_buf_puts(&r->out, "```");
    block_break(r, 2);
    tw_buf_reset(&r->pre);
}

static int heading_level(GumboTag t)
{
    switch (t) {
    case GUMBO_TAG_H1:
        return 1;
    case GUMBO_TAG_H2:
        return 2;
    case GUMBO_TAG_H3:
        return 3;
    case GUMBO_TAG_H4:
        return 4;
    case GUMBO_TAG_H5:
        return 5;
    case GUMBO_TAG_H6:
        return 6;
    default:
        return 0;
    }
}

/* Block elements that only separate paragraphs. */
static int block_gap(GumboTag t)
{
    switch (t) {
    case GUMBO_TAG_P:
    case GUMBO_TAG_DIV:
    case GUMBO_TAG_SECTION:
    case GUMBO_TAG_ARTICLE:
    case GUMBO_TAG_MAIN:
    case GUMBO_TAG_FIGURE:
    case GUMBO_TAG_FIGCAPTION:
    case GUMBO_TAG_HR:
    case GUMBO_TAG_TABLE:
    case GUMBO_TAG_DL:
    case GUMBO_TAG_ADDRESS:
    case GUMBO_TAG_DETAILS:
    case GUMBO_TAG_CENTER:
    case GUMBO_TAG_BODY:
        return 2;
    case GUMBO_TAG_TR:
    case GUMBO_TAG_DT:
    case GUMBO_TAG_DD:
    case GUMBO_TAG_SUMMARY:
    case GUMBO_TAG_CAPTION:
        return 1;
    default:
        return 0;
    }
}

static void enter_element(struct render *r, const GumboNode *n)
{
    GumboTag t = n->v.element.tag;
    int h = heading_level(t), gap = block_gap(t);
    if (r->pre_depth > 0) {
        if (t == GUMBO_TAG_BR)
            tw_buf_putc(&r->pre, '\n');
        if (t == GUMBO_TAG_PRE)
            r->pre_depth++;
        return;
    }
    if (gap)
        block_break(r, gap);
    if (h) {
        block_break(r, 2);
        memset(r->marker, '#', (size_t)h);
        r->marker[h] = ' ';
        r->marker[h + 1] = '\0';
        return;
    }
    switch (t) {
    case GUMBO_TAG_BR:
        block_break(r, 1);
        break;
    case GUMBO_TAG_PRE:
        block_break(r, 2);
        r->pre_depth = 1;
        tw_buf_reset(&r->pre);
        break;
    case GUMBO_TAG_CODE:
    case GUMBO_TAG_KBD:
    case GUMBO_TAG_SAMP:
    case GUMBO_TAG_TT:
        begin_content(r);
        tw_buf_putc(&r->out, '`');
        break;
    case GUMBO_TAG_BLOCKQUOTE:
        block_break(r, 2);
        r->quote++;
        break;
    case GUMBO_TAG_UL:
    case GUMBO_TAG_OL:
    case GUMBO_TAG_MENU:
        block_break(r, r->in_li ? 1 : 2);
        if (r->n_list < HTML_LIST_MAX) {
            const GumboAttribute *start = gumbo_get_attribute(&n->v.element.attributes, "start");
            r->list_ordered[r->n_list] = t == GUMBO_TAG_OL;
            r->list_n[r->n_list] = 0;
            if (start && start->value) {
                long v = strtol(start->value, NULL, 10);
                if (v > 0 && v < 1000000)
                    r->list_n[r->n_list] = (int)v - 1;
            }
        }
        r->n_list++;
        break;
    case GUMBO_TAG_LI: {
        int k = r->n_list > 0 ? (r->n_list <= HTML_LIST_MAX ? r->n_list : HTML_LIST_MAX) - 1 : -1;
        block_break(r, 1);
        r->in_li++;
        if (k >= 0 && r->list_ordered[k]) {
            r->list_n[k]++;
            snprintf(r->marker, sizeof(r->marker), "%d. ", r->list_n[k]);
        } else {
            memcpy(r->marker, "- ", 3);
        }
        break;
    }
    case GUMBO_TAG_TD:
    case GUMBO_TAG_TH:
        if (n->index_within_parent > 0 && r->out.len > 0 && r->pending_nl == 0)
            r->cell_sep = true;
        break;
    default:
        break;
    }
}

static void leave_element(struct render *r, const GumboNode *n)
{
    GumboTag t = n->v.element.tag;
    int gap = block_gap(t);
    if (r->pre_depth > 0) {
        if (t == GUMBO_TAG_PRE && --r->pre_depth == 0)
            flush_pre(r);
        return;
    }
    if (heading_level(t)) {
        r->marker[0] = '\0';
        block_break(r, 2);
        return;
    }
    switch (t) {
    case GUMBO_TAG_CODE:
    case GUMBO_TAG_KBD:
    case GUMBO_TAG_SAMP:
    case GUMBO_TAG_TT:
        if (r->out.len && r->out.data[r->out.len - 1] == '`') {
            tw_buf_truncate(&r->out, r->out.len - 1); // empty code span
        } else {
            r->space = false;
            tw_buf_putc(&r->out, '`');
        }
        break;
    case GUMBO_TAG_BLOCKQUOTE:
        block_break(r, 2);
        r->quote--;
        break;
    case GUMBO_TAG_UL:
    case GUMBO_TAG_OL:
    case GUMBO_TAG_MENU:
        r->n_list--;
        block_break(r, r->in_li ? 1 : 2);
        break;
    case GUMBO_TAG_LI:
        r->in_li--;
        r->marker[0] = '\0';
        block_break(r, 1);
        break;
    default:
        if (gap)
            block_break(r, gap);
        break;
    }
}

struct walk_frame {
    const GumboNode *node;
    unsigned next; // next child to visit
};

/* Renders the subtree at 'root' into r->out. */
static int render_tree(struct render *r, const GumboNode *root, struct tw_err *err)
{
    struct walk_frame *stack = NULL;
    size_t n_stack = 0, cap = 0;
    int rc = TW_OK;

#define PUSH(nd)                                                                                   \
    do {                                                                                           \
        if (n_stack == cap) {                                                                      \
            size_t ncap = cap ? cap * 2 : 64;                                                      \
            struct walk_frame *ns = tw_reallocarray(stack, ncap, sizeof(*ns));                     \
            if (!ns) {                                                                             \
                rc = tw_errf(err, TW_ENOMEM, "out of memory rendering html");                      \
                goto done;                                                                         \
            }                                                                                      \
            stack = ns;                                                                            \
            cap = ncap;                                                                            \
        }                                                                                          \
        stack[n_stack].node = (nd);                                                                \
        stack[n_stack].next = 0;                                                                   \
        n_stack++;                                                                                 \
    } while (0)

    PUSH(root);
    if (root->type == GUMBO_NODE_ELEMENT)
        enter_element(r, root);
    while (n_stack > 0 && !r->out.err && !r->pre.err) {
        struct walk_frame *f = &stack[n_stack - 1];
        const GumboNode *nd = f->node, *child;
        const GumboVector *kids;
        if (nd->type != GUMBO_NODE_ELEMENT && nd->type != GUMBO_NODE_DOCUMENT &&
            nd->type != GUMBO_NODE_TEMPLATE) {
            n_stack--;
            continue;
        }
        kids = nd->type == GUMBO_NODE_DOCUMENT ? &nd->v.document.children : &nd->v.element.children;
        if (f->next >= kids->length) {
            if (nd->type == GUMBO_NODE_ELEMENT)
                leave_element(r, nd);
            n_stack--;
            continue;
        }
        child = kids->data[f->next++];
        switch (child->type) {
        case GUMBO_NODE_TEXT:
        case GUMBO_NODE_WHITESPACE:
        case GUMBO_NODE_CDATA:
            emit_text(r, child->v.text.text);
            break;
        case GUMBO_NODE_ELEMENT:
            if (is_dropped(child))
                break;
            enter_element(r, child);
            PUSH(child);
            break;
        default:
            break;
        }
    }
    if (r->out.err || r->pre.err) {
        int code = r->out.err ? r->out.err : r->pre.err;
        rc = tw_errf(err, code, "rendering html: text passes the limit of %zu bytes",
                     (size_t)HTML_TEXT_MAX);
        if (code == TW_ENOMEM)
            tw_err_ctx(err, "out of memory");
    }
done:
    tw_free(stack);
    return rc;
#undef PUSH
}

/* Renders 'root' and normalizes the text into *out. */
static int render_to_text(const GumboNode *root, char **out, struct tw_err *err)
{
    struct render r;
    int rc;
    memset(&r, 0, sizeof(r));
    tw_buf_init(&r.out, HTML_TEXT_MAX);
    tw_buf_init(&r.pre, HTML_TEXT_MAX);
    rc = render_tree(&r, root, err);
    if (rc == TW_OK && r.pre_depth > 0)
        flush_pre(&r);
    if (rc == TW_OK)
        rc = src__text_normalize(r.out.data, r.out.len, out, err);
    tw_buf_release(&r.out);
    tw_buf_release(&r.pre);
    return rc;
}

int html__node_text(const GumboNode *n, char **out, struct tw_err *err)
{
    return render_to_text(n, out, err);
}

static char *node_plain_text(const GumboNode *n);

char *html__node_line(const GumboNode *n)
{
    return node_plain_text(n);
}

bool html__has_class(const GumboNode *n, const char *word)
{
    const GumboAttribute *a;
    size_t wl = strlen(word);
    if (n->type != GUMBO_NODE_ELEMENT)
        return false;
    a = gumbo_get_attribute(&n->v.element.attributes, "class");
    if (!a || !a->value)
        return false;
    for (const char *p = a->value; *p;) {
        size_t len;
        while (*p && isspace((unsigned char)*p))
            p++;
        len = 0;
        while (p[len] && !isspace((unsigned char)p[len]))
            len++;
        if (len == wl && !strncmp(p, word, wl))
            return true;
        p += len;
    }
    return false;
}

/* Gumbo's tree building is quadratic in nesting depth (20000 nested <div>s take seconds), so a
 * linear pre-scan estimates the depth and refuses hostile nesting before parsing. Elements that
 * are void or whose end tag is optional are not counted, so ordinary pages never come close. */
static bool depth_is_sane(const char *html, size_t len)
{
    static const char *const uncounted[] = {
        "area",    "base",     "br",     "col",   "embed", "hr",    "img",   "input",    "link",
        "meta",    "param",    "source", "track", "wbr",   "p",     "li",    "dt",       "dd",
        "option",  "optgroup", "tr",     "td",    "th",    "tbody", "thead", "tfoot",    "colgroup",
        "caption", "rb",       "rt",     "rp",    "html",  "head",  "body",  "!doctype", NULL};
    long depth = 0;
    for (size_t i = 0; i < len; i++) {
        char name[16];
        size_t n = 0, j;
        bool close;
        if (html[i] != '<')
            continue;
        if (i + 3 < len && !memcmp(html + i, "<!--", 4)) {
            const char *e = src__memcasemem(html + i + 4, len - i - 4, "-->");
            if (!e)
                break;
            i = (size_t)(e - html) + 2;
            continue;
        }
        j = i + 1;
        close = j < len && html[j] == '/';
        if (close)
            j++;
        while (j < len && n < sizeof(name) - 1 &&
               (isalnum((unsigned char)html[j]) || html[j] == '!'))
            name[n++] = (char)tolower((unsigned char)html[j++]);
        name[n] = '\0';
        if (n == 0)
            continue;
        {
            bool skip = false;
            for (int k = 0; uncounted[k] && !skip; k++)
                skip = !strcmp(name, uncounted[k]);
            if (skip)
                continue;
        }
        if (close) {
            depth -= depth > 0;
            continue;
        }
        {
            const char *gt = memchr(html + j, '>', len - j);
            if (gt && gt > html + j && gt[-1] == '/')
                continue; // <x/>
        }
        if (++depth > HTML_DEPTH_MAX)
            return false;
    }
    return true;
}

/* ---- legacy charsets ---- */

/* True when the first bytes declare a charset that the WHATWG encoding standard maps to
 * windows-1252 (iso-8859-1, latin1, us-ascii, cp1252, ...). */
static bool declares_1252(const char *html, size_t len)
{
    static const char *const labels[] = {
        "windows-1252", "cp1252",   "x-cp1252", "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1",
        "l1",           "us-ascii", "ascii",    "cp819",      "ibm819",    NULL};
    size_t n = len < 4096 ? len : 4096;
    const char *p = src__memcasemem(html, n, "charset");
    char label[24];
    size_t k = 0;
    if (!p)
        return false;
    p += 7;
    while (p < html + n && (*p == ' ' || *p == '=' || *p == '"' || *p == '\''))
        p++;
    while (p < html + n && k < sizeof(label) - 1 &&
           (isalnum((unsigned char)*p) || *p == '-' || *p == '_'))
        label[k++] = (char)tolower((unsigned char)*p++);
    label[k] = '\0';
    for (int i = 0; labels[i]; i++)
        if (!strcmp(label, labels[i]))
            return true;
    return false;
}

/* windows-1252 bytes to UTF-8 (a heap string). */
static char *from_1252(const char *s, size_t len, size_t *out_len)
{
    static const uint16_t c1[32] = {0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
                                    0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008d, 0x017d, 0x008f,
                                    0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
                                    0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178};
    size_t cap, o = 0;
    char *out;
    if (tw_size_mul(len, 3, &cap) < 0 || tw_size_add(cap, 1, &cap) < 0)
        return NULL;
    out = tw_malloc(cap);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned c = (unsigned char)s[i];
        unsigned cp = c >= 0x80 && c < 0xa0 ? c1[c - 0x80] : c;
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else if (cp < 0x800) {
            out[o++] = (char)(0xc0 | (cp >> 6));
            out[o++] = (char)(0x80 | (cp & 0x3f));
        } else {
            out[o++] = (char)(0xe0 | (cp >> 12));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            out[o++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* Parses html; when it is not UTF-8 but declares a windows-1252 family charset it is converted
 * first, into *owned (free it after gumbo_destroy_output: the tree points into it). */
static int parse(const char *html, size_t len, GumboOutput **out, char **owned, struct tw_err *err)
{
    *out = NULL;
    *owned = NULL;
    if (len > HTML_INPUT_MAX)
        return tw_errf(err, TW_ELIMIT, "html is %zu bytes, the limit is %zu", len,
                       (size_t)HTML_INPUT_MAX);
    if (!depth_is_sane(html, len))
        return tw_errf(err, TW_ELIMIT, "html nests elements more than %d deep", HTML_DEPTH_MAX);
    if (src__utf8_invalid_at(html, len) < len && declares_1252(html, len)) {
        *owned = from_1252(html, len, &len);
        if (!*owned)
            return tw_errf(err, TW_ENOMEM, "out of memory converting html from windows-1252");
        html = *owned;
    }
    *out = gumbo_parse_with_options(&kGumboDefaultOptions, html, len);
    if (!*out) {
        tw_free(*owned);
        *owned = NULL;
        return tw_errf(err, TW_ENOMEM, "out of memory parsing html");
    }
    return TW_OK;
}

int html_to_text(const char *html, size_t len, char **out, struct tw_err *err)
{
    GumboOutput *g;
    char *owned;
    int rc;
    *out = NULL;
    rc = parse(html, len, &g, &owned, err);
    if (rc < 0)
        return rc;
    rc = render_to_text(g->document, out, err);
    gumbo_destroy_output(&kGumboDefaultOptions, g);
    tw_free(owned);
    return rc;
}

/* ---- article extraction ---- */

/* Text of a node's subtree with white space collapsed (for titles and short fields). */
static char *node_plain_text(const GumboNode *n)
{
    char *text = NULL, *nl;
    struct tw_err e = TW_ERR_INIT;
    if (render_to_text(n, &text, &e) < 0)
        return NULL;
    /* One line: line breaks become spaces; a heading's own marker is not wanted here. */
    for (nl = text; *nl; nl++)
        if (*nl == '\n')
            *nl = ' ';
    if (n->type == GUMBO_NODE_ELEMENT && heading_level(n->v.element.tag)) {
        size_t k = 0;
        while (text[k] == '#')
            k++;
        if (k && text[k] == ' ')
            memmove(text, text + k + 1, strlen(text + k + 1) + 1);
    }
    return text;
}

static char *dup_trimmed(const char *s)
{
    size_t len;
    char *out = NULL;
    struct tw_err e = TW_ERR_INIT;
    if (!s)
        return NULL;
    len = strlen(s);
    if (src__text_normalize(s, len, &out, &e) < 0)
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

static void set_field(char **field, const char *value)
{
    if (*field || !value)
        return;
    *field = dup_trimmed(value);
}

struct meta_scan {
    char *og_title, *tw_title, *title_tag, *h1;
    char *og_desc, *desc;
    char *author, *canonical, *og_url;
    char *date;
    char *ld_headline, *ld_author, *ld_date, *ld_url, *ld_desc;
    /* Content candidates. */
    const GumboNode *article_body, *article, *main;
};

static const char *attr(const GumboNode *n, const char *name)
{
    const GumboAttribute *a = gumbo_get_attribute(&n->v.element.attributes, name);
    return a ? a->value : NULL;
}

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsObject(v)) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "@id");
        if (cJSON_IsString(id))
            return id->valuestring;
    }
    return NULL;
}

static const char *json_author_name(const cJSON *a)
{
    if (cJSON_IsArray(a))
        a = cJSON_GetArrayItem(a, 0);
    if (cJSON_IsString(a))
        return a->valuestring;
    if (cJSON_IsObject(a))
        return json_str(a, "name");
    return NULL;
}

static void scan_jsonld_obj(struct meta_scan *m, const cJSON *o, int depth)
{
    const char *type;
    const cJSON *graph;
    if (depth > 4)
        return;
    if (cJSON_IsArray(o)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, o) scan_jsonld_obj(m, it, depth + 1);
        return;
    }
    if (!cJSON_IsObject(o))
        return;
    graph = cJSON_GetObjectItemCaseSensitive(o, "@graph");
    if (graph)
        scan_jsonld_obj(m, graph, depth + 1);
    type = json_str(o, "@type");
    if (!type || !(strstr(type, "Article") || strstr(type, "Posting") || strstr(type, "Blog")))
        return;
    set_field(&m->ld_headline, json_str(o, "headline"));
    set_field(&m->ld_date, json_str(o, "datePublished"));
    set_field(&m->ld_url, json_str(o, "url"));
    set_field(&m->ld_url, json_str(o, "mainEntityOfPage"));
    set_field(&m->ld_desc, json_str(o, "description"));
    set_field(&m->ld_author, json_author_name(cJSON_GetObjectItemCaseSensitive(o, "author")));
}

static void scan_jsonld(struct meta_scan *m, const GumboNode *script)
{
    const GumboVector *kids = &script->v.element.children;
    const GumboNode *t;
    cJSON *j;
    if (kids->length < 1)
        return;
    t = kids->data[0];
    if (t->type != GUMBO_NODE_TEXT && t->type != GUMBO_NODE_WHITESPACE &&
        t->type != GUMBO_NODE_CDATA)
        return;
    if (strlen(t->v.text.text) > HTML_JSONLD_MAX)
        return;
    j = cJSON_Parse(t->v.text.text);
    if (!j)
        return;
    scan_jsonld_obj(m, j, 0);
    cJSON_Delete(j);
}

static void scan_element(struct meta_scan *m, const GumboNode *n)
{
    const GumboElement *el = &n->v.element;
    const char *prop, *name, *content, *v;
    switch (el->tag) {
    case GUMBO_TAG_META:
        prop = attr(n, "property");
        name = attr(n, "name");
        content = attr(n, "content");
        if (!content)
            break;
        if (!prop)
            prop = name ? name : "";
        if (!strcasecmp(prop, "og:title"))
            set_field(&m->og_title, content);
        else if (!strcasecmp(prop, "twitter:title"))
            set_field(&m->tw_title, content);
        else if (!strcasecmp(prop, "og:description"))
            set_field(&m->og_desc, content);
        else if (!strcasecmp(prop, "description"))
            set_field(&m->desc, content);
        else if (!strcasecmp(prop, "author") || !strcasecmp(prop, "article:author") ||
                 !strcasecmp(prop, "twitter:creator") || !strcasecmp(prop, "dc.creator"))
            set_field(&m->author, content);
        else if (!strcasecmp(prop, "article:published_time") || !strcasecmp(prop, "date") ||
                 !strcasecmp(prop, "dc.date") || !strcasecmp(prop, "pubdate"))
            set_field(&m->date, content);
        else if (!strcasecmp(prop, "og:url"))
            set_field(&m->og_url, content);
        break;
    case GUMBO_TAG_LINK:
        v = attr(n, "rel");
        if (v && !strcasecmp(v, "canonical"))
            set_field(&m->canonical, attr(n, "href"));
        break;
    case GUMBO_TAG_TITLE:
        if (!m->title_tag)
            m->title_tag = node_plain_text(n);
        break;
    case GUMBO_TAG_SCRIPT:
        v = attr(n, "type");
        if (v && !strcasecmp(v, "application/ld+json"))
            scan_jsonld(m, n);
        break;
    case GUMBO_TAG_H1:
        if (!m->h1)
            m->h1 = node_plain_text(n);
        break;
    case GUMBO_TAG_ARTICLE:
        if (!m->article)
            m->article = n;
        break;
    case GUMBO_TAG_MAIN:
        if (!m->main)
            m->main = n;
        break;
    default:
        break;
    }
    v = attr(n, "itemprop");
    if (v && !strcasecmp(v, "articleBody") && !m->article_body)
        m->article_body = n;
    v = attr(n, "role");
    if (v && !strcasecmp(v, "main") && !m->main)
        m->main = n;
}

static int walk_elements(const GumboNode *root, void (*fn)(void *, const GumboNode *), void *ctx,
                         struct tw_err *err);

int html__walk(const GumboNode *root, void (*fn)(void *, const GumboNode *), void *ctx,
               struct tw_err *err)
{
    return walk_elements(root, fn, ctx, err);
}

/* Calls fn on every element under 'root' (included) in document order, iteratively. */
static int walk_elements(const GumboNode *root, void (*fn)(void *, const GumboNode *), void *ctx,
                         struct tw_err *err)
{
    const GumboNode **stack = NULL;
    size_t n = 0, cap = 0;
    if (root->type != GUMBO_NODE_ELEMENT && root->type != GUMBO_NODE_DOCUMENT)
        return TW_OK;
    stack = tw_mallocarray(64, sizeof(*stack));
    if (!stack)
        return tw_errf(err, TW_ENOMEM, "out of memory walking html");
    cap = 64;
    stack[n++] = root;
    while (n > 0) {
        const GumboNode *nd = stack[--n];
        const GumboVector *kids;
        if (nd->type == GUMBO_NODE_ELEMENT) {
            fn(ctx, nd);
            kids = &nd->v.element.children;
        } else if (nd->type == GUMBO_NODE_DOCUMENT) {
            kids = &nd->v.document.children;
        } else {
            continue;
        }
        /* Push in reverse so children pop in document order. */
        for (unsigned i = kids->length; i-- > 0;) {
            const GumboNode *c = kids->data[i];
            if (c->type != GUMBO_NODE_ELEMENT)
                continue;
            if (n == cap) {
                const GumboNode **ns = tw_reallocarray(stack, cap * 2, sizeof(*ns));
                if (!ns) {
                    tw_free(stack);
                    return tw_errf(err, TW_ENOMEM, "out of memory walking html");
                }
                stack = ns;
                cap *= 2;
            }
            stack[n++] = c;
        }
    }
    tw_free(stack);
    return TW_OK;
}

static void scan_cb(void *ctx, const GumboNode *n)
{
    scan_element(ctx, n);
}

/* ---- readability-style scoring ---- */

struct score {
    const GumboNode *node;
    double score;
};

struct scoring {
    struct score *s;
    size_t n, cap;
    bool oom;
    const GumboNode *first_time; // first <time datetime> seen
};

static void add_score(struct scoring *sc, const GumboNode *node, double v)
{
    if (!node || node->type != GUMBO_NODE_ELEMENT || sc->oom)
        return;
    if (sc->n == sc->cap) {
        size_t ncap = sc->cap ? sc->cap * 2 : 64;
        struct score *ns = tw_reallocarray(sc->s, ncap, sizeof(*ns));
        if (!ns) {
            sc->oom = true;
            return;
        }
        sc->s = ns;
        sc->cap = ncap;
    }
    sc->s[sc->n].node = node;
    sc->s[sc->n].score = v;
    sc->n++;
}

/* Length of the text under n and its commas, walking only text-level descendants. */
static void text_stats(const GumboNode *n, size_t *len, size_t *commas, int depth)
{
    const GumboVector *kids = &n->v.element.children;
    if (depth > 32)
        return;
    for (unsigned i = 0; i < kids->length; i++) {
        const GumboNode *c = kids->data[i];
        if (c->type == GUMBO_NODE_TEXT) {
            const char *t = c->v.text.text;
            size_t l = strlen(t);
            *len += l;
            for (size_t k = 0; k < l; k++)
                *commas += t[k] == ',';
        } else if (c->type == GUMBO_NODE_ELEMENT && !is_dropped(c)) {
            text_stats(c, len, commas, depth + 1);
        }
    }
}

static void score_cb(void *ctx, const GumboNode *n)
{
    struct scoring *sc = ctx;
    GumboTag t = n->v.element.tag;
    size_t len = 0, commas = 0;
    double v;
    if (t == GUMBO_TAG_TIME && !sc->first_time && attr(n, "datetime"))
        sc->first_time = n;
    if (t != GUMBO_TAG_P && t != GUMBO_TAG_PRE && t != GUMBO_TAG_BLOCKQUOTE && t != GUMBO_TAG_LI)
        return;
    text_stats(n, &len, &commas, 0);
    if (len < 25)
        return;
    v = 1.0 + (double)commas + (len / 100 < 3 ? (double)(len / 100) : 3.0);
    add_score(sc, n->parent, v);
    if (n->parent)
        add_score(sc, n->parent->parent, v / 2);
}

static int cmp_score_node(const void *a, const void *b)
{
    const struct score *x = a, *y = b;
    return x->node < y->node ? -1 : x->node > y->node;
}

/* The element with the highest total score, or NULL. */
static const GumboNode *best_scored(struct scoring *sc)
{
    const GumboNode *best = NULL;
    double best_v = 0;
    if (sc->n == 0)
        return NULL;
    qsort(sc->s, sc->n, sizeof(*sc->s), cmp_score_node);
    for (size_t i = 0; i < sc->n;) {
        size_t j = i;
        double sum = 0;
        while (j < sc->n && sc->s[j].node == sc->s[i].node)
            sum += sc->s[j++].score;
        if (sum > best_v) {
            best_v = sum;
            best = sc->s[i].node;
        }
        i = j;
    }
    return best;
}

static void meta_release(struct meta_scan *m)
{
    char **f[] = {&m->og_title,    &m->tw_title,  &m->title_tag, &m->h1,     &m->og_desc,
                  &m->desc,        &m->author,    &m->canonical, &m->og_url, &m->date,
                  &m->ld_headline, &m->ld_author, &m->ld_date,   &m->ld_url, &m->ld_desc};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        tw_free(*f[i]);
        *f[i] = NULL;
    }
}

/* Moves the first non-NULL of the candidates into *dst (the others stay for meta_release). */
static void take_first(char **dst, char **a, char **b, char **c, char **d, char **e)
{
    char **c5[] = {a, b, c, d, e};
    for (int i = 0; i < 5; i++) {
        if (c5[i] && *c5[i]) {
            *dst = *c5[i];
            *c5[i] = NULL;
            return;
        }
    }
}

void html_article_release(struct html_article *a)
{
    if (!a)
        return;
    tw_free(a->title);
    tw_free(a->subtitle);
    tw_free(a->author);
    tw_free(a->canonical_url);
    tw_free(a->content);
    memset(a, 0, sizeof(*a));
    a->published_at = INT64_MIN;
}

int html_extract_article(const char *html, size_t len, struct html_article *out, struct tw_err *err)
{
    GumboOutput *g;
    char *owned;
    struct meta_scan m;
    struct scoring sc;
    const GumboNode *content;
    int64_t t;
    int rc;

    memset(out, 0, sizeof(*out));
    out->published_at = INT64_MIN;
    memset(&m, 0, sizeof(m));
    memset(&sc, 0, sizeof(sc));
    rc = parse(html, len, &g, &owned, err);
    if (rc < 0)
        return rc;
    rc = walk_elements(g->document, scan_cb, &m, err);
    if (rc < 0)
        goto done;
    rc = walk_elements(g->document, score_cb, &sc, err);
    if (rc < 0)
        goto done;
    if (sc.oom) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory scoring html");
        goto done;
    }
    content = m.article_body ? m.article_body : m.article ? m.article : m.main;
    if (!content)
        content = best_scored(&sc);
    if (!content)
        content = g->root; // no structure at all: the whole body, if it has any text
    rc = render_to_text(content, &out->content, err);
    if (rc < 0)
        goto done;
    if (!out->content[0]) {
        rc = tw_errf(err, TW_ENOENT, "no article content found");
        goto done;
    }
    take_first(&out->title, &m.ld_headline, &m.og_title, &m.tw_title, &m.h1, &m.title_tag);
    take_first(&out->subtitle, &m.og_desc, &m.desc, &m.ld_desc, NULL, NULL);
    take_first(&out->author, &m.ld_author, &m.author, NULL, NULL, NULL);
    take_first(&out->canonical_url, &m.canonical, &m.og_url, &m.ld_url, NULL, NULL);
    if (m.ld_date && src__parse_time(m.ld_date, strlen(m.ld_date), &t) == 0)
        out->published_at = t;
    else if (m.date && src__parse_time(m.date, strlen(m.date), &t) == 0)
        out->published_at = t;
    else if (sc.first_time) {
        const char *dt = attr(sc.first_time, "datetime");
        if (src__parse_time(dt, strlen(dt), &t) == 0)
            out->published_at = t;
    }
    rc = TW_OK;
done:
    if (rc < 0)
        html_article_release(out);
    meta_release(&m);
    tw_free(sc.s);
    gumbo_destroy_output(&kGumboDefaultOptions, g);
    tw_free(owned);
    return rc;
}

/* ---- challenge pages ---- */

bool html_is_bot_challenge(const char *html, size_t len)
{
    static const char *const marks[] = {"<title>just a moment",
                                        "verify you are human",
                                        "checking your browser",
                                        "cf-challenge",
                                        "challenge-platform",
                                        "attention required! | cloudflare",
                                        "captcha-delivery.com",
                                        "px-captcha",
                                        "enable javascript and cookies to continue",
                                        "please complete the security check",
                                        "are you a robot",
                                        NULL};
    size_t n = len < ((size_t)256 << 10) ? len : ((size_t)256 << 10);
    if (!html)
        return false;
    for (int i = 0; marks[i]; i++)
        if (src__memcasemem(html, n, marks[i]))
            return true;
    return false;
}
