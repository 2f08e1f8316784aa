"""Rings and the sanitizer build, for the hostile-input tests
(test_hostile.py, test_wire.py).

- The AddressSanitizer + UBSan build of the collector, and the check that a
  run of it reported nothing.
- The ring layout as ctypes structures (the one table of offsets these tests
  use), checked against shim/ring_format.h by compiling a program that
  prints the C compiler's sizeof and offsetof for every field.
- A real ring captured from cpuserver under the shim, and a Ring wrapper
  that reads and rewrites its header, tables and records.
"""
import ctypes
import json
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from .env import CPUSERVER, ROOT, shim_env
from .net import free_port, keepalive, wait_connections_closed
from .processes import Collector, Server, remove_rings

ASAN_BUILD = Path(os.environ.get("PROFSHIM_ASAN_BUILD", ROOT / "build-asan"))
ASAN_COLLECTOR = ASAN_BUILD / "collector" / "profshim-collector"
ASAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error",
                   "UndefinedBehaviorSanitizer")


def asan_collector():
    """The sanitizer build of the collector; the test fails without it."""
    if not os.access(ASAN_COLLECTOR, os.X_OK):
        pytest.fail(
            f"no AddressSanitizer build of the collector at {ASAN_COLLECTOR};"
            " build it with: cd /work/main && meson setup build-asan "
            "-Db_sanitize=address,undefined -Db_lundef=false && "
            "ninja -C build-asan (or set PROFSHIM_ASAN_BUILD)")
    return ASAN_COLLECTOR


def sanitized(binary):
    """True when binary (or library) was built with AddressSanitizer: the
    sanitizer pass of scripts/test.sh runs every test against such builds,
    whose memory use is several times the plain one."""
    return b"libasan.so" in Path(binary).read_bytes()


def asan_env():
    env = dict(os.environ)
    env.update(ASAN_ENV)
    return env


def assert_no_sanitizer_report(text, what):
    for mark in SANITIZER_MARKS:
        assert mark not in text, f"{what}: sanitizer report:\n{text[-6000:]}"


# ---- the ring layout -------------------------------------------------------

RING_MAGIC = 0x314d494853464f52
RING_VERSION = 2
RING_SEQ_KEY = 0x9e3779b97f4a7c15
RING_ENDPOINT_NAME_MAX = 120
RING_MODULE_PATH_MAX = 256
RING_BUILD_ID_MAX = 32
RING_MODULES_MAX = 512
RING_EXE_MAX = 256
RING_MAX_FRAMES = 256
RING_ENDPOINT_NONE = 0xffffffff
REC_PAD, REC_SAMPLE, REC_REQUEST = 1, 2, 3
EP_EMPTY, EP_BUSY, EP_READY = 0, 1, 2
READER_REC_MAX = 4096  # collector/ingest/reader.c: longest record it copies

u8, u16, u32, u64 = (ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32,
                     ctypes.c_uint64)


class RingHeader(ctypes.Structure):
    _fields_ = [
        ("magic", u64), ("version", u32), ("header_size", u32),
        ("total_size", u64), ("pid", u32), ("ppid", u32),
        ("start_realtime_ns", u64), ("start_monotonic_ns", u64),
        ("exe", ctypes.c_char * RING_EXE_MAX),
        ("sample_rate", ctypes.c_double), ("hz", u32), ("manual_hz", u32),
        ("max_depth", u32), ("clock", u32), ("mode", u32),
        ("reserved0", u32),
        ("endpoints_off", u64), ("endpoints_cap", u32),
        ("modules_cap", u32), ("modules_off", u64), ("data_off", u64),
        ("data_size", u64),
        ("head", u64), ("pad0", u8 * 56), ("tail", u64), ("pad1", u8 * 56),
        ("modules_count", u32), ("exited", u32), ("endpoints_used", u32),
        ("cpu_engine", u32),
        ("dropped_samples", u64), ("dropped_events", u64),
        ("dropped_requests", u64), ("skipped_samples", u64),
        ("untracked_conns", u64), ("overflow_endpoints", u64),
        ("cpu_hz", u32), ("cpu_error", u32), ("tick_hz", u32),
        ("sig_signo", u32), ("sig_state", u32), ("sig_aside", u32),
        ("sig_taken", u64), ("reserved", u64 * 4),
    ]


class RingEndpoint(ctypes.Structure):
    _fields_ = [("state", u32), ("hash", u32),
                ("name", ctypes.c_char * RING_ENDPOINT_NAME_MAX)]


class RingModule(ctypes.Structure):
    _fields_ = [("bias", u64), ("lo", u64), ("hi", u64),
                ("build_id_len", u32), ("build_id", u8 * RING_BUILD_ID_MAX),
                ("path", ctypes.c_char * RING_MODULE_PATH_MAX)]


