/* test_sample.c - sampler chain, PRNG and stop strings. */
#include "test.h"

#include "base/err.h"
#include "nn/sample.h"

#include <math.h>
#include <stdint.h>

static struct llm_sampler_params greedy_params(void)
{
    struct llm_sampler_params p = LLM_SAMPLER_PARAMS_DEFAULT;
    p.temp = 0;
    p.top_k = 0;
    p.top_p = 1;
    p.min_p = 0;
    return p;
}

/* logits whose softmax is exactly probs */
static void logits_from_probs(const double *probs, int n, float *out)
{
    for (int i = 0; i < n; i++)
        out[i] = (float)log(probs[i]);
}

/* Draws 'n' samples and counts how often each id came out. */
static void histogram(struct llm_sampler *s, const float *logits, int n_vocab, int n, int *hist)
{
    for (int i = 0; i < n_vocab; i++)
        hist[i] = 0;
    for (int i = 0; i < n; i++) {
        int32_t id = llm_sampler_sample(s, logits);
        if (id >= 0 && id < n_vocab)
            hist[id]++;
    }
}

TEST(rng_is_deterministic_and_uniform)
{
    struct llm_rng a, b, c;
    double sum = 0, lo = 1, hi = 0;
    llm_rng_seed(&a, 42);
    llm_rng_seed(&b, 42);
    llm_rng_seed(&c, 43);
    int differs = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = llm_rng_next(&a), y = llm_rng_next(&b), z = llm_rng_next(&c);
        CHECK(x == y);
        differs |= x != z;
    }
    CHECK(differs);
    for (int i = 0; i < 200000; i++) {
        double u = llm_rng_uniform(&a);
        CHECK(u >= 0 && u < 1);
        sum += u;
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    CHECK_NEAR(sum / 200000, 0.5, 0.005);
    CHECK(lo < 1e-3 && hi > 1 - 1e-3);
}

TEST(greedy_is_argmax_lowest_id_on_tie)
{
    struct tw_err err = TW_ERR_INIT;
    struct llm_sampler *s;
    struct llm_sampler_params p = greedy_params();
    float l[6] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f, -INFINITY};
    CHECK_OK(llm_sampler_new(&p, 6, &s, &err), &err);
    CHECK_EQ_INT(llm_sampler_sample(s, l), 1);
    CHECK_EQ_INT(llm_argmax(l, 6), 1);
    l[3] = 3.5f;
    CHECK_EQ_INT(llm_sampler_sample(s, l), 3);
    llm_sampler_free(s);
}

TEST(repeat_frequency_presence_penalties)
{
    struct tw_err err = TW_ERR_INIT;
    struct llm_sampler *s;
    struct llm_sampler_params p = greedy_params();
    float l[3] = {2.0f, 1.9f, -5.0f};

    p.repeat_penalty = 1.1f; // 2.0 / 1.1 = 1.818 < 1.9
    p.penalty_last_n = 2;
    CHECK_OK(llm_sampler_new(&p, 3, &s, &err), &err);
    CHECK_EQ_INT(llm_sampler_sample(s, l), 0);
    llm_sampler_accept(s, 0);
    CHECK_EQ_INT(llm_sampler_sample(s, l), 1);
    /* the window holds 2: after two more tokens, 0 is no longer penalized */
    llm_sampler_accept(s, 2);
    llm_sampler_accept(s, 1);
    CHECK_EQ_INT(llm_sampler_sample(s, l), 0);
    /* reset forgets the history */
    llm_sampler_reset(s);
    CHECK_EQ_INT(llm_sampler_sample(s, l), 0);
    /* negative logits are multiplied: -1.0 * 1.1 = -1.1 < -1.05 */
    l[0] = -1.0f;
    l[1] = -1.05f;
    CHECK_EQ_INT(llm_sampler_sample(s, l), 0);
    llm_sampler_accept(s, 0);
    CHECK_EQ_INT(llm_sampler_sample(s, l), 1);
    llm_sampler_free(s);
}

