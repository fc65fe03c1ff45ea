"""Non-IP frames (ARP, LLDP), neighbour discovery, and frames that do not parse."""
import struct

from . import frames as F
from .dgram import Dgram
from .expect import all_released, checkpoints, counters, frame_delay, settings
from .model import T0, Case, case

START = T0 + 3_000_000
VM_MAC, CLI_MAC, BCAST = "52:54:00:12:34:56", "02:00:00:00:00:01", "ff:ff:ff:ff:ff:ff"


def l2_frames():
    """ARP request, gratuitous ARP, ARP reply and an LLDP frame as a VM sends them."""
    req = F.eth(BCAST, VM_MAC, F.ETH_ARP, F.arp(1, VM_MAC, "10.0.0.10", "00:00:00:00:00:00", "10.0.0.1"))
    grat = F.eth(BCAST, VM_MAC, F.ETH_ARP, F.arp(1, VM_MAC, "10.0.0.10", "00:00:00:00:00:00", "10.0.0.10"))
    rep = F.eth(CLI_MAC, VM_MAC, F.ETH_ARP, F.arp(2, VM_MAC, "10.0.0.10", CLI_MAC, "10.0.0.2"))
    tlv = lambda t, v: struct.pack("!H", (t << 9) | len(v)) + v
    lldp = F.eth("01:80:c2:00:00:0e", VM_MAC, F.ETH_LLDP,
                 tlv(1, b"\x04" + F.mac(VM_MAC)) + tlv(2, b"\x05eth0") + tlv(3, b"\x00\x78") + tlv(0, b""))
    return [req, grat, rep, lldp]


def l2_case(name, title, story, policy=None, lag=50):
    k = Case(name, title, story)
    if policy:
        settings(k, non_ip_policy=policy)
    ip = []
    for n, fr in enumerate(l2_frames()):
        ip.append(k.pvm(START + 1000 * n, fr))
        k.svm(START + 1000 * n + lag, fr)
    k.has_ingress = False
    return k, ip


@case
def arp_pass():
    k, ip = l2_case("arp_pass", "ARP and LLDP from the VM: released at once",
                    "The VM sends an ARP request, a gratuitous ARP, an ARP reply and an LLDP "
                    "frame; the SVM sends the same 50 µs later. non_ip_policy is pass "
                    "(default): the PVM's frames are released on arrival, the SVM's freed. "
                    "No checkpoint.")
    checkpoints(k, 0)
    all_released(k, max_delay=0)
    counters(k, released__non_ip_pass=4)
    return k


@case
def arp_compare():
    k, ip = l2_case("arp_compare", "non_ip_policy=compare: whole frames matched FIFO",
                    "As arp_pass with non_ip_policy compare: each PVM frame waits for the "
                    "SVM's equal frame (50 µs). No checkpoint.", policy="compare")
    checkpoints(k, 0)
    all_released(k, max_delay=50, min_delay=50)
    return k


@case
def arp_drop():
    k, ip = l2_case("arp_drop", "non_ip_policy=drop: counted drops",
                    "As arp_pass with non_ip_policy drop: nothing is released; each PVM frame "
                    "is dropped with reason non_ip. No checkpoint.", policy="drop")
    checkpoints(k, 0)
    k.expect["released"] = []
    counters(k, pvm_dropped__non_ip=4)
    return k


def nd_frames():
    vm6, ll = "2001:db8::10", "fe80::5054:ff:fe12:3456"
    ns = F.eth("33:33:ff:00:00:02", VM_MAC, F.ETH_IPV6,
               F.ipv6(ll, "ff02::1:ff00:2", F.PROTO_ICMPV6,
                      F.nd_ns(ll, "ff02::1:ff00:2", "2001:db8::2", VM_MAC), hlim=255))
    na = F.eth(CLI_MAC, VM_MAC, F.ETH_IPV6,
               F.ipv6(vm6, "2001:db8::2", F.PROTO_ICMPV6,
                      F.nd_na(vm6, "2001:db8::2", vm6, VM_MAC), hlim=255))
    rs_body = b"\0\0\0\0" + b"\x01\x01" + F.mac(VM_MAC)
    rs = F.eth("33:33:00:00:00:02", VM_MAC, F.ETH_IPV6,
               F.ipv6(ll, "ff02::2", F.PROTO_ICMPV6, F.icmpv6(ll, "ff02::2", 133, 0, rs_body), hlim=255))
    return [ns, na, rs]


@case
def nd_pass():
    k = Case("nd_pass", "IPv6 neighbour discovery released at once, data compared",
             "The VM sends a neighbour solicitation, a neighbour advertisement and a router "
             "solicitation (ICMPv6 133/135/136), then answers an IPv6 UDP query. nd_policy "
             "pass (default): ND frames are released on arrival; the UDP answer is compared "
             "(released when the SVM's arrives, 80 µs). No checkpoint.")
    nd = []
    for n, fr in enumerate(nd_frames()):
        nd.append(k.pvm(START + 1000 * n, fr))
        k.svm(START + 1000 * n + 80, fr)
    d = Dgram(k, vm_ip="2001:db8::10", cli_ip="2001:db8::2", vm_port=53, cli_port=35400)
    d.exchange(START + 5000, b"query-v6", b"answer-v6", svm_lag_us=80)
    checkpoints(k, 0)
    all_released(k, max_delay=80)
    for i in nd:
        frame_delay(k, i, 0)
    return k


