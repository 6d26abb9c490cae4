#!/usr/bin/env bash
# twin import finds out what each PATH is: a Medium export folder, a Substack export folder and
# a LinkedIn Shares.csv in one run, each stored with its platform; re-importing is a no-op.
set -euo pipefail
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
"$TWIN_BIN" init >/dev/null
mkdir li
printf 'Date,ShareLink,ShareCommentary,SharedUrl,MediaUrl,Visibility\n%s\n' \
    '2023-05-04 14:03:21,https://www.linkedin.com/feed/update/urn:li:share:1/,"Line one""
""""
""Line two",,,MEMBER_NETWORK' > li/Shares.csv
ex="$TWIN_SHARED/data/exports"

set +e
"$TWIN_BIN" import "$ex/medium_export" "$ex/substack_export" li --author "Joe Bloggs" \
    --handle example > out.txt 2> err.txt
status=$?
set -e
cat out.txt err.txt
# The Medium fixtures reuse one canonical link in five posts: the first is stored, four fail.
test "$status" -eq 1
test "$(cat out.txt)" = "imported 7, updated 0, unchanged 0, deleted 0, failed 4"
test "$(grep -c 'is also the link of' err.txt)" -eq 4
"$TWIN_BIN" docs --json > docs.jsonl
test "$(grep -c '"platform":"medium"' docs.jsonl)" -eq 3
test "$(grep -c '"platform":"substack"' docs.jsonl)" -eq 3
test "$(grep -c '"platform":"linkedin"' docs.jsonl)" -eq 1
grep '"platform":"linkedin"' docs.jsonl | grep -qF '"content":"Line one\n\nLine two"'
grep -F '"url":"https://example.substack.com/p/plain-text"' docs.jsonl | grep -qF '"title":"Plain Text"'
n=$("$TWIN_BIN" changes --json | wc -l)
set +e
"$TWIN_BIN" import "$ex/medium_export" "$ex/substack_export" li --author "Joe Bloggs" \
    --handle example > out2.txt 2>/dev/null
set -e
test "$(cat out2.txt)" = "imported 0, updated 0, unchanged 7, deleted 0, failed 4"
test "$("$TWIN_BIN" changes --json | wc -l)" -eq "$n"
