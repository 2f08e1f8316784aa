"""profshim against its own C test server (test/servers/cpuserver.c):
endpoints whose CPU time goes to distinctly named functions."""

from helpers import (calls, dump_json, keepalive, start_cpuserver)


def start(servers, collectors, tmp_path, **settings):
    return start_cpuserver(servers, collectors, tmp_path, **settings)


def test_each_endpoint_top_function_is_its_own(servers, collectors, tmp_path):
    srv, col = start(servers, collectors, tmp_path,
                     PROFILING_SAMPLE_RATE="1.0", PROFILING_HZ="499")
    reqs = []
    for _ in range(8):
        for name in ("alpha", "beta", "gamma"):
            reqs.append(("GET", f"/{name}?ms=25", None, None))
    assert keepalive(srv.port, reqs) == [200] * len(reqs)
    srv.stop()
    prof = col.finish()
    for name in ("alpha", "beta", "gamma"):
        ep = prof["data"][f"GET /{name}"]
        assert ep["calls"] == 8, dump_json(prof)
        assert ep["sampled_calls"] == 8
        assert ep["samples"] >= 20, dump_json(ep)
        top = ep["top_functions"][0]
        assert top["function"] == f"burn_{name}", dump_json(ep)
        assert top["module"] == "cpuserver"
        # Built with debug information: the hottest line is in its source.
        assert top["file"].endswith("cpuserver.c"), dump_json(top)
        assert top["line"] > 0
        # The burn function is the leaf of nearly every sample.
        assert top["self_samples"] >= 0.8 * ep["samples"], dump_json(ep)
        callers = {f["function"] for f in ep["top_functions"]}
        assert "serve" in callers, dump_json(ep)
    assert prof["dropped"]["samples"] == 0
    assert prof["dropped"]["events"] == 0
    assert [p["pid"] for p in prof["processes"]] == [srv.pid]


def test_manual_profile_request_with_rate_zero(servers, collectors, tmp_path):
    srv, col = start(servers, collectors, tmp_path,
                     PROFILING_SAMPLE_RATE="0")
    assert srv.get("/alpha?ms=40")[0] == 200
    assert srv.get("/beta?ms=40&profile=1")[0] == 200
    assert srv.get("/gamma?ms=40&PROFILE=Yes")[0] == 200
    assert srv.get("/alpha?ms=40&profile=0")[0] == 200
    srv.stop()
    prof = col.finish()
    assert calls(prof, "GET /alpha") == 2
    by_ep = {}
    for r in prof["requests"]:
        by_ep.setdefault(r["endpoint"], []).append(r)
    for ep in ("GET /beta", "GET /gamma"):
        (r,) = by_ep[ep]
        assert r["manual"] is True and r["sampled"] is True, r
        # 40 ms of CPU at the manual rate (997 Hz wall clock).
        assert r["samples"] >= 10, r
        assert r["status"] == 200
        assert 0.03 < r["duration"] < 5
    for r in by_ep["GET /alpha"]:
        assert r["manual"] is False and r["sampled"] is False
        assert r["samples"] == 0
    assert prof["data"]["GET /alpha"]["samples"] == 0
    assert prof["data"]["GET /beta"]["top_functions"][0]["function"] == \
        "burn_beta"


def test_templated_endpoints_and_status_classes(servers, collectors,
                                                tmp_path):
    srv, col = start(servers, collectors, tmp_path,
                     PROFILING_SAMPLE_RATE="0")
    paths = ["/users/1", "/users/42?x=1",
             "/users/0b5d3b1e-8c1f-4d7a-9e2a-3f4b5c6d7e8f",
             "/users/deadbeefdeadbeef/posts/7", "/fast"]
    for p in paths:
        srv.get(p)
    srv.stop()
    prof = col.finish()
    assert calls(prof, "GET /users/:id") == 3, dump_json(prof)
    assert calls(prof, "GET /users/:id/posts/:id") == 1
    assert prof["data"]["GET /users/:id"]["status"] == {"4xx": 3}
    assert prof["data"]["GET /fast"]["status"] == {"2xx": 1}
    assert "x=1" not in col.out.read_text()


def test_max_depth_limits_frames(servers, collectors, tmp_path):
    srv, col = start(servers, collectors, tmp_path,
                     PROFILING_SAMPLE_RATE="1.0", PROFILING_HZ="499",
                     PROFILING_MAX_DEPTH="1")
    assert keepalive(srv.port, [("GET", "/alpha?ms=30", None, None)] * 4) \
        == [200] * 4
    srv.stop()
    ep = col.finish()["data"]["GET /alpha"]
    assert ep["samples"] >= 20
    # One frame per sample: every function is a leaf, totals equal selves.
    for f in ep["top_functions"]:
        assert f["total_samples"] == f["self_samples"], dump_json(ep)
    assert sum(f["self_samples"] for f in ep["top_functions"]) == \
        ep["samples"]


def test_manual_off_and_per_second_cap(servers, collectors, tmp_path):
    srv, col = start(servers, collectors, tmp_path,
                     PROFILING_SAMPLE_RATE="0", PROFILING_MANUAL="off")
    assert srv.get("/alpha?ms=20&profile=1")[0] == 200
    srv.stop()
    prof = col.finish()
    (r,) = prof["requests"]
    assert r["manual"] is False and r["sampled"] is False
    assert prof["data"]["GET /alpha"]["sampled_calls"] == 0

    cap_dir = tmp_path / "cap"
    cap_dir.mkdir()
    srv, col = start(servers, collectors, cap_dir,
                     PROFILING_SAMPLE_RATE="0",
                     PROFILING_MANUAL_MAX_PER_SEC="5")
    reqs = [("GET", "/fast?profile=1", None, None)] * 40
    assert keepalive(srv.port, reqs) == [200] * 40
    srv.stop()
    prof = col.finish()
    ep = prof["data"]["GET /fast"]
    assert ep["calls"] == 40
    # 40 quick requests fall into one or two one-second windows.
    assert 5 <= ep["sampled_calls"] <= 10, dump_json(ep)
    manual = [r for r in prof["requests"] if r["manual"]]
    assert len(manual) == ep["sampled_calls"]
