"""Helpers that fill a case's expect.json (schema: pcap-fixtures/README.md)."""


def all_released(case, order="arrival", max_delay=None, min_delay=None):
    case.expect["released"] = "all"
    case.expect["release_order"] = order
    d = {}
    if max_delay is not None:
        d["max"] = max_delay
    if min_delay is not None:
        d["min"] = min_delay
    if d:
        case.expect["release_delay_us"] = d


def checkpoints(case, count, **reasons):
    case.expect["checkpoints"] = count
    if reasons:
        case.expect["checkpoint_reasons"] = reasons
    elif count == 0:
        case.expect["checkpoint_reasons"] = {}


def frame_delay(case, idx, lo, hi=None):
    fd = case.expect.setdefault("frame_delays_us", {})
    fd[str(idx)] = lo if hi is None else {"min": lo, "max": hi}


def request_at(case, after_pvm, lo, hi):
    """The next checkpoint request (in order) comes lo..hi µs after PVM frame after_pvm."""
    case.expect.setdefault("checkpoint_times_us", []).append(
        {"after_pvm": after_pvm, "min": lo, "max": hi})


def counters(case, **kv):
    case.expect.setdefault("counters", {}).update(
        {k.replace("__", "."): v for k, v in kv.items()})


def settings(case, **kv):
    case.expect.setdefault("settings", {}).update({k: str(v).lower() if isinstance(v, bool)
                                                   else str(v) for k, v in kv.items()})


# A timer wheel may round a deadline up to its tick: a deadline request is expected
# compare_timeout after the frame's arrival, and at most this much later.
DEADLINE_SLACK_US = 1000
TIMEOUT_US = 100_000
LATENCY_US = 1000


def release_times(pvm, svm_acks):
    """The ACK rule (docs/design.md §5.2) as a model: PVM frame (time, acked client offset)
    leaves once the SVM has sent an ACK reaching that offset, and not before the PVM frame
    before it. Returns the release time of each PVM frame."""
    out, last = [], 0
    for t, ack in pvm:
        ready = min(ts for ts, a in svm_acks if a >= ack)
        last = max(t, ready, last)
        out.append(last)
    return out
