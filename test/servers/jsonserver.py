"""jsonserver — a Python http.server whose endpoint serializes a large
object with json.dumps (the _json C accelerator does the work), for
profshim's test of stacks through CPython's extension modules
(test/integration/servers/test_python.py).

    python3 jsonserver.py PORT [--lazy]

    GET /json   json.dumps of some 2,000 records (about 3 ms of CPU)
    GET /fast   answers at once

With --lazy, json is imported at the first /json request rather than at
start-up, as handlers that import what they need do: the interpreter then
dlopen()s _json while it serves, after the shim made its ring.
"""
import http.server
import importlib
import sys

LAZY = "--lazy" in sys.argv[2:]
json = None if LAZY else importlib.import_module("json")

DOC = {"items": [{"id": i, "name": "item-%d" % i, "price": i * 1.25,
                  "tags": ["a", "b", "c"],
                  "stock": {"here": i % 7, "there": i % 11}}
                 for i in range(2000)]}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        global json
        if self.path.startswith("/json"):
            if json is None:
                json = importlib.import_module("json")
            body = json.dumps(DOC).encode()
        else:
            body = b"fast"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])),
                                      Handler)
srv.serve_forever()
