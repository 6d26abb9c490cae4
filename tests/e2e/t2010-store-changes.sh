#!/usr/bin/env bash
# The change log through the CLI: documents written into docs.db with SQL (the triggers the
# store's own writes use), listed by twin docs, printed by twin changes (readable, JSON, --from,
# --limit, --consumer, --follow), deleted by twin rm. Content is real: skeeto blog posts.
set -euo pipefail
scratch=$(mktemp -d)
follow_pid=
trap '[ -n "$follow_pid" ] && kill "$follow_pid" 2>/dev/null; rm -rf "$scratch"' EXIT
cd "$scratch"
posts="$TWIN_SHARED/data/corpora/skeeto/_posts"
"$TWIN_BIN" init >/dev/null
db=twin-data/docs.db

all_posts=("$posts"/*)
i=0
for path in "${all_posts[@]:0:6}"; do
    f=$(basename "$path")
    i=$((i + 1))
    hash=$(sha256sum "$posts/$f" | cut -d' ' -f1)
    kind=article; [ $((i % 2)) -eq 0 ] && kind=post
    sqlite3 "$db" "INSERT INTO documents(id, kind, platform, url, title, content, published_at,
        fetched_at, content_hash) VALUES ('00000000-0000-4000-8000-00000000000$i', '$kind', 'web',
        'https://nullprogram.com/$f', '$f', CAST(readfile('$posts/$f') AS TEXT), unixepoch('${f:0:10}'),
        unixepoch('now'), '$hash')"
done

# docs: table and JSON lines
test "$("$TWIN_BIN" docs | tail -1)" = "6 documents"
test "$("$TWIN_BIN" docs --kind post --json | wc -l)" -eq 3
"$TWIN_BIN" docs --json > docs.jsonl
sed -n 1p docs.jsonl | grep -q '"published_at":"2007-09-01T00:00:00Z"'

# changes: six inserts, seq 1..6, in order
"$TWIN_BIN" changes --json > all.jsonl
test "$(wc -l < all.jsonl)" -eq 6
for n in 1 2 3 4 5 6; do
    sed -n "${n}p" all.jsonl | grep -q "^{\"seq\":$n,\"op\":\"insert\","
done
# the event's document is what docs --json prints for it
first_doc=$(grep '00000000-0000-4000-8000-000000000001' docs.jsonl)
grep -qF "\"document\":$first_doc}" all.jsonl
"$TWIN_BIN" changes > all.txt
sed -n 1p all.txt | grep -qE '^ +1  insert  article  00000000-0000-4000-8000-000000000001  [0-9T:Z-]+  v1  https://nullprogram.com/'

# an edit of the content is an update event with version 2; a title-only change is silent
sqlite3 "$db" "UPDATE documents SET title = 'renamed' WHERE id = '00000000-0000-4000-8000-000000000002'"
test "$("$TWIN_BIN" changes --json | wc -l)" -eq 6
sqlite3 "$db" "UPDATE documents SET content = content || 'edit', content_hash = 'new',
    version = version + 1 WHERE id = '00000000-0000-4000-8000-000000000002'"
"$TWIN_BIN" changes --from 7 --json > upd.jsonl
grep -q '^{"seq":7,"op":"update",.*"title":"renamed".*"version":2}}$' upd.jsonl

# rm by url and by id: delete events without a document
first=$(basename "${all_posts[0]}")
"$TWIN_BIN" rm "https://nullprogram.com/$first" > rm.txt
grep -q '^deleted 00000000-0000-4000-8000-000000000001$' rm.txt
"$TWIN_BIN" rm 00000000-0000-4000-8000-000000000003 >/dev/null
if "$TWIN_BIN" rm 00000000-0000-4000-8000-000000000003 2>err.txt; then exit 1; fi
grep -q "no document with id '00000000-0000-4000-8000-000000000003'" err.txt
"$TWIN_BIN" changes --from 8 --json > tail.jsonl
test "$(wc -l < tail.jsonl)" -eq 2
grep -q '^{"seq":9,"op":"delete","kind":"article","id":"00000000-0000-4000-8000-000000000003","at":"[0-9T:Z-]*"}$' tail.jsonl
test "$("$TWIN_BIN" docs | tail -1)" = "4 documents"
test "$("$TWIN_BIN" changes --limit 3 | wc -l)" -eq 3

# a consumer resumes where it committed
test "$("$TWIN_BIN" changes --consumer e2e --limit 4 --json | wc -l)" -eq 4
test "$(sqlite3 "$db" "SELECT seq FROM consumer_offsets WHERE consumer = 'e2e'")" -eq 4
"$TWIN_BIN" changes --consumer e2e --json > resumed.jsonl
sed -n 1p resumed.jsonl | grep -q '^{"seq":5,'
test -z "$("$TWIN_BIN" changes --consumer e2e --json)"

# follow: a new event shows up without restarting
"$TWIN_BIN" changes --follow --json --from 10 > follow.jsonl &
follow_pid=$!
sqlite3 "$db" "DELETE FROM documents WHERE id = '00000000-0000-4000-8000-000000000004'"
for _ in $(seq 1 300); do
    grep -q '"seq":10,"op":"delete"' follow.jsonl 2>/dev/null && break
    sleep 0.1
done
grep -q '^{"seq":10,"op":"delete","kind":"post","id":"00000000-0000-4000-8000-000000000004"' follow.jsonl
kill "$follow_pid"
wait "$follow_pid" 2>/dev/null || true
follow_pid=
# the log is gap-free and matches the counter
test "$(sqlite3 "$db" 'SELECT count(*) = max(seq) AND max(seq) = (SELECT last_seq FROM change_seq) FROM changes')" = 1
echo ok
