#!/usr/bin/env bash
# twin crawl https://github.com/<user>: the REST API (a server on 127.0.0.1 via TWIN_GITHUB_API,
# two pages joined by a Link header) lists repositories; public non-forks are cloned (file://)
# and become one code document per text file. Checks exactly which files became documents,
# their blob URLs, and that a re-crawl changes nothing.
set -euo pipefail
scratch=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT
serve="$(dirname "$TWIN_BIN")/tests/httpd-serve"

repo="$scratch/engine"
mkdir -p "$repo/src" "$repo/node_modules/left-pad" "$repo/img" "$repo/vendor"
printf '# Engine\n\nNotes on the analytical engine.\n' > "$repo/README.md"
printf 'int main(void) { return 0; }\n' > "$repo/src/main.c"
printf 'module.exports = 1;\n' > "$repo/node_modules/left-pad/index.js"
printf 'int v;\n' > "$repo/vendor/v.c"
printf '{"lockfileVersion": 3}\n' > "$repo/package-lock.json"
printf '\x89PNG\r\n\x1a\n\0\0\0\rIHDR' > "$repo/img/logo.png"
head -c 1048577 /dev/zero | tr '\0' 'x' > "$repo/big.txt"
git -C "$repo" init -q
git -C "$repo" add -A
git -C "$repo" -c user.name=Ada -c user.email=ada@example.com commit -q -m "first"
sha=$(git -C "$repo" rev-parse HEAD)

tab=$'\t'
cat > "$scratch/page1.json" <<JSON
[{"name":"engine","full_name":"ada/engine","private":false,"fork":false,
  "html_url":"https://github.com/ada/engine","clone_url":"file://$repo"},
 {"name":"forked","full_name":"ada/forked","private":false,"fork":true,
  "html_url":"https://github.com/ada/forked","clone_url":"file://$repo"}]
JSON
cat > "$scratch/page2.json" <<JSON
[{"name":"gone","full_name":"ada/gone","private":false,"fork":false,
  "html_url":"https://github.com/ada/gone","clone_url":"file://$scratch/no-such-repo"}]
JSON
{
    echo "/users/ada/repos?per_page=100&type=owner${tab}200${tab}application/json${tab}$scratch/page1.json${tab}0${tab}0${tab}0${tab}-${tab}Link: <@BASE@/users/ada/repos?per_page=100&type=owner&page=2>; rel=\"next\", <@BASE@/users/ada/repos?per_page=100&type=owner&page=2>; rel=\"last\""
    echo "/users/ada/repos?per_page=100&type=owner&page=2${tab}200${tab}application/json${tab}$scratch/page2.json"
} > "$scratch/routes"
"$serve" "$scratch/routes" "$scratch/port" &
server_pid=$!
for _ in $(seq 100); do [ -s "$scratch/port" ] && break; sleep 0.1; done
export TWIN_GITHUB_API="http://127.0.0.1:$(cat "$scratch/port")"
export TWIN_GITHUB_TOKEN=test-token

set +e
"$TWIN_BIN" crawl --data "$scratch/data" --author "Ada Lovelace" --rate 50 \
    https://github.com/ada > "$scratch/out" 2> "$scratch/err"
rc=$?
set -e
cat "$scratch/out" "$scratch/err"
[ "$rc" -eq 1 ] # ada/gone cannot be cloned
grep -qx "imported 2, updated 0, unchanged 0, failed 1" "$scratch/out"
grep -q "^twin: crawl: https://github.com/ada/gone: cannot clone" "$scratch/err"

"$TWIN_BIN" docs --data "$scratch/data" --json > "$scratch/docs"
[ "$(wc -l < "$scratch/docs")" -eq 2 ]
grep -q "\"url\":\"https://github.com/ada/engine/blob/$sha/README.md\"" "$scratch/docs"
grep -q "\"url\":\"https://github.com/ada/engine/blob/$sha/src/main.c\"" "$scratch/docs"
grep -q '"title":"engine/src/main.c"' "$scratch/docs"
grep -c '"kind":"code"' "$scratch/docs" | grep -qx 2
grep -c '"platform":"github"' "$scratch/docs" | grep -qx 2
! grep -q 'node_modules\|vendor\|package-lock\|logo.png\|big.txt\|forked' "$scratch/docs"

# again: the same commit, nothing changes
set +e
"$TWIN_BIN" crawl --data "$scratch/data" --author "Ada Lovelace" --rate 50 \
    https://github.com/ada > "$scratch/out2" 2>/dev/null
set -e
grep -qx "imported 0, updated 0, unchanged 2, failed 1" "$scratch/out2"

# a new commit: README changed, src/main.c deleted, NOTES.md added. The URLs name the commit, so
# both files are new documents, and the documents of the earlier commit are removed.
printf '# Engine\n\nNotes on the analytical engine, revised.\n' > "$repo/README.md"
git -C "$repo" rm -q src/main.c
printf 'More notes.\n' > "$repo/NOTES.md"
git -C "$repo" add -A
git -C "$repo" -c user.name=Ada -c user.email=ada@example.com commit -q -m "second"
sha2=$(git -C "$repo" rev-parse HEAD)
set +e
"$TWIN_BIN" crawl --data "$scratch/data" --author "Ada Lovelace" --rate 50 \
    https://github.com/ada > "$scratch/out3" 2> "$scratch/err3"
set -e
cat "$scratch/out3" "$scratch/err3"
grep -qx "imported 2, updated 0, unchanged 0, failed 1" "$scratch/out3"
grep -q "removed 2 documents of earlier commits or deleted files" "$scratch/err3"
"$TWIN_BIN" docs --data "$scratch/data" --json > "$scratch/docs3"
[ "$(wc -l < "$scratch/docs3")" -eq 2 ]
grep -q "\"url\":\"https://github.com/ada/engine/blob/$sha2/README.md\"" "$scratch/docs3"
grep -q "\"url\":\"https://github.com/ada/engine/blob/$sha2/NOTES.md\"" "$scratch/docs3"
! grep -q "$sha/" "$scratch/docs3"
# the change log carries the two deletes (the feature store drops their chunks)
"$TWIN_BIN" changes --data "$scratch/data" --json > "$scratch/changes"
[ "$(grep -c '"op":"delete"' "$scratch/changes")" -eq 2 ]
echo "ok"
