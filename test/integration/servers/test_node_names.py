"""Node.js under the shim: the JavaScript that V8 compiles at run time is
named in the profile from V8's perf map (/tmp/perf-PID.map, written with
--perf-basic prof), under the module "[jit]".

test/servers/jsserver.js spends a few milliseconds of CPU per request in
one JavaScript function, scoreOrderItems(), on an order of about 3.5 KB of
JSON. The shim runs at its defaults (CPU clock, 99 Hz) but for the rate
of sampled requests, which is 1 so that every request counts."""
import json
import os
import shutil
import subprocess

from helpers import (COLLECTOR, ROOT, Collector, Server, dump_json,
                     free_port, keepalive, shim_env)
from helpers.pprof import pprof

NODE = shutil.which("node")
JSSERVER = ROOT / "test" / "servers" / "jsserver.js"
JS_FUNCTION = "scoreOrderItems"


def order(n):
    """An order as a web shop's client would post it: n line items."""
    return json.dumps({
        "customer": "c-1042", "currency": "EUR",
        "items": [{"sku": f"SKU-{i:05d}",
                   "name": f"Widget model {i}, blue, large",
                   "qty": i % 7 + 1, "price": 9.99 + i}
                  for i in range(n)]})


def start_node(servers, collectors, tmp_path):
    assert NODE, "node is needed (nodejs: scripts/setup.sh)"
    port = free_port()
    # In the test's directory: with --perf-basic-prof, V8 also writes its
    # log (isolate-*-v8.log) where it runs.
    srv = Server([NODE, "--perf-basic-prof", JSSERVER, port],
                 shim_env(ENABLE_PROFILING="true",
                          PROFILING_SAMPLE_RATE="1"), port, cwd=tmp_path)
    perf_map = f"/tmp/perf-{srv.pid}.map"
    # V8 leaves its map behind when it exits.
    srv.cleanup.append(lambda: os.path.exists(perf_map)
                       and os.unlink(perf_map))
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid)
    collectors.append(col)
    return srv, col, perf_map


def test_js_function_named_from_perf_map(servers, collectors, tmp_path):
    srv, col, perf_map = start_node(servers, collectors, tmp_path)
    body = order(40)
    assert len(body) > 3000
    # About 5 ms of CPU a request once V8 has optimized the function.
    reqs = [("POST", "/score?rounds=3000", body,
             {"Content-Type": "application/json"})] * 150
    assert keepalive(srv.port, reqs) == [200] * len(reqs)

    # Named while the server runs (the map read as it grew) ...
    live = col.dump()
    live_names = {f["function"] for f in live["frames"]}
    assert any(JS_FUNCTION in n for n in live_names), \
        dump_json(live["data"])
    assert os.path.exists(perf_map)

    # ... and once it has exited, the map gone with it (the server's
    # cleanup removes what V8 left): what was read is kept.
    srv.stop()
    assert not os.path.exists(perf_map)
    prof = col.finish()
    ep = prof["data"]["POST /score"]
    assert ep["calls"] == 150 and ep["sampled_calls"] == 150, dump_json(ep)
    assert ep["samples"] >= 20, dump_json(ep)

    mods = prof["modules"]
    jit = [i for i, m in enumerate(mods) if m["name"] == "[jit]"]
    assert len(jit) == 1, mods
    named = [f for f in prof["frames"] if JS_FUNCTION in f["function"]]
    assert named, dump_json(prof["frames"])
    for f in named:
        assert f["module"] == jit[0], f
        # V8's own name for it: its tier, name and source position.
        assert f["function"].startswith("JS:"), f
        assert "jsserver.js:" in f["function"], f

    # Among the endpoint's functions, with most of its CPU time: the
    # samples whose leaf is that function's compiled code, not counting
    # what runs in V8's builtins and runtime under it.
    top = {f["function"]: f for f in ep["top_functions"]}
    js = [f for name, f in top.items() if JS_FUNCTION in name]
    assert js, dump_json(ep)
    assert all(f["module"] == "[jit]" for f in js)
    self_samples = sum(f["self_samples"] for f in js)
    assert self_samples >= 0.3 * ep["samples"], dump_json(ep)

    # Samples in the stacks reach it too (it is a leaf or a caller).
    in_stacks = sum(s["samples"] for s in prof["stacks"]
                    if s["endpoint"] == "POST /score"
                    and any(i in {prof["frames"].index(f) for f in named}
                            for i in s["frames"]))
    assert in_stacks >= self_samples, dump_json(prof["stacks"][:10])

    # The reports made from the profile carry the name and its module:
    # folded for flame graphs, pprof as `go tool pprof` reads it.
    def report(fmt, out):
        r = subprocess.run([str(COLLECTOR), "report", "--input", col.out,
                            "--format", fmt, "--output", out],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return out

    folded = report("folded", tmp_path / "p.folded").read_text()
    assert any(ln.rsplit(" ", 1)[0].split(";")[-1] == named[0]["function"]
               for ln in folded.splitlines()), folded[:2000]
    pb = report("pprof", tmp_path / "p.pb.gz")
    top_text = pprof(tmp_path, "-top", "-sample_index=samples", pb)
    assert JS_FUNCTION in top_text, top_text
    raw = pprof(tmp_path, "-raw", pb)
    assert "[jit]" in raw, raw[:3000]
