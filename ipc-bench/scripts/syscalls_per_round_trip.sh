#!/usr/bin/env bash
# Syscalls per round trip of fork_ping (parent and child together), counted with
# `strace -f -c`: load-independent evidence for changes to the I/O path.
#
#   ipc-bench/scripts/syscalls_per_round_trip.sh target/release/examples/fork_ping uds pipe
#
# Runs pinned to CPU 0 (`taskset -c 0`), 20 000 timed round trips plus fork_ping's
# warm-up of a tenth (22 000 in all). Extra fork_ping arguments go in FORK_PING_ARGS
# (e.g. FORK_PING_ARGS="--low-latency").
set -euo pipefail
bin=${1:?usage: $0 path/to/fork_ping TRANSPORT...}
shift
count=${COUNT:-20000}
rounds=$((count + count / 10))
for transport in "$@"; do
    out=$(mktemp)
    # shellcheck disable=SC2086
    taskset -c 0 strace -f -c -o "$out" "$bin" --transport "$transport" --count "$count" \
        ${FORK_PING_ARGS:-} >/dev/null
    awk -v t="$transport" -v r="$rounds" '
        $4 / r >= 0.01 && $NF ~ /^(sendmsg|recvmsg|read|write|writev|readv|recvfrom|sendto|epoll_wait|epoll_pwait|sched_yield)$/ {
            errors = (NF == 6) ? $5 : 0
            printf "%-6s %-12s %6.2f calls/round trip  %5.2f failed\n", t, $NF, $4 / r, errors / r
        }' "$out"
    rm -f "$out"
done
