#!/usr/bin/env python3
"""Every lockstep program's command line, through the real binaries: --help prints
"usage: PROGRAM" first, on stdout, in lines of 100 columns at most, and exits 0;
--version and -V print "PROGRAM VERSION" (meson's project version) and exit 0; an unknown
option exits with the program's usage status and one line "PROGRAM: ..." on stderr,
nothing on stdout. Then what each program adds: lockstepctl's help without a daemon,
lockstepd --colo-compare's own help and properties, lockstep-replay's required options.

usage: cli_programs.py VERSION PROGRAM...
"""
import os
import subprocess
import sys
import tempfile

VERSION = sys.argv[1]
PROGRAMS = {os.path.basename(p): p for p in sys.argv[2:]}
# lockstepctl's 2 means "rejected by the daemon": its usage errors exit 1.
USAGE_STATUS = {"lockstepctl": 1}
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def run(*args, env=None):
    e = dict(os.environ)
    e.pop("LOCKSTEP_CTL_SOCKET", None)
    e.update(env or {})
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=30, env=e)
    return p.returncode, p.stdout, p.stderr


def fits(text):
    long = [l for l in text.splitlines() if len(l) > 100]
    return not long, long[:1]


for name, path in sorted(PROGRAMS.items()):
    rc, out, err = run(path, "--help")
    check(rc == 0 and out.startswith("usage: " + name + " "),
          "%s --help: exit 0, usage first (%d, %r)" % (name, rc, out[:60]))
    ok, long = fits(out)
    check(ok, "%s --help fits 100 columns %s" % (name, long))
    check("--version" in out and "--help" in out, "%s --help lists --help and --version" % name)
    for flag in ("--version", "-V"):
        rc, out, err = run(path, flag)
        check(rc == 0 and out == "%s %s\n" % (name, VERSION),
              "%s %s: %r (exit %d)" % (name, flag, out, rc))
    want = USAGE_STATUS.get(name, 2)
    rc, out, err = run(path, "--no-such-option")
    check(rc == want, "%s --no-such-option exits %d (got %d)" % (name, want, rc))
    check(out == "", "%s --no-such-option prints nothing on stdout (%r)" % (name, out))
    check(err.startswith(name + ": ") and err.count("\n") == 1 and "--no-such-option" in err,
          "%s --no-such-option: one line naming it (%r)" % (name, err))

ctl = PROGRAMS.get("lockstepctl")
if ctl:
    nowhere = os.path.join(tempfile.mkdtemp(prefix="lockstep-cli-"), "none.ctl")
    rc, out, err = run(ctl, "-s", nowhere, "help")
    check(rc == 0 and out.startswith("COMMAND") and "config set" in out and "qos show" in out,
          "lockstepctl help without a daemon: the built-in list (%d %r)" % (rc, out[:80]))
    check("built-in" in err, "lockstepctl help without a daemon says so on stderr (%r)" % err)
    ok, long = fits(out)
    check(ok, "lockstepctl help fits 100 columns %s" % long)
    rc, out, err = run(ctl, "help", env={"LOCKSTEP_CTL_SOCKET": nowhere})
    check(rc == 0 and "checkpoint-policy" in out, "LOCKSTEP_CTL_SOCKET and help")
    for args in (["help", "config", "set"], ["config", "set", "--help"],
                 ["config", "set", "-h"], ["--json", "config", "set", "--help"]):
        rc, out, err = run(ctl, "-s", nowhere, *args)
        want = '"usage":"config set KEY=VALUE..."' if "--json" in args else "usage: config set KEY=VALUE..."
        check(rc == 0 and want in out, "lockstepctl %s without a daemon (%d %r)" % (" ".join(args), rc, out))
    rc, out, err = run(ctl, "-s", nowhere, "help", "qos", "class")
    ok, long = fits(out)
    check(rc == 0 and "usage: qos class" in out and ok,
          "lockstepctl help qos class wrapped to 100 columns (%r)" % out)
    rc, out, err = run(ctl, "-s", nowhere, "help", "nope")
    check(rc == 2 and "unknown command 'nope'" in err, "help of an unknown command exits 2 (%r)" % err)
    rc, out, err = run(ctl, "-s", nowhere, "status")
    check(rc == 1 and "is lockstepd running" in err, "no daemon: exit 1 (%d %r)" % (rc, err))
    rc, out, err = run(ctl, "-s", nowhere)
    check(rc == 1 and "usage: lockstepctl" in err, "no command: usage on stderr, exit 1")
    rc, out, err = run(ctl, "-t", "0", "status")
    check(rc == 1 and err.startswith("lockstepctl: ") and "3600" in err, "-t 0 (%r)" % err)
    rc, out, err = run(ctl, "-t")
    check(rc == 1 and err.startswith("lockstepctl: "), "-t without a value (%r)" % err)

