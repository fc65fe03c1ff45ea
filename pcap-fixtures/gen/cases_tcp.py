"""TCP cases: byte-stream compare, ISNs, reordering, retransmission, lag, mismatches,
events, pure ACKs, wrap, SACK, many flows."""
from . import frames as F
from .expect import (DEADLINE_SLACK_US, LATENCY_US, TIMEOUT_US, all_released, checkpoints,
                     counters, frame_delay, release_times, request_at, settings)
from .model import T0, Case, blob, case, rng, text_blob
from .tcpconn import MSS, TcpConn

START = T0 + 1_000_000
HTTP_GET = b"GET /index.html HTTP/1.1\r\nHost: vm\r\nUser-Agent: fixture\r\nAccept: */*\r\n\r\n"


def http_response(tag, n):
    body = text_blob(tag, n)
    head = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    return head + body


def exchange(c, t, resp, lag=120, pvm_seg=MSS, svm_seg=MSS, close=True):
    """Passive open, GET, response, client acks, close by client. Returns t at the end."""
    t = c.passive_open(t)
    c.request(t + 20, HTTP_GET)
    _, t_s = c.respond(t + 300, resp, svm_lag_us=lag, pvm_seg=pvm_seg, svm_seg=svm_seg)
    t = max(t_s, t + 300 + lag) + 400
    c.cli(t, F.ACK)
    if close:
        c.close_by_client(t + 1000)
        t += 2000
    return t


@case
def tcp_identical():
    k = Case("tcp_identical", "identical TCP exchange, same segmentation, SVM 120 µs behind",
             "Passive open, an HTTP GET, a 20 kB response cut into 1448-byte segments by "
             "both VMs, client ACKs and a close by the client. PVM and SVM differ only in "
             "ISN, IP ID, window and timestamp clock. Every PVM frame is released, data at "
             "the moment its SVM copy arrives (120 µs), SYN/ACK and FIN when the SVM's "
             "event arrives (90 µs); no checkpoint.")
    c = TcpConn(k)
    exchange(c, START, http_response("ident", 20000))
    checkpoints(k, 0)
    all_released(k, max_delay=120)
    counters(k, isn_learned={"min": 1}, bytes_compared=len(http_response("ident", 20000)))
    return k


@case
def tcp_segmented_differently():
    k = Case("tcp_segmented_differently", "same bytes, different segmentation (TSO-like)",
             "The PVM sends 64 kB in 1448-byte segments; the SVM sends the same bytes in "
             "segments of 500, 2896, 1000 and 7240 bytes (GSO/TSO-like), 150 µs later. "
             "Bytes are compared at equal stream offsets whatever the segmentation: no "
             "checkpoint, every PVM frame released once the SVM segment carrying its last "
             "byte has arrived.")
    c = TcpConn(k)
    resp = http_response("seg", 64000)
    t = c.passive_open(START)
    c.request(t + 20, HTTP_GET)
    ip, _ = c.send("p", t + 300, resp, seg=MSS, gap_us=12)
    c.send("s", t + 450, resp, seg=[500, 2896, 1000, 7240], gap_us=30)
    t2 = t + 450 + 30 * 40 + 500
    c.cli(t2, F.ACK)
    c.close_by_client(t2 + 1000)
    checkpoints(k, 0)
    all_released(k, order="set", max_delay=2000)
    counters(k, bytes_compared=len(resp))
    return k


@case
def tcp_isn_passive():
    k = Case("tcp_isn_passive", "passive open, ISNs far apart, client ACKs translated",
             "The client connects to the VM; PVM ISN 0x00000100 and SVM ISN 0xF0000000 "
             "(offset crossing 2^31). The offset is learned from the two SYN/ACKs; the SVM "
             "data is compared in PVM sequence space; the client's ACKs forwarded to the SVM "
             "carry ack + (SVM ISN - PVM ISN). No checkpoint, every frame released, every "
             "ingress frame forwarded with the translated ack.")
    c = TcpConn(k, pvm_isn=0x00000100, svm_isn=0xF0000000)
    exchange(c, START, http_response("isnp", 6000))
    checkpoints(k, 0)
    all_released(k, max_delay=120)
    svm_ingress_translated(k, c)
    counters(k, isn_learned={"min": 1})
    return k


def svm_ingress_translated(k, c):
    """Every ingress frame goes to the SVM in order, its ack moved into SVM space."""
    off = (c.isn["s"] - c.isn["p"]) & 0xFFFFFFFF
    exp = {}
    for i, (_, fr) in enumerate(k.frames["ingress"]):
        info = tcp_fields(fr)
        if info and info["flags"] & F.ACK:
            exp[str(i)] = {"ack": (info["ack"] + off) & 0xFFFFFFFF}
    k.expect["svm_ingress"] = {"frames": "all", "tcp": exp}


