//! The learned state's file (`HAKMEM_ACE_PROFILE`): loaded when the
//! worker starts, saved when it stops. The format is
//! `hakmem_ace_learning::profile`'s.

use core::sync::atomic::Ordering::Relaxed;
use std::path::Path;

use hakmem_ace_learning::profile::{self, PROFILE_LEN};
use hakmem_ace_learning::{Knob, Learner, PolicyWriter, POLICY};

use super::snapshot::PROFILE_LOADED;
use super::worker::apply_span_knob;

pub(super) fn load_profile(path: &Path, l: &mut Learner, w: &PolicyWriter<'_>, log: bool) {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            eprintln!(
                "hakmem ace: profile {}: cannot read ({e}); using defaults",
                path.display()
            );
            return;
        }
    };
    match profile::decode_into(&bytes, l) {
        Ok(()) => {
            let n = l.apply_all(w);
            PROFILE_LOADED.store(true, Relaxed);
            if let Some(d) = (n > 0).then(|| w.table().knob(Knob::DecayMs)) {
                if d != 0 {
                    hakmem_superslab_backend::set_decay_ms(d);
                }
            }
            apply_span_knob(w);
            if log {
                eprintln!(
                    "hakmem ace: profile {} loaded ({n} policy values applied, decay {})",
                    path.display(),
                    l.decay().phase().name()
                );
            }
        }
        Err(e) => eprintln!(
            "hakmem ace: profile {} rejected: {e}; using defaults",
            path.display()
        ),
    }
}

pub(super) fn save_profile(path: &Path, l: &Learner, log: bool) {
    let mut img = Box::new([0u8; PROFILE_LEN]);
    profile::encode(l, &POLICY, &mut img);
    match replace_file(path, &img[..]) {
        Ok(()) if log => eprintln!("hakmem ace: profile {} saved", path.display()),
        Ok(()) => {}
        Err(e) => eprintln!("hakmem ace: profile {}: cannot write ({e})", path.display()),
    }
}

/// Replaces the file at `path` with `bytes` whole: written to a temporary
/// file of this process beside it, then renamed over it, so that a reader
/// sees the old file or the new one. The temporary file is per process:
/// processes of one program that end together (a parallel build's
/// compilers) must not share one; it is removed when a step fails.
pub(super) fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let r = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}
