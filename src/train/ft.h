/* ft.h - the training pipeline: the instruction dataset (ds_) and the fine-tune driver (ft_).
 *
 * Dataset. Input is a JSONL file (or a folder of them), one example a line, in either shape
 *
 *     {"messages":[{"role":"system|user|assistant","content":"..."}, ...]}      chat
 *     {"instruction":"...", "input":"...", "output":"..."}   ("input" optional) Alpaca
 *
 * rendered with the model's chat template (nn/chat.h, the renderer inference uses), or plain text
 * files / a folder of them for continued pre-training (every non-.jsonl file is text). Each
 * example becomes tokens and a loss flag per token:
 *
 *     chat      BOS <|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n A<|im_end|>\n EOS
 *     flags      0  0 ......................................................  1 ..........  1
 *     text      BOS T ... EOS                        every target counts
 *
 * Rows are what the model sees: T = n_ctx inputs and the T next tokens as targets, with a mask
 * over the targets. Instruction examples are padded, one per row (no attention across
 * examples); text is packed into one stream cut every T tokens. An example longer than T + 1
 * tokens is split into windows of T + 1 overlapping by one token (counted in ds_stats.n_split,
 * never truncated); windows without a counted target are dropped.
 *
 *     row r:   in  [r][0..T)   tokens t0 .. t(T-1)
 *              tgt [r][0..T)   tokens t1 .. tT
 *              mask[r][0..T)   1 where tgt counts in the loss
 *
 * The held-out split is by example (by window for text): a seeded shuffle puts
 * round(eval_split * n) of them, at least one, in the eval rows; or eval_path supplies them.
 *
 * Driver. ft_run() loads the base (or builds a random model from a vocab file), builds the
 * dataset, trains (LoRA by default, QLoRA over a quantized base, or every weight with 'full'),
 * evaluates, checkpoints and writes adapter.gguf or model.gguf, metrics.jsonl, run.json and
 * checkpoint.gguf into the output folder. See docs/train.md.
 *
 * Library code: nothing is printed; progress goes to the caller's callback. One thread drives a
 * run (the matmuls use a pool of opts->n_threads).
 */
#ifndef TW_FT_H
#define TW_FT_H

#include "base/err.h"
#include "nn/train.h"

#include <stddef.h>
#include <stdint.h>

struct tok;

#define DS_MIN_CTX        4
#define DS_MAX_CTX        65536
#define DS_MAX_FILE_BYTES ((size_t)256 << 20) // one input file
#define DS_MAX_BYTES      ((size_t)1 << 30)   // all input files together
#define DS_MAX_FILES      100000
#define DS_MAX_MESSAGES   1024 // per chat example

enum ds_kind { DS_KIND_TEXT = 0, DS_KIND_INSTRUCT };

struct ds_opts {
    int n_ctx;                  // T: inputs per row, DS_MIN_CTX..DS_MAX_CTX
    double eval_split;          // fraction held out, 0 <= x < 1 (ignored with eval_path)
    const char *eval_path;      // held-out examples from this file or folder, or NULL
    uint64_t seed;              // for the split
    int skip_bad;               // skip malformed JSONL lines (counted) instead of failing
    int chat_tmpl;              // enum llm_chat_tmpl, or -1: detect from chat_tmpl_text
    const char *chat_tmpl_text; // the model's tokenizer.chat_template (may be NULL: ChatML)
    size_t chat_tmpl_len;
};

/* Rows of T tokens: in, tgt and mask are [n][T]; n_counted[r] = number of mask bits set. */
struct ds_rows {
    int n;
    int T;
    int32_t *in;
    int32_t *tgt;
    uint8_t *mask;
    int32_t *n_counted;
};

struct ds_stats {
    long n_files;
    long n_examples; // examples read (lines kept, or text documents)
    long n_bad;      // malformed JSONL lines skipped (skip_bad)
    long n_split;    // examples longer than T + 1 tokens, split into windows
    long n_dropped;  // windows without any counted target
    long n_tokens;   // tokens of all examples
    long n_counted;  // of which count in the loss
    long n_train_counted, n_eval_counted;
};

/* A built dataset. Fields are read-only for callers; release with ds_release. */
struct ds {
    enum ds_kind kind;
    int chat_tmpl; // the template used (instruction data)
    struct ds_rows train;
    struct ds_rows eval;
    struct ds_stats st;
    char sha256[65]; // of every input byte, files in sorted path order
};

