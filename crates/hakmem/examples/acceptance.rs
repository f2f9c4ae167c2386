//! The slab-migration acceptance test (seed 002's oracle, for hakmem).
//!
//! N agents (threads) allocate blocks of mixed sizes, write a pattern that
//! depends on the block's identity into every word, hand blocks to each
//! other, read-check and free them, while a controller moves slabs between
//! owners with the migration protocol. The value checks, a per-migration
//! audit and the allocator's invariant scan are the oracle.
//!
//! One cell of the matrix per run (`cargo xtask acceptance` runs them all):
//!
//! ```text
//! acceptance --agents 4 --engine serial|parallel --migration on|off \
//!            --fault none|drain|flush|invalidate [--ops N] [--seed S]
//! ```
//!
//! Prints one `PASS ...` or `FAIL ...` line; exit status 0 on PASS, 1 on an
//! oracle failure, 2 on bad arguments.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};

use hakmem::migrate::{self, Step, ThreadHandle};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy)]
struct Block {
    p: usize,
    size: usize,
    tag: u64,
}

fn word(tag: u64, i: usize) -> u64 {
    tag ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn fill(b: &Block) {
    let words = b.size / 8;
    for i in 0..words {
        // SAFETY: the block has `size` writable bytes, 8-aligned.
        unsafe { (b.p as *mut u64).add(i).write(word(b.tag, i)) };
    }
}

fn check(b: &Block) -> bool {
    let words = b.size / 8;
    (0..words).all(|i| {
        // SAFETY: as in `fill`.
        unsafe { (b.p as *const u64).add(i).read() == word(b.tag, i) }
    })
}

struct Config {
    agents: usize,
    parallel: bool,
    migration: bool,
    fault: Option<Step>,
    ops: u64,
    seed: u64,
}

fn parse() -> Result<Config, String> {
    let mut c = Config {
        agents: 4,
        parallel: false,
        migration: true,
        fault: None,
        ops: 40_000,
        seed: 42,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args
            .get(i + 1)
            .ok_or(format!("{} needs a value", args[i]))?;
        match args[i].as_str() {
            "--agents" => c.agents = v.parse().map_err(|_| "bad --agents")?,
            "--engine" => {
                c.parallel = match v.as_str() {
                    "serial" => false,
                    "parallel" => true,
                    _ => return Err("--engine serial|parallel".into()),
                }
            }
            "--migration" => c.migration = v == "on",
            "--fault" => {
                c.fault = match v.as_str() {
                    "none" => None,
                    "drain" => Some(Step::Drain),
                    "flush" => Some(Step::Flush),
                    "invalidate" => Some(Step::Invalidate),
                    _ => return Err("--fault none|drain|flush|invalidate".into()),
                }
            }
            "--ops" => c.ops = v.parse().map_err(|_| "bad --ops")?,
            "--seed" => c.seed = v.parse().map_err(|_| "bad --seed")?,
            other => return Err(format!("unknown argument {other}")),
        }
        i += 2;
    }
    if c.agents < 2 {
        return Err("--agents must be at least 2".into());
    }
    Ok(c)
}

/// Shared state of one run.
struct World {
    cfg: Config,
    handles: Mutex<Vec<Option<ThreadHandle>>>,
    inbox: Vec<Mutex<Vec<Block>>>,
    failure: Mutex<Option<String>>,
    mismatches: AtomicU64,
    nonzero_offsets: AtomicU64,
    remote_handoffs: AtomicU64,
    migrations: AtomicU64,
    migrated_blocks: AtomicU64,
    node_moves: AtomicU64,
    done_agents: AtomicUsize,
    // Serial engine: whose turn it is (agents 0..n, n = controller).
    turn: Mutex<(usize, u64)>,
    turn_cv: Condvar,
    // Parallel engine: pause protocol.
    pause: AtomicBool,
    parked: AtomicUsize,
    park_lock: Mutex<()>,
    park_cv: Condvar,
}

impl World {
    fn fail(&self, why: String) {
        let mut f = self.failure.lock().unwrap();
        if f.is_none() {
            *f = Some(why);
        }
    }
    fn failed(&self) -> bool {
        self.failure.lock().unwrap().is_some()
    }
}

/// Serial engine: waits for this participant's turn; returns false when the
/// run is over.
fn wait_turn(w: &World, me: usize) -> bool {
    let mut t = w.turn.lock().unwrap();
    loop {
        if t.1 >= w.cfg.ops {
            return false;
        }
        if t.0 == me {
            return true;
        }
        t = w.turn_cv.wait(t).unwrap();
    }
}

/// Serial engine: passes the turn to the next participant, chosen by the
/// run's seeded RNG (so the interleaving replays exactly).
fn pass_turn(w: &World, rng: &Mutex<Rng>) {
    let mut t = w.turn.lock().unwrap();
    t.1 += 1;
    let parts = w.cfg.agents as u64 + u64::from(w.cfg.migration);
    t.0 = rng.lock().unwrap().below(parts) as usize;
    w.turn_cv.notify_all();
}

/// Parallel engine: park here while the controller migrates.
fn park_if_asked(w: &World) {
    if !w.pause.load(SeqCst) {
        return;
    }
    let mut g = w.park_lock.lock().unwrap();
    w.parked.fetch_add(1, SeqCst);
    w.park_cv.notify_all();
    while w.pause.load(SeqCst) {
        g = w.park_cv.wait(g).unwrap();
    }
    w.parked.fetch_sub(1, SeqCst);
}

fn agent_op(w: &World, me: usize, rng: &mut Rng, held: &mut Vec<Block>, serial: &mut u64) {
    // Receive blocks other agents handed over: check and free them (remote
    // frees when the slab is another agent's).
    let received: Vec<Block> = std::mem::take(&mut *w.inbox[me].lock().unwrap());
    for b in received {
        if !check(&b) {
            w.mismatches.fetch_add(1, SeqCst);
        }
        // SAFETY: a live block handed to us; freed exactly once here.
        unsafe { hakmem::free(b.p as *mut u8) };
    }
    let r = rng.below(100);
    if r < 45 || held.is_empty() {
        let size = if rng.below(10) < 7 {
            8 + 8 * rng.below(128) as usize // 8..=1024
        } else {
            1024 + 8 * rng.below(8064) as usize // up to 65 536
        };
        let p = hakmem::malloc(size);
        if p.is_null() {
            w.fail(format!("agent {me}: malloc({size}) returned null"));
            return;
        }
        *serial += 1;
        let b = Block {
            p: p as usize,
            size,
            tag: ((me as u64) << 56) ^ *serial ^ (p as u64).rotate_left(17),
        };
        fill(&b);
        if let Some((_, idx)) = migrate::block_location(p) {
            if idx > 0 {
                w.nonzero_offsets.fetch_add(1, SeqCst);
            }
        }
        held.push(b);
    } else if r < 80 {
        let i = rng.below(held.len() as u64) as usize;
        let b = held.swap_remove(i);
        if !check(&b) {
            w.mismatches.fetch_add(1, SeqCst);
        }
        // SAFETY: a live block we hold; freed exactly once.
        unsafe { hakmem::free(b.p as *mut u8) };
    } else {
        let i = rng.below(held.len() as u64) as usize;
        let b = held.swap_remove(i);
        let mut to = rng.below(w.cfg.agents as u64) as usize;
        if to == me {
            to = (to + 1) % w.cfg.agents;
        }
        w.inbox[to].lock().unwrap().push(b);
        w.remote_handoffs.fetch_add(1, SeqCst);
    }
}

fn agent(w: Arc<World>, me: usize, turn_rng: Arc<Mutex<Rng>>) {
    w.handles.lock().unwrap()[me] = Some(ThreadHandle::current());
    let mut rng = Rng(w.cfg.seed.wrapping_mul(31).wrapping_add(me as u64 * 7919) | 1);
    let mut held = Vec::new();
    let mut serial = 0u64;
    if w.cfg.parallel {
        let per_agent = w.cfg.ops / w.cfg.agents as u64;
        for _ in 0..per_agent {
            park_if_asked(&w);
            agent_op(&w, me, &mut rng, &mut held, &mut serial);
        }
    } else {
        while wait_turn(&w, me) {
            agent_op(&w, me, &mut rng, &mut held, &mut serial);
            pass_turn(&w, &turn_rng);
        }
    }
    // Wind down: everything we hold or received is checked and freed.
    if w.cfg.parallel {
        park_if_asked(&w);
    }
    w.done_agents.fetch_add(1, SeqCst);
    // Wait until every agent stopped handing blocks over.
    while w.done_agents.load(SeqCst) < w.cfg.agents {
        if w.cfg.parallel {
            park_if_asked(&w);
        }
        std::thread::yield_now();
    }
    for b in held
        .drain(..)
        .chain(std::mem::take(&mut *w.inbox[me].lock().unwrap()))
    {
        if !check(&b) {
            w.mismatches.fetch_add(1, SeqCst);
        }
        // SAFETY: live blocks, freed exactly once.
        unsafe { hakmem::free(b.p as *mut u8) };
    }
    hakmem::flush_thread();
}

/// One migration: pick an owner, one of its slabs, and a new owner.
/// Every agent is quiesced when this runs (serial turn, or parked).
fn migrate_once(w: &World, rng: &mut Rng) {
    let handles = w.handles.lock().unwrap().clone();
    let live: Vec<(usize, ThreadHandle)> = handles
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.map(|h| (i, h)))
        .collect();
    if live.len() < 2 {
        return;
    }
    let from = live[rng.below(live.len() as u64) as usize];
    let mut to = live[rng.below(live.len() as u64) as usize];
    if to.0 == from.0 {
        to = live[(live.iter().position(|x| x.0 == from.0).unwrap() + 1) % live.len()];
    }
    let mut slabs = [0usize; 64];
    // SAFETY: quiesced (see above).
    let n = unsafe { migrate::owned_slabs(from.1, &mut slabs) };
    if n == 0 {
        return;
    }
    let slab = slabs[rng.below(n as u64) as usize];
    // SAFETY: quiesced; `slab` is owned by `from` in this pause.
    if let Some(m) = unsafe { migrate::migrate_slab(from.1, to.1, slab) } {
        w.migrations.fetch_add(1, SeqCst);
        w.migrated_blocks
            .fetch_add(u64::from(m.drained + m.flushed), SeqCst);
        // SAFETY: still quiesced.
        if let Err(e) = unsafe { migrate::audit_migrated(from.1, slab) } {
            w.fail(format!("migration audit: {e}"));
        }
        // Every other migration also moves the slab's superslab to the
        // other memory node.
        if rng.below(2) == 0 {
            let node = migrate::superslab_node(slab);
            let to_node = (node + 1) % hakmem::migrate::NODES as u8;
            // SAFETY: the slab is live (just migrated, quiesced).
            if unsafe { migrate::move_superslab_of(slab, to_node) } {
                w.node_moves.fetch_add(1, SeqCst);
                if migrate::superslab_node(slab) != to_node {
                    w.fail("superslab node move did not take".into());
                }
            }
        }
    }
}

