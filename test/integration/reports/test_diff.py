"""`profshim-collector diff BASE NEW`: what changed between two profiles.

Most tests use small profiles written here (the schema of
collector/model/profile.h) so the expected shares are exact; one records two real
profiles from cpuserver and checks the change the workload made shows.
"""
import json
import re
import subprocess
import time

from helpers import (COLLECTOR, calls, keepalive, start_cpuserver)

HOSTILE_FN = 'evil"\\<b>&amp;\n\x1b[31mred\u009b\u00e9\u4e2d'
HOSTILE_EP = 'POST /"quoted"\\path\n\x1b[2J<script>'


def fixture(alpha, beta, alpha_ep, beta_ep, extra=None):
    """A profile whose stacks end in burn_alpha (alpha samples) and
    burn_beta (beta samples), under main -> handle."""
    prof = {
        "version": 1,
        "sample": {"clock": "cpu", "period_ns": 10000000},
        "modules": [{"name": "cpuserver", "path": "/srv/cpuserver",
                     "build_id": "ab12"}],
        "frames": [
            {"function": "main", "module": 0},
            {"function": "handle", "module": 0},
            {"function": "burn_alpha", "module": 0, "file": "cpuserver.c",
             "line": 40},
            {"function": "burn_beta", "module": 0},
            {"function": HOSTILE_FN, "module": -1},
        ],
        "stacks": [
            {"endpoint": "GET /alpha", "frames": [0, 1, 2],
             "samples": alpha},
            {"endpoint": "GET /beta", "frames": [0, 1, 3], "samples": beta},
        ],
        "data": {
            "GET /alpha": dict(alpha_ep, samples=alpha),
            "GET /beta": dict(beta_ep, samples=beta),
        },
        "requests": [],
        "dropped": {"samples": 0, "events": 0, "requests": 0},
    }
    if extra:
        prof["data"][HOSTILE_EP] = {"calls": 3, "p50_time": 0.5,
                                    "p99_time": 0.9, "samples": 0}
        prof["stacks"].append({"endpoint": HOSTILE_EP, "frames": [0, 4],
                               "samples": 0})
    return prof


def ep(calls, p50, p99):
    return {"calls": calls, "p50_time": p50, "p99_time": p99,
            "total_time": calls * p50, "avg_time": p50}


def write_pair(tmp_path):
    base = fixture(70, 30, ep(100, 0.020, 0.040), ep(50, 0.010, 0.030))
    new = fixture(30, 70, ep(120, 0.015, 0.035), ep(80, 0.025, 0.090),
                  extra=True)
    b, n = tmp_path / "base.json", tmp_path / "new.json"
    b.write_text(json.dumps(base))
    n.write_text(json.dumps(new))
    return str(b), str(n)


def diff(*args):
    return subprocess.run([str(COLLECTOR), "diff", *map(str, args)],
                          capture_output=True, text=True, timeout=30)


def by_function(out):
    return {f["function"]: f for f in out["functions"]}