TEST(frequency_penalty_counts_occurrences)
{
    struct tw_err err = TW_ERR_INIT;
    struct llm_sampler *s;
    struct llm_sampler_params p = greedy_params();
    float l[3] = {2.0f, 1.5f, -5.0f};
    p.penalty_last_n = 8;
    p.freq_penalty = 0.3f;
    CHECK_OK(llm_sampler_new(&p, 3, &s, &err), &err);
    llm_sampler_accept(s, 0);
    CHECK_EQ_INT(llm_sampler_sample(s, l), 0); // 1.7 > 1.5
    llm_sampler_accept(s, 0);
    CHECK_EQ_INT(llm_sampler_sample(s, l), 1); // 1.4 < 1.5
    llm_sampler_free(s);

    p = greedy_params();
    p.penalty_last_n = 8;
    p.presence_penalty = 0.4f; // once, however many times
    CHECK_OK(llm_sampler_new(&p, 3, &s, &err), &err);
    llm_sampler_accept(s, 0);
    llm_sampler_accept(s, 0);
    llm_sampler_accept(s, 0);
    CHECK_EQ_INT(llm_sampler_sample(s, l), 0); // 1.6 > 1.5
    llm_sampler_accept(s, 1);
    l[1] = 2.3f; // 2.3 - 0.4 = 1.9 > 1.6
    CHECK_EQ_INT(llm_sampler_sample(s, l), 1);
    llm_sampler_free(s);
}

TEST(temperature_draws_follow_softmax)
{
    struct tw_err err = TW_ERR_INIT;
    struct llm_sampler *s;
    struct llm_sampler_params p = greedy_params();
    const double probs[4] = {0.5, 0.3, 0.15, 0.05};
    float l[4];
    int hist[4], n = 40000;

    logits_from_probs(probs, 4, l);
    p.temp = 1.0f;
    p.seed = 7;
    CHECK_OK(llm_sampler_new(&p, 4, &s, &err), &err);
    histogram(s, l, 4, n, hist);
    for (int i = 0; i < 4; i++)
        CHECK_NEAR((double)hist[i] / n, probs[i], 0.015);
    llm_sampler_free(s);

    /* temp 0.5 squares the odds: p_i^2 / sum p^2 */
    p.temp = 0.5f;
    CHECK_OK(llm_sampler_new(&p, 4, &s, &err), &err);
    histogram(s, l, 4, n, hist);
    double z = 0;
    for (int i = 0; i < 4; i++)
        z += probs[i] * probs[i];
    for (int i = 0; i < 4; i++)
        CHECK_NEAR((double)hist[i] / n, probs[i] * probs[i] / z, 0.015);
    llm_sampler_free(s);
}

TEST(top_k_top_p_min_p_truncate)
{
    struct tw_err err = TW_ERR_INIT;
    struct llm_sampler *s;
    struct llm_sampler_params p = greedy_params();
    const double probs[5] = {0.05, 0.5, 0.3, 0.1, 0.05};
    float l[5];
    int hist[5], n = 20000;

    logits_from_probs(probs, 5, l);
    p.temp = 1.0f;
    p.top_k = 2; // ids 1 and 2, renormalized: 0.625 / 0.375
    CHECK_OK(llm_sampler_new(&p, 5, &s, &err), &err);
    histogram(s, l, 5, n, hist);
    CHECK_EQ_INT(hist[0] + hist[3] + hist[4], 0);
    CHECK_NEAR((double)hist[1] / n, 0.625, 0.015);
    llm_sampler_free(s);

    p.top_k = 0;
    p.top_p = 0.85f; // 0.5 + 0.3 = 0.8 < 0.85, + 0.1 reaches it: keep 1, 2, 3
    CHECK_OK(llm_sampler_new(&p, 5, &s, &err), &err);
    histogram(s, l, 5, n, hist);
    CHECK_EQ_INT(hist[0] + hist[4], 0);
    CHECK(hist[3] > 0);
    CHECK_NEAR((double)hist[1] / n, 0.5 / 0.9, 0.015);
    llm_sampler_free(s);

    p.top_p = 1.0f;
    p.min_p = 0.25f; // keeps p >= 0.125: ids 1 and 2
    CHECK_OK(llm_sampler_new(&p, 5, &s, &err), &err);
    histogram(s, l, 5, n, hist);
    CHECK_EQ_INT(hist[0] + hist[3] + hist[4], 0);
    CHECK_NEAR((double)hist[2] / n, 0.375, 0.015);
    llm_sampler_free(s);

    p.top_p = 0.95f; // top-p would keep 4 tokens; min-p (combined path) cuts to 2
    CHECK_OK(llm_sampler_new(&p, 5, &s, &err), &err);
    histogram(s, l, 5, n, hist);
    CHECK_EQ_INT(hist[0] + hist[3] + hist[4], 0);
    llm_sampler_free(s);

    p.min_p = 0;
    p.top_k = 3;
    p.top_p = 0.5f; // within the top 3 (sum 0.9): 0.5/0.9 = 0.56 >= 0.5 -> only id 1
    CHECK_OK(llm_sampler_new(&p, 5, &s, &err), &err);
    histogram(s, l, 5, 2000, hist);
    CHECK_EQ_INT(hist[1], 2000);
    llm_sampler_free(s);
}

