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
cc -O2 -o "$tmp/tiny_hot" benches/c/tiny_hot.c
cc -O2 -o "$tmp/large_churn" benches/c/large_churn.c
printf '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n' >"$tmp/hello.c"
# One function per program; each runs it with the arguments it needs.
p_python_sum() { python3 -c 'print(sum(len(str(i)) for i in range(10**6)))'; }
p_python_dict() { python3 -c 'd = {i: str(i) * 5 for i in range(300000)}; print(len(d))'; }
p_perl_hash() { perl -e 'my %h; $h{$_} = [1..5] for 1..200000; print scalar(keys %h), "\n"'; }
p_gcc_compile() { gcc -O2 -o "$tmp/hello" "$tmp/hello.c"; }
p_git_log() { git -C "$PWD" log --oneline -n 200; }
p_sort_big() { sort -r "$tmp/seq"; }
p_sqlite3() { sqlite3 :memory: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT count(*), sum(length(printf('%x', x * x))) FROM c;"; }
p_tar_gzip() { tar -czf "$tmp/t.tgz" -C "$PWD" crates; }
p_c_tiny_hot() { "$tmp/tiny_hot"; }
p_c_large_churn() { "$tmp/large_churn"; }
progs=(python_sum python_dict perl_hash gcc_compile git_log sort_big sqlite3 tar_gzip c_tiny_hot c_large_churn)
export -f p_python_sum p_python_dict p_perl_hash p_gcc_compile p_git_log p_sort_big p_sqlite3 p_tar_gzip p_c_tiny_hot p_c_large_churn
export tmp
seq 1 300000 >"$tmp/seq"
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
