#!/usr/bin/env bash
# Configure (once) and build profshim into ${BUILD_DIR:-build}.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" ${MESON_ARGS:-} >/dev/null
fi
meson compile -C "$build" >/dev/null
