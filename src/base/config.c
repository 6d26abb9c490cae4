/* config.c - three layers of key=value settings; the INI syntax is inih's. */
#include "base/config.h"

#include "base/mem.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LAYER_FILE, LAYER_FLAG, N_LAYERS };

struct entry {
    char *key;
    char *value;
};

struct tw_config {
    struct entry *entries[N_LAYERS];
    size_t n[N_LAYERS];
    size_t cap[N_LAYERS];
};

/* What the inih callback needs to report the first error. */
struct load_ctx {
    struct tw_config *cfg;
    const char *name;
    struct tw_err *err;
    int code;
};

bool tw_config_key_is_valid(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > TW_CONFIG_KEY_MAX || key[0] == '.' || key[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return false;
        if (c == '.' && key[i + 1] == '.')
            return false;
    }
    return true;
}

int tw_config_env_name(const char *key, char *buf, size_t buf_len)
{
    size_t n;
    if (!tw_config_key_is_valid(key))
        return TW_EINVAL;
    n = strlen(key);
    if (buf_len < n + 6)
        return TW_EINVAL;
    memcpy(buf, "TWIN_", 5);
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        buf[5 + i] = c == '.' || c == '-' ? '_' : (c >= 'a' && c <= 'z' ? (char)(c - 32) : c);
    }
    buf[5 + n] = 0;
    return TW_OK;
}

int tw_config_new(struct tw_config **out, struct tw_err *err)
{
    *out = tw_calloc(1, sizeof(**out));
    if (!*out)
        return tw_errf(err, TW_ENOMEM, "out of memory creating config");
    return TW_OK;
}

void tw_config_free(struct tw_config *cfg)
{
    if (!cfg)
        return;
    for (int l = 0; l < N_LAYERS; l++) {
        for (size_t i = 0; i < cfg->n[l]; i++) {
            tw_free(cfg->entries[l][i].key);
            tw_free(cfg->entries[l][i].value);
        }
        tw_free(cfg->entries[l]);
    }
    tw_free(cfg);
}

static struct entry *find(const struct tw_config *cfg, int layer, const char *key)
{
    for (size_t i = 0; i < cfg->n[layer]; i++)
        if (!strcmp(cfg->entries[layer][i].key, key))
            return &cfg->entries[layer][i];
    return NULL;
}

static int layer_set(struct tw_config *cfg, int layer, const char *key, const char *value)
{
    struct entry *e = find(cfg, layer, key);
    char *v;

    if (!value) {
        if (e) {
            tw_free(e->key);
            tw_free(e->value);
            *e = cfg->entries[layer][--cfg->n[layer]];
        }
        return TW_OK;
    }
    v = tw_strdup(value);
    if (!v)
        return TW_ENOMEM;
    if (e) {
        tw_free(e->value);
        e->value = v;
        return TW_OK;
    }
    if (cfg->n[layer] >= TW_CONFIG_MAX_ENTRIES) {
        tw_free(v);
        return TW_ELIMIT;
    }
    if (cfg->n[layer] == cfg->cap[layer]) {
        size_t cap = cfg->cap[layer] ? cfg->cap[layer] * 2 : 16;
        struct entry *ne = tw_reallocarray(cfg->entries[layer], cap, sizeof(*ne));
        if (!ne) {
            tw_free(v);
            return TW_ENOMEM;
        }
        cfg->entries[layer] = ne;
        cfg->cap[layer] = cap;
    }
    e = &cfg->entries[layer][cfg->n[layer]];
    e->key = tw_strdup(key);
    if (!e->key) {
        tw_free(v);
        return TW_ENOMEM;
    }
    e->value = v;
    cfg->n[layer]++;
    return TW_OK;
}

int tw_config_set(struct tw_config *cfg, const char *key, const char *value, struct tw_err *err)
{
    int rc;
    if (!tw_config_key_is_valid(key))
        return tw_errf(err, TW_EINVAL, "config key '%.80s' is invalid (lowercase a-z, 0-9, _, -, "
                                       "and '.' between section and name)", key ? key : "");
    if (value && strlen(value) > TW_CONFIG_VALUE_MAX)
        return tw_errf(err, TW_EINVAL, "value of config key '%s' is longer than %d bytes", key,
                       TW_CONFIG_VALUE_MAX);
    rc = layer_set(cfg, LAYER_FLAG, key, value);
    if (rc < 0)
        return tw_errf(err, rc, "setting config key '%s': %s", key, tw_strerror(rc));
    return TW_OK;
}

