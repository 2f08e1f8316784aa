#!/usr/bin/env bash
# The whole test suite: installs what is missing (as root), builds, runs the
# unit tests, then the integration tests against real servers.
#
#   scripts/test.sh [PYTEST ARGS...]     e.g. scripts/test.sh -k nginx
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
build=${BUILD_DIR:-build}
meson test -C "$build" --print-errorlogs
# Debian's interpreter runs the tests: it is the one with pytest installed.
PROFSHIM_BUILD="$PWD/$build" /usr/bin/python3 -m pytest test/integration \
  -p no:cacheprovider "$@"