lsd = PROGRAMS.get("lockstepd")
if lsd:
    rc, out, err = run(lsd, "--colo-compare", "--help")
    check(rc == 0 and out.startswith("usage: lockstepd --colo-compare primary_in=SPEC"),
          "lockstepd --colo-compare --help (%r)" % out[:80])
    rc, out, err = run(lsd, "--colo-compare", "--version")
    check(rc == 0 and out == "lockstepd %s\n" % VERSION, "lockstepd --colo-compare --version")
    rc, out, err = run(lsd, "--colo-compare", "primary_in=unix:/x,server", "bogus=1")
    check(rc == 2 and "unknown property 'bogus'" in err and err.count("\n") == 1,
          "lockstepd --colo-compare bogus=1 (%r)" % err)
    rc, out, err = run(lsd, "--colo-compare", "primary_in=unix:/x,server", "--set", "nokey")
    check(rc == 2 and "KEY=VALUE" in err, "--colo-compare --set nokey (%r)" % err)
    rc, out, err = run(lsd, "--duration", "-1")
    check(rc == 2 and err.startswith("lockstepd: ") and "--duration" in err,
          "lockstepd --duration -1 (%r)" % err)
    rc, out, err = run(lsd, "--set", "a=1", "stray")
    check(rc == 2 and "unexpected argument 'stray'" in err, "--set takes one word (%r)" % err)
    rc, out, err = run(lsd, "--set", "novalue")
    check(rc == 2 and "expected KEY=VALUE" in err, "lockstepd --set novalue (%r)" % err)
    rc, out, err = run(lsd, "--config")
    check(rc == 2 and "--config" in err, "lockstepd --config without a value (%r)" % err)
    rc, out, err = run(lsd, "stray")
    check(rc == 2 and "stray" in err, "lockstepd stray word (%r)" % err)
    rc, out, err = run(lsd, "--print-config")
    check(rc == 0 and "ports" in out, "lockstepd --print-config")
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write("# my host\nworkers: 1\n")
        f.flush()
        rc, out, err = run(lsd, "--config", f.name, "--print-config", "--set", "workers=2")
        check(rc == 0 and out.startswith("# my host\nworkers: 1\n") and "#   workers=2" in out,
              "lockstepd --print-config honours --config and --set (%r)" % out)
    rc, out, err = run(lsd, "--config", "/nonexistent/x.yaml", "--print-config")
    check(rc == 2 and "cannot read" in err, "--print-config of a missing file (%r)" % err)

colo = PROGRAMS.get("lockstep-colo")
if colo:
    rc, out, err = run(colo, "outdev")
    check(rc == 2 and "properties are KEY=VALUE" in err, "lockstep-colo outdev (%r)" % err)
    rc, out, err = run(colo, "primary_in=unix:/x,server")
    check(rc == 2 and "required" in err, "lockstep-colo without secondary_in (%r)" % err)
    # --set takes one word: the property after it stays a property.
    rc, out, err = run(colo, "--set", "non_ip_policy=compare", "filter_rewriter=on")
    check(rc == 2 and "are required" in err, "--set KEY=VALUE then a property (%r)" % err)

ckpt = PROGRAMS.get("lockstep-checkpointer")
if ckpt:
    rc, out, err = run(ckpt)
    check(rc == 2 and "exactly one of --listen and --connect" in err, "checkpointer: no address (%r)" % err)
    rc, out, err = run(ckpt, "--listen", "/x", "--drop", "2")
    check(rc == 2 and "--drop" in err, "checkpointer --drop 2 (%r)" % err)
    rc, out, err = run(ckpt, "--listen", "/x", "--dialect", "http")
    check(rc == 2 and "--dialect" in err, "checkpointer --dialect http (%r)" % err)

replay = PROGRAMS.get("lockstep-replay")
if replay:
    rc, out, err = run(replay)
    check(rc == 2 and "missing --primary" in err, "lockstep-replay without options (%r)" % err)
    rc, out, err = run(replay, "--list-settings")
    check(rc == 0 and "compare_timeout_us" in out, "lockstep-replay --list-settings")

if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("PASS")
