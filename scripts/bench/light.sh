#!/usr/bin/env bash
# profshim benchmark, light-endpoint part: what profshim costs a server on
# its lightest endpoints, those that take 10-30 µs of CPU a request, where
# a per-request cost of a few hundred nanoseconds shows (e2e.sh measures a
# request of about 6 ms, where it does not). Four servers:
#
#   nginx-ok      nginx (nginx-light), `location = /ok { return 200 "ok"; }`
#   nginx-static  the same nginx, a static 1 KB file (/static/1k.html)
#   node          node's `http` module answering GET /users/:id with a
#                 small JSON body, one process
#   python        CPython's http.server: a BaseHTTPRequestHandler subclass
#                 (protocol_version HTTP/1.1, Content-Length: keep-alive)
#                 answering GET /users/:id with a small JSON body, served by
#                 ThreadingHTTPServer (one process; a thread a connection, so
#                 that wrk's 8 keep-alive connections are all served)
#
# nginx runs as packages run it: a master and ONE worker (master_process on;
# worker_processes 1), the worker as www-data (`user www-data;`) when the
# script runs as root; the worker is the process measured (the child of the
# master) and profshim hands its ring to www-data when it drops to it.
#
# Six configurations, interleaved round by round (each round starts at the
# next configuration, so that none is always first or last):
#
#   none    no preload (the floor)
#   off     LD_PRELOAD=libprofshim.so only (profiling off: pass-through)
#   rate0   ENABLE_PROFILING=true PROFILING_SAMPLE_RATE=0 (every request
#           timed and counted, none sampled)
#   rate0.1 ... PROFILING_SAMPLE_RATE=0.1 (the default; CPU clock, 99 Hz)
#   rate1   ... PROFILING_SAMPLE_RATE=1.0
#   wall0.1 ... PROFILING_SAMPLE_RATE=0.1 PROFILING_CLOCK=wall
#
# With profiling on, `profshim-collector record --pid SERVER` runs beside
# the server (its socket and profile in the temp dir) and its profile is
# checked: the endpoint is there with its calls counted, and at rate 1.0 it
# has stack samples.
#
# On a machine with two or more CPUs the server runs on the last CPU and wrk
# and the collector on the others (taskset). Each run starts a fresh server
# on 127.0.0.1 (a port from 19100-19199), warms up with 1 s of wrk, then
# measures DURATION seconds of `wrk -t1 -c8`. Per run: throughput (wrk's
# Requests/sec), the serving process's CPU per request ((utime+stime) from
# /proc/PID/stat, after minus before the measured run, divided by the
# requests wrk completed) and the collector's, the same way. Progress goes
# to stderr, a Markdown section to stdout.
#
#   scripts/bench/light.sh [--build DIR] [--rounds N] [--duration S]
#                          [--servers LIST] [--quick]
set -euo pipefail

ALL_SERVERS=(nginx-ok nginx-static node python)
CONFIGS=(none off rate0 rate0.1 rate1 wall0.1)

