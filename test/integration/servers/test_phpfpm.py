"""profshim in php-fpm behind nginx (Debian's php-fpm and nginx-light),
as PHP is usually served: nginx passes requests to php-fpm over FastCGI
with Debian's fastcgi_params, php-fpm's master runs as root and its workers
as www-data. php-fpm's profile must name its requests as nginx's does and
count them exactly: one request per FastCGI request, with or without
fastcgi_keep_conn, and once when the client goes away before the answer.

Both servers run under the shim at the default settings. Their workers run
as www-data (when the test runs as root), so their rings belong to
www-data: each server is recorded by a collector of its own, run as
www-data (`setpriv`), which is what the docs say works in request mode (a
root collector does not read other users' rings yet)."""
import collections
import http.client
import os
import pwd
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from helpers import (COLLECTOR, PRELOAD, Collector, dump_json, in_threads,
                     shim_env)
from helpers.net import free_port
from helpers.processes import Server

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PHP_FPM = shutil.which("php-fpm8.2") or "/usr/sbin/php-fpm8.2"
FASTCGI_PARAMS = "/etc/nginx/fastcgi_params"
AS_ROOT = os.geteuid() == 0
WORKER_USER = "www-data"

USERS_PHP = """<?php
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$id = basename($path);
if ($id === '' || strspn($id, '0123456789') !== strlen($id)) {
    http_response_code(404);
    echo "no such user\\n";
    return;
}
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    $body = file_get_contents('php://input');
    http_response_code(201);
    echo json_encode(['id' => (int)$id, 'stored' => strlen($body)]), "\\n";
    return;
}
header('Content-Type: application/json');
echo json_encode(['id' => (int)$id, 'name' => "user$id",
                  'bio' => str_repeat('x', 2000)]), "\\n";
"""

# A few milliseconds of CPU in PHP code.
CPU_PHP = """<?php
$t = microtime(true);
$x = 0.0;
while (microtime(true) - $t < 0.004) {
    for ($i = 0; $i < 1000; $i++) {
        $x += sqrt($i + $x);
    }
}
echo "done $x\\n";
"""

# Answers after ?ms= milliseconds.
SLOW_PHP = """<?php
usleep((int)($_GET['ms'] ?? 300) * 1000);
echo "slow\\n";
"""

FPM_CONF = """
[global]
pid = {d}/php-fpm.pid
error_log = {d}/php-fpm.log
daemonize = no

[www]
{user}
listen = 127.0.0.1:{port}
pm = static
pm.max_children = 8
access.log = {d}/php-access.log
access.format = "%m %r%Q%q %s"
"""

NGINX_CONF = """
worker_processes 2;
{user}
daemon off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {d}/nginx-access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 100000;
    upstream php {{
        server 127.0.0.1:{fpm_port};
        {keepalive}
    }}
    server {{
        listen 127.0.0.1:{port};
        root {www};
        location /users/ {{
            include {params};
            fastcgi_param SCRIPT_FILENAME $document_root/users.php;
            fastcgi_pass php;
            {keep_conn}
        }}
        location ~ \\.php$ {{
            try_files $uri =404;
            include {params};
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass php;
            {keep_conn}
        }}
    }}
}}
"""


class Site:
    """A directory the servers' workers (www-data) can read, holding the
    PHP scripts, the configurations, and one directory per collector that
    www-data can write; removed at the end."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="profshim-phpfpm-"))
        os.chmod(self.dir, 0o755)
        self.www = self.dir / "www"
        self.www.mkdir()
        (self.www / "users.php").write_text(USERS_PHP)
        (self.www / "cpu.php").write_text(CPU_PHP)
        (self.www / "slow.php").write_text(SLOW_PHP)
        for p in [self.www] + list(self.www.iterdir()):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)

    def own_dir(self, name):
        """A directory the collectors' user can write."""
        d = self.dir / name
        d.mkdir()
        if AS_ROOT:
            pw = pwd.getpwnam(WORKER_USER)
            os.chown(d, pw.pw_uid, pw.pw_gid)
        return d

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def site():
    s = Site()
    yield s
    s.remove()


def collector_as_worker_user(site, name, pid):
    """`profshim-collector record --pid PID` run as the workers' user,
    whose rings it may read (the same user when not run as root)."""
    d = site.own_dir(name)
    binary = COLLECTOR
    if AS_ROOT:
        binary = site.dir / f"{name}.sh"
        binary.write_text(
            "#!/bin/sh\nexec setpriv --reuid={u} --regid={u} --init-groups "
            "-- {c} \"$@\"\n".format(u=WORKER_USER, c=COLLECTOR))
        os.chmod(binary, 0o755)
    return Collector(d, pid=pid, binary=binary)


