//! The OS readings the worker takes each tick (none allocates): resident
//! set, minor faults, the worker thread's CPU time.

pub(super) fn rss_bytes() -> u64 {
    // SAFETY: a NUL-terminated path; the fd is closed below.
    let fd = unsafe { libc::open(c"/proc/self/statm".as_ptr(), libc::O_RDONLY) };
    if fd < 0 {
        return 0;
    }
    let mut buf = [0u8; 128];
    // SAFETY: reading into our own buffer.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
    // SAFETY: our fd.
    unsafe { libc::close(fd) };
    if n <= 0 {
        return 0;
    }
    let s = &buf[..n as usize];
    let mut fields = s.split(|&b| b == b' ');
    let _size = fields.next();
    let pages = fields
        .next()
        .and_then(|f| core::str::from_utf8(f).ok())
        .and_then(|f| f.trim().parse::<u64>().ok())
        .unwrap_or(0);
    pages * hakmem_superslab_backend::page_size() as u64
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
