"""Servers that drop privileges, as Debian deploys them: nginx and Apache
start as root and serve from workers that run as www-data.

The rings a process makes belong to the user it serves as, in both modes
(continuous mode makes a worker's ring before the worker drops to
www-data: the shim hands it over at setuid). A root collector reads them,
and refuses a ring another user planted under a watched pid; a collector
running as www-data reads the workers' rings in both modes. `profshim run`
around such a server counts exactly, and says so and fails when its
collector could not read the server's rings.

Every test needs root (CI runs as root): only root starts a server whose
workers switch user.
"""
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import (BUILD, COLLECTOR, CPUSERVER, PYTHON, Collector, Server,
                     in_threads, keepalive, remove_rings, shim_env, user_env,
                     wait_connections_closed, wait_port)
from helpers import rings as hu
from helpers.apache import access_counts, start_apache
from helpers.nginx import nginx_setup, start_nginx, worker_pids
from helpers.net import free_port, process_tree
from helpers.processes import uids

PROFSHIM = BUILD / "collector" / "profshim"
WWW = pwd.getpwnam("www-data").pw_uid
NOBODY = pwd.getpwnam("nobody").pw_uid
MODES = ["request", "continuous"]


@pytest.fixture(autouse=True)
def need_root():
    if os.geteuid() != 0:
        pytest.fail("servers whose workers switch user need root; run as "
                    "root (CI does)")


def ring_owners(pid):
    return [os.stat(p).st_uid for p in hu.rings_of(pid)]


def as_user(name):
    """Command prefix that runs a program as user `name` (and its group)."""
    return ["setpriv", f"--reuid={name}", f"--regid={name}",
            "--clear-groups"]


def user_dir(uid):
    """A directory of its own for a process running as uid."""
    d = Path(tempfile.mkdtemp(prefix="profshim-priv."))
    os.chown(d, uid, -1)
    return d


def skip_lines(stderr):
    return [line for line in stderr.splitlines() if "skipping" in line]


def counts(profile):
    return {ep: v["calls"] for ep, v in profile["data"].items()}


NGINX_MIX = [("GET", "/ok", None, None),
             ("GET", "/static/index.html", None, None),
             ("POST", "/upload", b"k=" + b"v" * 700,
              {"Content-Type": "application/x-www-form-urlencoded"})]


def drive(port, clients=6, rounds=25, mix=NGINX_MIX, ok=(200, 200, 201)):
    """`clients` keep-alive connections at once, each sending `mix`
    `rounds` times; returns the requests sent per endpoint (every response
    checked)."""

    def client():
        assert keepalive(port, mix * rounds) == list(ok) * rounds

    in_threads(client, [()] * clients)
    return {f"{m} {p}": clients * rounds for m, p, _, _ in mix}


def assert_worker_rings(master, workers, mode):
    """The workers run as www-data and so do their rings, in both modes;
    in continuous mode the root master has a ring of its own, root's.
    Returns the workers with a ring (in request mode, those that served:
    the kernel may give every connection to one of them)."""
    assert uids(master)[1] == 0
    assert workers and all(uids(w) == [WWW] * 4 for w in workers), workers
    owners = [u for w in workers for u in ring_owners(w)]
    assert owners and set(owners) == {WWW}, owners
    if mode == "continuous":
        assert len(owners) == len(workers)
        assert ring_owners(master) == [0]
    return [w for w in workers if hu.rings_of(w)]


# ---- nginx, root master and www-data workers ------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_nginx_www_data_workers_root_collector(servers, collectors, tmp_path,
                                               mode):
    srv = start_nginx(tmp_path, shim_env(ENABLE_PROFILING="true",
                                         PROFILING_MODE=mode))
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid)
    collectors.append(col)
    expected = drive(srv.port)
    workers = worker_pids(srv.pid)
    served = assert_worker_rings(srv.pid, workers, mode)
    stderr = srv.stop()
    prof = col.finish()
    got = counts(prof)
    if mode == "continuous":
        assert got.pop("(no request)", 0) == 0
    assert got == expected, col.stderr
    assert "profshim" not in stderr, stderr
    assert skip_lines(col.stderr) == [] and "not read" not in col.stderr
    pids = {p["pid"] for p in prof["processes"]}
    assert pids == set(served) | ({srv.pid} if mode == "continuous" else
                                  set())
    # Drained and removed, www-data's rings as well as root's.
    for p in [srv.pid, *workers]:
        assert hu.rings_of(p) == []


