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

/* ---- end of local sources ---- */

/* ---- network sources: http, feeds, crawlers, git (src/collect/{http,feed,crawl,github,git}.c) */

/* Imports a git repository (a local path, file:// URL or https URL) as one `code` document per
 * text file (url = blob URL at the commit, title = repo/path). */
int src_git_import(const char *url_or_path, const struct src_opts *o, struct src_sink *sink,
                   struct tw_err *err);

/* ---- end of network sources ---- */
#endif
