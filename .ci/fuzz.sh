#!/usr/bin/env bash
# A bounded coverage-guided fuzz of the allocation API against a model
# (fuzz/fuzz_targets/model.rs), in the default and the secure mode.
#
#   bash .ci/fuzz.sh [seconds per target]   (default 30: about 60 s in all)
#
# Needs the nightly toolchain (cargo +nightly fuzz); installs cargo-fuzz
# from crates.io when it is missing. Says "skipped" and succeeds when
# nightly is absent. Fails when a target finds a crash or a model mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: skipped (no nightly toolchain)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi
cd fuzz
for t in alloc_ops alloc_ops_secure; do
    mkdir -p "corpus/$t"
    echo "fuzz: $t for ${secs}s"
    # Leak detection is off: hakmem's memory is invisible to LeakSanitizer
    # (it maps its own), and the std thread machinery of the harness frees
    # some of its memory lazily, which LSan reports at random.
    # (-detect_leaks=0 covers the runs; ASAN_OPTIONS also covers the
    # check at process exit, which once reported 80 bytes of the harness.)
    log=$(mktemp)
    rc=0
    ASAN_OPTIONS=detect_leaks=0 cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -detect_leaks=0 \
        -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1 || rc=$?
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done )|DONE .*cov:|panicked|SUMMARY|ERROR" "$log" || true
    if [ "$rc" -ne 0 ]; then
        tail -40 "$log"
        echo "fuzz: $t FAILED (rc $rc; the input is in fuzz/artifacts/$t)"
        exit 1
    fi
    rm -f "$log"
done
echo "fuzz: ok"
