/* test_enc.c - the BERT encoder against llama.cpp's outputs on tiny-bert-bge-synth.gguf. */
#include "test.h"

#include "base/mem.h"
#include "base/pool.h"
#include "nn/enc.h"
#include "nn/kq.h"

#include <cJSON.h>
#include <math.h>

/* We compute GELU from the same F16 table as llama.cpp's CPU backend, so only float summation
 * order differs: measured 4.8e-7 on hidden states of magnitude up to ~3. An exact erf-GELU
 * would be ~1e-3 off. */
#define ENC_TOL 1e-5

static cJSON *load_refs(void)
{
    return test_json_load("refs/tiny-bert-bge-synth.json");
}

/* The fields hold JSON arrays serialized as strings. */
static cJSON *field(const cJSON *c, const char *name)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, name);
    if (cJSON_IsString(f))
        return cJSON_Parse(f->valuestring);
    return cJSON_Duplicate(f, 1);
}

static double max_abs_diff(const float *a, const cJSON *arr, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - cJSON_GetArrayItem(arr, i)->valuedouble);
        if (d > m)
            m = d;
    }
    return m;
}

TEST(gelu_matches_llama_cpp_table_semantics)
{
    CHECK_EQ_INT(enc_gelu(-10.0f) == 0.0f, 1);
    CHECK_EQ_INT(enc_gelu(12.5f) == 12.5f, 1);
    CHECK_NEAR(enc_gelu(1.0f), 0.8412f, 1e-3);
    CHECK_NEAR(enc_gelu(-1.0f), -0.1588f, 1e-3);
    /* The result is an F16 value. */
    CHECK_EQ_INT(kq_f16_to_f32(kq_f32_to_f16(enc_gelu(0.3f))) == enc_gelu(0.3f), 1);
}

static void check_cases(struct tw_pool *pool, int batched)
{
    struct tw_err err = TW_ERR_INIT;
    struct enc_model *m = NULL;
    cJSON *refs = load_refs(), *cases;
    const int32_t *idp[16];
    int32_t ids[16][128];
    int n_ids[16], n_seq = 0, C;
    float *mean = NULL, *cls = NULL, *hidden = NULL;
    double worst = 0;
    int total = 0;

    CHECK(refs != NULL);
    if (enc_model_load(test_shared("refs/models/tiny-bert-bge-synth.gguf"), &m, &err) != 0) {
        cJSON_Delete(refs);
        CHECK_MSG(0, "%s", err.msg);
    }
    C = enc_model_hparams(m)->n_embd;
    CHECK_EQ_INT(C, 32);
    CHECK_EQ_INT(enc_model_hparams(m)->pooling, ENC_POOL_MEAN);
    cases = cJSON_GetObjectItemCaseSensitive(refs, "cases");
    for (cJSON *c = cases->child; c && n_seq < 16; c = c->next) {
        cJSON *arr = field(c, "ids");
        n_ids[n_seq] = cJSON_GetArraySize(arr);
        for (int i = 0; i < n_ids[n_seq] && i < 128; i++)
            ids[n_seq][i] = cJSON_GetArrayItem(arr, i)->valueint;
        idp[n_seq] = ids[n_seq];
        total += n_ids[n_seq];
        n_seq++;
        cJSON_Delete(arr);
    }
    mean = tw_malloc((size_t)n_seq * C * sizeof(float));
    cls = tw_malloc((size_t)n_seq * C * sizeof(float));
    hidden = tw_malloc((size_t)total * C * sizeof(float));
    if (batched) {
        /* All sequences in one batch: none may see another. */
        if (enc_encode(m, idp, n_ids, n_seq, ENC_POOL_MEAN, false, mean, hidden, pool, &err) ||
            enc_encode(m, idp, n_ids, n_seq, ENC_POOL_CLS, false, cls, NULL, pool, &err))
            goto fail;
    } else {
        for (int s = 0, off = 0; s < n_seq; off += n_ids[s], s++)
            if (enc_encode(m, &idp[s], &n_ids[s], 1, ENC_POOL_MEAN, false, mean + s * C,
                           hidden + (size_t)off * C, pool, &err) ||
                enc_encode(m, &idp[s], &n_ids[s], 1, ENC_POOL_CLS, false, cls + s * C, NULL,
                           pool, &err))
                goto fail;
    }
    {
        int s = 0, off = 0;
        for (cJSON *c = cases->child; c && s < n_seq; c = c->next, off += n_ids[s], s++) {
            cJSON *mp = field(c, "mean_pooled"), *cp = field(c, "cls_pooled");
            cJSON *te = field(c, "token_embeddings");
            double d1 = max_abs_diff(mean + s * C, mp, C), d2 = max_abs_diff(cls + s * C, cp, C);
            double d3 = 0;
            for (int t = 0; t < n_ids[s]; t++) {
                double d = max_abs_diff(hidden + (size_t)(off + t) * C,
                                        cJSON_GetArrayItem(te, t), C);
                d3 = d > d3 ? d : d3;
            }
            cJSON_Delete(mp);
            cJSON_Delete(cp);
            cJSON_Delete(te);
            worst = fmax(worst, fmax(d1, fmax(d2, d3)));
        }
    }
    printf("  %d texts, %d tokens (%s): max |ours - llama.cpp| = %.3g\n", n_seq, total,
           batched ? "one batch" : "one by one", worst);
    tw_free(mean);
    tw_free(cls);
    tw_free(hidden);
    enc_model_free(m);
    cJSON_Delete(refs);
    CHECK(n_seq >= 5);
    CHECK(worst <= ENC_TOL);
    return;
fail:
    tw_free(mean);
    tw_free(cls);
    tw_free(hidden);
    enc_model_free(m);
    cJSON_Delete(refs);
    CHECK_MSG(0, "%s", err.msg);
}

