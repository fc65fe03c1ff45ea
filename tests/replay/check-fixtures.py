#!/usr/bin/python3
"""Runs pcap-fixtures cases through lockstep-replay and checks each case's expect.json.

  check-fixtures.py --replay PATH [--fixtures DIR] [--out DIR] [--keep] [CASE...]

With no CASE, every case listed in the fixtures' CASES file runs and a table is printed.
A failure names the case and the expectation and shows the first differing packet.
Outputs of each run (released.pcap, svm-ingress.pcap, events.jsonl, stderr.txt) are kept
under --out/CASE when the case fails or --keep is given. Exit 0 when every case passes.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean when run from meson test
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from replaycheck.checks import Run, check_refusal, check_run  # noqa: E402
from replaycheck.pcapfile import CaptureError, read_capture  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FIXTURES = os.path.normpath(os.path.join(HERE, "..", "..", "pcap-fixtures"))


def load_events(path):
    events = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                events.append(json.loads(line))
    return events


def case_names(fixtures):
    with open(os.path.join(fixtures, "CASES"), encoding="utf-8") as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def command(replay, cdir, exp, out):
    inputs = {"primary": "primary.pcap", "secondary": "secondary.pcap"}
    if os.path.exists(os.path.join(cdir, "ingress.pcap")):
        inputs["ingress"] = "ingress.pcap"
    inputs.update(exp.get("inputs", {}))
    cmd = [replay]
    for side in ("primary", "secondary", "ingress"):
        if inputs.get(side):
            cmd += [f"--{side}", os.path.join(cdir, inputs[side])]
    for key, value in exp.get("settings", {}).items():
        cmd += ["--set", f"{key}={value}"]
    if "checkpoint_latency_us" in exp:
        cmd += ["--checkpoint-latency-us", str(exp["checkpoint_latency_us"])]
    outs = {n: os.path.join(out, n) for n in ("released.pcap", "svm-ingress.pcap", "events.jsonl")}
    cmd += ["--released", outs["released.pcap"], "--svm-ingress", outs["svm-ingress.pcap"],
            "--events", outs["events.jsonl"]]
    return cmd, inputs, outs


def run_case(replay, fixtures, name, out):
    """Returns (fails, figures) where fails is a list of (expectation, detail)."""
    cdir = os.path.join(fixtures, name)
    with open(os.path.join(cdir, "expect.json"), encoding="utf-8") as f:
        exp = json.load(f)
    os.makedirs(out, exist_ok=True)
    cmd, inputs, outs = command(replay, cdir, exp, out)
    for p in outs.values():
        if os.path.exists(p):
            os.remove(p)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    wall = time.monotonic() - t0
    with open(os.path.join(out, "stderr.txt"), "w", encoding="utf-8") as f:
        f.write(" ".join(cmd) + "\n" + proc.stderr)
    fails = []
    if exp.get("exit", 0) != 0:
        check_refusal(exp, proc.returncode, proc.stderr, outs.values(), fails)
        return fails, {"wall_s": wall}
    if proc.returncode != 0:
        fails.append(("exit", f"exit status {proc.returncode}, want 0; stderr: {proc.stderr.strip()[:500]!r}"))
        if not os.path.exists(outs["events.jsonl"]):
            return fails, {"wall_s": wall}
    try:
        frames = {}
        for side in ("primary", "secondary", "ingress"):
            frames[side] = read_capture(os.path.join(cdir, inputs[side]))[1] if side in inputs else []
        released = read_capture(outs["released.pcap"])[1] if os.path.exists(outs["released.pcap"]) else None
        svm_in = read_capture(outs["svm-ingress.pcap"])[1] if os.path.exists(outs["svm-ingress.pcap"]) else None
        events = load_events(outs["events.jsonl"])
    except (CaptureError, OSError, ValueError) as e:
        fails.append(("outputs readable", str(e)))
        return fails, {"wall_s": wall}
    if released is None:
        fails.append(("released file", "not written"))
    run = Run(frames["primary"], frames["secondary"], frames["ingress"], events, released, svm_in)
    check_run(exp, run, fails)
    delays = [e["delay_us"] for e in run.releases]
    figures = {"wall_s": wall, "pvm": len(run.pvm), "released": len(run.releases),
               "requests": len(run.requests),
               "max_delay_us": max(delays) if delays else 0}
    return fails, figures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replay", required=True, help="path of the lockstep-replay binary")
    ap.add_argument("--fixtures", default=DEFAULT_FIXTURES)
    ap.add_argument("--out", help="directory for run outputs (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep outputs of passing cases too")
    ap.add_argument("cases", nargs="*")
    a = ap.parse_args()
    names = a.cases or case_names(a.fixtures)
    tmp = None
    out_root = a.out
    if out_root is None:
        tmp = tempfile.mkdtemp(prefix="fixtures-")
        out_root = tmp
    failed = []
    for name in names:
        out = os.path.join(out_root, name)
        try:
            fails, fig = run_case(a.replay, a.fixtures, name, out)
        except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError, KeyError) as e:
            fails, fig = [("run", f"{type(e).__name__}: {e}")], {}
        if fails:
            failed.append(name)
            print(f"FAIL {name}")
            for what, detail in fails:
                print(f"  {name}: expectation {what}: {detail}")
            print(f"  outputs kept in {out}")
        else:
            extra = ""
            if "pvm" in fig:
                extra = (f"pvm={fig['pvm']} released={fig['released']} requests={fig['requests']} "
                         f"max_delay={fig['max_delay_us']:g}us")
            print(f"ok   {name:32s} {extra} ({fig.get('wall_s', 0):.2f}s)")
            if not a.keep:
                shutil.rmtree(out, ignore_errors=True)
    print(f"{len(names) - len(failed)}/{len(names)} cases pass" +
          (f"; failing: {' '.join(failed)}" if failed else ""))
    if tmp and not failed and not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
