/* tok.c - vocabularies from GGUF metadata and the SPM, BPE and WPM tokenizers (see tok.h).
 *
 * The behaviour follows llama.cpp's llama-vocab.cpp (commit 3f545bec, engine-notes §7):
 * loading defaults and flags, the attribute fix-ups by token text, the special-token
 * partition, the three algorithms, token_to_piece and detokenize with its space clean-up.
 */
#include "nn/tok.h"

#include "base/mem.h"
#include "nn/tok_int.h"

#include <stdio.h>
#include <string.h>

#define TOK_MAX_VOCAB   ((uint64_t)1 << 24)
#define TOK_MAX_TOKLEN  ((uint64_t)1 << 16)

struct tok_text {
    uint32_t off; // into tok.blob
    uint32_t len;
};

struct tok {
    enum tok_kind kind;
    int32_t n_vocab;
    char *blob;              // all token texts
    struct tok_text *text;   // (n_vocab)
    float *score;            // (n_vocab)
    uint16_t *attr;          // (n_vocab) enum tok_attr bits
    uint8_t *eog;            // (n_vocab) 1 for end-of-generation ids
    int32_t *map;            // text -> id + 1, open addressing
    size_t map_cap;
    size_t max_token_len;

    /* BPE merges: (left, right) -> rank */
    char *mblob;
    struct tok_text *mleft, *mright; // (n_merges), into mblob
    int32_t *mmap;                   // rank + 1, open addressing
    size_t mmap_cap;
    size_t n_merges;
    struct tok_pre *pre;

    int32_t *special; // ids of control / user-defined / unknown tokens, longest text first
    size_t n_special;

    int32_t bos, eos, eot, eom, unk, sep, pad, mask, nl;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    bool add_bos, add_eos, add_sep, add_space_prefix, clean_spaces, ignore_merges;
    bool lowercase, strip_accents; // WPM normalizer (BertNormalizer options)
};

/* ---- hashing ---- */

static uint64_t fnv(uint64_t h, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

#define FNV0 1469598103934665603ull

static const char *ttext(const struct tok *t, int32_t id, size_t *len)
{
    *len = t->text[id].len;
    return t->blob + t->text[id].off;
}

int32_t tok_find(const struct tok *t, const char *s, size_t len)
{
    size_t h = (size_t)fnv(FNV0, s, len) & (t->map_cap - 1);
    while (t->map[h]) {
        int32_t id = t->map[h] - 1;
        if (t->text[id].len == len && !memcmp(t->blob + t->text[id].off, s, len))
            return id;
        h = (h + 1) & (t->map_cap - 1);
    }
    return TOK_NULL;
}

/* Later ids win for duplicate texts, as llama.cpp's token_to_id[word] = i does. */
static void map_insert(struct tok *t, int32_t id)
{
    size_t len;
    const char *s = ttext(t, id, &len);
    size_t h = (size_t)fnv(FNV0, s, len) & (t->map_cap - 1);
    while (t->map[h]) {
        int32_t o = t->map[h] - 1;
        if (t->text[o].len == len && !memcmp(t->blob + t->text[o].off, s, len)) {
            t->map[h] = id + 1;
            return;
        }
        h = (h + 1) & (t->map_cap - 1);
    }
    t->map[h] = id + 1;
}

static uint64_t merge_hash(const char *l, size_t ll, const char *r, size_t rl)
{
    uint64_t h = fnv(FNV0, l, ll);
    h = (h ^ 0x1ff) * 1099511628211ull; // separator no byte can produce
    return fnv(h, r, rl);
}

static int32_t bpe_rank(const struct tok *t, const char *l, size_t ll, const char *r, size_t rl)
{
    size_t h;
    if (!t->mmap_cap)
        return -1;
    h = (size_t)merge_hash(l, ll, r, rl) & (t->mmap_cap - 1);
    while (t->mmap[h]) {
        int32_t k = t->mmap[h] - 1;
        if (t->mleft[k].len == ll && t->mright[k].len == rl &&
            !memcmp(t->mblob + t->mleft[k].off, l, ll) &&
            !memcmp(t->mblob + t->mright[k].off, r, rl))
            return k;
        h = (h + 1) & (t->mmap_cap - 1);
    }
    return -1;
}

/* ---- loading ---- */

static size_t pow2_at_least(uint64_t n)
{
    size_t cap = 16;
    while (cap < n)
        cap *= 2;
    return cap;
}

static bool str_eq(struct gguf_str s, const char *c)
{
    return s.len == strlen(c) && !memcmp(s.ptr, c, s.len);
}

static int load_tokens(struct tok *t, const struct gguf_file *f, struct tw_err *err)
{
    int64_t ki = gguf_find_key(f, "tokenizer.ggml.tokens");
    int64_t si = gguf_find_key(f, "tokenizer.ggml.scores");
    int64_t ti = gguf_find_key(f, "tokenizer.ggml.token_type");
    const unsigned char *scores = NULL, *types = NULL;
    bool iscores = false;
    uint64_t n, total = 0;
    char empty[32];

    if (ki < 0)
        return tw_errf(err, TW_EFORMAT, "no tokenizer.ggml.tokens (model has no vocabulary)");
    if (gguf_kv_type(f, ki) != GGUF_V_ARRAY || gguf_kv_arr_type(f, ki) != GGUF_V_STRING)
        return tw_errf(err, TW_EFORMAT, "tokenizer.ggml.tokens is not an array of strings");
    n = gguf_kv_arr_n(f, ki);
    if (n == 0 || n > TOK_MAX_VOCAB)
        return tw_errf(err, TW_EFORMAT, "tokenizer.ggml.tokens has %llu tokens (1 to %llu)",
                       (unsigned long long)n, (unsigned long long)TOK_MAX_VOCAB);
    if (si >= 0) {
        enum gguf_vtype at =
            gguf_kv_type(f, si) == GGUF_V_ARRAY ? gguf_kv_arr_type(f, si) : GGUF_V_ARRAY;
        if (at != GGUF_V_F32 && at != GGUF_V_I32)
            return tw_errf(err, TW_EFORMAT, "tokenizer.ggml.scores is not an f32 or i32 array");
        if (gguf_kv_arr_n(f, si) < n)
            return tw_errf(err, TW_EFORMAT, "tokenizer.ggml.scores has %llu entries for %llu "
                           "tokens", (unsigned long long)gguf_kv_arr_n(f, si),
                           (unsigned long long)n);
        scores = gguf_kv_arr_data(f, si);
        iscores = at == GGUF_V_I32;
    }
    if (ti >= 0) {
        if (gguf_kv_type(f, ti) != GGUF_V_ARRAY || gguf_kv_arr_type(f, ti) != GGUF_V_I32)
            return tw_errf(err, TW_EFORMAT, "tokenizer.ggml.token_type is not an i32 array");
        if (gguf_kv_arr_n(f, ti) < n)
            return tw_errf(err, TW_EFORMAT, "tokenizer.ggml.token_type has %llu entries for "
                           "%llu tokens", (unsigned long long)gguf_kv_arr_n(f, ti),
                           (unsigned long long)n);
        types = gguf_kv_arr_data(f, ti);
    }
    for (uint64_t i = 0; i < n; i++) {
        struct gguf_str s = gguf_kv_arr_str(f, ki, i);
        if (s.len > TOK_MAX_TOKLEN)
            return tw_errf(err, TW_EFORMAT, "token %llu is %llu bytes long, limit %llu",
                           (unsigned long long)i, (unsigned long long)s.len,
                           (unsigned long long)TOK_MAX_TOKLEN);
        total += s.len ? s.len : 32;
    }
    if (total > UINT32_MAX)
        return tw_errf(err, TW_ELIMIT, "token texts total %llu bytes, limit 4 GiB",
                       (unsigned long long)total);
    t->n_vocab = (int32_t)n;
    t->blob = tw_malloc((size_t)total + 1);
    t->text = tw_mallocarray(n, sizeof(*t->text));
    t->score = tw_calloc(n, sizeof(*t->score));
    t->attr = tw_calloc(n, sizeof(*t->attr));
    t->eog = tw_calloc(n, 1);
    t->map_cap = pow2_at_least(n * 2);
    t->map = tw_calloc(t->map_cap, sizeof(*t->map));
    if (!t->blob || !t->text || !t->score || !t->attr || !t->eog || !t->map)
        return tw_errf(err, TW_ENOMEM, "out of memory loading %llu tokens", (unsigned long long)n);
    total = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct gguf_str s = gguf_kv_arr_str(f, ki, i);
        int32_t ty = 1;
        if (!s.len) { // llama.cpp names empty tokens so they stay distinct
            int k = snprintf(empty, sizeof(empty), "[EMPTY_%llu]", (unsigned long long)i);
            s.ptr = empty;
            s.len = (uint64_t)k;
        }
        memcpy(t->blob + total, s.ptr, s.len);
        t->text[i].off = (uint32_t)total;
        t->text[i].len = (uint32_t)s.len;
        total += s.len;
        if (s.len > t->max_token_len)
            t->max_token_len = s.len;
        if (scores && iscores) {
            int32_t v;
            memcpy(&v, scores + 4 * i, 4);
            t->score[i] = (float)v;
        } else if (scores) {
            memcpy(&t->score[i], scores + 4 * i, 4);
        }
        if (types)
            memcpy(&ty, types + 4 * i, 4);
        switch (ty) {
        case 1:
            t->attr[i] = TOK_ATTR_NORMAL;
            break;
        case 2:
            t->attr[i] = TOK_ATTR_UNKNOWN;
            break;
        case 3:
            t->attr[i] = TOK_ATTR_CONTROL;
            break;
        case 4:
            t->attr[i] = TOK_ATTR_USER_DEFINED;
            break;
        case 5:
            t->attr[i] = TOK_ATTR_UNUSED;
            break;
        case 6:
            t->attr[i] = TOK_ATTR_BYTE;
            break;
        default:
            t->attr[i] = TOK_ATTR_UNDEFINED;
            break;
        }
        map_insert(t, (int32_t)i);
    }
    return 0;
}

