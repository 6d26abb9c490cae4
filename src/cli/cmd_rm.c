/* cmd_rm.c - `twin rm`: delete documents by id or url (each one a delete event). */
#include "cli/cli.h"
#include "cli/cli_store.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: twin rm [--data DIR] [--config FILE] DOC_ID|URL...\n\n"
               "Deletes each document (by its id, or by its url) in its own transaction; each\n"
               "delete appends a delete event to the change log, so the feature store drops the\n"
               "document's chunks. Exits 1 if any document was not found.\n");
}

TW_COMMAND(rm, "delete documents by id or url")
{
    struct cli_env env;
    struct doc_store *s;
    int status = 0, n_keys = 0;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (cli_env_init(&env, &argc, argv))
        return 1;
    for (int i = 1; i < argc; i++)
        n_keys += argv[i][0] != '-' || argv[i][1] == 0;
    if (n_keys == 0 || n_keys != argc - 1) {
        cli_env_release(&env);
        usage(stderr);
        return 2;
    }
    if (cli_store_open_existing(&env, &s)) {
        cli_env_release(&env);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        struct tw_err err = TW_ERR_INIT;
        char id[DOC_ID_LEN + 1];
        if (doc_store_delete(s, argv[i], id, &err) < 0) {
            status = cli_fail("%s", err.msg);
            continue;
        }
        printf("deleted %s\n", id);
    }
    doc_store_close(s);
    cli_env_release(&env);
    return status;
}
