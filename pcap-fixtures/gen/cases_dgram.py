"""Datagram cases: UDP identical, lagging, reordered, mismatched; policies; ICMP; IPv6;
VLAN; fragments."""
from . import frames as F
from .dgram import Dgram
from .expect import (DEADLINE_SLACK_US, LATENCY_US, TIMEOUT_US, all_released, checkpoints,
                     counters, frame_delay, request_at, settings)
from .model import T0, Case, blob, case

START = T0 + 2_000_000


def dns_query(i):
    return b"\x12" + bytes([i & 0xFF]) + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + \
        b"\x07example\x03com\x00\x00\x01\x00\x01"


def dns_answer(i):
    return b"\x12" + bytes([i & 0xFF]) + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + \
        b"\x07example\x03com\x00\x00\x01\x00\x01" + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04" + \
        bytes([93, 184, 216, i & 0xFF])


@case
def udp_identical():
    k = Case("udp_identical", "20 UDP request/response pairs, identical answers",
             "A DNS-like exchange: 20 client queries, the PVM answers 40 µs later and the "
             "SVM 70 µs after the PVM, with other IP IDs. Each PVM datagram is released when "
             "the SVM's equal datagram arrives (delay 70 µs). No checkpoint.")
    d = Dgram(k, vm_port=53, cli_port=35353)
    for i in range(20):
        d.exchange(START + 1000 * i, dns_query(i), dns_answer(i))
    checkpoints(k, 0)
    all_released(k, max_delay=70, min_delay=70)
    counters(k, datagrams_matched=20)
    return k


@case
def udp_lagging():
    k = Case("udp_lagging", "SVM answers 30 ms late, inside the window",
             "As udp_identical but the SVM's answers come 30 ms after the PVM's; the "
             "queries come every 5 ms, so several PVM datagrams are held at once. All are "
             "released in order, 30 ms after arrival. No checkpoint.")
    d = Dgram(k, vm_port=53, cli_port=35354)
    for i in range(20):
        d.exchange(START + 5000 * i, dns_query(i), dns_answer(i), svm_lag_us=30_000)
    checkpoints(k, 0)
    all_released(k, max_delay=30_000, min_delay=30_000)
    return k


@case
def udp_reordered():
    k = Case("udp_reordered", "SVM datagrams reordered within the slack",
             "A 10-datagram stream (a media-like flow, one datagram every 200 µs); the SVM "
             "swaps datagrams 2/3 and 6/7. Two unmatched datagrams on both sides are "
             "tolerated (datagram_reorder_slack 2): no checkpoint, and the PVM's datagrams "
             "are released in their arrival order.")
    d = Dgram(k, vm_port=5004, cli_port=40004)
    data = [b"\x80\x60" + bytes([0, i]) + blob(f"rtp{i}", 160) for i in range(10)]
    ip = [d.vm("p", START + 200 * i, data[i]) for i in range(10)]
    for n, i in enumerate([0, 1, 3, 2, 4, 5, 7, 6, 8, 9]):
        d.vm("s", START + 80 + 200 * n, data[i])
    checkpoints(k, 0)
    all_released(k, max_delay=300)
    k.has_ingress = False
    return k


@case
def udp_mismatch():
    k = Case("udp_mismatch", "one datagram differs, slack 0: immediate datagram_mismatch",
             "10 datagrams; the SVM's 5th differs in one byte. With datagram_reorder_slack "
             "0 the first unmatched pair is a mismatch: one request (datagram_mismatch) when "
             "the SVM's 5th arrives; the PVM's 5th is released at checkpoint done. The rest "
             "are matched (one exchange every 2 ms, so no SVM answer to a query the "
             "checkpoint already answered arrives after checkpoint done).")
    settings(k, datagram_reorder_slack=0)
    d = Dgram(k, vm_port=53, cli_port=35355)
    ip = []
    for i in range(10):
        a = dns_answer(i)
        b = a if i != 4 else a[:-1] + b"\x00"
        ip.append(d.exchange(START + 2000 * i, dns_query(i), a, svm_resp=b))
    checkpoints(k, 1, datagram_mismatch=1)
    request_at(k, ip[4], 70, 70)
    all_released(k)
    frame_delay(k, ip[4], 70 + LATENCY_US)
    return k