static int load_merges(struct tok *t, const struct gguf_file *f, struct tw_err *err)
{
    int64_t mi = gguf_find_key(f, "tokenizer.ggml.merges");
    uint64_t n, total = 0;

    if (mi < 0)
        return tw_errf(err, TW_EFORMAT, "no tokenizer.ggml.merges (required for gpt2 vocabs)");
    if (gguf_kv_type(f, mi) != GGUF_V_ARRAY || gguf_kv_arr_type(f, mi) != GGUF_V_STRING)
        return tw_errf(err, TW_EFORMAT, "tokenizer.ggml.merges is not an array of strings");
    n = gguf_kv_arr_n(f, mi);
    if (n > TOK_MAX_VOCAB * 4)
        return tw_errf(err, TW_ELIMIT, "tokenizer.ggml.merges has %llu entries",
                       (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++)
        total += gguf_kv_arr_str(f, mi, i).len;
    if (total > UINT32_MAX)
        return tw_errf(err, TW_ELIMIT, "merges total %llu bytes", (unsigned long long)total);
    t->n_merges = n;
    t->mblob = tw_malloc((size_t)total + 1);
    t->mleft = tw_mallocarray(n ? n : 1, sizeof(*t->mleft));
    t->mright = tw_mallocarray(n ? n : 1, sizeof(*t->mright));
    t->mmap_cap = pow2_at_least(n * 2);
    t->mmap = tw_calloc(t->mmap_cap, sizeof(*t->mmap));
    if (!t->mblob || !t->mleft || !t->mright || !t->mmap)
        return tw_errf(err, TW_ENOMEM, "out of memory loading %llu merges",
                       (unsigned long long)n);
    total = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct gguf_str s = gguf_kv_arr_str(f, mi, i);
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        size_t h;
        memcpy(t->mblob + total, s.ptr, s.len);
        if (sp) { // "a b": split at the first space after the first byte
            size_t p = (size_t)(sp - s.ptr);
            t->mleft[i].off = (uint32_t)total;
            t->mleft[i].len = (uint32_t)p;
            t->mright[i].off = (uint32_t)(total + p + 1);
            t->mright[i].len = (uint32_t)(s.len - p - 1);
        } else { // llama.cpp keeps ("", "") for a merge without a space
            t->mleft[i].off = t->mright[i].off = (uint32_t)total;
            t->mleft[i].len = t->mright[i].len = 0;
        }
        total += s.len;
        /* the first rank of a pair wins (bpe_ranks.emplace) */
        h = (size_t)merge_hash(t->mblob + t->mleft[i].off, t->mleft[i].len,
                               t->mblob + t->mright[i].off, t->mright[i].len) &
            (t->mmap_cap - 1);
        for (;;) {
            int32_t k = t->mmap[h] - 1;
            if (k < 0) {
                t->mmap[h] = (int32_t)i + 1;
                break;
            }
            if (t->mleft[k].len == t->mleft[i].len && t->mright[k].len == t->mright[i].len &&
                !memcmp(t->mblob + t->mleft[k].off, t->mblob + t->mleft[i].off,
                        t->mleft[i].len) &&
                !memcmp(t->mblob + t->mright[k].off, t->mblob + t->mright[i].off,
                        t->mright[i].len))
                break;
            h = (h + 1) & (t->mmap_cap - 1);
        }
    }
    return 0;
}

/* Reads an id key: absent or out of range keeps *id (llama.cpp warns and keeps the default). */
static int load_id(struct tok *t, const struct gguf_file *f, const char *key, int32_t *id,
                   struct tw_err *err)
{
    int64_t v;
    int rc;
    if (*id >= t->n_vocab)
        *id = TOK_NULL;
    rc = gguf_get_i64(f, key, -1, &v, err);
    if (rc < 0)
        return rc;
    if (v >= 0 && v < t->n_vocab)
        *id = (int32_t)v;
    return 0;
}

