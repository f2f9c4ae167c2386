#!/usr/bin/env bash
# Runs real programs with and without libhakmem.so and compares outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
LIB="$PWD/target/release/libhakmem.so"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
check() {
    local name=$1
    shift
    "$@" >"$tmp/plain.out" 2>&1 || { echo "baseline failed: $name"; cat "$tmp/plain.out"; exit 1; }
    if LD_PRELOAD="$LIB" "$@" >"$tmp/hak.out" 2>"$tmp/hak.err" && cmp -s "$tmp/plain.out" "$tmp/hak.out"; then
        pass=$((pass + 1))
        echo "ok   $name"
    else
        fail=$((fail + 1))
        echo "FAIL $name"
        diff "$tmp/plain.out" "$tmp/hak.out" | head -20 || true
        head -5 "$tmp/hak.err" || true
    fi
}
check python-sum python3 -c "print(sum(len(str(i)) for i in range(10**6)))"
check python-threads-json python3 -c "
import threading, json
d = {}
def work(k):
    for i in range(20000):
        d[(k, i)] = json.dumps({'a': [i] * 10, 'b': str(i) * 5})
ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print(len(d), sum(len(v) for v in d.values()))
"
check perl-hash perl -e 'my %h; $h{$_} = [1..5] for 1..200000; my $s = 0; $s += scalar(@{$h{$_}}) for keys %h; print "$s\n"'
cat >"$tmp/hello.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    char *s = malloc(64);
    strcpy(s, "hello from a compiled program");
    puts(s);
    free(s);
    return 0;
}
C
check gcc-compile gcc -O2 -o "$tmp/hello" "$tmp/hello.c"
check hello-run "$tmp/hello"
check git-log git -C "$PWD" log --oneline -n 20
check sort-big bash -c "seq 1 300000 | sort -r | head -3"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