@case
def udp_mismatch_within_slack():
    k = Case("udp_mismatch_within_slack", "one datagram differs, default slack: deadline",
             "10 datagrams 1 ms apart; the SVM's 5th differs. With the default slack (2) one "
             "unmatched datagram on each side is tolerated as possible reordering, so no "
             "mismatch is declared; the PVM's 5th waits compare_timeout (the later ones wait "
             "behind it: datagrams leave in arrival order) and one deadline request follows. "
             "Everything is released in order.")
    d = Dgram(k, vm_port=53, cli_port=35356)
    ip = []
    for i in range(10):
        a = dns_answer(i)
        b = a if i != 4 else a[:-1] + b"\x00"
        ip.append(d.exchange(START + 1000 * i, dns_query(i), a, svm_resp=b))
    checkpoints(k, 1, deadline=1)
    request_at(k, ip[4], TIMEOUT_US, TIMEOUT_US + DEADLINE_SLACK_US)
    all_released(k)
    frame_delay(k, ip[4], TIMEOUT_US + LATENCY_US, TIMEOUT_US + LATENCY_US + DEADLINE_SLACK_US)
    return k


@case
def udp_mismatch_burst():
    k = Case("udp_mismatch_burst", "5 datagrams in a row differ: slack exceeded",
             "A 10-datagram stream, 20 µs apart; the SVM's datagrams 3-7 all differ. When "
             "the third differing pair arrives, 3 unmatched datagrams stand on each side, "
             "more than the slack of 2: one datagram_mismatch request. The whole stream "
             "lies within one epoch (the checkpoint takes 1 ms), so exactly one request.")
    d = Dgram(k, vm_port=9999, cli_port=40999)
    k.has_ingress = False
    ip = []
    for i in range(10):
        a = b"tick %03d " % i + blob(f"burst{i}", 40)
        b = a if not 3 <= i <= 7 else a.replace(b"tick", b"tock")
        ip.append(d.vm("p", START + 20 * i, a))
        d.vm("s", START + 20 * i + 10, b)
    checkpoints(k, 1, datagram_mismatch=1)
    request_at(k, ip[5], 10, 10)
    all_released(k)
    return k


@case
def udp_policy_pass():
    k = Case("udp_policy_pass", "policy udp:5353=pass: mDNS released uncompared",
             "policy_rules 'udp:5353=pass'. The VM multicasts mDNS announcements (224.0.0.251:"
             "5353) whose contents differ between PVM and SVM (host-specific), and answers "
             "DNS on port 53 as usual. The mDNS datagrams are released at once (delay 0), "
             "uncompared; DNS is compared. No checkpoint.")
    settings(k, policy_rules="udp:5353=pass")
    m = Dgram(k, vm_port=5353, cli_port=5353, cli_ip="224.0.0.251", cli_mac="01:00:5e:00:00:fb")
    d = Dgram(k, vm_port=53, cli_port=35357)
    passed = []
    for i in range(6):
        passed.append(m.vm("p", START + 2000 * i, b"\x00\x00\x84\x00" + blob(f"mdnsP{i}", 60)))
        m.vm("s", START + 2000 * i + 30, b"\x00\x00\x84\x00" + blob(f"mdnsS{i}", 70))
        d.exchange(START + 2000 * i + 500, dns_query(i), dns_answer(i))
    checkpoints(k, 0)
    all_released(k, max_delay=70)
    for p in passed:
        frame_delay(k, p, 0)
    counters(k, released__policy_pass=6)
    return k


