/* cmd_generate.c - `twin generate`: text generation from a GGUF model with the in-process
 * decoder (nn/llm.h), tokenizer (nn/tok.h), sampler (nn/sample.h) and chat templates
 * (nn/chat.h). Streams text to stdout as it is produced; timings go to stderr. */
#include "base/buf.h"
#include "base/err.h"
#include "base/mem.h"
#include "cli/cli.h"
#include "cli/cli_lora.h"
#include "nn/chat.h"
#include "nn/gguf.h"
#include "nn/llm.h"
#include "nn/sample.h"
#include "nn/tok.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GEN_MAX_STOPS 16
#define GEN_MAX_PROMPT_BYTES ((size_t)64 << 20)

struct gen_opts {
    const char *model, *prompt, *prompt_file, *system, *chat_template;
    long n_predict, n_ctx, n_threads;
    struct llm_sampler_params sp;
    bool seed_set, chat, json, ignore_eos, kv_f16;
    const char *stops[GEN_MAX_STOPS];
    int n_stops;
    struct cli_lora lora; // --lora FILE[:SCALE], repeatable
};

static void gen_usage(FILE *f)
{
    fprintf(f,
            "usage: twin generate -m FILE (-p PROMPT | -f FILE) [options]\n\n"
            "  -m FILE               GGUF model (llama, mistral, smollm, tinyllama, qwen2)\n"
            "  -p PROMPT, -f FILE    the prompt text, or a file holding it\n"
            "  -n N                  tokens to generate (default 128; -1: until EOS or full)\n"
            "  -c N                  context size in tokens (default: the model's, at most 4096)\n"
            "  -t N                  threads (default: all CPUs)\n"
            "  --temp T              temperature (default 0.8; 0 = greedy)\n"
            "  --top-k K             keep the K most likely tokens (default 40; 0 = off)\n"
            "  --top-p P             nucleus sampling (default 0.95; 1 = off)\n"
            "  --min-p M             drop tokens below M x the top probability (default 0.05)\n"
            "  --repeat-penalty R    penalize repeats in the last --repeat-last-n tokens (1 = off)\n"
            "  --repeat-last-n N     penalty window (default 64)\n"
            "  --frequency-penalty F, --presence-penalty P   OpenAI-style penalties (0 = off)\n"
            "  --seed S              sampling seed (default: from the clock)\n"
            "  --stop STR            stop before this text (repeatable, up to %d)\n"
            "  --ignore-eos          keep going past end-of-generation tokens\n"
            "  --chat                wrap the prompt in the model's chat template\n"
            "  --system TEXT         system message for --chat\n"
            "  --chat-template NAME  chatml, llama3, llama2-sys, mistral-v7, zephyr, gemma, phi3...\n"
            "  --kv f32|f16          KV cache type (default f32)\n"
            "  --lora FILE[:SCALE]   apply a LoRA adapter (GGUF) at SCALE (default 1; repeatable)\n"
            "  --json                print one JSON object {prompt_ids, ids, text, timings}\n",
            GEN_MAX_STOPS);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int num_arg(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return cli_fail("generate: %s '%s' must be a number in [%g, %g]", opt, s, lo, hi);
    *out = v;
    return 0;
}

static int gen_args(int argc, char **argv, struct gen_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x = 0;
        int rc = 0;
        if (!strcmp(a, "--chat")) {
            o->chat = true;
            continue;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
            continue;
        } else if (!strcmp(a, "--ignore-eos")) {
            o->ignore_eos = true;
            continue;
        }
        if (!v)
            return cli_fail("generate: option '%s' needs a value (see 'twin generate --help')", a);
        i++;
        if (!strcmp(a, "-m"))
            o->model = v;
        else if (!strcmp(a, "-p"))
            o->prompt = v;
        else if (!strcmp(a, "-f"))
            o->prompt_file = v;
        else if (!strcmp(a, "--system"))
            o->system = v;
        else if (!strcmp(a, "--chat-template"))
            o->chat_template = v;
        else if (!strcmp(a, "-n") && !(rc = num_arg(a, v, -1, 1 << 20, &x)))
            o->n_predict = (long)x;
        else if (!strcmp(a, "-c") && !(rc = num_arg(a, v, 0, 1 << 20, &x)))
            o->n_ctx = (long)x;
        else if (!strcmp(a, "-t") && !(rc = num_arg(a, v, 0, 1024, &x)))
            o->n_threads = (long)x;
        else if (!strcmp(a, "--temp") && !(rc = num_arg(a, v, 0, 100, &x)))
            o->sp.temp = (float)x;
        else if (!strcmp(a, "--top-k") && !(rc = num_arg(a, v, 0, 1 << 24, &x)))
            o->sp.top_k = (int)x;
        else if (!strcmp(a, "--top-p") && !(rc = num_arg(a, v, 0, 1, &x)))
            o->sp.top_p = (float)x;
        else if (!strcmp(a, "--min-p") && !(rc = num_arg(a, v, 0, 1, &x)))
            o->sp.min_p = (float)x;
        else if (!strcmp(a, "--repeat-penalty") && !(rc = num_arg(a, v, 0.01, 100, &x)))
            o->sp.repeat_penalty = (float)x;
        else if (!strcmp(a, "--repeat-last-n") && !(rc = num_arg(a, v, 0, 1 << 20, &x)))
            o->sp.penalty_last_n = (int)x;
        else if (!strcmp(a, "--frequency-penalty") && !(rc = num_arg(a, v, -100, 100, &x)))
            o->sp.freq_penalty = (float)x;
        else if (!strcmp(a, "--presence-penalty") && !(rc = num_arg(a, v, -100, 100, &x)))
            o->sp.presence_penalty = (float)x;
        else if (!strcmp(a, "--seed") && !(rc = num_arg(a, v, 0, 1.8e19, &x))) {
            o->sp.seed = (uint64_t)x;
            o->seed_set = true;
        } else if (!strcmp(a, "--kv")) {
            if (strcmp(v, "f16") && strcmp(v, "f32"))
                return cli_fail("generate: --kv '%s' must be f32 or f16", v);
            o->kv_f16 = !strcmp(v, "f16");
        } else if (!strcmp(a, "--lora")) {
            if (cli_lora_add(&o->lora, v))
                return 1;
        } else if (!strcmp(a, "--stop")) {
            if (o->n_stops == GEN_MAX_STOPS)
                return cli_fail("generate: more than %d --stop strings", GEN_MAX_STOPS);
            if (!*v)
                return cli_fail("generate: --stop needs a non-empty string");
            o->stops[o->n_stops++] = v;
        } else if (!rc)
            return cli_fail("generate: unknown option '%s'; see 'twin generate --help'", a);
        if (rc)
            return rc;
    }
    if (!o->model || (!o->prompt && !o->prompt_file)) {
        gen_usage(stderr);
        return 2;
    }
    if (o->prompt && o->prompt_file)
        return cli_fail("generate: give the prompt with -p or -f, not both");
    return 0;
}

