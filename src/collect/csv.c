/* csv.c - an RFC 4180 record reader over a caller's buffer, bounded in fields and record size.
 *
 * Fields are decoded ("" to ") into one buffer per record; field views are set once the record is
 * complete because the buffer may move while it grows.
 */
#include "collect/collect.h"

#include "base/mem.h"

#include <string.h>
#include <strings.h>

void csv_init(struct csv_reader *r, const char *s, size_t len)
{
    memset(r, 0, sizeof(*r));
    r->s = s;
    r->len = len;
    if (len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
        r->pos = 3;
}

void csv_release(struct csv_reader *r)
{
    tw_free(r->buf);
    r->buf = NULL;
    r->buf_cap = 0;
    r->n_fields = 0;
}

static int put(struct csv_reader *r, size_t *used, char c)
{
    if (*used + 1 >= r->buf_cap) {
        size_t ncap = r->buf_cap ? r->buf_cap * 2 : 256;
        char *nb;
        if (ncap > CSV_RECORD_MAX + 1)
            ncap = CSV_RECORD_MAX + 1;
        if (*used + 1 >= ncap)
            return TW_ELIMIT;
        nb = tw_realloc(r->buf, ncap);
        if (!nb)
            return TW_ENOMEM;
        r->buf = nb;
        r->buf_cap = ncap;
    }
    r->buf[(*used)++] = c;
    return 0;
}

/* Skips to just past the end of the current line (error recovery). */
static void skip_line(struct csv_reader *r)
{
    const char *nl = r->pos < r->len ? memchr(r->s + r->pos, '\n', r->len - r->pos) : NULL;
    r->pos = nl ? (size_t)(nl - r->s) + 1 : r->len;
}

int csv_next(struct csv_reader *r, struct tw_err *err)
{
    size_t used = 0, start[CSV_FIELDS_MAX];
    long line;
    int n = 0, rc;

    r->n_fields = 0;
    if (r->pos >= r->len)
        return 0;
    r->next_line++;
    r->line = line = r->next_line;
    for (;;) {
        bool quoted = false;
        if (n == CSV_FIELDS_MAX) {
            skip_line(r);
            return tw_errf(err, TW_ELIMIT, "csv line %ld: more than %d fields", line,
                           CSV_FIELDS_MAX);
        }
        start[n] = used;
        if (r->pos < r->len && r->s[r->pos] == '"') {
            quoted = true;
            r->pos++;
        }
        for (;;) {
            char c;
            if (r->pos >= r->len) {
                if (quoted)
                    return tw_errf(err, TW_EFORMAT,
                                   "csv line %ld: quoted field never closed (missing '\"')", line);
                break;
            }
            c = r->s[r->pos];
            if (quoted) {
                if (c == '"') {
                    if (r->pos + 1 < r->len && r->s[r->pos + 1] == '"') {
                        r->pos += 2;
                        if ((rc = put(r, &used, '"')) < 0)
                            goto limit;
                        continue;
                    }
                    r->pos++;
                    if (r->pos < r->len && r->s[r->pos] != ',' && r->s[r->pos] != '\n' &&
                        r->s[r->pos] != '\r') {
                        skip_line(r);
                        return tw_errf(err, TW_EFORMAT,
                                       "csv line %ld: text after the closing quote of field %d",
                                       line, n + 1);
                    }
                    break;
                }
                if (c == '\n')
                    r->next_line++;
                r->pos++;
                if ((rc = put(r, &used, c)) < 0)
                    goto limit;
                continue;
            }
            if (c == ',' || c == '\n' || c == '\r')
                break;
            if (c == '"') {
                skip_line(r);
                return tw_errf(err, TW_EFORMAT,
                               "csv line %ld: quote inside unquoted field %d (quote the field)",
                               line, n + 1);
            }
            r->pos++;
            if ((rc = put(r, &used, c)) < 0)
                goto limit;
        }
        if ((rc = put(r, &used, '\0')) < 0)
            goto limit;
        n++;
        if (r->pos < r->len && r->s[r->pos] == ',') {
            r->pos++;
            continue;
        }
        if (r->pos < r->len && r->s[r->pos] == '\r')
            r->pos++;
        if (r->pos < r->len && r->s[r->pos] == '\n')
            r->pos++;
        break;
    }
    for (int i = 0; i < n; i++) {
        r->field[i] = r->buf + start[i];
        r->field_len[i] = (i + 1 < n ? start[i + 1] : used) - start[i] - 1;
    }
    r->n_fields = n;
    return 1;
limit:
    skip_line(r);
    if (rc == TW_ENOMEM)
        return tw_errf(err, TW_ENOMEM, "out of memory reading csv line %ld", line);
    return tw_errf(err, TW_ELIMIT, "csv line %ld: record longer than %zu bytes", line,
                   (size_t)CSV_RECORD_MAX);
}

int csv_column(const struct csv_reader *r, const char *name)
{
    for (int i = 0; i < r->n_fields; i++)
        if (!strcasecmp(r->field[i], name))
            return i;
    return -1;
}
