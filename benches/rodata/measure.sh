#!/bin/sh
# What the status table costs a dependent's release binary: builds `baseline` (the crate without
# its table) and `lookups` (every lookup called) in release, and prints each ELF section that
# differs (`size -A`), `.rodata` first, and the files' sizes.
#
# Usage: benches/rodata/measure.sh [path to a clarifai-status checkout]   (default: this one)
# It builds in a target folder of its own (benches/rodata/target, or $CARGO_TARGET_DIR).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
crate=${1:-$here/../..}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$here/Cargo.toml" "$here/src" "$work/"
sed -i "s|path = \"../..\"|path = \"$(cd "$crate" && pwd)\"|" "$work/Cargo.toml"
# The repository's lock, so the dependencies are the versions it tests with.
cp "$here/../../Cargo.lock" "$work/Cargo.lock"
target=${CARGO_TARGET_DIR:-$here/target}
cargo build --quiet --release --manifest-path "$work/Cargo.toml" --target-dir "$target"
base=$target/release/baseline
lookups=$target/release/lookups
size -A "$base" >"$work/base.txt"
size -A "$lookups" >"$work/lookups.txt"
printf '%-20s %10s %10s %10s\n' section baseline lookups difference
awk 'NR==FNR && $2 ~ /^[0-9]+$/ { base[$1] = $2; next }
     $2 ~ /^[0-9]+$/ && $1 != "Total" {
         d = $2 - base[$1]
         if (d != 0) printf "%-20s %10d %10d %+10d (%+.1f KiB)\n", $1, base[$1], $2, d, d / 1024
     }' "$work/base.txt" "$work/lookups.txt" | sort -k1,1 | awk '$1 == ".rodata" { print; next } { rest = rest $0 "\n" } END { printf "%s", rest }'
b=$(stat -c %s "$base")
l=$(stat -c %s "$lookups")
printf '%-20s %10d %10d %+10d (%+.1f KiB)\n' file "$b" "$l" $((l - b)) "$(echo "($l - $b) / 1024" | bc -l)"
