"""`record --push URL`: the collector pushes each interval's samples to a
Pyroscope-compatible store, here a loopback receiver run by the test.

Every body must be one the real consumer reads (`go tool pprof` for pprof,
`a;b;c N` lines for folded), carry the query a Pyroscope store expects
(name=APP{tags}, contiguous from/until, sampleRate, spyName) and the bearer
token, and the samples of all bodies together must be exactly those of the
profile the collector wrote: none lost, none twice, also when the store
fails some pushes first. A store that is absent or never answers must not
hold up draining, the control socket, or the collector's exit beyond its
5 s bound. Bad options are refused with one clear line.
"""
import http.server
import re
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

from helpers import (COLLECTOR, CPUSERVER, Collector, Server, calls,
                     clean_env, free_port, keepalive, shim_env,
                     wait_connections_closed)
from helpers.pprof import pprof

TOKEN = "some-token"
HZ = 199
# push_finish()'s bound in record.c, and what a stopping collector may
# take besides (noticing the exit, writing the profile; ASan is slower).
FINISH_BOUND = 5.0
EXIT_MARGIN = 3.0


class Receiver:
    """A loopback HTTP server that records every request (path, query,
    headers, body) and answers the first len(statuses) of them with those
    statuses, then 200."""

    def __init__(self, statuses=()):
        self.requests = []
        self._plan = list(statuses)
        self._lock = threading.Lock()
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                url = urllib.parse.urlsplit(self.path)
                with rec._lock:
                    status = rec._plan.pop(0) if rec._plan else 200
                    rec.requests.append({
                        "path": url.path,
                        "query": urllib.parse.parse_qs(
                            url.query, keep_blank_values=True),
                        "headers": dict(self.headers),
                        "body": body,
                        "status": status,
                    })
                reply = b"" if status == 200 else b"busy\x1b[31m\nnow"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        daemon=True)
        self._thread.start()

    def delivered(self):
        with self._lock:
            return [r for r in self.requests if r["status"] == 200]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    started = []
    yield started
    for r in started:
        r.close()


def start(servers, collectors, tmp_path, url, *push_args):
    """cpuserver under the shim (every request sampled at HZ) and a
    collector pushing to url every second as myapp{env=test,region=eu},
    with the token in its environment."""
    port = free_port()
    srv = Server([CPUSERVER, port],
                 shim_env(ENABLE_PROFILING="true", PROFILING_SAMPLE_RATE="1",
                          PROFILING_HZ=str(HZ)), port)
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid,
                    extra=["--checkpoint", "0", "--push", url,
                           "--push-interval", "1", "--app", "myapp",
                           "--tag", "env=test", "--tag", "region=eu",
                           *push_args],
                    env=clean_env(PYROSCOPE_AUTH_TOKEN=TOKEN))
    collectors.append(col)
    return srv, col


def load(port, seconds):
    """Requests to /alpha and /beta (20 ms of CPU each) for `seconds`;
    returns how many were answered."""
    n = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reqs = [("GET", "/alpha?ms=20", None, None),
                ("GET", "/beta?ms=20", None, None)] * 3
        assert keepalive(port, reqs) == [200] * len(reqs)
        n += len(reqs)
    return n


def total_samples(profile):
    return sum(s["samples"] for s in profile["stacks"])


RAW_SAMPLE = re.compile(r"^\s+(\d+)\s+(\d+): ", re.M)


def check_query(reqs, fmt):
    """Every push's query as a Pyroscope store reads it; from/until
    contiguous and increasing."""
    prev_until = None
    for i, r in enumerate(reqs):
        q = {k: v[0] for k, v in r["query"].items()}
        assert r["path"] == "/ingest"
        assert q["name"] == "myapp{env=test,region=eu}", q
        assert q["format"] == fmt and q["spyName"] == "profshim", q
        assert q["sampleRate"] == str(HZ), q
        assert q["units"] == "samples" and q["aggregationType"] == "sum"
        frm, until = int(q["from"]), int(q["until"])
        assert abs(frm - time.time()) < 600, q
        if prev_until is not None:
            assert frm == prev_until, (i, q)
        # Pushes a second apart cover a second or more; only push_finish's
        # push may come within the same second as the one before it.
        assert frm < until or (i == len(reqs) - 1 and frm == until), q
        prev_until = until
        assert r["headers"]["Authorization"] == "Bearer " + TOKEN