static int load_flag(const struct gguf_file *f, const char *key, bool *flag, struct tw_err *err)
{
    return gguf_get_bool(f, key, *flag, flag, err);
}

/* Among the candidate texts present in the vocabulary, the one first in byte order (llama.cpp
 * walks its std::map of texts); TOK_NULL when none is present. */
static int32_t first_present(const struct tok *t, const char *const *cands)
{
    const char *best = NULL;
    int32_t best_id = TOK_NULL;
    for (const char *const *c = cands; *c; c++) {
        int32_t id = tok_find(t, *c, strlen(*c));
        if (id == TOK_NULL)
            continue;
        if (!best || strcmp(*c, best) < 0) { // strcmp compares as unsigned char
            best = *c;
            best_id = id;
        }
    }
    return best_id;
}

static void detect_by_text(struct tok *t, int32_t *id, const char *const *cands)
{
    int32_t found;
    if (*id != TOK_NULL)
        return;
    found = first_present(t, cands);
    if (found == TOK_NULL)
        return;
    *id = found;
    t->attr[found] |= TOK_ATTR_CONTROL;
}

static const char *const eot_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                        "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
                                        "[EOT]", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81"
                                        "sentence\xef\xbd\x9c>", "<end_of_utterance>", NULL};
static const char *const eom_texts[] = {"<|eom_id|>", NULL};
static const char *const fim_pre_texts[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                                            "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>",
                                            "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>",
                                            "<|prefix|>", NULL};
static const char *const fim_suf_texts[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                                            "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>",
                                            "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>",
                                            "<|suffix|>", NULL};
static const char *const fim_mid_texts[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                                            "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>",
                                            "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>",
                                            "<|middle|>", NULL};
static const char *const fim_pad_texts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
                                            "[PAD]", NULL};
static const char *const fim_rep_texts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                            "<REPO>", "<reponame>", NULL};
static const char *const fim_sep_texts[] = {"<|file_sep|>", NULL};
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~[", NULL};

static void set_eog(struct tok *t, int32_t id)
{
    if (id >= 0 && id < t->n_vocab)
        t->eog[id] = 1;
}

/* llama.cpp's fix-ups by token text: EOT/EOM/FIM ids, unused control tokens, the EOG set. */
static void fixup_attrs(struct tok *t)
{
    detect_by_text(t, &t->eot, eot_texts);
    detect_by_text(t, &t->eom, eom_texts);
    detect_by_text(t, &t->fim_pre, fim_pre_texts);
    detect_by_text(t, &t->fim_suf, fim_suf_texts);
    detect_by_text(t, &t->fim_mid, fim_mid_texts);
    detect_by_text(t, &t->fim_pad, fim_pad_texts);
    detect_by_text(t, &t->fim_rep, fim_rep_texts);
    detect_by_text(t, &t->fim_sep, fim_sep_texts);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        size_t len;
        const char *s = ttext(t, id, &len);
        if ((t->attr[id] & TOK_ATTR_CONTROL) && len >= 6 && memmem(s, len, "unused", 6))
            t->attr[id] |= TOK_ATTR_UNUSED;
    }
    set_eog(t, t->fim_pad);
    set_eog(t, t->fim_rep);
    set_eog(t, t->fim_sep);
    for (const char *const *c = eog_texts; *c; c++) {
        int32_t id = tok_find(t, *c, strlen(*c));
        if (id == TOK_NULL)
            continue;
        set_eog(t, id);
        t->attr[id] |= TOK_ATTR_CONTROL;
    }
    {
        static const char *const always_render[] = {"<|channel|>", "<|message|>", "<|start|>",
                                                    "<|constrain|>", NULL};
        for (const char *const *c = always_render; *c; c++) {
            int32_t id = tok_find(t, *c, strlen(*c));
            if (id != TOK_NULL)
                t->attr[id] = TOK_ATTR_USER_DEFINED;
        }
    }
    set_eog(t, t->eos);
    set_eog(t, t->eot);
    set_eog(t, t->eom);
    {
        /* o200k_harmony / solar-open: <|end|> is not end-of-generation there */
        int32_t ret = tok_find(t, "<|return|>", 10), call = tok_find(t, "<|call|>", 8);
        int32_t calls = tok_find(t, "<|calls|>", 9), flush = tok_find(t, "<|flush|>", 9);
        int32_t end = tok_find(t, "<|end|>", 7);
        bool has_call = (call != TOK_NULL && t->eog[call]) || (calls != TOK_NULL && t->eog[calls]);
        if (end != TOK_NULL && t->eog[end] &&
            ((ret != TOK_NULL && t->eog[ret] && has_call) ||
             (has_call && flush != TOK_NULL && t->eog[flush]))) {
            t->eog[end] = 0;
            t->attr[end] = TOK_ATTR_USER_DEFINED;
        }
    }
    {
        int32_t tr = tok_find(t, "<|tool_response>", 16), s = tok_find(t, "</s>", 4);
        if (tr != TOK_NULL && t->eog[tr] && s != TOK_NULL && t->eog[s]) {
            t->eog[s] = 0;
            t->attr[s] = TOK_ATTR_NORMAL;
        }
    }
}

static int build_special_cache(struct tok *t, struct tw_err *err)
{
    size_t n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN))
            n++;
    t->special = tw_mallocarray(n ? n : 1, sizeof(*t->special));
    if (!t->special)
        return tw_errf(err, TW_ENOMEM, "out of memory");
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN))
            t->special[t->n_special++] = id;
    /* longest text first; insertion sort keeps ids ascending among equal lengths (the lists
     * are short, and mostly sorted already) */
    for (size_t i = 1; i < t->n_special; i++) {
        int32_t id = t->special[i];
        size_t j = i;
        while (j > 0 && t->text[t->special[j - 1]].len < t->text[id].len) {
            t->special[j] = t->special[j - 1];
            j--;
        }
        t->special[j] = id;
    }
    return 0;
}

static bool contains_ci(struct gguf_str s, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= s.len; i++) {
        size_t k = 0;
        while (k < n && (char)(s.ptr[i + k] >= 'A' && s.ptr[i + k] <= 'Z' ? s.ptr[i + k] + 32
                                                                           : s.ptr[i + k]) ==
                            needle[k])
            k++;
        if (k == n)
            return true;
    }
    return false;
}

