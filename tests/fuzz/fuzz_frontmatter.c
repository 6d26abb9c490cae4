/* fuzz_frontmatter.c - fm_parse and src__parse_time on arbitrary bytes: no crash, no leak, the
 * body offset within the input, and every value NUL-free within bounds. */
#include "base/mem.h"
#include "collect/collect_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tw_err err = TW_ERR_INIT;
    struct fm_meta m;
    int64_t t;
    char *text = tw_malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (fm_parse(text, size, &m, &err) == 0) {
        if (m.body_off > size || m.n_tags < 0 || m.n_tags > FM_TAGS_MAX)
            abort();
        if (m.date)
            (void)src__parse_time(m.date, strlen(m.date), &t);
        fm_meta_release(&m);
    } else if (err.code == 0 || !err.msg[0]) {
        abort(); // an error always says what is wrong
    }
    (void)src__parse_time(text, size, &t);
    tw_free(text);
    return 0;
}
