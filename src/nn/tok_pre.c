/* tok_pre.c - the regex pre-split of byte-level BPE vocabs (tokenizer.ggml.pre), reproducing
 * llama.cpp's unicode_regex_split.
 *
 * Each pre-tokenizer is a list of steps applied in turn; a step splits every current word
 * further, keeping the text between matches as words of their own. The three patterns that
 * llama.cpp evaluates with hand-written matchers (GPT-2, Llama 3, Qwen2) are hand-written here
 * too, with the same branch order. The other patterns run on PCRE2 the way llama.cpp runs them
 * on std::regex:
 *   - a pattern using \p{L} \p{N} \p{P} \p{M} \p{S} runs on a "collapsed" text with one byte per
 *     code point: ASCII stays, other whitespace becomes \v, other code points become a byte
 *     naming their category (0xD1 number, 0xD2 letter, 0xD3 punctuation, 0xD4 mark, 0xD5
 *     symbol, 0xD0 other), and each \p{X} becomes a class of that byte plus X's ASCII members;
 *   - any other pattern runs in UTF mode on the text with non-ASCII whitespace replaced by \v.
 * Matching is leftmost-first, ECMAScript-like; '$' matches only at the end of the word.
 */
#include "base/mem.h"
#include "nn/tok_int.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string.h>

enum step_kind { STEP_END = 0, STEP_GPT2, STEP_LLAMA3, STEP_QWEN2, STEP_QWEN35, STEP_NEWLINES, STEP_RE };

struct pre_step {
    enum step_kind kind;
    bool collapsed;  // STEP_RE: runs on the collapsed text
    pcre2_code *re;  // STEP_RE
};

#define PRE_MAX_STEPS 8

struct tok_pre {
    int n_steps;
    struct pre_step steps[PRE_MAX_STEPS];
    bool need_collapsed;
    bool need_plain;
};

/* ---- pre-tokenizer table ---- */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"

