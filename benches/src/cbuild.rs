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

/// The directories holding mimalloc 3's C source that the `libmimalloc-sys`
/// crate bundles: `$CARGO_HOME/registry/src/*/libmimalloc-sys-*/c_src/mimalloc/v3`
/// (`$CARGO_HOME` defaults to `~/.cargo`), newest crate version last.
fn mimalloc_sources() -> Vec<PathBuf> {
    let home = match std::env::var_os("CARGO_HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".cargo"),
            None => return Vec::new(),
        },
    };
    let mut found = Vec::new();
    let Ok(regs) = std::fs::read_dir(home.join("registry").join("src")) else {
        return found;
    };
    for reg in regs.flatten() {
        let Ok(crates) = std::fs::read_dir(reg.path()) else {
            continue;
        };
        for c in crates.flatten() {
            let name = c.file_name().to_string_lossy().into_owned();
            let v3 = c.path().join("c_src").join("mimalloc").join("v3");
            if name.starts_with("libmimalloc-sys-") && v3.join("src").join("static.c").is_file() {
                found.push(v3);
            }
        }
    }
    found.sort_by_key(|p| crate_version(p));
    found
}

/// The `libmimalloc-sys` version of a source directory, as numbers for
/// sorting (`…/libmimalloc-sys-0.1.49/c_src/mimalloc/v3` → `[0, 1, 49]`).
fn crate_version(v3: &Path) -> Vec<u64> {
    let dir = v3.ancestors().nth(3).and_then(Path::file_name);
    let name = dir
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    let v = name.trim_start_matches("libmimalloc-sys-");
    v.split(['.', '-', '+'])
        .map(|n| n.parse().unwrap_or(0))
        .collect()
}

/// The source to build: the one whose `MI_MALLOC_VERSION` is the linked
/// mimalloc's (`mimalloc` column), else the newest crate's.
fn mimalloc_source() -> Option<PathBuf> {
    let all = mimalloc_sources();
    // SAFETY: mi_version takes no arguments and only returns a constant.
    let linked = unsafe { libmimalloc_sys::mi_version() };
    let want = format!("#define MI_MALLOC_VERSION {linked}");
    all.iter()
        .rev()
        .find(|d| {
            std::fs::read_to_string(d.join("include").join("mimalloc.h"))
                .is_ok_and(|h| h.lines().any(|l| l.starts_with(&want)))
        })
        .or(all.last())
        .cloned()
}

/// `libmimalloc-secure.so`: mimalloc 3 with `MI_SECURE=4` (and
/// `MI_MALLOC_OVERRIDE`, so that the file also serves `LD_PRELOAD`), built
/// from the bundled source with `cc -O2 -shared -fPIC -DMI_SECURE=4
/// -DMI_MALLOC_OVERRIDE -DNDEBUG … src/static.c -lpthread` (the flags of
/// `benches/misuse-matrix.sh`) into
/// `<target>/hakmem-bench/mimalloc-secure/libmimalloc-secure-<crate version>.so`.
/// Built once: a later call (another run, a child process) finds the file.
/// With `build` false, only a file already there is returned.
pub(crate) fn mimalloc_secure_so(build: bool) -> Result<PathBuf, String> {
    let Some(src) = mimalloc_source() else {
        return Err("no mimalloc C source found (looked for \
                    $CARGO_HOME/registry/src/*/libmimalloc-sys-*/c_src/mimalloc/v3; \
                    `cargo fetch` puts it there)"
            .into());
    };
    let ver = crate_version(&src)
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".");
    let dir = crate::out_dir().join("mimalloc-secure");
    let so = dir.join(format!("libmimalloc-secure-{ver}.so"));
    if so.is_file() {
        return Ok(so);
    }
    if !build {
        return Err(format!(
            "not built yet: built into {} from {} on first use",
            so.display(),
            src.display()
        ));
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!(
        ".libmimalloc-secure-{ver}.so.{}",
        std::process::id()
    ));
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    eprintln!(
        "hakmem-bench: building {} (MI_SECURE=4) from {}",
        so.display(),
        src.display()
    );
    let o = Command::new(&cc)
        .args([
            "-O2",
            "-shared",
            "-fPIC",
            "-DMI_SECURE=4",
            "-DMI_MALLOC_OVERRIDE",
            "-DNDEBUG",
        ])
        .arg(format!("-I{}", src.join("include").display()))
        .arg(src.join("src").join("static.c"))
        .arg("-o")
        .arg(&tmp)
        .arg("-lpthread")
        .output()
        .map_err(|e| format!("cannot run the C compiler {} ({e})", cc.to_string_lossy()))?;
    if !o.status.success() {
        let _ = std::fs::remove_file(&tmp);
        let err = String::from_utf8_lossy(&o.stderr);
        return Err(format!(
            "{} failed on {}: {}",
            cc.to_string_lossy(),
            src.display(),
            err.lines().next().unwrap_or("").trim()
        ));
    }
    std::fs::rename(&tmp, &so).map_err(|e| format!("{}: {e}", so.display()))?;
    Ok(so)
}
