/* clean.c - per-kind cleaning of document text and the text each chunk is embedded as. */
#include "feature/feat.h"

#include "base/mem.h"
#include "base/sha256.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>

int feat_kind_parse(const char *kind, enum feat_kind *out)
{
    if (!strcmp(kind, "article"))
        *out = FEAT_ARTICLE;
    else if (!strcmp(kind, "post"))
        *out = FEAT_POST;
    else if (!strcmp(kind, "code"))
        *out = FEAT_CODE;
    else
        return TW_EINVAL;
    return 0;
}

/* Decodes the code point at s[i] (len bytes in all); 0 on invalid UTF-8. */
static size_t cp_at(const char *s, size_t len, size_t i, utf8proc_int32_t *cp)
{
    utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                          (utf8proc_ssize_t)(len - i), cp);
    return n > 0 ? (size_t)n : 0;
}

static bool valid_utf8(const char *s, size_t len, size_t *bad)
{
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t cp;
        size_t n = cp_at(s, len, i, &cp);
        if (!n) {
            *bad = i;
            return false;
        }
        i += n;
    }
    return true;
}

/* Mathematical alphanumeric symbols map to plain letters and digits under compatibility
 * decomposition (NFKC); only that block is folded, so ligatures, superscripts and fullwidth
 * forms the author chose stay as written. */
static bool is_math_alnum(utf8proc_int32_t cp)
{
    return cp >= 0x1D400 && cp <= 0x1D7FF;
}

static int fold_math(utf8proc_int32_t cp, struct tw_buf *out)
{
    utf8proc_int32_t dec[4];
    int rem;
    utf8proc_ssize_t n = utf8proc_decompose_char(cp, dec, 4, UTF8PROC_COMPAT | UTF8PROC_DECOMPOSE, &rem);
    utf8proc_uint8_t enc[4];
    if (n != 1)
        return -1;
    return tw_buf_add(out, enc, (size_t)utf8proc_encode_char(dec[0], enc));
}

static bool is_tracking_param(const char *p, size_t n)
{
    return (n > 4 && !strncasecmp(p, "utm_", 4)) || (n == 6 && !strncasecmp(p, "fbclid", 6)) ||
           (n == 5 && !strncasecmp(p, "gclid", 5)) || (n == 5 && !strncasecmp(p, "mc_cid", 5)) ||
           (n == 5 && !strncasecmp(p, "mc_eid", 5));
}

static bool url_char(char c)
{
    return (unsigned char)c > ' ' && c != '<' && c != '>' && c != '"' && c != '\'' && c != ')' &&
           c != ']' && (unsigned char)c < 0x7f;
}

/* Writes the URL at s[0, n) normalized; returns the bytes consumed. */
static size_t normalize_url(const char *s, size_t n, struct tw_buf *out)
{
    size_t end = 0, i, host_end, q;
    bool first = true;
    while (end < n && url_char(s[end]))
        end++;
    /* Trailing sentence punctuation is not part of the URL. */
    while (end > 0 && strchr(".,;:!?", s[end - 1]))
        end--;
    i = s[4] == ':' ? 4 : 5; /* "http" or "https", checked by starts_url */
    for (size_t k = 0; k < i; k++) /* scheme */
        tw_buf_putc(out, (char)(s[k] >= 'A' && s[k] <= 'Z' ? s[k] + 32 : s[k]));
    host_end = i + 3;
    while (host_end < end && s[host_end] != '/' && s[host_end] != '?' && s[host_end] != '#')
        host_end++;
    for (size_t k = i; k < host_end; k++)
        tw_buf_putc(out, (char)(s[k] >= 'A' && s[k] <= 'Z' ? s[k] + 32 : s[k]));
    q = host_end;
    while (q < end && s[q] != '?' && s[q] != '#')
        q++;
    tw_buf_add(out, s + host_end, q - host_end);
    if (q < end && s[q] == '?') {
        size_t p = q + 1;
        while (p < end && s[p] != '#') {
            size_t a = p, eq;
            while (p < end && s[p] != '&' && s[p] != '#')
                p++;
            eq = a;
            while (eq < p && s[eq] != '=')
                eq++;
            if (p > a && !is_tracking_param(s + a, eq - a)) {
                tw_buf_putc(out, first ? '?' : '&');
                tw_buf_add(out, s + a, p - a);
                first = false;
            }
            if (p < end && s[p] == '&')
                p++;
        }
        q = p;
    }
    tw_buf_add(out, s + q, end - q);
    return end;
}

