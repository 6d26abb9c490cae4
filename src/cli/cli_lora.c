/* cli_lora.c - FILE[:SCALE] and --lora for commands that load a decoder (see cli_lora.h). */
#include "cli/cli_lora.h"

#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int cli_lora_split(const char *arg, float def, char *path, size_t cap, float *scale)
{
    const char *colon = strrchr(arg, ':');
    size_t len = strlen(arg);

    *scale = def;
    if (colon && colon[1]) {
        char *end;
        errno = 0;
        double v = strtod(colon + 1, &end);
        if (!errno && !*end && isfinite(v)) {
            *scale = (float)v;
            len = (size_t)(colon - arg);
        }
    }
    if (len == 0 || len >= cap)
        return cli_fail("adapter path '%s' is empty or too long", arg);
    memcpy(path, arg, len);
    path[len] = '\0';
    return 0;
}

int cli_lora_add(struct cli_lora *l, const char *spec)
{
    if (l->n == LORA_MAX_ADAPTERS)
        return cli_fail("more than %d --lora adapters", LORA_MAX_ADAPTERS);
    l->spec[l->n++] = spec;
    return 0;
}

int cli_lora_apply(struct cli_lora *l, struct llm_model *m)
{
    struct tw_err err = TW_ERR_INIT;
    char path[4096];
    float scale;

    for (int i = 0; i < l->n; i++) {
        if (cli_lora_split(l->spec[i], 1.0f, path, sizeof(path), &scale))
            return 1;
        if (!l->a[i] && lora_adapter_load(path, &l->a[i], &err) < 0)
            return cli_fail("--lora '%s': %s", l->spec[i], err.msg);
        if (llm_model_apply_lora(m, l->a[i], scale, &err) < 0)
            return cli_fail("--lora '%s': %s", l->spec[i], err.msg);
    }
    return 0;
}

void cli_lora_release(struct cli_lora *l)
{
    for (int i = 0; i < l->n; i++) {
        lora_adapter_free(l->a[i]);
        l->a[i] = NULL;
    }
    l->n = 0;
}