@case
def udp_policy_drop():
    k = Case("udp_policy_drop", "policy udp:9000-9100@10.0.0.0/8=drop",
             "policy_rules 'udp:9000-9100@10.0.0.0/8=drop'. The VM (192.168.50.10) sends UDP "
             "port 9050 <-> 9050 to 10.1.2.3 (rule matches: PVM and SVM copies dropped, "
             "counted as policy_drop) and to 172.16.0.9 (no match: compared, released). No "
             "checkpoint.")
    settings(k, policy_rules="udp:9000-9100@10.0.0.0/8=drop")
    a = Dgram(k, vm_ip="192.168.50.10", cli_ip="10.1.2.3", vm_port=9050, cli_port=9050)
    b = Dgram(k, vm_ip="192.168.50.10", cli_ip="172.16.0.9", vm_port=9050, cli_port=9050)
    kept = []
    for i in range(5):
        a.vm("p", START + 1000 * i, b"stat %d" % i + blob(f"pd{i}", 30))
        a.vm("s", START + 1000 * i + 60, b"stat %d" % i + blob(f"pd{i}", 30))
        kept.append(b.vm("p", START + 1000 * i + 500, b"beat %d" % i))
        b.vm("s", START + 1000 * i + 560, b"beat %d" % i)
    k.has_ingress = False
    checkpoints(k, 0)
    k.expect["released"] = kept
    k.expect["release_delay_us"] = {"max": 60}
    counters(k, pvm_dropped__policy_drop=5)
    return k


@case
def udp_default_pass():
    k = Case("udp_default_pass", "default_policy=pass with a compare rule for DNS",
             "default_policy 'pass', policy_rules 'udp:53=compare'. A syslog stream (UDP 514, "
             "different on the two VMs) is released at once uncompared; DNS answers are "
             "compared. No checkpoint.")
    settings(k, default_policy="pass", policy_rules="udp:53=compare")
    s = Dgram(k, vm_port=40514, cli_port=514)
    d = Dgram(k, vm_port=53, cli_port=35358)
    passed = []
    for i in range(5):
        passed.append(s.vm("p", START + 1000 * i, b"<13>pvm log %d" % i))
        s.vm("s", START + 1000 * i + 30, b"<13>svm log line %d" % i)
        d.exchange(START + 1000 * i + 400, dns_query(i), dns_answer(i))
    checkpoints(k, 0)
    all_released(k, max_delay=70)
    for p in passed:
        frame_delay(k, p, 0)
    counters(k, released__policy_pass=5)
    return k


@case
def icmp_echo():
    k = Case("icmp_echo", "ICMP echo replies compared as datagrams",
             "The client pings the VM 5 times (two ping ids); both VMs answer with the same "
             "identifier, sequence and data but other IP IDs. Each PVM reply is released "
             "when the SVM's arrives (60 µs). No checkpoint.")
    pings = [Dgram(k, kind="icmp", ident=ident) for ident in (0x0101, 0x0202)]
    for i in range(5):
        for j, d in enumerate(pings):
            d.seq = {"p": i, "s": i, "c": i}
            data = blob(f"ping{j}/{i}", 56)
            d.exchange(START + 1000 * i + 500 * j, data, data, svm_lag_us=60)
    checkpoints(k, 0)
    all_released(k, order="per_flow", max_delay=60)
    return k


@case
def ipv6_udp():
    k = Case("ipv6_udp", "UDP over IPv6",
             "As udp_identical over IPv6 (2001:db8::10 <-> 2001:db8::2), with the SVM 150 µs "
             "behind. No checkpoint.")
    d = Dgram(k, vm_ip="2001:db8::10", cli_ip="2001:db8::2", vm_port=53, cli_port=35359)
    for i in range(10):
        d.exchange(START + 1000 * i, dns_query(i), dns_answer(i), svm_lag_us=150)
    checkpoints(k, 0)
    all_released(k, max_delay=150)
    return k


