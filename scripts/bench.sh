#!/usr/bin/env bash
# profshim's benchmark: every number in the README's "Performance" section.
#
#   scripts/bench.sh [--quick] [--out FILE]
#
# Builds (scripts/build.sh), installs what the peers need (gperftools, wrk,
# valgrind; as root), then runs, one after the other so they do not
# disturb each other:
#   scripts/bench/sampler.py   per-sample cost vs the floor and gperftools,
#                              ring bytes, drops, collector throughput and
#                              CPU, memory
#   scripts/bench/hooks.sh     hook cost in instructions (callgrind)
#   scripts/bench/e2e.sh       nginx gzip under wrk: none, profshim,
#                              gperftools, interleaved
#   scripts/bench/light.sh     light endpoints (10-30 us a request) under
#                              wrk: nginx return/static, node, CPython;
#                              no preload, preload only, rate 0/0.1/1.0,
#                              wall clock; collector CPU beside
# and writes the Markdown results to FILE (default bench-results.md) with
# a line describing the machine. --quick: fewer rounds, shorter runs (for
# trying the script, not for the README).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=bench-results.md
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) out=${2:?--out needs a file}; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

bench_pkgs=(google-perftools libgoogle-perftools-dev wrk valgrind time)
missing=()
for p in "${bench_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench.sh: missing packages; run as root: apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
  echo "bench.sh: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

"$root/scripts/build.sh" >&2
build="$root/build"
"$build/collector/profshim-collector" gc >&2 || true

if [ $quick = 1 ]; then
  s_args=(--rounds 1 --signals 50000); h_args=(--requests 5000)
  e_args=(--rounds 1 --duration 2)
  l_args=(--quick)
else
  s_args=(--rounds 5 --signals 200000); h_args=(--requests 20000)
  e_args=(--rounds 7 --duration 5)
  l_args=(--rounds 5 --duration 4)
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
  echo "## Results"
  echo
  echo "Measured $(date -u +%Y-%m-%d) by \`scripts/bench.sh\` on $(nproc) CPUs" \
       "($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
       "$(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)," \
       "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)."
  echo
  /usr/bin/python3 "$root/scripts/bench/sampler.py" --build "$build" "${s_args[@]}"
  "$root/scripts/bench/hooks.sh" --build "$build" "${h_args[@]}"
  echo
  "$root/scripts/bench/e2e.sh" --build "$build" "${e_args[@]}"
  echo
  "$root/scripts/bench/light.sh" --build "$build" "${l_args[@]}"
} > "$tmp"
cp "$tmp" "$out"
echo "bench.sh: results in $out" >&2
