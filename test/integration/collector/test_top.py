"""`profshim-collector top`: the live view of a running collector, as one
plain screen (--once) and interactively on a pseudo-terminal."""
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import threading
import time

from helpers import (COLLECTOR, calls, keepalive, start_cpuserver)

ESCAPE = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def start(servers, collectors, tmp_path):
    return start_cpuserver(servers, collectors, tmp_path,
                           PROFILING_SAMPLE_RATE="1", PROFILING_HZ="499")


def wait_calls(col, endpoint, n):
    deadline = time.monotonic() + 10
    while calls(col.dump(), endpoint) < n:
        assert time.monotonic() < deadline, col.dump()["data"]
        time.sleep(0.05)


def rows(text):
    """{endpoint: [req/s, calls, p50 ms, p99 ms, samples]} of a screen
    (req/s None before a rate is known)."""
    found = {}
    for line in text.splitlines():
        m = re.match(r"^(GET /\w+)\s+(\S+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\d+)\s*$",
                     line)
        if m:
            rate = None if m.group(2) == "-" else float(m.group(2))
            found[m.group(1)] = [rate, int(m.group(3)),
                                 float(m.group(4)), float(m.group(5)),
                                 int(m.group(6))]
    return found


def test_once_endpoints_rates_and_functions(servers, collectors, tmp_path):
    srv, col = start(servers, collectors, tmp_path)
    assert keepalive(srv.port, [("GET", "/beta?ms=10", None, None)] * 5) \
        == [200] * 5
    wait_calls(col, "GET /beta", 5)

    # GET /alpha keeps coming while top measures: its rate must be real.
    stop, sent = threading.Event(), []

    def load():
        while not stop.is_set():
            keepalive(srv.port, [("GET", "/alpha?ms=2", None, None)])
            sent.append(time.monotonic())
            time.sleep(0.02)

    t = threading.Thread(target=load)
    t.start()
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        r = col.run("top", "--once")
        t1 = time.monotonic()
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout
    header = r.stdout.splitlines()[0]
    assert re.search(r"\d\d:\d\d:\d\d", header), header
    assert re.search(r"[\d.]+ req/s", header) and "samples" in header \
        and "dropped" in header, header
    found = rows(r.stdout)
    assert set(found) >= {"GET /alpha", "GET /beta"}, r.stdout
    rate, n, p50, p99, samples = found["GET /beta"]
    assert rate == 0.0 and n == 5, r.stdout
    assert 9.0 <= p50 <= p99 < 1000, r.stdout
    assert samples > 0, r.stdout
    rate, n, p50, p99, _ = found["GET /alpha"]
    actual = sum(1 for s in sent if t0 <= s <= t1) / (t1 - t0)
    assert actual / 3 <= rate <= actual * 3, (rate, actual, r.stdout)
    assert n > 0 and p50 > 0, r.stdout
    # Busiest first.
    lines = r.stdout.splitlines()
    assert lines.index(next(l for l in lines if l.startswith("GET /alpha"))) \
        < lines.index(next(l for l in lines if l.startswith("GET /beta")))
    # Top functions by self samples: the burn functions, with module and
    # percentages.
    fn = {l.split()[0]: l.split()[1:] for l in lines
          if l.startswith("burn_")}
    assert "burn_beta" in fn, r.stdout
    assert fn["burn_beta"][0] == "cpuserver"
    assert 0 < float(fn["burn_beta"][1]) <= float(fn["burn_beta"][2]) <= 100


