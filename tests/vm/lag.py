#!/usr/bin/env python3
"""How far the SVM guest's output lags the PVM's, from lockstepd's captures of its pvm and
svm ports (lockstepctl capture start pvm|svm FILE): for each TCP payload segment a guest
sent from PORT (the server port), keyed by client port and relative sequence end, the
time the SVM's copy reached lockstepd minus the time the PVM's did. Needs tshark.
  lag.py PVM.pcapng SVM.pcapng [PORT]   prints one line"""
import subprocess
import sys


def segments(path: str, port: str) -> dict:
    out = subprocess.run(
        ["tshark", "-r", path, "-Y", f"tcp.srcport=={port} && tcp.len>0", "-T", "fields",
         "-e", "frame.time_epoch", "-e", "tcp.dstport", "-e", "tcp.seq", "-e", "tcp.len"],
        check=True, capture_output=True, text=True, timeout=120).stdout
    first = {}
    for line in out.splitlines():
        t, cport, seq, n = line.split("\t")
        first.setdefault((cport, int(seq) + int(n)), float(t))
    return first


def main() -> None:
    port = sys.argv[3] if len(sys.argv) > 3 else "80"
    pvm, svm = segments(sys.argv[1], port), segments(sys.argv[2], port)
    lags = sorted((svm[k] - pvm[k]) * 1000 for k in pvm.keys() & svm.keys())
    if not lags:
        print("no segment seen from both guests")
        return
    pct = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
    print(f"{len(lags)} segments: SVM behind the PVM by p50 {pct(0.5):.1f} ms, "
          f"p90 {pct(0.9):.1f} ms, p99 {pct(0.99):.1f} ms, max {lags[-1]:.1f} ms "
          f"(min {lags[0]:.1f} ms)")


if __name__ == "__main__":
    main()
