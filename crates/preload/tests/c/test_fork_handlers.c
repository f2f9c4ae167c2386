/* Fork handlers of the program that allocate (after glibc's
 * tst-atfork3/tst-malloc-fork-deadlock shapes): the program registers
 * prepare, parent and child handlers that allocate in three tiers, then
 * forks from the main thread and from a second thread while other threads
 * allocate. glibc runs prepare handlers newest first and parent/child
 * handlers oldest first. hakmem registers its handlers (which take every
 * allocator lock) only once the process has a second thread, so here they
 * are newer than the program's: the program's handlers allocate while
 * hakmem's hold every lock, and must be let through by the locks held for
 * the forking thread (docs/fork.md). A handler that waits for a lock its
 * own thread's fork holds deadlocks the fork; the alarm then kills the
 * program and the test fails. Every child also allocates in every tier
 * and exits 0. */
#include "common.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#define FORKS 30

static int prepares, parents;

static int allocate_a_little(void) {
    static const size_t n[] = {40, 3000, 300000};
    int ok = 1;
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++) {
        unsigned char *p = malloc(n[i]);
        if (!p) {
            ok = 0;
            continue;
        }
        memset(p, 0x5a, n[i]);
        ok &= p[n[i] - 1] == 0x5a;
        free(p);
    }
    return ok;
}
static void prepare_allocates(void) {
    if (allocate_a_little())
        __atomic_fetch_add(&prepares, 1, __ATOMIC_RELAXED);
}
static void parent_allocates(void) {
    if (allocate_a_little())
        __atomic_fetch_add(&parents, 1, __ATOMIC_RELAXED);
}
static int child_ok = 1;
static void child_allocates(void) { child_ok = allocate_a_little(); }

static volatile int stop;

static void *churn(void *arg) {
    uint64_t s = (uintptr_t)arg * 0x9E3779B97F4A7C15ULL + 1;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        uint64_t r = rng_next(&s);
        size_t n = r % 10 == 0 ? 200000 : r % 3 == 0 ? 5000 : 1 + r % 500;
        void *p = malloc(n);
        if (p)
            memset(p, 1, n < 64 ? n : 64);
        free(p);
    }
    return NULL;
}

/* Forks `count` times; each child allocates in every tier, checks that
 * its child handler could allocate, and exits 0. */
static void fork_some(int count, const char *who) {
    for (int i = 0; i < count; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(10);
            _exit(child_ok && allocate_a_little() ? 0 : 3);
        }
        CHECK(pid > 0, "%s: fork #%d failed: %s", who, i, strerror(errno));
        if (pid < 0)
            continue;
        int status = 0;
        pid_t w = waitpid(pid, &status, 0);
        CHECK(w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "%s: fork #%d: child status %#x", who, i, status);
    }
}

static void *forker(void *arg) {
    (void)arg;
    fork_some(FORKS, "second thread");
    return NULL;
}

int main(void) {
    require_hakmem("test_fork_handlers");
    alarm(120);
    CHECK(allocate_a_little(), "allocations before the handlers");
    CHECK(pthread_atfork(prepare_allocates, parent_allocates,
                         child_allocates) == 0,
          "pthread_atfork");
    /* Single-threaded first, then with threads allocating beside. */
    fork_some(5, "main thread, alone");
    pthread_t w[3], f;
    for (int i = 0; i < 3; i++)
        pthread_create(&w[i], NULL, churn, (void *)(uintptr_t)(i + 1));
    fork_some(FORKS, "main thread");
    pthread_create(&f, NULL, forker, NULL);
    pthread_join(f, NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 3; i++)
        pthread_join(w[i], NULL);
    CHECK(prepares == 5 + 2 * FORKS && parents == 5 + 2 * FORKS,
          "handlers that allocated: %d prepare, %d parent (of %d)", prepares,
          parents, 5 + 2 * FORKS);
    return test_report();
}
