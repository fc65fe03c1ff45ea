#!/usr/bin/env bash
# Runs the demo for a few seconds (tools/demo.sh --duration) against this build dir:
# passes when the client's HTTP transfers all arrived byte-exact through lockstepd and
# lockstepd ended cleanly. Skips (77) when not root or when the demo's namespaces exist
# (a demo is running).
DEMO=$1 BUILD=$2
if [ "$(id -u)" -ne 0 ]; then echo "SKIP: the demo needs root"; exit 77; fi
if ip netns list 2>/dev/null | grep -q '^ls-dp'; then echo "SKIP: a demo is running"; exit 77; fi
BUILD_DIR=$BUILD "$DEMO" --duration 6 </dev/null
