//! The foreign-pointer policy: what `free` and friends do with a pointer
//! that is in no hakmem mapping (`HAKMEM_FOREIGN_FREE`, or
//! `hakmem::options::set_foreign_free`, which wins). Above `env` in the
//! facade's module order; `diag` (which applies it) and `config`/`options`
//! (which report and set it) sit above this.

use core::sync::atomic::AtomicBool;
use core::sync::atomic::AtomicU8;
use core::sync::atomic::Ordering::Relaxed;

/// What to do with a pointer that is not in any hakmem mapping
/// (`HAKMEM_FOREIGN_FREE`, read with `getenv` at each such pointer: this is
/// a cold path, and reading it here works from the process's first call).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ForeignPolicy {
    /// Default: stop, as glibc does for a pointer it never handed out.
    Abort,
    /// `ignore`: one line, and the pointer is left alone (leaked).
    Ignore,
    /// `forward`: the preload library's handler passes it to the next
    /// allocator; when it cannot (yet), the pointer is left alone.
    Forward,
}

/// `hakmem::options::set_foreign_free`: 0 = the environment decides, else
/// 1 + the policy.
static OVERRIDE: AtomicU8 = AtomicU8::new(0);
/// `HAKMEM_FOREIGN_FREE`'s bad value was reported already.
static REPORTED: AtomicBool = AtomicBool::new(false);

/// The policy in force.
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub(crate) fn policy() -> ForeignPolicy {
    // `hakmem::options::set_foreign_free` wins over the environment.
    if let Some(p) = override_policy() {
        return p;
    }
    match crate::env::var(crate::env_name!("HAKMEM_FOREIGN_FREE")) {
        None => ForeignPolicy::Abort,
        Some(b"ignore") => ForeignPolicy::Ignore,
        Some(b"forward") => ForeignPolicy::Forward,
        Some(b"abort") => ForeignPolicy::Abort,
        Some(_) => {
            // Reported the first time; later readings use the default
            // silently.
            if !REPORTED.swap(true, Relaxed) {
                crate::env::bad_setting(
                    crate::env_name!("HAKMEM_FOREIGN_FREE"),
                    "not abort, ignore or forward",
                );
            }
            ForeignPolicy::Abort
        }
    }
}

/// The policy chosen from Rust (`None`: the environment's).
fn override_policy() -> Option<ForeignPolicy> {
    use ForeignPolicy::*;
    match OVERRIDE.load(Relaxed) {
        1 => Some(Abort),
        2 => Some(Ignore),
        3 => Some(Forward),
        _ => None,
    }
}

/// Chooses the policy from Rust (`hakmem::options::set_foreign_free`).
pub(crate) fn set_override(p: ForeignPolicy) {
    use ForeignPolicy::*;
    let v = match p {
        Abort => 1,
        Ignore => 2,
        Forward => 3,
    };
    OVERRIDE.store(v, Relaxed);
}
