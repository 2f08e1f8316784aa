"""What the shim promises a server that preloads it: with profiling off it
does nothing at all, and bad settings never stop the server."""
import json
import os
import signal
import subprocess
import time

import pytest

from helpers import (CPUSERVER, PYTHON, Collector, Server, calls,
                     clean_env, free_port, keepalive, remove_rings,
                     shim_env, shm_listing, sigcgt)

SIGPROF = signal.SIGPROF.value
PATHS = ["/fast", "/alpha?ms=2", "/nope", "/users/12"]


def responses(srv):
    return [srv.get(p) for p in PATHS]


@pytest.mark.parametrize("setting", [None, "false", "0", "off"])
def test_disabled_is_pure_pass_through(servers, setting):
    extra = {} if setting is None else {"ENABLE_PROFILING": setting}
    port = free_port()
    plain = Server([CPUSERVER, port], clean_env(), port)
    servers.append(plain)
    expected = responses(plain)
    plain.stop()

    before = shm_listing()
    port = free_port()
    srv = Server([CPUSERVER, port], shim_env(PROFILING_SAMPLE_RATE="1",
                                             **extra), port)
    servers.append(srv)
    assert responses(srv) == expected
    assert keepalive(srv.port, [("GET", "/fast", None, None)] * 50) == \
        [200] * 50
    # The shim is loaded ...
    with open(f"/proc/{srv.pid}/maps") as f:
        maps = f.read()
    assert "libprofshim.so" in maps
    # ... but installed no handler and created or mapped no shared memory
    # (other processes may make theirs meanwhile: only names this one's
    # pid could have made count).
    assert SIGPROF not in sigcgt(srv.pid)
    assert "/dev/shm/" not in maps
    assert not [f for f in shm_listing() - before if str(srv.pid) in f]
    assert not [f for f in os.listdir("/dev/shm")
                if f.startswith(f"profshim.{srv.pid}.")]
    assert srv.stop() == ""


def test_enabled_installs_handler_and_ring(servers, collectors, tmp_path):
    port = free_port()
    srv = Server([CPUSERVER, port], shim_env(ENABLE_PROFILING="TRUE"), port)
    servers.append(srv)
    assert SIGPROF in sigcgt(srv.pid)
    # In request mode a process creates its ring at its first request.
    assert not [f for f in os.listdir("/dev/shm")
                if f.startswith(f"profshim.{srv.pid}.")]
    srv.get("/fast")
    rings = [f for f in os.listdir("/dev/shm")
             if f.startswith(f"profshim.{srv.pid}.")]
    assert len(rings) == 1
    st = os.stat(f"/dev/shm/{rings[0]}")
    assert st.st_mode & 0o777 == 0o600
    assert st.st_uid == os.getuid()


BAD = [
    ("PROFILING_SAMPLE_RATE", "abc", "0.1"),
    ("PROFILING_SAMPLE_RATE", "1.5", "0.1"),
    ("PROFILING_MAX_DEPTH", "-1", "50"),
    ("PROFILING_MAX_DEPTH", "100000", "50"),
    ("PROFILING_HZ", "0", "99"),
    ("PROFILING_HZ", "fast", "99"),
    ("PROFILING_MANUAL", "sometimes", "on"),
    ("PROFILING_RING_SIZE", "lots", "4M"),
    ("PROFILING_RING_SIZE", "1K", "4M"),
    ("PROFILING_CLOCK", "sundial", "cpu"),
]


@pytest.mark.parametrize("var,value,default", BAD)
def test_bad_value_one_line_and_server_serves(servers, collectors, tmp_path,
                                              var, value, default):
    port = free_port()
    settings = {"ENABLE_PROFILING": "true", "PROFILING_SAMPLE_RATE": "1"}
    settings[var] = value
    srv = Server([CPUSERVER, port], shim_env(**settings), port)
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid)
    collectors.append(col)
    assert keepalive(port, [("GET", "/alpha?ms=5", None, None)] * 20) == \
        [200] * 20
    stderr = srv.stop()
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, stderr
    assert var in lines[0] and value in lines[0] and default in lines[0], \
        lines[0]
    assert lines[0].startswith("profshim: ")
    # Profiling still works, with the default in place of the bad value.
    prof = col.finish()
    assert calls(prof, "GET /alpha") == 20


