"""profshim in nginx (Debian package): a master and two workers, a static
file (sendfile) and `return` locations, keep-alive, pipelining and POST
bodies with Content-Length and chunked coding."""
import os

from helpers import (Collector, calls, dump_json, in_threads, keepalive,
                     raw_exchange, shim_env)
from helpers.nginx import start_nginx, worker_pids


def pipelined(n_each):
    """One connection, requests sent in one write, last one closes."""
    reqs = []
    for i in range(n_each):
        reqs.append(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n")
        reqs.append(b"GET /static/index.html HTTP/1.1\r\nHost: t\r\n\r\n")
        body = b"a=%d" % i
        reqs.append(b"POST /upload HTTP/1.1\r\nHost: t\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    reqs.append(b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    return b"".join(reqs)


def chunked_body(parts):
    out = b""
    for p in parts:
        out += b"%x;ext=1\r\n%s\r\n" % (len(p), p)
    return out + b"0\r\nTrailer-Field: x\r\n\r\n"


def drive(port):
    """Send a known mix; returns the expected calls per endpoint."""
    expected = {"GET /ok": 0, "GET /static/index.html": 0, "POST /upload": 0}

    def client(k):
        reqs = []
        for i in range(10):
            reqs.append(("GET", "/ok", None, None))
            reqs.append(("GET", "/static/index.html", None, None))
            reqs.append(("POST", "/upload", b"x" * (100 + i * 37),
                         {"Content-Type": "text/plain"}))
        assert keepalive(port, reqs) == [200, 200, 201] * 10
        out = raw_exchange(port, pipelined(5))
        assert out.count(b"HTTP/1.1 200") == 11, out[:300]
        assert out.count(b"HTTP/1.1 201") == 5
        body = chunked_body([b"hello", b"x" * 3000, b"world"])
        out = raw_exchange(
            port, b"POST /upload HTTP/1.1\r\nHost: t\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + body +
            b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert out.count(b"HTTP/1.1 201") == 1, out[:300]
        assert out.count(b"HTTP/1.1 200") == 1

    n = 12
    in_threads(client, [(k,) for k in range(n)])
    expected["GET /ok"] = n * (10 + 5 + 1 + 1)
    expected["GET /static/index.html"] = n * (10 + 5)
    expected["POST /upload"] = n * (10 + 5 + 1)
    return expected


def test_nginx_exact_counts_master_and_two_workers(servers, collectors,
                                                  tmp_path):
    env = shim_env(ENABLE_PROFILING="true", PROFILING_SAMPLE_RATE="0.1")
    srv = start_nginx(tmp_path, env)
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid)
    collectors.append(col)
    workers = worker_pids(srv.pid)
    assert len(workers) == 2
    expected = drive(srv.port)
    stderr = srv.stop()
    prof = col.finish()
    for ep, n in expected.items():
        assert calls(prof, ep) == n, (ep, dump_json(prof["data"]))
    assert set(prof["data"]) == set(expected)
    assert prof["data"]["GET /ok"]["status"] == {"2xx": expected["GET /ok"]}
    assert prof["data"]["POST /upload"]["status"] == {
        "2xx": expected["POST /upload"]}
    pids = {p["pid"] for p in prof["processes"]}
    assert set(workers) <= pids, (workers, prof["processes"])
    assert srv.pid not in pids  # the master never accepts: no ring
    for p in prof["processes"]:
        assert p["ppid"] == srv.pid
        assert p["exe"].endswith("nginx")
    assert prof["dropped"]["samples"] == 0
    assert prof["dropped"]["events"] == 0
    assert prof["dropped"]["requests"] == 0
    assert "profshim" not in stderr, stderr
    # Every ring was drained and removed once its worker exited.
    for w in workers:
        assert not [f for f in os.listdir("/dev/shm")
                    if f.startswith(f"profshim.{w}.")]


def test_nginx_percentiles_are_consistent(servers, collectors, tmp_path):
    env = shim_env(ENABLE_PROFILING="true", PROFILING_SAMPLE_RATE="0")
    srv = start_nginx(tmp_path, env)
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid)
    collectors.append(col)
    keepalive(srv.port, [("GET", "/ok", None, None)] * 200)
    srv.stop()
    ep = col.finish()["data"]["GET /ok"]
    assert ep["calls"] == 200
    assert 0 < ep["min_time"] <= ep["p50_time"] <= ep["p95_time"] <= \
        ep["p99_time"] <= ep["max_time"]
    assert abs(ep["avg_time"] * 200 - ep["total_time"]) < 1e-6
    assert ep["sampled_calls"] == 0 and ep["samples"] == 0
