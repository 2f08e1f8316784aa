"""profshim in CPython's http.server.ThreadingHTTPServer, run by the real
interpreter binary, with a fast endpoint and a CPU-heavy pure-Python one."""
from helpers import (PYTHON, Collector, Server, calls, dump_json, free_port,
                     parallel_keepalive, shim_env)

SERVER = r'''
import http.server, sys

def cpu_work(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

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
