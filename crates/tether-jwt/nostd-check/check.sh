#!/usr/bin/env bash
# Build tether-jwt with no std and no allocator, link it into a C program, run it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=${CARGO_TARGET_DIR:-$here/../../../target}/nostd-check
cargo build --quiet --release --manifest-path "$here/Cargo.toml" --target-dir "$target"
gcc -O1 -Wl,--gc-sections -o "$target/nostd-mint" "$here/main.c" "$target/release/libtether_jwt_nostd_check.a"
len=$("$target/nostd-mint")
echo "no_std, no-alloc ES256 mint linked into C: token of $len bytes"