TEST(encoder_matches_llama_cpp_one_by_one)
{
    check_cases(NULL, 0);
}

TEST(encoder_matches_llama_cpp_batched_threads)
{
    struct tw_err err = TW_ERR_INIT;
    struct tw_pool *pool = NULL;
    CHECK_OK(tw_pool_new(2, &pool, &err), &err);
    check_cases(pool, 1);
    tw_pool_free(pool);
}

TEST(encoder_rejects_bad_input)
{
    struct tw_err err = TW_ERR_INIT;
    struct enc_model *m = NULL;
    int32_t ids[] = {101, 999999, 102};
    const int32_t *p = ids;
    int n = 3;
    float out[32];
    CHECK_OK(enc_model_load(test_shared("refs/models/tiny-bert-bge-synth.gguf"), &m, &err), &err);
    CHECK_EQ_INT(enc_encode(m, &p, &n, 1, ENC_POOL_MEAN, true, out, NULL, NULL, &err), TW_EINVAL);
    CHECK_EQ_STR(err.msg, "token id 999999 is outside the vocabulary (30522)");
    tw_err_clear(&err);
    n = 129;
    CHECK_EQ_INT(enc_encode(m, &p, &n, 1, ENC_POOL_MEAN, true, out, NULL, NULL, &err), TW_ELIMIT);
    enc_model_free(m);
    tw_err_clear(&err);
    /* A decoder file is not an encoder. */
    CHECK(enc_model_load(test_shared("data/models/stories260K.gguf"), &m, &err) < 0);
    CHECK(strstr(err.msg, "architecture 'llama' is not an encoder") != NULL);
    CHECK(m == NULL);
}

TEST(normalized_vectors_have_unit_length)
{
    struct tw_err err = TW_ERR_INIT;
    struct enc_model *m = NULL;
    int32_t ids[] = {101, 7592, 2088, 102};
    const int32_t *p = ids;
    int n = 4;
    float out[32];
    double norm = 0;
    CHECK_OK(enc_model_load(test_shared("refs/models/tiny-bert-bge-synth.gguf"), &m, &err), &err);
    CHECK_OK(enc_encode(m, &p, &n, 1, ENC_POOL_NONE, true, out, NULL, NULL, &err), &err);
    for (int i = 0; i < 32; i++)
        norm += (double)out[i] * out[i];
    CHECK_NEAR(norm, 1.0, 1e-5);
    enc_model_free(m);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
