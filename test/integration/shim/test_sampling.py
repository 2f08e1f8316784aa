"""The sampling engine: every thread, both clocks, workers, continuous
mode."""
import time

from helpers import (calls, Collector, dump_json, keepalive,
                     parallel_keepalive, shim_env, start_cpuserver)
from helpers.nginx import start_nginx, worker_pids


def start_cpu(servers, collectors, tmp_path, **settings):
    return start_cpuserver(servers, collectors, tmp_path, **settings)


def test_threaded_server_samples_on_several_threads(servers, collectors,
                                                    tmp_path):
    srv, col = start_cpu(servers, collectors, tmp_path,
                         PROFILING_SAMPLE_RATE="1", PROFILING_HZ="199")
    parallel_keepalive(srv.port, 4, [("GET", "/alpha?ms=20", None, None)] * 10)
    srv.stop()
    prof = col.finish()
    assert calls(prof, "GET /alpha") == 40
    sampled_tids = {r["tid"] for r in prof["requests"] if r["samples"] > 0}
    assert len(sampled_tids) >= 3, dump_json(prof["requests"][:5])
    assert prof["data"]["GET /alpha"]["top_functions"][0]["function"] == \
        "burn_alpha"


def sleep_profile(servers, collectors, tmp_path, clock):
    srv, col = start_cpu(servers, collectors, tmp_path,
                         PROFILING_SAMPLE_RATE="1", PROFILING_HZ="99",
                         PROFILING_CLOCK=clock)
    assert keepalive(srv.port, [("GET", "/sleep?ms=50", None, None)] * 20) \
        == [200] * 20
    srv.stop()
    return col.finish()["data"]["GET /sleep"]


def test_wall_clock_samples_sleep(servers, collectors, tmp_path):
    ep = sleep_profile(servers, collectors, tmp_path, "wall")
    assert ep["calls"] == 20
    # 20 x 50 ms at 99 Hz is 99 samples; the timer keeps its phase across
    # requests, so the count is close to that.
    assert 80 <= ep["samples"] <= 120, dump_json(ep)
    leaf = ep["top_functions"][0]
    assert "nanosleep" in leaf["function"], dump_json(ep)
    assert leaf["module"].startswith("libc.so")
    assert "sleep_ms" in {f["function"] for f in ep["top_functions"]}


def test_cpu_clock_does_not_sample_sleep(servers, collectors, tmp_path):
    ep = sleep_profile(servers, collectors, tmp_path, "cpu")
    assert ep["calls"] == 20
    assert ep["samples"] <= 3, dump_json(ep)


def test_nginx_gzip_both_workers_sampled_libz_on_top(servers, collectors,
                                                     tmp_path):
    env = shim_env(ENABLE_PROFILING="true", PROFILING_SAMPLE_RATE="1",
                   PROFILING_HZ="499")
    srv = start_nginx(tmp_path, env, gzip=True)
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid)
    collectors.append(col)
    workers = worker_pids(srv.pid)
    hdrs = {"Accept-Encoding": "gzip"}
    parallel_keepalive(srv.port, 8, [("GET", "/static/big.txt", None, hdrs)] * 15)
    srv.stop()
    prof = col.finish()
    ep = prof["data"]["GET /static/big.txt"]
    assert ep["calls"] == 120
    top = ep["top_functions"][0]
    assert top["module"].startswith("libz.so"), dump_json(ep)
    by_pid = {}
    for r in prof["requests"]:
        by_pid[r["pid"]] = by_pid.get(r["pid"], 0) + r["samples"]
    assert all(by_pid.get(w, 0) > 0 for w in workers), (workers, by_pid)


def test_continuous_mode_samples_outside_requests(servers, collectors,
                                                  tmp_path):
    env = shim_env(ENABLE_PROFILING="true", PROFILING_MODE="continuous",
                   PROFILING_CLOCK="wall", PROFILING_HZ="200")
    srv = start_nginx(tmp_path, env)
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid)
    collectors.append(col)
    workers = worker_pids(srv.pid)
    keepalive(srv.port, [("GET", "/ok", None, None)] * 50)
    time.sleep(1.0)  # idle: 3 processes x 200 Hz x 1 s of wall time
    srv.stop()
    prof = col.finish()
    assert calls(prof, "GET /ok") == 50
    # Continuous mode: the master has a ring too, and idle time is sampled.
    pids = {p["pid"] for p in prof["processes"]}
    assert {srv.pid, *workers} <= pids, prof["processes"]
    idle = prof["data"]["(no request)"]
    assert idle["samples"] > 300 and idle["calls"] == 0, dump_json(idle)
    assert "main" in {f["function"] for f in idle["top_functions"]}
    assert any("epoll_wait" in f["function"] or "sigsuspend" in f["function"]
               for f in idle["top_functions"]), dump_json(idle)


def test_shim_frames_never_in_stacks(servers, collectors, tmp_path):
    """A request whose time is in send(): the program's send() runs the
    shim's hook, which calls libc's. A sample there walks through the
    hook's frames (hooks_slow_send); those are the shim's, not the
    program's, and no stack may hold them: libc's send is called by
    cpuserver's send_big, as without the shim. On the wall clock, to
    sample the time send() waits for the client too."""
    srv, col = start_cpu(servers, collectors, tmp_path,
                         PROFILING_SAMPLE_RATE="1", PROFILING_HZ="499",
                         PROFILING_CLOCK="wall")
    assert keepalive(srv.port, [("GET", "/big?kb=16384", None, None)] * 20) \
        == [200] * 20
    srv.stop()
    prof = col.finish()
    ep = prof["data"]["GET /big"]
    assert ep["calls"] == 20 and ep["samples"] >= 20, dump_json(ep)
    mods = [m["name"] for m in prof["modules"]]
    frames = prof["frames"]

    def module(i):
        m = frames[i].get("module", -1)
        return mods[m] if m is not None and m >= 0 else ""

    own = [s for s in prof["stacks"]
           if any(module(i).startswith("libprofshim") for i in s["frames"])]
    assert own == [], dump_json(
        [[frames[i]["function"] for i in s["frames"]] for s in own[:3]])
    # Most of the endpoint's samples: libc's send, called by send_big
    # (through AddressSanitizer's interceptor in the sanitizer pass, which
    # preloads its runtime first).
    stacks = [s for s in prof["stacks"] if s["endpoint"] == "GET /big"]
    in_send = 0
    for s in stacks:
        f = [i for i in s["frames"] if not module(i).startswith("libasan")]
        for a, b in zip(f, f[1:]):
            if frames[a]["function"] == "send_big" and \
                    module(b).startswith("libc.so"):
                in_send += s["samples"]
                break
    assert in_send >= 0.5 * ep["samples"], (in_send, dump_json(stacks[:5]))
