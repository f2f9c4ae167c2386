//! Building the bench's C programs (the harnesses, the footprint probe,
//! the ace-real wrapper) and `libhakmem.so`, for the modes that run them
//! under `LD_PRELOAD`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes `<name>.c` (`source`) into `dir` and compiles it with
/// `cc -O2 -fno-builtin` (`$CC` if set) into `dir/<name>`.
pub(crate) fn build_c_program(dir: &Path, name: &str, source: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let src = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&src, source).map_err(|e| e.to_string())?;
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let o = Command::new(&cc)
        .args(["-O2", "-fno-builtin", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", cc.to_string_lossy()))?;
    if !o.status.success() {
        return Err(format!(
            "cc failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(bin)
}

/// The path of `libhakmem.so`, after (re)building it if asked to.
pub(crate) fn hakmem_so(build: bool, notes: &mut Vec<String>) -> PathBuf {
    let so = crate::target_dir().join("release").join("libhakmem.so");
    if build {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        eprintln!("hakmem-bench: cargo build --release -p hakmem-preload");
        let st = Command::new(cargo)
            .args(["build", "--release", "-p", "hakmem-preload", "--quiet"])
            .current_dir(crate::workspace_root())
            .status();
        match st {
            Ok(s) if s.success() => {}
            Ok(s) => notes.push(format!(
                "building libhakmem.so failed ({s}); using what is there"
            )),
            Err(e) => notes.push(format!("cannot run cargo ({e}); using what is there")),
        }
    }
    so
}
