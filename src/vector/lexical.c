/* lexical.c - the English analyzer, the FTS5 "twin" tokenizer and MATCH-expression building. */
#include "vector/lexical.h"

#include "base/mem.h"

#include <math.h>
#include <string.h>
#include <utf8proc.h>

/* ---- stop words ---- */

/* Lucene's English stop set plus the question and auxiliary words that carry no topic in
 * queries ("what", "how", "which", "can", "been" ...). Sorted for bsearch. */
static const char *const stop_words[] = {
    "a",     "about", "all",   "also",  "am",    "an",    "and",   "any",   "are",   "as",
    "at",    "be",    "been",  "being", "but",   "by",    "can",   "could", "did",   "do",
    "does",  "for",   "from",  "had",   "has",   "have",  "having", "he",   "her",   "his",
    "how",   "i",     "if",    "in",    "into",  "is",    "it",    "its",   "may",   "might",
    "must",  "no",    "not",   "of",    "on",    "or",    "our",   "shall", "she",   "should",
    "so",    "some",  "such",  "than",  "that",  "the",   "their", "them",  "then",  "there",
    "these", "they",  "this",  "those", "to",    "under", "upon",  "was",   "we",    "were",
    "what",  "when",  "where", "which", "while", "who",   "whom",  "why",   "will",  "with",
    "would", "you",   "your",
};

static int stop_cmp(const void *key, const void *elem)
{
    return strcmp((const char *)key, *(const char *const *)elem);
}

bool lex_is_stopword(const char *w, size_t len)
{
    char tmp[16];
    if (len >= sizeof(tmp))
        return false;
    memcpy(tmp, w, len);
    tmp[len] = '\0';
    return bsearch(tmp, stop_words, sizeof(stop_words) / sizeof(stop_words[0]),
                   sizeof(stop_words[0]), stop_cmp) != NULL;
}

/* ---- analyzer ---- */

static bool is_word_cp(utf8proc_int32_t cp)
{
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return true;
    default:
        return false;
    }
}

static bool is_apostrophe(utf8proc_int32_t cp)
{
    return cp == '\'' || cp == 0x2019;
}

/* Decodes one code point at s[i]; returns its length (>= 1) and *cp (-1 if invalid). */
static size_t next_cp(const char *s, size_t len, size_t i, utf8proc_int32_t *cp)
{
    utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                          (utf8proc_ssize_t)(len - i), cp);
    if (n <= 0) {
        *cp = -1;
        return 1;
    }
    return (size_t)n;
}

/* Emits the word s[start, end): lowercase, possessive and apostrophes removed, stop words
 * dropped, Porter-stemmed if ASCII. */
static int emit_word(const char *s, size_t start, size_t end, lex_term_fn fn, void *ctx)
{
    char term[LEX_TERM_MAX + 8];
    size_t n = 0, i = start;

    while (i < end) {
        utf8proc_int32_t cp;
        utf8proc_uint8_t enc[4];
        size_t step = next_cp(s, end, i, &cp);
        utf8proc_ssize_t elen;
        i += step;
        if (cp < 0)
            continue;
        if (is_apostrophe(cp)) {
            /* "wing's" -> "wing": a final 's after an apostrophe is the possessive. */
            if (i < end && (s[i] == 's' || s[i] == 'S') && i + 1 == end)
                break;
            continue;
        }
        elen = utf8proc_encode_char(utf8proc_tolower(cp), enc);
        if (n + (size_t)elen > LEX_TERM_MAX)
            break;
        memcpy(term + n, enc, (size_t)elen);
        n += (size_t)elen;
    }
    if (n == 0 || lex_is_stopword(term, n))
        return 0;
    lex_porter_stem(term, &n);
    return fn(ctx, term, n, start, end);
}

int lex_analyze(const char *text, size_t len, lex_term_fn fn, void *ctx)
{
    size_t i = 0, word_start = 0;
    bool in_word = false;
    int rc;

    while (i < len) {
        utf8proc_int32_t cp;
        size_t step = next_cp(text, len, i, &cp);
        bool w = cp >= 0 && is_word_cp(cp);
        /* An apostrophe inside a word ("don't", "wing's") belongs to it. */
        if (!w && in_word && cp >= 0 && is_apostrophe(cp) && i + step < len) {
            utf8proc_int32_t nx;
            next_cp(text, len, i + step, &nx);
            w = nx >= 0 && is_word_cp(nx);
        }
        if (w && !in_word) {
            word_start = i;
            in_word = true;
        } else if (!w && in_word) {
            in_word = false;
            if ((rc = emit_word(text, word_start, i, fn, ctx)) != 0)
                return rc;
        }
        i += step;
    }
    if (in_word)
        return emit_word(text, word_start, len, fn, ctx);
    return 0;
}

