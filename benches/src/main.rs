//! hakmem-bench: the benchmark runner (`cargo xtask bench` =
//! `cargo run --release -p hakmem-bench --`). See `docs/benchmarks.md`.

use std::process::ExitCode;
use std::time::Duration;

use hakmem_bench::allocators::Allocator;
use hakmem_bench::workloads::Workload;
use hakmem_bench::{ace_real, footprint, instructions, out_dir, report, runner, suite, sweep};

const USAGE: &str = "\
usage: hakmem-bench [options]              run the suite (table, CSV, SVG)
       hakmem-bench instructions [options] instructions per malloc+free pair
       hakmem-bench footprint [options]    peak and exit RSS of a one-malloc C program
                                           under each allocator (LD_PRELOAD), and
                                           hakmem's resident memory by mapping
       hakmem-bench list [--threads N]     list the allocators, the workloads and
                                           their parameters
       hakmem-bench sweep [options]        issue 6: `phases` with ACE, the default
                                           and a grid of static configurations
       hakmem-bench warm [options]         issue 6: ACE cold vs warm (saved profile)
       hakmem-bench ace-real [options]     issue 15: ACE on vs off in real programs
                                           (python3, perl, sqlite3, redis, git, gcc,
                                           ls, the C harnesses) under LD_PRELOAD

suite options:
  --quick              smoke run: tiny op counts, 1 repetition
  --only LIST          comma-separated workloads (`tiny-hot` = all its sizes,
                       `tiny-hot/64` = one)
  --threads N          threads of the multi-threaded workloads (default 2)
  --reps N             repetitions (default 5; --quick: 1)
  --allocators LIST    subset of hakmem,hakmem+ace,hakmem-secure,mimalloc,jemalloc,
                       tcmalloc,snmalloc,scudo,system (default: all nine;
                       hakmem+ace = hakmem with hakmem::ace::start() before
                       the workload; tcmalloc and scudo are loaded at run
                       time and left out, with a line, when not installed)
  --scale F            multiply every op count by F (default 1)
  --timeout S          kill a run after S seconds (default 300)
  --out DIR            write results to DIR instead

sweep / warm options:
  --quick              quick phases and (sweep) a 6-configuration grid
  --reps N             repetitions (default 3; --quick: 1)
  --threads N, --scale F, --timeout S, --out DIR   as above
  --configs LIST       sweep only: default,ace,static:R:C:D:S,… (R = refill
                       in quarters of the default, C = cap in refills,
                       D = decay ms, S = span threshold KiB)

instructions options:
  --allocators LIST    as above
  --size LIST          block sizes, comma-separated (default 64)
  --small R, --large R rounds of the two runs (default 1000, 11000)
  --no-preload         skip the C program under LD_PRELOAD
  --ace                instead: tiny-hot (each --size) and random-mixed with
                       hakmem and hakmem+ace under callgrind, the workload's
                       thread and the ACE worker counted apart (per op)
  --no-build           do not rebuild libhakmem.so first
  --out DIR            write instructions.csv (and the C harness) to DIR

footprint options:
  --runs N             runs per allocator (median; default 5)
  --no-build           do not rebuild libhakmem.so first
  --out DIR            write footprint.csv (and the C probe) to DIR

ace-real options:
  --reps N             on/off pairs per program, alternating on,off / off,on
                       (default 5)
  --only LIST          comma-separated programs (python3,perl,sqlite3,redis,git,
                       gcc,ls,c:tiny_hot,c:large_churn)
  --quick              workloads a tenth of the size, for a smoke run
  --timeout S          kill a run after S seconds (default 120)
  --no-build           do not rebuild libhakmem.so first
  --out DIR            default $CARGO_TARGET_DIR/hakmem-bench/ace-real

