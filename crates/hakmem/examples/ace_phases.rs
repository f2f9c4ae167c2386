//! The `phases` workload of issue 6: a program whose character changes
//! over time, run with the learning layer (ACE) on and off and with a sweep
//! of static configurations. Each configuration runs in a child process
//! (peak RSS is per process), `--reps` times, alternating configurations.
//!
//! ```text
//! cargo run --release -p hakmem --example ace_phases -- --sweep [--reps 3] [--threads 2] [--scale 1.0] [--modes default,ace,static:16:4:50]
//! cargo run --release -p hakmem --example ace_phases -- --warm  [--reps 3]
//! cargo run --release -p hakmem --example ace_phases -- --one ace|default|static:R4:CAP:DECAY
//! ```
//!
//! Phases (each thread; `--scale` multiplies the operation counts):
//! 1. tiny churn — 400 000 steps; a step allocates a batch of 1–256
//!    blocks of one size (16–512 B) and frees it in reverse order, while a
//!    working set of 4 096 live blocks (16–1024 B) gets one random
//!    replacement per step;
//! 2. mid bursts — 6 000 bursts of 48 blocks of 2–48 KiB, one byte written
//!    per 4 KiB page, freed in allocation order;
//! 3. large spans — 3 000 operations on 12 slots of spans of 80 KiB – 2 MiB
//!    (random replacement, one byte written per page);
//! 4. idle — every block freed, then 1 s with no allocator call;
//! 5. tiny churn again — as phase 1.
//!
//! Figures: throughput = operations of phases 1, 2, 3, 5 / their wall time
//! (a step, a burst block or a span operation is one operation); peak RSS
//! = `ru_maxrss` of the child; average RSS sampled every 5 ms; the figure
//! of merit is throughput / peak RSS (operations per second per MiB, higher
//! is better).
//!
//! `--sweep` runs `default` (no learning, the start-up policy), `ace`
//! (learning on from the start) and the static grid refill × {½, 1, 2, 4},
//! cap × {1, 2, 4} refills, decay ∈ {50, 500} ms (direct policy-table
//! writes), and writes `target/hakmem-bench/ace_sweep.csv`.
//! `--warm` runs ACE with a profile file twice (the second run loads what
//! the first saved) and prints per-phase figures and decisions.

use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hakmem::ace;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

fn touch(p: *mut u8, size: usize) {
    let mut off = 0;
    while off < size {
        // SAFETY: `p` has `size` writable bytes.
        unsafe { p.add(off).write_volatile(1) };
        off += 4096;
    }
}

fn tiny_churn(rng: &mut Rng, steps: usize) -> u64 {
    const LIVE: usize = 4096;
    let mut live = vec![std::ptr::null_mut::<u8>(); LIVE];
    let mut batch = Vec::with_capacity(256);
    let mut ops = 0u64;
    for _ in 0..steps {
        let n = rng.range(1, 256);
        let size = rng.range(1, 32) * 16;
        for _ in 0..n {
            let p = hakmem::malloc(size);
            // SAFETY: at least 16 bytes.
            unsafe { p.write_volatile(1) };
            batch.push(p);
        }
        while let Some(p) = batch.pop() {
            // SAFETY: allocated above, freed once.
            unsafe { hakmem::free(p) };
        }
        let j = rng.range(0, LIVE - 1);
        if !live[j].is_null() {
            // SAFETY: a block we hold.
            unsafe { hakmem::free(live[j]) };
        }
        live[j] = hakmem::malloc(rng.range(1, 64) * 16);
        ops += 1;
    }
    for p in live {
        // SAFETY: blocks we hold (or null).
        unsafe { hakmem::free(p) };
    }
    ops
}

fn mid_bursts(rng: &mut Rng, bursts: usize) -> u64 {
    let mut v = Vec::with_capacity(48);
    let mut ops = 0;
    for _ in 0..bursts {
        for _ in 0..48 {
            let size = rng.range(2 << 10, 48 << 10);
            let p = hakmem::malloc(size);
            touch(p, size);
            v.push(p);
        }
        for p in v.drain(..) {
            // SAFETY: allocated above, freed once.
            unsafe { hakmem::free(p) };
        }
        ops += 48;
    }
    ops
}