static bool starts_url(const char *s, size_t n)
{
    return (n > 8 && !strncasecmp(s, "https://", 8)) || (n > 7 && !strncasecmp(s, "http://", 7));
}

/* A markdown link reference definition, "[label]: http://..." alone on its line: the target of
 * links in the text, not prose. */
static bool is_link_ref(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && i < 3 && s[i] == ' ')
        i++;
    if (i >= n || s[i] != '[')
        return false;
    while (i < n && s[i] != ']')
        i++;
    if (i + 2 >= n || s[i + 1] != ':' || (s[i + 2] != ' ' && s[i + 2] != '\t'))
        return false;
    for (i += 2; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return true;
    return false;
}

/* Line-level cleanup shared by articles and posts: CRLF -> LF, trailing spaces cut, runs of
 * blank lines collapsed to one and link reference definitions dropped, except inside ```
 * fences. */
static void tidy_lines(const char *s, size_t len, struct tw_buf *out)
{
    size_t i = 0;
    int blank_run = 0;
    bool in_fence = false, any = false;
    while (i < len) {
        size_t e = i, t;
        while (e < len && s[e] != '\n')
            e++;
        t = e;
        if (t > i && s[t - 1] == '\r')
            t--;
        if (!in_fence)
            while (t > i && (s[t - 1] == ' ' || s[t - 1] == '\t'))
                t--;
        if (t - i >= 3 && !memcmp(s + i, "```", 3))
            in_fence = !in_fence;
        if (t == i && !in_fence) {
            blank_run++;
        } else if (!in_fence && is_link_ref(s + i, t - i)) {
            /* dropped */
        } else {
            if (any)
                tw_buf_puts(out, blank_run ? "\n\n" : "\n");
            tw_buf_add(out, s + i, t - i);
            blank_run = 0;
            any = true;
        }
        i = e + 1;
    }
}

int feat_clean(enum feat_kind kind, const char *text, size_t len, char **out, size_t *out_len,
               struct tw_err *err)
{
    struct tw_buf a = TW_BUF_INIT, b = TW_BUF_INIT;
    utf8proc_uint8_t *nfc = NULL;
    size_t bad;

    *out = NULL;
    if (!valid_utf8(text, len, &bad))
        return tw_errf(err, TW_EFORMAT, "invalid UTF-8 at byte %zu", bad);
    if (kind == FEAT_CODE) {
        /* Code keeps every byte; only line endings are unified. */
        for (size_t i = 0; i < len; i++)
            if (!(text[i] == '\r' && i + 1 < len && text[i + 1] == '\n'))
                tw_buf_putc(&a, text[i]);
        goto done;
    }
    if (kind == FEAT_POST) {
        for (size_t i = 0; i < len;) {
            utf8proc_int32_t cp;
            size_t n = cp_at(text, len, i, &cp);
            if (is_math_alnum(cp) && fold_math(cp, &b) == 0) {
                i += n;
            } else if ((i == 0 || !url_char(text[i - 1])) && starts_url(text + i, len - i)) {
                i += normalize_url(text + i, len - i, &b);
            } else {
                tw_buf_add(&b, text + i, n);
                i += n;
            }
        }
        text = b.data;
        len = b.len;
    }
    if (utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &nfc,
                     UTF8PROC_STABLE | UTF8PROC_COMPOSE) < 0) {
        tw_buf_release(&b);
        return tw_errf(err, TW_EFORMAT, "text cannot be normalized to NFC");
    }
    tidy_lines((const char *)nfc, strlen((const char *)nfc), &a);
    free(nfc); /* utf8proc allocates with malloc */
