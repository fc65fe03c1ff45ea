#!/usr/bin/env python3
"""The /lockstep/ DPDK telemetry commands of a real lockstepd, read back through DPDK's
telemetry socket and checked against `lockstepctl stats -j`.

lockstepd runs on net_pcap devices fed by a pcap-fixtures case (clock=tsc; no hugepages,
no PCI) with DPDK telemetry on (no --no-telemetry). Once its counters stop moving (the
inputs are read once), /lockstep/metrics is read with dpdk-telemetry.py -f PREFIX when
it is installed, else with a client of the same protocol written here (a SOCK_SEQPACKET
unix socket at <runtime dir>/dpdk/PREFIX/dpdk_telemetry.v2: a JSON greeting, then one
JSON answer per command). Every port, dataplane-drop and engine counter must agree.

  telemetry_lockstepd.py --lockstepd PATH --lockstepctl PATH --fixture DIR
Exit 0 pass, 1 fail, 77 skip.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TELEMETRY_PY = shutil.which("dpdk-telemetry.py") or (
    "/usr/bin/dpdk-telemetry.py" if os.access("/usr/bin/dpdk-telemetry.py", os.X_OK) else None)


def runtime_dir(prefix):
    base = os.environ.get("RUNTIME_DIRECTORY")
    if not base:
        base = "/var/run" if os.getuid() == 0 else os.environ.get("XDG_RUNTIME_DIR", "/tmp")
    return os.path.join(base, "dpdk", prefix)


def telemetry_own(prefix, commands):
    """Our client of DPDK telemetry v2: the answers to `commands`, in order."""
    path = os.path.join(runtime_dir(prefix), "dpdk_telemetry.v2")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(10)
    s.connect(path)
    try:
        hello = json.loads(s.recv(1024).decode())
        size = int(hello["max_output_len"])
        out = []
        for c in commands:
            s.send(c.encode())
            out.append(json.loads(s.recv(size).decode()))
        return out
    finally:
        s.close()


def telemetry_script(prefix, commands):
    """dpdk-telemetry.py, non-interactive: commands on stdin, one JSON answer a line."""
    p = subprocess.run([sys.executable, TELEMETRY_PY, "-f", prefix], input="\n".join(commands) + "\n",
                       capture_output=True, text=True, timeout=30)
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    if p.returncode != 0 or len(lines) != len(commands):
        raise RuntimeError(f"dpdk-telemetry.py: exit {p.returncode}: {p.stdout[-400:]} {p.stderr[-400:]}")
    return [json.loads(l) for l in lines]


def flat(d, pre=""):
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            out.update(flat(v, pre + k + "."))
        else:
            out[pre + k] = v
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lockstepd", required=True)
    ap.add_argument("--lockstepctl", required=True)
    ap.add_argument("--fixture", required=True)
    a = ap.parse_args()
    for f in ("ingress.pcap", "primary.pcap", "secondary.pcap"):
        if not os.path.exists(os.path.join(a.fixture, f)):
            print(f"SKIP: fixture without {f}")
            return 77

    work = tempfile.mkdtemp(prefix="lstel")
    prefix = f"lstel{os.getpid()}"
    ctl_sock = os.path.join(work, "ctl")
    log_path = os.path.join(work, "lockstepd.log")
    cmd = [a.lockstepd,
           "--set", f"ports.ext=net_pcap0,rx_pcap={a.fixture}/ingress.pcap,tx_pcap={work}/ext-out.pcap",
           "--set", f"ports.pvm=net_pcap1,rx_pcap={a.fixture}/primary.pcap,tx_pcap={work}/pvm-out.pcap",
           "--set", f"ports.svm=net_pcap2,rx_pcap={a.fixture}/secondary.pcap,tx_pcap={work}/svm-out.pcap",
           "--ctrl-socket", ctl_sock, "--metrics", "off",
           "--", f"--file-prefix={prefix}"]
    log = open(log_path, "w", encoding="utf-8")
    lsd = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    failures = []

    def ctl(*args):
        p = subprocess.run([a.lockstepctl, "-s", ctl_sock, "-j", *args], capture_output=True,
                           text=True, timeout=15)
        if p.returncode != 0:
            raise RuntimeError(f"lockstepctl {' '.join(args)}: exit {p.returncode}: {p.stderr}")
        return json.loads(p.stdout)

    try:
        for _ in range(200):  # bounded: 20 s
            if lsd.poll() is not None:
                raise RuntimeError("lockstepd exited at start")
            if "running" in open(log_path, encoding="utf-8", errors="replace").read():
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("lockstepd did not start")
        sock = os.path.join(runtime_dir(prefix), "dpdk_telemetry.v2")
        if not os.path.exists(sock):
            raise RuntimeError(f"no telemetry socket {sock}: telemetry disabled in the EAL arguments?")

        # The traffic counters settle once the inputs are read; telemetry is read between
        # two stats reads, and a counter is compared only if it did not move between them
        # (a timer-driven engine counter may tick at any time; ports and drops may not).
        commands = ["/lockstep/names", "/lockstep/metrics,lockstep_port_",
                    "/lockstep/metrics,lockstep_dataplane_", "/lockstep/metrics,lockstep_"]
        reader = "dpdk-telemetry.py" if TELEMETRY_PY else "own client"

        def traffic(st):
            return (st["ports"], st["drops"], st["frames"])

        for _attempt in range(5):
            prev, same, stats = None, 0, None
            for _ in range(100):  # bounded: 30 s
                stats = ctl("stats")
                same = same + 1 if prev is not None and traffic(prev) == traffic(stats) else 0
                if same >= 2 and stats["ports"]["ext"]["rx"] > 0:
                    break
                prev = stats
                time.sleep(0.3)
            else:
                raise RuntimeError(f"traffic counters did not settle: {traffic(stats)}")
            answers = (telemetry_script if TELEMETRY_PY else telemetry_own)(prefix, commands)
            own = telemetry_own(prefix, commands[1:3]) if TELEMETRY_PY else answers[1:3]
            after = ctl("stats")
            if traffic(after) == traffic(stats):
                break
        else:
            raise RuntimeError("traffic counters kept moving while telemetry was read")
        ticking = {k for k, v in after["engine"].items() if stats["engine"].get(k) != v}
        if own != answers[1:3]:
            failures.append("dpdk-telemetry.py and the protocol client disagree")
        names = answers[0]["/lockstep/names"]
        ports = answers[1]["/lockstep/metrics"]
        drops = answers[2]["/lockstep/metrics"]
        everything = answers[3]["/lockstep/metrics"]
        for must in ("lockstep_port_rx_frames_total", "lockstep_pvm_in_total",
                     "lockstep_dataplane_drops_total"):
            if must not in names:
                failures.append(f"/lockstep/names lacks {must}")

        checked = 0

        def expect(key, want, table):
            nonlocal checked
            got = table.get(key)
            if got != want:
                failures.append(f"{key}: telemetry {got}, stats {want}")
            checked += 1

        keymap = {"rx": "rx_frames", "rx_bytes": "rx_bytes", "tx": "tx_frames",
                  "tx_bytes": "tx_bytes", "tx_dropped": "tx_dropped"}
        for port, c in stats["ports"].items():
            for k, name in keymap.items():
                expect(f"lockstep_port_{name}_total/port/{port}", c[k], ports)
        for reason, v in stats["drops"].items():
            expect(f"lockstep_dataplane_drops_total/reason/{reason}", v, drops)
        engine_checked = 0
        for k, v in stats["engine"].items():
            if not isinstance(v, int) or k in ticking:
                continue
            for key in (f"lockstep_{k}_total/worker/0", f"lockstep_{k}/worker/0"):
                if key in everything:
                    expect(key, v, everything)
                    engine_checked += 1
                    break
        if engine_checked < 10:
            failures.append(f"only {engine_checked} engine counters found under /lockstep/metrics")
        if stats["ports"]["pvm"]["tx"] == 0 or stats["engine"].get("pvm_in", 0) == 0:
            failures.append("no traffic went through (the check would be vacuous)")
        print(f"telemetry ({reader}): {checked} counters checked against lockstepctl stats "
              f"({engine_checked} engine; moving, not compared: {sorted(ticking)}), {len(names)} names; ext rx {stats['ports']['ext']['rx']}, "
              f"pvm tx {stats['ports']['pvm']['tx']}")
    except Exception as e:  # noqa: BLE001 - every failure is reported the same way
        failures.append(str(e))
    finally:
        if lsd.poll() is None:
            lsd.send_signal(signal.SIGINT)
            try:
                lsd.wait(timeout=20)
            except subprocess.TimeoutExpired:
                lsd.kill()
                lsd.wait()
                failures.append("lockstepd did not stop on SIGINT")
        log.close()
    if failures:
        for f in failures:
            print("FAIL:", f)
        print(open(log_path, encoding="utf-8", errors="replace").read()[-2000:])
        shutil.rmtree(work, ignore_errors=True)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
