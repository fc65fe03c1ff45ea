"""QEMU colo-compare anchor scenarios (research/colo-anchors.md §6.1), with lockstep's
intended outcome. T0 (notify handshake) is a protocol test, not a replay case; the table
has no T4/T5."""
from . import frames as F
from .dgram import Dgram
from .expect import (DEADLINE_SLACK_US, LATENCY_US, TIMEOUT_US, all_released, checkpoints,
                     counters, frame_delay, request_at, settings)
from .model import T0, Case, blob, case, text_blob
from .tcpconn import TcpConn

START = T0 + 5_000_000


def opened(k, **kw):
    c = TcpConn(k, **kw)
    t = c.passive_open(START)
    c.request(t + 20, b"GET / HTTP/1.1\r\n\r\n")
    return c, t + 300


@case
def t01_identical_segment():
    k = Case("t01_identical_segment", "T1: identical 100 B TCP segment, PVM then SVM",
             "QEMU: nothing out until the SVM copy arrived, then 1 frame. lockstep: the same "
             "- the PVM's segment is released exactly when the SVM's copy (other IP ID) "
             "arrives, 200 µs later. No checkpoint.")
    c, t = opened(k)
    ip = c.both(t, 200, F.PSH | F.ACK, text_blob("t1", 100))
    checkpoints(k, 0)
    all_released(k, max_delay=200)
    frame_delay(k, ip, 200)
    return k


@case
def t02_payload_differs():
    k = Case("t02_payload_differs", "T2: same seq, different payload",
             "QEMU: 0 out, 1 DO_CHECKPOINT, the PVM frame out after COLO_CHECKPOINT. "
             "lockstep: one payload_mismatch request when the SVM's segment arrives (200 µs), "
             "the PVM's segment released at checkpoint done (1 ms later).")
    c, t = opened(k, svm_isn=0x1F3A0000)
    ip = c.vm("p", t, F.PSH | F.ACK, text_blob("t2a", 100))
    c.vm("s", t + 200, F.PSH | F.ACK, text_blob("t2b", 100))
    checkpoints(k, 1, payload_mismatch=1)
    request_at(k, ip, 200, 200)
    all_released(k)
    frame_delay(k, ip, 200 + LATENCY_US)
    return k


@case
def t03_split_segments():
    k = Case("t03_split_segments", "T3: PVM 2 x 50 B, SVM 1 x 100 B",
             "QEMU: 2 frames released, no notify. lockstep: both PVM segments released when "
             "the SVM's 100-byte segment arrives. No checkpoint.")
    c, t = opened(k)
    data = text_blob("t3", 100)
    a = c.vm("p", t, F.ACK, data[:50])
    b = c.vm("p", t + 10, F.PSH | F.ACK, data[50:])
    c.vm("s", t + 150, F.PSH | F.ACK, data, off=0)
    checkpoints(k, 0)
    all_released(k, max_delay=150)
    frame_delay(k, a, 150)
    frame_delay(k, b, 140)
    return k


@case
def t06_udp_identical():
    k = Case("t06_udp_identical", "T6: identical UDP datagram",
             "QEMU: released. lockstep: released when the SVM's datagram arrives (70 µs).")
    d = Dgram(k)
    ip = d.exchange(START, b"ping", b"pong " + blob("t6", 64))
    checkpoints(k, 0)
    all_released(k)
    frame_delay(k, ip, 70)
    return k


@case
def t07_udp_trickle():
    k = Case("t07_udp_trickle", "T7: UDP burst v1,v2,v3; SVM trickles them 100 ms apart",
             "QEMU (LIFO bug): 2 DO_CHECKPOINT, released v3,v2,v1. lockstep: FIFO matching, "
             "released v1,v2,v3 in order, each when its SVM copy arrives, no checkpoint. "
             "compare_timeout_us is set to QEMU's default (3 s) to keep the anchor's "
             "timing: with lockstep's 100 ms default, v3 (200 ms behind) would meet its "
             "deadline.")
    settings(k, compare_timeout_us=3_000_000)
    d = Dgram(k, vm_port=7007, cli_port=40007)
    v = [b"v%d " % i + blob(f"t7{i}", 40) for i in (1, 2, 3)]
    ip = [d.vm("p", START + 10 * i, v[i]) for i in range(3)]
    for i in range(3):
        d.vm("s", START + 100 + 100_000 * i, v[i])
    k.has_ingress = False
    checkpoints(k, 0)
    all_released(k)
    for i in range(3):
        frame_delay(k, ip[i], 100 + 100_000 * i - 10 * i)
    return k


@case
def t08_flush_order():
    k = Case("t08_flush_order", "T8: three PVM-only datagrams flushed by a checkpoint",
             "QEMU: flushed as w3,w2,w1. lockstep: the SVM sends nothing; w1's deadline "
             "requests a checkpoint (100 ms), and its done releases w1,w2,w3 in arrival "
             "order.")
    d = Dgram(k, vm_port=7008, cli_port=40008)
    ip = [d.vm("p", START + 10 * i, b"w%d" % (i + 1)) for i in range(3)]
    k.has_ingress = False
    checkpoints(k, 1, deadline=1)
    request_at(k, ip[0], TIMEOUT_US, TIMEOUT_US + DEADLINE_SLACK_US)
    all_released(k)
    frame_delay(k, ip[0], TIMEOUT_US + LATENCY_US, TIMEOUT_US + LATENCY_US + DEADLINE_SLACK_US)
    return k


