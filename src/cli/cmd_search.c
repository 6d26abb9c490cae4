/* cmd_search.c - `twin search`: hybrid, vector or lexical search over the feature store. */
#include "cli/cli.h"
#include "cli/cli_store.h"

#include "base/buf.h"
#include "base/mem.h"
#include "base/time.h"
#include "feature/stream.h"
#include "vector/fstore.h"

#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: twin search QUERY [--mode hybrid|vector|lexical] [-k N] [--kind K]\n"
            "                   [--author A] [--platform P] [--since DATE] [--json]\n"
            "                   [--model FILE.gguf] [--data DIR] [--config FILE]\n\n"
            "Ranks chunks of the feature store for QUERY. hybrid (the default) fuses vector and\n"
            "BM25 rankings by reciprocal rank; without an embedding model the search is lexical.\n"
            "--author takes an author id or full name; --since a date (2024-01-31, RFC 3339).\n"
            "--json prints one object per hit: {\"rank\",\"score\",\"chunk_id\",\"doc_id\",\"url\",\n"
            "\"title\",\"kind\",\"text\"}.\n");
}

static const char *mode_name(enum vec_mode m)
{
    return m == VEC_MODE_VECTOR ? "vector" : m == VEC_MODE_LEXICAL ? "lexical" : "hybrid";
}

static void print_hit(size_t rank, const struct vec_hit_row *h, bool json)
{
    if (json) {
        struct tw_buf b = TW_BUF_INIT;
        tw_buf_printf(&b, "{\"rank\":%zu,\"score\":%.6g,\"chunk_id\":", rank, h->score);
        tw_buf_json_str(&b, h->chunk_id, strlen(h->chunk_id));
        tw_buf_puts(&b, ",\"doc_id\":");
        tw_buf_json_str(&b, h->doc_id, strlen(h->doc_id));
        tw_buf_puts(&b, ",\"url\":");
        tw_buf_json_str(&b, h->url, strlen(h->url));
        tw_buf_puts(&b, ",\"title\":");
        tw_buf_json_str(&b, h->title, strlen(h->title));
        tw_buf_puts(&b, ",\"kind\":");
        tw_buf_json_str(&b, h->kind, strlen(h->kind));
        tw_buf_puts(&b, ",\"text\":");
        tw_buf_json_str(&b, h->text, strlen(h->text));
        tw_buf_putc(&b, '}');
        puts(b.err ? "{}" : b.data);
        tw_buf_release(&b);
        return;
    }
    printf("%zu. [%.4f] %s\n   %s\n", rank, h->score, h->title[0] ? h->title : "(untitled)",
           h->url);
    {
        /* The first 300 bytes of the chunk on one line, cut on a character boundary. */
        size_t n = strlen(h->text), cut = n > 300 ? 300 : n;
        while (cut < n && cut > 0 && ((unsigned char)h->text[cut] & 0xc0) == 0x80)
            cut--;
        fputs("   ", stdout);
        for (size_t i = 0; i < cut; i++)
            putchar(h->text[i] == '\n' || h->text[i] == '\t' ? ' ' : h->text[i]);
        puts(cut < n ? " …" : "");
    }
}

TW_COMMAND(search, "search the feature store (hybrid, vector or lexical)")
{
    struct cli_env env;
    struct vec_store *vs = NULL;
    struct feat_embedder *emb = NULL;
    struct vec_query q = {NULL, NULL, VEC_MODE_HYBRID, 10, NULL, NULL, NULL, INT64_MIN};
    struct vec_hit_row *hits = NULL;
    struct tw_err err = TW_ERR_INIT;
    const char *model = NULL;
    float *qv = NULL;
    size_t n = 0;
    enum vec_mode used;
    bool json = false;
    long long v;
    int rc = 1;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (cli_env_init(&env, &argc, argv))
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--mode") && val) {
            if (!strcmp(val, "hybrid"))
                q.mode = VEC_MODE_HYBRID;
            else if (!strcmp(val, "vector"))
                q.mode = VEC_MODE_VECTOR;
            else if (!strcmp(val, "lexical"))
                q.mode = VEC_MODE_LEXICAL;
            else {
                cli_fail("--mode '%s': expected hybrid, vector or lexical", val);
                goto out;
            }
            i++;
        } else if (!strcmp(a, "-k") && val) {
            if (cli_parse_int("-k", val, 1, 1000, &v))
                goto out;
            q.k = (int)v;
            i++;
        } else if (!strcmp(a, "--kind") && val) {
            q.kind = argv[++i];
        } else if (!strcmp(a, "--author") && val) {
            q.author = argv[++i];
        } else if (!strcmp(a, "--platform") && val) {
            q.platform = argv[++i];
        } else if (!strcmp(a, "--since") && val) {
            if (tw_time_parse(val, strlen(val), &q.since, &err) < 0) {
                cli_fail("--since: %s", err.msg);
                goto out;
            }
            i++;
        } else if (!strcmp(a, "--model") && val) {
            model = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            usage(stderr);
            rc = 2;
            goto out;
        } else if (!q.text) {
            q.text = a;
        } else {
            cli_fail("one QUERY only (quote it)");
            rc = 2;
            goto out;
        }
    }
    if (!q.text) {
        usage(stderr);
        rc = 2;
        goto out;
    }
    if (vec_store_open(cli_data_dir(&env), &vs, &err) < 0) {
        cli_fail("%s", err.msg);
        goto out;
    }
    if (q.mode != VEC_MODE_LEXICAL) {
        char stored[256];
        int dim;
        if (vec_store_model(vs, stored, sizeof(stored), &dim, &err) < 0) {
            cli_fail("%s", err.msg);
            goto out;
        }
        if (!model)
            model = tw_config_get_or(env.cfg, "embed.model", NULL);
        if (dim > 0 && model) {
            if (feat_embedder_open(model, 0, &emb, &err) < 0) {
                cli_fail("embedding model: %s", err.msg);
                goto out;
            }
            if (strcmp(feat_embedder_name(emb), stored) || feat_embedder_dim(emb) != dim) {
                cli_fail("the feature store was embedded with '%s', not '%s'", stored,
                         feat_embedder_name(emb));
                goto out;
            }
            qv = tw_mallocarray((size_t)dim, sizeof(float));
            {
                size_t len = strlen(q.text);
                if (!qv || feat_embedder_embed(emb, &q.text, &len, 1, qv, &err) < 0) {
                    cli_fail("embedding the query: %s", qv ? err.msg : "out of memory");
                    goto out;
                }
            }
            q.vector = qv;
        }
    }
    if (vec_store_search(vs, &q, &hits, &n, &used, &err) < 0) {
        cli_fail("search: %s", err.msg);
        goto out;
    }
    if (used != q.mode)
        fprintf(stderr, "twin: no embeddings %s: searching in lexical mode\n",
                q.vector ? "in the feature store" : "for the query (no embedding model)");
    for (size_t i = 0; i < n; i++)
        print_hit(i + 1, &hits[i], json);
    if (!json)
        fprintf(stderr, "%zu hit%s (%s)\n", n, n == 1 ? "" : "s", mode_name(used));
    rc = 0;
out:
    vec_hits_free(hits, n);
    tw_free(qv);
    feat_embedder_free(emb);
    vec_store_close(vs);
    cli_env_release(&env);
    return rc;
}
