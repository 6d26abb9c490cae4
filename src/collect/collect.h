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
 * {% highlight x %} blocks become fenced code. A whole saved web page (no front matter, an <html>
 * or <body> tag) goes through html_extract_article (its title/date/description fill the gaps). kind article, platform file, url file://PATH
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

/* ---- network sources: http, feeds, crawlers, git (src/collect/{http,robots,feed,crawl,
 * medium_web,substack_web,github,git,web}.c) ----
 *
 * One HTTP client (libcurl) serves every network source. Per request it: checks the scheme
 * (http/https only), waits for the host's rate limit, asks the host's robots.txt (fetched once
 * per host and cached), follows at most HTTP_MAX_REDIRECTS redirects itself (each hop checked
 * again), retries 429/5xx with exponential backoff that honours Retry-After (capped), bounds the
 * body, and rejects binary responses. Thread-safety: one thread owns a client.
 *
 *     crawl URL --src_crawl_url--> medium | substack | github | feed | web page
 *                                    |          |         |
 *                               http_get   feed_parse  src_git_import (libgit2)
 */

#define HTTP_MAX_REDIRECTS 5
#define HTTP_BODY_MAX_DEFAULT ((size_t)16 << 20)
#define HTTP_USER_AGENT_DEFAULT "twin"

struct http_opts {
    const char *user_agent;  // "twin/<version>"; NULL: HTTP_USER_AGENT_DEFAULT
    long connect_timeout_ms; // default 10000
    long timeout_ms;         // whole request, default 30000
    size_t max_body;         // bytes, default HTTP_BODY_MAX_DEFAULT
    double rate;             // requests per second per host; default 1, <= 0: no limit
    int max_retries;         // retries on 429/5xx, default 3
    long backoff_ms;         // first retry delay, doubled per retry; default 1000
    long retry_max_ms;       // cap on any one delay (backoff or Retry-After); default 60000
    int obey_robots;         // default 1
};

/* Fills 'o' with the defaults above. */
void http_opts_default(struct http_opts *o);

struct http_client;

/* A response; the caller owns it and releases it with http_response_release(). */
struct http_response {
    long status;         // final HTTP status (2xx on success)
    char *url;           // final URL after redirects
    char *content_type;  // media type, lowercased, without parameters ("text/html"); "" if none
    char *body;          // NUL-terminated (the NUL is not counted)
    size_t body_len;
    char *headers;       // final response's header lines, "name: value\r\n" each
};

enum http_get_flags {
    HTTP_GET_NO_ROBOTS = 1 << 0,  // an API with its own terms (GitHub REST): robots.txt not asked
    HTTP_GET_ALLOW_BINARY = 1 << 1, // do not reject non-text bodies
};

/* A new client; free it with http_client_free(). 'o' NULL means the defaults. */
int http_client_new(const struct http_opts *o, struct http_client **out, struct tw_err *err);
void http_client_free(struct http_client *c);

/* GETs 'url' into *res. 'headers' is NULL or a NULL-terminated list of extra "Name: value"
 * lines, sent only to the URL's origin (dropped after a redirect to another one). Succeeds only on a 2xx final status with a text body; otherwise returns a negative code
 * with a message naming the URL: TW_EINVAL (bad URL or scheme), TW_EBLOCKED (robots.txt
 * disallows it), TW_ETIMEOUT, TW_ELIMIT (too many redirects, body too large), TW_EFORMAT (binary
 * body), TW_EHTTP (non-2xx status after retries; res->status holds it), TW_ENET (connection).
 * On failure *res is released (status kept). */
int http_get(struct http_client *c, const char *url, const char *const *headers, unsigned flags,
             struct http_response *res, struct tw_err *err);
void http_response_release(struct http_response *res);
/* Value of the first header 'name' (case-insensitive) of the final response, as a heap string,
 * or NULL if absent. */
char *http_response_header(const struct http_response *res, const char *name);
/* Number of requests this client sent (robots.txt fetches and retries included). */
long http_client_requests(const struct http_client *c);

/* Retry-After value (delta seconds or an HTTP date) as milliseconds to wait from 'now' (unix
 * seconds); -1 if unparsable. Exposed for tests. */
