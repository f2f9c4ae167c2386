/* hakmem's fork handlers must be older than the program's (docs/fork.md):
 * glibc runs prepare handlers newest first, and a program's prepare
 * handler may wait for one of its threads that is inside malloc, which
 * must be able to finish before hakmem's handler takes every allocator
 * lock. libhakmem.so registers its handlers when the program registers
 * its own (its `__register_atfork`, behind `pthread_atfork`).
 *
 * 1. One thread: malloc_stats says "not registered yet"; after
 *    pthread_atfork it says "registered" (the Rust side checks stderr).
 * 2. In fresh children of this one-thread process: a SIGEV_THREAD timer's
 *    thread (which hakmem's pthread_create never sees) allocates while
 *    the child forks inside a slow prepare handler of its own; the
 *    grandchild must allocate and exit (it hung when hakmem's handlers
 *    were registered by that thread's first lock, during the fork).
 * 3. The usual mutex pattern: prepare locks the program's mutex M, parent
 *    and child unlock it; a worker allocates large blocks while holding
 *    M; the main thread forks again and again. It deadlocked when hakmem's
 *    handlers were newer than the program's (registered at the first
 *    pthread_create). */
#include "common.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static int wait_ok(pid_t pid) {
    int st = 0;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
           WEXITSTATUS(st) == 0;
}

/* -- 2: the timer thread ------------------------------------------------ */
static volatile int timer_stop;
static void slow_prepare(void) { usleep(100000); }
static void timer_churn(union sigval v) {
    (void)v;
    static void *keep[2048];
    while (!timer_stop) {
        for (int j = 0; j < 2048; j++) {
            keep[j] = malloc(3000 + (size_t)(j & 7) * 1000);
            if (keep[j])
                *(char *)keep[j] = 1;
        }
        for (int j = 0; j < 2048; j++)
            free(keep[j]);
        free(malloc(300 << 10));
        free(malloc(1 << 20));
    }
}
static int timer_scenario(void) {
    pthread_atfork(slow_prepare, NULL, NULL);
    for (int j = 1; j <= 256; j++)
        free(malloc(16 * (size_t)j)); /* warm caches: no lock below */
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD;
    sev.sigev_notify_function = timer_churn;
    timer_t tid;
    if (timer_create(CLOCK_MONOTONIC, &sev, &tid) != 0)
        return 2;
    struct itimerspec its = {{0, 0}, {0, 20 * 1000 * 1000}};
    timer_settime(tid, 0, &its, NULL);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(5);
        static const size_t n[] = {300 << 10, 1 << 20, 100, 5000, 70000};
        for (int i = 0; i < 200; i++) {
            void *p = malloc(n[i % 5]);
            if (p)
                memset(p, 2, 64);
            free(p);
        }
        _exit(0);
    }
    int ok = wait_ok(pid);
    timer_stop = 1;
    usleep(30000);
    return ok ? 0 : 1;
}

/* -- 3: the mutex pattern ----------------------------------------------- */
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static void lock_m(void) { pthread_mutex_lock(&m); }
static void unlock_m(void) { pthread_mutex_unlock(&m); }
static volatile int worker_stop;
static void *worker(void *arg) {
    static const size_t n[] = {300 << 10, 1 << 20, 3 << 20, 100, 5000};
    unsigned i = 0;
    while (!__atomic_load_n(&worker_stop, __ATOMIC_RELAXED)) {
        pthread_mutex_lock(&m);
        void *p = malloc(n[i++ % 5]);
        if (p)
            memset(p, 1, 64);
        free(p);
        pthread_mutex_unlock(&m);
    }
    return arg;
}

int main(void) {
    require_hakmem("test_fork_order");
    alarm(100);
    /* 1 */
    free(malloc(100));
    fputs("== before pthread_atfork\n", stderr);
    malloc_stats();
    /* 2, before this process registers anything: each child is a fresh
     * one-thread process. */
    for (int i = 0; i < 8; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(20);
            _exit(timer_scenario());
        }
        CHECK(wait_ok(pid), "timer thread, round %d: the grandchild hung", i);
    }
    /* 1, continued, and 3 */
    CHECK(pthread_atfork(lock_m, unlock_m, unlock_m) == 0, "pthread_atfork");
    fputs("== after pthread_atfork\n", stderr);
    malloc_stats();
    alarm(40); /* this part alone: a deadlock fails here, not at 100 s */
    pthread_t t;
    CHECK(pthread_create(&t, NULL, worker, NULL) == 0, "pthread_create");
    for (int i = 0; i < 300; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(10);
            free(malloc(1 << 20));
            _exit(0);
        }
        CHECK(wait_ok(pid), "mutex pattern: fork #%d", i);
    }
    __atomic_store_n(&worker_stop, 1, __ATOMIC_RELAXED);
    pthread_join(t, NULL);
    return test_report();
}
