/* test_git.c - src_git_import on a repository the test builds with the git command line. */
#include "test.h"

#include "base/mem.h"
#include "collect/collect.h"

#include <stdlib.h>
#include <unistd.h>

#define MAX_DOCS 64

struct got {
    char *url[MAX_DOCS];
    char *title[MAX_DOCS];
    char *content[MAX_DOCS];
    char *kind[MAX_DOCS];
    char *platform[MAX_DOCS];
    long long published[MAX_DOCS];
    size_t n;
    int n_fail;
    int stop_after; // emit fails after this many (0: never)
};

static int got_emit(void *ctx, const struct doc *d, struct tw_err *err)
{
    struct got *g = ctx;
    if (g->stop_after && (int)g->n >= g->stop_after)
        return tw_errf(err, TW_EDB, "store is full");
    if (g->n >= MAX_DOCS)
        return tw_errf(err, TW_ELIMIT, "too many");
    g->url[g->n] = tw_strdup(d->url);
    g->title[g->n] = tw_strdup(d->title);
    g->content[g->n] = tw_strdup(d->content);
    g->kind[g->n] = tw_strdup(d->kind);
    g->platform[g->n] = tw_strdup(d->platform);
    g->published[g->n] = d->published_at;
    g->n++;
    return 0;
}

static void got_fail(void *ctx, const char *item, const char *msg)
{
    struct got *g = ctx;
    fprintf(stderr, "fail %s: %s\n", item, msg);
    g->n_fail++;
}

static void got_release(struct got *g)
{
    for (size_t i = 0; i < g->n; i++) {
        tw_free(g->url[i]);
        tw_free(g->title[i]);
        tw_free(g->content[i]);
        tw_free(g->kind[i]);
        tw_free(g->platform[i]);
    }
    memset(g, 0, sizeof(*g));
}

static int find(const struct got *g, const char *url)
{
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->url[i], url))
            return (int)i;
    return -1;
}

static int put(const char *dir, const char *rel, const void *data, size_t len)
{
    char path[4096], cmd[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
    if (system(cmd) != 0)
        return -1;
    return test_write_file(path, data, len);
}

static int sh(const char *fmt, const char *a, const char *b)
{
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), fmt, a, b);
    return system(cmd);
}