static const char *const deepseek_llm_letters =
    "\\s?[A-Za-z\xc2\xb5\xc3\x80-\xc3\x96\xc3\x98-\xc3\xb6\xc3\xb8-\xc6\xba\xc6\xbc-\xc6\xbf\xc7\x84-"
    "\xca\x93\xca\x95-\xca\xaf\xcd\xb0-\xcd\xb3\xcd\xb6\xcd\xb7\xcd\xbb-\xcd\xbd\xcd\xbf\xce\x86"
    "\xce\x88-\xce\x8a\xce\x8c\xce\x8e-\xce\xa1\xce\xa3-\xcf\xb5\xcf\xb7-\xd2\x81\xd2\x8a-\xd4\xaf"
    "\xd4\xb1-\xd5\x96\xe1\x82\xa0-\xe1\x83\x85\xe1\x8e\xa0-\xe1\x8f\xb5\xe1\x8f\xb8-\xe1\x8f\xbd"
    "\xe1\xb2\x90-\xe1\xb2\xba\xe1\xb2\xbd-\xe1\xb2\xbf\xe1\xb4\x80-\xe1\xb4\xab\xe1\xb5\xab-\xe1"
    "\xb5\xb7\xe1\xb5\xb9-\xe1\xb6\x9a\xe1\xb8\x80-\xe1\xbc\x95\xe1\xbc\x98-\xe1\xbc\x9d\xe1\xbc"
    "\xa0-\xe1\xbd\x85\xe1\xbd\x88-\xe1\xbd\x8d\xe1\xbd\x90-\xe1\xbd\x97\xe1\xbd\x99\xe1\xbd\x9b"
    "\xe1\xbd\x9d\xe1\xbd\x9f-\xe1\xbd\xbd\xe1\xbe\x80-\xe1\xbe\xb4\xe1\xbe\xb6-\xe1\xbe\xbc\xe1"
    "\xbe\xbe\xe1\xbf\x82-\xe1\xbf\x84\xe1\xbf\x86-\xe1\xbf\x8c\xe1\xbf\x90-\xe1\xbf\x93\xe1\xbf"
    "\x96-\xe1\xbf\x9b\xe1\xbf\xa0-\xe1\xbf\xac\xe1\xbf\xb2-\xe1\xbf\xb4\xe1\xbf\xb6-\xe1\xbf\xbc"
    "\xe2\x84\x82\xe2\x84\x87\xe2\x84\x8a-\xe2\x84\x93\xe2\x84\x95\xe2\x84\x99-\xe2\x84\x9d\xe2"
    "\x84\xa4\xe2\x84\xa6\xe2\x84\xa8\xe2\x84\xaa-\xe2\x84\xad\xe2\x84\xaf-\xe2\x84\xb4\xe2\x84"
    "\xb9\xe2\x84\xbc-\xe2\x84\xbf\xe2\x85\x85-\xe2\x85\x89\xe2\x85\x8e\xe2\x86\x83\xe2\x86\x84"
    "\xe2\xb0\x80-\xe2\xb1\xbb\xe2\xb1\xbe-\xe2\xb3\xa4\xe2\xb3\xab-\xe2\xb3\xae\xe2\xb3\xb2\xe2"
    "\xb3\xb3\xea\x99\x80-\xea\x99\xad\xea\x9a\x80-\xea\x9a\x9b\xea\x9c\xa2-\xea\x9d\xaf\xea\x9d"
    "\xb1-\xea\x9e\x87\xea\x9e\x8b-\xea\x9e\x8e\xea\xad\xb0-\xea\xae\xbf\xef\xac\x80-\xef\xac\x86"
    "\xef\xac\x93-\xef\xac\x97\xef\xbc\xa1-\xef\xbc\xba\xef\xbd\x81-\xef\xbd\x9a\xf0\x90\x90\x80-"
    "\xf0\x90\x91\x8f\xf0\x90\x92\xb0-\xf0\x90\x93\x93\xf0\x90\x93\x98-\xf0\x90\x93\xbb\xf0\x90"
    "\xb2\x80-\xf0\x90\xb2\xb2\xf0\x90\xb3\x80-\xf0\x90\xb3\xb2\xf0\x91\xa2\xa0-\xf0\x91\xa3\x9f"
    "\xf0\x9e\xa4\x80-\xf0\x9e\xa5\x83]+";

/* One step: a pattern, or NULL with a hand-written kind. */
struct step_def {
    enum step_kind kind;
    const char *re;
};

struct pre_def {
    const char *names; // '|'-separated tokenizer.ggml.pre values
    bool clean_spaces;
    bool ignore_merges;
    bool force_add_bos;
    struct step_def steps[PRE_MAX_STEPS];
};

#define GPT2_STEP {STEP_GPT2, NULL}

