"""Endpoint names and scanners: a scan of one-off paths answered 404 must
not take the endpoint-table slots that the server's real endpoints need
later (shim/ring.h, "admission"). Against nginx as Debian ships it (a
master and two workers, each with its own ring and table) and against
cpuserver (one process, whose ring header says exactly what the shim did).

Every request sent is counted exactly once: under its own endpoint, or,
for scan paths the table did not admit, under OTHER, which the profile's
`dropped.overflow_endpoints` counts too. Ground truth is the client's own
count of what it sent and the statuses it got back.
"""
import random
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from helpers import (Collector, calls, dump_json, keepalive, shim_env,
                     start_cpuserver, wait_connections_closed)
from helpers import rings as hu
from helpers.nginx import start_nginx, worker_pids
from helpers.rings import RingHeader

SCAN = 3000
REAL = 300

# nginx (helpers/nginx.py): the three locations it serves; anything else
# under its root is a 404.
NGINX_REAL = {
    "GET /ok": ("GET", "/ok", None, None, 200),
    "GET /static/index.html": ("GET", "/static/index.html", None, None, 200),
    "POST /upload": ("POST", "/upload", b"name=profshim&size=1234",
                     {"Content-Type": "application/x-www-form-urlencoded"},
                     201),
}

# cpuserver: three of its endpoints; anything else is a 404.
CPU_REAL = {
    "GET /fast": ("GET", "/fast", None, None, 200),
    "GET /alpha": ("GET", "/alpha?ms=1", None, None, 200),
    "GET /beta": ("GET", "/beta?ms=1", None, None, 200),
}


def scan_paths(seed, n=SCAN):
    """n distinct paths a scanner might probe, none of which exists. The
    letters are not hex digits and there are no digits, so no segment
    looks like an id: each path is an endpoint of its own."""
    rnd = random.Random(seed)
    letters = "ghijklmnopqrstuvwxyz"
    shapes = ["/{w}.php", "/{w}/", "/wp-content/plugins/{w}/readme.txt",
              "/{w}/.env", "/admin/{w}.bak", "/{w}"]
    paths = set()
    while len(paths) < n:
        w = "".join(rnd.choice(letters) for _ in range(rnd.randint(6, 14)))
        paths.add(rnd.choice(shapes).format(w=w))
    return sorted(paths, key=lambda p: rnd.random())


def scan(port, paths, connections=4):
    """GET every path, over `connections` keep-alive connections at once
    as a scanner does; every answer must be 404."""
    parts = [paths[k::connections] for k in range(connections)]
    with ThreadPoolExecutor(max_workers=connections) as pool:
        for part, statuses in zip(parts, pool.map(
                lambda p: keepalive(port, [("GET", q, None, None)
                                           for q in p]), parts)):
            assert statuses == [404] * len(part)


def serve_real(port, real, n, connections=3):
    """n requests to each real endpoint, interleaved, over `connections`
    keep-alive connections; every answer must be the endpoint's status."""
    reqs = [r for _ in range(n) for r in real.values()]
    parts = [reqs[k::connections] for k in range(connections)]

    def client(part):
        got = keepalive(port, [r[:4] for r in part])
        assert got == [r[4] for r in part]

    with ThreadPoolExecutor(max_workers=connections) as pool:
        list(pool.map(client, parts))


