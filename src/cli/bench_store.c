/* bench_store.c - `twin bench changes`: change-log write and read throughput. */
#include "cli/cli.h"
#include "cli/cli_store.h"

#include "base/buf.h"
#include "base/time.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void remove_store(const char *dir)
{
    static const char *const files[] = {"docs.db", "docs.db-wal", "docs.db-shm"};
    char path[600];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* Raw SQLite over the same rows: the floor our reader's per-event work sits on. */
static int raw_read(const char *dir, long long *n, size_t *bytes)
{
    char path[600];
    sqlite3 *db;
    sqlite3_stmt *st;
    snprintf(path, sizeof(path), "%s/docs.db", dir);
    *n = 0;
    *bytes = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_prepare_v2(db, "SELECT seq, event FROM changes WHERE seq > 0 ORDER BY seq", -1,
                           &st, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 1);
        *bytes += t ? (size_t)sqlite3_column_bytes(st, 1) : 0;
        (*n)++;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}

TW_BENCH(changes, "change-log events/s: write N documents, read their events back")
{
    long long n = 20000, batch = 1000;
    struct tw_err err = TW_ERR_INIT;
    struct doc_store *s;
    char dir[512];
    const char *tmp = getenv("TMPDIR");
    struct tw_buf content = TW_BUF_INIT;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc) {
            if (cli_parse_int("--n", argv[++i], 1, 10000000, &n))
                return 1;
        } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            if (cli_parse_int("--batch", argv[++i], 1, 1000000, &batch))
                return 1;
        } else {
            fprintf(stderr, "usage: twin bench changes [--n DOCS] [--batch EVENTS]\n");
            return 2;
        }
    }
    snprintf(dir, sizeof(dir), "%s/twin-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return cli_fail("cannot create a scratch directory under '%s'", tmp ? tmp : "/tmp");
    if (doc_store_open(dir, &s, &err) < 0) {
        rmdir(dir);
        return cli_fail("%s", err.msg);
    }

    /* write: one transaction per document, as importers do */
    double t0 = tw_time_mono_s();
    for (long long i = 0; i < n; i++) {
        char url[64];
        tw_buf_reset(&content);
        tw_buf_printf(&content, "Document %lld.\n\n", i);
        for (int k = 0; k < 24; k++)
            tw_buf_printf(&content, "Paragraph %d of a synthetic post, number %lld, with words "
                                    "enough to look like prose.\n", k, i * 31 + k);
        snprintf(url, sizeof(url), "https://bench.example/%lld", i);
        struct doc d;
        memset(&d, 0, sizeof(d));
        d.kind = i % 3 ? "article" : "post";
        d.platform = "web";
        d.url = url;
        d.source = "bench";
        d.author_name = "Bench Author";
        d.title = url;
        d.content = content.data;
        d.published_at = 1136214245 + i;
        d.fetched_at = DOC_TIME_UNKNOWN;
        if (content.err || doc_store_put(s, &d, NULL, &err) < 0) {
            cli_fail("%s", content.err ? "out of memory" : err.msg);
            goto out;
        }
    }
    double t_write = tw_time_mono_s() - t0;

    /* read: the whole log in batches, as a consumer does */
    long long got = 0;
    size_t bytes = 0;
    int64_t after = 0;
    t0 = tw_time_mono_s();
    for (;;) {
        struct doc_event *ev;
        size_t k;
        if (doc_changes_read(s, after, (size_t)batch, &ev, &k, &err) < 0) {
            cli_fail("%s", err.msg);
            goto out;
        }
        for (size_t i = 0; i < k; i++)
            bytes += ev[i].json_len;
        got += (long long)k;
        if (k)
            after = ev[k - 1].seq;
        doc_events_free(ev, k);
        if (k == 0)
            break;
    }
    double t_read = tw_time_mono_s() - t0;
    if (got != n) {
        cli_fail("read %lld events, wrote %lld documents", got, n);
        goto out;
    }
    long long raw_n;
    size_t raw_bytes;
    t0 = tw_time_mono_s();
    if (raw_read(dir, &raw_n, &raw_bytes) < 0 || raw_n != n) {
        cli_fail("raw read of the change log failed");
        goto out;
    }
    double t_raw = tw_time_mono_s() - t0;

    printf("changes: %lld documents of %zu bytes, one transaction each\n", n, content.len);
    printf("  write  %10.0f docs/s     (%.2f s)\n", (double)n / t_write, t_write);
    printf("  read   %10.0f events/s   %.1f MB/s  (%.3f s, batches of %lld)\n",
           (double)got / t_read, (double)bytes / 1e6 / t_read, t_read, batch);
    printf("  peer   %10.0f events/s   raw sqlite3 SELECT of the same rows; ratio %.2f\n",
           (double)raw_n / t_raw, t_raw / t_read);
    rc = 0;
out:
    tw_buf_release(&content);
    doc_store_close(s);
    remove_store(dir);
    return rc;
}
