#!/usr/bin/env bash
# CPython's own regression tests for signals, EINTR handling (test_eintr
# floods blocking calls with signals), select/poll/epoll, sleeps, sockets,
# subprocesses and HTTP servers, run twice with Debian's interpreter: plainly, then with
# libprofshim.so preloaded in continuous mode on the wall clock at 1000 Hz
# (every thread of every Python process interrupted a thousand times a
# second) while a collector records them. Both runs must pass with the same
# numbers of tests run and skipped.
#
#   scripts/cpython-tests.sh [BUILD_DIR]
#
# Needs Debian's libpython3.11-testsuite (scripts/setup.sh installs it).
# PYTHONUNBUFFERED is unset: with it, CPython's unbuffered text stdout drops
# the rest of a write any signal interrupts (SIGALRM alone does it), which
# is CPython's behaviour, not the shim's. VSOCK tests are left out: they
# need a vsock port this kind of machine may already use.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-${BUILD_DIR:-build}}" && pwd)
py=$(readlink -f /usr/bin/python3)
tests=(test_signal test_eintr test_select test_poll test_epoll test_time
       test_socket test_subprocess test_httpservers)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unset PYTHONUNBUFFERED ENABLE_PROFILING LD_PRELOAD

summary() {  # the "Ran N tests" and skip counts of a log, for comparison
  grep -E "^(Ran [0-9]+ tests|OK|FAILED)" "$1" | sed 's/ in [0-9.]*s//' | sort | uniq -c
}

run() {  # run LOG [ENV...]: the modules, verbose, in $work
  local log=$1; shift
  (cd "$work" && env "$@" "$py" -m test "${tests[@]}" -i '*VSOCK*' \
     --timeout 600 -v) >"$log" 2>&1
}

echo "cpython-tests: plain run"
run "$work/plain.log" || { tail -40 "$work/plain.log"; echo "cpython-tests: the plain run failed: not profshim's doing"; exit 1; }

echo "cpython-tests: under profshim (continuous, wall clock, 1000 Hz)"
before=$(ls /dev/shm)
run "$work/shim.log" LD_PRELOAD="$build/shim/libprofshim.so" \
  ENABLE_PROFILING=true PROFILING_MODE=continuous PROFILING_CLOCK=wall \
  PROFILING_HZ=1000 &
pid=$!
"$build/collector/profshim-collector" record --pid "$pid" \
  --socket "$work/collector.sock" --out "$work/profile.json" \
  2>"$work/collector.log" &
col=$!
status=0
wait "$pid" || status=$?
wait "$col" || true
# Rings of processes that ended before the collector saw them.
for f in $(comm -13 <(echo "$before" | sort) <(ls /dev/shm | sort)); do
  case $f in profshim.*) p=${f#profshim.}; p=${p%%.*}
    [ -d "/proc/$p" ] || rm -f "/dev/shm/$f" ;; esac
done
if [ $status -ne 0 ]; then
  grep -E "^(FAIL|ERROR):" "$work/shim.log" | head -20
  tail -40 "$work/shim.log"
  echo "cpython-tests: FAILED under profshim"
  exit 1
fi
if ! diff <(summary "$work/plain.log") <(summary "$work/shim.log"); then
  echo "cpython-tests: results differ under profshim"
  exit 1
fi
grep -q '"(no request)"' "$work/profile.json" || {
  echo "cpython-tests: the collector recorded no samples"; exit 1; }
echo "cpython-tests: same results with and without profshim:"
summary "$work/shim.log"
echo "cpython-tests: $(grep -c '"pid"' "$work/profile.json") pid entries in the profile"