@pytest.mark.parametrize("mode", MODES)
def test_nginx_www_data_workers_www_data_collector(servers, collectors,
                                                   tmp_path, mode):
    """A collector running as www-data reads the workers' rings in both
    modes; the root master's own ring (continuous mode) is not its to read,
    and it says so once, and again at the end with what to do."""
    srv = start_nginx(tmp_path, shim_env(ENABLE_PROFILING="true",
                                         PROFILING_MODE=mode))
    servers.append(srv)
    cdir = user_dir(WWW)
    try:
        col = Collector(cdir, pid=srv.pid, prefix=as_user("www-data"))
        collectors.append(col)
        expected = drive(srv.port)
        workers = worker_pids(srv.pid)
        served = assert_worker_rings(srv.pid, workers, mode)
        # Root may query a collector run as another user.
        assert col.dump()["version"] == 1
        srv.stop()
        prof = col.finish()
    finally:
        shutil.rmtree(cdir, ignore_errors=True)
    got = counts(prof)
    if mode == "continuous":
        assert got.pop("(no request)", 0) == 0
    assert got == expected, col.stderr
    lines = skip_lines(col.stderr)
    if mode == "request":
        assert lines == [], col.stderr
        return
    master_ring = f"/dev/shm/profshim.{srv.pid}."
    assert len(lines) == 1 and master_ring in lines[0], col.stderr
    assert "owned by uid 0 (root)" in lines[0]
    assert "run the collector as root" in lines[0]
    end = [line for line in col.stderr.splitlines() if "not read" in line]
    assert len(end) == 1 and master_ring in end[0], col.stderr
    assert "run the collector as root" in end[0]
    assert {p["pid"] for p in prof["processes"]} == set(served)


def test_collector_with_cap_dac_override_reads_like_root(servers, collectors,
                                                        tmp_path):
    """Not root but granted CAP_DAC_OVERRIDE (a service's
    AmbientCapabilities), the collector reads every ring root would: the
    www-data workers' and the root master's (continuous mode)."""
    srv = start_nginx(tmp_path, shim_env(ENABLE_PROFILING="true",
                                         PROFILING_MODE="continuous"))
    servers.append(srv)
    cdir = user_dir(NOBODY)
    try:
        col = Collector(cdir, pid=srv.pid, prefix=[
            "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
            "--inh-caps=+dac_override", "--ambient-caps=+dac_override"])
        collectors.append(col)
        expected = drive(srv.port)
        workers = worker_pids(srv.pid)
        assert_worker_rings(srv.pid, workers, "continuous")
        srv.stop()
        prof = col.finish()
    finally:
        shutil.rmtree(cdir, ignore_errors=True)
    got = counts(prof)
    assert got.pop("(no request)", 0) == 0
    assert got == expected, col.stderr
    assert skip_lines(col.stderr) == [], col.stderr
    assert {p["pid"] for p in prof["processes"]} == {srv.pid, *workers}


