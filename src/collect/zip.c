/* zip.c - input trees: a folder walked recursively, a zip archive read through libarchive, or a
 * single file, all seen as one sorted list of named entries.
 *
 * A zip is untrusted: entry count, each entry's size and the total expanded size are bounded
 * while decompressing (not from the headers, which can lie), and an entry name that is absolute
 * or climbs out with ".." rejects the archive.
 */
#include "collect/collect_int.h"

#include "base/mem.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

const char *src__ext(const char *name)
{
    const char *base = strrchr(name, '/'), *dot;
    base = base ? base + 1 : name;
    dot = strrchr(base, '.');
    return dot && dot != base ? dot + 1 : "";
}

bool src__is_zip(const char *path)
{
    unsigned char m[4];
    FILE *f = fopen(path, "rb");
    size_t n;
    if (!f)
        return false;
    n = fread(m, 1, 4, f);
    fclose(f);
    return n == 4 && m[0] == 'P' && m[1] == 'K' &&
           ((m[2] == 3 && m[3] == 4) || (m[2] == 5 && m[3] == 6));
}

static int add_entry(struct src_tree *t, const char *name, struct src_entry **out,
                     struct tw_err *err)
{
    if (t->n >= SRC_TREE_ENTRIES_MAX)
        return tw_errf(err, TW_ELIMIT, "'%s' has more than %d files", t->path,
                       SRC_TREE_ENTRIES_MAX);
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        struct src_entry *ne = tw_reallocarray(t->e, ncap, sizeof(*ne));
        if (!ne)
            return tw_errf(err, TW_ENOMEM, "out of memory listing '%s'", t->path);
        t->e = ne;
        t->cap = ncap;
    }
    memset(&t->e[t->n], 0, sizeof(t->e[t->n]));
    t->e[t->n].name = tw_strdup(name);
    if (!t->e[t->n].name)
        return tw_errf(err, TW_ENOMEM, "out of memory listing '%s'", t->path);
    *out = &t->e[t->n++];
    return TW_OK;
}

/* ---- folders ---- */

