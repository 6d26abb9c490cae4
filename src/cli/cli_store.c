/* cli_store.c - --data/--config handling and opening the store for commands. */
#include "cli/cli_store.h"

#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Takes "--name VALUE" or "--name=VALUE" at argv[*i]; returns the value or NULL. */
static const char *take_flag(const char *name, int *i, int *argc, char **argv, int *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i], *v = NULL;
    int used = 0;
    if (strncmp(a, name, n))
        return NULL;
    if (a[n] == '=') {
        v = a + n + 1;
        used = 1;
    } else if (a[n] == 0) {
        if (*i + 1 >= *argc) {
            *missing = 1;
            return NULL;
        }
        v = argv[*i + 1];
        used = 2;
    } else {
        return NULL;
    }
    memmove(&argv[*i], &argv[*i + used], (size_t)(*argc - *i - used + 1) * sizeof(char *));
    *argc -= used;
    (*i)--;
    return v;
}

int cli_env_init(struct cli_env *env, int *argc, char **argv)
{
    struct tw_err err = TW_ERR_INIT;
    const char *data = NULL, *config = NULL, *v;
    int missing = 0, explicit_config;

    memset(env, 0, sizeof(*env));
    for (int i = 1; i < *argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if ((v = take_flag("--data", &i, argc, argv, &missing)))
            data = v;
        else if ((v = take_flag("--config", &i, argc, argv, &missing)))
            config = v;
        if (missing)
            return cli_fail("%s needs a value", argv[i]);
    }
    if (data && !*data)
        return cli_fail("--data needs a directory");
    explicit_config = config || (getenv("TWIN_CONFIG") && *getenv("TWIN_CONFIG"));
    if (!config)
        config = explicit_config ? getenv("TWIN_CONFIG") : CLI_CONFIG_DEFAULT;
    env->config_path = config;
    if (tw_config_new(&env->cfg, &err) < 0 ||
        tw_config_load_file(env->cfg, config, explicit_config, &err) < 0 ||
        (data && tw_config_set(env->cfg, "data", data, &err) < 0)) {
        cli_env_release(env);
        return cli_fail("%s", err.msg);
    }
    env->data_flag = data != NULL;
    return 0;
}

void cli_env_release(struct cli_env *env)
{
    tw_config_free(env->cfg);
    env->cfg = NULL;
}

const char *cli_data_dir(const struct cli_env *env)
{
    return tw_config_get_or(env->cfg, "data", CLI_DATA_DEFAULT);
}

static const char *store_url(const struct cli_env *env)
{
    const char *url = env->data_flag ? NULL : tw_config_get(env->cfg, "store.url");
    return url && *url ? url : cli_data_dir(env);
}

int cli_store_open(const struct cli_env *env, struct doc_store **out)
{
    struct tw_err err = TW_ERR_INIT;
    if (doc_store_open(store_url(env), out, &err) < 0)
        return cli_fail("%s", err.msg);
    return 0;
}

int cli_store_open_existing(const struct cli_env *env, struct doc_store **out)
{
    const char *url = store_url(env), *dir = url;
    char path[4200];
    struct stat sb;
    if (!strncmp(dir, "sqlite:", 7))
        dir += !strncmp(dir + 7, "//", 2) ? 9 : 7;
    if (!strstr(url, "://") || !strncmp(url, "sqlite:", 7)) {
        snprintf(path, sizeof(path), "%s/docs.db", dir);
        if (stat(path, &sb) != 0)
            return cli_fail("no document store in '%s' (run 'twin init' first, or pass --data "
                            "DIR)",
                            dir);
    }
    return cli_store_open(env, out);
}

int cli_parse_int(const char *flag, const char *s, long long min, long long max, long long *out)
{
    char *end;
    long long v;
    errno = 0;
    v = s ? strtoll(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < min || v > max)
        return cli_fail("%s wants an integer in [%lld, %lld], not '%s'", flag, min, max,
                        s ? s : "");
    *out = v;
    return 0;
}