done:
    tw_buf_release(&b);
    if (a.err) {
        tw_buf_release(&a);
        return tw_errf(err, TW_ENOMEM, "out of memory cleaning text");
    }
    *out = tw_buf_detach(&a, out_len);
    return *out ? 0 : tw_errf(err, TW_ENOMEM, "out of memory cleaning text");
}

/* Emoji and what glues them: pictographs and other symbols (So), skin-tone modifiers, ZWJ,
 * variation selectors, the keycap mark and tag characters. */
static bool is_emoji_part(utf8proc_int32_t cp)
{
    if (cp == 0x200D || cp == 0x20E3 || (cp >= 0xFE00 && cp <= 0xFE0F) ||
        (cp >= 0x1F3FB && cp <= 0x1F3FF) || (cp >= 0xE0020 && cp <= 0xE007F))
        return true;
    return utf8proc_category(cp) == UTF8PROC_CATEGORY_SO && cp >= 0x2000;
}

int feat_embed_text(enum feat_kind kind, const char *path, const char *slice, size_t len,
                    struct tw_buf *out)
{
    if (kind == FEAT_CODE) {
        if (path && *path) {
            tw_buf_puts(out, path);
            tw_buf_putc(out, '\n');
        }
        return tw_buf_add(out, slice, len);
    }
    if (kind == FEAT_ARTICLE)
        return tw_buf_add(out, slice, len);
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t cp;
        size_t n = cp_at(slice, len, i, &cp);
        if (!n) {
            i++;
            continue;
        }
        if (!is_emoji_part(cp))
            tw_buf_add(out, slice + i, n);
        i += n;
    }
    return out->err;
}

const char *feat_code_language(const char *path)
{
    static const char *const map[][2] = {
        {"c", "c"},          {"h", "c"},         {"cc", "cpp"},       {"cpp", "cpp"},
        {"hpp", "cpp"},      {"cxx", "cpp"},     {"py", "python"},    {"js", "javascript"},
        {"mjs", "javascript"}, {"ts", "typescript"}, {"tsx", "typescript"}, {"go", "go"},
        {"rs", "rust"},      {"java", "java"},   {"kt", "kotlin"},    {"rb", "ruby"},
        {"php", "php"},      {"cs", "csharp"},   {"swift", "swift"},  {"scala", "scala"},
        {"sh", "shell"},     {"bash", "shell"},  {"lua", "lua"},      {"pl", "perl"},
        {"hs", "haskell"},   {"ml", "ocaml"},    {"el", "elisp"},     {"lisp", "lisp"},
        {"clj", "clojure"},  {"sql", "sql"},     {"html", "html"},    {"css", "css"},
        {"md", "markdown"},  {"markdown", "markdown"}, {"json", "json"}, {"yaml", "yaml"},
        {"yml", "yaml"},     {"toml", "toml"},   {"mk", "make"},      {"zig", "zig"},
    };
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!strcmp(base, "Makefile") || !strcmp(base, "GNUmakefile"))
        return "make";
    if (!strcmp(base, "Dockerfile"))
        return "dockerfile";
    if (!dot || dot == base)
        return "text";
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcasecmp(dot + 1, map[i][0]))
            return map[i][1];
    return "text";
}

void feat_chunk_id(const char *doc_id, int index, const char *text, size_t len, char out[37])
{
    char text_hex[TW_SHA256_HEX_LEN + 1], id_hex[TW_SHA256_HEX_LEN + 1];
    struct tw_sha256 s;
    uint8_t digest[TW_SHA256_LEN];
    char idx[16];
    int n;

    tw_sha256_hex(text, len, text_hex);
    n = snprintf(idx, sizeof(idx), ":%d:", index);
    tw_sha256_init(&s);
    tw_sha256_update(&s, doc_id, strlen(doc_id));
    tw_sha256_update(&s, idx, (size_t)n);
    tw_sha256_update(&s, text_hex, TW_SHA256_HEX_LEN);
    tw_sha256_final(&s, digest);
    tw_sha256_to_hex(digest, id_hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", id_hex, id_hex + 8, id_hex + 12, id_hex + 16,
             id_hex + 20);
}
