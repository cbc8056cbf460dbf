#!/usr/bin/env bash
# User-space instructions per frame of the bench's one-way streaming cell (or per round
# trip of its unpinned round-trip cell), per process (the parent sends, the child
# receives), counted with callgrind (load-independent, unlike wall-clock time). Two runs of different lengths; the difference divided by the
# extra frames removes start-up, the warm-up and shutdown.
#
#   ipc-bench/scripts/instructions_per_streamed_frame.sh target/release/ipc-bench uds pipe
#
# WORKLOAD=stream for one send per frame (default stream-batched: feed + flush, the
# child reading with recv_many), WORKLOAD=rtt for round trips; SIZE=1024 for another
# payload size (default 64).
set -euo pipefail
bin=${1:?usage: $0 path/to/ipc-bench TRANSPORT...}
shift
workload=${WORKLOAD:-stream-batched}
size=${SIZE:-64}
if [ "$workload" = rtt ]; then
    short=2000 long=6000 counts="--rounds"
else
    short=20000 long=60000 counts="--stream-messages"
fi
dir=$(mktemp -d)
for transport in "$@"; do
    for count in $short $long; do
        valgrind --tool=callgrind --trace-children=yes \
            --callgrind-out-file="$dir/$transport.$count.%p" \
            "$bin" --only "$transport" --sizes "$size" --workloads "$workload" --no-pin \
            "$counts" "$count" --warmup 1000 >/dev/null 2>"$dir/log"
    done
    # The parent is the bench started with arguments, the child the bench without
    # (other programs it runs, such as `node --version`, are left out).
    total() { # count parent|child
        for f in "$dir/$transport.$1".*; do
            cmd=$(grep -m1 '^cmd:' "$f")
            case "$cmd" in
                "cmd:  $bin --"*) role=parent ;;
                "cmd:  $bin") role=child ;;
                *) continue ;;
            esac
            if [ "$role" = "$2" ]; then grep -m1 '^summary:' "$f" | awk '{print $2}'; fi
        done | awk '{ s += $1 } END { print s }'
    }
    p=$(( $(total $long parent) - $(total $short parent) ))
    c=$(( $(total $long child) - $(total $short child) ))
    awk -v t="$transport" -v w="$workload" -v p="$p" -v c="$c" -v n="$((long - short))" \
        'BEGIN { printf "%-6s %s parent %6.1f  child %6.1f  instructions per frame (round trip for rtt)\n", t, w, p / n, c / n }'
done
rm -rf "$dir"