@case
def icmpv6_echo():
    k = Case("icmpv6_echo", "ICMPv6 echo replies compared as datagrams",
             "The client pings the VM over IPv6; both VMs reply identically. Echo is not "
             "neighbour discovery: it is compared. No checkpoint.")
    d = Dgram(k, vm_ip="2001:db8::10", cli_ip="2001:db8::2", kind="icmp6", ident=0x77)
    for i in range(5):
        d.seq = {"p": i, "s": i, "c": i}
        d.exchange(START + 1000 * i, blob(f"ping6{i}", 56), blob(f"ping6{i}", 56), svm_lag_us=60)
    checkpoints(k, 0)
    all_released(k, max_delay=60)
    return k


@case
def vlan_udp():
    k = Case("vlan_udp", "UDP on 802.1Q VLAN 100",
             "As udp_identical on VLAN 100 (every frame carries an 802.1Q tag). No "
             "checkpoint.")
    d = Dgram(k, vm_port=53, cli_port=35360, vlan=100)
    for i in range(10):
        d.exchange(START + 1000 * i, dns_query(i), dns_answer(i))
    checkpoints(k, 0)
    all_released(k, max_delay=70)
    return k


@case
def vlan_same_tuple():
    k = Case("vlan_same_tuple", "the same 5-tuple on two VLANs is two flows",
             "Two tenants on VLANs 100 and 200 use the same addresses and ports; their "
             "datagrams differ. The VLAN id is part of the flow key, so each VLAN's PVM "
             "stream matches its own SVM stream. No checkpoint.")
    a = Dgram(k, vm_port=7000, cli_port=7001, vlan=100)
    b = Dgram(k, vm_port=7000, cli_port=7001, vlan=200)
    for i in range(8):
        a.vm("p", START + 400 * i, b"tenant-A %d" % i)
        b.vm("p", START + 400 * i + 100, b"tenant-B %d" % i)
        a.vm("s", START + 400 * i + 150, b"tenant-A %d" % i)
        b.vm("s", START + 400 * i + 250, b"tenant-B %d" % i)
    k.has_ingress = False
    checkpoints(k, 0)
    all_released(k, order="per_flow", max_delay=150)
    return k


@case
def qinq_udp():
    k = Case("qinq_udp", "UDP with two VLAN tags (802.1ad + 802.1Q)",
             "Frames tagged outer 802.1ad S-VLAN 10 and inner 802.1Q C-VLAN 100; the engine "
             "parses both tags and compares the UDP payloads. No checkpoint.")
    d = Dgram(k, vm_port=53, cli_port=35361, vlan=[10, 100])
    for i in range(5):
        d.exchange(START + 1000 * i, dns_query(i), dns_answer(i))
    checkpoints(k, 0)
    all_released(k, max_delay=70)
    return k


def frag_case(name, title, story, v6, svm_sizes, svm_order, differ=False, slack=None,
              drop_last=False):
    k = Case(name, title, story)
    if slack is not None:
        settings(k, datagram_reorder_slack=slack)
    vm = "2001:db8::10" if v6 else "10.0.0.10"
    cl = "2001:db8::2" if v6 else "10.0.0.2"
    et = F.ETH_IPV6 if v6 else F.ETH_IPV4
    payload = blob(name, 4000)
    other = payload[:3000] + b"\xff" + payload[3001:] if differ else payload
    ul_p = F.udp(vm, cl, 5001, 5002, payload)
    ul_s = F.udp(vm, cl, 5001, 5002, other)
    if v6:
        pf = F.fragments_v6(vm, cl, F.PROTO_UDP, ul_p, 0x0A0B0C0D, [1448, 1448, 0])
        sf = F.fragments_v6(vm, cl, F.PROTO_UDP, ul_s, 0x11223344, svm_sizes)
    else:
        pf = F.fragments_v4(vm, cl, F.PROTO_UDP, ul_p, 0x1234, [1480, 1480, 0])
        sf = F.fragments_v4(vm, cl, F.PROTO_UDP, ul_s, 0x9876, svm_sizes)
    if drop_last:
        pf, sf = pf[:-1], sf[:-1]
    ip = []
    for n, pkt in enumerate(pf):
        ip.append(k.pvm(START + 10 * n, F.eth("02:00:00:00:00:01", "52:54:00:12:34:56", et, pkt)))
    order = svm_order if not drop_last else [i for i in svm_order if i < len(sf)]
    for n, i in enumerate(order):
        k.svm(START + 100 + 10 * n, F.eth("02:00:00:00:00:01", "52:54:00:12:34:56", et, sf[i]))
    k.has_ingress = False
    return k, ip


