//! libhakmem.so without libgcc_s.
//!
//! The library is built with `panic = "abort"`: it never unwinds. Rust's
//! standard library still refers to the unwinder (`_Unwind_*`: landing pads,
//! the personality routine, backtraces for `RUST_BACKTRACE`), so the linker
//! would make `libgcc_s.so.1` a dependency, and loading it costs every
//! program about 100 KiB of resident memory (measured with
//! `hakmem-bench footprint`, see docs/benchmarks.md).
//!
//! These definitions satisfy those references inside the library. They are
//! **hidden**: not exported, so they never interpose on the unwinder of the
//! program (a C++ program's exceptions still use libgcc_s's). None of them
//! runs in practice: with `panic = "abort"` no landing pad or personality
//! routine is ever entered, and a backtrace asked for by `RUST_BACKTRACE`
//! simply has no frames (`_Unwind_Backtrace` reports the end of the stack).
//! `_Unwind_Resume`, which would continue an unwinding that cannot have
//! started, traps.

core::arch::global_asm!(
    ".pushsection .text.hakmem_nounwind,\"ax\",@progbits",
    // _Unwind_Reason_Code _Unwind_Backtrace(trace_fn, void *): 5 = _URC_END_OF_STACK.
    ".globl _Unwind_Backtrace",
    ".hidden _Unwind_Backtrace",
    ".type _Unwind_Backtrace,@function",
    "_Unwind_Backtrace:",
    "mov eax, 5",
    "ret",
    // The context accessors: nothing to report (never called without an
    // unwinding in progress).
    ".globl _Unwind_GetIP",
    ".hidden _Unwind_GetIP",
    ".type _Unwind_GetIP,@function",
    ".globl _Unwind_GetIPInfo",
    ".hidden _Unwind_GetIPInfo",
    ".type _Unwind_GetIPInfo,@function",
    ".globl _Unwind_GetLanguageSpecificData",
    ".hidden _Unwind_GetLanguageSpecificData",
    ".type _Unwind_GetLanguageSpecificData,@function",
    ".globl _Unwind_GetRegionStart",
    ".hidden _Unwind_GetRegionStart",
    ".type _Unwind_GetRegionStart,@function",
    ".globl _Unwind_GetDataRelBase",
    ".hidden _Unwind_GetDataRelBase",
    ".type _Unwind_GetDataRelBase,@function",
    ".globl _Unwind_GetTextRelBase",
    ".hidden _Unwind_GetTextRelBase",
    ".type _Unwind_GetTextRelBase,@function",
    "_Unwind_GetIP:",
    "_Unwind_GetIPInfo:",
    "_Unwind_GetLanguageSpecificData:",
    "_Unwind_GetRegionStart:",
    "_Unwind_GetDataRelBase:",
    "_Unwind_GetTextRelBase:",
    "xor eax, eax",
    "ret",
    ".globl _Unwind_SetGR",
    ".hidden _Unwind_SetGR",
    ".type _Unwind_SetGR,@function",
    ".globl _Unwind_SetIP",
    ".hidden _Unwind_SetIP",
    ".type _Unwind_SetIP,@function",
    "_Unwind_SetGR:",
    "_Unwind_SetIP:",
    "ret",
    ".globl _Unwind_Resume",
    ".hidden _Unwind_Resume",
    ".type _Unwind_Resume,@function",
    "_Unwind_Resume:",
    "ud2",
    ".popsection",
);
