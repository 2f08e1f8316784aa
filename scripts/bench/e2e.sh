#!/usr/bin/env bash
# profshim benchmark, end-to-end part: what a profiler costs a real,
# CPU-bound server. nginx compresses a ~200 KB text/html page with gzip
# (level 6) for every request, wrk drives it over keep-alive connections,
# and three configurations are measured, interleaved round by round:
#
#   no preload     the floor
#   libprofshim    LD_PRELOAD=libprofshim.so ENABLE_PROFILING=true
#                  PROFILING_SAMPLE_RATE=1.0 PROFILING_HZ=99, with
#                  `profshim-collector record --pid NGINX` draining it
#                  (its profile is checked to have stack samples)
#   gperftools     LD_PRELOAD=libprofiler.so CPUPROFILE=... CPUPROFILE_FREQUENCY=100
#
# nginx runs as ONE process (master_process off; worker_processes 1):
# setitimer-based profilers such as gperftools are not inherited by fork
# children, so with a master and workers gperftools would profile only the
# idle master. With one process every profiler sees the serving process.
#
# On a machine with two or more CPUs, nginx runs on the last CPU and wrk and
# the collector on the others (taskset), so that the load generator does
# not take turns with the server on its CPU: without that, one round's
# throughput moves by several percent whatever the profiler.
#
# Each run starts a fresh nginx, warms up with 1 s of wrk, then measures
# DURATION seconds of wrk. Per run: throughput (wrk's Requests/sec) and
# server CPU per request ((utime+stime) of the nginx process from
# /proc/PID/stat, after minus before the measured run, divided by the
# requests wrk completed). Progress goes to stderr, a Markdown section to
# stdout.
#
#   scripts/bench/e2e.sh [--build DIR] [--rounds N] [--duration S] [--checkpoint S]
set -euo pipefail

usage() {
  cat <<'EOF'
usage: e2e.sh [--build DIR] [--rounds N] [--duration S] [--checkpoint S]

End-to-end profiler overhead: nginx (gzip level 6, one process) under wrk,
with no preload, with libprofshim.so (rate 1.0, 99 Hz, collector running)
and with gperftools' libprofiler.so (100 Hz), interleaved for N rounds.
Prints a Markdown section on stdout, progress on stderr.

options:
  --build DIR     profshim build directory (default: $BUILD, else
                  <repo>/build)
  --rounds N      rounds of (no preload, profshim, gperftools) (default:
                  $ROUNDS, else 5)
  --duration S    seconds of each measured wrk run (default: $DURATION,
                  else 5); each run also has 1 s of warm-up
  --checkpoint S  the collector's --checkpoint (default 1, as `record`;
                  0: none), to see what checkpoints cost
  -h, --help      this text

needs: wrk (Debian package wrk), nginx (nginx-light),
       /usr/lib/x86_64-linux-gnu/libprofiler.so (libgoogle-perftools-dev),
       /usr/bin/python3
exit status: 0 done, 1 a run failed (nginx did not start, no samples, ...),
             2 bad arguments or something missing
EOF
}

die2() { echo "e2e: $*" >&2; exit 2; }
die() { echo "e2e: $*" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../../build}
rounds=${ROUNDS:-5}
duration=${DURATION:-5}
checkpoint=1
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --build) [ $# -ge 2 ] || die2 "--build needs a directory"; build=$2; shift 2 ;;
    --build=*) build=${1#*=}; shift ;;
    --rounds) [ $# -ge 2 ] || die2 "--rounds needs a number"; rounds=$2; shift 2 ;;
    --rounds=*) rounds=${1#*=}; shift ;;
    --duration) [ $# -ge 2 ] || die2 "--duration needs a number of seconds"; duration=$2; shift 2 ;;
    --duration=*) duration=${1#*=}; shift ;;
    --checkpoint) [ $# -ge 2 ] || die2 "--checkpoint needs seconds"; checkpoint=$2; shift 2 ;;
    --checkpoint=*) checkpoint=${1#*=}; shift ;;
    *) usage >&2; die2 "unknown argument: $1" ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die2 "--rounds \"$rounds\" is not a positive integer"
