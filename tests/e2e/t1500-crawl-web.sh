#!/usr/bin/env bash
# twin crawl against a real HTTP server on 127.0.0.1 serving saved feeds and pages: the Medium
# feed fixture, a saved Substack page, robots.txt disallow, 429 + Retry-After, a redirect chain
# (5 hops followed, 6 rejected), a slow response past --timeout, a bot-challenge page and a binary
# response. Per-URL errors, the summary line, the exit status and a re-crawl that changes nothing.
set -euo pipefail
scratch=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT
serve="$(dirname "$TWIN_BIN")/tests/httpd-serve"
pages="$TWIN_SHARED/data/exports/substack_pages"
printf '\x89PNG\r\n\x1a\n\0\0\0\rIHDR' > "$scratch/logo.png"
tab=$'\t'
{
    echo "/robots.txt${tab}200${tab}text/plain${tab}=User-agent: *|Disallow: /private|"
    echo "/feed/@John.Doe${tab}200${tab}application/rss+xml${tab}$TWIN_SHARED/data/exports/rss/medium_feed.jekyll-import.xml"
    echo "/p/plain-text${tab}200${tab}text/html${tab}$pages/substack-e2e-scrape.html"
    echo "/private/post${tab}200${tab}text/html${tab}=<p>secret</p>"
    echo "/challenge${tab}200${tab}text/html${tab}=<html><head><title>Just a moment...</title></head><body><p>Verify you are human</p></body></html>"
    echo "/logo.png${tab}200${tab}image/png${tab}$scratch/logo.png"
    echo "/slow${tab}200${tab}text/html${tab}=<p>late</p>${tab}4000"
    echo "/busy${tab}200${tab}text/html${tab}$pages/substack-hello-world.html${tab}0${tab}1${tab}429${tab}Retry-After: 1"
    echo "/r0${tab}200${tab}text/html${tab}$pages/substack-single-author.html"
    for i in 1 2 3 4 5 6; do
        echo "/r$i${tab}302${tab}text/plain${tab}-${tab}0${tab}0${tab}0${tab}-${tab}Location: @BASE@/r$((i - 1))"
    done
} > "$scratch/routes"
"$serve" "$scratch/routes" "$scratch/port" &
server_pid=$!
for _ in $(seq 100); do [ -s "$scratch/port" ] && break; sleep 0.1; done
base="http://127.0.0.1:$(cat "$scratch/port")"

set +e
"$TWIN_BIN" crawl --data "$scratch/data" --author "John Doe" --rate 50 --timeout 2 \
    "$base/feed/@John.Doe" "$base/p/plain-text" "$base/private/post" "$base/challenge" \
    "$base/logo.png" "$base/slow" "$base/busy" "$base/r5" "$base/r6" \
    > "$scratch/out" 2> "$scratch/err"
rc=$?
set -e
cat "$scratch/out" "$scratch/err"
[ "$rc" -eq 1 ]
grep -qx "imported 5, updated 0, unchanged 0, failed 5" "$scratch/out"
grep -q "private/post': disallowed by robots.txt" "$scratch/err"
grep -q "challenge': a bot challenge or paywall page" "$scratch/err"
grep -q "logo.png': binary response (content type 'image/png')" "$scratch/err"
grep -q "slow': timed out" "$scratch/err"
grep -q "r6': more than 5 redirects" "$scratch/err"
[ "$(grep -c '^twin: crawl: ' "$scratch/err")" -eq 5 ]

"$TWIN_BIN" docs --data "$scratch/data" --json > "$scratch/docs"
[ "$(wc -l < "$scratch/docs")" -eq 5 ]
grep -q '"url":"https://example.com/blog/this-is-a-dummy-post-50703370aea7"' "$scratch/docs"
grep -q '"url":"https://example.com/blog/how-i-cross-post-medium-articles-to-github-pages-1cdf174bc674"' "$scratch/docs"
grep -q "\"url\":\"$base/p/plain-text\"" "$scratch/docs"
grep -q "\"url\":\"$base/busy\"" "$scratch/docs"
grep -q "\"url\":\"$base/r0\"" "$scratch/docs"
grep -q '"title":"Plain Text"' "$scratch/docs"
! grep -q 'secret\|Just a moment' "$scratch/docs"

# the same good URLs again: nothing changes, nothing fails
"$TWIN_BIN" crawl --data "$scratch/data" --author "John Doe" --rate 50 \
    "$base/feed/@John.Doe" "$base/p/plain-text" "$base/busy" "$base/r5" > "$scratch/out2"
grep -qx "imported 0, updated 0, unchanged 5, failed 0" "$scratch/out2"

# --platform medium marks the feed's articles as Medium's
"$TWIN_BIN" crawl --data "$scratch/data2" --author "John Doe" --rate 50 --platform medium \
    "$base/feed/@John.Doe" > "$scratch/out3"
grep -qx "imported 2, updated 0, unchanged 0, failed 0" "$scratch/out3"
"$TWIN_BIN" docs --data "$scratch/data2" --json | grep -c '"platform":"medium"' | grep -qx 2

# usage errors
set +e
"$TWIN_BIN" crawl --data "$scratch/data" "$base/p/plain-text" 2> "$scratch/err4"; rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q -- "--author" "$scratch/err4"
echo "ok"
