"""profshim-collector's commands: record, dump (with filters), reset, save;
their errors with no collector running, and usage errors."""
import json
import subprocess

import pytest

from helpers import (COLLECTOR, CPUSERVER, calls, Collector, free_port,
                     keepalive, Server, shim_env, start_cpuserver)


def start(servers, collectors, tmp_path):
    return start_cpuserver(servers, collectors, tmp_path,
                           PROFILING_SAMPLE_RATE="1", PROFILING_HZ="499")


def load(srv, alpha, beta):
    reqs = [("GET", "/alpha?ms=15", None, None)] * alpha
    reqs += [("GET", "/beta?ms=15", None, None)] * beta
    assert keepalive(srv.port, reqs) == [200] * (alpha + beta)


def test_dump_filters_reset_save(servers, collectors, tmp_path):
    srv, col = start(servers, collectors, tmp_path)
    load(srv, 6, 4)

    prof = col.dump()
    assert calls(prof, "GET /alpha") == 6 and calls(prof, "GET /beta") == 4
    assert {"version", "data", "requests", "processes", "dropped"} <= \
        set(prof)

    only = col.dump("--endpoint", "GET /beta")
    assert list(only["data"]) == ["GET /beta"]
    assert {r["endpoint"] for r in only["requests"]} == {"GET /beta"}
    assert col.dump("--endpoint", "GET /nothing")["data"] == {}

    # --function keeps only stacks through that function: burn_alpha's
    # stacks are all in GET /alpha.
    fn = col.dump("--function", "burn_alpha")
    assert list(fn["data"]) == ["GET /alpha"]
    assert fn["data"]["GET /alpha"]["top_functions"][0]["function"] == \
        "burn_alpha"
    both = col.dump("--function", "serve")
    assert set(both["data"]) == {"GET /alpha", "GET /beta"}

    r = col.run("reset")
    assert r.returncode == 0 and r.stdout == "", r
    after = col.dump()
    assert after["data"] == {} and after["requests"] == []
    load(srv, 2, 0)
    assert calls(col.dump(), "GET /alpha") == 2

    (tmp_path / "sub").mkdir()
    r = col.run("save", "saved.json", cwd=tmp_path / "sub")
    assert r.returncode == 0, r.stderr
    saved = json.loads((tmp_path / "sub" / "saved.json").read_text())
    assert calls(saved, "GET /alpha") == 2
    r = col.run("save", str(tmp_path / "abs.json"))
    assert r.returncode == 0
    assert calls(json.loads((tmp_path / "abs.json").read_text()),
                 "GET /alpha") == 2
    r = col.run("save", str(tmp_path / "no-such-dir" / "x.json"))
    assert r.returncode == 1 and "no-such-dir" in r.stderr

    srv.stop()
    final = col.finish()
    assert calls(final, "GET /alpha") == 2 and calls(final, "GET /beta") == 0


@pytest.mark.parametrize("args", [["dump"], ["reset"], ["save", "x.json"],
                                  ["dump", "--endpoint", "GET /"]])
def test_no_collector_running(tmp_path, args):
    sock = str(tmp_path / "none.sock")
    r = subprocess.run([str(COLLECTOR)] + args[:1] + ["--socket", sock] +
                       args[1:], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no collector is running" in lines[0], lines


@pytest.mark.parametrize("args", [
    [], ["frobnicate"], ["record", "--pid", "abc"], ["record", "--pid", "-3"],
    ["record", "--duration", "soon"], ["record", "extra"],
    ["record", "--pid", "1", "--ring", "/dev/shm/x"], ["dump", "--bogus"],
    ["dump", "stray"], ["reset", "--endpoint", "x"], ["save"],
    ["save", "a", "b"],
])
def test_bad_arguments_usage_exit_2(args):
    r = subprocess.run([str(COLLECTOR)] + args, capture_output=True,
                       text=True)
    assert r.returncode == 2, (args, r)
    assert "usage: profshim-collector" in r.stderr
    assert r.stdout == ""


def test_help_and_version():
    r = subprocess.run([str(COLLECTOR), "--help"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and "record" in r.stdout and "dump" in r.stdout
    r = subprocess.run([str(COLLECTOR), "--version"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout.startswith("profshim-collector ")


def test_second_collector_on_same_socket_refused(servers, collectors,
                                                 tmp_path):
    col = Collector(tmp_path)
    collectors.append(col)
    r = subprocess.run([str(COLLECTOR), "record", "--socket", col.sock,
                        "--out", str(tmp_path / "b.json")],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "another collector" in r.stderr


def test_record_duration_writes_file(tmp_path):
    out = tmp_path / "d.json"
    idle = subprocess.Popen(["sleep", "30"])
    try:
        r = subprocess.run([str(COLLECTOR), "record", "--duration", "0.3",
                            "--out", str(out), "--socket",
                            str(tmp_path / "d.sock"), "--pid",
                            str(idle.pid)],
                           capture_output=True, text=True, timeout=20)
    finally:
        idle.kill()
        idle.wait()
    assert r.returncode == 0, r.stderr
    prof = json.loads(out.read_text())
    assert prof["version"] == 1 and prof["data"] == {}


def test_record_missing_pid(tmp_path):
    r = subprocess.run([str(COLLECTOR), "record", "--pid", "999999999",
                        "--socket", str(tmp_path / "s.sock")],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "999999999" in r.stderr


def test_gc_removes_rings_of_exited_processes(tmp_path):
    """gc keeps rings of running processes and removes the others."""
    import os

    port = free_port()
    alive = Server([CPUSERVER, port], shim_env(ENABLE_PROFILING="true"),
                   port)
    try:
        alive.get("/fast")
        port2 = free_port()
        gone = Server([CPUSERVER, port2], shim_env(ENABLE_PROFILING="true"),
                      port2)
        gone.get("/fast")
        gone.stop()
        rings = lambda pid: [f for f in os.listdir("/dev/shm")
                             if f.startswith(f"profshim.{pid}.")]
        assert rings(alive.pid) and rings(gone.pid)
        r = subprocess.run([str(COLLECTOR), "gc", "--dry-run", "--verbose"],
                           capture_output=True, text=True)
        assert r.returncode == 0 and f"profshim.{gone.pid}." in r.stdout
        assert rings(gone.pid)
        r = subprocess.run([str(COLLECTOR), "gc"], capture_output=True,
                           text=True)
        assert r.returncode == 0 and "removed" in r.stdout
        assert not rings(gone.pid)
        assert rings(alive.pid)
    finally:
        alive.stop()
        for f in os.listdir("/dev/shm"):
            if f.startswith(f"profshim.{alive.pid}."):
                os.unlink("/dev/shm/" + f)
