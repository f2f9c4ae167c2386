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
# The programs (p_NAME functions and the list `progs`).
source benches/real-programs.sh
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