[[ $duration =~ ^[1-9][0-9]*$ ]] || die2 "--duration \"$duration\" is not a positive whole number of seconds"
[[ $checkpoint =~ ^[0-9]+(\.[0-9]+)?$ ]] || die2 "--checkpoint \"$checkpoint\" is not a number of seconds"

WRK=/usr/bin/wrk
NGINX=/usr/sbin/nginx
GPERF=/usr/lib/x86_64-linux-gnu/libprofiler.so
PY=/usr/bin/python3
prog=e2e
# shellcheck source=scripts/bench/common.sh
. "$(dirname "$0")/common.sh"
[ -x "$WRK" ] || WRK=$(command -v wrk || true)
[ -n "$WRK" ] && [ -x "$WRK" ] || die2 "wrk not found; install the Debian package: apt-get install wrk"
[ -x "$NGINX" ] || NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] && [ -x "$NGINX" ] || die2 "nginx not found; install the Debian package: apt-get install nginx-light"
[ -f "$GPERF" ] || die2 "$GPERF not found; install the Debian package: apt-get install libgoogle-perftools-dev"
[ -x "$PY" ] || die2 "$PY not found; install the Debian package: apt-get install python3"
[ -d "$build" ] || die2 "build directory $build not found; build first: meson setup $build && meson compile -C $build"
build=$(cd "$build" && pwd)
SHIM=$build/shim/libprofshim.so
COLLECTOR=$build/collector/profshim-collector
[ -f "$SHIM" ] || die2 "$SHIM not found; build first: meson compile -C $build"
[ -x "$COLLECTOR" ] || die2 "$COLLECTOR not found; build first: meson compile -C $build"

clk_tck=$(getconf CLK_TCK)
ngx_version=$("$NGINX" -v 2>&1 | sed -n 's|^nginx version: ||p')
wrk_args=(-t1 -c8 "-d${duration}s" -H "Accept-Encoding: gzip")
# CPU pinning (see the top of this file): server_cpu for nginx, client_cpus
# for wrk and the collector.
ncpu=$(nproc)
server_pin=()
client_pin=()
if [ "$ncpu" -ge 2 ] && command -v taskset >/dev/null; then
  server_pin=(taskset -c "$((ncpu - 1))")
  client_pin=(taskset -c "0-$((ncpu - 2))")
fi
page=/page.html
endpoint="GET $page"

tmp=$(mktemp -d)
ngx_pid=
col_pid=
cleanup() {
  # Only the processes this script started, by pid.
  if [ -n "$ngx_pid" ]; then
    kill -KILL "$ngx_pid" 2>/dev/null || true
    wait "$ngx_pid" 2>/dev/null || true
  fi
  if [ -n "$col_pid" ]; then
    # A --pid collector drains and removes the ring of an exited nginx.
    gone "$col_pid" 2 || kill -KILL "$col_pid" 2>/dev/null || true
    wait "$col_pid" 2>/dev/null || true
  fi
  # Whatever ring of our (now dead) nginx is left in /dev/shm.
  if [ -n "$ngx_pid" ]; then rm -f /dev/shm/profshim."$ngx_pid".* 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The page: ~200 KB of HTML built from a vocabulary with a fixed seed, so it
# compresses well (about 3-4x) but not trivially.
mkdir -p "$tmp/www"
"$PY" - "$tmp/www${page}" <<'PY'
import random, sys
rnd = random.Random(20240601)
words = ("profile sample request endpoint worker latency stack thread "
         "server network socket buffer header response client connection "
         "timer signal handler collector ring memory module symbol frame "
         "function histogram percentile throughput overhead kernel process "
         "compress deflate encoding content length keepalive pipeline").split()
out = ["<!DOCTYPE html>\n<html><head><title>profshim e2e</title></head><body>\n"]
size, i = 0, 0
while size < 200 * 1024:
    n = rnd.randint(20, 60)
    para = " ".join(rnd.choice(words) + (str(rnd.randint(0, 999)) if rnd.random() < 0.15 else "")
                    for _ in range(n))
    line = f'<div class="row r{i % 7}"><h3>Section {i}</h3><p>{para}.</p></div>\n'
    out.append(line)
    size += len(line)
    i += 1
out.append("</body></html>\n")
open(sys.argv[1], "w").write("".join(out))
PY

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# write_conf DIR PORT: nginx.conf for one run. No `user` directive: with
# master_process off nginx never switches user, so it serves as whoever
# starts it (root in CI) and reads the page from the temp dir.
write_conf() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
# One process: setitimer-based profilers are not inherited by fork
# children, so the process that serves must be the one started.
master_process off;
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    types { text/html html; text/plain txt; }
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    # text/html is always in gzip_types (naming it again makes nginx warn
    # "duplicate MIME type").
    gzip on;
    gzip_comp_level 6;
    gzip_min_length 0;
    gzip_types text/plain text/css application/json;
    server {
        listen 127.0.0.1:$port;
        root $tmp/www;
        location / { }
    }
}
EOF
}

