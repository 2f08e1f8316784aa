#!/usr/bin/env bash
# hooks.sh — the cost of libprofshim's hooks in instructions, counted by
# valgrind --tool=callgrind: M keep-alive requests over one accepted
# connection (test/bench/bench_keepalive.c), served three times:
#   (a) without the shim,
#   (b) with the shim preloaded and profiling off (ENABLE_PROFILING unset),
#   (c) with profiling on at PROFILING_SAMPLE_RATE=0 (requests timed, no
#       stack sampled; no collector needed),
#   (d) with profiling on at PROFILING_SAMPLE_RATE=1 and PROFILING_HZ=1:
#       every request sampled on the CPU clock, at a rate that takes almost
#       no sample (valgrind runs the program 50 times slower, so 99 Hz
#       would be 50 times as many samples a request): what a sampled
#       request costs beyond an unsampled one.
# Only the server's serve_loop() is counted (--toggle-collect), not its
# start-up or the shim's constructor; the client runs natively. (a), (c)
# and (d) are counted again with the request a browser's fetch() sends (12
# header lines, 503 bytes) in place of the 38-byte one.
#
# Then nginx (Debian's /usr/sbin/nginx, one process, `return 200 "ok"`),
# with no preload, at rate 0 and at rate 1.0 (PROFILING_HZ=1): N requests
# over one keep-alive connection, counting only nginx's event loop
# (ngx_process_events_and_timers): the instructions a real server's
# lightest answer costs and what the shim adds to them. --no-nginx skips it.
#
# Goals: (b) adds at most 10 instructions per hooked call, (c) at most 400
# per request, (d) at most 450, for both requests. Progress goes to stderr,
# a Markdown section to stdout.
set -euo pipefail

prog=hooks.sh
build="$(dirname "$0")/../../build"
requests=20000
nginx=1
client_args=()

usage() {
	cat <<EOF
usage: scripts/bench/hooks.sh [--build DIR] [--requests M] [--no-nginx]

Counts the instructions libprofshim's hooks add to a server under
valgrind --tool=callgrind: M keep-alive requests over one accepted
connection, with no preload, with the shim preloaded and profiling off, and
with profiling on at sample rate 0. Prints a Markdown section on stdout.

  --build DIR     meson build directory (default: $build)
  --requests M    requests over the connection (default: $requests)
  --no-nginx      leave out the nginx rows
  --help          this text
EOF
}

die() {
	echo "$prog: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	-h | --help) usage; exit 0 ;;
	--build) [ $# -ge 2 ] || die "--build needs a directory"; build=$2; shift 2 ;;
	--build=*) build=${1#*=}; shift ;;
	--requests) [ $# -ge 2 ] || die "--requests needs a number"; requests=$2; shift 2 ;;
	--requests=*) requests=${1#*=}; shift ;;
	--no-nginx) nginx=0; shift ;;
	*) die "unknown argument: $1 (see --help)" ;;
	esac
done
[[ $requests =~ ^[1-9][0-9]{0,8}$ ]] || die "--requests: not a positive number: $requests"

if ! command -v valgrind >/dev/null || ! command -v callgrind_annotate >/dev/null; then
	echo "$prog: valgrind is not installed (Debian package: valgrind)" >&2
	exit 2
fi

[ -d "$build" ] || die "no build directory: $build"
build=$(cd "$build" && pwd)
bench=$build/test/bench_keepalive
shim=$build/shim/libprofshim.so
[ -x "$bench" ] || die "$bench not found; build it: meson compile -C $build"
[ -f "$shim" ] || die "$shim not found; build it: meson compile -C $build"

tmp=$(mktemp -d)
server_pid=
started=()

cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	# Rings made by the servers this script started (profiling on).
	for pid in "${started[@]}"; do
		rm -f /dev/shm/profshim."$pid".*
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# The environment every run starts from: no preload, no profiling settings.
base_env=(env -u LD_PRELOAD -u ENABLE_PROFILING)
for v in $(compgen -e); do
	case $v in PROFILING_*) base_env+=(-u "$v") ;; esac
done