/* ---- FTS5 tokenizer ---- */

struct fts_call {
    void *ctx;
    int (*token)(void *, int, const char *, int, int, int);
};

static int fts_term(void *ctx, const char *term, size_t term_len, size_t start, size_t end)
{
    struct fts_call *c = ctx;
    return c->token(c->ctx, 0, term, (int)term_len, (int)start, (int)end);
}

static int fts_create(void *ctx, const char **argv, int argc, Fts5Tokenizer **out)
{
    (void)argv;
    (void)argc;
    /* The tokenizer has no per-table state: any non-NULL handle will do. */
    *out = (Fts5Tokenizer *)ctx;
    return SQLITE_OK;
}

static void fts_delete(Fts5Tokenizer *t)
{
    (void)t;
}

static int fts_tokenize(Fts5Tokenizer *t, void *ctx, int flags, const char *text, int n_text,
                        int (*token)(void *, int, const char *, int, int, int))
{
    struct fts_call c = {ctx, token};
    (void)t;
    (void)flags;
    if (n_text <= 0)
        return SQLITE_OK;
    return lex_analyze(text, (size_t)n_text, fts_term, &c);
}

static fts5_api *fts5_api_of(sqlite3 *db)
{
    fts5_api *api = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
    sqlite3_step(st);
    sqlite3_finalize(st);
    return api;
}

/* ---- BM25F ranking ---- */

#define BM25F_MAX_COLS 8
#define BM25F_MAX_PHRASES 64

/* Per-query statistics, computed on the first row and cached as FTS5 auxdata. */
struct bm25f_query {
    int n_phrase, n_col;
    double idf[BM25F_MAX_PHRASES];
    double avg_len[BM25F_MAX_COLS];
};

static int count_hit(const Fts5ExtensionApi *api, Fts5Context *fts, void *ctx)
{
    (void)api;
    (void)fts;
    ++*(sqlite3_int64 *)ctx;
    return SQLITE_OK;
}

static int bm25f_prepare(const Fts5ExtensionApi *api, Fts5Context *fts, struct bm25f_query **out)
{
    struct bm25f_query *q = api->xGetAuxdata(fts, 0);
    sqlite3_int64 n_rows = 0;
    int rc;

    if (q) {
        *out = q;
        return SQLITE_OK;
    }
    q = sqlite3_malloc(sizeof(*q));
    if (!q)
        return SQLITE_NOMEM;
    memset(q, 0, sizeof(*q));
    q->n_phrase = api->xPhraseCount(fts);
    q->n_col = api->xColumnCount(fts);
    if (q->n_phrase > BM25F_MAX_PHRASES)
        q->n_phrase = BM25F_MAX_PHRASES;
    if (q->n_col > BM25F_MAX_COLS)
        q->n_col = BM25F_MAX_COLS;
    if ((rc = api->xRowCount(fts, &n_rows)) != SQLITE_OK)
        goto fail;
    for (int c = 0; c < q->n_col; c++) {
        sqlite3_int64 total = 0;
        if ((rc = api->xColumnTotalSize(fts, c, &total)) != SQLITE_OK)
            goto fail;
        q->avg_len[c] = n_rows > 0 ? (double)total / (double)n_rows : 1.0;
        if (q->avg_len[c] <= 0)
            q->avg_len[c] = 1.0;
    }
    for (int p = 0; p < q->n_phrase; p++) {
        sqlite3_int64 hits = 0;
        double idf;
        if ((rc = api->xQueryPhrase(fts, p, &hits, count_hit)) != SQLITE_OK)
            goto fail;
        /* Robertson-Sparck Jones IDF as FTS5's bm25() computes it, kept positive. */
        idf = log(((double)n_rows - (double)hits + 0.5) / ((double)hits + 0.5));
        q->idf[p] = idf > 1e-6 ? idf : 1e-6;
    }
    if ((rc = api->xSetAuxdata(fts, q, sqlite3_free)) != SQLITE_OK)
        return rc; /* xSetAuxdata frees q on failure */
    *out = q;
    return SQLITE_OK;
fail:
    sqlite3_free(q);
    return rc;
}

/* twin_bm25f(fts, k1, b, w_col0, w_col1, ...): BM25F (Robertson, Zaragoza & Taylor 2004). Term
 * frequencies are length-normalized per column, weighted, summed across columns, and only then
 * saturated; FTS5's bm25() instead saturates each column apart and sums the scores, which lets
 * a term repeated in a short title count twice. Higher is better. */