usage() {
  cat <<'EOF'
usage: light.sh [--build DIR] [--rounds N] [--duration S] [--servers LIST] [--quick]

Light-endpoint profiler overhead: nginx (return 200, a static 1 KB file;
master + one worker), node's http module and CPython's http.server under
`wrk -t1 -c8`, each with no preload, with libprofshim.so preloaded and
profiling off, and with profiling on at rate 0, 0.1 and 1.0 (CPU clock) and
0.1 (wall clock), a collector recording beside it; interleaved for N
rounds. Reports req/s, the serving process's CPU µs per request and the
collector's. Prints a Markdown section on stdout, progress on stderr.

options:
  --build DIR      profshim build directory (default: $BUILD, else
                   <repo>/build)
  --rounds N       rounds of every configuration per server (default:
                   $ROUNDS, else 5; 1 with --quick)
  --duration S     seconds of each measured wrk run (default: $DURATION,
                   else 4; 2 with --quick); each run also has 1 s of
                   warm-up
  --servers LIST   comma-separated, of nginx-ok, nginx-static, node, python
                   (default: all)
  --quick          1 round of 2 s (for trying the script, not for numbers);
                   --rounds and --duration still win
  -h, --help       this text

The default run (4 servers, 6 configurations, 5 rounds of 4 s) takes about
12 minutes.

needs: wrk (Debian package wrk), nginx (nginx-light) for nginx-*, node
       (nodejs) for node, /usr/bin/python3, taskset (util-linux) to pin
exit status: 0 done, 1 a run failed (a server did not start, wrk failed,
             the collector's profile lacks the endpoint, ...),
             2 bad arguments or something missing
EOF
}

die2() { echo "light: $*" >&2; exit 2; }
die() { echo "light: $*" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../../build}
rounds_arg=
duration_arg=
servers_arg=
quick=0
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --build) [ $# -ge 2 ] || die2 "--build needs a directory"; build=$2; shift 2 ;;
    --build=*) build=${1#*=}; shift ;;
    --rounds) [ $# -ge 2 ] || die2 "--rounds needs a number"; rounds_arg=$2; shift 2 ;;
    --rounds=*) rounds_arg=${1#*=}; shift ;;
    --duration) [ $# -ge 2 ] || die2 "--duration needs a number of seconds"; duration_arg=$2; shift 2 ;;
    --duration=*) duration_arg=${1#*=}; shift ;;
    --servers) [ $# -ge 2 ] || die2 "--servers needs a list (nginx-ok,nginx-static,node,python)"; servers_arg=$2; shift 2 ;;
    --servers=*) servers_arg=${1#*=}; shift ;;
    --quick) quick=1; shift ;;
    *) usage >&2; die2 "unknown argument: $1" ;;
  esac
done
if [ $quick = 1 ]; then
  rounds=${rounds_arg:-1}
  duration=${duration_arg:-2}
else
  rounds=${rounds_arg:-${ROUNDS:-5}}
  duration=${duration_arg:-${DURATION:-4}}
fi
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die2 "--rounds \"$rounds\" is not a positive integer"
[[ $duration =~ ^[1-9][0-9]*$ ]] || die2 "--duration \"$duration\" is not a positive whole number of seconds"

servers=()
if [ -z "$servers_arg" ]; then
  servers=("${ALL_SERVERS[@]}")
