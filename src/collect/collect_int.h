/* collect_int.h - helpers shared by the local sources and html.c (private to src/collect/).
 *
 * text.c: UTF-8 checking and repair, the final text normalization every source applies (NFC,
 * LF line ends, no trailing spaces, at most one blank line in a row), dates, whole-file reads.
 * Everything here is pure and thread-safe; heap results are freed with tw_free.
 */
#ifndef TW_COLLECT_INT_H
#define TW_COLLECT_INT_H

#include "base/buf.h"
#include "base/err.h"
#include "collect/collect.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest single input file a local source reads (a post, a CSV, an HTML page). */
#define SRC_FILE_MAX ((size_t)32 << 20)

/* Returns the byte offset of the first invalid UTF-8 sequence in s[0..len) (overlongs,
 * surrogates and code points past U+10FFFF are invalid), or len when all of it is valid. */
size_t src__utf8_invalid_at(const char *s, size_t len);

/* Normalizes text as every document's content is stored: invalid UTF-8 sequences become U+FFFD,
 * CR LF and CR become LF, NUL and other C0 controls except LF and TAB are dropped, NO-BREAK SPACE
 * becomes a space, trailing spaces of each line go, runs of blank lines become one, leading and
 * trailing blank lines go, and the result is Unicode NFC. On success *out is a heap string. */
int src__text_normalize(const char *s, size_t len, char **out, struct tw_err *err);

/* Parses a date/time as sources write them: "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS]",
 * "YYYY-MM-DDTHH:MM[:SS][.fff](Z|+HH:MM|-HHMM| +ZZZZ)" with optional surrounding quotes/space.
 * A time without a zone is UTC. Returns 0 and sets *t (unix seconds), or -1 if 's' is not one. */
int src__parse_time(const char *s, size_t len, int64_t *t);
/* Unix seconds of a UTC civil date-time; fields must be in range. */
int64_t src__timegm(int y, int mon, int d, int h, int mi, int s);

/* Reads the whole file at 'path' (at most 'max' bytes, else TW_ELIMIT) into a NUL-terminated heap
 * buffer. Errors name the path. */
int src__read_file(const char *path, size_t max, char **out, size_t *len, struct tw_err *err);

/* ASCII case-insensitive search for 'needle' in s[0..len); NULL when absent. */
const char *src__memcasemem(const char *s, size_t len, const char *needle);

/* A sink call with a formatted message: "item: message". */
void src__fail(struct src_sink *sink, const char *item, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- html internals shared with the export sources (html.c) ---- */

struct GumboInternalNode; // GumboNode

/* Renders one gumbo element's subtree as html_to_text renders a document. */
int html__node_text(const struct GumboInternalNode *n, char **out, struct tw_err *err);
/* The subtree's text on one line (titles, names); NULL when out of memory. */
char *html__node_line(const struct GumboInternalNode *n);
/* Calls fn on every element under root (included), in document order, without recursion. */
int html__walk(const struct GumboInternalNode *root,
               void (*fn)(void *ctx, const struct GumboInternalNode *n), void *ctx,
               struct tw_err *err);
/* True when the element's attribute 'name' contains the word 'word' (space-separated, as class
 * lists are); for other attributes use gumbo_get_attribute. */
bool html__has_class(const struct GumboInternalNode *n, const char *word);

/* ---- front matter (frontmatter.c) ---- */

#define FM_TAGS_MAX 64

/* Front matter of a Jekyll/Hugo file: YAML between "---" lines or TOML between "+++" lines.
 * Only flat keys are read (title, subtitle/description, date, author, tags, draft/published);
 * strings are unquoted and unescaped. Views point into a heap copy owned by the struct. */
struct fm_meta {
    char *title;    // NULL if absent
    char *subtitle; // "subtitle" or "description"
    char *author;
    char *date; // the raw date text, parse with src__parse_time
    char *tags[FM_TAGS_MAX];
    int n_tags;
    bool draft;      // draft: true, or published: false
    size_t body_off; // byte offset of the body after the closing fence (0: no front matter)
};

/* Parses front matter at the start of text[0..len). No front matter is success with body_off 0
 * and every field NULL. An opening fence without a closing one, or a line that is not
 * "key: value" at the top level, is TW_EFORMAT naming the line. Release with fm_meta_release. */
int fm_parse(const char *text, size_t len, struct fm_meta *m, struct tw_err *err);
void fm_meta_release(struct fm_meta *m);

/* ---- input trees: a folder, a zip archive or a single file (zip.c) ---- */

#define SRC_TREE_ENTRIES_MAX 200000            // files in a folder walk or entries in a zip
#define SRC_ZIP_TOTAL_MAX    ((size_t)1 << 30) // bytes a zip may expand to (loaded entries)
#define SRC_TREE_DEPTH_MAX   64

/* One file of a tree. 'name' is relative to the tree root with '/' separators. */
struct src_entry {
    char *name;
    char *data;   // zip entries that were wanted: the loaded bytes (NUL-terminated); else NULL
    size_t len;   // bytes in data
    bool too_big; // a wanted zip entry past SRC_FILE_MAX (not loaded)
};

/* The files of one input PATH, sorted by name. A zip is read once, keeping in memory only the
 * entries 'want' accepts (all names are listed); folders are read lazily. Entries that are links,
 * devices or dot files are left out; a zip entry whose name is absolute or has a ".." component
 * fails the whole archive (path traversal). */
struct src_tree {
    char *path; // absolute path of the folder, zip or file
    bool is_zip;
    bool is_file; // a single plain file: one entry, its base name
    struct src_entry *e;
    size_t n, cap;
};

typedef bool (*src_tree_want_fn)(const char *name, void *ctx);

/* Opens PATH as a tree. want == NULL loads no zip data (listing only). */
int src__tree_open(const char *path, src_tree_want_fn want, void *ctx, struct src_tree *t,
                   struct tw_err *err);
void src__tree_release(struct src_tree *t);
/* The bytes of entry i as a NUL-terminated heap copy (at most SRC_FILE_MAX). Errors name it. */
int src__tree_read(const struct src_tree *t, size_t i, char **data, size_t *len,
                   struct tw_err *err);
/* Index of the entry named exactly 'name' (ASCII case-insensitive), or -1. */
long src__tree_find(const struct src_tree *t, const char *name);
/* Index of the entry named 'name' at the root or one folder down ("export/posts.csv"),
 * case-insensitively; *prefix_len is the length of the folder part with its '/' (0 at the root).
 * -1 when absent. */
long src__tree_find_marker(const struct src_tree *t, const char *name, size_t *prefix_len);
/* A display name for entry i ("/abs/dir/a.md", "/abs/x.zip:posts/a.html") and its URL
 * ("file:///abs/dir/a.md", "file:///abs/x.zip#posts/a.html"); heap strings. */
char *src__tree_item(const struct src_tree *t, size_t i);
char *src__tree_url(const struct src_tree *t, size_t i);
/* True when 'path' starts like a zip archive ("PK\3\4" or an empty archive "PK\5\6"). */
bool src__is_zip(const char *path);
/* The extension of a name's last component ("md" for "a/b.md"), "" if none; points into name.
 * Compare it with strcasecmp. */
const char *src__ext(const char *name);

#endif
