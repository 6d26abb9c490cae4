#!/usr/bin/env bash
# twin import of a local git repository goes to the git source: one code document per text
# file (binary files left out), and a second import with no new commit changes nothing.
set -euo pipefail
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
git init -q repo
git -C repo config user.email ada@example.com
git -C repo config user.name "Ada Lovelace"
cp "$TWIN_SHARED/data/corpora/skeeto/_posts/2007-09-01-intro.markdown" repo/intro.md
printf 'int main(void)\n{\n    return 0;\n}\n' > repo/main.c
printf '\x89PNG\r\n\x1a\n\0\0\0binary' > repo/logo.png
git -C repo add . && git -C repo commit -qm "first"
"$TWIN_BIN" init >/dev/null
test "$("$TWIN_BIN" import repo --author "Ada Lovelace")" = \
    "imported 2, updated 0, unchanged 0, deleted 0, failed 0"
"$TWIN_BIN" docs --json > docs.jsonl
test "$(grep -c '"kind":"code"' docs.jsonl)" -eq 2
grep -F '"title":"repo/main.c"' docs.jsonl | grep -qF 'int main(void)'
test "$("$TWIN_BIN" import repo --author "Ada Lovelace")" = \
    "imported 0, updated 0, unchanged 2, deleted 0, failed 0"
test "$("$TWIN_BIN" changes --json | wc -l)" -eq 2