/* The prompt text, rendered through the chat template with --chat. */
static int build_prompt(const struct gen_opts *o, const struct gguf_file *f, struct tw_buf *out)
{
    struct tw_err err = TW_ERR_INIT;
    struct llm_chat_msg msgs[2];
    struct gguf_str tmpl = {NULL, 0};
    size_t n = 0, len = 0;
    char *file = NULL;
    const char *text = o->prompt;
    int t, rc;

    if (o->prompt_file) {
        FILE *fp = fopen(o->prompt_file, "rb");
        if (!fp)
            return cli_fail("generate: cannot open prompt file '%s': %s", o->prompt_file,
                            strerror(errno));
        file = tw_malloc(GEN_MAX_PROMPT_BYTES + 1);
        if (file)
            len = fread(file, 1, GEN_MAX_PROMPT_BYTES + 1, fp);
        fclose(fp);
        if (!file)
            return cli_fail("generate: out of memory reading '%s'", o->prompt_file);
        if (len > GEN_MAX_PROMPT_BYTES) {
            tw_free(file);
            return cli_fail("generate: prompt file '%s' is larger than %zu MiB", o->prompt_file,
                            GEN_MAX_PROMPT_BYTES >> 20);
        }
        file[len] = 0;
        text = file;
    }
    if (!o->chat) {
        tw_buf_puts(out, text);
        tw_free(file);
        return out->err ? cli_fail("generate: out of memory") : 0;
    }
    if (o->chat_template) {
        t = llm_chat_from_name(o->chat_template);
        if (t < 0) {
            tw_free(file);
            return cli_fail("generate: unknown chat template '%s'", o->chat_template);
        }
    } else {
        if (gguf_get_str(f, "tokenizer.chat_template", &tmpl, &err) < 0) {
            tw_free(file);
            return cli_fail("generate: %s", err.msg);
        }
        t = llm_chat_detect(tmpl.ptr, tmpl.len);
        if (t < 0)
            t = LLM_CHAT_CHATML; // llama.cpp's fallback too
    }
    if (o->system)
        msgs[n++] = (struct llm_chat_msg){"system", o->system};
    msgs[n++] = (struct llm_chat_msg){"user", text};
    rc = llm_chat_render((enum llm_chat_tmpl)t, msgs, n, true, out, &err);
    tw_free(file);
    if (rc < 0)
        return cli_fail("generate: %s", err.msg);
    return 0;
}

