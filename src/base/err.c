/* err.c - error codes, messages and assertions. */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tw_strerror(int code)
{
    switch (code) {
#define TW__ERR_CASE(name, value, text)                                                            \
    case value:                                                                                    \
        return text;
        TW_ERRNO_MAP(TW__ERR_CASE)
#undef TW__ERR_CASE
    }
    return "unknown error";
}

int tw_errf(struct tw_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (!err || err->code)
        return code;
    err->code = code ? code : TW_EINTERNAL;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

int tw_err_ctx(struct tw_err *err, const char *fmt, ...)
{
    char msg[TW_ERR_MSG_MAX];
    size_t n, old_len;
    va_list ap;
    int w;

    if (!err || !err->code)
        return TW_EINTERNAL;
    va_start(ap, fmt);
    w = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    n = w < 0 ? 0 : (size_t)w;
    if (n > sizeof(msg) - 1)
        n = sizeof(msg) - 1;
    if (n + 2 < sizeof(msg)) {
        msg[n++] = ':';
        msg[n++] = ' ';
        old_len = strnlen(err->msg, sizeof(err->msg) - 1);
        if (old_len > sizeof(msg) - 1 - n)
            old_len = sizeof(msg) - 1 - n;
        memcpy(msg + n, err->msg, old_len);
        n += old_len;
    }
    msg[n] = '\0';
    memcpy(err->msg, msg, n + 1);
    return err->code;
}

void tw_err_clear(struct tw_err *err)
{
    if (!err)
        return;
    err->code = 0;
    err->msg[0] = '\0';
}

_Noreturn void tw__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}
