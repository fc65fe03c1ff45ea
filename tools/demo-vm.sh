#!/usr/bin/env bash
# lockstep demo with two real guests: tools/demo.sh, but the PVM and the SVM are QEMU
# virtual machines whose virtio-net devices are vhost-user ports of lockstepd, as a
# vSwitch sidecar would run them (docs/real-guests.md). The guests (Debian's kernel and
# busybox httpd, built from Debian packages by tools/vm/build-guest.sh and kept in the
# build directory) boot under KVM when /dev/kvm is usable, else under TCG (about 10-20 s).
# A client in a network namespace downloads and uploads through lockstepd's ext port;
# the live display shows connections, bytes compared, frames released and checkpoint
# requests. Ctrl-C stops it; guests and namespaces are removed on the way out.
#   tools/demo-vm.sh [--duration SECONDS] [--diverge]
#     --duration N   stop by itself after N seconds (for unattended runs)
#     --diverge      the client also fetches role.txt, which differs between the guests
# A bounded run exits non-zero unless the client's transfers all arrived byte-exact and
# lockstepd ended with every mbuf back in its pool.
# BUILD_DIR (default build) is honoured. Needs root (network namespaces); uses sudo if not.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

duration=0 diverge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --diverge) diverge=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "demo-vm: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" -ne 0 ]; then
  exec sudo -E "$0" --duration "$duration" $([ $diverge = 1 ] && echo --diverge)
fi

echo "== installing dependencies"
tools/install-deps.sh
build=${BUILD_DIR:-build}
echo "== building lockstepd in $build"
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
ninja -C "$build" dataplane/lockstepd
case "$build" in /*) ;; *) build=$ROOT/$build ;; esac
LOCKSTEPD=$build/dataplane/lockstepd

echo "== guest kernel and initramfs from Debian packages ($build/vm-guest)"
VM_GUEST=$build/vm-guest
tools/vm/build-guest.sh "$VM_GUEST"

VM_RUN=$(mktemp -d /tmp/lockstep-demo-vm.XXXXXX)
source tools/vm/lib.sh
P=lsvmd
PIDS=()
status=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -f "$VM_RUN/traffic.log" ] && cp "$VM_RUN/traffic.log" "$VM_RUN/traffic.done"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  vm_stop_all
  vm_net_down "$P"
  wait 2>/dev/null || true
  if [ -f "$VM_RUN/traffic.done" ]; then
    ok=$(grep -c '^ok' "$VM_RUN/traffic.done" || true)
    bad=$(grep -c '^FAIL' "$VM_RUN/traffic.done" || true)
    bytes=$(awk '/^ok/ {s += $3} END {print s + 0}' "$VM_RUN/traffic.done")
    echo "== client: $ok transfers byte-exact ($bytes bytes), $bad failed"
    [ "$bad" = 0 ] || grep '^FAIL' "$VM_RUN/traffic.done" | head -5 | sed 's/^/   /'
    if [ "$duration" != 0 ] && { [ "$ok" = 0 ] || [ "$bad" != 0 ]; }; then
      echo "== demo check failed" >&2
      status=1
    fi
  fi
  for r in pvm svm; do
    grep -h '^lsvm: ready' "$VM_RUN/$r.console" 2>/dev/null | sed 's/^/== guest: /'
  done
  rm -rf "$VM_RUN"
  [ $status = 0 ] || exit $status
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== network: namespaces $P-c (client ${VM_CLIENT_IP%/*}) and $P-d (lockstepd)"
vm_net_up "$P"

# The guests connect to lockstepd's vhost-user sockets (reconnect=1: QEMU waits for
# them and comes back after a lockstepd restart); they boot while lockstepd starts.
echo "== guests: PVM and SVM, ${VM_IP%/*} both (consoles in $VM_RUN)"
vm_start pvm "$VM_RUN/pvm.sock"
vm_start svm "$VM_RUN/svm.sock"
ip netns exec "$P-c" tools/vm/traffic.sh "$VM_GUEST/www" "$VM_RUN/traffic.log" "${VM_IP%/*}" \
  $([ $diverge = 1 ] && echo --diverge) & PIDS+=($!)

echo "== lockstepd (compare deadline 5 s: emulated guests lag; Ctrl-C to stop)"
args=(--display --stats-json "$VM_RUN/stats.json"
      --set "ports.ext=net_af_packet0,iface=$P-ext,framecnt=4096"
      --set "ports.pvm=net_vhost0,iface=$VM_RUN/pvm.sock,queues=1"
      --set "ports.svm=net_vhost1,iface=$VM_RUN/svm.sock,queues=1"
      --set engine.compare_timeout_us=5000000 --set engine.ack_timeout_us=5000000
      --set engine.normalize_rules=@http --ctrl-socket "$VM_RUN/ctl" --metrics off)
[ "$duration" != 0 ] && args+=(--duration "$duration")
rc=0
ip netns exec "$P-d" "$LOCKSTEPD" "${args[@]}" -- --file-prefix=lockstep-demo-vm --no-telemetry --log-level=lib.vhost.*:warning || rc=$?
exit $rc