static int on_ini(void *user, const char *section, const char *name, const char *value, int lineno)
{
    struct load_ctx *ctx = user;
    char key[TW_CONFIG_KEY_MAX + 2];
    int n, rc;

    if (!name) // a section header alone
        return 1;
    n = section && *section ? snprintf(key, sizeof(key), "%s.%s", section, name)
                            : snprintf(key, sizeof(key), "%s", name);
    for (char *p = key; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    if (n < 0 || (size_t)n >= sizeof(key) || !tw_config_key_is_valid(key)) {
        ctx->code = tw_errf(ctx->err, TW_EFORMAT,
                            "%s:%d: key '%.80s%s%.80s' is invalid (letters, digits, '_', '-'; "
                            "at most %d bytes with its section)",
                            ctx->name, lineno, section ? section : "", section && *section ? "." : "",
                            name, TW_CONFIG_KEY_MAX);
        return 0;
    }
    if (strlen(value) > TW_CONFIG_VALUE_MAX) {
        ctx->code = tw_errf(ctx->err, TW_EFORMAT, "%s:%d: value of '%s' is longer than %d bytes",
                            ctx->name, lineno, key, TW_CONFIG_VALUE_MAX);
        return 0;
    }
    rc = layer_set(ctx->cfg, LAYER_FILE, key, value);
    if (rc < 0) {
        ctx->code = tw_errf(ctx->err, rc, "%s:%d: %s", ctx->name, lineno,
                            rc == TW_ELIMIT ? "more than 512 keys" : tw_strerror(rc));
        return 0;
    }
    return 1;
}

/* The installed inih calls handlers without a line number; count lines in our reader. */
struct line_reader {
    const char *p;  // string input, or NULL
    FILE *f;        // file input, or NULL
    int line;       // line number of the last chunk handed out
    int newlines;   // '\n' read so far
    struct load_ctx *ctx;
};

static char *read_line(char *str, int num, void *stream)
{
    struct line_reader *r = stream;
    int i = 0;
    if (num <= 1)
        return NULL;
    if (r->f) {
        if (!fgets(str, num, r->f))
            return NULL;
        i = (int)strlen(str);
    } else {
        if (!*r->p)
            return NULL;
        while (i < num - 1 && *r->p) {
            char c = *r->p++;
            str[i++] = c;
            if (c == '\n')
                break;
        }
        str[i] = 0;
    }
    // the line being parsed is the one this chunk belongs to, counted from 1
    r->line = r->newlines + 1;
    if (i > 0 && str[i - 1] == '\n')
        r->newlines++;
    return str;
}

static int handler_lineno(void *user, const char *section, const char *name, const char *value)
{
    struct line_reader *r = user;
    return on_ini(r->ctx, section, name, value, r->line);
}

static int parse(struct tw_config *cfg, struct line_reader *r, const char *name,
                 struct tw_err *err)
{
    struct load_ctx ctx = {cfg, name, err, 0};
    int rc;
    r->ctx = &ctx;
    rc = ini_parse_stream(read_line, r, handler_lineno, r);
    if (ctx.code < 0)
        return ctx.code;
    if (rc < 0)
        return tw_errf(err, TW_ENOMEM, "out of memory reading '%s'", name);
    if (rc > 0)
        return tw_errf(err, TW_EFORMAT,
                       "%s:%d: not 'key = value', '[section]' or a comment ('#' or ';')", name, rc);
    return TW_OK;
}

int tw_config_load_string(struct tw_config *cfg, const char *text, const char *name,
                          struct tw_err *err)
{
    struct line_reader r = {text, NULL, 0, 0, NULL};
    return parse(cfg, &r, name ? name : "(config)", err);
}

int tw_config_load_file(struct tw_config *cfg, const char *path, bool must_exist,
                        struct tw_err *err)
{
    struct line_reader r = {NULL, NULL, 0, 0, NULL};
    int rc;
    r.f = fopen(path, "r");
    if (!r.f) {
        if (errno == ENOENT && !must_exist)
            return TW_OK;
        return tw_errf(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "cannot open config '%s': %s",
                       path, strerror(errno));
    }
    rc = parse(cfg, &r, path, err);
    fclose(r.f);
    return rc;
}

const char *tw_config_get(const struct tw_config *cfg, const char *key)
{
    char env[TW_CONFIG_KEY_MAX + 8];
    const struct entry *e = find(cfg, LAYER_FLAG, key);
    const char *v;
    if (e)
        return e->value;
    if (tw_config_env_name(key, env, sizeof(env)) == 0 && (v = getenv(env)) != NULL)
        return v;
    e = find(cfg, LAYER_FILE, key);
    return e ? e->value : NULL;
}

const char *tw_config_get_or(const struct tw_config *cfg, const char *key, const char *def)
{
    const char *v = tw_config_get(cfg, key);
    return v && *v ? v : def;
}

int tw_config_get_int(const struct tw_config *cfg, const char *key, int64_t def, int64_t min,
                      int64_t max, int64_t *out, struct tw_err *err)
{
    const char *v = tw_config_get(cfg, key);
    char *end;
    long long x;
    if (!v || !*v) {
        *out = def;
        return TW_OK;
    }
    errno = 0;
    x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < min || x > max)
        return tw_errf(err, TW_EINVAL, "config '%s' is '%.64s'; want an integer in [%lld, %lld]",
                       key, v, (long long)min, (long long)max);
    *out = x;
    return TW_OK;
}

int tw_config_get_bool(const struct tw_config *cfg, const char *key, bool def, bool *out,
                       struct tw_err *err)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    const char *v = tw_config_get(cfg, key);
    if (!v || !*v) {
        *out = def;
        return TW_OK;
    }
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i])) {
            *out = true;
            return TW_OK;
        }
        if (!strcasecmp(v, no[i])) {
            *out = false;
            return TW_OK;
        }
    }
    return tw_errf(err, TW_EINVAL, "config '%s' is '%.64s'; want true or false", key, v);
}