# run NAME [VAR=VALUE...]: serve $requests requests under callgrind with the
# given environment; sets ir, calls and pid.
run() {
	local name=$1 port= i
	shift
	local out=$tmp/$name.out log=$tmp/$name.log cg=$tmp/$name.cg

	echo "$prog: ($name) $requests requests under callgrind..." >&2
	# Valgrind hands its environment, LD_PRELOAD included, to the program
	# it runs (after its own preloads).
	"${base_env[@]}" "$@" valgrind --tool=callgrind \
		--toggle-collect=serve_loop --callgrind-out-file="$cg" \
		"$bench" server "$requests" >"$out" 2>"$log" &
	server_pid=$!
	pid=$server_pid
	started+=("$pid")
	for ((i = 0; i < 1200; i++)); do
		port=$(head -n 1 "$out" 2>/dev/null || true)
		[ -n "$port" ] && break
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ -z "$port" ]; then
		cat "$log" >&2
		die "($name) the server did not start"
	fi
	"${base_env[@]}" "$bench" client "$port" "$requests" "${client_args[@]}" ||
		die "($name) the client failed"
	if ! wait "$server_pid"; then
		server_pid=
		cat "$log" >&2
		die "($name) the server failed"
	fi
	server_pid=
	calls=$(sed -n 's/^calls=\([0-9]*\) requests=.*/\1/p' "$out")
	[ -n "$calls" ] || die "($name) the server printed no call count"
	ir=$(awk '$1 == "summary:" { print $2; exit }' "$cg")
	[ -n "$ir" ] || ir=$(awk '$1 == "totals:" { print $2; exit }' "$cg")
	[ -n "$ir" ] || die "($name) no summary or totals line in $cg"
	echo "$prog: ($name) Ir=$ir hooked calls=$calls" >&2
}

# The shim's interposed recv ran in the counted region.
shim_ran() {
	callgrind_annotate --inclusive=yes --threshold=100 "$tmp/$1.cg" \
		>"$tmp/$1.annotate"
	grep -q ':recv \[.*libprofshim\.so\]' "$tmp/$1.annotate"
}

# The shim timed requests in the counted region: it made its ring and fed
# its HTTP delimiter. (Checked in callgrind's output rather than by looking
# for /dev/shm/profshim.<pid>.*: other programs remove the rings of exited
# processes.)
profiling_ran() {
	grep -q ':ring_create \[.*libprofshim\.so\]' "$tmp/$1.annotate" &&
		grep -q ':http_req_feed \[.*libprofshim\.so\]' "$tmp/$1.annotate"
}

run a
ir_a=$ir calls_a=$calls
if shim_ran a; then die "(a) the shim ran without being preloaded"; fi

run b LD_PRELOAD="$shim"
ir_b=$ir calls_b=$calls
shim_ran b || die "(b) the shim's recv did not run: it was not preloaded"
if grep -q ':http_req_feed \[' "$tmp/b.annotate"; then
	die "(b) profiling was on (the shim parsed requests)"
fi

run c LD_PRELOAD="$shim" ENABLE_PROFILING=true PROFILING_SAMPLE_RATE=0
ir_c=$ir calls_c=$calls
shim_ran c || die "(c) the shim's recv did not run: it was not preloaded"
profiling_ran c || die "(c) profiling was not on (no ring made, no request parsed)"

run d LD_PRELOAD="$shim" ENABLE_PROFILING=true PROFILING_SAMPLE_RATE=1 PROFILING_HZ=1
ir_d=$ir calls_d=$calls

client_args=(browser)
run a12
ir_a12=$ir
run c12 LD_PRELOAD="$shim" ENABLE_PROFILING=true PROFILING_SAMPLE_RATE=0
ir_c12=$ir calls_c12=$calls
shim_ran c12 || die "(c12) the shim's recv did not run: it was not preloaded"
profiling_ran c12 || die "(c12) profiling was not on (no ring made, no request parsed)"
run d12 LD_PRELOAD="$shim" ENABLE_PROFILING=true PROFILING_SAMPLE_RATE=1 PROFILING_HZ=1
ir_d12=$ir calls_d12=$calls
client_args=()