@case
def t09_arp_ipv6():
    k = Case("t09_arp_ipv6", "T9: PVM ARP and IPv6 frames",
             "QEMU: both released immediately, uncompared (IPv6 never compared). lockstep: "
             "the ARP request and the IPv6 neighbour solicitation are released at once "
             "(non_ip_policy / nd_policy pass); IPv6 data is compared like IPv4 and "
             "released when the SVM's copy arrives (60 µs). No checkpoint.")
    vm, cl = "52:54:00:12:34:56", "02:00:00:00:00:01"
    arp = F.eth("ff:ff:ff:ff:ff:ff", vm, F.ETH_ARP,
                F.arp(1, vm, "10.0.0.10", "00:00:00:00:00:00", "10.0.0.1"))
    ll = "fe80::5054:ff:fe12:3456"
    ns = F.eth("33:33:ff:00:00:02", vm, F.ETH_IPV6,
               F.ipv6(ll, "ff02::1:ff00:2", F.PROTO_ICMPV6,
                      F.nd_ns(ll, "ff02::1:ff00:2", "2001:db8::2", vm), hlim=255))
    a = k.pvm(START, arp)
    n = k.pvm(START + 10, ns)
    k.svm(START + 60, arp)
    k.svm(START + 70, ns)
    d = Dgram(k, vm_ip="2001:db8::10", cli_ip="2001:db8::2", vm_port=53, cli_port=35900)
    u = d.exchange(START + 1000, b"q6", b"a6", svm_lag_us=60)
    checkpoints(k, 0)
    all_released(k)
    frame_delay(k, a, 0)
    frame_delay(k, n, 0)
    frame_delay(k, u, 60)
    return k


@case
def t10_header_fields():
    k = Case("t10_header_fields", "T10: same payload, other IP ID, TTL, window, TSval",
             "QEMU: released, no notify. lockstep: header fields are not compared; released "
             "when the SVM's copy arrives (100 µs). No checkpoint.")
    c, t = opened(k)
    data = text_blob("t10", 300)
    ip = c.vm("p", t, F.PSH | F.ACK, data, win=1000, opts=F.opt_ts(0x01020304, 7))
    c.ipid["s"] = 0xEEEE
    c.vm("s", t + 100, F.PSH | F.ACK, data, off=0, win=2000, opts=F.opt_ts(0x0A0B0C0D, 8))
    checkpoints(k, 0)
    all_released(k)
    frame_delay(k, ip, 100)
    return k


@case
def t11_pure_ack_silent_svm():
    k = Case("t11_pure_ack_silent_svm", "T11: PVM pure ACK on a flow where the SVM sends no data",
             "QEMU: held 5 s, 2 DO_CHECKPOINT. lockstep: a pure ACK has no bytes to compare; "
             "it waits only until the SVM's ACK reaches its own (docs/design.md §5.2), here the "
             "SVM's pure ACK 2 ms later. Two flows: one after a handshake, one picked up "
             "mid-stream (no SYN seen). No checkpoint. (A SVM that never acknowledges the "
             "bytes is a divergence: tcp_ack_upload_svm_lost_segment.)")
    c = TcpConn(k)
    t = c.passive_open(START)
    c.cli(t + 100, F.PSH | F.ACK, b"upload-chunk-" * 20)
    a1 = c.vm("p", t + 140, F.ACK)
    c2 = TcpConn(k, cli_port=40111, pvm_isn=0x55550000, svm_isn=0x66660000)
    c2.syn_sent = {"p": True, "s": True, "c": True}
    c2.cli(t + 200, F.PSH | F.ACK, b"more-data-" * 30)
    a2 = c2.vm("p", t + 240, F.ACK)
    c.vm("s", t + 2140, F.ACK)
    c2.vm("s", t + 2240, F.ACK)
    checkpoints(k, 0)
    all_released(k, order="set", max_delay=2000)
    frame_delay(k, a1, 2000)
    frame_delay(k, a2, 2000)
    return k


@case
def t12_ack_differs_split():
    k = Case("t12_ack_differs_split", "T12: PVM 2 x 50 B acking more than the SVM's 1 x 100 B",
             "QEMU: 0 out, DO_CHECKPOINT (ack gating in the partial-overlap branch). "
             "lockstep: acknowledgment numbers are not compared frame by frame, progress is: "
             "the bytes match when the SVM's segment arrives (150 µs), and both PVM segments "
             "leave when the SVM's ACK reaches theirs (its pure ACK, 300 µs). No checkpoint.")
    c, t = opened(k)
    c.cli(t - 200, F.PSH | F.ACK, b"x" * 1000)
    data = text_blob("t12", 100)
    a = c.vm("p", t, F.ACK, data[:50])
    b = c.vm("p", t + 10, F.PSH | F.ACK, data[50:])
    c.vm("s", t + 150, F.PSH | F.ACK, data, off=0, ack_off=0)
    c.vm("s", t + 300, F.ACK)
    checkpoints(k, 0)
    all_released(k)
    frame_delay(k, a, 300)
    frame_delay(k, b, 290)
    return k


