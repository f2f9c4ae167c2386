//! How long the previous run of a program lived, kept beside its profile
//! (`<profile>.life`, the milliseconds in ASCII), so that a program whose
//! last run was shorter than `HAKMEM_ACE_MIN_LIFE_MS` starts no worker
//! thread: a short command (`ls`, `git status`) ends before the worker's
//! first decisions could matter, and the thread would be its only cost.
//!
//! Written when the worker stops with a profile (every run that started
//! it), and by a run that did not start it only when that run lived long
//! enough, so that the next run starts the worker again. A short run that
//! skipped the worker writes nothing.
//!
//! [`last_run_was_short`] runs in `libhakmem.so`'s constructor and does
//! not allocate: its paths are built in a stack buffer and the file is
//! read with `open`/`read`, so a short program that skips the worker never
//! maps hakmem's first superslab unless it allocates itself.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::env::{parse_u32, var_cstr};

/// Longest path built here (Linux's `PATH_MAX`).
const PATH_MAX: usize = 4096;

/// Appends `bytes` to `buf` at `*n`; false when it does not fit (with the
/// NUL that [`build`] adds).
fn push(buf: &mut [u8; PATH_MAX], n: &mut usize, bytes: &[u8]) -> bool {
    if *n + bytes.len() >= PATH_MAX {
        return false;
    }
    buf[*n..*n + bytes.len()].copy_from_slice(bytes);
    *n += bytes.len();
    true
}

/// Whether the path `p` (NUL-terminated) is a directory.
fn is_dir(p: &core::ffi::CStr) -> bool {
    // SAFETY: an all-zero `stat` is a valid out-value.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid out-pointer.
    let r = unsafe { libc::stat(p.as_ptr(), &mut st) };
    r == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFDIR
}

