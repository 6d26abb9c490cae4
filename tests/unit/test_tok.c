/* test_tok.c - tokenizers against llama.cpp's own outputs: the test-tokenizer-0 .inp/.out pairs
 * in shared/data/vocab and the reference JSON in shared/refs/tokenizer (ids with and without
 * special tokens, detokenized text), plus Llama 3 from encoder.json + vocab.bpe. */
#include "base/buf.h"
#include "base/mem.h"
#include "nn/gguf.h"
#include "nn/tok.h"
#include "nn/tok_int.h"
#include "test.h"

#include <cjson/cJSON.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
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

TEST(tok_matches_llama_cpp_on_stories260k)
{
    struct gguf_file *f;
    struct tok *t = open_vocab(test_shared("data/models/stories260K.gguf"), &f);
    int n = 0, fails;
    CHECK(t != NULL);
    fails = run_ref_json(t, test_shared("refs/tokenizer/tokenizer-stories260K.json"), &n);
    fprintf(stderr, "  vocab %-15s refs %d/%d\n", "stories260K", n - fails, n);
    CHECK_EQ_INT(n, 45);
    CHECK_EQ_INT(fails, 0);
    tok_free(t);
    gguf_close(f);
}

/* Llama 3 has no vocab GGUF in shared/: build one with our writer from the HF files
 * (encoder.json + vocab.bpe) and run llama.cpp's ggml-vocab-llama-bpe test cases. */
TEST(tok_llama3_from_encoder_json)
{
    struct tw_err err = TW_ERR_INIT;
    size_t jlen, mlen;
    char *json = test_read_file(test_shared("data/vocab/llama3.2-bpe/encoder.json"), &jlen);
    char *merges = test_read_file(test_shared("data/vocab/llama3.2-bpe/vocab.bpe"), &mlen);
    cJSON *root, *e;
    struct gguf_str *toks, *mv;
    int32_t *types;
    size_t n_tok = 128002, n_merges = 0;
    struct gguf_writer *w;
    struct gguf_file *f;
    struct tok *t;
    char path[1024];
    int n = 0, fails;

    CHECK(json && merges);
    root = cJSON_ParseWithLength(json, jlen);
    CHECK(root != NULL);
    toks = tw_calloc(n_tok, sizeof(*toks));
    types = tw_calloc(n_tok, sizeof(*types));
    mv = tw_calloc(mlen / 2 + 1, sizeof(*mv));
    cJSON_ArrayForEach(e, root)
    {
        int id = (int)e->valuedouble;
        if (id >= 0 && id < 128000) {
            toks[id].ptr = e->string;
            toks[id].len = strlen(e->string);
            types[id] = 1;
        }
    }
    toks[128000] = (struct gguf_str){"<|begin_of_text|>", 17};
    toks[128001] = (struct gguf_str){"<|end_of_text|>", 15};
    types[128000] = types[128001] = 3;
    for (char *p = merges; p < merges + mlen;) {
        char *nl = memchr(p, '\n', (size_t)(merges + mlen - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(merges + mlen - p);
        if (l && !(p == merges && !strncmp(p, "#version", 8)))
            mv[n_merges++] = (struct gguf_str){p, l};
        p += l + 1;
    }
    CHECK_EQ_INT(n_merges, 280147);
    w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", "llama-bpe");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, n_tok);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_V_I32, types, n_tok);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", mv, n_merges);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 128000);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 128001);
    snprintf(path, sizeof(path), "%s/llama3-vocab.gguf", test_tmpdir());
    CHECK_OK(gguf_writer_write(w, path, &err), &err);
    gguf_writer_free(w);
    cJSON_Delete(root);
    tw_free(json);
    tw_free(merges);
    tw_free(toks);
    tw_free(types);
    tw_free(mv);

    t = open_vocab(path, &f);
    CHECK(t != NULL);
    fails = run_inp_out(t, test_shared("data/vocab/ggml-vocab-llama-bpe.gguf.inp"),
                        test_shared("data/vocab/ggml-vocab-llama-bpe.gguf.out"), &n);
    fprintf(stderr, "  vocab %-15s inp/out %d/%d\n", "llama3 (bpe)", n - fails, n);
    CHECK_EQ_INT(n, 46);
    CHECK_EQ_INT(fails, 0);
    /* llama-bpe adds BOS; EOS ends generation */
    {
        size_t k;
        int32_t *ids = encode(t, "Hello world", 11, true, false, &k);
        CHECK(ids && k == 3 && ids[0] == 128000);
        CHECK(ids[1] == 9906 && ids[2] == 1917);
        tw_free(ids);
        ids = encode(t, "<|begin_of_text|>Hi", 19, false, true, &k);
        CHECK(ids && k == 2 && ids[0] == 128000);
        tw_free(ids);
        CHECK(tok_is_eog(t, 128001));
        CHECK(!tok_is_eog(t, 9906));
    }
    tok_free(t);
    gguf_close(f);
}