def failure_lines(stderr):
    return [l for l in stderr.splitlines() if " failed: " in l]


def test_pprof_pushes_carry_every_sample_once(servers, collectors,
                                              receivers, tmp_path):
    rec = Receiver()
    receivers.append(rec)
    srv, col = start(servers, collectors, tmp_path, rec.url)
    n = load(srv.port, 3.5)
    srv.stop()
    prof = col.finish()
    assert calls(prof, "GET /alpha") + calls(prof, "GET /beta") == n
    reqs = rec.requests
    assert len(reqs) >= 2, col.stderr
    assert all(r["status"] == 200 for r in reqs)
    check_query(reqs, "pprof")
    pushed = 0
    for i, r in enumerate(reqs):
        assert r["headers"]["Content-Type"] == "application/octet-stream"
        assert r["body"][:2] == b"\x1f\x8b"  # gzip
        path = tmp_path / f"push{i}.pb.gz"
        path.write_bytes(r["body"])
        raw = pprof(tmp_path, "-raw", path)
        assert "samples/count cpu/nanoseconds[dflt]" in raw, raw
        assert re.search(r"\bburn_(alpha|beta)\b", raw), raw
        assert "endpoint:[GET /" in raw, raw
        counts = [int(c) for c, _ in RAW_SAMPLE.findall(raw)]
        assert counts and all(c > 0 for c in counts), raw
        # The test's own reading of the protobuf agrees with pprof's.
        assert sum(counts) == sum_pprof_samples(r["body"])
        pushed += sum(counts)
    assert pushed == total_samples(prof), (pushed, col.stderr)
    assert TOKEN not in col.stderr


def test_folded_pushes_are_lines_with_counts(servers, collectors, receivers,
                                             tmp_path):
    rec = Receiver()
    receivers.append(rec)
    srv, col = start(servers, collectors, tmp_path, rec.url,
                     "--push-format", "folded")
    load(srv.port, 2.5)
    srv.stop()
    prof = col.finish()
    reqs = rec.requests
    assert len(reqs) >= 2, col.stderr
    check_query(reqs, "folded")
    pushed = 0
    funcs = set()
    for r in reqs:
        assert r["headers"]["Content-Type"] == "text/plain"
        lines = r["body"].decode().splitlines()
        assert lines
        for line in lines:
            m = re.fullmatch(r"([^ ;\n]+(?:;[^ ;\n]+)*) ([1-9]\d*)", line)
            assert m, line
            funcs.update(m.group(1).split(";"))
            pushed += int(m.group(2))
    assert {"burn_alpha", "burn_beta", "serve"} <= funcs, funcs
    assert pushed == total_samples(prof)
    assert TOKEN not in col.stderr


def folded_samples(body):
    return sum(int(line.rsplit(" ", 1)[1])
               for line in body.decode().splitlines())


