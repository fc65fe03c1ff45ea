#!/usr/bin/python3
"""Plays every pcap-fixtures case through the real lockstepd on net_pcap devices and
checks that it releases the same frames, in the same order, and requests the same number
of checkpoints as lockstep-replay on the same inputs.

  pcap_fixtures_lockstepd.py --lockstepd PATH --replay PATH [--fixtures DIR] [--out DIR] [CASE...]

lockstepd runs with clock=replay: the worker takes each frame's pcap timestamp (the RX
timestamp net_pcap fills in) as the engine's clock, merges the three inputs by timestamp
and completes checkpoints in that virtual time, so a run is deterministic although
net_pcap delivers the files as fast as it can. net_pcap reads timestamps in microseconds.

Cases whose expect.json wants a refusal (exit != 0) are skipped here: they test
lockstep-replay's own command line. Exit 0 when every case agrees.
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import struct
import subprocess
import sys

sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FIXTURES = os.path.normpath(os.path.join(HERE, "..", "..", "pcap-fixtures"))
SMALL_POOL = 16383
EMPTY_PCAP = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def frames(path):
    """Frames of a pcap file (either byte order, us or ns), without timestamps."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return []
    end = "<" if struct.unpack_from("<I", data, 0)[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    out, off = [], 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack_from(end + "IIII", data, off)
        off += 16
        out.append(data[off:off + incl])
        off += incl
    return out


def case_names(fixtures):
    with open(os.path.join(fixtures, "CASES"), encoding="utf-8") as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def inputs_of(cdir, exp):
    inputs = {"primary": "primary.pcap", "secondary": "secondary.pcap"}
    if os.path.exists(os.path.join(cdir, "ingress.pcap")):
        inputs["ingress"] = "ingress.pcap"
    inputs.update(exp.get("inputs", {}))
    return {k: os.path.join(cdir, v) for k, v in inputs.items() if v}


def run_replay(replay, inputs, exp, out):
    cmd = [replay]
    for side in ("primary", "secondary", "ingress"):
        if side in inputs:
            cmd += [f"--{side}", inputs[side]]
    for key, value in exp.get("settings", {}).items():
        cmd += ["--set", f"{key}={value}"]
    if "checkpoint_latency_us" in exp:
        cmd += ["--checkpoint-latency-us", str(exp["checkpoint_latency_us"])]
    rel = os.path.join(out, "replay-released.pcap")
    ev = os.path.join(out, "replay-events.jsonl")
    cmd += ["--released", rel, "--events", ev]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        return None, f"lockstep-replay exit {p.returncode}: {p.stderr.strip()[:300]}"
    requests = 0
    with open(ev, encoding="utf-8") as f:
        for line in f:
            if line.strip() and json.loads(line).get("event") == "checkpoint_request":
                requests += 1
    return (frames(rel), requests), None


def run_lockstepd(lockstepd, name, inputs, exp, out):
    ingress = inputs.get("ingress")
    if ingress is None:
        ingress = os.path.join(out, "empty.pcap")
        with open(ingress, "wb") as f:
            f.write(EMPTY_PCAP)
    rel = os.path.join(out, "lockstepd-released.pcap")
    stats = os.path.join(out, "lockstepd-stats.json")
    # A small pool starts in half the time; the cases with thousands of frames get the
    # large one (every frame of a case may be held at once).
    total = sum(len(frames(p)) for p in inputs.values())
    big = total > SMALL_POOL // 2
    sets = {
        "clock": "replay",
        "workers": "1",
        "pool.mbufs": "65535" if big else str(SMALL_POOL),
        "eal.memory_mb": "512" if big else "256",
        "ports.ext": f"net_pcap0,rx_pcap={ingress},tx_pcap={rel}",
        "ports.pvm": f"net_pcap1,rx_pcap={inputs['primary']},tx_pcap={os.path.join(out, 'to-pvm.pcap')}",
        "ports.svm": f"net_pcap2,rx_pcap={inputs['secondary']},tx_pcap={os.path.join(out, 'to-svm.pcap')}",
        "checkpointer.latency_us": str(exp.get("checkpoint_latency_us", 1000)),
    }
    for key, value in exp.get("settings", {}).items():
        sets["engine." + key] = str(value)
    cmd = [lockstepd]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    cmd += ["--stats-json", stats, "--", f"--file-prefix=lsfix{os.getpid()}_{name}", "--no-telemetry"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    with open(os.path.join(out, "lockstepd.log"), "w", encoding="utf-8") as f:
        f.write(" ".join(cmd) + "\n" + p.stdout + p.stderr)
    if p.returncode != 0:
        return None, f"lockstepd exit {p.returncode}: {(p.stderr + p.stdout).strip()[-400:]}"
    with open(stats, encoding="utf-8") as f:
        st = json.load(f)
    if st["pool_avail"] != st["pool_size"]:
        return None, f"pool not full at exit: {st['pool_avail']}/{st['pool_size']}"
    return (frames(rel), st["checkpoints"]["requested"]), None


def run_case(a, name):
    """("ok"|"failed"|"replay_failed"|"skip", the line to print)."""
    cdir = os.path.join(a.fixtures, name)
    try:
        with open(os.path.join(cdir, "expect.json"), encoding="utf-8") as f:
            exp = json.load(f)
    except OSError:
        return "skip", ""
    inputs = inputs_of(cdir, exp)
    if exp.get("exit", 0) != 0 or not all(os.path.exists(p) for p in inputs.values()):
        return "skip", ""
    out = os.path.join(a.out, name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    ref, err = run_replay(a.replay, inputs, exp, out)
    if err:
        return "replay_failed", f"FAIL {name}: {err}"
    got, err = run_lockstepd(a.lockstepd, name, inputs, exp, out)
    if err:
        return "failed", f"FAIL {name}: {err}"
    (ref_frames, ref_req), (dp_frames, dp_req) = ref, got
    why = []
    if len(dp_frames) != len(ref_frames):
        why.append(f"released {len(dp_frames)} frames, lockstep-replay {len(ref_frames)}")
    else:
        for i, (x, y) in enumerate(zip(dp_frames, ref_frames)):
            if x != y:
                why.append(f"released frame {i} differs")
                break
    if dp_req != ref_req:
        why.append(f"checkpoint requests {dp_req}, lockstep-replay {ref_req}")
    if why:
        return "failed", f"FAIL {name}: {'; '.join(why)}"
    shutil.rmtree(out, ignore_errors=True)
    return "ok", f"ok   {name}: {len(dp_frames)} released, {dp_req} checkpoint request(s)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lockstepd", required=True)
    ap.add_argument("--replay", required=True)
    ap.add_argument("--fixtures", default=DEFAULT_FIXTURES)
    ap.add_argument("--out", default="pcap-fixtures-lockstepd")
    ap.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    ap.add_argument("cases", nargs="*")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.fixtures, "CASES")):
        print(f"SKIP: no pcap-fixtures/CASES under {a.fixtures}")
        return 77
    names = a.cases or case_names(a.fixtures)
    # Two cases at a time (each lockstepd polls one lcore; clock=replay makes a run
    # deterministic whatever the load), reported in the order of CASES.
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
        results = list(pool.map(lambda n: run_case(a, n), names))
    failed, ran, skipped = [], 0, 0
    for name, (status, text) in zip(names, results):
        if status == "skip":
            skipped += 1
            continue
        ran += status != "replay_failed"
        print(text)
        if status != "ok":
            failed.append(name)
    print(f"\n{ran} case(s) through lockstepd, {len(failed)} failed, {skipped} skipped (refusal cases)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