def check_profile(prof, real, want_real, scanned, processes, cap):
    """Each real endpoint has its own row with exactly want_real calls; the
    scan is counted under its own paths (at most the first half of `cap`
    per process, one call each) and OTHER; every request once."""
    data = prof["data"]
    for name in real:
        assert calls(prof, name) == want_real, (name, dump_json(data))
        assert sum(data[name]["status"].values()) == want_real
    scan_names = {f"GET {p}" for p in scanned}
    named_scan = {k: v["calls"] for k, v in data.items()
                  if k not in real and k != "OTHER"}
    assert set(named_scan) <= scan_names, set(named_scan) - scan_names
    assert all(n == 1 for n in named_scan.values()), named_scan
    assert len(named_scan) <= processes * (cap - cap // 2), len(named_scan)
    other = calls(prof, "OTHER")
    assert len(named_scan) + other == len(scanned)
    assert data.get("OTHER", {}).get("status", {}) == (
        {"4xx": other} if other else {})
    assert prof["dropped"]["overflow_endpoints"] == other
    assert sum(v["calls"] for v in data.values()) == \
        len(scanned) + want_real * len(real)
    assert prof["dropped"]["requests"] == 0
    assert prof["dropped"]["events"] == 0
    return named_scan, other


def run_nginx(servers, collectors, tmp_path, order, **settings):
    """nginx under the shim (profiling on at its defaults, plus settings)
    with a root-or-user collector on its master; `order` is a list of
    ("scan", seed) and ("real", n) steps. Returns the profile, the paths
    scanned, the real calls sent per endpoint and the workers."""
    env = shim_env(ENABLE_PROFILING="true", **settings)
    srv = start_nginx(tmp_path, env)
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid)
    collectors.append(col)
    workers = worker_pids(srv.pid)
    scanned, sent = [], 0
    for step, arg in order:
        if step == "scan":
            paths = scan_paths(arg)
            scan(srv.port, paths)
            scanned += paths
        else:
            serve_real(srv.port, NGINX_REAL, arg)
            sent += arg
    stderr = srv.stop()
    assert "profshim" not in stderr, stderr
    return col.finish(), scanned, sent, workers


def test_nginx_scan_then_real_endpoints(servers, collectors, tmp_path):
    """The issue's case: PROFILING_MAX_ENDPOINTS=100, 3,000 one-off paths
    answered 404, then 300 requests to each of 3 real endpoints: each has
    its own row with exactly 300 calls."""
    prof, scanned, sent, workers = run_nginx(
        servers, collectors, tmp_path, [("scan", 1), ("real", REAL)],
        PROFILING_MAX_ENDPOINTS="100")
    assert sent == REAL
    named, other = check_profile(prof, NGINX_REAL, REAL, scanned,
                                 len(workers), 100)
    # Each worker that saw the scan kept at most 50 of its paths.
    assert other >= SCAN - 2 * 50
    print(f"scan rows {len(named)}, OTHER {other}")


def test_nginx_real_scan_real(servers, collectors, tmp_path):
    """Real endpoints first, then the scan, then the real ones again:
    their rows hold every call, before and after."""
    prof, scanned, sent, workers = run_nginx(
        servers, collectors, tmp_path,
        [("real", 100), ("scan", 2), ("real", REAL - 100)],
        PROFILING_MAX_ENDPOINTS="100")
    assert sent == REAL
    check_profile(prof, NGINX_REAL, REAL, scanned, len(workers), 100)


def test_nginx_scan_at_the_default_cap(servers, collectors, tmp_path):
    """The default of 1,000 names per process and a scan of 3,000
    paths: each worker admits the first 500 it sees and no more; the
    real endpoints served afterwards have their rows."""
    prof, scanned, sent, workers = run_nginx(
        servers, collectors, tmp_path, [("scan", 3), ("real", REAL)])
    named, other = check_profile(prof, NGINX_REAL, REAL, scanned,
                                 len(workers), 1000)
    assert other >= SCAN - 2 * 500
    assert other > 0


# ---- cpuserver: the ring header's own counters -------------------------------

def ring_header(pid):
    paths = hu.rings_of(pid)
    assert len(paths) == 1, paths
    return RingHeader.from_buffer_copy(Path(paths[0]).read_bytes())


def test_cpuserver_scan_counts_in_the_header(servers, collectors, tmp_path):
    """One process: the scan takes exactly the first 50 slots of 100, every
    other scan path counts under OTHER, the real endpoints take a slot
    each at their first request."""
    srv, col = start_cpuserver(servers, collectors, tmp_path,
                               PROFILING_MAX_ENDPOINTS="100")
    paths = scan_paths(4)
    # The first paths on one connection, so that the 50 first seen are
    # these (threads racing for the last free slot could take one more).
    scan(srv.port, paths[:100], connections=1)
    scan(srv.port, paths[100:])
    wait_connections_closed(srv.pid)
    h = ring_header(srv.pid)
    assert (h.endpoints_used, h.overflow_endpoints) == (50, SCAN - 50)
    serve_real(srv.port, CPU_REAL, REAL)
    wait_connections_closed(srv.pid)
    h = ring_header(srv.pid)
    assert (h.endpoints_used, h.overflow_endpoints) == (53, SCAN - 50)
    srv.stop()
    prof = col.finish()
    named, other = check_profile(prof, CPU_REAL, REAL, paths, 1, 100)
    assert set(named) == {f"GET {p}" for p in paths[:50]}
    assert other == SCAN - 50


