/* fuzz_lexical.c - the analyzer and MATCH building on any bytes. */
#include "base/buf.h"
#include "base/mem.h"
#include "vector/lexical.h"

#include <stdint.h>
#include <string.h>

static int sink(void *ctx, const char *t, size_t n, size_t s, size_t e)
{
    size_t *total = ctx;
    /* Offsets must stay inside the input and terms inside their bound. */
    if (n == 0 || n > LEX_TERM_MAX || s >= e)
        __builtin_trap();
    *total += n + s + e;
    (void)t;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tw_buf b = TW_BUF_INIT;
    size_t total = 0;

    lex_analyze((const char *)data, size, sink, &total);
    lex_build_match((const char *)data, size, &b);
    tw_buf_release(&b);
    return 0;
}
