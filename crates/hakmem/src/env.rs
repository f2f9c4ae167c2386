//! Reading `HAKMEM_*` environment variables (a walk of `environ` on glibc,
//! `getenv` elsewhere; neither allocates), parsing their values, and the one-line report of a value
//! that cannot be used. Above `sys` in the facade's module order; below
//! everything that reads a setting (`config`, `ace`, `background`, the
//! report sink).

use core::ffi::CStr;

/// The name of a `HAKMEM_*` variable as a `&'static CStr` that lives in
/// the start-up read-only data (`.rodata.hakmem_startup`, which
/// `crates/preload/layout.ld` keeps in the first read-only segment, the one
/// every program maps) instead of among the rest of the strings (panic
/// messages and paths, which the script moves after the text): reading the
/// environment at start-up compares these names, and nothing else there.
#[macro_export]
macro_rules! env_name {
    ($name:literal) => {{
        const N: usize = $name.len() + 1;
        #[link_section = ".rodata.hakmem_startup"] // start-up group, see docs/benchmarks.md
        static NAME: [u8; N] = $crate::nul_terminated::<N>($name);
        $crate::name_cstr(&NAME)
    }};
}

/// `name` and a NUL, for [`env_name!`]; a name with a NUL inside does not
/// compile.
#[doc(hidden)]
pub const fn nul_terminated<const N: usize>(name: &str) -> [u8; N] {
    let b = name.as_bytes();
    assert!(b.len() + 1 == N, "env_name!: wrong length");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < b.len() {
        assert!(b[i] != 0, "env_name!: a NUL inside the name");
        out[i] = b[i];
        i += 1;
    }
    out
}

/// The C string of a [`nul_terminated`] array, for [`env_name!`].
#[doc(hidden)]
pub fn name_cstr(bytes: &'static [u8]) -> &'static CStr {
    // SAFETY: built by `nul_terminated`: one NUL, at the end (checked at
    // compile time).
    unsafe { CStr::from_bytes_with_nul_unchecked(bytes) }
}

/// The value of variable `name`, if set.
pub(crate) fn var(name: &CStr) -> Option<&'static [u8]> {
    var_cstr(name).map(CStr::to_bytes)
}

/// [`var`] as the C string itself (for a value passed on to the OS, such
/// as a path).
pub(crate) fn var_cstr(name: &CStr) -> Option<&'static CStr> {
    let p = lookup(name.to_bytes());
    if p.is_null() {
        None
    } else {
        // SAFETY: `lookup` returns null or a NUL-terminated string of the
        // environment.
        Some(unsafe { CStr::from_ptr(p) })
    }
}

/// The value of `name` (what `getenv` returns), found by walking
/// `environ` here: glibc's `getenv` calls `strlen`, whose AVX2 variant
/// lies on libc pages that a small program otherwise never touches, and
/// each such page costs it a 64 KiB window of resident file pages (the
/// kernel's fault-around; see docs/benchmarks.md, "Footprint cuts").
/// Null when the variable is not set. Does not allocate.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn lookup(name: &[u8]) -> *const libc::c_char {
    // SAFETY: `environ` is null or a null-terminated array of pointers to
    // NUL-terminated `NAME=value` strings, as getenv reads it (the same
    // race with a concurrent setenv as getenv has).
    unsafe {
        let mut e = libc::environ as *const *const libc::c_char;
        if e.is_null() {
            return core::ptr::null();
        }
        while !(*e).is_null() {
            let s = *e as *const u8;
            let mut i = 0;
            // Compare up to the name's end; a NUL in the entry stops the
            // loop at a mismatch (names contain no NUL).
            while i < name.len() && *s.add(i) == name[i] {
                i += 1;
            }
            if i == name.len() && *s.add(i) == b'=' {
                return s.add(i + 1) as *const libc::c_char;
            }
            e = e.add(1);
        }
    }
    core::ptr::null()
}

/// Every other target: libc's `getenv` (which does not allocate).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn lookup(name: &[u8]) -> *const libc::c_char {
    let mut buf = [0u8; 64];
    if name.len() >= buf.len() {
        return core::ptr::null();
    }
    buf[..name.len()].copy_from_slice(name);
    // SAFETY: `buf` is NUL-terminated; getenv returns null or a pointer
    // into the environment, which we only read.
    unsafe { libc::getenv(buf.as_ptr() as *const libc::c_char) }
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
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
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
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
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
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
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

    #[test]
    fn lookup_finds_what_getenv_finds() {
        // PATH is set in any test environment; a prefix of a name is not
        // the name.
        // SAFETY: NUL-terminated names; getenv only reads.
        let want = unsafe { libc::getenv(c"PATH".as_ptr()) };
        assert_eq!(
            var_cstr(c"PATH").map(|c| c.as_ptr()),
            (!want.is_null()).then_some(want as *const libc::c_char)
        );
        assert_eq!(var(c"PAT"), None);
        assert_eq!(var(c"HAKMEM_NO_SUCH_VARIABLE_AT_ALL"), None);
    }
}
