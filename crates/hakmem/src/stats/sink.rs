//! Where the exit report goes: a descriptor taken when the environment is
//! read, so that a program which closes (or reuses) its stderr before it
//! exits — `ls` does, through gnulib's `close_stdout` — still gets its
//! `HAKMEM_STATS` report.
//!
//! [`open`] runs once, from the configuration reading, and only when
//! `HAKMEM_STATS` asks for a report. It opens `HAKMEM_STATS_FILE` for
//! appending when that is set (a path that cannot be opened is reported in
//! one line and stderr used instead), or duplicates fd 2. Either way the
//! descriptor is close-on-exec (an `exec`'d program reads the environment
//! and takes its own) and is moved to a number at or above [`HIGH_FD`] when
//! the descriptor limit allows, out of the way of programs and shells that
//! `dup2` onto small fixed numbers.
//!
//! The descriptor's device and inode are recorded too: if the program
//! closed it and the number now names something else, the report goes to
//! fd 2 rather than into an unrelated file. Nothing here allocates.

use core::sync::atomic::AtomicI32;
use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use core::fmt::Write;

use crate::sys::StackStr;

/// The report descriptor; -1 until [`open`] ran (or when it found neither
/// the file nor an open fd 2).
static FD: AtomicI32 = AtomicI32::new(-1);
/// `st_dev` and `st_ino` of [`FD`] when it was taken.
static DEV: AtomicU64 = AtomicU64::new(0);
static INO: AtomicU64 = AtomicU64::new(0);

/// The lowest descriptor number the report descriptor is moved to (when
/// `RLIMIT_NOFILE` allows; any free number otherwise).
pub(crate) const HIGH_FD: libc::c_int = 100;

/// `(st_dev, st_ino)` of `fd`, or `None` when it is not open.
fn identity(fd: libc::c_int) -> Option<(u64, u64)> {
    // SAFETY: an all-zero `stat` is a valid value; fstat fills it.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: a valid out-pointer; a bad descriptor only makes it fail.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    Some((st.st_dev as u64, st.st_ino as u64))
}

/// A close-on-exec duplicate of `fd` at [`HIGH_FD`] or above, else at the
/// lowest free number; -1 when `fd` is not open.
fn dup_high(fd: libc::c_int) -> libc::c_int {
    // SAFETY: fcntl with F_DUPFD_CLOEXEC only creates a descriptor.
    let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, HIGH_FD) };
    if d >= 0 {
        return d;
    }
    // EINVAL: HIGH_FD is above the descriptor limit; EMFILE: nothing free
    // up there. Any number will do.
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) }
}

/// Opens `path` (NUL-terminated) for appending, close-on-exec, mode 0644,
/// moved up to [`HIGH_FD`] if possible. `Err(errno)` when it cannot be
/// opened.
fn open_file(path: &core::ffi::CStr) -> Result<libc::c_int, i32> {
    // SAFETY: `path` is NUL-terminated; open only reads it.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC,
            0o644 as libc::c_uint,
        )
    };
    if fd < 0 {
        // SAFETY: __errno_location returns this thread's errno slot.
        return Err(unsafe { *libc::__errno_location() });
    }
    if fd >= HIGH_FD {
        return Ok(fd);
    }
    let high = dup_high(fd);
    if high >= 0 && high != fd {
        // SAFETY: `fd` is the descriptor we just opened and no one else
        // knows; its duplicate `high` stays.
        unsafe { libc::close(fd) };
        Ok(high)
    } else {
        Ok(fd)
    }
}

/// Takes the report descriptor (once; later calls do nothing): the file
/// `HAKMEM_STATS_FILE` names, or a duplicate of fd 2. Called by the
/// configuration reading when `HAKMEM_STATS` is on.
pub(crate) fn open() {
    if FD.load(Acquire) >= 0 {
        return;
    }
    let mut fd = -1;
    if let Some(path) = crate::env::var_cstr(crate::env_name!("HAKMEM_STATS_FILE")) {
        if !path.is_empty() {
            match open_file(path) {
                Ok(f) => fd = f,
                Err(errno) => {
                    let mut why = StackStr::<80>::new();
                    let _ = write!(
                        why,
                        "cannot be opened: errno {errno}; the report goes to stderr"
                    );
                    crate::env::bad_setting(crate::env_name!("HAKMEM_STATS_FILE"), why.as_str());
                }
            }
        }
    }
    if fd < 0 {
        fd = dup_high(2);
    }
    if fd < 0 {
        return;
    }
    let (dev, ino) = identity(fd).unwrap_or((0, 0));
    DEV.store(dev, Relaxed);
    INO.store(ino, Relaxed);
    FD.store(fd, Release);
}

/// The descriptor the exit report is written to: the one [`open`] took if
/// it still names what it named then, else fd 2.
pub(crate) fn report_fd() -> libc::c_int {
    let fd = FD.load(Acquire);
    if fd < 0 {
        return 2;
    }
    match identity(fd) {
        Some((dev, ino)) if dev == DEV.load(Relaxed) && ino == INO.load(Relaxed) => fd,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dup_high_lands_high_and_is_cloexec() {
        let d = dup_high(1);
        assert!(d >= 0);
        // SAFETY: a descriptor we own.
        let flags = unsafe { libc::fcntl(d, libc::F_GETFD) };
        assert!(flags & libc::FD_CLOEXEC != 0);
        assert_eq!(identity(d), identity(1));
        // SAFETY: our own duplicate.
        unsafe { libc::close(d) };
    }
}
