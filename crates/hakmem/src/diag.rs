//! One-line diagnostics on stderr, written without allocating or
//! formatting machinery (safe to call from inside malloc/free), and the
//! fail-fast stops of the free boundary.
//!
//! Every misuse hakmem can tell apart stops the program the way glibc does:
//! one line naming the call and the pointer, then `abort()` (SIGABRT). The
//! only misuse that may be let through is a pointer that is not hakmem's at
//! all, and only when the user asked for it with `HAKMEM_FOREIGN_FREE`
//! (see `docs/security.md`, and [`crate::foreign`] for the policy).

/// Writes `hakmem: <call>: <what> 0x<ptr>\n` to stderr.
pub(crate) fn report(call: &str, what: &str, p: *const u8) {
    let mut buf = [0u8; 200];
    let mut n = 0;
    for part in [
        b"hakmem: ".as_slice(),
        call.as_bytes(),
        b": ",
        what.as_bytes(),
        b" 0x",
    ] {
        for &b in part {
            if n < buf.len() - 20 {
                buf[n] = b;
                n += 1;
            }
        }
    }
    let v = p as usize;
    let digits = if v == 0 {
        1
    } else {
        (usize::BITS - v.leading_zeros()).div_ceil(4) as usize
    };
    for i in (0..digits).rev() {
        let d = ((v >> (i * 4)) & 0xf) as u8;
        buf[n] = if d < 10 { b'0' + d } else { b'a' + d - 10 };
        n += 1;
    }
    buf[n] = b'\n';
    n += 1;
    crate::sys::write_stderr(&buf[..n]);
}

/// Writes `hakmem: <line>\n` to stderr and aborts: hakmem cannot run here.
#[cold]
#[inline(never)]
pub(crate) fn unsupported(line: &str) -> ! {
    for part in [b"hakmem: ".as_slice(), line.as_bytes(), b"\n"] {
        crate::sys::write_stderr(part);
    }
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// Reports and aborts: the program handed `call` a pointer that would
/// corrupt the heap if hakmem went on.
#[cold]
#[inline(never)]
pub(crate) fn fatal(call: &str, what: &str, p: *const u8) -> ! {
    report(call, what, p);
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

/// `call` was given `p`, which is already free (its free mark is set, or
/// its span header says so).
#[cold]
#[inline(never)]
pub(crate) fn double_free(call: &str, p: *const u8) -> ! {
    fatal(call, "double free of", p)
}

/// `call` was given `p`, which lies inside hakmem's memory but is not the
/// start of a block it handed out (interior, misaligned, never allocated,
/// or in a slab that holds no blocks).
#[cold]
#[inline(never)]
pub(crate) fn invalid_pointer(call: &str, p: *const u8) -> ! {
    fatal(call, "invalid pointer", p)
}

/// `call` was given `p`, which is in no hakmem mapping: abort unless
/// `HAKMEM_FOREIGN_FREE` says otherwise (the handler, if any, has already
/// declined it).
#[cold]
#[inline(never)]
pub(crate) fn foreign(call: &str, p: *const u8) {
    use crate::foreign::ForeignPolicy;
    match crate::foreign::policy() {
        ForeignPolicy::Abort => fatal(call, "invalid pointer (not allocated by hakmem)", p),
        ForeignPolicy::Ignore => report(
            call,
            "pointer not allocated by hakmem ignored (HAKMEM_FOREIGN_FREE=ignore):",
            p,
        ),
        ForeignPolicy::Forward => report(
            call,
            "pointer not allocated by hakmem could not be forwarded, ignored:",
            p,
        ),
    }
}