long http_retry_after_ms(const char *value, long long now);
/* The rel="next" target of an RFC 8288 Link header value as a heap string, or NULL. */
char *http_link_next(const char *link);

/* ---- robots.txt (RFC 9309) ---- */

struct robots;

/* Parses robots.txt 'text' for the product token 'agent' ("twin"): the groups naming it (case-
 * insensitively) or, if none does, the '*' groups (a group naming us with no rules allows
 * everything). Lenient: unknown lines
 * are skipped; input past ROBOTS_MAX bytes is ignored. Never fails on content. */
#define ROBOTS_MAX ((size_t)500 << 10)
int robots_parse(const char *text, size_t len, const char *agent, struct robots **out,
                 struct tw_err *err);
/* A robots that allows everything (robots.txt absent) or nothing (unreachable). */
int robots_new_all(int allow, struct robots **out, struct tw_err *err);
void robots_free(struct robots *r);
/* True if 'path' (path and query, starting with '/') may be fetched: the longest matching rule
 * wins ('*' wildcards, '$' anchors), Allow wins ties; no match allows. */
bool robots_allowed(const struct robots *r, const char *path);
/* The Crawl-delay of the chosen groups in milliseconds (capped at 60 s), 0 when none. The client
 * spaces requests to the host by at least this much. */
long robots_crawl_delay_ms(const struct robots *r);

/* ---- feeds: RSS 2.0 and Atom ---- */

#define FEED_INPUT_MAX ((size_t)32 << 20)
#define FEED_ITEMS_MAX 10000
#define FEED_CATEGORIES_MAX 64

struct feed_item {
    char *title;        // text (entities decoded), NULL if absent
    char *link;         // the item's page
    char *guid;         // guid / id
    char *author;       // dc:creator, author name or author text
    char *content_html; // content:encoded, or Atom content; NULL if absent
    char *summary_html; // description, or Atom summary
    char **categories;  // n_categories strings
    size_t n_categories;
    int64_t published_at; // pubDate / published / dc:date; INT64_MIN if unknown
    int64_t updated_at;   // atom:updated / updated; INT64_MIN if unknown
};

struct feed {
    int is_atom;
    char *title;
    char *link; // the site (alternate link)
    struct feed_item *items;
    size_t n_items;
};

/* Parses an RSS 2.0 or Atom document with a small, lenient, bounded XML tokenizer (stray '<'
 * are text, unknown elements skipped, CDATA and entities decoded). TW_EFORMAT when the input
 * holds no <rss>, <channel> or <feed> element. Release *out with feed_release() (also after
 * failure). */
int feed_parse(const char *xml, size_t len, struct feed *out, struct tw_err *err);
void feed_release(struct feed *f);
/* True when 'body' looks like an RSS or Atom document (for content sniffing). */
bool feed_is_feed(const char *body, size_t len);
/* RFC 822 ("Tue, 22 Nov 2022 08:01:46 GMT") or RFC 3339 ("2022-11-23T14:51:57.412Z") date
 * as unix seconds; INT64_MIN if unparsable. */
int64_t feed_parse_date(const char *s);

/* ---- crawling ---- */

/* What a crawl reaches the network with. */
struct src_net {
    struct http_client *http;
    const char *platform;     // force a source ("medium", "substack", "github", "web"); NULL: by
                              // host (a Substack on its own domain needs "substack")
    const char *github_api;   // REST API base; NULL: "https://api.github.com" (TWIN_GITHUB_API)
    size_t substack_page_max; // posts per archive API page; 0: 50
    size_t max_pages;         // pages of any paginated listing; 0: 200
};

/* Crawls one URL, choosing the source from net->platform or the host: Medium (medium.com,
 * *.medium.com), Substack (*.substack.com), GitHub (github.com/<user> or /<user>/<repo>),
 * otherwise any web URL (feed or page by content). Documents go to sink->emit; items that fail
 * go to sink->fail. Returns an error only when the URL as a whole failed, or when sink->emit
 * returned one (a store failure: the caller stops). */
int src_crawl_url(const char *url, const struct src_opts *o, struct src_net *net,
                  struct src_sink *sink, struct tw_err *err);

