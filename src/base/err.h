/* err.h - error codes and the caller-owned error buffer (STYLE §4).
 *
 * Fallible calls return TW_OK (0) or a negative TW_E* code and describe the failure in a
 * caller-owned 'struct tw_err' passed last. tw_errf() keeps the first error (later calls only
 * return their code), tw_err_ctx() prefixes context as the error climbs:
 *
 *     loading 'm.gguf': tensor 'blk.0.attn_q.weight' ends at byte 9437184, file has 8388608
 *
 * Messages are lowercase, without a final period. Thread-safety: a tw_err belongs to one thread.
 */
#ifndef TW_ERR_H
#define TW_ERR_H

#include <stddef.h>

/* X(name, value, text) */
#define TW_ERRNO_MAP(X)                                                                            \
    X(OK, 0, "success")                                                                            \
    X(ENOMEM, -1, "out of memory")                                                                 \
    X(EINVAL, -2, "invalid argument")                                                              \
    X(EIO, -3, "input/output error")                                                               \
    X(ENOENT, -4, "not found")                                                                     \
    X(EFORMAT, -5, "malformed input")                                                              \
    X(ELIMIT, -6, "limit exceeded")                                                                \
    X(EUNSUP, -7, "not supported")                                                                 \
    X(EDB, -8, "database error")                                                                   \
    X(ENET, -9, "network error")                                                                   \
    X(ETIMEOUT, -10, "timed out")                                                                  \
    X(EEXIST, -11, "already exists")                                                               \
    X(EBLOCKED, -12, "blocked")                                                                    \
    X(EINTERNAL, -13, "internal error")                                                            \
    X(ESTATE, -14, "invalid state")                                                                \
    X(EHTTP, -15, "http error")

enum tw_errno {
#define TW__ERR_ENUM(name, value, text) TW_##name = value,
    TW_ERRNO_MAP(TW__ERR_ENUM)
#undef TW__ERR_ENUM
};

#define TW_ERR_MSG_MAX 256

struct tw_err {
    int code;                 // first error's code, 0 when none
    char msg[TW_ERR_MSG_MAX]; // first error's message (with any context prefixes)
};

#define TW_ERR_INIT {0, {0}}

/* Returns the static text for 'code' ("out of memory"); "unknown error" for others. */
const char *tw_strerror(int code);

/* Records the first error: if 'err' is non-NULL and holds none yet, formats the message into it
 * and sets its code. Always returns 'code', so callers write 'return tw_errf(err, ...)'. */
int tw_errf(struct tw_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes "<context>: " to the message in 'err' (truncating at the buffer size) and returns
 * its code, or TW_EINTERNAL if 'err' holds no error. */
int tw_err_ctx(struct tw_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Forgets any recorded error. */
void tw_err_clear(struct tw_err *err);

/* Always-on cheap invariant check: prints file:line and aborts. Never used on input. */
#define TW_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            tw__assert_fail(#cond, __FILE__, __LINE__);                                            \
    } while (0)
#ifdef NDEBUG
#define TW_DASSERT(cond) ((void)0)
#else
#define TW_DASSERT(cond) TW_ASSERT(cond)
#endif
_Noreturn void tw__assert_fail(const char *expr, const char *file, int line);

#endif
