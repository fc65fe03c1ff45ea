"""Checks of one replay run against a case's expect.json (schema: pcap-fixtures/README.md).
Each check appends failures as (expectation, detail) pairs."""
import math
import re

from .decode import flow_key, summary


def fits(value, want):
    """want: an int/float (exact) or {"min": a, "max": b} (either bound optional)."""
    if isinstance(want, dict):
        return ("min" not in want or value >= want["min"]) and ("max" not in want or value <= want["max"])
    return value == want


def show(want):
    if isinstance(want, dict):
        return "in [%s, %s]" % (want.get("min", "-inf"), want.get("max", "inf"))
    return f"== {want}"


class Run:
    """What one replay run produced."""

    def __init__(self, pvm, svm, ingress, events, released, svm_ingress):
        self.pvm, self.svm, self.ingress = pvm, svm, ingress          # [(t_ns, bytes)]
        self.events = events
        self.released, self.svm_ingress = released, svm_ingress       # [(t_ns, bytes)] or None
        self.summary = next((e for e in reversed(events) if e.get("event") == "summary"), None)
        self.requests = [e for e in events if e.get("event") == "checkpoint_request"]
        self.dones = [e for e in events if e.get("event") == "checkpoint_done"]
        self.releases = [e for e in events if e.get("event") == "release" and "pvm_index" in e]


def counter(summary, name):
    if name not in summary:
        return None
    v = summary[name]
    return sum(v.values()) if isinstance(v, dict) else v


def check_run(exp, run, fails):
    s = run.summary
    if s is None:
        fails.append(("summary", "no summary line in the events file"))
        return
    # Laws every case obeys.
    for key, want in (("contract", "ok"), ("conservation", "ok"), ("drained", "yes")):
        if s.get(key) != want:
            fails.append((key, f"summary says {s.get(key)!r}"))
    for name, want in (("pvm_in", len(run.pvm)), ("svm_in", len(run.svm)),
                       ("ingress_in", len(run.ingress)), ("held_at_end", 0)):
        if counter(s, name) != want:
            fails.append((f"counters.{name}", f"got {counter(s, name)}, want {want}"))
    check_epochs(run, fails)
    check_checkpoints(exp, run, fails)
    check_released(exp, run, fails)
    check_delays(exp, run, fails)
    for name, want in sorted(exp.get("counters", {}).items()):
        got = counter(s, name)
        if got is None:
            fails.append((f"counters.{name}", "not in the summary"))
        elif not fits(got, want):
            fails.append((f"counters.{name}", f"got {got}, want {show(want)}"))
    if "svm_ingress" in exp:
        check_svm_ingress(exp["svm_ingress"], run, fails)


def check_epochs(run, fails):
    """One request per epoch: requests and completions alternate, epochs increase."""
    seq = [e for e in run.events if e.get("event") in ("checkpoint_request", "checkpoint_done")]
    last_epoch = None
    for i, e in enumerate(seq):
        want = "checkpoint_request" if i % 2 == 0 else "checkpoint_done"
        if e["event"] != want:
            fails.append(("one request per epoch", f"event {i} of the checkpoint sequence is "
                          f"{e['event']} at t_us={e['t_us']}, expected {want}"))
            return
        if want == "checkpoint_request":
            if last_epoch is not None and e["epoch"] <= last_epoch:
                fails.append(("one request per epoch", f"request for epoch {e['epoch']} after "
                              f"one for epoch {last_epoch}"))
                return
            last_epoch = e["epoch"]
        elif e["epoch"] != last_epoch:
            fails.append(("one request per epoch", f"done for epoch {e['epoch']}, requested {last_epoch}"))
            return


