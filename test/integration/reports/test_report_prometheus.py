"""`report --format prometheus`: `promtool check metrics` accepts the
exposition without a lint warning, and the numbers in it are the profile's:
cumulative duration buckets over the standard bounds, +Inf and _count the
calls, _sum the total time, request, sample and drop counters."""
import json
import math
import re
import subprocess

from helpers import COLLECTOR, record_cpuserver

BOUNDS = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
          "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
FAMILIES = {
    "profshim_request_duration_seconds": "histogram",
    "profshim_requests_total": "counter",
    "profshim_samples_total": "counter",
    "profshim_dropped_samples_total": "counter",
    "profshim_dropped_events_total": "counter",
    "profshim_dropped_requests_total": "counter",
}
HOSTILE = [
    'GET /q"uo"te',
    'GET /back\\slash\\',
    'GET /new\nline',
    'GET /all"\\\n"\\n{le="1"},x',
    'GET /üñí<&>✓',
]


def profile(endpoints, dropped=(0, 0, 0)):
    return {"version": 1, "sample": {"clock": "cpu", "period_ns": 1e7},
            "data": endpoints, "modules": [], "frames": [], "stacks": [],
            "requests": [],
            "dropped": dict(zip(("samples", "events", "requests"), dropped))}


def endpoint(calls, total, histogram, status=None, samples=0):
    return {"calls": calls, "total_time": total, "samples": samples,
            "status": status or {"2xx": calls}, "histogram": histogram}


