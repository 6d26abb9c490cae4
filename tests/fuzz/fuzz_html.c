/* fuzz_html.c - html_to_text, html_extract_article and html_is_bot_challenge on arbitrary bytes:
 * no crash, no leak, and every text produced is valid UTF-8 without NUL. */
#include "base/mem.h"
#include "collect/html.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_text(const char *s)
{
    /* Valid UTF-8 (the normalizer's promise); abort so the fuzzer reports it. */
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        if (!n)
            abort();
        for (int i = 1; i < n; i++)
            if ((p[i] & 0xc0) != 0x80)
                abort();
        p += n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tw_err err = TW_ERR_INIT;
    struct html_article a;
    char *text = NULL;
    if (html_to_text((const char *)data, size, &text, &err) == 0) {
        check_text(text);
        tw_free(text);
    }
    tw_err_clear(&err);
    if (html_extract_article((const char *)data, size, &a, &err) == 0) {
        check_text(a.content);
        if (a.title)
            check_text(a.title);
        html_article_release(&a);
    }
    (void)html_is_bot_challenge((const char *)data, size);
    return 0;
}