static const struct pre_def pre_defs[] = {
    {"default|", true, false, false,
     {{STEP_RE, "[\\p{P}\\$\\+<=>\\^~\\|]+"}, GPT2_STEP, {STEP_RE, "\\p{N}+"},
      {STEP_RE, "[0-9][0-9][0-9]"}}},
    {"gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v2-es|jina-v2-de|a.x-4.0|mellum|modern-bert|mpt|"
     "olmo|jais|exaone4|jina-v1-en|jina-v2-code|roberta-bpe",
     true, false, false, {GPT2_STEP}},
    {"trillion|granite-docling", false, false, false, {GPT2_STEP}},
    {"llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2|jina-v5-nano", true, true,
     true, {{STEP_LLAMA3, NULL}}},
    {"dbrx|smaug-bpe", true, false, false, {{STEP_LLAMA3, NULL}}},
    {"glm4|chatglm-bpe", true, false, false, {{STEP_LLAMA3, NULL}}},
    {"qwen2|deepseek-r1-qwen|kormo|f2llmv2|hunyuan|solar-open|grok-2", false, false, false,
     {{STEP_QWEN2, NULL}}},
    {"megrez|stablelm2", true, false, false, {{STEP_QWEN2, NULL}}},
    {"starcoder|refact|codeshell|exaone|minerva-7b", true, false, false,
     {{STEP_RE, "\\p{N}"}, GPT2_STEP}},
    {"command-r|smollm", false, false, false, {{STEP_RE, "\\p{N}"}, GPT2_STEP}},
    {"falcon", true, false, false,
     {{STEP_RE, "[\\p{P}\\$\\+<=>\\^~\\|`]+"}, GPT2_STEP, {STEP_RE, "[0-9][0-9][0-9]"}}},
    {"deepseek-llm", false, false, false,
     {{STEP_RE, "[\r\n]"},
      {STEP_RE, NULL}, // deepseek_llm_letters
      {STEP_RE, "\\s?[!-/:-~\xef\xbc\x81-\xef\xbc\x8f\xef\xbc\x9a-\xef\xbd\x9e\xe2\x80\x98-\xe2\x80"
                "\x9f\xe3\x80\x80-\xe3\x80\x82]+"},
      {STEP_RE, "\\s+$"},
      {STEP_RE, "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+"},
      {STEP_RE, "\\p{N}+"}}},
    {"deepseek-coder", false, false, false,
     {{STEP_RE, "[\r\n]"},
      {STEP_RE, "\\s?\\p{L}+"},
      {STEP_RE, "\\s?\\p{P}+"},
      {STEP_RE, "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+"},
      {STEP_RE, "\\p{N}"}}},
    {"deepseek-v3|hunyuan-dense|joyai-llm", false, false, false,
     {{STEP_RE, "\\p{N}{1,3}"},
      {STEP_RE, "[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82\xa0-\xe3\x83\xbf]+"},
      {STEP_RE, "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?"
                "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}}},
    {"poro-chat", false, false, false,
     {{STEP_RE, " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94"
                "\xd8\x8c)]+"}}},
    {"bloom|gpt3-finnish", true, false, false,
     {{STEP_RE, " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94"
                "\xd8\x8c)]+"}}},
    {"viking", false, false, false,
     {{STEP_RE, " ?[^(\\s|.,!?\xe2\x80\xa6\xe3\x80\x82\xef\xbc\x8c\xe3\x80\x81\xe0\xa5\xa4\xdb\x94"
                "\xd8\x8c)]+"},
      {STEP_RE, "\\p{N}"}}},
    {"qwen35", false, false, false, {{STEP_QWEN35, NULL}}},
    {"mellum2", true, false, false, {{STEP_RE, "\\p{N}"}, GPT2_STEP}},
    {"laguna", false, false, false, {{STEP_NEWLINES, NULL}, {STEP_QWEN2, NULL}}},
    {"minicpm5", true, true, false,
     {{STEP_RE, "\\p{N}{1,3}"},
      {STEP_RE, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?"
                "\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
    {"seed-coder", false, false, false,
     {{STEP_RE, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?"
                "\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
    {"bailingmoe|bailingmoe2|llada-moe", false, false, false,
     {{STEP_RE, "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"}}},
    {"exaone-moe", true, false, false,
     {{STEP_RE, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?"
                "(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|"
                "\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"}}},
    {"jais-2", true, false, false,
     {{STEP_RE, "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?"
                "\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|"
                "\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|"
                "\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}"}}},
    {"gpt-4o|llama4|kanana2|talkie|minimax-m2", false, false, false,
     {{STEP_RE, "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|"
                "'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=["
                "\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'["
                "mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|"
                "\\s+(?!\\S)|\\s+"}}},
    {"granite-embed-multi-97m", false, true, false,
     {{STEP_RE, "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))*((?=[\\p{L}\\p{M}])([^A-Z]))"
                "+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}"
                "]?((?=[\\p{L}\\p{M}])([^a-z]))+((?=[\\p{L}\\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR]"
                "[eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/"
                "]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
    {"tekken", false, true, true,
     {{STEP_RE, "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n"
                "\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}"
                "\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
    {"chameleon", false, false, true,
     {{STEP_RE, "<sentinel:[0-9]+>"},
      {STEP_RE, "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z"},
      {STEP_RE, "([\\t\\n]|    |  )"},
      {STEP_RE, "\\p{N}"},
      {STEP_RE, "[\\p{P}!-/:-@\\[-`{-~]"},
      GPT2_STEP}},
    {"youtu", false, true, false,
     {{STEP_RE, "[\xea\xb0\x80-\xed\x9e\xa3\xe3\x84\xb1-\xe3\x86\x8e]+|[\xef\xbc\x81\xe2\x80\xa6"
                "\xe2\x80\x9c\xe2\x80\x9d\xe2\x80\x98\xe2\x80\x99\xe2\x80\x94\xef\xbc\x9a\xef\xbc"
                "\x9b\xef\xbc\x8c\xe3\x80\x81-\xe3\x80\xbf\xef\xb8\xb0-\xef\xb9\x8f]+|[\xe3\x84"
                "\x85-\xe3\x84\xaf]+|[\xe4\xb8\x80-\xe9\xbe\xa5\xe3\x81\x80-\xe3\x82\x9f\xe3\x82"
                "\xa0-\xe3\x83\xbf]+"},
      {STEP_RE, "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}"
                "\\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}"
                "\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:'["
                "sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}| ?[^\\s\\p{L}\\p{N}]"
                "+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},

};

static bool name_in(const char *names, const char *name, size_t len)
{
    const char *p = names;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && !memcmp(p, name, len))
            return true;
        if (!bar)
            return false;
        p = bar + 1;
    }
}

/* ---- pattern rewriting for the collapsed text ---- */

struct ucat {
    const char *prop; // "\\p{N}"
    char byte;
    const char *ascii; // the class members below 128
};

static const struct ucat ucats[] = {
    {"\\p{N}", (char)0xd1, "0-9"},
    {"\\p{L}", (char)0xd2, "A-Za-z"},
    {"\\p{P}", (char)0xd3, "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"},
    {"\\p{M}", (char)0xd4, ""},
    {"\\p{S}", (char)0xd5, "\\$\\+<->^`\\|\\~"},
    {"\\p{Lu}", (char)0xd2, "A-Za-z"},
    {"\\p{Ll}", (char)0xd2, "A-Za-z"},
    {"\\p{Lt}", (char)0xd2, "A-Za-z"},
    {"\\p{Lm}", (char)0xd2, "A-Za-z"},
    {"\\p{Lo}", (char)0xd2, "A-Za-z"},
};

static bool uses_categories(const char *re)
{
    for (size_t i = 0; i < sizeof(ucats) / sizeof(ucats[0]); i++)
        if (strstr(re, ucats[i].prop))
            return true;
    return false;
}

/* Writes the collapsed form of 're' into out (cap bytes); returns its length or -1. */
static long collapse_pattern(const char *re, char *out, size_t cap)
{
    size_t n = strlen(re), o = 0;
    bool inside = false;

#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (o + 1 >= cap)                                                                          \
            return -1;                                                                             \
        out[o++] = (c);                                                                            \
    } while (0)

    for (size_t i = 0; i < n; i++) {
        if (re[i] == '[' && (i == 0 || re[i - 1] != '\\')) {
            PUT('[');
            inside = true;
            continue;
        }
        if (inside && re[i] == ']' && re[i - 1] != '\\') {
            PUT(']');
            inside = false;
            continue;
        }
        if (re[i] == '\\' && i + 3 < n && re[i + 1] == 'p' && re[i + 2] == '{') {
            const char *close = strchr(re + i + 3, '}');
            if (close && (size_t)(close - re) <= i + 10) {
                size_t plen = (size_t)(close - re) - i + 1;
                const struct ucat *u = NULL;
                for (size_t k = 0; k < sizeof(ucats) / sizeof(ucats[0]); k++)
                    if (strlen(ucats[k].prop) == plen && !memcmp(ucats[k].prop, re + i, plen))
                        u = &ucats[k];
                if (u) {
                    if (!inside)
                        PUT('[');
                    PUT(u->byte);
                    for (const char *a = u->ascii; *a; a++)
                        PUT(*a);
                    if (!inside)
                        PUT(']');
                    i += plen - 1;
                    continue;
                }
            }
        }
        PUT(re[i]);
    }
    out[o] = '\0';
#undef PUT
    return (long)o;
}

static int compile_step(struct pre_step *s, const char *re, struct tw_err *err)
{
    char buf[2048];
    const char *pat = re;
    uint32_t opts = PCRE2_DOLLAR_ENDONLY;
    int errcode;
    PCRE2_SIZE erroff;

    s->collapsed = uses_categories(re);
    if (s->collapsed) {
        if (collapse_pattern(re, buf, sizeof(buf)) < 0)
            return tw_errf(err, TW_EINTERNAL, "pre-tokenizer pattern too long");
        pat = buf;
    } else {
        opts |= PCRE2_UTF | PCRE2_NO_UTF_CHECK;
    }
    s->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts, &errcode, &erroff, NULL);
    if (!s->re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(errcode, msg, sizeof(msg));
        return tw_errf(err, TW_EINTERNAL, "pre-tokenizer pattern '%s' at %zu: %s", re,
                       (size_t)erroff, (const char *)msg);
    }
    /* JIT where the platform has it (several times faster); the interpreter otherwise */
    (void)pcre2_jit_compile(s->re, PCRE2_JIT_COMPLETE);
    return 0;
}

int tok__pre_new(const char *name, size_t name_len, struct tok_pre **out, bool *clean_spaces,
                 bool *ignore_merges, bool *force_add_bos, struct tw_err *err)
{
    const struct pre_def *def = NULL;
    struct tok_pre *p;

    *out = NULL;
    for (size_t i = 0; i < sizeof(pre_defs) / sizeof(pre_defs[0]) && !def; i++)
        if (name_in(pre_defs[i].names, name, name_len))
            def = &pre_defs[i];
    if (!def)
        return tw_errf(err, TW_EUNSUP, "unknown pre-tokenizer type '%.*s'", (int)name_len, name);
    p = tw_calloc(1, sizeof(*p));
    if (!p)
        return tw_errf(err, TW_ENOMEM, "out of memory");
    for (int i = 0; i < PRE_MAX_STEPS && def->steps[i].kind != STEP_END; i++) {
        const struct step_def *sd = &def->steps[i];
        struct pre_step *s = &p->steps[p->n_steps];
        s->kind = sd->kind;
        if (sd->kind == STEP_RE) {
            /* NULL stands for deepseek-llm's letter class, too long to inline in the table */
            const char *re = sd->re ? sd->re : deepseek_llm_letters;
            if (compile_step(s, re, err) < 0) {
                tok__pre_free(p);
                return err ? err->code : TW_EINTERNAL;
            }
            if (s->collapsed)
                p->need_collapsed = true;
            else
                p->need_plain = true;
        }
        p->n_steps++;
    }
    *clean_spaces = def->clean_spaces;
    *ignore_merges = def->ignore_merges;
    *force_add_bos = def->force_add_bos;
    *out = p;
    return 0;
}

void tok__pre_free(struct tok_pre *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_steps; i++)
        if (p->steps[i].re)
            pcre2_code_free(p->steps[i].re);
    tw_free(p);
}

/* ---- splitting ---- */

static int lens_push(struct tok_lens *l, size_t v)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        size_t *nv = tw_reallocarray(l->v, cap, sizeof(*nv));
        if (!nv)
            return TW_ENOMEM;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
    return 0;
}

/* The state of one hand-written matcher over the word cps[a..b). */
struct seg {
    const uint32_t *cps;
    const uint16_t *fl;
    size_t a, b;
    size_t prev; // end of the last emitted word
    struct tok_lens *out;
    int err;
};

#define OOR 0xffffffffu

static uint32_t seg_cp(const struct seg *s, size_t pos)
{
    return pos >= s->a && pos < s->b ? s->cps[pos] : OOR;
}

static unsigned seg_fl(const struct seg *s, size_t pos)
{
    return pos >= s->a && pos < s->b ? s->fl[pos] : 0;
}

static void seg_emit(struct seg *s, size_t end)
{
    if (end > s->prev && lens_push(s->out, end - s->prev))
        s->err = TW_ENOMEM;
    s->prev = end;
}

#define L_ TOK_UC_LETTER
#define N_ TOK_UC_NUMBER
#define W_ TOK_UC_WHITESPACE

/* 's 't 're 've 'm 'll 'd at pos (case-folded when 'icase'); returns the length or 0. */
static size_t contraction(const struct seg *s, size_t pos, bool icase)
{
    uint32_t c1, c2;
    if (s->cps[pos] != '\'' || pos + 1 >= s->b)
        return 0;
    c1 = s->cps[pos + 1];
    if (icase)
        c1 = tok_uc_tolower(c1);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
        return 2;
    if (pos + 2 >= s->b)
        return 0;
    c2 = s->cps[pos + 2];
    if (icase)
        c2 = tok_uc_tolower(c2);
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
        return 3;
    return 0;
}

/* Whitespace run at pos: \s+(?!\S) leaves the last space for the next word when more text
 * follows. Returns the new position. */
static size_t spaces(const struct seg *s, size_t pos)
{
    size_t n = 0;
    while (seg_fl(s, pos + n) & W_)
        n++;
    if (n > 1 && pos + n < s->b)
        return pos + n - 1;
    if (n > 0)
        return pos + n;
    return pos + 1; // no alternative matches: the code point is a word of its own
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(struct seg *s)
{
    size_t pos = s->a;
    while (pos < s->b && !s->err) {
        uint32_t c = s->cps[pos];
        unsigned f2 = c == ' ' ? seg_fl(s, pos + 1) : s->fl[pos];
        size_t k = contraction(s, pos, false);
        if (k) {
            pos += k;
        } else if (f2 & (L_ | N_)) {
            unsigned cls = f2 & L_ ? L_ : N_;
            pos += c == ' ';
            while (seg_fl(s, pos) & cls)
                pos++;
        } else if (!(f2 & (W_ | L_ | N_)) && f2) {
            pos += c == ' ';
            for (unsigned g = seg_fl(s, pos); !(g & (W_ | L_ | N_)) && g; g = seg_fl(s, pos))
                pos++;
        } else {
            pos = spaces(s, pos);
        }
        seg_emit(s, pos);
    }
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?W+|\p{N}{1,max_digits}|
 *  ?[^\s W \p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * where W is \p{L} (Llama 3: 3 digits; Qwen2: 1) or [\p{L}\p{M}] (Qwen3.5: 1 digit). */
static void split_llama3(struct seg *s, size_t max_digits, unsigned W)
{
    size_t pos = s->a;
    while (pos < s->b && !s->err) {
        uint32_t c = s->cps[pos];
        unsigned f = s->fl[pos], f2;
        size_t k = contraction(s, pos, true);
        if (k) {
            pos += k;
            seg_emit(s, pos);
            continue;
        }
        if (!(c == '\r' || c == '\n' || (f & N_)) && ((f & W) || (seg_fl(s, pos + 1) & W))) {
            pos++;
            while (seg_fl(s, pos) & W)
                pos++;
            seg_emit(s, pos);
            continue;
        }
        if (f & N_) {
            size_t ini = pos;
            while (seg_fl(s, pos) & N_) {
                if (++pos - ini >= max_digits) {
                    seg_emit(s, pos);
                    ini = pos;
                }
            }
            seg_emit(s, pos);
            continue;
        }
        f2 = c == ' ' ? seg_fl(s, pos + 1) : f;
        if (!(f2 & (W_ | W | N_)) && f) {
            pos += c == ' ';
            for (unsigned g = seg_fl(s, pos); !(g & (W_ | W | N_)) && g; g = seg_fl(s, pos))
                pos++;
            while (seg_cp(s, pos) == '\r' || seg_cp(s, pos) == '\n')
                pos++;
            seg_emit(s, pos);
            continue;
        }
        {
            size_t n = 0, last_nl = 0;
            while (seg_fl(s, pos + n) & W_) {
                uint32_t c2 = s->cps[pos + n];
                if (c2 == '\r' || c2 == '\n')
                    last_nl = pos + n + 1;
                n++;
            }
            if (last_nl)
                pos = last_nl; // \s*[\r\n]+
            else
                pos = spaces(s, pos);
        }
        seg_emit(s, pos);
    }
}

/* [^\n]+|[\n]+ : runs of newlines and runs of anything else. */
static void split_newlines(struct seg *s)
{
    size_t pos = s->a;
    while (pos < s->b && !s->err) {
        bool nl = s->cps[pos] == '\n';
        while (pos < s->b && (s->cps[pos] == '\n') == nl)
            pos++;
        seg_emit(s, pos);
    }
}

/* The texts a PCRE2 step runs on. */
struct subjects {
    char *collapsed;  // one byte per code point
    char *plain;      // UTF-8 with non-ASCII whitespace as \v
    size_t *plain_off; // byte offset of each code point in 'plain', n + 1 entries
};

static int split_re(const struct pre_step *st, const struct subjects *sj, size_t a, size_t len,
                    pcre2_match_data *md, struct tok_lens *out)
{
    const char *subj;
    size_t slen, start = 0, last = 0; // in code units of the subject

    if (st->collapsed) {
        subj = sj->collapsed + a;
        slen = len;
    } else {
        subj = sj->plain + sj->plain_off[a];
        slen = sj->plain_off[a + len] - sj->plain_off[a];
    }
    while (start <= slen) {
        PCRE2_SIZE *ov;
        size_t ms, me;
        /* the plain subject is valid UTF-8 by construction: skip PCRE2's check, which would
         * rescan the whole word at every call */
        uint32_t mopts = st->collapsed ? 0 : PCRE2_NO_UTF_CHECK;
        int rc = pcre2_match(st->re, (PCRE2_SPTR)subj, slen, start, mopts, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) // the interpreter keeps its frames on the heap
            rc = pcre2_match(st->re, (PCRE2_SPTR)subj, slen, start, mopts | PCRE2_NO_JIT, md,
                             NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0)
            return TW_ELIMIT; // a match or heap limit: refuse rather than split differently
        ov = pcre2_get_ovector_pointer(md);
        ms = ov[0];
        me = ov[1];
        if (me == ms) {
            /* empty match: std::regex would report an empty word; skip a character */
            start = me + (st->collapsed ? 1 : tok_uc_len((unsigned char)subj[me]));
            continue;
        }
        if (st->collapsed) {
            if (ms > last && lens_push(out, ms - last))
                return TW_ENOMEM;
            if (lens_push(out, me - ms))
                return TW_ENOMEM;
        } else {
            /* byte offsets back to code points: count the lead bytes */
            size_t cs = 0, ce = 0;
            for (size_t i = last; i < ms; i++)
                cs += ((unsigned char)subj[i] & 0xc0) != 0x80;
            for (size_t i = ms; i < me; i++)
                ce += ((unsigned char)subj[i] & 0xc0) != 0x80;
            if (cs && lens_push(out, cs))
                return TW_ENOMEM;
            if (lens_push(out, ce))
                return TW_ENOMEM;
        }
        last = start = me;
    }
    if (last < slen) {
        size_t rest = 0;
        if (st->collapsed) {
            rest = slen - last;
        } else {
            for (size_t i = last; i < slen; i++)
                rest += ((unsigned char)subj[i] & 0xc0) != 0x80;
        }
        if (lens_push(out, rest))
            return TW_ENOMEM;
    }
    return 0;
}

static int build_subjects(const struct tok_pre *p, const uint32_t *cps, const uint16_t *fl,
                          size_t n, struct subjects *sj)
{
    if (p->need_collapsed) {
        sj->collapsed = tw_malloc(n + 1);
        if (!sj->collapsed)
            return TW_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            unsigned cat = fl[i] & TOK_UC_CATEGORIES;
            char b;
            if (cps[i] < 128)
                b = (char)cps[i];
            else if (fl[i] & W_)
                b = 0x0b;
            else if (cat == N_)
                b = (char)0xd1;
            else if (cat == L_)
                b = (char)0xd2;
            else if (cat == TOK_UC_PUNCTUATION)
                b = (char)0xd3;
            else if (cat == TOK_UC_MARK)
                b = (char)0xd4;
            else if (cat == TOK_UC_SYMBOL)
                b = (char)0xd5;
            else
                b = (char)0xd0;
            sj->collapsed[i] = b;
        }
        sj->collapsed[n] = '\0';
    }
    if (p->need_plain) {
        size_t o = 0, cap;
        if (tw_size_mul(n, 4, &cap) < 0)
            return TW_ENOMEM;
        sj->plain = tw_malloc(cap + 1);
        sj->plain_off = tw_mallocarray(n + 1, sizeof(size_t));
        if (!sj->plain || !sj->plain_off)
            return TW_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            uint32_t c = cps[i];
            sj->plain_off[i] = o;
            if (c > 0x7f && (fl[i] & W_))
                c = 0x0b;
            if ((c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
                c = 0xfffd; // keep the subject valid UTF-8 for PCRE2
            o += tok_uc_encode(c, sj->plain + o);
        }
        sj->plain_off[n] = o;
        sj->plain[o] = '\0';
    }
    return 0;
}

int tok__pre_split(const struct tok_pre *p, const uint32_t *cps, size_t n, struct tok_lens *out,
                   struct tw_err *err)
{
    struct subjects sj = {NULL, NULL, NULL};
    struct tok_lens cur = {NULL, 0, 0}, next = {NULL, 0, 0};
    pcre2_match_data *md = NULL;
    uint16_t *fl = NULL;
    int rc = TW_ENOMEM;

    out->n = 0;
    if (!n)
        return 0;
    fl = tw_mallocarray(n, sizeof(*fl));
    if (!fl)
        goto done;
    for (size_t i = 0; i < n; i++)
        fl[i] = (uint16_t)tok_uc_flags(cps[i]);
    if (build_subjects(p, cps, fl, n, &sj))
        goto done;
    md = pcre2_match_data_create(2, NULL);
    if (!md || lens_push(&cur, n))
        goto done;
    for (int k = 0; k < p->n_steps; k++) {
        const struct pre_step *st = &p->steps[k];
        size_t a = 0;
        next.n = 0;
        for (size_t w = 0; w < cur.n; w++) {
            size_t len = cur.v[w];
            if (st->kind == STEP_RE) {
                int e = split_re(st, &sj, a, len, md, &next);
                if (e == TW_ELIMIT) {
                    rc = tw_errf(err, TW_EUNSUP, "pre-tokenizer regex hit a PCRE2 limit on a word "
                                 "of %zu code points", len);
                    goto done;
                }
                if (e)
                    goto done;
            } else {
                struct seg s = {cps, fl, a, a + len, a, &next, 0};
                if (st->kind == STEP_GPT2)
                    split_gpt2(&s);
                else if (st->kind == STEP_NEWLINES)
                    split_newlines(&s);
                else if (st->kind == STEP_QWEN35)
                    split_llama3(&s, 1, L_ | TOK_UC_MARK);
                else
                    split_llama3(&s, st->kind == STEP_LLAMA3 ? 3 : 1, L_);
                if (s.err)
                    goto done;
            }
            a += len;
        }
        {
            struct tok_lens t = cur;
            cur = next;
            next = t;
        }
    }
    /* hand the result over in 'out' */
    tw_free(out->v);
    *out = cur;
    cur.v = NULL;
    rc = 0;
done:
    if (md)
        pcre2_match_data_free(md);
    tw_free(cur.v);
    tw_free(next.v);
    tw_free(fl);
    tw_free(sj.collapsed);
    tw_free(sj.plain);
    tw_free(sj.plain_off);
    if (rc == TW_ENOMEM)
        return tw_errf(err, rc, "out of memory splitting %zu code points", n);
    return rc;
}