def test_planted_ring_refused_and_other_trees_ignored(servers, collectors,
                                                      tmp_path):
    """A ring another user (nobody) made under the root master's pid is
    refused in one line and never read; the rings of a server outside the
    --pid tree are not read, nor mentioned."""
    ring, _, _ = hu.capture_ring([("GET", "/gamma?ms=1", None, None)] * 7)
    srv = start_nginx(tmp_path, shim_env(ENABLE_PROFILING="true"))
    servers.append(srv)
    port = free_port()
    other = Server([CPUSERVER, port], shim_env(ENABLE_PROFILING="true"), port)
    servers.append(other)
    # A valid ring in every respect but its owner, naming the master.
    ring.set_header("pid", srv.pid)
    ring.set_header("ppid", os.getpid())
    planted = Path(f"/dev/shm/profshim.{srv.pid}.77")
    made = subprocess.run(
        ["/usr/bin/python3", "-c",
         "import os, sys; fd = os.open(sys.argv[1], os.O_WRONLY | "
         "os.O_CREAT | os.O_EXCL, 0o600); os.write(fd, sys.stdin.buffer."
         "read())", str(planted)],
        input=bytes(ring.b), user=NOBODY, group=NOBODY, extra_groups=[],
        capture_output=True, timeout=30)
    try:
        assert made.returncode == 0, made.stderr
        assert os.stat(planted).st_uid == NOBODY
        col = Collector(tmp_path, pid=srv.pid)
        collectors.append(col)
        expected = drive(srv.port)
        assert keepalive(other.port, [("GET", "/fast", None, None)] * 9) \
            == [200] * 9
        srv.stop()
        prof = col.finish()
        assert planted.read_bytes() == bytes(ring.b)  # never read: not moved
    finally:
        planted.unlink(missing_ok=True)
    assert counts(prof) == expected, col.stderr
    lines = skip_lines(col.stderr)
    assert len(lines) == 1 and str(planted) in lines[0], col.stderr
    assert "owned by uid 65534 (nobody)" in lines[0] and "refused" in lines[0]
    assert f"profshim.{other.pid}." not in col.stderr
    # Only nginx's workers: neither the planted ring's "master" nor the
    # other server.
    assert prof["processes"] and all(
        p["ppid"] == srv.pid for p in prof["processes"]), prof["processes"]
    end = [line for line in col.stderr.splitlines() if "not read" in line]
    assert len(end) == 1 and str(planted) in end[0], col.stderr


SWITCHER = """
import os, sys
print(os.getpid(), flush=True)
for step in sys.argv[1:]:
    sys.stdin.readline()
    call, uid = step.split()
    if call == "seteuid":
        os.seteuid(int(uid))
    else:
        os.setresuid(int(uid), int(uid), int(uid))
    print(step, flush=True)
sys.stdin.readline()
"""