def test_bad_master_switch_leaves_profiling_off(servers):
    before = shm_listing()
    port = free_port()
    srv = Server([CPUSERVER, port], shim_env(ENABLE_PROFILING="maybe"), port)
    servers.append(srv)
    assert srv.get("/fast")[0] == 200
    assert SIGPROF not in sigcgt(srv.pid)
    assert shm_listing() - before == set()
    lines = srv.stop().splitlines()
    assert len(lines) == 1 and "ENABLE_PROFILING" in lines[0] and \
        "maybe" in lines[0] and "off" in lines[0], lines


def test_several_bad_values_one_line_each(servers):
    port = free_port()
    srv = Server([CPUSERVER, port],
                 shim_env(ENABLE_PROFILING="yes", PROFILING_SAMPLE_RATE="x",
                          PROFILING_MAX_DEPTH="y", PROFILING_HZ="z"), port)
    servers.append(srv)
    assert srv.get("/fast")[0] == 200
    lines = srv.stop().splitlines()
    assert len(lines) == 3, lines
    for var in ("PROFILING_SAMPLE_RATE", "PROFILING_MAX_DEPTH",
                "PROFILING_HZ"):
        assert sum(var in l for l in lines) == 1


def test_full_dev_shm_leaves_the_server_unprofiled_not_dead(servers):
    """A container's /dev/shm is small (Docker gives 64 MB, about 14
    rings). With no room for the ring the server must go on serving,
    unprofiled, and say why once. A ring whose pages were only reserved on
    first touch killed it with SIGBUS within a second at 1000 Hz."""
    as_root = [] if os.geteuid() == 0 else ["--map-root-user"]
    port = free_port()
    srv = Server(["unshare", "--mount", *as_root, "sh", "-c",
                  'mount -t tmpfs -o size=100k tmpfs /dev/shm && exec "$@"',
                  "sh", CPUSERVER, port],
                 shim_env(ENABLE_PROFILING="true", PROFILING_SAMPLE_RATE="1",
                          PROFILING_CLOCK="wall", PROFILING_HZ="1000"), port)
    servers.append(srv)
    # About 2,000 samples: more than 100 KB of records.
    for _ in range(4):
        assert keepalive(srv.port, [("GET", "/alpha?ms=5", None, None)]
                         * 100) == [200] * 100
    assert srv.proc.poll() is None
    lines = srv.stop().splitlines()
    assert len(lines) == 1, lines
    assert "No space left on device" in lines[0] and \
        "PROFILING_RING_SIZE" in lines[0], lines
    assert srv.proc.returncode in (0, -signal.SIGTERM), srv.proc.returncode


EINTRCHECK = CPUSERVER.parent / "eintrcheck"