static int walk_dir(struct src_tree *t, const char *rel, int depth, struct tw_err *err)
{
    char dir[PATH_MAX];
    DIR *d;
    struct dirent *de;
    int rc = TW_OK;

    if (depth > SRC_TREE_DEPTH_MAX)
        return tw_errf(err, TW_ELIMIT, "'%s/%s' is nested more than %d folders deep", t->path, rel,
                       SRC_TREE_DEPTH_MAX);
    if ((size_t)snprintf(dir, sizeof(dir), "%s%s%s", t->path, rel[0] ? "/" : "", rel) >=
        sizeof(dir))
        return tw_errf(err, TW_ELIMIT, "path '%s/%s' is too long", t->path, rel);
    d = opendir(dir);
    if (!d)
        return tw_errf(err, TW_EIO, "cannot read folder '%s': %s", dir, strerror(errno));
    while (rc == TW_OK && (de = readdir(d))) {
        char path[PATH_MAX], name[PATH_MAX];
        struct stat st;
        struct src_entry *e;
        if (de->d_name[0] == '.')
            continue; // dot files, .git, editor droppings
        if ((size_t)snprintf(name, sizeof(name), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
                sizeof(name) ||
            (size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path)) {
            rc = tw_errf(err, TW_ELIMIT, "path '%s/%s' is too long", dir, de->d_name);
            break;
        }
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            rc = walk_dir(t, name, depth + 1, err);
        else if (S_ISREG(st.st_mode))
            rc = add_entry(t, name, &e, err);
    }
    closedir(d);
    return rc;
}

/* ---- zip ---- */

/* Absolute names, drive letters and ".." components would write outside the archive's folder
 * when extracted; an archive that has them is hostile or broken. */
static bool name_escapes(const char *name)
{
    const char *p = name;
    if (name[0] == '/' || name[0] == '\\' || (name[0] && name[1] == ':'))
        return true;
    while (*p) {
        size_t n = strcspn(p, "/\\");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return true;
        p += n;
        if (*p)
            p++;
    }
    return false;
}

static int load_entry(struct archive *a, struct src_entry *e, size_t *total, const char *zip,
                      struct tw_err *err)
{
    struct tw_buf b = TW_BUF_INIT;
    char chunk[16384];
    la_ssize_t n;
    tw_buf_init(&b, SRC_FILE_MAX);
    while ((n = archive_read_data(a, chunk, sizeof(chunk))) > 0) {
        if (*total + (size_t)n > SRC_ZIP_TOTAL_MAX) {
            tw_buf_release(&b);
            return tw_errf(err, TW_ELIMIT, "zip '%s' expands past %zu bytes", zip,
                           (size_t)SRC_ZIP_TOTAL_MAX);
        }
        *total += (size_t)n;
        if (tw_buf_add(&b, chunk, (size_t)n) == TW_ELIMIT) {
            e->too_big = true;
            tw_buf_release(&b);
            return TW_OK; // the rest of the entry is skipped by the next header read
        }
    }
    if (n < 0) {
        tw_buf_release(&b);
        return tw_errf(err, TW_EFORMAT, "zip '%s': entry '%s': %s", zip, e->name,
                       archive_error_string(a) ? archive_error_string(a) : "read error");
    }
    if (b.err) {
        tw_buf_release(&b);
        return tw_errf(err, TW_ENOMEM, "out of memory reading '%s' in '%s'", e->name, zip);
    }
    e->data = tw_buf_detach(&b, &e->len);
    if (!e->data)
        return tw_errf(err, TW_ENOMEM, "out of memory reading '%s' in '%s'", e->name, zip);
    return TW_OK;
}

static int read_zip(struct src_tree *t, src_tree_want_fn want, void *ctx, struct tw_err *err)
{
    struct archive *a = archive_read_new();
    struct archive_entry *ae;
    size_t total = 0;
    int r, rc = TW_OK;

    if (!a)
        return tw_errf(err, TW_ENOMEM, "out of memory opening zip '%s'", t->path);
    archive_read_support_format_zip(a);
    if (archive_read_open_filename(a, t->path, 65536) != ARCHIVE_OK) {
        rc = tw_errf(err, TW_EFORMAT, "cannot read zip '%s': %s", t->path,
                     archive_error_string(a) ? archive_error_string(a) : "unknown error");
        archive_read_free(a);
        return rc;
    }
    while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        const char *name = archive_entry_pathname(ae);
        struct src_entry *e;
        if (!name || !name[0])
            continue;
        if (name_escapes(name)) {
            rc = tw_errf(err, TW_EFORMAT,
                         "zip '%s': entry '%.200s' points outside the archive (path traversal)",
                         t->path, name);
            break;
        }
        if (archive_entry_filetype(ae) != AE_IFREG)
            continue;
        {
            /* Skip dot files and folders anywhere in the name (__MACOSX too). */
            const char *base = strrchr(name, '/');
            base = base ? base + 1 : name;
            if (base[0] == '.' || !strncmp(name, "__MACOSX/", 9))
                continue;
        }
        rc = add_entry(t, name, &e, err);
        if (rc < 0)
            break;
        if (want && want(name, ctx)) {
            rc = load_entry(a, e, &total, t->path, err);
            if (rc < 0)
                break;
        }
    }
    if (rc == TW_OK && r != ARCHIVE_EOF)
        rc = tw_errf(err, TW_EFORMAT, "corrupt zip '%s': %s", t->path,
                     archive_error_string(a) ? archive_error_string(a) : "bad header");
    archive_read_free(a);
    return rc;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct src_entry *)a)->name, ((const struct src_entry *)b)->name);
}

int src__tree_open(const char *path, src_tree_want_fn want, void *ctx, struct src_tree *t,
                   struct tw_err *err)
{
    char abs[PATH_MAX];
    struct stat st;
    struct src_entry *e;
    int rc;

