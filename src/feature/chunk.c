/* chunk.c - splitting cleaned text into chunks within a token budget (see feat.h).
 *
 * A range is split into units at one level (sections, paragraphs, sentences, lines, words,
 * fixed byte pieces); consecutive units are packed greedily into chunks of at most max_tokens;
 * a unit that alone exceeds the budget is split at the next level down. Token counts of packed
 * units are summed: units are cut at whitespace, so for WordPiece and byte-level BPE the sum
 * equals (or closely bounds) the count of the joined text. */
#include "feature/feat.h"

#include "base/mem.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

enum level { L_SECTION, L_PARAGRAPH, L_SENTENCE, L_LINE, L_WORD, L_PIECE };

struct unit {
    size_t start, end;
    int n_tokens;
};

struct chunk_state {
    const struct feat_chunker *c;
    enum feat_kind kind;
    const char *text;
    struct feat_chunk *out;
    size_t n_out, cap;
    int depth;
    struct tw_err *err;
};

struct units {
    struct unit *v;
    size_t n, cap;
};

static int units_add(struct units *u, size_t start, size_t end)
{
    if (end <= start)
        return 0;
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 32;
        struct unit *v = tw_reallocarray(u->v, cap, sizeof(*v));
        if (!v)
            return TW_ENOMEM;
        u->v = v;
        u->cap = cap;
    }
    u->v[u->n++] = (struct unit){start, end, 0};
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void trim(const char *t, size_t *s, size_t *e)
{
    while (*s < *e && is_space(t[*s]))
        (*s)++;
    while (*e > *s && is_space(t[*e - 1]))
        (*e)--;
}

static size_t line_end(const char *t, size_t i, size_t e)
{
    while (i < e && t[i] != '\n')
        i++;
    return i;
}

static bool is_fence(const char *t, size_t i, size_t e)
{
    return e - i >= 3 && !memcmp(t + i, "```", 3);
}

static bool is_heading(const char *t, size_t i, size_t e)
{
    size_t h = i;
    while (h < e && t[h] == '#' && h - i < 6)
        h++;
    return h > i && h < e && t[h] == ' ';
}

static bool is_blank_line(const char *t, size_t i, size_t le)
{
    for (; i < le; i++)
        if (!is_space(t[i]))
            return false;
    return true;
}

/* Sections start at markdown heading lines outside code fences. */
static int split_sections(const char *t, size_t s, size_t e, struct units *u)
{
    size_t i = s, start = s;
    bool fence = false;
    while (i < e) {
        size_t le = line_end(t, i, e);
        if (is_fence(t, i, le))
            fence = !fence;
        else if (!fence && i > start && is_heading(t, i, le)) {
            if (units_add(u, start, i))
                return TW_ENOMEM;
            start = i;
        }
        i = le + 1;
    }
    return units_add(u, start, e);
}

/* Paragraphs are separated by blank lines; a fenced code block stays one paragraph, and a
 * heading stays with the paragraph after it. */
static int split_paragraphs(const char *t, size_t s, size_t e, struct units *u)
{
    size_t i = s, start = s;
    bool fence = false, only_heading = false;
    while (i < e) {
        size_t le = line_end(t, i, e);
        if (is_fence(t, i, le)) {
            fence = !fence;
            only_heading = false;
        } else if (!fence && is_blank_line(t, i, le)) {
            if (only_heading) {
                i = le + 1;
                continue;
            }
            if (units_add(u, start, i))
                return TW_ENOMEM;
            start = le < e ? le + 1 : e;
        } else if (!fence) {
            /* Whether the paragraph so far is just a heading line. */
            only_heading = is_heading(t, i, le) && (i == start || is_blank_line(t, start, i));
        }
        i = le + 1;
    }
    return units_add(u, start, e);
}

static int split_lines(const char *t, size_t s, size_t e, struct units *u)
{
    size_t i = s;
    while (i < e) {
        size_t le = line_end(t, i, e);
        if (units_add(u, i, le < e ? le + 1 : e))
            return TW_ENOMEM;
        i = le + 1;
    }
    return 0;
}