/* Parses a fetched feed and emits one document per item (kind "article", the given platform);
 * item HTML becomes text through html_to_text; the link (Medium's "?source=" tracking removed)
 * is the URL. Items without a link or text are reported to sink->fail. Returns the number of
 * documents emitted, or a negative code (feed unreadable, or a sink error). */
int src_feed_emit(const char *feed_url, const char *xml, size_t len, const char *platform,
                  const struct src_opts *o, struct src_sink *sink, struct tw_err *err);

/* What a listing already knows about a page, used when the page itself does not say. */
struct src_page_meta {
    const char *title;
    const char *subtitle;
    int64_t published_at; // DOC_TIME_UNKNOWN if unknown
};

/* Emits one fetched page as an article (html_extract_article). The document URL is the page's
 * canonical URL when on the same host, else 'url'. A bot challenge or paywall interstitial is
 * TW_EBLOCKED and a page without article text TW_ENOENT; neither is emitted. 'meta' may be
 * NULL. Returns 0 or a negative code. */
int src_web_page_emit(const char *url, const char *html, size_t len, const char *platform,
                      const struct src_page_meta *meta, const struct src_opts *o,
                      struct src_sink *sink, struct tw_err *err);

/* Medium: a profile (medium.com/@user, user.medium.com) or its feed (medium.com/feed/@user)
 * as the feed's articles; any other URL as one article page. */
int src_medium_crawl(const char *url, const struct src_opts *o, struct src_net *net,
                     struct src_sink *sink, struct tw_err *err);
/* The feed URL of a Medium profile URL (medium.com/@user -> https://medium.com/feed/@user,
 * user.medium.com -> https://user.medium.com/feed) as a heap string; NULL when 'url' is not a
 * profile (an article, a feed already, another host). */
char *src_medium_feed_url(const char *url);
/* Substack: a publication (its /feed, then the archive API /api/v1/archive?sort=new&offset=N&
 * limit=M page by page, fetching each post page the feed lacked) or one post (/p/<slug>).
 * Paid-only posts are reported to sink->fail, not stored. */
int src_substack_crawl(const char *url, const struct src_opts *o, struct src_net *net,
                       struct src_sink *sink, struct tw_err *err);
/* GitHub: a user's (or organization's) public non-fork repositories, listed through the REST
 * API (Link pagination, o->github_token as a bearer token) and each imported with
 * src_git_import_as; or one repository (github.com/<user>/<repo>). A repository that fails is
 * reported to sink->fail and the crawl goes on. */
int src_github_crawl(const char *url, const struct src_opts *o, struct src_net *net,
                     struct src_sink *sink, struct tw_err *err);
/* Any URL: a feed (by content type or body) or a page, platform "web". */
int src_web_crawl(const char *url, const struct src_opts *o, struct src_net *net,
                  struct src_sink *sink, struct tw_err *err);

/* ---- git ---- */

#define GIT_FILE_MAX ((size_t)1 << 20) /* files over 1 MiB are skipped */

/* Imports a git repository (a local path, file:// URL or https URL) as one `code` document per
 * text file at HEAD (url = https://github.com/<owner>/<repo>/blob/<commit>/<path> for GitHub
 * remotes, file://<repo path>/<path>@<commit> otherwise; title = repo/path; platform github).
 * Skipped: binary files (NUL bytes or invalid UTF-8), files over GIT_FILE_MAX, vendored or
 * generated trees (.git, node_modules, vendor, dist, build, third_party, ...), lock files.
 * Remote repositories are cloned (bare) into a temporary directory removed afterwards. */
int src_git_import(const char *url_or_path, const struct src_opts *o, struct src_sink *sink,
                   struct tw_err *err);
/* As src_git_import, naming the documents after 'web_url' (https://github.com/<owner>/<repo>)
 * whatever URL the repository is cloned from (a mirror, a local copy); their source is then
 * 'web_url' too (else 'url_or_path'). NULL: as src_git_import. */
int src_git_import_as(const char *url_or_path, const char *web_url, const struct src_opts *o,
                      struct src_sink *sink, struct tw_err *err);
/* True when the repository path 'path' is skipped by name (vendored tree or lock file). */
bool src_git_path_skipped(const char *path);

/* ---- end of network sources ---- */
#endif
