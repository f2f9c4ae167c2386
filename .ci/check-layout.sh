#!/usr/bin/env bash
# Checks the segments of a libhakmem.so built with crates/preload/layout.ld
# (x86_64 with rust-lld: see crates/preload/build.rs). The script relies on
# the linker's placement of the sections it does not name, which a newer
# rustc (or its lld) could change; this catches a layout that went wrong:
#   - no loadable segment is both writable and executable;
#   - PT_GNU_EH_FRAME lies inside a loadable segment (unwinding finds it);
#   - the loadable segments are R, R E, R, R E, R, RW, RW, in that order
#     (the dynamic tables and start-up data, the start-up text, a one-byte
#     gap, the rest of the text, the rest of the read-only data and the
#     unwind tables, RELRO, data and bss: see the script's header);
#   - the start-up text segment begins on a page.
#   bash .ci/check-layout.sh [path/to/libhakmem.so]
set -euo pipefail
lib=${1:-target/release/libhakmem.so}
[ -f "$lib" ] || { echo "check-layout: $lib missing" >&2; exit 1; }
readelf -lW "$lib" | python3 -c '
import sys
loads, eh = [], None
for line in sys.stdin:
    f = line.split()
    if not f:
        continue
    if f[0] == "LOAD":
        # LOAD off vaddr paddr filesz memsz flags... align
        flags = "".join(f[6:-1])
        loads.append((int(f[2], 16), int(f[5], 16), flags))
    elif f[0] == "GNU_EH_FRAME":
        eh = int(f[2], 16)
names = " ".join(l[2] for l in loads)
print("check-layout: LOAD flags:", names)
bad = [l[2] for l in loads if "W" in l[2] and "E" in l[2]]
if bad:
    sys.exit("check-layout: a writable and executable segment: %s" % bad)
if eh is None:
    sys.exit("check-layout: no PT_GNU_EH_FRAME")
if not any(lo <= eh < lo + size for lo, size, _ in loads):
    sys.exit("check-layout: PT_GNU_EH_FRAME (%#x) is in no LOAD segment" % eh)
if names != "R RE R RE R RW RW":
    sys.exit("check-layout: expected LOAD flags \"R RE R RE R RW RW\", got \"%s\"" % names)
if loads[1][0] % 0x1000:
    sys.exit("check-layout: the start-up text segment (%#x) does not begin on a page" % loads[1][0])
print("check-layout: ok")
'
