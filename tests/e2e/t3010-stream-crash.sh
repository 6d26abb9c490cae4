#!/usr/bin/env bash
# Exactly-once effect: `twin stream` killed with SIGKILL at several moments and restarted leaves
# the feature store identical to an uninterrupted run (same chunk ids, texts, offsets and
# vectors; no duplicates, nothing missing, nothing stale). Then a corrupt HNSW file is rebuilt.
set -euo pipefail
scratch=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$scratch"' EXIT
cd "$scratch"
model="$TWIN_SHARED/refs/models/tiny-bert-bge-synth.gguf"
"$TWIN_BIN" init --data src >/dev/null
"$TWIN_BIN" import "$TWIN_SHARED"/data/corpora/skeeto/_posts --author "Chris Wellons" \
    --data src >/dev/null
cp -r src ref
cp -r src crash

dump() { # the feature store's content, in a stable order
    sqlite3 "$1/features.db" "SELECT chunk_id, doc_id, chunk_index, start, \"end\",
        hex(vector), length(text) FROM chunks ORDER BY chunk_id;
        SELECT doc_id, content_hash, version, length(content) FROM cleaned ORDER BY doc_id;
        SELECT key, value FROM meta ORDER BY key;
        SELECT count(*) FROM chunks_fts_docsize;"
}

# Lexical only, small batches so that kills land between and inside many transactions.
"$TWIN_BIN" stream --no-model --batch 4 --data ref 2>/dev/null
kills=0
for delay in 0.3 0.7 1.1 0.2 1.6 0.5; do
    "$TWIN_BIN" stream --no-model --batch 4 --data crash 2>/dev/null &
    pid=$!
    sleep "$delay"
    if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$pid" 2>/dev/null || true
    pid=
done
"$TWIN_BIN" stream --no-model --batch 4 --data crash 2>/dev/null
dump ref > ref.txt
dump crash > crash.txt
cmp ref.txt crash.txt
test "$(sqlite3 crash/features.db 'SELECT count(*) - count(DISTINCT chunk_id) FROM chunks')" -eq 0
echo "lexical: $kills kills, $(sqlite3 crash/features.db 'SELECT count(*) FROM chunks') chunks identical"

# With an embedding model, on 24 posts: vectors and the HNSW graph survive kills too.
rm -rf ref2 crash2
"$TWIN_BIN" init --data small >/dev/null
mkdir posts24
all=("$TWIN_SHARED"/data/corpora/skeeto/_posts/*)
cp "${all[@]:0:24}" posts24/
"$TWIN_BIN" import posts24 --author "Chris Wellons" --data small >/dev/null
cp -r small ref2
cp -r small crash2
"$TWIN_BIN" stream --model "$model" --batch 2 --data ref2 2>/dev/null
for delay in 0.5 1.0 2.0; do
    "$TWIN_BIN" stream --model "$model" --batch 2 --data crash2 2>/dev/null &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
done
"$TWIN_BIN" stream --model "$model" --batch 2 --data crash2 2>/dev/null
dump ref2 > ref2.txt
dump crash2 > crash2.txt
cmp ref2.txt crash2.txt
n=$(sqlite3 crash2/features.db 'SELECT count(*) FROM chunks WHERE vector IS NOT NULL')
test "$n" -gt 0
# The vector search sees every chunk, and finds a chunk's own text first.
text=$(sqlite3 crash2/features.db "SELECT text FROM chunks ORDER BY seq LIMIT 1 OFFSET 7")
want=$(sqlite3 crash2/features.db "SELECT chunk_id FROM chunks ORDER BY seq LIMIT 1 OFFSET 7")
got=$("$TWIN_BIN" search "$text" --mode vector --model "$model" -k 1 --json --data crash2 |
    sed -E 's/.*"chunk_id":"([^"]*)".*/\1/')
test "$got" = "$want"

# A corrupt graph file is reported and rebuilt from features.db.
printf 'garbage' > crash2/vectors.hnsw
"$TWIN_BIN" stream --model "$model" --data crash2 2> rebuild.log
grep -q "rebuilding it from features.db" rebuild.log
got=$("$TWIN_BIN" search "$text" --mode vector --model "$model" -k 1 --json --data crash2 |
    sed -E 's/.*"chunk_id":"([^"]*)".*/\1/')
test "$got" = "$want"
"$TWIN_BIN" stream --model "$model" --rebuild --data crash2 2>/dev/null
echo "model: $n vectors identical after kills; corrupt index rebuilt"