/// Builds in `buf` the profile file that `HAKMEM_ACE_PROFILE=value`
/// names for this program, followed by `suffix` and a NUL: `value` itself
/// when it names a file; when it names a directory (or ends in `/`),
/// `<value>/<executable's file name>.<FNV-1a 64 of its full path, hex>.ace`,
/// so that programs of the same name in different places keep separate
/// profiles. Returns the length without the NUL; `None` when the
/// executable cannot be named or the path does not fit. Does not allocate.
fn build(buf: &mut [u8; PATH_MAX], value: &core::ffi::CStr, suffix: &[u8]) -> Option<usize> {
    let v = value.to_bytes();
    let mut n = 0;
    if !v.starts_with(b"/") {
        // A relative value is resolved against the directory the process
        // starts in, so that a `chdir` before exit writes to the same
        // place the start read from.
        // SAFETY: `buf` has `PATH_MAX` bytes; getcwd NUL-terminates.
        let r = unsafe { libc::getcwd(buf.as_mut_ptr() as *mut libc::c_char, PATH_MAX) };
        if r.is_null() {
            return None;
        }
        n = buf.iter().position(|&b| b == 0)?;
        if !push(buf, &mut n, b"/") {
            return None;
        }
    }
    if !(v.ends_with(b"/") || is_dir(value)) {
        return (push(buf, &mut n, v) && push(buf, &mut n, suffix)).then(|| {
            buf[n] = 0;
            n
        });
    }
    let mut exe = [0u8; PATH_MAX];
    // SAFETY: a NUL-terminated path and a buffer of `PATH_MAX` bytes.
    let len = unsafe {
        libc::readlink(
            c"/proc/self/exe".as_ptr(),
            exe.as_mut_ptr() as *mut libc::c_char,
            PATH_MAX,
        )
    };
    if len <= 0 || len as usize >= PATH_MAX {
        return None;
    }
    let exe = &exe[..len as usize];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in exe {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    // `rsplit` yields at least one piece.
    let name = exe.rsplit(|&b| b == b'/').next().unwrap_or_default();
    let mut hex = [0u8; 17];
    hex[0] = b'.';
    for (i, d) in hex[1..].iter_mut().enumerate() {
        *d = b"0123456789abcdef"[(h >> (60 - 4 * i)) as usize & 15];
    }
    let ok = push(buf, &mut n, v)
        && (v.ends_with(b"/") || push(buf, &mut n, b"/"))
        && push(buf, &mut n, name)
        && push(buf, &mut n, &hex)
        && push(buf, &mut n, b".ace")
        && push(buf, &mut n, suffix);
    ok.then(|| {
        buf[n] = 0;
        n
    })
}

/// The profile file `HAKMEM_ACE_PROFILE=value` names for this program
/// (see [`build`]); `None`, reported, when it cannot be built.
pub(super) fn profile_path(value: &[u8]) -> Option<PathBuf> {
    let Ok(c) = std::ffi::CString::new(value) else {
        return None;
    };
    let mut buf = [0u8; PATH_MAX];
    match build(&mut buf, &c, b"") {
        Some(n) => Some(PathBuf::from(OsStr::from_bytes(&buf[..n]))),
        None => {
            eprintln!(
                "hakmem ace: HAKMEM_ACE_PROFILE={}: cannot name this program's profile; no profile",
                String::from_utf8_lossy(value)
            );
            None
        }
    }
}

/// A record older than this (by its file's modification time) is not
/// trusted: the worker starts again, so a program that was once short and
/// now lives long but never reaches its exit hooks (killed by a signal,
/// `_exit`) is re-checked at least hourly.
pub const LIFE_EXPIRY_S: i64 = 3600;

/// The `.life` path the constructor built, kept for the exit hook of a run
/// that skipped the worker (NUL-terminated; empty when none).
struct Kept(core::cell::UnsafeCell<[u8; PATH_MAX]>);

// SAFETY: written once, by the constructor's thread before the exit hook
// that reads it is registered (`atexit` orders the two).
unsafe impl Sync for Kept {}

#[link_section = ".bss.hakmem_cold"] // after the rest of .bss: see crates/preload/layout.ld
static KEPT: Kept = Kept(core::cell::UnsafeCell::new([0; PATH_MAX]));

/// With `HAKMEM_ACE_PROFILE` set: whether this program's previous run
/// lived less than `min_life_ms` (its `.life` file says so, and was
/// written less than [`LIFE_EXPIRY_S`] ago). False when there is no
/// profile or no record, so the worker starts. When true, the path is kept
/// for [`record_kept`]. Does not allocate. Call it once, from the
/// constructor (or the first `start_from_env`).
pub(super) fn last_run_was_short(min_life_ms: u32) -> bool {
    let Some(value) = var_cstr(crate::env_name!("HAKMEM_ACE_PROFILE")) else {
        return false;
    };
    if value.is_empty() {
        return false;
    }
    // SAFETY: only this function writes KEPT, before any reader exists
    // (see `Kept`).
    let path = unsafe { &mut *KEPT.0.get() };
    if build(path, value, b".life").is_none() {
        path[0] = 0;
        return false;
    }
    let short = read_short(path, min_life_ms);
    if !short {
        path[0] = 0;
    }
    short
}

/// Whether the record at `path` (NUL-terminated) is fresh and below
/// `min_life_ms`.
fn read_short(path: &[u8; PATH_MAX], min_life_ms: u32) -> bool {
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe {
        libc::open(
            path.as_ptr() as *const libc::c_char,
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: an all-zero `stat` is a valid out-value.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: an all-zero `timespec` is a valid out-value.
    let mut now: libc::timespec = unsafe { core::mem::zeroed() };
    // SAFETY: our descriptor, a valid clock id, valid out-pointers.
    let fresh = unsafe {
        libc::fstat(fd, &mut st) == 0
            && libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) == 0
    } && now.tv_sec - st.st_mtime < LIFE_EXPIRY_S;
    let mut text = [0u8; 16];
    // SAFETY: reads at most `text.len()` bytes into it from our descriptor.
    let got = unsafe { libc::read(fd, text.as_mut_ptr() as *mut libc::c_void, text.len()) };
    // SAFETY: our descriptor, closed once.
    unsafe { libc::close(fd) };
    if !fresh || got <= 0 {
        return false;
    }
    let t = &text[..got as usize];
    let digits = t.iter().take_while(|b| b.is_ascii_digit()).count();
    // `parse_u32` refuses an empty or over-long number: not short.
    parse_u32(&t[..digits]).is_some_and(|ms| ms < min_life_ms)
}

/// The exit side of a run that skipped the worker: records `ms` at the
/// path [`last_run_was_short`] kept.
pub(super) fn record_kept(ms: u32) -> Option<PathBuf> {
    // SAFETY: written before this hook was registered; read-only now.
    let kept = unsafe { &*KEPT.0.get() };
    let n = kept.iter().position(|&b| b == 0)?;
    if n == 0 {
        return None;
    }
    let life = PathBuf::from(OsStr::from_bytes(&kept[..n]));
    write_file(&life, ms);
    Some(life)
}

/// The lifetime file of the profile at `profile`.
fn life_path(profile: &Path) -> PathBuf {
    let mut p: OsString = profile.as_os_str().to_owned();
    p.push(".life");
    PathBuf::from(p)
}

/// Records `ms` beside `profile`.
pub(super) fn write(profile: &Path, ms: u32) {
    write_file(&life_path(profile), ms);
}

/// Writes `ms` to `path` (replacing it whole, as the profile is). A
/// failure is reported in one line.
fn write_file(path: &Path, ms: u32) {
    if let Err(e) = super::profile::replace_file(path, format!("{ms}\n").as_bytes()) {
        eprintln!("hakmem ace: {}: cannot write ({e})", path.display());
    }
}
