/* chat.c - chat template detection and rendering (the formats are drawn in chat.h). */
#include "nn/chat.h"

#include <ctype.h>
#include <string.h>

static const char *const tmpl_names[LLM_CHAT_COUNT] = {
    [LLM_CHAT_CHATML] = "chatml",
    [LLM_CHAT_LLAMA3] = "llama3",
    [LLM_CHAT_LLAMA2] = "llama2",
    [LLM_CHAT_LLAMA2_SYS] = "llama2-sys",
    [LLM_CHAT_LLAMA2_SYS_BOS] = "llama2-sys-bos",
    [LLM_CHAT_LLAMA2_SYS_STRIP] = "llama2-sys-strip",
    [LLM_CHAT_MISTRAL_V1] = "mistral-v1",
    [LLM_CHAT_MISTRAL_V3] = "mistral-v3",
    [LLM_CHAT_MISTRAL_V3_TEKKEN] = "mistral-v3-tekken",
    [LLM_CHAT_MISTRAL_V7] = "mistral-v7",
    [LLM_CHAT_ZEPHYR] = "zephyr",
    [LLM_CHAT_GEMMA] = "gemma",
    [LLM_CHAT_PHI3] = "phi3",
};

const char *llm_chat_name(enum llm_chat_tmpl t)
{
    return (unsigned)t < LLM_CHAT_COUNT ? tmpl_names[t] : "unknown";
}

int llm_chat_from_name(const char *name)
{
    for (int i = 0; i < LLM_CHAT_COUNT; i++)
        if (!strcmp(name, tmpl_names[i]))
            return i;
    if (!strcmp(name, "mistral"))
        return LLM_CHAT_MISTRAL_V7;
    if (!strcmp(name, "llama-3") || !strcmp(name, "llama-2"))
        return name[6] == '3' ? LLM_CHAT_LLAMA3 : LLM_CHAT_LLAMA2_SYS;
    return -1;
}

static bool has(const char *t, size_t len, const char *needle)
{
    return memmem(t, len, needle, strlen(needle)) != NULL;
}

int llm_chat_detect(const char *t, size_t len)
{
    if (!t || len == 0)
        return LLM_CHAT_CHATML;
    if (has(t, len, "<|im_start|>"))
        return LLM_CHAT_CHATML;
    if ((len >= 7 && !memcmp(t, "mistral", 7)) || has(t, len, "[INST]")) {
        if (has(t, len, "[SYSTEM_PROMPT]"))
            return LLM_CHAT_MISTRAL_V7;
        /* Mistral's official v1/v3 templates: a system message prefixed to the first [INST],
         * or tool blocks */
        if (has(t, len, "' [INST] ' + system_message") || has(t, len, "[AVAILABLE_TOOLS]")) {
            if (has(t, len, " [INST]"))
                return LLM_CHAT_MISTRAL_V1;
            if (has(t, len, "\"[INST]\""))
                return LLM_CHAT_MISTRAL_V3_TEKKEN;
            return LLM_CHAT_MISTRAL_V3;
        }
        if (has(t, len, "content.strip()"))
            return LLM_CHAT_LLAMA2_SYS_STRIP;
        if (has(t, len, "bos_token + '[INST]"))
            return LLM_CHAT_LLAMA2_SYS_BOS;
        if (has(t, len, "<<SYS>>"))
            return LLM_CHAT_LLAMA2_SYS;
        return LLM_CHAT_LLAMA2;
    }
    if (has(t, len, "<|assistant|>") && has(t, len, "<|end|>"))
        return LLM_CHAT_PHI3;
    if (has(t, len, "<|user|>") && has(t, len, "<|endoftext|>"))
        return LLM_CHAT_ZEPHYR;
    if (has(t, len, "<start_of_turn>"))
        return LLM_CHAT_GEMMA;
    if (has(t, len, "<|start_header_id|>") && has(t, len, "<|end_header_id|>"))
        return LLM_CHAT_LLAMA3;
    return -1;
}

/* Appends s without leading and trailing whitespace. */
static void put_trimmed(struct tw_buf *b, const char *s)
{
    size_t len = strlen(s);
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    tw_buf_add(b, s, len);
}

enum role { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT };

static void render_llama2(enum llm_chat_tmpl t, const struct llm_chat_msg *m, const enum role *r,
                          size_t n, struct tw_buf *b)
{
    bool sys = t != LLM_CHAT_LLAMA2;
    bool bos_inside = t == LLM_CHAT_LLAMA2_SYS_BOS || t == LLM_CHAT_LLAMA2_SYS_STRIP;
    bool strip = t == LLM_CHAT_LLAMA2_SYS_STRIP;
    bool in_turn = true; // the first [INST] follows the BOS the tokenizer adds

    tw_buf_puts(b, "[INST] ");
    for (size_t i = 0; i < n; i++) {
        if (!in_turn) {
            in_turn = true;
            tw_buf_puts(b, bos_inside ? "<s>[INST] " : "[INST] ");
        }
        if (r[i] == ROLE_SYSTEM && sys)
            tw_buf_puts(b, "<<SYS>>\n");
        if (strip)
            put_trimmed(b, m[i].content);
        else
            tw_buf_puts(b, m[i].content);
        if (r[i] == ROLE_SYSTEM) {
            tw_buf_puts(b, sys ? "\n<</SYS>>\n\n" : "\n");
        } else if (r[i] == ROLE_USER) {
            tw_buf_puts(b, " [/INST]");
        } else {
            tw_buf_puts(b, "</s>");
            in_turn = false;
        }
    }
}

