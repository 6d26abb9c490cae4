#!/usr/bin/env bash
# The feature pipeline on the skeeto corpus (461 posts), lexical only: every document gets
# chunks, every chunk's text is the byte slice of its cleaned document, distinctive phrases
# find their post first, an edit replaces the document's chunks, a delete removes them, and a
# second run has nothing to do.
set -euo pipefail
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
mkdir posts
cp "$TWIN_SHARED"/data/corpora/skeeto/_posts/* posts/
"$TWIN_BIN" init >/dev/null
"$TWIN_BIN" import posts --author "Chris Wellons" >/dev/null
"$TWIN_BIN" stream --no-model 2> stream.log
grep -q "lexical only" stream.log
grep -q "461 events (461 upserts, 0 deletes, 0 skipped)" stream.log
f=twin-data/features.db
sql() { sqlite3 "$f" "$1"; }
test "$(sql 'SELECT count(*) FROM cleaned')" -eq 461
test "$(sql 'SELECT count(*) FROM cleaned_article')" -eq 461
test "$(sql 'SELECT count(*) FROM cleaned WHERE doc_id NOT IN (SELECT doc_id FROM chunks)')" -eq 0
n_chunks=$(sql 'SELECT count(*) FROM chunks')
test "$n_chunks" -gt 5000
# Chunk text is the original slice of the cleaned document (byte offsets), never re-decoded.
test "$(sql 'SELECT count(*) FROM chunks c JOIN cleaned d USING (doc_id)
             WHERE substr(CAST(d.content AS BLOB), c.start + 1, c."end" - c.start)
                   != CAST(c.text AS BLOB)')" -eq 0
# Chunk ids are unique, indexes dense per document, and the lexical index has every chunk.
test "$(sql 'SELECT count(DISTINCT chunk_id) FROM chunks')" -eq "$n_chunks"
test "$(sql 'SELECT count(*) FROM (SELECT doc_id FROM chunks GROUP BY doc_id
             HAVING max(chunk_index) + 1 != count(*))')" -eq 0
test "$(sql 'SELECT count(*) FROM chunks_fts_docsize')" -eq "$n_chunks"

# (sed, not head: an early exit would break twin's pipe under pipefail)
first_title() { "$TWIN_BIN" search "$1" -k 3 --json | sed -nE '1s/.*"title":"([^"]*)".*/\1/p'; }
test "$(first_title "QBasic random number generator")" = "Improving on QBasic's Random Number Generator"
test "$(first_title "w64devkit peports symbol inspection")" = \
    "Symbol inspection tools for w64devkit: vc++filt and peports"
test "$(first_title "Elfeed feed reader web interface")" = "Introducing Elfeed, an Emacs Web Feed Reader"
test "$(first_title "OpenBSD pledge unveil")" = "OpenBSD's pledge and unveil from Python"
# Filters: kind and date.
test "$("$TWIN_BIN" search "random" --kind post --json | wc -l)" -eq 0
test "$("$TWIN_BIN" search "random" --since 2020-01-01 -k 50 --json | wc -l)" -gt 0
"$TWIN_BIN" search "OpenBSD pledge" --since 2030-01-01 --json > none.json
test ! -s none.json

# An edit replaces the document's chunks (one update event).
post=posts/2021-09-15-OpenBSD-s-pledge-and-unveil-from-Python.markdown
test -f "$post"
doc=$(sql "SELECT doc_id FROM cleaned WHERE url LIKE '%OpenBSD-s-pledge%'")
old=$(sql "SELECT group_concat(chunk_id) FROM chunks WHERE doc_id = '$doc'")
printf '\nA closing paragraph about the zyxqwv sandbox.\n' >> "$post"
"$TWIN_BIN" import posts --author "Chris Wellons" >/dev/null
"$TWIN_BIN" stream 2> stream.log
grep -q "1 events (1 upserts, 0 deletes, 0 skipped)" stream.log
test "$(sql "SELECT version FROM cleaned WHERE doc_id = '$doc'")" -eq 2
test "$(sql "SELECT count(*) FROM chunks WHERE doc_id = '$doc' AND text LIKE '%zyxqwv%'")" -eq 1
test "$(first_title "zyxqwv")" = "OpenBSD's pledge and unveil from Python"
# Unchanged chunks keep their ids (same index, same text); the edited tail gets a new one.
new=$(sql "SELECT group_concat(chunk_id) FROM chunks WHERE doc_id = '$doc'")
test "$old" != "$new"
test "$(sql 'SELECT count(*) FROM chunks')" -ge "$n_chunks"

# A delete removes the document and its chunks from both indexes.
"$TWIN_BIN" rm "$doc" >/dev/null
"$TWIN_BIN" stream 2> stream.log
grep -q "1 events (0 upserts, 1 deletes, 0 skipped)" stream.log
test "$(sql "SELECT count(*) FROM chunks WHERE doc_id = '$doc'")" -eq 0
test "$(sql "SELECT count(*) FROM cleaned WHERE doc_id = '$doc'")" -eq 0
test "$(sql 'SELECT count(*) FROM chunks_fts_docsize')" -eq "$(sql 'SELECT count(*) FROM chunks')"
"$TWIN_BIN" search "zyxqwv" --json > none.json
test ! -s none.json

# Nothing left to do.
"$TWIN_BIN" stream 2> stream.log
grep -q "^stream: 0 events" stream.log
