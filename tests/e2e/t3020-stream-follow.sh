#!/usr/bin/env bash
# `twin stream --follow` keeps running, picks up documents imported after it started, and stops
# cleanly on SIGTERM with its summary.
set -euo pipefail
scratch=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$scratch"' EXIT
cd "$scratch"
mkdir a b
all=("$TWIN_SHARED"/data/corpora/skeeto/_posts/*)
cp "${all[@]:0:5}" a/
"$TWIN_BIN" init >/dev/null
"$TWIN_BIN" import a --author "Chris Wellons" >/dev/null
"$TWIN_BIN" stream --follow --no-model 2> follow.log &
pid=$!
printf -- '---\ntitle: Follow mode\n---\nA post about the qwzxvk pipeline, written later.\n' \
    > b/2026-11-28-follow.md
"$TWIN_BIN" import b --author "Chris Wellons" >/dev/null
# Generous bound (the follower polls the log every few ms); not a timing test.
found=
for _ in $(seq 1 300); do
    if "$TWIN_BIN" search qwzxvk --json 2>/dev/null | grep -q '"title":"Follow mode"'; then
        found=1
        break
    fi
    sleep 0.1
done
test -n "$found"
kill -TERM "$pid"
wait "$pid"
pid=
grep -q "6 events (6 upserts, 0 deletes, 0 skipped)" follow.log
test "$(sqlite3 twin-data/features.db 'SELECT count(*) FROM cleaned')" -eq 6
