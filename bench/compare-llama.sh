#!/usr/bin/env bash
# compare-llama.sh - twin against llama.cpp in the same run, on the same GGUF files and thread
# counts (issues #3 and #5). It does not build or fetch llama.cpp: give it an existing CPU
# build (a directory with bin/llama-bench and, for the embedding rows, bin/llama-embedding).
#
#   bench/compare-llama.sh LLAMA_BUILD_DIR [WORK_DIR]
#
# WORK_DIR (default: a new directory under /tmp, kept) receives the models (made with
# `twin model synth`/`quantize` when missing), the raw outputs of both programs under logs/, and
# results.md, the table also printed to stdout. Environment: TWIN_BIN (default ./twin, build it
# with `make release`), TWIN_SHARED (default ../shared), THREADS (default "2 1"), REPS (default
# 3, at most 5), TYPES (default "f32 q8_0 q4_0 q4_k q4_k_m"), EMBED (default 1: also the BERT
# rows). llama-bench reports the mean of REPS runs, twin bench model the median.
set -euo pipefail

die() { echo "compare-llama.sh: $*" >&2; exit 1; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: bench/compare-llama.sh LLAMA_BUILD_DIR [WORK_DIR]"
LLAMA=$1
WORK=${2:-$(mktemp -d /tmp/twin-compare-llama-XXXXXX)}
TWIN=${TWIN_BIN:-./twin}
SHARED=${TWIN_SHARED:-../shared}
THREADS=${THREADS:-"2 1"}
REPS=${REPS:-3}
TYPES=${TYPES:-"f32 q8_0 q4_0 q4_k q4_k_m"}
EMBED=${EMBED:-1}
LB=$LLAMA/bin/llama-bench
LE=$LLAMA/bin/llama-embedding
VOCAB=$SHARED/data/models/stories260K.gguf

[ -x "$LB" ] || die "no llama-bench at '$LB' (give the llama.cpp build directory)"
[ -x "$TWIN" ] || die "no twin binary at '$TWIN' (make release, or set TWIN_BIN)"
# ./twin is a link to the last build made, a sanitizer build included: those run ~10x slower.
if ldd "$TWIN" 2>/dev/null | grep -q 'libasan\|libubsan'; then
    die "'$TWIN' is a sanitizer build; make release, or set TWIN_BIN=build-release/twin"
fi
[ -f "$VOCAB" ] || die "no '$VOCAB' (set TWIN_SHARED)"
case $REPS in [1-5]) ;; *) die "REPS must be 1..5" ;; esac
mkdir -p "$WORK/logs"
OUT=$WORK/results.md
: >"$OUT"
say() { printf '%s\n' "$*" | tee -a "$OUT"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# The 100M model of refs/llama-bench.md: llama-bench's shape, the stories260K vocabulary.
model() {
    local t=$1 f=$WORK/m100-$1.gguf
    if [ ! -f "$f" ]; then
        if [ "$t" = q4_k_m ] || [ "$t" = q5_k_m ]; then
            model f32 >/dev/null
            "$TWIN" model quantize "$WORK/m100-f32.gguf" "$f" "$t" >&2
        else
            "$TWIN" model synth "$f" --like "$VOCAB" --dim 768 --layers 16 --heads 12 \
                --kv-heads 4 --ff 2048 --seed 1 --type "$t" >&2
        fi
    fi
    echo "$f"
}

# tokens/s of test $2 (pp128, pp512, tg128) in llama-bench's markdown table $1.
llama_ts() {
    awk -F'|' -v want="$2" '
        function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
        /^\|/ && !hdr { for (i = 2; i < NF; i++) { h = trim($i); if (h == "test") ct = i; if (h == "t/s") cs = i } hdr = 1; next }
        /^\|/ && ct && trim($ct) == want { split(trim($cs), a, " "); print a[1]; exit }' "$1"
}
# tokens/s of row $2 (pp128, pp512, tg128) in twin bench model's output $1.
twin_ts() { awk -v want="$2" '$1 == want { print $2; exit }' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }

say "# twin vs llama.cpp, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
say ""
say "twin $("$TWIN" version 2>/dev/null | head -1); llama.cpp build $LLAMA; reps $REPS"
say ""
say "| model | threads | load (1/5/15 min) | llama.cpp pp128 / pp512 / tg128 | twin pp128 / pp512 / tg128 | twin/llama.cpp pp128 / pp512 / tg128 | tg GB/s twin / llama.cpp, memcpy |"
say "| --- | --- | --- | --- | --- | --- | --- |"
for t in $THREADS; do
    for ty in $TYPES; do
        f=$(model "$ty")
        l=$(load)
        lo=$WORK/logs/llama-bench-$ty-t$t.md
        to=$WORK/logs/twin-model-$ty-t$t.txt
        "$LB" -m "$f" -p 128,512 -n 128 -t "$t" -r "$REPS" >"$lo" 2>"$lo.err" || die "llama-bench failed on $f (see $lo.err)"
        "$TWIN" bench model -m "$f" -t "$t" -r "$REPS" >"$to" 2>&1 || die "twin bench model failed on $f (see $to)"
        lp=$(llama_ts "$lo" pp128) lq=$(llama_ts "$lo" pp512) lg=$(llama_ts "$lo" tg128)
        tp=$(twin_ts "$to" pp128) tq=$(twin_ts "$to" pp512) tg=$(twin_ts "$to" tg128)
        mb=$(awk '$1 == "tg" { print $2; exit }' "$to")
        bw=$(awk '$1 == "tg" { for (i = 1; i < NF; i++) if ($i == "memcpy") { print $(i + 1); exit } }' "$to")
        gbs=$(awk -v mb="$mb" -v a="$tg" -v b="$lg" 'BEGIN { printf "%.1f / %.1f", mb * a / 1e3, mb * b / 1e3 }')
        say "| 100M $ty | $t | $l | $lp / $lq / $lg | $tp / $tq / $tg | $(ratio "$tp" "$lp") / $(ratio "$tq" "$lq") / $(ratio "$tg" "$lg") | $gbs, $bw |"
    done
done

if [ "$EMBED" = 1 ]; then
    [ -x "$LE" ] || die "no llama-embedding at '$LE'"
    mkdir -p "$WORK/embed"
    say ""
    say "| bge-small shape F32 | threads | load (1/5/15 min) | llama-embedding tokens/s (perf total time) | twin bench embed tokens/s | twin/llama.cpp |"
    say "| --- | --- | --- | --- | --- | --- |"
    for t in $THREADS; do
        l=$(load)
        to=$WORK/logs/twin-embed-t$t.txt
        lo=$WORK/logs/llama-embedding-t$t.txt
        "$TWIN" bench embed -t "$t" --keep "$WORK/embed" >"$to" 2>&1 || die "twin bench embed failed (see $to)"
        # Its "prompt eval time" reads 0 ms for encoder-only models at this commit; "total time"
        # counts from the context's reset after the warm-up run: the batches and their output.
        "$LE" -m "$WORK/embed/bge-small-synth.gguf" -f "$WORK/embed/sentences.txt" -t "$t" \
            --pooling mean --perf -v >/dev/null 2>"$lo" || die "llama-embedding failed (see $lo)"
        ln=$(awk '/batch_decode: n_tokens =/ { for (i = 1; i < NF; i++) if ($i == "n_tokens") n += $(i + 2) } END { print n }' "$lo")
        le=$(awk -v n="$ln" '/perf_context_print: +total time/ { for (i = 1; i < NF; i++) if ($i == "ms") ms = $(i - 1) } END { if (ms > 0) printf "%.0f", n / (ms / 1e3) }' "$lo")
        te=$(awk '/tokens\/s/ { for (i = 2; i <= NF; i++) if ($i == "tokens/s") { print $(i - 1); exit } }' "$to")
        tn=$(awk '/^embed:/ { for (i = 2; i <= NF; i++) if ($i == "tokens") print $(i - 1) }' "$to")
        say "| $(wc -l <"$WORK/embed/sentences.txt") sentences, $tn / $ln tokens | $t | $l | $le | $te | $(ratio "$te" "$le") |"
    done
fi
say ""
say "raw outputs: $WORK/logs"
