/* test_chat.c - chat template detection and rendering against the known formats (the strings
 * llama.cpp's built-in templates produce for the same conversation). */
#include "test.h"

#include "base/buf.h"
#include "base/err.h"
#include "base/mem.h"
#include "nn/chat.h"

#include <stdint.h>

static const struct llm_chat_msg conv[] = {
    {"system", "You are a helpful assistant"}, {"user", "Hello"},
    {"assistant", "Hi there"},                 {"user", "Who are you"},
    {"assistant", "   I am an assistant   "},  {"user", "Another question"},
};
#define N_CONV (sizeof(conv) / sizeof(conv[0]))

static int render(enum llm_chat_tmpl t, const char *want)
{
    struct tw_err err = TW_ERR_INIT;
    struct tw_buf b = TW_BUF_INIT;
    int ok = llm_chat_render(t, conv, N_CONV, true, &b, &err) == 0 && !strcmp(b.data, want);
    if (!ok)
        fprintf(stderr, "  %s rendered:\n%s\n  want:\n%s\n", llm_chat_name(t), b.data, want);
    tw_buf_release(&b);
    return ok;
}

TEST(chatml)
{
    CHECK(render(LLM_CHAT_CHATML,
                 "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\n"
                 "Hello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\n"
                 "Who are you<|im_end|>\n<|im_start|>assistant\n   I am an assistant   "
                 "<|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n"
                 "<|im_start|>assistant\n"));
}

TEST(llama3)
{
    CHECK(render(LLM_CHAT_LLAMA3,
                 "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant"
                 "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n"));
}

TEST(llama2_variants)
{
    CHECK(render(LLM_CHAT_LLAMA2, "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>"
                                  "[INST] Who are you [/INST]   I am an assistant   </s>"
                                  "[INST] Another question [/INST]"));
    CHECK(render(LLM_CHAT_LLAMA2_SYS,
                 "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there"
                 "</s>[INST] Who are you [/INST]   I am an assistant   </s>"
                 "[INST] Another question [/INST]"));
    CHECK(render(LLM_CHAT_LLAMA2_SYS_BOS,
                 "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there"
                 "</s><s>[INST] Who are you [/INST]   I am an assistant   </s>"
                 "<s>[INST] Another question [/INST]"));
    CHECK(render(LLM_CHAT_LLAMA2_SYS_STRIP,
                 "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there"
                 "</s><s>[INST] Who are you [/INST]I am an assistant</s>"
                 "<s>[INST] Another question [/INST]"));
}

TEST(mistral_variants)
{
    CHECK(render(LLM_CHAT_MISTRAL_V7,
                 "[SYSTEM_PROMPT] You are a helpful assistant[/SYSTEM_PROMPT][INST] Hello[/INST]"
                 " Hi there</s>[INST] Who are you[/INST]    I am an assistant   </s>"
                 "[INST] Another question[/INST]"));
    CHECK(render(LLM_CHAT_MISTRAL_V3,
                 "[INST] You are a helpful assistant\n\nHello[/INST] Hi there</s>[INST] Who are "
                 "you[/INST] I am an assistant</s>[INST] Another question[/INST]"));
    CHECK(render(LLM_CHAT_MISTRAL_V1,
                 " [INST] You are a helpful assistant\n\nHello [/INST] Hi there</s> [INST] Who are "
                 "you [/INST]    I am an assistant   </s> [INST] Another question [/INST]"));
    CHECK(render(LLM_CHAT_MISTRAL_V3_TEKKEN,
                 "[INST]You are a helpful assistant\n\nHello[/INST]Hi there</s>[INST]Who are you"
                 "[/INST]   I am an assistant   </s>[INST]Another question[/INST]"));
}

TEST(zephyr_gemma_phi3)
{
    CHECK(render(LLM_CHAT_ZEPHYR,
                 "<|system|>\nYou are a helpful assistant<|endoftext|>\n<|user|>\nHello"
                 "<|endoftext|>\n<|assistant|>\nHi there<|endoftext|>\n<|user|>\nWho are you"
                 "<|endoftext|>\n<|assistant|>\n   I am an assistant   <|endoftext|>\n<|user|>\n"
                 "Another question<|endoftext|>\n<|assistant|>\n"));
    CHECK(render(LLM_CHAT_GEMMA,
                 "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n"
                 "<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you"
                 "<end_of_turn>\n<start_of_turn>model\nI am an assistant<end_of_turn>\n"
                 "<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n"));
    CHECK(render(LLM_CHAT_PHI3,
                 "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n"
                 "<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n"
                 "   I am an assistant   <|end|>\n<|user|>\nAnother question<|end|>\n"
                 "<|assistant|>\n"));
}

static int detect(const char *t)
{
    return llm_chat_detect(t, strlen(t));
}