def check_checkpoints(exp, run, fails):
    reasons = {}
    for r in run.requests:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    if "checkpoints" in exp and not fits(len(run.requests), exp["checkpoints"]):
        fails.append(("checkpoints", f"got {len(run.requests)} requests {reasons}, want "
                      f"{show(exp['checkpoints'])}" + first_requests(run)))
    want_r = exp.get("checkpoint_reasons")
    if want_r is not None:
        allowed = set(exp.get("reasons_allowed", want_r.keys()))
        for reason, n in sorted(reasons.items()):
            if reason not in allowed:
                fails.append(("checkpoint_reasons", f"{n} request(s) with reason {reason}, "
                              f"allowed: {sorted(allowed) or 'none'}" + first_requests(run)))
        for reason, want in sorted(want_r.items()):
            if not fits(reasons.get(reason, 0), want):
                fails.append((f"checkpoint_reasons.{reason}",
                              f"got {reasons.get(reason, 0)}, want {show(want)}"))
    elif "reasons_allowed" in exp:
        for reason, n in sorted(reasons.items()):
            if reason not in exp["reasons_allowed"]:
                fails.append(("reasons_allowed", f"{n} request(s) with reason {reason}"))
    for k, want in enumerate(exp.get("checkpoint_times_us", [])):
        if k >= len(run.requests):
            fails.append((f"checkpoint_times_us[{k}]", "no such request"))
            continue
        t0 = run.pvm[want["after_pvm"]][0] / 1000
        d = run.requests[k]["t_us"] - t0
        if not fits(d, want):
            fails.append((f"checkpoint_times_us[{k}]", f"request {d:g} µs after PVM frame "
                          f"{want['after_pvm']}, want {show(want)}"))


def first_requests(run, n=3):
    return "".join(f"\n      request t_us={r['t_us']} epoch={r['epoch']} reason={r['reason']} "
                   f"flow={r.get('flow', '')!r}" for r in run.requests[:n])


def check_released(exp, run, fails):
    got = [e["pvm_index"] for e in run.releases]
    # The released file holds exactly those PVM frames, in that order, at those times.
    if run.released is not None:
        if len(run.released) != len(got):
            fails.append(("released file", f"{len(run.released)} records, {len(got)} release events"))
        for k, ((t, fr), idx) in enumerate(zip(run.released, got)):
            if fr != run.pvm[idx][1]:
                fails.append(("released file", f"record {k} is not PVM frame {idx}:\n      want "
                              f"{summary(run.pvm[idx][1])}\n      got  {summary(fr)}"))
                break
            if abs(t / 1000 - run.releases[k]["t_us"]) > 0.001:
                fails.append(("released file", f"record {k} stamped {t} ns, event says "
                              f"{run.releases[k]['t_us']} µs"))
                break
    want = exp.get("released")
    if want is None:
        return
    want = list(range(len(run.pvm))) if want == "all" else list(want)
    order = exp.get("release_order", "arrival")
    if sorted(got) != sorted(want):
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        dup = sorted({i for i in got if got.count(i) > 1}) if len(got) != len(set(got)) else []
        msg = f"{len(got)} released, want {len(want)}"
        for label, idx in (("not released", missing), ("released but not expected", extra),
                           ("released twice", dup)):
            if idx:
                msg += f"; {label}: {len(idx)}, first PVM frame {idx[0]}: {summary(run.pvm[idx[0]][1])}"
        fails.append(("released", msg))
        return
    if order == "arrival" and got != want:
        k = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
        fails.append(("release_order arrival", f"position {k}: want PVM frame {want[k]} "
                      f"({summary(run.pvm[want[k]][1])}), got PVM frame {got[k]} "
                      f"({summary(run.pvm[got[k]][1])})"))
    elif order == "per_flow":
        last = {}
        for k, idx in enumerate(got):
            key = flow_key(run.pvm[idx][1])
            if key in last and last[key] > idx:
                fails.append(("release_order per_flow", f"position {k}: PVM frame {idx} "
                              f"({summary(run.pvm[idx][1])}) released after frame {last[key]} "
                              "of the same flow"))
                break
            last[key] = idx


def percentile(values, p):
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