TEST(tok_spm_pieces_and_specials)
{
    struct gguf_file *f;
    struct tok *t = open_vocab(test_shared("data/models/stories260K.gguf"), &f);
    static const char *const want[] = {" He", "ll", "o", " w", "or", "ld"};
    struct tw_err err = TW_ERR_INIT;
    struct tw_buf out = TW_BUF_INIT;
    int32_t small[2];
    size_t n;
    int32_t *ids;
    char piece[16];

    CHECK(t != NULL);
    CHECK_EQ_INT(tok_kind(t), TOK_SPM);
    CHECK_EQ_INT(tok_n_vocab(t), 512);
    CHECK_EQ_INT(tok_bos(t), 1);
    CHECK_EQ_INT(tok_eos(t), 2);
    CHECK_EQ_INT(tok_sep(t), TOK_NULL); // stored as 0xFFFFFFFF: none
    CHECK(tok_add_bos(t) && !tok_add_eos(t));
    CHECK(tok_is_eog(t, 2));
    ids = encode(t, "Hello world", 11, true, false, &n);
    CHECK(ids && n == 7 && ids[0] == 1);
    for (size_t i = 1; i < n; i++) {
        int32_t k = tok_piece(t, ids[i], false, piece, sizeof(piece));
        CHECK(k >= 0);
        piece[k] = '\0';
        CHECK_EQ_STR(piece, want[i - 1]);
    }
    CHECK_EQ_INT(tok_piece(t, 1, false, piece, sizeof(piece)), 0);  // control: hidden
    CHECK_EQ_INT(tok_piece(t, 1, true, piece, sizeof(piece)), 3);   // "<s>"
    CHECK_EQ_INT(tok_piece(t, 1, true, piece, 2), -3);              // too small
    CHECK_EQ_INT(tok_piece(t, 3 + 'A', false, piece, sizeof(piece)), 1); // byte token
    CHECK_EQ_INT(piece[0], 'A');
    tok_decode(t, ids + 1, n - 1, false, false, &out); // the prefix space is dropped
    CHECK_EQ_STR(out.data, "Hello world");
    tw_buf_reset(&out);
    tok_decode(t, ids, n, true, false, &out); // after a BOS llama.cpp keeps it
    CHECK_EQ_STR(out.data, " Hello world");
    tw_free(ids);
    /* parse_special turns "</s>" into EOS; without it the text is spelled out */
    ids = encode(t, "a</s>", 5, false, true, &n);
    CHECK(ids && n >= 2 && ids[n - 1] == 2);
    tw_free(ids);
    ids = encode(t, "a</s>", 5, false, false, &n);
    CHECK(ids && n > 2 && ids[n - 1] != 2);
    tw_free(ids);
    /* a buffer that is too small reports the size needed */
    CHECK(tok_encode(t, "Hello world", 11, true, false, small, 2, &n, &err) == TW_ELIMIT);
    CHECK_EQ_INT(n, 7);
    tw_err_clear(&err);
    CHECK(tok_encode(t, "Hello world", 11, true, false, NULL, 0, &n, &err) == TW_ELIMIT);
    CHECK_EQ_INT(n, 7); // counting only
    CHECK_OK(tok_encode(t, "", 0, false, false, NULL, 0, &n, &err), &err);
    CHECK_EQ_INT(n, 0);
    /* bytes outside the vocabulary fall back to <0xNN> and decode back exactly */
    {
        static const char odd[] = "\xe2\x82\xac \xf0\x9f\x98\x80 \x01\x7f z";
        tw_buf_reset(&out);
        ids = encode(t, odd, sizeof(odd) - 1, false, false, &n);
        CHECK(ids != NULL);
        tok_decode(t, ids, n, false, false, &out);
        CHECK_EQ_STR(out.data, odd);
        tw_free(ids);
    }
    tw_buf_release(&out);
    tok_free(t);
    gguf_close(f);
}

