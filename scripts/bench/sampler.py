#!/usr/bin/python3
"""profshim benchmark: the sampler, the ring and the collector.

Usage: scripts/bench/sampler.py [--build DIR] [--rounds N] [--signals N]
                                [--requests N] [--before DIR]

Prints Markdown sections on stdout, progress on stderr:

  per-sample cost   test/bench/bench_signal raises SIGPROF N times from a
                    50-frame-deep stack (-O2, no frame pointers) while it
                    serves a ?profile=1 request on an accepted loopback
                    connection: an empty handler (the floor), gperftools'
                    libprofiler.so with CPUPROFILE, and libprofshim with a
                    collector that must record >= 90% of the N samples;
                    libprofshim again in a request sampled by rate on the
                    CPU clock with each engine set up (perf, timer), and in
                    a request not sampled (a signal not kept).
                    Interleaved rounds; medians and spread.
  per request       cpuserver under libprofshim serving /fast (a few µs of
                    work) over one keep-alive connection: the process' CPU
                    time per request at PROFILING_SAMPLE_RATE=1 against 0
                    (profiling on, nothing sampled), with each CPU engine,
                    and with the shim of --before DIR (another build):
                    what sampling every request adds. Interleaved rounds.
  ring, collector   bytes per sample at depth 50; drops with 16 threads
                    sampled at 1 kHz (default ring, collector running);
                    collector throughput on a ring filled beforehand
                    (record --ring); collector CPU at about 10k samples/s.
  memory            shared memory and added RSS of a server process with
                    the default settings.
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GPERF = Path("/usr/lib/x86_64-linux-gnu/libprofiler.so")
TICK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def env_with(**kv):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PROFILING_", "ENABLE_PROFILING", "CPUPROFILE"))
           and k != "LD_PRELOAD"}
    env.update(kv)
    return env


class Collector:
    def __init__(self, build, tmp, extra=()):
        self.out = tmp / f"prof-{time.monotonic_ns()}.json"
        self.sock = tmp / f"c-{time.monotonic_ns()}.sock"
        self.err = open(tmp / "collector.err", "a")
        self.proc = subprocess.Popen(
            [str(build / "collector" / "profshim-collector"), "record",
             "--out", str(self.out), "--socket", str(self.sock), *extra],
            stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.monotonic() + 10
        while not self.sock.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("bench: the collector did not start")
            time.sleep(0.02)

    def cpu_seconds(self):
        return proc_cpu(self.proc.pid)

    def stop(self):
        time.sleep(0.3)  # one more drain
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=120)
        self.err.close()
        return json.loads(self.out.read_text())


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def spread(xs):
    return statistics.median(xs), min(xs), max(xs)


def fmt(x, digits=0):
    return f"{x:,.{digits}f}"


# ---- per-sample cost -------------------------------------------------------

def bench_signal(build, tmp, mode, n, env):
    out = subprocess.run([str(build / "test" / "bench_signal"), str(n), "50",
                          mode], env=env, capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"bench: bench_signal failed: {out.stderr.strip()}")
    kv = dict(x.split("=") for x in out.stdout.split())
    return float(kv["ns_per_signal"]), int(kv["pid"])


SHIM_ROWS = (
    # (key, row label, bench_signal mode, settings)
    ("profshim", "libprofshim", "preload", {"PROFILING_SAMPLE_RATE": "0"}),
    ("perf", "libprofshim, request sampled by rate, perf engine", "rate",
     {"PROFILING_SAMPLE_RATE": "1", "PROFILING_CPU_ENGINE": "perf"}),
    ("timer", "libprofshim, request sampled by rate, timer engine", "rate",
     {"PROFILING_SAMPLE_RATE": "1", "PROFILING_CPU_ENGINE": "timer"}),
    ("unkept", "libprofshim, request not sampled (signal not kept)", "rate",
     {"PROFILING_SAMPLE_RATE": "0"}),
)


def per_sample(build, tmp, rounds, n):
    res = {"floor": [], "gperftools": []}
    res.update({key: [] for key, *_ in SHIM_ROWS})
    recorded = []
    bytes_per = []
    have_gperf = GPERF.exists()
    if not have_gperf:
        log(f"{GPERF} missing (Debian: libgoogle-perftools-dev); "
            "gperftools column skipped")
    for r in range(rounds):
        res["floor"].append(bench_signal(build, tmp, "floor", n,
                                         env_with())[0])
        if have_gperf:
            res["gperftools"].append(bench_signal(
                build, tmp, "preload", n,
                env_with(LD_PRELOAD=str(GPERF),
                         CPUPROFILE=str(tmp / "gperf.prof")))[0])
        for key, _, mode, settings in SHIM_ROWS:
            col = Collector(build, tmp)
            ns, pid = bench_signal(
                build, tmp, mode, n,
                env_with(LD_PRELOAD=str(build / "shim" / "libprofshim.so"),
                         ENABLE_PROFILING="true", **settings))
            res[key].append(ns)
            prof = col.stop()
            if key == "unkept":
                continue
            # This run's request (the collector reads every ring of the
            # user: one left by the run before may be read again).
            recorded.append(sum(r["samples"] for r in prof["requests"]
                                if r["pid"] == pid) / n)
            for p in prof["processes"]:
                if p["ring_samples"]:
                    bytes_per.append(p["ring_sample_bytes"] /
                                     p["ring_samples"])
        log(f"per-sample round {r + 1}/{rounds}: floor "
            f"{res['floor'][-1]:.0f} ns, gperftools "
            f"{res['gperftools'][-1] if have_gperf else float('nan'):.0f} ns, "
            f"profshim {res['profshim'][-1]:.0f} ns, perf engine "
            f"{res['perf'][-1]:.0f}, timer engine {res['timer'][-1]:.0f}, "
            f"not kept {res['unkept'][-1]:.0f} "
            f"({min(recorded[-3:]) * 100:.1f}% recorded at least)")
    floor = statistics.median(res["floor"])
    prof_med = statistics.median(res["profshim"])
    lines = [
        "### Per-sample cost (SIGPROF at a 50-frame stack, -O2, no frame pointers)",
        f"{n:,} signals per run, {rounds} interleaved rounds; "
        f"profshim's collector recorded "
        f"{min(recorded) * 100:.1f}–{max(recorded) * 100:.1f}% of the signals "
        f"as samples (goal ≥ 90%).",
        "",
        "| profiler | ns per signal, median (min–max) | vs floor | goal |",
        "|---|---|---|---|",
    ]
    m, lo, hi = spread(res["floor"])
    lines.append(f"| empty handler, no preload (floor) | {fmt(m)} ({fmt(lo)}–{fmt(hi)}) | 1.00× | |")
    if have_gperf:
        m, lo, hi = spread(res["gperftools"])
        lines.append(f"| gperftools libprofiler.so (CPUPROFILE) | {fmt(m)} ({fmt(lo)}–{fmt(hi)}) | {m / floor:.2f}× | |")
    for key, label, _, _ in SHIM_ROWS:
        m, lo, hi = spread(res[key])
        ok = "met" if m <= 1.5 * floor else "missed"
        goal = f"≤ 1.5× floor: {ok}" if key != "unkept" else ""
        lines.append(f"| {label} | {fmt(m)} ({fmt(lo)}–{fmt(hi)}) | {m / floor:.2f}× | {goal} |")
    if have_gperf:
        g = statistics.median(res["gperftools"])
        ok = "met" if g >= 10 * prof_med else "missed"
        lines.append(f"| gperftools ÷ libprofshim | | {g / prof_med:.1f}× | ≥ 10×: {ok} |")
    return lines, statistics.median(bytes_per) if bytes_per else None


# ---- per request -------------------------------------------------------------

def http_get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    return r.read()


def serve_run(shim, cpuserver, settings, path, n):
    """The server's CPU ns per request over n requests of `path` on one
    keep-alive connection, under `shim` with `settings`."""
    import http.client

    port = free_port()
    env = env_with(LD_PRELOAD=str(shim), ENABLE_PROFILING="true", **settings)
    srv = subprocess.Popen([str(cpuserver), str(port)], env=env,
                           stdout=subprocess.PIPE, text=True)
    srv.stdout.readline()
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(200):  # the thread, its clock, the caches
        http_get(conn, path)
    before = float(http_get(conn, "/cputime"))
    for _ in range(n):
        http_get(conn, path)
    after = float(http_get(conn, "/cputime"))
    conn.close()
    srv.terminate()
    srv.wait()
    return (after - before) * 1e6 / n


def request_cost(build, tmp, rounds, n, before=None):
    """ns of the server's CPU time per request that sampling every request
    adds (rate 1 against rate 0) on cpuserver's /fast (a few µs of work):
    the cost of a sampled request beyond an unsampled one, per CPU engine,
    and with the shim of build `before` if given."""
    shims = [("perf", build, {"PROFILING_CPU_ENGINE": "perf"}),
             ("timer", build, {"PROFILING_CPU_ENGINE": "timer"})]
    if before:
        shims.append((f"before ({before.name})", before, {}))
    cpuserver = build / "test" / "cpuserver"
    per = {(label, rate): [] for label, _, _ in shims for rate in "01"}
    for r in range(rounds):
        for label, b, settings in shims:
            for rate in "01":
                per[(label, rate)].append(serve_run(
                    b / "shim" / "libprofshim.so", cpuserver,
                    dict(settings, PROFILING_SAMPLE_RATE=rate), "/fast", n))
        log(f"per-request round {r + 1}/{rounds}: " + ", ".join(
            f"{k[0]} rate {k[1]}: {v[-1]:.0f} ns" for k, v in per.items()))
    lines = [
        "### Per request: what sampling adds on a sub-millisecond endpoint",
        f"cpuserver's `/fast` (answers at once), {n:,} requests over one "
        f"keep-alive connection per run, {rounds} interleaved rounds; the "
        "server's CPU time per request (CLOCK_PROCESS_CPUTIME_ID around "
        "the run), PROFILING_HZ=99, rate 1.0 against rate 0 (profiling on, "
        "nothing sampled).",
        "",
        "| shim | rate 0, ns/request | rate 1.0, ns/request | added by sampling: median of rounds (min–max) |",
        "|---|---|---|---|",
    ]
    for label, _, _ in shims:
        base, samp = per[(label, "0")], per[(label, "1")]
        m, lo, hi = spread([b - a for a, b in zip(base, samp)])
        lines.append(f"| {label} | {fmt(statistics.median(base))} | "
                     f"{fmt(statistics.median(samp))} | {fmt(m)} "
                     f"({fmt(lo)}–{fmt(hi)}) |")
    return lines


# ---- ring and collector ------------------------------------------------------

def threads_run(build, tmp, threads, seconds, hz, ring_size=None):
    """bench_threads under continuous wall sampling, with a collector."""
    col = Collector(build, tmp)
    env = env_with(LD_PRELOAD=str(build / "shim" / "libprofshim.so"),
                   ENABLE_PROFILING="true", PROFILING_MODE="continuous",
                   PROFILING_CLOCK="wall", PROFILING_HZ=str(hz))
    if ring_size:
        env["PROFILING_RING_SIZE"] = ring_size
    c0, t0 = col.cpu_seconds(), time.monotonic()
    subprocess.run([str(build / "test" / "bench_threads"), str(threads),
                    str(seconds), "50"], env=env, check=True,
                   stdout=subprocess.DEVNULL, timeout=seconds + 60)
    cpu, wall = col.cpu_seconds() - c0, time.monotonic() - t0
    prof = col.stop()
    samples = sum(v["samples"] for v in prof["data"].values())
    return prof, samples, cpu, wall


def collector_throughput(build, tmp, n):
    """Fill a ring with n samples (no collector), then time record --ring."""
    env = env_with(LD_PRELOAD=str(build / "shim" / "libprofshim.so"),
                   ENABLE_PROFILING="true", PROFILING_SAMPLE_RATE="0",
                   PROFILING_RING_SIZE="1G")
    before = set(Path("/dev/shm").glob("profshim.*"))
    # bench_threads' stacks vary in depth and thread; bench_signal's
    # would be one stack. Use bench_signal for volume, it is quick.
    subprocess.run([str(build / "test" / "bench_signal"), str(n), "50",
                    "preload"], env=env, check=True, capture_output=True,
                   timeout=600)
    rings = sorted(set(Path("/dev/shm").glob("profshim.*")) - before)
    if not rings:
        raise SystemExit("bench: bench_signal left no ring")
    ring = rings[-1]
    out = tmp / "ring.json"
    t0 = time.monotonic()
    p = subprocess.run(
        ["/usr/bin/time", "-f", "%U %S",
         str(build / "collector" / "profshim-collector"), "record",
         "--ring", str(ring), "--out", str(out), "--socket",
         str(tmp / "ring.sock")],
        capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - t0
    ring.unlink(missing_ok=True)
    if p.returncode != 0:
        raise SystemExit(f"bench: record --ring failed: {p.stderr.strip()}")
    user, sys_ = map(float, p.stderr.strip().splitlines()[-1].split())
    prof = json.loads(out.read_text())
    samples = sum(v["samples"] for v in prof["data"].values())
    return samples, wall, user + sys_


def ring_and_collector(build, tmp, bytes50):
    lines = ["### Ring and collector", "",
             "| measure | result | goal |", "|---|---|---|"]
    if bytes50:
        lines.append(f"| bytes per sample, depth 50 (bench_signal) | {bytes50:.1f} | ≤ 120 |")
    log("16 threads x 1 kHz, 10 s, default ring")
    prof, samples, cpu, wall = threads_run(build, tmp, 16, 10, 1000)
    procs = [p for p in prof["processes"] if p["ring_samples"]]
    b = sum(p["ring_sample_bytes"] for p in procs) / max(1, sum(p["ring_samples"] for p in procs))
    d = prof["dropped"]
    lines.append(f"| bytes per sample, 16 threads 50 frames deep (bench_threads) | {b:.1f} | ≤ 120 |")
    lines.append(f"| samples dropped, 16 threads × 1 kHz for 10 s, default ring, collector running | "
                 f"{d['samples']} dropped, {d['unresolved_samples']} unresolved of {samples:,} recorded | 0 |")
    log("collector throughput on a full ring")
    n, wall, cpu = collector_throughput(build, tmp, 2_000_000)
    lines.append(f"| collector throughput, one core (record --ring on {n:,} samples) | "
                 f"{n / cpu:,.0f} samples per CPU second ({n / wall:,.0f}/s wall) | ≥ 500,000/s |")
    log("collector CPU at about 10k samples/s")
    prof, samples, cpu, wall = threads_run(build, tmp, 10, 10, 1000)
    lines.append(f"| collector CPU at {samples / wall:,.0f} samples/s (10 threads × 1 kHz) | "
                 f"{cpu / wall * 100:.2f}% of a core | ≤ 2% |")
    return lines


# ---- memory ------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_parts(pid):
    parts = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("RssAnon", "RssFile", "RssShmem")):
                k, v = line.split(":")
                parts[k] = int(v.split()[0])
    return parts


def server_memory(build, tmp, preload):
    port = free_port()
    env = env_with()
    if preload:
        env = env_with(LD_PRELOAD=str(build / "shim" / "libprofshim.so"),
                       ENABLE_PROFILING="true")
    before = set(Path("/dev/shm").glob("profshim.*"))
    proc = subprocess.Popen([str(build / "test" / "cpuserver"), str(port)],
                            env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("bench: cpuserver did not start")
                time.sleep(0.05)
        # Load: 2000 requests over keep-alive connections.
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", port)) as s:
                f = s.makefile("rb")
                for _ in range(100):
                    s.sendall(b"GET /fast HTTP/1.1\r\nHost: b\r\n\r\n")
                    length = 0
                    while True:
                        line = f.readline()
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                        if line in (b"\r\n", b""):
                            break
                    f.read(length)
        parts = rss_parts(proc.pid)
        shm = size = 0
        for ring in set(Path("/dev/shm").glob("profshim.*")) - before:
            shm += ring.stat().st_blocks * 512
            size += ring.stat().st_size
        return parts, (shm, size)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for ring in set(Path("/dev/shm").glob("profshim.*")) - before:
            ring.unlink(missing_ok=True)


def memory(build, tmp):
    log("memory of cpuserver with and without the shim")
    base, _ = server_memory(build, tmp, False)
    col = Collector(build, tmp)
    withp, (shm, size) = server_memory(build, tmp, True)
    col.stop()
    private = (withp["RssAnon"] + withp["RssFile"]) - (base["RssAnon"] + base["RssFile"])
    total = private * 1024 + shm
    worst = private * 1024 + size
    return ["### Memory (test/servers/cpuserver, a thread per connection, default settings, 2,000 requests)",
            "", "| measure | result | goal |", "|---|---|---|",
            f"| added private RSS (RssAnon + RssFile) | {private / 1024:.2f} MiB | |",
            f"| ring in shared memory (allocated blocks) | {shm / 1048576:.2f} MiB | |",
            f"| total added | {total / 1048576:.2f} MiB | ≤ 8 MiB |",
            f"| total once the ring has wrapped (its whole file, {size / 1048576:.2f} MiB, touched) | {worst / 1048576:.2f} MiB | ≤ 8 MiB |"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--signals", type=int, default=200000)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--before", help="another build whose shim the "
                    "per-request part measures too (before a change)")
    a = ap.parse_args()
    build = Path(a.build).resolve()
    for prog in ("test/bench_signal", "test/bench_threads", "test/cpuserver",
                 "collector/profshim-collector", "shim/libprofshim.so"):
        if not (build / prog).exists():
            raise SystemExit(f"bench: {build / prog} missing; build first "
                             "(scripts/build.sh)")
    with tempfile.TemporaryDirectory(prefix="profshim-bench-") as t:
        tmp = Path(t)
        lines, bytes50 = per_sample(build, tmp, a.rounds, a.signals)
        print("\n".join(lines) + "\n", flush=True)
        before = Path(a.before).resolve() if a.before else None
        print("\n".join(request_cost(build, tmp, a.rounds, a.requests,
                                      before)) + "\n", flush=True)
        print("\n".join(ring_and_collector(build, tmp, bytes50)) + "\n", flush=True)
        print("\n".join(memory(build, tmp)) + "\n", flush=True)


if __name__ == "__main__":
    main()
