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
# start-up or the shim's constructor; the client runs natively.
#
# Goals: (b) adds at most 10 instructions per hooked call, (c) at most 400
# per request, (d) at most 450. Progress goes to stderr, a Markdown section to stdout.
set -euo pipefail

prog=hooks.sh
build="$(dirname "$0")/../../build"
requests=20000

usage() {
	cat <<EOF
usage: scripts/bench/hooks.sh [--build DIR] [--requests M]

Counts the instructions libprofshim's hooks add to a server under
valgrind --tool=callgrind: M keep-alive requests over one accepted
connection, with no preload, with the shim preloaded and profiling off, and
with profiling on at sample rate 0. Prints a Markdown section on stdout.

  --build DIR     meson build directory (default: $build)
  --requests M    requests over the connection (default: $requests)
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
	"${base_env[@]}" "$bench" client "$port" "$requests" ||
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
	printf "\nProfiling off: %.2f per hooked call, goal %s. Profiling on at rate 0: %.1f per request, goal %s; at rate 1.0: %.1f, goal %s.\n",
	       offc, offc <= 10 ? "met" : "NOT met", onr, onr <= 400 ? "met" : "NOT met",
	       ond, ond <= 450 ? "met" : "NOT met"
	table(top_inc, "inclusive")
	table(top_self, "their own (self)")
}'
