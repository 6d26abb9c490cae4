/* fuzz_lexical.c - the analyzer, MATCH building and the TREC qrels/run parsers on any bytes. */
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
    struct tw_err err = TW_ERR_INIT;
    struct ir_qrels *q = NULL;
    struct ir_run *r = NULL;
    struct ir_measures m;
    size_t total = 0;

    lex_analyze((const char *)data, size, sink, &total);
    lex_build_match((const char *)data, size, &b);
    tw_buf_release(&b);
    if (ir_qrels_parse((const char *)data, size, &q, &err) == 0 &&
        ir_run_parse((const char *)data, size, &r, &err) == 0)
        ir_evaluate(q, r, &m);
    ir_qrels_free(q);
    ir_run_free(r);
    return 0;
}
