#!/usr/bin/env bash
# twin train: a LoRA adapter trained on one chat example makes `twin generate --chat --lora`
# answer with it (the base does not); metrics.jsonl and run.json record the run; a run stopped
# at step 3 and resumed writes the same adapter as an uninterrupted one; a model trained from
# scratch with the stories260K vocabulary generates through `twin generate`; bad input fails
# with the file and line, an empty dataset and a too-small context with clear errors.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
M="$TWIN_SHARED/data/models/stories260K.gguf"
POST="$TWIN_SHARED/data/corpora/skeeto/_posts/2007-09-02-octave-mandel.markdown"

cat >"$tmp/qa.jsonl" <<'JSONL'
{"messages":[{"role":"user","content":"What does Chris write about?"},{"role":"assistant","content":"Emacs, C and fractals."}]}
JSONL
"$TWIN_BIN" train --base "$M" --dataset "$tmp/qa.jsonl" --out "$tmp/lora" --eval-split 0 \
    --ctx 96 --steps 100 --lr 1e-2 --warmup 2 --lora-rank 32 --quiet >"$tmp/summary"
for f in adapter.gguf metrics.jsonl run.json checkpoint.gguf; do
    [ -s "$tmp/lora/$f" ] || { echo "missing $f"; exit 1; }
done
[ "$(grep -c '"loss"' "$tmp/lora/metrics.jsonl")" = 100 ] || { echo "metrics lines"; exit 1; }
first=$(grep -m1 '"loss"' "$tmp/lora/metrics.jsonl" | jq '.loss')
last=$(tail -1 "$tmp/lora/metrics.jsonl" | jq '.loss')
jq -e '.mode == "lora" and .step == 100 and (.dataset_sha256 | length) == 64' \
    "$tmp/lora/run.json" >/dev/null || { echo "run.json"; cat "$tmp/lora/run.json"; exit 1; }
awk -v f="$first" -v l="$last" 'BEGIN { exit !(f > 8 && l < 1.5) }' ||
    { echo "loss $first -> $last"; exit 1; }
gen() { "$TWIN_BIN" generate -m "$M" --chat -p "What does Chris write about?" -n 24 --temp 0 \
    -t 1 "$@" 2>/dev/null; }
# capture, then grep: a grep -q that stops reading early would SIGPIPE generate (pipefail)
tuned=$(gen --lora "$tmp/lora/adapter.gguf")
grep -q "Emacs, C and fractals" <<<"$tuned" ||
    { echo "adapter did not learn the answer: $tuned"; exit 1; }
base=$(gen)
if grep -q "fractals" <<<"$base"; then echo "base already knows it"; exit 1; fi

# resume equals uninterrupted
common=(--base "$M" --dataset "$POST" --ctx 32 --steps 6 --batch 2 --accum 2 --lora-rank 4
    --lora-dropout 0.1 --lr 1e-3 --warmup 1 --eval-split 0.1 --quiet)
"$TWIN_BIN" train "${common[@]}" --out "$tmp/a" >/dev/null
"$TWIN_BIN" train "${common[@]}" --out "$tmp/b" --stop-at 3 >/dev/null
[ ! -e "$tmp/b/adapter.gguf" ] || { echo "stopped run wrote an adapter"; exit 1; }
"$TWIN_BIN" train "${common[@]}" --resume "$tmp/b" >/dev/null
cmp "$tmp/a/adapter.gguf" "$tmp/b/adapter.gguf" || { echo "resume differs"; exit 1; }

# from scratch, then generate
"$TWIN_BIN" train --init random --vocab-from "$M" --dim 32 --layers 2 --heads 4 --kv-heads 2 \
    --ff 64 --dataset "$POST" --out "$tmp/scratch" --ctx 32 --batch 4 --steps 20 --lr 1e-2 \
    --warmup 2 --quiet >/dev/null
"$TWIN_BIN" generate -m "$tmp/scratch/model.gguf" -p "The" -n 8 --seed 1 -t 1 \
    >"$tmp/gen" 2>/dev/null
[ -s "$tmp/gen" ] || { echo "scratch model generated nothing"; exit 1; }

# bad input
printf '{"instruction":"a","output":"b"}\n{"instruction":\n' >"$tmp/bad.jsonl"
if "$TWIN_BIN" train --base "$M" --dataset "$tmp/bad.jsonl" --out "$tmp/x" --eval-split 0 \
    --quiet 2>"$tmp/err"; then echo "bad line accepted"; exit 1; fi
grep -q "bad.jsonl:2:" "$tmp/err" || { cat "$tmp/err"; exit 1; }
"$TWIN_BIN" train --base "$M" --dataset "$tmp/bad.jsonl" --out "$tmp/x" --eval-split 0 \
    --skip-bad --steps 1 --quiet >/dev/null 2>&1 || { echo "--skip-bad failed"; exit 1; }
: >"$tmp/empty.jsonl"
if "$TWIN_BIN" train --base "$M" --dataset "$tmp/empty.jsonl" --out "$tmp/x" 2>"$tmp/err"; then
    echo "empty dataset accepted"; exit 1
fi
grep -q "no examples" "$tmp/err" || { cat "$tmp/err"; exit 1; }
if "$TWIN_BIN" train --base "$M" --dataset "$tmp/qa.jsonl" --out "$tmp/x" --ctx 8 \
    --eval-split 0 2>"$tmp/err"; then echo "tiny context accepted"; exit 1; fi
grep -q "too small" "$tmp/err" || { cat "$tmp/err"; exit 1; }
echo "ok"
