/* cmd_changes.c - `twin changes`: print the change log, optionally following it. */
#include "cli/cli.h"
#include "cli/cli_store.h"

#include "base/time.h"

#include <cJSON.h>
#include <string.h>

#define BATCH 256

static void usage(FILE *f)
{
    fprintf(f,
            "usage: twin changes [--from SEQ] [--consumer NAME] [--limit N] [--follow] [--json]\n"
            "                    [--data DIR] [--config FILE]\n\n"
            "Prints change-log events in sequence order, starting at SEQ (default 1):\n"
            "one readable line per event, or with --json the event objects themselves, one per\n"
            "line: {\"seq\",\"op\",\"kind\",\"id\",\"at\",\"document\"}.\n\n"
            "  --follow         keep waiting for new events (Ctrl-C to stop)\n"
            "  --consumer NAME  start after NAME's committed offset and commit each printed\n"
            "                   batch as NAME's new offset\n"
            "  --limit N        stop after N events\n");
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "     7  update  article  <id>  2026-11-28T21:00:00Z  v2  <url>  "title"" */
static void print_readable(const struct doc_event *e)
{
    char at[TW_TIME_STR_MAX];
    cJSON *j = NULL, *doc = NULL;
    tw_time_format(e->at, at);
    printf("%6lld  %-6s  %-7s  %s  %s", (long long)e->seq, e->op, e->kind, e->doc_id, at);
    if (strcmp(e->op, "delete")) {
        j = cJSON_ParseWithLength(e->json, e->json_len);
        doc = j ? cJSON_GetObjectItemCaseSensitive(j, "document") : NULL;
    }
    if (doc) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "version");
        const char *url = str_of(doc, "url"), *title = str_of(doc, "title");
        printf("  v%lld  %s", cJSON_IsNumber(v) ? (long long)v->valuedouble : 0LL,
               url ? url : "");
        if (title) {
            fputs("  \"", stdout);
            for (size_t i = 0; title[i] && i < 80; i++)
                putchar((unsigned char)title[i] < 0x20 ? ' ' : title[i]);
            putchar('"');
        }
    }
    putchar('\n');
    cJSON_Delete(j);
}

struct opts {
    long long from, limit;
    const char *consumer;
    int follow, json;
};

static int parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--follow") || !strcmp(a, "-f")) {
            o->follow = 1;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--from") && v) {
            if (cli_parse_int("--from", v, 1, INT64_MAX, &o->from))
                return 1;
            i++;
        } else if (!strcmp(a, "--limit") && v) {
            if (cli_parse_int("--limit", v, 1, INT64_MAX, &o->limit))
                return 1;
            i++;
        } else if (!strcmp(a, "--consumer") && v) {
            o->consumer = v;
            i++;
        } else {
            usage(stderr);
            return 2;
        }
    }
    return 0;
}

static int run(struct doc_store *s, const struct opts *o)
{
    struct tw_err err = TW_ERR_INIT;
    int64_t after = o->from - 1;
    long long printed = 0;

    if (o->consumer && o->from == 1 && doc_offset_get(s, o->consumer, &after, &err) < 0)
        return cli_fail("%s", err.msg);
    for (;;) {
        struct doc_event *ev;
        size_t n, want = BATCH;
        if (o->limit && (long long)want > o->limit - printed)
            want = (size_t)(o->limit - printed);
        if (doc_changes_read(s, after, want, &ev, &n, &err) < 0)
            return cli_fail("%s", err.msg);
        for (size_t i = 0; i < n; i++) {
            if (o->json)
                puts(ev[i].json);
            else
                print_readable(&ev[i]);
        }
        if (n) {
            after = ev[n - 1].seq;
            printed += (long long)n;
        }
        doc_events_free(ev, n);
        if (fflush(stdout) != 0)
            return 1; // the reader went away
        if (n && o->consumer && doc_offset_commit(s, o->consumer, after, &err) < 0)
            return cli_fail("%s", err.msg);
        if (o->limit && printed >= o->limit)
            return 0;
        if (n == want)
            continue;
        if (!o->follow)
            return 0;
        if (doc_changes_wait(s, after, -1, &err) < 0)
            return cli_fail("%s", err.msg);
    }
}

TW_COMMAND(changes, "print the change log (--from SEQ, --follow, --json)")
{
    struct cli_env env;
    struct doc_store *s;
    struct opts o = {1, 0, NULL, 0, 0};
    int rc;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (cli_env_init(&env, &argc, argv))
        return 1;
    if ((rc = parse_args(argc, argv, &o)) != 0 || (rc = cli_store_open_existing(&env, &s)) != 0) {
        cli_env_release(&env);
        return rc;
    }
    rc = run(s, &o);
    doc_store_close(s);
    cli_env_release(&env);
    return rc;
}
