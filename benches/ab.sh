#!/usr/bin/env bash
# A/B of the in-process figures of StatusLayer (success and error paths) and RetryLayer: this tree against
# another commit, built side by side and run alternately in one command, so drift on the machine
# hits both alike. Prints each run's summary rows, then the medians per side.
#
#   bash benches/ab.sh [BASE_COMMIT] [ROUNDS]     (default: the parent of HEAD, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
base_commit="${1:-HEAD~1}"
rounds="${2:-3}"
# The base tree is kept under target/ (ignored) with its own build, so a second run is quick.
base_dir="$PWD/target/ab-base"
if [ -d "$base_dir" ]; then
    git -C "$base_dir" checkout --quiet --detach "$base_commit"
else
    git worktree add --quiet --detach "$base_dir" "$base_commit"
fi

build() { # dir -> prints the two bench binaries
    (cd "$1" && cargo bench --no-run --features server --bench server 2>&1 \
        | grep -o 'target/release/deps/server-[0-9a-f]*' | head -1 | sed "s|^|$1/|")
    (cd "$1" && cargo bench --no-run --features retry --bench retry 2>&1 \
        | grep -o 'target/release/deps/retry-[0-9a-f]*' | head -1 | sed "s|^|$1/|")
}
# Each tree builds into its own target dir (the base's dependencies are built once there).
mapfile -t new < <(build "$PWD")
mapfile -t old < <(build "$base_dir")

run() { # side binary-server binary-retry
    "$2" --bench in_process 2>/dev/null | grep -E '^\| (OK|error) \|' | sed "s/^/$1 StatusLayer /"
    "$3" --bench in_process 2>/dev/null | grep -E '^\| [0-9].*<= 500 ns' | sed "s/^/$1 RetryLayer /"
}
for round in $(seq "$rounds"); do
    echo "-- round $round"
    run base "${old[0]}" "${old[1]}"
    run this "${new[0]}" "${new[1]}"
done
