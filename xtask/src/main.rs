//! xtask: project automation (`cargo xtask <task>`).
fn main() {
    eprintln!("xtask: no task yet");
    std::process::exit(2);
}