# nginx_run NAME [VAR=VALUE...]: nginx under callgrind with the given
# environment, serving nginx_requests requests over one connection; sets ir.
nginx_requests=3000
nginx_run() {
	local name=$1 port
	shift
	local dir=$tmp/nginx-$name cg=$tmp/nginx-$name.cg
	mkdir -p "$dir"
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cat >"$dir/nginx.conf" <<NGINX
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 64; }
http {
	access_log off;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$port;
		location = /ok { return 200 "ok"; }
	}
}
NGINX
	echo "$prog: (nginx $name) $nginx_requests requests under callgrind..." >&2
	"${base_env[@]}" "$@" valgrind --tool=callgrind \
		--toggle-collect=ngx_process_events_and_timers \
		--callgrind-out-file="$cg" /usr/sbin/nginx -c "$dir/nginx.conf" \
		-p "$dir" 2>"$dir/valgrind.log" &
	server_pid=$!
	started+=("$server_pid")
	python3 - "$port" "$nginx_requests" <<'CLIENT' || die "(nginx $name) the client failed"
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(600):
    try:
        s = socket.create_connection(("127.0.0.1", port))
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("nginx did not start")
req = b"GET /ok HTTP/1.1\r\nHost: localhost\r\nUser-Agent: hooks.sh\r\n\r\n"
for _ in range(n):
    s.sendall(req)
    buf = b""
    while not buf.endswith(b"\r\n\r\nok"):
        got = s.recv(4096)
        if not got:
            sys.exit("nginx closed the connection")
        buf += got
s.close()
CLIENT
	kill "$server_pid"
	wait "$server_pid" 2>/dev/null || true
	server_pid=
	ir=$(awk '$1 == "summary:" { print $2; exit }' "$cg")
	[ -n "$ir" ] || ir=$(awk '$1 == "totals:" { print $2; exit }' "$cg")
	[ -n "$ir" ] || die "(nginx $name) no summary or totals line in $cg"
	echo "$prog: (nginx $name) Ir=$ir" >&2
	callgrind_annotate --inclusive=yes --threshold=100 "$cg" >"$cg.annotate"
}

# nginx_parsed NAME: the shim fed its HTTP delimiter in that nginx run.
nginx_parsed() {
	grep -q ':http_req_feed \[.*libprofshim\.so\]' "$tmp/nginx-$1.cg.annotate"
}

nginx_rows=
if [ "$nginx" = 1 ]; then
	[ -x /usr/sbin/nginx ] ||
		die "/usr/sbin/nginx is not installed (Debian package nginx-light); or pass --no-nginx"
	nginx_run none
	n_a=$ir
	if nginx_parsed none; then die "(nginx none) the shim ran without being preloaded"; fi
	nginx_run rate0 LD_PRELOAD="$shim" ENABLE_PROFILING=true PROFILING_SAMPLE_RATE=0
	n_c=$ir
	nginx_parsed rate0 || die "(nginx rate0) profiling was not on (no request parsed)"
	nginx_run rate1 LD_PRELOAD="$shim" ENABLE_PROFILING=true PROFILING_SAMPLE_RATE=1 PROFILING_HZ=1
	n_d=$ir
	nginx_parsed rate1 || die "(nginx rate1) profiling was not on (no request parsed)"
	nginx_rows=$(awk -v m="$nginx_requests" -v a="$n_a" -v c="$n_c" -v d="$n_d" 'BEGIN {
		printf "\nnginx (`return 200 \"ok\"`, one process, %d keep-alive requests, its event loop counted):\n\n", m
		print "| configuration | instructions per request | added per request | added |"
		print "|---|---|---|---|"
		printf "| no preload | %.1f | — | — |\n", a / m
		printf "| profiling on, rate 0 | %.1f | %.1f | %.1f%% |\n", c / m, (c - a) / m, 100 * (c - a) / a
		printf "| profiling on, rate 1.0 (PROFILING_HZ=1) | %.1f | %.1f | %.1f%% |\n", d / m, (d - a) / m, 100 * (d - a) / a
	}')
fi

