/* collect.h - data collection: sources that turn a person's writing into documents (DESIGN §1).
 *
 * Every source walks its input and hands each document to a sink; it never writes to the store
 * itself. The sink (the import/crawl command) stores the document in its own transaction and
 * counts the outcome. A bad item is reported through sink->fail and the source goes on with the
 * next one; a source returns an error only when the input as a whole cannot be read.
 *
 *     source(input, opts) --emit(doc)--> sink --doc_store_put--> store
 *                         --fail(item, message)--> sink (counted, printed by the command)
 */
#ifndef TW_COLLECT_H
#define TW_COLLECT_H

#include "base/err.h"
#include "store/doc.h"

#include <stdbool.h>

struct src_sink {
    /* Stores one document. Borrowed for the call. Returns 0, or a negative code to stop the
     * source (a store failure). */
    int (*emit)(void *ctx, const struct doc *d, struct tw_err *err);
    /* Reports one item that could not be collected ('item' names it: a URL, a file, a row). */
    void (*fail)(void *ctx, const char *item, const char *message);
    void *ctx;
};

struct src_opts {
    const char *author_name;   // --author "Full Name"
    const char *author_handle; // platform handle if known
    const char *github_token;  // optional GitHub API token
    bool include_drafts;       // Medium/Substack: drafts and unpublished posts too
};



/* ---- local sources: files, folders, official exports (src/collect/{files,medium,substack,
 * linkedin,csv,zip}.c) ---- */


/* Every local source takes the PATH as given on the command line; documents get source = the
 * absolute path of PATH (what --prune compares), author_name = o->author_name. A file that cannot
 * be read or converted is reported through sink->fail (naming it and the cause) and skipped; the
 * return value is negative only when PATH as a whole cannot be read (missing, corrupt zip, not an
 * export of that kind) or when sink->emit asked to stop. */

/* A folder of files (recursively), a zip of them, or one file. Markdown (.md .markdown .mdown
 * .mkd), HTML (.html .htm) and text (.txt .text) with optional YAML/TOML front matter (title,
 * subtitle/description, date, draft). Jekyll names "YYYY-MM-DD-slug.ext" give the date when the
 * front matter has none; the title falls back to the first heading, then the slug. Liquid
 * {% highlight x %} blocks become fenced code. kind article, platform file, url file://PATH
 * (file:///abs/x.zip#entry inside a zip). Drafts are skipped unless o->include_drafts. */
int src_files_import(const char *path, const struct src_opts *o, struct src_sink *sink,
                     struct tw_err *err);

/* A Medium export (its zip or unpacked folder): posts/NAME.html in h-entry markup. kind article,
 * platform medium, url = the post's canonical link. Drafts (no canonical link or publish time)
 * are skipped unless o->include_drafts (then url = the file's file:// URL); responses (comments:
 * no subtitle and a title that is the start of the body) are skipped. A canonical link used by an
 * earlier file of the export is reported as a failed item. The author's handle comes from
 * profile/profile.html. */
int src_medium_import(const char *path, const struct src_opts *o, struct src_sink *sink,
                      struct tw_err *err);

/* A Substack export (zip or folder): posts.csv + posts/<post_id>.html. Only published posts
 * (is_published TRUE) unless o->include_drafts; type newsletter and podcast (its show notes) are
 * articles, thread (a discussion prompt) is a post, page (About etc.) is skipped. url =
 * https://<handle>.substack.com/p/<slug> when o->author_handle is set, else substack:<post_id>.
 * Dates: post_date, else email_sent_at/inbox_sent_at. */
int src_substack_import(const char *path, const struct src_opts *o, struct src_sink *sink,
                        struct tw_err *err);

/* One saved or fetched Substack post page: html_extract_article plus the window._preloads post
 * JSON when present (its title, subtitle, post_date and canonical_url win). url falls back to the
 * page's canonical URL, then 'url'. Emits one document (kind article, platform substack) or
 * returns an error (TW_ENOENT when the page has no article text). 'source' may be NULL. */
int src_substack_page(const char *html, size_t len, const char *url, const char *source,
                      const struct src_opts *o, struct src_sink *sink, struct tw_err *err);

/* A LinkedIn data export: Shares.csv itself, the export folder, or its zip. One document per
 * share with text: kind post, platform linkedin, url = ShareLink, published_at = Date (UTC).
 * LinkedIn's line-break quoting ("line" NL "line") is undone so the post reads as written. */
int src_linkedin_import(const char *path, const struct src_opts *o, struct src_sink *sink,
                        struct tw_err *err);

enum src_kind {
    SRC_KIND_NONE = 0, // not something we can import
    SRC_KIND_FILES,
    SRC_KIND_MEDIUM,
    SRC_KIND_SUBSTACK,
    SRC_KIND_LINKEDIN,
    SRC_KIND_GIT,
};

/* What PATH is: a git repository (a folder with .git, a bare repository, or a git URL), a
 * Medium/Substack/LinkedIn export (folder or zip, found by its marker files), or else files.
 * Reads only names, never contents, except a zip's first bytes. */
enum src_kind src_detect(const char *path);
const char *src_kind_name(enum src_kind k);

/* src_detect, then the matching import (src_git_import for git). */
int src_import_path(const char *path, const struct src_opts *o, struct src_sink *sink,
                    struct tw_err *err);

/* ---- CSV (csv.c): RFC 4180 records, bounded ---- */

#define CSV_FIELDS_MAX 256
#define CSV_RECORD_MAX ((size_t)4 << 20)

/* A reader over a caller's buffer. Fields are decoded into a buffer the reader owns; the views
 * are valid until the next csv_next() or csv_release(). Quotes: "a ""b""" is a "b"; line breaks
 * inside quotes are kept; CR LF and LF end records; a UTF-8 BOM is skipped. */
struct csv_reader {
    const char *s;    // input (private)
    size_t len, pos;  // (private)
    long line;        // 1-based line where the current record starts
    long next_line;   // (private) line the reader is on
    char *buf;        // decoded fields (private)
    size_t buf_cap;
    const char *field[CSV_FIELDS_MAX];
    size_t field_len[CSV_FIELDS_MAX];
    int n_fields;
};

void csv_init(struct csv_reader *r, const char *s, size_t len);
/* Reads the next record. Returns 1 with r->field/n_fields set, 0 at the end, or TW_EFORMAT
 * (a quote inside an unquoted field, text after a closing quote, an unterminated quote) or
 * TW_ELIMIT (more than CSV_FIELDS_MAX fields or a record past CSV_RECORD_MAX) naming the line.
 * After an error the reader resumes at the next line. */
int csv_next(struct csv_reader *r, struct tw_err *err);
void csv_release(struct csv_reader *r);
/* Index of the header field named 'name' (ASCII case-insensitive) in the current record, or -1. */
int csv_column(const struct csv_reader *r, const char *name);

/* ---- end of local sources ---- */

/* ---- network sources: http, feeds, crawlers, git (src/collect/{http,feed,crawl,github,git}.c) */

/* Imports a git repository (a local path, file:// URL or https URL) as one `code` document per
 * text file (url = blob URL at the commit, title = repo/path). */
int src_git_import(const char *url_or_path, const struct src_opts *o, struct src_sink *sink,
                   struct tw_err *err);

/* ---- end of network sources ---- */
#endif
