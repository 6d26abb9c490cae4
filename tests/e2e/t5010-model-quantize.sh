#!/usr/bin/env bash
# twin model quantize: converts the synth-tiny F32 model to llama.cpp's types; the files have
# the reference files' sizes (same tensors, types and metadata), bad input gives clear errors.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src="$TWIN_SHARED/refs/models/synth-tiny-f32.gguf"

for q in q4_k_m q8_0 q4_0; do
    out=$("$TWIN_BIN" model quantize --threads 2 "$src" "$tmp/$q.gguf" "$q")
    echo "$out" | grep -q "21 tensors, 16 converted to $q" || { echo "bad summary: $out"; exit 1; }
    want=$(stat -c %s "$TWIN_SHARED/refs/models/synth-tiny-$q.gguf")
    got=$(stat -c %s "$tmp/$q.gguf")
    [ "$got" = "$want" ] || { echo "$q: $got bytes, llama-quantize wrote $want"; exit 1; }
done

# Requantizing a quantized model decodes it first.
"$TWIN_BIN" model quantize "$tmp/q8_0.gguf" "$tmp/re.gguf" q4_k >/dev/null
[ -s "$tmp/re.gguf" ]

if "$TWIN_BIN" model quantize "$src" "$tmp/x.gguf" q3_k 2>"$tmp/err"; then
    echo "unknown type accepted"; exit 1
fi
grep -q "unknown quantization type 'q3_k'" "$tmp/err"
if "$TWIN_BIN" model quantize "$tmp/missing.gguf" "$tmp/x.gguf" q4_0 2>"$tmp/err"; then
    echo "missing input accepted"; exit 1
fi
grep -q "missing.gguf" "$tmp/err"
head -c 1000 "$src" >"$tmp/trunc.gguf"
if "$TWIN_BIN" model quantize "$tmp/trunc.gguf" "$tmp/x.gguf" q4_0 2>"$tmp/err"; then
    echo "truncated input accepted"; exit 1
fi
grep -q "trunc.gguf" "$tmp/err"
[ ! -e "$tmp/x.gguf" ]
"$TWIN_BIN" model quantize --help | grep -q q4_k_m
