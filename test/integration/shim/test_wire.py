"""Hostile input on the server's side: what clients send.

- Secrets (query strings, headers, cookies, bodies, ids in paths) never
  reach the ring, the profile, any report, or the collector's output.
- Garbage on the wire never hurts the server the shim is in, and is
  accounted the way hooks.c documents; the valid requests around it are
  counted exactly.
- Ten thousand open connections are all served and counted; where the
  file limit allows descriptors past the shim's connection table, half of
  them get such descriptors and are served all the same, and counted as
  untracked connections.
"""
import gzip
import os
import random
import re
import resource
import socket
import subprocess
import time
import uuid
from pathlib import Path

from helpers import rings as hu
from helpers import (CPUSERVER, SHIM, Server, calls, free_port,
                     keepalive, raw_exchange, shim_env)
from helpers.nginx import start_nginx, worker_pids

FORMATS = ["json", "folded", "pprof", "speedscope", "html", "prometheus"]


def make_secrets():
    """Unique strings, one per place a secret can travel in a request."""
    tag = uuid.uuid4().hex
    return {
        "query": f"qsecret{tag}",
        "header": f"hsecret{tag}",
        "authorization": f"asecret{tag}",
        "cookie": f"csecret{tag}",
        "body": f"bsecret{tag}",
        "chunked": f"ksecret{tag}",
        # An id in the path: 32 hex digits, which the shim templates.
        "path id": uuid.uuid4().hex,
    }


def windows(secret, n=10):
    """Every n-byte piece of a secret: none may appear anywhere either."""
    b = secret.encode()
    return {b[i:i + n] for i in range(len(b) - n + 1)}


def assert_no_secret(data, secrets, what):
    for name, secret in secrets.items():
        for piece in windows(secret):
            assert piece not in data, f"{name} secret ({piece}) in {what}"


def secret_requests(secrets):
    """(method, path, body, headers) carrying every secret but chunked."""
    return [
        ("GET", f"/alpha?ms=2&token={secrets['query']}", None, None),
        ("GET", "/beta?ms=2", None, {"X-Api-Key": secrets["header"]}),
        ("GET", "/alpha?ms=2", None,
         {"Authorization": f"Bearer {secrets['authorization']}"}),
        ("GET", "/fast", None, {"Cookie": f"session={secrets['cookie']}"}),
        ("POST", "/alpha?ms=2", f"password={secrets['body']}".encode(),
         {"Content-Type": "application/x-www-form-urlencoded"}),
        ("GET", f"/reset/{secrets['path id']}?profile=1", None, None),
    ]


def read_rings(pids):
    """The raw bytes of every ring of these processes."""
    out = b""
    for pid in pids:
        for path in hu.rings_of(pid):
            out += Path(path).read_bytes()
    return out


def check_reports(tmp_path, profile_path, secrets):
    """Every report format of the saved profile, free of secrets."""
    for fmt in FORMATS:
        out = tmp_path / f"report.{fmt}"
        r = subprocess.run(
            [str(hu.asan_collector()), "report", "--input",
             str(profile_path), "--format", fmt, "--output", str(out)],
            env=hu.asan_env(), capture_output=True, text=True, timeout=60)
        hu.assert_no_sanitizer_report(r.stderr, f"report --format {fmt}")
        assert r.returncode == 0, (fmt, r.stderr)
        data = out.read_bytes()
        # Folded stacks are empty when nothing was sampled.
        assert data or fmt == "folded", fmt
        if fmt == "pprof":
            data = gzip.decompress(data)
        assert_no_secret(data + r.stdout.encode() + r.stderr.encode(),
                         secrets, f"report --format {fmt}")


