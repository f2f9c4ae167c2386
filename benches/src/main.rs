//! hakmem-bench: the benchmark runner (`cargo xtask bench` =
//! `cargo run --release -p hakmem-bench --`). See `docs/benchmarks.md`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use hakmem_bench::allocators::Allocator;
use hakmem_bench::cli::{
    AceRealArgs, Cli, FootprintArgs, InstructionsArgs, Mode, PhasesArgs, RunArgs, SuiteArgs,
};
use hakmem_bench::workloads::Workload;
use hakmem_bench::{ace_real, footprint, instructions, out_dir, report, runner, suite, sweep};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = Cli::parse();
    let r = match cli.mode {
        Some(Mode::RunOne {
            allocator,
            workload,
            params,
        }) => return run_one(&allocator, &workload, &params),
        Some(Mode::MimallocVersion) => {
            println!("{}", hakmem_bench::allocators::mimalloc_version());
            return ExitCode::SUCCESS;
        }
        Some(Mode::Instructions(a)) => instructions_mode(a),
        Some(Mode::List { threads }) => list(threads),
        Some(Mode::Footprint(a)) => footprint_mode(a, &args[1..]),
        Some(Mode::AceReal(a)) => ace_real_mode(a, &args[1..]),
        Some(Mode::Sweep(a)) => sweep_mode(false, a.phases, a.configs, &args[1..]),
        Some(Mode::Warm(a)) => sweep_mode(true, a, None, &args[1..]),
        None => suite_mode(cli.suite, &args),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hakmem-bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn suite_mode(a: SuiteArgs, args: &[String]) -> Result<(), String> {
    let SuiteArgs {
        quick,
        only,
        threads,
        reps,
        allocators,
        run: RunArgs {
            scale,
            timeout,
            out,
        },
    } = a;
    let explicit = allocators.is_some();
    let mut allocators = allocators.map_or_else(|| Allocator::ALL.to_vec(), |l| l.0);
    let dir = out.unwrap_or_else(out_dir);
    // The mimalloc 2.x column joins every run whose environment names its
    // binary (`cargo xtask bench` does, except with --quick).
    let mut mi2_note = String::new();
    if let Some(exe2) = hakmem_bench::allocators::mimalloc2_exe() {
        if !allocators.contains(&Allocator::Mimalloc2) && !explicit {
            let at = allocators
                .iter()
                .position(|&a| a == Allocator::Mimalloc)
                .map_or(allocators.len(), |i| i + 1);
            allocators.insert(at, Allocator::Mimalloc2);
        }
        mi2_note = format!(", mimalloc2 = {}", mimalloc2_version(&exe2));
        eprintln!("hakmem-bench{mi2_note} ({})", exe2.display());
    }
    // Columns whose library is not installed (tcmalloc, scudo) or cannot
    // be built (mimalloc-secure) are left
    // out, never silently: one line each, here and with the results.
    let missing = Allocator::drop_missing(&mut allocators);
    for m in &missing {
        eprintln!("hakmem-bench: {m}");
    }
    if threads == 0 || allocators.is_empty() || scale <= 0.0 {
        return Err("--threads, --allocators and --scale must be positive".into());
    }
    let reps = reps.unwrap_or(if quick { 1 } else { 5 }).max(1);
    let size = suite::Size {
        quick,
        threads,
        scale,
    };
    let specs = suite::select(suite::all(size), &only)?;
    let plan = runner::Plan {
        reps,
        allocators: allocators.clone(),
        timeout: Duration::from_secs(timeout),
    };
    let command = std::iter::once("hakmem-bench".to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let machine = report::machine();
    eprintln!(
        "hakmem-bench: {} workloads × {} allocators × {} reps, one child process per run",
        specs.len(),
        allocators.len(),
        reps
    );
    let samples = runner::run_suite(&specs, &plan);
    let machine = format!(
        "{machine} (start) / {} (end){mi2_note}",
        report::load_average()
    );
    let rows = report::summarize(&specs, &samples, &allocators);

    println!("\n{machine}\n$ {command}\n");
    for m in &missing {
        println!("note: {m}");
    }
    print!("{}", report::table(&rows));
    if allocators.contains(&Allocator::Hakmem) && allocators.contains(&Allocator::BASELINE) {
        println!("\nhakmem against the targets of issues 3 and 5:");
        print!("{}", report::targets(&rows));
    }
    let ace = report::ace_overhead(&rows);
    if !ace.is_empty() {
        println!("\nACE on (hakmem+ace) vs off (hakmem), issue 6:");
        print!("{ace}");
    }

    let note = format!("{machine}; {command}");
    let notes: String = missing.iter().map(|m| format!("note: {m}\n\n")).collect();
    let mut md = format!(
        "{machine}\n\n`{command}`\n\n{notes}{}",
        report::markdown(&rows)
    );
    if !ace.is_empty() {
        md.push_str(&format!("\nACE on vs off:\n\n```text\n{ace}```\n"));
    }
    let mut written = Vec::new();
    for (name, text) in [
        ("results.csv", report::csv(&specs, &samples, &rows)),
        ("results.md", md),
    ] {
        let p = report::write(&dir, name, &text).map_err(|e| format!("{name}: {e}"))?;
        written.push(p.display().to_string());
    }
    for (stem, title, value) in [
        (
            "throughput",
            "hakmem-bench: throughput relative to mimalloc (median; higher is better)",
            (|r| r.mops_ratio) as fn(&report::Row) -> Option<f64>,
        ),
        (
            "rss",
            "hakmem-bench: peak RSS relative to mimalloc (median; lower is better)",
            |r| r.rss_ratio,
        ),
    ] {
        let chart = report::charts::suite(&rows, &allocators, title, &note, value);
        match report::bars(&chart, &dir, stem) {
            Ok(ps) => written.extend(ps.iter().map(|p| p.display().to_string())),
            Err(e) => println!("note: {e}"),
        }
    }
    println!("\nwrote {}", written.join(", "));
    let bad = report::checksum_mismatches(&specs, &samples);
    for b in &bad {
        println!("WARNING: {b}");
    }
    let failed = samples.iter().filter(|s| s.result.is_err()).count();
    if failed > 0 || !bad.is_empty() {
        return Err(format!(
            "{failed} run(s) failed, {} checksum mismatch(es) (see above)",
            bad.len()
        ));
    }
    Ok(())
}

fn sweep_mode(
    warm: bool,
    a: PhasesArgs,
    configs: Option<Vec<sweep::Config>>,
    args: &[String],
) -> Result<(), String> {
    let PhasesArgs {
        quick,
        reps,
        threads,
        run: RunArgs {
            scale,
            timeout,
            out,
        },
    } = a;
    let dir = out.unwrap_or_else(out_dir);
    if threads == 0 || scale <= 0.0 {
        return Err("--threads and --scale must be positive".into());
    }
    let o = sweep::Options {
        size: suite::Size {
            quick,
            threads,
            scale,
        },
        reps: reps.unwrap_or(if quick { 1 } else { 3 }).max(1),
        configs: configs.unwrap_or_else(|| sweep::grid(quick)),
        timeout: Duration::from_secs(timeout),
        out: dir,
    };
    let command = std::iter::once(format!(
        "hakmem-bench {}",
        if warm { "warm" } else { "sweep" }
    ))
    .chain(args.iter().cloned())
    .collect::<Vec<_>>()
    .join(" ");
    let machine = report::machine();
    let phases = hakmem_bench::workloads::Workload::Phases(suite::phases(o.size));
    eprintln!("hakmem-bench: phases {}", phases.describe());
    let mut charts: Option<(Vec<sweep::Point>, String)> = None;
    let (text, files) = if warm {
        let pairs = sweep::warm(&o)?;
        let summary = sweep::warm_summary(&pairs);
        (summary, vec![("ace_warm.csv", sweep::warm_csv(&pairs))])
    } else {
        eprintln!(
            "hakmem-bench: {} configurations × {} reps, one child process per run",
            o.configs.len(),
            o.reps
        );
        let points = sweep::sweep(&o)?;
        let note = format!("{machine}; {command}");
        let text = format!("{}\n{}", sweep::table(&points), sweep::verdict(&points));
        charts = Some((points.clone(), note));
        (text, vec![("ace_sweep.csv", sweep::csv(&points, o.reps))])
    };
    let machine = format!("{machine} (start) / {} (end)", report::load_average());
    println!("\n{machine}\n$ {command}\n\n{text}");
    let mut written = Vec::new();
    for (name, body) in files {
        let p = report::write(&o.out, name, &body).map_err(|e| format!("{name}: {e}"))?;
        written.push(p.display().to_string());
    }
    if let Some((points, note)) = charts {
        match sweep::scatter_files(&points, &note, &o.out) {
            Ok(ps) => written.extend(ps.iter().map(|p| p.display().to_string())),
            Err(e) => println!("note: {e}"),
        }
    }
    println!("wrote {}", written.join(", "));
    Ok(())
}

fn instructions_mode(a: InstructionsArgs) -> Result<(), String> {
    let d = instructions::Options::default();
    let o = instructions::Options {
        allocators: a.allocators.map_or(d.allocators, |l| l.0),
        sizes: a.size,
        small: a.small,
        large: a.large,
        preload: !a.no_preload,
        build_preload: !a.no_build,
        out: a.out.unwrap_or(d.out),
        ..d
    };
    let ace = a.ace;
    if o.large <= o.small || o.sizes.is_empty() || o.sizes.iter().any(|&s| s < 8) {
        return Err("need --large > --small and every --size ≥ 8".into());
    }
    if ace {
        return instructions_ace(&o);
    }
    let (lines, notes) = match instructions::run(&o) {
        Ok(r) => r,
        Err(e) => {
            // No counter on this machine: not an error of the suite.
            println!("instructions: skipped: {e}");
            return Ok(());
        }
    };
    println!(
        "\n{}\ninstructions per malloc+free pair, tiny-hot batch={} \
         (difference of {} and {} rounds; loop included)\n",
        report::machine(),
        o.batch,
        o.large,
        o.small
    );
    print!("{}", instructions::table(&lines));
    for n in &notes {
        println!("note: {n}");
    }
    let p = report::write(&o.out, "instructions.csv", &instructions::csv(&lines, &o))
        .map_err(|e| e.to_string())?;
    println!("\nwrote {}", p.display());
    Ok(())
}

/// `instructions --ace`: ACE on vs off, instructions per op of the
/// workload's thread and the worker's apart.
fn instructions_ace(o: &instructions::Options) -> Result<(), String> {
    let (lines, notes) = match instructions::ace_overhead(o) {
        Ok(r) => r,
        Err(e) => {
            println!("instructions --ace: skipped: {e}");
            return Ok(());
        }
    };
    println!(
        "\n{}\ninstructions per op (one allocator call) of the workload's thread, \
         hakmem without (off) and with (on) ACE, callgrind \
         (difference of {} and {} rounds; random-mixed: × 100 ops); \
         worker instr = the other threads' in the large run\n",
        report::machine(),
        o.large,
        o.small
    );
    print!("{}", instructions::ace_table(&lines));
    for n in &notes {
        println!("note: {n}");
    }
    let p = report::write(
        &o.out,
        "instructions_ace.csv",
        &instructions::ace_csv(&lines, o),
    )
    .map_err(|e| e.to_string())?;
    println!("\nwrote {}", p.display());
    Ok(())
}

fn footprint_mode(a: FootprintArgs, args: &[String]) -> Result<(), String> {
    let d = footprint::Options::default();
    let o = footprint::Options {
        runs: a.runs,
        build_preload: !a.no_build,
        out: a.out.unwrap_or(d.out),
    };
    let command = std::iter::once("hakmem-bench footprint".to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let (text, csv, notes) = footprint::run(&o)?;
    println!(
        "\n{}\n$ {command}\n\nfootprint: one malloc(64) + free in a C program, \
         medians of {} runs (VmHWM and VmRSS from /proc/self/status at exit)\n",
        report::machine(),
        o.runs.max(1)
    );
    print!("{text}");
    for n in &notes {
        println!("note: {n}");
    }
    let p = report::write(&o.out, "footprint.csv", &csv).map_err(|e| e.to_string())?;
    println!("\nwrote {}", p.display());
    Ok(())
}

fn ace_real_mode(a: AceRealArgs, args: &[String]) -> Result<(), String> {
    let d = ace_real::Options::default();
    let o = ace_real::Options {
        reps: a.reps,
        quick: a.quick,
        only: a.only,
        build_preload: !a.no_build,
        timeout: Duration::from_secs(a.timeout),
        out: a.out.unwrap_or(d.out),
    };
    let command = std::iter::once("hakmem-bench ace-real".to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let machine = report::machine();
    let (measured, notes) = ace_real::run(&o)?;
    let machine = format!("{machine} (start) / {} (end)", report::load_average());
    let lines: Vec<ace_real::Line> = measured.iter().filter_map(ace_real::summarize).collect();
    let failed: Vec<(String, String)> = measured
        .iter()
        .filter_map(|m| m.error.clone().map(|e| (m.name.clone(), e)))
        .collect();
    let heading = "ACE on (HAKMEM_ACE=1) vs off (HAKMEM_ACE=0) under LD_PRELOAD=libhakmem.so: \
                   medians of the pairs; time = wall seconds (redis: redis-benchmark's), \
                   RSS = peak RSS (ru_maxrss via the ace_run wrapper; redis: the server's), \
                   pair range = min–max of the per-pair on/off ratios, CPU = median CPU time \
                   on/off, worker CPU = the hakmem-ace thread's (median of the on runs, % of \
                   their wall time)";
    let table = ace_real::table(&lines, &failed);
    let verdict = ace_real::verdict(&lines);
    println!("\n{machine}\n$ {command}\n\n{heading}\n");
    for n in &notes {
        println!("note: {n}");
    }
    print!("{table}\n{verdict}");
    let what: String = measured
        .iter()
        .map(|m| format!("- `{}`: {}\n", m.name, m.what))
        .collect();
    let notes_md: String = notes.iter().map(|n| format!("note: {n}\n\n")).collect();
    let md = format!(
        "{machine}\n\n`{command}`\n\n{heading}.\n\n{notes_md}{}\n{}\nPrograms:\n\n{what}",
        ace_real::markdown(&lines, &failed),
        verdict
            .lines()
            .map(|l| format!("{l}\n\n"))
            .collect::<String>()
    );
    let note = format!("{machine}; {command}");
    let mut written = Vec::new();
    for (name, text) in [
        ("ace_real.csv", ace_real::csv(&measured, &lines)),
        ("ace_real.md", md),
    ] {
        let p = report::write(&o.out, name, &text).map_err(|e| format!("{name}: {e}"))?;
        written.push(p.display().to_string());
    }
    match report::bars(&ace_real::chart(&lines, &note), &o.out, "ace_real") {
        Ok(ps) => written.extend(ps.iter().map(|p| p.display().to_string())),
        Err(e) => println!("note: {e}"),
    }
    println!("\nwrote {}", written.join(", "));
    if !failed.is_empty() {
        return Err(format!("{} program(s) failed (see above)", failed.len()));
    }
    Ok(())
}

fn list(threads: usize) -> Result<(), String> {
    println!("allocators (the default columns, in report order):");
    for a in Allocator::ALL {
        println!("  {:<16} {}", a.name(), a.describe());
    }
    for a in [
        Allocator::Mimalloc2,
        Allocator::MimallocSecure,
        Allocator::MiDirect,
    ] {
        println!("  {:<16} {} (not a default column)", a.name(), a.describe());
    }
    for quick in [false, true] {
        println!("{}:", if quick { "--quick" } else { "default" });
        let size = suite::Size {
            quick,
            threads,
            scale: 1.0,
        };
        for s in suite::all(size) {
            println!(
                "  {:<20} {} {}",
                s.name,
                s.workload.family(),
                s.workload.describe()
            );
        }
    }
    Ok(())
}

/// The mimalloc version bundled in another `hakmem-bench` binary.
fn mimalloc2_version(exe: &std::path::Path) -> String {
    std::process::Command::new(exe)
        .arg("mimalloc-version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "mimalloc ?".into(), |v| format!("mimalloc {}", v.trim()))
}

/// The hidden child side: `run-one <allocator> <family> key=value…`.
fn run_one(alloc: &str, family: &str, params: &[String]) -> ExitCode {
    let parsed = (|| {
        let alloc = Allocator::parse(alloc).ok_or(format!("unknown allocator `{alloc}`"))?;
        Ok::<_, String>((alloc, Workload::parse(family, params)?))
    })();
    match parsed.and_then(|(alloc, w)| runner::run_one(alloc, &w)) {
        Ok((o, cpu, ace)) => {
            println!("{}", runner::result_line(&o, cpu, ace));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hakmem-bench run-one: {e}");
            ExitCode::from(2)
        }
    }
}
