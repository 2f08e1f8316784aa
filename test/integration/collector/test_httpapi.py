"""`record --http`: the collector's HTTP API, and a real Prometheus scraping
it.

Every request must carry the key (X-API-Key or Authorization: Bearer);
without it, or with another one, the answer is 401 whatever the path. With
the key, data is the profile `dump` gives, reset answers 204, save writes
only under --save-dir, report.html is the HTML report and /metrics the
exposition `promtool` accepts. A Prometheus started by the test scrapes
/metrics with the key as its bearer token, and its own query API must count
exactly the requests sent. A client that sends half a request must not
stop the collector from draining.
"""
import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

from helpers import (COLLECTOR, CPUSERVER, Collector, Server, free_port,
                     keepalive, shim_env, wait_port)

KEY = "k3y-Of-the-fleet_0123456789"


def key_file(tmp_path, mode=0o600, text=KEY + "\n"):
    path = tmp_path / "api.key"
    path.unlink(missing_ok=True)  # a new file of this user's
    path.write_text(text)
    os.chmod(path, mode)
    return path


def start(servers, collectors, tmp_path, save_dir=True, **settings):
    """cpuserver under the shim and a collector with the HTTP API on a free
    loopback port; returns (server, collector, api port)."""
    port = free_port()
    srv = Server([CPUSERVER, port],
                 shim_env(ENABLE_PROFILING="true", **settings), port)
    servers.append(srv)
    api = free_port()
    extra = ["--http", f"127.0.0.1:{api}",
             "--api-key-file", str(key_file(tmp_path)), "--checkpoint", "0"]
    if save_dir:
        (tmp_path / "saves").mkdir()
        extra += ["--save-dir", str(tmp_path / "saves")]
    col = Collector(tmp_path, pid=srv.pid, extra=extra)
    collectors.append(col)
    # The control socket is up first (Collector waits for it), the HTTP
    # listener a moment later: the sanitizer build once refused the first
    # API call in between.
    wait_port(api, col.proc)
    return srv, col, api


