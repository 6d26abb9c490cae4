/* cmd_docs.c - `twin docs`: list stored documents as a table or JSON lines. */
#include "cli/cli.h"
#include "cli/cli_store.h"

#include "base/time.h"

#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: twin docs [--kind article|post|code] [--source SOURCE] [--json]\n"
               "                 [--data DIR] [--config FILE]\n\n"
               "Lists the documents in the store, ordered by kind and url: a table by default,\n"
               "or with --json one JSON object per line (the same object change events carry).\n");
}

struct list_state {
    int json;
    long n;
};

/* Writes at most 'max' bytes of s with control characters as spaces, cut on a UTF-8 boundary. */
static void put_cell(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    for (size_t i = 0; i < n; i++)
        putchar((unsigned char)s[i] < 0x20 ? ' ' : s[i]);
    if (n < strlen(s))
        fputs("...", stdout);
}

static int on_doc(void *ctx, const struct doc *d, const char *json)
{
    struct list_state *st = ctx;
    char day[TW_TIME_STR_MAX] = "-";
    st->n++;
    if (st->json) {
        puts(json);
        return 0;
    }
    if (d->published_at != DOC_TIME_UNKNOWN) {
        tw_time_format(d->published_at, day);
        day[10] = 0;
    }
    printf("%-36s  %-7s  %-8s  %3lld  %-10s  ", d->id, d->kind, d->platform, (long long)d->version,
           day);
    put_cell(d->title && *d->title ? d->title : d->url, 50);
    putchar('\n');
    return 0;
}

TW_COMMAND(docs, "list stored documents (--kind K, --json)")
{
    struct cli_env env;
    struct doc_store *s;
    struct tw_err err = TW_ERR_INIT;
    struct doc_list_opts o = {NULL, NULL, 0};
    struct list_state st = {0, 0};
    int rc;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (cli_env_init(&env, &argc, argv))
        return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            st.json = 1;
        } else if (!strcmp(argv[i], "--kind") && i + 1 < argc) {
            o.kind = argv[++i];
        } else if (!strcmp(argv[i], "--source") && i + 1 < argc) {
            o.source = argv[++i];
        } else {
            cli_env_release(&env);
            usage(stderr);
            return 2;
        }
    }
    if (o.kind && !doc_kind_is_valid(o.kind)) {
        cli_env_release(&env);
        return cli_fail("--kind '%s' is not article, post or code", o.kind);
    }
    o.with_json = st.json;
    if (cli_store_open_existing(&env, &s)) {
        cli_env_release(&env);
        return 1;
    }
    if (!st.json)
        printf("%-36s  %-7s  %-8s  %3s  %-10s  %s\n", "ID", "KIND", "PLATFORM", "VER", "PUBLISHED",
               "TITLE");
    rc = doc_store_list(s, &o, on_doc, &st, &err);
    doc_store_close(s);
    cli_env_release(&env);
    if (rc < 0)
        return cli_fail("%s", err.msg);
    if (!st.json)
        printf("%ld document%s\n", st.n, st.n == 1 ? "" : "s");
    return 0;
}