fn large_spans(rng: &mut Rng, n: usize) -> u64 {
    let mut slots = [std::ptr::null_mut::<u8>(); 12];
    for _ in 0..n {
        let j = rng.range(0, 11);
        if !slots[j].is_null() {
            // SAFETY: a span we hold.
            unsafe { hakmem::free(slots[j]) };
        }
        let size = rng.range(80 << 10, 2 << 20);
        slots[j] = hakmem::malloc(size);
        touch(slots[j], size);
    }
    for p in slots {
        // SAFETY: spans we hold (or null).
        unsafe { hakmem::free(p) };
    }
    n as u64
}

fn statm_rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

fn peak_rss() -> u64 {
    // SAFETY: zeroed rusage is valid; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as u64 * 1024
}

#[derive(Clone, Debug)]
enum Mode {
    Default,
    Ace {
        profile: Option<String>,
    },
    Static {
        refill_x4: u32,
        cap: u32,
        decay: u32,
    },
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        if s == "default" {
            return Some(Mode::Default);
        }
        if s == "ace" {
            return Some(Mode::Ace { profile: None });
        }
        if let Some(p) = s.strip_prefix("ace:") {
            return Some(Mode::Ace {
                profile: Some(p.to_string()),
            });
        }
        let mut it = s.strip_prefix("static:")?.split(':');
        Some(Mode::Static {
            refill_x4: it.next()?.parse().ok()?,
            cap: it.next()?.parse().ok()?,
            decay: it.next()?.parse().ok()?,
        })
    }
    fn name(&self) -> String {
        match self {
            Mode::Default => "default".into(),
            Mode::Ace { profile: None } => "ace".into(),
            Mode::Ace { profile: Some(p) } => format!("ace:{p}"),
            Mode::Static {
                refill_x4,
                cap,
                decay,
            } => format!("static:{refill_x4}:{cap}:{decay}"),
        }
    }
}

/// Runs the phases in this process and prints one `RESULT` line.
fn child(mode: Mode, threads: usize, scale: f64) {
    match &mode {
        Mode::Default => {}
        Mode::Ace { profile } => {
            let cfg = ace::AceConfig {
                profile: profile.as_ref().map(Into::into),
                ..ace::AceConfig::from_env()
            };
            assert!(ace::start_with(cfg), "ACE did not start");
        }
        Mode::Static {
            refill_x4,
            cap,
            decay,
        } => {
            // Register and read the configuration first, then overwrite.
            // SAFETY: a fresh block freed at once.
            unsafe { hakmem::free(hakmem::malloc(16)) };
            let w = ace_learning::POLICY.writer().unwrap();
            for c in 0..ptr_bridge::NUM_CLASSES {
                let (r, _) = ace_learning::arm_policy(
                    ace_learning::default_refill(c),
                    ace_learning::default_cap(c),
                    0,
                    ptr_bridge::CLASS_SIZE[c],
                );
                let r2 = (r * refill_x4 / 4).clamp(1, 1024);
                w.set_refill_count(c, r2);
                w.set_cache_cap(c, (r2 * cap).min(4096));
            }
            superslab_backend::set_decay_ms(*decay);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let rss_sum = Arc::new(AtomicU64::new(0));
    let rss_n = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, sum, n) = (stop.clone(), rss_sum.clone(), rss_n.clone());
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                sum.fetch_add(statm_rss() >> 10, Relaxed);
                n.fetch_add(1, Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let steps = (300_000.0 * scale) as usize;
    let bursts = (200_000.0 * scale) as usize;
    let spans = (150_000.0 * scale) as usize;
    let t_start = Instant::now();
    let mut phase_s = [0.0f64; 5];
    let mut phase_ops = [0u64; 5];
    let mut phase_dec = [0u64; 5];
    let run_phase = |k: usize, f: fn(&mut Rng, usize) -> u64, n: usize| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) << 32) ^ k as u64);
                    f(&mut rng, n)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    };
    for (k, ph) in [0usize, 1, 2, 3, 4].into_iter().enumerate() {
        let d0 = ace::decisions();
        let t = Instant::now();
        phase_ops[k] = match ph {
            0 | 4 => run_phase(ph, tiny_churn, steps),
            1 => run_phase(ph, mid_bursts, bursts),
            2 => run_phase(ph, large_spans, spans),
            _ => {
                std::thread::sleep(Duration::from_millis(1000));
                0
            }
        };
        phase_s[k] = t.elapsed().as_secs_f64();
        phase_dec[k] = ace::decisions() - d0;
    }
    let total_s = t_start.elapsed().as_secs_f64();
    stop.store(true, Relaxed);
    sampler.join().unwrap();
    let st = ace::state();
    if matches!(mode, Mode::Ace { .. }) {
        ace::stop();
    }
    let busy_ops: u64 = phase_ops.iter().sum();
    let busy_s: f64 = phase_s[0] + phase_s[1] + phase_s[2] + phase_s[4];
    let tput = busy_ops as f64 / busy_s;
    let peak = peak_rss();
    let avg = rss_sum.load(Relaxed) as f64 * 1024.0 / rss_n.load(Relaxed).max(1) as f64;
    let stats = hakmem::stats();
    println!(
        "RESULT mode={} ops_per_s={:.0} peak_rss={} avg_rss={:.0} merit={:.1} busy_s={:.3} total_s={:.3} \
         p1_s={:.3} p2_s={:.3} p3_s={:.3} p5_s={:.3} p1_dec={} p2_dec={} p3_dec={} p4_dec={} p5_dec={} \
         events={} dropped={} decisions={} shifts={} trims={} trimmed={} worker_cpu_ms={:.1} worker_wall_ms={} \
         decay_ms={} decay_phase={} regime={} profile_loaded={}",
        mode.name(),
        tput,
        peak,
        avg,
        tput / (peak as f64 / (1 << 20) as f64),
        busy_s,
        total_s,
        phase_s[0],
        phase_s[1],
        phase_s[2],
        phase_s[4],
        phase_dec[0],
        phase_dec[1],
        phase_dec[2],
        phase_dec[3],
        phase_dec[4],
        stats.ace_events,
        stats.ace_dropped,
        st.decisions,
        st.shifts,
        st.trims,
        st.trimmed_bytes,
        st.worker_cpu_ns as f64 / 1e6,
        st.worker_wall_ms,
        st.decay_ms,
        st.decay_phase.name(),
        st.regime,
        st.profile_loaded,
    );
}

