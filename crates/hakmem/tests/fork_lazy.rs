//! The fork handlers are registered with libc only once an allocator lock
//! is taken while the process has a second thread
//! (`hakmem_remote_queue::fork`). This test runs without the test harness,
//! whose threads would make the process multi-threaded from the start.
//! No `#[global_allocator]`: std allocates through glibc, so only the
//! facade's calls below reach hakmem.

use std::process::ExitCode;

/// Sizes that take every route: tiny, mid and span, whose slow paths take
/// the thread pool's, the backend's and the span cache's locks.
const SIZES: [usize; 4] = [24, 3000, 20_000, 300_000];

fn churn() -> bool {
    let mut ok = true;
    for (i, &n) in SIZES.iter().enumerate() {
        let p = hakmem::malloc(n);
        if p.is_null() {
            return false;
        }
        // SAFETY: `n` fresh bytes, checked, then freed once.
        unsafe {
            p.write_bytes(i as u8 + 1, n);
            ok &= std::slice::from_raw_parts(p, n)
                .iter()
                .all(|&b| b == i as u8 + 1);
            hakmem::free(p);
        }
    }
    ok
}

/// Forks; the child allocates in every tier and exits 0 (or 3).
fn fork_and_check() -> bool {
    // SAFETY: fork in a process whose other threads (if any) hold no
    // allocator lock the child needs, which is what the handlers are for.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: the child leaves without running the parent's exit code.
        unsafe {
            libc::alarm(10);
            libc::_exit(if churn() { 0 } else { 3 })
        }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    let w = unsafe { libc::waitpid(pid, &mut status, 0) };
    w == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

fn main() -> ExitCode {
    let mut failed = Vec::new();
    let mut check = |ok: bool, what: &str| {
        println!("{} {what}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            failed.push(what.to_string());
        }
    };
    // As libhakmem.so does: no registration at the first slow path.
    hakmem::defer_fork_registration();
    // One thread: every tier's slow path, a trim, the statistics.
    check(churn(), "one thread: blocks of every tier hold their bytes");
    hakmem::trim();
    let _ = hakmem::stats();
    check(
        !hakmem::fork_handlers_registered(),
        "one thread: the allocator's locks did not register the fork handlers",
    );
    check(
        fork_and_check(),
        "one thread: the child of a fork allocates",
    );

    // A second thread that never calls hakmem: the next lock registers.
    std::thread::spawn(|| {}).join().unwrap();
    check(
        !hakmem::fork_handlers_registered(),
        "a thread that never allocated registers nothing by itself",
    );
    check(churn(), "with a second thread: blocks hold their bytes");
    check(
        hakmem::fork_handlers_registered(),
        "the first lock after a second thread existed registered the fork handlers",
    );
    check(
        fork_and_check(),
        "after registration: the child of a fork allocates",
    );

    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("fork_lazy: {} check(s) failed: {failed:?}", failed.len());
        ExitCode::FAILURE
    }
}
