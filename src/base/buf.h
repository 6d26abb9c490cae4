/* buf.h - a bounded, growable byte buffer with a sticky error (STYLE §5) [git strbuf, curl dynbuf].
 *
 *     struct tw_buf b = TW_BUF_INIT;       // unbounded (TW_BUF_MAX_DEFAULT)
 *     tw_buf_init(&b, 1 << 20);            // or: appends past 1 MiB fail with TW_ELIMIT
 *     tw_buf_puts(&b, "x"); tw_buf_printf(&b, "%d", 5);
 *     if (b.err) ...;                      // one check at the end is enough
 *     tw_buf_release(&b);
 *
 * The data is always NUL-terminated (b.data is "" before the first append). Fields are private
 * except data/len/err, which callers read. After the first failure every append does nothing.
 */
#ifndef TW_BUF_H
#define TW_BUF_H

#include <stdarg.h>
#include <stddef.h>

#define TW_BUF_MAX_DEFAULT ((size_t)1 << 31)

struct tw_buf {
    char *data;     // NUL-terminated contents; "" (static) while nothing is allocated
    size_t len;     // bytes used, without the NUL
    size_t cap;     // bytes allocated (0: data points at a static "")
    size_t max_len; // appends that would pass this fail with TW_ELIMIT
    int err;        // sticky: 0, TW_ENOMEM or TW_ELIMIT
};

extern char tw_buf_empty[1];
#define TW_BUF_INIT {tw_buf_empty, 0, 0, TW_BUF_MAX_DEFAULT, 0}

void tw_buf_init(struct tw_buf *b, size_t max_len);
/* Frees the contents and returns the buffer to its initial empty state (max_len kept). */
void tw_buf_release(struct tw_buf *b);
/* Returns the contents as a heap string the caller frees with tw_free (never NULL unless out of
 * memory); the buffer is left empty. */
char *tw_buf_detach(struct tw_buf *b, size_t *len);
/* Ensures room for 'extra' more bytes. Returns 0 or the sticky error. */
int tw_buf_grow(struct tw_buf *b, size_t extra);
int tw_buf_add(struct tw_buf *b, const void *data, size_t len);
int tw_buf_puts(struct tw_buf *b, const char *s);
int tw_buf_putc(struct tw_buf *b, char c);
int tw_buf_printf(struct tw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tw_buf_vprintf(struct tw_buf *b, const char *fmt, va_list ap);
/* Keeps the first 'len' bytes (len <= b->len). */
void tw_buf_truncate(struct tw_buf *b, size_t len);
void tw_buf_reset(struct tw_buf *b);
/* Appends 's' as a JSON string literal, quotes included; invalid UTF-8 bytes become U+FFFD. */
int tw_buf_json_str(struct tw_buf *b, const char *s, size_t len);

#endif
