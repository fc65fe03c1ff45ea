"""ACK progress (docs/design.md §5.2): a PVM frame leaves only once the SVM has acknowledged
every client byte it acknowledges (cumulative ACK and, where both VMs use it, SACK), and
per connection PVM frames leave in arrival order, pure ACKs included."""
from . import frames as F
from .expect import DEADLINE_SLACK_US, LATENCY_US, all_released, checkpoints, counters, \
    frame_delay, release_times, request_at
from .model import T0, Case, blob, case, text_blob
from .tcpconn import MSS, TcpConn

START = T0 + 1_000_000
ACK_TIMEOUT_US = 300_000
UPLOAD = 300_000


def upload_segments(total=UPLOAD):
    """(offset, length) of the client's segments of an upload of `total` bytes."""
    return [(o, min(MSS, total - o)) for o in range(0, total, MSS)]


def upload(c, t0, gap_us=20):
    """The client's upload segments from t0; returns [(time, end offset)] per segment."""
    ends = []
    for i, (o, n) in enumerate(upload_segments()):
        t = t0 + gap_us * i
        c.cli(t, F.ACK | (F.PSH if o + n == UPLOAD else 0), blob(f"upload/{i}", n), off=o)
        ends.append((t, o + n))
    return ends


@case
def tcp_ack_upload_svm_late():
    k = Case("tcp_ack_upload_svm_late", "upload: the SVM acknowledges the same bytes 3 ms late",
             "The client uploads 300 kB. The PVM acknowledges every second segment 30 µs after "
             "it; the SVM acknowledges every third segment, 3 ms late (another delayed-ACK "
             "pattern, a lagging VM). Every PVM ACK waits until the SVM's cumulative ACK "
             "reaches its own, and leaves with the SVM ACK that reaches it: never before, "
             "never later. ACK numbers differ frame by frame all along; progress is the same, "
             "so no checkpoint.")
    c = TcpConn(k)
    t = c.passive_open(START)
    segs = upload(c, t + 100)
    pvm, svm = [], []
    for i, (ts, end) in enumerate(segs):
        if i % 2 == 1 or i == len(segs) - 1:
            pvm.append((ts + 30, end))
    for i, (ts, end) in enumerate(segs):
        if i % 3 == 2 or i == len(segs) - 1:
            svm.append((ts + 3000, end))
    idx = [c.vm("p", tp, F.ACK, ack_off=a) for tp, a in pvm]
    for ts, a in svm:
        c.vm("s", ts, F.ACK, ack_off=a)
    t_end = svm[-1][0] + 500
    resp = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    c.both(t_end, 120, F.PSH | F.ACK, resp)
    c.cli(t_end + 400, F.ACK)
    c.close_by_client(t_end + 1000)
    checkpoints(k, 0)
    all_released(k, max_delay=3000 + 3 * 20)
    for n, r in enumerate(release_times(pvm, svm)):
        frame_delay(k, idx[n], r - pvm[n][0])
    # Every PVM ACK, plus its SYN/ACK and FIN (the SVM's come later).
    counters(k, pvm_ack_waits=len(pvm) + 2)
    return k


@case
def tcp_ack_upload_svm_lost_segment():
    k = Case("tcp_ack_upload_svm_lost_segment",
             "upload: the SVM lost one client segment, its ACK stops at 99,912",
             "The client uploads 300 kB; the SVM never got the segment at offset 99,912 (a "
             "full ring, a lost mirror copy). The VMs send no data, so no payload can differ. "
             "The SVM's cumulative ACK stops at 99,912 and its duplicate ACKs SACK the rest. "
             "PVM ACKs up to 99,912 leave with the SVM's; the first PVM ACK beyond it waits "
             "ack_timeout_us (300 ms) and then a checkpoint is requested with reason "
             "ack_divergence; its done releases every held ACK in order. Releasing them at "
             "once (what an engine that ignores ACKs does) would tell the client the SVM has "
             "bytes it never received.")
    c = TcpConn(k)
    t = c.passive_open(START)
    segs = upload(c, t + 100)
    lost = 99_912 // MSS
    assert lost * MSS == 99_912
    pvm = [(ts + 30, end) for i, (ts, end) in enumerate(segs)
           if i % 2 == 1 or i == len(segs) - 1]
    idx = [c.vm("p", tp, F.ACK, ack_off=a) for tp, a in pvm]
    for i, (ts, end) in enumerate(segs):
        if i < lost:
            if i % 2 == 1:
                c.vm("s", ts + 2000, F.ACK, ack_off=end)
        elif i > lost:
            sack = F.opt_ts(c._tsval("s", ts + 2000), c.last_tsval["c"]) + b"\x01\x01" + \
                F.opt_sack([(c.seq("c", (lost + 1) * MSS), c.seq("c", end))])
            c.vm("s", ts + 2000, F.ACK, ack_off=lost * MSS, opts=sack)
    first_blocked = next(n for n, (tp, a) in enumerate(pvm) if a > lost * MSS)
    checkpoints(k, 1, ack_divergence=1)
    request_at(k, idx[first_blocked], ACK_TIMEOUT_US, ACK_TIMEOUT_US + DEADLINE_SLACK_US)
    all_released(k)
    for n in range(first_blocked):
        frame_delay(k, idx[n], 0, 2000)
    frame_delay(k, idx[first_blocked], ACK_TIMEOUT_US + LATENCY_US,
                ACK_TIMEOUT_US + LATENCY_US + DEADLINE_SLACK_US)
    counters(k, released__checkpoint=len(pvm) - first_blocked)
    return k


