# OVS-DPDK in front of lockstepd, as a vSwitch sidecar (sourced; docs/real-guests.md).
# A private ovsdb-server and Debian's ovs-vswitchd-dpdk (openvswitch-switch-dpdk) with
# their database, sockets and logs in OVS_DIR, run in the namespace OVS_NS. Bridge br0
# (userspace datapath) has the uplink (a kernel interface through net_af_packet) and
# lsext, a dpdkvhostuserclient port: OVS connects to the vhost-user socket of lockstepd's
# ext port (net_virtio_user,server=1), and reconnects when lockstepd restarts.
#   ovs_up OVS_DIR OVS_NS UPLINK_IFACE LSEXT_SOCK   start and add the ports
#   ovs_flows GUEST_IP GUEST_MAC                    hand the FT guest's traffic to lockstepd
#   ovs_down                                        stop both daemons, give hugepages back
# OVS 3.1 always passes --in-memory to DPDK's EAL, which refuses it with --no-huge ("EAL:
# Option --legacy-mem is not compatible with --in-memory"): OVS needs hugepages. ovs_up
# reserves OVS_HUGEPAGES 2 MB pages more than are free (and ovs_down returns them); no
# hugetlbfs mount is needed (--in-memory takes them through memfd).
OVS_VSWITCHD=${OVS_VSWITCHD:-/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk}
OVS_HUGEPAGES=${OVS_HUGEPAGES:-200}
OVS_DIR= OVS_NS= OVS_HP_ADDED=0

ovs_vsctl() { ovs-vsctl --db="unix:$OVS_DIR/db.sock" --timeout=20 "$@"; }
ovs_ofctl() { OVS_RUNDIR=$OVS_DIR ovs-ofctl "$@"; }

ovs_up() {
  OVS_DIR=$1 OVS_NS=$2
  local uplink=$3 sock=$4 free total
  mkdir -p "$OVS_DIR"
  free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
  if [ "$free" -lt "$OVS_HUGEPAGES" ]; then
    total=$(cat /proc/sys/vm/nr_hugepages)
    OVS_HP_ADDED=$((OVS_HUGEPAGES - free))
    echo $((total + OVS_HP_ADDED)) >/proc/sys/vm/nr_hugepages 2>/dev/null || { OVS_HP_ADDED=0; return 3; }
    free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
    [ "$free" -ge "$OVS_HUGEPAGES" ] || return 3
  fi
  ovsdb-tool create "$OVS_DIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema || return 1
  ip netns exec "$OVS_NS" ovsdb-server "$OVS_DIR/conf.db" --remote="punix:$OVS_DIR/db.sock" \
    --pidfile="$OVS_DIR/ovsdb.pid" --unixctl="$OVS_DIR/ovsdb.ctl" \
    --log-file="$OVS_DIR/ovsdb.log" --detach || return 1
  ovs_vsctl --no-wait init
  # One lcore for OVS's main thread, the PMD thread on the other; memory from hugepages.
  ovs_vsctl --no-wait set Open_vSwitch . other_config:dpdk-init=true \
    "other_config:dpdk-extra=--no-pci --file-prefix=ovs-$OVS_NS --no-telemetry" \
    other_config:dpdk-lcore-mask=0x1 other_config:pmd-cpu-mask=0x2 \
    other_config:per-port-memory=true other_config:dpdk-socket-mem=256 \
    other_config:dpdk-socket-limit=$((OVS_HUGEPAGES * 2))
  ip netns exec "$OVS_NS" env OVS_RUNDIR="$OVS_DIR" "$OVS_VSWITCHD" "unix:$OVS_DIR/db.sock" \
    --pidfile="$OVS_DIR/vswitchd.pid" --unixctl="$OVS_DIR/vswitchd.ctl" \
    --log-file="$OVS_DIR/vswitchd.log" --detach >/dev/null 2>&1 || return 1
  ovs_vsctl add-br br0 -- set bridge br0 datapath_type=netdev || return 1
  ovs_vsctl add-port br0 uplink -- set Interface uplink type=dpdk \
    "options:dpdk-devargs=net_af_packet0,iface=$uplink" || return 1
  ovs_vsctl add-port br0 lsext -- set Interface lsext type=dpdkvhostuserclient \
    "options:vhost-server-path=$sock" || return 1
}

ovs_flows() {
  local ip=$1 mac=$2
  ovs_ofctl del-flows br0
  # The FT guest's traffic from the uplink goes to lockstepd (its MAC, and ARP asking
  # for its address); what lockstepd releases goes back out of the uplink. Everything
  # else is switched as usual.
  ovs_ofctl add-flow br0 "priority=100,in_port=uplink,dl_dst=$mac,actions=output:lsext"
  ovs_ofctl add-flow br0 "priority=100,in_port=uplink,arp,arp_tpa=$ip,actions=output:lsext"
  ovs_ofctl add-flow br0 "priority=100,in_port=lsext,actions=output:uplink"
  ovs_ofctl add-flow br0 "priority=0,actions=NORMAL"
}

ovs_down() {
  local f p i
  for f in vswitchd ovsdb; do
    [ -n "$OVS_DIR" ] && [ -f "$OVS_DIR/$f.pid" ] || continue
    p=$(cat "$OVS_DIR/$f.pid")
    kill "$p" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  if [ "$OVS_HP_ADDED" -gt 0 ]; then
    echo $(( $(cat /proc/sys/vm/nr_hugepages) - OVS_HP_ADDED )) >/proc/sys/vm/nr_hugepages || true
    OVS_HP_ADDED=0
  fi
  return 0
}
