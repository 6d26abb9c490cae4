#!/usr/bin/env bash
# twin model synth: random-weight models with a real vocabulary, deterministic per seed, loadable
# by the decoder (twin bench model runs them), with clear errors for impossible shapes.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
vocab="$TWIN_SHARED/data/models/stories260K.gguf"
shape=(--dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 96)

"$TWIN_BIN" model synth "$tmp/a.gguf" --like "$vocab" "${shape[@]}" --type q8_0 --arch qwen2 --seed 7
"$TWIN_BIN" model synth "$tmp/b.gguf" --like "$vocab" "${shape[@]}" --type q8_0 --arch qwen2 --seed 7
"$TWIN_BIN" model synth "$tmp/c.gguf" --like "$vocab" "${shape[@]}" --type q8_0 --arch qwen2 --seed 8
cmp "$tmp/a.gguf" "$tmp/b.gguf"                 # same seed, same bytes
if cmp -s "$tmp/a.gguf" "$tmp/c.gguf"; then echo "different seeds gave the same file"; exit 1; fi

"$TWIN_BIN" model info "$tmp/a.gguf" > "$tmp/info"
grep -q 'general.architecture *"qwen2"' "$tmp/info"
grep -q 'tokenizer.ggml.tokens *\[string x 512\]' "$tmp/info"
grep -q 'blk.1.attn_k.bias' "$tmp/info"
grep -Eq 'blk.1.ffn_down.weight +q8_0 +96 x 64' "$tmp/info"

# the decoder loads and runs it
"$TWIN_BIN" bench model -m "$tmp/a.gguf" -t 1 -r 1 > "$tmp/bench"
grep -Eq '^tg128 +[0-9]+\.[0-9] tokens/s' "$tmp/bench"
grep -q 'qwen2, dim 64, 2 layers, 4/2 heads, ff 96, vocab 512' "$tmp/bench"

# shapes that cannot work are refused with a reason
if "$TWIN_BIN" model synth "$tmp/d.gguf" --like "$vocab" --dim 64 --layers 1 --heads 4 --ff 96 \
    --type q4_k 2> "$tmp/err"; then echo "q4_k with rows of 64 was accepted"; exit 1; fi
grep -q "not a multiple of q4_k's block of 256" "$tmp/err"
if "$TWIN_BIN" model synth "$tmp/d.gguf" --like "$vocab" --dim 64 --layers 1 --heads 3 --ff 96 \
    2> "$tmp/err"; then echo "dim 64 with 3 heads was accepted"; exit 1; fi
grep -q "must split into 3 heads" "$tmp/err"
[ ! -e "$tmp/d.gguf" ]
