"""16 threads doing dlopen/dlclose, malloc/free, fork+exit and socket I/O
for 20 s while every thread is sampled at 1 kHz on the wall clock: no
deadlock, no crash, unsafe samples skipped and counted, requests exact."""
import os
import signal
import subprocess
import time

from helpers import BUILD, Collector, dump_json, shim_env

STRESS = BUILD / "test" / "stress"
SECONDS = 20


def backtraces(pids):
    """gdb's backtraces of every thread of the given processes, for the
    failure message of a hang."""
    out = []
    for pid in pids:
        r = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex",
                            "thread apply all bt"], capture_output=True,
                           text=True, timeout=60)
        out.append(f"--- pid {pid}\n" + "\n".join(
            l for l in r.stdout.splitlines() if l.startswith(("#", "Thread"))))
    return "\n".join(out)


def test_stress_no_deadlock_no_crash(tmp_path, collectors):
    env = shim_env(ENABLE_PROFILING="true", PROFILING_MODE="continuous",
                   PROFILING_CLOCK="wall", PROFILING_HZ="1000")
    t0 = time.monotonic()
    out_path, err_path = tmp_path / "stress.out", tmp_path / "stress.err"
    with open(out_path, "w") as out_f, open(err_path, "w") as err_f:
        # Its own process group: a hung fork child is killed with it.
        proc = subprocess.Popen([str(STRESS), str(SECONDS)], env=env,
                                stdout=out_f, stderr=err_f,
                                start_new_session=True)
    col = Collector(tmp_path, pid=proc.pid)
    collectors.append(col)
    stacks = ""
    try:
        proc.wait(timeout=SECONDS + 60)
    except subprocess.TimeoutExpired:
        pass
    # Any process of the group still there (a fork child) is hung.
    hung = subprocess.run(["pgrep", "-g", str(proc.pid)],
                          capture_output=True, text=True).stdout.split()
    if hung:
        stacks += backtraces(hung)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not stacks, f"stress or its fork children hung:\n{stacks}"
    out, err = out_path.read_text(), err_path.read_text()
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, (proc.returncode, err)
    counts = dict(kv.split("=") for kv in out.split())
    for k in ("dlopen", "malloc", "fork", "requests"):
        assert int(counts[k]) > 0, counts
    assert elapsed < SECONDS + 30
    prof = col.finish(timeout=120)
    # Every HTTP request the stress made was counted, exactly.
    ep = prof["data"]["GET /stress/:id"]
    assert ep["calls"] + prof["dropped"]["requests"] == int(counts["requests"]), \
        (counts, dump_json(ep))
    # Samples landing inside the loader or the shim were skipped, counted.
    assert prof["dropped"]["skipped_samples"] > 0, prof["dropped"]
    idle = prof["data"]["(no request)"]
    assert idle["samples"] > 1000
    # fork children got rings of their own.
    assert len(prof["processes"]) > 10
