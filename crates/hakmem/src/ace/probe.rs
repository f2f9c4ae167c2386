//! The OS readings the worker takes each tick (none allocates): resident
//! set, minor faults, the worker thread's CPU time.

/// Resident set size, bytes.
pub(super) fn rss_bytes() -> u64 {
    crate::sys::resident_bytes()
}

/// Minor page faults of the process so far.
pub(super) fn minor_faults() -> u64 {
    crate::sys::rusage_self().ru_minflt as u64
}

/// CPU time of the calling thread, ns.
pub(super) fn thread_cpu_ns() -> u64 {
    let ts = crate::sys::clock(libc::CLOCK_THREAD_CPUTIME_ID);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
