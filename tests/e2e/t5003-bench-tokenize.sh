#!/usr/bin/env bash
# twin bench tokenize: on a small corpus its token count equals what twin tokenize gives for
# each document, and it reports tokens/s and MB/s.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/corpus"
posts="$TWIN_SHARED/data/corpora/skeeto/_posts"
files=("$posts"/*) # no 'ls | head' here: with pipefail, SIGPIPE would fail the script
cp "${files[0]}" "${files[1]}" "${files[2]}" "$tmp/corpus/"
gpt2="$TWIN_SHARED/data/vocab/ggml-vocab-gpt-2.gguf"

"$TWIN_BIN" bench tokenize -m "$gpt2" "$tmp/corpus" >"$tmp/out"
grep -q "3 documents" "$tmp/out"
got=$(awk '/ggml-vocab-gpt-2.gguf/ { print $3 }' "$tmp/out")
want=0
for f in "$tmp/corpus"/*; do
    n=$("$TWIN_BIN" tokenize -m "$gpt2" --ids --no-special -f "$f" | wc -w)
    want=$((want + n))
done
[ "$got" = "$want" ] || { echo "bench counted $got tokens, tokenize $want"; cat "$tmp/out"; exit 1; }
grep -Eq 'tokens/s +[0-9.]+ MB/s' "$tmp/out"
if "$TWIN_BIN" bench tokenize "$tmp/missing" 2>"$tmp/err"; then echo "missing dir accepted"; exit 1; fi
grep -q "cannot open corpus directory" "$tmp/err"
