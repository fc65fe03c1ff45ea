#!/usr/bin/env python3
"""What a hostile local user or a careless operator did to a running lockstepd (issue 18),
against the real daemon: lockstepd on three net_null devices that receive nothing (no
hugepages, no PCI), its ctrl sockets, lockstepctl, signals.

  capture   files only by name, only in the capture directory, mode 0640, never over a
            file that exists
  live      a change that does not compile is refused (exit 2, the compiler's message);
            later changes are applied and confirmed by the workers
  limits    a full read-only socket leaves the admin socket free; the refused client's
            lockstepctl prints the daemon's reason
  sighup    SIGHUP reloads the file: live keys applied, the others refused with a log
            line, a broken file changes nothing; the daemon lives on
  exit      SIGTERM: final counters, exit 0, the ctrl sockets removed

  hardening_lockstepd.py --lockstepd PATH --lockstepctl PATH [--case NAME]...
Exit 0 pass, 1 fail, 77 skip.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

CONFIG = """ports:
  ext: net_null0,no-rx=1
  pvm: net_null1,no-rx=1
  svm: net_null2,no-rx=1
workers: 1
pool:
  mbufs: 4095
  cache: 0
engine:
  compare_timeout_us: {timeout}
"""


class Daemon:
    def __init__(self, a, work, prefix, extra_config=""):
        self.a, self.work = a, work
        self.ctl_sock = os.path.join(work, "ctl")
        self.ro_sock = os.path.join(work, "ro.ctl")
        self.capture_dir = os.path.join(work, "capture")
        self.config = os.path.join(work, "lockstepd.yaml")
        self.write_config(CONFIG.format(timeout=100000) + extra_config)
        self.log_path = os.path.join(work, "lockstepd.log")
        self.log = open(self.log_path, "w", encoding="utf-8")
        cmd = [a.lockstepd, "--config", self.config, "--ctrl-socket", self.ctl_sock,
               "--ctrl-ro-socket", self.ro_sock, "--capture-dir", self.capture_dir,
               "--metrics", "off", "--", "--no-huge", "-m", "256", "--no-pci",
               f"--file-prefix={prefix}", "--no-telemetry"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if "running" in self.text():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"lockstepd exited {self.proc.returncode} at start:\n{self.text()}")
            time.sleep(0.1)
        raise RuntimeError("lockstepd did not start:\n" + self.text())

    def write_config(self, text):
        with open(self.config, "w", encoding="utf-8") as f:
            f.write(text)

    def text(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_log(self, needle, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.text():
                return True
            time.sleep(0.05)
        return False

    def ctl(self, *args, sock=None, as_json=True, timeout=20):
        cmd = [self.a.lockstepctl, "-s", sock or self.ctl_sock] + (["-j"] if as_json else []) + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        out = p.stdout
        if as_json and p.returncode == 0:
            out = json.loads(p.stdout)
        return p.returncode, out, p.stderr

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def check(failures, cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)
    return cond


def case_capture(d, failures):
    """Issue 18, 1."""
    victim = os.path.join(d.work, "victim")
    with open(victim, "w", encoding="utf-8") as f:
        f.write("precious\n")
    for bad in (victim, "../victim", "a/b", "..", ".hidden"):
        rc, _, err = d.ctl("capture", "start", "ext", bad)
        check(failures, rc == 2, f"capture start ext {bad!r}: exit {rc}, want 2 ({err.strip()})")
    with open(victim, encoding="utf-8") as f:
        check(failures, f.read() == "precious\n", "a file outside the capture directory was written")
    os.makedirs(d.capture_dir, exist_ok=True)
    os.symlink(victim, os.path.join(d.capture_dir, "planted.pcapng"))
    rc, _, err = d.ctl("capture", "start", "ext", "planted.pcapng")
    check(failures, rc == 2, f"a symlink in the capture directory was followed (exit {rc})")
    rc, r, err = d.ctl("capture", "start", "ext", "good.pcapng")
    if check(failures, rc == 0, f"capture start ext good.pcapng: exit {rc}: {err}"):
        check(failures, r["path"] == os.path.join(d.capture_dir, "good.pcapng"), f"path {r['path']}")
        st = os.stat(os.path.join(d.capture_dir, "good.pcapng"))
        check(failures, stat.S_IMODE(st.st_mode) == 0o640, f"capture file mode {oct(st.st_mode)}")
        rc, _, err = d.ctl("capture", "stop", "ext")
        check(failures, rc == 0, f"capture stop: {err}")
    rc, _, err = d.ctl("capture", "start", "ext", "good.pcapng")
    check(failures, rc == 2 and "exists" in err, f"an existing capture file was reused: {rc} {err}")
    with open(victim, encoding="utf-8") as f:
        check(failures, f.read() == "precious\n", "the symlink's target was written")


def case_live(d, failures):
    """Issue 18, 2."""
    rc, _, err = d.ctl("rules", "add", "bad", "tcp:80", "(")
    check(failures, rc == 2, f"rules add with a pattern that does not compile: exit {rc}, want 2")
    check(failures, "normalize_rules" in err, f"no compiler message: {err.strip()}")
    rc, _, err = d.ctl("config", "set", "normalize_rules=bad2 tcp:81 [")
    check(failures, rc == 2, f"config set normalize_rules that does not compile: exit {rc}, want 2")
    rc, r, _ = d.ctl("rules", "list")
    check(failures, rc == 0 and r["rules"] == [], f"a refused rule is listed: {r}")
    # A later change is applied, and every worker says so.
    rc, r, err = d.ctl("config", "set", "compare_timeout_us=50000")
    check(failures, rc == 0, f"a valid change after refused ones: exit {rc}: {err}")
    rc, r, _ = d.ctl("config", "get", "compare_timeout_us")
    check(failures, rc == 0 and str(r.get("value")) == "50000", f"config get: {r}")
    deadline = time.time() + 3  # counters are published ten times a second
    while True:
        rc, r, _ = d.ctl("stats")
        s = r.get("settings", {}) if rc == 0 else {}
        if s.get("applied_by_workers") == 1 or time.time() > deadline:
            break
        time.sleep(0.1)
    check(failures, s.get("applied_by_workers") == 1 and s.get("refused_by_workers") == 0,
          f"the workers did not confirm exactly the one valid change: {s}")
    rc, r, _ = d.ctl("status")
    st = r.get("daemon", {}).get("settings", {}) if rc == 0 else {}
    check(failures, st.get("refused") == 2, f"status does not count the two refused changes: {st}")


def case_limits(d, failures):
    """Issue 18, 3: 64 clients on the read-only socket, each having asked for `version`
    (so not closed as silent)."""
    held = []
    for _ in range(64):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(d.ro_sock)
        s.sendall(b'{"command":"version"}\n')
        held.append(s)
    for s in held:
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    rc, _, err = d.ctl("status", sock=d.ro_sock)
    check(failures, rc == 2 and "too many clients" in err,
          f"lockstepctl on a full read-only socket: exit {rc}, stderr {err.strip()!r}, "
          "want 2 and the daemon's reason")
    rc, _, err = d.ctl("checkpoint")
    check(failures, rc == 0, f"the admin socket is locked out by read-only clients: exit {rc}: {err}")
    for s in held:
        s.close()
    # A client that sends nothing is closed within seconds, not 300 s.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(d.ro_sock)
    t0 = time.time()
    try:
        closed = s.recv(1) == b""
    except socket.timeout:
        closed = False
    check(failures, closed and time.time() - t0 < 10, "a silent client stayed connected")
    s.close()


def case_sighup(d, failures):
    """Issue 18, 4."""
    d.write_config(CONFIG.format(timeout=200000).replace("workers: 1", "workers: 2"))
    d.proc.send_signal(signal.SIGHUP)
    check(failures, d.wait_log("SIGHUP: " + d.config + " reloaded"), "no reload logged")
    check(failures, d.proc.poll() is None, f"SIGHUP ended lockstepd (exit {d.proc.returncode})")
    if d.proc.poll() is not None:
        return
    check(failures, "key 'workers' changed" in d.text(), "the changed workers key is not logged")
    rc, r, _ = d.ctl("config", "get", "compare_timeout_us")
    check(failures, rc == 0 and str(r.get("value")) == "200000", f"SIGHUP did not apply: {r}")
    rc, r, _ = d.ctl("status")
    check(failures, rc == 0 and r["daemon"]["workers"] == 1, "workers changed live")
    # A file that does not load changes nothing.
    d.write_config(CONFIG.format(timeout=300000) + "  normalize_rules: 'bad tcp:80 ('\n")
    d.proc.send_signal(signal.SIGHUP)
    check(failures, d.wait_log("refused, nothing changed"), "a broken file's reload not refused")
    rc, r, _ = d.ctl("config", "get", "compare_timeout_us")
    check(failures, rc == 0 and str(r.get("value")) == "200000", f"a refused reload changed {r}")
    check(failures, d.proc.poll() is None, "lockstepd ended after a second SIGHUP")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lockstepd", required=True)
    ap.add_argument("--lockstepctl", required=True)
    ap.add_argument("--case", action="append")
    a = ap.parse_args()
    cases = {"capture": case_capture, "live": case_live, "limits": case_limits,
             "sighup": case_sighup}
    chosen = a.case or list(cases)
    failures = []
    work = tempfile.mkdtemp(prefix="lshard")
    try:
        d = Daemon(a, work, f"lshard{os.getpid()}")
    except RuntimeError as e:
        print("FAIL:", e)
        shutil.rmtree(work, ignore_errors=True)
        return 1
    try:
        for name in chosen:
            print(f"--- {name}")
            before = len(failures)
            cases[name](d, failures)
            if len(failures) == before:
                print(f"ok: {name}")
            if d.proc.poll() is not None:
                failures.append(f"lockstepd exited during {name}")
                break
        rc = d.stop()
        text = d.text()
        check(failures, rc == 0, f"exit status {rc} at SIGTERM")
        check(failures, "pool" in text or "released" in text, "no final counters at exit")
        for sock in (d.ctl_sock, d.ro_sock):
            check(failures, not os.path.exists(sock), f"{sock} left behind at exit")
        if failures:
            print(text[-3000:])
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