/* Builds the dataset at 'path' (a file or a folder, read recursively in sorted order) with the
 * tokenizer 'tk'. Errors name the input: a malformed JSONL line gives its file and line number
 * (TW_EFORMAT, unless o->skip_bad), an empty dataset or a context too small for any example is
 * TW_EINVAL with a hint. On failure 'ds' holds nothing to release. */
int ds_load(struct ds *ds, const char *path, const struct tok *tk, const struct ds_opts *o,
            struct tw_err *err);
void ds_release(struct ds *ds);

/* Tokens and loss flags of one instruction example (a JSON object as above) rendered with
 * template 'tmpl': *ids and *flags are new arrays of *n entries (flags[j] = 1: token j is a
 * target that counts). Exposed for tests. */
int ds_encode_example(const char *json, size_t len, const struct tok *tk, int tmpl, int32_t **ids,
                      uint8_t **flags, size_t *n, struct tw_err *err);

/* ---- fine-tune driver ---- */

enum ft_event_kind { FT_EV_START = 0, FT_EV_STEP, FT_EV_EVAL, FT_EV_SAVE, FT_EV_DONE };

struct ft_event {
    enum ft_event_kind kind;
    long step;  // steps done
    long total; // steps planned
    float loss; // FT_EV_STEP: weighted mean over the step's micro-batches
    float lr;
    double grad_norm;    // before clipping
    double tokens_per_s; // FT_EV_STEP: row tokens (T per row) / s over this step
    double eval_loss;    // FT_EV_EVAL
    const char *path;    // FT_EV_SAVE: the file written
    const struct ds *ds; // FT_EV_START
    long n_params;       // FT_EV_START: trainable values
    long n_base;         // FT_EV_START: values of the whole model
};

struct ft_opts {
    const char *base;      // GGUF base model (unless init_random)
    const char *dataset;   // file or folder
    const char *out;       // output folder (created)
    const char *resume;    // folder holding checkpoint.gguf, or NULL
    const char *metrics;   // metrics file, or NULL: out/metrics.jsonl
    int full;              // train every weight (else LoRA)
    int lora_rank;         // 16
    float lora_alpha;      // 32
    unsigned lora_targets; // enum train_lora_target bits
    float lora_dropout;
    long epochs; // used when steps == 0
    long steps;
    long stop_at; // stop (with a checkpoint) after this step, as if interrupted; 0 = no
    float lr;
    float lr_min;
    long warmup;
    enum train_decay schedule;
    int batch;
    int accum;
    struct ds_opts ds;
    long eval_every; // 0: before the first step and at the end only
    long save_every; // checkpoint period; 0: at the end (and at stop_at) only
    uint64_t seed;
    int n_threads;
    double clip;        // global gradient norm limit; 0 = none
    float weight_decay; // AdamW decoupled decay (not on norms)
    /* from scratch */
    int init_random;
    const char *vocab_from;
    int dim, layers, heads, kv_heads, ff;
    /* progress: called on the run's thread; may be NULL */
    void (*on_event)(void *ctx, const struct ft_event *ev);
    void *ctx;
};

/* The defaults above (rank 16, alpha 32, all targets, lr 2e-4, warmup 20, cosine, batch 1,
 * accum 1, ctx 256, 1 epoch, eval split 0.1, seed 42, 1 thread, clip 1, weight decay 0). */
void ft_opts_default(struct ft_opts *o);

struct ft_result {
    long steps;          // steps done (the last step)
    double eval_before;  // eval loss before the first step (NAN if resumed past it or no eval)
    double eval_after;   // eval loss at the end (NAN without eval rows)
    double loss_first;   // training loss of the first step of this run
    double loss_last;    // and of the last
    double tokens_per_s; // over the whole run
};

/* Runs a training job as described in the header comment. Returns 0 and fills 'res', or a
 * negative TW_E* with 'err' naming what failed. */
int ft_run(const struct ft_opts *o, struct ft_result *res, struct tw_err *err);

/* Parses a target list "q,k,v,o,gate,up,down" (or "all") into enum train_lora_target bits;
 * -1 with 'err' naming the bad entry. */
int ft_parse_targets(const char *s, unsigned *out, struct tw_err *err);

#endif