fn controller(w: Arc<World>, turn_rng: Arc<Mutex<Rng>>) {
    let mut rng = Rng(w.cfg.seed ^ 0xC0FF_EE00_D15E_A5E5);
    let me = w.cfg.agents;
    if w.cfg.parallel {
        while w.done_agents.load(SeqCst) == 0 && !w.failed() {
            std::thread::sleep(std::time::Duration::from_micros(300));
            w.pause.store(true, SeqCst);
            let running = w.cfg.agents - w.done_agents.load(SeqCst);
            // Wait for every running agent to park (they check between ops).
            let mut g = w.park_lock.lock().unwrap();
            while w.parked.load(SeqCst) < running && w.done_agents.load(SeqCst) == 0 {
                g = w
                    .park_cv
                    .wait_timeout(g, std::time::Duration::from_millis(5))
                    .unwrap()
                    .0;
            }
            if w.done_agents.load(SeqCst) == 0 {
                migrate_once(&w, &mut rng);
            }
            w.pause.store(false, SeqCst);
            w.park_cv.notify_all();
            drop(g);
        }
    } else {
        while wait_turn(&w, me) {
            migrate_once(&w, &mut rng);
            pass_turn(&w, &turn_rng);
        }
    }
}

fn main() {
    let cfg = match parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("acceptance: {e}");
            std::process::exit(2);
        }
    };
    // Spread the agents over both logical memory nodes.
    migrate::set_node_spread(migrate::NODES);
    #[cfg(feature = "fault-injection")]
    migrate::inject_fault(cfg.fault);
    #[cfg(not(feature = "fault-injection"))]
    if cfg.fault.is_some() {
        eprintln!("acceptance: --fault needs the fault-injection feature");
        std::process::exit(2);
    }
    let n = cfg.agents;
    let label = format!(
        "agents={} engine={} migration={} fault={}",
        n,
        if cfg.parallel { "parallel" } else { "serial" },
        if cfg.migration { "on" } else { "off" },
        match cfg.fault {
            None => "none",
            Some(Step::Drain) => "drain",
            Some(Step::Flush) => "flush",
            Some(Step::Invalidate) => "invalidate",
        }
    );
    let w = Arc::new(World {
        handles: Mutex::new(vec![None; n]),
        inbox: (0..n).map(|_| Mutex::new(Vec::new())).collect(),
        failure: Mutex::new(None),
        mismatches: AtomicU64::new(0),
        nonzero_offsets: AtomicU64::new(0),
        remote_handoffs: AtomicU64::new(0),
        migrations: AtomicU64::new(0),
        migrated_blocks: AtomicU64::new(0),
        node_moves: AtomicU64::new(0),
        done_agents: AtomicUsize::new(0),
        turn: Mutex::new((0, 0)),
        turn_cv: Condvar::new(),
        pause: AtomicBool::new(false),
        parked: AtomicUsize::new(0),
        park_lock: Mutex::new(()),
        park_cv: Condvar::new(),
        cfg,
    });
    let turn_rng = Arc::new(Mutex::new(Rng(w.cfg.seed | 1)));
    let mut threads = Vec::new();
    for i in 0..n {
        let (w, r) = (w.clone(), turn_rng.clone());
        threads.push(std::thread::spawn(move || agent(w, i, r)));
    }
    if w.cfg.migration {
        let (w2, r) = (w.clone(), turn_rng.clone());
        threads.push(std::thread::spawn(move || controller(w2, r)));
    }
    for t in threads {
        if t.join().is_err() {
            w.fail("a participant panicked".into());
        }
    }
    // Every thread is done: the allocator's own invariant scan.
    // SAFETY: no other thread uses the allocator now.
    match unsafe { migrate::scan_invariants() } {
        Ok(rep) if rep.used_blocks != 0 => w.fail(format!(
            "invariant scan: {} blocks still counted as used after every block was freed",
            rep.used_blocks
        )),
        Ok(_) => {}
        Err(e) => w.fail(format!("invariant scan: {e}")),
    }
    let mism = w.mismatches.load(SeqCst);
    if mism > 0 {
        w.fail(format!("{mism} value-check mismatches"));
    }
    if w.nonzero_offsets.load(SeqCst) == 0 {
        w.fail("no block at a non-zero offset inside its slab was exercised".into());
    }
    if w.cfg.migration && w.migrations.load(SeqCst) == 0 {
        w.fail("migration was on but no slab moved".into());
    }
    let summary = format!(
        "{label} migrations={} node_moves={} moved_blocks={} handoffs={} nonzero_offsets={}",
        w.migrations.load(SeqCst),
        w.node_moves.load(SeqCst),
        w.migrated_blocks.load(SeqCst),
        w.remote_handoffs.load(SeqCst),
        w.nonzero_offsets.load(SeqCst)
    );
    let failure = w.failure.lock().unwrap().clone();
    match failure {
        None => println!("PASS {summary}"),
        Some(why) => {
            println!("FAIL {summary}: {why}");
            std::process::exit(1);
        }
    }
}
