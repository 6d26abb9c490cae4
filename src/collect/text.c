/* text.c - UTF-8 repair, text normalization, dates and file reads for the local sources. */
#include "collect/collect_int.h"

#include "base/buf.h"
#include "base/mem.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <utf8proc.h>

/* Length of the valid UTF-8 sequence at s[0..len), 0 if it is invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

size_t src__utf8_invalid_at(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(p + i, len - i);
        if (!n)
            return i;
        i += n;
    }
    return len;
}

/* First pass, line by line: repair UTF-8, drop controls, NBSP to space, trim line ends, keep at
 * most one blank line in a row and none at either end. The result is valid UTF-8 without NUL. */
static void clean_lines(const char *s, size_t len, struct tw_buf *b)
{
    const unsigned char *p = (const unsigned char *)s;
    bool any = false, blank = false;
    size_t i = 0;
    while (i <= len && !b->err) {
        size_t mark = b->len, content;
        if (any)
            tw_buf_add(b, blank ? "\n\n" : "\n", blank ? 2 : 1);
        content = b->len;
        while (i < len && p[i] != '\n' && p[i] != '\r') {
            size_t n, run = 0;
            /* Printable ASCII in one append: most text is this. */
            while (i + run < len &&
                   ((p[i + run] >= 0x20 && p[i + run] < 0x7f) || p[i + run] == '\t'))
                run++;
            if (run) {
                tw_buf_add(b, p + i, run);
                i += run;
                continue;
            }
            n = utf8_seq(p + i, len - i);
            if (n == 0) {
                tw_buf_add(b, "\xef\xbf\xbd", 3);
                i++;
            } else if (p[i] < 0x20 && p[i] != '\t') {
                i++;
            } else if (n == 2 && p[i] == 0xc2 && p[i + 1] == 0xa0) {
                tw_buf_putc(b, ' ');
                i += 2;
            } else {
                tw_buf_add(b, p + i, n);
                i += n;
            }
        }
        while (b->len > content && (b->data[b->len - 1] == ' ' || b->data[b->len - 1] == '\t'))
            tw_buf_truncate(b, b->len - 1);
        if (b->len == content) {
            tw_buf_truncate(b, mark);
            blank = any;
        } else {
            any = true;
            blank = false;
        }
        if (i < len && p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
            i++;
        i++;
    }
}

/* NFC of one line into b. A line break is a starter that composes with nothing, so NFC of a text
 * is the NFC of its lines joined; ASCII lines are already NFC and skip utf8proc. */
static int nfc_line(const char *s, size_t len, struct tw_buf *b)
{
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t n;
    size_t i = 0;
    while (i < len && (unsigned char)s[i] < 0x80)
        i++;
    if (i == len)
        return tw_buf_add(b, s, len);
    n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &nfc,
                     UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0) {
        free(nfc);
        return n == UTF8PROC_ERROR_NOMEM ? TW_ENOMEM : TW_EFORMAT;
    }
    tw_buf_add(b, nfc, (size_t)n);
    free(nfc);
    return b->err;
}

int src__text_normalize(const char *s, size_t len, char **out, struct tw_err *err)
{
    struct tw_buf clean = TW_BUF_INIT, b = TW_BUF_INIT;
    int rc = TW_OK;

    *out = NULL;
    clean_lines(s, len, &clean);
    if (clean.err) {
        rc = clean.err;
        tw_buf_release(&clean);
        return tw_errf(err, rc, "normalizing %zu bytes of text: %s", len, tw_strerror(rc));
    }
    tw_buf_grow(&b, clean.len);
    for (size_t i = 0; i < clean.len && rc == TW_OK;) {
        const char *eol = memchr(clean.data + i, '\n', clean.len - i);
        size_t n = eol ? (size_t)(eol - (clean.data + i)) : clean.len - i;
        rc = nfc_line(clean.data + i, n, &b);
        if (eol && rc == TW_OK)
            rc = tw_buf_putc(&b, '\n');
        i += n + (eol ? 1 : 0);
    }
    tw_buf_release(&clean);
    if (rc == TW_OK)
        rc = b.err;
    if (rc < 0) {
        tw_buf_release(&b);
        return tw_errf(err, rc, "normalizing text to NFC: %s", tw_strerror(rc));
    }
    *out = tw_buf_detach(&b, NULL);
    if (!*out)
        return tw_errf(err, TW_ENOMEM, "out of memory normalizing text");
    return TW_OK;
}

