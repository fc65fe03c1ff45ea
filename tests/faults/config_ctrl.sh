#!/usr/bin/env bash
# lockstepd's control-plane keys at the command line (no root, no EAL): accepted forms,
# and wrong ones refused (exit 2) with a message naming the key.
#   config_ctrl.sh LOCKSTEPD
set -uo pipefail
LSD=$1
fail() { echo "FAIL: $*"; exit 1; }
ok() { "$LSD" "$@" --check-config >/dev/null 2>&1 || fail "refused: $*"; }
expect_refused() {  # key, args...
  local key=$1; shift
  out=$("$LSD" "$@" --check-config 2>&1); rc=$?
  [ $rc = 2 ] || fail "$*: exit $rc, want 2"
  grep -q -- "$key" <<<"$out" || fail "$*: message does not name $key: $out"
  echo "refused, naming $key: $out"
}
NATIVE=(--set checkpointer.kind=native --set checkpointer.endpoint=unix:/tmp/x.sock)
ok "${NATIVE[@]}" --set checkpointer.listen=true --set peers.b.action=failover_primary \
   --set peers.b.timeout_ms=300 --set heartbeat.bind=127.0.0.1:9470 \
   --set heartbeat.send_to=10.0.0.2:9470,10.0.1.2:9470
ok --set checkpointer.kind=qemu --set checkpointer.endpoint=tcp:127.0.0.1:9009 --set checkpointer.vnet_hdr=true
ok --set checkpointer.kind=qmp --set checkpointer.endpoint=unix:/tmp/pvm-qmp.sock \
   --set checkpointer.secondary_qmp=unix:/tmp/svm-qmp.sock
ok --ctrl-socket off --metrics off
ok --ctrl-socket /tmp/a.ctl --ctrl-group 0 --ctrl-ro-socket /tmp/a.ro.ctl --metrics tcp:127.0.0.1:0
expect_refused checkpointer.kind --set checkpointer.kind=magic
expect_refused checkpointer.endpoint --set checkpointer.kind=native
expect_refused checkpointer.endpoint --set checkpointer.kind=native --set checkpointer.endpoint=tcp:nohost
expect_refused checkpointer.on_timeout "${NATIVE[@]}" --set checkpointer.on_timeout=panic
expect_refused checkpointer.timeout_ms "${NATIVE[@]}" --set checkpointer.timeout_ms=0
expect_refused peers.b.action "${NATIVE[@]}" --set peers.b.action=reboot
expect_refused peers.b --set peers.b=1
expect_refused peers --set peers.b.timeout_ms=100
expect_refused ctrl.metrics --metrics unix:/tmp/m.sock
expect_refused heartbeat.bind "${NATIVE[@]}" --set heartbeat.bind=somewhere
expect_refused checkpointer.listen --set checkpointer.kind=qmp --set checkpointer.endpoint=unix:/tmp/q.sock \
   --set checkpointer.listen=true
expect_refused checkpointer.secondary_qmp "${NATIVE[@]}" --set checkpointer.secondary_qmp=unix:/tmp/s.sock
expect_refused checkpointer.secondary_qmp --set checkpointer.kind=qmp --set checkpointer.endpoint=unix:/tmp/q.sock \
   --set checkpointer.secondary_qmp=tcp:nohost
# QEMU's monitor through libvirt (qmp only). Without libvirt in the build a well-formed
# libvirt endpoint is refused too, naming the key and saying why.
LV="libvirt:qemu:///system?domain=pvm"
out=$("$LSD" --set checkpointer.kind=qmp --set "checkpointer.endpoint=$LV" \
  --set "checkpointer.secondary_qmp=libvirt:qemu+ssh://root@host-b/system?domain=svm" --check-config 2>&1); rc=$?
if [ $rc != 0 ]; then
  [ $rc = 2 ] && grep -q "checkpointer.endpoint.*built without libvirt" <<<"$out" || fail "libvirt endpoint: exit $rc: $out"
  echo "refused, this lockstepd has no libvirt: $out"
fi
expect_refused checkpointer.endpoint --set checkpointer.kind=qmp --set "checkpointer.endpoint=libvirt:qemu:///system"
expect_refused "checkpointer.endpoint.*missing domain=NAME" --set checkpointer.kind=qmp \
   --set "checkpointer.endpoint=libvirt:qemu:///system?keyfile=/k"
expect_refused "checkpointer.endpoint.*qemu driver" --set checkpointer.kind=qmp \
   --set "checkpointer.endpoint=libvirt:xen:///system?domain=pvm"
expect_refused "checkpointer.endpoint.*needs checkpointer.kind qmp" --set checkpointer.kind=native \
   --set "checkpointer.endpoint=$LV"
expect_refused "checkpointer.secondary_qmp.*domain= is empty" --set checkpointer.kind=qmp \
   --set "checkpointer.endpoint=$LV" --set "checkpointer.secondary_qmp=libvirt:qemu:///system?domain="
expect_refused ctrl.nonsense --set ctrl.nonsense=1
echo PASS
