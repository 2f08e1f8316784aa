#!/usr/bin/env bash
# Install what profshim needs to build, test and run its demo on Debian.
#
#   scripts/setup.sh            everything (build, tests, demo)
#   scripts/setup.sh --build    only what building needs
#
# As root, missing packages are installed with apt-get. Otherwise the exact
# apt-get line is printed and the script exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(gcc pkg-config meson ninja-build libunwind-dev libjansson-dev
            libdw-dev libelf-dev zlib1g-dev libmicrohttpd-dev
            libcurl4-openssl-dev libiberty-dev)
# Real consumers of the outputs: go tool pprof (golang-go), promtool
# (prometheus), headless Chromium driven by playwright-core from npm
# (nodejs, whose npm installs test/js/package.json's packages), perf to check the ratio test server;
# clang with its libFuzzer runtime for the fuzz targets, valgrind for one
# memcheck run of the collector; systemd-analyze (systemd) to verify the
# installed unit and the README's drop-ins; php-fpm behind nginx for
# FastCGI (test_phpfpm.py); apache2 (event MPM, children as www-data) and
# util-linux's setpriv for the servers that drop privileges; strace to
# count the system calls a sampled request makes (test_cpu_clock.py);
# python3.11-dbg for the symbols of the interpreter's extension modules
# (the _json accelerator's functions are static: test_python.py names them);
# g++, binutils and xz-utils to build a C++ plugin and to strip binaries and
# give them separate debug files or MiniDebugInfo (test_names.py); libc6-dbg,
# the debug file of Debian's stripped libc under /usr/lib/debug/.build-id/
# (test_symbols.c).
test_pkgs=(python3 python3-pytest python3.11-dbg libpython3.11-testsuite nginx-light curl git gdb
           golang-go prometheus chromium nodejs clang-14 libclang-rt-14-dev
           valgrind systemd php-fpm apache2 util-linux strace g++ binutils
           xz-utils libc6-dbg)

pkgs=("${build_pkgs[@]}")
if [ "${1:-}" != "--build" ]; then
  pkgs+=("${test_pkgs[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in
    *"install ok installed"*) ;;
    *) missing+=("$p") ;;
  esac
done

npm_deps() {  # the tests' npm packages, exactly as package-lock.json says
  if [ "${1:-}" != "--build" ] && [ ! -d test/js/node_modules/playwright-core ]; then
    echo "profshim: installing test/js npm packages" >&2
    (cd test/js && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  npm_deps "${1:-}"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "profshim: missing packages; run as root:" >&2
  echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "profshim: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
npm_deps "${1:-}"
