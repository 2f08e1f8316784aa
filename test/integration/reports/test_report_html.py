"""The HTML report (`report --format html`) and the differential flame graph
(`diff --format html`), opened in real headless Chromium from file://.

The profiles are written by hand so every number on the page is known: the
70/30 split between burn_alpha and burn_beta, the samples a search must
total, each endpoint's percentiles, a kept request's stacks and timeline.
Names are hostile on purpose (</script>, quotes, markup, a newline,
non-ASCII): they must come out as text, exactly, and never as markup.
"""
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from helpers import COLLECTOR, ROOT

CHECK_JS = ROOT / "test" / "js" / "html_check.js"
ARTIFACTS = Path(os.environ.get("PROFSHIM_ARTIFACTS", ROOT / "test" / "artifacts"))

HOSTILE_FN = 'evil</script><b class="injected">x</b>"\'&\\\n<!--\u00f1\u2713'
HOSTILE_EP = 'GET /q?a="1"&b=<i class="injected">\'</script>\\\u00f1'
HOSTILE_REQ = "m-2<script>"

MODULES = [
    {"name": "server", "path": "/srv/server", "build_id": "9f2c"},
    {"name": "libc.so.6", "path": "/lib/libc.so.6", "build_id": ""},
    {"name": 'lib<&>"x.so', "path": "/tmp/lib<&>.so", "build_id": ""},
]
# Indices: 0 main, 1 serve, 2 burn_alpha, 3 burn_beta, 4 hostile,
# 5 compute, 6 memcpy.
FRAMES = [
    {"function": "main", "module": 0, "file": "server.c", "line": 10},
    {"function": "serve", "module": 0, "file": "server.c", "line": 40},
    {"function": "burn_alpha", "module": 0, "file": "server.c", "line": 70},
    {"function": "burn_beta", "module": 0, "file": "server.c", "line": 90},
    {"function": HOSTILE_FN, "module": 2},
    {"function": "compute", "module": 0, "file": "server.c", "line": 120},
    {"function": "memcpy", "module": 1},
]


def endpoint(calls, avg, p50, p95, p99, histogram, samples):
    return {
        "calls": calls, "total_time": calls * avg, "min_time": histogram[0][0] / 2,
        "max_time": histogram[-1][0], "avg_time": avg, "p50_time": p50,
        "p95_time": p95, "p99_time": p99, "sampled_calls": calls,
        "samples": samples, "status": {"2xx": calls}, "histogram": histogram,
        "top_functions": [],
    }


def profile(stacks, data, requests=()):
    return {
        "version": 1,
        "sample": {"clock": "cpu", "period_ns": 10000000},
        "modules": MODULES,
        "frames": FRAMES,
        "stacks": [{"endpoint": e, "frames": f, "samples": n} for e, f, n in stacks],
        "data": data,
        "requests": list(requests),
        "dropped": {"samples": 0, "events": 0, "requests": 0},
    }


def after_profile():
    """burn_alpha 70 samples (50 directly, 20 through the hostile frame),
    burn_beta 30; compute 40 under burn_alpha and 25 under burn_beta."""
    stacks = [
        ("GET /alpha", [0, 1, 2, 5], 40),
        ("GET /alpha", [0, 1, 2], 10),
        (HOSTILE_EP, [0, 1, 4, 2, 6], 20),
        ("GET /beta", [0, 1, 3, 5], 25),
        ("GET /beta", [0, 1, 3, 6], 5),
    ]
    data = {
        "GET /alpha": endpoint(120, 0.05, 0.012, 0.140, 0.150,
                               [[0.010, 40], [0.012, 30], [0.020, 30],
                                [0.140, 15], [0.150, 5]], 50),
        "GET /beta": endpoint(60, 0.031, 0.0305, 0.0421, 0.0444,
                              [[0.025, 20], [0.0305, 15], [0.0421, 20],
                               [0.0444, 5]], 30),
        HOSTILE_EP: endpoint(7, 0.001, 0.0009, 0.002, 0.0021,
                             [[0.0009, 4], [0.0021, 3]], 20),
    }
    requests = [
        {"id": "req-1", "pid": 100, "tid": 101, "endpoint": "GET /alpha",
         "start": 1700000000.25, "duration": 0.150, "status": 200,
         "sampled": True, "manual": False, "samples": 15,
         "stacks": [{"frames": [0, 1, 2, 5], "samples": 10},
                    {"frames": [0, 1, 2], "samples": 5}],
         # Every third sample in burn_alpha itself, the others in compute.
         "timeline": [[0.01 * i, 1 if i % 3 == 0 else 0] for i in range(15)]},
        {"id": HOSTILE_REQ, "pid": 100, "tid": 102, "endpoint": HOSTILE_EP,
         "start": 1700000001.0, "duration": 0.020, "status": 500,
         "sampled": True, "manual": True, "samples": 2,
         "stacks": [{"frames": [0, 1, 4, 2, 6], "samples": 2}],
         "timeline": [[0.005, 0], [0.015, 0]]},
        {"id": "req-3", "pid": 100, "tid": 103, "endpoint": "GET /beta",
         "start": 1700000002.0, "duration": 0.040, "status": 200,
         "sampled": True, "manual": False, "samples": 3,
         "stacks": [{"frames": [0, 1, 3, 5], "samples": 3}],
         "timeline": [[0.01, 0], [0.02, 0], [0.03, 0]]},
    ]
    return profile(stacks, data, requests)


