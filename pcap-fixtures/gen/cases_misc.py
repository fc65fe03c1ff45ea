"""Checkpoint storms, hybrid and buffer modes, passthrough, and inputs the replay must
refuse (truncated or foreign files, bad settings), plus a pcapng input."""
import struct

from . import frames as F
from .dgram import Dgram
from .expect import (DEADLINE_SLACK_US, TIMEOUT_US, all_released, checkpoints, counters,
                     frame_delay, request_at, settings)
from .model import T0, Case, blob, case, rng
from .pcapio import pcap_bytes
from .tcpconn import TcpConn

START = T0 + 4_000_000


@case
def storm_udp_1000():
    k = Case("storm_udp_1000", "1000 mismatching UDP pairs: one request per epoch",
             "1000 flows (client ports 20000-20999), one datagram each, PVM every 11 µs, the "
             "SVM's differing copy 33 µs after it; datagram_reorder_slack 0 so each pair is "
             "a mismatch. Requests are coalesced to one per epoch: a request, the checkpoint "
             "done 1 ms later opens the next epoch, and the next mismatch (the next SVM "
             "arrival) requests again. The storm lasts 11 ms, so about 11 epochs: expected "
             "8-14 requests (the exact count depends on whether a divergence seen at the "
             "instant of checkpoint done and late SVM copies of pairs released by the "
             "previous checkpoint count). QEMU sent 1000 DO_CHECKPOINT for this storm. "
             "Every PVM frame is released.")
    settings(k, datagram_reorder_slack=0)
    for i in range(1000):
        d = Dgram(k, vm_port=6000, cli_port=20000 + i)
        d.vm("p", START + 11 * i, b"reading %04d " % i + blob(f"su{i}", 24))
        d.vm("s", START + 11 * i + 33, b"READING %04d " % i + blob(f"su{i}", 24))
    k.has_ingress = False
    checkpoints(k, rng(8, 14), datagram_mismatch=rng(8, 14))
    all_released(k, order="per_flow", max_delay=33 + 1000 + 11)
    counters(k, checkpoint_triggers={"min": 14})
    return k


@case
def storm_udp_1000_slack():
    k = Case("storm_udp_1000_slack", "1000 mismatching UDP flows under the default slack",
             "As storm_udp_1000 with the default datagram_reorder_slack (2): one unmatched "
             "datagram per side of a flow is tolerated, so no flow declares a mismatch; the "
             "first PVM datagram's deadline (100 ms) requests one checkpoint, whose done "
             "releases all 1000 held datagrams. Exactly one request.")
    for i in range(1000):
        d = Dgram(k, vm_port=6000, cli_port=20000 + i)
        d.vm("p", START + 11 * i, b"reading %04d " % i + blob(f"su{i}", 24))
        d.vm("s", START + 11 * i + 33, b"READING %04d " % i + blob(f"su{i}", 24))
    k.has_ingress = False
    checkpoints(k, 1, deadline=1)
    request_at(k, 0, TIMEOUT_US, TIMEOUT_US + DEADLINE_SLACK_US)
    all_released(k, order="per_flow")
    return k


def tcp_storm(k, n, gap, lag):
    """One connection (same ISN on both VMs), n 100-byte segments gap µs apart, every SVM
    segment different from the PVM's."""
    c = TcpConn(k, svm_isn=0x1F3A0000)
    t = c.passive_open(START)
    c.request(t + 20, b"GET /stream HTTP/1.1\r\n\r\n")
    t0 = t + 300
    ip = []
    for i in range(n):
        data = b"%06d:" % i + blob(f"ts{i}", 93)
        ip.append(c.vm("p", t0 + gap * i, F.ACK, data, off=100 * i))
        bad = b"%06d!" % i + blob(f"ts{i}", 93)
        c.vm("s", t0 + gap * i + lag, F.ACK, bad, off=100 * i)
    return c, ip


