/* bench_tok.c - `twin bench tokenize`: tokens/s and MB/s of each tokenizer on a text corpus
 * (default: the skeeto blog posts in shared/data/corpora), one document at a time. */
#include "base/buf.h"
#include "base/err.h"
#include "base/mem.h"
#include "cli/cli.h"
#include "nn/gguf.h"
#include "nn/tok.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_DOCS 4096
#define BENCH_MAX_BYTES ((size_t)64 << 20)

struct corpus {
    char **doc;
    size_t *len;
    size_t n;
    size_t bytes;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *shared_dir(void)
{
    const char *s = getenv("TWIN_SHARED");
    return s && *s ? s : "../shared";
}

static int corpus_load(const char *dir, struct corpus *c)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return cli_fail("bench tokenize: cannot open corpus directory '%s'", dir);
    c->doc = tw_calloc(BENCH_MAX_DOCS, sizeof(*c->doc));
    c->len = tw_calloc(BENCH_MAX_DOCS, sizeof(*c->len));
    if (!c->doc || !c->len) {
        closedir(d);
        return cli_fail("bench tokenize: out of memory");
    }
    while ((e = readdir(d)) && c->n < BENCH_MAX_DOCS && c->bytes < BENCH_MAX_BYTES) {
        char path[4096];
        struct tw_buf b = TW_BUF_INIT;
        char chunk[65536];
        size_t k;
        FILE *f;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        f = fopen(path, "rb");
        if (!f)
            continue;
        while ((k = fread(chunk, 1, sizeof(chunk), f)) > 0)
            tw_buf_add(&b, chunk, k);
        fclose(f);
        if (b.err || !b.len) {
            tw_buf_release(&b);
            continue;
        }
        c->doc[c->n] = tw_buf_detach(&b, &c->len[c->n]);
        c->bytes += c->len[c->n];
        c->n++;
    }
    closedir(d);
    if (!c->n)
        return cli_fail("bench tokenize: no documents in '%s'", dir);
    return 0;
}

static void corpus_free(struct corpus *c)
{
    for (size_t i = 0; i < c->n; i++)
        tw_free(c->doc[i]);
    tw_free(c->doc);
    tw_free(c->len);
}

static int bench_one(const char *path, const struct corpus *c)
{
    struct tw_err err = TW_ERR_INIT;
    struct gguf_file *f;
    struct tok *t;
    size_t cap = 1 << 16, total = 0;
    int32_t *ids;
    double t0, t1, tl;

    t0 = now_s();
    if (gguf_open(path, &f, &err) < 0 || tok_new_from_gguf(f, &t, &err) < 0) {
        if (!err.code)
            return cli_fail("bench tokenize: cannot load '%s'", path);
        cli_fail("%s", err.msg);
        return 1;
    }
    tl = now_s() - t0;
    ids = tw_mallocarray(cap, sizeof(*ids));
    t0 = now_s();
    for (size_t i = 0; i < c->n && ids; i++) {
        size_t n;
        int rc = tok_encode(t, c->doc[i], c->len[i], false, false, ids, cap, &n, &err);
        if (rc == TW_ELIMIT) {
            tw_free(ids);
            cap = n;
            ids = tw_mallocarray(cap, sizeof(*ids));
            tw_err_clear(&err);
            rc = ids ? tok_encode(t, c->doc[i], c->len[i], false, false, ids, cap, &n, &err)
                     : TW_ENOMEM;
        }
        if (rc < 0) {
            cli_fail("bench tokenize: %s", err.msg);
            break;
        }
        total += n;
    }
    t1 = now_s() - t0;
    printf("  %-28s %-4s %9zu tokens %8.3f s  %10.0f tokens/s  %7.2f MB/s  (load %.3f s)\n",
           strrchr(path, '/') ? strrchr(path, '/') + 1 : path,
           tok_kind(t) == TOK_SPM ? "spm" : tok_kind(t) == TOK_BPE ? "bpe" : "wpm", total, t1,
           t1 > 0 ? (double)total / t1 : 0.0, t1 > 0 ? (double)c->bytes / t1 / 1e6 : 0.0, tl);
    tw_free(ids);
    tok_free(t);
    gguf_close(f);
    return 0;
}

TW_BENCH(tokenize, "tokens/s and MB/s of the SPM, BPE and WordPiece tokenizers on a corpus")
{
    static const char *const def_models[] = {
        "data/models/stories260K.gguf",      "data/vocab/ggml-vocab-llama-spm.gguf",
        "data/vocab/ggml-vocab-gpt-2.gguf",  "data/vocab/ggml-vocab-qwen2.gguf",
        "data/vocab/ggml-vocab-starcoder.gguf", "data/vocab/ggml-vocab-deepseek-llm.gguf",
        "data/vocab/ggml-vocab-bert-bge.gguf",
    };
    const char *models[16];
    size_t n_models = 0;
    char dir[2048];
    struct corpus c = {NULL, NULL, 0, 0};
    int rc = 0;

    if (cli_wants_help(argc, argv)) {
        printf("usage: twin bench tokenize [-m MODEL]... [CORPUS_DIR]\n\n"
               "Tokenizes every file of CORPUS_DIR (default $TWIN_SHARED/data/corpora/skeeto/"
               "_posts)\nwith each MODEL's vocabulary (default: a set of reference vocabs) "
               "and prints\ntokens/s and MB/s.\n");
        return 0;
    }
    snprintf(dir, sizeof(dir), "%s/data/corpora/skeeto/_posts", shared_dir());
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) {
            if (n_models < 16)
                models[n_models++] = argv[++i];
        } else if (argv[i][0] != '-') {
            snprintf(dir, sizeof(dir), "%s", argv[i]);
        } else {
            return cli_fail("bench tokenize: unknown option '%s'", argv[i]);
        }
    }
    if (corpus_load(dir, &c)) {
        corpus_free(&c);
        return 1;
    }
    printf("corpus: %s: %zu documents, %.2f MB\n", dir, c.n, (double)c.bytes / 1e6);
    if (n_models) {
        for (size_t i = 0; i < n_models; i++)
            rc |= bench_one(models[i], &c);
    } else {
        for (size_t i = 0; i < sizeof(def_models) / sizeof(def_models[0]); i++) {
            char path[2048];
            FILE *probe;
            snprintf(path, sizeof(path), "%s/%s", shared_dir(), def_models[i]);
            probe = fopen(path, "rb");
            if (!probe)
                continue; // not every reference vocab ships a .gguf
            fclose(probe);
            rc |= bench_one(path, &c);
        }
    }
    corpus_free(&c);
    return rc ? 1 : 0;
}
