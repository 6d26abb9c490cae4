#!/usr/bin/env bash
# twin model merge: folds the llama.cpp test adapter into stories260K; the result has the same
# tensor table (names, types, shapes) and metadata as llama-export-lora's merged file (the
# values are compared in tests/unit/test_lora.c); --type re-quantizes; bad adapters and
# mismatched bases give clear errors and write nothing.
set -euo pipefail
# (no grep -q after a pipe: it would end the reader early and pipefail would see SIGPIPE)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
base="$TWIN_SHARED/data/models/stories260K.gguf"
lora="$TWIN_SHARED/refs/lora/stories260K-test-lora.gguf"
ref="$TWIN_SHARED/refs/lora/stories260K-test-lora-merged.gguf"

out=$("$TWIN_BIN" model merge --threads 2 "$base" "$lora" "$tmp/m.gguf")
echo "$out" | grep "48 tensors, 15 merged from 1 adapter" >/dev/null || { echo "bad summary: $out"; exit 1; }
# tensor table: same names, types, shapes (offsets may differ: tensor order is the base's)
"$TWIN_BIN" model info "$tmp/m.gguf" | awk '/^  (blk\.|token_embd\.|output)/ {s = $1; for (i = 2; i <= NF - 2; i++) s = s " " $i; print s}' |
    sort >"$tmp/ours"
"$TWIN_BIN" model info "$ref" | awk '/^  (blk\.|token_embd\.|output)/ {s = $1; for (i = 2; i <= NF - 2; i++) s = s " " $i; print s}' |
    sort >"$tmp/theirs"
[ "$(wc -l <"$tmp/ours")" = 48 ] || { echo "expected 48 tensors"; exit 1; }
diff "$tmp/ours" "$tmp/theirs"
# metadata: the same keys and values, except general.file_type (ours says ALL_F32, which is
# what was written; llama-export-lora always writes MOSTLY_F16)
"$TWIN_BIN" model info --no-tensors "$tmp/m.gguf" | grep -E '^  [a-z]' | grep -v general.file_type |
    sort >"$tmp/kv-ours"
"$TWIN_BIN" model info --no-tensors "$ref" | grep -E '^  [a-z]' | grep -v general.file_type |
    sort >"$tmp/kv-theirs"
diff "$tmp/kv-ours" "$tmp/kv-theirs"
"$TWIN_BIN" model info --no-tensors "$tmp/m.gguf" | grep -E 'general.file_type +0$' >/dev/null

# a scale and re-quantization
out=$("$TWIN_BIN" model merge --type q8_0 "$base" "$lora:0.5" "$tmp/q.gguf")
echo "$out" | grep "written as q8_0" >/dev/null || { echo "bad summary: $out"; exit 1; }
"$TWIN_BIN" model info "$tmp/q.gguf" | grep "blk.0.attn_q.weight  *q8_0" >/dev/null
"$TWIN_BIN" model info --no-tensors "$tmp/q.gguf" | grep -E 'general.file_type +7$' >/dev/null

# bad input
fail() { # expected-message args...
    local want=$1
    shift
    if "$TWIN_BIN" model merge "$@" 2>"$tmp/err"; then
        echo "accepted: $*"; exit 1
    fi
    grep -qF -e "$want" "$tmp/err" || { echo "message lacks '$want':"; cat "$tmp/err"; exit 1; }
}
fail "not an adapter: general.type is ''" "$base" "$base" "$tmp/x.gguf"
fail "does not fit base [8, 8]" "$TWIN_SHARED/data/models/llama-2-tiny-random.gguf" "$lora" \
    "$tmp/x.gguf"
fail "unknown output type 'q3'" --type q3 "$base" "$lora" "$tmp/x.gguf"
fail "missing.gguf" "$base" "$tmp/missing.gguf" "$tmp/x.gguf"
head -c 3000 "$lora" >"$tmp/trunc.gguf"
fail "trunc.gguf" "$base" "$tmp/trunc.gguf" "$tmp/x.gguf"
fail "--scale 'abc' is not a number" --scale abc "$base" "$lora" "$tmp/x.gguf"
[ ! -e "$tmp/x.gguf" ]
"$TWIN_BIN" model merge --help | grep "ADAPTER\[:SCALE\]" >/dev/null
