#!/usr/bin/env bash
# twin import on the skeeto Jekyll corpus (461 posts): every post stored once, a second import
# writes no change events, editing one file gives exactly one update event, and --prune after
# removing one file gives exactly one delete event.
set -euo pipefail
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
cp -r "$TWIN_SHARED/data/corpora/skeeto/_posts" posts
chmod -R u+w posts
"$TWIN_BIN" init >/dev/null
imp() { "$TWIN_BIN" import posts --author "Chris Wellons" "$@"; }
events() { "$TWIN_BIN" changes --json | wc -l; }

test "$(imp)" = "imported 461, updated 0, unchanged 0, deleted 0, failed 0"
test "$(events)" -eq 461
test "$("$TWIN_BIN" docs --json | wc -l)" -eq 461
"$TWIN_BIN" docs --json | grep -F '"url":"file://' | grep -F '/posts/2007-09-01-intro.markdown"' |
    grep -qF '"title":"null program is Alive"'

# Idempotent: the same files again change nothing.
test "$(imp)" = "imported 0, updated 0, unchanged 461, deleted 0, failed 0"
test "$(events)" -eq 461

# One edited file: one update event, for that file, version 2.
printf '\nOne more paragraph.\n' >> posts/2007-09-01-intro.markdown
test "$(imp)" = "imported 0, updated 1, unchanged 460, deleted 0, failed 0"
test "$(events)" -eq 462
last=$("$TWIN_BIN" changes --json | tail -1)
echo "$last" | grep -q '"op":"update"'
echo "$last" | grep -qF '2007-09-01-intro.markdown'
echo "$last" | grep -qF 'One more paragraph.'

# A removed file: without --prune nothing happens; with it, one delete event.
rm posts/2007-09-02-octave-mandel.markdown
test "$(imp)" = "imported 0, updated 0, unchanged 460, deleted 0, failed 0"
test "$(events)" -eq 462
test "$(imp --prune)" = "imported 0, updated 0, unchanged 460, deleted 1, failed 0"
test "$(events)" -eq 463
"$TWIN_BIN" changes --json | tail -1 | grep -q '"op":"delete"'
test "$("$TWIN_BIN" docs --json | wc -l)" -eq 460
test "$(imp --prune)" = "imported 0, updated 0, unchanged 460, deleted 0, failed 0"
test "$(events)" -eq 463
