"""Normalization cases (issue 6): PVM and SVM differ only in fields the shipped rules
declare nondeterministic (HTTP Date, Expires, Age, X-Request-Id). With the rules: no
checkpoint; without them: one checkpoint per differing response."""
from . import frames as F
from .expect import all_released, checkpoints, counters, settings
from .model import T0, Case, case, text_blob
from .tcpconn import MSS, TcpConn

START = T0 + 2_000_000
GET = b"GET /index.html HTTP/1.1\r\nHost: www.example.org\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"
DATE_A = "Tue, 14 Nov 2023 22:13:20 GMT"
DATE_B = "Tue, 14 Nov 2023 22:13:21 GMT"


def nginx_response(date, body, extra=""):
    """Headers as nginx 1.22 sends them for a static file."""
    head = ("HTTP/1.1 200 OK\r\n"
            "Server: nginx/1.22.1\r\n"
            f"Date: {date}\r\n"
            "Content-Type: text/html\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Last-Modified: Mon, 13 Nov 2023 09:00:00 GMT\r\n"
            "Connection: keep-alive\r\n"
            'ETag: "6551e590-%x"\r\n' % len(body) +
            extra +
            "Accept-Ranges: bytes\r\n\r\n")
    return head.encode() + body


def keepalive(c, t, pairs, lag=150, pvm_seg=MSS, svm_seg=MSS):
    """Passive open, then one GET and one response per (pvm_bytes, svm_bytes) pair on the
    same connection, each response acked by the client; close by the client."""
    t = c.passive_open(t)
    for p, s in pairs:
        c.request(t + 20, GET)
        c.send("p", t + 300, p, seg=pvm_seg)
        _, t_s = c.send("s", t + 300 + lag, s, seg=svm_seg)
        t = max(t_s, t + 300 + lag) + 400
        c.cli(t, F.ACK)
        t += 5000  # the next request comes 5 ms later: every checkpoint is done by then
    c.close_by_client(t)
    return t + 2000


def date_pairs():
    bodies = [text_blob("norm-date-%d" % i, n) for i, n in enumerate((900, 4000, 300))]
    # The first response falls inside one second on both VMs; the next two straddle it.
    return [(nginx_response(DATE_A, bodies[0]), nginx_response(DATE_A, bodies[0])),
            (nginx_response(DATE_A, bodies[1]), nginx_response(DATE_B, bodies[1])),
            (nginx_response(DATE_A, bodies[2]), nginx_response(DATE_B, bodies[2]))]


def date_case(name, title, with_rules):
    story = ("One keep-alive HTTP connection, three GETs answered with nginx's headers. The "
             "PVM answers all three in second :20, the SVM answers the last two in second "
             ":21: their Date headers differ, nothing else does. Both VMs use the same ISN "
             "and no TCP timestamps, so the same captures are valid whether or not a "
             "checkpoint happens (after a checkpoint the SVM is a copy of the PVM). ")
    if with_rules:
        story += ("With the shipped HTTP rules (normalize_rules=@http) the two Date spans "
                  "compare equal: no checkpoint, every PVM frame released as matched, "
                  "normalize.http_date.spans = 2. The same captures without rules are "
                  "norm_http_date_no_rules.")
    else:
        story += ("Without rules (the default) each differing Date is a payload mismatch: "
                  "two checkpoints. The same captures with the HTTP rules are "
                  "norm_http_date.")
    k = Case(name, title, story)
    c = TcpConn(k, pvm_isn=0x51000000, svm_isn=0x51000000, ts=False, cli_port=41000)
    keepalive(c, START, date_pairs())
    if with_rules:
        settings(k, normalize_rules="@http")
        checkpoints(k, 0)
        all_released(k, max_delay=400)
        counters(k, normalize__http_date__spans=2, normalize__http_date__offsets=0,
                 normalize_conns={"max": 1}, normalize_compiles=1)
    else:
        checkpoints(k, 2, payload_mismatch=2)
        all_released(k, order="per_flow")
    return k


@case
def norm_http_date():
    return date_case("norm_http_date", "HTTP Date differs across a second: equal with @http",
                     True)


@case
def norm_http_date_no_rules():
    return date_case("norm_http_date_no_rules",
                     "HTTP Date differs across a second, no rules: 2 checkpoints", False)


@case
def norm_http_split():
    k = Case("norm_http_split", "Date header split at different places on the two VMs",
             "One HTTP response whose Date differs (:20 on the PVM, :21 on the SVM). The PVM "
             "cuts its output in segments of 60, 7, 1448... bytes, so the Date header is "
             "split inside its name; the SVM cuts at 90, 1, 1, 1, 1448... so it is split "
             "inside its value, one byte per segment. Hyperscan's streaming mode sees each "
             "side's bytes in stream order: the same span is found on both, and compares "
             "equal. Different ISNs (learned from the SYN/ACKs); no checkpoint.")
    c = TcpConn(k, ts=False, cli_port=41001)
    body = text_blob("norm-split", 6000)
    p = nginx_response(DATE_A, body)
    s = nginx_response(DATE_B, body)
    t = c.passive_open(START)
    c.request(t + 20, GET)
    c.send("p", t + 300, p, seg=[60, 7] + [MSS] * 8)
    c.send("s", t + 450, s, seg=[90, 1, 1, 1] + [MSS] * 8, gap_us=5)
    t2 = t + 450 + 5 * 20 + 400
    c.cli(t2, F.ACK)
    c.close_by_client(t2 + 1000)
    settings(k, normalize_rules="@http")
    checkpoints(k, 0)
    all_released(k, order="set", max_delay=400)
    counters(k, normalize__http_date__spans=1)
    return k


