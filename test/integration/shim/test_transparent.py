"""Sampling must be invisible to a program's blocking calls (issue 18).

Wall-clock sampling (PROFILING_CLOCK=wall, and every `?profile=1` request,
sampled at 997 Hz on the wall clock) signals a thread while it blocks. A
server does not retry what it never saw fail without the shim: a poll()
whose EINTR it takes for a time-out, a write() to a pipe it expects to
move every byte. Users rely on a call interrupted only by profshim's
signal ending exactly as it would have without the shim (all its bytes,
its time-out result after its whole time), and on their own signals
still interrupting those calls (EINTR, time left) as before.

test/servers/waitcheck.c is the ground truth: a program that never retries
a call, run once without the shim and then under it; what it prints must be
the same. Its header lists the calls and the bounds on their times. Each
test also checks that samples were taken while the calls waited: a run in
which nothing was sampled would pass for nothing.
"""
import random
import socket
import subprocess

import pytest

from helpers import (CPUSERVER, Collector, Server, clean_env, dump_json,
                     remove_rings, shim_env)

WAITCHECK = CPUSERVER.parent / "waitcheck"

# Continuous wall-clock sampling at 1000 Hz: every thread, all the time.
WALL_1000 = dict(ENABLE_PROFILING="true", PROFILING_MODE="continuous",
                 PROFILING_CLOCK="wall", PROFILING_HZ="1000")

# The checks waitcheck prints, one line each, in order.
CHECKS = 29


def range_port():
    """A free loopback port in 42000-42999 (the range these tests may
    use; waitcheck's own listeners take theirs from it too)."""
    for port in random.sample(range(42000, 43000), 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 42000-42999")


@pytest.fixture(scope="module")
def plain():
    """waitcheck's battery without the shim, run once for the module."""
    return subprocess.run([str(WAITCHECK), "battery"], env=clean_env(),
                          capture_output=True, text=True, timeout=120)


def expected_report(plain):
    """The plain run's report, once it is known to be all ok."""
    assert plain.stderr == "" and plain.returncode == 0, \
        (plain.returncode, plain.stdout, plain.stderr)
    lines = plain.stdout.splitlines()
    assert len(lines) == CHECKS and all(l.endswith(" ok") for l in lines), \
        plain.stdout
    return plain.stdout


def test_battery_without_the_shim(plain):
    """The ground truth itself: without the shim every call does what the
    program expects (all bytes moved, each wait its whole time and its
    time-out result, the program's own SIGALRM interrupting poll, write and
    nanosleep, its mask as it set it after a handler's own poll and after a
    siglongjmp out of a read, poll with timeout 0 returning at once, its
    SIGUSR1 through a wait mask that blocks all else). The tests below
    compare against this."""
    expected_report(plain)


def test_battery_under_continuous_wall_clock_sampling(plain, tmp_path,
                                                      collectors):
    """Sampled 1000 times a second on the wall clock, all the time, the
    program must see the same results as without the shim: no EINTR, no
    short write, no wait cut short or made longer, its own SIGALRM
    still interrupting its calls, and nothing a resumed call leaves
    behind (held signals, a mark a siglongjmp abandoned) changing what the
    program does next."""
    expected = expected_report(plain)
    proc = subprocess.Popen([str(WAITCHECK), "battery"],
                            env=shim_env(**WALL_1000),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        col = Collector(tmp_path, pid=proc.pid)
        collectors.append(col)
        out, err = proc.communicate(timeout=300)
        prof = col.finish()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        remove_rings(proc.pid)
    # Sampled: the battery blocks for about 10 s when its calls are left
    # alone, sampled 1000 times a second; a battery whose calls all
    # fail at the first sample still ends after about a second.
    [p] = [p for p in prof["processes"] if p["pid"] == proc.pid]
    assert p["sample"]["clock"] == "wall", dump_json(p)
    idle = prof["data"].get("(no request)", {})
    assert idle.get("samples", 0) >= 200, dump_json(prof["data"])
    assert out == expected
    assert (err, proc.returncode) == ("", 0)


def test_profile_request_runs_the_battery_unchanged(plain, tmp_path, servers,
                                                    collectors):
    """A `?profile=1` request is sampled at 997 Hz on the wall clock while
    it is served, with the shim at its defaults otherwise: the calls the
    request makes must end as they would without the shim. The battery runs
    inside the request, on the thread that serves it, and its report is
    the response."""
    expected = expected_report(plain)
    port = range_port()
    srv = Server([WAITCHECK, "serve", port],
                 shim_env(ENABLE_PROFILING="true"), port)
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid)
    collectors.append(col)
    status, body = srv.get("/battery?profile=1")
    assert srv.get("/quit")[0] == 200
    assert srv.proc.wait(timeout=30) == 0
    assert srv.stop() == ""
    prof = col.finish()
    # Sampled: the request blocks for about 10 s at 997 Hz when its calls
    # are left alone (about a second when they all fail at once).
    manual = [r for r in prof["requests"] if r.get("manual")]
    assert len(manual) == 1 and manual[0]["endpoint"] == "GET /battery", \
        dump_json(prof["requests"])
    assert manual[0]["samples"] >= 200, dump_json(manual)
    assert status == 200
    assert body.decode() == expected
