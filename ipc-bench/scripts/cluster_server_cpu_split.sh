#!/usr/bin/env bash
# Where a hello-world HTTP server's CPU goes per request: user space vs the kernel
# (system + softirq), ipc-cluster (1 worker, shared mode) against Node's cluster
# (1 worker), each server alone on CPU 1 and `wrk` (apt-get install wrk) on CPU 0.
# Reads CPU 1's counters in /proc/stat around a 5 s wrk run, after a 2 s warm-up.
#
#   ipc-bench/scripts/cluster_server_cpu_split.sh target/release/ipc-bench
#
# The Rust server is the bench's own cluster primary (IPC_BENCH_CLUSTER_PRIMARY), the
# Node one ipc-bench/node/cluster_server.js: the servers of `ipc-bench --cluster`.
set -euo pipefail
bench=${1:?usage: $0 path/to/ipc-bench}
here=$(cd "$(dirname "$0")/.." && pwd)
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

measure() { # NAME COMMAND... ; the command prints "listening PORT"
    local name=$1 out port spid reqs
    shift
    out=$(mktemp)
    # The Rust primary stops when its stdin closes: hold it open while measuring.
    taskset -c 1 "$@" >"$out" 2>/dev/null < <(sleep 30) &
    spid=$!
    for _ in $(seq 1 100); do grep -q listening "$out" && break; sleep 0.1; done
    port=$(awk '/listening/{print $2}' "$out")
    taskset -c 0 wrk -t1 -c32 -d2s "http://127.0.0.1:$port/" >/dev/null
    local before after
    before=$(grep '^cpu1 ' /proc/stat)
    reqs=$(taskset -c 0 wrk -t1 -c32 -d5s "http://127.0.0.1:$port/" | awk '/requests in/{print $1}')
    after=$(grep '^cpu1 ' /proc/stat)
    kill -TERM "$spid"
    wait "$spid" 2>/dev/null || true
    rm -f "$out"
    awk -v name="$name" -v reqs="$reqs" -v tck="$(getconf CLK_TCK)" \
        -v before="$before" -v after="$after" 'BEGIN {
        split(before, a); split(after, b)
        f = 1e6 / tck / reqs  # ticks -> µs per request
        user = (b[2] - a[2] + b[3] - a[3]) * f
        sys = (b[4] - a[4]) * f
        soft = (b[7] - a[7] + b[8] - a[8]) * f
        printf "%-12s %8.0f req/s  CPU 1 per request: user %5.2f µs  system %5.2f µs  softirq %5.2f µs  (kernel %2.0f%%)\n",
            name, reqs / 5, user, sys, soft, 100 * (sys + soft) / (user + sys + soft)
    }'
}

IPC_BENCH_CLUSTER_PRIMARY=shared:1 measure ipc-cluster "$bench"
measure node-cluster node "$here/node/cluster_server.js" 1 18431 shared
