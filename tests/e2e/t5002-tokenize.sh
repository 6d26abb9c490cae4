#!/usr/bin/env bash
# twin tokenize: ids equal llama.cpp's reference ids (refs/tokenizer/*.json) for SPM, BPE and
# WordPiece vocabs, with and without special tokens; --json, -f, --parse-special, errors.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
refs="$TWIN_SHARED/refs/tokenizer"

check() { # vocab-file ref-json case-index
    local model=$1 ref=$2 i=$3 text want got
    text=$(jq -r ".cases[$i].text" "$ref")
    want=$(jq -r ".cases[$i].ids_with_special | map(tostring) | join(\" \")" "$ref")
    got=$("$TWIN_BIN" tokenize -m "$model" --ids -- "$text")
    [ "$got" = "$want" ] || { echo "$model case $i: got '$got' want '$want'"; exit 1; }
    want=$(jq -r ".cases[$i].ids | map(tostring) | join(\" \")" "$ref")
    got=$("$TWIN_BIN" tokenize -m "$model" --ids --no-special -- "$text")
    [ "$got" = "$want" ] || { echo "$model case $i (no special): got '$got' want '$want'"; exit 1; }
}
for i in 0 5 17 30; do
    check "$TWIN_SHARED/data/models/stories260K.gguf" "$refs/tokenizer-stories260K.json" $i
    check "$TWIN_SHARED/data/vocab/ggml-vocab-gpt-2.gguf" "$refs/tokenizer-ggml-vocab-gpt-2.json" $i
    check "$TWIN_SHARED/data/vocab/ggml-vocab-bert-bge.gguf" \
        "$refs/tokenizer-ggml-vocab-bert-bge.json" $i
done

# --json: ids and pieces; pieces concatenate to the text for a byte-level vocab
gpt2="$TWIN_SHARED/data/vocab/ggml-vocab-gpt-2.gguf"
"$TWIN_BIN" tokenize -m "$gpt2" --json "Hello  world, it's 2024!" >"$tmp/j"
[ "$(jq -r '.pieces | join("")' "$tmp/j")" = "Hello  world, it's 2024!" ]
[ "$(jq '.ids | length' "$tmp/j")" = "$(jq '.pieces | length' "$tmp/j")" ]
[ "$(jq -c '.ids[0:2]' "$tmp/j")" = "[15496,220]" ]

# the same text from a file and from stdin
printf 'Hello world' >"$tmp/in.txt"
[ "$("$TWIN_BIN" tokenize -m "$gpt2" --ids -f "$tmp/in.txt")" = "15496 995" ]
[ "$(printf 'Hello world' | "$TWIN_BIN" tokenize -m "$gpt2" --ids -f -)" = "15496 995" ]

# special-token text is spelled out unless --parse-special
[ "$("$TWIN_BIN" tokenize -m "$gpt2" --ids --parse-special 'a<|endoftext|>')" = "64 50256" ]
[ "$("$TWIN_BIN" tokenize -m "$gpt2" --ids 'a<|endoftext|>' | wc -w)" -gt 2 ]

# errors: usage, unknown option, a file without a vocabulary
set +e
"$TWIN_BIN" tokenize "text" 2>/dev/null; [ $? -eq 2 ] || { echo "missing -m accepted"; exit 1; }
"$TWIN_BIN" tokenize -m "$gpt2" --bogus x 2>"$tmp/err"; [ $? -eq 1 ] || exit 1
grep -q "unknown option '--bogus'" "$tmp/err"
"$TWIN_BIN" tokenize -m "$TWIN_SHARED/refs/models/synth-tiny-f32.gguf" x >/dev/null 2>"$tmp/err"
rc=$?
set -e
if [ -f "$TWIN_SHARED/refs/models/synth-tiny-f32.gguf" ]; then
    # synth-tiny carries the stories260K vocabulary, so it tokenizes
    [ $rc -eq 0 ] || { cat "$tmp/err"; exit 1; }
fi