@case
def tcp_ack_fin_then_ack():
    k = Case("tcp_ack_fin_then_ack", "the VM closes: its FIN is held, its ACK of the client's FIN waits behind it",
             "The VM closes first. The PVM's FIN waits for the SVM's, which comes 500 µs "
             "later; the client's FIN/ACK comes 300 µs after the PVM's FIN, the SVM "
             "acknowledges it at 310 µs (before its own FIN) and the PVM at 340 µs. The "
             "PVM's ACK is covered by the SVM's at once, but it must not reach the client "
             "before the PVM's FIN: both leave at 500 µs, FIN first. No checkpoint.")
    c = TcpConn(k)
    t = c.passive_open(START)
    c.request(t + 20, b"GET /bye HTTP/1.1\r\nHost: vm\r\n\r\n")
    resp = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nbye\r\n"
    c.both(t + 300, 120, F.PSH | F.ACK, resp)
    c.cli(t + 800, F.ACK)
    tf = t + 2000
    fin = c.vm("p", tf, F.FIN | F.ACK)
    c.cli(tf + 300, F.FIN | F.ACK)
    c.vm("s", tf + 310, F.ACK, off=len(resp))
    ack = c.vm("p", tf + 340, F.ACK)
    c.vm("s", tf + 500, F.FIN | F.ACK, off=len(resp))
    checkpoints(k, 0)
    all_released(k, order="arrival")
    frame_delay(k, fin, 500)
    frame_delay(k, ack, 160)
    return k


@case
def tcp_ack_download_final_ack():
    k = Case("tcp_ack_download_final_ack", "download: the PVM's ACK of client data comes while 60 data segments are held",
             "The VM sends 60 full segments; the SVM's copy lags 5 ms. While they are held "
             "the client sends a 100-byte message; the SVM acknowledges it at once (300 µs), "
             "the PVM with a pure ACK at 240 µs. That ACK must not overtake the held data: "
             "it leaves right after the last data segment before it, when the SVM's copy of "
             "that segment arrives. No checkpoint.")
    c = TcpConn(k)
    t = c.passive_open(START)
    c.request(t + 20, b"GET /big HTTP/1.1\r\nHost: vm\r\n\r\n")
    data = text_blob("download", 60 * MSS)
    t0 = t + 300
    ack_at = t0 + 240
    idx, ack = [], None
    for i in range(60):
        ts = t0 + 12 * i
        if ack is None and ts > ack_at:
            c.cli(ack_at - 40, F.PSH | F.ACK, b"m" * 100, ack_off=0)
            ack = c.vm("p", ack_at, F.ACK, off=i * MSS)
            before = i
        idx.append(c.vm("p", ts, F.ACK, data[i * MSS:(i + 1) * MSS], off=i * MSS))
    c.vm("s", ack_at + 60, F.ACK, off=0)
    for i in range(60):
        c.vm("s", t0 + 5000 + 12 * i, F.ACK, data[i * MSS:(i + 1) * MSS], off=i * MSS)
    c.nxt["p"] = c.nxt["s"] = 60 * MSS
    c.cli(t0 + 6000, F.ACK)
    c.close_by_client(t0 + 7000)
    checkpoints(k, 0)
    all_released(k, order="arrival")
    # Segment `before - 1` arrived at t0 + 12 (before - 1); its SVM copy 5 ms later.
    frame_delay(k, ack, t0 + 5000 + 12 * (before - 1) - ack_at)
    return k


@case
def tcp_ack_sack_both():
    k = Case("tcp_ack_sack_both", "SACK on both sides: a client segment lost before lockstep",
             "The client's 6th upload segment is lost on the way (neither VM gets it). Both "
             "VMs send duplicate ACKs whose SACK block grows with each later segment; the "
             "SVM's come 1 ms after the PVM's. A PVM duplicate ACK's cumulative ACK is "
             "covered at once, its SACK block only when the SVM's SACK covers it: each "
             "leaves 1 ms after it came. The client retransmits the segment, both VMs "
             "acknowledge everything. No checkpoint.")
    c = TcpConn(k)
    t = c.passive_open(START)
    n, lost = 20, 5
    t0 = t + 100
    segs = []
    for i in range(n):
        o = i * MSS
        if i != lost:
            c.cli(t0 + 20 * i, F.ACK, blob(f"sack/{i}", MSS), off=o)
        segs.append((t0 + 20 * i, o + MSS))
    pvm_dups = []
    for side, lag in (("p", 30), ("s", 1030)):
        for i in range(n):
            ts, end = segs[i]
            if i < lost:
                if i % 2 == 1 or i == lost - 1:
                    c.vm(side, ts + lag, F.ACK, ack_off=end)
            elif i > lost:
                opts = F.opt_ts(c._tsval(side, ts + lag), c.last_tsval["c"]) + b"\x01\x01" + \
                    F.opt_sack([(c.seq("c", (lost + 1) * MSS), c.seq("c", end))])
                j = c.vm(side, ts + lag, F.ACK, ack_off=lost * MSS, opts=opts)
                if side == "p":
                    pvm_dups.append(j)
        tr = t0 + 20 * n + 500
        if side == "p":
            c.cli(tr, F.ACK, blob(f"sack/{lost}", MSS), off=lost * MSS)
        done = c.vm(side, tr + lag, F.ACK, ack_off=n * MSS)
        if side == "p":
            final = done
    checkpoints(k, 0)
    all_released(k, order="arrival")
    for j in pvm_dups:
        frame_delay(k, j, 1000)
    frame_delay(k, final, 1000)
    counters(k, pvm_ack_waits={"min": len(pvm_dups)})
    return k
