/* test_ds.c - the training dataset on the stories260K tokenizer: chat and Alpaca examples are
 * rendered with the chat template and masked to the assistant's tokens, text is packed into
 * rows, long examples are split (and counted), the held-out split is deterministic, and bad
 * input fails with the file and line. */
#include "test.h"

#include "base/buf.h"
#include "base/mem.h"
#include "nn/chat.h"
#include "nn/gguf.h"
#include "nn/tok.h"
#include "train/ft.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define MODEL "data/models/stories260K.gguf"
#define POST  "data/corpora/skeeto/_posts/2007-09-02-octave-mandel.markdown"

static struct tok *load_tok(struct gguf_file **f)
{
    struct tw_err err = TW_ERR_INIT;
    struct tok *t = NULL;
    if (gguf_open(test_shared(MODEL), f, &err) < 0 || tok_new_from_gguf(*f, &t, &err) < 0) {
        fprintf(stderr, "  %s\n", err.msg);
        return NULL;
    }
    return t;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static struct ds_opts opts(int T, double split)
{
    struct ds_opts o = {.n_ctx = T, .eval_split = split, .seed = 1, .chat_tmpl = LLM_CHAT_CHATML};
    return o;
}

/* The flagged tokens of a chat example decode to exactly the assistant's reply (plus EOS). */
TEST(ds_chat_loss_only_on_assistant_tokens)
{
    static const char *ex = "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                            "{\"role\":\"user\",\"content\":\"Where did Tim go?\"},"
                            "{\"role\":\"assistant\",\"content\":\"Tim went to the park.\"},"
                            "{\"role\":\"user\",\"content\":\"Why?\"},"
                            "{\"role\":\"assistant\",\"content\":\"He wanted to play.\"}]}";
    struct gguf_file *f = NULL;
    struct tok *t = load_tok(&f);
    struct tw_err err = TW_ERR_INIT;
    struct tw_buf flagged = TW_BUF_INIT, all = TW_BUF_INIT;
    int32_t *ids = NULL, *sel;
    uint8_t *flags = NULL;
    size_t n = 0, k = 0;
    CHECK(t != NULL);
    CHECK_OK(ds_encode_example(ex, strlen(ex), t, LLM_CHAT_CHATML, &ids, &flags, &n, &err), &err);
    sel = tw_mallocarray(n, sizeof(int32_t));
    CHECK(sel != NULL);
    for (size_t i = 0; i < n; i++)
        if (flags[i])
            sel[k++] = ids[i];
    CHECK_EQ_INT(tok_decode(t, sel, k, true, true, &flagged), 0);
    CHECK_EQ_INT(tok_decode(t, ids, n, false, true, &all), 0);
    printf("  %zu tokens, %zu in the loss: \"%s\"\n", n, k, flagged.data);
    CHECK(ids[0] == tok_bos(t) && !flags[0]);
    CHECK(ids[n - 1] == tok_eos(t) && flags[n - 1]);
    CHECK(strstr(flagged.data, "Tim went to the park.") != NULL);
    CHECK(strstr(flagged.data, "He wanted to play.") != NULL);
    CHECK(strstr(flagged.data, "Where did Tim go") == NULL);
    CHECK(strstr(flagged.data, "Be brief") == NULL);
    CHECK(strstr(flagged.data, "Why?") == NULL);
    CHECK(strstr(all.data, "Where did Tim go?") != NULL);
    tw_buf_release(&flagged);
    tw_buf_release(&all);
    tw_free(sel);
    tw_free(ids);
    tw_free(flags);
    tok_free(t);
    gguf_close(f);
}

/* Alpaca fields become a user turn (instruction + input) and an assistant turn (output). */
TEST(ds_alpaca_renders_like_chat)
{
    static const char *alp = "{\"instruction\":\"Say hi.\",\"input\":\"to Lily\","
                             "\"output\":\"Hi Lily!\"}";
    static const char *chat = "{\"messages\":[{\"role\":\"user\",\"content\":\"Say hi.\\n\\nto "
                              "Lily\"},{\"role\":\"assistant\",\"content\":\"Hi Lily!\"}]}";
    struct gguf_file *f = NULL;
    struct tok *t = load_tok(&f);
    struct tw_err err = TW_ERR_INIT;
    int32_t *a = NULL, *b = NULL;
    uint8_t *fa = NULL, *fb = NULL;
    size_t na = 0, nb = 0;
    CHECK(t != NULL);
    CHECK_OK(ds_encode_example(alp, strlen(alp), t, LLM_CHAT_LLAMA3, &a, &fa, &na, &err), &err);
    CHECK_OK(ds_encode_example(chat, strlen(chat), t, LLM_CHAT_LLAMA3, &b, &fb, &nb, &err), &err);
    CHECK_EQ_INT(na, nb);
    CHECK(!memcmp(a, b, na * sizeof(int32_t)) && !memcmp(fa, fb, na));
    tw_free(a);
    tw_free(b);
    tw_free(fa);
    tw_free(fb);
    tok_free(t);
    gguf_close(f);
}

/* A skeeto post as text: packed into rows of T inputs and the next T tokens, every target
 * counted, the document split into windows (counted); the split is the same for the same seed
 * and differs for another. */
TEST(ds_text_packs_splits_and_holds_out_by_seed)
{
    struct gguf_file *f = NULL;
    struct tok *t = load_tok(&f);
    struct tw_err err = TW_ERR_INIT;
    struct ds a, b, c;
    struct ds_opts o = opts(32, 0.2);
    long rows;
    CHECK(t != NULL);
    CHECK_OK(ds_load(&a, test_shared(POST), t, &o, &err), &err);
    CHECK_OK(ds_load(&b, test_shared(POST), t, &o, &err), &err);
    o.seed = 2;
    CHECK_OK(ds_load(&c, test_shared(POST), t, &o, &err), &err);
    rows = a.train.n + a.eval.n;
    printf("  %ld tokens -> %d train + %d eval rows of 32\n", a.st.n_tokens, a.train.n, a.eval.n);
    CHECK_EQ_INT(a.kind, DS_KIND_TEXT);
    CHECK_EQ_INT(a.st.n_split, 1);
    CHECK_EQ_INT(rows, (a.st.n_tokens - 2) / 32 + 1);
    CHECK_EQ_INT(a.eval.n, (int)(0.2 * rows + 0.5));
    /* row r's targets are its inputs shifted by one; rows follow the stream */
    CHECK_EQ_INT(a.train.tgt[0], a.train.in[1]);
    CHECK_EQ_INT(a.st.n_train_counted + a.st.n_eval_counted, a.st.n_tokens - 1);
    CHECK(!memcmp(a.eval.in, b.eval.in, (size_t)a.eval.n * 32 * sizeof(int32_t)));
    CHECK(memcmp(a.eval.in, c.eval.in, (size_t)a.eval.n * 32 * sizeof(int32_t)) != 0);
    CHECK_EQ_STR(a.sha256, b.sha256);
    ds_release(&a);
    ds_release(&b);
    ds_release(&c);
    tok_free(t);
    gguf_close(f);
}

/* Instruction examples are padded one per row (mask 0 on padding); one longer than the context
 * is split into windows (counted, never truncated). */
TEST(ds_instruct_pads_and_splits_long_examples)
{
    struct gguf_file *f = NULL;
    struct tok *t = load_tok(&f);
    struct tw_err err = TW_ERR_INIT;
    struct ds d;
    struct ds_opts o = opts(80, 0);
    char path[600];
    long counted = 0;
    snprintf(path, sizeof(path), "%s/pad.jsonl", test_tmpdir());
    write_file(path,
               "{\"instruction\":\"Name a color.\",\"output\":\"Red.\"}\n"
               "\n"
               "{\"instruction\":\"Tell a story.\",\"output\":\"Once upon a time there was "
               "a little dog named Max. Max liked to run in the park with his friend Sue. "
               "One day they found a big red ball under a tree and played all day. When the sun "
               "went down, Max and Sue walked home, tired and happy, and they slept.\"}\n");
    CHECK(t != NULL);
    CHECK_OK(ds_load(&d, path, t, &o, &err), &err);
    CHECK_EQ_INT(d.kind, DS_KIND_INSTRUCT);
    CHECK_EQ_INT(d.st.n_examples, 2);
    CHECK_EQ_INT(d.st.n_split, 1);
    CHECK(d.train.n >= 3);
    CHECK(d.train.n_counted[0] < 80);
    CHECK_EQ_INT(d.train.mask[79], 0); // the short example's padding
    for (int r = 0; r < d.train.n; r++)
        counted += d.train.n_counted[r];
    CHECK_EQ_INT(counted, d.st.n_counted);
    CHECK_EQ_INT(d.eval.n, 0);
    ds_release(&d);
    /* --eval FILE: held-out rows from another file, of the same kind */
    o.eval_path = path;
    CHECK_OK(ds_load(&d, path, t, &o, &err), &err);
    CHECK_EQ_INT(d.eval.n, d.train.n);
    CHECK(!memcmp(d.eval.in, d.train.in, (size_t)d.train.n * 80 * sizeof(int32_t)));
    ds_release(&d);
    o.eval_path = test_shared(POST);
    CHECK_EQ_INT(ds_load(&d, path, t, &o, &err), TW_EINVAL);
    CHECK(strstr(err.msg, "is text") != NULL);
    tok_free(t);
    gguf_close(f);
}

/* Malformed lines name the file and line; --skip-bad counts them; empty datasets and contexts
 * too small for any example are clear errors. */
TEST(ds_bad_input_is_reported)
{
    struct gguf_file *f = NULL;
    struct tok *t = load_tok(&f);
    struct tw_err err = TW_ERR_INIT;
    struct ds d;
    struct ds_opts o = opts(64, 0);
    char path[700], empty[600], mixed[600];
    snprintf(path, sizeof(path), "%s/bad.jsonl", test_tmpdir());
    snprintf(empty, sizeof(empty), "%s/empty.jsonl", test_tmpdir());
    snprintf(mixed, sizeof(mixed), "%s/mixed", test_tmpdir());
    write_file(path, "{\"instruction\":\"Say yes.\",\"output\":\"Yes.\"}\n"
                     "{\"instruction\":\"Say no.\",\"output\":\n"
                     "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}\n"
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"only a question\"}]}\n"
                     "[1,2]\n");
    write_file(empty, "\n\n");
    CHECK(t != NULL);
    CHECK_EQ_INT(ds_load(&d, path, t, &o, &err), TW_EFORMAT);
    printf("  %s\n", err.msg);
    CHECK(strstr(err.msg, "bad.jsonl:2:") && strstr(err.msg, "--skip-bad"));
    tw_err_clear(&err);
    o.skip_bad = 1;
    CHECK_OK(ds_load(&d, path, t, &o, &err), &err);
    CHECK_EQ_INT(d.st.n_bad, 4);
    CHECK_EQ_INT(d.st.n_examples, 1);
    ds_release(&d);
    o.n_ctx = 8;
    CHECK_EQ_INT(ds_load(&d, path, t, &o, &err), TW_EINVAL);
    printf("  %s\n", err.msg);
    CHECK(strstr(err.msg, "too small") && strstr(err.msg, "--ctx"));
    tw_err_clear(&err);
    o.n_ctx = 64;
    CHECK_EQ_INT(ds_load(&d, empty, t, &o, &err), TW_EINVAL);
    CHECK(strstr(err.msg, "no examples") != NULL);
    tw_err_clear(&err);
    o.eval_split = 0.5;
    CHECK_EQ_INT(ds_load(&d, path, t, &o, &err), TW_EINVAL); // one example: nothing to hold out
    CHECK(strstr(err.msg, "too few") != NULL);
    tw_err_clear(&err);
    mkdir(mixed, 0777);
    snprintf(path, sizeof(path), "%s/a.jsonl", mixed);
    write_file(path, "{\"instruction\":\"a\",\"output\":\"b\"}\n");
    snprintf(path, sizeof(path), "%s/b.txt", mixed);
    write_file(path, "some text\n");
    CHECK_EQ_INT(ds_load(&d, mixed, t, &o, &err), TW_EINVAL);
    CHECK(strstr(err.msg, "mixes") != NULL);
    tw_err_clear(&err);
    CHECK_EQ_INT(ds_load(&d, "/nonexistent/x.jsonl", t, &o, &err), TW_ENOENT);
    tok_free(t);
    gguf_close(f);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
