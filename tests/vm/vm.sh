#!/usr/bin/env bash
# Two real QEMU guests behind lockstepd over vhost-user (docs/real-guests.md): the guest
# kernel and initramfs are built from Debian packages (tools/vm/build-guest.sh, kept in
# the build directory), both guests run busybox httpd with the same files, a client in a
# network namespace talks to them through lockstepd's ext port.
# Checked: downloads and uploads byte-exact (MD5); no checkpoint where the guests agree
# (@http normalizes Date; the files' times are equal); exactly one payload_mismatch per
# fetch of role.txt, the one file that differs; the SVM guest's restart (vhost-user
# detach and re-attach counted); lockstepd's restart with the guests running (QEMU
# reconnects); every mbuf back at each lockstepd exit; each guest's QMP monitor answers.
# Under TCG the SVM guest lags the PVM guest by far more than the default compare
# deadline (100 ms): the deadline is raised here (VM_DEADLINE_MS), not in the defaults.
#   vm.sh BUILD_DIR      exit 0 pass, 77 skip (not root, no QEMU, no packages), 1 fail
source "$(dirname "$0")/common.sh" "$1"
vm_net_up "$P" || fail "cannot create namespaces"

python3 -c "import random, sys; sys.stdout.buffer.write(random.Random(5).randbytes(1 << 20))" >"$VM_RUN/up1m.bin"

echo "== lockstepd (compare deadline ${DEADLINE_MS} ms for TCG) and two guests"
start_lockstepd
vm_start pvm "$VM_RUN/pvm.sock"
vm_start svm "$VM_RUN/svm.sock"
vm_wait_ready pvm 180 || fail "PVM guest did not boot"
echo "  PVM guest ready after ${VM_BOOT_S}s"
vm_wait_ready svm 180 || fail "SVM guest did not boot"
echo "  SVM guest ready after ${VM_BOOT_S}s"
wait_link_up pvm 10 && wait_link_up svm 10 || fail "vhost-user ports not up"
reach || fail "the guests do not answer through lockstepd"

echo "== QMP: each guest's QEMU answers on its monitor"
for r in pvm svm; do
  st=$(vm_qmp $r query-status) || fail "QMP of $r"
  echo "  $r: $st"
  echo "$st" | grep -q '"status": "running"' || fail "$r not running per QMP"
done

echo "== transfers (guests agree: no checkpoint wanted)"
c0=$(requests)
# The guests' output as it reaches lockstepd, for the SVM's lag behind the PVM (lag.py).
ctl capture start pvm lag-pvm.pcapng >/dev/null && ctl capture start svm lag-svm.pcapng >/dev/null ||
  fail "capture start"
download small.bin
for _ in 1 2 3; do download f1m.bin; done
ctl capture stop pvm >/dev/null; ctl capture stop svm >/dev/null
for _ in 1 2; do upload "$VM_RUN/up1m.bin"; done
no_new_checkpoints "$c0" "downloads and uploads"
echo "  checkpoint requests: $(( $(requests) - c0 )); normalized spans: $(ctlq "r['engine'].get('normalize.http_date.spans', 0)" stats) Date"
echo "  SVM lag: $(lag)"
if command -v tshark >/dev/null; then
  echo "  SVM lag in the downloads: $("$(dirname "$0")/lag.py" "$VM_RUN/cap/lag-pvm.pcapng" "$VM_RUN/cap/lag-svm.pcapng")"
fi

echo "== role.txt differs between the guests: one checkpoint, payload_mismatch"
# The simulated checkpointer does not make the SVM a copy of the PVM: that connection
# stays diverged until it closes, and the SVM's ACK of the client's FIN can lag the PVM's
# (ack_divergence) within the same epoch; such follow-ups are coalesced into the request.
client role.txt "$VM_RUN/role" >/dev/null || fail "role.txt"
[ "$(cat "$VM_RUN/role")" = pvm ] || fail "the client got '$(cat "$VM_RUN/role")', want the PVM's role.txt"
for _ in $(seq 20); do [ "$(requests)" -gt "$c0" ] && break; sleep 0.1; done
sleep 0.5
n=$(( $(requests) - c0 ))
[ "$n" = 1 ] || fail "want one checkpoint request, got $n ($(reasons))"
[ "$(ctlq "r['engine']['checkpoint_reason.payload_mismatch']" stats)" = 1 ] || fail "want payload_mismatch ($(reasons))"
[ "$(ctlq "r['engine']['checkpoint_reason.deadline']" stats)" = 0 ] || fail "a deadline checkpoint ($(reasons))"
echo "  checkpoints by reason: $(reasons) (requests: $n)"

echo "== the SVM guest restarts (vhost-user detach and re-attach)"
down0=$(link_count svm down) up0=$(link_count svm up)
vm_stop svm
for _ in $(seq 50); do [ "$(link_count svm down)" -gt "$down0" ] && break; sleep 0.1; done
[ "$(link_count svm down)" -gt "$down0" ] || fail "the SVM's detach not counted"
vm_start svm "$VM_RUN/svm.sock"
vm_wait_ready svm 180 || fail "SVM guest did not boot again"
wait_link_up svm 10 || fail "the SVM's port not up again"
echo "  SVM guest back after ${VM_BOOT_S}s; svm link_down $down0 -> $(link_count svm down), link_up $up0 -> $(link_count svm up)"
[ "$(link_count svm up)" -gt "$up0" ] || fail "the SVM's re-attach not counted"
# The new SVM kernel knows no MAC for the client, and its own ARP requests never leave
# lockstepd (only the PVM's output is released): it learns the client's MAC from the
# client's next ARP request, which lockstepd hands to both guests. The client asks again
# once its entry is gone (a COLO checkpoint would instead copy the PVM's ARP cache).
ip netns exec "$P-c" ip neigh flush dev "$P-cl"
c1=$(requests)
download f1m.bin
upload "$VM_RUN/up1m.bin"
no_new_checkpoints "$c1" "transfers after the SVM's restart"

echo "== lockstepd restarts with the guests running (QEMU reconnects)"
stop_lockstepd
echo "  first lockstepd at exit: checkpoints by reason $(stat_of "(lambda e: $REASONS)(s['engine'])"), pool full"
start_lockstepd
wait_link_up pvm 20 && wait_link_up svm 20 || fail "QEMU did not reconnect to the new lockstepd"
reach || fail "the guests do not answer through the new lockstepd"
c2=$(requests)
download f1m.bin
upload "$VM_RUN/up1m.bin"
no_new_checkpoints "$c2" "transfers through the new lockstepd"
echo "  SVM lag: $(lag)"
echo "  checkpoints by reason: $(reasons)"
stop_lockstepd
echo "  second lockstepd at exit: checkpoints by reason $(stat_of "(lambda e: $REASONS)(s['engine'])"), pool full"
echo "vm suite wall time: $(( $(date +%s) - t_start )) s"
echo PASS