static void bm25f_func(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx,
                       int n_arg, sqlite3_value **args)
{
    struct bm25f_query *q;
    double k1 = n_arg > 0 ? sqlite3_value_double(args[0]) : 1.2;
    double b = n_arg > 1 ? sqlite3_value_double(args[1]) : 0.75;
    double w[BM25F_MAX_COLS], norm[BM25F_MAX_COLS], tf[BM25F_MAX_PHRASES] = {0};
    double score = 0;
    int rc, n_inst = 0;

    if ((rc = bm25f_prepare(api, fts, &q)) != SQLITE_OK) {
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    for (int c = 0; c < q->n_col; c++) {
        int len = 0;
        w[c] = n_arg > 2 + c ? sqlite3_value_double(args[2 + c]) : 1.0;
        if ((rc = api->xColumnSize(fts, c, &len)) != SQLITE_OK) {
            sqlite3_result_error_code(ctx, rc);
            return;
        }
        norm[c] = 1.0 - b + b * (double)len / q->avg_len[c];
    }
    if ((rc = api->xInstCount(fts, &n_inst)) != SQLITE_OK) {
        sqlite3_result_error_code(ctx, rc);
        return;
    }
    for (int i = 0; i < n_inst; i++) {
        int p, c, off;
        if (api->xInst(fts, i, &p, &c, &off) != SQLITE_OK)
            continue;
        if (p < q->n_phrase && c < q->n_col)
            tf[p] += w[c] / norm[c];
    }
    for (int p = 0; p < q->n_phrase; p++)
        if (tf[p] > 0)
            score += q->idf[p] * tf[p] * (k1 + 1.0) / (tf[p] + k1);
    sqlite3_result_double(ctx, score);
}

static char tokenizer_tag;

int lex_register(sqlite3 *db, struct tw_err *err)
{
    static fts5_tokenizer tok = {fts_create, fts_delete, fts_tokenize};
    fts5_api *api = fts5_api_of(db);
    int rc;

    if (!api || api->iVersion < 2)
        return tw_errf(err, TW_EUNSUP, "this SQLite has no FTS5 (needed for the lexical index)");
    rc = api->xCreateTokenizer(api, "twin", &tokenizer_tag, &tok, NULL);
    if (rc != SQLITE_OK)
        return tw_errf(err, TW_EDB, "registering the FTS5 tokenizer 'twin': %s",
                       sqlite3_errstr(rc));
    rc = api->xCreateFunction(api, "twin_bm25f", NULL, bm25f_func, NULL);
    if (rc != SQLITE_OK)
        return tw_errf(err, TW_EDB, "registering the FTS5 function 'twin_bm25f': %s",
                       sqlite3_errstr(rc));
    return 0;
}

/* ---- query building ---- */

#define MATCH_MAX_WORDS 64

struct match_ctx {
    const char *query;
    struct tw_buf *out;
    char terms[MATCH_MAX_WORDS][LEX_TERM_MAX + 1];
    int n_terms;
    bool truncated;
};

static int match_term(void *vctx, const char *term, size_t term_len, size_t start, size_t end)
{
    struct match_ctx *m = vctx;
    for (int i = 0; i < m->n_terms; i++)
        if (strlen(m->terms[i]) == term_len && !memcmp(m->terms[i], term, term_len))
            return 0; /* same term as an earlier word */
    if (m->n_terms == MATCH_MAX_WORDS) {
        m->truncated = true;
        return 0;
    }
    memcpy(m->terms[m->n_terms], term, term_len);
    m->terms[m->n_terms++][term_len] = '\0';
    if (m->n_terms > 1)
        tw_buf_puts(m->out, " OR ");
    /* The raw word, quoted (FTS5 doubles quotes inside strings); FTS5 analyzes it again with
     * the same tokenizer, which gives exactly 'term' back. */
    tw_buf_putc(m->out, '"');
    for (size_t i = start; i < end; i++) {
        if (m->query[i] == '"')
            tw_buf_putc(m->out, '"');
        tw_buf_putc(m->out, m->query[i]);
    }
    tw_buf_putc(m->out, '"');
    return 0;
}

int lex_build_match(const char *query, size_t len, struct tw_buf *out)
{
    struct match_ctx *m = tw_calloc(1, sizeof(*m));
    int rc;
    if (!m)
        return TW_ENOMEM;
    m->query = query;
    m->out = out;
    lex_analyze(query, len, match_term, m);
    rc = out->err ? out->err : m->n_terms == 0 ? TW_ENOENT : m->truncated ? TW_ELIMIT : 0;
    tw_free(m);
    return rc;
}