type Fields = Vec<(String, String)>;

fn run_child(mode: &Mode, threads: usize, scale: f64) -> Fields {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--one",
            &mode.name(),
            "--threads",
            &threads.to_string(),
            "--scale",
            &scale.to_string(),
        ])
        .output()
        .expect("child");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "child {} failed: {}",
                mode.name(),
                String::from_utf8_lossy(&out.stderr)
            )
        });
    line[7..]
        .split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

fn get(f: &Fields, k: &str) -> f64 {
    f.iter()
        .find(|(key, _)| key == k)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn sweep(reps: usize, threads: usize, scale: f64, only: Option<String>) {
    let mut modes = vec![Mode::Default, Mode::Ace { profile: None }];
    if let Some(list) = only {
        modes = list.split(',').filter_map(Mode::parse).collect();
    } else {
        for refill_x4 in [2, 4, 8, 16] {
            for cap in [1, 2, 4] {
                for decay in [50, 500] {
                    modes.push(Mode::Static {
                        refill_x4,
                        cap,
                        decay,
                    });
                }
            }
        }
    }
    let mut results: Vec<Vec<Fields>> = vec![Vec::new(); modes.len()];
    for r in 0..reps {
        for (i, m) in modes.iter().enumerate() {
            let f = run_child(m, threads, scale);
            eprintln!(
                "rep {r} {:<22} {:>10.0} ops/s  peak {:>6.1} MiB  merit {:>8.1}",
                m.name(),
                get(&f, "ops_per_s"),
                get(&f, "peak_rss") / (1 << 20) as f64,
                get(&f, "merit")
            );
            results[i].push(f);
        }
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/hakmem-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ace_sweep.csv");
    let mut csv = std::fs::File::create(&path).unwrap();
    writeln!(
        csv,
        "mode,reps,ops_per_s,peak_rss_bytes,avg_rss_bytes,merit_ops_per_s_per_mib,events,dropped,decisions,worker_cpu_ms,worker_wall_ms"
    )
    .unwrap();
    println!(
        "{:<22} {:>12} {:>10} {:>10} {:>10} {:>9} {:>8}",
        "mode", "ops/s", "peak MiB", "avg MiB", "merit", "decisions", "cpu %"
    );
    let mut rows = Vec::new();
    for (i, m) in modes.iter().enumerate() {
        let med = |k: &str| median(results[i].iter().map(|f| get(f, k)).collect());
        let (t, p, a, merit) = (
            med("ops_per_s"),
            med("peak_rss"),
            med("avg_rss"),
            med("merit"),
        );
        let (ev, dr, dec, cpu, wall) = (
            med("events"),
            med("dropped"),
            med("decisions"),
            med("worker_cpu_ms"),
            med("worker_wall_ms"),
        );
        writeln!(
            csv,
            "{},{},{:.0},{:.0},{:.0},{:.2},{:.0},{:.0},{:.0},{:.2},{:.0}",
            m.name(),
            reps,
            t,
            p,
            a,
            merit,
            ev,
            dr,
            dec,
            cpu,
            wall
        )
        .unwrap();
        println!(
            "{:<22} {:>12.0} {:>10.1} {:>10.1} {:>10.1} {:>9.0} {:>8.2}",
            m.name(),
            t,
            p / (1 << 20) as f64,
            a / (1 << 20) as f64,
            merit,
            dec,
            if wall > 0.0 { cpu * 100.0 / wall } else { 0.0 }
        );
        rows.push((m.name(), merit));
    }
    let best = rows
        .iter()
        .filter(|(n, _)| n.starts_with("static"))
        .max_by(|a, b| a.1.partial_cmp(&b.1).unwrap())
        .cloned()
        .unwrap_or(("none".into(), f64::NAN));
    let merit_of = |name: &str| {
        rows.iter()
            .find(|(n, _)| n == name)
            .map(|r| r.1)
            .unwrap_or(f64::NAN)
    };
    let (def, acev) = (merit_of("default"), merit_of("ace"));
    println!(
        "merit (ops/s per MiB of peak RSS, median of {reps}): default {def:.1}, ace {acev:.1} ({:+.1} % vs default, {:+.1} % vs best static {} = {:.1})",
        (acev / def - 1.0) * 100.0,
        (acev / best.1 - 1.0) * 100.0,
        best.0,
        best.1
    );
    println!("CSV: {}", path.display());
}

fn warm(reps: usize, threads: usize, scale: f64) {
    for r in 0..reps {
        let path =
            std::env::temp_dir().join(format!("hakmem-ace-warm-{}-{r}.prof", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mode = Mode::Ace {
            profile: Some(path.display().to_string()),
        };
        for run in ["cold", "warm"] {
            let f = run_child(&mode, threads, scale);
            println!(
                "rep {r} {run}: ops/s {:.0}, p1 {:.3} s ({} decisions), p2 {:.3} s ({}), p3 {:.3} s ({}), p5 {:.3} s ({}), peak {:.1} MiB, loaded {}",
                get(&f, "ops_per_s"),
                get(&f, "p1_s"),
                get(&f, "p1_dec"),
                get(&f, "p2_s"),
                get(&f, "p2_dec"),
                get(&f, "p3_s"),
                get(&f, "p3_dec"),
                get(&f, "p5_s"),
                get(&f, "p5_dec"),
                get(&f, "peak_rss") / (1 << 20) as f64,
                f.iter().find(|(k, _)| k == "profile_loaded").map(|x| x.1.as_str()).unwrap_or("?")
            );
        }
        let _ = std::fs::remove_file(&path);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let threads: usize = opt("--threads").and_then(|v| v.parse().ok()).unwrap_or(2);
    let scale: f64 = opt("--scale").and_then(|v| v.parse().ok()).unwrap_or(1.0);
    let reps: usize = opt("--reps").and_then(|v| v.parse().ok()).unwrap_or(3);
    if let Some(m) = opt("--one") {
        let mode = Mode::parse(&m).unwrap_or_else(|| {
            eprintln!("unknown mode {m}");
            std::process::exit(2)
        });
        child(mode, threads, scale);
    } else if args.iter().any(|a| a == "--warm") {
        warm(reps, threads, scale);
    } else if args.iter().any(|a| a == "--sweep") {
        sweep(reps, threads, scale, opt("--modes"));
    } else {
        eprintln!(
            "usage: ace_phases --sweep | --warm | --one MODE [--threads N] [--scale F] [--reps R]"
        );
        std::process::exit(2);
    }
}
