#!/usr/bin/env bash
# Prints the code size and stack use of libtether_device.a (see measure.c).
# Usage: measure.sh [path/to/libtether_device.a]   (default: the staticlib dev build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lib=${1:-${CARGO_TARGET_DIR:-$here/../../../target}/staticlib/debug/libtether_device.a}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for use in 0 1 2 3; do
  gcc -std=c99 -O2 -Wall -Wextra -Werror -ffunction-sections -fdata-sections -Wl,--gc-sections \
    -I "$here/../include" -DUSE=$use -o "$out/measure$use" "$here/measure.c" "$lib"
done
text() { size -A "$1" | awk '$1 == ".text" {print $2}'; }
rodata() { size -A "$1" | awk '$1 == ".rodata" {print $2}'; }
size_of() { echo "$(( $(text "$out/measure$1") - $(text "$out/measure0") )) B .text, $(( $(rodata "$out/measure$1") - $(rodata "$out/measure0") )) B .rodata"; }
echo "code, ES256 mint through an engine callback (digest in, DER out): $(size_of 1)"
echo "code, ES256 mint with the built-in P-256 signer:                  $(size_of 2)"
echo "code, built-in mint + tether_jwt_check:                           $(size_of 3)"
"$out/measure1" | awk '/^mint/ {print "stack, ES256 mint through an engine callback: " $2 " B"}'
"$out/measure3" | awk '/^mint/ {print "stack, ES256 mint with the built-in signer:    " $2 " B"} /^check/ {print "stack, tether_jwt_check (ES256, key given):    " $2 " B"}'
