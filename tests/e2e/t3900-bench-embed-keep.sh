#!/usr/bin/env bash
# twin bench embed --keep DIR: leaves the bge-small-shaped model it measured and its sentences,
# one a line, so llama-embedding can run on the same input (bench/compare-llama.sh); the
# sentence count it reports is the line count of that file. Bad options fail with a message.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$TWIN_BIN" bench embed -t 1 --keep "$tmp" >"$tmp/out"
cat "$tmp/out"
[ -s "$tmp/sentences.txt" ] || { echo "no sentences.txt"; exit 1; }
n=$(awk '/^embed:/ { for (i = 2; i <= NF; i++) if ($i == "sentences,") print $(i - 1) }' "$tmp/out")
lines=$(wc -l <"$tmp/sentences.txt")
[ -n "$n" ] && [ "$n" -gt 50 ] || { echo "reported '$n' sentences"; exit 1; }
[ "$n" = "$lines" ] || { echo "reported $n sentences, kept $lines lines"; exit 1; }
grep -q '1 threads' "$tmp/out"
grep -Eq '[0-9.]+ tokens/s' "$tmp/out"
# every kept line is one of the corpus's lines, whole
post="$TWIN_SHARED/data/corpora/skeeto/_posts/2018-12-25-A-Survey-of-RANDOM.markdown"
missing=$({ grep -vxF -f "$post" "$tmp/sentences.txt" || true; } | wc -l)
[ "$missing" = 0 ] || { echo "$missing kept lines are not corpus lines"; exit 1; }
"$TWIN_BIN" model info "$tmp/bge-small-synth.gguf" >"$tmp/info"
grep -Eq 'general.architecture +"bert"' "$tmp/info"
grep -Eq 'bert.embedding_length +384' "$tmp/info"
grep -Eq 'bert.block_count +12' "$tmp/info"

if "$TWIN_BIN" bench embed --keep "$tmp/missing" 2>"$tmp/err"; then echo "missing dir accepted"; exit 1; fi
grep -q "is not a directory" "$tmp/err"
if "$TWIN_BIN" bench embed -t 2>"$tmp/err"; then echo "-t without value accepted"; exit 1; fi
grep -q "needs a value" "$tmp/err"
if "$TWIN_BIN" bench embed -t 9999 2>"$tmp/err"; then echo "-t 9999 accepted"; exit 1; fi
grep -q "must be in" "$tmp/err"
if "$TWIN_BIN" bench embed --bogus x 2>"$tmp/err"; then echo "unknown option accepted"; exit 1; fi
grep -q "unknown option" "$tmp/err"
