#!/usr/bin/env bash
# The whole test suite: installs what is missing (as root), builds, runs the
# unit tests, then the integration tests against real servers; then the
# same again built with AddressSanitizer and UndefinedBehaviorSanitizer
# (build dir build-asan; the shim is preloaded after the ASan runtime, see
# test/integration/conftest.py), and every fuzz target for a bounded time.
#
#   scripts/test.sh [PYTEST ARGS...]     e.g. scripts/test.sh -k nginx
#
# SANITIZE=0 skips the sanitizer pass and the fuzzing (quicker local runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
# The hostile-input tests run the collector built with the sanitizers in
# both passes: build it first.
BUILD_DIR=build-asan MESON_ARGS="-Db_sanitize=address,undefined -Db_lundef=false" \
  scripts/build.sh
build=${BUILD_DIR:-build}
meson test -C "$build" --print-errorlogs
# Debian's interpreter runs the tests: it is the one with pytest installed.
PROFSHIM_BUILD="$PWD/$build" PROFSHIM_ASAN_BUILD="$PWD/build-asan" \
  /usr/bin/python3 -m pytest test/integration -p no:cacheprovider "$@"

if [ "${SANITIZE:-1}" = 0 ]; then
  exit 0
fi
echo "== sanitizer pass: ASan + UBSan build in build-asan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
meson test -C build-asan --print-errorlogs
# CPython's own suite (minutes at 1000 Hz under ASan) and the fresh-clone
# demo (a second build) are left to the first pass, and so is valgrind
# (memcheck cannot run an ASan build), and the CPU clock's ground truth at
# 99 Hz (a minute of CPU burnt in the server, none of it in the shim: its
# 997 Hz case runs the same code here).
PROFSHIM_BUILD="$PWD/build-asan" PROFSHIM_ASAN_BUILD="$PWD/build-asan" \
  /usr/bin/python3 -m pytest test/integration -p no:cacheprovider \
  --deselect test/integration/servers/test_cpython.py \
  --deselect test/integration/servers/test_cpython_signal.py \
  --deselect test/integration/install/test_demo.py \
  --deselect test/integration/collector/test_faults.py::test_collector_clean_under_valgrind_memcheck \
  --deselect "test/integration/shim/test_cpu_clock.py::test_perf_engine_matches_ground_truth[99]" \
  "$@"
unset ASAN_OPTIONS UBSAN_OPTIONS
echo "== fuzzing every target under ASan + UBSan"
scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