def test_json_shares_and_endpoints(tmp_path):
    b, n = write_pair(tmp_path)
    r = diff(b, n, "--format", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    fns = by_function(out)
    alpha, beta = fns["burn_alpha"], fns["burn_beta"]
    assert abs(alpha["before"] - 0.7) < 0.01 and abs(alpha["after"] - 0.3) < 0.01
    assert abs(alpha["delta"] + 0.4) < 0.01, alpha
    assert abs(beta["delta"] - 0.4) < 0.01, beta
    assert alpha["module"] == "cpuserver"
    # Largest change first; functions with no self samples change nothing.
    assert {out["functions"][0]["function"], out["functions"][1]["function"]} \
        == {"burn_alpha", "burn_beta"}
    assert abs(fns["main"]["delta"]) < 1e-9
    deltas = [abs(f["delta"]) for f in out["functions"]]
    assert deltas == sorted(deltas, reverse=True)
    # The hostile name survives the JSON round trip unchanged.
    assert HOSTILE_FN in fns

    eps = {e["endpoint"]: e for e in out["endpoints"]}
    a = eps["GET /alpha"]
    assert a["before_calls"] == 100 and a["after_calls"] == 120
    assert abs(a["before_p50_time"] - 0.020) < 1e-9
    assert abs(a["after_p50_time"] - 0.015) < 1e-9
    assert abs(a["before_p99_time"] - 0.040) < 1e-9
    assert abs(a["after_p99_time"] - 0.035) < 1e-9
    bt = eps["GET /beta"]
    assert (bt["before_calls"], bt["after_calls"]) == (50, 80)
    assert abs(bt["after_p99_time"] - 0.090) < 1e-9
    # Only in NEW: the BASE side is null.
    h = eps[HOSTILE_EP]
    assert h["before_calls"] is None and h["before_p50_time"] is None \
        and h["before_p99_time"] is None
    assert h["after_calls"] == 3 and h["after_p99_time"] == 0.9


def test_text_table_readable_and_escaped(tmp_path):
    b, n = write_pair(tmp_path)
    r = diff(b, n)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    lines = text.splitlines()
    row = next(l for l in lines if l.endswith("burn_alpha (cpuserver)"))
    assert row.split()[:3] == ["70.0%", "30.0%", "-40.0"], row
    row = next(l for l in lines if l.endswith("burn_beta (cpuserver)"))
    assert row.split()[:3] == ["30.0%", "70.0%", "+40.0"], row
    # The two changed functions come first.
    first = [l for l in lines if "(cpuserver)" in l][:2]
    assert all("burn_" in l for l in first), first
    row = next(l for l in lines if l.endswith("GET /alpha"))
    assert row.split()[:9] == ["20.00", "->", "15.00", "40.00", "->",
                               "35.00", "100", "->", "120"], row
    # Missing side shown as "-"; the hostile endpoint stays on one line,
    # with its control characters escaped, never raw.
    row = next(l for l in lines if "quoted" in l)
    assert row.split()[:3] == ["-", "->", "500.00"], row
    assert row.endswith('POST /"quoted"\\\\path\\n\\x1b[2J<script>'), row
    assert "\x1b" not in text and "\u009b" not in text
    assert "evil" in text and "\\u009b" in text and "\u00e9\u4e2d" in text
    # Columns line up: the numbers of every function row end at the same
    # place.
    fn_rows = [l for l in lines if l.startswith(" ") and "%" in l]
    assert len({re.match(r"( *\S+){3}", l).end() for l in fn_rows}) == 1, \
        fn_rows


def test_endpoint_filter_and_output_file(tmp_path):
    b, n = write_pair(tmp_path)
    out = tmp_path / "diff.json"
    r = diff("--endpoint", "GET /alpha", "--format", "json", "--output",
             out, b, n)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    d = json.loads(out.read_text())
    assert [e["endpoint"] for e in d["endpoints"]] == ["GET /alpha"]
    # Within GET /alpha every sample is burn_alpha's on both sides.
    fns = by_function(d)
    assert "burn_beta" not in fns
    assert fns["burn_alpha"]["before"] == fns["burn_alpha"]["after"] == 1.0
    # An endpoint only NEW has is compared against nothing.
    r = diff(b, n, "--format", "json", "--endpoint", HOSTILE_EP)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert [(e["before_calls"], e["after_calls"]) for e in d["endpoints"]] \
        == [(None, 3)]
    # In neither: an error.
    r = diff(b, n, "--endpoint", "GET /nowhere")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "GET /nowhere" in r.stderr


def test_html_differential_flame_graph(tmp_path):
    b, n = write_pair(tmp_path)
    out = tmp_path / "diff.html"
    r = diff(b, n, "--format", "html", "--output", out)
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert page.lstrip().lower().startswith("<!doctype html")
    assert "burn_alpha" in page and "burn_beta" in page
    assert "\x1b[2J<script>" not in page


def test_bad_arguments_exit_2(tmp_path):
    b, n = write_pair(tmp_path)
    for args in ([], [b], [b, n, n], [b, n, "--format", "xml"],
                 [b, n, "--bogus"], [b, n, "--format"], ["-", "-"]):
        r = diff(*args)
        assert r.returncode == 2, (args, r.stderr)
        first = r.stderr.splitlines()[0]
        assert first.startswith("profshim-collector: "), r.stderr
        assert "usage: profshim-collector diff BASE NEW" in r.stderr
        assert r.stdout == ""
    r = diff("--help")
    assert r.returncode == 0 and r.stdout.startswith("usage:")


def test_unreadable_profiles_exit_1(tmp_path):
    b, _ = write_pair(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "data": ')
    notprof = tmp_path / "other.json"
    notprof.write_text('{"hello": "world"}')
    for args in ([b, tmp_path / "missing.json"], [bad, b], [b, notprof]):
        r = diff(*args)
        assert r.returncode == 1, (args, r.stderr)
        assert r.stderr.count("\n") == 1, r.stderr
        assert r.stderr.startswith("profshim-collector: ")
        assert r.stdout == ""
    # An unwritable output leaves a clear line too.
    r = diff(b, b, "--output", tmp_path / "no" / "such" / "dir.txt")
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr


def test_recorded_profiles(servers, collectors, tmp_path):
    """Two real profiles of one server: alpha-heavy, then (after reset)
    beta-heavy. The diff shows burn_alpha shrinking, burn_beta growing."""
    srv, col = start_cpuserver(servers, collectors, tmp_path,
                               PROFILING_SAMPLE_RATE="1", PROFILING_HZ="499")

    def phase(alpha, beta, name):
        reqs = [("GET", "/alpha?ms=10", None, None)] * alpha + \
               [("GET", "/beta?ms=10", None, None)] * beta
        assert keepalive(srv.port, reqs) == [200] * len(reqs)
        deadline = time.monotonic() + 10
        while calls(col.dump(), "GET /beta") < beta and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        path = tmp_path / name
        r = col.run("save", str(path))
        assert r.returncode == 0, r.stderr
        return path

    base = phase(24, 6, "base.json")
    assert col.run("reset").returncode == 0
    new = phase(6, 24, "new.json")
    r = diff(base, new, "--format", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    fns = by_function(out)
    assert fns["burn_alpha"]["delta"] < -0.3, fns["burn_alpha"]
    assert fns["burn_beta"]["delta"] > 0.3, fns["burn_beta"]
    eps = {e["endpoint"]: e for e in out["endpoints"]}
    assert (eps["GET /alpha"]["before_calls"],
            eps["GET /alpha"]["after_calls"]) == (24, 6)
    assert (eps["GET /beta"]["before_calls"],
            eps["GET /beta"]["after_calls"]) == (6, 24)
    assert eps["GET /alpha"]["after_p50_time"] > 0.005