def test_cpuserver_repeated_scan(servers, collectors, tmp_path):
    """The same 3,000 paths twice (scanners share their lists): a path
    answered 404 a second time is admitted, but only while the table holds
    fewer than 75 names of 100; the last quarter stays for answered
    names, and the real endpoints still get their rows."""
    srv, col = start_cpuserver(servers, collectors, tmp_path,
                               PROFILING_MAX_ENDPOINTS="100")
    paths = scan_paths(5)
    for _ in range(2):
        scan(srv.port, paths, connections=1)
    wait_connections_closed(srv.pid)
    h = ring_header(srv.pid)
    assert (h.endpoints_used, h.overflow_endpoints) == (
        75, 2 * SCAN - 50 - 25 - 50)
    serve_real(srv.port, CPU_REAL, REAL)
    srv.stop()
    prof = col.finish()
    data = prof["data"]
    for name in CPU_REAL:
        assert calls(prof, name) == REAL, (name, dump_json(data))
    named = {k: v["calls"] for k, v in data.items()
             if k not in CPU_REAL and k != "OTHER"}
    # The first 50 at first sight (both passes counted), 25 at their
    # second (the first went to OTHER).
    assert sorted(named.values()) == [1] * 25 + [2] * 50
    assert sum(named.values()) + calls(prof, "OTHER") == 2 * SCAN
    assert prof["dropped"]["overflow_endpoints"] == calls(prof, "OTHER")
    assert sum(v["calls"] for v in data.values()) == 2 * SCAN + 3 * REAL


def exchange(port, payload, responses):
    """Send payload in one write on a new connection, read `responses`
    responses (framed by Content-Length) and return their statuses."""
    statuses, buf = [], b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(payload)
        while len(statuses) < responses:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                head = buf[:end].decode()
                length = next(int(line.split(":", 1)[1])
                              for line in head.split("\r\n")
                              if line.lower().startswith("content-length:"))
                if len(buf) >= end + 4 + length:
                    statuses.append(int(head.split()[1]))
                    buf = buf[end + 4 + length:]
                    continue
            b = s.recv(65536)
            assert b, "server closed"
            buf += b
    return statuses


def test_cpuserver_pipelined_new_names(servers, collectors, tmp_path):
    """Past half the cap, a new name waits for its response on its
    connection. Requests pipelined behind it for the same name wait with
    it and count under it; one for another new name meanwhile counts
    under OTHER (the connection keeps one name). Every request once."""
    srv, col = start_cpuserver(servers, collectors, tmp_path,
                               PROFILING_MAX_ENDPOINTS="100")
    paths = scan_paths(6, n=60)
    scan(srv.port, paths, connections=1)
    req = b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n"
    pipelined = b"".join(req % p for p in (
        b"/fast", b"/fast", b"/alpha?ms=1", b"/fast"))
    assert exchange(srv.port, pipelined, 4) == [200] * 4
    # /alpha alone: its name waits, is answered 200 and admitted.
    assert keepalive(srv.port, [("GET", "/alpha?ms=1", None, None)] * 2) \
        == [200, 200]
    wait_connections_closed(srv.pid)
    h = ring_header(srv.pid)
    assert (h.endpoints_used, h.overflow_endpoints) == (52, 10 + 1)
    srv.stop()
    prof = col.finish()
    assert calls(prof, "GET /fast") == 3
    assert calls(prof, "GET /alpha") == 2
    assert calls(prof, "OTHER") == 11
    assert sum(v["calls"] for v in prof["data"].values()) == 60 + 6
