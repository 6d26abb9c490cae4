/* buf.c - bounded growable buffer. */
#include "base/buf.h"

#include "base/err.h"
#include "base/mem.h"

#include <stdio.h>
#include <string.h>

char tw_buf_empty[1];

void tw_buf_init(struct tw_buf *b, size_t max_len)
{
    b->data = tw_buf_empty;
    b->len = 0;
    b->cap = 0;
    b->max_len = max_len;
    b->err = 0;
}

void tw_buf_release(struct tw_buf *b)
{
    if (b->cap)
        tw_free(b->data);
    tw_buf_init(b, b->max_len);
}

char *tw_buf_detach(struct tw_buf *b, size_t *len)
{
    char *p;
    if (len)
        *len = b->len;
    if (!b->cap) {
        p = tw_strndup("", 0);
    } else {
        p = b->data;
    }
    tw_buf_init(b, b->max_len);
    return p;
}

int tw_buf_grow(struct tw_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (b->err)
        return b->err;
    if (tw_size_add(b->len, extra, &need) < 0 || need > b->max_len)
        return b->err = TW_ELIMIT;
    if (need + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need + 1)
        cap = cap > ((size_t)-1) / 2 ? need + 1 : cap * 2;
    p = b->cap ? tw_realloc(b->data, cap) : tw_malloc(cap);
    if (!p)
        return b->err = TW_ENOMEM;
    if (!b->cap)
        p[0] = '\0';
    b->data = p;
    b->cap = cap;
    return 0;
}

int tw_buf_add(struct tw_buf *b, const void *data, size_t len)
{
    if (tw_buf_grow(b, len))
        return b->err;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int tw_buf_puts(struct tw_buf *b, const char *s)
{
    return tw_buf_add(b, s, strlen(s));
}

int tw_buf_putc(struct tw_buf *b, char c)
{
    return tw_buf_add(b, &c, 1);
}

int tw_buf_vprintf(struct tw_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    int n;

    if (b->err)
        return b->err;
    va_copy(cp, ap);
    n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return b->err = TW_EINVAL;
    if (tw_buf_grow(b, (size_t)n))
        return b->err;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int tw_buf_printf(struct tw_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = tw_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void tw_buf_truncate(struct tw_buf *b, size_t len)
{
    if (len >= b->len)
        return;
    b->len = len;
    b->data[len] = '\0';
}

void tw_buf_reset(struct tw_buf *b)
{
    tw_buf_truncate(b, 0);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len, i;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int tw_buf_json_str(struct tw_buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run;

    tw_buf_putc(b, '"');
    while (i < len) {
        unsigned c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            run = i;
            while (run < len && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' &&
                   p[run] != '\\')
                run++;
            tw_buf_add(b, p + i, run - i);
            i = run;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_seq_len(p + i, len - i);
            if (n) {
                tw_buf_add(b, p + i, n);
                i += n;
            } else {
                tw_buf_puts(b, "\xef\xbf\xbd");
                i++;
            }
            continue;
        }
        switch (c) {
        case '"':
            tw_buf_puts(b, "\\\"");
            break;
        case '\\':
            tw_buf_puts(b, "\\\\");
            break;
        case '\n':
            tw_buf_puts(b, "\\n");
            break;
        case '\r':
            tw_buf_puts(b, "\\r");
            break;
        case '\t':
            tw_buf_puts(b, "\\t");
            break;
        default:
            tw_buf_printf(b, "\\u%04x", c);
        }
        i++;
    }
    return tw_buf_putc(b, '"');
}