def call(api, path, method="GET", headers=None, body=None):
    """One request to the API; (status, headers, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", api, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


AUTH = {"X-API-Key": KEY}
BEARER = {"Authorization": "Bearer " + KEY}


def test_every_path_needs_the_key(servers, collectors, tmp_path):
    srv, col, api = start(servers, collectors, tmp_path)
    assert keepalive(srv.port, [("GET", "/fast", None, None)] * 9,
                     srv.pid) \
        == [200] * 9
    wrong = [
        {},
        {"X-API-Key": "wrong"},
        {"X-API-Key": KEY[:-1]},
        {"X-API-Key": KEY + "x"},
        {"X-API-Key": ""},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer " + KEY[:-1]},
        {"Authorization": "Bearer " + KEY + "x"},
        {"Authorization": "Basic " + KEY},
        {"Authorization": KEY},
        {"X-Api-Token": KEY},
    ]
    paths = [("GET", "/api/v1/profiling/data"),
             ("HEAD", "/api/v1/profiling/data"),
             ("POST", "/api/v1/profiling/reset"),
             ("POST", "/api/v1/profiling/save?file_path=x.json"),
             ("GET", "/report.html"), ("GET", "/metrics"),
             ("GET", "/no/such/path")]
    for method, path in paths:
        for headers in wrong:
            status, hdrs, body = call(api, path, method, headers)
            assert status == 401, (method, path, headers, status)
            if method != "HEAD":
                assert json.loads(body)["error"]
            assert hdrs.get("WWW-Authenticate", "").startswith("Bearer")
    # Nothing was reset or saved by the refused requests.
    assert list((tmp_path / "saves").iterdir()) == []
    assert col.dump()["data"]["GET /fast"]["calls"] == 9
    # The same paths with the key (in either header) are not 401.
    for headers in (AUTH, BEARER, {"authorization": "bearer " + KEY}):
        status, _, _ = call(api, "/api/v1/profiling/data", "GET", headers)
        assert status == 200
    assert call(api, "/no/such/path", "GET", AUTH)[0] == 404
    status, hdrs, _ = call(api, "/api/v1/profiling/data", "POST", AUTH)
    assert status == 405 and hdrs["Allow"] == "GET, HEAD"
    status, hdrs, _ = call(api, "/api/v1/profiling/reset", "GET", AUTH)
    assert status == 405 and hdrs["Allow"] == "POST"
    # A refused POST with a body does not hang the connection.
    assert call(api, "/api/v1/profiling/reset", "POST", {},
                body=b"x" * 100000)[0] == 401
    srv.stop()
    col.finish()


def until_status(api, headers, want, timeout=10.0):
    """Call data with headers until the answer is want (the collector looks
    at the key file at most once a second); the last status."""
    deadline = time.monotonic() + timeout
    while True:
        status = call(api, "/api/v1/profiling/data", headers=headers)[0]
        if status == want or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_key_rotates_when_the_key_file_changes(servers, collectors, tmp_path):
    """A fleet rotates its key by replacing the key file: the new key opens
    the API within about a second and the old one no longer does, without a
    restart; a replacement that fails the start-up checks leaves the key in
    use as it was, said once on stderr."""
    srv, col, api = start(servers, collectors, tmp_path)
    path = tmp_path / "api.key"
    assert call(api, "/api/v1/profiling/data", headers=AUTH)[0] == 200
    new = "rotated-" + KEY
    # Replaced the way it should be: a new file renamed over the old one.
    tmp = tmp_path / "api.key.new"
    tmp.write_text(new + "\n")
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)
    assert until_status(api, {"X-API-Key": new}, 200) == 200
    assert call(api, "/api/v1/profiling/data", headers=AUTH)[0] == 401
    assert call(api, "/metrics",
                headers={"Authorization": "Bearer " + new})[0] == 200
    # Rewritten in place, to a third key.
    third = "third-" + KEY
    path.write_text(third + "\n")
    assert until_status(api, {"X-API-Key": third}, 200) == 200
    assert call(api, "/api/v1/profiling/data",
                headers={"X-API-Key": new})[0] == 401
    # A file others may read: refused, the third key stays in use; the
    # chmod that fixes it alone is enough for the key to be taken up.
    fourth = "fourth-" + KEY
    path.write_text(fourth + "\n")
    os.chmod(path, 0o644)
    time.sleep(1.2)
    assert call(api, "/api/v1/profiling/data",
                headers={"X-API-Key": third})[0] == 200
    assert call(api, "/api/v1/profiling/data",
                headers={"X-API-Key": fourth})[0] == 401
    os.chmod(path, 0o600)
    assert until_status(api, {"X-API-Key": fourth}, 200) == 200
    # An empty file, then none at all: refused, the fourth key stays, and
    # each version is said once however often it is looked at.
    for n, bad in enumerate(("empty", "gone"), 2):
        if bad == "empty":
            path.write_text("\n")
        else:
            path.unlink()
        for _ in range(4):
            time.sleep(0.5)
            assert call(api, "/api/v1/profiling/data",
                        headers={"X-API-Key": fourth})[0] == 200, bad
        lines = [l for l in col.err_path.read_text().splitlines()
                 if "previous key stays in use" in l]
        assert len(lines) == n, lines
    assert "chmod 600" in lines[0] and "one key" in lines[1]
    assert "cannot read the key file" in lines[2]
    # Back to a good file: the key is taken up again.
    key_file(tmp_path, text=KEY + "\n")
    assert until_status(api, AUTH, 200) == 200
    assert call(api, "/api/v1/profiling/data",
                headers={"X-API-Key": fourth})[0] == 401
    err = col.err_path.read_text()
    assert err.count("changed and was read again: a new key") == 4, err
    # A file touched, its key the same: read again, said so, nothing else.
    os.utime(path)
    time.sleep(1.2)
    assert call(api, "/api/v1/profiling/data", headers=AUTH)[0] == 200
    assert "read again: the key is the same" in col.err_path.read_text()
    srv.stop()
    col.finish()


def test_data_reset_save_report_metrics(servers, collectors, tmp_path):
    srv, col, api = start(servers, collectors, tmp_path,
                          PROFILING_SAMPLE_RATE="1", PROFILING_HZ="499")
    reqs = [("GET", "/alpha?ms=30", None, None)] * 12 + \
           [("GET", "/beta?ms=30", None, None)] * 7
    assert keepalive(srv.port, reqs, srv.pid) == [200] * 19

    status, hdrs, body = call(api, "/api/v1/profiling/data", headers=AUTH)
    assert status == 200 and hdrs["Content-Type"] == "application/json"
    data = json.loads(body)
    # The shape doc/profile-json.md gives (and `dump` prints).
    assert data["version"] == 1
    assert {"data", "requests", "processes", "dropped"} <= set(data)
    alpha = data["data"]["GET /alpha"]
    assert alpha["calls"] == 12 and data["data"]["GET /beta"]["calls"] == 7
    for field in ("total_time", "min_time", "max_time", "avg_time",
                  "p50_time", "p95_time", "p99_time", "top_functions"):
        assert field in alpha
    assert alpha["top_functions"][0]["function"] == "burn_alpha"
    assert col.dump()["data"]["GET /alpha"]["calls"] == 12

    # function_name keeps the stacks through that function only.
    status, _, body = call(
        api, "/api/v1/profiling/data?function_name=burn_beta", headers=AUTH)
    only = json.loads(body)
    assert status == 200 and only["stacks"]
    for stack in only["stacks"]:
        names = {only["frames"][i]["function"] for i in stack["frames"]}
        assert "burn_beta" in names and "burn_alpha" not in names
    status, _, body = call(
        api, "/api/v1/profiling/data?endpoint=" +
        urllib.parse.quote("GET /beta"), headers=AUTH)
    assert status == 200 and list(json.loads(body)["data"]) == ["GET /beta"]

    # save: under --save-dir (relative or absolute), nowhere else.
    saves = tmp_path / "saves"
    status, _, body = call(
        api, "/api/v1/profiling/save?file_path=before.json", "POST", AUTH)
    assert status == 200, body
    assert json.loads(body)["saved"] == str(saves / "before.json")
    saved = json.loads((saves / "before.json").read_text())
    assert saved["data"]["GET /alpha"]["calls"] == 12
    (saves / "sub").mkdir()
    status, _, _ = call(api, "/api/v1/profiling/save?file_path=" +
                        urllib.parse.quote(str(saves / "sub" / "a.json")),
                        "POST", AUTH)
    assert status == 200 and (saves / "sub" / "a.json").exists()
    (saves / "out").symlink_to(tmp_path)
    for bad in ("../escaped.json", str(tmp_path / "escaped.json"),
                "/etc/profshim.json", "out/escaped.json", "sub/..",
                "/"):
        status, _, body = call(api, "/api/v1/profiling/save?file_path=" +
                               urllib.parse.quote(bad), "POST", AUTH)
        assert status in (400, 403), (bad, status, body)
        assert json.loads(body)["error"]
    assert not (tmp_path / "escaped.json").exists()
    assert not os.path.exists("/etc/profshim.json")
    # A link planted where the save's temporary file goes is replaced,
    # not followed: the file it points to keeps its bytes.
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (saves / f"planted.json.tmp.{col.proc.pid}").symlink_to(victim)
    status, _, _ = call(api, "/api/v1/profiling/save?file_path=planted.json",
                        "POST", AUTH)
    assert status == 200 and victim.read_text() == "keep me"
    assert json.loads((saves / "planted.json").read_text())["version"] == 1
    assert not (saves / "planted.json").is_symlink()
    assert call(api, "/api/v1/profiling/save", "POST", AUTH)[0] == 400

    # report.html and metrics are the reports of the same profile.
    status, hdrs, body = call(api, "/report.html", headers=BEARER)
    assert status == 200 and hdrs["Content-Type"].startswith("text/html")
    assert b"GET /alpha" in body and b"burn_alpha" in body
    status, hdrs, body = call(api, "/metrics", headers=BEARER)
    assert status == 200
    assert hdrs["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    r = subprocess.run(["promtool", "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr
    assert ('profshim_request_duration_seconds_count{endpoint="GET /alpha"} 12'
            in text.splitlines())
    # /metrics is built from the profile's summary (no stacks): it must
    # say what the report of the whole profile says, saved just before.
    r = subprocess.run([str(COLLECTOR), "report", "--input",
                        str(saves / "planted.json"), "--format",
                        "prometheus"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert text.startswith(r.stdout) and "profshim_samples_total" in r.stdout
    assert text[len(r.stdout):].startswith("# HELP profshim_collector_")
    # The collector's own state follows; no push families without --push.
    assert "profshim_collector_rings 1" in text.splitlines()
    assert "profshim_collector_push" not in text

    # reset: 204, no body, and the statistics start again.
    status, _, body = call(api, "/api/v1/profiling/reset", "POST", BEARER)
    assert status == 204 and body == b""
    data = json.loads(call(api, "/api/v1/profiling/data", headers=AUTH)[2])
    assert all(e["calls"] == 0 for e in data["data"].values())
    assert keepalive(srv.port, [("GET", "/beta?ms=1", None, None)] * 3,
                     srv.pid) \
        == [200] * 3
    data = json.loads(call(api, "/api/v1/profiling/data", headers=AUTH)[2])
    assert data["data"]["GET /beta"]["calls"] == 3
    srv.stop()
    assert col.finish()["data"]["GET /beta"]["calls"] == 3


def test_save_needs_a_save_dir(servers, collectors, tmp_path):
    srv, col, api = start(servers, collectors, tmp_path, save_dir=False)
    status, _, body = call(api, "/api/v1/profiling/save?file_path=" +
                           urllib.parse.quote(str(tmp_path / "x.json")),
                           "POST", AUTH)
    assert status == 403 and b"--save-dir" in body
    assert not (tmp_path / "x.json").exists()
    srv.stop()
    col.finish()


def run_record(tmp_path, *args):
    return subprocess.run(
        [str(COLLECTOR), "record", "--socket", str(tmp_path / "c.sock"),
         "--out", str(tmp_path / "p.json"), "--duration", "0.5"] +
        [str(a) for a in args],
        capture_output=True, text=True, timeout=30)


def test_refuses_unsafe_or_bad_set_up(tmp_path):
    port = free_port()
    for mode in (0o644, 0o640, 0o604, 0o660):
        key = key_file(tmp_path, mode)
        r = run_record(tmp_path, "--http", port, "--api-key-file", key)
        assert r.returncode == 1, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "chmod 600" in lines[0], r.stderr
        assert KEY not in r.stderr
    if os.geteuid() == 0:  # CI runs as root: a file of another user
        key = key_file(tmp_path)
        os.chown(key, 65534, 65534)
        r = run_record(tmp_path, "--http", port, "--api-key-file", key)
        assert r.returncode == 1 and "chown" in r.stderr, r.stderr
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo, 0o600)
    r = run_record(tmp_path, "--http", port, "--api-key-file", fifo)
    assert r.returncode == 1 and "not a regular file" in r.stderr
    empty = key_file(tmp_path, 0o600, "\n")
    r = run_record(tmp_path, "--http", port, "--api-key-file", empty)
    assert r.returncode == 1 and "key" in r.stderr
    r = run_record(tmp_path, "--http", port, "--api-key-file",
                   tmp_path / "missing.key")
    assert r.returncode == 1 and "missing.key" in r.stderr
    key = key_file(tmp_path)
    for bad in ("localhost:80x", "999999", "host.example:80", "[::1:80", ""):
        r = run_record(tmp_path, "--http", bad, "--api-key-file", key)
        assert r.returncode == 1 and "ADDR:PORT" in r.stderr, (bad, r.stderr)
    r = run_record(tmp_path, "--http", port)
    assert r.returncode == 2 and "--api-key-file" in r.stderr
    r = run_record(tmp_path, "--api-key-file", key)
    assert r.returncode == 2
    r = run_record(tmp_path, "--http", port, "--api-key-file", key,
                   "--save-dir", tmp_path / "nodir")
    assert r.returncode == 1 and "--save-dir" in r.stderr
    # A port already taken: one line that says so.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        r = run_record(tmp_path, "--http", taken, "--api-key-file", key)
    assert r.returncode == 1 and "in use" in r.stderr, r.stderr
    # By default only loopback is listened on.
    r = subprocess.Popen(
        [str(COLLECTOR), "record", "--socket", str(tmp_path / "c.sock"),
         "--out", str(tmp_path / "p.json"), "--duration", "3",
         "--http", str(port), "--api-key-file", str(key)],
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"],
                                       capture_output=True, text=True).stdout
            if listening.strip():
                break
            time.sleep(0.05)
        assert listening.split()[3] == f"127.0.0.1:{port}", listening
    finally:
        r.kill()
        r.wait()
        r.stderr.close()


def test_half_sent_requests_do_not_stall_draining(servers, collectors,
                                                  tmp_path):
    srv, col, api = start(servers, collectors, tmp_path)
    stuck = []
    for _ in range(80):  # more than the API serves at once
        s = socket.create_connection(("127.0.0.1", api))
        s.sendall(b"GET /api/v1/profiling/data HTTP/1.1\r\nX-API-K")
        stuck.append(s)
    try:
        assert keepalive(srv.port, [("GET", "/fast", None, None)] * 200,
                         srv.pid) \
            == [200] * 200
        t0 = time.monotonic()
        d = col.dump()
        assert d["data"]["GET /fast"]["calls"] == 200, d["data"]
        assert time.monotonic() - t0 < 2
    finally:
        for s in stuck:
            s.close()
    # Once they are gone the API answers again.
    deadline = time.monotonic() + 10
    while True:
        try:
            status = call(api, "/api/v1/profiling/data", headers=AUTH)[0]
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert status == 200
    srv.stop()
    assert col.finish()["data"]["GET /fast"]["calls"] == 200
    # 80 clients that broke off do not fill the log: a few lines a minute.
    said = [l for l in col.stderr.splitlines() if ": http: " in l]
    assert 1 <= len(said) <= 6, col.stderr


PROMETHEUS = shutil.which("prometheus")


def query(prom_port, expr):
    url = (f"http://127.0.0.1:{prom_port}/api/v1/query?" +
           urllib.parse.urlencode({"query": expr}))
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())["data"]["result"]


def test_prometheus_scrapes_exact_counts(servers, collectors, tmp_path):
    assert PROMETHEUS, "prometheus is not installed (scripts/setup.sh)"
    srv, col, api = start(servers, collectors, tmp_path)
    reqs = [("GET", "/alpha?ms=1", None, None)] * 37 + \
           [("GET", "/fast", None, None)] * 23
    assert keepalive(srv.port, reqs, srv.pid) == [200] * 60

    prom_port = free_port()
    (tmp_path / "prom.key").write_text(KEY)
    os.chmod(tmp_path / "prom.key", 0o600)
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: profshim
    authorization:
      type: Bearer
      credentials_file: {tmp_path / "prom.key"}
    static_configs:
      - targets: ["127.0.0.1:{api}"]
  - job_name: profshim-no-key
    static_configs:
      - targets: ["127.0.0.1:{api}"]
""")
    log = open(tmp_path / "prometheus.log", "w")
    prom = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=log, stderr=log)
    try:
        expr = ('profshim_request_duration_seconds_count'
                '{job="profshim",endpoint="GET /alpha"}')
        deadline = time.monotonic() + 60
        result = []
        while time.monotonic() < deadline:
            try:
                result = query(prom_port, expr)
            except OSError:
                result = []
            if result:
                break
            time.sleep(0.5)
        assert result, (tmp_path / "prometheus.log").read_text()[-3000:]
        assert float(result[0]["value"][1]) == 37
        fast = query(prom_port, 'profshim_request_duration_seconds_count'
                                '{job="profshim",endpoint="GET /fast"}')
        assert float(fast[0]["value"][1]) == 23
        # The histogram's +Inf bucket agrees with the count.
        inf = query(prom_port, 'profshim_request_duration_seconds_bucket'
                               '{job="profshim",endpoint="GET /alpha",'
                               'le="+Inf"}')
        assert float(inf[0]["value"][1]) == 37
        # More requests reach Prometheus on a later scrape.
        assert keepalive(srv.port, [("GET", "/fast", None, None)] * 5,
                         srv.pid) \
            == [200] * 5
        deadline = time.monotonic() + 30
        while float(query(prom_port, 'profshim_request_duration_seconds_count'
                          '{job="profshim",endpoint="GET /fast"}')
                    [0]["value"][1]) != 28:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        # The job without the key is refused: Prometheus says so.
        up = query(prom_port, 'up{job="profshim-no-key"}')
        assert up and float(up[0]["value"][1]) == 0
        up = query(prom_port, 'up{job="profshim"}')
        assert float(up[0]["value"][1]) == 1
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()
    srv.stop()
    assert col.finish()["data"]["GET /fast"]["calls"] == 28
