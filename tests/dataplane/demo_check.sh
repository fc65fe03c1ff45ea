#!/usr/bin/env bash
# Runs the demo for a few seconds (tools/demo.sh --duration) against this build dir:
# passes when the client's HTTP transfers all arrived byte-exact through lockstepd and
# lockstepd ended cleanly. Skips (77) when not root or when the demo's namespaces exist
# (a demo is running).
DEMO=$1 BUILD=$2
if [ "$(id -u)" -ne 0 ]; then echo "SKIP: the demo needs root"; exit 77; fi
if ip netns list 2>/dev/null | grep -q '^ls-dp'; then echo "SKIP: a demo is running"; exit 77; fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
BUILD_DIR=$BUILD "$DEMO" --duration 8 </dev/null 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || exit "$rc"
# The client fetched /clock (its Date differs on the SVM): a checkpoint must have been
# requested for it and explained (lockstepd names the last one at exit).
if grep -q "/clock fetched [1-9]" "$out"; then
  grep -q "checkpoints: [0-9]* x payload_mismatch .*:8080.*Date:" "$out" ||
    { echo "FAIL: /clock was fetched but no payload_mismatch at 'Date:' was explained"; exit 1; }
  grep -q "== checkpoints requested: [1-9]" "$out" || { echo "FAIL: no checkpoint counted"; exit 1; }
fi
echo "PASS"