/* Round trip on real text: decode(encode(x)) == x for the byte-level and SPM vocabs. */
TEST(tok_round_trip_on_corpus_text)
{
    static const char *const rt[] = {"gpt-2", "llama-spm", "starcoder", "deepseek-coder"};
    static const char text[] =
        "  Leading spaces, tabs\tand\nnewlines\r\n; code: for (int i = 0; i < n; i++) {}\n"
        "Ünïcödé — ☃ 日本語 한국어 \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd end.  ";
    for (size_t v = 0; v < sizeof(rt) / sizeof(rt[0]); v++) {
        char path[512];
        struct gguf_file *f;
        struct tok *t;
        struct tw_buf out = TW_BUF_INIT;
        size_t n;
        int32_t *ids;
        snprintf(path, sizeof(path), "%sdata/vocab/ggml-vocab-%s.gguf", test_shared(""), rt[v]);
        t = open_vocab(path, &f);
        CHECK(t != NULL);
        ids = encode(t, text, sizeof(text) - 1, false, false, &n);
        CHECK(ids != NULL);
        tok_decode(t, ids, n, false, false, &out);
        CHECK_MSG(!strcmp(out.data, text), "%s: \"%s\"", rt[v], out.data);
        tw_buf_release(&out);
        tw_free(ids);
        tok_free(t);
        gguf_close(f);
    }
}

/* Broken tokenizer metadata is an error naming the key, never a crash. */
TEST(tok_rejects_bad_metadata)
{
    struct tw_err err = TW_ERR_INIT;
    struct gguf_str toks[3] = {{"a", 1}, {"b", 1}, {"c", 1}};
    float scores[2] = {0, 0};
    static const struct {
        const char *model, *pre;
        int what; // 0 no tokens, 1 short scores, 2 tokens not strings, 3 no merges
        const char *needle;
    } cases[] = {
        {"llama", NULL, 0, "tokenizer.ggml.tokens"},
        {"llama", NULL, 1, "tokenizer.ggml.scores has 2 entries for 3 tokens"},
        {"llama", NULL, 2, "not an array of strings"},
        {"gpt2", "gpt-2", 3, "tokenizer.ggml.merges"},
        {"gpt2", "no-such-pre", 3, "unknown pre-tokenizer type 'no-such-pre'"},
        {"t5", NULL, 3, "'t5' is not supported"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gguf_writer *w = gguf_writer_new();
        struct gguf_file *f;
        struct tok *t = (struct tok *)&err;
        char path[1024];
        gguf_writer_set_str(w, "tokenizer.ggml.model", cases[i].model);
        if (cases[i].pre)
            gguf_writer_set_str(w, "tokenizer.ggml.pre", cases[i].pre);
        if (cases[i].what == 2)
            gguf_writer_set_arr(w, "tokenizer.ggml.tokens", GGUF_V_F32, scores, 2);
        else if (cases[i].what != 0)
            gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 3);
        if (cases[i].what == 1)
            gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_V_F32, scores, 2);
        snprintf(path, sizeof(path), "%s/bad%zu.gguf", test_tmpdir(), i);
        CHECK_OK(gguf_writer_write(w, path, &err), &err);
        gguf_writer_free(w);
        CHECK_OK(gguf_open(path, &f, &err), &err);
        tw_err_clear(&err);
        CHECK(tok_new_from_gguf(f, &t, &err) < 0);
        CHECK(t == NULL);
        CHECK_MSG(strstr(err.msg, cases[i].needle) != NULL, "'%s' lacks '%s'", err.msg,
                  cases[i].needle);
        gguf_close(f);
    }
}

/* Out-of-memory at every allocation is reported, never a crash or a leak. */
TEST(tok_survives_allocation_failures)
{
    struct gguf_file *f;
    struct tok *t = open_vocab(test_shared("data/models/stories260K.gguf"), &f);
    CHECK(t != NULL);
    for (long k = 0; k < 40; k++) {
        struct tw_err err = TW_ERR_INIT;
        int32_t ids[64];
        size_t n;
        int rc;
        tw_mem_fail_after(k);
        rc = tok_encode(t, "Hello world </s> again", 22, true, true, ids, 64, &n, &err);
        tw_mem_fail_after(-1);
        CHECK(rc == 0 || rc == TW_ENOMEM);
    }
    tok_free(t);
    gguf_close(f);
}

/* The Qwen2 and Llama 3 splitters are hand-written (as in llama.cpp). No Qwen2 vocab ships
 * in shared/, so check the Qwen2 split against its tokenizer.json regex run by PCRE2 with
 * Unicode properties, on every input of llama.cpp's qwen2 and llama-bpe test files. */