def start_php_fpm(site, env):
    port = free_port()
    conf = site.dir / "php-fpm.conf"
    user = (f"user = {WORKER_USER}\ngroup = {WORKER_USER}" if AS_ROOT
            else "")
    conf.write_text(FPM_CONF.format(d=site.dir, port=port, user=user))
    argv = [PHP_FPM, "--nodaemonize", "--fpm-config", conf]
    # PHP loads its extensions with RTLD_DEEPBIND, which the AddressSanitizer
    # runtime (preloaded with the sanitizer build of the shim) refuses: that
    # pass runs php-fpm without php.ini, so without shared extensions.
    if "libasan" in PRELOAD["LD_PRELOAD"]:
        argv.insert(1, "-n")
    return Server(argv, env, port, stop_signal=signal.SIGQUIT)


def start_nginx(site, env, fpm_port, keep_conn):
    port = free_port()
    conf = site.dir / "nginx.conf"
    user = f"user {WORKER_USER} {WORKER_USER};" if AS_ROOT else ""
    conf.write_text(NGINX_CONF.format(
        d=site.dir, port=port, fpm_port=fpm_port, www=site.www,
        params=FASTCGI_PARAMS, user=user,
        keepalive="keepalive 2;" if keep_conn else "",
        keep_conn="fastcgi_keep_conn on;" if keep_conn else ""))
    return Server([NGINX, "-p", site.dir, "-c", conf], env, port,
                  stop_signal=signal.SIGQUIT)


def serve(servers, collectors, site, keep_conn):
    """php-fpm and nginx under the shim, each recorded by a collector."""
    env = shim_env(ENABLE_PROFILING="true")
    fpm = start_php_fpm(site, env)
    servers.append(fpm)
    fpm_col = collector_as_worker_user(site, "fpm-collector", fpm.pid)
    collectors.append(fpm_col)
    ngx = start_nginx(site, env, fpm.port, keep_conn)
    servers.append(ngx)
    ngx_col = collector_as_worker_user(site, "nginx-collector", ngx.pid)
    collectors.append(ngx_col)
    return fpm, fpm_col, ngx, ngx_col


def stop(fpm, fpm_col, ngx, ngx_col):
    """Stop nginx (which closes its FastCGI connections), then php-fpm;
    returns both profiles once their collectors have drained them."""
    ngx.stop()
    fpm.stop()
    return fpm_col.finish(), ngx_col.finish()


def drive(port):
    """Three keep-alive clients: users (found, not found, posted), CPU
    work, manual profiles. Returns the calls and statuses per endpoint the
    clients saw."""
    seen = collections.Counter()
    statuses = collections.defaultdict(collections.Counter)
    lock = threading.Lock()

    def client(k):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(30):
            reqs = [("GET", f"/users/{k * 1000 + i}", None,
                     "GET /users/:id"),
                    ("GET", "/cpu.php", None, "GET /cpu.php")]
            if i % 5 == 0:
                reqs.append(("POST", f"/users/{i}", b"{\"a\": 1}" * 40,
                             "POST /users/:id"))
            if i % 10 == 0:
                reqs.append(("GET", "/users/nobody", None,
                             "GET /users/nobody"))
                reqs.append(("GET", "/cpu.php?profile=1", None,
                             "GET /cpu.php"))
            for method, path, body, ep in reqs:
                conn.request(method, path, body=body)
                r = conn.getresponse()
                r.read()
                with lock:
                    seen[ep] += 1
                    statuses[ep][r.status] += 1
        conn.close()

    in_threads(client, [(k,) for k in range(3)])
    return dict(seen), statuses


def fpm_access_log(site):
    """php-fpm's own count of the requests it served, by method and path
    (its access log: "%m %r%Q%q %s")."""
    counts = collections.Counter()
    path = site.dir / "php-access.log"
    if not path.exists():
        return counts
    for line in path.read_text().splitlines():
        words = line.split(" ")
        if len(words) == 3:  # not a line being written
            counts[(words[0], words[1].split("?")[0])] += 1
    return counts


def status_classes(statuses):
    out = collections.Counter()
    for code, n in statuses.items():
        out[f"{code // 100}xx"] += n
    return dict(out)


