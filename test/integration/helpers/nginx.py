"""nginx (Debian package) as a server under test: a master and two
workers serving a static tree and `return` locations (test_nginx.py,
test_sampling.py, test_wire.py, test_privileges.py).

Run as root (CI is), nginx is deployed the way Debian deploys it: the
master runs as root and its workers as www-data (`user www-data;`). The
configuration, pid file and error log stay in the test's tmp_path, which
only root can enter; the tree the workers serve and their temporary files
are in a directory of their own that www-data can read, removed when the
server stops."""
import os
import shutil
import signal
import tempfile

from .processes import Server
from .net import free_port


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

CONF = """
worker_processes 2;
{user}
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {shared}/body;
    proxy_temp_path {shared}/proxy;
    fastcgi_temp_path {shared}/fastcgi;
    uwsgi_temp_path {shared}/uwsgi;
    scgi_temp_path {shared}/scgi;
    sendfile on;
    keepalive_requests 100000;
    {gzip}
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {shared}/www;
        location /static/ {{ }}
        location = /ok {{ return 200 "ok\\n"; }}
        location = /upload {{ client_max_body_size 1m; return 201 "stored\\n"; }}
    }}
}}
"""


WORKER_USER = "www-data"


def shared_dir():
    """A directory the workers' user can read (root's tmp_path is 0700
    up the tree); the caller removes it."""
    d = tempfile.mkdtemp(prefix="profshim-nginx.")
    os.chmod(d, 0o755)
    return d


def nginx_setup(tmp_path, gzip=False):
    """Write the configuration and the served tree; returns nginx's
    command line, its port and the shared directory (the caller removes
    it)."""
    port = free_port()
    shared = shared_dir()
    www = os.path.join(shared, "www", "static")
    os.makedirs(www, mode=0o755)
    with open(os.path.join(www, "index.html"), "wb") as f:
        f.write(b"<html>" + b"x" * 20000 + b"</html>\n")
    # Compressible but not trivially: gzip at level 9 keeps a core busy.
    words = [b"profile", b"sample", b"request", b"endpoint", b"worker",
             b"latency", b"stack", b"thread"]
    with open(os.path.join(www, "big.txt"), "wb") as f:
        f.write(b" ".join(words[(i * 7 + i // 3) % len(words)] +
                          str(i % 97).encode() for i in range(200000)))
    for root, dirs, files in os.walk(shared):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    conf = tmp_path / "nginx.conf"
    # As Debian deploys it: a root master, unprivileged workers.
    user = f"user {WORKER_USER};" if os.geteuid() == 0 else ""
    gz = ("gzip on; gzip_comp_level 9; gzip_min_length 0; "
          "gzip_types text/plain;") if gzip else ""
    conf.write_text(CONF.format(tmp=tmp_path, shared=shared, port=port,
                                user=user, gzip=gz))
    return [NGINX, "-p", str(tmp_path), "-c", str(conf)], port, shared


def start_nginx(tmp_path, env, gzip=False):
    argv, port, shared = nginx_setup(tmp_path, gzip)
    try:
        srv = Server(argv, env, port, stop_signal=signal.SIGQUIT)
    except BaseException:
        shutil.rmtree(shared, ignore_errors=True)
        raise
    srv.cleanup.append(lambda: shutil.rmtree(shared, ignore_errors=True))
    srv.shared = shared
    return srv


def worker_pids(master):
    with open(f"/proc/{master}/task/{master}/children") as f:
        return sorted(int(p) for p in f.read().split())
