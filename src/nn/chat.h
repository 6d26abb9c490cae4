/* chat.h - chat templates: recognize a model's template family and render a conversation.
 *
 * GGUF models carry a Jinja template in `tokenizer.chat_template`. Like llama.cpp's built-in
 * templates we do not run Jinja: llm_chat_detect() recognizes the family by marker substrings
 * (`<|im_start|>` -> ChatML, `<|start_header_id|>` -> Llama 3, `[INST]` -> Llama 2 / Mistral,
 * `<start_of_turn>` -> Gemma, `<|assistant|>` + `<|end|>` -> Phi-3, `<|user|>` + `<|endoftext|>` ->
 * Zephyr) and llm_chat_render() writes the family's format:
 *
 *   chatml   <|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n
 *   llama3   <|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant...
 *   llama2   [INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST] A</s><s>[INST] U2 [/INST]
 *   mistral  [INST] S\n\nU[/INST] A</s>[INST] U2[/INST]          (v3; v1 and v7 variants too)
 *   zephyr   <|system|>\nS<|endoftext|>\n<|user|>\nU<|endoftext|>\n<|assistant|>\n
 *   gemma    <start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\n
 *   phi3     <|system|>\nS<|end|>\n<|user|>\nU<|end|>\n<|assistant|>\n
 *
 * BOS is not written: the tokenizer adds it. Templates that are absent or not recognized fall
 * back to ChatML. Rendered text contains special-token text, so tokenize it with special-token
 * parsing on. Thread-safety: pure functions.
 */
#ifndef TW_CHAT_H
#define TW_CHAT_H

#include "base/buf.h"
#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>

enum llm_chat_tmpl {
    LLM_CHAT_CHATML = 0,
    LLM_CHAT_LLAMA3,
    LLM_CHAT_LLAMA2,          // [INST] without system-message support (system folded in)
    LLM_CHAT_LLAMA2_SYS,      // with <<SYS>>
    LLM_CHAT_LLAMA2_SYS_BOS,  // ... and <s> before each later [INST]
    LLM_CHAT_LLAMA2_SYS_STRIP, // ... and message content trimmed (also <s> inside)
    LLM_CHAT_MISTRAL_V1,
    LLM_CHAT_MISTRAL_V3,
    LLM_CHAT_MISTRAL_V3_TEKKEN,
    LLM_CHAT_MISTRAL_V7,
    LLM_CHAT_ZEPHYR,
    LLM_CHAT_GEMMA,
    LLM_CHAT_PHI3,
    LLM_CHAT_COUNT,
};

struct llm_chat_msg {
    const char *role;    // "system", "user" or "assistant" (NUL-terminated)
    const char *content; // NUL-terminated
};

/* The family of the Jinja template text tmpl[0..len). Returns -1 when no marker is recognized
 * (callers then use ChatML); a NULL or empty template gives LLM_CHAT_CHATML. */
int llm_chat_detect(const char *tmpl, size_t len);
/* Short name ("chatml", "llama3", "llama2-sys", "mistral-v7", ...). */
const char *llm_chat_name(enum llm_chat_tmpl t);
/* The template named 'name' (as llm_chat_name gives, plus "llama2"/"mistral" aliases), or -1. */
int llm_chat_from_name(const char *name);

/* Appends the rendering of msgs[0..n) to 'out', then, if add_generation_prompt, the opening of
 * the assistant's turn (formats without one, the Llama 2 and Mistral ones, end after [/INST]).
 * A role other than system/user/assistant is TW_EINVAL naming it; buffer errors are returned
 * as TW_ENOMEM/TW_ELIMIT. */
int llm_chat_render(enum llm_chat_tmpl t, const struct llm_chat_msg *msgs, size_t n,
                    bool add_generation_prompt, struct tw_buf *out, struct tw_err *err);

#endif
