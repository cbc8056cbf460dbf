#!/usr/bin/env bash
# User-space instructions per round trip of fork_ping, per process, counted with
# callgrind, pinned to CPU 0 (load-independent, unlike wall-clock time). Two runs of different lengths;
# the difference divided by the extra round trips removes start-up and shutdown.
#
#   ipc-bench/scripts/instructions_per_round_trip.sh target/release/examples/fork_ping uds pipe
set -euo pipefail
bin=${1:?usage: $0 path/to/fork_ping TRANSPORT...}
shift
dir=$(mktemp -d)
for transport in "$@"; do
    for count in 1000 3000; do
        # shellcheck disable=SC2086
        taskset -c 0 valgrind --tool=callgrind --trace-children=yes \
            --callgrind-out-file="$dir/$transport.$count.%p" \
            "$bin" --transport "$transport" --count "$count" ${FORK_PING_ARGS:-} \
            >/dev/null 2>"$dir/log"
    done
    # Files sort by pid: the parent starts first in each run.
    totals() { for f in $(ls "$dir/$transport.$1".* | sort -t. -k3 -n); do
        grep -m1 '^summary:' "$f" | awk '{print $2}'; done; }
    read -r p1 c1 < <(totals 1000 | xargs)
    read -r p3 c3 < <(totals 3000 | xargs)
    # 2 000 more timed round trips plus 200 more warm-up ones.
    awk -v t="$transport" -v p="$((p3 - p1))" -v c="$((c3 - c1))" \
        'BEGIN { printf "%-6s parent %6.0f  child %6.0f  instructions/round trip\n", t, p / 2200, c / 2200 }'
done
rm -rf "$dir"
