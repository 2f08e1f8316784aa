"""Reports from saved profiles: a server with two named CPU functions in a
known 70/30 ratio is recorded, the server and the collector exit, and every
output made from the saved file alone shows the ratio: the JSON's
top_functions, the folded leaf counts, `go tool pprof -top`, the html page
(read in headless Chromium), speedscope's own importer, and `diff` against a
30/70 recording. Also the command line: selections, errors, --output,
reports from the running collector, --slow-ms and per-request lines.

The ratio was checked once with `perf record -F 999 -g` on cpuserver serving
/mix?ms=100 (not under the shim): burn_alpha 67.21%, burn_beta 29.04% of
all samples, 69.8/30.2 between the two."""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import (COLLECTOR, CPUSERVER, ROOT, Collector, Server,
                     free_port, keepalive, shim_env)

MIX = "GET /mix"
NODE = shutil.which("node")
JS = ROOT / "test" / "js"


def record_mix(tmp, alpha):
    """Record /mix at `alpha`% burn_alpha; returns the saved file, written
    after the server and the collector have both exited."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    srv = Server([CPUSERVER, port],
                 shim_env(ENABLE_PROFILING="true", PROFILING_SAMPLE_RATE="1",
                          PROFILING_HZ="250"),
                 port)
    try:
        col = Collector(tmp, pid=srv.pid)
        statuses = keepalive(port, [("GET", f"/mix?ms=100&alpha={alpha}",
                                     None, None)] * 25)
        statuses += keepalive(port, [("GET", "/beta?ms=20&profile=1",
                                      None, None)])
        assert statuses == [200] * 26
    finally:
        srv.stop()
    col.finish()
    assert not os.path.exists(f"/proc/{srv.pid}")
    assert col.proc.poll() is not None
    saved = tmp / f"mix{alpha}.json"
    shutil.move(col.out, saved)
    return saved, col


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    base = tmp_path_factory.mktemp("mix")
    p70, col = record_mix(base / "a", 70)
    p30, _ = record_mix(base / "b", 30)
    return {"70": p70, "30": p30, "collector_err": col.stderr,
            "collector_out": col.out_path.read_text()}


def report(*args, check=True, cwd=None):
    r = subprocess.run([str(COLLECTOR), "report", *map(str, args)],
                       capture_output=True, timeout=120, cwd=cwd)
    if check:
        assert r.returncode == 0, r.stderr.decode()
    return r


def share(counts):
    total = sum(counts.values())
    return {k: 100.0 * v / total for k, v in counts.items()}


def assert_70_30(shares, what):
    assert abs(shares.get("burn_alpha", 0) - 70) <= 5, (what, shares)
    assert abs(shares.get("burn_beta", 0) - 30) <= 5, (what, shares)


def test_json_top_functions_70_30(mix, tmp_path):
    prof = json.loads(report("--input", mix["70"], "--endpoint", MIX,
                             cwd=tmp_path).stdout)
    ep = prof["data"][MIX]
    # A function's time includes the clock_gettime its loop calls (in the
    # vDSO): total_samples, not self_samples, is what the ratio is of.
    total = {f["function"]: f["total_samples"] for f in ep["top_functions"]}
    assert ep["samples"] >= 400
    assert_70_30({k: 100.0 * v / ep["samples"] for k, v in total.items()},
                 "json")
    # The saved file is complete: stacks, frames and modules with build ids.
    assert prof["sample"]["clock"] == "cpu"
    mods = {m["name"]: m for m in prof["modules"]}
    assert re.fullmatch(r"[0-9a-f]{40}", mods["cpuserver"]["build_id"])
    assert all(s["endpoint"] == MIX for s in prof["stacks"])


def test_folded_leaf_counts_70_30(mix, tmp_path):
    out = report("--input", mix["70"], "--format", "folded", "--endpoint",
                 MIX, cwd=tmp_path).stdout.decode()
    leaves = {}
    for line in out.splitlines():
        stack, count = line.rsplit(" ", 1)
        frames = stack.split(";")
        assert frames[0] and all(frames), line
        # A sample in clock_gettime called by a burn function is that
        # function's time; the shares are of the function's own samples.
        leaf = next((f for f in reversed(frames) if f.startswith("burn_")),
                    frames[-1])
        leaves[leaf] = leaves.get(leaf, 0) + int(count)
    assert_70_30(share(leaves), "folded")
    # One line per distinct stack.
    stacks = [line.rsplit(" ", 1)[0] for line in out.splitlines()]
    assert len(stacks) == len(set(stacks))


@pytest.mark.skipif(not shutil.which("go"), reason="needs golang-go "
                    "(scripts/setup.sh installs it)")
def test_pprof_top_70_30(mix, tmp_path):
    out = tmp_path / "mix.pb.gz"
    report("--input", mix["70"], "--format", "pprof", "--endpoint", MIX,
           "--output", out)
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    env = dict(os.environ, HOME=str(tmp_path), PPROF_TMPDIR=str(tmp_path))
    r = subprocess.run(["go", "tool", "pprof", "-top", "-cum",
                        "-nodecount=20", str(out)], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    # The cum column, for the reason test_json_top_functions_70_30 gives.
    cum = {}
    for line in r.stdout.splitlines():
        m = re.match(r"\s*[\d.]+\w*\s+[\d.]+%\s+[\d.]+%\s+[\d.]+\w*"
                     r"\s+([\d.]+)%\s+(\S+)", line)
        if m:
            cum[m.group(2)] = float(m.group(1))
    assert abs(cum.get("burn_alpha", 0) - 70) <= 5, r.stdout
    assert abs(cum.get("burn_beta", 0) - 30) <= 5, r.stdout


def test_diff_70_30_against_30_70(mix, tmp_path):
    r = subprocess.run([str(COLLECTOR), "diff", str(mix["70"]),
                        str(mix["30"]), "--format", "json", "--endpoint",
                        MIX], capture_output=True, text=True, timeout=60,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    fn = {f["function"]: f for f in d["functions"]}
    assert abs(fn["burn_alpha"]["delta"] + 0.4) <= 0.07, fn["burn_alpha"]
    assert abs(fn["burn_beta"]["delta"] - 0.4) <= 0.07, fn["burn_beta"]
    ep = {e["endpoint"]: e for e in d["endpoints"]}
    assert ep[MIX]["before_calls"] == ep[MIX]["after_calls"] == 25


@pytest.mark.skipif(not NODE or not (JS / "node_modules").exists(),
                    reason="needs node and test/js packages "
                    "(scripts/setup.sh installs them)")
def test_html_page_shows_70_30(mix, tmp_path):
    page = tmp_path / "mix.html"
    report("--input", mix["70"], "--format", "html", "--endpoint", MIX,
           "--output", page)
    artifacts = Path(os.environ.get("PROFSHIM_ARTIFACTS",
                                    ROOT / "test" / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([NODE, str(JS / "html_check.js"), "shares", str(page),
                        str(artifacts / "report-mix.png"), "burn_alpha",
                        "burn_beta"], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert not seen["pageErrors"] and not seen["consoleErrors"], seen
    assert not seen["network"], seen
    assert_70_30(seen["shares"], "html")


def test_request_and_function_selection(mix, tmp_path):
    prof = json.loads(mix["70"].read_text())
    manual = [q for q in prof["requests"] if q["manual"]]
    assert len(manual) == 1 and manual[0]["endpoint"] == "GET /beta"
    one = json.loads(report("--input", mix["70"], "--request",
                            manual[0]["id"]).stdout)
    assert [q["id"] for q in one["requests"]] == [manual[0]["id"]]
    assert list(one["data"]) == ["GET /beta"]
    leaf = {one["frames"][s["frames"][-1]]["function"]
            for s in one["stacks"]}
    assert "burn_beta" in leaf and "burn_alpha" not in leaf
    assert one["requests"][0]["timeline"], "samples over time"
    offs = [t[0] for t in one["requests"][0]["timeline"]]
    assert offs == sorted(offs) and 0 <= offs[0] <= offs[-1] <= 0.1
    only = json.loads(report("--input", mix["70"], "--function",
                             "burn_alpha").stdout)
    assert list(only["data"]) == [MIX]
    for s in only["stacks"]:
        assert "burn_alpha" in [only["frames"][f]["function"]
                                for f in s["frames"]]


def test_report_errors_are_one_line(mix, tmp_path):
    r = report("--input", tmp_path / "missing.json", check=False)
    assert r.returncode == 1
    assert r.stderr.decode().count("\n") == 1 and b"missing.json" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "data": {}, "frames": [{"function": "f",'
                   ' "module": 7}]}')
    r = report("--input", bad, check=False)
    assert r.returncode == 1 and b"module 7" in r.stderr, r.stderr
    r = report("--input", mix["70"], "--format", "bmp", check=False)
    assert r.returncode == 2 and b"unknown format 'bmp'" in r.stderr
    r = report("--input", mix["70"], "--endpoint", "GET /nope", check=False)
    assert r.returncode == 1 and b"GET /nope" in r.stderr
    # A failed report leaves what was at --output untouched.
    out = tmp_path / "keep.txt"
    out.write_text("before")
    r = report("--input", mix["70"], "--endpoint", "GET /nope", "--output",
               out, check=False)
    assert r.returncode == 1 and out.read_text() == "before"
    # No collector running, no --input.
    r = report("--socket", tmp_path / "none.sock", check=False)
    assert r.returncode == 1 and r.stderr.decode().count("\n") == 1


def test_live_report_slow_lines_and_profiled_request(servers, collectors,
                                                     tmp_path):
    port = free_port()
    srv = Server([CPUSERVER, port], shim_env(ENABLE_PROFILING="true",
                                          PROFILING_SAMPLE_RATE="1"),
                 port)
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid, extra=["--slow-ms", "30"])
    collectors.append(col)
    assert keepalive(port, [("GET", "/alpha?ms=60", None, None),
                            ("GET", "/fast", None, None),
                            ("GET", "/beta?ms=5&profile=1", None,
                             None)]) == [200] * 3
    # From the running collector: no --input.
    for _ in range(50):
        live = subprocess.run([str(COLLECTOR), "report", "--socket",
                               col.sock, "--format", "folded"],
                              capture_output=True, text=True, timeout=60)
        if "burn_beta" in live.stdout:
            break
    assert live.returncode == 0, live.stderr
    assert "burn_alpha" in live.stdout and "burn_beta" in live.stdout
    srv.stop()
    prof = col.finish()
    slow = [json.loads(line) for line in
            col.out_path.read_text().splitlines()]
    assert [s["endpoint"] for s in slow] == ["GET /alpha"]
    assert slow[0]["duration"] > 0.03 and slow[0]["status"] == 200
    assert slow[0]["top_frames"][0]["function"] == "burn_alpha"
    manual = [q for q in prof["requests"] if q["manual"]]
    line = [ln for ln in col.stderr.splitlines() if "profiled request" in ln]
    assert len(line) == 1 and manual[0]["id"] in line[0], col.stderr
    assert "GET /beta" in line[0]
