#!/usr/bin/env bash
# The sidecar shape (docs/real-guests.md): client -> OVS-DPDK -> lockstepd -> two QEMU
# guests. OVS (Debian's openvswitch-switch-dpdk) owns the uplink (the client's veth, via
# net_af_packet) and hands the FT guest's traffic to lockstepd over vhost-user: OVS's
# dpdkvhostuserclient port connects to lockstepd's ext port, a net_virtio_user in server
# mode. The guests are vhost-user ports of lockstepd as in vm.sh. Checked: downloads and
# an upload byte-exact, no checkpoint, the OVS flows that steer to lockstepd carried the
# traffic, every mbuf back at lockstepd's exit.
# OVS needs hugepages (it always gives DPDK --in-memory, which --no-huge cannot go with):
# OVS_HUGEPAGES (200) pages of 2 MB are reserved for the run and given back after.
#   ovs_sidecar.sh BUILD_DIR   exit 0 pass, 77 skip (no OVS-DPDK, no hugepages, ...), 1 fail
set -uo pipefail
source "$(dirname "$0")/../../tools/vm/ovs.sh"
for t in ovs-vsctl ovs-ofctl ovsdb-server ovsdb-tool; do
  command -v $t >/dev/null || { echo "SKIP: $t not installed (openvswitch-switch-dpdk)"; exit 77; }
done
[ -x "$OVS_VSWITCHD" ] || { echo "SKIP: $OVS_VSWITCHD not installed (openvswitch-switch-dpdk)"; exit 77; }

source "$(dirname "$0")/common.sh" "$1"
vm_net_up "$P" || fail "cannot create namespaces"
CLEANUP_MORE=ovs_down
EXT_PORT="net_virtio_user0,path=$VM_RUN/lsext.sock,server=1,queues=1"

echo "== OVS-DPDK in $P-d: uplink $P-ext, lsext -> lockstepd's ext port"
ovs_up "$VM_RUN/ovs" "$P-d" "$P-ext" "$VM_RUN/lsext.sock" 2>"$VM_RUN/ovs.err" || {
  rc=$?
  [ $rc = 3 ] && skip "cannot reserve $OVS_HUGEPAGES hugepages of 2 MB for OVS-DPDK"
  cat "$VM_RUN/ovs.err"; grep -E 'ERR|EMER' "$VM_RUN/ovs/vswitchd.log" | tail -5
  fail "OVS-DPDK did not start"
}
ovs_flows "$GUEST_IP" "$VM_MAC" || fail "OVS flows"
ovs_ofctl dump-flows br0 --no-stats | sed 's/^/  /'

start_lockstepd
vm_start pvm "$VM_RUN/pvm.sock"
vm_start svm "$VM_RUN/svm.sock"
vm_wait_ready pvm 180 || fail "PVM guest did not boot"
echo "  PVM guest ready after ${VM_BOOT_S}s"
vm_wait_ready svm 180 || fail "SVM guest did not boot"
echo "  SVM guest ready after ${VM_BOOT_S}s"
wait_link_up pvm 10 && wait_link_up svm 10 || fail "vhost-user ports not up"
reach || fail "the guests do not answer through OVS and lockstepd"

echo "== transfers through OVS and lockstepd"
python3 -c "import random, sys; sys.stdout.buffer.write(random.Random(5).randbytes(1 << 20))" >"$VM_RUN/up1m.bin"
c0=$(requests)
for _ in 1 2; do download f1m.bin; done
upload "$VM_RUN/up1m.bin"
no_new_checkpoints "$c0" "transfers through OVS"
echo "  checkpoint requests: 0; SVM lag: $(lag)"
to_ls=$(ovs_ofctl dump-flows br0 "in_port=uplink,dl_dst=$VM_MAC" | sed -n 's/.*n_packets=\([0-9]*\).*/\1/p' | head -1)
from_ls=$(ovs_ofctl dump-flows br0 "in_port=lsext" | sed -n 's/.*n_packets=\([0-9]*\).*/\1/p' | head -1)
echo "  OVS flows: uplink -> lockstepd $to_ls packets, lockstepd -> uplink $from_ls packets"
[ "${to_ls:-0}" -gt 700 ] && [ "${from_ls:-0}" -gt 1400 ] || fail "the OVS flows to and from lockstepd did not carry the transfers"
stop_lockstepd
echo "  lockstepd at exit: checkpoints by reason $(stat_of "(lambda e: $REASONS)(s['engine'])"), pool full"
echo "ovs sidecar wall time: $(( $(date +%s) - t_start )) s"
echo PASS