Results go to $CARGO_TARGET_DIR/hakmem-bench (default target/hakmem-bench).
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("run-one") => return run_one(&args[1..]),
        Some("mimalloc-version") => {
            println!("{}", hakmem_bench::allocators::mimalloc_version());
            return ExitCode::SUCCESS;
        }
        Some("instructions") => instructions_mode(&args[1..]),
        Some("list") => list(&args[1..]),
        Some("footprint") => footprint_mode(&args[1..]),
        Some("ace-real") => ace_real_mode(&args[1..]),
        Some(m @ ("sweep" | "warm")) => sweep_mode(m == "warm", &args[1..]),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => suite_mode(&args),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hakmem-bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// Takes the value after a flag.
fn value<'a>(it: &mut impl Iterator<Item = &'a String>, flag: &str) -> Result<&'a String, String> {
    it.next()
        .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))
}

fn number<T: std::str::FromStr>(s: &str, flag: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("{flag}: bad value `{s}`"))
}

fn suite_mode(args: &[String]) -> Result<(), String> {
    let mut quick = false;
    let mut only = Vec::new();
    let mut threads = 2usize;
    let mut reps = None;
    let mut allocators = Allocator::ALL.to_vec();
    let mut scale = 1.0f64;
    let mut timeout = 300u64;
    let mut dir = out_dir();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--only" => only.extend(value(&mut it, a)?.split(',').map(String::from)),
            "--threads" => threads = number(value(&mut it, a)?, a)?,
            "--reps" => reps = Some(number::<usize>(value(&mut it, a)?, a)?),
            "--allocators" => allocators = Allocator::parse_list(value(&mut it, a)?)?,
            "--scale" => scale = number(value(&mut it, a)?, a)?,
            "--timeout" => timeout = number(value(&mut it, a)?, a)?,
            "--out" => dir = value(&mut it, a)?.into(),
            other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
        }
    }
    // The mimalloc 2.x column joins every run whose environment names its
    // binary (`cargo xtask bench` does, except with --quick).
    let mut mi2_note = String::new();
    if let Some(exe2) = hakmem_bench::allocators::mimalloc2_exe() {
        if !allocators.contains(&Allocator::Mimalloc2) && !args.iter().any(|a| a == "--allocators")
        {
            let at = allocators
                .iter()
                .position(|&a| a == Allocator::Mimalloc)
                .map_or(allocators.len(), |i| i + 1);
            allocators.insert(at, Allocator::Mimalloc2);
        }
        mi2_note = format!(", mimalloc2 = {}", mimalloc2_version(&exe2));
        eprintln!("hakmem-bench{mi2_note} ({})", exe2.display());
    }
    // Columns whose library is not installed (tcmalloc, scudo) are left
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
        (
            "throughput.svg",
            report::svg(
                &rows,
                &allocators,
                "hakmem-bench: throughput relative to mimalloc (median; higher is better)",
                &note,
                |r| r.mops_ratio,
            ),
        ),
        (
            "rss.svg",
            report::svg(
                &rows,
                &allocators,
                "hakmem-bench: peak RSS relative to mimalloc (median; lower is better)",
                &note,
                |r| r.rss_ratio,
            ),
        ),
    ] {
        let p = report::write(&dir, name, &text).map_err(|e| format!("{name}: {e}"))?;
        written.push(p.display().to_string());
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

fn sweep_mode(warm: bool, args: &[String]) -> Result<(), String> {
    let mut quick = false;
    let mut threads = 2usize;
    let mut reps = None;
    let mut scale = 1.0f64;
    let mut timeout = 300u64;
    let mut dir = out_dir();
    let mut configs = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--threads" => threads = number(value(&mut it, a)?, a)?,
            "--reps" => reps = Some(number::<usize>(value(&mut it, a)?, a)?),
            "--scale" => scale = number(value(&mut it, a)?, a)?,
            "--timeout" => timeout = number(value(&mut it, a)?, a)?,
            "--out" => dir = value(&mut it, a)?.into(),
            "--configs" if !warm => {
                configs = Some(
                    value(&mut it, a)?
                        .split(',')
                        .map(sweep::Config::parse)
                        .collect::<Result<Vec<_>, _>>()?,
                )
            }
            other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
        }
    }
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
        (
            format!("{}\n{}", sweep::table(&points), sweep::verdict(&points)),
            vec![
                ("ace_sweep.csv", sweep::csv(&points, o.reps)),
                ("ace_sweep.svg", sweep::scatter(&points, &note)),
            ],
        )
    };
    let machine = format!("{machine} (start) / {} (end)", report::load_average());
    println!("\n{machine}\n$ {command}\n\n{text}");
    let mut written = Vec::new();
    for (name, body) in files {
        let p = report::write(&o.out, name, &body).map_err(|e| format!("{name}: {e}"))?;
        written.push(p.display().to_string());
    }
    println!("wrote {}", written.join(", "));
    Ok(())
}

