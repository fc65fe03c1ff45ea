# QEMU guests behind lockstepd (sourced by tools/demo-vm.sh and tests/vm/). Each guest is
# a QEMU whose one virtio-net device is a vhost-user port of lockstepd: lockstepd's
# net_vhost port is the vhost-user server, QEMU the client (reconnect=1: it comes back
# when lockstepd restarts). The guest kernel and initramfs come from build-guest.sh.
#   VM_GUEST  directory of vmlinuz and initrd.gz     VM_RUN  directory of sockets and logs
#   VM_IP     guest address/len (both guests)        VM_MAC  guest MAC (both guests)
#   vm_start ROLE SOCK       start the guest ROLE (pvm, svm) on lockstepd's socket SOCK
#   vm_wait_ready ROLE SECS  until its init reports httpd running; sets VM_BOOT_S
#   vm_stop ROLE             kill its QEMU (bounded)
#   vm_qmp ROLE COMMAND      one QMP command on the guest's QMP socket; prints the reply
# QEMU 7.2 under TCG crashes in vhost_net_start (msix_set_vector_notifiers) when the
# virtio-net device has MSI-X vectors: vectors=0 (the guest then uses INTx).
VM_IP=${VM_IP:-10.77.0.2/24}
VM_MAC=${VM_MAC:-02:00:00:00:77:02}
VM_MEM_MB=${VM_MEM_MB:-128}
declare -A VM_PID=() VM_T0=()

vm_start() {
  local role=$1 sock=$2 accel=tcg
  if [ -w /dev/kvm ] && [ -z "${VM_NO_KVM:-}" ]; then accel=kvm; fi
  : >"$VM_RUN/$role.console"
  rm -f "$VM_RUN/$role.qmp"
  VM_T0[$role]=$(date +%s.%N)
  qemu-system-x86_64 -name "lsvm-$role" -machine pc,accel=$accel -m "$VM_MEM_MB" -smp 1 \
    -nodefaults -no-user-config -display none \
    -kernel "$VM_GUEST/vmlinuz" -initrd "$VM_GUEST/initrd.gz" \
    -append "console=ttyS0 quiet loglevel=3 ipv6.disable=1 panic=-1 ls.ip=$VM_IP ls.role=$role" \
    -object "memory-backend-memfd,id=mem,size=${VM_MEM_MB}M,share=on" -numa node,memdev=mem \
    -chardev "socket,id=c0,path=$sock,reconnect=1" -netdev vhost-user,id=n0,chardev=c0 \
    -device "virtio-net-pci,netdev=n0,mac=$VM_MAC,vectors=0,rx_queue_size=1024,tx_queue_size=1024" \
    -serial "file:$VM_RUN/$role.console" \
    -qmp "unix:$VM_RUN/$role.qmp,server=on,wait=off" \
    -no-reboot >"$VM_RUN/$role.qemu.log" 2>&1 &
  VM_PID[$role]=$!
}

vm_wait_ready() {
  local role=$1 secs=$2 i
  for ((i = 0; i < secs * 10; i++)); do
    if grep -q "^lsvm: ready" "$VM_RUN/$role.console" 2>/dev/null; then
      VM_BOOT_S=$(echo "$(date +%s.%N) ${VM_T0[$role]}" | awk '{printf "%.1f", $1 - $2}')
      return 0
    fi
    kill -0 "${VM_PID[$role]}" 2>/dev/null || { echo "vm: QEMU of $role exited:" >&2;
      tail -5 "$VM_RUN/$role.qemu.log" >&2; return 1; }
    sleep 0.1
  done
  echo "vm: $role not ready after ${secs}s; console:" >&2
  tail -5 "$VM_RUN/$role.console" >&2
  return 1
}

vm_stop() {
  local role=$1 pid=${VM_PID[$1]:-} i
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  VM_PID[$role]=
}

vm_stop_all() {
  local r
  for r in "${!VM_PID[@]}"; do vm_stop "$r"; done
  return 0
}

vm_qmp() {
  local role=$1 cmd=$2
  python3 - "$VM_RUN/$role.qmp" "$cmd" <<'PYEOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
f = s.makefile("rwb")
def reply():
    while True:
        m = json.loads(f.readline())
        if "event" not in m:
            return m
greeting = reply()
f.write(b'{"execute": "qmp_capabilities"}\n'); f.flush()
reply()
f.write(json.dumps({"execute": sys.argv[2]}).encode() + b"\n"); f.flush()
print(json.dumps(reply()))
PYEOF
}

# The client side: namespace PREFIX-c (the client, VM_CLIENT_IP) joined by a veth pair to
# namespace PREFIX-d, where lockstepd's ext port is net_af_packet on PREFIX-ext. Offloads
# off so that frames cross AF_PACKET whole; IPv6 off.
VM_CLIENT_IP=${VM_CLIENT_IP:-10.77.0.1/24}
VM_CLIENT_MAC=${VM_CLIENT_MAC:-02:00:00:00:77:01}
vm_net_up() {
  local p=$1 ns
  vm_net_down "$p"
  ip netns add "$p-c" && ip netns add "$p-d" || return 1
  ip link add "$p-ext" type veth peer name "$p-cl" || return 1
  ip link set "$p-ext" netns "$p-d"
  ip link set "$p-cl" netns "$p-c"
  ip netns exec "$p-c" ip link set "$p-cl" address "$VM_CLIENT_MAC"
  ip netns exec "$p-c" ip addr add "$VM_CLIENT_IP" dev "$p-cl"
  for ns in "$p-c:$p-cl" "$p-d:$p-ext"; do
    ip netns exec "${ns%%:*}" ip link set lo up
    ip netns exec "${ns%%:*}" ethtool -K "${ns#*:}" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
    ip netns exec "${ns%%:*}" sysctl -qw "net.ipv6.conf.${ns#*:}.disable_ipv6=1" >/dev/null 2>&1 || true
    ip netns exec "${ns%%:*}" ip link set "${ns#*:}" mtu 1500 up
  done
}
vm_net_down() {
  local p=$1 ns
  for ns in "$p-c" "$p-d"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  return 0
}