static int tokenize(const struct tok *tk, const char *text, size_t len, bool parse_special,
                    int32_t **ids, size_t *n)
{
    struct tw_err err = TW_ERR_INIT;
    size_t cap = len + 16;

    for (int tries = 0; tries < 2; tries++) {
        *ids = tw_mallocarray(cap, sizeof(**ids));
        if (!*ids)
            return cli_fail("generate: out of memory tokenizing the prompt");
        int rc = tok_encode(tk, text, len, true, parse_special, *ids, cap, n, &err);
        if (rc == 0)
            return 0;
        tw_free(*ids);
        *ids = NULL;
        if (rc != TW_ELIMIT || *n <= cap)
            return cli_fail("generate: tokenizing the prompt: %s", err.msg);
        cap = *n;
        tw_err_clear(&err);
    }
    return cli_fail("generate: tokenizing the prompt: the token count kept growing");
}

static void json_ids(struct tw_buf *b, const char *key, const int32_t *ids, size_t n)
{
    tw_buf_printf(b, "\"%s\":[", key);
    for (size_t i = 0; i < n; i++)
        tw_buf_printf(b, "%s%d", i ? "," : "", (int)ids[i]);
    tw_buf_puts(b, "]");
}

struct gen_state {
    struct tw_buf text;   // generated text so far
    size_t printed;       // bytes of it already on stdout
    int32_t *ids;         // generated ids
    size_t n_ids;
    const char *stop_reason;
};

/* Prints what can no longer turn into a stop string. Returns true when a stop string was hit
 * (the text is cut before it). */
static bool gen_emit(struct gen_state *g, const struct gen_opts *o, bool final)
{
    size_t hold = 0;
    long at = llm_stop_scan(g->text.data, g->text.len, o->stops, o->n_stops, &hold);
    if (at >= 0) {
        tw_buf_truncate(&g->text, (size_t)at);
        hold = 0;
    }
    if (final)
        hold = 0;
    if (!o->json && g->text.len - hold > g->printed) {
        fwrite(g->text.data + g->printed, 1, g->text.len - hold - g->printed, stdout);
        fflush(stdout);
        g->printed = g->text.len - hold;
    }
    return at >= 0;
}

static int gen_loop(const struct gen_opts *o, struct llm_ctx *c, const struct tok *tk,
                    struct llm_sampler *s, float *logits, struct gen_state *g)
{
    struct tw_err err = TW_ERR_INIT;
    char piece[256];
    long limit = o->n_predict < 0 ? (1L << 30) : o->n_predict;

    g->stop_reason = "length";
    for (long i = 0; i < limit; i++) {
        int32_t id = llm_sampler_sample(s, logits);
        llm_sampler_accept(s, id);
        if (!o->ignore_eos && tok_is_eog(tk, id)) {
            g->stop_reason = "eos";
            break;
        }
        g->ids[g->n_ids++] = id;
        int32_t n = tok_piece(tk, id, false, piece, sizeof(piece));
        if (n > 0)
            tw_buf_add(&g->text, piece, (size_t)n);
        if (g->text.err)
            return cli_fail("generate: out of memory");
        if (gen_emit(g, o, false)) {
            g->stop_reason = "stop";
            break;
        }
        if (i + 1 == limit)
            break;
        if (llm_ctx_n_past(c) >= llm_ctx_n_ctx(c)) {
            g->stop_reason = "context";
            break;
        }
        if (llm_decode(c, &id, 1, logits, 0, &err) < 0)
            return cli_fail("generate: %s", err.msg);
    }
    gen_emit(g, o, true);
    return 0;
}

