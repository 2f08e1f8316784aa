#!/usr/bin/env bash
# profshim demo: installs what is missing (as root), builds, starts a real
# HTTP server (test/servers/cpuserver.c) with libprofshim.so preloaded,
# records it with profshim-collector, drives load, stops the server and
# prints the per-endpoint table and where the profile JSON is.
#
#   scripts/demo.sh [SECONDS]     load duration, default 5
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
scripts/setup.sh
echo "== building"
scripts/build.sh
build=${BUILD_DIR:-build}
out="$PWD/demo-profile.json"
work=$(mktemp -d)
trap 'kill "${srv:-}" "${col:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

echo "== starting the server under the shim"
LD_PRELOAD="$PWD/$build/shim/libprofshim.so" ENABLE_PROFILING=true \
  PROFILING_SAMPLE_RATE=0.2 \
  "$build/test/cpuserver" 0 >"$work/server.out" &
srv=$!
for _ in $(seq 100); do
  grep -q listening "$work/server.out" 2>/dev/null && break
  sleep 0.05
done
port=$(awk '/listening/ {print $3}' "$work/server.out")
echo "   cpuserver pid $srv on 127.0.0.1:$port"
echo "   LD_PRELOAD=$build/shim/libprofshim.so ENABLE_PROFILING=true PROFILING_SAMPLE_RATE=0.2"

"$build/collector/profshim-collector" record --pid "$srv" --out "$out" \
  --socket "$work/collector.sock" &
col=$!

echo "== driving load for ${seconds}s (4 keep-alive clients)"
/usr/bin/python3 - "$port" "$seconds" "$work/stats.json" <<'PY'
import http.client, sys, threading, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
paths = ["/alpha?ms=8", "/beta?ms=4", "/gamma?ms=2", "/fast",
         "/users/17", "/users/42", "/fast", "/fast"]
end = time.monotonic() + seconds
counts = [0]
def client(k):
    c = http.client.HTTPConnection("127.0.0.1", port)
    i = k
    while time.monotonic() < end:
        c.request("GET", paths[i % len(paths)])
        c.getresponse().read()
        i += 1
        counts[0] += 1
ts = [threading.Thread(target=client, args=(k,)) for k in range(4)]
[t.start() for t in ts]
c = http.client.HTTPConnection("127.0.0.1", port)
c.request("GET", "/alpha?ms=30&profile=1")   # one request profiled on demand
c.getresponse().read()
[t.join() for t in ts]
print(f"   {counts[0] + 1} requests sent")
# The server's own CPU accounting per path, to set the samples beside.
c = http.client.HTTPConnection("127.0.0.1", port)
c.request("GET", "/stats")
open(sys.argv[3], "wb").write(c.getresponse().read())
PY

echo "== stopping the server; the collector writes the profile"
kill -TERM "$srv"
wait "$srv" 2>/dev/null || true
wait "$col"
srv= col=

/usr/bin/python3 - "$out" "$work/stats.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
stats = json.load(open(sys.argv[2]))
hz = next((q["sample"]["effective_hz"] for q in p["processes"]
           if q["sample"]["effective_hz"]), 99)
rows = sorted(p["data"].items(), key=lambda kv: -kv[1]["total_time"])
manual = [r for r in p["requests"] if r["manual"]]
# The server's own CPU accounting: per endpoint, the CPU time of the
# requests sampled by rate (the ?profile=1 one apart, it is sampled on the
# wall clock at 997 Hz); their samples come at `hz` a CPU second of it.
cpu = {}
for path, s in stats.items():
    if not path.endswith("(profile=1)"):
        ep = "GET " + ("/users/:id" if path.startswith("/users/") else path)
        cpu[ep] = cpu.get(ep, 0.0) + s["cpu_ms"]
print()
print(f"{'endpoint':<22}{'calls':>7}{'avg ms':>9}{'p50 ms':>9}{'p95 ms':>9}"
      f"{'p99 ms':>9}{'sampled':>9}{'cpu ms':>9}{'samples':>9}  top function")
for name, e in rows:
    if name == "GET /stats":
        continue  # the demo's own look at the server's accounting
    top = e["top_functions"][0]["function"] if e["top_functions"] else "-"
    mine = [r for r in manual if r["endpoint"] == name]
    calls = e["calls"] - len(mine)
    sampled = e["sampled_calls"] - len(mine)
    samples = e["samples"] - sum(r["samples"] for r in mine)
    ms = cpu.get(name, 0.0) * sampled / calls if calls else 0.0
    print(f"{name:<22}{e['calls']:>7}{e['avg_time']*1e3:>9.2f}"
          f"{e['p50_time']*1e3:>9.2f}{e['p95_time']*1e3:>9.2f}"
          f"{e['p99_time']*1e3:>9.2f}{sampled:>9}"
          f"{ms:>9.1f}{samples:>9}  {top}")
print(f"\n(sampled, cpu ms and samples: the requests sampled by rate, at "
      f"{hz} samples a CPU second: {hz / 1000:g} per cpu ms)")
for r in manual:
    print(f"\n?profile=1 request {r['id']}: {r['endpoint']}, "
          f"{r['duration']*1e3:.1f} ms, {r['samples']} samples")
d = p["dropped"]
print(f"\ndropped: {d['samples']} samples, {d['events']} events")
PY
echo
echo "profile JSON: $out"