def test_ring_follows_the_effective_user():
    """Python's os.seteuid and os.setresuid in a continuous-mode process
    (its ring made at start-up, as root): the ring is www-data's while the
    process runs as www-data, root's again when it is root again."""
    steps = ((f"seteuid {WWW}", WWW), ("seteuid 0", 0),
             (f"setresuid {WWW}", WWW))
    proc = subprocess.Popen(
        [PYTHON, "-c", SWITCHER, *(s for s, _ in steps)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
        env=shim_env(ENABLE_PROFILING="true", PROFILING_MODE="continuous"))
    pid = int(proc.stdout.readline())
    try:
        assert ring_owners(pid) == [0]
        for step, owner in steps:
            proc.stdin.write("\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == step
            assert ring_owners(pid) == [owner], step
            assert os.stat(hu.rings_of(pid)[0]).st_mode & 0o777 == 0o600
        proc.stdin.write("\n")
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        remove_rings(pid)


# ---- Apache 2.4, event and prefork MPMs, User www-data ---------------------------

APACHE_MIX = [("GET", "/index.html", None, None),
              ("GET", "/docs/page.html", None, None),
              ("HEAD", "/style.css", None, None),
              ("GET", "/missing.html", None, None)]


@pytest.mark.parametrize("mpm", ["event", "prefork"])
@pytest.mark.parametrize("mode", MODES)
def test_apache_www_data_root_collector(servers, collectors, tmp_path, mode,
                                        mpm):
    srv = start_apache(tmp_path, shim_env(ENABLE_PROFILING="true",
                                          PROFILING_MODE=mode), mpm)
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid)
    collectors.append(col)
    sent = drive(srv.port, clients=8, rounds=20, mix=APACHE_MIX,
                 ok=(200, 200, 200, 404))
    assert_worker_rings(srv.pid, worker_pids(srv.pid), mode)
    stderr = srv.stop()
    prof = col.finish()
    logged = access_counts(srv.access_log)
    # Everything the test sent is in Apache's log, and what Apache logged
    # (its own requests too, if any) is what profshim counted.
    for ep, n in sent.items():
        assert logged.get(ep) == n, (ep, logged)
    got = counts(prof)
    if mode == "continuous":
        assert got.pop("(no request)", 0) == 0
    assert got == logged, (col.stderr, stderr)
    assert prof["data"]["GET /missing.html"]["status"] == {"4xx": 160}
    assert skip_lines(col.stderr) == [], col.stderr
    assert "profshim" not in stderr, stderr


# ---- profshim run ----------------------------------------------------------------

def start_run(args, cwd, env):
    out = open(cwd / "stdout.txt", "wb")
    err = open(cwd / "stderr.txt", "wb")
    try:
        return subprocess.Popen([str(PROFSHIM), *map(str, args)], cwd=cwd,
                                env=env, stdout=out, stderr=err,
                                start_new_session=True)
    finally:
        out.close()
        err.close()


def finish_run(proc, timeout=60):
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_nginx(tmp_path, outdir, env):
    """`profshim run` around nginx (root master, www-data workers): serve
    the mix, stop nginx with SIGQUIT through profshim; returns profshim's
    status, its stderr, the requests sent and the workers' pids."""
    argv, port, shared = nginx_setup(tmp_path)
    try:
        proc = start_run(["run", "--out", outdir / "run.json", "--", *argv],
                         outdir, env)
        try:
            wait_port(port, proc)
            sent = drive(port)
            workers = [p for p in process_tree(proc.pid)
                       if uids(p)[1] == WWW]
            wait_connections_closed(proc.pid)
            proc.send_signal(signal.SIGQUIT)
            rc = finish_run(proc)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    return rc, (outdir / "stderr.txt").read_text(), sent, workers


def test_profshim_run_nginx_www_data_workers(tmp_path):
    rc, stderr, sent, _ = run_nginx(tmp_path, tmp_path, user_env())
    assert rc == 0, stderr
    prof = json.loads((tmp_path / "run.json").read_text())
    assert counts(prof) == sent, stderr
    assert skip_lines(stderr) == [], stderr
    assert "profile in" in stderr and "run.html" in stderr


def test_profshim_run_collector_cannot_read(tmp_path):
    """The same run with a collector that may not read www-data's rings:
    PROFSHIM_COLLECTOR names a script that starts the real collector as
    nobody (with its control socket's directory handed to nobody). The
    collector names the rings it could not read, which stay in /dev/shm;
    profshim says nothing was recorded and exits 1 though nginx exited 0."""
    outdir = user_dir(NOBODY)
    before = set(os.listdir("/dev/shm"))
    script = outdir / "collector-as-nobody"
    script.write_text(
        "#!/bin/sh\n"
        "prev=; sock=\n"
        "for a in \"$@\"; do [ \"$prev\" = --socket ] && sock=$a; "
        "prev=$a; done\n"
        "[ -n \"$sock\" ] && chown nobody \"$(dirname \"$sock\")\"\n"
        f"exec setpriv --reuid=nobody --regid=nogroup --clear-groups "
        f"{COLLECTOR} \"$@\"\n")
    script.chmod(0o755)
    try:
        rc, stderr, sent, workers = run_nginx(
            tmp_path, outdir, user_env(PROFSHIM_COLLECTOR=str(script)))
        assert sum(sent.values()) > 0
        assert rc == 1, stderr
        last = [line for line in stderr.splitlines()
                if line.startswith("profshim: nothing recorded")]
        assert len(last) == 1, stderr
        end = [line for line in stderr.splitlines()
               if line.startswith("profshim-collector:") and
               "not read" in line]
        assert len(end) == 1 and end[0].startswith(
            "profshim-collector: nothing recorded:"), stderr
        assert "run the collector as root" in end[0]
        named = re.findall(r"/dev/shm/profshim\.\d+\.\d+", end[0])
        assert named, end[0]
        for path in named:
            assert os.stat(path).st_uid == WWW
            assert int(path.split(".")[1]) in workers
        assert json.loads((outdir / "run.json").read_text())["data"] == {}
    finally:
        # The rings left behind: www-data's, of workers now gone.
        for name in set(os.listdir("/dev/shm")) - before:
            path = Path("/dev/shm") / name
            if name.startswith("profshim.") and \
                    path.stat().st_uid == WWW:
                path.unlink()
        shutil.rmtree(outdir, ignore_errors=True)
