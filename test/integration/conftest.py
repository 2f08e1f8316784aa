"""Shared fixtures for profshim's integration tests.

Every test starts real processes on 127.0.0.1: a server with libprofshim.so
preloaded, and a real profshim-collector recording that server's process
tree into a file under the test's tmp_path, with a control socket of its own
so tests never see each other's collectors.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("PROFSHIM_BUILD", ROOT / "build"))
SHIM = BUILD / "shim" / "libprofshim.so"
COLLECTOR = BUILD / "collector" / "profshim-collector"
CPUSERVER = BUILD / "test" / "cpuserver"
# The real interpreter binary, not a wrapper script: its symbols are what
# the profile must show.
PYTHON = os.path.realpath("/usr/bin/python3")

PROFILING_VARS = [
    "ENABLE_PROFILING", "PROFILING_SAMPLE_RATE", "PROFILING_MAX_DEPTH",
    "PROFILING_HZ", "PROFILING_CLOCK", "PROFILING_MODE", "PROFILING_MANUAL",
    "PROFILING_MANUAL_HZ", "PROFILING_MANUAL_MAX_PER_SEC",
    "PROFILING_MAX_ENDPOINTS", "PROFILING_RING_SIZE", "LD_PRELOAD",
]


def clean_env(**extra):
    """The test's environment without any profiling setting, plus extra."""
    env = {k: v for k, v in os.environ.items() if k not in PROFILING_VARS}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _preload():
    """LD_PRELOAD for the shim. A shim built with AddressSanitizer
    (-Db_sanitize=address,undefined, the sanitizer pass of scripts/test.sh)
    needs the ASan runtime loaded before anything else in the process; the
    servers' own leaks are theirs, so leak checking is off in them."""
    try:
        sanitized = b"libasan.so" in SHIM.read_bytes()
    except OSError:
        sanitized = False
    if not sanitized:
        return {"LD_PRELOAD": str(SHIM)}
    asan = subprocess.run(["gcc", "-print-file-name=libasan.so"],
                          capture_output=True, text=True).stdout.strip()
    return {"LD_PRELOAD": f"{os.path.realpath(asan)} {SHIM}",
            "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
            "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}


PRELOAD = _preload()


def shim_env(**settings):
    """Environment that preloads the shim with the given settings."""
    return clean_env(**PRELOAD, **settings)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def process_tree(pid):
    """pid and its descendants that are alive now."""
    children = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def open_connections(pid):
    """TCP sockets of pid's process tree that are not listening."""
    inodes = set()
    for p in process_tree(pid):
        try:
            fds = list(Path(f"/proc/{p}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[9] in inodes and f[3] != "0A":
                n += 1
    return n


def wait_connections_closed(pid, timeout=2.0):
    deadline = time.monotonic() + timeout
    while open_connections(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


class Server:
    """A server process; stopped (and reaped) at the end of the test."""

    def __init__(self, argv, env, port, cwd=None, stop_signal=signal.SIGTERM):
        self.port = port
        self.stop_signal = stop_signal
        # Output to files: a chatty server (one log line per request)
        # would block on a pipe nobody reads until the end.
        self._out = tempfile.TemporaryFile(mode="w+")
        self._err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [str(a) for a in argv], env=env, cwd=cwd,
            stdout=self._out, stderr=self._err, text=True)
        self.pid = self.proc.pid
        self._stderr = None
        wait_port(port, self.proc)

    def get(self, path, method="GET", body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def stop(self):
        """Stop the server once it has closed the connections its clients
        closed (at most 2 s); returns its stderr.

        The shim accounts a response's last bytes just after the write
        that sent them. A test that stops the server the moment its client
        has the response could kill a thread preempted in between; waiting
        for the server's own close() (which comes after that accounting)
        makes the counts the tests assert deterministic."""
        if self.proc.poll() is None:
            wait_connections_closed(self.pid)
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._stderr is None:
            self._err.seek(0)
            self._stderr = self._err.read()
            self._out.close()
            self._err.close()
        return self._stderr


def keepalive(port, requests, server_pid=None):
    """Send (method, path, body, headers) requests over one keep-alive
    connection; returns the statuses. With server_pid, also wait until
    that server has closed the connection: a client may read the last
    response a moment before the shim records it, and a test that reads
    counts at once needs the record."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    statuses = []
    try:
        for method, path, body, headers in requests:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            r.read()
            statuses.append(r.status)
    finally:
        conn.close()
    if server_pid:
        wait_connections_closed(server_pid)
    return statuses


def parallel_keepalive(port, n_clients, reqs):
    """n_clients threads each send reqs over a keep-alive connection of
    their own; every response must be 200."""
    import threading

    errors = []

    def client():
        try:
            assert keepalive(port, reqs) == [200] * len(reqs)
        except Exception as e:  # reported by the calling thread
            errors.append(e)

    ts = [threading.Thread(target=client) for _ in range(n_clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors


def raw_exchange(port, payload, timeout=30):
    """Send raw bytes, read until the server closes; returns the bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks)


def _listening(path):
    """True once a Unix socket bound at path listens: the file appears at
    bind(), a moment before listen(), and a connection then is refused."""
    with open("/proc/net/unix") as f:
        for line in f:
            cols = line.split()
            # Num RefCount Protocol Flags Type St Inode Path; flag 0x10000
            # is __SO_ACCEPTCON, set by listen().
            if len(cols) == 8 and cols[7] == path and \
                    int(cols[3], 16) & 0x10000:
                return True
    return False


class Collector:
    """A running `profshim-collector record` with its own control socket."""

    def __init__(self, tmp_path, pid=None, extra=(), binary=COLLECTOR,
                 env=None):
        self.tmp = tmp_path
        self.sock = str(tmp_path / "collector.sock")
        self.out = tmp_path / "profile.json"
        argv = [str(binary), "record", "--out", str(self.out),
                "--socket", self.sock]
        if pid:
            argv += ["--pid", str(pid)]
        argv += list(extra)
        # stderr to a file: a pipe nobody reads until the end would
        # stall the collector once it fills.
        self.err_path = tmp_path / "collector.err"
        self.out_path = tmp_path / "collector.out"
        with open(self.err_path, "w") as err, \
                open(self.out_path, "w") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err,
                                         text=True, env=env)
        deadline = time.monotonic() + 10
        while not _listening(self.sock):
            if self.proc.poll() == 0:
                break  # done already (what it records had ended)
            if self.proc.poll() is not None:
                raise RuntimeError("collector exited: " +
                                   self.err_path.read_text())
            if time.monotonic() > deadline:
                raise TimeoutError("collector did not start")
            time.sleep(0.02)
        self.stderr = None

    def run(self, *args, cwd=None):
        """Run a collector command against this collector."""
        cmd, rest = args[0], list(args[1:])
        return subprocess.run(
            [str(COLLECTOR), cmd, "--socket", self.sock] + rest,
            capture_output=True, text=True, timeout=60, cwd=cwd)

    def dump(self, *filters):
        r = self.run("dump", *filters)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def finish(self, timeout=30):
        """Wait for the collector to end by itself (its process tree
        exited) and return the profile it wrote."""
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.stderr = self.err_path.read_text()
        assert self.proc.returncode == 0, self.stderr
        return json.loads(self.out.read_text())

    def stop(self, timeout=30):
        """Stop the collector with SIGINT and return the profile."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.finish(timeout)


@pytest.fixture
def servers():
    """Servers started by a test, stopped at its end whatever happens."""
    started = []
    yield started
    for s in started:
        s.stop()
        # Rings no collector drained (the test ran none, or it failed).
        remove_rings(s.pid)


@pytest.fixture
def collectors():
    started = []
    yield started
    for c in started:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()


def start_cpuserver(servers, collectors, tmp_path, **settings):
    """cpuserver under the shim (profiling on, plus `settings`) with a
    collector recording it; both stopped at the end of the test."""
    port = free_port()
    srv = Server([CPUSERVER, port], shim_env(ENABLE_PROFILING="true",
                                             **settings), port)
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid)
    collectors.append(col)
    return srv, col


def record_cpuserver(servers, collectors, tmp_path, requests, hz="199"):
    """Serve `requests` ((method, path, body, headers) over one keep-alive
    connection) from cpuserver under the shim, every request sampled at
    `hz`, with a collector recording it; stop both. Returns the statuses,
    the profile the collector wrote and the collector (its file: .out)."""
    srv, col = start_cpuserver(servers, collectors, tmp_path,
                               PROFILING_SAMPLE_RATE="1", PROFILING_HZ=hz)
    statuses = keepalive(srv.port, requests)
    srv.stop()
    return statuses, col.finish(), col


def calls(profile, endpoint):
    entry = profile["data"].get(endpoint)
    return entry["calls"] if entry else 0


def remove_rings(pid):
    """Remove rings a test's server left (no collector drained them)."""
    for name in os.listdir("/dev/shm"):
        if name.startswith(f"profshim.{pid}."):
            try:
                os.unlink(f"/dev/shm/{name}")
            except FileNotFoundError:
                pass


def shm_listing():
    return set(os.listdir("/dev/shm"))


def sigcgt(pid):
    """The set of signals a process has handlers for."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigCgt:"):
                mask = int(line.split()[1], 16)
                return {n + 1 for n in range(64) if mask >> n & 1}
    return set()


def dump_json(obj):
    return json.dumps(obj, indent=1)[:4000]
