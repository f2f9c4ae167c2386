#!/usr/bin/env bash
# Peak RSS of real programs (the ones .ci/preload-smoke.sh runs) and of the
# C harness programs under each allocator, side by side in one run:
# glibc, hakmem (target/release/libhakmem.so) and Debian's mimalloc.
#
#   bash benches/rss-real.sh [runs]      (default 5; the allocators alternate)
#   HAKMEM_LIB=/path/libhakmem.so bash benches/rss-real.sh 3   (another build)
#
# Peak RSS is GNU time's %M (the child's ru_maxrss: /usr/bin/time forks
# and execs the program, so the floor is time's own ~2 MiB). Prints the
# median per program and allocator, hakmem ÷ mimalloc and hakmem ÷ glibc,
# and the geomeans (issue 13's target: hakmem ≤ 0.85× mimalloc).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
HAK=${HAKMEM_LIB:-$PWD/target/release/libhakmem.so}
MI=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2
[ -f "$HAK" ] || { echo "rss-real: $HAK missing (cargo build --release)"; exit 1; }
[ -f "$MI" ] || { echo "rss-real: $MI missing (apt-get install libmimalloc2.0)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The programs (p_NAME functions and the list `progs`).
source benches/real-programs.sh
out=$tmp/rss.csv
for ((r = 0; r < runs; r++)); do
  for name in "${progs[@]}"; do
    for a in glibc hakmem mimalloc; do
      case $a in
        glibc) pre= ;;
        hakmem) pre=$HAK ;;
        mimalloc) pre=$MI ;;
      esac
      # bash -c runs the function; the preload applies to it and its children,
      # and %M is the largest of them (GNU time reports the child's maxrss).
      kib=$(env ${pre:+LD_PRELOAD=$pre} /usr/bin/time -f %M bash -c "p_$name" 2>&1 >/dev/null | tail -1)
      echo "$name,$a,$kib" >>"$out"
    done
  done
done
python3 - "$out" <<'PY'
import csv, math, statistics, sys
rows = list(csv.reader(open(sys.argv[1])))
v = {}
for n, a, k in rows:
    v.setdefault(n, {}).setdefault(a, []).append(float(k))
g = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))
print("| program | glibc KiB | hakmem KiB | mimalloc KiB | hakmem ÷ mimalloc | hakmem ÷ glibc |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
rm, rg = [], []
for n in v:
    m = {a: statistics.median(v[n][a]) for a in v[n]}
    rm.append(m["hakmem"] / m["mimalloc"]); rg.append(m["hakmem"] / m["glibc"])
    print(f"| {n} | {m['glibc']:.0f} | {m['hakmem']:.0f} | {m['mimalloc']:.0f} | {rm[-1]:.2f} | {rg[-1]:.2f} |")
print(f"| **geomean** ({len(rm)}) | | | | **{g(rm):.2f}** | **{g(rg):.2f}** |")
PY
