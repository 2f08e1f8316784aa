"""profshim in CPython's http.server.ThreadingHTTPServer, run by the real
interpreter binary, with a fast endpoint and a CPU-heavy pure-Python one;
and one whose work is done by a C extension module (json.dumps: the _json
accelerator, a library the interpreter dlopen()s when json is imported)."""
import pytest

from helpers import (PYTHON, ROOT, Collector, Server, calls, dump_json,
                     free_port, keepalive, parallel_keepalive, shim_env)

JSONSERVER = ROOT / "test" / "servers" / "jsonserver.py"

SERVER = r'''
import http.server, sys

def cpu_work(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body still go out in two writes, as http.server writes
    # them; without TCP_NODELAY the body would wait for the client's
    # delayed ACK, 40 ms a request.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/cpu"):
            body = str(cpu_work(400000)).encode()
        else:
            body = b"fast"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
srv.serve_forever()
'''


def test_python_threading_server(servers, collectors, tmp_path):
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    port = free_port()
    env = shim_env(ENABLE_PROFILING="true", PROFILING_SAMPLE_RATE="0.2")
    srv = Server([PYTHON, script, port], env, port)
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid)
    collectors.append(col)

    n_clients, fast_each, cpu_each = 4, 400, 100
    reqs = [("GET", "/fast", None, None)] * fast_each
    reqs += [("GET", "/cpu", None, None)] * cpu_each
    parallel_keepalive(port, n_clients, reqs)
    srv.stop()
    prof = col.finish()
    total = n_clients * (fast_each + cpu_each)
    assert total == 2000
    assert calls(prof, "GET /fast") == n_clients * fast_each, \
        dump_json(prof["data"])
    assert calls(prof, "GET /cpu") == n_clients * cpu_each
    sampled = sum(e["sampled_calls"] for e in prof["data"].values())
    ratio = sampled / total
    assert 0.16 <= ratio <= 0.24, ratio
    cpu = prof["data"]["GET /cpu"]
    assert cpu["samples"] > 20, dump_json(cpu)
    names = [f["function"] for f in cpu["top_functions"]]
    assert "_PyEval_EvalFrameDefault" in names, names
    modules = {f["module"] for f in cpu["top_functions"]}
    assert "python3.11" in modules, modules
    assert prof["dropped"]["events"] == 0


@pytest.mark.parametrize("lazy", [False, True], ids=["at-start", "lazy"])
def test_python_json_extension_frames(servers, collectors, tmp_path, lazy):
    """json.dumps of a large object: its samples are in _json's C code
    (its functions named: Debian's python3.11-dbg has its symbols) and in
    the interpreter's, and are walked through both to the thread's start.

    Before, walks ended in a PLT stub (every call from _json into the
    interpreter goes through one: 4 of 272 samples, one frame deep), and,
    where json is imported at the first request (`lazy`), at _json's
    frames for as long as the shim's snapshot of loaded objects did not
    have it: until a request a second later, so in this run of about a
    second 141 of 219 samples were deeper than 4 frames (123 of 124 now:
    the first request's). The shim now looks for new objects at the next
    request 10 ms on, once a walk has met code in no object."""
    port = free_port()
    env = shim_env(ENABLE_PROFILING="true", PROFILING_SAMPLE_RATE="1")
    srv = Server([PYTHON, JSONSERVER, port] + (["--lazy"] if lazy else []),
                 env, port)
    servers.append(srv)
    col = Collector(tmp_path, pid=srv.pid)
    collectors.append(col)

    n = 300
    assert keepalive(port, [("GET", "/json", None, None)] * n) == [200] * n
    srv.stop()
    prof = col.finish()
    ep = prof["data"]["GET /json"]
    assert ep["calls"] == n and ep["sampled_calls"] == n, dump_json(ep)
    mods = [m["name"] for m in prof["modules"]]
    json_mod = [i for i, m in enumerate(mods) if m.startswith("_json.")]
    assert len(json_mod) == 1, mods
    stacks = [s for s in prof["stacks"] if s["endpoint"] == "GET /json"]
    total = sum(s["samples"] for s in stacks)
    assert total == ep["samples"] and total >= 40, dump_json(ep)

    deep = sum(s["samples"] for s in stacks if len(s["frames"]) > 4)
    assert deep >= 0.8 * total, \
        (deep, total,
         dump_json(sorted(stacks, key=lambda s: len(s["frames"]))[:5]))
    # _json's own frames: in a good part of the samples, and named (but
    # for its PLT stubs, which have no symbol: a sample may land in one
    # on its way to the interpreter).
    def json_names(s):
        return [prof["frames"][i]["function"] for i in s["frames"]
                if prof["frames"][i]["module"] == json_mod[0]]

    def named(name):
        return not (name.startswith("_json.") or name.startswith("0x"))

    in_json = [s for s in stacks if json_names(s)]
    in_json_total = sum(s["samples"] for s in in_json)
    assert in_json_total >= 0.3 * total, (in_json_total, total)
    names = {n for s in in_json for n in json_names(s)}
    assert any(n.startswith("encoder_listencode") for n in names), names
    with_names = sum(s["samples"] for s in in_json
                     if any(named(n) for n in json_names(s)))
    assert with_names >= 0.9 * in_json_total, names
