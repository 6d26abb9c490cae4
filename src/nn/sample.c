/* sample.c - token sampling (penalties, top-k, top-p, min-p, temperature) and stop strings. */
#include "nn/sample.h"

#include "base/rng.h"

#include "base/mem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLER_MAX_VOCAB (1 << 24)
#define SAMPLER_MAX_WINDOW (1 << 20)

struct cand {
    int32_t id;
    float logit;
};

struct llm_sampler {
    struct llm_sampler_params p;
    int n_vocab;
    struct cand *cand;  // (n_vocab) scratch
    int32_t *counts;    // (n_vocab) occurrences of each id in the window
    int32_t *window;    // (penalty_last_n) ring of the last accepted ids
    int n_window;       // ids in the ring
    int window_head;    // next slot to write
    struct llm_rng rng;
};

/* ---- PRNG: splitmix64 seeding xoshiro256** (base/rng.h) ---- */

void llm_rng_seed(struct llm_rng *r, uint64_t seed)
{
    tw_rng_seed(r->s, seed);
}

uint64_t llm_rng_next(struct llm_rng *r)
{
    return tw_rng_next(r->s);
}

double llm_rng_uniform(struct llm_rng *r)
{
    return (double)(llm_rng_next(r) >> 11) * 0x1.0p-53;
}

/* ---- sampler ---- */

int llm_sampler_new(const struct llm_sampler_params *p, int n_vocab, struct llm_sampler **out,
                    struct tw_err *err)
{
    struct llm_sampler *s;

    *out = NULL;
    if (n_vocab < 1 || n_vocab > SAMPLER_MAX_VOCAB)
        return tw_errf(err, TW_EINVAL, "sampler: vocabulary size %d out of range [1, %d]", n_vocab,
                       SAMPLER_MAX_VOCAB);
    if (!(p->temp == p->temp) || p->temp > 1e6f)
        return tw_errf(err, TW_EINVAL, "sampler: temperature %g is not a usable number",
                       (double)p->temp);
    if (!(p->top_p >= 0.0f) || p->top_p > 1e6f)
        return tw_errf(err, TW_EINVAL, "sampler: top-p %g must be in [0, 1]", (double)p->top_p);
    if (!(p->min_p >= 0.0f) || p->min_p > 1.0f)
        return tw_errf(err, TW_EINVAL, "sampler: min-p %g must be in [0, 1]", (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f) || p->repeat_penalty > 1e6f)
        return tw_errf(err, TW_EINVAL, "sampler: repeat penalty %g must be > 0",
                       (double)p->repeat_penalty);
    if (!isfinite(p->freq_penalty) || !isfinite(p->presence_penalty))
        return tw_errf(err, TW_EINVAL, "sampler: frequency/presence penalties must be finite");
    if (p->penalty_last_n < 0 || p->penalty_last_n > SAMPLER_MAX_WINDOW)
        return tw_errf(err, TW_EINVAL, "sampler: penalty window %d out of range [0, %d]",
                       p->penalty_last_n, SAMPLER_MAX_WINDOW);
    s = tw_calloc(1, sizeof(*s));
    if (!s)
        return tw_errf(err, TW_ENOMEM, "out of memory making a sampler");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->cand = tw_mallocarray((size_t)n_vocab, sizeof(*s->cand));
    s->counts = tw_calloc((size_t)n_vocab, sizeof(*s->counts));
    s->window = tw_mallocarray((size_t)p->penalty_last_n + 1, sizeof(*s->window));
    if (!s->cand || !s->counts || !s->window) {
        llm_sampler_free(s);
        return tw_errf(err, TW_ENOMEM, "out of memory making a sampler for %d tokens", n_vocab);
    }
    llm_rng_seed(&s->rng, p->seed);
    *out = s;
    return TW_OK;
}

void llm_sampler_free(struct llm_sampler *s)
{
    if (!s)
        return;
    tw_free(s->cand);
    tw_free(s->counts);
    tw_free(s->window);
    tw_free(s);
}

void llm_sampler_reset(struct llm_sampler *s)
{
    memset(s->counts, 0, (size_t)s->n_vocab * sizeof(*s->counts));
    s->n_window = 0;
    s->window_head = 0;
    llm_rng_seed(&s->rng, s->p.seed);
}

void llm_sampler_accept(struct llm_sampler *s, int32_t id)
{
    int cap = s->p.penalty_last_n;

    if (cap == 0 || id < 0 || id >= s->n_vocab)
        return;
    if (s->n_window == cap) {
        int32_t old = s->window[s->window_head]; // the oldest id sits where we write next
        s->counts[old]--;
    } else {
        s->n_window++;
    }
    s->window[s->window_head] = id;
    s->counts[id]++;
    s->window_head = (s->window_head + 1) % cap;
}