class RingRec(ctypes.Structure):
    _fields_ = [("seq", u64), ("len", u32), ("type", u16), ("flags", u16)]


class RingRequest(ctypes.Structure):
    _fields_ = [("rec", RingRec), ("req_id", u64), ("tid", u32),
                ("endpoint", u32), ("start_ns", u64), ("duration_ns", u64),
                ("status", u32), ("samples", u32)]


class RingSample(ctypes.Structure):
    _fields_ = [("rec", RingRec), ("req_id", u64), ("tid", u32),
                ("endpoint", u32), ("time_ns", u64), ("nframes", u16),
                ("nbytes", u16), ("shared", u16), ("serial", u16)]


STRUCTS = {"ring_header": RingHeader, "ring_endpoint": RingEndpoint,
           "ring_module": RingModule, "ring_rec": RingRec,
           "ring_request": RingRequest, "ring_sample": RingSample}


def field(struct_type, name):
    """(offset, size) of a field of one of the structures above."""
    f = getattr(struct_type, name)
    return f.offset, f.size


def check_layout(tmp_path):
    """Compile a program printing every field's offsetof and size and the
    structures' sizeof as shim/ring_format.h defines them; fail when the
    ctypes table here disagrees."""
    lines = ['#include <stddef.h>', '#include <stdio.h>',
             '#include "ring_format.h"', 'int main(void) {']
    want = {}
    for cname, st in STRUCTS.items():
        lines.append(f'printf("{cname} %zu\\n", sizeof(struct {cname}));')
        want[cname] = str(ctypes.sizeof(st))
        for fname, _ in st._fields_:
            key = f"{cname}.{fname}"
            lines.append(
                f'printf("{key} %zu %zu\\n", offsetof(struct {cname}, {fname}),'
                f' sizeof(((struct {cname} *)0)->{fname}));')
            off, size = field(st, fname)
            want[key] = f"{off} {size}"
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    exe = tmp_path / "layout"
    src.write_text("\n".join(lines) + "\n")
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    subprocess.run([cc, "-I", str(ROOT / "shim"), "-o", str(exe), str(src)],
                   check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True,
                         text=True).stdout
    got = dict(line.split(" ", 1) for line in out.splitlines())
    assert got == want


# ---- a ring in memory -------------------------------------------------------

class Ring:
    """The bytes of a ring file, with typed access to its parts."""

    def __init__(self, data):
        self.b = bytearray(data)

    def copy(self):
        return Ring(self.b)

    @property
    def h(self):
        return RingHeader.from_buffer_copy(self.b, 0)

    def set(self, struct_type, base, name, value):
        off, size = field(struct_type, name)
        if isinstance(value, (bytes, bytearray)):
            assert len(value) <= size
            self.b[base + off:base + off + len(value)] = value
            return
        fmt = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}[size]
        struct.pack_into(fmt, self.b, base + off, value & ((1 << 8 * size) - 1))

    def set_header(self, name, value):
        self.set(RingHeader, 0, name, value)

    def endpoint_base(self, idx):
        return self.h.endpoints_off + idx * ctypes.sizeof(RingEndpoint)

    def endpoints(self):
        """{index: name} of the READY endpoint slots."""
        h = self.h
        out = {}
        for i in range(h.endpoints_cap):
            e = RingEndpoint.from_buffer_copy(self.b, self.endpoint_base(i))
            if e.state == EP_READY:
                out[i] = e.name.decode()
        return out

    def module_base(self, idx):
        return self.h.modules_off + idx * ctypes.sizeof(RingModule)

    def records(self):
        """[(ring position, file offset, RingRec)] from tail to head."""
        h = self.h
        pos, out = h.tail, []
        while pos < h.head:
            off = pos & (h.data_size - 1)
            rem = h.data_size - off
            if rem < ctypes.sizeof(RingRec):
                pos += rem
                continue
            foff = h.data_off + off
            rec = RingRec.from_buffer_copy(self.b, foff)
            assert rec.seq == pos ^ RING_SEQ_KEY, "uncommitted record"
            out.append((pos, foff, rec))
            pos += rec.len
        return out

    def first(self, rtype, pred=None):
        """(position, file offset) of the first record of rtype (that
        satisfies pred(struct) when given)."""
        st = RingSample if rtype == REC_SAMPLE else RingRequest
        for pos, foff, rec in self.records():
            if rec.type == rtype and (
                    pred is None or pred(st.from_buffer_copy(self.b, foff))):
                return pos, foff
        raise AssertionError(f"no record of type {rtype}")


# ---- a real ring -----------------------------------------------------------

def rings_of(pid):
    return sorted(f"/dev/shm/{n}" for n in os.listdir("/dev/shm")
                  if n.startswith(f"profshim.{pid}."))


