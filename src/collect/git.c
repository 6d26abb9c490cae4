/* git.c - a git repository as `code` documents (libgit2).
 *
 *     https URL / file:// URL --fetch HEAD (bare, temp dir)--> repo --HEAD tree walk--> one doc per
 *     local path --------------git_repository_open---------/        text file, skipping vendored
 *                                                                   trees, lock files, binaries,
 *                                                                   files over GIT_FILE_MAX
 *
 * Documents are named after the repository's web home when it is on GitHub (an https clone URL,
 * the 'origin' remote of a local repository, or the web_url the caller gives):
 * https://github.com/<owner>/<repo>/blob/<commit>/<path>; otherwise
 * file://<repository path>/<path>@<commit>.
 */
#include "collect/collect.h"

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"

#include <ftw.h>
#include <git2.h>
#include <git2/sys/repository.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GIT_FILES_MAX 100000 /* documents per repository */

static const char *const skipped_dirs[] = {
    ".git",   "node_modules", "vendor",      "dist",  "build", "third_party",
    ".venv",  "venv",         "__pycache__", ".tox",  "bower_components",
    ".mypy_cache", ".pytest_cache", ".gradle", ".idea", ".next",
};

static const char *const lock_files[] = {
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock",      "pnpm-lock.yaml",
    "Cargo.lock",        "go.sum",              "poetry.lock",    "Pipfile.lock",
    "composer.lock",     "Gemfile.lock",        "mix.lock",       "flake.lock",
    "Podfile.lock",      "pubspec.lock",        "uv.lock",        "packages.lock.json",
    "bun.lockb",         "gradle.lockfile",
};

static int name_in(const char *name, size_t len, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && !memcmp(list[i], name, len))
            return 1;
    return 0;
}

static int dir_skipped(const char *name, size_t len)
{
    return name_in(name, len, skipped_dirs, sizeof(skipped_dirs) / sizeof(skipped_dirs[0]));
}

static int file_skipped(const char *name, size_t len)
{
    if (name_in(name, len, lock_files, sizeof(lock_files) / sizeof(lock_files[0])))
        return 1;
    /* minified bundles are generated */
    return (len > 7 && !memcmp(name + len - 7, ".min.js", 7)) ||
           (len > 8 && !memcmp(name + len - 8, ".min.css", 8));
}

bool src_git_path_skipped(const char *path)
{
    const char *p = path;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash)
            return file_skipped(p, strlen(p));
        if (dir_skipped(p, (size_t)(slash - p)))
            return true;
        p = slash + 1;
    }
}