else
  IFS=, read -r -a _list <<<"$servers_arg"
  for s in "${_list[@]}"; do
    case " ${ALL_SERVERS[*]} " in
      *" $s "*) ;;
      *) die2 "--servers: unknown server \"$s\" (known: $(IFS=,; echo "${ALL_SERVERS[*]}"))" ;;
    esac
    case " ${servers[*]-} " in
      *" $s "*) die2 "--servers: \"$s\" named twice" ;;
    esac
    servers+=("$s")
  done
  [ ${#servers[@]} -gt 0 ] || die2 "--servers: empty list"
fi
uses() { case " ${servers[*]} " in *" $1"*) return 0 ;; esac; return 1; }

WRK=/usr/bin/wrk
NGINX=/usr/sbin/nginx
NODE=/usr/bin/node
PY=/usr/bin/python3
prog=light
# shellcheck source=scripts/bench/common.sh
. "$(dirname "$0")/common.sh"
[ -x "$WRK" ] || WRK=$(command -v wrk || true)
[ -n "$WRK" ] && [ -x "$WRK" ] || die2 "wrk not found; install the Debian package: apt-get install wrk"
[ -x "$PY" ] || die2 "$PY not found; install the Debian package: apt-get install python3"
if uses nginx; then
  [ -x "$NGINX" ] || NGINX=$(command -v nginx || true)
  [ -n "$NGINX" ] && [ -x "$NGINX" ] || die2 "nginx not found; install the Debian package: apt-get install nginx-light (or leave nginx-ok and nginx-static out of --servers)"
fi
if uses node; then
  [ -x "$NODE" ] || NODE=$(command -v node || true)
  [ -n "$NODE" ] && [ -x "$NODE" ] || die2 "node not found; install the Debian package: apt-get install nodejs (or leave node out of --servers)"
fi
[ -d "$build" ] || die2 "build directory $build not found; build first: meson setup $build && meson compile -C $build"
build=$(cd "$build" && pwd)
SHIM=$build/shim/libprofshim.so
COLLECTOR=$build/collector/profshim-collector
[ -f "$SHIM" ] || die2 "$SHIM not found; build first: meson compile -C $build"
[ -x "$COLLECTOR" ] || die2 "$COLLECTOR not found; build first: meson compile -C $build"

# The servers' environment is the configuration's alone: nothing of the
# caller's preload or profiling settings.
unset LD_PRELOAD ENABLE_PROFILING
for v in $(compgen -e | grep '^PROFILING_' || true); do unset "$v"; done

clk_tck=$(getconf CLK_TCK)
wrk_args=(-t1 -c8 "-d${duration}s")
ncpu=$(nproc)
server_pin=()
client_pin=()
if [ "$ncpu" -ge 2 ] && command -v taskset >/dev/null; then
  server_pin=(taskset -c "$((ncpu - 1))")
  client_pin=(taskset -c "0-$((ncpu - 2))")
fi

# nginx's workers as www-data, as packages run them, when we may.
ngx_user=
if uses nginx && [ "$(id -u)" -eq 0 ] && id -u www-data >/dev/null 2>&1; then
  ngx_user=www-data
fi

versions=()
uses nginx && versions+=("$("$NGINX" -v 2>&1 | sed -n 's|^nginx version: ||p')")
uses node && versions+=("node $("$NODE" --version)")
uses python && versions+=("CPython $("$PY" -c 'import platform; print(platform.python_version())')")

tmp=$(mktemp -d)
# nginx's www-data worker reads the static file under it.
chmod 755 "$tmp"
srv_pid=
col_pid=
ring_pids=()
# rm_rings PID...: remove what is left of these (exited) processes' rings;
# prints how many there were.
rm_rings() {
  local n=0 p f
  for p in "$@"; do
    for f in /dev/shm/profshim."$p".*; do
      [ -e "$f" ] || continue
      rm -f "$f" && n=$((n + 1))
    done
  done
  echo "$n"
}
cleanup() {
  # Only the processes this script started, by pid.
  if [ -n "$srv_pid" ]; then
    kill -KILL "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
    # nginx's worker, whose master was just killed, by its pid.
    local p
    for p in "${ring_pids[@]}"; do
      [ "$p" = "$srv_pid" ] || kill -KILL "$p" 2>/dev/null || true
    done
  fi
  if [ -n "$col_pid" ]; then
    gone "$col_pid" 2 || kill -KILL "$col_pid" 2>/dev/null || true
    wait "$col_pid" 2>/dev/null || true
  fi
  [ ${#ring_pids[@]} -eq 0 ] || rm_rings "${ring_pids[@]}" >/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# What the servers serve.
mkdir -p "$tmp/www/static"
"$PY" -c 'import sys; sys.stdout.write(("<p>profshim light endpoint</p>\n" * 40)[:1023] + "\n")' \
  >"$tmp/www/static/1k.html"
chmod 755 "$tmp/www" "$tmp/www/static"
chmod 644 "$tmp/www/static/1k.html"

cat >"$tmp/server.js" <<'EOF'
// GET /users/:id -> a small JSON body; one process, node's http module.
'use strict';
const http = require('http');
const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
  const m = /^\/users\/(\d+)(?:\?|$)/.exec(req.url);
  if (req.method === 'GET' && m) {
    const body = JSON.stringify({ id: Number(m[1]), name: 'user' + m[1], active: true });
    res.writeHead(200, { 'Content-Type': 'application/json',
                         'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': 10 });
    res.end('not found\n');
  }
});
server.keepAliveTimeout = 60000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
EOF

cat >"$tmp/server.py" <<'EOF'
"""GET /users/:id -> a small JSON body; one process, CPython's http.server
(a thread a connection, so that every keep-alive connection is served)."""
import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and body in one write (handle_one_request flushes after
    # do_GET), sent at once: with the default unbuffered writes and Nagle,
    # the body waits for the client's delayed ACK of the head (about
    # 40 ms a request).
    wbufsize = -1
    disable_nagle_algorithm = True

    def do_GET(self):
        parts = self.path.split("?", 1)[0].split("/")
        if len(parts) == 3 and parts[1] == "users" and parts[2].isdigit():
            body = json.dumps({"id": int(parts[2]), "name": "user" + parts[2],
                               "active": True}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
        else:
            body = b"not found\n"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
EOF
chmod 644 "$tmp/server.js" "$tmp/server.py"

# free_port: a free port of 19100-19199, the next after the last one used
# (a fresh port per run: none of the previous run's connections linger).
port_next=0
free_port() {
  local p
  p=$("$PY" - "$port_next" <<'PY'
import socket, sys
start = int(sys.argv[1])
for i in range(100):
    port = 19100 + (start + i) % 100
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    sys.exit(0)
sys.exit("no free port in 19100-19199")
PY
) || die2 "no free port in 19100-19199"
  port_next=$(( (p - 19100 + 1) % 100 ))
  echo "$p"
}

# write_nginx_conf DIR PORT
write_nginx_conf() {
  local dir=$1 port=$2 user_line=
  [ -n "$ngx_user" ] && user_line="user $ngx_user;"
  cat >"$dir/nginx.conf" <<EOF
# A master and one worker, as packages run nginx; the worker serves.
master_process on;
worker_processes 1;
$user_line
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    types { text/html html; }
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    sendfile on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:$port;
        root $tmp/www;
        location = /ok { return 200 "ok"; }
        location /static/ { }
    }
}
EOF
}





srv_fail() {
  local dir=$1 what=$2 why=$3
  echo "light: $what $why" >&2
  if [ -s "$dir/error.log" ]; then
    echo "light: nginx's error log:" >&2
    cat "$dir/error.log" >&2
  fi
  if [ -s "$dir/stderr" ]; then
    echo "light: the server's stderr:" >&2
    cat "$dir/stderr" >&2
  fi
  exit 1
}

results=$tmp/results.tsv
: >"$results"
rings_left=0
ring_owner_seen=
collector_notes=$tmp/collector-notes
: >"$collector_notes"
warn_notes=$tmp/warn-notes
: >"$warn_notes"

# run ROUND SERVER CONFIG
run() {
  local round=$1 server=$2 cfg=$3 dir port path endpoint
  dir=$tmp/run-$round-$server-$cfg
  mkdir -p "$dir"
  chmod 755 "$dir"
  port=$(free_port)
  case $server in
    nginx-ok) path=/ok; endpoint="GET /ok" ;;
    nginx-static) path=/static/1k.html; endpoint="GET /static/1k.html" ;;
    node|python) path=/users/42; endpoint="GET /users/:id" ;;
  esac

  local -a envs=() argv=()
  case $cfg in
    none) ;;
    off) envs=(LD_PRELOAD="$SHIM") ;;
    rate0) envs=(LD_PRELOAD="$SHIM" ENABLE_PROFILING=true PROFILING_SAMPLE_RATE=0) ;;
    rate0.1) envs=(LD_PRELOAD="$SHIM" ENABLE_PROFILING=true PROFILING_SAMPLE_RATE=0.1) ;;
    rate1) envs=(LD_PRELOAD="$SHIM" ENABLE_PROFILING=true PROFILING_SAMPLE_RATE=1.0) ;;
    wall0.1) envs=(LD_PRELOAD="$SHIM" ENABLE_PROFILING=true PROFILING_SAMPLE_RATE=0.1 PROFILING_CLOCK=wall) ;;
  esac
  local profiling=0
  case $cfg in rate*|wall*) profiling=1 ;; esac

  case $server in
    nginx-*)
      write_nginx_conf "$dir" "$port"
      argv=("$NGINX" -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf")
      ;;
    node) argv=("$NODE" "$tmp/server.js" "$port") ;;
    python) argv=("$PY" "$tmp/server.py" "$port") ;;
  esac

  "${server_pin[@]}" env "${envs[@]}" "${argv[@]}" >"$dir/stdout" 2>"$dir/stderr" </dev/null &
  srv_pid=$!
  ring_pids=("$srv_pid")
  local why
  if ! why=$(ready "$port" "$srv_pid" "$path"); then
    srv_fail "$dir" "$server ($cfg)" "does not serve $path on 127.0.0.1:$port: $why"
  fi

  # The process that serves: nginx's one worker (the master's child), else
  # the process started.
  local meas_pid=$srv_pid
  if [[ $server == nginx-* ]]; then
    local kids
    kids=$(<"/proc/$srv_pid/task/$srv_pid/children")
    read -r -a kids_a <<<"$kids"
    [ ${#kids_a[@]} -eq 1 ] || srv_fail "$dir" "$server ($cfg)" "has ${#kids_a[@]} children ($kids), not one worker"
    meas_pid=${kids_a[0]}
    ring_pids+=("$meas_pid")
    if [ -n "$ngx_user" ]; then
      local wuid
      wuid=$(awk '/^Uid:/ {print $3}' "/proc/$meas_pid/status")
      [ "$wuid" = "$(id -u "$ngx_user")" ] ||
        srv_fail "$dir" "$server ($cfg)" "worker $meas_pid runs as uid $wuid, not $ngx_user"
    fi
  fi

  if [ $profiling = 1 ]; then
    # The collector records this server and its children only (--pid):
    # without it, `record` attaches to every ring of this uid, those of
    # anyone else's profshim runs on the machine too. Attached before any
    # load: the ring holds what was written before, so nothing is missed.
    "${client_pin[@]}" "$COLLECTOR" record --pid "$srv_pid" --out "$dir/p.json" --socket "$dir/c.sock" \
      >"$dir/collector.out" 2>&1 &
    col_pid=$!
    for _ in $(seq 200); do
      [ -S "$dir/c.sock" ] && break
      kill -0 "$col_pid" 2>/dev/null || break
      sleep 0.05
    done
    if ! [ -S "$dir/c.sock" ]; then
      echo "light: profshim-collector did not start:" >&2
      cat "$dir/collector.out" >&2
      exit 1
    fi
  fi

  "${client_pin[@]}" "$WRK" -t1 -c8 -d1s "http://127.0.0.1:$port$path" \
    >"$dir/warmup.out" 2>&1 || { cat "$dir/warmup.out" >&2; die "wrk warm-up failed ($server, $cfg)"; }

  local before after col_before=0 col_after=0
  before=$(cpu_ticks "$meas_pid")
  [ -n "$col_pid" ] && col_before=$(cpu_ticks "$col_pid")
  "${client_pin[@]}" "$WRK" "${wrk_args[@]}" "http://127.0.0.1:$port$path" >"$dir/wrk.out" 2>&1 \
    || { cat "$dir/wrk.out" >&2; die "wrk failed ($server, $cfg)"; }
  after=$(cpu_ticks "$meas_pid")
  [ -n "$col_pid" ] && col_after=$(cpu_ticks "$col_pid")
  kill -0 "$meas_pid" 2>/dev/null || srv_fail "$dir" "$server ($cfg)" "exited during the run"

  # Who owns the worker's ring (profshim hands it to www-data at setuid).
  if [[ $server == nginx-* ]] && [ $profiling = 1 ] && [ -z "$ring_owner_seen" ]; then
    local f
    for f in /dev/shm/profshim."$meas_pid".*; do
      [ -e "$f" ] && ring_owner_seen=$(stat -c %U "$f") && break
    done
  fi

  local parsed requests rps wparsed wrequests
  parsed=$(parse_wrk "$dir/wrk.out") || die "round $round $server $cfg: bad wrk run"
  read -r requests rps <<<"$parsed"
  wparsed=$(parse_wrk "$dir/warmup.out") || die "round $round $server $cfg: bad wrk warm-up run"
  read -r wrequests _ <<<"$wparsed"

  case $server in
    nginx-*) stop "$srv_pid" nginx QUIT ;;
    *) stop "$srv_pid" "$server" TERM ;;
  esac
  if [[ $server == nginx-* ]]; then
    gone "$meas_pid" 5 || { kill -KILL "$meas_pid" 2>/dev/null || true; }
  fi
  if [ -n "$col_pid" ]; then
    # A --pid collector notices that the server's tree exited, drains its
    # rings to the last record, removes them, writes p.json and exits by
    # itself; SIGINT (same effect) if it has not within 10 s.
    if ! gone "$col_pid" 10; then
      echo "light: profshim-collector still running 10 s after the server exited; sending SIGINT" >&2
      stop "$col_pid" profshim-collector INT
    fi
    wait "$col_pid" 2>/dev/null || true
    col_pid=
  fi
  local left
  left=$(rm_rings "${ring_pids[@]}")
  rings_left=$((rings_left + left))
  srv_pid=
  ring_pids=()
  if grep -q '\[\(emerg\|alert\|crit\)\]' "$dir/error.log" 2>/dev/null; then
    srv_fail "$dir" "$server ($cfg)" "logged errors"
  fi
  if grep -q 'profshim' "$dir/stderr" 2>/dev/null; then
    echo "light: $server ($cfg) stderr: $(grep -m3 profshim "$dir/stderr" | tr '\n' ' ')" | tee -a "$warn_notes" >&2
  fi

  local extra=""
  if [ $profiling = 1 ]; then
    [ -s "$dir/p.json" ] || { cat "$dir/collector.out" >&2; die "profshim-collector wrote no $dir/p.json ($server, $cfg)"; }
    # What the collector said besides its usual lines: rings it skipped or
    # could not read, corrupt rings, errors.
    if grep -qi 'skipping\|not read\|corrupt\|error\|warning' "$dir/collector.out"; then
      grep -i 'skipping\|not read\|corrupt\|error\|warning' "$dir/collector.out" | head -5 |
        sed "s|^|$server $cfg round $round: |" >>"$collector_notes"
    fi
    local check
    check=$("$PY" - "$dir/p.json" "$endpoint" "$((requests + wrequests))" "$cfg" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
endpoint, completed, cfg = sys.argv[2], int(sys.argv[3]), sys.argv[4]
ep = p.get("data", {}).get(endpoint)
if ep is None:
    sys.exit(f"no endpoint {endpoint!r} in the profile; endpoints: {sorted(p.get('data', {}))}")
if ep.get("calls", 0) <= 0:
    sys.exit(f"endpoint {endpoint!r} has no calls")
samples = ep.get("samples", 0)
if cfg == "rate1" and samples <= 0:
    sys.exit(f"endpoint {endpoint!r} has {ep.get('calls')} calls but no stack samples at rate 1.0: "
             "profiling did not happen")
if cfg == "rate0" and samples > 0:
    print(f"light: {samples} samples at rate 0", file=sys.stderr)
d = p.get("dropped", {})
print(f"{ep['calls']} calls (wrk completed {completed}), {ep.get('sampled_calls', 0)} sampled, {samples} samples, "
      f"dropped {d.get('samples', 0)} samples/{d.get('events', 0)} events/{d.get('requests', 0)} requests")
PY
) || die "round $round $server $cfg: the collector's profile is not what it should be (see above)"
    extra=" (collector: $check)"
  fi

  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$cfg" "$round" "$rps" "$requests" \
    "$((after - before))" "$((col_after - col_before))" >>"$results"
  local us cus
  us=$("$PY" -c 'import sys; print(f"{int(sys.argv[1]) / int(sys.argv[3]) / int(sys.argv[2]) * 1e6:.2f}")' \
    "$((after - before))" "$requests" "$clk_tck")
  cus=$("$PY" -c 'import sys; print(f"{int(sys.argv[1]) / int(sys.argv[3]) / int(sys.argv[2]) * 1e6:.2f}")' \
    "$((col_after - col_before))" "$requests" "$clk_tck")
  printf 'light: round %s/%s %-12s %-7s %8.0f req/s %6s us/req, collector %s us/req%s\n' \
    "$round" "$rounds" "$server" "$cfg" "$rps" "$us" "$cus" "$extra" >&2
}