/* Builds the repository once; returns its path and HEAD sha. */
static const char *make_repo(char sha[41])
{
    static char dir[4096];
    static char head[41];
    static const char png[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0";
    static const char latin1[] = "caf\xe9 au lait\n";
    char *big;
    FILE *p;
    if (head[0]) {
        memcpy(sha, head, 41);
        return dir;
    }
    snprintf(dir, sizeof(dir), "%s/engine", test_tmpdir());
    big = malloc((1 << 20) + 1);
    if (!big)
        return NULL;
    memset(big, 'a', (1 << 20) + 1);
    if (put(dir, "README.md", "# Engine\n\nNotes on the engine.\n", 31) ||
        put(dir, "src/main.c", "int main(void) { return 0; }\n", 29) ||
        put(dir, "docs/guide.md", "caf\xc3\xa9 guide\n", 12) ||
        put(dir, "edge.txt", big, 1 << 20) ||        /* exactly 1 MiB: kept */
        put(dir, "big.txt", big, (1 << 20) + 1) ||   /* one byte over: skipped */
        put(dir, "img/logo.png", png, sizeof(png) - 1) ||
        put(dir, "latin1.txt", latin1, sizeof(latin1) - 1) ||
        put(dir, "empty.txt", "", 0) || put(dir, "node_modules/left-pad/index.js", "x\n", 2) ||
        put(dir, "vendor/lib.c", "int v;\n", 7) || put(dir, "lib/third_party/x.c", "int t;\n", 7) ||
        put(dir, "package-lock.json", "{}\n", 3) || put(dir, "rust/Cargo.lock", "# lock\n", 7) ||
        put(dir, "go.sum", "x\n", 2) || put(dir, "web/app.min.js", "var a;\n", 7) ||
        put(dir, "build/out.txt", "generated\n", 10)) {
        free(big);
        return NULL;
    }
    free(big);
    if (sh("cd '%s' && ln -s README.md link.md && git init -q -b main . && git add -A && "
           "git -c user.name=T -c user.email=t@example.com commit -q -m init%s",
           dir, "") != 0)
        return NULL;
    {
        char cmd[4200];
        snprintf(cmd, sizeof(cmd), "git -C '%s' rev-parse HEAD", dir);
        p = popen(cmd, "r");
        if (!p || !fgets(head, sizeof(head), p)) {
            if (p)
                pclose(p);
            return NULL;
        }
        pclose(p);
    }
    memcpy(sha, head, 41);
    return dir;
}

static const char *const expected_files[] = {"README.md", "docs/guide.md", "edge.txt",
                                             "src/main.c"};

TEST(git_import_local_repo_exact_documents)
{
    char sha[41], url[8192];
    const char *dir = make_repo(sha);
    struct got g = {0};
    struct src_sink sink = {got_emit, got_fail, &g};
    struct src_opts o = {.author_name = "Ada Lovelace"};
    struct tw_err err = TW_ERR_INIT;
    char *real;
    int i;
    CHECK(dir != NULL);
    real = realpath(dir, NULL);
    CHECK_OK(src_git_import(dir, &o, &sink, &err), &err);
    CHECK_EQ_INT(g.n_fail, 0);
    CHECK_EQ_INT(g.n, 4);
    for (size_t k = 0; k < 4; k++) {
        snprintf(url, sizeof(url), "file://%s/%s@%s", real, expected_files[k], sha);
        i = find(&g, url);
        CHECK_MSG(i >= 0, "missing %s", url);
        CHECK_EQ_STR(g.kind[i], "code");
        CHECK_EQ_STR(g.platform[i], "github");
        CHECK(g.published[i] > 1600000000);
    }
    snprintf(url, sizeof(url), "file://%s/README.md@%s", real, sha);
    i = find(&g, url);
    CHECK_EQ_STR(g.title[i], "engine/README.md");
    CHECK_EQ_STR(g.content[i], "# Engine\n\nNotes on the engine.\n");
    snprintf(url, sizeof(url), "file://%s/edge.txt@%s", real, sha);
    CHECK_EQ_INT(strlen(g.content[find(&g, url)]), 1 << 20);
    free(real);
    got_release(&g);
}

TEST(git_import_file_url_clones)
{
    char sha[41], url[8192], src[4200];
    const char *dir = make_repo(sha);
    struct got g = {0};
    struct src_sink sink = {got_emit, got_fail, &g};
    struct tw_err err = TW_ERR_INIT;
    char *real;
    CHECK(dir != NULL);
    real = realpath(dir, NULL);
    snprintf(src, sizeof(src), "file://%s", real);
    CHECK_OK(src_git_import(src, NULL, &sink, &err), &err);
    CHECK_EQ_INT(g.n, 4);
    snprintf(url, sizeof(url), "file://%s/src/main.c@%s", real, sha);
    CHECK_MSG(find(&g, url) >= 0, "missing %s", url);
    /* as a GitHub repository mirrored locally: blob URLs */
    got_release(&g);
    CHECK_OK(src_git_import_as(src, "https://github.com/ada/engine", NULL, &sink, &err), &err);
    CHECK_EQ_INT(g.n, 4);
    snprintf(url, sizeof(url), "https://github.com/ada/engine/blob/%s/docs/guide.md", sha);
    CHECK_MSG(find(&g, url) >= 0, "missing %s", url);
    CHECK_EQ_STR(g.title[find(&g, url)], "engine/docs/guide.md");
    free(real);
    got_release(&g);
}

TEST(git_import_names_github_origin)
{
    char sha[41], url[8192], clone[4200];
    const char *dir = make_repo(sha);
    struct got g = {0};
    struct src_sink sink = {got_emit, got_fail, &g};
    struct tw_err err = TW_ERR_INIT;
    CHECK(dir != NULL);
    snprintf(clone, sizeof(clone), "%s/clone-with-origin", test_tmpdir());
    CHECK(sh("git clone -q '%s' '%s'", dir, clone) == 0);
    CHECK(sh("cd '%s' && git remote set-url origin https://github.com/ada/analytical-engine.git%s",
             clone, "") == 0);
    CHECK_OK(src_git_import(clone, NULL, &sink, &err), &err);
    CHECK_EQ_INT(g.n, 4);
    snprintf(url, sizeof(url), "https://github.com/ada/analytical-engine/blob/%s/README.md", sha);
    CHECK_MSG(find(&g, url) >= 0, "missing %s (first: %s)", url, g.n ? g.url[0] : "");
    CHECK_EQ_STR(g.title[find(&g, url)], "analytical-engine/README.md");
    got_release(&g);
}

TEST(git_import_errors)
{
    char sha[41];
    const char *dir = make_repo(sha);
    struct got g = {0};
    struct src_sink sink = {got_emit, got_fail, &g};
    struct tw_err err = TW_ERR_INIT;
    char path[4200];
    CHECK(dir != NULL);
    snprintf(path, sizeof(path), "%s/not-a-repo", test_tmpdir());
    CHECK(put(path, "a.txt", "a\n", 2) == 0);
    CHECK_EQ_INT(src_git_import(path, NULL, &sink, &err), TW_ENOENT);
    CHECK_MSG(strstr(err.msg, "cannot open git repository") != NULL, "%s", err.msg);
    tw_err_clear(&err);
    CHECK_EQ_INT(src_git_import("ssh://host/repo", NULL, &sink, &err), TW_EUNSUP);
    tw_err_clear(&err);
    snprintf(path, sizeof(path), "%s/empty-repo", test_tmpdir());
    CHECK(sh("git init -q '%s'%s", path, "") == 0);
    CHECK_EQ_INT(src_git_import(path, NULL, &sink, &err), TW_ENOENT);
    CHECK_MSG(strstr(err.msg, "no HEAD commit") != NULL, "%s", err.msg);
    /* a sink error stops the walk and comes back */
    tw_err_clear(&err);
    g.stop_after = 2;
    CHECK_EQ_INT(src_git_import(dir, NULL, &sink, &err), TW_EDB);
    CHECK_MSG(strstr(err.msg, "store is full") != NULL, "%s", err.msg);
    CHECK_EQ_INT(g.n, 2);
    got_release(&g);
}

TEST(git_path_skip_rules)
{
    CHECK(src_git_path_skipped("node_modules/a/b.js"));
    CHECK(src_git_path_skipped("a/vendor/b.c"));
    CHECK(src_git_path_skipped("yarn.lock"));
    CHECK(src_git_path_skipped("x/poetry.lock"));
    CHECK(src_git_path_skipped("dist/app.js"));
    CHECK(src_git_path_skipped("a.min.js"));
    CHECK(!src_git_path_skipped("src/vendors.c"));
    CHECK(!src_git_path_skipped("builder/x.c"));
    CHECK(!src_git_path_skipped("lock.json"));
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
