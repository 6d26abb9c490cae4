/* fuzz_dataset.c - one training-dataset JSONL line (train/ft.h ds_encode_example) on arbitrary
 * bytes. The first byte picks the chat template; the rest is the line. Checks: the line is
 * either refused with an error or gives tokens in the vocabulary, a BOS first that is not a
 * target, and at least one counted target (the assistant's reply or the EOS after it).
 * The tokenizer is stories260K's from $TWIN_SHARED (default ../shared); without it the input is
 * skipped. */
#include "base/err.h"
#include "base/mem.h"
#include "nn/chat.h"
#include "nn/gguf.h"
#include "nn/tok.h"
#include "train/ft.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gguf_file *file;
static struct tok *tk;
static int loaded;

static void load(void)
{
    const char *shared = getenv("TWIN_SHARED");
    struct tw_err err = TW_ERR_INIT;
    char path[1024];
    if (!shared || !*shared)
        shared = "../shared";
    snprintf(path, sizeof(path), "%s/data/models/stories260K.gguf", shared);
    if (gguf_open(path, &file, &err) == 0 && tok_new_from_gguf(file, &tk, &err) < 0) {
        gguf_close(file);
        file = NULL;
    }
    loaded = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tw_err err = TW_ERR_INIT;
    int32_t *ids = NULL;
    uint8_t *flags = NULL;
    size_t n = 0, counted = 0;
    int rc;
    if (!loaded)
        load();
    if (!tk || size < 1 || size > 4096)
        return 0;
    rc = ds_encode_example((const char *)data + 1, size - 1, tk, data[0] % LLM_CHAT_COUNT, &ids,
                           &flags, &n, &err);
    if (rc < 0) {
        if (!err.msg[0] || ids || flags)
            abort();
        return 0;
    }
    if (n < 2 || ids[0] != tok_bos(tk) || flags[0])
        abort();
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tok_n_vocab(tk) || flags[i] > 1)
            abort();
        counted += flags[i];
    }
    if (!counted)
        abort();
    tw_free(ids);
    tw_free(flags);
    return 0;
}