# Shim functions of (c): the top 5 by inclusive instructions, then the top
# 5 by their own, per request, as "name<TAB>inclusive<TAB>self" lines.
shim_top() {
	{
		grep 'libprofshim\.so\]' "$tmp/c.annotate" | sed 's/^/I /'
		callgrind_annotate --threshold=100 "$tmp/c.cg" >"$tmp/c.self"
		grep 'libprofshim\.so\]' "$tmp/c.self" | sed 's/^/S /'
	} | awk -v m="$requests" -v by="$1" '
		{
			kind = $1; n = $2; gsub(/,/, "", n)
			fn = $0; sub(/^. +[0-9,]+ +\([^)]*\) +/, "", fn)
			sub(/ \[.*$/, "", fn); sub(/^.*:/, "", fn)
			if (kind == "I") {
				if (!(fn in inc)) { inc[fn] = n; ni++; byinc[ni] = fn }
			} else if (!(fn in self)) {
				self[fn] = n; ns++; byself[ns] = fn
			}
		}
		END {
			for (i = 1; i <= 5; i++) {
				fn = by == "inclusive" ? byinc[i] : byself[i]
				if (fn != "")
					printf "%s\t%.1f\t%.1f\n", fn, inc[fn] / m, self[fn] / m
			}
		}'
}
top_inc=$(shim_top inclusive)
top_self=$(shim_top self)
for by in inclusive self; do
	echo "$prog: (c) top 5 shim functions by $by instructions, per request (inclusive, self):" >&2
	if [ $by = inclusive ]; then t=$top_inc; else t=$top_self; fi
	printf '%s\n' "$t" | awk -F'\t' '{ printf "  %-28s %10s %10s\n", $1, $2, $3 }' >&2
done

awk -v m="$requests" -v a="$ir_a" -v b="$ir_b" -v c="$ir_c" -v d="$ir_d" \
    -v a12="$ir_a12" -v c12="$ir_c12" -v d12="$ir_d12" \
    -v cc12="$calls_c12" -v cd12="$calls_d12" \
    -v ca="$calls_a" -v cb="$calls_b" -v cc="$calls_c" -v cd="$calls_d" \
    -v top_inc="$top_inc" -v top_self="$top_self" '
function table(top, what,    n, i, lines, f) {
	printf "\nTop 5 shim functions by %s instructions, profiling on at rate 0 (inclusive counts include what they call, libc too):\n\n", what
	print "| shim function | inclusive per request | self per request |"
	print "|---|---|---|"
	n = split(top, lines, "\n")
	for (i = 1; i <= n; i++) {
		split(lines[i], f, "\t")
		printf "| `%s` | %s | %s |\n", f[1], f[2], f[3]
	}
}
BEGIN {
	print "### Hook cost (callgrind, instructions)"
	printf "%d keep-alive requests over one accepted connection, %.2f hooked calls per request (accept, recv, send, close; %d in all).\n\n", m, ca / m, ca
	print "| configuration | instructions per request | added per request | added per hooked call | goal |"
	print "|---|---|---|---|---|"
	printf "| no preload | %.1f | — | — | |\n", a / m
	offc = (b - a) / cb; onr = (c - a) / m
	printf "| preloaded, profiling off | %.1f | %.1f | %.2f | ≤ 10 per hooked call |\n", b / m, (b - a) / m, offc
	printf "| profiling on, rate 0 | %.1f | %.1f | %.2f | ≤ 400 per request |\n", c / m, onr, (c - a) / cc
	ond = (d - a) / m
	printf "| profiling on, rate 1.0 (PROFILING_HZ=1) | %.1f | %.1f | %.2f | ≤ 450 per request |\n", d / m, ond, (d - a) / cd
	onr12 = (c12 - a12) / m; ond12 = (d12 - a12) / m
	printf "| browser request (12 header lines), no preload | %.1f | — | — | |\n", a12 / m
	printf "| browser request, profiling on, rate 0 | %.1f | %.1f | %.2f | ≤ 400 per request |\n", c12 / m, onr12, (c12 - a12) / cc12
	printf "| browser request, profiling on, rate 1.0 (PROFILING_HZ=1) | %.1f | %.1f | %.2f | ≤ 450 per request |\n", d12 / m, ond12, (d12 - a12) / cd12
	printf "\nProfiling off: %.2f per hooked call, goal %s. Profiling on at rate 0: %.1f per request, goal %s; at rate 1.0: %.1f, goal %s. With the browser request: %.1f at rate 0, goal %s; %.1f at rate 1.0, goal %s.\n",
	       offc, offc <= 10 ? "met" : "NOT met", onr, onr <= 400 ? "met" : "NOT met",
	       ond, ond <= 450 ? "met" : "NOT met", onr12, onr12 <= 400 ? "met" : "NOT met",
	       ond12, ond12 <= 450 ? "met" : "NOT met"
	table(top_inc, "inclusive")
	table(top_self, "their own (self)")
}'
printf '%s\n' "$nginx_rows"
