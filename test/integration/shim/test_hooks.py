"""Edge cases of the interposed socket calls (test/servers/hookcheck.c).

Each scenario runs twice: without the shim, then with it and a collector
recording it. The lines hookcheck prints (return values and errno names)
must be the same both times: the shim never changes what a call returns,
its errno, or crashes the process. Where the shim's accounting is the point,
the profile is checked too.

hookcheck prints "done" when its scenario is over and then waits for EOF on
stdin, so the collector (started right after it) is sure to attach to its
ring while it is alive; the test closes stdin once the collector lists the
process, and the collector ends by itself when the process has exited.
"""
import os
import select
import subprocess
import time

from helpers import (BUILD, Collector, calls, clean_env, dump_json,
                     remove_rings, shim_env)

HOOKCHECK = BUILD / "test" / "hookcheck"
DEADLINE = 30.0


def split(out):
    """(result lines, {info key: value}) of hookcheck's stdout."""
    lines = out.splitlines()
    assert lines and lines[-1] == "done", out
    results = [l for l in lines[:-1] if not l.startswith("info ")]
    info = dict(l[len("info "):].split("=", 1) for l in lines[:-1]
                if l.startswith("info "))
    return results, info


def run_plain(scenario):
    """Run a scenario without the shim; returns (results, info)."""
    start = time.monotonic()
    r = subprocess.run([str(HOOKCHECK), scenario], env=clean_env(),
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=DEADLINE)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert time.monotonic() - start < 3.0
    return split(r.stdout)


