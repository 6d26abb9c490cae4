/* import.c - what a PATH given to `twin import` is, and the source that reads it. */
#include "collect/collect_int.h"

#include "base/mem.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

const char *src_kind_name(enum src_kind k)
{
    switch (k) {
    case SRC_KIND_FILES:
        return "files";
    case SRC_KIND_MEDIUM:
        return "medium export";
    case SRC_KIND_SUBSTACK:
        return "substack export";
    case SRC_KIND_LINKEDIN:
        return "linkedin export";
    case SRC_KIND_GIT:
        return "git repository";
    default:
        return "unknown";
    }
}

static bool has_prefix(const char *s, const char *p)
{
    return !strncasecmp(s, p, strlen(p));
}

/* A URL is a git repository when it says so (git://, ssh://, git@host:, file://, a .git path)
 * or names a repository on a known forge; other web addresses are for `twin crawl`. */
static bool is_git_url(const char *p)
{
    static const char *const forges[] = {"github.com/",   "gitlab.com/", "bitbucket.org/",
                                         "codeberg.org/", "git.sr.ht/",  NULL};
    const char *host;
    size_t n = strlen(p);
    if (has_prefix(p, "git://") || has_prefix(p, "ssh://") || has_prefix(p, "git@") ||
        has_prefix(p, "file://"))
        return true;
    if (!has_prefix(p, "http://") && !has_prefix(p, "https://"))
        return false;
    if (n > 4 && !strcasecmp(p + n - 4, ".git"))
        return true;
    host = strstr(p, "://") + 3;
    if (!strncasecmp(host, "www.", 4))
        host += 4;
    for (int i = 0; forges[i]; i++)
        if (has_prefix(host, forges[i]))
            return true;
    return false;
}

static bool exists(const char *dir, const char *name, bool want_dir)
{
    char p[PATH_MAX];
    struct stat st;
    if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, name) >= sizeof(p) || stat(p, &st) != 0)
        return false;
    return want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
}

/* A Medium export has posts/<name>.html next to profile/profile.html. */
static bool looks_medium(const struct src_tree *t)
{
    size_t prefix = 0;
    if (src__tree_find_marker(t, "profile/profile.html", &prefix) < 0)
        return false;
    for (size_t i = 0; i < t->n; i++) {
        const char *n = t->e[i].name;
        const char *slash = strrchr(n, '/');
        if (slash && slash - n >= 5 && !strncmp(slash - 5, "posts", 5) &&
            !strcasecmp(src__ext(n), "html"))
            return true;
    }
    return false;
}

static enum src_kind detect_tree(const struct src_tree *t)
{
    size_t prefix;
    if (src__tree_find_marker(t, "Shares.csv", &prefix) >= 0)
        return SRC_KIND_LINKEDIN;
    if (src__tree_find_marker(t, "posts.csv", &prefix) >= 0)
        return SRC_KIND_SUBSTACK;
    if (looks_medium(t))
        return SRC_KIND_MEDIUM;
    return SRC_KIND_FILES;
}

enum src_kind src_detect(const char *path)
{
    struct stat st;
    struct src_tree t;
    struct tw_err err = TW_ERR_INIT;
    enum src_kind k;
    const char *base;

    if (is_git_url(path))
        return SRC_KIND_GIT;
    if (stat(path, &st) != 0)
        return SRC_KIND_NONE;
    if (S_ISDIR(st.st_mode) && (exists(path, ".git", true) || exists(path, ".git", false) ||
                                (exists(path, "HEAD", false) && exists(path, "objects", true) &&
                                 exists(path, "refs", true))))
        return SRC_KIND_GIT;
    if (S_ISREG(st.st_mode) && !src__is_zip(path)) {
        base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (!strcasecmp(base, "Shares.csv"))
            return SRC_KIND_LINKEDIN;
        if (!strcasecmp(base, "posts.csv"))
            return SRC_KIND_SUBSTACK;
        return SRC_KIND_FILES;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        return SRC_KIND_NONE;
    if (src__tree_open(path, NULL, NULL, &t, &err) < 0)
        return SRC_KIND_FILES; // the files source reports why it cannot be read
    k = detect_tree(&t);
    src__tree_release(&t);
    return k;
}

int src_import_path(const char *path, const struct src_opts *o, struct src_sink *sink,
                    struct tw_err *err)
{
    enum src_kind k = src_detect(path);
    switch (k) {
    case SRC_KIND_FILES:
        return src_files_import(path, o, sink, err);
    case SRC_KIND_MEDIUM:
        return src_medium_import(path, o, sink, err);
    case SRC_KIND_SUBSTACK:
        return src_substack_import(path, o, sink, err);
    case SRC_KIND_LINKEDIN:
        return src_linkedin_import(path, o, sink, err);
    case SRC_KIND_GIT:
        return src_git_import(path, o, sink, err);
    default:
        break;
    }
    {
        struct stat st;
        if (has_prefix(path, "http://") || has_prefix(path, "https://"))
            return tw_errf(err, TW_EUNSUP,
                           "'%s': not a git repository; twin import reads files and exports, "
                           "twin crawl reads web pages and feeds",
                           path);
        if (stat(path, &st) != 0)
            return tw_errf(err, TW_ENOENT, "'%s': no such file or folder", path);
        if (S_ISREG(st.st_mode) && src__is_zip(path))
            return tw_errf(err, TW_EFORMAT, "'%s': corrupt or unreadable zip", path);
        return tw_errf(err, TW_EUNSUP, "'%s': not a file, folder or export twin can import", path);
    }
}
