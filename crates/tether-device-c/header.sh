#!/usr/bin/env bash
# Regenerates include/tether_device.h with cbindgen; with --check, fails if the
# checked-in header differs from what the source generates.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/include/tether_device.h
if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' EXIT
  (cd "$here" && cbindgen --quiet --config cbindgen.toml --output "$tmp")
  if ! diff -u "$out" "$tmp"; then
    echo "include/tether_device.h is stale: run crates/tether-device-c/header.sh" >&2
    exit 1
  fi
  echo "tether_device.h matches the source"
else
  (cd "$here" && cbindgen --quiet --config cbindgen.toml --output "$out")
fi
