"""What the shim promises a server that preloads it: with profiling off it
does nothing at all, and bad settings never stop the server."""
import os
import signal
import time

import pytest

from conftest import (CPUSERVER, Collector, Server, calls, clean_env,
                      free_port, keepalive, shim_env, shm_listing, sigcgt)

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
        assert "libprofshim.so" in f.read()
    # ... but installed no handler and created no shared memory.
    assert SIGPROF not in sigcgt(srv.pid)
    assert shm_listing() - before == set()
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