def capture_ring(requests, **settings):
    """Serve `requests` ((method, path, body, headers), one keep-alive
    connection) from cpuserver under the shim with every request sampled
    and no collector; copy its ring once every request is accounted, then
    stop the server and remove its ring. Returns (Ring, pid, statuses);
    the pid is that of a process that has exited."""
    env = dict(ENABLE_PROFILING="true", PROFILING_SAMPLE_RATE="1",
               PROFILING_HZ="997", PROFILING_RING_SIZE="64K",
               PROFILING_MAX_ENDPOINTS="10")
    env.update(settings)
    port = free_port()
    srv = Server([CPUSERVER, port], shim_env(**env), port)
    try:
        statuses = keepalive(port, requests)
        # The last request's record is written after its response: the
        # server's close of the connection comes after it.
        wait_connections_closed(srv.pid)
        paths = rings_of(srv.pid)
        assert len(paths) == 1, paths
        st = os.stat(paths[0])
        assert st.st_mode & 0o777 == 0o600 and st.st_uid == os.getuid()
        ring = Ring(Path(paths[0]).read_bytes())
    finally:
        srv.stop()
        remove_rings(srv.pid)
    h = ring.h
    assert h.magic == RING_MAGIC and h.total_size == len(ring.b)
    assert h.dropped_samples == h.dropped_events == 0
    assert h.tail == 0 and h.head > 0
    assert sum(1 for _, _, r in ring.records()
               if r.type == REC_REQUEST) == len(requests)
    return ring, srv.pid, statuses


def dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def write_ring(path, data):
    """A ring file as the shim makes them: owned by us, mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, bytes(data))
    finally:
        os.close(fd)
    os.chmod(path, 0o600)


def run_collector(argv, timeout=60, collector=None):
    """Run the sanitizer collector to its end; returns CompletedProcess."""
    exe = collector or asan_collector()
    # Bytes, decoded leniently: what a ring holds may reach the output.
    r = subprocess.run([str(exe)] + [str(a) for a in argv], env=asan_env(),
                       capture_output=True, timeout=timeout)
    r.stdout = r.stdout.decode(errors="backslashreplace")
    r.stderr = r.stderr.decode(errors="backslashreplace")
    assert_no_sanitizer_report(r.stderr + r.stdout, " ".join(map(str, argv)))
    return r


def load_profile(path):
    return json.loads(Path(path).read_text())


def _status_kb(pid, field):
    """A field in kB of /proc/PID/status (VmHWM, VmRSS...)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field}")


def vm_hwm_kb(pid):
    return _status_kb(pid, "VmHWM")


def vm_rss_kb(pid):
    return _status_kb(pid, "VmRSS")


def wait_until(cond, timeout=10.0, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


class AsanCollector(Collector):
    """A running `record` of the sanitizer build (see helpers.processes.Collector);
    finish() also checks that it reported nothing."""

    def __init__(self, tmp_path, pid=None, extra=()):
        super().__init__(tmp_path, pid, extra, binary=asan_collector(),
                         env=asan_env())

    def finish(self, timeout=30):
        try:
            return super().finish(timeout)
        finally:
            assert_no_sanitizer_report(
                self.err_path.read_text(errors="replace") +
                self.out_path.read_text(errors="replace"), "collector")


# A plain epoll HTTP server for many connections: it answers every request
# ("GET /c?..." and the like, no body) with a 200 and keeps the connection.
# Started as `python3 SCRIPT PORT FIRST_FD`: before it listens it fills every
# free descriptor below FIRST_FD, so the connections it accepts get
# FIRST_FD, FIRST_FD + 1, ... (the kernel hands out the lowest free one).
EPOLL_SERVER = r'''
import os, select, signal, socket, sys

port, first_fd = int(sys.argv[1]), int(sys.argv[2])
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.setblocking(False)
ep = select.epoll()
ep.register(ls.fileno(), select.EPOLLIN)
held = []
null = os.open("/dev/null", os.O_RDONLY)
while True:
    fd = os.dup(null)
    if fd >= first_fd:
        os.close(fd)
        break
    held.append(fd)
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
conns, bufs = {}, {}
ls.listen(4096)
while True:
    for fd, ev in ep.poll():
        if fd == ls.fileno():
            while True:
                try:
                    c, _ = ls.accept()
                except BlockingIOError:
                    break
                c.setblocking(False)
                conns[c.fileno()] = c
                bufs[c.fileno()] = b""
                ep.register(c.fileno(), select.EPOLLIN)
            continue
        c = conns[fd]
        try:
            data = c.recv(65536)
        except (BlockingIOError, InterruptedError):
            continue
        except ConnectionError:
            data = b""
        if not data:
            ep.unregister(fd)
            c.close()
            del conns[fd], bufs[fd]
            continue
        buf = bufs[fd] + data
        while b"\r\n\r\n" in buf:
            _, buf = buf.split(b"\r\n\r\n", 1)
            c.sendall(RESPONSE)
        bufs[fd] = buf
'''
