/* robots.c - robots.txt parsing and matching (RFC 9309).
 *
 * Groups start with one or more User-agent lines and hold Allow/Disallow rules. We keep the
 * rules of every group that names our product token; if none does, those of the '*' groups.
 * A path is checked against every kept rule: the longest matching pattern wins, Allow wins a tie,
 * and no match means allowed. Patterns support '*' (any run of bytes) and a final '$' (end).
 */
#include "collect/collect.h"

#include "base/mem.h"

#include <ctype.h>
#include <string.h>

#define ROBOTS_RULES_MAX 4096
#define ROBOTS_PATTERN_MAX 2048
#define ROBOTS_DELAY_MAX_MS 60000L

struct robots_rule {
    char *pattern;
    size_t len; // pattern length (the specificity)
    int allow;
};

struct robots {
    struct robots_rule *rules;
    size_t n_rules;
    int all;           // -1: use rules; 0: disallow everything; 1: allow everything
    long crawl_delay_ms; // Crawl-delay of the chosen groups (not in RFC 9309, widely used), 0
};

int robots_new_all(int allow, struct robots **out, struct tw_err *err)
{
    *out = tw_calloc(1, sizeof(**out));
    if (!*out)
        return tw_errf(err, TW_ENOMEM, "out of memory creating robots rules");
    (*out)->all = allow ? 1 : 0;
    return TW_OK;
}

void robots_free(struct robots *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_rules; i++)
        tw_free(r->rules[i].pattern);
    tw_free(r->rules);
    tw_free(r);
}

/* Does the User-agent value 'ua' name 'agent'? RFC 9309: case-insensitive match of the
 * product token; we accept the value being a prefix-compatible token ("twin", "twin/0.1"). */
static int agent_matches(const char *ua, size_t ua_len, const char *agent)
{
    size_t n = strlen(agent);
    size_t tok = 0;
    while (tok < ua_len && (isalnum((unsigned char)ua[tok]) || ua[tok] == '-' || ua[tok] == '_'))
        tok++;
    if (tok == 0 || tok != n)
        return 0;
    return strncasecmp(ua, agent, n) == 0;
}

struct robots_parse_state {
    struct robots_rule *mine, *star;
    size_t n_mine, n_star;
    int in_agents;   // the previous directive was a User-agent line
    int grp_mine;    // the current group names our agent
    int grp_star;    // the current group names '*'
    int found_mine;  // some group names our agent (then '*' groups do not apply, even if ours
                     // has no rules)
    long delay_mine, delay_star; // Crawl-delay in ms, 0 if none
    int err;
};

static void add_rule(struct robots_parse_state *st, int allow, const char *v, size_t len)
{
    struct robots_rule **arr;
    size_t *n;
    if (st->err)
        return;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0 && !st->grp_mine)
            continue;
        if (pass == 1 && !st->grp_star)
            continue;
        arr = pass == 0 ? &st->mine : &st->star;
        n = pass == 0 ? &st->n_mine : &st->n_star;
        if (*n >= ROBOTS_RULES_MAX)
            continue;
        if ((*n & (*n - 1)) == 0) { /* grow at powers of two */
            struct robots_rule *p = tw_reallocarray(*arr, *n ? *n * 2 : 8, sizeof(**arr));
            if (!p) {
                st->err = TW_ENOMEM;
                return;
            }
            *arr = p;
        }
        (*arr)[*n].pattern = tw_strndup(v, len);
        if (!(*arr)[*n].pattern) {
            st->err = TW_ENOMEM;
            return;
        }
        (*arr)[*n].len = len;
        (*arr)[*n].allow = allow;
        ++*n;
    }
}

static void parse_line(struct robots_parse_state *st, const char *line, size_t len,
                       const char *agent)
{
    const char *colon = memchr(line, ':', len);
    const char *k = line, *v;
    size_t klen, vlen;
    if (!colon)
        return;
    klen = (size_t)(colon - line);
    while (klen && isspace((unsigned char)k[klen - 1]))
        klen--;
    while (klen && isspace((unsigned char)*k))
        k++, klen--;
    v = colon + 1;
    vlen = len - (size_t)(v - line);
    while (vlen && isspace((unsigned char)*v))
        v++, vlen--;
    while (vlen && isspace((unsigned char)v[vlen - 1]))
        vlen--;
    if (klen == 10 && !strncasecmp(k, "user-agent", 10)) {
        if (!st->in_agents) {
            st->grp_mine = st->grp_star = 0;
            st->in_agents = 1;
        }
        if (vlen == 1 && v[0] == '*')
            st->grp_star = 1;
        else if (agent_matches(v, vlen, agent))
            st->grp_mine = st->found_mine = 1;
        return;
    }
    if (klen == 11 && !strncasecmp(k, "crawl-delay", 11)) {
        /* seconds, possibly fractional; capped at ROBOTS_DELAY_MAX_MS */
        long ms = 0;
        size_t i = 0;
        st->in_agents = 0;
        while (i < vlen && isdigit((unsigned char)v[i]) && ms <= ROBOTS_DELAY_MAX_MS)
            ms = ms * 10 + (v[i++] - '0');
        ms *= 1000;
        if (i < vlen && v[i] == '.') {
            long scale = 100;
            for (i++; i < vlen && isdigit((unsigned char)v[i]) && scale; i++, scale /= 10)
                ms += (v[i] - '0') * scale;
        }
        if (ms > ROBOTS_DELAY_MAX_MS)
            ms = ROBOTS_DELAY_MAX_MS;
        if (st->grp_mine)
            st->delay_mine = ms;
        if (st->grp_star)
            st->delay_star = ms;
        return;
    }
    if ((klen == 5 && !strncasecmp(k, "allow", 5)) ||
        (klen == 8 && !strncasecmp(k, "disallow", 8))) {
        st->in_agents = 0;
        /* An empty Disallow allows everything: it adds no rule. */
        if (vlen == 0 || vlen > ROBOTS_PATTERN_MAX)
            return;
        add_rule(st, klen == 5, v, vlen);
        return;
    }
    /* Other directives (sitemap, crawl-delay) end a run of User-agent lines too. */
    st->in_agents = 0;
}