int32_t llm_argmax(const float *logits, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

/* Higher logit first; the lower id wins a tie, so results do not depend on sort stability. */
static int cand_before(const struct cand *a, const struct cand *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cand_cmp(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    return cand_before(a, b) ? -1 : cand_before(b, a) ? 1 : 0;
}

/* Keeps the k best of c[0..n) in c[0..k), sorted, with a min-heap of size k: O(n log k). */
static int cand_top_k(struct cand *c, int n, int k)
{
    for (int i = 0; i < n; i++) {
        int j;
        struct cand x = c[i];
        if (i < k) { // sift up: the heap root is the worst kept candidate
            j = i;
            while (j > 0 && cand_before(&c[(j - 1) / 2], &x)) {
                c[j] = c[(j - 1) / 2];
                j = (j - 1) / 2;
            }
            c[j] = x;
            continue;
        }
        if (!cand_before(&x, &c[0]))
            continue;
        j = 0; // sift down from the root
        for (;;) {
            int l = 2 * j + 1, r = l + 1, w = j;
            const struct cand *wc = &x;
            if (l < k && cand_before(wc, &c[l]))
                w = l, wc = &c[l];
            if (r < k && cand_before(wc, &c[r]))
                w = r;
            if (w == j)
                break;
            c[j] = c[w];
            j = w;
        }
        c[j] = x;
    }
    qsort(c, (size_t)k, sizeof(*c), cand_cmp);
    return k;
}

static void apply_penalties(struct llm_sampler *s, struct cand *c)
{
    const struct llm_sampler_params *p = &s->p;

    if (s->n_window == 0 || (p->repeat_penalty == 1.0f && p->freq_penalty == 0.0f &&
                             p->presence_penalty == 0.0f))
        return;
    for (int i = 0; i < s->n_window; i++) {
        int32_t id = s->window[i];
        int32_t n = s->counts[id];
        if (n <= 0) // already penalized through an earlier slot holding the same id
            continue;
        float l = c[id].logit;
        l = l <= 0 ? l * p->repeat_penalty : l / p->repeat_penalty;
        l -= (float)n * p->freq_penalty + p->presence_penalty;
        c[id].logit = l;
        s->counts[id] = -n; // mark done; restored below
    }
    for (int i = 0; i < s->n_window; i++) {
        int32_t id = s->window[i];
        if (s->counts[id] < 0)
            s->counts[id] = -s->counts[id];
    }
}

int32_t llm_sampler_sample(struct llm_sampler *s, const float *logits)
{
    const struct llm_sampler_params *p = &s->p;
    struct cand *c = s->cand;
    int n = s->n_vocab, sorted = 0, min_p_done = 0;
    float max = -INFINITY;

    for (int i = 0; i < n; i++) {
        c[i].id = i;
        c[i].logit = logits[i];
    }
    apply_penalties(s, c);
    if (p->temp <= 0.0f) {
        int best = 0;
        for (int i = 1; i < n; i++)
            if (cand_before(&c[i], &c[best]))
                best = i;
        return c[best].id;
    }
    if (p->top_k > 0 && p->top_k < n) {
        n = cand_top_k(c, n, p->top_k);
        sorted = 1;
    }
    if (p->top_p < 1.0f) {
        double z = 0, cum = 0;
        for (int i = 0; i < n; i++)
            max = c[i].logit > max ? c[i].logit : max;
        for (int i = 0; i < n; i++)
            z += exp((double)c[i].logit - max);
        if (!sorted) {
            /* min-p keeps a prefix of the sorted order and top-p's sums use z over all, so
             * filtering by min-p first leaves less to sort and changes nothing. */
            if (p->min_p > 0.0f) {
                float cut = max + logf(p->min_p);
                int m = 0;
                for (int i = 0; i < n; i++)
                    if (c[i].logit >= cut)
                        c[m++] = c[i];
                n = m;
                min_p_done = 1;
            }
            qsort(c, (size_t)n, sizeof(*c), cand_cmp);
            sorted = 1;
        }
        for (int i = 0; i < n; i++) {
            cum += exp((double)c[i].logit - max) / z;
            if (cum >= p->top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0.0f && !min_p_done) {
        float cut;
        int m = 0;
        max = -INFINITY;
        for (int i = 0; i < n; i++)
            max = c[i].logit > max ? c[i].logit : max;
        cut = max + logf(p->min_p);
        for (int i = 0; i < n; i++)
            if (c[i].logit >= cut)
                c[m++] = c[i];
        n = m;
    }
    /* temperature, softmax, draw */
    {
        double z = 0, u, cum = 0;
        max = -INFINITY;
        for (int i = 0; i < n; i++)
            max = c[i].logit > max ? c[i].logit : max;
        for (int i = 0; i < n; i++)
            z += exp(((double)c[i].logit - max) / p->temp);
        u = llm_rng_uniform(&s->rng) * z;
        for (int i = 0; i < n; i++) {
            cum += exp(((double)c[i].logit - max) / p->temp);
            if (u < cum)
                return c[i].id;
        }
        return c[n - 1].id; // rounding left u at the very top
    }
}

/* ---- stop strings ---- */

long llm_stop_scan(const char *text, size_t len, const char *const *stops, int n_stops,
                   size_t *hold)
{
    long best = -1;
    size_t h = 0;

    for (int i = 0; i < n_stops; i++) {
        size_t sl = strlen(stops[i]);
        const char *m;
        if (sl == 0)
            continue;
        m = memmem(text, len, stops[i], sl);
        if (m && (best < 0 || m - text < best))
            best = m - text;
        for (size_t l = sl - 1 < len ? sl - 1 : len; l > h; l--) {
            if (!memcmp(text + len - l, stops[i], l)) {
                h = l;
                break;
            }
        }
    }
    *hold = best >= 0 ? 0 : h;
    return best;
}