def before_profile():
    """The reverse split: burn_alpha 30, burn_beta 70."""
    stacks = [
        ("GET /alpha", [0, 1, 2, 5], 20),
        ("GET /alpha", [0, 1, 2], 10),
        ("GET /beta", [0, 1, 3, 5], 60),
        ("GET /beta", [0, 1, 3, 6], 10),
    ]
    data = {
        "GET /alpha": endpoint(100, 0.02, 0.010, 0.030, 0.040,
                               [[0.010, 60], [0.040, 40]], 30),
        "GET /beta": endpoint(100, 0.07, 0.060, 0.090, 0.100,
                              [[0.060, 60], [0.100, 40]], 70),
    }
    return profile(stacks, data)


def collector(*args):
    r = subprocess.run([str(COLLECTOR), *map(str, args)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r


def page_data(html):
    """The JSON the page carries, as the page's script reads it."""
    m = re.search(r'<script type="application/json" id="profile-data">\n(.*?)\n</script>',
                  html, re.S)
    assert m, "no data script in the page"
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    d = tmp_path_factory.mktemp("html")
    after, before = d / "after.json", d / "before.json"
    after.write_text(json.dumps(after_profile()))
    before.write_text(json.dumps(before_profile()))
    report, diff = d / "report.html", d / "diff.html"
    collector("report", "--input", after, "--format", "html", "--output", report)
    collector("diff", before, after, "--format", "html", "--output", diff)
    # A profile with nothing in it: the page must still work.
    empty = d / "empty.html"
    (d / "empty.json").write_text('{"version": 1, "data": {}}')
    collector("report", "--input", d / "empty.json", "--format", "html",
              "--output", empty)
    return {"dir": d, "after": after, "report": report, "diff": diff,
            "empty": empty}


@pytest.fixture(scope="module")
def browser(pages):
    """What Chromium showed: one run of html_check.js over both pages."""
    r = subprocess.run(
        ["node", str(CHECK_JS), str(pages["report"]), str(pages["diff"]),
         str(ARTIFACTS), HOSTILE_FN, str(pages["empty"])],
        capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def names(state):
    return {b["name"] for b in state["boxes"] if not b["ancestor"]}


def box(state, name):
    """The widest drawn box of a function."""
    return max((b for b in state["boxes"] if b["name"] == name),
               key=lambda b: b["width"])


def rgb(css):
    return [int(v) for v in re.findall(r"\d+", css)[:3]]


def test_page_is_self_contained_and_escaped(pages):
    html = pages["report"].read_text(encoding="utf-8")
    # Only the page's own two scripts: hostile names cannot end one early.
    assert html.count("</script") == 2
    assert "<!--\\u00f1" not in html and "<!--\u00f1" not in html
    # Nothing fetched from anywhere: no URL in src/href at all.
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', html)
    data = page_data(html)["profile"]
    assert [f[0] for f in data["frames"]] == [f["function"] for f in FRAMES]
    assert HOSTILE_EP in [e["name"] for e in data["endpoints"]]
    assert HOSTILE_REQ in [q["id"] for q in data["requests"]]


def test_selection_reaches_the_page(pages, tmp_path):
    """report --request / --endpoint: the page holds only what was chosen."""
    out = tmp_path / "req.html"
    collector("report", "--input", pages["after"], "--format", "html",
              "--request", "req-1", "--output", out)
    data = page_data(out.read_text(encoding="utf-8"))["profile"]
    assert sum(s[1] for s in data["stacks"]) == 15
    assert [q["id"] for q in data["requests"]] == ["req-1"]
    out = tmp_path / "beta.html"
    collector("report", "--input", pages["after"], "--format", "html",
              "--endpoint", "GET /beta", "--output", out)
    data = page_data(out.read_text(encoding="utf-8"))["profile"]
    assert [e["name"] for e in data["endpoints"]] == ["GET /beta"]
    assert sum(s[1] for s in data["stacks"]) == 30


def test_no_errors_and_no_network(browser):
    assert browser["pageErrors"] == []
    assert browser["consoleErrors"] == []
    assert browser["network"] == []


def test_empty_profile_page(browser):
    e = browser["empty"]
    assert "No samples" in e["flame"]
    assert "No latency data" in e["histogram"]
    assert "No kept requests" in e["requests"]


def test_flame_graph_renders_functions(browser):
    r = browser["report"]
    init = r["initial"]
    assert init["rootSamples"] == 100
    assert {"main", "serve", "burn_alpha", "burn_beta", "compute", "memcpy",
            HOSTILE_FN} <= names(init)
    texts = {b["text"] for b in init["boxes"]}
    assert {"burn_alpha", "burn_beta", "compute"} <= texts
    # The hostile name is a box's text, exactly, and made no element.
    assert r["hostileShown"]
    assert r["injected"] == 0
    # Widths follow samples: burn_alpha's direct path is 50 of 100.
    assert abs(box(init, "burn_alpha")["width"] / init["width"] - 0.5) < 0.01
    assert "100 samples" in r["summary"]


def test_shares_70_30(browser):
    shares = browser["report"]["shares"]
    assert abs(shares["burn_alpha"] - 70) <= 5, shares
    assert abs(shares["burn_beta"] - 30) <= 5, shares
    # The boxes' own percentages say the same.
    beta = box(browser["report"]["initial"], "burn_beta")
    assert beta["pct"] == 30.0
    assert "30.00%" in beta["title"]


def test_click_zooms_and_root_zooms_out(browser):
    r = browser["report"]
    z = r["zoomed"]
    beta = box(z, "burn_beta")
    assert abs(beta["width"] - z["width"]) <= 1
    assert "burn_alpha" not in names(z)
    # Its ancestors stay, as the way back out.
    assert {b["name"] for b in z["boxes"] if b["ancestor"]} == {"all", "main", "serve"}
    u = r["unzoomed"]
    assert "burn_alpha" in names(u)
    assert abs(box(u, "burn_beta")["width"] / u["width"] - 0.3) < 0.01


def test_search_totals_each_sample_once(browser):
    r = browser["report"]
    sub = r["searchSubstring"]
    assert sub["samples"] == 65 and sub["pct"] == 65.0, sub
    assert set(sub["highlighted"]) == {"compute"}
    assert "65" in sub["text"]
    # burn_alpha (70) holds 40 of compute's 65: 70 + 25, not 135.
    rx = r["searchRegex"]
    assert rx["samples"] == 95 and rx["pct"] == 95.0, rx
    assert set(rx["highlighted"]) == {"burn_alpha", "compute"}
    bad = r["searchBadRegex"]
    assert bad["samples"] is None and bad["highlighted"] == []
    assert "invalid" in bad["text"]


def test_endpoint_table(browser):
    t = browser["report"]["endpoints"]
    assert t["head"][:7] == ["Endpoint", "Calls", "Avg ms", "p50 ms", "p95 ms",
                             "p99 ms", "Samples"]
    rows = {row["Endpoint"]: row for row in t["rows"]}
    assert rows["All endpoints"]["Samples"] == "100"
    a, b, h = rows["GET /alpha"], rows["GET /beta"], rows[HOSTILE_EP]
    assert (a["Calls"], a["Avg ms"], a["p50 ms"], a["p95 ms"], a["p99 ms"],
            a["Samples"]) == ("120", "50.00", "12.00", "140.0", "150.0", "50")
    assert (b["p50 ms"], b["p95 ms"], b["p99 ms"], b["Samples"]) == \
        ("30.50", "42.10", "44.40", "30")
    assert (h["p50 ms"], h["Samples"]) == ("0.900", "20")
    # The latency histogram of all endpoints has bars.
    assert browser["report"]["histogramBars"] > 0


def test_endpoint_click_selects_its_stacks(browser):
    r = browser["report"]
    beta = r["beta"]
    assert beta["rootSamples"] == 30
    assert "burn_beta" in names(beta) and "burn_alpha" not in names(beta)
    assert "GET /beta" in beta["title"]
    hist = r["betaHistogram"]
    assert hist["title"].endswith("GET /beta")
    assert hist["bars"] > 0
    assert hist["labels"] == ["p50", "p95", "p99"]
    assert [row["Request"] for row in r["betaRequests"]["rows"]] == ["req-3"]


def test_request_drill_down(browser):
    r = browser["report"]
    reqs = r["requests"]["rows"]
    # Slowest first; the manual one says so.
    assert [q["Request"] for q in reqs] == ["req-1", "req-3", HOSTILE_REQ]
    by_id = {q["Request"]: q for q in reqs}
    assert by_id[HOSTILE_REQ]["Manual"] == "yes"
    assert by_id[HOSTILE_REQ]["Endpoint"] == HOSTILE_EP
    assert (by_id["req-1"]["Duration ms"], by_id["req-1"]["Status"],
            by_id["req-1"]["Samples"]) == ("150.0", "200", "15")

    req = r["request"]
    assert req["rootSamples"] == 15
    assert "req-1" in req["title"]
    assert names(req) == {"all", "main", "serve", "burn_alpha", "compute"}
    assert abs(r["requestShares"]["compute"] - 200 / 3) < 0.1
    tl = r["timeline"]
    assert tl["visible"]
    ticks = tl["ticks"]
    assert len(ticks) == 15
    assert [t["leaf"] for t in ticks].count("compute") == 10
    assert [t["leaf"] for t in ticks].count("burn_alpha") == 5
    xs = [t["x"] for t in ticks]
    assert xs == sorted(xs) and xs[0] < xs[-1]
    assert len({t["fill"] for t in ticks}) == 2
    assert tl["legend"] == ["compute", "burn_alpha"]
    assert r["afterShowAll"]["rootSamples"] == 100
    assert (ARTIFACTS / "report.png").stat().st_size > 10000
    assert (ARTIFACTS / "report-request.png").stat().st_size > 10000


def test_diff_page(browser):
    d = browser["diff"]
    assert d["title"] == "profshim diff"
    assert d["requestsHidden"]
    init = d["initial"]
    assert init["rootSamples"] == 100
    # burn_beta: 70% of the samples before, 30% after: shrank, green.
    beta = box(init, "burn_beta")
    assert (beta["before"], beta["after"], beta["delta"]) == (70.0, 30.0, -40.0)
    r, g, _ = rgb(beta["background"])
    assert g > r + 60, beta["background"]
    assert "before 70.00%" in beta["title"] and "after 30.00%" in beta["title"]
    # burn_alpha's direct path: 30% before, 50% after: grew, red.
    alpha = box(init, "burn_alpha")
    assert (alpha["before"], alpha["after"]) == (30.0, 50.0)
    r, g, _ = rgb(alpha["background"])
    assert r > g + 60, alpha["background"]
    # A path that is new: 0% before.
    new = [b for b in init["boxes"] if b["name"] == HOSTILE_FN]
    assert new and new[0]["before"] == 0.0 and new[0]["after"] == 20.0
    # main is in every sample of both: unchanged, neither colour.
    r, g, b = rgb(box(init, "main")["background"])
    assert abs(r - g) < 10 and abs(g - b) < 10
    z = d["zoomed"]
    assert abs(box(z, "burn_alpha")["width"] - z["width"]) <= 1
    assert d["search"]["samples"] == 100
    assert (ARTIFACTS / "diff.png").stat().st_size > 10000
