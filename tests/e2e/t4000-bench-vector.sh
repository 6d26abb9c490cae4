#!/usr/bin/env bash
# twin bench vector on a small collection without the peer: it builds, sweeps the given ef
# values, reports recall@10 that rises with ef and reaches 0.95, and rejects bad options.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$TWIN_BIN" bench vector --n 2000 --queries 40 --ef 4,64,256 --no-peer >"$tmp/out" 2>"$tmp/err"
cat "$tmp/out"
grep -q '^twin    build ' "$tmp/out"
r4=$(awk '$1 == "twin" && $2 == "ef" && $3 == 4 {print $5}' "$tmp/out")
r256=$(awk '$1 == "twin" && $2 == "ef" && $3 == 256 {print $5}' "$tmp/out")
[ -n "$r4" ] && [ -n "$r256" ]
awk -v a="$r4" -v b="$r256" 'BEGIN { exit !(b >= 0.95 && b > a) }'
grep -q 'recall@10 >= 0.95: twin [0-9]* QPS \[[0-9]*\] (ef ' "$tmp/out"

if "$TWIN_BIN" bench vector --ef 0,x --no-peer >"$tmp/out" 2>"$tmp/err"; then
    echo "bad --ef accepted"; exit 1
fi
grep -q "bad --ef list '0,x'" "$tmp/err"