@case
def storm_tcp_1000():
    k = Case("storm_tcp_1000", "1000 mismatching TCP segments on one connection",
             "One connection (same ISN on both VMs, so a rebased connection keeps matching "
             "offsets), 1000 segments of 100 bytes 11 µs apart, every SVM segment differing, "
             "the SVM 33 µs behind. One request per epoch: each checkpoint done (1 ms after "
             "its request) rebases the connection to the PVM's position and the next SVM "
             "segment beyond it mismatches again: about 11 requests over the 11 ms storm, "
             "8-14 expected. QEMU sent 1968 DO_CHECKPOINT here.")
    tcp_storm(k, 1000, 11, 33)
    checkpoints(k, rng(8, 14), payload_mismatch=rng(8, 14))
    all_released(k)
    return k


@case
def hybrid_switch():
    k = Case("hybrid_switch", "continuous divergence: hybrid switches colo -> buffer",
             "hybrid=true, hybrid_threshold=5, hybrid_window_ms=100. One connection whose "
             "every SVM segment differs, 1000 segments 100 µs apart (100 ms). In colo mode a "
             "payload_mismatch request comes every ~1.1 ms; after 5 checkpoints within the "
             "window the engine switches to buffer mode (mode_switches 1): from then on PVM "
             "output is held without compare and released by a checkpoint every "
             "buffer_epoch_us (20 ms), reason buffer_epoch. Expected 4-7 payload_mismatch "
             "and 3-7 buffer_epoch requests, 7-14 in all, against ~90 without hybrid. "
             "hybrid_quiet_ms (5 s) is longer than the case, so no switch back.")
    settings(k, hybrid="true", hybrid_threshold=5, hybrid_window_ms=100)
    tcp_storm(k, 1000, 100, 33)
    checkpoints(k, rng(7, 14), payload_mismatch=rng(4, 7), buffer_epoch=rng(3, 7))
    all_released(k)
    counters(k, mode_switches=1)
    return k


@case
def mode_buffer():
    k = Case("mode_buffer", "mode=buffer: output held until the periodic checkpoint",
             "mode buffer (Remus-style). A datagram every 1 ms for 50 ms, identical on both "
             "VMs. Nothing is compared: every PVM datagram is held until a checkpoint, which "
             "is requested when the oldest held output is buffer_epoch_us (20 ms) old. "
             "Three requests (oldest at 0, ~22 and ~44 ms), reason buffer_epoch; everything "
             "released in order.")
    settings(k, mode="buffer")
    d = Dgram(k, vm_port=5005, cli_port=40005)
    ip = []
    for i in range(50):
        ip.append(d.vm("p", START + 1000 * i + 7, b"frame %d " % i + blob(f"buf{i}", 100)))
        d.vm("s", START + 1000 * i + 57, b"frame %d " % i + blob(f"buf{i}", 100))
    k.has_ingress = False
    checkpoints(k, 3, buffer_epoch=3)
    request_at(k, ip[0], 20000, 20000 + DEADLINE_SLACK_US)
    all_released(k)
    return k


@case
def mode_passthrough():
    k = Case("mode_passthrough", "mode=passthrough: released at once, nothing compared",
             "mode passthrough with an SVM whose answers all differ: every PVM frame is "
             "released on arrival (delay 0), no checkpoint.")
    settings(k, mode="passthrough")
    d = Dgram(k, vm_port=5303, cli_port=35600)
    for i in range(10):
        d.exchange(START + 1000 * i, b"q%d" % i, b"pvm answer %d" % i, svm_resp=b"svm says %d" % i)
    checkpoints(k, 0)
    all_released(k, max_delay=0)
    counters(k, released__passthrough=10)
    return k


# --- inputs the replay must refuse ------------------------------------------------------

def small_valid(k):
    """A tiny valid UDP exchange, so that only the file under test is bad."""
    d = Dgram(k, vm_port=5304, cli_port=35700)
    for i in range(3):
        d.exchange(START + 1000 * i, b"q%d" % i, b"a%d" % i)


def refuse(k, code, *needles, regex=None):
    k.expect["exit"] = code
    k.expect["stderr_contains"] = list(needles)
    if regex:
        k.expect["stderr_regex"] = regex


@case
def bad_truncated_pcap():
    k = Case("bad_truncated_pcap", "primary.pcap cut in the middle of a record",
             "primary.pcap ends 30 bytes into its last record (a capture killed while "
             "writing). The replay must refuse it: exit 2, one line on stderr naming "
             "primary.pcap, and no --released file left behind.")
    small_valid(k)
    whole = pcap_bytes(k.frames["primary"])
    k.raw_files["primary.pcap"] = whole[:len(whole) - len(k.frames["primary"][-1][1]) - 16 + 30]
    refuse(k, 2, "primary.pcap")
    return k


