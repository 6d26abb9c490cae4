/* fuzz_date.c - the date parser on arbitrary bytes; accepted dates must format and re-parse to
 * the same instant. */
#include "base/err.h"
#include "base/time.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tw_err err = TW_ERR_INIT;
    int64_t t, back;
    char buf[TW_TIME_STR_MAX];
    if (tw_time_parse((const char *)data, size, &t, &err) != 0) {
        if (err.code == 0)
            __builtin_trap();
        return 0;
    }
    size_t n = tw_time_format(t, buf);
    if (tw_time_parse(buf, n, &back, &err) != 0 || back != t)
        __builtin_trap();
    return 0;
}