def read_until_done(proc, timeout):
    """hookcheck's stdout up to and including its "done" line."""
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"done\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"hookcheck printed only {buf!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(
                    f"hookcheck exited ({proc.wait()}) after {buf!r}: "
                    f"{proc.stderr.read().decode()}")
            buf += chunk
    return buf.decode()


def run_shimmed(scenario, tmp_path, collectors, **settings):
    """Run a scenario with the shim and a collector recording it; returns
    (results, info, profile)."""
    env = shim_env(ENABLE_PROFILING="true", **settings)
    proc = subprocess.Popen([str(HOOKCHECK), scenario], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        # hookcheck cannot exit before its stdin closes: the pid is live.
        col = Collector(tmp_path, pid=proc.pid)
        collectors.append(col)
        start = time.monotonic()
        out = read_until_done(proc, DEADLINE)
        elapsed = time.monotonic() - start
        # The ring exists (the scenario served requests); wait until the
        # collector has attached to it, then let hookcheck exit.
        deadline = time.monotonic() + 10
        while not any(p["pid"] == proc.pid
                      for p in col.dump()["processes"]):
            assert time.monotonic() < deadline, "collector did not attach"
            time.sleep(0.05)
        proc.stdin.close()
        proc.wait(timeout=DEADLINE)
        out += proc.stdout.read().decode()
        err = proc.stderr.read().decode()
        assert proc.returncode == 0, err
        assert err == ""
        prof = col.finish()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if not f.closed:
                f.close()
        remove_rings(proc.pid)
    # The collector's process list: hookcheck alone (a vfork child has no
    # ring of its own).
    assert [p["pid"] for p in prof["processes"]] == [proc.pid], \
        dump_json(prof)
    results, info = split(out)
    assert elapsed < 3.0, f"{scenario} took {elapsed:.2f} s"
    return results, info, prof


def same_results(scenario, tmp_path, collectors, **settings):
    expected, _ = run_plain(scenario)
    assert expected[0] == f"scenario {scenario}"
    results, info, prof = run_shimmed(scenario, tmp_path, collectors,
                                      **settings)
    assert results == expected
    return results, info, prof


def test_msg_trunc_and_peek_leave_results_alone(tmp_path, collectors):
    """recv(fd, NULL, 50, MSG_TRUNC) on TCP discards bytes without a buffer
    the shim could look at; MSG_PEEK bytes are read again; recvmsg/recv
    with MSG_TRUNC on a Unix SOCK_SEQPACKET connection report 100 bytes
    for an 8-byte buffer that has an inaccessible page right behind it
    (the shim must look at no more than the buffer holds)."""
    results, _, _ = same_results("msg_trunc", tmp_path, collectors,
                                 PROFILING_SAMPLE_RATE="1")
    assert "tcp recv(NULL, 50, MSG_TRUNC)=50" in results
    assert "seqpacket recvmsg(8, MSG_TRUNC)=100 msg_flags.MSG_TRUNC=1 " \
        "data=GET /msg" in results


def test_failing_writes_keep_errno_and_are_not_response_bytes(
        tmp_path, collectors):
    """write/send/sendto/writev/sendmsg with a bad buffer fail with EFAULT
    on a tracked connection, sendmsg/write on a closed fd with EBADF (the
    shim must not look at the message of a call that failed); the request
    is then answered normally and counted once, with its real status."""
    results, _, prof = same_results("efault", tmp_path, collectors,
                                    PROFILING_SAMPLE_RATE="1")
    assert "writev(conn, {1, 10})=-1 EFAULT" in results
    assert "sendmsg(99, 1)=-1 EBADF" in results
    ep = prof["data"]["GET /efault"]
    assert ep["calls"] == 1, dump_json(prof)
    assert ep["status"] == {"2xx": 1}, dump_json(prof)
    assert ep["aborted"] == 0, dump_json(prof)


def test_request_answered_by_another_thread_stops_readers_timer(
        tmp_path, collectors):
    """Thread A reads a ?profile=1 request, thread B writes its response;
    A then waits 1 s in poll() on an idle connection. Once the request is
    complete A's manual (997 Hz, wall clock) timer must stop: a timer left
    running interrupts the poll about a thousand times."""
    _, info, prof = same_results("handoff", tmp_path, collectors,
                                 PROFILING_SAMPLE_RATE="0")
    assert int(info["eintr"]) < 20, info
    assert calls(prof, "GET /handoff") == 1, dump_json(prof)
    reqs = [r for r in prof["requests"] if r["endpoint"] == "GET /handoff"]
    assert len(reqs) == 1, dump_json(prof)
    assert reqs[0]["manual"] is True and reqs[0]["sampled"] is True, reqs
    assert reqs[0]["status"] == 200 and reqs[0]["aborted"] is False, reqs


def test_close_racing_writer_thread_counts_every_request(
        tmp_path, collectors):
    """4 keep-alive connections of 500 requests each; per connection one
    thread reads requests, another writes responses, and the reader closes
    the connection at the client's EOF, possibly while the writer is still
    in write(). Every request is counted exactly once."""
    results, _, prof = same_results("close_race", tmp_path, collectors,
                                    PROFILING_SAMPLE_RATE="1")
    assert results[1] == \
        "requests sent=2000 answered 200=2000 responses written=2000"
    ep = prof["data"]["GET /race"]
    summary = {k: ep[k] for k in ("calls", "status", "aborted")}
    summary["dropped"] = prof["dropped"]
    assert ep["calls"] == 2000, summary
    assert ep["status"] == {"2xx": 2000}, summary
    assert ep["aborted"] == 0, summary
    assert prof["dropped"]["requests"] == 0, summary

def only_request(prof, endpoint, status, aborted):
    """endpoint was called once, with this status and aborted or not, both
    in its counts and in its kept request (returned)."""
    ep = prof["data"][endpoint]
    assert ep["calls"] == 1, dump_json(prof)
    assert ep["status"] == {f"{status // 100}xx": 1}, dump_json(prof)
    assert ep["aborted"] == int(aborted), dump_json(prof)
    (r,) = [r for r in prof["requests"] if r["endpoint"] == endpoint]
    assert r["status"] == status and r["aborted"] is aborted, r
    return r


def test_truncated_response_ends_at_last_write(tmp_path, collectors):
    """A head promising Content-Length: 1000 and 10 bytes of body, written
    ~100 ms after the request, then the close ~400 ms later: the request
    is counted once under its real status, is aborted (its body was cut
    short), and its duration ends at its last write, not at the close."""
    _, _, prof = same_results("truncated", tmp_path, collectors,
                              PROFILING_SAMPLE_RATE="1")
    r = only_request(prof, "GET /truncated", 200, aborted=True)
    assert 0.08 <= r["duration"] < 0.4, r


def test_pipeline_overflow_counts_every_request_once(tmp_path, collectors):
    """20 requests pipelined and all read before the first response (more
    than the shim's per-connection queue holds), then 5 keep-alive requests:
    each of the 25 is either counted as a call or as a dropped request."""
    _, _, prof = same_results("pipeline_overflow", tmp_path, collectors,
                              PROFILING_SAMPLE_RATE="1")
    total = sum(e["calls"] for e in prof["data"].values())
    assert total >= 1, dump_json(prof)
    assert set(prof["data"]) <= {"GET /pipe"}, dump_json(prof)
    assert total + prof["dropped"]["requests"] == 25, dump_json(prof)


def test_vfork_child_close_is_not_the_parents(tmp_path, collectors):
    """A vfork() child closes its copy of the connection and _exit(0)s;
    the parent then answers: one request, answered 200, not aborted."""
    _, _, prof = same_results("vfork_close", tmp_path, collectors,
                              PROFILING_SAMPLE_RATE="1")
    only_request(prof, "GET /vfork", 200, aborted=False)
    assert set(prof["data"]) == {"GET /vfork"}, dump_json(prof)

