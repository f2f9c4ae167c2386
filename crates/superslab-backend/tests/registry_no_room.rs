//! When the registry's 128 MiB table cannot be mapped (an address-space
//! limit, `RLIMIT_AS`), nothing is mapped unrecorded: a superslab or span
//! request fails cleanly, and succeeds once the table fits (registry.rs,
//! `reserve`; docs/platforms.md). A process of its own: it lowers the
//! process's limit, and the table must not exist yet.

use hakmem_superslab_backend::{acquire_slab, registry, span_alloc, span_free};

/// The process's current virtual size in bytes (`VmSize`).
fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmSize");
    kib << 10
}

fn set_as_limit(soft: libc::rlim_t) -> libc::rlimit {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut old) }, 0);
    let new = libc::rlimit {
        rlim_cur: soft,
        rlim_max: old.rlim_max,
    };
    // SAFETY: a valid limit no higher than the hard one.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &new) }, 0);
    old
}

#[test]
fn without_room_for_the_table_requests_fail_and_later_succeed() {
    // 32 MiB of room: enough for a superslab's aligned mapping, not for
    // the table.
    let old = set_as_limit(vm_size() + (32 << 20));
    let refused = !registry::reserve();
    let slab = acquire_slab(0, 1, 0);
    let span = span_alloc(1 << 20, 16, false);
    // SAFETY: restores the limit read above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &old) }, 0);
    assert!(refused, "the table was mapped within 32 MiB of room");
    assert!(slab.is_none(), "a superslab was handed out unrecorded");
    assert!(span.is_null(), "a span was handed out unrecorded");
    // With the limit back, the table and a span are mapped and recorded.
    assert!(registry::reserve());
    let s = span_alloc(1 << 20, 16, false);
    assert!(!s.is_null());
    assert_ne!(registry::kind_of(s as usize), registry::KIND_NONE);
    assert!(span_free(s));
}
