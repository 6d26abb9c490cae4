/* bench_feature.c - `twin bench embed` and `twin bench stream`.
 *
 * embed: sentences/s and tokens/s of the BERT encoder on a bge-small-shaped model (384 wide, 12
 * layers, 12 heads, FFN 1536, the real bge vocabulary; random weights written to a temporary
 * GGUF) over sentences of the skeeto corpus, shown beside llama.cpp's figures for that shape
 * recorded on this kind of machine (shared/refs/llama-bench.md; not measured in this run).
 * stream: the feature pipeline end to end on a fresh store: documents/s and chunks/s lexical
 * only (461 posts) and with that encoder (24 posts), and the delay from a document's insert to
 * its first search hit with `--follow` running. */
#include "cli/cli.h"
#include "collect/collect.h"
#include "feature/stream.h"
#include "nn/enc.h"
#include "nn/gguf.h"
#include "store/doc.h"
#include "vector/fstore.h"

#include "base/mem.h"
#include "base/time.h"

#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *shared_dir(void)
{
    const char *s = getenv("TWIN_SHARED");
    return s && *s ? s : "../shared";
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A Gaussian-ish value from a 64-bit LCG (sum of uniforms): weights for a synthetic model. */
static float rnd(uint64_t *s)
{
    float acc = 0;
    for (int i = 0; i < 4; i++) {
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        acc += (float)((*s >> 40) & 0xffffff) / 16777216.0f - 0.5f;
    }
    return acc * 1.7320508f * 0.5f;
}

/* Writes a bge-small-shaped BERT with random weights and the bge vocabulary to 'path'. */
static int write_synth_bert(const char *path, struct tw_err *err)
{
    const int C = 384, L = 12, F = 1536, CTX = 512;
    struct gguf_file *vocab = NULL;
    struct gguf_writer *w = NULL;
    float *bufs[16 * 12 + 16] = {0};
    int nb = 0, rc, V;
    uint64_t seed = 42;
    char name[64];
    char vpath[PATH_MAX];

    snprintf(vpath, sizeof(vpath), "%s/refs/models/tiny-bert-bge-synth.gguf", shared_dir());
    if ((rc = gguf_open(vpath, &vocab, err)) < 0)
        return rc;
    V = (int)gguf_find_tensor(vocab, "token_embd.weight")->ne[1];
    w = gguf_writer_new();
    if (!w) {
        gguf_close(vocab);
        return tw_errf(err, TW_ENOMEM, "out of memory");
    }
    gguf_writer_copy_kv(w, vocab);
    gguf_writer_set_str(w, "general.name", "bge-small-shape-synth");
    gguf_writer_set_u32(w, "bert.block_count", (uint32_t)L);
    gguf_writer_set_u32(w, "bert.embedding_length", (uint32_t)C);
    gguf_writer_set_u32(w, "bert.feed_forward_length", (uint32_t)F);
    gguf_writer_set_u32(w, "bert.context_length", (uint32_t)CTX);
    gguf_writer_set_u32(w, "bert.attention.head_count", 12);

#define ADD(nm, n0, n1, scale, bias)                                                               \
    do {                                                                                           \
        int64_t ne_[2] = {(n0), (n1)};                                                             \
        float *b_ = tw_mallocarray((size_t)(n0) * (size_t)(n1), sizeof(float));                    \
        if (!b_) {                                                                                 \
            rc = tw_errf(err, TW_ENOMEM, "out of memory");                                         \
            goto out;                                                                              \
        }                                                                                          \
        bufs[nb++] = b_;                                                                           \
        for (size_t i_ = 0; i_ < (size_t)(n0) * (size_t)(n1); i_++)                                \
            b_[i_] = (scale) ? (scale) * rnd(&seed) : (bias);                                      \
        gguf_writer_add_tensor(w, nm, GGUF_T_F32, (n1) > 1 ? 2 : 1, ne_, b_);                      \
    } while (0)
    ADD("token_embd.weight", C, V, 0.05f, 0.0f);
    ADD("token_types.weight", C, 2, 0.05f, 0.0f);
    ADD("position_embd.weight", C, CTX, 0.05f, 0.0f);
    ADD("token_embd_norm.weight", C, 1, 0.0f, 1.0f);
    ADD("token_embd_norm.bias", C, 1, 0.0f, 0.0f);
    for (int l = 0; l < L; l++) {
        static const char *const sq[] = {"attn_q", "attn_k", "attn_v", "attn_output"};
        for (int i = 0; i < 4; i++) {
            snprintf(name, sizeof(name), "blk.%d.%s.weight", l, sq[i]);
            ADD(name, C, C, 0.05f, 0.0f);
            snprintf(name, sizeof(name), "blk.%d.%s.bias", l, sq[i]);
            ADD(name, C, 1, 0.0f, 0.0f);
        }
        snprintf(name, sizeof(name), "blk.%d.attn_output_norm.weight", l);
        ADD(name, C, 1, 0.0f, 1.0f);
        snprintf(name, sizeof(name), "blk.%d.attn_output_norm.bias", l);
        ADD(name, C, 1, 0.0f, 0.0f);
        snprintf(name, sizeof(name), "blk.%d.ffn_up.weight", l);
        ADD(name, C, F, 0.05f, 0.0f);
        snprintf(name, sizeof(name), "blk.%d.ffn_up.bias", l);
        ADD(name, F, 1, 0.0f, 0.0f);
        snprintf(name, sizeof(name), "blk.%d.ffn_down.weight", l);
        ADD(name, F, C, 0.05f, 0.0f);
        snprintf(name, sizeof(name), "blk.%d.ffn_down.bias", l);
        ADD(name, C, 1, 0.0f, 0.0f);
        snprintf(name, sizeof(name), "blk.%d.layer_output_norm.weight", l);
        ADD(name, C, 1, 0.0f, 1.0f);
        snprintf(name, sizeof(name), "blk.%d.layer_output_norm.bias", l);
        ADD(name, C, 1, 0.0f, 0.0f);
    }
#undef ADD
    rc = gguf_writer_write(w, path, err);
out:
    gguf_writer_free(w);
    gguf_close(vocab);
    for (int i = 0; i < nb; i++)
        tw_free(bufs[i]);
    return rc;
}

/* Sentences from one skeeto post: lines of 40..300 bytes without markup. */
static int load_sentences(char ***out, size_t **lens, int max)
{
    char path[PATH_MAX];
    FILE *f;
    char line[512];
    int n = 0;
    snprintf(path, sizeof(path),
             "%s/data/corpora/skeeto/_posts/2018-12-25-A-Survey-of-RANDOM.markdown", shared_dir());
    f = fopen(path, "r");
    if (!f)
        return -1;
    *out = tw_calloc((size_t)max, sizeof(char *));
    *lens = tw_calloc((size_t)max, sizeof(size_t));
    while (*out && *lens && n < max && fgets(line, sizeof(line), f)) {
        size_t l = strcspn(line, "\n");
        if (l < 40 || l > 300 || strchr("#`[<-*|", line[0]))
            continue;
        (*out)[n] = tw_strndup(line, l);
        (*lens)[n++] = l;
    }
    fclose(f);
    return n;
}

TW_BENCH(embed, "BERT encoder sentences/s and tokens/s on a bge-small-shaped model")
{
    char tmp[] = "/tmp/twin-bench-embed-XXXXXX", path[PATH_MAX];
    struct tw_err err = TW_ERR_INIT;
    struct feat_embedder *emb = NULL;
    char **texts = NULL;
    size_t *lens = NULL;
    float *out = NULL;
    int n, rc = 1;
    long tokens = 0;
    (void)argc;
    (void)argv;

    if (!mkdtemp(tmp))
        return cli_fail("bench embed: cannot create a temporary directory");
    snprintf(path, sizeof(path), "%s/bge-small-synth.gguf", tmp);
    if (write_synth_bert(path, &err) < 0 || feat_embedder_open(path, 0, &emb, &err) < 0) {
        cli_fail("bench embed: %s", err.msg);
        goto done;
    }
    n = load_sentences(&texts, &lens, 256);
    if (n <= 0) {
        cli_fail("bench embed: cannot read sentences from the skeeto corpus under $TWIN_SHARED");
        goto done;
    }
    for (int i = 0; i < n; i++)
        tokens += feat_embedder_count(emb, texts[i], lens[i]) + 2;
    out = tw_mallocarray((size_t)n * 384, sizeof(float));
    {
        double t0 = tw_time_mono_s(), s;
        if (!out ||
            feat_embedder_embed(emb, (const char *const *)texts, lens, n, out, &err) < 0) {
            cli_fail("bench embed: %s", out ? err.msg : "out of memory");
            goto done;
        }
        s = tw_time_mono_s() - t0;
        printf("embed: bge-small shape (384x12, F32, %d threads), %d sentences, %ld tokens\n",
               tw_pool_size(feat_embedder_pool(emb)), n, tokens);
        printf("  %.1f sentences/s  %.0f tokens/s   (llama.cpp recorded here: llama-embedding "
               "145 sentences/s, 4.4k tokens/s; ratio %.2fx tokens/s)\n",
               n / s, tokens / s, tokens / s / 4400.0);
    }
    rc = 0;
done:
    for (int i = 0; texts && i < 256; i++)
        tw_free(texts[i]);
    tw_free(texts);
    tw_free(lens);
    tw_free(out);
    feat_embedder_free(emb);
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

/* ---- stream ---- */

static int put_doc(void *ctx, const struct doc *d, struct tw_err *err)
{
    return doc_store_put(ctx, d, NULL, err);
}

static void ignore_fail(void *ctx, const char *item, const char *message)
{
    (void)ctx;
    (void)item;
    (void)message;
}

/* A store at dir holding the first 'max' posts (all when max <= 0). */
static int make_store(const char *dir, int max, struct doc_store **out, struct tw_err *err)
{
    char corpus[PATH_MAX], sub[PATH_MAX];
    struct src_opts o = {.author_name = "Chris Wellons"};
    struct src_sink sink = {put_doc, ignore_fail, NULL};
    int rc;

    snprintf(corpus, sizeof(corpus), "%s/data/corpora/skeeto/_posts", shared_dir());
    if ((rc = doc_store_open(dir, out, err)) < 0)
        return rc;
    sink.ctx = *out;
    if (max <= 0)
        return src_files_import(corpus, &o, &sink, err);
    snprintf(sub, sizeof(sub), "%s/posts", dir);
    if (mkdir(sub, 0755) != 0)
        return tw_errf(err, TW_EIO, "cannot create '%s'", sub);
    {
        /* Copy the first 'max' files (names sort by date) into a folder of their own. */
        char cmd[4 * PATH_MAX + 128];
        snprintf(cmd, sizeof(cmd), "ls '%s' | head -%d | while read f; do cp '%s'/\"$f\" '%s'/; done",
                 corpus, max, corpus, sub);
        if (system(cmd) != 0)
            return tw_errf(err, TW_EIO, "cannot copy posts into '%s'", sub);
    }
    return src_files_import(sub, &o, &sink, err);
}

static int stream_pass(const char *label, const char *dir, int max, const char *model,
                       struct tw_err *err)
{
    struct doc_store *ds = NULL;
    struct vec_store *vs = NULL;
    struct feat_embedder *emb = NULL;
    struct feat_stream_opts o = {64, 0, -1, false, 5000, NULL, NULL};
    struct feat_stream_stats st;
    double t0, s;
    int rc;

    if ((rc = make_store(dir, max, &ds, err)) < 0 || (rc = vec_store_open(dir, &vs, err)) < 0)
        goto out;
    if (model && (rc = feat_embedder_open(model, 0, &emb, err)) < 0)
        goto out;
    t0 = tw_time_mono_s();
    if ((rc = feat_stream_run(ds, vs, emb, &o, NULL, &st, err)) < 0)
        goto out;
    s = tw_time_mono_s() - t0;
    printf("  %-26s %4lld docs %6lld chunks %7.2f s %8.1f docs/s %8.1f chunks/s\n", label,
           (long long)st.upserts, (long long)st.chunks, s, st.upserts / s, st.chunks / s);
out:
    feat_embedder_free(emb);
    vec_store_close(vs);
    doc_store_close(ds);
    return rc;
}

struct follower {
    const char *dir;
    volatile sig_atomic_t stop;
    int rc;
    struct tw_err err;
};

static void *follow_main(void *arg)
{
    struct follower *f = arg;
    struct doc_store *ds = NULL;
    struct vec_store *vs = NULL;
    struct feat_stream_opts o = {64, 0, -1, true, 1000, NULL, NULL};
    struct feat_stream_stats st;
    if ((f->rc = doc_store_open(f->dir, &ds, &f->err)) == 0 &&
        (f->rc = vec_store_open(f->dir, &vs, &f->err)) == 0)
        f->rc = feat_stream_run(ds, vs, NULL, &o, &f->stop, &st, &f->err);
    vec_store_close(vs);
    doc_store_close(ds);
    return NULL;
}

/* Median delay from doc_store_put of a new post to its first lexical hit, follow mode. */
static int delay_pass(const char *dir, struct tw_err *err)
{
    struct follower f = {dir, 0, 0, TW_ERR_INIT};
    struct doc_store *ds = NULL;
    struct vec_store *vs = NULL;
    pthread_t th;
    double delays[5];
    int rc = 0;

    if ((rc = doc_store_open(dir, &ds, err)) < 0 || (rc = vec_store_open(dir, &vs, err)) < 0)
        goto out;
    if (pthread_create(&th, NULL, follow_main, &f) != 0) {
        rc = tw_errf(err, TW_EINTERNAL, "cannot start the follower thread");
        goto out;
    }
    usleep(300000);
    for (int i = 0; i < 5 && rc == 0; i++) {
        char url[96], word[48], content[160];
        struct doc d = {0};
        double t0;
        snprintf(word, sizeof(word), "benchword%dq%ld", i, (long)getpid());
        snprintf(url, sizeof(url), "https://bench.example/%s", word);
        snprintf(content, sizeof(content), "A new post about %s, written just now.", word);
        d.kind = "post";
        d.platform = "web";
        d.url = url;
        d.content = content;
        d.published_at = DOC_TIME_UNKNOWN;
        d.fetched_at = DOC_TIME_UNKNOWN;
        t0 = tw_time_mono_s();
        if ((rc = doc_store_put(ds, &d, NULL, err)) < 0)
            break;
        for (;;) {
            struct vec_query q = {word, NULL, VEC_MODE_LEXICAL, 1, NULL, NULL, NULL, INT64_MIN};
            struct vec_hit_row *h = NULL;
            size_t n = 0;
            if ((rc = vec_store_search(vs, &q, &h, &n, NULL, err)) < 0)
                break;
            vec_hits_free(h, n);
            if (n > 0)
                break;
            if (tw_time_mono_s() - t0 > 30) {
                rc = tw_errf(err, TW_ETIMEOUT, "no hit 30 s after the insert");
                break;
            }
            usleep(2000);
        }
        delays[i] = (tw_time_mono_s() - t0) * 1000;
    }
    f.stop = 1;
    pthread_join(th, NULL);
    if (rc == 0 && f.rc < 0)
        rc = tw_errf(err, f.rc, "%s", f.err.msg);
    if (rc == 0) {
        for (int i = 0; i < 5; i++) /* insertion sort for the median */
            for (int j = i; j > 0 && delays[j] < delays[j - 1]; j--) {
                double t = delays[j];
                delays[j] = delays[j - 1];
                delays[j - 1] = t;
            }
        printf("  insert -> first search hit   median %.0f ms (min %.0f, max %.0f) over 5 "
               "inserts, --follow running\n", delays[2], delays[0], delays[4]);
    }
out:
    vec_store_close(vs);
    doc_store_close(ds);
    return rc;
}

TW_BENCH(stream, "feature pipeline docs/s and chunks/s, with and without embedding; insert-to-hit delay")
{
    char tmp[] = "/tmp/twin-bench-stream-XXXXXX", a[PATH_MAX], b[PATH_MAX], model[PATH_MAX];
    struct tw_err err = TW_ERR_INIT;
    int rc = 1;
    (void)argc;
    (void)argv;

    if (!mkdtemp(tmp))
        return cli_fail("bench stream: cannot create a temporary directory");
    snprintf(a, sizeof(a), "%s/lexical", tmp);
    snprintf(b, sizeof(b), "%s/model", tmp);
    snprintf(model, sizeof(model), "%s/bge-small-synth.gguf", tmp);
    printf("stream: skeeto posts through clean -> chunk -> (embed) -> features.db\n");
    if (stream_pass("lexical only, 461 posts", a, 0, NULL, &err) < 0 ||
        write_synth_bert(model, &err) < 0 ||
        stream_pass("bge-small shape, 24 posts", b, 24, model, &err) < 0 ||
        delay_pass(a, &err) < 0) {
        cli_fail("bench stream: %s", err.msg);
        goto done;
    }
    rc = 0;
done:
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