@case
def nd_compare():
    k = Case("nd_compare", "nd_policy=compare: ND frames matched",
             "As nd_pass with nd_policy compare: each ND frame waits for the SVM's equal one "
             "(80 µs). No checkpoint.")
    settings(k, nd_policy="compare")
    for n, fr in enumerate(nd_frames()):
        k.pvm(START + 1000 * n, fr)
        k.svm(START + 1000 * n + 80, fr)
    k.has_ingress = False
    checkpoints(k, 0)
    all_released(k, max_delay=80, min_delay=80)
    return k


def malformed_frames():
    """(parse status the engine should count, frame). Unpadded, as a capture may hold."""
    e = lambda et, body: F.eth(CLI_MAC, VM_MAC, et, body, pad=False)
    good_udp = F.udp("10.0.0.10", "10.0.0.2", 53, 35500, b"x" * 20)
    tcp_hdr = F.tcp("10.0.0.10", "10.0.0.2", 80, 40000, 1000, 2000, F.ACK, b"data")
    out = [
        ("truncated_l2", F.mac(CLI_MAC) + F.mac(VM_MAC)[:4]),
        ("truncated_l3", e(F.ETH_IPV4, F.ipv4("10.0.0.10", "10.0.0.2", 17, good_udp)[:12])),
        ("bad_ip_version", e(F.ETH_IPV4, F.ipv6("2001:db8::10", "2001:db8::2", 17, good_udp))),
        ("bad_ip_header_len", e(F.ETH_IPV4, F.ipv4("10.0.0.10", "10.0.0.2", 17, good_udp, ihl=3))),
        ("bad_ip_total_len", e(F.ETH_IPV4, F.ipv4("10.0.0.10", "10.0.0.2", 17, good_udp, total_len=2000))),
        ("bad_ip_ext_header", e(F.ETH_IPV6, F.ipv6("2001:db8::10", "2001:db8::2", 0,
                                                   b"\x11\x09" + b"\0" * 6 + good_udp))),
        ("truncated_l4", e(F.ETH_IPV4, F.ipv4("10.0.0.10", "10.0.0.2", 6, tcp_hdr[:10]))),
        ("bad_tcp_offset", e(F.ETH_IPV4, F.ipv4("10.0.0.10", "10.0.0.2", 6,
                                                F.tcp("10.0.0.10", "10.0.0.2", 80, 40000, 1, 2,
                                                      F.ACK, b"abc", data_off=15)))),
        ("bad_tcp_option", e(F.ETH_IPV4, F.ipv4("10.0.0.10", "10.0.0.2", 6,
                                                F.tcp("10.0.0.10", "10.0.0.2", 80, 40000, 1, 2,
                                                      F.ACK, b"abc", options=b"\x08\x00\x00\x00")))),
        ("bad_udp_len", e(F.ETH_IPV4, F.ipv4("10.0.0.10", "10.0.0.2", 17,
                                             F.udp("10.0.0.10", "10.0.0.2", 53, 35500, b"y" * 20,
                                                   length=500)))),
    ]
    return out


def malformed_case(name, title, story, policy=None):
    k = Case(name, title, story)
    if policy:
        settings(k, malformed_policy=policy)
    d = Dgram(k, vm_port=5301, cli_port=35501)
    good, bad = [], []
    t = START
    for n, (status, fr) in enumerate(malformed_frames()):
        good.append(d.exchange(t, b"q%d" % n, b"answer %d" % n))
        bad.append(k.pvm(t + 300, fr))
        k.svm(t + 310, fr)
        t += 1000
    k.expect["malformed_statuses"] = [s for s, _ in malformed_frames()]
    return k, good, bad


@case
def malformed():
    k, good, bad = malformed_case(
        "malformed", "ten kinds of unparsable frames: counted, dropped, never a crash",
        "Between good DNS answers, both VMs emit ten malformed frames, one per parse "
        "status: a 10-byte runt, an IPv4 header cut short, an IPv6 header under the IPv4 "
        "ethertype, IHL 3, a total length past the frame, a broken IPv6 extension header, "
        "a TCP header cut short, a TCP data offset past the segment, a TCP option of "
        "length 0, a UDP length past the datagram. malformed_policy drop (default): each "
        "is counted under its parse status and dropped (reason malformed); the good "
        "answers are compared and released. No checkpoint.")
    checkpoints(k, 0)
    k.expect["released"] = good
    k.expect["release_delay_us"] = {"max": 70}
    counters(k, pvm_dropped__malformed=10)
    for s in k.expect["malformed_statuses"]:
        counters(k, **{"parse_pvm__" + s: {"min": 1}})
    return k


@case
def malformed_pass():
    k, good, bad = malformed_case(
        "malformed_pass", "malformed_policy=pass: unparsable PVM frames released uncompared",
        "As malformed with malformed_policy pass: the ten malformed PVM frames are released "
        "at once (counted as malformed_pass), the good answers compared. No checkpoint.",
        policy="pass")
    checkpoints(k, 0)
    all_released(k, max_delay=70)
    for i in bad:
        frame_delay(k, i, 0)
    counters(k, released__malformed_pass=10)
    return k