def test_secrets_stay_out_cpuserver(servers, collectors, tmp_path):
    secrets = make_secrets()
    port = free_port()
    srv = Server([CPUSERVER, port], shim_env(
        ENABLE_PROFILING="true", PROFILING_SAMPLE_RATE="1",
        PROFILING_HZ="997"), port)
    servers.append(srv)
    # --slow-ms: every request also goes to stdout as a JSON line; the
    # ?profile=1 one gets a line on stderr.
    col = hu.AsanCollector(tmp_path, pid=srv.pid,
                           extra=["--slow-ms", "0.001"])
    collectors.append(col)
    statuses = keepalive(port, secret_requests(secrets) * 3)
    assert statuses == [200, 200, 200, 200, 200, 404] * 3
    ring = read_rings([srv.pid])
    assert ring and b"GET /reset/:id" in ring
    assert_no_secret(ring, secrets, "the ring")
    srv.stop()
    prof = col.finish()
    assert {k: v["calls"] for k, v in prof["data"].items()} == {
        "GET /alpha": 6, "GET /beta": 3, "GET /fast": 3, "POST /alpha": 3,
        "GET /reset/:id": 3}
    output = col.err_path.read_bytes() + col.out_path.read_bytes()
    assert b"profiled request" in output and b'"endpoint"' in output
    assert_no_secret(output, secrets, "the collector's output")
    assert_no_secret(col.out.read_bytes(), secrets, "the profile")
    check_reports(tmp_path, col.out, secrets)


def chunked(data):
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data)


def test_secrets_stay_out_nginx(servers, collectors, tmp_path):
    secrets = make_secrets()
    srv = start_nginx(tmp_path, shim_env(ENABLE_PROFILING="true",
                                         PROFILING_SAMPLE_RATE="1"))
    servers.append(srv)
    col = hu.AsanCollector(tmp_path, pid=srv.pid)
    collectors.append(col)
    workers = worker_pids(srv.pid)
    # cpuserver's requests, sent to nginx's /ok, and the POST to /upload.
    reqs = [(m, "/upload" if m == "POST" else
             re.sub(r"^/(alpha|beta|fast)", "/ok", p), b, h)
            for m, p, b, h in secret_requests(secrets)]
    for _ in range(4):
        assert keepalive(srv.port, reqs) == [200, 200, 200, 200, 201, 404]
        out = raw_exchange(
            srv.port, b"POST /upload HTTP/1.1\r\nHost: t\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
            chunked(f"secret={secrets['chunked']}".encode()))
        assert out.startswith(b"HTTP/1.1 201"), out[:100]
    ring = read_rings(workers)
    assert b"GET /reset/:id" in ring
    assert_no_secret(ring, secrets, "the rings")
    srv.stop()
    prof = col.finish()
    assert calls(prof, "GET /ok") == 16
    assert calls(prof, "POST /upload") == 8
    assert calls(prof, "GET /reset/:id") == 4
    output = col.err_path.read_bytes() + col.out_path.read_bytes()
    assert_no_secret(output, secrets, "the collector's output")
    assert_no_secret(col.out.read_bytes(), secrets, "the profile")
    check_reports(tmp_path, col.out, secrets)


def test_ids_in_long_paths_do_not_leak(servers, collectors, tmp_path):
    """The shim keeps HTTP_TARGET_MAX (160) bytes of a path; an id that
    this cut goes through must not be kept in part: it would be in the
    endpoint name (and make one endpoint per id)."""
    port = free_port()
    srv = Server([CPUSERVER, port], shim_env(ENABLE_PROFILING="true"), port)
    servers.append(srv)
    col = hu.AsanCollector(tmp_path, pid=srv.pid)
    collectors.append(col)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    reqs = [("GET", "/users/" + "a" * (130 + 5 * k) + "/" + i, None, None)
            for k, i in enumerate(ids)]
    assert keepalive(port, reqs) == [404] * 3
    srv.stop()
    prof = col.finish()
    names = " ".join(prof["data"]).encode()
    assert_no_secret(names, {f"id {k}": i for k, i in enumerate(ids)},
                     f"endpoint names {list(prof['data'])}")


# ---- garbage through nginx -------------------------------------------------------

VALID = 300


def exchange(port, payload, shut=False, timeout=10):
    """Send payload on a new connection, read until the server closes
    (a reset counts as a close); returns what was read."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(payload)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
    return out


def bytewise(port, request, pause=0.002):
    """A valid request sent one byte per send()."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(request)):
            s.send(request[i:i + 1])
            time.sleep(pause)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    return out


