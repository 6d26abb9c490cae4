/* test_tok.c - tokenizers against llama.cpp's own outputs: the test-tokenizer-0 .inp/.out pairs
 * in shared/data/vocab and the reference JSON in shared/refs/tokenizer (ids with and without
 * special tokens, detokenized text), plus Llama 3 from encoder.json + vocab.bpe. */
#include "base/buf.h"
#include "base/mem.h"
#include "nn/gguf.h"
#include "nn/tok.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <unistd.h>

static const char *const vocabs[] = {
    "baichuan", "bert-bge", "deepseek-coder", "deepseek-llm", "falcon", "gpt-2",
    "gpt-neox", "llama-spm", "mpt",      "phi-3",          "refact",       "starcoder",
};

static struct tok *open_vocab(const char *path, struct gguf_file **fp)
{
    struct tw_err err = TW_ERR_INIT;
    struct gguf_file *f;
    struct tok *t;
    *fp = NULL;
    if (gguf_open(path, &f, &err) < 0) {
        fprintf(stderr, "  %s\n", err.msg);
        return NULL;
    }
    if (tok_new_from_gguf(f, &t, &err) < 0) {
        fprintf(stderr, "  %s: %s\n", path, err.msg);
        gguf_close(f);
        return NULL;
    }
    *fp = f;
    return t;
}

/* Tokenizes into a tw_malloc'd array. */
static int32_t *encode(const struct tok *t, const char *s, size_t len, bool add_special,
                       bool parse_special, size_t *n)
{
    struct tw_err err = TW_ERR_INIT;
    size_t cap = len + 8;
    int32_t *ids = tw_mallocarray(cap, sizeof(*ids));
    int rc = tok_encode(t, s, len, add_special, parse_special, ids, cap, n, &err);
    if (rc == TW_ELIMIT) {
        tw_free(ids);
        cap = *n;
        ids = tw_mallocarray(cap ? cap : 1, sizeof(*ids));
        rc = tok_encode(t, s, len, add_special, parse_special, ids, cap, n, &err);
    }
    if (rc < 0) {
        fprintf(stderr, "  encode failed: %s\n", err.msg);
        tw_free(ids);
        return NULL;
    }
    return ids;
}

static bool ids_equal(const int32_t *a, size_t na, const cJSON *arr)
{
    size_t i = 0;
    const cJSON *e;
    if ((size_t)cJSON_GetArraySize(arr) != na)
        return false;
    cJSON_ArrayForEach(e, arr)
    {
        if ((int32_t)e->valuedouble != a[i++])
            return false;
    }
    return true;
}

