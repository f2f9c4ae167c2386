#!/bin/bash
# Instructions (callgrind, whole program) and peak RSS of two hakmem-bench
# binaries on the suite's workloads at about a tenth of their size: the
# before/after check of a change that touches a slow path (the instruction
# counts do not depend on the machine's load, unlike wall time).
#
#   git worktree add /tmp/b <base-rev>
#   (cd /tmp/b && CARGO_TARGET_DIR=/tmp/bt cargo build --release -p hakmem-bench)
#   bash benches/cg-compare.sh /tmp/bt/release/hakmem-bench target/release/hakmem-bench
#
# One line per workload: the workload, instructions before and after, their
# ratio, and the peak RSS (KiB) of one plain run of each. Workloads with two
# threads (larson, cache-scratch, mid-mt) interleave differently from run to
# run, so they vary by about 1 % between runs of the same binary.
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 BASE_BENCH NEW_BENCH" >&2
    exit 2
fi
command -v valgrind >/dev/null || { echo "cg-compare: valgrind is not installed" >&2; exit 1; }
W=(
    "tiny-hot size=64 batch=100 rounds=50000"
    "random-mixed ops=2000000 slots=400 seed=42 min=16 max=1024"
    "random-mixed ops=1000000 slots=400 seed=42 min=16 max=65536"
    "larson threads=2 slots=1000 min=16 max=1000 gen_ops=10000 generations=15 seed=4141"
    "producer-consumer pairs=1 objects=1000000 min=16 max=512 queue=1024 seed=7"
    "cache-scratch threads=2 iterations=1000 objsize=8 repetitions=5000"
    "mid-mt threads=2 ops=800000 slots=256 min=2048 max=65536 seed=99"
    "glibc-simple size=256 allocs=100000"
    "glibc-simple size=1024 allocs=40000"
    "glibc-simple size=4096 allocs=20000"
)
instr() {
    # shellcheck disable=SC2086
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" run-one hakmem $2 2>&1 |
        grep -o "refs: *[0-9,]*" | tr -d ' refs:,'
}
rss() {
    # shellcheck disable=SC2086
    "$1" run-one hakmem $2 2>/dev/null | grep -o '"hwm_kib":[0-9]*' | cut -d: -f2
}
printf '%-86s %13s %13s %6s %9s %9s\n' workload before after ratio "rss-b" "rss-a"
for w in "${W[@]}"; do
    a=$(instr "$1" "$w")
    b=$(instr "$2" "$w")
    printf '%-86s %13d %13d %6s %9s %9s\n' "$w" "$a" "$b" \
        "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')" "$(rss "$1" "$w")" "$(rss "$2" "$w")"
done
