#!/usr/bin/env python3
"""The Grafana dashboard (dist/grafana/lockstep.json) against what a real lockstepd exports.

lockstepd runs on net_null devices (no hugepages, no PCI; the null ports give both VMs the
same frames) with its Prometheus endpoint on an ephemeral port; /metrics is scraped with
curl (urllib when curl is missing). Every PromQL expression of the dashboard (panel
targets, template variable queries, annotations) is read: each metric it selects must be
a sample name of the scrape (a histogram by its _bucket, _sum or _count series), each label
it matches on must be a label of that metric, and each label it aggregates by must be a
label of a metric it selects. The dashboard must also take its data source from a variable,
and, when Prometheus' promtool is installed, every expression must parse (as recording
rules, the dashboard's variables given values).

  grafana_metrics.py --lockstepd PATH --dashboard PATH
Exit 0 pass, 1 fail, 77 skip (not root, no lockstepd, no net_null driver).
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

# PromQL words that are neither metrics nor functions.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
            "and", "or", "unless", "inf", "nan", "atan2"}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}
DS_VARIABLES = {"${datasource}", "$datasource", "${DS_PROMETHEUS}", "$DS_PROMETHEUS"}


def parse_scrape(text):
    """{sample name: set of label names} of a Prometheus text exposition."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+", line)
        if not m:
            raise ValueError(f"unparsable metrics line: {line!r}")
        labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"', m.group(3) or ""))
        samples.setdefault(m.group(1), set()).update(labels)
    return samples


def expressions(node, where="dashboard"):
    """(where, PromQL expression) for every query in the dashboard."""
    if isinstance(node, dict):
        title = node.get("title") or node.get("name") or ""
        here = f"{where}/{title}" if title else where
        for k, v in node.items():
            if k == "expr" and isinstance(v, str) and v.strip():
                yield here, v
            elif k in ("query", "definition") and isinstance(v, str) and "(" in v:
                yield here, label_values_expr(v)
            else:
                yield from expressions(v, here)
    elif isinstance(node, list):
        for v in node:
            yield from expressions(v, where)


def label_values_expr(q):
    """Grafana's label_values(METRIC, LABEL) as a selector with that label's name aggregated."""
    m = re.fullmatch(r"\s*label_values\(\s*(.*?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*", q)
    if m:
        return f"count by ({m.group(2)}) ({m.group(1)})"
    m = re.fullmatch(r"\s*(?:query_result|metrics)\((.*)\)\s*", q)
    return m.group(1) if m else q


def check_expr(expr, samples):
    """What is wrong with one expression against the scrape, and the metrics it selects."""
    problems, metrics = [], []
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)      # string literals (label values)
    e = re.sub(r"\[[^\]]*\]", "", e)                    # range and subquery durations
    e = re.sub(r"\boffset\s+\S+", "", e)
    grouping = []
    for m in re.finditer(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", e):
        grouping += [g.strip() for g in m.group(2).split(",") if g.strip()]
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    matchers = []  # (metric or None, label names)
    for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}", e):
        names = re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", m.group(2))
        matchers.append((m.group(1), names))
    e = re.sub(r"\{[^}]*\}", " ", e)
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS or re.fullmatch(r"\d.*", word):
            continue
        metrics.append(word)
        if word not in samples:
            problems.append(f"metric {word} is not exported")
    for metric, names in matchers:
        if metric is None:
            problems.append("a selector without a metric name")
            continue
        for n in names:
            if n == "__name__":
                problems.append("selects metrics by __name__: not checkable")
            elif n not in TARGET_LABELS and metric in samples and n not in samples[metric]:
                problems.append(f"label {n} is not a label of {metric}")
    for g in grouping:
        if g in TARGET_LABELS or g == "__name__":
            continue
        if not any(g in samples.get(mt, set()) for mt in metrics):
            problems.append(f"aggregates by {g}, a label of none of {', '.join(metrics) or 'its metrics'}")
    return problems, metrics


def check_datasources(dash):
    """Every panel and query names its data source through a variable."""
    problems = []
    variables = {v.get("name") for v in dash.get("templating", {}).get("list", [])
                 if v.get("type") == "datasource"}
    inputs = {i.get("name") for i in dash.get("__inputs", []) if i.get("type") == "datasource"}
    if "datasource" not in variables and "DS_PROMETHEUS" not in inputs:
        problems.append("no `datasource` template variable and no DS_PROMETHEUS input")

    def walk(node, where):
        if isinstance(node, dict):
            ds = node.get("datasource")
            if isinstance(ds, dict) and ds.get("type") == "prometheus" and ds.get("uid") not in DS_VARIABLES:
                problems.append(f"{where}: data source {ds.get('uid')!r} is not a variable")
            elif isinstance(ds, str) and ds not in DS_VARIABLES:
                problems.append(f"{where}: data source {ds!r} is not a variable")
            for k, v in node.items():
                walk(v, f"{where}/{node.get('title', '')}" if k == "panels" else where)
        elif isinstance(node, list):
            for v in node:
                walk(v, where)
    walk(dash.get("panels", []), "panels")
    return problems


