//! The secure mode (`hakmem::HakMemSecure`) against the model in model.rs:
//! every hand-out must also be zeroed.
#![no_main]

#[path = "model.rs"]
mod model;

static A: hakmem::HakMemSecure = hakmem::HakMemSecure;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    model::run(&A, data, true);
});
