#!/usr/bin/env bash
# Crash safety of `twin import`: SIGKILL at several moments of a 461-post import, then a re-run.
# Each document is written in its own transaction with its event, so the store must hold every
# post once, each with exactly one insert event, and a gap-free change log.
set -euo pipefail
scratch=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$scratch"' EXIT
cd "$scratch"
mkdir posts
cp "$TWIN_SHARED"/data/corpora/skeeto/_posts/* posts/
"$TWIN_BIN" init >/dev/null
db=twin-data/docs.db
kills=0
for delay in 0.2 0.4 0.1 0.6 0.3 0.8; do
    "$TWIN_BIN" import posts --author "Chris Wellons" >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$pid" 2>/dev/null || true
    pid=
    # After every kill the invariants already hold for whatever was committed.
    test "$(sqlite3 "$db" "SELECT count(*) FROM documents d WHERE (SELECT count(*) FROM changes c
        WHERE c.doc_id = d.id AND c.op = 'insert') != 1")" -eq 0
    test "$(sqlite3 "$db" "SELECT count(*) FROM changes c WHERE NOT EXISTS
        (SELECT 1 FROM documents d WHERE d.id = c.doc_id)")" -eq 0
done
partial=$(sqlite3 "$db" 'SELECT count(*) FROM documents')
"$TWIN_BIN" import posts --author "Chris Wellons" > final.log
test "$(sqlite3 "$db" 'SELECT count(*) FROM documents')" -eq 461
test "$(sqlite3 "$db" 'SELECT count(DISTINCT url) FROM documents')" -eq 461
test "$(sqlite3 "$db" "SELECT count(*) FROM changes WHERE op = 'insert'")" -eq 461
test "$(sqlite3 "$db" 'SELECT count(*) FROM changes')" -eq 461
test "$(sqlite3 "$db" 'SELECT min(seq) = 1 AND max(seq) = count(*) FROM changes')" -eq 1
test "$(sqlite3 "$db" 'SELECT count(*) FROM documents WHERE version != 1')" -eq 0
grep -q "imported $((461 - partial)), updated 0, unchanged $partial" final.log
echo "$kills kills, $partial posts committed before the final run"