def tcp_fields(fr):
    """(seq, ack, flags, sack blocks, tsecr) of an untagged IPv4/IPv6 TCP frame."""
    import struct
    et = struct.unpack_from("!H", fr, 12)[0]
    off = 14
    if et == F.ETH_VLAN:
        et = struct.unpack_from("!H", fr, 16)[0]
        off = 18
    if et == F.ETH_IPV4:
        if fr[off + 9] != F.PROTO_TCP:
            return None
        l4 = off + (fr[off] & 15) * 4
    elif et == F.ETH_IPV6:
        if fr[off + 6] != F.PROTO_TCP:
            return None
        l4 = off + 40
    else:
        return None
    seq, ack = struct.unpack_from("!II", fr, l4 + 4)
    flags = fr[l4 + 13]
    hl = (fr[l4 + 12] >> 4) * 4
    o, sack, tsecr = l4 + 20, [], None
    while o < l4 + hl:
        kind = fr[o]
        if kind == 0:
            break
        if kind == 1:
            o += 1
            continue
        ln = fr[o + 1]
        if kind == 5:
            sack = [list(struct.unpack_from("!II", fr, o + 2 + 8 * j)) for j in range((ln - 2) // 8)]
        if kind == 8:
            tsecr = struct.unpack_from("!I", fr, o + 6)[0]
        o += ln
    return {"seq": seq, "ack": ack, "flags": flags, "sack": sack, "tsecr": tsecr}


@case
def tcp_isn_active():
    k = Case("tcp_isn_active", "active open by the VM, different ISNs",
             "The VM connects out (to 10.0.0.2:443): PVM SYN and SVM SYN carry different "
             "ISNs, the client's SYN/ACK acks the PVM's. The offset is learned from the two "
             "SYNs; the VM's request and the client's response flow; the VM closes. "
             "PVM SYN released when the SVM's SYN arrives (90 µs). No checkpoint.")
    c = TcpConn(k, cli_port=443, srv_port=51000, pvm_isn=0xA0000000, svm_isn=0x0BADF00D)
    t = c.active_open(START)
    req = b"\x16\x03\x01" + blob("tls-hello", 509)
    c.both(t + 50, 90, F.PSH | F.ACK, req)
    resp = blob("tls-server", 4000)
    ti = t + 600
    pos = 0
    while pos < len(resp):
        c.cli(ti, F.ACK, resp[pos:pos + MSS])
        pos += MSS
        ti += 15
    c.both(ti + 40, 90, F.ACK)
    c.both(ti + 200, 90, F.FIN | F.ACK)
    c.cli(ti + 500, F.FIN | F.ACK)
    c.both(ti + 540, 90, F.ACK)
    checkpoints(k, 0)
    all_released(k, max_delay=90)
    counters(k, isn_learned={"min": 1})
    svm_ingress_translated(k, c)
    return k


@case
def tcp_reorder_pvm():
    k = Case("tcp_reorder_pvm", "PVM segments out of order on the wire",
             "The PVM emits segments 0,2,1,3,5,4,6,7 (two swaps), the SVM emits them in "
             "order 200 µs later. Each PVM segment is released once its bytes are matched; "
             "the engine may release in stream or arrival order (order not asserted). No "
             "checkpoint.")
    c = TcpConn(k)
    resp = http_response("reop", 8 * MSS - 200)
    t = c.passive_open(START)
    c.request(t + 20, HTTP_GET)
    segs = [resp[i:i + MSS] for i in range(0, len(resp), MSS)]
    assert len(segs) == 8
    order = [0, 2, 1, 3, 5, 4, 6, 7]
    tp = t + 300
    for n, i in enumerate(order):
        c.vm("p", tp + 12 * n, F.ACK, segs[i], off=i * MSS)
    c.send("s", tp + 200, resp, seg=MSS)
    c.cli(tp + 800, F.ACK)
    c.close_by_client(tp + 2000)
    checkpoints(k, 0)
    all_released(k, order="set", max_delay=300)
    return k


@case
def tcp_reorder_svm():
    k = Case("tcp_reorder_svm", "SVM segments out of order",
             "The PVM emits 8 segments in order; the SVM emits 1,0,2,4,3,7,5,6 200 µs "
             "later. Out-of-order SVM bytes wait in the reorder window until they can be "
             "compared. No checkpoint; every PVM frame released.")
    c = TcpConn(k)
    resp = http_response("reos", 8 * MSS - 200)
    t = c.passive_open(START)
    c.request(t + 20, HTTP_GET)
    segs = [resp[i:i + MSS] for i in range(0, len(resp), MSS)]
    assert len(segs) == 8
    tp = t + 300
    c.send("p", tp, resp, seg=MSS)
    for n, i in enumerate([1, 0, 2, 4, 3, 7, 5, 6]):
        c.vm("s", tp + 200 + 12 * n, F.ACK, segs[i], off=i * MSS)
    c.cli(tp + 800, F.ACK)
    c.close_by_client(tp + 2000)
    checkpoints(k, 0)
    all_released(k, order="set", max_delay=300)
    return k


@case
def tcp_retransmit_pvm():
    k = Case("tcp_retransmit_pvm", "PVM retransmits matched bytes: released at once",
             "After 5 segments have been matched and released, the PVM retransmits "
             "segments 2 and 3 (e.g. on an RTO); the SVM does not. A retransmission of "
             "matched bytes is released at once (delay 0), without waiting for the SVM. "
             "No checkpoint.")
    c = TcpConn(k)
    resp = http_response("rtxp", 5 * MSS)
    t = c.passive_open(START)
    c.request(t + 20, HTTP_GET)
    c.respond(t + 300, resp, svm_lag_us=150)
    segs = [resp[i:i + MSS] for i in range(0, len(resp), MSS)]
    tr = t + 300 + 200_000
    r1 = c.vm("p", tr, F.ACK, segs[2], off=2 * MSS)
    r2 = c.vm("p", tr + 10, F.ACK, segs[3], off=3 * MSS)
    c.cli(tr + 400, F.ACK)
    c.close_by_client(tr + 2000)
    checkpoints(k, 0)
    all_released(k, max_delay=150)
    frame_delay(k, r1, 0)
    frame_delay(k, r2, 0)
    counters(k, pvm_retransmits={"min": 2}, released__retransmit={"min": 2})
    return k


@case
def tcp_retransmit_svm():
    k = Case("tcp_retransmit_svm", "SVM retransmits matched bytes: discarded",
             "The SVM sends its 6 segments twice (a spurious retransmission of all of them "
             "5 ms later); the copies at or below the compare point are discarded. No "
             "checkpoint; every PVM frame released at the first SVM copy.")
    c = TcpConn(k)
    resp = http_response("rtxs", 6 * MSS - 300)
    t = c.passive_open(START)
    c.request(t + 20, HTTP_GET)
    c.respond(t + 300, resp, svm_lag_us=150)
    c.send("s", t + 5300, resp, seg=MSS, off=0)
    c.cli(t + 6000, F.ACK)
    c.close_by_client(t + 8000)
    checkpoints(k, 0)
    all_released(k, max_delay=150)
    counters(k, svm_retransmits={"min": 6})
    return k


@case
def tcp_svm_leads():
    k = Case("tcp_svm_leads", "the SVM is ahead of the PVM",
             "Every SVM frame (SYN/ACK, data, FIN) arrives 40 µs before the PVM's. The SVM's "
             "bytes wait for the PVM's; each PVM frame is released on arrival (delay 0). "
             "No checkpoint.")
    c = TcpConn(k)
    t = START
    c.cli(t, F.SYN)
    c.vm("s", t + 30, F.SYN | F.ACK)
    c.vm("p", t + 70, F.SYN | F.ACK)
    c.cli(t + 400, F.ACK)
    c.request(t + 420, HTTP_GET)
    resp = http_response("lead", 10000)
    c.send("s", t + 700, resp)
    c.send("p", t + 740, resp)
    c.cli(t + 1500, F.ACK)
    c.cli(t + 3000, F.FIN | F.ACK)
    c.vm("s", t + 3030, F.FIN | F.ACK)
    c.vm("p", t + 3070, F.FIN | F.ACK)
    c.cli(t + 3400, F.ACK)
    checkpoints(k, 0)
    all_released(k, max_delay=0)
    return k


@case
def tcp_lag_inside_window():
    k = Case("tcp_lag_inside_window", "SVM 40 ms behind: inside the 100 ms window",
             "The SVM answers everything 40 ms after the PVM (SYN/ACK, 30 data segments, "
             "FIN). Each PVM frame is held 40 ms and released when its SVM copy arrives; "
             "pure ACKs go at once. No checkpoint.")
    c = TcpConn(k)
    t = START
    c.cli(t, F.SYN)
    c.vm("p", t + 40, F.SYN | F.ACK)
    c.vm("s", t + 40_040, F.SYN | F.ACK)
    c.cli(t + 340, F.ACK)
    c.request(t + 360, HTTP_GET)
    resp = http_response("lagin", 30 * MSS - 200)
    c.send("p", t + 600, resp, gap_us=50)
    c.send("s", t + 40_600, resp, gap_us=50)
    c.cli(t + 41_000, F.ACK)
    c.cli(t + 60_000, F.FIN | F.ACK)
    c.vm("p", t + 60_040, F.FIN | F.ACK)
    c.vm("s", t + 100_000, F.FIN | F.ACK)
    c.cli(t + 60_400, F.ACK)
    checkpoints(k, 0)
    all_released(k, max_delay=40_000)
    return k


@case
def tcp_lag_beyond_window():
    k = Case("tcp_lag_beyond_window", "SVM 150 ms behind: deadline checkpoint",
             "Handshake in step; then the PVM sends 10 data segments and the SVM sends the "
             "same bytes 150 ms later. The first held PVM segment reaches compare_timeout "
             "(100 ms): one checkpoint request, reason deadline; at checkpoint done (1 ms "
             "later) every held PVM segment is released. The SVM's late segments arrive "
             "after the checkpoint, at or below the compare point, and are discarded. Both "
             "VMs use the same ISN here so that those late segments, numbered before the "
             "checkpoint, sit where a rebased connection expects them.")
    c = TcpConn(k, svm_isn=0x1F3A0000)
    t = c.passive_open(START)
    c.request(t + 20, HTTP_GET)
    resp = http_response("lagout", 10 * MSS - 40)
    ip, _ = c.send("p", t + 300, resp)
    c.send("s", t + 150_300, resp)
    c.cli(t + 1300, F.ACK)
    c.close_by_client(t + 200_000)
    checkpoints(k, 1, deadline=1)
    request_at(k, ip[0], TIMEOUT_US, TIMEOUT_US + DEADLINE_SLACK_US)
    all_released(k)
    frame_delay(k, ip[0], TIMEOUT_US + LATENCY_US, TIMEOUT_US + LATENCY_US + DEADLINE_SLACK_US)
    counters(k, svm_retransmits={"min": 10}, held_svm=0)
    return k


@case
def tcp_rebase_after_checkpoint():
    k = Case("tcp_rebase_after_checkpoint", "different ISNs, a checkpoint mid-stream, then more data",
             "PVM and SVM have different ISNs. The SVM lags 150 ms on the first response, "
             "so a deadline checkpoint is requested; at checkpoint done the SVM becomes a "
             "copy of the PVM, so everything the SVM sends afterwards (second response, "
             "FIN) is numbered in the PVM's sequence space, with the PVM's timestamp clock. "
             "The SVM's lagging copy of the first response never appears (the SVM was "
             "replaced). The engine must rebase the offset to zero: the second response "
             "matches, one checkpoint in all.")
    c = TcpConn(k)
    t = c.passive_open(START)
    c.request(t + 20, HTTP_GET)
    r1 = http_response("rebase1", 4 * MSS)
    ip, _ = c.send("p", t + 300, r1)
    # deadline at t+300+100ms, done 1 ms later: the SVM is now the PVM's copy
    c.isn["s"], c.nxt["s"] = c.isn["p"], c.nxt["p"]
    c.ts_base["s"], c.win["s"], c.ipid["s"] = c.ts_base["p"], c.win["p"], c.ipid["p"]
    t2 = t + 120_000
    c.cli(t2, F.ACK)
    c.request(t2 + 100, HTTP_GET)
    r2 = http_response("rebase2", 6 * MSS)
    c.respond(t2 + 400, r2, svm_lag_us=130)
    c.cli(t2 + 2000, F.ACK)
    c.close_by_client(t2 + 5000)
    checkpoints(k, 1, deadline=1)
    request_at(k, ip[0], TIMEOUT_US, TIMEOUT_US + DEADLINE_SLACK_US)
    all_released(k)
    return k


def mismatch_case(name, title, story, flip_at):
    k = Case(name, title, story)
    c = TcpConn(k)
    t = c.passive_open(START)
    c.request(t + 20, HTTP_GET)
    resp = http_response(name, 10 * MSS - 123)
    flip_at %= len(resp)
    bad = bytearray(resp)
    bad[flip_at] ^= 0x20
    ip, _ = c.send("p", t + 300, resp)
    _, ts_last = c.send("s", t + 420, bytes(bad))
    seg_bad = flip_at // MSS
    t_mis = t + 420 + 12 * seg_bad          # SVM segment carrying the flipped byte
    # After checkpoint done (t_mis + 1 ms) the SVM is a copy of the PVM.
    c.isn["s"], c.nxt["s"] = c.isn["p"], c.nxt["p"]
    c.ts_base["s"], c.win["s"], c.ipid["s"] = c.ts_base["p"], c.win["p"], c.ipid["p"]
    c.cli(t + 5000, F.ACK)
    c.close_by_client(t + 10_000)
    checkpoints(k, 1, payload_mismatch=1)
    request_at(k, ip[seg_bad], 120, 120)
    all_released(k, order="set", max_delay=120 + LATENCY_US + 12 * 10)
    frame_delay(k, ip[seg_bad], 120 + LATENCY_US)
    return k


@case
def tcp_mismatch_start():
    return mismatch_case("tcp_mismatch_start", "payload differs in the first byte",
                         "The first byte of the SVM's response differs ('H' vs 'h'): a "
                         "payload_mismatch request when the SVM's first segment arrives; "
                         "the PVM's first segment is released at checkpoint done, 1 ms "
                         "later. After the checkpoint the SVM (now a copy of the PVM) closes "
                         "in PVM sequence space. Exactly one request.", 0)


@case
def tcp_mismatch_middle():
    return mismatch_case("tcp_mismatch_middle", "payload differs in the middle",
                         "Byte 7000 of 14357 differs (inside segment 4): segments 0-3 are "
                         "matched and released, a payload_mismatch request comes when the "
                         "SVM's segment 4 arrives, and segment 4 is released at checkpoint "
                         "done. Exactly one request.", 7000)


@case
def tcp_mismatch_end():
    return mismatch_case("tcp_mismatch_end", "payload differs in the last byte",
                         "The last byte of the response differs: 9 segments are matched, "
                         "the last one mismatches; one payload_mismatch request, the last "
                         "PVM segment released at checkpoint done.", -1)


@case
def tcp_fin_vs_rst():
    k = Case("tcp_fin_vs_rst", "PVM closes with FIN, SVM with RST at the same position",
             "After a matched response, the PVM sends FIN and the SVM sends RST at the same "
             "sequence position: an event_mismatch request; the PVM's FIN is released at "
             "checkpoint done. Exactly one request.")
    c = TcpConn(k)
    t = exchange(c, START, http_response("finrst", 3000), close=False)
    ipf = c.vm("p", t + 100, F.FIN | F.ACK)
    c.vm("s", t + 190, F.RST | F.ACK)
    c.cli(t + 500, F.ACK)
    checkpoints(k, 1, event_mismatch=1)
    request_at(k, ipf, 90, 90)
    all_released(k)
    frame_delay(k, ipf, 90 + LATENCY_US)
    return k


@case
def tcp_rst_vs_fin():
    k = Case("tcp_rst_vs_fin", "PVM aborts with RST, SVM closes with FIN",
             "The mirror of tcp_fin_vs_rst: RST from the PVM, FIN from the SVM at the same "
             "position. One event_mismatch request; the RST is released at checkpoint done.")
    c = TcpConn(k)
    t = exchange(c, START, http_response("rstfin", 3000), close=False)
    ipr = c.vm("p", t + 100, F.RST | F.ACK)
    c.vm("s", t + 190, F.FIN | F.ACK)
    checkpoints(k, 1, event_mismatch=1)
    all_released(k)
    frame_delay(k, ipr, 90 + LATENCY_US)
    return k


@case
def tcp_rst_both():
    k = Case("tcp_rst_both", "both VMs reset at the same position",
             "After a matched response both VMs send RST at the same sequence position (the "
             "application aborted): the events match, the PVM's RST is released when the "
             "SVM's arrives (90 µs). No checkpoint.")
    c = TcpConn(k)
    t = exchange(c, START, http_response("rstboth", 3000), close=False)
    ipr = c.vm("p", t + 100, F.RST | F.ACK)
    c.vm("s", t + 190, F.RST | F.ACK)
    checkpoints(k, 0)
    all_released(k, max_delay=120)
    frame_delay(k, ipr, 90)
    return k


@case
def tcp_fin_missing_svm():
    k = Case("tcp_fin_missing_svm", "PVM sends FIN, SVM never does",
             "After a matched response the PVM closes (FIN) and the SVM stays silent: the "
             "FIN is an event the SVM never matches, so it waits compare_timeout and a "
             "deadline request follows; the FIN is released at checkpoint done.")
    c = TcpConn(k)
    t = exchange(c, START, http_response("finmiss", 3000), close=False)
    ipf = c.vm("p", t + 100, F.FIN | F.ACK)
    c.cli(t + 400, F.ACK)
    checkpoints(k, 1, deadline=1)
    request_at(k, ipf, TIMEOUT_US, TIMEOUT_US + DEADLINE_SLACK_US)
    all_released(k)
    frame_delay(k, ipf, TIMEOUT_US + LATENCY_US, TIMEOUT_US + LATENCY_US + DEADLINE_SLACK_US)
    return k


@case
def tcp_fin_early_svm():
    k = Case("tcp_fin_early_svm", "SVM closes 1000 bytes early",
             "The SVM sends only the first 3000 of 4000 response bytes and then its FIN; "
             "the PVM sends all 4000 and then FIN. At offset 3000 the SVM has a FIN where "
             "the PVM has data: a divergence (event or payload mismatch), one request. "
             "Everything from the PVM is released.")
    c = TcpConn(k)
    t = c.passive_open(START)
    c.request(t + 20, HTTP_GET)
    resp = http_response("finearly", 4000 - 90)
    c.send("p", t + 300, resp)
    c.vm("p", t + 400, F.FIN | F.ACK)
    c.send("s", t + 420, resp[:3000])
    c.vm("s", t + 500, F.FIN | F.ACK)
    c.cli(t + 900, F.ACK)
    checkpoints(k, 1)
    k.expect["reasons_allowed"] = ["event_mismatch", "payload_mismatch"]
    all_released(k, order="set")
    return k


@case
def tcp_pure_acks():
    k = Case("tcp_pure_acks", "upload: PVM pure ACKs wait only for the SVM's ACK",
             "The client uploads 60 kB; the PVM answers with 21 pure ACKs and a window "
             "update, the SVM with a third as many ACKs 275 µs later (its own delayed-ACK "
             "timing) and then only with its response. Pure ACKs carry nothing to compare; "
             "each waits until the SVM has acknowledged what it acknowledges (docs/design.md "
             "§5.2) and leaves, in order, with the SVM ACK that reaches it: the last ones "
             "with the SVM's copy of the 201 response. No checkpoint.")
    c = TcpConn(k)
    t = c.passive_open(START)
    body = blob("upload", 60 * 1024)
    c.request(t + 10, b"PUT /upload HTTP/1.1\r\nHost: vm\r\nContent-Length: 61440\r\n\r\n")
    pos, ti, n = 0, t + 40, 0
    acks, pvm, svm = [], [], []
    while pos < len(body):
        c.cli(ti, F.ACK, body[pos:pos + MSS])
        pos += MSS
        n += 1
        if n % 2 == 0:
            acks.append(c.vm("p", ti + 25, F.ACK))
            pvm.append((ti + 25, c.nxt["c"]))
            if n % 6 == 0:
                c.vm("s", ti + 300, F.ACK)
                svm.append((ti + 300, c.nxt["c"]))
        ti += 60
    acks.append(c.vm("p", ti + 25, F.ACK, win=1024))
    pvm.append((ti + 25, c.nxt["c"]))
    resp = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    c.respond(ti + 500, resp, svm_lag_us=110)
    svm.append((ti + 610, c.nxt["c"]))
    c.cli(ti + 900, F.ACK)
    checkpoints(k, 0)
    all_released(k)
    for a, (tp, _), r in zip(acks, pvm, release_times(pvm, svm)):
        frame_delay(k, a, r - tp)
    counters(k, released__no_payload={"min": len(acks)})
    return k


@case
def tcp_seq_wrap():
    k = Case("tcp_seq_wrap", "sequence numbers wrap past 2^32 on both VMs",
             "PVM ISN 0xFFFFF000 and SVM ISN 0xFFFFFFF0: both streams wrap (after 4 kB and "
             "after 15 bytes) during a 40 kB response, and the offset between them crosses "
             "zero. Wrap-safe sequence arithmetic: no checkpoint, every frame released.")
    c = TcpConn(k, pvm_isn=0xFFFFF000, svm_isn=0xFFFFFFF0)
    exchange(c, START, http_response("wrap", 40000))
    checkpoints(k, 0)
    all_released(k, max_delay=120)
    svm_ingress_translated(k, c)
    return k


@case
def tcp_sack():
    k = Case("tcp_sack", "client SACK blocks translated for the SVM; PVM retransmission",
             "The VM sends 10 segments; the client reports segment 3 missing with three "
             "duplicate ACKs carrying SACK blocks (in PVM sequence space). The copies sent "
             "to the SVM carry ack and SACK edges moved into SVM space. Both VMs retransmit "
             "segment 3: the PVM's retransmission of matched bytes is released at once, the "
             "SVM's is discarded. No checkpoint.")
    c = TcpConn(k, pvm_isn=0x00C0FFEE, svm_isn=0x7777AAAA)
    t = c.passive_open(START)
    c.request(t + 20, HTTP_GET)
    resp = http_response("sack", 10 * MSS - 90)
    c.respond(t + 300, resp, svm_lag_us=100)
    ta = t + 800
    for j in range(3):
        c.cli(ta + 15 * j, F.ACK, ack_off=3 * MSS, sack=[(4 * MSS, 4 * MSS + 1448 * (2 + 2 * j))])
    seg3 = resp[3 * MSS:4 * MSS]
    rp = c.vm("p", ta + 100, F.ACK, seg3, off=3 * MSS)
    c.vm("s", ta + 190, F.ACK, seg3, off=3 * MSS)
    c.cli(ta + 500, F.ACK)
    c.close_by_client(ta + 2000)
    checkpoints(k, 0)
    all_released(k, max_delay=100)
    frame_delay(k, rp, 0)
    svm_ingress_translated(k, c)
    off = (c.isn["s"] - c.isn["p"]) & 0xFFFFFFFF
    for i, (_, fr) in enumerate(k.frames["ingress"]):
        info = tcp_fields(fr)
        if info["sack"]:
            k.expect["svm_ingress"]["tcp"][str(i)]["sack"] = [
                [(l + off) & 0xFFFFFFFF, (r + off) & 0xFFFFFFFF] for l, r in info["sack"]]
    counters(k, sacks_translated={"min": 3})
    return k


@case
def tcp_tsecr_translated():
    k = Case("tcp_tsecr_translated", "client TSecr moved into the SVM's timestamp clock",
             "PVM and SVM timestamp clocks differ by 0x5E5F5000 ticks. The client echoes the "
             "PVM's TSval; with translate_timestamps (default true) the copy sent to the "
             "SVM echoes the SVM's clock instead (within 2 ticks: the VMs' clocks are read "
             "at slightly different moments). No checkpoint.")
    c = TcpConn(k)
    exchange(c, START, http_response("tsecr", 5000))
    checkpoints(k, 0)
    all_released(k, max_delay=120)
    svm_ingress_translated(k, c)
    d = (c.ts_base["s"] - c.ts_base["p"]) & 0xFFFFFFFF
    for i, (_, fr) in enumerate(k.frames["ingress"]):
        info = tcp_fields(fr)
        if info["tsecr"] and info["flags"] & F.ACK:
            k.expect["svm_ingress"]["tcp"][str(i)]["tsecr"] = {
                "min": (info["tsecr"] + d - 2) & 0xFFFFFFFF, "max": (info["tsecr"] + d + 2) & 0xFFFFFFFF}
    counters(k, tsecr_translated={"min": 1})
    return k


@case
def tcp_ingress_waits_isn():
    k = Case("tcp_ingress_waits_isn", "client ACK before the SVM's SYN/ACK: held, then translated",
             "The SVM's SYN/ACK comes 3 ms after the PVM's, while the client's ACK and "
             "request come 300 µs after it. With hold_svm_ingress (default true) the SVM "
             "copies wait for the SVM's ISN and are then forwarded with the translated "
             "ack. No checkpoint; no client frame goes to the SVM untranslated.")
    c = TcpConn(k, svm_isn=0x2468ACE0)
    t = START
    c.cli(t, F.SYN)
    c.vm("p", t + 40, F.SYN | F.ACK)
    c.cli(t + 340, F.ACK)
    c.request(t + 360, HTTP_GET)
    c.vm("s", t + 3040, F.SYN | F.ACK, ack_off=0)  # a SYN/ACK acknowledges the SYN only
    resp = http_response("waitisn", 3000)
    c.send("p", t + 600, resp)
    c.send("s", t + 3400, resp)
    c.cli(t + 4000, F.ACK)
    c.close_by_client(t + 6000)
    checkpoints(k, 0)
    all_released(k, max_delay=3000)
    svm_ingress_translated(k, c)
    counters(k, ingress_waited_isn={"min": 1}, ingress_untranslated=0)
    return k


@case
def tcp_overlap_svm():
    k = Case("tcp_overlap_svm", "SVM segments overlap (repacketized retransmission)",
             "The SVM sends [0,1448), then [1000,2896) overlapping, then [2000,5000) and the "
             "rest: overlapping bytes equal the stream's. No checkpoint; every PVM frame "
             "released.")
    c = TcpConn(k)
    t = c.passive_open(START)
    c.request(t + 20, HTTP_GET)
    resp = http_response("overlap", 8000 - 90)
    c.send("p", t + 300, resp)
    ts = t + 400
    for n, (a, b) in enumerate([(0, 1448), (1000, 2896), (2000, 5000), (4500, 8000)]):
        c.vm("s", ts + 15 * n, F.ACK, resp[a:b], off=a)
    c.cli(t + 900, F.ACK)
    c.close_by_client(t + 2000)
    checkpoints(k, 0)
    all_released(k, order="set", max_delay=200)
    return k


@case
def tcp_multi_flow():
    k = Case("tcp_multi_flow", "64 interleaved connections",
             "64 connections from 64 client ports, opened 50 µs apart, each with its own "
             "ISNs and a 3-segment response; frames of different connections interleave. "
             "Per flow every PVM frame is released in order; no checkpoint.")
    conns = [TcpConn(k, cli_port=41000 + i, pvm_isn=0x10000000 + i * 0x01000193,
                     svm_isn=0x90000000 - i * 0x00F00017) for i in range(64)]
    t = START
    # interleave by stepping all connections through the same phases
    for i, c in enumerate(conns):
        c.cli(t + 50 * i, F.SYN)
    for i, c in enumerate(conns):
        c.vm("p", t + 4000 + 50 * i, F.SYN | F.ACK)
    for i, c in enumerate(conns):
        c.vm("s", t + 4100 + 50 * i, F.SYN | F.ACK)
    for i, c in enumerate(conns):
        c.cli(t + 8000 + 50 * i, F.ACK)
    for i, c in enumerate(conns):
        c.request(t + 12000 + 50 * i, HTTP_GET)
    for j in range(3):
        for i, c in enumerate(conns):
            data = blob(f"mf{i}", 3 * MSS)[j * MSS:(j + 1) * MSS]
            c.vm("p", t + 16000 + 3500 * j + 50 * i, F.ACK, data)
        for i, c in enumerate(conns):
            data = blob(f"mf{i}", 3 * MSS)[j * MSS:(j + 1) * MSS]
            c.vm("s", t + 16140 + 3500 * j + 50 * i, F.ACK, data)
    checkpoints(k, 0)
    all_released(k, order="per_flow", max_delay=140)
    counters(k, conns_created={"min": 64})
    return k


@case
def tcp_20000_flows():
    k = Case("tcp_20000_flows", "20,000 concurrent connections",
             "20,000 connections (4 client addresses x 5,000 ports) are opened within 200 ms "
             "and all stay open: every PVM SYN/ACK, then every PVM 16-byte greeting, with the "
             "SVM's copies 300 µs behind. No client segments (the engine learns each offset "
             "from the SYN/ACK pair), no TCP options, to keep the files small. The table "
             "(max_connections 65536) holds them all: no checkpoint, every PVM frame "
             "released in order per flow.",
             made="TCP frames without options; no ingress.pcap.")
    k.has_ingress = False
    n = 20000
    conns = []
    for i in range(n):
        conns.append(TcpConn(k, cli_ip=f"10.1.{i // 5000}.{(i % 5000) // 250 + 1}",
                             cli_port=20000 + (i % 250) * 97 % 40000, ts=False,
                             pvm_isn=(0x01000000 + i * 2654435761) & 0xFFFFFFFF,
                             svm_isn=(0x80000000 + i * 40503) & 0xFFFFFFFF))
    t = START
    for i, c in enumerate(conns):
        c.nxt["c"] = 0
        c.syn_sent["c"] = True
    for phase in range(2):
        base = t + phase * 120_000
        for side, lag in (("p", 0), ("s", 300)):
            for i, c in enumerate(conns):
                ti = base + lag + 5 * i
                if phase == 0:
                    c.vm(side, ti, F.SYN | F.ACK, opts=F.opt_mss(1460))
                else:
                    c.vm(side, ti, F.PSH | F.ACK, b"220 ready %05d\r\n" % (i % 100000), opts=b"")
    k.frames["primary"].sort(key=lambda r: r[0])
    k.frames["secondary"].sort(key=lambda r: r[0])
    checkpoints(k, 0)
    all_released(k, order="per_flow", max_delay=300)
    counters(k, conns_created={"min": n})
    return k


@case
def tcp_table_full():
    k = Case("tcp_table_full", "connection table full of holding connections: a checkpoint",
             "max_connections is set to 16. 40 connections, picked up mid-stream (no "
             "handshake, same ISN on both VMs), each send 200 bytes, 100 µs apart; the SVM "
             "answers 20 ms later, so every tracked connection holds a PVM frame. The 17th "
             "connection's frame finds the table full of connections that hold output: a "
             "checkpoint is requested at once (reason table_full) instead of dropping or "
             "evicting held output. Checkpoint done (1 ms later) releases flows 0-25 and makes "
             "the SVM a copy of the PVM, so the SVM only sends flows 26-39, which have room "
             "in the table again and are matched. One request; every PVM frame released, "
             "per flow in order.")
    settings(k, max_connections=16)
    conns = [TcpConn(k, cli_port=30000 + i, pvm_isn=0x100 + i * 7919, svm_isn=0x100 + i * 7919)
             for i in range(40)]
    for c in conns:
        c.syn_sent = {"p": True, "s": True, "c": True}
    t = START
    ip = [c.vm("p", t + 100 * i, F.PSH | F.ACK, blob(f"tf{i}", 200)) for i, c in enumerate(conns)]
    # The checkpoint (done 1 ms after the 17th frame) released flows 0-25 and made the
    # SVM a copy of the PVM: the SVM never sends those 26 segments; it sends the others.
    for i, c in enumerate(conns):
        if i >= 26:
            c.vm("s", t + 20_000 + 100 * i, F.PSH | F.ACK, blob(f"tf{i}", 200))
    k.has_ingress = False
    checkpoints(k, 1, table_full=1)
    k.expect["reasons_allowed"] = ["table_full", "deadline"]
    request_at(k, ip[16], 0, 0)
    all_released(k, order="per_flow")
    counters(k, conns_table_full={"min": 1})
    return k


@case
def tcp_table_full_offsets():
    k = Case("tcp_table_full_offsets", "table full of idle connections with learned ISN offsets",
             "max_connections 16. 16 connections open (each with different PVM and SVM ISNs) "
             "and go idle; then a 17th opens. Forgetting an idle connection would forget its "
             "ISN offset (its SVM data could no longer be compared, its client ACKs would "
             "reach the SVM untranslated), so the full table requests a checkpoint (reason "
             "table_full). At checkpoint done the SVM becomes a copy of the PVM: from then on "
             "the SVM numbers every old connection in the PVM's sequence space, which the "
             "generator models from the 17th SYN's time + 1 ms on. Then the 16 old "
             "connections each send 300 bytes, matched. Exactly one request, no mismatch.")
    settings(k, max_connections=16)
    conns = [TcpConn(k, cli_port=31000 + i, pvm_isn=0x1000 + i * 7919, svm_isn=0x80000000 + i * 104729)
             for i in range(17)]
    t = START
    for i, c in enumerate(conns[:16]):
        c.cli(t + 500 * i, F.SYN)
        c.vm("p", t + 500 * i + 40, F.SYN | F.ACK)
        c.vm("s", t + 500 * i + 90, F.SYN | F.ACK)
        c.cli(t + 500 * i + 340, F.ACK)
    t17 = t + 10_000
    new = conns[16]
    new.cli(t17, F.SYN)
    new.vm("p", t17 + 40, F.SYN | F.ACK)
    new.vm("s", t17 + 90, F.SYN | F.ACK)
    new.cli(t17 + 340, F.ACK)
    # checkpoint done at t17 + 1 ms: the SVM is now the PVM's copy for the old connections
    for c in conns[:16]:
        c.isn["s"], c.nxt["s"] = c.isn["p"], c.nxt["p"]
        c.ts_base["s"], c.win["s"], c.ipid["s"] = c.ts_base["p"], c.win["p"], c.ipid["p"]
    td = t + 20_000
    ip = []
    for i, c in enumerate(conns[:16]):
        c.request(td + 100 * i, b"GET /%d HTTP/1.1\r\n\r\n" % i)
        ip.append(c.vm("p", td + 100 * i + 40, F.PSH | F.ACK, blob(f"tfo{i}", 300)))
        c.vm("s", td + 100 * i + 90, F.PSH | F.ACK, blob(f"tfo{i}", 300))
    checkpoints(k, 1, table_full=1)
    all_released(k, order="per_flow")
    for i in ip:
        frame_delay(k, i, 50)
    return k


@case
def ipv6_tcp():
    k = Case("ipv6_tcp", "TCP over IPv6, different ISNs",
             "As tcp_identical over IPv6 (2001:db8::2 -> [2001:db8::10]:80), 12 kB response, "
             "different ISNs on the two VMs, client ACKs translated for the SVM. No "
             "checkpoint, every frame released.")
    c = TcpConn(k, cli_ip="2001:db8::2", srv_ip="2001:db8::10", pvm_isn=0x0ABC0000,
                svm_isn=0xDEF00000)
    exchange(c, START, http_response("v6tcp", 12000), pvm_seg=MSS - 20, svm_seg=MSS - 20)
    checkpoints(k, 0)
    all_released(k, max_delay=120)
    svm_ingress_translated(k, c)
    return k


@case
def vlan_tcp():
    k = Case("vlan_tcp", "TCP on 802.1Q VLAN 42, different ISNs",
             "As tcp_identical with every frame tagged VLAN 42: handshake, 8 kB response, "
             "close; ACKs translated for the SVM. No checkpoint.")
    c = TcpConn(k, vlan=42, pvm_isn=0x13572468, svm_isn=0x24681357)
    exchange(c, START, http_response("vlantcp", 8000))
    checkpoints(k, 0)
    all_released(k, max_delay=120)
    svm_ingress_translated(k, c)
    return k
