#!/usr/bin/env bash
# Runs tools/demo-vm.sh for a bounded time against this build dir: passes when the
# client's transfers through lockstepd to the two QEMU guests all arrived byte-exact and
# lockstepd ended with every mbuf back. Skips (77) when not root, without QEMU, when the
# guest's packages cannot be downloaded, or when a VM demo is running (its namespaces).
#   demo_check.sh DEMO_VM BUILD_DIR [SECONDS]
DEMO=$1 BUILD=$2 SECS=${3:-50}
[ "$(id -u)" -eq 0 ] || { echo "SKIP: the demo needs root"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 not installed"; exit 77; }
if ip netns list 2>/dev/null | grep -q '^lsvmd-'; then echo "SKIP: a VM demo is running"; exit 77; fi
"$(dirname "$DEMO")/vm/build-guest.sh" "$BUILD/vm-guest"
case $? in 0) ;; 3) echo "SKIP: guest packages cannot be downloaded"; exit 77 ;; *) exit 1 ;; esac
BUILD_DIR=$BUILD timeout $((SECS + 120)) "$DEMO" --duration "$SECS" </dev/null