@case
def norm_http_age_length():
    k = Case("norm_http_age_length",
             "Age: 9 vs Age: 10 (length differs), more data after it, acks translated",
             "A cached response whose Age header is '9' on the PVM and '10' on the SVM: the "
             "SVM's stream is one byte longer from the end of that header on. The span "
             "pair compares equal and the connection's sequence offset grows by one from "
             "the span's end: the 20 kB body after it and a second response compare byte "
             "for byte at shifted positions, and the client's ACKs of bytes past the span "
             "reach the SVM with ack + (SVM ISN - PVM ISN) + 1 (those before it with the "
             "ISN offset alone). A different X-Request-Id per VM (same length) rides along. "
             "No checkpoint; normalize.http_age.offsets = 1.")
    c = TcpConn(k, ts=False, cli_port=41002, pvm_isn=0x7FFFFF00, svm_isn=0x0000F000)
    body = text_blob("norm-age", 20000)
    p = nginx_response(DATE_A, body, "Age: 9\r\nX-Request-Id: 7f3a9c21e4b04d6e\r\n")
    s = nginx_response(DATE_A, body, "Age: 10\r\nX-Request-Id: c0ffee42d00d4bad\r\n")
    age_end = p.index(b"Age: 9\r") + 7  # PVM offset where the SVM starts to be 1 ahead
    second = nginx_response(DATE_A, text_blob("norm-age-2", 2500))
    t = c.passive_open(START)
    c.request(t + 20, GET)
    c.send("p", t + 300, p)
    c.send("s", t + 420, s, seg=1000)
    t += 1500
    c.cli(t, F.ACK, ack_off=age_end - 20)  # acks a position before the span's end
    c.cli(t + 100, F.ACK)                  # acks everything
    c.request(t + 200, GET)
    c.send("p", t + 500, second)
    c.send("s", t + 620, second)
    c.cli(t + 1200, F.ACK)
    c.close_by_client(t + 2000)
    settings(k, normalize_rules="@http")
    checkpoints(k, 0)
    all_released(k, order="set", max_delay=600)
    counters(k, normalize__http_age__offsets=1, normalize__http_age__spans=1,
             normalize__http_request_id__spans=1)
    # Every client frame reaches the SVM; acks past the Age span carry one more.
    import struct
    off = (c.isn["s"] - c.isn["p"]) & 0xFFFFFFFF
    span_end_seq = c.seq("p", age_end)
    exp = {}
    for i, (_, fr) in enumerate(k.frames["ingress"]):
        l4 = 14 + 20
        flags = fr[l4 + 13]
        if not flags & F.ACK or flags & F.SYN:
            continue
        ack = struct.unpack_from("!I", fr, l4 + 8)[0]
        past = ((ack - span_end_seq) & 0xFFFFFFFF) < 0x80000000
        exp[str(i)] = {"ack": (ack + off + (1 if past else 0)) & 0xFFFFFFFF}
    k.expect["svm_ingress"] = {"frames": "all", "tcp": exp}
    return k


@case
def norm_nginx_second_boundary():
    k = Case("norm_nginx_second_boundary",
             "four clients, two nginx replicas answering across a second boundary",
             "A synthetic stand-in for a capture of two nginx servers (PVM and SVM) answering "
             "four clients whose requests arrive around 22:13:20.9998: each replica stamps "
             "Date (and, with 'expires 1h', Expires) from its own clock, and the SVM's "
             "clock has already turned to :21 for the last three. Headers are nginx 1.22's "
             "for a static file; bodies 1-30 kB; each VM with its own ISNs, IP IDs, windows "
             "and timestamp clocks. The frames are generated, so that some replies straddle "
             "the second and some do not (real_nginx_second_boundary is a live capture where "
             "every reply does). With normalize_rules=@http: no "
             "checkpoint, every PVM frame released as matched.")
    sizes = (1200, 30000, 7000, 15000)
    t = START
    for i, n in enumerate(sizes):
        c = TcpConn(k, cli_ip="10.0.0.%d" % (20 + i), cli_port=50000 + i,
                    pvm_isn=0x10000000 * (i + 1) + 0x1234, svm_isn=0x0ABC0000 + 0x01000000 * i)
        body = text_blob("norm-nginx-%d" % i, n)
        d_p = DATE_A
        d_s = DATE_A if i == 0 else DATE_B
        exp_p = "Expires: Tue, 14 Nov 2023 23:13:20 GMT\r\nCache-Control: max-age=3600\r\n"
        exp_s = exp_p.replace("23:13:20", "23:13:21") if i else exp_p
        t0 = c.passive_open(t)
        c.request(t0 + 20, GET)
        c.send("p", t0 + 300, nginx_response(d_p, body, exp_p))
        _, t_s = c.send("s", t0 + 480, nginx_response(d_s, body, exp_s))
        c.cli(t_s + 300, F.ACK)
        c.close_by_client(t_s + 1300)
        t = t_s + 3500
    settings(k, normalize_rules="@http")
    checkpoints(k, 0)
    all_released(k, order="per_flow")
    counters(k, normalize__http_date__spans=3, normalize__http_expires__spans=3,
             normalize_conns={"max": 4})
    return k


@case
def norm_bad_pattern():
    k = Case("norm_bad_pattern", "a normalization pattern that does not compile is refused",
             "normalize_rules holds a rule whose pattern has an unbalanced parenthesis. "
             "The engine compiles every pattern when the settings are applied and refuses "
             "the snapshot with Hyperscan's message naming the rule: exit 2, one line.")
    c = TcpConn(k, ts=False, cli_port=41003)
    keepalive(c, START, date_pairs()[:1])
    settings(k, normalize_rules="@http;broken tcp:80 Date: (Mon|Tue")
    k.expect["exit"] = 2
    k.expect["stderr_contains"] = ["normalize rule 'broken'", "Hyperscan"]
    return k