/* Valid UTF-8 without NUL bytes (overlongs, surrogates and > U+10FFFF rejected). */
static int is_text(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned cp;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            k = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            k = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            k = 3, cp = c & 0x07;
        else
            return 0;
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* "https://github.com/owner/repo(.git)(/)" -> "owner/repo" (heap), else NULL. */
static char *github_full_name(const char *url)
{
    static const char *const prefixes[] = {"https://github.com/", "http://github.com/",
                                           "https://www.github.com/", "git@github.com:",
                                           "ssh://git@github.com/"};
    for (size_t i = 0; url && i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t pl = strlen(prefixes[i]), n;
        const char *s, *slash;
        if (strncasecmp(url, prefixes[i], pl))
            continue;
        s = url + pl;
        slash = strchr(s, '/');
        if (!slash || slash == s)
            return NULL;
        n = strcspn(slash + 1, "/?#");
        if (n == 0)
            return NULL;
        n += (size_t)(slash + 1 - s);
        if (n > 4 && !memcmp(s + n - 4, ".git", 4))
            n -= 4;
        return tw_strndup(s, n);
    }
    return NULL;
}

struct git_walk {
    git_repository *repo;
    const struct src_opts *o;
    struct src_sink *sink;
    const char *source;   // what the caller passed
    const char *url_base; // ".../blob/<sha>/" or "file://<path>/"
    const char *url_tail; // "" or "@<sha>"
    const char *repo_name;
    int64_t commit_time;
    size_t n_docs;
    int rc;
    struct tw_err *err;
};

static int emit_blob(struct git_walk *w, const char *root, const git_tree_entry *e)
{
    const char *name = git_tree_entry_name(e);
    git_blob *blob = NULL;
    struct tw_buf url = TW_BUF_INIT, title = TW_BUF_INIT, text = TW_BUF_INIT;
    struct doc d;
    git_object_size_t size;
    const void *raw;
    int rc = 0;

    if (git_blob_lookup(&blob, w->repo, git_tree_entry_id(e)) < 0) {
        const git_error *ge = git_error_last();
        tw_buf_printf(&url, "%s%s", root, name);
        w->sink->fail(w->sink->ctx, url.data, ge ? ge->message : "cannot read blob");
        tw_buf_release(&url);
        return 0;
    }
    size = git_blob_rawsize(blob);
    raw = git_blob_rawcontent(blob);
    if (size == 0 || size > GIT_FILE_MAX || !is_text(raw, (size_t)size)) {
        tw_log(TW_LOG_DEBUG, "git", "'%s%s' skipped (%s)", root, name,
               size == 0 ? "empty" : size > GIT_FILE_MAX ? "over 1 MiB" : "binary");
        git_blob_free(blob);
        return 0;
    }
    tw_buf_printf(&url, "%s%s%s%s", w->url_base, root, name, w->url_tail);
    tw_buf_printf(&title, "%s/%s%s", w->repo_name, root, name);
    tw_buf_add(&text, raw, (size_t)size);
    git_blob_free(blob);
    if (url.err || title.err || text.err) {
        rc = tw_errf(w->err, TW_ENOMEM, "out of memory reading '%s%s'", root, name);
        goto out;
    }
    memset(&d, 0, sizeof(d));
    d.kind = "code";
    d.platform = "github";
    d.url = url.data;
    d.source = w->source;
    d.author_name = w->o ? w->o->author_name : NULL;
    d.author_handle = w->o ? w->o->author_handle : NULL;
    d.title = title.data;
    d.content = text.data;
    d.published_at = w->commit_time;
    d.fetched_at = DOC_TIME_UNKNOWN;
    rc = w->sink->emit(w->sink->ctx, &d, w->err);
    if (rc == 0)
        w->n_docs++;
out:
    tw_buf_release(&url);
    tw_buf_release(&title);
    tw_buf_release(&text);
    return rc;
}

static int walk_cb(const char *root, const git_tree_entry *e, void *payload)
{
    struct git_walk *w = payload;
    const char *name = git_tree_entry_name(e);
    git_filemode_t mode = git_tree_entry_filemode(e);
    int rc;

    if (mode == GIT_FILEMODE_TREE)
        return dir_skipped(name, strlen(name)) ? 1 : 0; /* 1: skip this subtree */
    if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE)
        return 0; /* symlinks, submodules */
    if (file_skipped(name, strlen(name)))
        return 0;
    if (w->n_docs >= GIT_FILES_MAX) {
        w->rc = tw_errf(w->err, TW_ELIMIT, "more than %d files", GIT_FILES_MAX);
        return -1;
    }
    rc = emit_blob(w, root, e);
    if (rc < 0) {
        w->rc = rc;
        return -1;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static int git_fail(struct tw_err *err, int code, const char *what, const char *src)
{
    const git_error *ge = git_error_last();
    return tw_errf(err, code, "%s '%s': %s", what, src, ge && ge->message ? ge->message : "failed");
}

/* Everything after the repository is open. */
static int import_repo(git_repository *repo, const git_oid *at, const char *src,
                       const char *doc_source, const char *web_url, const char *local_path,
                       const struct src_opts *o, struct src_sink *sink, struct tw_err *err)
{
    git_reference *head = NULL;
    git_commit *commit = NULL;
    git_tree *tree = NULL;
    git_config *cfg = NULL;
    char sha[GIT_OID_HEXSZ + 1];
    char *full = NULL, *name = NULL;
    struct tw_buf base = TW_BUF_INIT, tail = TW_BUF_INIT;
    struct git_walk w;
    int rc = TW_OK;

    if (!at && git_repository_head(&head, repo) < 0) {
        rc = git_fail(err, TW_ENOENT, "no HEAD commit in repository", src);
        goto out;
    }
    if (git_commit_lookup(&commit, repo, at ? at : git_reference_target(head)) < 0 ||
        git_commit_tree(&tree, commit) < 0) {
        rc = git_fail(err, TW_EFORMAT, "cannot read HEAD of repository", src);
        goto out;
    }
    git_oid_tostr(sha, sizeof(sha), git_commit_id(commit));
    full = github_full_name(web_url);
    /* The origin's URL straight from the config: git_remote_lookup (libgit2 1.5 with PCRE2)
     * leaks regex match data on every call. */
    if (!full && git_repository_config_snapshot(&cfg, repo) == 0) {
        const char *origin = NULL;
        if (git_config_get_string(&origin, cfg, "remote.origin.url") == 0)
            full = github_full_name(origin);
    }
    if (full) {
        const char *slash = strchr(full, '/');
        name = tw_strdup(slash ? slash + 1 : full);
        tw_buf_printf(&base, "https://github.com/%s/blob/%s/", full, sha);
    } else {
        /* a local repository: file://<path>/<file>@<commit>; the name is the folder's */
        char *rp = realpath(local_path, NULL);
        const char *p = rp ? rp : local_path;
        size_t n = strlen(p);
        while (n > 1 && p[n - 1] == '/')
            n--;
        if (n > 4 && !memcmp(p + n - 4, ".git", 4) && p[n - 5] == '/')
            n -= 5; /* ".../repo/.git" -> ".../repo" */
        tw_buf_printf(&base, "file://%.*s/", (int)n, p);
        {
            const char *s = p + n;
            size_t nl;
            while (s > p && s[-1] != '/')
                s--;
            nl = (size_t)(p + n - s);
            if (nl > 4 && !memcmp(s + nl - 4, ".git", 4))
                nl -= 4; /* "repo.git" -> "repo" */
            name = tw_strndup(s, nl);
        }
        tw_buf_printf(&tail, "@%s", sha);
        free(rp);
    }
    if (!name || base.err || tail.err) {
        rc = tw_errf(err, TW_ENOMEM, "out of memory importing '%s'", src);
        goto out;
    }
    memset(&w, 0, sizeof(w));
    w.repo = repo;
    w.o = o;
    w.sink = sink;
    w.source = doc_source;
    w.url_base = base.data;
    w.url_tail = tail.data;
    w.repo_name = name;
    w.commit_time = (int64_t)git_commit_time(commit);
    w.err = err;
    if (git_tree_walk(tree, GIT_TREEWALK_PRE, walk_cb, &w) < 0 && w.rc == 0)
        w.rc = git_fail(err, TW_EFORMAT, "cannot walk the tree of repository", src);
    rc = w.rc;
    if (rc < 0)
        tw_err_ctx(err, "importing '%s'", src);
out:
    tw_buf_release(&base);
    tw_buf_release(&tail);
    tw_free(full);
    tw_free(name);
    git_config_free(cfg);
    git_tree_free(tree);
    git_commit_free(commit);
    git_reference_free(head);
    return rc;
}

static int git_init_rc;

static void git_init_once(void)
{
    git_init_rc = git_libgit2_init();
}

/* Fetches the remote's HEAD commit (and what it needs) into the empty bare 'repo': only the
 * branch HEAD names, not every branch as git_clone would. The caller gives 'repo' an empty
 * config: libgit2 1.5's PCRE2 regex matching leaks its match data on every non-matching entry,
 * and creating a remote walks the config with a regex (url.*.insteadof); with no entries there
 * is nothing to leak (and the user's insteadof rewrites do not apply). */
static int fetch_head(git_repository *repo, const char *url, git_oid *head, struct tw_err *err)
{
    git_remote *rem = NULL;
    const git_remote_head **refs = NULL;
    const char *target = NULL;
    size_t n_refs = 0;
    git_fetch_options fo;
    char spec[1100];
    char *specp = spec;
    git_strarray specs = {&specp, 1};
    int rc = TW_OK, have_head = 0;

    if (git_remote_create_anonymous(&rem, repo, url) < 0 ||
        git_remote_connect(rem, GIT_DIRECTION_FETCH, NULL, NULL, NULL) < 0 ||
        git_remote_ls(&refs, &n_refs, rem) < 0) {
        rc = git_fail(err, TW_ENET, "cannot clone", url);
        goto out;
    }
    for (size_t i = 0; i < n_refs; i++) {
        if (!strcmp(refs[i]->name, "HEAD")) {
            git_oid_cpy(head, &refs[i]->oid);
            target = refs[i]->symref_target;
            have_head = 1;
        }
    }
    if (!have_head) {
        rc = tw_errf(err, TW_ENOENT, "no HEAD commit in repository '%s'", url);
        goto out;
    }
    /* Without the symref capability, the branch HEAD points at is the one with its commit. */
    for (size_t i = 0; !target && i < n_refs; i++)
        if (!strncmp(refs[i]->name, "refs/heads/", 11) && git_oid_equal(&refs[i]->oid, head))
            target = refs[i]->name;
    if (!target || strlen(target) > 1000) {
        rc = tw_errf(err, TW_ENOENT, "cannot tell which branch HEAD of '%s' is", url);
        goto out;
    }
    snprintf(spec, sizeof(spec), "+%s:refs/twin/head", target);
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    if (git_remote_download(rem, &specs, &fo) < 0)
        rc = git_fail(err, TW_ENET, "cannot clone", url);
out:
    if (rem) {
        git_remote_disconnect(rem);
        git_remote_free(rem);
    }
    return rc;
}

/* libgit2 is initialized once per process and never shut down (its global state is reachable,
 * not leaked; init is not cheap). */
static int git_ready(struct tw_err *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, git_init_once);
    if (git_init_rc < 0)
        return tw_errf(err, TW_EINTERNAL, "libgit2 initialization failed");
    return TW_OK;
}

int src_git_import_as(const char *url_or_path, const char *web_url, const struct src_opts *o,
                      struct src_sink *sink, struct tw_err *err)
{
    git_repository *repo = NULL;
    git_oid head;
    const git_oid *at = NULL;
    git_config *empty = NULL;
    char tmp[PATH_MAX] = "";
    const char *local = url_or_path;
    int rc;

    if (git_ready(err) < 0)
        return err->code;
    if (!strncmp(url_or_path, "https://", 8) || !strncmp(url_or_path, "http://", 7) ||
        !strncmp(url_or_path, "file://", 7)) {
        const char *td = getenv("TMPDIR");
        snprintf(tmp, sizeof(tmp), "%s/twin-git-XXXXXX", td && *td ? td : "/tmp");
        if (!mkdtemp(tmp)) {
            tmp[0] = 0;
            rc = tw_errf(err, TW_EIO, "cannot create a temporary directory to clone '%s'",
                         url_or_path);
            goto out;
        }
        if (git_repository_init(&repo, tmp, 1) < 0 || git_config_new(&empty) < 0 ||
            git_repository_set_config(repo, empty) < 0) {
            rc = git_fail(err, TW_EIO, "cannot create a repository to clone", url_or_path);
            goto out;
        }
        rc = fetch_head(repo, url_or_path, &head, err);
        if (rc < 0)
            goto out;
        at = &head;
        local = url_or_path;
        if (!strncmp(url_or_path, "file://", 7))
            local = url_or_path + 7; /* names local documents after the origin, not the clone */
    } else if (strstr(url_or_path, "://") || !strncmp(url_or_path, "git@", 4)) {
        rc = tw_errf(err, TW_EUNSUP,
                     "'%s': only https://, file:// URLs and local paths can be imported",
                     url_or_path);
        goto out;
    } else if (git_repository_open_ext(&repo, url_or_path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) <
               0) {
        rc = git_fail(err, TW_ENOENT, "cannot open git repository", url_or_path);
        goto out;
    }
    rc = import_repo(repo, at, url_or_path, web_url ? web_url : url_or_path,
                     web_url ? web_url : url_or_path, local, o, sink, err);
out:
    git_config_free(empty);
    git_repository_free(repo);
    if (tmp[0])
        nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

int src_git_import(const char *url_or_path, const struct src_opts *o, struct src_sink *sink,
                   struct tw_err *err)
{
    return src_git_import_as(url_or_path, NULL, o, sink, err);
}
