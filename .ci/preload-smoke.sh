#!/usr/bin/env bash
# Runs real programs with and without libhakmem.so and compares them: same
# exit status, same stdout, and no `hakmem:` diagnostic on stderr.
#
#   bash .ci/preload-smoke.sh [path/to/libhakmem.so]   (default: the release build)
#
# Installs sqlite3 with apt-get when it is missing (as root, or with sudo).
# Ends with `N passed, M failed` and exits 1 if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
LIB=$(realpath "${1:-target/release/libhakmem.so}")
if [ ! -f "$LIB" ]; then
    echo "preload-smoke: $LIB is missing: run \`cargo build --release\` first" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

# Programs this script needs beyond a base system: install what is missing.
need_pkg() { # command package
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "preload-smoke: $1 is missing, installing package $2"
    local sudo=
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo -n"
        else
            echo "preload-smoke: FAILED: cannot install $2 (not root and no sudo)" >&2
            exit 1
        fi
    fi
    if ! { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; then
        echo "preload-smoke: FAILED: apt-get install $2 failed" >&2
        exit 1
    fi
    command -v "$1" >/dev/null 2>&1 || {
        echo "preload-smoke: FAILED: $1 still missing after installing $2" >&2
        exit 1
    }
}
need_pkg sqlite3 sqlite3

check() {
    local name=$1
    shift
    local rc_plain=0 rc_hak=0
    "$@" >"$tmp/plain.out" 2>"$tmp/plain.err" || rc_plain=$?
    if [ "$rc_plain" -ne 0 ]; then
        echo "baseline failed (exit $rc_plain): $name"
        head -20 "$tmp/plain.err"
        exit 1
    fi
    LD_PRELOAD="$LIB" "$@" >"$tmp/hak.out" 2>"$tmp/hak.err" || rc_hak=$?
    if [ "$rc_hak" -eq 0 ] && cmp -s "$tmp/plain.out" "$tmp/hak.out" &&
        ! grep -q '^hakmem: ' "$tmp/hak.err"; then
        pass=$((pass + 1))
        echo "ok   $name"
    else
        fail=$((fail + 1))
        echo "FAIL $name (exit $rc_hak)"
        diff "$tmp/plain.out" "$tmp/hak.out" | head -20 || true
        head -10 "$tmp/hak.err" || true
    fi
}

# The preload really takes effect (else every comparison below is vacuous):
# with HAKMEM_STATS=1, hakmem prints its statistics table at exit.
HAKMEM_STATS=1 LD_PRELOAD="$LIB" python3 -c 'print(len({i: str(i) for i in range(10000)}))' \
    >/dev/null 2>"$tmp/stats.err" || true
if grep -q '^hakmem statistics' "$tmp/stats.err"; then
    pass=$((pass + 1))
    echo "ok   preload-active"
else
    fail=$((fail + 1))
    echo "FAIL preload-active: no hakmem statistics from a preloaded python3"
fi

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
# fork() while other threads allocate; each child allocates, then _exit(0).
check python-fork-threads python3 -W ignore -c "
import os, threading, json
stop = False
def churn(k):
    while not stop:
        x = {str(i): [i] * (i % 50) for i in range(2000)}
        json.loads(json.dumps(x))
ts = [threading.Thread(target=churn, args=(k,)) for k in range(4)]
[t.start() for t in ts]
ok = 0
for n in range(40):
    pid = os.fork()
    if pid == 0:
        y = {i: str(i) * 20 for i in range(20000)}
        os._exit(0 if len(json.dumps(y)) > 0 else 1)
    _, st = os.waitpid(pid, 0)
    ok += st == 0
stop = True
[t.join() for t in ts]
print('children ok:', ok)
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
check sqlite3-memory sqlite3 :memory: "
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)
SELECT count(*), sum(x), sum(length(printf('%x', x * x))) FROM c;
CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c INTEGER);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
INSERT INTO t SELECT x, printf('%.*c', x % 300, 'k') || x, x % 977 FROM c;
CREATE INDEX tc ON t(c);
SELECT c, count(*), sum(length(b)) FROM t GROUP BY c ORDER BY 3 DESC LIMIT 5;
UPDATE t SET b = b || b WHERE a % 3 = 0;
DELETE FROM t WHERE a % 5 = 0;
SELECT count(*), sum(length(b)), max(b) FROM t;
"
check sqlite3-file bash -c '
rm -f "$1"
sqlite3 "$1" "CREATE TABLE kv(k TEXT PRIMARY KEY, v BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000)
INSERT INTO kv SELECT printf(\"key%08d\", x), zeroblob(x % 2000) FROM c;"
sqlite3 "$1" "VACUUM; SELECT count(*), sum(length(v)) FROM kv; PRAGMA integrity_check;"
rm -f "$1"' _ "$tmp/kv.db"
# tar + gzip round trip of the committed sources (git archive of HEAD, so
# edits in the work tree cannot change the input between the two runs):
# archive, compress, decompress, extract, and list what came out.
check tar-gzip-roundtrip bash -c '
out=$1
git archive --format=tar HEAD | gzip -n -6 >"$out.tgz"
mkdir -p "$out.dir"
gzip -dc "$out.tgz" | tar -xf - -C "$out.dir"
gzip -dc "$out.tgz" | md5sum
(cd "$out.dir" && find . -type f | LC_ALL=C sort | xargs cat | md5sum && find . -type f | wc -l)
rm -rf "$out.tgz" "$out.dir"' _ "$tmp/rt"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