static void print_ids(const char *what, const int32_t *ids, size_t n)
{
    fprintf(stderr, "    %s:", what);
    for (size_t i = 0; i < n && i < 40; i++)
        fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

/* Runs the reference JSON of one vocab; returns failures, counts cases in *n_cases. */
static int run_ref_json(const struct tok *t, const char *json_path, int *n_cases)
{
    size_t len;
    char *js = test_read_file(json_path, &len);
    cJSON *root, *cases, *c;
    int fails = 0;
    *n_cases = 0;
    if (!js)
        return -1;
    root = cJSON_ParseWithLength(js, len);
    tw_free(js);
    if (!root)
        return -1;
    cases = cJSON_GetObjectItem(root, "cases");
    cJSON_ArrayForEach(c, cases)
    {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        const char *detok = cJSON_GetObjectItem(c, "detokenized")->valuestring;
        size_t n1, n2;
        int32_t *a = encode(t, text, strlen(text), false, false, &n1);
        int32_t *b = encode(t, text, strlen(text), true, false, &n2);
        struct tw_buf out = TW_BUF_INIT;
        bool ok = a && b;
        (*n_cases)++;
        if (ok && !ids_equal(a, n1, cJSON_GetObjectItem(c, "ids"))) {
            fprintf(stderr, "  %s: ids differ for \"%s\"\n", json_path, text);
            print_ids("ours", a, n1);
            ok = false;
        }
        if (ok && !ids_equal(b, n2, cJSON_GetObjectItem(c, "ids_with_special"))) {
            fprintf(stderr, "  %s: ids_with_special differ for \"%s\"\n", json_path, text);
            print_ids("ours", b, n2);
            ok = false;
        }
        if (ok) {
            tok_decode(t, a, n1, false, false, &out);
            if (strcmp(out.data, detok)) {
                fprintf(stderr, "  %s: detokenized \"%s\" != \"%s\"\n", json_path, out.data,
                        detok);
                ok = false;
            }
        }
        fails += !ok;
        tw_buf_release(&out);
        tw_free(a);
        tw_free(b);
    }
    cJSON_Delete(root);
    return fails;
}

/* Runs llama.cpp's test-tokenizer-0 files (add_special=false, parse_special=false). */
static int run_inp_out(const struct tok *t, const char *inp_path, const char *out_path,
                       int *n_cases)
{
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t ilen, olen;
    char *inp = test_read_file(inp_path, &ilen), *outs = test_read_file(out_path, &olen);
    char *p, *o;
    int fails = 0;
    *n_cases = 0;
    if (!inp || !outs) {
        tw_free(inp);
        tw_free(outs);
        return -1;
    }
    p = inp;
    o = outs;
    while (p < inp + ilen && *o) {
        char *next = strstr(p, sep), *eol = strchr(o, '\n');
        size_t tlen = next ? (size_t)(next - p) : (size_t)(inp + ilen - p);
        int32_t want[4096];
        size_t nw = 0, n;
        int32_t *got;
        if (!eol)
            eol = o + strlen(o);
        for (char *q = o; q < eol && nw < 4096;) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q) {
                q++;
                continue;
            }
            want[nw++] = (int32_t)v;
            q = end;
        }
        got = encode(t, p, tlen, false, false, &n);
        (*n_cases)++;
        if (!got || n != nw || memcmp(got, want, n * sizeof(*got))) {
            fprintf(stderr, "  %s: case %d \"%.*s\" differs\n", inp_path, *n_cases,
                    (int)(tlen < 60 ? tlen : 60), p);
            if (got)
                print_ids("ours", got, n);
            print_ids("want", want, nw);
            fails++;
        }
        tw_free(got);
        if (!next)
            break;
        p = next + strlen(sep);
        o = *eol ? eol + 1 : eol;
    }
    tw_free(inp);
    tw_free(outs);
    return fails;
}

TEST(tok_matches_llama_cpp_on_every_vocab)
{
    int total_fail = 0;
    for (size_t v = 0; v < sizeof(vocabs) / sizeof(vocabs[0]); v++) {
        char path[480], inp[512], outp[512], js[512];
        struct gguf_file *f;
        struct tok *t;
        int n1 = 0, n2 = 0, f1 = 0, f2 = 0;
        snprintf(path, sizeof(path), "%sdata/vocab/ggml-vocab-%s.gguf", test_shared(""),
                 vocabs[v]);
        snprintf(inp, sizeof(inp), "%s.inp", path);
        snprintf(outp, sizeof(outp), "%s.out", path);
        snprintf(js, sizeof(js), "%srefs/tokenizer/tokenizer-ggml-vocab-%s.json",
                 test_shared(""), vocabs[v]);
        t = open_vocab(path, &f);
        CHECK_MSG(t != NULL, "cannot load %s", path);
        f1 = run_ref_json(t, js, &n1);
        if (access(inp, R_OK) == 0)
            f2 = run_inp_out(t, inp, outp, &n2);
        fprintf(stderr, "  vocab %-15s refs %d/%d  inp/out %d/%d\n", vocabs[v], n1 - f1, n1,
                n2 - f2, n2);
        total_fail += f1 + f2;
        tok_free(t);
        gguf_close(f);
    }
    CHECK_EQ_INT(total_fail, 0);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