@case
def t12b_ack_differs_same_seg():
    k = Case("t12b_ack_differs_same_seg", "T12b: identical segments, PVM acks more",
             "QEMU: released. lockstep: the bytes match when the SVM's copy arrives (150 µs); "
             "it leaves when the SVM's ACK reaches the PVM's (250 µs). No checkpoint.")
    c, t = opened(k)
    c.cli(t - 200, F.PSH | F.ACK, b"y" * 2000)
    data = text_blob("t12b", 100)
    a = c.vm("p", t, F.PSH | F.ACK, data)
    c.vm("s", t + 150, F.PSH | F.ACK, data, off=0, ack_off=0)
    c.vm("s", t + 250, F.ACK)
    checkpoints(k, 0)
    all_released(k)
    frame_delay(k, a, 250)
    return k


@case
def t13_retransmit_silent_svm():
    k = Case("t13_retransmit_silent_svm", "T13: PVM retransmits a matched segment, SVM silent",
             "QEMU: held 5 s, 2 DO_CHECKPOINT. lockstep: the retransmission of matched "
             "bytes is released on arrival (delay 0). No checkpoint.")
    c, t = opened(k)
    data = text_blob("t13", 500)
    c.both(t, 150, F.PSH | F.ACK, data)
    r = c.vm("p", t + 210_000, F.PSH | F.ACK, data, off=0)
    checkpoints(k, 0)
    all_released(k)
    frame_delay(k, r, 0)
    counters(k, released__retransmit=1)
    return k


@case
def t14_1100_segments():
    k = Case("t14_1100_segments", "T14: 1100 PVM-only segments on one flow, then a flush",
             "QEMU: 1025 out, 75 silently dropped (max_queue_size). lockstep: the 1100 "
             "segments (50 µs apart, 55 ms) are all held; the first one's deadline requests "
             "one checkpoint, whose done releases all 1100 in order. Nothing lost.")
    c, t = opened(k)
    ip = []
    for i in range(1100):
        ip.append(c.vm("p", t + 50 * i, F.ACK, blob(f"t14/{i}", 200)))
    checkpoints(k, 1, deadline=1)
    request_at(k, ip[0], TIMEOUT_US, TIMEOUT_US + DEADLINE_SLACK_US)
    all_released(k)
    return k


@case
def t14_window_full():
    k = Case("t14_window_full", "T14 with reorder_window 1024: window_full, nothing lost",
             "As t14_1100_segments with reorder_window 1024: when the PVM holds more "
             "segments ahead of the compare point than the window, a window_full checkpoint "
             "is requested instead of dropping; the 76 later segments meet their deadline "
             "and a second (deadline) request releases them. All 1100 released in order.")
    settings(k, reorder_window=1024)
    c, t = opened(k)
    for i in range(1100):
        c.vm("p", t + 50 * i, F.ACK, blob(f"t14/{i}", 200))
    checkpoints(k, 2, window_full=1, deadline=1)
    all_released(k)
    return k


@case
def t15_deadline():
    k = Case("t15_deadline", "T15: one PVM segment, SVM silent: when is the request?",
             "QEMU: the first DO_CHECKPOINT after 3.37 s (3 s timeout + 1 s scan). "
             "lockstep: a per-frame deadline: the request comes compare_timeout (100 ms) "
             "after the segment's arrival (within a timer tick), the segment is released "
             "at checkpoint done 1 ms later.")
    c, t = opened(k)
    ip = c.vm("p", t, F.PSH | F.ACK, text_blob("t15", 200))
    checkpoints(k, 1, deadline=1)
    request_at(k, ip, TIMEOUT_US, TIMEOUT_US + DEADLINE_SLACK_US)
    all_released(k)
    frame_delay(k, ip, TIMEOUT_US + LATENCY_US, TIMEOUT_US + LATENCY_US + DEADLINE_SLACK_US)
    return k


@case
def t16_16400_udp_flows():
    k = Case("t16_16400_udp_flows", "T16: 16,400 PVM-only UDP flows, then a flush",
             "QEMU: 21 out, 16,379 destroyed by the connection table reset. lockstep: the "
             "16,400 flows (one datagram each, 5 µs apart, 82 ms) all fit the table; the "
             "first datagram's deadline requests one checkpoint whose done releases all "
             "16,400. Nothing lost.")
    for i in range(16400):
        d = Dgram(k, vm_port=8000, cli_ip=f"10.2.{i // 250}.{i % 250 + 1}", cli_port=30000)
        d.vm("p", START + 5 * i, b"flow %05d" % i)
    k.has_ingress = False
    checkpoints(k, 1, deadline=1)
    request_at(k, 0, TIMEOUT_US, TIMEOUT_US + DEADLINE_SLACK_US)
    all_released(k, order="per_flow")
    return k
