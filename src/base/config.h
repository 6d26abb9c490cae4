/* config.h - settings from twin.conf (INI), TWIN_* environment variables and flags (DESIGN §5).
 *
 *     # twin.conf
 *     data = ./twin-data          -> key "data",      env TWIN_DATA
 *     [store]
 *     url = sqlite:./twin-data    -> key "store.url", env TWIN_STORE_URL
 *
 * A key is "section.name" (or "name" before any section), lowercase letters, digits, '_' and
 * '-'. Its environment variable is TWIN_ followed by the key in upper case with '.' and '-' as
 * '_'. tw_config_get() answers from, in order: values set with tw_config_set() (flags), the
 * environment, the file, else NULL. The file is parsed by inih; it is untrusted input: at most
 * TW_CONFIG_MAX_ENTRIES keys, keys up to TW_CONFIG_KEY_MAX bytes and values up to
 * TW_CONFIG_VALUE_MAX bytes; a bad line is an error naming the file and line.
 * A config belongs to one thread; strings it returns live until tw_config_free() or until the
 * same key is set again.
 */
#ifndef TW_CONFIG_H
#define TW_CONFIG_H

#include "base/err.h"

#include <stdbool.h>
#include <stdint.h>

#define TW_CONFIG_MAX_ENTRIES 512
#define TW_CONFIG_KEY_MAX 64
#define TW_CONFIG_VALUE_MAX 4096

struct tw_config;

/* A new, empty config in *out. Returns 0 or TW_ENOMEM. */
int tw_config_new(struct tw_config **out, struct tw_err *err);
/* Frees the config; NULL does nothing. */
void tw_config_free(struct tw_config *cfg);
/* Reads an INI file into the file layer (later keys replace earlier ones). A missing file is
 * TW_ENOENT when must_exist, else not an error. A malformed file is TW_EFORMAT naming
 * "path:line"; keys read before the bad line stay. */
int tw_config_load_file(struct tw_config *cfg, const char *path, bool must_exist,
                        struct tw_err *err);
/* The same for INI text already in memory (NUL-terminated); 'name' labels errors. */
int tw_config_load_string(struct tw_config *cfg, const char *text, const char *name,
                          struct tw_err *err);
/* Sets key to value in the flag layer (value NULL removes it). Returns 0, TW_EINVAL for a bad
 * key or an oversized value, or TW_ENOMEM. */
int tw_config_set(struct tw_config *cfg, const char *key, const char *value, struct tw_err *err);
/* The value of key (flags, then TWIN_* environment, then file), or NULL. */
const char *tw_config_get(const struct tw_config *cfg, const char *key);
/* tw_config_get, or def when the key is unset or empty. */
const char *tw_config_get_or(const struct tw_config *cfg, const char *key, const char *def);
/* An integer setting in [min, max]; def when unset. TW_EINVAL names the key and value. */
int tw_config_get_int(const struct tw_config *cfg, const char *key, int64_t def, int64_t min,
                      int64_t max, int64_t *out, struct tw_err *err);
/* A boolean setting (1/0, true/false, yes/no, on/off); def when unset. */
int tw_config_get_bool(const struct tw_config *cfg, const char *key, bool def, bool *out,
                       struct tw_err *err);
/* Writes the environment variable name of key into buf ("store.url" -> "TWIN_STORE_URL").
 * Returns 0, or TW_EINVAL when the key is invalid or buf too small. */
int tw_config_env_name(const char *key, char *buf, size_t buf_len);
/* True when key is a valid config key. */
bool tw_config_key_is_valid(const char *key);

#endif