def eintr_rounds(env):
    """eintrcheck's counts: rounds, interrupted, lost, other."""
    p = subprocess.Popen([str(EINTRCHECK), "1000"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    out, err = p.communicate(timeout=600)
    remove_rings(p.pid)
    assert p.returncode in (0, 1), err
    words = out.split()
    return {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}


def test_program_signal_still_interrupts_blocking_read(tmp_path):
    """A SIGALRM the program installed without SA_RESTART must still make a
    blocking read fail with EINTR while the thread is sampled 1000 times a
    second on the wall clock (each sample interrupts and restarts that read).
    Without sigrestart.c about one round in ten lost its EINTR here."""
    plain = eintr_rounds(clean_env())
    assert plain["lost"] == 0, plain
    shim = eintr_rounds(shim_env(ENABLE_PROFILING="true",
                                 PROFILING_MODE="continuous",
                                 PROFILING_CLOCK="wall", PROFILING_HZ="1000"))
    # The read is a hooked call: a sample that lands in it holds the
    # program's signals until the hook has looked (sigrestart.h), and the
    # read goes on by a wait the kernel gives the program's mask to
    # atomically, so no window is left (measured: 0 in 6,000 rounds; 7 in
    # 5,000 with the handler's check alone, 1 in 10 with neither).
    assert shim["lost"] == 0, shim
    assert shim["interrupted"] >= 950, shim


SIGWAIT_SCRIPT = r"""
import json, os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
garbage = 0
for _ in range(1000):
    if signal.sigtimedwait([signal.SIGALRM], 0.002) is not None:
        garbage += 1
os.kill(os.getpid(), signal.SIGALRM)
timed = signal.sigtimedwait([signal.SIGALRM], 5).si_signo
os.kill(os.getpid(), signal.SIGALRM)
waited = signal.sigwaitinfo([signal.SIGALRM]).si_signo
with open("/proc/self/status") as f:
    blk = next(int(l.split()[1], 16) for l in f if l.startswith("SigBlk"))
print(json.dumps({"garbage": garbage, "timed": timed, "waited": waited,
                  "prof_blocked": bool(blk >> (signal.SIGPROF - 1) & 1)}))
"""


def test_sigtimedwait_is_not_cut_short_by_samples():
    """CPython's signal.sigtimedwait retries an EINTR with its remaining
    time, but one landing after its deadline makes it return an unfilled
    siginfo instead of None: 5% of 2 ms waits did under 1000 Hz wall-clock
    sampling before the shim kept SIGPROF blocked during sig*wait* calls.
    The waits must still return the signal they wait for, and the thread's
    mask must come back as it was."""
    env = shim_env(ENABLE_PROFILING="true", PROFILING_MODE="continuous",
                   PROFILING_CLOCK="wall", PROFILING_HZ="1000")
    p = subprocess.Popen(["/usr/bin/python3", "-c", SIGWAIT_SCRIPT], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    out, err = p.communicate(timeout=120)
    remove_rings(p.pid)
    assert p.returncode == 0, err
    got = json.loads(out)
    assert got == {"garbage": 0, "timed": signal.SIGALRM.value,
                   "waited": signal.SIGALRM.value, "prof_blocked": False}


ALTSTACKCHECK = CPUSERVER.parent / "altstackcheck"
SAMPLED_1000HZ = dict(ENABLE_PROFILING="true", PROFILING_MODE="continuous",
                      PROFILING_CLOCK="wall", PROFILING_HZ="1000")


def altstack_run(env, size):
    """altstackcheck's counts: signals handled, deepest use of the alt
    stack in bytes."""
    p = subprocess.Popen([str(ALTSTACKCHECK), str(size), "10"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    out, err = p.communicate(timeout=60)
    remove_rings(p.pid)
    assert p.returncode == 0, (p.returncode, err)
    words = out.split()
    return {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}


def test_handler_stays_within_a_small_alternate_signal_stack():
    """A SIGPROF that interrupts the program's own SA_ONSTACK handler runs
    the shim's handler on the program's alternate signal stack. On one the
    size CPython's faulthandler allocates (16,880 bytes), with the
    program's frames on it, the sample path (11 KiB with libunwind) overran
    it into the memory below: here a guard page, so every run died of
    SIGSEGV before the handler learned to skip such samples."""
    plain = altstack_run(clean_env(), 16880)
    assert plain["signals"] == 10, plain
    small = altstack_run(shim_env(**SAMPLED_1000HZ), 16880)
    assert small["signals"] == 10, small
    assert small["deepest"] < 16880, small
    # Where there is room the samples are still walked there.
    big = altstack_run(shim_env(**SAMPLED_1000HZ), 1 << 20)
    assert big["signals"] == 10, big
    assert big["deepest"] > plain["deepest"] + 4096, (plain, big)


WAKEUP_SCRIPT = r"""
import signal, socket
signum = signal.SIGINT
def handler(signum, frame): pass
signal.signal(signum, handler)
read, write = socket.socketpair()
write.setblocking(False)
signal.set_wakeup_fd(write.fileno())
signal.raise_signal(signum)
data = read.recv(1)
read.close(); write.close()
"""


def test_python_faulthandler_survives_samples_on_its_alt_stack(tmp_path):
    """CPython's test_signal wakeup-fd tests under the shim: with
    -X faulthandler, CPython's handlers run on a 16,880-byte alternate
    stack in its heap, and the first one binds its symbols lazily there
    (the whole AVX-512 state saved on it). A sample landing then overran
    the stack by a few hundred bytes, into the heap: about 4% of runs died
    at exit (SIGSEGV while garbage-collecting, or glibc's "double free or
    corruption"). Up to 300 runs, within 25 s: without the fix about ten
    fail."""
    script = tmp_path / "wakeup.py"
    script.write_text(WAKEUP_SCRIPT)
    env = shim_env(**SAMPLED_1000HZ)
    deadline = time.monotonic() + 25
    runs = 0
    while runs < 300 and time.monotonic() < deadline:
        p = subprocess.Popen([PYTHON, "-X", "faulthandler", "-I",
                              str(script)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        out, err = p.communicate(timeout=60)
        remove_rings(p.pid)
        runs += 1
        assert p.returncode == 0, (runs, p.returncode, err)
    assert runs >= 100, runs
