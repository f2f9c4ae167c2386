//! The facade's few OS helpers, each written once: writing to a descriptor
//! (and stderr), a string buffer on the stack, the millisecond clock, the
//! `getrusage`, `clock_gettime` and `/proc/self/statm` readings. The bottom of the facade's
//! module order: it uses nothing of the crate. Nothing here allocates, so
//! everything is safe to call from inside malloc/free. (The memory-mapping
//! calls live in `hakmem_superslab_backend::os`.)

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Writes all of `bytes` to `fd` (retrying short writes and `EINTR`); a
/// failure loses the rest.
pub(crate) fn write_all(fd: libc::c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writing our own initialised bytes.
        let n = unsafe { libc::write(fd, bytes.as_ptr() as *const libc::c_void, bytes.len()) };
        if n < 0 {
            // SAFETY: __errno_location returns this thread's errno slot.
            if unsafe { *libc::__errno_location() } == libc::EINTR {
                continue;
            }
            return;
        }
        if n == 0 {
            return;
        }
        // `get`: no panic path even if the kernel claimed too much.
        bytes = bytes.get(n as usize..).unwrap_or(&[]);
    }
}

/// Writes `bytes` to stderr (fd 2) without allocating, retrying short
/// writes; a failed write only loses them. (Public for `libhakmem.so`'s own
/// diagnostics: one stderr writer for the facade and the C library.)
pub fn write_stderr(bytes: &[u8]) {
    write_all(2, bytes)
}

/// A fixed-capacity string on the stack that `core::fmt` writes into;
/// what does not fit is dropped (at a character boundary).
pub(crate) struct StackStr<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackStr<N> {
    pub(crate) const fn new() -> Self {
        StackStr {
            buf: [0; N],
            len: 0,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only whole `&str` pieces or whole characters are ever copied in.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> Write for StackStr<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for ch in s.chars() {
            let mut tmp = [0u8; 4];
            let b = ch.encode_utf8(&mut tmp).as_bytes();
            if self.len + b.len() > N {
                return Ok(());
            }
            self.buf[self.len..self.len + b.len()].copy_from_slice(b);
            self.len += b.len();
        }
        Ok(())
    }
}

/// Milliseconds since the facade's clock was first read (monotonic; one
/// origin for the whole process: the ACE worker and the background purge
/// share it).
///
/// `CLOCK_MONOTONIC` read directly, the origin kept in one atomic word:
/// `std`'s `OnceLock<Instant>` did the same through a generic
/// `OnceLock::initialize` that the linker placed among the cold code, so
/// the fork child handler (which notes the child's birth time) brought a
/// 64 KiB window of libhakmem.so's text into every forked child.
pub(crate) fn now_ms() -> u64 {
    static ORIGIN: AtomicU64 = AtomicU64::new(0);
    let ts = clock(libc::CLOCK_MONOTONIC);
    // At least 1: 0 marks the origin as not yet taken.
    let now = (ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000).max(1);
    match ORIGIN.load(Relaxed) {
        0 => match ORIGIN.compare_exchange(0, now, Relaxed, Relaxed) {
            Ok(_) => 0,
            Err(o) => now.saturating_sub(o),
        },
        o => now.saturating_sub(o),
    }
}

/// `getrusage(RUSAGE_SELF)`; all zero when the call fails.
pub(crate) fn rusage_self() -> libc::rusage {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
    // SAFETY: valid out-pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        // SAFETY: as above.
        ru = unsafe { core::mem::zeroed() };
    }
    ru
}

/// `clock_gettime(id)`; zero when the call fails.
pub(crate) fn clock(id: libc::clockid_t) -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
        ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
    }
    ts
}

/// The resident pages (second field) of a `/proc/<pid>/statm` line.
fn statm_resident(line: &[u8]) -> Option<u64> {
    let mut fields = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let resident = fields.nth(1)?;
    let mut v = 0u64;
    for &b in resident {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    Some(v)
}

/// The resident set size now (0 when `/proc/self/statm` cannot be read),
/// read into a stack buffer.
pub(crate) fn resident_bytes() -> u64 {
    // SAFETY: a NUL-terminated literal path.
    let fd = unsafe {
        libc::open(
            c"/proc/self/statm".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return 0;
    }
    let mut buf = [0u8; 128];
    let mut len = 0;
    while len < buf.len() {
        // SAFETY: reading into the unused tail of our own buffer.
        let n = unsafe {
            libc::read(
                fd,
                buf[len..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - len,
            )
        };
        if n <= 0 {
            break;
        }
        len += n as usize;
    }
    // SAFETY: our own descriptor, opened above.
    unsafe { libc::close(fd) };
    let page = hakmem_superslab_backend::page_size() as u64;
    statm_resident(&buf[..len]).map_or(0, |pages| pages.saturating_mul(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_str_truncates_at_a_character() {
        let mut s = StackStr::<5>::new();
        s.write_str("abcé€").unwrap();
        assert_eq!(s.as_str(), "abcé");
    }

    #[test]
    fn clock_moves_forward() {
        let a = clock(libc::CLOCK_MONOTONIC);
        let b = clock(libc::CLOCK_MONOTONIC);
        assert!((b.tv_sec, b.tv_nsec) >= (a.tv_sec, a.tv_nsec));
        assert!(now_ms() <= now_ms());
        assert!(rusage_self().ru_maxrss > 0);
    }

    #[test]
    fn statm_parses_the_resident_field() {
        assert_eq!(statm_resident(b"1234 567 89 1 0 300 0\n"), Some(567));
        assert_eq!(statm_resident(b"1234"), None);
        assert_eq!(statm_resident(b"1 x2 3"), None);
        assert_eq!(statm_resident(b""), None);
        assert!(resident_bytes() > 0);
    }
}