@case
def frag_v4():
    k, ip = frag_case("frag_v4", "IPv4 fragments, equal payload, different IP IDs",
                      "A 4008-byte UDP datagram (VXLAN-port-like) fragmented into 3 by both "
                      "VMs; the PVM's IP ID is 0x1234, the SVM's 0x9876. The datagrams are "
                      "reassembled before compare and equal: the PVM's own 3 fragments are "
                      "released, in order, when the SVM's datagram is complete. No checkpoint.",
                      False, [1480, 1480, 0], [0, 1, 2])
    checkpoints(k, 0)
    all_released(k, max_delay=130)
    counters(k, frags_in=6, frag_datagrams=2)
    return k


@case
def frag_v4_other_boundaries():
    k, ip = frag_case("frag_v4_other_boundaries", "IPv4 fragments cut elsewhere and out of order",
                      "The SVM fragments the same datagram into 4 pieces (1000-byte "
                      "boundaries, a smaller path MTU) and sends them last-first. "
                      "Reassembly makes both datagrams equal: no checkpoint, the PVM's 3 "
                      "fragments released.", False, [1000, 1000, 1000, 0], [3, 2, 1, 0])
    checkpoints(k, 0)
    all_released(k, max_delay=140)
    counters(k, frags_in=7, frag_datagrams=2)
    return k


@case
def frag_v6():
    k, ip = frag_case("frag_v6", "IPv6 fragments, equal payload, different identification",
                      "As frag_v4 over IPv6 with the fragment header; identification "
                      "0x0A0B0C0D on the PVM, 0x11223344 on the SVM, and the SVM cuts at "
                      "1000 bytes. No checkpoint; the PVM's fragments released.",
                      True, [1000, 1000, 1000, 0], [0, 1, 2, 3])
    checkpoints(k, 0)
    all_released(k, max_delay=140)
    counters(k, frags_in=7, frag_datagrams=2)
    return k


@case
def frag_mismatch():
    k, ip = frag_case("frag_mismatch", "reassembled datagrams differ",
                      "Byte 3000 of the datagram differs (it lies in the third PVM "
                      "fragment, the fourth SVM one). With slack 0 the reassembled pair is a "
                      "datagram_mismatch: one request, the PVM's fragments released at "
                      "checkpoint done.", False, [1000, 1000, 1000, 0], [0, 1, 2, 3],
                      differ=True, slack=0)
    checkpoints(k, 1, datagram_mismatch=1)
    all_released(k)
    return k


@case
def frag_incomplete():
    k, ip = frag_case("frag_incomplete", "a fragment never comes: frag_timeout",
                      "Both VMs' last fragment is lost: neither datagram completes. After "
                      "frag_timeout_ms (2 s) the incomplete datagrams are given up and their "
                      "fragments counted and dropped (reason frag_timeout): nothing is "
                      "released, nothing is held at the end, no checkpoint.",
                      False, [1480, 1480, 0], [0, 1, 2], drop_last=True)
    checkpoints(k, 0)
    k.expect["released"] = []
    counters(k, pvm_dropped__frag_timeout=2, svm_dropped__frag_timeout=2)
    return k
