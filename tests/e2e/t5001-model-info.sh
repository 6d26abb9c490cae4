#!/usr/bin/env bash
# twin model info: metadata, tensor table and parameter count of stories260K.gguf; the count
# equals the sum of the tensor shapes it lists; broken files give an error naming the file.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
m="$TWIN_SHARED/data/models/stories260K.gguf"

"$TWIN_BIN" model info "$m" >"$tmp/out"
grep -q '^version: *3$' "$tmp/out"
grep -q 'general.architecture  *"llama"' "$tmp/out"
grep -q 'tokenizer.ggml.tokens  *\[string x 512\] \["<unk>", "<s>", "</s>", "<0x00>"' "$tmp/out"
grep -q '^tensors: *48$' "$tmp/out"
grep -Eq '^  token_embd.weight +f32 +64 x 512 +0 +131072$' "$tmp/out"
# parameters = sum over the tensor rows of the product of their dims
sum=$(awk '/^  [a-z_.0-9]+ +f32 / { split($0, a, /  +/); n = split(a[4], d, / x /); p = 1;
      for (i = 1; i <= n; i++) p *= d[i]; s += p } END { print s }' "$tmp/out")
params=$(sed -n 's/^parameters: *\([0-9]*\) .*/\1/p' "$tmp/out")
[ "$sum" = "$params" ] || { echo "parameters $params, tensor rows sum to $sum"; exit 1; }
bytes=$(stat -c %s "$m")
data=$(sed -n 's/^data offset: *//p' "$tmp/out")
tbytes=$(sed -n 's/^tensor data: *\([0-9]*\) .*/\1/p' "$tmp/out")
[ "$tbytes" -le $((bytes - data)) ] || { echo "tensor bytes $tbytes exceed the file"; exit 1; }
grep -Eq '^  f32 +48 tensors +'"$tbytes"' bytes$' "$tmp/out"

# truncated: the error names the file and the tensor that does not fit
head -c $((bytes - 1000)) "$m" >"$tmp/trunc.gguf"
if "$TWIN_BIN" model info "$tmp/trunc.gguf" >/dev/null 2>"$tmp/err"; then
    echo "truncated file accepted"; exit 1
fi
grep -q "trunc.gguf': tensor '[a-z_.0-9]*' ends at byte [0-9]*, file has $((bytes - 1000))$" \
    "$tmp/err" || { cat "$tmp/err"; exit 1; }
printf 'not a gguf file at all' >"$tmp/x.gguf"
if "$TWIN_BIN" model info "$tmp/x.gguf" 2>"$tmp/err"; then echo "text accepted"; exit 1; fi
grep -q "x.gguf': not a GGUF file" "$tmp/err"
if "$TWIN_BIN" model info "$tmp/missing.gguf" 2>"$tmp/err"; then echo "missing accepted"; exit 1; fi
grep -q "missing.gguf" "$tmp/err"
"$TWIN_BIN" model info --help | grep -q "usage: twin model info"