static void render_mistral(enum llm_chat_tmpl t, const struct llm_chat_msg *m, const enum role *r,
                           size_t n, struct tw_buf *b)
{
    const char *lead = t == LLM_CHAT_MISTRAL_V1 ? " " : "";
    const char *trail = t == LLM_CHAT_MISTRAL_V3_TEKKEN ? "" : " ";
    bool in_turn = false;

    if (t == LLM_CHAT_MISTRAL_V7) {
        for (size_t i = 0; i < n; i++) {
            if (r[i] == ROLE_SYSTEM)
                tw_buf_printf(b, "[SYSTEM_PROMPT] %s[/SYSTEM_PROMPT]", m[i].content);
            else if (r[i] == ROLE_USER)
                tw_buf_printf(b, "[INST] %s[/INST]", m[i].content);
            else
                tw_buf_printf(b, " %s</s>", m[i].content);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!in_turn) {
            tw_buf_printf(b, "%s[INST]%s", lead, trail);
            in_turn = true;
        }
        if (r[i] == ROLE_SYSTEM) {
            tw_buf_printf(b, "%s\n\n", m[i].content);
        } else if (r[i] == ROLE_USER) {
            tw_buf_printf(b, "%s%s[/INST]", m[i].content, lead);
        } else {
            tw_buf_puts(b, trail);
            if (t == LLM_CHAT_MISTRAL_V3)
                put_trimmed(b, m[i].content);
            else
                tw_buf_puts(b, m[i].content);
            tw_buf_puts(b, "</s>");
            in_turn = false;
        }
    }
}

static void render_gemma(const struct llm_chat_msg *m, const enum role *r, size_t n, bool gen,
                         struct tw_buf *b)
{
    const char *pending_sys = NULL; // Gemma has no system turn: it opens the next user turn

    for (size_t i = 0; i < n; i++) {
        if (r[i] == ROLE_SYSTEM) {
            pending_sys = m[i].content;
            continue;
        }
        tw_buf_printf(b, "<start_of_turn>%s\n", r[i] == ROLE_ASSISTANT ? "model" : "user");
        if (pending_sys && r[i] == ROLE_USER) {
            put_trimmed(b, pending_sys);
            tw_buf_puts(b, "\n\n");
            pending_sys = NULL;
        }
        put_trimmed(b, m[i].content);
        tw_buf_puts(b, "<end_of_turn>\n");
    }
    if (gen)
        tw_buf_puts(b, "<start_of_turn>model\n");
}

int llm_chat_render(enum llm_chat_tmpl t, const struct llm_chat_msg *msgs, size_t n,
                    bool add_generation_prompt, struct tw_buf *out, struct tw_err *err)
{
    enum role roles[64], *r = roles;
    const char *end = NULL;

    if ((unsigned)t >= LLM_CHAT_COUNT)
        return tw_errf(err, TW_EINVAL, "unknown chat template %d", (int)t);
    if (n > sizeof(roles) / sizeof(roles[0]))
        return tw_errf(err, TW_ELIMIT, "chat has %zu messages, limit is %zu", n,
                       sizeof(roles) / sizeof(roles[0]));
    for (size_t i = 0; i < n; i++) {
        const char *role = msgs[i].role;
        if (!role || !msgs[i].content)
            return tw_errf(err, TW_EINVAL, "chat message %zu has no role or content", i);
        if (!strcmp(role, "system"))
            r[i] = ROLE_SYSTEM;
        else if (!strcmp(role, "user"))
            r[i] = ROLE_USER;
        else if (!strcmp(role, "assistant"))
            r[i] = ROLE_ASSISTANT;
        else
            return tw_errf(err, TW_EINVAL,
                           "chat message %zu has role '%.32s'; expected system, user or assistant",
                           i, role);
    }
    switch (t) {
    case LLM_CHAT_LLAMA2:
    case LLM_CHAT_LLAMA2_SYS:
    case LLM_CHAT_LLAMA2_SYS_BOS:
    case LLM_CHAT_LLAMA2_SYS_STRIP:
        render_llama2(t, msgs, r, n, out);
        break;
    case LLM_CHAT_MISTRAL_V1:
    case LLM_CHAT_MISTRAL_V3:
    case LLM_CHAT_MISTRAL_V3_TEKKEN:
    case LLM_CHAT_MISTRAL_V7:
        render_mistral(t, msgs, r, n, out);
        break;
    case LLM_CHAT_GEMMA:
        render_gemma(msgs, r, n, add_generation_prompt, out);
        break;
    case LLM_CHAT_LLAMA3:
        for (size_t i = 0; i < n; i++) {
            tw_buf_printf(out, "<|start_header_id|>%s<|end_header_id|>\n\n", msgs[i].role);
            put_trimmed(out, msgs[i].content);
            tw_buf_puts(out, "<|eot_id|>");
        }
        if (add_generation_prompt)
            tw_buf_puts(out, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case LLM_CHAT_CHATML:
        for (size_t i = 0; i < n; i++)
            tw_buf_printf(out, "<|im_start|>%s\n%s<|im_end|>\n", msgs[i].role, msgs[i].content);
        if (add_generation_prompt)
            tw_buf_puts(out, "<|im_start|>assistant\n");
        break;
    case LLM_CHAT_ZEPHYR:
    case LLM_CHAT_PHI3:
        end = t == LLM_CHAT_ZEPHYR ? "<|endoftext|>" : "<|end|>";
        for (size_t i = 0; i < n; i++)
            tw_buf_printf(out, "<|%s|>\n%s%s\n", msgs[i].role, msgs[i].content, end);
        if (add_generation_prompt)
            tw_buf_puts(out, "<|assistant|>\n");
        break;
    case LLM_CHAT_COUNT:
        break;
    }
    if (out->err)
        return tw_errf(err, out->err, "rendering a chat of %zu messages: %s", n,
                       tw_strerror(out->err));
    return TW_OK;
}
