#!/usr/bin/env bash
# CPython's own regression tests for signals, EINTR handling (test_eintr
# floods blocking calls with signals), select/poll/epoll/selectors, sleeps,
# sockets, subprocesses (asyncio's too), threads and HTTP servers, run twice
# with Debian's interpreter: plainly, then with libprofshim.so preloaded in
# continuous mode on the wall clock at 1000 Hz (every thread of every Python
# process interrupted a thousand times a second) while a collector records
# them. Both runs must pass with the same numbers of tests run and skipped.
#
#   scripts/cpython-tests.sh [--signal-once] [--jobs J] [BUILD_DIR]
#   scripts/cpython-tests.sh --repeat-signal N [--pairs P] [BUILD_DIR]
#
# Both runs have PYTHONUNBUFFERED=1, as Python's container images set it:
# CPython's unbuffered stdout writes each print() with one write(), and
# what a signal cuts short of it is lost, so a program run that way sees
# every interruption of its writes (test_subprocess's
# test_communicate_pipe_buf sends 4 MB through a child's stdout).
#
# --repeat-signal N: test_signal N times plainly and N times under the shim,
# with a CPU-burning process per core beside them (nproc busy loops), the
# runs of a pair (one plain, one under the shim) side by side so that both
# see the same load, P pairs at a time (default 1). It fails when a test
# fails under the shim in any run and in no plain run; the table lists every
# test that failed in either. Each run leaves out
# SiginterruptTest.test_siginterrupt_off, which waits 30 s for a timeout by
# design (SHORT_TIMEOUT: the read must not be interrupted) and runs once in
# each run of the first form.
#
# --jobs J: the first form runs J test modules at a time (regrtest -j),
# each in a process of its own, plainly and under the shim alike.
#
# --signal-once: the first form runs only test_siginterrupt_off of
# test_signal, for a suite that runs the rest of it with --repeat-signal
# (test/integration runs both forms; this saves it a minute and a half).
#
# Needs Debian's libpython3.11-testsuite (scripts/setup.sh installs it).
# VSOCK tests are left out: they need a vsock port this kind of machine may
# already use.
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=0
pairs=1
signal_once=0
jobs=1
jopt=()  # regrtest's -j, for the first form only
while [ $# -gt 0 ]; do
  case $1 in
    --repeat-signal) repeat=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --signal-once) signal_once=1; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    *) break ;;
  esac
done
[[ $jobs =~ ^[1-9][0-9]?$ ]] || { echo "cpython-tests: --jobs \"$jobs\" is not a number from 1 to 99" >&2; exit 2; }
build=$(cd "${1:-${BUILD_DIR:-build}}" && pwd)
py=$(readlink -f /usr/bin/python3)
tests=(test_signal test_eintr test_select test_poll test_epoll test_time
       test_socket test_subprocess test_httpservers test_selectors
       test_asyncio.test_subprocess test_threading)
shim_env=(LD_PRELOAD="$build/shim/libprofshim.so" ENABLE_PROFILING=true
          PROFILING_MODE=continuous PROFILING_CLOCK=wall PROFILING_HZ=1000)
