#!/usr/bin/env bash
# twin generate on stories260K against llama.cpp's greedy outputs (shared/refs/stories260K.json):
# prompt ids, generated ids and text for every case; the 200-token run from BOS; seeds, stop
# strings, the context limit and refusal of an unsupported model.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
M="$TWIN_SHARED/data/models/stories260K.gguf"
R="$TWIN_SHARED/refs/stories260K.json"

# field K of case I (0-based) of the refs, as a JSON scalar or a flattened array
ref_str() { grep "^   \"$2\": \"" "$R" | sed -n "$(($1 + 1))p" | sed -E "s/^   \"$2\": \"(.*)\",?$/\1/"; }
ref_ids() {
    awk -v want="$1" -v key="\"$2\": \\[" '
        $0 ~ key { n++; if (n - 1 == want) { on = 1; next } }
        on && /\]/ { exit }
        on { gsub(/[ ,]/, ""); printf "%s%s", sep, $0; sep = "," }' "$R"
}
json_field() { sed -E "s/.*\"$1\":\[([^]]*)\].*/\1/" "$2"; }

for i in 0 1 2 3 4; do
    prompt=$(ref_str $i prompt)
    "$TWIN_BIN" generate -m "$M" -p "$prompt" -n 64 --temp 0 -t 1 --json > "$tmp/out" 2> "$tmp/err"
    [ "$(json_field prompt_ids "$tmp/out")" = "$(ref_ids $i prompt_ids)" ] ||
        { echo "case $i: prompt ids differ"; cat "$tmp/out"; exit 1; }
    [ "$(json_field ids "$tmp/out")" = "$(ref_ids $i greedy_ids)" ] ||
        { echo "case $i: greedy ids differ"; cat "$tmp/out"; ref_ids $i greedy_ids; exit 1; }
    # the text is the pieces as streamed: full_text (" " + prompt + continuation) less the prompt
    text=$(sed -E 's/.*"text":"(.*)","stop".*/\1/' "$tmp/out")
    full=$(ref_str $i full_text)
    want=$full
    [ -z "$prompt" ] || want=${full#" $prompt"}
    [ "$text" = "$want" ] || { echo "case $i: text differs: $text"; exit 1; }
    grep -q '"stop":"length"' "$tmp/out"
    grep -Eq '^twin: prompt [0-9]+ tokens in .* generated 64 tokens in .* tokens/s' "$tmp/err"
done

# streamed text equals the JSON text (greedy, so the same run)
"$TWIN_BIN" generate -m "$M" -p "Once upon a time" -n 64 --temp 0 > "$tmp/stream" 2> /dev/null
printf '%s' "$(ref_str 0 greedy_text)" | sed 's/\\n/\n/g' > "$tmp/want"
diff <(head -c -1 "$tmp/stream") "$tmp/want"

# 200 tokens from BOS alone = llama2.c's greedy run
"$TWIN_BIN" generate -m "$M" -p "" -n 200 --temp 0 --json > "$tmp/out" 2> /dev/null
want=$(tr -s ' \n' ',' < "$TWIN_SHARED/data/models/stories260K.greedy200.ids.txt" | sed 's/,$//')
[ "1,$(json_field ids "$tmp/out")" = "$want" ] || { echo "greedy 200 differs"; exit 1; }

# sampling: the same seed repeats, another seed differs
gen() { "$TWIN_BIN" generate -m "$M" -p "Once upon a time" -n 40 --temp 1 --seed "$1" --json 2> /dev/null; }
a=$(gen 11 | json_field ids /dev/stdin); b=$(gen 11 | json_field ids /dev/stdin)
c=$(gen 12 | json_field ids /dev/stdin)
[ "$a" = "$b" ] || { echo "same seed, different ids"; exit 1; }
[ "$a" != "$c" ] || { echo "different seeds, same ids"; exit 1; }
[ "$a" != "$(ref_ids 0 greedy_ids | cut -d, -f1-40)" ] || { echo "temp 1 gave the greedy ids"; exit 1; }

# stop string: the text ends right before it
"$TWIN_BIN" generate -m "$M" -p "Once upon a time" -n 64 --temp 0 --stop "Lily" --json > "$tmp/out" 2> /dev/null
grep -q '"text":", there was a little girl named ","stop":"stop"' "$tmp/out"

# the context limit ends generation, and a prompt longer than the context is an error
"$TWIN_BIN" generate -m "$M" -p "Once upon a time" -n 64 --temp 0 -c 8 --json > "$tmp/out" 2> /dev/null
grep -q '"stop":"context"' "$tmp/out"
[ "$(json_field ids "$tmp/out")" = "$(ref_ids 0 greedy_ids | cut -d, -f1-4)" ]
if "$TWIN_BIN" generate -m "$M" -p "Once upon a time" -c 3 2> "$tmp/err"; then exit 1; fi
grep -q "the prompt has 5 tokens, the context only 3" "$tmp/err"

# a model of another architecture is refused, naming it
if "$TWIN_BIN" generate -m "$TWIN_SHARED/refs/models/tiny-bert-bge-synth.gguf" -p hi 2> "$tmp/err"; then exit 1; fi
grep -q "architecture 'bert' is not supported (llama, qwen2)" "$tmp/err"

# top-k 1 at any temperature is greedy; a repeat penalty changes the greedy text
"$TWIN_BIN" generate -m "$M" -p "Once upon a time" -n 64 --temp 1.5 --top-k 1 --seed 3 --json > "$tmp/out" 2> /dev/null
[ "$(json_field ids "$tmp/out")" = "$(ref_ids 0 greedy_ids)" ] || { echo "top-k 1 is not greedy"; exit 1; }
"$TWIN_BIN" generate -m "$M" -p "Once upon a time" -n 64 --temp 0 --repeat-penalty 1.5 --json > "$tmp/out" 2> /dev/null
[ "$(json_field ids "$tmp/out")" != "$(ref_ids 0 greedy_ids)" ] || { echo "repeat penalty had no effect"; exit 1; }

# --chat: the prompt is the template's rendering, tokenized with special tokens parsed
# (stories260K has no template, so ChatML; --chat-template picks another)
"$TWIN_BIN" generate -m "$M" -p "Hi there" --chat --system "Be brief" -n 1 --temp 0 --json > "$tmp/out" 2> /dev/null
printf '<|im_start|>system\nBe brief<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n' |
    "$TWIN_BIN" tokenize -m "$M" --ids --parse-special -f - | tr ' ' ',' > "$tmp/want"
[ "$(json_field prompt_ids "$tmp/out")" = "$(cat "$tmp/want")" ] || { echo "chatml prompt differs"; exit 1; }
"$TWIN_BIN" generate -m "$M" -p "Hi there" --chat --chat-template llama3 -n 1 --temp 0 --json > "$tmp/out" 2> /dev/null
printf '<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n' |
    "$TWIN_BIN" tokenize -m "$M" --ids --parse-special -f - | tr ' ' ',' > "$tmp/want"
[ "$(json_field prompt_ids "$tmp/out")" = "$(cat "$tmp/want")" ] || { echo "llama3 prompt differs"; exit 1; }