fn instructions_mode(args: &[String]) -> Result<(), String> {
    let mut o = instructions::Options::default();
    let mut ace = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--allocators" => o.allocators = Allocator::parse_list(value(&mut it, a)?)?,
            "--size" => {
                o.sizes = value(&mut it, a)?
                    .split(',')
                    .map(|v| number(v, a))
                    .collect::<Result<_, _>>()?
            }
            "--small" => o.small = number(value(&mut it, a)?, a)?,
            "--large" => o.large = number(value(&mut it, a)?, a)?,
            "--no-preload" => o.preload = false,
            "--ace" => ace = true,
            "--no-build" => o.build_preload = false,
            "--out" => o.out = value(&mut it, a)?.into(),
            other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
        }
    }
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

fn footprint_mode(args: &[String]) -> Result<(), String> {
    let mut o = footprint::Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => o.runs = number(value(&mut it, a)?, a)?,
            "--no-build" => o.build_preload = false,
            "--out" => o.out = value(&mut it, a)?.into(),
            other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
        }
    }
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

fn ace_real_mode(args: &[String]) -> Result<(), String> {
    let mut o = ace_real::Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--reps" => o.reps = number(value(&mut it, a)?, a)?,
            "--only" => o
                .only
                .extend(value(&mut it, a)?.split(',').map(String::from)),
            "--quick" => o.quick = true,
            "--timeout" => o.timeout = Duration::from_secs(number(value(&mut it, a)?, a)?),
            "--no-build" => o.build_preload = false,
            "--out" => o.out = value(&mut it, a)?.into(),
            other => return Err(format!("unknown option `{other}`\n\n{USAGE}")),
        }
    }
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
        ("ace_real.svg", ace_real::svg(&lines, &note)),
    ] {
        let p = report::write(&o.out, name, &text).map_err(|e| format!("{name}: {e}"))?;
        written.push(p.display().to_string());
    }
    println!("\nwrote {}", written.join(", "));
    if !failed.is_empty() {
        return Err(format!("{} program(s) failed (see above)", failed.len()));
    }
    Ok(())
}

fn list(args: &[String]) -> Result<(), String> {
    let threads = match args {
        [] => 2,
        [flag, n] if flag == "--threads" => number(n, flag)?,
        _ => return Err(format!("usage: hakmem-bench list [--threads N]\n\n{USAGE}")),
    };
    println!("allocators (the default columns, in report order):");
    for a in Allocator::ALL {
        println!("  {:<14} {}", a.name(), a.describe());
    }
    for a in [Allocator::Mimalloc2, Allocator::MiDirect] {
        println!("  {:<14} {} (not a default column)", a.name(), a.describe());
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
fn run_one(args: &[String]) -> ExitCode {
    let parsed = (|| {
        let alloc = args.first().ok_or("run-one: missing allocator")?;
        let alloc = Allocator::parse(alloc).ok_or(format!("unknown allocator `{alloc}`"))?;
        let family = args.get(1).ok_or("run-one: missing workload")?;
        Ok::<_, String>((alloc, Workload::parse(family, &args[2..])?))
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
