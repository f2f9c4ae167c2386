//! The `xtask` binary as a user runs it: task dispatch, exit statuses and
//! `check-contracts` on the real workspace (from an unrelated directory).

use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        // The task must find the workspace by itself, wherever it is run.
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run the xtask binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_contracts_passes_on_the_workspace() {
    let out = xtask(&["check-contracts"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("check-contracts: ok: "), "{stdout}");
    assert!(stdout.contains("boxes"), "{stdout}");
}

#[test]
fn an_unknown_task_prints_usage_and_exits_2() {
    let out = xtask(&["no-such-task"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("unrecognized subcommand 'no-such-task'"),
        "{stderr}"
    );
    assert!(stderr.contains("Usage: cargo xtask <COMMAND>"), "{stderr}");
}

#[test]
fn no_task_prints_usage_and_exits_2() {
    let out = xtask(&[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Usage: cargo xtask <COMMAND>"), "{stderr}");
    assert!(stderr.contains("check-contracts"), "{stderr}");
}

#[test]
fn help_lists_every_task() {
    let out = xtask(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    for task in ["check-contracts", "acceptance", "bench"] {
        assert!(stdout.contains(task), "{task}: {stdout}");
    }
}

#[test]
fn check_contracts_takes_no_arguments() {
    let out = xtask(&["check-contracts", "--fix"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unexpected argument '--fix'"), "{stderr}");
}
