/* fuzz_config.c - twin.conf (INI through inih, our key/value limits) on arbitrary bytes. */
#include "base/config.h"
#include "base/mem.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tw_err err = TW_ERR_INIT;
    struct tw_config *cfg;
    char *text;
    if (size > 1 << 20)
        return 0;
    text = tw_malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    if (tw_config_new(&cfg, &err) == 0) {
        int rc = tw_config_load_string(cfg, text, "fuzz.conf", &err);
        if (rc < 0 && err.code == 0)
            __builtin_trap(); /* every failure must carry a message */
        (void)tw_config_get(cfg, "data");
        (void)tw_config_get(cfg, "store.url");
        tw_config_free(cfg);
    }
    tw_free(text);
    return 0;
}
