"""The processes a test starts and stops: a server with the shim
preloaded (Server), a real `profshim-collector record` with a control socket
of its own (Collector), and what is read from them afterwards."""
import http.client
import json
import os
import signal
import subprocess
import tempfile
import time

from .env import COLLECTOR, CPUSERVER, shim_env
from .net import (free_port, keepalive, process_tree,
                  wait_connections_closed, wait_port)


class Server:
    """A server process; stopped (and reaped) at the end of the test."""

    def __init__(self, argv, env, port, cwd=None, stop_signal=signal.SIGTERM,
                 new_session=False):
        """`new_session`: a session (and process group) of its own, for a
        server that signals its whole group (Apache's prefork stops its
        children with killpg)."""
        self.port = port
        self.stop_signal = stop_signal
        # Output to files: a chatty server (one log line per request)
        # would block on a pipe nobody reads until the end.
        self._out = tempfile.TemporaryFile(mode="w+")
        self._err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [str(a) for a in argv], env=env, cwd=cwd,
            stdout=self._out, stderr=self._err, text=True,
            start_new_session=new_session)
        self.pid = self.proc.pid
        self._stderr = None
        # Called once the server has stopped (a helper's files, say).
        self.cleanup = []
        # The server's processes when it was stopped: whose rings a
        # failed test may have left (the servers fixture removes them).
        self.tree = [self.pid]
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
            self.tree = process_tree(self.pid)
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
        while self.cleanup:
            self.cleanup.pop()()
        return self._stderr


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
                 env=None, prefix=()):
        """`prefix` goes before the command (setpriv, to run it as
        another user)."""
        self.tmp = tmp_path
        self.sock = str(tmp_path / "collector.sock")
        self.out = tmp_path / "profile.json"
        argv = [*prefix, str(binary), "record", "--out", str(self.out),
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


def uids(pid):
    """Real, effective, saved and file-system uids of pid."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(u) for u in line.split()[1:]]
    raise AssertionError(f"no Uid line for {pid}")


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
