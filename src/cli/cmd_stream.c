/* cmd_stream.c - `twin stream`: the feature pipeline (change log -> feature store). */
#include "cli/cli.h"
#include "cli/cli_store.h"

#include "base/progress.h"
#include "base/time.h"
#include "feature/stream.h"
#include "vector/fstore.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: twin stream [--once | --follow] [--model FILE.gguf | --no-model] [--batch N]\n"
            "                   [--max-tokens N] [--overlap N] [-t N] [--rebuild] [--reset]\n"
            "                   [--data DIR] [--config FILE]\n\n"
            "Reads the change log from the feature store's committed offset, cleans, chunks and\n"
            "embeds each document by kind, and writes cleaned documents, chunks, vectors and the\n"
            "lexical index to DATA/features.db (the HNSW graph to DATA/vectors.hnsw), committing\n"
            "the offset with each batch.\n\n"
            "  --once        drain the log and exit (the default)\n"
            "  --follow      keep running; new events are picked up within a second\n"
            "  --model FILE  embedding model (BERT-family GGUF); default: embed.model in\n"
            "                twin.conf or $TWIN_EMBED_MODEL; without one, lexical only\n"
            "  --no-model    lexical index only, even if a model is configured\n"
            "  --batch N     events per transaction (default 64)\n"
            "  --max-tokens N, --overlap N   chunk budget and overlap in model tokens\n"
            "  -t N          worker threads (default: all CPUs)\n"
            "  --rebuild     rebuild the HNSW graph from features.db (e.g. after corruption)\n"
            "  --reset       empty the feature store and process the whole log again\n");
}

struct progress_ctx {
    struct tw_progress bar;
    bool started;
};

static void on_progress(void *ctx, int64_t done, int64_t total, int64_t chunks)
{
    struct progress_ctx *p = ctx;
    (void)chunks;
    if (!p->started) {
        tw_progress_init(&p->bar, stderr, "stream", (uint64_t)total);
        p->started = true;
    }
    p->bar.total = (uint64_t)total;
    tw_progress_update(&p->bar, (uint64_t)done);
}

TW_COMMAND(stream, "run the feature pipeline over the change log (--once, --follow)")
{
    struct cli_env env;
    struct doc_store *ds = NULL;
    struct vec_store *vs = NULL;
    struct feat_embedder *emb = NULL;
    struct feat_stream_opts o = {64, 0, -1, false, 5000, on_progress, NULL};
    struct feat_stream_stats st;
    struct progress_ctx pc = {0};
    struct tw_err err = TW_ERR_INIT;
    const char *model = NULL;
    bool no_model = false, rebuild = false, reset = false;
    long long v, threads = 0;
    double t0;
    int rc = 1;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (cli_env_init(&env, &argc, argv))
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--once")) {
            o.follow = false;
        } else if (!strcmp(a, "--follow") || !strcmp(a, "-f")) {
            o.follow = true;
        } else if (!strcmp(a, "--no-model")) {
            no_model = true;
        } else if (!strcmp(a, "--rebuild")) {
            rebuild = true;
        } else if (!strcmp(a, "--reset")) {
            reset = true;
        } else if (!strcmp(a, "--model") && val) {
            model = val;
            i++;
        } else if (!strcmp(a, "--batch") && val) {
            if (cli_parse_int("--batch", val, 1, 100000, &v))
                goto out;
            o.batch_events = (int)v;
            i++;
        } else if (!strcmp(a, "--max-tokens") && val) {
            if (cli_parse_int("--max-tokens", val, 8, 100000, &v))
                goto out;
            o.max_tokens = (int)v;
            i++;
        } else if (!strcmp(a, "--overlap") && val) {
            if (cli_parse_int("--overlap", val, 0, 100000, &v))
                goto out;
            o.overlap_tokens = (int)v;
            i++;
        } else if (!strcmp(a, "-t") && val) {
            if (cli_parse_int("-t", val, 1, 1024, &threads))
                goto out;
            i++;
        } else {
            usage(stderr);
            rc = 2;
            goto out;
        }
    }
    if (!model && !no_model)
        model = tw_config_get_or(env.cfg, "embed.model", NULL);
    if (no_model)
        model = NULL;
    if (cli_store_open(&env, &ds))
        goto out;
    if (vec_store_open(cli_data_dir(&env), &vs, &err) < 0) {
        cli_fail("%s", err.msg);
        goto out;
    }
    if (reset && vec_store_reset(vs, &err) < 0) {
        cli_fail("%s", err.msg);
        goto out;
    }
    if (rebuild && vec_store_sync_index(vs, true, &err) < 0) {
        cli_fail("%s", err.msg);
        goto out;
    }
    if (model && feat_embedder_open(model, (int)threads, &emb, &err) < 0) {
        cli_fail("embedding model: %s", err.msg);
        goto out;
    }
    if (!emb)
        fprintf(stderr, "twin: no embedding model configured (embed.model or --model): "
                        "indexing lexically only; search runs in lexical mode\n");
    o.progress_ctx = &pc;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    t0 = tw_time_mono_s();
    if (feat_stream_run(ds, vs, emb, &o, &stop_flag, &st, &err) < 0) {
        if (pc.started)
            tw_progress_finish(&pc.bar);
        cli_fail("stream: %s", err.msg);
        goto out;
    }
    if (pc.started)
        tw_progress_finish(&pc.bar);
    {
        double secs = tw_time_mono_s() - t0;
        struct vec_store_stats ss;
        if (vec_store_stats(vs, &ss, &err) < 0) {
            cli_fail("%s", err.msg);
            goto out;
        }
        fprintf(stderr,
                "stream: %lld events (%lld upserts, %lld deletes, %lld skipped), %lld chunks in "
                "%.2fs; feature store: %lld documents, %lld chunks%s\n",
                (long long)st.events, (long long)st.upserts, (long long)st.deletes,
                (long long)st.errors, (long long)st.chunks, secs, (long long)ss.n_docs,
                (long long)ss.n_chunks, emb ? "" : " (lexical only)");
        rc = st.errors ? 1 : 0;
    }
out:
    feat_embedder_free(emb);
    vec_store_close(vs);
    doc_store_close(ds);
    cli_env_release(&env);
    return rc;
}