def test_no_collector_and_bad_use(tmp_path):
    def top(*args, stdin=subprocess.DEVNULL):
        return subprocess.run([str(COLLECTOR), "top", *args], stdin=stdin,
                              capture_output=True, text=True, timeout=30)

    r = top("--once", "--socket", str(tmp_path / "nobody.sock"))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "no collector" in r.stderr, r.stderr
    # Not a terminal and no --once: refused, pointing at --once.
    r = top("--socket", str(tmp_path / "nobody.sock"))
    assert r.returncode == 2
    assert "--once" in r.stderr.splitlines()[0], r.stderr
    for args in (["--interval", "0"], ["--interval", "x"], ["--bogus"],
                 ["--once", "extra"]):
        r = top(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("profshim-collector: ")
        assert "usage: profshim-collector top" in r.stderr


class Pty:
    """top on a pseudo-terminal of rows x cols; output collected as it
    comes."""

    def __init__(self, sock, rows=30, cols=100):
        self.master, self.slave = os.openpty()
        self.resize(rows, cols)
        self.before = termios.tcgetattr(self.slave)
        self.proc = subprocess.Popen(
            [str(COLLECTOR), "top", "--socket", sock, "--interval", "0.3"],
            stdin=self.slave, stdout=self.slave, stderr=self.slave,
            start_new_session=True)
        self.out = b""

    def resize(self, rows, cols):
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ,
                    struct.pack("HHHH", rows, cols, 0, 0))

    def read(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r, _, _ = select.select([self.master], [], [], 0.05)
            if r:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    break

    def wait_for(self, pred, seconds=5):
        end = time.monotonic() + seconds
        while time.monotonic() < end and not pred(self.screen()):
            self.read(0.1)
        return self.screen()

    def screen(self, raw=False):
        """The last complete frame (each starts at the cursor's home)."""
        frames = self.out.split(b"\x1b[H")
        done = [f for f in frames[1:] if b"\x1b[J" in f]
        if not done:
            return b"" if raw else ""
        if raw:
            return done[-1]
        return ESCAPE.sub(b"", done[-1]).decode().replace("\r", "")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


def test_interactive_draws_resizes_and_quits(servers, collectors, tmp_path):
    srv, col = start(servers, collectors, tmp_path)
    keepalive(srv.port, [("GET", "/alpha?ms=5", None, None)] * 6 +
              [("GET", "/beta?ms=5", None, None)] * 3)
    wait_calls(col, "GET /beta", 3)
    pty = Pty(col.sock)
    try:
        text = pty.wait_for(lambda s: {"GET /alpha", "GET /beta"} <= set(
            rows(s)))
        found = rows(text)
        assert found["GET /alpha"][1] == 6 and found["GET /beta"][1] == 3, \
            text
        # Echo and line buffering are off while it runs.
        now = termios.tcgetattr(pty.slave)
        assert not now[3] & termios.ECHO and not now[3] & termios.ICANON

        # New requests show up in a later frame, with a rate.
        keepalive(srv.port, [("GET", "/beta?ms=2", None, None)] * 4)
        text = pty.wait_for(lambda s: rows(s).get("GET /beta", [0, 0])[1]
                            == 7)
        assert rows(text)["GET /beta"][1] == 7, text

        # A smaller window: the next frame fits it.
        pty.resize(12, 64)
        pty.proc.send_signal(signal.SIGWINCH)
        pty.out = b""
        text = pty.wait_for(lambda s: s != "", 2)
        lines = text.split("\n")
        assert 8 <= len(lines) <= 12, text
        assert all(len(l) <= 64 for l in lines), text

        pty.out = b""
        os.write(pty.master, b"q")
        t0 = time.monotonic()
        assert pty.proc.wait(timeout=2) == 0
        assert time.monotonic() - t0 < 2
        pty.read(0.2)
        # The alternate screen is left and the cursor shown again.
        assert b"\x1b[?1049l" in pty.out and b"\x1b[?25h" in pty.out
        assert termios.tcgetattr(pty.slave) == pty.before
    finally:
        pty.close()


def test_interactive_restores_terminal_on_sigterm(servers, collectors,
                                                  tmp_path):
    srv, col = start(servers, collectors, tmp_path)
    keepalive(srv.port, [("GET", "/alpha?ms=2", None, None)])
    wait_calls(col, "GET /alpha", 1)
    pty = Pty(col.sock)
    try:
        pty.wait_for(lambda s: "GET /alpha" in rows(s))
        assert termios.tcgetattr(pty.slave) != pty.before
        pty.proc.send_signal(signal.SIGTERM)
        assert pty.proc.wait(timeout=2) == -signal.SIGTERM
        assert termios.tcgetattr(pty.slave) == pty.before
    finally:
        pty.close()
