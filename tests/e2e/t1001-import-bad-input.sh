#!/usr/bin/env bash
# Bad input to twin import: an empty file, invalid UTF-8, HTML with no article text, a file past
# the size limit, a corrupt zip and a malformed CSV row each give one clear error line naming the
# item, the good items around them are still imported, and the exit status is 1.
set -euo pipefail
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
"$TWIN_BIN" init >/dev/null
mkdir files li
cp "$TWIN_SHARED/data/corpora/skeeto/_posts/2007-09-01-intro.markdown" files/good.md
: > files/empty.md
printf 'caf\xe9 au lait\n' > files/latin1.txt
printf '<html><head><script>var x;</script></head><body><nav>menu</nav></body></html>' \
    > files/nohtml.html
truncate -s 40M files/huge.txt
printf 'PK\003\004this is not really a zip archive at all' > corrupt.zip
printf 'Date,ShareLink,ShareCommentary,SharedUrl,MediaUrl,Visibility\n%s\n%s\n' \
    '2023-05-04 14:03:21,https://www.linkedin.com/feed/update/urn:li:share:1/,"Good ""post""",,,' \
    '2023-05-05 10:00:00,https://www.linkedin.com/feed/update/urn:li:share:2/,bad "quote",,,' \
    > li/Shares.csv

set +e
"$TWIN_BIN" import files corrupt.zip li/Shares.csv missing-path --author "Ada Lovelace" \
    > out.txt 2> err.txt
status=$?
set -e
cat out.txt err.txt
test "$status" -eq 1
test "$(cat out.txt)" = "imported 2, updated 0, unchanged 0, deleted 0, failed 7"
grep -q "files/empty.md: file is empty$" err.txt
grep -q "files/latin1.txt: not valid UTF-8 (bad byte 0xe9 at offset 3)" err.txt
grep -q "files/nohtml.html: no article content found$" err.txt
grep -q "files/huge.txt: .*is 41943040 bytes, the limit is 33554432" err.txt
grep -q "corrupt zip .*corrupt.zip" err.txt
grep -q "li/Shares.csv: csv line 3: quote inside unquoted field 3" err.txt
grep -q "missing-path" err.txt
test "$(wc -l < err.txt)" -eq 7
test "$("$TWIN_BIN" docs --json | wc -l)" -eq 2
"$TWIN_BIN" docs --json | grep -q '"content":"Good \\"post\\""'

# --author is required (or author.name in twin.conf).
set +e
"$TWIN_BIN" import files 2> err2.txt
status=$?
set -e
test "$status" -ne 0
grep -q -- '--author' err2.txt

# --prune does not delete while items of that PATH fail (an unreadable file is not a deleted one).
rm files/good.md
set +e
"$TWIN_BIN" import files --prune --author "Ada Lovelace" > out3.txt 2> err3.txt
set -e
grep -q "not pruning '.*files': 4 item(s) failed" err3.txt
test "$(cat out3.txt)" = "imported 0, updated 0, unchanged 0, deleted 0, failed 4"
test "$("$TWIN_BIN" docs --json | wc -l)" -eq 2
# Once the bad files are gone, the prune happens: good.md's document is deleted.
rm files/empty.md files/latin1.txt files/nohtml.html files/huge.txt
test "$("$TWIN_BIN" import files --prune --author "Ada Lovelace")" = \
    "imported 0, updated 0, unchanged 0, deleted 1, failed 0"
test "$("$TWIN_BIN" docs --json | wc -l)" -eq 1