/* Abbreviations after which a period does not end a sentence. */
static bool is_abbrev(const char *t, size_t s, size_t dot)
{
    static const char *const abbr[] = {"e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr",
                                       "prof", "fig", "eq", "no", "cf", "al", "st"};
    size_t w = dot;
    while (w > s && (isalpha((unsigned char)t[w - 1]) || t[w - 1] == '.'))
        w--;
    for (size_t k = 0; k < sizeof(abbr) / sizeof(abbr[0]); k++) {
        size_t n = strlen(abbr[k]);
        if (dot - w == n && !strncasecmp(t + w, abbr[k], n))
            return true;
    }
    /* A single capital letter ("J. Smith") is an initial. */
    return dot - w == 1 && isupper((unsigned char)t[w]);
}

/* Sentences end at . ! ? (then closing quotes or brackets) followed by whitespace and a
 * capital, digit, quote or bracket; a line break inside a paragraph also ends one (lists). */
static int split_sentences(const char *t, size_t s, size_t e, struct units *u)
{
    size_t i = s, start = s;
    while (i < e) {
        char ch = t[i];
        if (ch == '\n') {
            if (units_add(u, start, i + 1))
                return TW_ENOMEM;
            start = i + 1;
        } else if (ch == '.' || ch == '!' || ch == '?') {
            size_t j = i + 1, k;
            while (j < e && strchr("\"')]", t[j]))
                j++;
            k = j;
            while (k < e && (t[k] == ' ' || t[k] == '\t'))
                k++;
            if (k > j && k < e &&
                (isupper((unsigned char)t[k]) || isdigit((unsigned char)t[k]) ||
                 strchr("\"'([", t[k]) || (unsigned char)t[k] >= 0x80) &&
                !(ch == '.' && is_abbrev(t, start, i))) {
                if (units_add(u, start, k))
                    return TW_ENOMEM;
                start = k;
                i = k;
                continue;
            }
        }
        i++;
    }
    return units_add(u, start, e);
}

static int split_words(const char *t, size_t s, size_t e, struct units *u)
{
    size_t i = s;
    while (i < e) {
        size_t w = i;
        while (w < e && !is_space(t[w]))
            w++;
        while (w < e && is_space(t[w]))
            w++;
        if (units_add(u, i, w))
            return TW_ENOMEM;
        i = w;
    }
    return 0;
}

/* Fixed pieces of 32 bytes, cut on UTF-8 character boundaries (a giant "word"). */
static int split_pieces(const char *t, size_t s, size_t e, struct units *u)
{
    size_t i = s;
    while (i < e) {
        size_t w = i + 32 < e ? i + 32 : e;
        while (w < e && w > i + 1 && ((unsigned char)t[w] & 0xc0) == 0x80)
            w--;
        if (units_add(u, i, w))
            return TW_ENOMEM;
        i = w;
    }
    return 0;
}

static enum level next_level(enum feat_kind kind, enum level lv)
{
    if (kind == FEAT_CODE) {
        /* code: blocks (paragraph level), then lines, then words */
        if (lv == L_PARAGRAPH)
            return L_LINE;
        return lv == L_LINE ? L_WORD : L_PIECE;
    }
    if (lv == L_SENTENCE)
        return L_WORD;
    return (enum level)(lv + 1);
}

static int split_at(enum level lv, const char *t, size_t s, size_t e, struct units *u)
{
    switch (lv) {
    case L_SECTION: return split_sections(t, s, e, u);
    case L_PARAGRAPH: return split_paragraphs(t, s, e, u);
    case L_SENTENCE: return split_sentences(t, s, e, u);
    case L_LINE: return split_lines(t, s, e, u);
    case L_WORD: return split_words(t, s, e, u);
    default: return split_pieces(t, s, e, u);
    }
}

static int emit(struct chunk_state *st, size_t s, size_t e, int n_tokens)
{
    trim(st->text, &s, &e);
    if (e <= s)
        return 0;
    if (st->n_out == FEAT_MAX_CHUNKS)
        return tw_errf(st->err, TW_ELIMIT, "more than %d chunks in one document",
                       FEAT_MAX_CHUNKS);
    if (st->n_out == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 16;
        struct feat_chunk *v = tw_reallocarray(st->out, cap, sizeof(*v));
        if (!v)
            return tw_errf(st->err, TW_ENOMEM, "out of memory chunking");
        st->out = v;
        st->cap = cap;
    }
    st->out[st->n_out++] = (struct feat_chunk){s, e, n_tokens};
    return 0;
}

static int count(struct chunk_state *st, size_t s, size_t e)
{
    int n = st->c->count(st->c->count_ctx, st->text + s, e - s);
    if (n < 0)
        return tw_errf(st->err, n, "counting tokens failed");
    return n;
}