/* Per-model attributes llama.cpp sets by name (LSTRIP/RSTRIP around special tokens). */
static int name_attrs(struct tok *t, const struct gguf_file *f, struct gguf_str pre,
                      struct tw_err *err)
{
    struct gguf_str name = {NULL, 0}, arch = {NULL, 0};
    if (gguf_get_str(f, "general.name", &name, err) < 0 ||
        gguf_get_str(f, "general.architecture", &arch, err) < 0)
        return err ? err->code : TW_EFORMAT;
    if (contains_ci(pre, "jina-v2-de") || contains_ci(pre, "jina-v2-es") ||
        contains_ci(pre, "jina-v2-code") || contains_ci(arch, "nomic-bert-moe") ||
        contains_ci(arch, "jina-bert-v3")) {
        int32_t id = tok_find(t, "<mask>", 6);
        if (id != TOK_NULL)
            t->attr[id] |= TOK_ATTR_LSTRIP;
    } else if (contains_ci(name, "phi-3") || contains_ci(name, "phi3")) {
        static const char *const no_rstrip[] = {"<unk>", "<s>", "<|endoftext|>"};
        int32_t id;
        for (size_t i = 0; i < t->n_special; i++)
            t->attr[t->special[i]] |= TOK_ATTR_RSTRIP;
        if ((id = tok_find(t, "</s>", 4)) != TOK_NULL)
            t->attr[id] |= TOK_ATTR_RSTRIP;
        for (size_t i = 0; i < 3; i++)
            if ((id = tok_find(t, no_rstrip[i], strlen(no_rstrip[i]))) != TOK_NULL)
                t->attr[id] &= (uint16_t)~TOK_ATTR_RSTRIP;
    }
    return 0;
}

