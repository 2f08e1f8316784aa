"""Talking to the servers under test on 127.0.0.1: free ports, waiting
for a listener, keep-alive and raw clients, and waiting until a server has
closed its connections (after which the shim has recorded every request)."""
import http.client
import os
import socket
import time
from pathlib import Path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def process_tree(pid):
    """pid and its descendants that are alive now."""
    children = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def open_connections(pid):
    """TCP sockets of pid's process tree that are not listening."""
    inodes = set()
    for p in process_tree(pid):
        try:
            fds = list(Path(f"/proc/{p}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[9] in inodes and f[3] != "0A":
                n += 1
    return n


def wait_connections_closed(pid, timeout=2.0):
    deadline = time.monotonic() + timeout
    while open_connections(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def keepalive(port, requests, server_pid=None):
    """Send (method, path, body, headers) requests over one keep-alive
    connection; returns the statuses. With server_pid, also wait until
    that server has closed the connection: a client may read the last
    response a moment before the shim records it, and a test that reads
    counts at once needs the record."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    statuses = []
    try:
        for method, path, body, headers in requests:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            r.read()
            statuses.append(r.status)
    finally:
        conn.close()
    if server_pid:
        wait_connections_closed(server_pid)
    return statuses


def in_threads(fn, args_list):
    """Run fn(*args) in a thread for each args of args_list, wait for all,
    and raise the first exception any of them raised."""
    import threading

    errors = []

    def run(args):
        try:
            fn(*args)
        except Exception as e:  # reported by the calling thread
            errors.append(e)

    ts = [threading.Thread(target=run, args=(a,)) for a in args_list]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


def parallel_keepalive(port, n_clients, reqs):
    """n_clients threads each send reqs over a keep-alive connection of
    their own; every response must be 200."""
    def client():
        assert keepalive(port, reqs) == [200] * len(reqs)

    in_threads(client, [()] * n_clients)


def raw_exchange(port, payload, timeout=30):
    """Send raw bytes, read until the server closes; returns the bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks)