static int split_mismatches(const char *pre, const char *regex, const char *inp_path,
                            bool ascii_only, int *n)
{
    static const char sep[] = "\n__ggml_vocab_test__\n";
    struct tw_err err = TW_ERR_INIT;
    struct tok_pre *p;
    bool cs, im, fb;
    size_t ilen;
    char *inp = test_read_file(inp_path, &ilen);
    int errcode, bad = 0;
    PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &errcode, &erroff, NULL);
    pcre2_match_data *md = pcre2_match_data_create(2, NULL);
    struct tok_lens lens = {NULL, 0, 0};
    *n = 0;
    if (!inp || !re || tok__pre_new(pre, strlen(pre), &p, &cs, &im, &fb, &err) < 0)
        return -1;
    for (char *s = inp; s < inp + ilen;) {
        char *next = strstr(s, sep);
        size_t len = next ? (size_t)(next - s) : (size_t)(inp + ilen - s), nc = 0, w = 0;
        uint32_t *cps = tw_mallocarray(len + 1, sizeof(*cps));
        size_t start = 0, cp_pos = 0;
        bool ok = true;
        if (ascii_only) {
            bool ascii = true;
            for (size_t i = 0; i < len; i++)
                ascii &= (unsigned char)s[i] < 0x80;
            if (!ascii) {
                tw_free(cps);
                if (!next)
                    break;
                s = next + strlen(sep);
                continue;
            }
        }
        for (size_t off = 0; off < len;)
            cps[nc++] = tok_uc_decode(s, len, &off);
        tok__pre_split(p, cps, nc, &lens, &err);
        /* walk the regex matches (every code point of these inputs is matched) */
        while (start < len) {
            PCRE2_SIZE *ov;
            size_t k = 0;
            if (pcre2_match(re, (PCRE2_SPTR)s, len, start, 0, md, NULL) < 0)
                break;
            ov = pcre2_get_ovector_pointer(md);
            if (ov[0] != start) { // an unmatched gap is a word of its own
                ok = false;
                break;
            }
            for (size_t i = ov[0]; i < ov[1]; i++)
                k += ((unsigned char)s[i] & 0xc0) != 0x80;
            if (w >= lens.n || lens.v[w] != k)
                ok = false;
            w++;
            cp_pos += k;
            start = ov[1];
        }
        if (!ok || w != lens.n || cp_pos != nc) {
            fprintf(stderr, "  %s split differs on \"%.*s\"\n", pre, (int)(len < 50 ? len : 50),
                    s);
            bad++;
        }
        (*n)++;
        tw_free(cps);
        if (!next)
            break;
        s = next + strlen(sep);
    }
    tw_free(lens.v);
    tok__pre_free(p);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    tw_free(inp);
    return bad;
}

TEST(tok_qwen2_and_llama3_splits_match_their_regex)
{
    int n = 0, bad;
    bad = split_mismatches("qwen2",
                           "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                           "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
                           test_shared("data/vocab/ggml-vocab-qwen2.gguf.inp"), false, &n);
    fprintf(stderr, "  qwen2 pre-split agrees with its regex on %d/%d inputs\n", n - bad, n);
    CHECK_EQ_INT(n, 46);
    CHECK_EQ_INT(bad, 0);
    bad = split_mismatches("llama-bpe",
                           "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                           "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
                           test_shared("data/vocab/ggml-vocab-llama-bpe.gguf.inp"), false, &n);
    fprintf(stderr, "  llama3 pre-split agrees with its regex on %d/%d inputs\n", n - bad, n);
    CHECK_EQ_INT(bad, 0);
    bad = split_mismatches("qwen35",
                           "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|"
                           "\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
                           "\\s+(?!\\S)|\\s+",
                           test_shared("data/vocab/ggml-vocab-qwen2.gguf.inp"), false, &n);
    fprintf(stderr, "  qwen35 pre-split agrees with its regex on %d/%d inputs\n", n - bad, n);
    CHECK_EQ_INT(bad, 0);
}

/* The PCRE2 path for the case-aware GPT-4o (Llama 4) and Tekken patterns: llama.cpp rewrites
 * them with lookaheads over its collapsed text, which agrees with the original
 * tokenizer.json patterns on ASCII text (beyond ASCII it approximates case). */