ngx_fail() {
  local dir=$1 why=$2
  echo "e2e: nginx ($3) $why; its error log:" >&2
  cat "$dir/error.log" >&2 2>/dev/null || true
  if [ -s "$dir/stderr" ]; then
    echo "e2e: nginx stderr:" >&2
    cat "$dir/stderr" >&2
  fi
  exit 1
}





results=$tmp/results.tsv
: >"$results"

# run ROUND CONFIG
run() {
  local round=$1 cfg=$2 dir port before after col_before col_after
  dir=$tmp/run-$round-$cfg
  mkdir -p "$dir"
  port=$(free_port)
  write_conf "$dir" "$port"
  local -a envs=()
  case $cfg in
    none) ;;
    profshim)
      envs=(LD_PRELOAD="$SHIM" ENABLE_PROFILING=true PROFILING_SAMPLE_RATE=1.0 PROFILING_HZ=99)
      ;;
    gperftools)
      envs=(LD_PRELOAD="$GPERF" CPUPROFILE="$dir/g.prof" CPUPROFILE_FREQUENCY=100)
      ;;
  esac

  "${server_pin[@]}" env "${envs[@]}" "$NGINX" -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" \
    >"$dir/stdout" 2>"$dir/stderr" </dev/null &
  ngx_pid=$!
  local why
  if ! why=$(ready "$port" "$ngx_pid" "$page" gzip); then
    if kill -0 "$ngx_pid" 2>/dev/null; then
      ngx_fail "$dir" "does not serve the page on 127.0.0.1:$port: $why" "$cfg"
    else
      ngx_fail "$dir" "failed to start" "$cfg"
    fi
  fi

  if [ "$cfg" = profshim ]; then
    # The collector records this nginx only (--pid), attached as soon as it
    # serves and before any load: the shim's ring holds what was written
    # before, so nothing is missed. Without --pid, `record` attaches to
    # every ring of this uid and would consume the rings of anyone else's
    # profshim tests running on the machine at the same time.
    "${client_pin[@]}" "$COLLECTOR" record --pid "$ngx_pid" --out "$dir/p.json" --socket "$dir/c.sock" \
      --checkpoint "$checkpoint" >"$dir/collector.out" 2>&1 &
    col_pid=$!
    for _ in $(seq 200); do
      [ -S "$dir/c.sock" ] && break
      kill -0 "$col_pid" 2>/dev/null || break
      sleep 0.05
    done
    if ! [ -S "$dir/c.sock" ]; then
      echo "e2e: profshim-collector did not start:" >&2
      cat "$dir/collector.out" >&2
      exit 1
    fi
  fi

  "${client_pin[@]}" "$WRK" -t1 -c8 -d1s -H "Accept-Encoding: gzip" "http://127.0.0.1:$port$page" \
    >"$dir/warmup.out" 2>&1 || { cat "$dir/warmup.out" >&2; die "wrk warm-up failed ($cfg)"; }

  before=$(cpu_ticks "$ngx_pid")
  [ -n "$col_pid" ] && col_before=$(cpu_ticks "$col_pid")
  "${client_pin[@]}" "$WRK" "${wrk_args[@]}" "http://127.0.0.1:$port$page" >"$dir/wrk.out" 2>&1 \
    || { cat "$dir/wrk.out" >&2; die "wrk failed ($cfg)"; }
  after=$(cpu_ticks "$ngx_pid")
  [ -n "$col_pid" ] && col_after=$(cpu_ticks "$col_pid")
  kill -0 "$ngx_pid" 2>/dev/null || ngx_fail "$dir" "exited during the run" "$cfg"

  local parsed requests rps
  parsed=$(parse_wrk "$dir/wrk.out") || die "round $round $cfg: bad wrk run"
  read -r requests rps <<<"$parsed"

  local wparsed wrequests
  wparsed=$(parse_wrk "$dir/warmup.out") || die "round $round $cfg: bad wrk warm-up run"
  read -r wrequests _ <<<"$wparsed"

  stop "$ngx_pid" nginx QUIT
  if [ -n "$col_pid" ]; then
    # Stopped after nginx: a --pid collector notices that nginx exited,
    # drains its ring to the last record, removes it from /dev/shm, writes
    # p.json and exits by itself; SIGINT (same effect) if it has not
    # within 10 s.
    if ! gone "$col_pid" 10; then
      echo "e2e: profshim-collector still running 10 s after nginx exited; sending SIGINT" >&2
      stop "$col_pid" profshim-collector INT
    fi
    wait "$col_pid" 2>/dev/null || true
    col_pid=
  fi
  ngx_pid=
  if grep -q '\[\(emerg\|alert\|crit\)\]' "$dir/error.log" 2>/dev/null; then
    ngx_fail "$dir" "logged errors" "$cfg"
  fi

  local extra=""
  local col_ticks=0
  case $cfg in
    profshim)
      col_ticks=$((col_after - col_before))
      [ -s "$dir/p.json" ] || { cat "$dir/collector.out" >&2; die "profshim-collector wrote no $dir/p.json"; }
      local check
      check=$("$PY" - "$dir/p.json" "$endpoint" "$((requests + wrequests + 1))" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
ep = p.get("data", {}).get(sys.argv[2])
if ep is None:
    sys.exit(f"no endpoint {sys.argv[2]!r} in the profile; endpoints: {sorted(p.get('data', {}))}")
if ep.get("samples", 0) <= 0:
    sys.exit(f"endpoint {sys.argv[2]!r} has {ep.get('calls')} calls but no stack samples: "
             "profiling did not happen")
d = p.get("dropped", {})
print(f"{ep['calls']} calls (wrk completed {sys.argv[3]}), {ep['sampled_calls']} sampled, {ep['samples']} samples, "
      f"dropped {d.get('samples', 0)} samples/{d.get('events', 0)} events/{d.get('requests', 0)} requests, "
      f"skipped {d.get('skipped_samples', 0)} samples")
PY
) || die "round $round profshim: the collector's profile shows no profiling (see above)"
      extra=" (collector: $check)"
      ;;
    gperftools)
      local n
      n=$("$PY" - "$dir/g.prof" <<'PY'
import struct, sys
try:
    b = open(sys.argv[1], "rb").read()
except OSError:
    print(-1); sys.exit()
w = [x[0] for x in struct.iter_unpack("<Q", b[:len(b) // 8 * 8])]
# legacy CPU profile: header 0,3,0,period,0; records count,n,pc*n; trailer 0,1,0
i, total = 5, 0
while i + 2 <= len(w):
    count, n = w[i], w[i + 1]
    if count == 0:
        break
    total += count
    i += 2 + n
print(total)
PY
)
      if [ "$n" -lt 0 ]; then
        die "round $round gperftools: no profile written to $dir/g.prof"
      elif [ "$n" -eq 0 ]; then
        die "round $round gperftools: the profile $dir/g.prof has no samples: profiling did not happen"
      fi
      extra=" (gperftools: $n samples)"
      ;;
  esac

  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$cfg" "$rps" "$requests" "$((after - before))" "$col_ticks" >>"$results"
  local us
  us=$("$PY" -c 'import sys; print(f"{int(sys.argv[1]) / int(sys.argv[3]) / int(sys.argv[2]) * 1e6:.1f}")' \
    "$((after - before))" "$requests" "$clk_tck")
  local label=$cfg
  [ "$cfg" = none ] && label="no-preload"
  printf 'e2e: round %s/%s %s %.1f req/s %s us/req%s\n' "$round" "$rounds" "$label" "$rps" "$us" "$extra" >&2
}

echo "e2e: $ngx_version, single process, gzip level 6 on a $(( $(stat -c %s "$tmp/www$page") / 1024 )) KB page; wrk ${wrk_args[*]}; $rounds rounds of ${duration}s (+1 s warm-up)" >&2
for round in $(seq "$rounds"); do
  run "$round" none
  run "$round" profshim
  run "$round" gperftools
done

page_kb=$(( $(stat -c %s "$tmp/www$page") / 1024 ))
"$PY" - "$results" "$clk_tck" "$ngx_version" "$rounds" "$duration" "$page_kb" "$(nproc)" \
  "-t1 -c8 -d${duration}s -H 'Accept-Encoding: gzip'" <<'PY'
import statistics, sys
path, tck, ver, rounds, dur, kb, ncpu, wargs = sys.argv[1:]
tck = int(tck)
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
by = {}
for rnd, cfg, rps, req, ticks, colticks in rows:
    d = by.setdefault(cfg, {"rps": [], "us": [], "col": []})
    d["rps"].append(float(rps))
    d["us"].append(int(ticks) / tck / int(req) * 1e6)
    d["col"].append(int(colticks) / tck / int(req) * 1e6)

def med(xs):
    return statistics.median(xs)

def cell(xs):
    return f"{med(xs):.1f} ({min(xs):.1f}–{max(xs):.1f})"

floor_rps, floor_us = med(by["none"]["rps"]), med(by["none"]["us"])
print("### End-to-end: nginx gzip under wrk")
print(f"nginx/{ver.split('/')[-1]} as one process (master_process off, worker_processes 1: "
      f"setitimer profilers are not inherited by fork children), gzip_comp_level 6 on a {kb} KB "
      f"text/html page, `wrk {wargs}`, {rounds} interleaved rounds of {dur} s (+1 s warm-up, "
      f"fresh nginx per run), {ncpu} CPUs"
      + (" (nginx pinned to one, wrk and the collector to the others)" if int(ncpu) >= 2 else "")
      + "; CPU = nginx utime+stime from /proc/PID/stat "
      f"({1000 / tck:g} ms ticks)")
print()
print("| configuration | req/s median (min–max) | lost | CPU µs/request median (min–max) | added |")
print("|---|---|---|---|---|")
names = [("none", "no preload"), ("profshim", "libprofshim (rate 1.0, 99 Hz)"),
         ("gperftools", "gperftools (100 Hz)")]
for cfg, name in names:
    d = by[cfg]
    if cfg == "none":
        lost = added = "—"
    else:
        lost = f"{(1 - med(d['rps']) / floor_rps) * 100:.1f}%"
        added = f"{(med(d['us']) / floor_us - 1) * 100:.1f}%"
    print(f"| {name} | {cell(d['rps'])} | {lost} | {cell(d['us'])} | {added} |")
col = by["profshim"]["col"]
print()
print(f"Not counted above: the profshim-collector process used {med(col):.1f} µs of CPU "
      f"per request (median; {min(col):.1f}–{max(col):.1f}) on the same machine.")
PY