def check_endpoints(prof, expected, statuses, who):
    data = prof["data"]
    assert set(data) == set(expected), (who, dump_json(data))
    for ep, n in expected.items():
        assert data[ep]["calls"] == n, (who, ep, dump_json(data[ep]))
        assert data[ep].get("aborted", 0) == 0, (who, ep, data[ep])
        assert data[ep]["status"] == status_classes(statuses[ep]), \
            (who, ep, data[ep]["status"])
    assert prof["dropped"]["requests"] == 0, (who, prof["dropped"])


@pytest.mark.parametrize("keep_conn", [False, True],
                         ids=["close", "keep_conn"])
def test_php_fpm_counts_like_nginx(servers, collectors, site, keep_conn):
    fpm, fpm_col, ngx, ngx_col = serve(servers, collectors, site, keep_conn)
    expected, statuses = drive(ngx.port)
    fpm_prof, ngx_prof = stop(fpm, fpm_col, ngx, ngx_col)

    # php-fpm's own access log agrees with the clients.
    log = fpm_access_log(site)
    assert sum(log.values()) == sum(expected.values()), log
    assert log[("GET", "/cpu.php")] == expected["GET /cpu.php"]

    check_endpoints(ngx_prof, expected, statuses, "nginx")
    check_endpoints(fpm_prof, expected, statuses, "php-fpm")
    # Every php-fpm request ran in a worker, as www-data.
    pids = {p["pid"] for p in fpm_prof["processes"]}
    assert fpm.pid not in pids and pids, fpm_prof["processes"]
    for p in fpm_prof["processes"]:
        assert p["ppid"] == fpm.pid
        assert p["exe"].endswith("php-fpm8.2"), p
    # PHP installs its own SIGPROF handler at every request (Zend signal
    # handling), so the shim stands aside in php-fpm's workers: requests
    # are counted and timed, their stacks not sampled (doc/limits.md).
    # Timed from the read of FCGI_BEGIN_REQUEST to the write of
    # FCGI_END_REQUEST: the CPU script's 4 ms should be inside. (Not
    # compared with nginx's time: the end is read after php-fpm's write
    # returns, and nginx may have answered its client by then.) Known gap,
    # checked last so that all of the above still runs: while other test
    # suites ran on the same 2 cores, 3 of 99 requests were timed 0.2-0.4
    # ms short, in several runs; never on an idle machine, with 4 busy
    # loops beside it, or with a plain FastCGI client. Not yet explained.
    cpu = fpm_prof["data"]["GET /cpu.php"]
    if cpu["min_time"] < 0.004:
        pytest.xfail(f"php-fpm request timed short: {cpu['min_time']}")


def client_goes_away(port, path, after):
    """Send a request, then close the connection `after` seconds later,
    before the answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    time.sleep(after)
    s.close()


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("keep_conn", [False, True],
                         ids=["close", "keep_conn"])
def test_client_gone_mid_answer_counts_once(servers, collectors, site,
                                            keep_conn):
    fpm, fpm_col, ngx, ngx_col = serve(servers, collectors, site, keep_conn)

    def get(path):
        conn = http.client.HTTPConnection("127.0.0.1", ngx.port, timeout=30)
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        conn.close()
        return r.status

    assert get("/users/1") == 200
    # nginx (fastcgi_ignore_client_abort off, its default) closes the
    # FastCGI connection when its client goes away; the script answers
    # later, to a closed connection.
    client_goes_away(ngx.port, "/slow.php?ms=700", 0.2)
    wait_for(lambda: ("GET", "/slow.php") in fpm_access_log(site))
    assert get("/users/2") == 200
    assert get("/cpu.php") == 200
    fpm_prof, ngx_prof = stop(fpm, fpm_col, ngx, ngx_col)

    slow = fpm_prof["data"]["GET /slow.php"]
    assert slow["calls"] == 1, dump_json(fpm_prof["data"])
    assert slow["total_time"] >= 0.7, slow
    assert fpm_prof["data"]["GET /users/:id"]["calls"] == 2
    assert fpm_prof["data"]["GET /cpu.php"]["calls"] == 1
    assert set(fpm_prof["data"]) == {"GET /slow.php", "GET /users/:id",
                                     "GET /cpu.php"}, fpm_prof["data"]
    assert sum(fpm_access_log(site).values()) == 4
    # nginx saw its client leave before an answer: aborted, once.
    ngx_slow = ngx_prof["data"]["GET /slow.php"]
    assert ngx_slow["calls"] == 1 and ngx_slow["aborted"] == 1, ngx_slow