def report(tmp_path, prof, *args):
    src = tmp_path / "profile.json"
    src.write_text(json.dumps(prof))
    out = tmp_path / "metrics.prom"
    r = subprocess.run([str(COLLECTOR), "report", "--input", str(src),
                        "--format", "prometheus", "--output", str(out),
                        *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return out.read_text()


def promtool(text):
    """`promtool check metrics` must pass and print nothing (no lint)."""
    r = subprocess.run(["promtool", "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout + r.stderr == "", \
        r.stdout + r.stderr + "\n" + text


LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse(text):
    """Text format 0.0.4: ({family: type}, {family: help},
    [(name, {label: value}, float)])."""
    types, helps, samples = {}, {}, []
    for line in text.split("\n"):
        if not line:
            continue
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name, rest = line[2:6], *line[7:].split(" ", 1)
            table = types if kind == "TYPE" else helps
            assert name not in table, f"second {kind} for {name}"
            table[name] = rest
            continue
        assert not line.startswith("#"), line
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$", line)
        assert m, line
        labels = {}
        if m.group(2):
            body = m.group(2)[1:-1]
            pos = 0
            while pos < len(body):
                lm = LABEL.match(body, pos)
                assert lm, (line, pos)
                labels[lm.group(1)] = re.sub(
                    r"\\[\\\"n]", lambda e: ESCAPES[e.group(0)], lm.group(2))
                pos = lm.end()
                if pos < len(body):
                    assert body[pos] == ",", line
                    pos += 1
        samples.append((m.group(1), labels, float(m.group(3))))
    return types, helps, samples


def series(samples, name, **labels):
    return [v for n, lb, v in samples
            if n == name and all(lb.get(k) == v for k, v in labels.items())]


def buckets(samples, ep):
    got = {lb["le"]: v for n, lb, v in samples
           if n == "profshim_request_duration_seconds_bucket" and
           lb["endpoint"] == ep}
    assert list(got) == BOUNDS, got
    return [got[b] for b in BOUNDS]


def one(samples, name, **labels):
    v = series(samples, name, **labels)
    assert len(v) == 1, (name, labels, v)
    return v[0]


def check_histograms(samples, names):
    """Every endpoint's histogram is well-formed: monotone buckets,
    +Inf == _count."""
    for ep in names:
        b = buckets(samples, ep)
        assert b == sorted(b), (ep, b)
        count = one(samples, "profshim_request_duration_seconds_count",
                    endpoint=ep)
        assert b[-1] == count
        assert one(samples, "profshim_request_duration_seconds_sum",
                   endpoint=ep) >= 0


def test_histogram_numbers(tmp_path):
    prof = profile({
        # Fine buckets: 0.0004 -> 0.0005; 0.001 is on a bound; 0.0010158
        # is above it -> 0.0025; 0.03 -> 0.05; 12 -> only +Inf.
        "GET /alpha": endpoint(11, 12.3456789012345,
                               [[0.0004, 1], [0.001, 2], [0.0010158, 3],
                                [0.03, 4], [12.0, 1]],
                               status={"2xx": 8, "4xx": 2, "other": 1},
                               samples=35),
        "GET /beta": endpoint(4, 0.07, [[0.01, 4]], samples=7),
        "GET /idle": endpoint(0, 0, []),
    }, dropped=(3, 2, 1))
    text = report(tmp_path, prof)
    promtool(text)
    types, helps, samples = parse(text)
    assert types == FAMILIES
    assert set(helps) == set(FAMILIES) and all(helps.values())
    check_histograms(samples, ["GET /alpha", "GET /beta", "GET /idle"])
    assert buckets(samples, "GET /alpha") == \
        [1, 3, 6, 6, 6, 6, 10, 10, 10, 10, 10, 10, 10, 10, 11]
    assert one(samples, "profshim_request_duration_seconds_count",
               endpoint="GET /alpha") == 11
    assert one(samples, "profshim_request_duration_seconds_sum",
               endpoint="GET /alpha") == 12.3456789012345
    assert buckets(samples, "GET /beta") == [0] * 4 + [4] * 11
    assert one(samples, "profshim_request_duration_seconds_sum",
               endpoint="GET /beta") == 0.07
    assert buckets(samples, "GET /idle") == [0] * 15
    reqs = {(lb["endpoint"], lb["status_class"]): v for n, lb, v in samples
            if n == "profshim_requests_total"}
    assert reqs == {("GET /alpha", "2xx"): 8, ("GET /alpha", "4xx"): 2,
                    ("GET /alpha", "other"): 1, ("GET /beta", "2xx"): 4}
    assert {lb["endpoint"]: v for n, lb, v in samples
            if n == "profshim_samples_total"} == \
        {"GET /alpha": 35, "GET /beta": 7, "GET /idle": 0}
    assert one(samples, "profshim_dropped_samples_total") == 3
    assert one(samples, "profshim_dropped_events_total") == 2
    assert one(samples, "profshim_dropped_requests_total") == 1


def test_hostile_endpoint_names_are_escaped(tmp_path):
    prof = profile({name: endpoint(i + 1, 0.001 * (i + 1),
                                   [[0.002, i + 1]], samples=i)
                    for i, name in enumerate(HOSTILE)})
    text = report(tmp_path, prof)
    promtool(text)
    # Every sample is one line: the newlines are escaped.
    assert len(text.splitlines()) == 6 * 2 + 17 * len(HOSTILE) + \
        2 * len(HOSTILE) + 3
    _, _, samples = parse(text)
    check_histograms(samples, HOSTILE)
    for i, name in enumerate(HOSTILE):
        assert buckets(samples, name) == [0, 0, i + 1] + [i + 1] * 12
        assert one(samples, "profshim_requests_total", endpoint=name,
                   status_class="2xx") == i + 1
        assert one(samples, "profshim_samples_total", endpoint=name) == i


def test_empty_profile(tmp_path):
    text = report(tmp_path, profile({}))
    promtool(text)
    types, _, samples = parse(text)
    assert types == FAMILIES
    assert sorted(n for n, _, _ in samples) == sorted(
        ["profshim_dropped_samples_total", "profshim_dropped_events_total",
         "profshim_dropped_requests_total"])


def test_endpoint_selection(tmp_path):
    prof = profile({"GET /a": endpoint(2, 0.2, [[0.1, 2]]),
                    "GET /b": endpoint(1, 0.3, [[0.3, 1]])})
    text = report(tmp_path, prof, "--endpoint", "GET /b")
    promtool(text)
    _, _, samples = parse(text)
    assert {lb.get("endpoint") for _, lb, _ in samples} == {"GET /b", None}
    assert buckets(samples, "GET /b") == [0] * 9 + [1] * 6


def test_prometheus_of_a_recording(servers, collectors, tmp_path):
    reqs = [("GET", "/alpha?ms=3", None, None)] * 12
    reqs += [("GET", "/beta?ms=30", None, None)] * 3
    reqs += [("GET", "/nothing-here", None, None)] * 2
    statuses, prof, col = record_cpuserver(servers, collectors, tmp_path,
                                           reqs)
    out = tmp_path / "rec.prom"
    r = subprocess.run([str(COLLECTOR), "report", "--input", str(col.out),
                        "--format", "prometheus", "--output", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    promtool(text)
    types, _, samples = parse(text)
    assert types == FAMILIES
    check_histograms(samples, list(prof["data"]))
    for ep, d in prof["data"].items():
        assert one(samples, "profshim_request_duration_seconds_count",
                   endpoint=ep) == d["calls"]
        assert math.isclose(
            one(samples, "profshim_request_duration_seconds_sum",
                endpoint=ep), d["total_time"], rel_tol=1e-12)
        assert one(samples, "profshim_samples_total", endpoint=ep) == \
            d["samples"]
        assert {lb["status_class"]: v for n, lb, v in samples
                if n == "profshim_requests_total" and
                lb["endpoint"] == ep} == d["status"]
    # 12 requests of 3+ ms: none under 2.5 ms, all under 50 ms (slack
    # for a busy machine).
    alpha = buckets(samples, "GET /alpha")
    assert alpha[BOUNDS.index("0.0025")] == 0
    assert alpha[BOUNDS.index("+Inf")] == 12
    beta = buckets(samples, "GET /beta")
    assert beta[BOUNDS.index("0.025")] == 0 and beta[-1] == 3
    assert statuses == [200] * 15 + [404] * 2
    assert one(samples, "profshim_requests_total",
               endpoint="GET /nothing-here", status_class="4xx") == 2
