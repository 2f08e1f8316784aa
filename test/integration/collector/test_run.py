"""`profshim run`: one command that runs a server under the shim with a
collector, and leaves a profile and its HTML report when the server exits.

Each test runs the real `profshim` executable from the build tree the way a
new user would (from a working directory of its own, with no profiling
variables in the environment) around a real server: Python's http.server.
"""
import http.client
import json
import os
import pty
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from helpers import (BUILD, COLLECTOR, SHIM, calls, free_port, user_env,
                     wait_connections_closed, wait_port)

PROFSHIM = BUILD / "collector" / "profshim"
PYTHON = "/usr/bin/python3"


def start(args, cwd, env=None):
    """profshim with args, output to files in cwd (a server's request log
    could fill a pipe nobody reads)."""
    out = open(cwd / "stdout.txt", "wb")
    err = open(cwd / "stderr.txt", "wb")
    try:
        # A session of its own: a failed test kills profshim and the
        # server together (killpg) and leaves no server running.
        return subprocess.Popen([str(PROFSHIM), *args], cwd=cwd,
                                env=env if env is not None else user_env(),
                                stdout=out, stderr=err, start_new_session=True)
    finally:
        out.close()
        err.close()


def kill(proc):
    """Kill profshim and its server if they still run. The collector, in a
    process group of its own, ends by itself once the server is gone."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def finish(proc, timeout=60):
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(proc)
        raise


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def html_profile(path):
    """The profile data embedded in an HTML report page."""
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    m = re.search(r'<script type="application/json" id="profile-data">\n(.*?)\n</script>',
                  page, re.S)
    assert m, "the page has no profile-data script"
    data = json.loads(m.group(1))
    assert data["kind"] == "report"
    return data["profile"]


def result_line(stderr, *files):
    """The one line of stderr naming every file in files."""
    lines = [l for l in stderr.splitlines()
             if l.startswith("profshim:") and all(str(f) in l for f in files)]
    assert len(lines) == 1, stderr
    return lines[0]


def socket_dirs():
    tmp = os.environ.get("TMPDIR") or "/tmp"
    return {p for p in os.listdir(tmp) if p.startswith("profshim-run.")}


@pytest.fixture
def workdir(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    (d / "index.html").write_text("<p>hello</p>\n")
    before = socket_dirs()
    yield d
    # A profshim killed by a failed test leaves its socket
    # directory behind, emptied by its collector once the server is gone.
    tmp = os.environ.get("TMPDIR") or "/tmp"
    deadline = time.monotonic() + 10
    left = socket_dirs() - before
    while left and time.monotonic() < deadline:
        for name in list(left):
            try:
                os.rmdir(os.path.join(tmp, name))
                left.discard(name)
            except FileNotFoundError:
                left.discard(name)
            except OSError:
                pass
        time.sleep(0.1)


def test_run_http_server_until_sigint(workdir, tmp_path):
    """The README's example: profile http.server, stop it with SIGINT to
    profshim, find every request in the profile and the report."""
    port = free_port()
    out = tmp_path / "p.json"
    sockdirs = socket_dirs()
    proc = start(["run", "--out", str(out), "--", PYTHON, "-m", "http.server",
                  str(port), "--bind", "127.0.0.1"], workdir)
    try:
        wait_port(port, proc)
        statuses = [get(port, "/") for _ in range(20)]
        statuses += [get(port, "/missing") for _ in range(5)]
        assert statuses == [200] * 20 + [404] * 5
        # Only profshim is signalled: it must pass SIGINT on to python.
        proc.send_signal(signal.SIGINT)
        rc = finish(proc)
    finally:
        kill(proc)
    stderr = (workdir / "stderr.txt").read_text()
    # http.server exits 0 on KeyboardInterrupt; profshim passes that on.
    assert rc == 0, stderr
    assert "Keyboard interrupt received" in (workdir / "stdout.txt").read_text()

    profile = json.loads(out.read_text())
    assert calls(profile, "GET /") == 20
    assert calls(profile, "GET /missing") == 5
    assert profile["data"]["GET /missing"]["status"] == {"4xx": 5}

    html = tmp_path / "p.html"
    page = html_profile(html)
    eps = {e["name"]: e["calls"] for e in page["endpoints"]}
    assert eps == {"GET /": 20, "GET /missing": 5}
    result_line(stderr, out, html)
    # The private collector's socket directory is gone.
    assert socket_dirs() <= sockdirs


def test_run_ctrl_c_in_a_terminal(workdir, tmp_path):
    """Ctrl-C typed in profshim's terminal: the terminal sends SIGINT to
    profshim and the server alike; the server must get it once (a second
    SIGINT would interrupt http.server's clean exit with a traceback), and
    the collector, in a process group of its own, must still record every
    request made before it."""
    port = free_port()
    out = tmp_path / "t.json"
    env = user_env()
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.chdir(workdir)
            os.execve(str(PROFSHIM), [str(PROFSHIM), "run", "--out", str(out),
                                      "--", PYTHON, "-m", "http.server",
                                      str(port), "--bind", "127.0.0.1"], env)
        finally:
            os._exit(127)
    output = bytearray()

    def drain():
        while True:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return
            if not data:
                return
            output.extend(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    status = None
    try:
        wait_port(port)
        for _ in range(10):
            assert get(port, "/") == 200
        os.write(fd, b"\x03")
        deadline = time.monotonic() + 60
        while status is None and time.monotonic() < deadline:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
            else:
                time.sleep(0.05)
    finally:
        if status is None:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        reader.join(timeout=5)
        os.close(fd)
    text = output.decode(errors="replace")
    assert status is not None, text
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "Keyboard interrupt received" in text
    assert "Traceback" not in text
    assert calls(json.loads(out.read_text()), "GET /") == 10
    assert (tmp_path / "t.html").exists()


def test_run_default_out_and_server_exit_status(workdir):
    """A server that exits by itself with status 3 after its requests:
    profshim exits 3, and profshim.json and profshim.html are written in the
    working directory."""
    port = free_port()
    script = workdir / "serve3.py"
    script.write_text(
        "import http.server, sys\n"
        "served = 0\n"
        "class Handler(http.server.SimpleHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        global served\n"
        "        served += 1\n"
        "        super().do_GET()\n"
        f"srv = http.server.HTTPServer(('127.0.0.1', {port}), Handler)\n"
        "while served < 7:\n"
        "    srv.handle_request()\n"
        "sys.exit(3)\n")
    proc = start(["run", PYTHON, str(script)], workdir)
    try:
        wait_port(port, proc)
        assert [get(port, "/") for _ in range(7)] == [200] * 7
        rc = finish(proc)
    finally:
        kill(proc)
    stderr = (workdir / "stderr.txt").read_text()
    assert rc == 3, stderr
    profile = json.loads((workdir / "profshim.json").read_text())
    assert calls(profile, "GET /") == 7
    page = html_profile(workdir / "profshim.html")
    assert [(e["name"], e["calls"]) for e in page["endpoints"]] == [("GET /", 7)]
    result_line(stderr, "profshim.json", "profshim.html")


def test_run_killed_server_status(workdir):
    """A server killed by a signal: profshim exits 128 + the signal and
    still writes both files."""
    proc = start(["run", "--out", "k.json", "--", PYTHON, "-c",
                  "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
                 workdir)
    rc = finish(proc)
    assert rc == 128 + signal.SIGKILL, (workdir / "stderr.txt").read_text()
    assert json.loads((workdir / "k.json").read_text())["data"] == {}
    html_profile(workdir / "k.html")


def test_run_flags_reach_the_server(workdir, tmp_path):
    """--rate 1 --hz 499: every request is sampled at 499 Hz."""
    port = free_port()
    out = tmp_path / "r.json"
    proc = start(["run", "--rate", "1", "--hz", "499", "--out", str(out), "--",
                  PYTHON, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                 workdir)
    try:
        wait_port(port, proc)
        for _ in range(20):
            assert get(port, "/") == 200
        # SIGTERM kills python at once: let it close the last connection
        # first, which it does after the shim has recorded the request (a
        # client can read a response before the server's write returns).
        wait_connections_closed(proc.pid)
        proc.send_signal(signal.SIGTERM)
        rc = finish(proc)
    finally:
        kill(proc)
    # SIGTERM kills http.server (no handler): 128 + 15.
    assert rc == 128 + signal.SIGTERM, (workdir / "stderr.txt").read_text()
    profile = json.loads(out.read_text())
    ep = profile["data"]["GET /"]
    assert ep["calls"] == 20
    # The default rate is 0.1: all 20 sampled means --rate 1 was applied.
    assert ep["sampled_calls"] == 20
    assert profile["sample"]["period_ns"] == pytest.approx(1e9 / 499)


def test_run_environment(workdir):
    """The server's environment: the shim preloaded, profiling on, each
    flag's variable set, and the user's own variables left alone where no
    flag was given."""
    dump = workdir / "env.json"
    env = user_env(PROFILING_HZ="123", PROFILING_MODE="continuous",
                   LD_PRELOAD="libm.so.6")
    proc = start(["run", "--rate", "0.5", "--clock", "wall", "--out", "e.json",
                  "--", PYTHON, "-c",
                  "import json, os, sys; json.dump(dict(os.environ),"
                  " open(sys.argv[1], 'w'))", str(dump)], workdir, env=env)
    assert finish(proc) == 0, (workdir / "stderr.txt").read_text()
    seen = json.loads(dump.read_text())
    assert seen["ENABLE_PROFILING"] == "true"
    assert seen["PROFILING_SAMPLE_RATE"] == "0.5"
    assert seen["PROFILING_CLOCK"] == "wall"
    assert seen["PROFILING_HZ"] == "123"
    assert seen["PROFILING_MODE"] == "continuous"
    # The user's preloads keep their place, the shim comes after them.
    assert seen["LD_PRELOAD"] == f"{env['LD_PRELOAD']}:{os.path.realpath(SHIM)}"


@pytest.mark.parametrize("args, words", [
    (["run", "--bogus", "--", "true"], "unknown option '--bogus'"),
    (["run", "--hz", "0", "--", "true"], "--hz"),
    (["run", "--rate", "2", "--", "true"], "--rate"),
    (["run", "--clock", "gpu", "--", "true"], "--clock"),
    (["run", "--out"], "--out"),
    (["run"], "no server command"),
    (["jump"], "unknown command"),
])
def test_run_usage_errors(workdir, args, words):
    r = subprocess.run([str(PROFSHIM), *args], cwd=workdir, env=user_env(),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stdout == ""
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert words in r.stderr
    assert os.listdir(workdir) == ["index.html"]


def test_run_help():
    r = subprocess.run([str(PROFSHIM), "run", "--help"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0
    assert r.stdout.startswith("usage: profshim run")
    assert "PROFSHIM_LIB" in r.stdout


def test_run_missing_shim(workdir):
    """PROFSHIM_LIB naming a missing file: one line, exit 1, and the server
    never starts."""
    env = user_env(PROFSHIM_LIB=str(workdir / "nope" / "libprofshim.so"))
    r = subprocess.run([str(PROFSHIM), "run", "--", "/usr/bin/touch", "ran"],
                       cwd=workdir, env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert "PROFSHIM_LIB" in r.stderr and "nope" in r.stderr
    assert not (workdir / "ran").exists()


def test_run_server_not_found(workdir):
    r = subprocess.run([str(PROFSHIM), "run", "--", "no-such-server-xyz"],
                       cwd=workdir, env=user_env(), capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 127
    assert r.stderr == "profshim: no-such-server-xyz: command not found\n"


def test_run_installed_layout(tmp_path):
    """Copied into bin/ and lib/x86_64-linux-gnu/ as an install lays them
    out, profshim finds both files; with bin/ alone it says what it looked
    for and which variable to set."""
    bindir = tmp_path / "prefix" / "bin"
    libdir = tmp_path / "prefix" / "lib" / "x86_64-linux-gnu"
    bindir.mkdir(parents=True)
    shutil.copy2(PROFSHIM, bindir / "profshim")
    work = tmp_path / "w"
    work.mkdir()

    r = subprocess.run([str(bindir / "profshim"), "run", "--", "true"],
                       cwd=work, env=user_env(), capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert "libprofshim.so" in r.stderr and "PROFSHIM_LIB" in r.stderr
    assert str(libdir / "libprofshim.so") in r.stderr

    libdir.mkdir(parents=True)
    shutil.copy2(SHIM, libdir / "libprofshim.so")
    shutil.copy2(COLLECTOR, bindir / "profshim-collector")
    dump = work / "env.json"
    r = subprocess.run([str(bindir / "profshim"), "run", "--", PYTHON, "-c",
                        "import json, os, sys; json.dump(dict(os.environ),"
                        " open(sys.argv[1], 'w'))", str(dump)],
                       cwd=work, env=user_env(), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    preload = json.loads(dump.read_text())["LD_PRELOAD"]
    assert preload.split(":")[-1] == str(libdir / "libprofshim.so")
    result_line(r.stderr, "profshim.json", "profshim.html")
