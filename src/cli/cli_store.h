/* cli_store.h - what every command that touches the data directory shares: the --data and
 * --config flags, twin.conf loading and opening the document store.
 *
 *     twin <command> [--data DIR] [--config FILE] ...
 *
 * The config file is --config FILE, else $TWIN_CONFIG, else ./twin.conf if it exists. The data
 * directory is --data DIR, else $TWIN_DATA, else `data` in twin.conf, else ./twin-data. The
 * document store is `store.url` ($TWIN_STORE_URL) when set, else the data directory, unless
 * --data was given, which always wins.
 */
#ifndef TW_CLI_STORE_H
#define TW_CLI_STORE_H

#include "base/config.h"
#include "store/doc.h"

#define CLI_DATA_DEFAULT "./twin-data"
#define CLI_CONFIG_DEFAULT "./twin.conf"

struct cli_env {
    struct tw_config *cfg;   // file < env < flags
    const char *config_path; // the config file read (or to write, for init)
    int data_flag;           // --data was given
};

/* Removes --data DIR / --data=DIR and --config FILE / --config=FILE from argv (updating *argc),
 * then loads the config. Prints the error and returns 1 (an exit status) on failure, else 0.
 * Release with cli_env_release(). */
int cli_env_init(struct cli_env *env, int *argc, char **argv);
void cli_env_release(struct cli_env *env);
/* The data directory. */
const char *cli_data_dir(const struct cli_env *env);
/* Opens the document store, creating it if absent (for init and the commands that collect
 * documents); prints the error and returns 1 on failure, else 0. */
int cli_store_open(const struct cli_env *env, struct doc_store **out);
/* Opens the document store only if it exists: for commands that read or delete, so that a typo
 * in --data is an error ("run 'twin init' first") rather than a new empty store. */
int cli_store_open_existing(const struct cli_env *env, struct doc_store **out);
/* Parses a non-negative integer flag value; prints an error naming the flag on failure and
 * returns 1, else 0. */
int cli_parse_int(const char *flag, const char *s, long long min, long long max, long long *out);

#endif
