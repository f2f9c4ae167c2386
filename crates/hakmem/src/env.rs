//! Reading `HAKMEM_*` environment variables with `getenv` (which does not
//! allocate), parsing their values, and the one-line report of a value
//! that cannot be used. Above `sys` in the facade's module order; below
//! everything that reads a setting (`config`, `ace`, `background`, the
//! report sink).

use core::ffi::CStr;

/// The value of variable `name`, if set.
pub(crate) fn var(name: &CStr) -> Option<&'static [u8]> {
    var_cstr(name).map(CStr::to_bytes)
}

/// [`var`] as the C string itself (for a value passed on to the OS, such
/// as a path).
pub(crate) fn var_cstr(name: &CStr) -> Option<&'static CStr> {
    // SAFETY: `name` is NUL-terminated; getenv returns null or a pointer
    // into the environment, which we only read.
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        None
    } else {
        // SAFETY: non-null getenv results are NUL-terminated strings.
        Some(unsafe { CStr::from_ptr(p) })
    }
}

pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 {
        return None;
    }
    let mut v = 0u32;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as u32;
    }
    Some(v)
}

/// The value of numeric setting `name`; a value that is not a number is
/// reported (`hakmem: NAME=value ignored (not a number)`) and the default
/// kept.
pub(crate) fn number(name: &CStr) -> Option<u32> {
    let v = var(name)?;
    let n = parse_u32(v);
    if n.is_none() {
        bad_setting(name, "not a number");
    }
    n
}

/// [`number`], and a number outside `lo..=hi` is reported too
/// (`hakmem: NAME=value ignored (why)`) and the default kept.
pub(crate) fn number_in(name: &CStr, lo: u32, hi: u32, why: &str) -> Option<u32> {
    let n = number(name)?;
    if n < lo || n > hi {
        bad_setting(name, why);
        return None;
    }
    Some(n)
}

pub(crate) fn truthy(s: &[u8]) -> bool {
    matches!(s, b"1" | b"yes" | b"true" | b"on")
}

pub(crate) fn falsy(s: &[u8]) -> bool {
    matches!(s, b"" | b"0" | b"no" | b"false" | b"off")
}

/// On/off setting `name`: `Some(true)` for `1`/`yes`/`true`/`on`,
/// `Some(false)` for empty/`0`/`no`/`false`/`off`; any other value is
/// reported (`hakmem: NAME=value ignored (not 1 or 0)`) and gives `None`
/// (the default), as does an unset variable.
pub(crate) fn flag(name: &CStr) -> Option<bool> {
    let v = var(name)?;
    if truthy(v) {
        Some(true)
    } else if falsy(v) {
        Some(false)
    } else {
        bad_setting(name, "not 1 or 0");
        None
    }
}

/// `hakmem: NAME=value ignored (why)`: a bad setting, reported once per
/// reading; the caller uses the default.
#[cold]
pub(crate) fn bad_setting(name: &CStr, why: &str) {
    let value = var(name).unwrap_or(b"");
    let mut buf = [0u8; 200];
    let mut n = 0;
    let parts: [&[u8]; 7] = [
        b"hakmem: ",
        name.to_bytes(),
        b"=",
        value,
        b" ignored (",
        why.as_bytes(),
        b")\n",
    ];
    for (i, part) in parts.iter().enumerate() {
        // Keep room for the closing part whatever the value's length.
        let limit = if i == parts.len() - 1 {
            buf.len()
        } else {
            buf.len() - 2
        };
        for &b in part.iter() {
            if n < limit {
                buf[n] = b;
                n += 1;
            }
        }
    }
    crate::sys::write_stderr(&buf[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_u32(b"42"), Some(42));
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"4x"), None);
        assert_eq!(parse_u32(b"12345678901"), None);
        assert!(truthy(b"1") && !truthy(b"0"));
    }
}