TEST(tok_gpt4o_and_tekken_splits_match_on_ascii)
{
    int n = 0, bad;
    bad = split_mismatches(
        "llama4",
        "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"
        "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}"
        "\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        test_shared("data/vocab/ggml-vocab-llama-bpe.gguf.inp"), true, &n);
    fprintf(stderr, "  gpt-4o pre-split agrees with its regex on %d/%d ASCII inputs\n", n - bad, n);
    CHECK(n >= 30);
    CHECK_EQ_INT(bad, 0);
    bad = split_mismatches(
        "tekken",
        "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|"
        "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|"
        "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        test_shared("data/vocab/ggml-vocab-llama-bpe.gguf.inp"), true, &n);
    fprintf(stderr, "  tekken pre-split agrees with its regex on %d/%d ASCII inputs\n", n - bad, n);
    CHECK_EQ_INT(bad, 0);
}

/* Every supported pre-tokenizer compiles and partitions mixed text completely. */
TEST(tok_every_pre_tokenizer_partitions_text)
{
    static const char *const names[] = {
        "", "default", "gpt-2", "mpt", "olmo", "llama3", "llama-bpe", "dbrx", "glm4", "qwen2",
        "stablelm2", "starcoder", "refact", "command-r", "smollm", "falcon", "deepseek-llm",
        "deepseek-coder", "deepseek-v3", "poro-chat", "bloom", "viking", "qwen35", "mellum2",
        "laguna", "minicpm5", "seed-coder", "bailingmoe", "exaone-moe", "jais-2", "gpt-4o",
        "llama4", "minimax-m2", "granite-embed-multi-97m", "tekken", "chameleon", "youtu",
        "trillion", "exaone4"};
    static const char text[] = "Hello World! It's 12345 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
                               "\xed\x95\x9c\xea\xb5\xad caf\xc3\xa9\xcc\x81\n\n  \tx\r\n"
                               "<sentinel:12> IMGIMGABZ \xf0\x9f\x91\x8d\xe2\x80\xa6\xef\xbc\x81";
    uint32_t cps[128];
    size_t n = 0;
    for (size_t off = 0; off < sizeof(text) - 1;)
        cps[n++] = tok_uc_decode(text, sizeof(text) - 1, &off);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct tw_err err = TW_ERR_INIT;
        struct tok_pre *p;
        struct tok_lens lens = {NULL, 0, 0};
        bool cs, im, fb;
        size_t sum = 0;
        CHECK_MSG(tok__pre_new(names[i], strlen(names[i]), &p, &cs, &im, &fb, &err) == 0, "%s: %s",
                  names[i], err.msg);
        CHECK_OK(tok__pre_split(p, cps, n, &lens, &err), &err);
        for (size_t k = 0; k < lens.n; k++) {
            CHECK(lens.v[k] > 0);
            sum += lens.v[k];
        }
        CHECK_MSG(sum == n, "%s: words cover %zu of %zu code points", names[i], sum, n);
        CHECK_MSG(lens.n > 5, "%s: %zu words", names[i], lens.n);
        tw_free(lens.v);
        tok__pre_free(p);
    }
}

/* Regression: a long "a a a ... a " word made exaone-moe's nested-quantifier pattern run out of
 * PCRE2's JIT stack, and the failed match silently left the rest as one word. It must fall back
 * to the interpreter and split as the regex says: the letters, then the trailing space. */
TEST(tok_long_word_falls_back_from_jit)
{
    struct tw_err err = TW_ERR_INIT;
    struct tok_pre *p;
    struct tok_lens lens = {NULL, 0, 0};
    bool cs, im, fb;
    size_t n = 60000;
    uint32_t *cps = tw_mallocarray(n, sizeof(*cps));
    for (size_t i = 0; i < n; i++)
        cps[i] = i % 2 ? ' ' : 'a';
    CHECK_OK(tok__pre_new("exaone-moe", 10, &p, &cs, &im, &fb, &err), &err);
    CHECK_OK(tok__pre_split(p, cps, n, &lens, &err), &err);
    CHECK_EQ_INT(lens.n, 2);
    CHECK_EQ_INT(lens.v[0], n - 1);
    CHECK_EQ_INT(lens.v[1], 1);
    tw_free(lens.v);
    tok__pre_free(p);
    tw_free(cps);
}

/* A tokenizer is shared by threads: each encodes the same texts and gets the ids a lone
 * thread gets (deepseek-llm runs PCRE2, JIT included, from every thread at once). */
struct mt_job {
    const struct tok *t;
    const char *text;
    size_t len;
    const int32_t *want;
    size_t n_want;
    int bad;
};

static void *mt_run(void *arg)
{
    struct mt_job *j = arg;
    for (int r = 0; r < 20; r++) {
        size_t n;
        int32_t *ids = encode(j->t, j->text, j->len, true, false, &n);
        if (!ids || n != j->n_want || memcmp(ids, j->want, n * sizeof(*ids)))
            j->bad++;
        tw_free(ids);
    }
    return NULL;
}

TEST(tok_is_thread_safe)
{
    static const char text[] = "The quick brown fox's 12345 jumps \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa"
                               "\x9e over caf\xc3\xa9   \n\n the lazy dog! <|endoftext|> again";
    char path[512];
    struct gguf_file *f;
    struct tok *t;
    struct mt_job jobs[4];
    pthread_t th[4];
    size_t n;
    int32_t *want;
    snprintf(path, sizeof(path), "%sdata/vocab/ggml-vocab-deepseek-llm.gguf", test_shared(""));
    t = open_vocab(path, &f);
    CHECK(t != NULL);
    want = encode(t, text, sizeof(text) - 1, true, false, &n);
    CHECK(want != NULL);
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct mt_job){t, text, sizeof(text) - 1, want, n, 0};
        CHECK(pthread_create(&th[i], NULL, mt_run, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(jobs[i].bad, 0);
    }
    tw_free(want);
    tok_free(t);
    gguf_close(f);
}

/* The code point classes llama.cpp's tables give (Unicode 15.1, its White_Space list, simple
 * lowercase, first code point of NFD), including the 15.1 additions utf8proc 15.0 lacks. */
TEST(tok_unicode_classes)
{
    CHECK_EQ_INT(tok_uc_flags('a'), TOK_UC_LETTER);
    CHECK_EQ_INT(tok_uc_flags('7'), TOK_UC_NUMBER);
    CHECK_EQ_INT(tok_uc_flags('$'), TOK_UC_SYMBOL);
    CHECK_EQ_INT(tok_uc_flags('_'), TOK_UC_PUNCTUATION);
    CHECK_EQ_INT(tok_uc_flags(' '), TOK_UC_SEPARATOR | TOK_UC_WHITESPACE);
    CHECK_EQ_INT(tok_uc_flags('\n'), TOK_UC_CONTROL | TOK_UC_WHITESPACE);
    CHECK_EQ_INT(tok_uc_flags(0x85), TOK_UC_CONTROL | TOK_UC_WHITESPACE);
    CHECK_EQ_INT(tok_uc_flags(0x3000), TOK_UC_SEPARATOR | TOK_UC_WHITESPACE);
    CHECK_EQ_INT(tok_uc_flags(0x200b), TOK_UC_CONTROL); // zero-width space is Cf, not White_Space
    CHECK_EQ_INT(tok_uc_flags(0x0301), TOK_UC_MARK);
    CHECK_EQ_INT(tok_uc_flags(0x2167), TOK_UC_NUMBER); // Roman numeral eight (Nl)
    CHECK_EQ_INT(tok_uc_flags(0x1fae0), TOK_UC_SYMBOL);  // melting face (Unicode 14)
    CHECK_EQ_INT(tok_uc_flags(0x2ebf0), TOK_UC_LETTER);  // CJK Extension I (Unicode 15.1)
    CHECK_EQ_INT(tok_uc_flags(0x2ffc), TOK_UC_SYMBOL);   // Unicode 15.1
    CHECK_EQ_INT(tok_uc_flags(0x2ee5e), TOK_UC_UNDEFINED);
    CHECK_EQ_INT(tok_uc_flags(0x110000), TOK_UC_UNDEFINED);
    CHECK_EQ_INT(tok_uc_tolower(0x130), 'i'); // İ: simple mapping
    CHECK_EQ_INT(tok_uc_tolower(0x3a3), 0x3c3);
    CHECK_EQ_INT(tok_uc_nfd_first(0xe9), 'e');
    CHECK_EQ_INT(tok_uc_nfd_first(0xac00), 0x1100); // Hangul syllable -> leading jamo
    CHECK_EQ_INT(tok_uc_nfd_first(0x1e69), 's');      // s with two marks
    CHECK_EQ_INT(tok_uc_byte_cp(' '), 0x120);         // GPT-2's 'Ġ'
    CHECK_EQ_INT(tok_uc_cp_byte(0x120), ' ');
    for (int b = 0; b < 256; b++)
        CHECK_EQ_INT(tok_uc_cp_byte(tok_uc_byte_cp((uint8_t)b)), b);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
