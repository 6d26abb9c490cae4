/* cmd_import.c - `twin import PATH... --author NAME [--prune] [--drafts] [--handle H]`: local
 * files, folders and official exports into the document store, one transaction per document. */
#include "cli/cli.h"
#include "cli/cli_store.h"
#include "collect/collect.h"

#include "base/mem.h"
#include "base/progress.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: twin import [--data DIR] [--config FILE] --author \"Full Name\" [--handle H]\n"
            "                   [--prune] [--drafts] PATH...\n\n"
            "Imports each PATH into the document store, finding out what it is:\n"
            "  a Medium export (zip or folder with posts/ and profile/)\n"
            "  a Substack export (zip or folder with posts.csv and posts/, or posts.csv)\n"
            "  a LinkedIn export (zip or folder with Shares.csv, or Shares.csv)\n"
            "  a git repository (one code document per text file)\n"
            "  a folder or zip of markdown/HTML/text files, or one such file\n\n"
            "Each document is stored in its own transaction; a re-import with the same content\n"
            "changes nothing. An item that cannot be read is reported on its own line and the\n"
            "import goes on; the exit status is 1 if anything failed.\n\n"
            "  --author NAME  whose writing this is (default: author.name in twin.conf)\n"
            "  --handle H     the author's handle on the platform (Substack: the subdomain)\n"
            "  --prune        delete documents of each PATH that are no longer in it\n"
            "  --drafts       also import drafts and unpublished posts\n");
}

struct seen_urls {
    char **url;
    size_t n, cap;
};

struct import_ctx {
    struct doc_store *store;
    const char *path;      // the PATH being imported
    char *source;          // the source documents of this PATH carry (first one seen)
    struct seen_urls seen; // urls emitted for this PATH (for --prune)
    long inserted, updated, unchanged, failed, failed_path;
    int oom;
    bool tty; // stderr is a terminal: a progress bar, cleared before messages
    struct tw_progress bar;
    uint64_t n_items; // items seen for this PATH (documents and failures)
};

/* Prints one error line, clearing the progress bar's line first on a terminal. */
static void say(struct import_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct import_ctx *x, const char *fmt, ...)
{
    va_list ap;
    if (x->tty)
        fputs("\r\033[K", stderr);
    fputs("twin: import: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int seen_add(struct seen_urls *s, const char *url)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 256;
        char **nu = tw_reallocarray(s->url, ncap, sizeof(*nu));
        if (!nu)
            return -1;
        s->url = nu;
        s->cap = ncap;
    }
    if (!(s->url[s->n] = tw_strdup(url)))
        return -1;
    s->n++;
    return 0;
}

static void seen_release(struct seen_urls *s)
{
    for (size_t i = 0; i < s->n; i++)
        tw_free(s->url[i]);
    tw_free(s->url);
    memset(s, 0, sizeof(*s));
}

static int on_emit(void *vctx, const struct doc *d, struct tw_err *err)
{
    struct import_ctx *x = vctx;
    struct tw_err e = TW_ERR_INIT;
    enum doc_put_result res;
    int rc = doc_store_put(x->store, d, &res, &e);
    if (rc == TW_EINVAL) {
        /* The document itself is bad (a field too long, bad UTF-8): its item fails. */
        say(x, "%s: %s", d->url, e.msg);
        x->failed++;
        return 0;
    }
    if (rc < 0)
        return tw_errf(err, rc, "%s", e.msg);
    if (res == DOC_PUT_INSERTED)
        x->inserted++;
    else if (res == DOC_PUT_UPDATED)
        x->updated++;
    else
        x->unchanged++;
    if (!x->source && d->source && !(x->source = tw_strdup(d->source)))
        x->oom = 1;
    if (seen_add(&x->seen, d->url) < 0)
        x->oom = 1;
    if (x->tty)
        tw_progress_update(&x->bar, ++x->n_items);
    return 0;
}

static void on_fail(void *vctx, const char *item, const char *message)
{
    struct import_ctx *x = vctx;
    say(x, "%s: %s", item, message);
    x->failed++;
    if (x->tty)
        tw_progress_update(&x->bar, ++x->n_items);
}

/* The source string a PATH's documents carry when none was emitted (for --prune of an emptied
 * folder): its absolute path, or the folder around posts.csv. */
static char *source_of(const char *path)
{
    char abs[PATH_MAX], *slash;
    if (!realpath(path, abs))
        return NULL;
    slash = strrchr(abs, '/');
    if (slash && !strcasecmp(slash + 1, "posts.csv") && src_detect(path) == SRC_KIND_SUBSTACK)
        *(slash == abs ? slash + 1 : slash) = '\0';
    return tw_strdup(abs);
}

