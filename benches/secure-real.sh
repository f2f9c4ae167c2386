#!/usr/bin/env bash
# Time and peak RSS of the real programs of benches/rss-real.sh under
# hakmem's default mode, its secure mode (HAKMEM_SECURE=1) and scudo (the
# hardened allocator of LLVM and Android), with glibc for scale; side by
# side in one run, the allocators alternating program by program.
#
#   bash benches/secure-real.sh [runs]     (default 5)
#   HAKMEM_LIB=/path/libhakmem.so bash benches/secure-real.sh 3
#
# Wall time and peak RSS are GNU time's %e and %M of `bash -c` running the
# program (the preload applies to it and its children). Prints medians,
# secure ÷ default and scudo ÷ glibc, and the geomeans (issue 11's target
# for the secure mode is ≤ 1.3× the default mode's time, ≤ 1.2× its RSS).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
HAK=${HAKMEM_LIB:-$PWD/target/release/libhakmem.so}
SCUDO=$(ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.scudo_standalone-x86_64.so 2>/dev/null | head -1 || true)
[ -f "$HAK" ] || { echo "secure-real: $HAK missing (cargo build --release)"; exit 1; }
[ -n "$SCUDO" ] || echo "secure-real: scudo missing (apt-get install libclang-rt-14-dev); its column is left out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/tiny_hot" benches/c/tiny_hot.c
cc -O2 -o "$tmp/large_churn" benches/c/large_churn.c
printf '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n' >"$tmp/hello.c"
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
allocs=(glibc hakmem hakmem-secure)
[ -n "$SCUDO" ] && allocs+=(scudo)
out=$tmp/r.csv
for ((r = 0; r < runs; r++)); do
  for name in "${progs[@]}"; do
    for a in "${allocs[@]}"; do
      case $a in
        glibc) env=() ;;
        hakmem) env=(LD_PRELOAD=$HAK) ;;
        hakmem-secure) env=(LD_PRELOAD=$HAK HAKMEM_SECURE=1) ;;
        # scudo's TLS needs room in the static TLS block when preloaded.
        scudo) env=(LD_PRELOAD=$SCUDO GLIBC_TUNABLES=glibc.rtld.optional_static_tls=65536) ;;
      esac
      res=$(env "${env[@]}" /usr/bin/time -f '%e %M' bash -c "p_$name" 2>&1 >/dev/null | tail -1)
      echo "$name,$a,${res% *},${res#* }" >>"$out"
    done
  done
done
python3 - "$out" <<'PY'
import csv, math, statistics, sys
rows = list(csv.reader(open(sys.argv[1])))
t, m = {}, {}
for n, a, s, k in rows:
    t.setdefault(n, {}).setdefault(a, []).append(float(s))
    m.setdefault(n, {}).setdefault(a, []).append(float(k))
g = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))
med = lambda d: {a: statistics.median(d[a]) for a in d}
have_scudo = any("scudo" in t[n] for n in t)
cols = ["glibc", "hakmem", "hakmem-secure"] + (["scudo"] if have_scudo else [])
print("| program | " + " | ".join(f"{c} s" for c in cols) + " | secure ÷ default time | " + ("scudo ÷ glibc time | " if have_scudo else "") + " | ".join(f"{c} MiB" for c in cols) + " | secure ÷ default RSS |")
print("| --- |" + " ---: |" * (2 * len(cols) + 2 + have_scudo))
st, sm, sg = [], [], []
for n in t:
    a, b = med(t[n]), med(m[n])
    # A 0.00 s median (a program faster than GNU time's resolution) counts as 0.01.
    a = {k: max(v, 0.01) for k, v in a.items()}
    st.append(a["hakmem-secure"] / a["hakmem"]); sm.append(b["hakmem-secure"] / b["hakmem"])
    line = f"| {n} | " + " | ".join(f"{a[c]:.2f}" for c in cols) + f" | {st[-1]:.2f} | "
    if have_scudo:
        sg.append(a["scudo"] / a["glibc"]); line += f"{sg[-1]:.2f} | "
    line += " | ".join(f"{b[c] / 1024:.1f}" for c in cols) + f" | {sm[-1]:.2f} |"
    print(line)
print(f"| **geomean** ({len(st)}) | " + " | " * (len(cols) - 1) + f" | **{g(st):.2f}** | " + (f"**{g(sg):.2f}** | " if have_scudo else "") + " | " * (len(cols) - 1) + f" | **{g(sm):.2f}** |")
# The real programs alone (the C harnesses, c_*, spend nearly all their
# time in the allocator), and the secure mode against scudo.
real = [i for i, n in enumerate(t) if not n.startswith("c_")]
print(f"\nreal programs only ({len(real)}): secure ÷ default time {g([st[i] for i in real]):.3f}, RSS {g([sm[i] for i in real]):.3f}")
if have_scudo:
    ss = [max(statistics.median(t[n]["hakmem-secure"]), 0.01) / max(statistics.median(t[n]["scudo"]), 0.01) for n in t]
    print(f"hakmem-secure ÷ scudo time: all {g(ss):.3f}, real programs {g([ss[i] for i in real]):.3f}")
PY
