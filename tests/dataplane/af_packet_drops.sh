#!/usr/bin/env bash
# Frames the kernel drops on a full AF_PACKET ring are counted (dev_imissed), not lost
# silently. lockstepd runs on the demo's namespaces with 512-frame rings (the PMD's
# default) and is stopped with SIGSTOP; the client namespace sends N raw Ethernet frames
# into the ext veth, which the kernel can queue on lockstepd's ring only up to its size;
# after SIGCONT lockstepd takes what the ring held. Then, from lockstepd's final counters:
# ext rx + ext dev_imissed accounts for every frame sent (no more than a few other
# frames besides), and dev_imissed is at least N minus the ring.
#   af_packet_drops.sh BUILD         exit 0 pass, 77 skip (not root / no netns), 1 fail
# The fault tests' rig (tests/faults/rig.sh) provides the namespaces and lockstepd.
source "$(dirname "$0")/../faults/rig.sh" "$1"
N=3000 RING=512

"$DEMO/netns.sh" up "$P" || fail "cannot create namespaces"
# The rig's ports with the PMD's default ring instead (later keys override earlier ones).
start_lockstepd --set "ports.ext=net_af_packet0,iface=$P-ext,framecnt=$RING" \
  --set "ports.pvm=net_af_packet1,iface=$P-pvm,framecnt=$RING" \
  --set "ports.svm=net_af_packet2,iface=$P-svm,framecnt=$RING"

kill -STOP $LSD
# N distinct UDP datagrams from the client's MAC to the VM's, straight onto the wire.
ip netns exec "$P-client" $PY - "$P-ext-c" $N <<'PYEOF' || fail "cannot send raw frames"
import socket, struct, sys
dev, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
vm, client = bytes.fromhex("020000000002"), bytes.fromhex("020000000001")
for i in range(n):
    payload = struct.pack("!I", i) + b"x" * 60
    udp = struct.pack("!HHHH", 40000, 9, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xffff, 0, 64, 17, 0,
                     bytes([10, 9, 0, 1]), bytes([10, 9, 0, 2]))
    c = sum(struct.unpack("!10H", ip))
    c = (c & 0xffff) + (c >> 16)
    c = (c & 0xffff) + (c >> 16)
    ip = ip[:10] + struct.pack("!H", ~c & 0xffff) + ip[12:]
    s.send(vm + client + b"\x08\x00" + ip + udp)
PYEOF
sleep 0.3
kill -CONT $LSD
sleep 1
stop_lockstepd
rx=$(stat_of "s['ports']['ext']['rx']")
missed=$(stat_of "s['ports']['ext']['dev_imissed']")
echo "sent $N frames to a stopped lockstepd (ring of $RING): ext rx $rx, dev_imissed $missed"
[ "$missed" -ge $(( N - RING - 64 )) ] || fail "the ring's drops were not counted"
[ $(( rx + missed )) -ge $N ] || fail "frames neither received nor counted as dropped"
[ $(( rx + missed )) -le $(( N + 16 )) ] || fail "more frames counted than were sent"
echo "PASS"
