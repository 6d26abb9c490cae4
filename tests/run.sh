#!/usr/bin/env bash
# Runs every test: unit binaries ($B/tests/test_*), fuzz corpus replays ($B/fuzz-replay/*) and
# e2e scripts (tests/e2e/t*.sh), each in its own process with a timeout. Counts unit cases one by
# one ("unit: N passed, N failed" lines) and each e2e script and replay as one case. Ends with the
# line "N passed, N failed". Exit status 1 if anything failed.
#   B=build tests/run.sh [FILTER]      FILTER: run only tests whose file name contains it
#   TEST_TIMEOUT=seconds (default 600 per binary or script)
set -u
B=${B:-build}
filter=${1:-}
timeout_s=${TEST_TIMEOUT:-600}
root=$(cd "$(dirname "$0")/.." && pwd)
export TWIN_SHARED=${TWIN_SHARED:-$(cd "$root/.." && pwd)/shared}
export TWIN_BIN="$root/$B/twin"
export TWIN_ROOT="$root"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0
failed=0
failures=()
logdir="$root/$B/test-logs"
mkdir -p "$logdir"

run_one() { # name, command...
    local name=$1; shift
    local log="$logdir/$name.log" start end rc
    start=$(date +%s)
    timeout "$timeout_s" "$@" >"$log" 2>&1
    rc=$?
    end=$(date +%s)
    echo "$rc $((end - start))"
}

for t in "$root/$B"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    [[ -n "$filter" && "$name" != *"$filter"* ]] && continue
    read -r rc secs < <(cd "$root" && run_one "$name" "$t")
    log="$logdir/$name.log"
    line=$(grep -E '^unit: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/unit: ([0-9]+) passed.*/\1/')
        f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed/\1/')
    else
        p=0; f=1
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        failures+=("$name")
        echo "FAIL $name (exit $rc, ${secs}s): $p passed, $f failed"
        grep -E '^(FAIL|  )' "$log" | head -40
        [ "$rc" -ne 0 ] && tail -20 "$log"
    else
        echo "ok   $name (${secs}s): $p cases"
    fi
done

for t in "$root/$B"/fuzz-replay/fuzz_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    [[ -n "$filter" && "$name" != *"$filter"* ]] && continue
    corpus="$root/tests/fuzz/corpus/$name"
    read -r rc secs < <(cd "$root" && run_one "replay-$name" "$t" "$corpus")
    if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); echo "ok   replay $name (${secs}s)";
    else failed=$((failed + 1)); failures+=("replay $name"); echo "FAIL replay $name"; tail -20 "$logdir/replay-$name.log"; fi
done

for t in "$root"/tests/e2e/t*.sh; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .sh)
    [[ -n "$filter" && "$name" != *"$filter"* ]] && continue
    read -r rc secs < <(cd "$root" && run_one "$name" bash "$t")
    if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); echo "ok   $name (${secs}s)";
    else failed=$((failed + 1)); failures+=("$name"); echo "FAIL $name (exit $rc, ${secs}s)"; tail -30 "$logdir/$name.log"; fi
done

if [ ${#failures[@]} -gt 0 ]; then echo "failed: ${failures[*]}"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
