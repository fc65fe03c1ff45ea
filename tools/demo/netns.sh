#!/usr/bin/env bash
# The demo's network: four namespaces joined by veth pairs.
#
#   <P>-client  10.9.0.1   <P>-ext-c ── <P>-ext ┐
#   <P>-pvm     10.9.0.2   <P>-pvm-v ── <P>-pvm ├─ <P>-dp: lockstepd (net_af_packet)
#   <P>-svm     10.9.0.2   <P>-svm-v ── <P>-svm ┘
#
# The PVM and the SVM are identical replicas: same IP, same MAC, as COLO VMs are.
# Offloads are off on every veth end so that frames cross AF_PACKET whole, with real
# checksums and no GSO/GRO super-frames. IPv6 is off to keep the VMs quiet.
#   netns.sh up [PREFIX]     create (PREFIX default "ls", at most 5 characters)
#   netns.sh down [PREFIX]   remove
set -euo pipefail
cmd=${1:-}
P=${2:-ls}
VM_MAC=02:00:00:00:00:02
CLIENT_MAC=02:00:00:00:00:01

quiet() {  # offloads and IPv6 off on one interface in one namespace
  local ns=$1 dev=$2
  ip netns exec "$ns" ethtool -K "$dev" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
  ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1" >/dev/null 2>&1 || true
}

up() {
  for ns in client pvm svm dp; do ip netns add "$P-$ns"; done
  for ns in client pvm svm dp; do ip netns exec "$P-$ns" ip link set lo up; done
  for pair in "ext client ext-c $CLIENT_MAC 10.9.0.1" "pvm pvm pvm-v $VM_MAC 10.9.0.2" \
              "svm svm svm-v $VM_MAC 10.9.0.2"; do
    set -- $pair
    local dpdev="$P-$1" ns="$P-$2" dev="$P-$3" mac=$4 ip=$5
    ip link add "$dpdev" type veth peer name "$dev"
    ip link set "$dpdev" netns "$P-dp"
    ip link set "$dev" netns "$ns"
    ip netns exec "$ns" ip link set "$dev" address "$mac"
    ip netns exec "$ns" ip addr add "$ip/24" dev "$dev"
    quiet "$ns" "$dev"
    quiet "$P-dp" "$dpdev"
    ip netns exec "$P-dp" ip link set "$dpdev" mtu 1500 up
    ip netns exec "$ns" ip link set "$dev" mtu 1500 up
  done
}

down() {
  for ns in client pvm svm dp; do ip netns del "$P-$ns" 2>/dev/null || true; done
}

case "$cmd" in
  up) down; up ;;
  down) down ;;
  *) echo "usage: $0 up|down [PREFIX]" >&2; exit 2 ;;
esac