TEST(detect_by_markers)
{
    CHECK_EQ_INT(llm_chat_detect(NULL, 0), LLM_CHAT_CHATML);
    CHECK_EQ_INT(detect("{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n'}}"),
                 LLM_CHAT_CHATML);
    CHECK_EQ_INT(detect("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>' }}"),
                 LLM_CHAT_LLAMA3);
    CHECK_EQ_INT(detect("{{ '[INST] ' + content + ' [/INST]' }}"), LLM_CHAT_LLAMA2);
    CHECK_EQ_INT(detect("{{ '[INST] <<SYS>>\\n' + system + '\\n<</SYS>>' }}"),
                 LLM_CHAT_LLAMA2_SYS);
    CHECK_EQ_INT(detect("<<SYS>>{{ bos_token + '[INST] ' + content.strip() }}"),
                 LLM_CHAT_LLAMA2_SYS_STRIP);
    CHECK_EQ_INT(detect("<<SYS>>{{ bos_token + '[INST] ' + message['content'] }}"),
                 LLM_CHAT_LLAMA2_SYS_BOS);
    CHECK_EQ_INT(detect("{{ '[SYSTEM_PROMPT]' + system }}{{ '[INST]' }}"), LLM_CHAT_MISTRAL_V7);
    CHECK_EQ_INT(detect("{{ bos_token }}{{ ' [INST] ' + system_message }}"),
                 LLM_CHAT_MISTRAL_V1);
    CHECK_EQ_INT(detect("{{ '[AVAILABLE_TOOLS] ' }}{{ '[INST] ' }}"), LLM_CHAT_MISTRAL_V3);
    CHECK_EQ_INT(detect("{{ '[AVAILABLE_TOOLS]' }}{{ \"[INST]\" }}"),
                 LLM_CHAT_MISTRAL_V3_TEKKEN);
    CHECK_EQ_INT(detect("{{ '<|user|>\\n' + m['content'] + '<|endoftext|>' }}"),
                 LLM_CHAT_ZEPHYR);
    CHECK_EQ_INT(detect("{{ '<start_of_turn>' + role + '\\n' }}"), LLM_CHAT_GEMMA);
    CHECK_EQ_INT(detect("{{'<|user|>\\n' + m + '<|end|>\\n<|assistant|>\\n'}}"), LLM_CHAT_PHI3);
    CHECK_EQ_INT(detect("{{ messages }} no markers here"), -1);
    CHECK_EQ_INT(llm_chat_from_name("llama3"), LLM_CHAT_LLAMA3);
    CHECK_EQ_INT(llm_chat_from_name("mistral"), LLM_CHAT_MISTRAL_V7);
    CHECK_EQ_INT(llm_chat_from_name("nope"), -1);
    for (int i = 0; i < LLM_CHAT_COUNT; i++)
        CHECK_EQ_INT(llm_chat_from_name(llm_chat_name(i)), i);
}

/* The chat template stored in a real GGUF (the phi-3 vocab): find the key and read the string
 * that follows it (u32 type 8, u64 length, bytes). */
TEST(detect_real_phi3_template)
{
    size_t len, klen = strlen("tokenizer.chat_template");
    char *f = test_read_file(test_shared("data/vocab/ggml-vocab-phi-3.gguf"), &len);
    CHECK(f != NULL);
    char *k = memmem(f, len, "tokenizer.chat_template", klen);
    CHECK(k != NULL && (size_t)(k - f) + klen + 12 <= len);
    uint32_t type;
    uint64_t slen;
    memcpy(&type, k + klen, 4);
    memcpy(&slen, k + klen + 4, 8);
    CHECK_EQ_INT(type, 8);
    CHECK(slen > 0 && (size_t)(k - f) + klen + 12 + slen <= len);
    CHECK_EQ_INT(llm_chat_detect(k + klen + 12, (size_t)slen), LLM_CHAT_PHI3);
    tw_free(f);
}

TEST(bad_role_and_no_generation_prompt)
{
    struct tw_err err = TW_ERR_INIT;
    struct tw_buf b = TW_BUF_INIT;
    struct llm_chat_msg m[2] = {{"user", "hi"}, {"tool", "x"}};
    CHECK_EQ_INT(llm_chat_render(LLM_CHAT_CHATML, m, 2, true, &b, &err), TW_EINVAL);
    CHECK(strstr(err.msg, "'tool'") != NULL);
    tw_buf_release(&b);
    CHECK_OK(llm_chat_render(LLM_CHAT_CHATML, m, 1, false, &b, &err), &err);
    CHECK_EQ_STR(b.data, "<|im_start|>user\nhi<|im_end|>\n");
    tw_buf_release(&b);
    tw_buf_init(&b, 10); // bounded output is reported, not truncated silently
    CHECK_EQ_INT(llm_chat_render(LLM_CHAT_CHATML, m, 1, true, &b, &err), TW_ELIMIT);
    tw_buf_release(&b);
}

int main(int argc, char **argv)
{
    return test_main(argc, argv);
}
