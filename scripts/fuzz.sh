#!/bin/sh
# scripts/fuzz.sh [SECONDS_PER_TARGET] — build the libFuzzer targets of
# test/fuzz, replay their regression inputs and corpora, then fuzz each one
# for SECONDS_PER_TARGET seconds (default 20) on a copy of its corpus (the
# committed corpus is never grown here).
#
# Needs clang-14 and libclang-rt-14-dev (libFuzzer and the sanitizer
# runtimes) and libjansson-dev; fails, never skips, when one is missing.
# FUZZ_OUT=DIR builds into DIR and keeps it; otherwise a temporary directory
# is used and removed unless something failed. Exits non-zero when any input
# crashes, leaks, hangs or breaks an invariant, naming the input file.
set -eu

SECONDS_PER_TARGET=${1:-20}
case $SECONDS_PER_TARGET in
''|*[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CC=clang-14
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -I$ROOT/shim -I$ROOT/collector"
# Per input: a hang is anything over 10 s; leaks are reported.
RUN_FLAGS="-timeout=10 -detect_leaks=1"
TARGETS="http fcgi env ring profile perfmap"

die() {
	echo "fuzz.sh: $*" >&2
	exit 1
}

# The sources each target links, besides test/fuzz/fuzz_<name>.c.
sources() {
	case $1 in
	http) echo "shim/http_msg.c shim/http_req.c shim/http_resp.c shim/http_template.c" ;;
	fcgi) echo "shim/fcgi.c shim/http_template.c" ;;
	env) echo "shim/env.c" ;;
	ring) echo "collector/ingest/reader.c shim/ring.c shim/libc.c" ;;
	profile) echo "collector/model/profile.c collector/util/control.c collector/util/table.c" ;;
	perfmap) echo "collector/symbols/perfmap.c collector/symbols/strpool.c collector/util/table.c" ;;
	esac
}

libs() {
	case $1 in
	env) echo "-lm" ;;
	profile) pkg-config --libs jansson ;;
	esac
}

command -v $CC >/dev/null 2>&1 ||
	die "$CC not found: install the Debian packages clang-14 and libclang-rt-14-dev"
command -v pkg-config >/dev/null 2>&1 ||
	die "pkg-config not found: install pkg-config"
pkg-config --exists jansson 2>/dev/null ||
	die "jansson not found by pkg-config: install libjansson-dev"

if [ -n "${FUZZ_OUT:-}" ]; then
	OUT=$FUZZ_OUT
	KEEP=1
	mkdir -p "$OUT"
else
	OUT=$(mktemp -d "${TMPDIR:-/tmp}/profshim-fuzz.XXXXXX")
	KEEP=0
fi
OUT=$(cd "$OUT" && pwd)
FAILED=0
cleanup() {
	if [ "$KEEP" = 0 ] && [ "$FAILED" = 0 ]; then
		rm -rf "$OUT"
	else
		echo "fuzz.sh: outputs kept in $OUT" >&2
	fi
}
trap cleanup EXIT

# libFuzzer and the sanitizer runtimes come with libclang-rt-14-dev: a
# missing runtime shows up as a link error of the smallest target.
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ return 0; }\n' >"$OUT/probe.c"
$CC -fsanitize=fuzzer,address,undefined "$OUT/probe.c" -o "$OUT/probe" \
	>"$OUT/probe.log" 2>&1 || {
	FAILED=1
	cat "$OUT/probe.log" >&2
	die "$CC cannot link a libFuzzer target: install libclang-rt-14-dev"
}

# Build every target first: a target that does not build is a failure.
for t in $TARGETS; do
	srcs=""
	for s in $(sources $t); do
		srcs="$srcs $ROOT/$s"
	done
	# shellcheck disable=SC2046
	$CC $CFLAGS $srcs "$ROOT/test/fuzz/fuzz_$t.c" $(libs $t) \
		-o "$OUT/fuzz_$t" >"$OUT/build_$t.log" 2>&1 || {
		FAILED=1
		cat "$OUT/build_$t.log" >&2
		die "fuzz_$t does not build"
	}
done

# Replays the given input files; on failure, finds and names the one(s) that
# fail (a leak is only reported at exit, so one process per input then).
replay() {
	t=$1
	shift
	[ $# -gt 0 ] || return 0
	# The artifact prefix keeps libFuzzer from writing crash files into
	# the current directory.
	if "$OUT/fuzz_$t" $RUN_FLAGS -artifact_prefix="$OUT/replay-" "$@" \
		>"$OUT/replay_$t.log" 2>&1; then
		return 0
	fi
	for f in "$@"; do
		if ! "$OUT/fuzz_$t" $RUN_FLAGS -artifact_prefix="$OUT/replay-" \
			"$f" >"$OUT/replay_one.log" 2>&1; then
			grep -a -E 'invariant broken|ERROR: |runtime error|SUMMARY' \
				"$OUT/replay_one.log" | head -3 >&2
			echo "fuzz.sh: fuzz_$t fails on $f" >&2
		fi
	done
	return 1
}

for t in $TARGETS; do
	set --
	for d in "$ROOT/test/fuzz/regress_$t" "$ROOT/test/fuzz/corpus_$t"; do
		[ -d "$d" ] || continue
		for f in "$d"/*; do
			[ -f "$f" ] && set -- "$@" "$f"
		done
	done
	[ $# -gt 0 ] || die "fuzz_$t has neither regression inputs nor a corpus"
	if replay $t "$@"; then
		echo "fuzz_$t: replayed $# inputs (regressions and corpus): ok"
	else
		FAILED=1
	fi
done
[ "$FAILED" = 0 ] || die "replay failed (see above); not fuzzing"

for t in $TARGETS; do
	work="$OUT/corpus_$t"
	rm -rf "$work"
	mkdir -p "$work" "$OUT/crashes_$t"
	cp "$ROOT/test/fuzz/corpus_$t"/* "$work"/
	before=$(ls "$work" | wc -l)
	log="$OUT/fuzz_$t.log"
	if "$OUT/fuzz_$t" $RUN_FLAGS -max_total_time="$SECONDS_PER_TARGET" \
		-print_final_stats=1 -artifact_prefix="$OUT/crashes_$t/" \
		"$work" >"$log" 2>&1; then
		status=ok
	else
		status=FAILED
		FAILED=1
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	if [ -z "$execs" ]; then
		# No final statistics after a crash: the last status line.
		execs=$(grep -a -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
		rate=$(grep -a -o 'exec/s: [0-9]*' "$log" | tail -1 | sed 's/exec\/s: //')
	fi
	after=$(ls "$work" | wc -l)
	echo "fuzz_$t: ${execs:-0} execs, ${rate:-0} exec/s (${SECONDS_PER_TARGET} s budget), corpus $before -> $after inputs: $status"
	if [ "$status" = FAILED ]; then
		grep -a -E 'invariant broken|ERROR: |runtime error|SUMMARY' "$log" |
			head -3 >&2
		for f in "$OUT/crashes_$t"/*; do
			[ -f "$f" ] && echo "fuzz.sh: fuzz_$t: failing input $f (log $log)" >&2
		done
	fi
done

[ "$FAILED" = 0 ] || die "fuzzing found failures (inputs above)"
echo "fuzz.sh: all targets ok"