def test_metrics_count_pushes(servers, collectors, receivers, tmp_path):
    """With --http too, /metrics says what pushing did: failed attempts,
    bodies and samples the store took, what waits. Checked against what
    the receiver saw once pushing has settled."""
    rec = Receiver(statuses=(503, 503))
    receivers.append(rec)
    key = tmp_path / "api.key"
    key.write_text("metrics-key\n")
    key.chmod(0o600)
    api = free_port()
    srv, col = start(servers, collectors, tmp_path, rec.url,
                     "--push-format", "folded", "--http", f"127.0.0.1:{api}",
                     "--api-key-file", str(key))

    def metrics():
        req = urllib.request.Request(
            f"http://127.0.0.1:{api}/metrics",
            headers={"Authorization": "Bearer metrics-key"})
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read().decode()
        values = {}
        for line in text.splitlines():
            if line.startswith("profshim_collector_"):
                name, value = line.rsplit(" ", 1)
                values[name] = int(value)
        return text, values

    load(srv.port, 1.5)
    wait_connections_closed(srv.pid)
    total = total_samples(col.dump())
    assert total > 0
    # Two failures, then backoff of 1 s and 2 s: settled within seconds.
    deadline = time.monotonic() + 20
    while True:
        text, m = metrics()
        if (m['profshim_collector_push_samples_total{result="sent"}'] ==
                total and m["profshim_collector_push_queued_bodies"] == 0):
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.2)
    delivered = rec.delivered()
    assert m['profshim_collector_push_bodies_total{result="sent"}'] == \
        len(delivered) >= 1
    assert sum(folded_samples(r["body"]) for r in delivered) == total
    assert m["profshim_collector_push_failures_total"] == 2
    assert m['profshim_collector_push_bodies_total{result="dropped"}'] == 0
    assert m['profshim_collector_push_samples_total{result="dropped"}'] == 0
    assert m["profshim_collector_rings"] == 1
    r = subprocess.run(["promtool", "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    srv.stop()
    col.finish()


def test_failed_pushes_are_retried_in_order(servers, collectors, receivers,
                                            tmp_path):
    """The first three requests get 503: the same body is sent again (with
    backoff) until accepted, and every sample arrives exactly once; the
    failure is logged once, without the reply's control characters."""
    rec = Receiver(statuses=[503, 503, 503])
    receivers.append(rec)
    srv, col = start(servers, collectors, tmp_path, rec.url)
    load(srv.port, 3.0)
    srv.stop()
    prof = col.finish()
    reqs = rec.requests
    assert [r["status"] for r in reqs[:3]] == [503] * 3, col.stderr
    # The refused body is the one accepted next, byte for byte.
    assert reqs[0]["body"] == reqs[1]["body"] == reqs[2]["body"] \
        == reqs[3]["body"]
    assert reqs[0]["query"] == reqs[3]["query"]
    ok = rec.delivered()
    check_query(ok, "pprof")
    pushed = 0
    for r in ok:
        # The receiver's own count: cheaper than go tool pprof per body,
        # which the first test runs.
        pushed += sum_pprof_samples(r["body"])
    assert pushed == total_samples(prof), col.stderr
    fails = failure_lines(col.stderr)
    assert len(fails) == 1, col.stderr
    assert "HTTP 503: busy?[31m?now" in fails[0], fails
    assert "works again" in col.stderr
    assert "\x1b" not in col.stderr
    assert TOKEN not in col.stderr


def _varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7f) << shift
        shift += 7
        if c < 0x80:
            return v, i


def _fields(b):
    """(field number, wire type, value) of a protobuf message."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        wire = key & 7
        if wire == 0:
            v, i = _varint(b, i)
        elif wire == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError(f"wire type {wire}")
        yield key >> 3, wire, v


def sum_pprof_samples(body):
    """The sum of the first value (samples/count) of every Sample of a
    gzipped profile.proto."""
    import gzip
    total = 0
    for field, _, sample in _fields(gzip.decompress(body)):
        if field != 2:  # Profile.sample
            continue
        for f, wire, v in _fields(sample):
            if f == 2:  # Sample.value, packed
                total += _varint(v, 0)[0] if wire == 2 else v
                break
    return total


class HangingStore:
    """Accepts connections (the kernel's backlog) and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("store", ["absent", "hanging"])
def test_store_absent_or_hanging_does_not_stall(servers, collectors,
                                                tmp_path, store):
    if store == "absent":
        port = free_port()
        url, closer = f"http://127.0.0.1:{port}", None
    else:
        closer = HangingStore()
        url = closer.url
    try:
        srv, col = start(servers, collectors, tmp_path, url)
        n = load(srv.port, 1.5)
        # The server accounts a response just after sending it: once it
        # has closed the connections, every answered request is counted.
        wait_connections_closed(srv.pid)
        # A push is in flight (hanging) or backing off (absent) by now.
        t0 = time.monotonic()
        mid = col.dump()
        took = time.monotonic() - t0
        assert took < 1.0, took
        assert calls(mid, "GET /alpha") + calls(mid, "GET /beta") == n
        n += load(srv.port, 1.0)
        t0 = time.monotonic()
        srv.stop()
        prof = col.finish()
        took = time.monotonic() - t0
    finally:
        if closer:
            closer.close()
    assert calls(prof, "GET /alpha") + calls(prof, "GET /beta") == n
    assert took < FINISH_BOUND + EXIT_MARGIN, took
    err = col.stderr
    fails = failure_lines(err)
    undelivered = [l for l in err.splitlines() if "not delivered" in l]
    assert len(undelivered) == 1, err
    if store == "absent":
        # The first push is refused at once, with one body queued; the
        # retries within the minute are not logged. libcurl's words for a
        # refused connection (7.88: "Failed to connect to H port P after
        # N ms: Couldn't connect to server"; older: ": Connection
        # refused").
        why = (rf"Failed to connect to 127\.0\.0\.1 port {port}"
               r"(?: after \d+ ms)?: "
               r"(?:Couldn't connect to server|Connection refused)")
        assert len(fails) == 1, err
        assert re.fullmatch(
            rf"profshim-collector: push to http://127\.0\.0\.1:{port} "
            rf"failed: {why} \(1 failure since \d\d:\d\d:\d\d, 1 body "
            r"queued, 0 dropped\); retrying", fails[0]), err
        assert re.fullmatch(
            rf"profshim-collector: push to http://127\.0\.0\.1:{port}: "
            rf"\d+ bod(y|ies) \(\d+ samples\) not delivered within 5 s: "
            rf"{why}", undelivered[0]), err
    else:
        # Connected, no answer: nothing has failed yet (the transfer's
        # own bound is 30 s), the push in flight is what is left.
        assert fails == [], err
        assert re.fullmatch(
            r"profshim-collector: push to http://127\.0\.0\.1:\d+: "
            r"\d+ bod(y|ies) \(\d+ samples\) not delivered within 5 s: "
            r"no answer yet", undelivered[0]), err
    assert TOKEN not in err


@pytest.mark.parametrize("args, status, says", [
    (["--push", "ftp://x"], 1, "must start with http:// or https://"),
    (["--push", "http://h/?a=b"], 1, "must not have a query"),
    (["--push", "http://h", "--tag", "noequals"], 1,
     "tag 'noequals' is not KEY=VALUE"),
    (["--push", "http://h", "--tag", "a=b,c"], 1, "tag 'a=b,c': the value"),
    (["--push", "http://h", "--tag", "1a=b"], 1, "tag '1a=b': the key"),
    (["--push", "http://h", "--tag", "a=b", "--tag", "a=c"], 1,
     "given twice"),
    (["--push", "http://h", "--app", "my{app"], 1,
     "application name 'my{app'"),
    (["--push", "http://h", "--push-format", "xml"], 2,
     "--push-format is pprof or folded"),
    (["--tag", "a=b"], 2,
     "--tag, --app, --push-interval and --push-format go with --push URL"),
    (["--push-interval", "5"], 2,
     "--tag, --app, --push-interval and --push-format go with --push URL"),
])
def test_bad_push_options_are_refused(tmp_path, args, status, says):
    """Exit 2 (usage) for what the command line itself rejects; exit 1
    with one `--push:` line for what push_new() checks."""
    r = subprocess.run([str(COLLECTOR), "record", "--out",
                        str(tmp_path / "p.json"), "--socket",
                        str(tmp_path / "s"), *args],
                       capture_output=True, text=True, timeout=20,
                       env=clean_env(PYROSCOPE_AUTH_TOKEN=TOKEN))
    assert r.returncode == status, r.stderr
    first = r.stderr.splitlines()[0]
    assert says in first, r.stderr
    if status == 1:
        assert r.stderr.splitlines() == [first], r.stderr
        assert first.startswith("profshim-collector: --push: ")
    assert TOKEN not in r.stderr
    assert not (tmp_path / "p.json").exists()
