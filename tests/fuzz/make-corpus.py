#!/usr/bin/python3
"""Writes the fuzz seed corpus: tests/fuzz/corpus/parse/*.bin (single frames),
tests/fuzz/corpus/engine/*.bin (scripts in fuzz_engine's record format) and
tests/fuzz/corpus/chardev/*.bin (chardev byte streams: a flag byte, then frames).

Byte-for-byte reproducible: every field scapy would pick by itself (MAC addresses, IP
IDs, ports) is given explicitly. Needs Debian's python3-scapy. Usage:
    tests/fuzz/make-corpus.py            # rewrites both corpus directories
"""
import os
import struct
import sys

from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import (ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NS,
                                IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop, IPv6ExtHdrRouting)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
C4, S4 = "192.0.2.10", "198.51.100.20"
C6, S6 = "2001:db8::10", "2001:db8::20"


def eth(vlans=()):
    e = Ether(src=CLIENT_MAC, dst=SERVER_MAC)
    for i, vid in enumerate(vlans):
        e = e / (Dot1AD(vlan=vid) if i == 0 and len(vlans) == 2 else Dot1Q(vlan=vid))
    return e


def tcp4(sport, dport, seq, ack, flags, payload=b"", options=(), ip_id=1, vlans=(),
         src=C4, dst=S4):
    p = eth(vlans) / IP(src=src, dst=dst, id=ip_id) / TCP(
        sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=65535,
        options=list(options))
    return bytes(p / Raw(payload)) if payload else bytes(p)


def tcp6(sport, dport, seq, ack, flags, payload=b"", options=(), src=C6, dst=S6):
    p = eth() / IPv6(src=src, dst=dst) / TCP(sport=sport, dport=dport, seq=seq, ack=ack,
                                             flags=flags, window=65535,
                                             options=list(options))
    return bytes(p / Raw(payload)) if payload else bytes(p)


SYN_OPTS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (100, 0)), ("NOP", None),
            ("WScale", 7)]


