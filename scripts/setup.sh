#!/usr/bin/env bash
# Install what profshim needs to build, test and run its demo on Debian.
#
#   scripts/setup.sh            everything (build, tests, demo)
#   scripts/setup.sh --build    only what building needs
#
# As root, missing packages are installed with apt-get. Otherwise the exact
# apt-get line is printed and the script exits 1.
set -euo pipefail

build_pkgs=(gcc pkg-config meson ninja-build libunwind-dev libjansson-dev
            libdw-dev libelf-dev zlib1g-dev)
test_pkgs=(python3 python3-pytest libpython3.11-testsuite nginx-light curl git gdb)

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

if [ ${#missing[@]} -eq 0 ]; then
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
