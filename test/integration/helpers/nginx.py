"""nginx (Debian package) as a server under test: a master and two
workers serving a static tree and `return` locations from the test's
tmp_path (test_nginx.py, test_sampling.py, test_wire.py)."""
import os
import shutil
import signal

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
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    sendfile on;
    keepalive_requests 100000;
    {gzip}
    server {{
        listen 127.0.0.1:{port} reuseport;
        root {tmp}/www;
        location /static/ {{ }}
        location = /ok {{ return 200 "ok\\n"; }}
        location = /upload {{ client_max_body_size 1m; return 201 "stored\\n"; }}
    }}
}}
"""


def start_nginx(tmp_path, env, gzip=False):
    port = free_port()
    (tmp_path / "www" / "static").mkdir(parents=True)
    (tmp_path / "www" / "static" / "index.html").write_bytes(
        b"<html>" + b"x" * 20000 + b"</html>\n")
    # Compressible but not trivially: gzip at level 9 keeps a core busy.
    words = [b"profile", b"sample", b"request", b"endpoint", b"worker",
             b"latency", b"stack", b"thread"]
    (tmp_path / "www" / "static" / "big.txt").write_bytes(b" ".join(
        words[(i * 7 + i // 3) % len(words)] + str(i % 97).encode()
        for i in range(200000)))
    conf = tmp_path / "nginx.conf"
    user = "user root root;" if os.geteuid() == 0 else ""
    gz = ("gzip on; gzip_comp_level 9; gzip_min_length 0; "
          "gzip_types text/plain;") if gzip else ""
    conf.write_text(CONF.format(tmp=tmp_path, port=port, user=user, gzip=gz))
    return Server([NGINX, "-p", tmp_path, "-c", conf], env, port,
                  stop_signal=signal.SIGQUIT)


def worker_pids(master):
    with open(f"/proc/{master}/task/{master}/children") as f:
        return sorted(int(p) for p in f.read().split())