def promtool_check(queries, work):
    """promtool's parse of every expression, None when promtool is missing."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return None
    values = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h",
              "$instance": ".*", "${instance}": ".*"}
    rules = []
    for i, (_, expr) in enumerate(queries):
        for k, v in values.items():
            expr = expr.replace(k, v)
        rules.append({"record": f"dashboard:expr_{i}", "expr": expr})
    path = os.path.join(work, "rules.json")  # JSON is YAML
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
    p = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True,
                       timeout=60)
    if p.returncode == 0:
        return []
    return [f"promtool check rules: {line}" for line in (p.stdout + p.stderr).splitlines()
            if line.strip() and "Checking" not in line]


def scrape(port):
    url = f"http://127.0.0.1:{port}/metrics"
    if shutil.which("curl"):
        p = subprocess.run(["curl", "-sf", "--max-time", "10", url], capture_output=True,
                           text=True, timeout=20)
        if p.returncode != 0:
            raise RuntimeError(f"curl {url}: exit {p.returncode}")
        return p.stdout
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lockstepd", required=True)
    ap.add_argument("--dashboard", required=True)
    a = ap.parse_args()

    with open(a.dashboard, encoding="utf-8") as f:
        dash = json.load(f)
    queries = list(expressions(dash))
    if len(queries) < 10:
        print(f"FAIL: only {len(queries)} expressions found in {a.dashboard}")
        return 1
    if os.getuid() != 0:
        print("SKIP: needs root (DPDK EAL)")
        return 77
    if not os.access(a.lockstepd, os.X_OK):
        print(f"SKIP: no lockstepd at {a.lockstepd}")
        return 77

    work = tempfile.mkdtemp(prefix="lsgraf")
    prefix = f"lsgraf{os.getpid()}"
    log_path = os.path.join(work, "lockstepd.log")
    cmd = [a.lockstepd,
           "--set", "ports.ext=net_null0", "--set", "ports.pvm=net_null1",
           "--set", "ports.svm=net_null2",
           "--ctrl-socket", os.path.join(work, "ctl"), "--metrics", "tcp:127.0.0.1:0",
           "--duration", "60",
           "--", f"--file-prefix={prefix}", "--no-telemetry", "--no-huge",
           "-m", "256", "--no-pci"]
    log = open(log_path, "w", encoding="utf-8")
    lsd = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(*_):
        if lsd.poll() is None:
            lsd.send_signal(signal.SIGTERM)
            try:
                lsd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                lsd.kill()
                lsd.wait()
        shutil.rmtree(work, ignore_errors=True)
        # The EAL's runtime directory of this file prefix (root: /var/run/dpdk/PREFIX).
        shutil.rmtree(os.path.join(os.environ.get("RUNTIME_DIRECTORY") or "/var/run", "dpdk", prefix),
                      ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(1)))
    try:
        port = None
        for _ in range(300):  # bounded: 30 s
            text = open(log_path, encoding="utf-8", errors="replace").read()
            m = re.search(r"metrics on port (\d+)", text)
            if m:
                port = int(m.group(1))
            if port and "running" in text:
                break
            if lsd.poll() is not None:
                if re.search(r"net_null.*(not found|unknown|invalid)|No probed|Cannot init EAL|"
                             r"EAL: .*(failed|error)", text, re.I):
                    print(f"SKIP: lockstepd could not start DPDK on net_null:\n{text[-1500:]}")
                    return 77
                print(f"FAIL: lockstepd exited at start:\n{text[-3000:]}")
                return 1
            time.sleep(0.1)
        else:
            print("FAIL: lockstepd did not start in 30 s:\n" +
                  open(log_path, encoding="utf-8", errors="replace").read()[-3000:])
            return 1
        time.sleep(1.5)  # a report from the workers, traffic on the null ports
        samples = parse_scrape(scrape(port))
        lockstep = sorted(n for n in samples if n.startswith("lockstep_"))
        print(f"scrape: {len(samples)} sample names, {len(lockstep)} lockstep_*")

        failures = check_datasources(dash)
        parsed = promtool_check(queries, work)
        if parsed is None:
            print("promtool not installed: expressions not parsed")
        else:
            print(f"promtool: {len(queries)} expressions checked ({len(parsed)} problems)")
            failures += parsed
        used = set()
        for where, expr in queries:
            problems, metrics = check_expr(expr, samples)
            used.update(metrics)
            failures += [f"{where}: {p}\n    {expr}" for p in problems]
        print(f"dashboard: {len(queries)} expressions, {len(used)} metrics")
        for n in sorted(used):
            print(f"  {n}")
        if len(used) < 20:
            failures.append(f"only {len(used)} metrics found in the dashboard's expressions")
        if failures:
            for f in failures:
                print(f"FAIL: {f}")
            return 1
        print("PASS: every metric and label of the dashboard is exported by lockstepd")
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
