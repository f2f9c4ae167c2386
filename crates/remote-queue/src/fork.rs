//! Fork handlers, registered with libc only when they can matter.
//!
//! Every allocator lock is a [`SpinLock`](crate::primitive::SpinLock). A
//! `fork()` while another thread holds one would leave it held for ever in
//! the child, so the boxes' fork handlers (the facade's: take every lock
//! before the fork, release them in both processes after) must run around
//! every fork that can find a lock held. That can only happen once the
//! process has a second thread: with one thread, the thread that forks is
//! not inside the allocator.
//!
//! So the handlers are kept in a small table here ([`add`]), and the table's
//! three dispatchers are registered with libc (`__register_atfork`, what
//! `pthread_atfork` calls) only when [`register_now`] is called (by
//! `libhakmem.so` before a thread is created and before a program
//! registers fork handlers of its own; by the facade on its first slow path
//! unless the registration was deferred; by hakmem's own threads before
//! they start) or when a lock is taken while glibc's
//! `__libc_single_threaded` says the process has (or had) a second thread
//! ([`before_lock`]: for threads nobody announced, such as glibc's own
//! helpers). The registration completes before that lock is taken. A lock
//! taken while single-threaded is released before any thread can exist,
//! because no box creates a thread while it holds a lock.
//!
//! The saving: calling `__register_atfork` brings 64 KiB of libc's
//! read-only data and 50–130 KiB of its text into every process that
//! loads hakmem (docs/benchmarks.md, "Fork handlers registered on demand").
//!
//! **Order.** glibc runs prepare handlers in the reverse order of
//! registration and the parent/child handlers in order, so hakmem's must be
//! the oldest: a program's prepare handler may wait for one of its threads
//! that is inside the allocator (a mutex that thread holds), which can only
//! finish before hakmem takes every lock. `libhakmem.so` therefore
//! registers hakmem's first when a program registers its own. Should a
//! program handler still run between hakmem's prepare and parent/child
//! handlers (registered by a path `libhakmem.so` does not see), an
//! allocation it makes on the forking thread is let through every lock:
//! while the fork's owner is that thread, every lock is held on its behalf
//! (see [`owned_by_this_fork`]).
//!
//! **glibc's fork.** glibc (2.35 and later) releases its handler lock
//! while each prepare handler runs, and a fork runs only the handlers
//! registered before its prepare step began. So a registration that
//! completes while another thread is inside a program's prepare handler
//! does not protect that fork; the registration before a program's own
//! (above) keeps that case out. Outside the handlers the lock is held from
//! the prepare step to the end of the parent step: a registrar waits, and
//! the child of that fork, which inherits "under way" from a registrar
//! that is not in it, starts over ([`register_now`]).
//!
//! [`SpinLock::lock`]: crate::primitive::SpinLock::lock

use core::sync::atomic::AtomicUsize;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

/// A fork handler.
pub type Handler = fn();

/// Room for the boxes' handler sets (the facade and the preload library use
/// one each).
const SLOTS: usize = 4;

/// The handlers, as `fn()` addresses (0 = none). A slot is filled, then
/// published by moving `USED` past it (in slot order), so a fork never sees
/// a slot half-written. `RESERVED` hands out the slots.
static PREPARE: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static PARENT: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static CHILD: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static RESERVED: AtomicUsize = AtomicUsize::new(0);
static USED: AtomicUsize = AtomicUsize::new(0);

/// `pthread_self()` of the thread whose fork holds every lock (from the end
/// of the prepare dispatcher to the start of the last parent/child
/// dispatcher), 0 otherwise.
static FORK_OWNER: AtomicUsize = AtomicUsize::new(0);
/// How many prepare dispatches the current fork owner is in: more than one
/// when a fork handler forks again, or when the dispatchers were
/// registered twice; the locks are released when it drops to 0.
static FORK_DEPTH: AtomicUsize = AtomicUsize::new(0);
/// The slots whose prepare handlers ran for the fork in progress: only
/// their parent/child handlers run after it.
static PREPARED: AtomicUsize = AtomicUsize::new(0);

/// The registration with libc: `NONE`, `DONE`, or under way in the
/// process whose id is `STATE - RUNNING` (so a child of a fork made while
/// another thread was registering can tell that the registrar is not in
/// its process).
const NONE: usize = 0;
const DONE: usize = 1;
const RUNNING: usize = 2;
static STATE: AtomicUsize = AtomicUsize::new(NONE);
/// The thread registering while `STATE` says under way.
static REGISTRAR: AtomicUsize = AtomicUsize::new(0);

