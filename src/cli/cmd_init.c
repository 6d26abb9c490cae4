/* cmd_init.c - `twin init`: the data directory, its document store and a commented twin.conf. */
#include "cli/cli.h"
#include "cli/cli_store.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static const char conf_template[] =
    "# twin.conf - settings for twin (INI). Every key can be overridden by an environment\n"
    "# variable TWIN_<SECTION>_<KEY> (e.g. TWIN_STORE_URL) and by command-line flags.\n"
    "\n"
    "# The data directory: docs.db (documents + change log), features, registry, traces.\n"
    "# --data DIR or TWIN_DATA override it.\n"
    "data = %s\n"
    "\n"
    "[store]\n"
    "# The document store: a directory or sqlite:DIR (default: the data directory).\n"
    "# url = sqlite:./twin-data\n"
    "\n"
    "[author]\n"
    "# The person whose twin this is; importers use it when --author is not given.\n"
    "# name = Ada Lovelace\n"
    "\n"
    "[embed]\n"
    "# The embedding model of the feature pipeline (twin stream, twin search): a BERT-family\n"
    "# GGUF such as bge-small-en-v1.5. Without one, chunks are indexed lexically only.\n"
    "# model = ./models/bge-small-en-v1.5-f16.gguf\n";

static void usage(FILE *f)
{
    fprintf(f, "usage: twin init [--data DIR] [--config FILE]\n\n"
               "Creates the data directory (default ./twin-data) with its document store\n"
               "(docs.db) and, if absent, a commented twin.conf (default ./twin.conf).\n"
               "Running it again changes nothing.\n");
}

/* Writes the template to path unless it exists; *wrote says whether it did. */
static int write_conf(const char *path, const char *data_dir, int *wrote)
{
    char text[sizeof(conf_template) + 4200];
    int n, fd;
    *wrote = 0;
    n = snprintf(text, sizeof(text), conf_template, data_dir);
    if (n < 0 || (size_t)n >= sizeof(text))
        return cli_fail("data directory '%.200s' is too long", data_dir);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        if (errno == EEXIST)
            return 0;
        return cli_fail("cannot create '%s': %s", path, strerror(errno));
    }
    if (write(fd, text, (size_t)n) != n || close(fd) != 0) {
        close(fd);
        unlink(path);
        return cli_fail("cannot write '%s': %s", path, strerror(errno));
    }
    *wrote = 1;
    return 0;
}

TW_COMMAND(init, "create the data directory, its document store and twin.conf")
{
    struct cli_env env;
    struct doc_store *s;
    struct tw_err err = TW_ERR_INIT;
    int64_t n_docs = 0;
    int wrote = 0;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (cli_env_init(&env, &argc, argv))
        return 1;
    if (argc > 1) {
        cli_env_release(&env);
        usage(stderr);
        return 2;
    }
    if (cli_store_open(&env, &s)) {
        cli_env_release(&env);
        return 1;
    }
    if (doc_store_count(s, NULL, &n_docs, &err) < 0) {
        doc_store_close(s);
        cli_env_release(&env);
        return cli_fail("%s", err.msg);
    }
    doc_store_close(s);
    if (write_conf(env.config_path, cli_data_dir(&env), &wrote)) {
        cli_env_release(&env);
        return 1;
    }
    printf("data directory %s ready (docs.db schema %d, %lld documents)\n", cli_data_dir(&env),
           doc_store_schema_version(), (long long)n_docs);
    printf(wrote ? "wrote %s\n" : "kept %s\n", env.config_path);
    cli_env_release(&env);
    return 0;
}
