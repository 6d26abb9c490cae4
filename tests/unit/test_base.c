/* test_base.c - err, mem, buf, arena, log. */
#include "test.h"

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"

#include <stdint.h>

TEST(err_keeps_first_and_prefixes_context)
{
    struct tw_err err = TW_ERR_INIT;
    CHECK_EQ_INT(tw_errf(&err, TW_EFORMAT, "tensor '%s' ends at byte %d", "a", 9), TW_EFORMAT);
    CHECK_EQ_INT(tw_errf(&err, TW_ENOMEM, "second"), TW_ENOMEM);
    CHECK_EQ_INT(err.code, TW_EFORMAT);
    CHECK_EQ_INT(tw_err_ctx(&err, "loading '%s'", "m.gguf"), TW_EFORMAT);
    CHECK_EQ_STR(err.msg, "loading 'm.gguf': tensor 'a' ends at byte 9");
    CHECK_EQ_STR(tw_strerror(TW_ELIMIT), "limit exceeded");
    CHECK_EQ_STR(tw_strerror(-999), "unknown error");
    tw_err_clear(&err);
    CHECK_EQ_INT(err.code, 0);
}

TEST(buf_appends_and_limits)
{
    struct tw_buf b = TW_BUF_INIT;
    CHECK_EQ_STR(b.data, "");
    tw_buf_puts(&b, "hello");
    tw_buf_printf(&b, " %d", 42);
    CHECK_EQ_STR(b.data, "hello 42");
    CHECK_EQ_INT(b.len, 8);
    tw_buf_release(&b);
    tw_buf_init(&b, 4);
    CHECK_EQ_INT(tw_buf_puts(&b, "abcd"), 0);
    CHECK_EQ_INT(tw_buf_putc(&b, 'e'), TW_ELIMIT);
    CHECK_EQ_INT(tw_buf_putc(&b, 'f'), TW_ELIMIT); /* sticky */
    CHECK_EQ_STR(b.data, "abcd");
    tw_buf_release(&b);
}

TEST(buf_json_escapes_and_repairs_utf8)
{
    struct tw_buf b = TW_BUF_INIT;
    tw_buf_json_str(&b, "a\"b\\\n\x01\xc3\xa9\xff", 9);
    CHECK_EQ_STR(b.data, "\"a\\\"b\\\\\\n\\u0001\xc3\xa9\xef\xbf\xbd\"");
    tw_buf_release(&b);
}

TEST(buf_survives_allocation_failure)
{
    struct tw_buf b = TW_BUF_INIT;
    tw_mem_fail_after(0);
    CHECK_EQ_INT(tw_buf_puts(&b, "x"), TW_ENOMEM);
    tw_mem_fail_after(-1);
    CHECK_EQ_INT(tw_buf_puts(&b, "x"), TW_ENOMEM);
    tw_buf_release(&b);
    CHECK_EQ_INT(tw_buf_puts(&b, "y"), 0);
    CHECK_EQ_STR(b.data, "y");
    tw_buf_release(&b);
}

static void count_cleanup(void *arg)
{
    ++*(int *)arg;
}

TEST(arena_allocates_aligned_and_cleans_up)
{
    struct tw_arena a = TW_ARENA_INIT;
    int cleaned = 0;
    for (int i = 0; i < 1000; i++) {
        char *p = tw_arena_alloc(&a, (size_t)i * 7 + 1);
        CHECK(p != NULL);
        CHECK(((uintptr_t)p & 15) == 0);
        memset(p, 0xab, (size_t)i * 7 + 1);
    }
    CHECK_EQ_STR(tw_arena_strdup(&a, "abc"), "abc");
    CHECK_EQ_INT(tw_arena_on_free(&a, count_cleanup, &cleaned), 0);
    tw_arena_release(&a);
    CHECK_EQ_INT(cleaned, 1);
}

static char last_line[1024];
static void sink(void *ctx, enum tw_log_level lv, const char *line)
{
    (void)ctx;
    (void)lv;
    snprintf(last_line, sizeof(last_line), "%s", line);
}

TEST(log_filters_components)
{
    tw_log_set_sink(sink, NULL);
    tw_log_configure(TW_LOG_INFO, "all,-http");
    last_line[0] = 0;
    tw_log(TW_LOG_WARN, "http", "hidden");
    CHECK_EQ_STR(last_line, "");
    tw_log(TW_LOG_WARN, "crawl", "fetch '%s' failed", "u");
    CHECK_EQ_STR(last_line, "twin: warn: crawl: fetch 'u' failed");
    tw_log(TW_LOG_DEBUG, "crawl", "too verbose");
    CHECK_EQ_STR(last_line, "twin: warn: crawl: fetch 'u' failed");
    tw_log_set_sink(NULL, NULL);
    tw_log_configure(TW_LOG_WARN, "all");
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
