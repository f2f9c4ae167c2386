#!/usr/bin/env python3
"""Cost of the learning layer in a very short program: `/bin/true` under
LD_PRELOAD=target/release/libhakmem.so with ACE off, on, and on with a
profile directory (after a first run has recorded that the program is
short, so no worker starts). Batches of runs alternate between the three;
prints the median wall and CPU time per run. docs/ace.md, "The persisted
context".

    python3 benches/ace-short.py [batches] [runs-per-batch]   (default 20 100)
"""
import os
import statistics as st
import subprocess
import sys
import tempfile
import time

lib = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "libhakmem.so")
if not os.path.exists(lib):
    sys.exit(f"ace-short: {lib} missing (cargo build --release)")
batches = int(sys.argv[1]) if len(sys.argv) > 1 else 20
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 100
profile_dir = tempfile.mkdtemp(prefix="hakmem-ace-short-") + "/"
base = {k: v for k, v in os.environ.items() if not k.startswith("HAKMEM_")}
cfgs = {
    "off": dict(base, LD_PRELOAD=lib, HAKMEM_ACE="0"),
    "on": dict(base, LD_PRELOAD=lib, HAKMEM_ACE="1"),
    "on+profile": dict(base, LD_PRELOAD=lib, HAKMEM_ACE="1", HAKMEM_ACE_PROFILE=profile_dir),
}
# The first run records the program's lifetime.
subprocess.run(["/bin/true"], env=cfgs["on+profile"], check=True)
wall = {k: [] for k in cfgs}
cpu = {k: [] for k in cfgs}
for _ in range(batches):
    for k, env in cfgs.items():
        r0, t0 = os.times(), time.perf_counter()
        for _ in range(runs):
            subprocess.run(["/bin/true"], env=env, check=True)
        t, r1 = (time.perf_counter() - t0) / runs, os.times()
        wall[k].append(t * 1e3)
        used = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
        cpu[k].append(used / runs * 1e3)
for k in cfgs:
    print(f"{k:11} wall median {st.median(wall[k]):.3f} ms "
          f"(range {min(wall[k]):.3f}-{max(wall[k]):.3f})  CPU median {st.median(cpu[k]):.3f} ms")
