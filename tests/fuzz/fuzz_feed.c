/* fuzz_feed.c - the feed parser (RSS/Atom tokenizer, dates) and the robots.txt parser on
 * arbitrary bytes: no crash, no leak, bounded work. */
#include "base/mem.h"
#include "collect/collect.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct feed f;
    struct tw_err err = TW_ERR_INIT;
    struct robots *r = NULL;
    char *s = tw_strndup((const char *)data, size);
    if (!s)
        return 0;
    (void)feed_is_feed((const char *)data, size);
    if (feed_parse((const char *)data, size, &f, &err) == 0) {
        for (size_t i = 0; i < f.n_items; i++)
            if (f.items[i].title)
                (void)strlen(f.items[i].title);
    }
    feed_release(&f);
    (void)feed_parse_date(s);
    tw_err_clear(&err);
    if (robots_parse((const char *)data, size, "twin", &r, &err) == 0) {
        (void)robots_allowed(r, "/");
        (void)robots_allowed(r, s[0] == '/' ? s : "/a/b.html?x=1");
        robots_free(r);
    }
    tw_free(s);
    return 0;
}