static int import_one(struct import_ctx *x, const char *path, const struct src_opts *o, int prune,
                      long *deleted)
{
    struct src_sink sink = {on_emit, on_fail, x};
    struct tw_err err = TW_ERR_INIT;
    long failed_before = x->failed;
    int rc;

    x->path = path;
    x->n_items = 0;
    if (x->tty)
        tw_progress_init(&x->bar, stderr, "import", 0);
    rc = src_import_path(path, o, &sink, &err);
    if (x->tty)
        tw_progress_finish(&x->bar);
    if (rc < 0) {
        fprintf(stderr, "twin: import: %s\n", err.msg);
        x->failed_path++;
    } else if (x->oom) {
        fprintf(stderr, "twin: import: '%s': out of memory\n", path);
        x->failed_path++;
        rc = TW_ENOMEM;
    }
    if (prune && rc == TW_OK) {
        size_t n = 0;
        char *source = x->source ? x->source : source_of(path);
        if (x->failed > failed_before) {
            fprintf(stderr,
                    "twin: import: not pruning '%s': %ld item(s) failed; fix or remove them "
                    "first\n",
                    path, x->failed - failed_before);
        } else if (!source) {
            fprintf(stderr, "twin: import: not pruning '%s': cannot resolve its path\n", path);
            x->failed_path++;
        } else if (doc_store_prune(x->store, source, (const char *const *)x->seen.url, x->seen.n,
                                   &n, &err) < 0) {
            fprintf(stderr, "twin: import: pruning '%s': %s\n", path, err.msg);
            x->failed_path++;
        }
        *deleted += (long)n;
        if (source != x->source)
            tw_free(source);
    }
    tw_free(x->source);
    x->source = NULL;
    seen_release(&x->seen);
    return rc;
}

TW_COMMAND(import, "import documents from files, folders and exports")
{
    struct cli_env env;
    struct import_ctx x;
    struct src_opts o;
    const char **paths;
    int n_paths = 0, prune = 0, status;
    long deleted = 0;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (cli_env_init(&env, &argc, argv))
        return 1;
    memset(&o, 0, sizeof(o));
    paths = tw_mallocarray((size_t)argc, sizeof(*paths));
    if (!paths) {
        cli_env_release(&env);
        return cli_fail("import: out of memory");
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--author") || !strcmp(a, "--handle")) {
            if (i + 1 >= argc) {
                tw_free(paths);
                cli_env_release(&env);
                return cli_fail("import: %s needs a value", a);
            }
            if (a[2] == 'a')
                o.author_name = argv[++i];
            else
                o.author_handle = argv[++i];
        } else if (!strncmp(a, "--author=", 9)) {
            o.author_name = a + 9;
        } else if (!strncmp(a, "--handle=", 9)) {
            o.author_handle = a + 9;
        } else if (!strcmp(a, "--prune")) {
            prune = 1;
        } else if (!strcmp(a, "--drafts")) {
            o.include_drafts = true;
        } else if (a[0] == '-' && a[1]) {
            tw_free(paths);
            cli_env_release(&env);
            usage(stderr);
            return cli_fail("import: unknown option '%s'", a);
        } else {
            paths[n_paths++] = a;
        }
    }
    if (!o.author_name)
        o.author_name = tw_config_get(env.cfg, "author.name");
    if (n_paths == 0 || !o.author_name || !o.author_name[0]) {
        tw_free(paths);
        cli_env_release(&env);
        usage(stderr);
        return n_paths == 0 ? 2
                            : cli_fail("import: --author \"Full Name\" is required (whose "
                                       "writing is this?), or set author.name in twin.conf");
    }
    memset(&x, 0, sizeof(x));
    x.tty = isatty(fileno(stderr));
    if (cli_store_open(&env, &x.store)) {
        tw_free(paths);
        cli_env_release(&env);
        return 1;
    }
    status = 0;
    for (int i = 0; i < n_paths; i++) {
        int rc = import_one(&x, paths[i], &o, prune, &deleted);
        if (rc < 0 && rc != TW_EFORMAT && rc != TW_ENOENT && rc != TW_EUNSUP && rc != TW_ELIMIT &&
            rc != TW_EIO && rc != TW_EINVAL) {
            status = 1; // the store failed or memory ran out: stop here
            break;
        }
    }
    printf("imported %ld, updated %ld, unchanged %ld, deleted %ld, failed %ld\n", x.inserted,
           x.updated, x.unchanged, deleted, x.failed + x.failed_path);
    doc_store_close(x.store);
    tw_free(paths);
    cli_env_release(&env);
    return status || x.failed || x.failed_path ? 1 : 0;
}