static int chunk_range(struct chunk_state *st, size_t s, size_t e, enum level lv);

/* Packs units [0, n) greedily; returns 0 or an error. */
static int pack(struct chunk_state *st, struct units *u, enum level lv)
{
    const int budget = st->c->max_tokens;
    const int overlap = lv == L_SECTION ? 0 : st->c->overlap_tokens;
    size_t i = 0;
    int rc;

    while (i < u->n) {
        size_t j = i;
        int sum = 0;
        if (u->v[i].n_tokens > budget) {
            /* A unit too big alone goes one level down. */
            if ((rc = chunk_range(st, u->v[i].start, u->v[i].end, next_level(st->kind, lv))))
                return rc;
            i++;
            continue;
        }
        while (j < u->n && u->v[j].n_tokens <= budget && sum + u->v[j].n_tokens <= budget)
            sum += u->v[j++].n_tokens;
        if ((rc = emit(st, u->v[i].start, u->v[j - 1].end, sum)))
            return rc;
        if (j >= u->n || overlap <= 0 || u->v[j].n_tokens > budget) {
            i = j;
            continue;
        }
        /* Start the next chunk with trailing units of this one, up to 'overlap' tokens, while
         * leaving room for at least the next unit and always moving forward. */
        {
            size_t k = j;
            int ov = 0;
            while (k > i + 1 && ov + u->v[k - 1].n_tokens <= overlap &&
                   ov + u->v[k - 1].n_tokens + u->v[j].n_tokens <= budget)
                ov += u->v[--k].n_tokens;
            i = k;
        }
    }
    return 0;
}

static int chunk_range(struct chunk_state *st, size_t s, size_t e, enum level lv)
{
    struct units u = {0};
    int rc = 0;

    trim(st->text, &s, &e);
    if (e <= s)
        return 0;
    if (++st->depth > 16) {
        rc = tw_errf(st->err, TW_EINTERNAL, "chunking recursed too deep");
        goto out;
    }
    if ((rc = split_at(lv, st->text, s, e, &u))) {
        rc = tw_errf(st->err, rc, "out of memory chunking");
        goto out;
    }
    for (size_t i = 0; i < u.n; i++) {
        size_t a = u.v[i].start, b = u.v[i].end;
        trim(st->text, &a, &b);
        if (b <= a) {
            u.v[i].n_tokens = 0;
            continue;
        }
        if ((u.v[i].n_tokens = count(st, a, b)) < 0) {
            rc = u.v[i].n_tokens;
            goto out;
        }
    }
    rc = pack(st, &u, lv);
out:
    st->depth--;
    tw_free(u.v);
    return rc;
}

int feat_chunk(const struct feat_chunker *c, enum feat_kind kind, const char *text, size_t len,
               struct feat_chunk **out, size_t *n_out, struct tw_err *err)
{
    struct chunk_state st = {c, kind, text, NULL, 0, 0, 0, err};
    enum level first;
    int rc, total;

    *out = NULL;
    *n_out = 0;
    if (c->max_tokens < 8 || c->overlap_tokens < 0 || c->overlap_tokens >= c->max_tokens)
        return tw_errf(err, TW_EINVAL, "chunk budget %d with overlap %d: need budget >= 8 and "
                       "overlap below it", c->max_tokens, c->overlap_tokens);
    if (kind == FEAT_POST) {
        size_t s = 0, e = len;
        trim(text, &s, &e);
        if (e <= s)
            return 0;
        /* A post is one chunk unless it is over budget. */
        if ((total = count(&st, s, e)) < 0)
            return total;
        if (total <= c->max_tokens) {
            rc = emit(&st, s, e, total);
            goto done;
        }
        first = L_PARAGRAPH;
    } else {
        first = kind == FEAT_CODE ? L_PARAGRAPH : L_SECTION;
    }
    rc = chunk_range(&st, 0, len, first);
done:
    if (rc) {
        tw_free(st.out);
        return rc;
    }
    *out = st.out;
    *n_out = st.n_out;
    return 0;
}

int feat_count_approx(void *ctx, const char *text, size_t len)
{
    size_t i = 0;
    long n = 0;
    (void)ctx;
    while (i < len) {
        size_t w;
        while (i < len && is_space(text[i]))
            i++;
        w = i;
        while (i < len && !is_space(text[i]))
            i++;
        if (i > w)
            n += (long)((i - w + 3) / 4);
    }
    return n > 1000000000 ? 1000000000 : (int)n;
}
