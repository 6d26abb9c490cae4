#!/usr/bin/env bash
# twin generate --lora FILE[:SCALE]: greedy ids equal llama.cpp's with the test adapter applied
# at run time at user scales 1.0 and 0.5 (shared/refs/lora/stories260K-lora.json, 3 prompts x
# 32 tokens); two adapters add up; the model merged by `twin model merge` generates the same
# ids as the adapter at run time; a mismatched adapter is refused, naming the tensor.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
M="$TWIN_SHARED/data/models/stories260K.gguf"
L="$TWIN_SHARED/refs/lora/stories260K-test-lora.gguf"
R="$TWIN_SHARED/refs/lora/stories260K-lora.json"

gen() { # prompt, options... -> the generated ids, comma-separated
    local p=$1
    shift
    "$TWIN_BIN" generate -m "$M" -p "$p" -n 32 --temp 0 -t 1 --json "$@" 2>"$tmp/err" |
        jq -r '.ids | map(tostring) | join(",")'
}
want() { jq -r ".runs[\"$1\"][$2].greedy_ids | map(tostring) | join(\",\")" "$R"; }

"$TWIN_BIN" model merge "$M" "$L" "$tmp/merged.gguf" >/dev/null
for i in 0 1 2; do
    prompt=$(jq -r ".runs[\"base\"][$i].prompt" "$R")
    [ "$(gen "$prompt")" = "$(want base $i)" ] || { echo "base, prompt $i differs"; exit 1; }
    got=$(gen "$prompt" --lora "$L")
    [ "$got" = "$(want adapter_scale_1.0 $i)" ] || { echo "scale 1.0, prompt $i: $got"; exit 1; }
    got=$(gen "$prompt" --lora "$L:0.5")
    [ "$got" = "$(want adapter_scale_0.5 $i)" ] || { echo "scale 0.5, prompt $i: $got"; exit 1; }
    got=$(gen "$prompt" --lora "$L:0.5" --lora "$L:0.5")
    [ "$got" = "$(want adapter_scale_1.0 $i)" ] || { echo "0.5 + 0.5, prompt $i: $got"; exit 1; }
    got=$("$TWIN_BIN" generate -m "$tmp/merged.gguf" -p "$prompt" -n 32 --temp 0 -t 1 --json \
        2>/dev/null | jq -r '.ids | map(tostring) | join(",")')
    [ "$got" = "$(want merged $i)" ] || { echo "merged, prompt $i: $got"; exit 1; }
done
# the adapter changes the text where llama.cpp's does ("in the park" -> "in the sky")
"$TWIN_BIN" generate -m "$M" -p "Once upon a time" -n 32 --temp 0 --lora "$L" >"$tmp/text" \
    2>/dev/null
grep -F "She loved to play outside in the sky." "$tmp/text" >/dev/null

# a path with a colon: the suffix is a scale only when it is a number
cp "$L" "$tmp/a:b.gguf"
[ "$(gen "Tom and his dog" --lora "$tmp/a:b.gguf")" = "$(want adapter_scale_1.0 1)" ]
[ "$(gen "Tom and his dog" --lora "$tmp/a:b.gguf:0.5")" = "$(want adapter_scale_0.5 1)" ]

# refused: an adapter for other shapes, a file that is not an adapter, a missing file
if "$TWIN_BIN" generate -m "$TWIN_SHARED/data/models/llama-2-tiny-random.gguf" -p hi -n 1 \
    --lora "$L" 2>"$tmp/err"; then
    echo "mismatched adapter accepted"; exit 1
fi
grep -F "'blk.0.attn_q.weight.lora_a' [64, 4], '.lora_b' [4, 64] does not fit base [8, 8]" \
    "$tmp/err" >/dev/null || { cat "$tmp/err"; exit 1; }
if "$TWIN_BIN" generate -m "$M" -p hi -n 1 --lora "$M" 2>"$tmp/err"; then exit 1; fi
grep -F "not an adapter" "$tmp/err" >/dev/null
if "$TWIN_BIN" generate -m "$M" -p hi -n 1 --lora "$tmp/none.gguf:2" 2>"$tmp/err"; then exit 1; fi
grep -F "none.gguf" "$tmp/err" >/dev/null
"$TWIN_BIN" generate --help | grep -F -e "--lora FILE[:SCALE]" >/dev/null
