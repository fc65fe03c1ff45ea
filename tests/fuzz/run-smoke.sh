#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR over its committed corpus for SECONDS each.
# Usage: tests/fuzz/run-smoke.sh BUILD_DIR SECONDS
set -euo pipefail
build=$1 secs=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
status=0
for target in "$build"/tests/fuzz/fuzz_*; do
  [ -f "$target" ] && [ -x "$target" ] || continue  # skip meson's *.p object dirs
  name=$(basename "$target")
  work=$(mktemp -d)
  cp -r "$here/corpus/${name#fuzz_}/." "$work/" 2>/dev/null || true
  echo "-- $name for ${secs}s"
  if ! "$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$build/$name-" "$work" 2>"$build/$name.log"; then
    tail -n 40 "$build/$name.log"; status=1
  else
    grep -E "^(#[0-9]+\s+DONE|Done)" "$build/$name.log" | tail -n 1 || true
  fi
  rm -rf "$work"
done
exit $status
