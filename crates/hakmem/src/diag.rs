//! One-line diagnostics on stderr, written without allocating or
//! formatting machinery (safe to call from inside malloc/free).

/// Writes `hakmem: <what> <ptr as hex>\n` to stderr.
pub(crate) fn report(what: &str, p: *const u8) {
    let mut buf = [0u8; 160];
    let mut n = 0;
    for &b in b"hakmem: ".iter().chain(what.as_bytes()).chain(b" 0x") {
        if n < buf.len() - 20 {
            buf[n] = b;
            n += 1;
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
    // SAFETY: writing our own stack buffer to fd 2; a short or failed write
    // only loses the message.
    unsafe {
        libc::write(2, buf.as_ptr() as *const libc::c_void, n);
    }
}

/// A free of a pointer hakmem did not hand out: report, and abort in
/// checked mode. Never writes to any free list.
#[cold]
pub(crate) fn invalid_free(p: *const u8) {
    report(
        "free(): invalid pointer (not allocated by hakmem), ignored:",
        p,
    );
    if crate::config::checked() {
        // SAFETY: abort has no preconditions.
        unsafe { libc::abort() };
    }
}
