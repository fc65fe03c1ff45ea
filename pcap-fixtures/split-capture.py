#!/usr/bin/python3
"""Splits the two server-side captures of capture-real.sh into a replay case:

  split-capture.py --server IP [--require-equal-streams] PVM_CAP SVM_CAP OUT_DIR

primary.pcap = PVM_CAP frames sent by IP, secondary.pcap = SVM_CAP frames sent by IP,
ingress.pcap = PVM_CAP frames sent to IP. Frames are copied unchanged with their
timestamps. With --require-equal-streams, exits 1 (writing nothing) unless, for every
TCP connection, the server's payload bytes (reassembled by sequence number) and its
FIN/RST are the same in both captures - i.e. a capture where nothing time-dependent
(nginx's Date header) differs.
"""
import argparse
import ipaddress
import os
import struct
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen.pcapio import pcap_bytes, read_pcap  # noqa: E402


def ip_tcp(fr):
    """(src, dst, sport, dport, seq, flags, payload) of an untagged IPv4 TCP frame."""
    if len(fr) < 34 or struct.unpack_from("!H", fr, 12)[0] != 0x0800:
        return None
    ihl = (fr[14] & 15) * 4
    tl = struct.unpack_from("!H", fr, 16)[0]
    if fr[23] != 6:
        return None
    src, dst = str(ipaddress.ip_address(fr[26:30])), str(ipaddress.ip_address(fr[30:34]))
    l4 = 14 + ihl
    sp, dp, seq = struct.unpack_from("!HHI", fr, l4)
    hl = (fr[l4 + 12] >> 4) * 4
    return src, dst, sp, dp, seq, fr[l4 + 13], fr[l4 + hl:14 + tl]


def streams(recs, server):
    """client port -> (payload bytes, close flags) of what the server sent."""
    isn, data, close = {}, {}, {}
    for _, fr in recs:
        p = ip_tcp(fr)
        if not p or p[0] != server:
            continue
        _, _, _, port, seq, flags, payload = p
        if flags & 0x02:
            isn[port] = seq
            continue
        if port not in isn:
            continue
        off = (seq - isn[port] - 1) & 0xFFFFFFFF
        buf = data.setdefault(port, bytearray())
        if off + len(payload) > len(buf):
            buf.extend(b"\0" * (off + len(payload) - len(buf)))
        buf[off:off + len(payload)] = payload
        if flags & 0x05:
            close[port] = flags & 0x05
    return {p: (bytes(data.get(p, b"")), close.get(p)) for p in isn}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--require-equal-streams", action="store_true")
    ap.add_argument("pvm")
    ap.add_argument("svm")
    ap.add_argument("out")
    a = ap.parse_args()
    _, pvm = read_pcap(a.pvm)
    _, svm = read_pcap(a.svm)
    if a.require_equal_streams:
        sp, ss = streams(pvm, a.server), streams(svm, a.server)
        if not sp or sp != ss:
            for port in sorted(set(sp) | set(ss)):
                x, y = sp.get(port), ss.get(port)
                if x != y:
                    print(f"split-capture.py: connection from port {port} differs "
                          f"({len(x[0]) if x else '-'} vs {len(y[0]) if y else '-'} bytes)")
            return 1
    sent = lambda recs: [(t, fr) for t, fr in recs if (ip_tcp(fr) or ("",))[0] == a.server]
    recv = lambda recs: [(t, fr) for t, fr in recs if (ip_tcp(fr) or ("", ""))[1] == a.server]
    os.makedirs(a.out, exist_ok=True)
    for name, recs in (("primary.pcap", sent(pvm)), ("secondary.pcap", sent(svm)),
                       ("ingress.pcap", recv(pvm))):
        with open(os.path.join(a.out, name), "wb") as f:
            f.write(pcap_bytes(recs))
        print(f"split-capture.py: {name}: {len(recs)} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
