"""Apache 2.4 (Debian apache2, event or prefork MPM) as a server under
test, with a configuration of its own in the test's tmp_path: the parent
runs as root (it is started by root, as Debian starts it) and its children
serve as www-data (`User www-data`), from a tree www-data can read; the
access log ("METHOD PATH STATUS" per request) is the ground truth of what it
served (test_privileges.py).

`deflate=True` adds what `a2enmod deflate` enables on Debian (its default
on a fresh install): mod_mime with Debian's mime.conf (Content-Type from
/etc/mime.types), mod_filter, and mod_deflate with Debian's deflate.conf
(AddOutputFilterByType DEFLATE text/html text/plain ... at zlib's default
level), read from /etc/apache2/mods-available as Debian's
mods-enabled/*.load and *.conf are (test_apache.py)."""
import os
import shutil
import signal

from .nginx import shared_dir
from .net import free_port
from .processes import Server

APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
MODULES = "/usr/lib/apache2/modules"
MODS_AVAILABLE = "/etc/apache2/mods-available"
# Debian's apache2.conf includes mods-enabled/*.load, then *.conf.
DEFLATE = "\n".join(f"Include {MODS_AVAILABLE}/{f}" for f in (
    "deflate.load", "filter.load", "mime.load", "deflate.conf",
    "mime.conf"))

CONF = """
ServerRoot {tmp}
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {tmp}/apache.pid
DefaultRuntimeDir {tmp}
ErrorLog {tmp}/error.log
LogLevel warn
LoadModule mpm_{mpm}_module {modules}/mod_mpm_{mpm}.so
LoadModule authn_core_module {modules}/mod_authn_core.so
LoadModule authz_core_module {modules}/mod_authz_core.so
{deflate}
{user}
{limits}
KeepAlive On
MaxKeepAliveRequests 0
DocumentRoot {shared}/www
<Directory {shared}/www>
    Require all granted
</Directory>
LogFormat "%m %U %>s" endpoint
CustomLog {tmp}/access.log endpoint
"""

# The served tree: path -> body.
FILES = {
    "/index.html": b"<html>" + b"x" * 12000 + b"</html>\n",
    "/docs/page.html": b"<p>" + b"y" * 3000 + b"</p>\n",
    "/style.css": b"body { color: black; }\n" * 40,
}


# The number of children each MPM keeps, steady under the tests' load.
LIMITS = {
    "event": """StartServers 2
ServerLimit 4
ThreadsPerChild 16
MinSpareThreads 16
MaxSpareThreads 64
MaxRequestWorkers 64""",
    "prefork": """StartServers 4
MinSpareServers 2
MaxSpareServers 16
ServerLimit 16
MaxRequestWorkers 16""",
}


def start_apache(tmp_path, env, mpm="event", deflate=False, files=None):
    """Apache serving FILES and `files` (path -> body), with mod_deflate
    as Debian enables it when `deflate`."""
    port = free_port()
    shared = shared_dir()
    for path, body in {**FILES, **(files or {})}.items():
        full = os.path.join(shared, "www", path.lstrip("/"))
        os.makedirs(os.path.dirname(full), mode=0o755, exist_ok=True)
        with open(full, "wb") as f:
            f.write(body)
    for root, dirs, files in os.walk(shared):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    user = "User www-data\nGroup www-data" if os.geteuid() == 0 else ""
    conf = tmp_path / "apache.conf"
    conf.write_text(CONF.format(tmp=tmp_path, port=port, shared=shared,
                                modules=MODULES, user=user, mpm=mpm,
                                limits=LIMITS[mpm],
                                deflate=DEFLATE if deflate else ""))
    try:
        # SIGTERM: the parent stops its children and waits for them
        # (prefork with a SIGTERM to its process group: a group of its
        # own, as when it daemonizes or systemd starts it).
        srv = Server([APACHE, "-f", conf, "-DFOREGROUND"], env, port,
                     stop_signal=signal.SIGTERM, new_session=True)
    except BaseException:
        shutil.rmtree(shared, ignore_errors=True)
        raise
    srv.cleanup.append(lambda: shutil.rmtree(shared, ignore_errors=True))
    srv.access_log = tmp_path / "access.log"
    return srv


def access_counts(path):
    """{"METHOD /path": requests} from the access log."""
    counts = {}
    for line in path.read_text().splitlines():
        method, url, _status = line.split(" ")
        key = f"{method} {url}"
        counts[key] = counts.get(key, 0) + 1
    return counts
