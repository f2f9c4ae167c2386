//! The default mode (`hakmem::HakMem`) against the model in model.rs.
#![no_main]

#[path = "model.rs"]
mod model;

static A: hakmem::HakMem = hakmem::HakMem;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    model::run(&A, data, false);
});