def parse_seeds():
    s = {}
    s["tcp4-syn"] = tcp4(40000, 80, 1000, 0, "S", options=SYN_OPTS)
    s["tcp4-data"] = tcp4(80, 40000, 500001, 1001, "PA", b"HTTP/1.1 200 OK\r\n\r\n")
    s["tcp4-ack-sack-ts"] = tcp4(40000, 80, 1001, 500100, "A", options=[
        ("NOP", None), ("NOP", None), ("Timestamp", (123, 456)), ("NOP", None),
        ("NOP", None), ("SAck", (500200, 500300, 500400, 500500))])
    s["tcp4-rst"] = tcp4(80, 40000, 500001, 0, "R")
    s["tcp4-fin"] = tcp4(80, 40000, 500001, 1001, "FA")
    s["tcp4-ipopts"] = bytes(eth() / IP(src=C4, dst=S4, id=2, options=b"\x94\x04\x00\x00") /
                             TCP(sport=1, dport=2, seq=3, ack=4, flags="A", window=5))
    s["tcp4-padded"] = tcp4(40000, 80, 1001, 500001, "A") + b"\x00" * 6
    s["tcp6-syn"] = tcp6(40000, 443, 77, 0, "S", options=SYN_OPTS)
    s["tcp6-data"] = tcp6(443, 40000, 9000, 78, "PA", b"x" * 40)
    s["udp4-dns"] = bytes(eth() / IP(src=C4, dst=S4, id=3) / UDP(sport=5353, dport=53) /
                          Raw(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"))
    s["udp6"] = bytes(eth() / IPv6(src=C6, dst=S6) / UDP(sport=1000, dport=2000) / Raw(b"abc"))
    s["icmp4-echo"] = bytes(eth() / IP(src=C4, dst=S4, id=4) / ICMP(type=8, id=0x42, seq=1) /
                            Raw(b"ping" * 8))
    s["icmp4-reply"] = bytes(eth() / IP(src=S4, dst=C4, id=5) / ICMP(type=0, id=0x42, seq=1) /
                             Raw(b"ping" * 8))
    s["icmp4-unreach"] = bytes(eth() / IP(src=S4, dst=C4, id=6) / ICMP(type=3, code=3) /
                               Raw(b"\x45" + b"\x00" * 27))
    s["icmp6-echo"] = bytes(eth() / IPv6(src=C6, dst=S6) / ICMPv6EchoRequest(id=7, seq=1) /
                            Raw(b"hello"))
    s["icmp6-reply"] = bytes(eth() / IPv6(src=S6, dst=C6) / ICMPv6EchoReply(id=7, seq=1) /
                             Raw(b"hello"))
    s["icmp6-ns"] = bytes(eth() / IPv6(src=C6, dst="ff02::1:ff00:20", hlim=255) /
                          ICMPv6ND_NS(tgt=S6))
    s["vlan-tcp4"] = tcp4(40000, 80, 1, 2, "A", b"v", vlans=(5,))
    s["qinq-tcp4"] = tcp4(40000, 80, 1, 2, "A", b"q", vlans=(100, 200))
    s["vlan3-nonip"] = bytes(eth((1, 2)) / Dot1Q(vlan=3) / IP(src=C4, dst=S4, id=7) /
                             UDP(sport=1, dport=2))
    s["arp"] = bytes(eth() / ARP(hwsrc=CLIENT_MAC, psrc=C4, hwdst="00:00:00:00:00:00",
                                 pdst=S4)) + b"\x00" * 18
    s["ipv6-ext-chain"] = bytes(
        eth() / IPv6(src=C6, dst=S6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() /
        IPv6ExtHdrDestOpt() / UDP(sport=7, dport=8) / Raw(b"ext"))
    s["ipv6-frag-first"] = bytes(
        eth() / IPv6(src=C6, dst=S6) / IPv6ExtHdrFragment(id=0x1234, m=1, offset=0, nh=6) /
        TCP(sport=1, dport=2, seq=3, ack=0, flags="S", window=1) / Raw(b"f" * 16))
    s["ipv6-frag-later"] = bytes(
        eth() / IPv6(src=C6, dst=S6) / IPv6ExtHdrFragment(id=0x1234, m=0, offset=5, nh=6) /
        Raw(b"g" * 24))
    big = eth() / IP(src=C4, dst=S4, id=0x99) / UDP(sport=4000, dport=4001) / Raw(b"z" * 1200)
    for i, f in enumerate(fragment(big[IP], fragsize=512)):
        s["ipv4-frag-%d" % i] = bytes(eth() / f)
    s["gre4"] = bytes(eth() / IP(src=C4, dst=S4, id=8, proto=47) / Raw(b"\x00\x00\x08\x00"))
    s["truncated-tcp4"] = tcp4(40000, 80, 1, 2, "A", b"abcdef")[:40]
    return s


# ---- engine scripts ----

PVM, SVM, INGRESS, MIRROR, MIRROR_SVM_FIRST, ADVANCE, CKPT_DONE, CKPT_REQ, MODE = range(9)
FAILOVER, SETTINGS = 9, 10


def rec(op, frame=b"", dt=1, arg=0):
    return struct.pack(">BHH", (arg << 4) | op, len(frame), dt) + frame


class Conv:
    """One TCP connection: client <-> server with PVM and SVM ISNs differing."""

    def __init__(self, v6=False, vlans=(), timestamps=False):
        self.v6, self.vlans, self.ts = v6, vlans, timestamps
        self.cisn, self.isn = 1000, {"pvm": 500000, "svm": 900000}
        self.cport, self.sport = 40000, 80

    def _seg(self, src_is_client, seq, ack, flags, payload=b"", opts=()):
        sp, dp = (self.cport, self.sport) if src_is_client else (self.sport, self.cport)
        if self.v6:
            src, dst = (C6, S6) if src_is_client else (S6, C6)
            return tcp6(sp, dp, seq, ack, flags, payload, opts, src=src, dst=dst)
        src, dst = (C4, S4) if src_is_client else (S4, C4)
        return tcp4(sp, dp, seq, ack, flags, payload, opts, vlans=self.vlans, src=src, dst=dst)

    def client(self, off, ack_off, flags="A", payload=b""):
        ack = self.isn["pvm"] + 1 + ack_off if "A" in flags else 0
        opts = [("Timestamp", (100 + off, 7000))] if self.ts else []
        return self._seg(True, self.cisn + 1 + off if flags != "S" else self.cisn, ack,
                         flags, payload, opts)

    def vm(self, vm, off, ack_off, flags="A", payload=b""):
        seq = self.isn[vm] + 1 + off if "S" not in flags else self.isn[vm]
        opts = [("Timestamp", ({"pvm": 7000, "svm": 3000000}[vm] + off, 100))] if self.ts else []
        return self._seg(False, seq, self.cisn + 1 + ack_off, flags, payload, opts)


def handshake(c):
    out = rec(INGRESS, c.client(0, 0, "S"))
    out += rec(PVM, c.vm("pvm", 0, 0, "SA"))
    out += rec(SVM, c.vm("svm", 0, 0, "SA"), dt=30)
    out += rec(INGRESS, c.client(0, 0, "A"))
    return out


def engine_seeds():
    cfg = b"\x00\x00"
    s = {}
    c = Conv()
    body = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    s["tcp-match"] = cfg + handshake(c) + rec(INGRESS, c.client(0, 0, "PA", body)) + \
        rec(PVM, c.vm("pvm", 0, len(body), "PA", reply)) + \
        rec(SVM, c.vm("svm", 0, len(body), "PA", reply), dt=50) + \
        rec(INGRESS, c.client(len(body), len(reply))) + \
        rec(PVM, c.vm("pvm", len(reply), len(body), "FA")) + \
        rec(SVM, c.vm("svm", len(reply), len(body), "FA")) + \
        rec(INGRESS, c.client(len(body), len(reply) + 1, "FA")) + rec(ADVANCE, dt=40000)
    s["tcp-mismatch"] = cfg + handshake(c) + rec(PVM, c.vm("pvm", 0, 0, "PA", b"hello")) + \
        rec(SVM, c.vm("svm", 0, 0, "PA", b"hellx")) + rec(CKPT_DONE, dt=100) + \
        rec(PVM, c.vm("pvm", 5, 0, "PA", b"more")) + rec(ADVANCE, dt=20000)
    s["tcp-svm-lags"] = cfg + handshake(c) + rec(PVM, c.vm("pvm", 0, 0, "PA", b"a" * 100)) + \
        rec(PVM, c.vm("pvm", 100, 0, "PA", b"b" * 100)) + rec(ADVANCE, dt=5000) + \
        rec(SVM, c.vm("svm", 0, 0, "PA", b"a" * 60)) + \
        rec(SVM, c.vm("svm", 60, 0, "PA", b"a" * 40 + b"b" * 100)) + rec(ADVANCE, dt=20000)
    s["tcp-reorder"] = cfg + handshake(c) + rec(PVM, c.vm("pvm", 10, 0, "PA", b"y" * 10)) + \
        rec(PVM, c.vm("pvm", 0, 0, "PA", b"x" * 10)) + \
        rec(SVM, c.vm("svm", 0, 0, "PA", b"x" * 10)) + \
        rec(SVM, c.vm("svm", 10, 0, "PA", b"y" * 10)) + \
        rec(PVM, c.vm("pvm", 0, 0, "PA", b"x" * 10))  # retransmission
    s["tcp-timeout"] = cfg + handshake(c) + rec(PVM, c.vm("pvm", 0, 0, "PA", b"late")) + \
        rec(ADVANCE, dt=20000) + rec(CKPT_DONE) + rec(SVM, c.vm("svm", 0, 0, "PA", b"late"))
    s["tcp-rst"] = cfg + handshake(c) + rec(PVM, c.vm("pvm", 0, 0, "R")) + \
        rec(SVM, c.vm("svm", 0, 0, "R"))
    pvm_seq = c.isn["pvm"] + 1
    s["tcp-client-sack"] = cfg + handshake(c) + rec(PVM, c.vm("pvm", 0, 0, "PA", b"1" * 10)) + \
        rec(PVM, c.vm("pvm", 10, 0, "PA", b"2" * 10)) + \
        rec(SVM, c.vm("svm", 10, 0, "PA", b"2" * 10)) + \
        rec(INGRESS, c._seg(True, c.cisn + 1, pvm_seq, "A", b"",
                            [("SAck", (pvm_seq + 10, pvm_seq + 20))])) + \
        rec(SVM, c.vm("svm", 0, 0, "PA", b"1" * 10))
    ct = Conv(timestamps=True)
    s["tcp-timestamps"] = cfg + handshake(ct) + rec(PVM, ct.vm("pvm", 0, 0, "PA", b"t" * 8)) + \
        rec(SVM, ct.vm("svm", 0, 0, "PA", b"t" * 8)) + rec(INGRESS, ct.client(0, 8))
    c6 = Conv(v6=True)
    s["tcp6-match"] = cfg + handshake(c6) + rec(PVM, c6.vm("pvm", 0, 0, "PA", reply)) + \
        rec(SVM, c6.vm("svm", 0, 0, "PA", reply))
    cv = Conv(vlans=(7,))
    s["tcp-vlan"] = cfg + handshake(cv) + rec(PVM, cv.vm("pvm", 0, 0, "PA", b"v")) + \
        rec(SVM, cv.vm("svm", 0, 0, "PA", b"v"))
    s["active-open"] = cfg + rec(PVM, c.vm("pvm", 0, 0, "S")) + rec(SVM, c.vm("svm", 0, 0, "S")) + \
        rec(INGRESS, c.client(0, 0, "SA")) + rec(PVM, c.vm("pvm", 0, 0, "A")) + \
        rec(SVM, c.vm("svm", 0, 0, "A"))
    p = parse_seeds()
    s["udp-match"] = cfg + rec(MIRROR, p["udp4-dns"]) + rec(MIRROR_SVM_FIRST, p["udp6"])
    s["udp-mismatch"] = cfg + rec(PVM, p["udp4-dns"]) + rec(SVM, p["udp4-dns"][:-1] + b"\x01") + \
        rec(ADVANCE, dt=20000) + rec(CKPT_DONE)
    s["icmp-echo"] = cfg + rec(INGRESS, p["icmp4-echo"]) + rec(MIRROR, p["icmp4-reply"]) + \
        rec(INGRESS, p["icmp6-echo"]) + rec(MIRROR, p["icmp6-reply"]) + rec(MIRROR, p["icmp6-ns"])
    s["fragments"] = cfg + b"".join(rec(MIRROR, p["ipv4-frag-%d" % i]) for i in range(3)) + \
        rec(PVM, p["ipv6-frag-first"]) + rec(ADVANCE, dt=30000)
    s["frag-reversed"] = cfg + b"".join(rec(PVM, p["ipv4-frag-%d" % i]) for i in (2, 1, 0)) + \
        b"".join(rec(SVM, p["ipv4-frag-%d" % i]) for i in (0, 1, 2))
    s["non-ip"] = cfg + rec(MIRROR, p["arp"]) + rec(INGRESS, p["arp"]) + rec(PVM, p["vlan3-nonip"])
    s["non-ip-compare"] = b"\x08\x00" + rec(PVM, p["arp"]) + rec(SVM, p["arp"]) + \
        rec(PVM, p["arp"])
    s["malformed"] = cfg + rec(PVM, p["truncated-tcp4"]) + rec(SVM, b"\x00" * 10) + \
        rec(INGRESS, b"")
    s["malformed-pass"] = b"\x04\x00" + rec(PVM, p["truncated-tcp4"]) + rec(SVM, b"\x01")
    s["buffer-mode"] = b"\x02\x00" + handshake(c) + rec(PVM, c.vm("pvm", 0, 0, "PA", b"b")) + \
        rec(ADVANCE, dt=3000) + rec(CKPT_DONE)
    s["passthrough"] = b"\x03\x00" + handshake(c) + rec(MIRROR, c.vm("pvm", 0, 0, "PA", b"p"))
    s["mode-switch"] = cfg + handshake(c) + rec(PVM, c.vm("pvm", 0, 0, "PA", b"m")) + \
        rec(MODE, arg=1) + rec(PVM, c.vm("pvm", 1, 0, "PA", b"n")) + rec(MODE, arg=0) + \
        rec(CKPT_REQ) + rec(CKPT_DONE) + rec(MODE, arg=2)
    s["failover-secondary"] = cfg + handshake(c) + rec(PVM, c.vm("pvm", 0, 0, "PA", b"f")) + \
        rec(FAILOVER, arg=1) + rec(SVM, c.vm("svm", 0, 0, "PA", b"f")) + \
        rec(INGRESS, c.client(0, 1))
    s["failover-primary"] = cfg + handshake(c) + rec(SVM, c.vm("svm", 0, 0, "PA", b"g")) + \
        rec(FAILOVER, arg=0) + rec(PVM, c.vm("pvm", 0, 0, "PA", b"g")) + \
        rec(INGRESS, c.client(0, 1))
    s["policy-live"] = b"\x00\x04" + rec(MIRROR, p["udp4-dns"]) + rec(SETTINGS, arg=3) + \
        rec(MIRROR, p["udp4-dns"]) + rec(SETTINGS, arg=8) + rec(PVM, p["tcp4-data"])
    s["hybrid"] = b"\x20\x00" + b"".join(
        rec(PVM, p["udp4-dns"]) + rec(SVM, p["udp6"]) + rec(ADVANCE, dt=20000) + rec(CKPT_DONE)
        for _ in range(4))
    many = Conv()
    flood = cfg
    for i in range(40):
        many.cport = 41000 + i
        flood += rec(INGRESS, many.client(0, 0, "S"))
    s["table-full"] = flood + rec(CKPT_DONE)
    return s


def chardev_stream(frames, vnet=False, vnet_len=0):
    """fuzz_chardev's input: flag byte (bit 0: vnet_hdr_support), then framed frames."""
    out = bytes([1 if vnet else 0])
    for f in frames:
        body = bytes(vnet_len) + f if vnet else f
        out += struct.pack(">I", len(body))
        if vnet:
            out += struct.pack(">I", vnet_len)
        out += body
    return out


def chardev_seeds():
    # A connection the client opened: the PVM's SYN/ACK, then the SVM's with its own ISN
    # (the aligner's case), then data from both; the fuzzer alternates PVM and SVM.
    pvm_sa = tcp4(80, 40000, 700000, 1001, "SA", options=SYN_OPTS)
    svm_sa = tcp4(80, 40000, 900000, 1001, "SA", options=SYN_OPTS)
    data = tcp4(80, 40000, 700001, 1001, "PA", b"HTTP/1.1 200 OK\r\n\r\n")
    s = {}
    s["synack-pair"] = chardev_stream([pvm_sa, svm_sa, data, data])
    s["synack-pair-vnet"] = chardev_stream([pvm_sa, svm_sa, data, data], vnet=True, vnet_len=10)
    s["svm-first"] = chardev_stream([tcp4(1, 2, 3, 4, "A"), svm_sa, pvm_sa, svm_sa])
    s["v6"] = chardev_stream([tcp6(80, 40000, 5, 1001, "SA"), tcp6(80, 40000, 9, 1001, "SA")])
    s["empty-frames"] = bytes([0]) + bytes(8) + chardev_stream([data])[1:]
    s["oversize"] = bytes([0]) + struct.pack(">I", 4096 + 65536 + 1) + b"x" * 16
    s["bad-vnet-len"] = bytes([1]) + struct.pack(">II", 10, 11) + bytes(10)
    s["truncated"] = chardev_stream([data])[:-7]
    return s


def write(dirname, seeds):
    path = os.path.join(HERE, "corpus", dirname)
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".bin") and not name.startswith("regress-"):
            os.remove(os.path.join(path, name))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(path, name + ".bin"), "wb") as f:
            f.write(data)
    return len(seeds)


def main():
    n = write("parse", parse_seeds())
    m = write("engine", engine_seeds())
    k = write("chardev", chardev_seeds())
    print("wrote %d parse seeds, %d engine seeds, %d chardev seeds" % (n, m, k))
    return 0


if __name__ == "__main__":
    sys.exit(main())
