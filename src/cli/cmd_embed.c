/* cmd_embed.c - `twin embed`: embeddings of texts with a BERT-family model, as JSON. */
#include "cli/cli.h"
#include "cli/cli_store.h"

#include "base/buf.h"
#include "base/mem.h"
#include "feature/stream.h"

#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: twin embed -m FILE.gguf [-t N] TEXT...\n\n"
               "Prints one JSON object per text: {\"text\":…,\"embedding\":[…]} with the\n"
               "L2-normalized pooled embedding (pooling from the model's metadata).\n");
}

TW_COMMAND(embed, "embed texts with a BERT-family model (JSON output)")
{
    const char *model = NULL;
    struct feat_embedder *emb = NULL;
    struct tw_err err = TW_ERR_INIT;
    const char **texts = NULL;
    size_t *lens = NULL;
    float *out = NULL;
    int n = 0, dim, rc = 1;
    long long threads = 0;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    texts = tw_calloc((size_t)argc, sizeof(*texts));
    lens = tw_calloc((size_t)argc, sizeof(*lens));
    if (!texts || !lens)
        goto out;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(argv[i], "-t") && i + 1 < argc) {
            if (cli_parse_int("-t", argv[++i], 1, 1024, &threads))
                goto out;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            usage(stderr);
            rc = 2;
            goto out;
        } else {
            texts[n] = argv[i];
            lens[n++] = strlen(argv[i]);
        }
    }
    if (!model || n == 0) {
        usage(stderr);
        rc = 2;
        goto out;
    }
    if (feat_embedder_open(model, (int)threads, &emb, &err) < 0) {
        cli_fail("%s", err.msg);
        goto out;
    }
    dim = feat_embedder_dim(emb);
    out = tw_mallocarray((size_t)n * (size_t)dim, sizeof(float));
    if (!out || feat_embedder_embed(emb, texts, lens, n, out, &err) < 0) {
        cli_fail("%s", out ? err.msg : "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        struct tw_buf b = TW_BUF_INIT;
        tw_buf_puts(&b, "{\"text\":");
        tw_buf_json_str(&b, texts[i], lens[i]);
        tw_buf_puts(&b, ",\"embedding\":[");
        for (int c = 0; c < dim; c++)
            tw_buf_printf(&b, "%s%.9g", c ? "," : "", out[(size_t)i * dim + c]);
        tw_buf_puts(&b, "]}");
        puts(b.data);
        tw_buf_release(&b);
    }
    rc = 0;
out:
    tw_free(out);
    tw_free(texts);
    tw_free(lens);
    feat_embedder_free(emb);
    return rc;
}