/* ---- dates ---- */

int64_t src__timegm(int y, int mon, int d, int h, int mi, int s)
{
    /* Days from civil (Howard Hinnant's algorithm), proleptic Gregorian. */
    int64_t yy = y - (mon <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (mon + (mon > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    return days * 86400 + h * 3600 + mi * 60 + s;
}

static int digits(const char **p, const char *end, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || !isdigit((unsigned char)**p))
            return -1;
        *v = *v * 10 + (**p - '0');
        (*p)++;
    }
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

int src__parse_time(const char *s, size_t len, int64_t *t)
{
    const char *p = s, *end = s + len;
    int y, mo, d, h = 0, mi = 0, sec = 0, off = 0;

    while (p < end && (isspace((unsigned char)*p) || *p == '"' || *p == '\''))
        p++;
    while (end > p && (isspace((unsigned char)end[-1]) || end[-1] == '"' || end[-1] == '\''))
        end--;
    if (digits(&p, end, 4, &y) || p >= end || *p++ != '-' || digits(&p, end, 2, &mo) || p >= end ||
        *p++ != '-' || digits(&p, end, 2, &d))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -1;
    if (p < end && (*p == 'T' || *p == ' ' || *p == 't')) {
        p++;
        if (digits(&p, end, 2, &h) || p >= end || *p++ != ':' || digits(&p, end, 2, &mi))
            return -1;
        if (p < end && *p == ':' && (p++, digits(&p, end, 2, &sec)))
            return -1;
        if (p < end && (*p == '.' || *p == ',')) {
            p++;
            while (p < end && isdigit((unsigned char)*p))
                p++;
        }
        if (h > 23 || mi > 59 || sec > 60)
            return -1;
        while (p < end && *p == ' ')
            p++;
        if (p < end && (*p == 'Z' || *p == 'z')) {
            p++;
        } else if (p < end && (*p == '+' || *p == '-')) {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (digits(&p, end, 2, &oh))
                return -1;
            if (p < end && *p == ':')
                p++;
            if (digits(&p, end, 2, &om) || oh > 23 || om > 59)
                return -1;
            off = sign * (oh * 3600 + om * 60);
        } else if (end - p >= 3 && !memcmp(p, "UTC", 3)) {
            p += 3;
        }
    }
    if (p != end)
        return -1;
    *t = src__timegm(y, mo, d, h, mi, sec) - off;
    return 0;
}

/* ---- files ---- */

int src__read_file(const char *path, size_t max, char **out, size_t *len, struct tw_err *err)
{
    FILE *f;
    struct stat st;
    char *buf;
    size_t n;

    *out = NULL;
    *len = 0;
    f = fopen(path, "rb");
    if (!f)
        return tw_errf(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "cannot open '%s': %s", path,
                       strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return tw_errf(err, TW_EIO, "'%s' is not a regular file", path);
    }
    if ((unsigned long long)st.st_size > max) {
        fclose(f);
        return tw_errf(err, TW_ELIMIT, "'%s' is %lld bytes, the limit is %zu", path,
                       (long long)st.st_size, max);
    }
    buf = tw_malloc((size_t)st.st_size + 1);
    if (!buf) {
        fclose(f);
        return tw_errf(err, TW_ENOMEM, "out of memory reading '%s'", path);
    }
    n = fread(buf, 1, (size_t)st.st_size, f);
    if (ferror(f)) {
        fclose(f);
        tw_free(buf);
        return tw_errf(err, TW_EIO, "reading '%s': %s", path, strerror(errno));
    }
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return TW_OK;
}

const char *src__memcasemem(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return s;
    for (size_t i = 0; i + n <= len; i++) {
        if (tolower((unsigned char)s[i]) == tolower((unsigned char)needle[0]) &&
            !strncasecmp(s + i, needle, n))
            return s + i;
    }
    return NULL;
}

void src__fail(struct src_sink *sink, const char *item, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (sink && sink->fail)
        sink->fail(sink->ctx, item, msg);
}