    memset(t, 0, sizeof(*t));
    if (stat(path, &st) != 0)
        return tw_errf(err, errno == ENOENT ? TW_ENOENT : TW_EIO, "cannot open '%s': %s", path,
                       strerror(errno));
    if (!realpath(path, abs))
        return tw_errf(err, TW_EIO, "cannot resolve '%s': %s", path, strerror(errno));
    t->path = tw_strdup(abs);
    if (!t->path)
        return tw_errf(err, TW_ENOMEM, "out of memory opening '%s'", path);
    if (S_ISDIR(st.st_mode)) {
        rc = walk_dir(t, "", 0, err);
    } else if (S_ISREG(st.st_mode) && src__is_zip(abs)) {
        t->is_zip = true;
        rc = read_zip(t, want, ctx, err);
    } else if (S_ISREG(st.st_mode)) {
        const char *base = strrchr(abs, '/');
        t->is_file = true;
        rc = add_entry(t, base ? base + 1 : abs, &e, err);
    } else {
        rc = tw_errf(err, TW_EINVAL, "'%s' is not a file or folder", path);
    }
    if (rc < 0) {
        src__tree_release(t);
        return rc;
    }
    if (t->n > 1)
        qsort(t->e, t->n, sizeof(*t->e), cmp_entry);
    return TW_OK;
}

void src__tree_release(struct src_tree *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        tw_free(t->e[i].name);
        tw_free(t->e[i].data);
    }
    tw_free(t->e);
    tw_free(t->path);
    memset(t, 0, sizeof(*t));
}

int src__tree_read(const struct src_tree *t, size_t i, char **data, size_t *len, struct tw_err *err)
{
    const struct src_entry *e = &t->e[i];
    char path[PATH_MAX];
    *data = NULL;
    *len = 0;
    if (t->is_zip) {
        if (e->too_big)
            return tw_errf(err, TW_ELIMIT, "entry is larger than %zu bytes", (size_t)SRC_FILE_MAX);
        if (!e->data)
            return tw_errf(err, TW_EINTERNAL, "entry '%s' was not loaded", e->name);
        *data = tw_strndup(e->data, e->len);
        if (!*data)
            return tw_errf(err, TW_ENOMEM, "out of memory reading '%s'", e->name);
        *len = e->len;
        return TW_OK;
    }
    if (t->is_file)
        return src__read_file(t->path, SRC_FILE_MAX, data, len, err);
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", t->path, e->name) >= sizeof(path))
        return tw_errf(err, TW_ELIMIT, "path '%s/%s' is too long", t->path, e->name);
    return src__read_file(path, SRC_FILE_MAX, data, len, err);
}

long src__tree_find(const struct src_tree *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (!strcasecmp(t->e[i].name, name))
            return (long)i;
    return -1;
}

long src__tree_find_marker(const struct src_tree *t, const char *name, size_t *prefix_len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < t->n; i++) {
        const char *e = t->e[i].name, *slash = strchr(e, '/');
        size_t len = strlen(e);
        if (len < n || strcasecmp(e + len - n, name))
            continue;
        if (len == n) {
            *prefix_len = 0;
            return (long)i;
        }
        if (e[len - n - 1] == '/' && slash == e + len - n - 1) {
            *prefix_len = len - n;
            return (long)i;
        }
    }
    return -1;
}

static char *joined(const char *a, const char *sep, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(sep) + strlen(b) + strlen(c) + 1;
    char *s = tw_malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s%s", a, sep, b, c);
    return s;
}

char *src__tree_item(const struct src_tree *t, size_t i)
{
    if (t->is_file)
        return tw_strdup(t->path);
    return joined(t->path, t->is_zip ? ":" : "/", t->e[i].name, "");
}

char *src__tree_url(const struct src_tree *t, size_t i)
{
    if (t->is_file)
        return joined("file://", "", t->path, "");
    return joined("file://", t->path, t->is_zip ? "#" : "/", t->e[i].name);
}