def random_garbage(seed):
    """Random bytes that no HTTP parser takes for a request: the first is
    not a method character (so nginx and the shim both give up at once),
    and there are fewer than nginx reads at once (1 KB), so nginx reads
    them in one call."""
    r = random.Random(seed)
    return bytes([r.randrange(0x80, 0x100)] +
                 [r.randrange(256) for _ in range(r.randrange(16, 900))])


def test_garbage_through_nginx(servers, collectors, tmp_path):
    srv = start_nginx(tmp_path, shim_env(ENABLE_PROFILING="true",
                                         PROFILING_SAMPLE_RATE="0.5"))
    servers.append(srv)
    col = hu.AsanCollector(tmp_path, pid=srv.pid)
    collectors.append(col)
    port = srv.port
    workers = worker_pids(srv.pid)
    assert len(workers) == 2

    # Not HTTP from the first byte: hooks.c times such a connection by
    # read-after-write turns under "TCP :<port>". nginx reads the bytes
    # in one call, answers 400 and closes: one turn, no HTTP status.
    n_random = 12
    for seed in range(n_random):
        out = exchange(port, random_garbage(seed))
        assert out.startswith(b"HTTP/1.1 400"), (seed, out[:80])
    # A NUL in the request target is not HTTP either (the shim and
    # nginx agree): the same.
    out = exchange(port, b"GET /o\x00k HTTP/1.1\r\nHost: t\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out[:80]

    # A request line nginx gives up on before it ends (414 after a few
    # KB): the shim never saw the line complete, so the request has
    # no endpoint and is not reported (hooks.c conn_complete).
    out = exchange(port, b"GET /" + b"a" * 100000 +
                   b" HTTP/1.1\r\nHost: t\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 414"), out[:80]

    # Request lines the shim read whole, then a head or body nginx
    # refuses: reported under their endpoint with nginx's 4xx.
    out = exchange(port, b"GET /hdrs HTTP/1.1\r\nHost: t\r\n" +
                   b"".join(b"X-H%d: v\r\n" % i for i in range(5000)) +
                   b"\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out[:80]
    out = exchange(port, b"GET /nul HTTP/1.1\r\nHost: t\r\n"
                   b"X-A: a\x00b\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out[:80]
    bad_chunks = [b"zz\r\nabc\r\n0\r\n\r\n",           # bad hex size
                  b"3\r\nabcXX0\r\n\r\n",                # no CRLF
                  b"f" * 40 + b"\r\nabc\r\n0\r\n\r\n",   # size overflow
                  b"7fffffffffffffff\r\nabc\r\n"]        # huge size
    for body in bad_chunks:
        out = exchange(port, b"POST /upload HTTP/1.1\r\nHost: t\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n" + body,
                       shut=True)
        assert re.match(rb"HTTP/1.1 4\d\d", out), (body, out[:80])

    # Valid, one byte per send().
    n_bytewise = 3
    for _ in range(n_bytewise):
        out = bytewise(port, b"GET /static/index.html HTTP/1.1\r\n"
                       b"Host: t\r\nConnection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 200"), out[:80]

    # Then the valid requests.
    assert keepalive(port, [("GET", "/ok", None, None)] * VALID) == \
        [200] * VALID
    # No worker died (nginx would have started a new one) and the master
    # still runs.
    assert worker_pids(srv.pid) == workers
    assert srv.proc.poll() is None
    stderr = srv.stop()
    prof = col.finish()
    assert srv.proc.returncode == 0, stderr
    log = (tmp_path / "error.log").read_text()
    assert "exited on signal" not in log and "[alert]" not in log, log
    assert "profshim" not in stderr, stderr
    data = prof["data"]
    summary = {k: (v["calls"], v["status"]) for k, v in data.items()}
    assert calls(prof, "GET /ok") == VALID, summary
    assert data["GET /ok"]["status"] == {"2xx": VALID}
    assert calls(prof, "GET /static/index.html") == n_bytewise, summary
    assert calls(prof, f"TCP :{port}") == n_random + 1, summary
    assert data[f"TCP :{port}"]["status"] == {"other": n_random + 1}
    assert data["GET /hdrs"]["status"] == {"4xx": 1}
    assert data["GET /nul"]["status"] == {"4xx": 1}
    assert data["POST /upload"]["status"] == {"4xx": len(bad_chunks)}
    assert set(data) == {"GET /ok", "GET /static/index.html",
                         f"TCP :{port}", "GET /hdrs", "GET /nul",
                         "POST /upload"}, summary
    # Every request nginx answered, the shim saw answered.
    assert all(v["aborted"] == 0 for v in data.values()), summary
    assert prof["dropped"]["requests"] == 0


# ---- ten thousand connections -------------------------------------------------

CONNS = 10000
CONN_MAX = 65536          # shim/hooks.c: fds the shim tracks
BEYOND = 5000             # connections placed beyond CONN_MAX, when possible
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"


def test_ten_thousand_connections(servers, collectors, tmp_path):
    """10,000 keep-alive connections open at once, one request each.

    Where RLIMIT_NOFILE may go past the shim's table (CONN_MAX fds), the
    server first fills its descriptors up to CONN_MAX - BEYOND, so half
    the connections get fds the shim does not track: they must be served
    all the same, and counted as untracked connections. Without
    CAP_SYS_RESOURCE the hard limit decides: under CONN_MAX + BEYOND, all
    10,000 connections are within the table (CI's container: hard limit
    20,000, so the untracked half cannot be made there)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard >= CONN_MAX + BEYOND + 100:
        first_fd, beyond = CONN_MAX - (CONNS - BEYOND), BEYOND
    else:
        first_fd, beyond = 64, 0
    assert hard >= first_fd + CONNS + 100, \
        f"RLIMIT_NOFILE hard limit {hard} is below {first_fd + CONNS + 100}"
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tracked = CONNS - beyond
    script = tmp_path / "epoll_server.py"
    script.write_text(hu.EPOLL_SERVER)
    port = free_port()
    srv = Server(["/usr/bin/python3", script, port, first_fd],
                 shim_env(ENABLE_PROFILING="true",
                          PROFILING_SAMPLE_RATE="0"), port)
    servers.append(srv)
    col = hu.AsanCollector(tmp_path, pid=srv.pid)
    collectors.append(col)
    socks = []
    try:
        # wait_port's probe connection, once closed, frees first_fd again.
        assert hu.wait_until(
            lambda: not os.path.exists(f"/proc/{srv.pid}/fd/{first_fd}"))
        rss0 = hu.vm_rss_kb(srv.pid)
        batch = 500
        for k in range(0, CONNS, batch):
            part = []
            for i in range(k, k + batch):
                s = socket.create_connection(("127.0.0.1", port), timeout=30)
                s.sendall(b"GET /c?i=%d HTTP/1.1\r\nHost: t\r\n\r\n" % i)
                part.append(s)
            for s in part:
                got = b""
                while len(got) < len(RESPONSE):
                    b = s.recv(4096)
                    assert b, "closed without a response"
                    got += b
                assert got == RESPONSE
            socks += part
        # Every connection is open, at the fds planned, and was answered.
        fds = [int(f) for f in os.listdir(f"/proc/{srv.pid}/fd")]
        assert len([f for f in fds if f >= first_fd]) == CONNS
        assert max(fds) == first_fd + CONNS - 1
        assert len([f for f in fds if f >= CONN_MAX]) == beyond
        rss1 = hu.vm_rss_kb(srv.pid)
        ring = hu.RingHeader.from_buffer_copy(
            Path(hu.rings_of(srv.pid)[0]).read_bytes())
        assert ring.untracked_conns == beyond
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    srv.stop()
    prof = col.finish()
    # Measured on the 2-core CI machine (all 10,000 within the table): the
    # server grew by 11.4 MB, 2.5 MB of it without the shim (Python's
    # socket objects and buffers) and 0.9 KB per connection for the shim's
    # table entries; 105 MB with the AddressSanitizer build of the shim
    # (and its runtime, which then serves Python's allocations too). The
    # bound is 3x that.
    bound = (320 if hu.sanitized(SHIM) else 35) * 1024
    assert rss1 - rss0 < bound, (rss0, rss1)
    assert calls(prof, "GET /c") == tracked
    assert set(prof["data"]) == {"GET /c"}
    assert prof["data"]["GET /c"]["status"] == {"2xx": tracked}
    # The profile must say how many connections the shim could not track.
    assert prof["dropped"].get("untracked_conns") == beyond, prof["dropped"]
