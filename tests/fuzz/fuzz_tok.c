/* fuzz_tok.c - the tokenizers on arbitrary bytes. The first input byte picks a vocabulary
 * (SPM, byte-level BPE with each pre-tokenizer family, WordPiece) and the flags; the rest is
 * the text; with bit 0x20 set the rest is read as 3-byte code points (random UTF-8 over all of
 * Unicode, surrogates excluded) instead of raw bytes. Checks: encoding never fails except for lack of memory, every id is in range, and
 * for byte-exact vocabs decoding gives back exactly the valid-UTF-8 input.
 * Vocabularies are read from $TWIN_SHARED (default ../shared); missing ones are skipped. */
#include "base/buf.h"
#include "base/err.h"
#include "base/mem.h"
#include "nn/gguf.h"
#include "nn/tok.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const paths[] = {
    "data/models/stories260K.gguf",          "data/vocab/ggml-vocab-gpt-2.gguf",
    "data/vocab/ggml-vocab-llama-spm.gguf",  "data/vocab/ggml-vocab-falcon.gguf",
    "data/vocab/ggml-vocab-deepseek-llm.gguf", "data/vocab/ggml-vocab-deepseek-coder.gguf",
    "data/vocab/ggml-vocab-starcoder.gguf",  "data/vocab/ggml-vocab-bert-bge.gguf",
    "data/vocab/ggml-vocab-gpt-neox.gguf",   "data/vocab/ggml-vocab-phi-3.gguf",
};
#define N_VOCABS (sizeof(paths) / sizeof(paths[0]))

static struct gguf_file *files[N_VOCABS];
static struct tok *toks[N_VOCABS];
static int loaded;

static void load_all(void)
{
    const char *shared = getenv("TWIN_SHARED");
    if (!shared || !*shared)
        shared = "../shared";
    for (size_t i = 0; i < N_VOCABS; i++) {
        struct tw_err err = TW_ERR_INIT;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", shared, paths[i]);
        if (gguf_open(path, &files[i], &err) < 0)
            continue;
        if (tok_new_from_gguf(files[i], &toks[i], &err) < 0) {
            gguf_close(files[i]);
            files[i] = NULL;
        }
    }
    loaded = 1;
}

/* llama.cpp reads invalid UTF-8 as U+FFFD and re-encodes overlong forms minimally, so
 * exactness is only checked on strict UTF-8. */
static int valid_utf8(const uint8_t *s, size_t n)
{
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                              : (c & 0xf8) == 0xf0 ? 4 : 0;
        uint32_t cp;
        if (!k || i + k > n)
            return 0;
        cp = k == 1 ? c : (uint32_t)(c & (0x7f >> k));
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if (cp < min_cp[k] || cp > 0x10ffff)
            return 0;
        i += k;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tw_err err = TW_ERR_INIT;
    struct tok *t;
    const char *text;
    size_t len, n = 0, cap;
    int32_t *ids;
    char *utf8 = NULL;
    bool add_special, parse_special;
    int rc;

    if (!loaded)
        load_all();
    if (size < 1)
        return 0;
    t = toks[data[0] % N_VOCABS];
    if (!t)
        return 0;
    add_special = data[0] & 0x40;
    parse_special = data[0] & 0x80;
    text = (const char *)data + 1;
    len = size - 1;
    if (data[0] & 0x20) { // random code points -> valid UTF-8
        size_t o = 0;
        utf8 = tw_malloc((len / 3) * 4 + 1);
        if (!utf8)
            return 0;
        for (size_t i = 0; i + 3 <= len; i += 3) {
            uint32_t cp = ((uint32_t)data[1 + i] << 16 | (uint32_t)data[2 + i] << 8 | data[3 + i]) %
                          0x110000;
            if (cp >= 0xd800 && cp <= 0xdfff)
                cp -= 0x800;
            if (cp < 0x80) {
                utf8[o++] = (char)cp;
            } else if (cp < 0x800) {
                utf8[o++] = (char)(0xc0 | (cp >> 6));
                utf8[o++] = (char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                utf8[o++] = (char)(0xe0 | (cp >> 12));
                utf8[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                utf8[o++] = (char)(0x80 | (cp & 0x3f));
            } else {
                utf8[o++] = (char)(0xf0 | (cp >> 18));
                utf8[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
                utf8[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                utf8[o++] = (char)(0x80 | (cp & 0x3f));
            }
        }
        text = utf8;
        len = o;
    }
    cap = len * 2 + 8;
    ids = tw_mallocarray(cap, sizeof(*ids));
    if (!ids) {
        tw_free(utf8);
        return 0;
    }
    rc = tok_encode(t, text, len, add_special, parse_special, ids, cap, &n, &err);
    TW_ASSERT(rc == 0 || rc == TW_ENOMEM || rc == TW_ELIMIT || rc == TW_EUNSUP);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            TW_ASSERT(ids[i] >= 0 && ids[i] < tok_n_vocab(t));
        /* byte-level BPE spells any valid UTF-8 exactly; the deepseek vocabs also skip the
         * space clean-up on decoding, so the round trip is exact there */
        if (!add_special && valid_utf8((const uint8_t *)text, len)) {
            struct tw_buf out = TW_BUF_INIT;
            tok_decode(t, ids, n, false, !parse_special ? false : true, &out);
            if (strstr(paths[data[0] % N_VOCABS], "deepseek"))
                TW_ASSERT(out.len == len && !memcmp(out.data, text, len));
            tw_buf_release(&out);
        }
    }
    tw_free(ids);
    tw_free(utf8);
    return 0;
}
