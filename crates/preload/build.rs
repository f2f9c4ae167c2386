//! Links libhakmem.so with `layout.ld`, which places the code every
//! program runs (the start-up group, the PLT, `.fini`, std's ARGV hook) at
//! the start of the text segment: see the script's comment.
//!
//! Only on Linux with the toolchain's default linker (rust-lld, or GNU ld
//! through `cc`), both of which take `INSERT`; a linker chosen by the user
//! (`-C linker`, `-fuse-ld=mold`, gold) may not, so the script is left out
//! then, as it is with `HAKMEM_NO_LAYOUT_SCRIPT` set at build time. Without
//! it the library works the same and maps a few more pages.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=layout.ld");
    println!("cargo:rerun-if-env-changed=HAKMEM_NO_LAYOUT_SCRIPT");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux")
        || env::var_os("HAKMEM_NO_LAYOUT_SCRIPT").is_some()
        || env::var_os("RUSTC_LINKER").is_some()
    {
        return;
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags.contains("fuse-ld") || flags.contains("linker") {
        return;
    }
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-cdylib=-Wl,-T,{dir}/layout.ld");
}