static int32_t spm_byte_token(const struct tok *t, uint8_t b)
{
    static const char hex[] = "0123456789ABCDEF";
    char buf[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
    char one = (char)b;
    int32_t id = tok_find(t, buf, 6);
    if (id == TOK_NULL)
        id = tok_find(t, &one, 1);
    return id;
}

int tok_new_from_gguf(const struct gguf_file *f, struct tok **out, struct tw_err *err)
{
    struct gguf_str model, pre;
    struct tok *t;
    int rc;

    *out = NULL;
    if ((rc = gguf_get_str(f, "tokenizer.ggml.model", &model, err)) < 0 ||
        (rc = gguf_get_str(f, "tokenizer.ggml.pre", &pre, err)) < 0)
        return rc;
    if (!model.ptr)
        return tw_errf(err, TW_EFORMAT, "no tokenizer.ggml.model (model has no vocabulary)");
    t = tw_calloc(1, sizeof(*t));
    if (!t)
        return tw_errf(err, TW_ENOMEM, "out of memory");
    t->eot = t->eom = t->fim_pre = t->fim_suf = t->fim_mid = TOK_NULL;
    t->fim_pad = t->fim_rep = t->fim_sep = TOK_NULL;
    t->sep = t->pad = t->mask = TOK_NULL;
    if (str_eq(model, "llama")) {
        t->kind = TOK_SPM;
        t->bos = 1, t->eos = 2, t->unk = 0;
        t->add_space_prefix = true, t->add_bos = true;
    } else if (str_eq(model, "bert")) {
        t->kind = TOK_WPM;
        t->bos = 101, t->eos = TOK_NULL, t->unk = 100, t->sep = 102, t->pad = 0, t->mask = 103;
        t->add_bos = true, t->add_sep = true, t->clean_spaces = true;
    } else if (str_eq(model, "gpt2")) {
        bool force_bos = false;
        t->kind = TOK_BPE;
        t->bos = 11, t->eos = 11, t->unk = TOK_NULL;
        rc = tok__pre_new(pre.ptr ? pre.ptr : "", pre.len, &t->pre, &t->clean_spaces,
                          &t->ignore_merges, &force_bos, err);
        if (rc < 0)
            goto fail;
        t->add_bos = force_bos;
    } else {
        rc = tw_errf(err, TW_EUNSUP, "tokenizer model '%.*s' is not supported (llama, gpt2, bert)",
                     (int)model.len, model.ptr);
        goto fail;
    }
    if ((rc = load_flag(f, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err)) < 0 ||
        (rc = load_tokens(t, f, err)) < 0)
        goto fail;
    if (t->kind == TOK_BPE && (rc = load_merges(t, f, err)) < 0)
        goto fail;
    if ((rc = load_id(t, f, "tokenizer.ggml.bos_token_id", &t->bos, err)) < 0 ||
        (rc = load_id(t, f, "tokenizer.ggml.eos_token_id", &t->eos, err)) < 0 ||
        (rc = load_id(t, f, "tokenizer.ggml.eot_token_id", &t->eot, err)) < 0 ||
        (rc = load_id(t, f, "tokenizer.ggml.eom_token_id", &t->eom, err)) < 0 ||
        (rc = load_id(t, f, "tokenizer.ggml.unknown_token_id", &t->unk, err)) < 0 ||
        (rc = load_id(t, f, "tokenizer.ggml.seperator_token_id", &t->sep, err)) < 0 ||
        (rc = load_id(t, f, "tokenizer.ggml.padding_token_id", &t->pad, err)) < 0 ||
        (rc = load_id(t, f, "tokenizer.ggml.mask_token_id", &t->mask, err)) < 0 ||
        (rc = load_id(t, f, "tokenizer.ggml.fim_pre_token_id", &t->fim_pre, err)) < 0 ||
        (rc = load_id(t, f, "tokenizer.ggml.fim_suf_token_id", &t->fim_suf, err)) < 0 ||
        (rc = load_id(t, f, "tokenizer.ggml.fim_mid_token_id", &t->fim_mid, err)) < 0 ||
        (rc = load_id(t, f, "tokenizer.ggml.fim_pad_token_id", &t->fim_pad, err)) < 0 ||
        (rc = load_id(t, f, "tokenizer.ggml.fim_rep_token_id", &t->fim_rep, err)) < 0 ||
        (rc = load_id(t, f, "tokenizer.ggml.fim_sep_token_id", &t->fim_sep, err)) < 0 ||
        (rc = load_flag(f, "tokenizer.ggml.add_bos_token", &t->add_bos, err)) < 0 ||
        (rc = load_flag(f, "tokenizer.ggml.add_eos_token", &t->add_eos, err)) < 0 ||
        (rc = load_flag(f, "tokenizer.ggml.add_sep_token", &t->add_sep, err)) < 0)
        goto fail;
    t->lowercase = true;
    if ((rc = load_flag(f, "tokenizer.ggml.normalizer.lowercase", &t->lowercase, err)) < 0)
        goto fail;
    t->strip_accents = t->lowercase;
    if ((rc = load_flag(f, "tokenizer.ggml.normalizer.strip_accents", &t->strip_accents, err)) < 0)
        goto fail;
    if (t->add_bos && t->bos == TOK_NULL) {
        rc = tw_errf(err, TW_EFORMAT, "vocabulary adds BOS but has no BOS token");
        goto fail;
    }
    if (t->add_eos && t->eos == TOK_NULL) {
        rc = tw_errf(err, TW_EFORMAT, "vocabulary adds EOS but has no EOS token");
        goto fail;
    }
    if (t->kind == TOK_WPM && t->sep == TOK_NULL) {
        rc = tw_errf(err, TW_EFORMAT, "WordPiece vocabulary has no [SEP] token");
        goto fail;
    }
    fixup_attrs(t);
    if ((rc = build_special_cache(t, err)) < 0 || (rc = name_attrs(t, f, pre, err)) < 0)
        goto fail;
    /* the newline token */
    if (t->kind == TOK_SPM) {
        t->nl = spm_byte_token(t, '\n');
    } else if (t->kind == TOK_WPM) {
        t->nl = t->pad;
    } else {
        int32_t id;
        size_t n = 0;
        rc = tok_encode(t, "\n", 1, false, false, &id, 1, &n, err);
        if (rc < 0 && rc != TW_ELIMIT)
            goto fail;
        t->nl = n ? id : t->pad;
    }
    *out = t;
    return 0;
fail:
    tok_free(t);
    return tw_err_ctx(err, "loading tokenizer");
}

void tok_free(struct tok *t)
{
    if (!t)
        return;
    tw_free(t->blob);
    tw_free(t->text);
    tw_free(t->score);
    tw_free(t->attr);
    tw_free(t->eog);
    tw_free(t->map);
    tw_free(t->mblob);
    tw_free(t->mleft);
    tw_free(t->mright);
    tw_free(t->mmap);
    tok__pre_free(t->pre);
    tw_free(t->special);
    tw_free(t);
}

/* ---- encoding ---- */

struct idvec {
    int32_t *v;
    size_t n, cap;
    int err;
};

static void ids_push(struct idvec *o, int32_t id)
{
    if (o->err)
        return;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        int32_t *v = tw_reallocarray(o->v, cap, sizeof(*v));
        if (!v) {
            o->err = TW_ENOMEM;
            return;
        }
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = id;
}

/* A growable scratch byte string. */
struct sbuf {
    char *p;
    size_t n, cap;
    int err;
};

static void sb_add(struct sbuf *b, const void *d, size_t n)
{
    if (b->err)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < b->n + n)
            cap *= 2;
        p = tw_realloc(b->p, cap);
        if (!p) {
            b->err = TW_ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

struct sym {
    int prev, next;
    size_t off; // into the word
    size_t n;   // bytes; 0 once merged into its left neighbour
};

struct symvec {
    struct sym *v;
    size_t n, cap;
};

static int syms_split(struct symvec *s, const char *w, size_t len)
{
    size_t need = len ? len : 1;
    if (need > s->cap) {
        struct sym *v = tw_reallocarray(s->v, need, sizeof(*v));
        if (!v)
            return TW_ENOMEM;
        s->v = v;
        s->cap = need;
    }
    s->n = 0;
    for (size_t off = 0; off < len;) {
        size_t n = tok_uc_len((unsigned char)w[off]);
        struct sym *y = &s->v[s->n];
        if (n > len - off)
            n = len - off;
        y->off = off;
        y->n = n;
        y->prev = (int)s->n - 1;
        off += n;
        y->next = off == len ? -1 : (int)s->n + 1;
        s->n++;
    }
    return 0;
}

/* A bigram candidate: SPM orders by score (high first), BPE by rank (low first); ties go to
 * the leftmost pair. 'size' is the pair's byte length when pushed (staleness check). */
struct bigram {
    float score;
    int rank;
    int left, right;
    size_t size, left_n;
};

struct heap {
    struct bigram *v;
    size_t n, cap;
    bool by_rank;
    int err;
};

static bool big_before(const struct heap *h, const struct bigram *a, const struct bigram *b)
{
    if (h->by_rank)
        return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(struct heap *h, struct bigram b)
{
    size_t i;
    if (h->err)
        return;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct bigram *v = tw_reallocarray(h->v, cap, sizeof(*v));
        if (!v) {
            h->err = TW_ENOMEM;
            return;
        }
        h->v = v;
        h->cap = cap;
    }
    i = h->n++;
    while (i > 0 && big_before(h, &b, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = b;
}

static struct bigram heap_pop(struct heap *h)
{
    struct bigram top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && big_before(h, &h->v[c + 1], &h->v[c]))
            c++;
        if (!big_before(h, &h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

struct scratch {
    struct symvec syms;
    struct heap heap;
    struct sbuf word;
    uint32_t *cps;
    size_t cps_cap;
    struct tok_lens lens;
};

static void scratch_release(struct scratch *s)
{
    tw_free(s->syms.v);
    tw_free(s->heap.v);
    tw_free(s->word.p);
    tw_free(s->cps);
    tw_free(s->lens.v);
}

/* ---- SPM ---- */

static void spm_try_bigram(const struct tok *t, const char *w, struct scratch *s, int l, int r)
{
    struct bigram b;
    int32_t id;
    if (l < 0 || r < 0)
        return;
    id = tok_find(t, w + s->syms.v[l].off, s->syms.v[l].n + s->syms.v[r].n);
    if (id == TOK_NULL)
        return;
    b.score = t->score[id];
    b.rank = 0;
    b.left = l;
    b.right = r;
    b.size = s->syms.v[l].n + s->syms.v[r].n;
    b.left_n = s->syms.v[l].n;
    heap_push(&s->heap, b);
}

static void spm_session(const struct tok *t, const char *w, size_t len, struct scratch *s,
                        struct idvec *out)
{
    struct sym *y;
    if (!len)
        return;
    if (syms_split(&s->syms, w, len)) {
        out->err = TW_ENOMEM;
        return;
    }
    s->heap.n = 0;
    s->heap.by_rank = false;
    for (size_t i = 1; i < s->syms.n; i++)
        spm_try_bigram(t, w, s, (int)i - 1, (int)i);
    while (s->heap.n && !s->heap.err) {
        struct bigram b = heap_pop(&s->heap);
        struct sym *l = &s->syms.v[b.left], *r = &s->syms.v[b.right];
        if (!l->n || !r->n || l->n + r->n != b.size)
            continue; // one side already merged elsewhere
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            s->syms.v[r->next].prev = b.left;
        spm_try_bigram(t, w, s, l->prev, b.left);
        spm_try_bigram(t, w, s, b.left, l->next);
    }
    if (s->heap.err) {
        out->err = s->heap.err;
        return;
    }
    for (int i = 0; i != -1; i = y->next) {
        int32_t id;
        y = &s->syms.v[i];
        id = tok_find(t, w + y->off, y->n);
        if (id != TOK_NULL) {
            ids_push(out, id);
            continue;
        }
        for (size_t j = 0; j < y->n; j++) { // byte fallback
            id = spm_byte_token(t, (uint8_t)w[y->off + j]);
            ids_push(out, id != TOK_NULL ? id : t->unk);
        }
    }
}

/* ---- BPE ---- */

static void bpe_try_bigram(const struct tok *t, const char *w, struct scratch *s, int l, int r)
{
    struct bigram b;
    int rank;
    if (l < 0 || r < 0)
        return;
    rank = bpe_rank(t, w + s->syms.v[l].off, s->syms.v[l].n, w + s->syms.v[r].off,
                    s->syms.v[r].n);
    if (rank < 0)
        return;
    b.score = 0;
    b.rank = rank;
    b.left = l;
    b.right = r;
    b.size = s->syms.v[l].n + s->syms.v[r].n;
    b.left_n = s->syms.v[l].n;
    heap_push(&s->heap, b);
}

/* One pre-split word, already byte-encoded. */
static void bpe_word(const struct tok *t, const char *w, size_t len, struct scratch *s,
                     struct idvec *out)
{
    if (!len)
        return;
    if (t->ignore_merges) {
        int32_t id = tok_find(t, w, len);
        if (id != TOK_NULL) {
            ids_push(out, id);
            return;
        }
    }
    if (syms_split(&s->syms, w, len)) {
        out->err = TW_ENOMEM;
        return;
    }
    s->heap.n = 0;
    s->heap.by_rank = true;
    for (size_t i = 1; i < s->syms.n; i++)
        bpe_try_bigram(t, w, s, (int)i - 1, (int)i);
    while (s->heap.n && !s->heap.err) {
        struct bigram b = heap_pop(&s->heap);
        struct sym *l = &s->syms.v[b.left], *r = &s->syms.v[b.right];
        /* the pair is current iff both sides still have the lengths they had when pushed
         * (llama.cpp compares the texts, which is the same) */
        if (!l->n || !r->n || l->n != b.left_n || l->n + r->n != b.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            s->syms.v[r->next].prev = b.left;
        bpe_try_bigram(t, w, s, l->prev, b.left);
        bpe_try_bigram(t, w, s, b.left, l->next);
    }
    if (s->heap.err) {
        out->err = s->heap.err;
        return;
    }
    for (size_t i = 0; i < s->syms.n; i++) {
        const struct sym *y = &s->syms.v[i];
        int32_t id;
        if (!y->n)
            continue;
        id = tok_find(t, w + y->off, y->n);
        if (id != TOK_NULL) {
            ids_push(out, id);
            continue;
        }
        for (size_t j = 0; j < y->n; j++) { // single bytes that happen to be tokens
            id = tok_find(t, w + y->off + j, 1);
            if (id != TOK_NULL)
                ids_push(out, id);
        }
    }
}

static int decode_cps(struct scratch *s, const char *text, size_t len, size_t *n_out)
{
    size_t n = 0;
    if (len + 1 > s->cps_cap) {
        uint32_t *v = tw_reallocarray(s->cps, len + 1, sizeof(*v));
        if (!v)
            return TW_ENOMEM;
        s->cps = v;
        s->cps_cap = len + 1;
    }
    for (size_t off = 0; off < len;)
        s->cps[n++] = tok_uc_decode(text, len, &off);
    *n_out = n;
    return 0;
}

static void bpe_session(const struct tok *t, const char *text, size_t len, struct scratch *s,
                        struct idvec *out, struct tw_err *err)
{
    size_t n, a = 0;
    if (decode_cps(s, text, len, &n)) {
        out->err = TW_ENOMEM;
        return;
    }
    if (tok__pre_split(t->pre, s->cps, n, &s->lens, err)) {
        out->err = err && err->code ? err->code : TW_ENOMEM;
        return;
    }
    for (size_t w = 0; w < s->lens.n && !out->err; w++) {
        size_t wl = s->lens.v[w];
        s->word.n = 0;
        for (size_t i = a; i < a + wl; i++) {
            char u[4], e[4];
            size_t k = tok_uc_encode(s->cps[i], u);
            for (size_t j = 0; j < k; j++)
                sb_add(&s->word, e, tok_uc_encode(tok_uc_byte_cp((uint8_t)u[j]), e));
        }
        a += wl;
        if (s->word.err) {
            out->err = s->word.err;
            return;
        }
        bpe_word(t, s->word.p, s->word.n, s, out);
    }
}

/* ---- WPM ---- */

static bool is_chinese(uint32_t c)
{
    return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) ||
           (c >= 0x20000 && c <= 0x2a6df) || (c >= 0x2a700 && c <= 0x2b73f) ||
           (c >= 0x2b740 && c <= 0x2b81f) || (c >= 0x2b920 && c <= 0x2ceaf) ||
           (c >= 0xf900 && c <= 0xfaff) || (c >= 0x2f800 && c <= 0x2fa1f);
}

static void wpm_word(const struct tok *t, const char *w, size_t n, struct idvec *out)
{
    size_t start = out->n;
    if (n <= 3) // just the U+2581 prefix: an empty word
        return;
    for (size_t i = 0; i < n;) {
        size_t j = i + t->max_token_len + 1 < n ? i + t->max_token_len + 1 : n;
        bool match = false;
        for (; j > i; j--) {
            int32_t id = tok_find(t, w + i, j - i);
            if (id != TOK_NULL) {
                ids_push(out, id);
                match = true;
                i = j;
                break;
            }
        }
        if (!match) {
            out->n = start; // no way to spell the word: drop what was found
            break;
        }
    }
    if (out->n == start && t->unk != TOK_NULL)
        ids_push(out, t->unk);
}

static void wpm_session(const struct tok *t, const char *text, size_t len, struct scratch *s,
                        struct idvec *out)
{
    static const char prefix[3] = {'\xe2', '\x96', '\x81'};
    size_t n;
    if (decode_cps(s, text, len, &n)) {
        out->err = TW_ENOMEM;
        return;
    }
    s->word.n = 0;
    sb_add(&s->word, prefix, 3);
    for (size_t i = 0; i < n && !out->err; i++) {
        uint32_t c = t->strip_accents ? tok_uc_nfd_first(s->cps[i]) : s->cps[i];
        unsigned f = tok_uc_flags(c);
        char u[4];
        size_t k;
        if (f & TOK_UC_WHITESPACE) {
            wpm_word(t, s->word.p, s->word.n, out);
            s->word.n = 3;
            continue;
        }
        if (c == 0 || c == 0xfffd || (f & TOK_UC_CATEGORIES) == TOK_UC_CONTROL)
            continue;
        if (t->strip_accents && (f & TOK_UC_CATEGORIES) == TOK_UC_MARK)
            continue;
        k = tok_uc_encode(t->lowercase ? tok_uc_tolower(c) : c, u);
        if ((f & TOK_UC_CATEGORIES) == TOK_UC_PUNCTUATION ||
            (c < 0x7f && (f & TOK_UC_CATEGORIES) == TOK_UC_SYMBOL) || is_chinese(c)) {
            wpm_word(t, s->word.p, s->word.n, out);
            s->word.n = 3;
            sb_add(&s->word, u, k);
            if (!s->word.err)
                wpm_word(t, s->word.p, s->word.n, out);
            s->word.n = 3;
        } else {
            sb_add(&s->word, u, k);
        }
        if (s->word.err)
            out->err = s->word.err;
    }
    if (!out->err)
        wpm_word(t, s->word.p, s->word.n, out);
}

/* ---- special-token partition ---- */

struct frag {
    int32_t tok; // TOK_NULL: raw text text[off..off+len)
    size_t off, len;
};

struct fragvec {
    struct frag *v;
    size_t n, cap;
};

static int frag_push(struct fragvec *f, int32_t tok, size_t off, size_t len)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        struct frag *v = tw_reallocarray(f->v, cap, sizeof(*v));
        if (!v)
            return TW_ENOMEM;
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n].tok = tok;
    f->v[f->n].off = off;
    f->v[f->n].len = len;
    f->n++;
    return 0;
}

static bool c_isspace(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Splits the raw fragments of *fr at every occurrence of special token 'id'. */
static int split_special(const struct tok *t, const char *text, int32_t id, struct fragvec *fr,
                         struct fragvec *tmp)
{
    size_t slen;
    const char *s = ttext(t, id, &slen);
    unsigned attr = t->attr[id];

    tmp->n = 0;
    for (size_t i = 0; i < fr->n; i++) {
        struct frag f = fr->v[i];
        size_t pos = f.off, end = f.off + f.len;
        if (f.tok != TOK_NULL) {
            if (frag_push(tmp, f.tok, 0, 0))
                return TW_ENOMEM;
            continue;
        }
        for (;;) {
            const char *m = memmem(text + pos, end - pos, s, slen);
            size_t mo, left;
            if (!m)
                break;
            mo = (size_t)(m - text);
            left = mo - pos;
            if (attr & TOK_ATTR_LSTRIP)
                while (left > 0 && c_isspace(text[pos + left - 1]))
                    left--;
            if (left > 0 && frag_push(tmp, TOK_NULL, pos, left))
                return TW_ENOMEM;
            if (frag_push(tmp, id, 0, 0))
                return TW_ENOMEM;
            pos = mo + slen;
            if (attr & TOK_ATTR_RSTRIP)
                while (pos < end && c_isspace(text[pos]))
                    pos++;
        }
        if (pos < end && frag_push(tmp, TOK_NULL, pos, end - pos))
            return TW_ENOMEM;
    }
    {
        struct fragvec x = *fr;
        *fr = *tmp;
        *tmp = x;
    }
    return 0;
}

/* True when every pair of adjacent bytes of s[0..n) occurs somewhere in the text whose pair
 * bitmap is 'pairs' (single bytes: 'bytes'). A cheap exact filter: a special token that fails
 * it cannot occur in the text. */
static bool maybe_present(const uint8_t *pairs, const uint8_t *bytes, const char *s, size_t n)
{
    if (n == 1)
        return bytes[(uint8_t)s[0] >> 3] & (1u << ((uint8_t)s[0] & 7));
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned k = (unsigned)(uint8_t)s[i] << 8 | (uint8_t)s[i + 1];
        if (!(pairs[k >> 3] & (1u << (k & 7))))
            return false;
    }
    return true;
}

static int partition(const struct tok *t, const char *text, size_t len, bool parse_special,
                     struct fragvec *fr)
{
    struct fragvec tmp = {NULL, 0, 0};
    uint8_t *pairs = NULL, bytes[32] = {0};
    int rc = 0;
    fr->n = 0;
    if (!len)
        return 0;
    if (frag_push(fr, TOK_NULL, 0, len))
        return TW_ENOMEM;
    pairs = tw_calloc(65536 / 8, 1);
    if (!pairs)
        return TW_ENOMEM;
    for (size_t i = 0; i < len; i++) {
        unsigned b = (uint8_t)text[i];
        bytes[b >> 3] |= (uint8_t)(1u << (b & 7));
        if (i + 1 < len) {
            unsigned k = b << 8 | (uint8_t)text[i + 1];
            pairs[k >> 3] |= (uint8_t)(1u << (k & 7));
        }
    }
    for (size_t k = 0; k < t->n_special && !rc; k++) {
        int32_t id = t->special[k];
        size_t slen;
        const char *s = ttext(t, id, &slen);
        if (!parse_special && (t->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN)))
            continue;
        if (slen > len || !maybe_present(pairs, bytes, s, slen))
            continue; // cannot occur in any fragment
        rc = split_special(t, text, id, fr, &tmp);
    }
    tw_free(pairs);
    tw_free(tmp.v);
    return rc;
}

int tok_encode(const struct tok *t, const char *text, size_t len, bool add_special,
               bool parse_special, int32_t *ids, size_t cap, size_t *n_out, struct tw_err *err)
{
    struct fragvec fr = {NULL, 0, 0};
    struct idvec out = {NULL, 0, 0, 0};
    struct scratch s;
    struct sbuf spm = {NULL, 0, 0, 0};
    bool prev_special = true;
    int rc;

    memset(&s, 0, sizeof(s));
    *n_out = 0;
    if (len > TOK_MAX_TEXT)
        return tw_errf(err, TW_ELIMIT, "text of %zu bytes is too long to tokenize (limit %zu)",
                       len, TOK_MAX_TEXT);
    rc = partition(t, text, len, parse_special, &fr);
    if (rc < 0)
        goto done;
    if (add_special && (t->kind == TOK_WPM || t->add_bos))
        ids_push(&out, t->bos);
    for (size_t i = 0; i < fr.n && !out.err; i++) {
        const struct frag *f = &fr.v[i];
        if (f->tok != TOK_NULL) {
            ids_push(&out, f->tok);
            prev_special = true;
            continue;
        }
        if (t->kind == TOK_SPM) {
            /* ' ' -> U+2581, with a leading one after BOS/special tokens */
            spm.n = 0;
            if (t->add_space_prefix && prev_special)
                sb_add(&spm, "\xe2\x96\x81", 3);
            for (size_t j = 0; j < f->len; j++) {
                if (text[f->off + j] == ' ')
                    sb_add(&spm, "\xe2\x96\x81", 3);
                else
                    sb_add(&spm, &text[f->off + j], 1);
            }
            if (spm.err)
                out.err = spm.err;
            else
                spm_session(t, spm.p, spm.n, &s, &out);
        } else if (t->kind == TOK_BPE) {
            bpe_session(t, text + f->off, f->len, &s, &out, err);
        } else {
            wpm_session(t, text + f->off, f->len, &s, &out);
        }
        prev_special = false;
    }
    if (add_special && t->kind == TOK_WPM)
        ids_push(&out, t->sep);
    else if (add_special && t->add_eos)
        ids_push(&out, t->eos);
    if (out.err) {
        rc = out.err;
        goto done;
    }
    *n_out = out.n;
    if (out.n > cap) {
        rc = tw_errf(err, TW_ELIMIT, "text needs %zu tokens, buffer holds %zu", out.n, cap);
        goto done;
    }
    if (out.n)
        memcpy(ids, out.v, out.n * sizeof(*ids));
    rc = 0;
done:
    if (rc == TW_ENOMEM)
        tw_errf(err, rc, "out of memory tokenizing %zu bytes", len);
    tw_free(fr.v);
    tw_free(out.v);
    tw_free(spm.p);
    scratch_release(&s);
    return rc;
}

/* ---- decoding ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "<0xNN>" -> NN, as llama.cpp's token_to_byte (strtol of text[3..5)). */
static uint8_t token_byte(const char *s, size_t len)
{
    int hi, lo;
    if (len < 5)
        return 0;
    hi = hexval(s[3]);
    lo = hexval(s[4]);
    if (hi < 0)
        return 0;
    return (uint8_t)(lo < 0 ? hi : hi * 16 + lo);
}

/* Appends the piece of id to b (special: render control/unknown tokens). */
static void piece_append(const struct tok *t, int32_t id, bool special, struct sbuf *b)
{
    unsigned attr;
    size_t len;
    const char *s;

    if (id < 0 || id >= t->n_vocab)
        return;
    attr = t->attr[id];
    s = ttext(t, id, &len);
    if (!special && (attr & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL)))
        return;
    if (attr & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED)) {
        sb_add(b, s, len);
        return;
    }
    if (attr & TOK_ATTR_NORMAL) {
        if (t->kind == TOK_BPE) { // GPT-2 byte decoder
            for (size_t off = 0; off < len;) {
                uint32_t cp = tok_uc_decode(s, len, &off);
                int byte = tok_uc_cp_byte(cp);
                if (byte >= 0) {
                    char c = (char)byte;
                    sb_add(b, &c, 1);
                } else { // llama.cpp's marker for a code point outside the byte alphabet
                    char u[4], hex[3];
                    size_t k = tok_uc_encode(cp, u);
                    sb_add(b, "[UNK_BYTE_0x", 12);
                    for (size_t j = 0; j < k; j++) {
                        snprintf(hex, sizeof(hex), "%02x", (unsigned char)u[j]);
                        sb_add(b, hex, 2);
                    }
                    sb_add(b, s, len);
                    sb_add(b, "]", 1);
                }
            }
            return;
        }
        for (size_t i = 0; i < len;) { // U+2581 -> ' '
            if (i + 3 <= len && !memcmp(s + i, "\xe2\x96\x81", 3)) {
                sb_add(b, " ", 1);
                i += 3;
            } else {
                sb_add(b, s + i, 1);
                i++;
            }
        }
        return;
    }
    if ((attr & TOK_ATTR_BYTE) && t->kind != TOK_WPM) {
        char c = (char)token_byte(s, len);
        sb_add(b, &c, 1);
    }
}

int32_t tok_piece(const struct tok *t, int32_t id, bool special, char *buf, size_t cap)
{
    struct sbuf b = {NULL, 0, 0, 0};
    int32_t n;
    piece_append(t, id, special, &b);
    if (b.err) {
        tw_free(b.p);
        return 0;
    }
    n = (int32_t)b.n;
    if (b.n > cap)
        n = -n;
    else if (b.n)
        memcpy(buf, b.p, b.n);
    tw_free(b.p);
    return n;
}

/* llama.cpp's clean_up_tokenization_spaces passes, in place; returns the new length. */
static size_t clean_spaces(char *x, size_t n)
{
    size_t m;
    if (!n)
        return 0;
    /* " ?", " !", " .", " ," */
    m = 1;
    for (size_t i = 1; i < n; i++) {
        char c = x[i];
        if (x[i - 1] == ' ' && (c == '?' || c == '!' || c == '.' || c == ','))
            m--;
        x[m++] = c;
    }
    n = m;
    /* " ' " -> "'" */
    m = 1;
    for (size_t i = 1; i < n; i++) {
        char c = x[i];
        if (c == '\'' && i + 1 < n && x[i - 1] == ' ' && x[i + 1] == ' ') {
            m--;
            x[++i] = '\0';
        }
        x[m++] = c;
    }
    n = m;
    /* " 's", " 'm", " 're", " 've" */
    m = 1;
    for (size_t i = 1; i < n; i++) {
        char c = x[i];
        if (x[i - 1] == ' ' && c == '\'' && i + 1 < n) {
            char c1 = x[i + 1];
            if (c1 == 's' || c1 == 'm')
                m--;
            else if (i + 2 < n && ((c1 == 'r' && x[i + 2] == 'e') || (c1 == 'v' && x[i + 2] == 'e')))
                m--;
        }
        x[m++] = c;
    }
    return m;
}

int tok_decode(const struct tok *t, const int32_t *ids, size_t n, bool remove_special,
               bool unparse_special, struct tw_buf *out)
{
    struct sbuf b = {NULL, 0, 0, 0};
    bool remove_space = t->add_space_prefix;
    int rc;

    if (remove_special && t->add_bos && n > 0 && ids[0] == t->bos) {
        remove_space = false;
        ids++;
        n--;
    }
    if (remove_special && t->add_eos && n > 0 && ids[n - 1] == t->eos)
        n--;
    for (size_t i = 0; i < n && !b.err; i++) {
        size_t start = b.n;
        piece_append(t, ids[i], unparse_special, &b);
        if (remove_space && b.n > start && b.p[start] == ' ') { // drop the prefix space once
            memmove(b.p + start, b.p + start + 1, b.n - start - 1);
            b.n--;
        }
        remove_space = false;
    }
    if (b.err) {
        tw_free(b.p);
        return out->err = TW_ENOMEM;
    }
    if (t->clean_spaces)
        b.n = clean_spaces(b.p, b.n);
    rc = b.n ? tw_buf_add(out, b.p, b.n) : 0;
    tw_free(b.p);
    return rc;
}

/* ---- accessors ---- */

enum tok_kind tok_kind(const struct tok *t)
{
    return t->kind;
}

int32_t tok_n_vocab(const struct tok *t)
{
    return t->n_vocab;
}

int32_t tok_bos(const struct tok *t)
{
    return t->bos;
}

int32_t tok_eos(const struct tok *t)
{
    return t->eos;
}

int32_t tok_eot(const struct tok *t)
{
    return t->eot;
}

int32_t tok_unk(const struct tok *t)
{
    return t->unk;
}

int32_t tok_sep(const struct tok *t)
{
    return t->sep;
}

int32_t tok_pad(const struct tok *t)
{
    return t->pad;
}

int32_t tok_nl(const struct tok *t)
{
    return t->nl;
}

bool tok_add_bos(const struct tok *t)
{
    return t->add_bos;
}

bool tok_add_eos(const struct tok *t)
{
    return t->add_eos;
}

bool tok_is_eog(const struct tok *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab && t->eog[id];
}

const char *tok_token_text(const struct tok *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return NULL;
    }
    return ttext(t, id, len);
}

unsigned tok_attr(const struct tok *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab ? t->attr[id] : 0;
}