start_s=$(date +%s)
echo "light: ${versions[*]}; servers ${servers[*]}; wrk ${wrk_args[*]}; $rounds rounds of ${duration}s (+1 s warm-up) x ${#CONFIGS[@]} configurations" >&2
n=${#CONFIGS[@]}
for round in $(seq "$rounds"); do
  for server in "${servers[@]}"; do
    for i in $(seq 0 $((n - 1))); do
      run "$round" "$server" "${CONFIGS[$(( (i + round - 1) % n ))]}"
    done
  done
done
elapsed=$(( $(date +%s) - start_s ))
echo "light: done in $((elapsed / 60)) min $((elapsed % 60)) s" >&2
[ "$rings_left" -eq 0 ] || echo "light: removed $rings_left rings the collector had left in /dev/shm" >&2
if [ -s "$collector_notes" ]; then
  echo "light: the collector said:" >&2
  cat "$collector_notes" >&2
fi

"$PY" - "$results" "$clk_tck" "$rounds" "$duration" "$ncpu" "$elapsed" "$ngx_user" \
  "${ring_owner_seen:-}" "$rings_left" "$collector_notes" "${#server_pin[@]}" "$(IFS=';'; echo "${versions[*]}")" <<'PY'
import statistics, sys
(path, tck, rounds, dur, ncpu, elapsed, ngx_user, ring_owner, rings_left,
 notes, pinned, versions) = sys.argv[1:]
tck = int(tck)
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
by = {}
order = []
for server, cfg, rnd, rps, req, ticks, colticks in rows:
    if server not in order:
        order.append(server)
    d = by.setdefault(server, {}).setdefault(cfg, {"rps": [], "us": [], "col": []})
    d["rps"].append(float(rps))
    d["us"].append(int(ticks) / tck / int(req) * 1e6)
    d["col"].append(int(colticks) / tck / int(req) * 1e6)

med = statistics.median

def spread(xs, f):
    return f"{f(med(xs))} ({f(min(xs))}–{f(max(xs))})"

rate = lambda x: f"{x:,.0f}"
us = lambda x: f"{x:.2f}"

titles = {
    "nginx-ok": "nginx, `location = /ok { return 200 \"ok\"; }` (the worker)",
    "nginx-static": "nginx, a static 1 KB file, `/static/1k.html` (the worker)",
    "node": "node `http`, `GET /users/:id`, a small JSON body",
    "python": "CPython `http.server` (ThreadingHTTPServer), `GET /users/:id`, a small JSON body",
}
names = [("none", "no preload"), ("off", "preloaded, profiling off"),
         ("rate0", "profiling on, rate 0"), ("rate0.1", "rate 0.1, CPU clock (default)"),
         ("rate1", "rate 1.0, CPU clock"), ("wall0.1", "rate 0.1, wall clock")]

el = int(elapsed)
print("### Light endpoints: nginx, node and CPython under wrk")
print()
who = []
if any(s.startswith("nginx") for s in order):
    who.append("nginx as a master and one worker" +
               (f", the worker as {ngx_user} (the master as root)" if ngx_user
                else " of the same user (not run as root)"))
single = [n for s, n in (("node", "node"), ("python", "CPython")) if s in order]
if single:
    who.append(" and ".join(single) + " as one process")
print(f"{', '.join(versions.split(';'))}. {'; '.join(who)}. "
      f"`wrk -t1 -c8 -d{dur}s` over keep-alive on 127.0.0.1, {rounds} interleaved rounds of "
      f"{dur} s (+1 s warm-up, a fresh server per run), {ncpu} CPUs"
      + (" (the server pinned to the last, wrk and the collector to the others)" if pinned != "0" else "")
      + f"; CPU = the serving process's utime+stime from /proc/PID/stat over the measured run "
      f"({1000 / tck:g} ms ticks) divided by the requests wrk completed; with profiling on, "
      f"`profshim-collector record --pid` beside the server, its CPU counted the same way "
      f"(default checkpoint, 1 s). Run took {el // 60} min {el % 60} s.")
print()
for server in order:
    cfgs = by[server]
    floor_rps = med(cfgs["none"]["rps"]) if "none" in cfgs else None
    floor_us = med(cfgs["none"]["us"]) if "none" in cfgs else None
    print(f"#### {titles[server]}")
    print()
    print("| configuration | req/s median (min–max) | lost | worker CPU µs/request median (min–max) "
          "| added | collector CPU µs/request median |")
    print("|---|---|---|---|---|---|")
    for cfg, name in names:
        if cfg not in cfgs:
            continue
        d = cfgs[cfg]
        if cfg == "none" or floor_rps is None:
            lost = added = "—"
        else:
            lost = f"{(1 - med(d['rps']) / floor_rps) * 100:.1f}%"
            added = (f"{(med(d['us']) / floor_us - 1) * 100:.1f}% "
                     f"({(med(d['us']) - floor_us) * 1000:+,.0f} ns)")
        col = us(med(d["col"])) if cfg not in ("none", "off") else "—"
        print(f"| {name} | {spread(d['rps'], rate)} | {lost} | {spread(d['us'], us)} | {added} | {col} |")
    print()
extra = []
if ngx_user:
    extra.append(f"The nginx worker's ring was owned by {ring_owner or 'nobody seen'} "
                 f"(the worker runs as {ngx_user}; the collector runs as root).")
if int(rings_left):
    extra.append(f"{rings_left} rings were left in /dev/shm after their collector exited "
                 "and were removed by the script.")
try:
    nlines = [l.strip() for l in open(notes) if l.strip()]
except OSError:
    nlines = []
if nlines:
    extra.append(f"The collector printed {len(nlines)} warning or error lines (on stderr).")
if extra:
    print(" ".join(extra))
PY
