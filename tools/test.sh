#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test suite
# (unit, replay of pcap-fixtures, dataplane on DPDK virtual devices, ctrl, scheduler).
#   tools/test.sh                 everything
#   tools/test.sh --suite unit    one meson suite
# BUILD_DIR (default build) and MESON_ARGS are honoured.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
build=${BUILD_DIR:-build}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" ${MESON_ARGS:-}
fi
ninja -C "$build"
meson test -C "$build" --print-errorlogs --num-processes 2 "$@"
