/* Fork handlers registered on demand (docs/fork.md): while the program has
 * one thread, allocations in every tier, a trim and a fork leave hakmem's
 * fork handlers unregistered (malloc_stats says so on stderr, which the
 * Rust side checks; it reads the state before its own locks);
 * pthread_create registers them before the thread exists (the thread
 * allocates only after the second report); then forks while that thread
 * allocates, with every child allocating in every tier and exiting 0. */
#include "common.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

static int churn(int seed) {
    static const size_t n[] = {24, 3000, 20000, 300000};
    int ok = 1;
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++) {
        unsigned char *p = malloc(n[i]);
        if (!p)
            return 0;
        memset(p, seed + (int)i, n[i]);
        ok &= p[0] == (unsigned char)(seed + (int)i) &&
              p[n[i] - 1] == (unsigned char)(seed + (int)i);
        free(p);
    }
    return ok;
}

static void fork_and_check(const char *who) {
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        _exit(churn(7) ? 0 : 3);
    }
    CHECK(pid > 0, "%s: fork failed: %s", who, strerror(errno));
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0,
          "%s: child status %#x", who, status);
}

static volatile int stop, go;
static void *worker(void *arg) {
    /* No allocation (no lock) before the second report: "registered"
     * there must come from pthread_create itself. */
    while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
        usleep(1000);
    int ok = 1;
    for (int i = 0; !__atomic_load_n(&stop, __ATOMIC_RELAXED); i++)
        ok &= churn(i & 63);
    return ok ? arg : NULL;
}

int main(void) {
    require_hakmem("test_fork_lazy");
    alarm(60);
    CHECK(churn(1), "one thread: blocks hold their bytes");
    malloc_trim(0);
    fork_and_check("one thread");
    fputs("== one thread\n", stderr);
    malloc_stats();

    pthread_t t;
    CHECK(pthread_create(&t, NULL, worker, (void *)1) == 0, "pthread_create");
    fputs("== two threads\n", stderr);
    malloc_stats();
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 20; i++)
        fork_and_check("beside an allocating thread");
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    void *r = NULL;
    pthread_join(t, &r);
    CHECK(r == (void *)1, "the worker's blocks held their bytes");
    return test_report();
}