work=$(mktemp -d)
burners=()
cleanup() {
  for b in "${burners[@]}"; do kill "$b" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
unset ENABLE_PROFILING LD_PRELOAD
export PYTHONUNBUFFERED=1

summary() {  # the "Ran N tests" and skip counts of a log, for comparison
  grep -E "^(Ran [0-9]+ tests|OK|FAILED)" "$1" | sed 's/ in [0-9.]*s//' | sort | uniq -c
}

run() {  # run LOG [ENV...] -- MODULES...: verbose, in $work. SIGINT goes
         # back to SIG_DFL first: a shell without job control starts its
         # background commands with it ignored, and test_signal raises it.
  local log=$1; shift
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  (cd "$work" && "$py" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' env "${envs[@]}" "$py" -m test "$@" \
     -i '*VSOCK*' --timeout 600 "${jopt[@]}" -v) >"$log" 2>&1
}

drop_rings() {  # rings of processes that ended before a collector saw them
  local before=$1 f p
  for f in $(comm -13 <(echo "$before" | sort) <(ls /dev/shm | sort)); do
    case $f in profshim.*) p=${f#profshim.}; p=${p%%.*}
      [ -d "/proc/$p" ] || rm -f "/dev/shm/$f" ;; esac
  done
}

shim_run() {  # shim_run NAME MODULES...: under the shim, with a collector
  local name=$1 pid col status=0; shift
  run "$work/$name.log" "${shim_env[@]}" -- "$@" &
  pid=$!
  "$build/collector/profshim-collector" record --pid "$pid" \
    --socket "$work/$name.sock" --out "$work/$name.json" \
    2>"$work/$name.collector.log" &
  col=$!
  wait "$pid" || status=$?
  wait "$col" || true
  return $status
}

failures() {  # the ids of the tests a log reports failed, one a line; a run
              # that ended without reporting any gets "(run failed)"
  local log=$1 rc=$2 ids
  ids=$(sed -nE 's/^(FAIL|ERROR): [^ ]+ \(([^)]+)\).*/\2/p' "$log" | sort -u)
  if [ -n "$ids" ]; then echo "$ids"
  elif [ "$rc" -ne 0 ] || ! grep -qE "^Ran [0-9]+ tests" "$log"; then
    echo "(run failed)"
  fi
}

repeat_signal() {
  local n=$1 i j k start=$SECONDS before jobs_ line
  for i in $(seq "$(nproc)"); do
    "$py" -c 'while 1: pass' &
    burners+=($!)
  done
  echo "cpython-tests: test_signal $n times plainly and $n times under" \
       "profshim, $pairs pair(s) at a time, ${#burners[@]} CPU burners beside"
  : >"$work/fail.plain"; : >"$work/fail.shim"
  for ((i = 1; i <= n; i += pairs)); do
    before=$(ls /dev/shm)
    jobs_=()
    for ((j = i; j < i + pairs && j <= n; j++)); do
      ( rc=0; run "$work/plain.$j.log" -- test_signal \
          -i test_siginterrupt_off || rc=$?; echo $rc >"$work/plain.$j.rc" ) &
      jobs_+=($!)
      ( rc=0; shim_run "shim.$j" test_signal -i test_siginterrupt_off \
          || rc=$?; echo $rc >"$work/shim.$j.rc" ) &
      jobs_+=($!)
    done
    wait "${jobs_[@]}"
    drop_rings "$before"
    for ((j = i; j < i + pairs && j <= n; j++)); do
      line="cpython-tests: run $j ($((SECONDS - start)) s):"
      for k in plain shim; do
        failures "$work/$k.$j.log" "$(cat "$work/$k.$j.rc")" >"$work/f"
        sed "s/^/$j /" "$work/f" >>"$work/fail.$k"
        line+=" $k $(grep -c . "$work/f" || true) failed $(paste -sd' ' "$work/f")"
      done
      echo "$line"
    done
  done
  "$py" - "$work" "$n" <<'EOF'
import collections, sys
work, n = sys.argv[1], int(sys.argv[2])
count = {}
for kind in ("plain", "shim"):
    c = collections.Counter()
    for line in open(f"{work}/fail.{kind}"):
        run, test = line.rstrip("\n").split(" ", 1)
        c[test] += 1
    count[kind] = c
tests = sorted(set(count["plain"]) | set(count["shim"]))
print(f"{'test':70} {'plain':>6} {'shim':>6}   (runs failed, of {n})")
for t in tests:
    print(f"{t:70} {count['plain'][t]:6} {count['shim'][t]:6}")
if not tests:
    print("(none failed)")
only = [t for t in tests if count["shim"][t] and not count["plain"][t]]
for t in only:
    print(f"cpython-tests: {t} failed under profshim only")
sys.exit(1 if only else 0)
EOF
}

if [ "$repeat" -gt 0 ]; then
  status=0
  repeat_signal "$repeat" || status=$?
  if [ $status -ne 0 ]; then
    for ((j = 1; j <= repeat; j++)); do
      [ "$(cat "$work/shim.$j.rc")" != 0 ] || continue
      echo "== run $j under profshim"
      if grep -qE "^(FAIL|ERROR):" "$work/shim.$j.log"; then
        grep -E "^(FAIL|ERROR):" -A 25 "$work/shim.$j.log" | head -80
      else
        tail -30 "$work/shim.$j.log"
      fi
    done
    echo "cpython-tests: test_signal failed under profshim where it never failed plainly"
    exit 1
  fi
  echo "cpython-tests: no test_signal failure under profshim that the plain runs do not have"
  exit 0
fi

# The parts of a run: one set of modules each, run the same way plainly and
# under the shim (log names plain.<part>.log and shim.<part>.log).
parts=(all)
if [ "$signal_once" = 1 ]; then
  rest=()
  for t in "${tests[@]}"; do [ "$t" = test_signal ] || rest+=("$t"); done
  tests=("${rest[@]}")
  parts+=(sigoff)
fi
part_args() {  # the regrtest arguments of a part
  case $1 in
    all) echo "${tests[@]}" ;;
    sigoff) echo test_signal -m test_siginterrupt_off ;;
  esac
}

[ "$jobs" -gt 1 ] && jopt=(-j "$jobs")
echo "cpython-tests: plain run"
for part in "${parts[@]}"; do
  # shellcheck disable=SC2046 # the modules are words
  run "$work/plain.$part.log" -- $(part_args "$part") || { tail -40 "$work/plain.$part.log"; echo "cpython-tests: the plain run failed: not profshim's doing"; exit 1; }
done

echo "cpython-tests: under profshim (continuous, wall clock, 1000 Hz)"
for part in "${parts[@]}"; do
  before=$(ls /dev/shm)
  status=0
  # shellcheck disable=SC2046
  shim_run "shim.$part" $(part_args "$part") || status=$?
  drop_rings "$before"
  log=$work/shim.$part.log
  if [ $status -ne 0 ]; then
    grep -E "^(FAIL|ERROR):" -A 12 "$log" | head -150
    sed -n '/^== Tests result/,$p' "$log" | tail -30
    echo "cpython-tests: FAILED under profshim:"
    grep -E "^(FAIL|ERROR):" "$log" | sort -u
    exit 1
  fi
  if ! diff <(summary "$work/plain.$part.log") <(summary "$log"); then
    echo "cpython-tests: results differ under profshim"
    exit 1
  fi
done
grep -q '"(no request)"' "$work/shim.all.json" || {
  echo "cpython-tests: the collector recorded no samples"; exit 1; }
echo "cpython-tests: same results with and without profshim:"
for part in "${parts[@]}"; do summary "$work/shim.$part.log"; done
echo "cpython-tests: $(grep -c '"pid"' "$work/shim.all.json") pid entries in the profile"