TEST(top_k_heap_matches_sort_on_large_vocab)
{
    struct tw_err err = TW_ERR_INIT;
    struct llm_sampler *s;
    struct llm_sampler_params p = greedy_params();
    struct llm_rng r;
    static float l[5000];
    llm_rng_seed(&r, 1);
    for (int i = 0; i < 5000; i++)
        l[i] = (float)(llm_rng_uniform(&r) * 10.0);
    l[4321] = 20.0f;
    l[17] = 19.0f;
    p.temp = 0.05f; // sharp: the top token should almost always win
    p.top_k = 2;
    p.seed = 3;
    CHECK_OK(llm_sampler_new(&p, 5000, &s, &err), &err);
    for (int i = 0; i < 200; i++) {
        int32_t id = llm_sampler_sample(s, l);
        CHECK(id == 4321 || id == 17);
    }
    llm_sampler_free(s);
}

TEST(same_seed_same_tokens)
{
    struct tw_err err = TW_ERR_INIT;
    struct llm_sampler *a, *b;
    struct llm_sampler_params p = LLM_SAMPLER_PARAMS_DEFAULT;
    float l[100];
    int32_t first[50];
    int same = 1;
    for (int i = 0; i < 100; i++)
        l[i] = (float)sin(i * 0.37) * 2.0f;
    p.seed = 1234;
    CHECK_OK(llm_sampler_new(&p, 100, &a, &err), &err);
    CHECK_OK(llm_sampler_new(&p, 100, &b, &err), &err);
    for (int i = 0; i < 50; i++) {
        first[i] = llm_sampler_sample(a, l);
        CHECK_EQ_INT(first[i], llm_sampler_sample(b, l));
    }
    llm_sampler_reset(a);
    for (int i = 0; i < 50; i++)
        CHECK_EQ_INT(llm_sampler_sample(a, l), first[i]);
    llm_sampler_free(b);
    p.seed = 1235;
    CHECK_OK(llm_sampler_new(&p, 100, &b, &err), &err);
    for (int i = 0; i < 50; i++)
        same &= llm_sampler_sample(b, l) == first[i];
    CHECK(!same);
    llm_sampler_free(a);
    llm_sampler_free(b);
}

TEST(bad_parameters_are_refused)
{
    struct tw_err err = TW_ERR_INIT;
    struct llm_sampler *s = (struct llm_sampler *)1;
    struct llm_sampler_params p = LLM_SAMPLER_PARAMS_DEFAULT;
    p.repeat_penalty = 0;
    CHECK_EQ_INT(llm_sampler_new(&p, 10, &s, &err), TW_EINVAL);
    CHECK(s == NULL);
    CHECK(strstr(err.msg, "repeat penalty") != NULL);
    tw_err_clear(&err);
    p = (struct llm_sampler_params)LLM_SAMPLER_PARAMS_DEFAULT;
    p.min_p = 2;
    CHECK_EQ_INT(llm_sampler_new(&p, 10, &s, &err), TW_EINVAL);
    tw_err_clear(&err);
    p.min_p = 0;
    CHECK_EQ_INT(llm_sampler_new(&p, 0, &s, &err), TW_EINVAL);
    tw_err_clear(&err);
    p.temp = NAN;
    CHECK_EQ_INT(llm_sampler_new(&p, 10, &s, &err), TW_EINVAL);
}

TEST(stop_strings_match_and_hold_partial)
{
    const char *stops[] = {"</s>", "\nUser:"};
    size_t hold = 99;
    const char *t = "Hello</s> more";
    CHECK_EQ_INT(llm_stop_scan(t, strlen(t), stops, 2, &hold), 5);
    CHECK_EQ_INT(hold, 0);
    t = "Hi there\nUs";
    CHECK_EQ_INT(llm_stop_scan(t, strlen(t), stops, 2, &hold), -1);
    CHECK_EQ_INT(hold, 3);
    t = "a <";
    CHECK_EQ_INT(llm_stop_scan(t, strlen(t), stops, 2, &hold), -1);
    CHECK_EQ_INT(hold, 1);
    t = "plain";
    CHECK_EQ_INT(llm_stop_scan(t, strlen(t), stops, 2, &hold), -1);
    CHECK_EQ_INT(hold, 0);
    t = "x\nUser: y </s>"; // the earliest match wins
    CHECK_EQ_INT(llm_stop_scan(t, strlen(t), stops, 2, &hold), 1);
    CHECK_EQ_INT(llm_stop_scan(t, strlen(t), stops, 0, &hold), -1);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
