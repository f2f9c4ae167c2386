//! A progress bar with an ETA on stderr (indicatif) for the long runs: the
//! suite, `sweep`, `warm` and `ace-real`. It is drawn only when stderr is a
//! terminal and `CI` is unset (and `HAKMEM_BENCH_PROGRESS` is not `0`);
//! otherwise the per-run lines go to stderr as plain lines, so logs stay
//! clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar of one long run, or plain lines.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

/// Whether a bar is drawn here (see the module doc).
pub fn enabled() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("CI").is_none()
        && std::env::var_os("HAKMEM_BENCH_PROGRESS").is_none_or(|v| v != "0")
}

impl Progress {
    /// A bar of `total` steps titled `what`.
    pub fn new(total: usize, what: &str) -> Progress {
        if !enabled() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} runs, ETA {eta}",
            )
            .expect("a valid template"),
        );
        bar.set_prefix(what.to_string());
        Progress { bar: Some(bar) }
    }

    /// Prints one line above the bar (or on stderr without one).
    pub fn line(&self, s: &str) {
        match &self.bar {
            Some(b) => b.println(s),
            None => eprintln!("{s}"),
        }
    }

    /// One step done.
    pub fn inc(&self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
