//! Links libhakmem.so with `layout.ld`, which gives the code every program
//! runs (the start-up group, .init, the PLT, std's ARGV hook) a text
//! segment of its own, and moves the read-only data that start-up does not
//! read (most strings and .rodata, the unwind tables) into a read-only
//! segment after the text: see the script's comment.
//!
//! Only where the linker is known: x86_64-unknown-linux-gnu with rustc
//! 1.90 or later, whose default linker is the bundled rust-lld (it takes
//! `INSERT`), and no sign that the user chose another one (`-C linker`,
//! `-C linker-features`, `-C link-self-contained`, `-fuse-ld=`, `-B`,
//! `--ld-path`, `mold -run`). mold does not take `SECTIONS` at all, and on
//! targets where `.plt` is writable data (ppc64) moving it before `.text`
//! would merge text and data into one writable, executable segment. The
//! script is also left out with `HAKMEM_NO_LAYOUT_SCRIPT` set at build
//! time. Without it the library works the same and maps a few more pages.

use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=layout.ld");
    println!("cargo:rerun-if-env-changed=HAKMEM_NO_LAYOUT_SCRIPT");
    println!("cargo:rerun-if-env-changed=MOLD_PATH");
    if env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu")
        || env::var_os("HAKMEM_NO_LAYOUT_SCRIPT").is_some()
        || env::var_os("RUSTC_LINKER").is_some()
        || env::var_os("MOLD_PATH").is_some()
        || !rustc_links_with_lld()
    {
        return;
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let chosen = [
        "fuse-ld",
        "ld-path",
        "linker=",
        "linker-flavor",
        "linker-features",
        "link-self-contained",
    ];
    if chosen.iter().any(|f| flags.contains(f)) || flags.split('\x1f').any(|f| f.contains("-B")) {
        return;
    }
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    // Two arguments, not `-Wl,-T,…`: a path with a comma stays whole.
    println!("cargo:rustc-link-arg-cdylib=-Xlinker");
    println!("cargo:rustc-link-arg-cdylib=--script={dir}/layout.ld");
}

/// True when rustc is 1.90 or later: from then on it links
/// x86_64-unknown-linux-gnu with its bundled rust-lld by default.
fn rustc_links_with_lld() -> bool {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    let v = String::from_utf8_lossy(&out.stdout);
    // "rustc 1.95.0 (…)"
    let mut parts = v.split_whitespace().nth(1).unwrap_or("").split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    major > 1 || (major == 1 && minor >= 90)
}