static void free_rules(struct robots_rule *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tw_free(r[i].pattern);
    tw_free(r);
}

int robots_parse(const char *text, size_t len, const char *agent, struct robots **out,
                 struct tw_err *err)
{
    struct robots_parse_state st = {0};
    struct robots *r;
    size_t i = 0;

    *out = NULL;
    if (len > ROBOTS_MAX)
        len = ROBOTS_MAX; /* RFC 9309 §2.5: parse at least 500 KiB, ignore the rest */
    while (i < len && !st.err) {
        size_t s = i, e;
        while (i < len && text[i] != '\n' && text[i] != '\r')
            i++;
        e = i;
        for (size_t j = s; j < e; j++) {
            if (text[j] == '#') {
                e = j;
                break;
            }
        }
        if (e > s)
            parse_line(&st, text + s, e - s, agent);
        while (i < len && (text[i] == '\n' || text[i] == '\r'))
            i++;
    }
    if (st.err) {
        free_rules(st.mine, st.n_mine);
        free_rules(st.star, st.n_star);
        return tw_errf(err, TW_ENOMEM, "out of memory parsing robots.txt");
    }
    r = tw_calloc(1, sizeof(*r));
    if (!r) {
        free_rules(st.mine, st.n_mine);
        free_rules(st.star, st.n_star);
        return tw_errf(err, TW_ENOMEM, "out of memory parsing robots.txt");
    }
    r->all = -1;
    if (st.found_mine) {
        r->rules = st.mine;
        r->n_rules = st.n_mine;
        r->crawl_delay_ms = st.delay_mine;
        free_rules(st.star, st.n_star);
    } else {
        r->rules = st.star;
        r->n_rules = st.n_star;
        r->crawl_delay_ms = st.delay_star;
        free_rules(st.mine, st.n_mine);
    }
    *out = r;
    return TW_OK;
}

/* Matches pattern p[0..plen) against the start of path s (the whole of s if it ends in '$').
 * Iterative with one backtrack point per '*', linear enough for bounded patterns. */
static int pattern_matches(const char *p, size_t plen, const char *s)
{
    size_t pi = 0, si = 0, slen = strlen(s);
    size_t star_p = (size_t)-1, star_s = 0;
    int anchored = plen > 0 && p[plen - 1] == '$';
    if (anchored)
        plen--;
    for (;;) {
        if (pi == plen) {
            if (!anchored || si == slen)
                return 1;
        } else if (p[pi] == '*') {
            star_p = pi++;
            star_s = si;
            continue;
        } else if (si < slen && p[pi] == s[si]) {
            pi++;
            si++;
            continue;
        }
        if (star_p == (size_t)-1 || star_s >= slen)
            return 0;
        pi = star_p + 1;
        si = ++star_s;
    }
}

long robots_crawl_delay_ms(const struct robots *r)
{
    return r ? r->crawl_delay_ms : 0;
}

bool robots_allowed(const struct robots *r, const char *path)
{
    size_t best = 0;
    int best_allow = 1, found = 0;
    if (!r || r->all == 1)
        return true;
    if (r->all == 0)
        return false;
    if (!path || !*path)
        path = "/";
    /* /robots.txt itself is always allowed (RFC 9309 §2.2.2). */
    if (!strcmp(path, "/robots.txt"))
        return true;
    for (size_t i = 0; i < r->n_rules; i++) {
        const struct robots_rule *ru = &r->rules[i];
        if (!pattern_matches(ru->pattern, ru->len, path))
            continue;
        if (!found || ru->len > best || (ru->len == best && ru->allow)) {
            best = ru->len;
            best_allow = ru->allow;
            found = 1;
        }
    }
    return best_allow != 0;
}