@case
def bad_short_header():
    k = Case("bad_short_header", "secondary.pcap shorter than a pcap header",
             "secondary.pcap holds 12 bytes (half a file header). Exit 2, one line naming "
             "secondary.pcap.")
    small_valid(k)
    k.raw_files["secondary.pcap"] = pcap_bytes([])[:12]
    refuse(k, 2, "secondary.pcap")
    return k


@case
def bad_linktype():
    k = Case("bad_linktype", "ingress.pcap with link type RAW (101), not Ethernet",
             "ingress.pcap is a valid capture of raw IP packets (link type 101). Only "
             "Ethernet is accepted: exit 2, one line naming ingress.pcap and the link type.")
    small_valid(k)
    raw = [(t, fr[14:]) for t, fr in k.frames["ingress"]]
    k.raw_files["ingress.pcap"] = pcap_bytes(raw, linktype=101)
    refuse(k, 2, "ingress.pcap", regex="(?i)link")
    return k


@case
def bad_not_a_capture():
    k = Case("bad_not_a_capture", "primary.pcap is a text file",
             "primary.pcap holds text, not a capture. Exit 2, one line naming primary.pcap.")
    small_valid(k)
    k.raw_files["primary.pcap"] = b"this is not a packet capture\n"
    refuse(k, 2, "primary.pcap")
    return k


@case
def bad_missing_file():
    k = Case("bad_missing_file", "--secondary names a file that does not exist",
             "The secondary input is given as no-such-file.pcap. Exit 2, one line naming it.")
    small_valid(k)
    k.expect["inputs"] = {"secondary": "no-such-file.pcap"}
    refuse(k, 2, "no-such-file.pcap")
    return k


@case
def bad_setting_value():
    k = Case("bad_setting_value", "--set compare_timeout_us=5: below its range",
             "compare_timeout_us accepts 100..60000000. Exit 2; the one-line error names the "
             "key and the accepted range.")
    small_valid(k)
    settings(k, compare_timeout_us=5)
    refuse(k, 2, "compare_timeout_us", "100", "60000000")
    return k


@case
def bad_setting_key():
    k = Case("bad_setting_key", "--set with an unknown key",
             "--set no_such_setting=1. Exit 2; the error names the key.")
    small_valid(k)
    settings(k, no_such_setting=1)
    refuse(k, 2, "no_such_setting")
    return k


@case
def bad_setting_choice():
    k = Case("bad_setting_choice", "--set mode=fast: not one of the choices",
             "mode accepts colo|buffer|passthrough. Exit 2; the error names the key and the "
             "choices.")
    small_valid(k)
    settings(k, mode="fast")
    refuse(k, 2, "mode", "colo")
    return k


# --- pcapng -------------------------------------------------------------------------

def pcapng_bytes(records):
    """Minimal pcapng: section header, one Ethernet interface (µs), enhanced packets."""
    def block(btype, body):
        body += b"\0" * ((-len(body)) % 4)
        ln = 12 + len(body)
        return struct.pack("<II", btype, ln) + body + struct.pack("<I", ln)
    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
           block(0x00000001, struct.pack("<HHI", 1, 0, 262144))]
    for t, fr in records:
        out.append(block(0x00000006, struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF,
                                                 len(fr), len(fr)) + fr))
    return b"".join(out)


@case
def pcapng_input():
    k = Case("pcapng_input", "inputs in pcapng format",
             "The three inputs are pcapng files (section header, one Ethernet interface "
             "with microsecond resolution, enhanced packet blocks) under the usual names. "
             "Ten UDP exchanges, SVM 70 µs behind: released as from classic pcap, no "
             "checkpoint.")
    d = Dgram(k, vm_port=5302, cli_port=35800)
    for i in range(10):
        d.exchange(START + 1000 * i, b"query %d" % i, b"answer %d" % i)
    for side in ("ingress", "primary", "secondary"):
        k.raw_files[side + ".pcap"] = pcapng_bytes(k.frames[side])
    checkpoints(k, 0)
    all_released(k, max_delay=70, min_delay=70)
    return k
