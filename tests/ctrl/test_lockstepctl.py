#!/usr/bin/env python3
"""lockstepctl end to end: the real lockstepctl binary against the real ctrl socket of
ctrl_test_daemon (the ctrl library wired to the FakeDaemon test double, plus a real
checkpointer link to lockstep-checkpointer). Every command with no, valid and invalid
arguments; exit statuses 0/1/2; -s, LOCKSTEP_CTL_SOCKET, -j, --pretty, -t; help and
list-commands; the read-only socket; the metrics HTTP listener; every listed command
called with no argument, '0' and 'z' (the DPDK telemetry smoke idiom).

usage: test_lockstepctl.py LOCKSTEPCTL CTRL_TEST_DAEMON LOCKSTEP_CHECKPOINTER
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

CTL, DAEMON, CKPT = sys.argv[1:4]
failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def ctl(*args, sock=None, env=None, timeout=20):
    cmd = [CTL]
    if sock is not None:
        cmd += ["-s", sock]
    cmd += list(args)
    e = dict(os.environ)
    e.pop("LOCKSTEP_CTL_SOCKET", None)
    if env:
        e.update(env)
    p = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def wait_line(proc, want, timeout=20):
    deadline = time.time() + timeout
    lines = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if want in line:
            return lines
    raise SystemExit("daemon did not print %r: %r" % (want, lines))


tmp = tempfile.mkdtemp(prefix="lockstepctl-test-")
sock = os.path.join(tmp, "ctl.sock")
ro = os.path.join(tmp, "ctl-ro.sock")
ckpt_sock = os.path.join(tmp, "ckpt.sock")

ckpt = subprocess.Popen([CKPT, "--listen", "unix:" + ckpt_sock, "--latency-ms", "10",
                         "--log", os.path.join(tmp, "ckpt.log")])
time.sleep(0.2)
daemon = subprocess.Popen([DAEMON, "--socket", sock, "--ro-socket", ro, "--checkpointer",
                           "unix:" + ckpt_sock, "--metrics", "tcp:127.0.0.1:0"],
                          stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "daemon.err"), "w"),
                          text=True)
try:
    lines = wait_line(daemon, "ready")
    port = next(json.loads(l)["metrics_port"] for l in lines if l.startswith("{\"metrics_port"))

    # --- transport, options, exit statuses -------------------------------------------
    rc, out, err = ctl("version", sock=sock)
    check(rc == 0 and "ctrl_protocol: 1" in out, "version human: %r %r" % (rc, out))
    rc, out, err = ctl("version", env={"LOCKSTEP_CTL_SOCKET": sock})
    check(rc == 0, "LOCKSTEP_CTL_SOCKET honoured")
    rc, out, err = ctl("-j", "version", sock=sock)
    check(rc == 0 and json.loads(out)["ctrl_protocol"] == 1, "-j version")
    rc, out, err = ctl("-j", "--pretty", "version", sock=sock)
    check(rc == 0 and out.startswith("{\n  "), "--pretty indents")
    rc, out, err = ctl("--socket=" + sock, "-t", "2", "version")
    check(rc == 0, "--socket= and -t")
    rc, out, err = ctl("version", sock=os.path.join(tmp, "nope.sock"))
    check(rc == 1 and "lockstepctl:" in err, "connect failure exits 1")
    rc, out, err = ctl(sock=sock)
    check(rc == 1, "no command exits 1")
    rc, out, err = ctl("--bogus", "status", sock=sock)
    check(rc == 1, "unknown option exits 1")
    rc, out, err = ctl("-t", "0", "status", sock=sock)
    check(rc == 1, "bad timeout exits 1")
    rc, out, err = ctl("-t", sock=sock)
    check(rc == 1, "missing timeout value exits 1")
    rc, out, err = ctl("-h")
    check(rc == 0 and "usage: lockstepctl" in out, "-h")
    rc, out, err = ctl("-V")
    check(rc == 0 and out.startswith("lockstepctl "), "-V")
    rc, out, err = ctl("frobnicate", sock=sock)
    check(rc == 2 and "unknown command" in err, "unknown command exits 2")
    rc, out, err = ctl("-j", "frobnicate", sock=sock)
    check(rc == 2 and json.loads(out)["ok"] is False, "-j prints the rejected reply")

    # --- help and list-commands ------------------------------------------------------
    rc, out, err = ctl("list-commands", sock=sock)
    names = out.splitlines()
    for c in ["status", "stats", "conns", "config get", "config set", "checkpoint",
              "checkpoint-policy", "failover",
              "mode", "capture start", "capture stop", "version", "help", "list-commands",
              "metrics"]:
        check(c in names, "list-commands has " + c)
    rc, out, err = ctl("help", sock=sock)
    check(rc == 0 and out.startswith("COMMAND") and "config set" in out, "help table")
    rc, out, err = ctl("help", "config", "set", sock=sock)
    check(rc == 0 and "usage: config set KEY=VALUE..." in out and "(changes state)" in out,
          "help config set: %r" % out)
    rc, out, err = ctl("help", "nope", sock=sock)
    check(rc == 2, "help of an unknown command exits 2")
    rc, out, err = ctl("list-commands", "x", sock=sock)
    check(rc == 2 and "usage: list-commands" in err, "list-commands with an argument")
    rc, out, err = ctl("help", sock=sock)
    check(rc == 0 and err == "", "help with a daemon: no note about the built-in list: %r" % err)
    rc, out, err = ctl("-j", "help", sock=sock)
    listed = [e["command"] for e in json.loads(out)] if rc == 0 else []
    check("config set" in listed and "qos show" in listed,
          "-j help: the daemon's list extended by the built-in one")
    rc, out, err = ctl("status", "--help", sock=sock)
    check(rc == 0 and out.startswith("usage: status"), "status --help: %r" % out)
    rc, out, err = ctl("config", "get", "-h", sock=sock)
    check(rc == 0 and out.startswith("usage: config get"), "config get -h: %r" % out)

    # --- lockstepctl's options after the command ---------------------------------------
    rc, out, err = ctl("stats", "-j", sock=sock)
    check(rc == 0 and isinstance(json.loads(out), dict), "stats -j: %r %r" % (rc, err))
    rc, out, err = ctl("version", "--json", "--pretty", sock=sock)
    check(rc == 0 and out.startswith("{\n  "), "version --json --pretty")
    rc, out, err = ctl("conns", "--limit", "5", "-j", sock=sock)
    check(rc == 0 and out.strip().startswith(("{", "[")), "conns --limit 5 -j: %r" % err)
    rc, out, err = ctl("stats", "--", "-j", sock=sock)
    check(rc == 2 and not out.startswith("{"), "after --, -j goes to the command: %r" % err)
    rc, out, err = ctl("-x", "status", sock=sock)
    check(rc == 1 and "unknown option '-x'" in err, "unknown option before the command")

    # --- every command: none, valid, invalid arguments -------------------------------
    table = [
        # (args, expected exit, substring of stdout (0) or stderr (2))
        (["status"], 0, "checkpointer:"),
        (["status", "x"], 2, "usage: status"),
        (["stats"], 0, "pvm_in: 100"),
        (["stats", "--bogus"], 2, "unknown argument"),
        (["conns"], 0, "FLOW"),
        (["conns", "udp"], 0, "udp 10.0.0.1:53"),
        (["conns", "--limit", "1"], 0, "tcp 10.0.0.1:80"),
        (["conns", "--limit"], 2, "--limit takes"),
        (["conns", "--limit", "zero"], 2, "--limit takes"),
        (["conns", "a", "b"], 2, "one FILTER"),
        (["config", "get"], 0, "compare_timeout_us: 100000"),
        (["config", "get", "reorder_window"], 0, "max: 65536"),
        (["config", "get", "nope"], 2, "unknown setting"),
        (["config", "set"], 2, "usage: config set"),
        (["config", "set", "compare_timeout_us=5000"], 0, "generation: 1"),
        (["config", "set", "compare_timeout_us=5"], 2, "compare_timeout_us"),
        (["config", "set", "mode=turbo"], 2, "mode"),
        (["config", "set", "junk"], 2, "KEY=VALUE"),
        (["config"], 2, "unknown command"),
        (["checkpoint"], 0, "requested: true"),
        (["checkpoint", "now"], 2, "usage: checkpoint"),
        (["mode"], 2, "usage: mode"),
        (["mode", "buffer"], 0, "mode: buffer"),
        (["mode", "warp"], 2, "expected colo"),
        (["capture", "start"], 2, "usage: capture start"),
        (["capture", "start", "pvm", "--max-bytes", "4096"], 0, "max_bytes: 4096"),
        (["capture", "start", "eth9"], 2, "unknown port"),
        (["capture", "start", "svm", "--snaplen", "x"], 2, "--snaplen"),
        (["capture", "stop", "svm"], 2, "no capture"),
        (["capture", "stop"], 0, "stopped: pvm"),
        (["capture"], 2, "unknown command"),
        (["version", "x"], 2, "usage: version"),
        (["metrics"], 0, "# TYPE lockstep_pvm_in_total counter"),
        (["metrics", "x"], 2, "usage: metrics"),
        (["checkpoint-policy"], 0, "timeout_ms: 2000"),
        (["checkpoint-policy", "timeout_ms=1500", "on_timeout=alarm"], 0, "on_timeout: alarm"),
        (["checkpoint-policy", "timeout_ms=0"], 2, "bad 'timeout_ms=0'"),
        (["checkpoint-policy", "on_timeout=panic"], 2, "retry|alarm|failover"),
        (["checkpoint-policy", "x"], 2, "KEY=VALUE"),
        (["failover"], 2, "usage: failover"),
        (["failover", "sideways"], 2, "expected primary or secondary"),
    ]
    for args, want_rc, want in table:
        rc, out, err = ctl(*args, sock=sock)
        text = out if want_rc == 0 else err
        check(rc == want_rc and want in text,
              "%s -> rc %d (want %d), %r not in %r" % (" ".join(args), rc, want_rc, want, text))

    # the checkpoint went through the real link to lockstep-checkpointer and came back
    deadline = time.time() + 10
    done = False
    while time.time() < deadline and not done:
        rc, out, err = ctl("-j", "status", sock=sock)
        st = json.loads(out)
        done = st["checkpointer"]["checkpoint"]["counters"]["done"] >= 1
        time.sleep(0.05)
    check(done, "manual checkpoint completed through the checkpointer link")
    check(st["daemon"]["mode"] == "buffer", "mode change visible in status")
    check(st["config_generation"] == 1, "config generation in status")

    # read-only socket: reads work, state changes exit 2
    rc, out, err = ctl("status", sock=ro)
    check(rc == 0, "status on the read-only socket")
    rc, out, err = ctl("checkpoint-policy", sock=ro)
    check(rc == 0 and "timeout_ms: 1500" in out, "checkpoint-policy readable on the read-only socket")
    for args in (["mode", "colo"], ["failover", "primary"], ["config", "set", "mode=colo"],
                 ["stats", "--reset"], ["checkpoint"], ["checkpoint-policy", "timeout_ms=9"]):
        rc, out, err = ctl(*args, sock=ro)
        check(rc == 2 and "read-only" in err, "read-only refuses " + " ".join(args))

    # stats --reset, failover (final), status shows it
    rc, out, err = ctl("stats", "--reset", sock=sock)
    check(rc == 0 and "pvm_in: 100" in out, "stats --reset shows the values before")
    rc, out, err = ctl("-j", "stats", sock=sock)
    check(json.loads(out)["pvm_in"] == 0, "stats after reset")
    rc, out, err = ctl("failover", "secondary", sock=sock)
    check(rc == 0 and "survivor: secondary" in out, "failover secondary")
    rc, out, err = ctl("failover", "primary", sock=sock)
    check(rc == 2 and "already decided" in err, "second failover refused")
    rc, out, err = ctl("-j", "status", sock=sock)
    st = json.loads(out)
    check(st["failover"]["survivor"] == "secondary", "status shows the failover")
    check(any(e["event"] == "failover" for e in st["events"]), "failover event in status")

    # metrics over HTTP: same names
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
    check("lockstep_failover_decided{survivor=\"secondary\"} 1" in body, "HTTP metrics")
    check("lockstep_checkpointer_done_total" in body, "HTTP metrics carry the link counters")

    # smoke: every listed command with no argument, '0' and 'z': answered, never a crash
    rc, out, err = ctl("list-commands", sock=sock)
    for name in out.splitlines():
        for extra in ([], ["0"], ["z"]):
            rc, o, e = ctl(*(name.split() + extra), sock=sock)
            check(rc in (0, 2), "smoke %s %s -> %d %s" % (name, extra, rc, e))
    check(daemon.poll() is None, "daemon alive after the smoke run")
finally:
    daemon.terminate()
    ckpt.terminate()
    daemon.wait(timeout=10)
    ckpt.wait(timeout=10)

print("%d checks, %d failed" % (checks, len(failures)))
sys.exit(1 if failures else 0)
