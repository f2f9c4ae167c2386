//! Loading hakmem late, with `dlopen`: a Rust cdylib whose global allocator
//! is `hakmem::HakMem` (tests/host.c, `plugin` mode), `libhakmem.so` itself
//! (`library` mode), and `libhakmem.so` through Python's `ctypes.CDLL`.
//! Each used to fail with "cannot allocate memory in static TLS block"
//! while the thread state was a 10 KB initial-exec TLS block.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `target/<profile>/`, beside this test binary's `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// Builds `package` for this profile and target directory (cargo does not
/// build cdylib-only packages before integration tests) and returns
/// `target/<profile>/<file>`.
fn build(package: &str, file: &str) -> PathBuf {
    let dir = profile_dir();
    let profile = dir.file_name().unwrap().to_string_lossy().into_owned();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-p", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", dir.parent().unwrap());
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd.output().expect("run cargo build");
    assert!(
        out.status.success(),
        "cargo build -p {package} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let so = dir.join(file);
    assert!(so.is_file(), "{} missing after the build", so.display());
    so
}

fn host() -> PathBuf {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/host.c");
        let exe = profile_dir().join("hakmem-dlopen-host");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let out = Command::new(cc)
            .args(["-O1", "-Wall", "-Werror", "-pthread", "-o"])
            .arg(&exe)
            .arg(&src)
            .arg("-ldl")
            .output()
            .expect("run the C compiler");
        assert!(
            out.status.success(),
            "compiling host.c failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        exe
    })
    .clone()
}

fn run_host(mode: &str, so: &Path) {
    let out = Command::new(host()).arg(mode).arg(so).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("host: {mode} ok")),
        "host {mode} {}: {:?}\n{stdout}\n{}",
        so.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_rust_cdylib_with_hakmem_loads_with_dlopen() {
    let so = build("hakmem-dlopen-test", "libhakmem_plugin.so");
    run_host("plugin", &so);
}

#[test]
fn libhakmem_so_loads_with_dlopen() {
    let so = build("hakmem-preload", "libhakmem.so");
    run_host("library", &so);
}

/// `RTLD_DEEPBIND`: the library's exports come first in its own scope but
/// not in the host's, so it must register its fork handlers at load, older
/// than the host's (docs/fork.md). Hung when it deferred.
#[test]
fn libhakmem_so_forks_safely_under_rtld_deepbind() {
    let so = build("hakmem-preload", "libhakmem.so");
    run_host("deepbind", &so);
}

#[test]
fn python_ctypes_loads_libhakmem_so() {
    let so = build("hakmem-preload", "libhakmem.so");
    let script = r#"
import ctypes, sys, threading
lib = ctypes.CDLL(sys.argv[1])
lib.malloc.restype = ctypes.c_void_p
lib.malloc.argtypes = [ctypes.c_size_t]
lib.free.argtypes = [ctypes.c_void_p]
def work(k):
    for i in range(2000):
        n = 1 + (i * 131 + k) % 5000
        p = lib.malloc(n)
        assert p
        ctypes.memset(p, k, n)
        assert ctypes.string_at(p, n) == bytes([k]) * n
        lib.free(p)
ts = [threading.Thread(target=work, args=(k,)) for k in range(1, 5)]
[t.start() for t in ts]
[t.join() for t in ts]
print("ctypes ok")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&so)
        .output()
        .expect("python3 is needed for this test (a fresh CI machine has it)");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ctypes ok"),
        "{:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
