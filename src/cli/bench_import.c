/* bench_import.c - `twin bench import [DIR]`: documents/s and MB/s importing a folder of posts
 * (default: the skeeto Jekyll corpus under $TWIN_SHARED) into a fresh temporary store, then
 * re-importing it unchanged, against parsing alone (a sink that stores nothing) in the same run. */
#include "cli/cli.h"
#include "collect/collect.h"
#include "store/doc.h"

#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t g_bytes;

static int add_size(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        g_bytes += (uint64_t)st->st_size;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

struct bench_sink {
    struct doc_store *store; // NULL: parse only
    long docs, failed;
};

static int b_emit(void *ctx, const struct doc *d, struct tw_err *err)
{
    struct bench_sink *b = ctx;
    b->docs++;
    return b->store ? doc_store_put(b->store, d, NULL, err) : 0;
}

static void b_fail(void *ctx, const char *item, const char *message)
{
    struct bench_sink *b = ctx;
    (void)item;
    (void)message;
    b->failed++;
}

/* One pass; returns seconds, or a negative value after printing the error. */
static double pass(const char *dir, struct doc_store *store, long *docs)
{
    struct bench_sink b = {store, 0, 0};
    struct src_sink sink = {b_emit, b_fail, &b};
    struct src_opts o = {.author_name = "Bench Author"};
    struct tw_err err = TW_ERR_INIT;
    double t0 = now_s();
    if (src_files_import(dir, &o, &sink, &err) < 0) {
        fprintf(stderr, "twin: bench import: %s\n", err.msg);
        return -1;
    }
    *docs = b.docs;
    return now_s() - t0;
}

static void report(const char *what, long docs, double s, double peer_s)
{
    double mb = (double)g_bytes / 1e6;
    printf("  %-22s %6ld docs %8.3f s %9.1f docs/s %7.2f MB/s", what, docs, s,
           s > 0 ? docs / s : 0.0, s > 0 ? mb / s : 0.0);
    if (peer_s > 0)
        printf("   %.2fx parse-only time", s / peer_s);
    printf("\n");
}

TW_BENCH(import, "documents/s and MB/s importing a folder of posts into a fresh store")
{
    char corpus[PATH_MAX], tmp[] = "/tmp/twin-bench-import-XXXXXX";
    const char *shared = getenv("TWIN_SHARED");
    struct doc_store *store = NULL;
    struct tw_err err = TW_ERR_INIT;
    double t_parse, t_first, t_again;
    long n_parse = 0, n_first = 0, n_again = 0;
    int rc = 1;

    if (argc > 1 && cli_wants_help(argc, argv)) {
        printf(
            "usage: twin bench import [DIR]   (default $TWIN_SHARED/data/corpora/skeeto/_posts)\n");
        return 0;
    }
    if (argc > 1)
        snprintf(corpus, sizeof(corpus), "%s", argv[1]);
    else
        snprintf(corpus, sizeof(corpus), "%s/data/corpora/skeeto/_posts",
                 shared && *shared ? shared : "../shared");
    g_bytes = 0;
    if (nftw(corpus, add_size, 16, FTW_PHYS) != 0)
        return cli_fail("bench import: cannot read '%s' (set TWIN_SHARED or give a folder)",
                        corpus);
    if (!mkdtemp(tmp))
        return cli_fail("bench import: cannot create a temporary directory");
    printf("import %s (%.2f MB)\n", corpus, (double)g_bytes / 1e6);
    t_parse = pass(corpus, NULL, &n_parse);
    if (t_parse < 0)
        goto done;
    report("parse only", n_parse, t_parse, 0);
    if (doc_store_open(tmp, &store, &err) < 0) {
        cli_fail("bench import: %s", err.msg);
        goto done;
    }
    t_first = pass(corpus, store, &n_first);
    if (t_first < 0)
        goto done;
    report("import (all new)", n_first, t_first, t_parse);
    t_again = pass(corpus, store, &n_again);
    if (t_again < 0)
        goto done;
    report("re-import (unchanged)", n_again, t_again, t_parse);
    rc = 0;
done:
    doc_store_close(store);
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