def check_delays(exp, run, fails):
    delays = {e["pvm_index"]: e["delay_us"] for e in run.releases}
    want = exp.get("release_delay_us")
    if want and delays:
        vals = list(delays.values())
        worst = max(delays, key=lambda i: delays[i])
        best = min(delays, key=lambda i: delays[i])
        if "max" in want and delays[worst] > want["max"]:
            fails.append(("release_delay_us.max", f"PVM frame {worst} waited {delays[worst]:g} µs, "
                          f"max {want['max']} ({summary(run.pvm[worst][1])})"))
        if "min" in want and delays[best] < want["min"]:
            fails.append(("release_delay_us.min", f"PVM frame {best} waited {delays[best]:g} µs, "
                          f"min {want['min']} ({summary(run.pvm[best][1])})"))
        for p in (50, 99):
            key = f"p{p}_max"
            if key in want and percentile(vals, p) > want[key]:
                fails.append((f"release_delay_us.{key}", f"p{p} is {percentile(vals, p):g} µs"))
    for idx, w in sorted(exp.get("frame_delays_us", {}).items(), key=lambda kv: int(kv[0])):
        i = int(idx)
        if i not in delays:
            fails.append((f"frame_delays_us.{i}", f"PVM frame {i} not released ({summary(run.pvm[i][1])})"))
        elif not fits(delays[i], w):
            fails.append((f"frame_delays_us.{i}", f"PVM frame {i} waited {delays[i]:g} µs, want "
                          f"{show(w)} ({summary(run.pvm[i][1])})"))


def check_svm_ingress(want, run, fails):
    from .decode import parse
    import struct
    got = run.svm_ingress or []
    if want.get("frames") == "all" and len(got) != len(run.ingress):
        fails.append(("svm_ingress.frames", f"{len(got)} frames sent to the SVM, want all "
                      f"{len(run.ingress)}"))
        return
    for idx, fields in sorted(want.get("tcp", {}).items(), key=lambda kv: int(kv[0])):
        i = int(idx)
        if i >= len(got):
            fails.append((f"svm_ingress.tcp.{i}", "no such frame"))
            continue
        fr = got[i][1]
        p = parse(fr)
        src = parse(run.ingress[i][1])
        if p.get("seq") != src.get("seq") or p.get("plen") != src.get("plen"):
            fails.append((f"svm_ingress.tcp.{i}", f"frame {i} sent to the SVM is not ingress "
                          f"frame {i}:\n      want {summary(run.ingress[i][1])}\n      got  {summary(fr)}"))
            continue
        opts = tcp_options(fr)
        checks = {"ack": p.get("ack"), "sack": opts.get("sack"), "tsecr": opts.get("tsecr")}
        for name, w in fields.items():
            g = checks[name]
            ok = fits(g, w) if name == "tsecr" and g is not None else g == w
            if not ok:
                fails.append((f"svm_ingress.tcp.{i}.{name}", f"got {g}, want {show(w) if isinstance(w, dict) else w}"
                              f" ({summary(fr)})"))


def tcp_options(fr):
    import struct
    from .decode import _l3
    et, off, _ = _l3(fr)
    if et == 0x0800:
        l4 = off + (fr[off] & 15) * 4
    else:
        l4 = off + 40
    hl = (fr[l4 + 12] >> 4) * 4
    o, out = l4 + 20, {}
    while o < l4 + hl:
        kind = fr[o]
        if kind == 0:
            break
        if kind == 1:
            o += 1
            continue
        ln = fr[o + 1]
        if ln < 2:
            break
        if kind == 5:
            out["sack"] = [list(struct.unpack_from("!II", fr, o + 2 + 8 * j)) for j in range((ln - 2) // 8)]
        if kind == 8:
            out["tsecr"] = struct.unpack_from("!I", fr, o + 6)[0]
        o += ln
    return out


def check_refusal(exp, rc, stderr, outputs, fails):
    if rc != exp["exit"]:
        fails.append(("exit", f"exit status {rc}, want {exp['exit']}; stderr: {stderr.strip()[:300]!r}"))
    lines = [l for l in stderr.splitlines() if l.strip()]
    if len(lines) != 1:
        fails.append(("one-line error", f"{len(lines)} lines on stderr: {stderr[:300]!r}"))
    for needle in exp.get("stderr_contains", []):
        if needle not in stderr:
            fails.append(("stderr_contains", f"{needle!r} not in {stderr.strip()[:300]!r}"))
    if "stderr_regex" in exp and not re.search(exp["stderr_regex"], stderr):
        fails.append(("stderr_regex", f"/{exp['stderr_regex']}/ not in {stderr.strip()[:300]!r}"))
    import os
    for path in outputs:
        for p in (path, path + ".tmp"):
            if os.path.exists(p):
                fails.append(("no output left behind", f"{os.path.basename(p)} exists after the refusal"))