/// Adds one set of handlers to the table. Prepare handlers run in the
/// reverse order of addition, parent and child handlers in order (as
/// glibc runs `pthread_atfork` handlers). Returns false when the table is
/// full (nothing added). Allocation-free; a set added after the
/// registration with libc runs from the next fork on.
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub fn add(prepare: Option<Handler>, parent: Option<Handler>, child: Option<Handler>) -> bool {
    let i = RESERVED.fetch_add(1, AcqRel);
    if i >= SLOTS {
        RESERVED.fetch_sub(1, AcqRel);
        return false;
    }
    let addr = |h: Option<Handler>| h.map_or(0, |f| f as usize);
    PREPARE[i].store(addr(prepare), Relaxed);
    PARENT[i].store(addr(parent), Relaxed);
    CHILD[i].store(addr(child), Relaxed);
    // Publish in slot order: an earlier slot's adder publishes first.
    while USED
        .compare_exchange_weak(i, i + 1, Release, Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
    true
}

/// Called by every lock before it is taken: registers the dispatchers with
/// libc the first time the process is found multi-threaded. One load and a
/// branch once registered; two loads and two branches before.
#[inline]
pub fn before_lock() {
    if STATE.load(Acquire) != DONE && !single_threaded() {
        register_slow();
    }
}

/// Registers the dispatchers with libc now (once per process; later calls
/// are one load and a branch). Returns when the registration is complete,
/// except on the registering thread itself (a nested call from inside
/// libc's registration, which holds libc's handler lock).
#[inline]
pub fn register_now() {
    if STATE.load(Acquire) != DONE {
        register_slow();
    }
}

#[cold]
#[inline(never)]
fn register_slow() {
    // libc's `__register_atfork`, found before the registration can start:
    // `dlsym` takes ld.so's lock, and a thread inside `dlopen` that holds
    // it may allocate and wait for a registration under way.
    let _ = libc_register_atfork();
    // SAFETY: getpid has no preconditions.
    let me = RUNNING + unsafe { libc::getpid() } as usize;
    loop {
        match STATE.compare_exchange(NONE, me, AcqRel, Acquire) {
            Ok(_) => break,
            Err(DONE) => return,
            Err(s) if s != me => {
                // The child of a fork that another thread made while the
                // registrar waited for libc's handler lock: the registrar
                // is not in this process, and nothing was registered in
                // it. Start over.
                let _ = STATE.compare_exchange(s, NONE, AcqRel, Acquire);
            }
            Err(_) => {
                if REGISTRAR.load(Relaxed) == self_id() {
                    return;
                }
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
    }
    REGISTRAR.store(self_id(), Relaxed);
    // SAFETY: the dispatchers are `extern "C"` functions that live for the
    // process (or the object, which glibc unregisters at `dlclose`), and
    // they only call the handlers added to the table.
    let rc = unsafe {
        register_atfork(
            Some(dispatch_prepare),
            Some(dispatch_parent),
            Some(dispatch_child),
        )
    };
    REGISTRAR.store(0, Relaxed);
    // A failure (no memory in libc for its list) is tried again at the
    // next lock or registration.
    STATE.store(if rc == 0 { DONE } else { NONE }, Release);
}

/// Whether the dispatchers are registered with libc.
pub fn registered() -> bool {
    STATE.load(Acquire) == DONE
}

/// Whether the calling thread is inside a `fork()` whose prepare
/// dispatcher has taken every lock on its behalf (see the module's
/// "Order"). Only the contended path of a lock asks.
#[inline]
pub fn owned_by_this_fork() -> bool {
    let o = FORK_OWNER.load(Relaxed);
    o != 0 && o == self_id()
}

fn self_id() -> usize {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() as usize }
}

/// True while glibc knows of no second thread in the process. Other C
/// libraries: always false, so the handlers are registered at the first
/// lock.
fn single_threaded() -> bool {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: glibc's variable (since 2.32; libhakmem.so needs 2.34),
        // a byte that glibc writes in `pthread_create`, on the creating
        // thread. Whatever a reader sees is handled: a stale "one thread"
        // can only be read by the thread that is that one thread (no other
        // exists yet), and a "more" only leads to the registration.
        let flag =
            unsafe { core::sync::atomic::AtomicU8::from_ptr(&raw mut __libc_single_threaded) };
        flag.load(Relaxed) != 0
    }
    #[cfg(not(target_env = "gnu"))]
    {
        false
    }
}

/// The handler in `slot`, if any.
fn handler(slot: &AtomicUsize) -> Option<Handler> {
    let a = slot.load(Relaxed);
    // SAFETY: a non-zero slot holds a `Handler` stored by `add`.
    (a != 0).then(|| unsafe { core::mem::transmute::<usize, Handler>(a) })
}

// The dispatchers nest: a fork inside a fork handler, or a second
// registration of the dispatchers (a child that started the registration
// over after its parent's had completed), enters the prepare dispatcher
// again while this thread already holds every lock. Only the outermost
// prepare runs the handlers and only the matching last parent/child
// dispatch releases them (in a nested fork's child too: the outer fork
// goes on there and ends with its own parent/child step).

extern "C" fn dispatch_prepare() {
    if owned_by_this_fork() {
        FORK_DEPTH.fetch_add(1, Relaxed);
        return;
    }
    let n = USED.load(Acquire);
    for i in (0..n).rev() {
        if let Some(h) = handler(&PREPARE[i]) {
            h();
        }
    }
    PREPARED.store(n, Relaxed);
    FORK_DEPTH.store(1, Relaxed);
    FORK_OWNER.store(self_id(), Relaxed);
}

extern "C" fn dispatch_parent() {
    run_after_fork(&PARENT);
}

extern "C" fn dispatch_child() {
    run_after_fork(&CHILD);
}

/// The parent or child step: at the outermost level, runs the prepared
/// slots' handlers in order (`pthread_self()` is the same in the child as
/// in the parent).
fn run_after_fork(slots: &[AtomicUsize; SLOTS]) {
    if !owned_by_this_fork() {
        return;
    }
    if FORK_DEPTH.fetch_sub(1, Relaxed) > 1 {
        return;
    }
    // Cleared before the locks are released: a contended lock of this
    // thread must wait again from here on.
    FORK_OWNER.store(0, Relaxed);
    for slot in &slots[..PREPARED.load(Relaxed)] {
        if let Some(h) = handler(slot) {
            h();
        }
    }
}

/// A fork handler as `pthread_atfork` takes it.
pub type AtforkHandler = Option<unsafe extern "C" fn()>;

/// `__register_atfork`'s signature.
pub type RegisterFn = unsafe extern "C" fn(
    AtforkHandler,
    AtforkHandler,
    AtforkHandler,
    *mut libc::c_void,
) -> libc::c_int;

/// libc's own `__register_atfork`: 0 until looked up, [`LOOKED_NONE`]
/// after a lookup that found nothing (a static program: the symbol is
/// called), otherwise the function.
static LIBC_REGISTER: AtomicUsize = AtomicUsize::new(0);
const LOOKED_NONE: usize = 1;

/// libc's `__register_atfork`, looked up once with `dlsym(RTLD_NEXT)`;
/// `None` if there is none (a static program). Not the symbol: when an
/// interposer of that name is linked into the same object (`libhakmem.so`
/// exports one), the name binds to it, and the registration must not go
/// through it; `RTLD_NEXT` never finds the caller's own object. Call it
/// before a registration is marked under way (`dlsym` takes ld.so's lock):
/// the registration does, and `libhakmem.so`'s constructor and its
/// `__register_atfork` (which forwards the program's registrations here).
#[link_section = ".text.hakmem_startup"] // start-up group, see docs/benchmarks.md
pub fn libc_register_atfork() -> Option<RegisterFn> {
    let mut f = LIBC_REGISTER.load(Acquire);
    if f == 0 {
        f = LOOKED_NONE;
        #[cfg(target_env = "gnu")]
        {
            // Read at start-up (libhakmem.so's constructor): kept with the
            // start-up read-only data, not among the other strings.
            #[link_section = ".rodata.hakmem_startup"] // start-up group, see docs/benchmarks.md
            static NAME: [u8; 18] = *b"__register_atfork\0";
            // SAFETY: a NUL-terminated name; RTLD_NEXT is a valid
            // pseudo-handle.
            let found =
                unsafe { libc::dlsym(libc::RTLD_NEXT, NAME.as_ptr() as *const libc::c_char) };
            if !found.is_null() {
                f = found as usize;
            }
        }
        if let Err(other) = LIBC_REGISTER.compare_exchange(0, f, AcqRel, Acquire) {
            f = other;
        }
    }
    // SAFETY: a value above LOOKED_NONE is libc's `__register_atfork`.
    (f > LOOKED_NONE).then(|| unsafe { core::mem::transmute::<usize, RegisterFn>(f) })
}

#[cfg(target_env = "gnu")]
extern "C" {
    /// glibc: non-zero while the process has had no second thread.
    static mut __libc_single_threaded: u8;
    /// glibc's registration behind `pthread_atfork` (which is a static
    /// stub from `libc_nonshared.a` passing the object's `__dso_handle`).
    fn __register_atfork(
        prepare: AtforkHandler,
        parent: AtforkHandler,
        child: AtforkHandler,
        dso_handle: *mut libc::c_void,
    ) -> libc::c_int;
    /// The handle of the object this code is linked into (crtbegin's).
    static __dso_handle: u8;
}

/// `pthread_atfork(prepare, parent, child)`. With glibc it calls
/// `__register_atfork` directly, as the `pthread_atfork` stub does: the
/// stub is linked at the end of `libhakmem.so`'s text and reaches libc
/// through the PLT there, which would bring one more 64 KiB window of
/// text into the process (docs/benchmarks.md, "the footprint's text
/// windows").
///
/// # Safety
/// The handlers must be safe to run at every `fork` for the life of the
/// process (or of the object, which glibc unregisters at `dlclose`).
pub unsafe fn register_atfork(
    prepare: AtforkHandler,
    parent: AtforkHandler,
    child: AtforkHandler,
) -> libc::c_int {
    if let Some(f) = libc_register_atfork() {
        // SAFETY: as below.
        return unsafe {
            f(
                prepare,
                parent,
                child,
                &raw const __dso_handle as *mut libc::c_void,
            )
        };
    }
    #[cfg(target_env = "gnu")]
    // SAFETY: the glibc entry point `pthread_atfork` forwards to, with the
    // handle of this object; the handlers' contract is the caller's.
    unsafe {
        __register_atfork(
            prepare,
            parent,
            child,
            &raw const __dso_handle as *mut libc::c_void,
        )
    }
    #[cfg(not(target_env = "gnu"))]
    // SAFETY: the handlers' contract is the caller's.
    unsafe {
        libc::pthread_atfork(prepare, parent, child)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::primitive::SpinLock;

    static L: SpinLock = SpinLock::new();
    static PREPARES: AtomicUsize = AtomicUsize::new(0);
    static PARENTS: AtomicUsize = AtomicUsize::new(0);

    fn prepare() {
        PREPARES.fetch_add(1, Relaxed);
        core::mem::forget(L.lock());
    }
    fn parent() {
        PARENTS.fetch_add(1, Relaxed);
        // SAFETY: `prepare` forgot the guard of this lock.
        unsafe { L.force_unlock() };
    }

    /// One test, because the table and the registration are process-wide.
    #[test]
    fn dispatch_lends_locks_and_releases_them_at_the_outermost_step() {
        assert!(add(Some(prepare), Some(parent), None));
        // What a fork does around a program's older handler that allocates.
        dispatch_prepare();
        assert!(L.is_locked() && owned_by_this_fork());
        {
            // The program's handler: the lock is lent, not waited for.
            let _g = L.lock();
        }
        assert!(L.is_locked(), "a lent lock was released by its guard");
        // A nested fork (or a second registration): the inner prepare runs
        // no handler, the inner parent/child step releases nothing, the
        // outer one releases everything once.
        dispatch_prepare();
        assert_eq!(PREPARES.load(Relaxed), 1);
        dispatch_child();
        assert!(
            L.is_locked() && owned_by_this_fork(),
            "an inner step released the locks"
        );
        dispatch_parent();
        assert!(!L.is_locked() && !owned_by_this_fork());
        dispatch_parent();
        dispatch_child();
        assert_eq!(PARENTS.load(Relaxed), 1);
        // Another thread is never lent the lock.
        dispatch_prepare();
        let waited = std::thread::spawn(|| {
            let _g = L.lock();
            true
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(
            !waited.is_finished(),
            "another thread got a lock held for a fork"
        );
        dispatch_parent();
        assert!(waited.join().unwrap());

        // A registration under way in another process (a fork copied it
        // half-done): this process starts over and completes it.
        // SAFETY: getpid has no preconditions.
        let other = RUNNING + unsafe { libc::getpid() } as usize + 1;
        STATE.store(other, Release);
        register_now();
        assert!(registered());
    }
}