TW_COMMAND(generate, "generate text with a GGUF model (llama, qwen2 families)")
{
    struct gen_opts o = {.n_predict = 128, .sp = LLM_SAMPLER_PARAMS_DEFAULT};
    struct tw_err err = TW_ERR_INIT;
    struct llm_model *m = NULL;
    struct llm_ctx *c = NULL;
    struct tok *tk = NULL;
    struct llm_sampler *s = NULL;
    struct tw_buf prompt = TW_BUF_INIT, js = TW_BUF_INIT;
    struct gen_state g = {TW_BUF_INIT, 0, NULL, 0, NULL};
    int32_t *pids = NULL;
    size_t n_pids = 0;
    float *logits = NULL;
    double t0, t1, t2;
    int rc = 1;

    if (cli_wants_help(argc, argv)) {
        gen_usage(stdout);
        return 0;
    }
    if ((rc = gen_args(argc, argv, &o)) != 0)
        return rc;
    rc = 1;
    if (!o.seed_set)
        o.sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (llm_model_load(o.model, &m, &err) < 0)
        return cli_fail("generate: %s", err.msg);
    if (cli_lora_apply(&o.lora, m))
        goto out;
    if (tok_new_from_gguf(llm_model_gguf(m), &tk, &err) < 0) {
        cli_fail("generate: '%s': %s", o.model, err.msg);
        goto out;
    }
    if (build_prompt(&o, llm_model_gguf(m), &prompt))
        goto out;
    if (tokenize(tk, prompt.data, prompt.len, o.chat, &pids, &n_pids))
        goto out;
    if (n_pids == 0) {
        cli_fail("generate: the prompt has no tokens");
        goto out;
    }
    if (llm_ctx_new(m, (int)o.n_ctx, o.kv_f16 ? LLM_KV_F16 : LLM_KV_F32, (int)o.n_threads, &c,
                    &err) < 0 ||
        llm_sampler_new(&o.sp, llm_n_vocab(m), &s, &err) < 0) {
        cli_fail("generate: %s", err.msg);
        goto out;
    }
    if (n_pids > (size_t)llm_ctx_n_ctx(c)) {
        cli_fail("generate: the prompt has %zu tokens, the context only %d; use -c to enlarge it",
                 n_pids, llm_ctx_n_ctx(c));
        goto out;
    }
    logits = tw_mallocarray((size_t)llm_n_vocab(m), sizeof(float));
    g.ids = tw_mallocarray((size_t)llm_ctx_n_ctx(c) + 1, sizeof(*g.ids));
    if (!logits || !g.ids) {
        cli_fail("generate: out of memory");
        goto out;
    }
    if (o.n_predict < 0 || o.n_predict > llm_ctx_n_ctx(c)) // never more than the context holds
        o.n_predict = llm_ctx_n_ctx(c);
    for (size_t i = 0; i < n_pids; i++)
        llm_sampler_accept(s, pids[i]);
    t0 = now_s();
    if (llm_decode(c, pids, (int)n_pids, logits, 0, &err) < 0) {
        cli_fail("generate: %s", err.msg);
        goto out;
    }
    t1 = now_s();
    if (gen_loop(&o, c, tk, s, logits, &g))
        goto out;
    t2 = now_s();
    if (o.json) {
        tw_buf_puts(&js, "{");
        json_ids(&js, "prompt_ids", pids, n_pids);
        tw_buf_puts(&js, ",");
        json_ids(&js, "ids", g.ids, g.n_ids);
        tw_buf_puts(&js, ",\"text\":");
        tw_buf_json_str(&js, g.text.data, g.text.len);
        tw_buf_printf(&js,
                      ",\"stop\":\"%s\",\"timings\":{\"prompt_n\":%zu,\"prompt_ms\":%.3f,"
                      "\"prompt_per_second\":%.2f,\"predicted_n\":%zu,\"predicted_ms\":%.3f,"
                      "\"predicted_per_second\":%.2f}}\n",
                      g.stop_reason, n_pids, (t1 - t0) * 1e3, n_pids / (t1 - t0), g.n_ids,
                      (t2 - t1) * 1e3, g.n_ids ? g.n_ids / (t2 - t1) : 0.0);
        if (js.err) {
            cli_fail("generate: out of memory");
            goto out;
        }
        fwrite(js.data, 1, js.len, stdout);
    } else {
        putchar('\n');
    }
    fflush(stdout);
    fprintf(stderr,
            "twin: prompt %zu tokens in %.1f ms (%.1f tokens/s); generated %zu tokens in %.1f ms "
            "(%.1f tokens/s); stop: %s\n",
            n_pids, (t1 - t0) * 1e3, n_pids / (t1 - t0), g.n_ids, (t2 - t1) * 1e3,
            g.n_ids ? g.n_ids / (t2 - t1) : 0.0, g.stop_reason);
    rc = 0;
out:
    tw_buf_release(&prompt);
    tw_buf_release(&js);
    tw_buf_release(&g.text);
    tw_free(g.ids);
    tw_free(pids);
    tw_free(logits);
    llm_sampler_free(s);
    llm_ctx_free(c);
    tok_free(tk);
    llm_model_free(m);
    cli_lora_release(&o.lora); // after the model, which borrows the adapters
    return rc;
}
