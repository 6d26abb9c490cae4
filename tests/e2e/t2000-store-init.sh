#!/usr/bin/env bash
# twin init: data directory, docs.db and twin.conf; idempotent; --data, TWIN_DATA, twin.conf's
# data key and --config decide where; --help on every store command; bad flags are errors.
set -euo pipefail
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"

out=$("$TWIN_BIN" init)
grep -q 'data directory ./twin-data ready (docs.db schema 1, 0 documents)' <<<"$out"
grep -q 'wrote ./twin.conf' <<<"$out"
test -f twin-data/docs.db
grep -q '^data = ./twin-data$' twin.conf
test "$(sqlite3 twin-data/docs.db 'PRAGMA journal_mode')" = wal
test "$(sqlite3 twin-data/docs.db 'PRAGMA user_version')" = 1
cp twin.conf conf.before
out=$("$TWIN_BIN" init)
grep -q 'kept ./twin.conf' <<<"$out"
cmp twin.conf conf.before

# --data and TWIN_DATA
"$TWIN_BIN" init --data elsewhere/d1 >/dev/null
test -f elsewhere/d1/docs.db
TWIN_DATA=d2 "$TWIN_BIN" init >/dev/null
test -f d2/docs.db
# twin.conf's data key is used when nothing overrides it; a --config file too
mkdir sub && cd sub
printf 'data = ./from-conf\n' > twin.conf
"$TWIN_BIN" init >/dev/null
test -f from-conf/docs.db
printf 'data = ./from-other\n' > other.conf
"$TWIN_BIN" init --config other.conf >/dev/null
test -f from-other/docs.db
TWIN_DATA=./from-env "$TWIN_BIN" init >/dev/null
test -f from-env/docs.db
"$TWIN_BIN" init --data=./from-flag >/dev/null
test -f from-flag/docs.db
# readers do not create stores: a wrong --data is an error
if "$TWIN_BIN" docs --data ./typo 2>err.txt; then exit 1; fi
grep -q "no document store in './typo' (run 'twin init' first" err.txt
test ! -e typo
if "$TWIN_BIN" changes --data ./typo 2>/dev/null; then exit 1; fi
if "$TWIN_BIN" rm --data ./typo x 2>/dev/null; then exit 1; fi
# each reader finds the store through the same settings
test "$("$TWIN_BIN" docs --config other.conf | tail -1)" = "0 documents"
test "$(TWIN_DATA=./from-env "$TWIN_BIN" docs | tail -1)" = "0 documents"
test "$("$TWIN_BIN" docs --data from-flag | tail -1)" = "0 documents"
test "$(TWIN_STORE_URL=sqlite:./from-env "$TWIN_BIN" docs | tail -1)" = "0 documents"
cd ..

# a malformed twin.conf is an error naming file and line
mkdir bad && printf 'data = ../twin-data\nnot a setting\n' > bad/twin.conf
if (cd bad && "$TWIN_BIN" docs 2>err.txt); then exit 1; fi
grep -q 'twin.conf:2:' bad/err.txt
# an explicit --config that does not exist is an error; a missing ./twin.conf is not
if "$TWIN_BIN" docs --config nope.conf 2>/dev/null; then exit 1; fi

for c in init docs changes rm; do
    "$TWIN_BIN" $c --help > help.txt
    grep -q "usage: twin $c" help.txt
done
# empty store: a header and a count
out=$("$TWIN_BIN" docs)
grep -q '^0 documents$' <<<"$out"
test -z "$("$TWIN_BIN" changes)"
# bad flags
set +e
"$TWIN_BIN" docs --kind poem 2>err.txt; rc=$?
set -e
test $rc -eq 1 && grep -q "kind 'poem'" err.txt
set +e
"$TWIN_BIN" changes --from 0 2>err.txt; rc=$?
set -e
test $rc -eq 1 && grep -q -- '--from wants an integer' err.txt
set +e
"$TWIN_BIN" changes --bogus 2>/dev/null; rc=$?
set -e
test $rc -eq 2
set +e
"$TWIN_BIN" rm 2>/dev/null; rc=$?
set -e
test $rc -eq 2
# a postgres url is refused clearly
set +e
TWIN_STORE_URL=postgres://db/twin "$TWIN_BIN" docs 2>err.txt; rc=$?
set -e
test $rc -eq 1 && grep -q 'only the sqlite backend' err.txt
echo ok
