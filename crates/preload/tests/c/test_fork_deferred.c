/* The fork handlers and the thread-exit key are registered only once the
 * process has a second thread (docs/benchmarks.md, "fork handlers and the
 * exit key, deferred"), and forking stays safe across that moment.
 *
 * This program defines __register_atfork and pthread_key_create itself:
 * the executable comes first in the lookup scope, so libhakmem.so's calls
 * reach these wrappers, which count them and forward to libc.
 *
 * 1. Single-threaded: allocations in every tier register nothing.
 * 2. A thread that never allocates forks again and again while the main
 *    thread allocates and frees in every tier (the main thread's first
 *    lock after the thread exists must register the handlers before it is
 *    taken). Every child allocates in every tier and exits 0 within its
 *    alarm; a child that inherited a held lock hangs and is killed.
 * 3. Then the handlers were registered exactly once, and the key created
 *    once (the main thread's exit hook, armed on a later slow path). */
#include "common.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#define FORKS 60

static int atfork_calls, key_calls;

int __register_atfork(void (*prepare)(void), void (*parent)(void),
                      void (*child)(void), void *dso) {
    static int (*next)(void (*)(void), void (*)(void), void (*)(void), void *);
    if (!next)
        next = (int (*)(void (*)(void), void (*)(void), void (*)(void),
                        void *))dlsym(RTLD_NEXT, "__register_atfork");
    __atomic_fetch_add(&atfork_calls, 1, __ATOMIC_RELAXED);
    return next(prepare, parent, child, dso);
}

int pthread_key_create(pthread_key_t *key, void (*destructor)(void *)) {
    static int (*next)(pthread_key_t *, void (*)(void *));
    if (!next)
        next = (int (*)(pthread_key_t *, void (*)(void *)))dlsym(
            RTLD_NEXT, "pthread_key_create");
    __atomic_fetch_add(&key_calls, 1, __ATOMIC_RELAXED);
    return next(key, destructor);
}

static const size_t sizes[] = {24, 200, 3000, 20000, 150000, 600000};
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* Allocates, fills, checks and frees one block of each size; 0 if fine. */
static int churn(unsigned round) {
    void *p[NSIZES];
    for (size_t i = 0; i < NSIZES; i++) {
        p[i] = malloc(sizes[i]);
        if (!p[i])
            return 1;
        memset(p[i], (int)(round + i), sizes[i]);
    }
    for (size_t i = 0; i < NSIZES; i++) {
        unsigned char *b = p[i];
        if (b[0] != (unsigned char)(round + i) ||
            b[sizes[i] - 1] != (unsigned char)(round + i))
            return 2;
        free(p[i]);
    }
    return 0;
}

static volatile int stop;
static int children_ok, children_bad;

/* Never calls malloc itself: only its children do. */
static void *quiet_forker(void *arg) {
    (void)arg;
    for (int i = 0; i < FORKS; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(10);
            for (unsigned r = 0; r < 50; r++)
                if (churn(r))
                    _exit(3);
            _exit(0);
        }
        if (pid < 0) {
            children_bad++;
            continue;
        }
        int status = 0;
        if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0)
            children_ok++;
        else
            children_bad++;
        usleep(1000);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    return NULL;
}

int main(void) {
    require_hakmem("test_fork_deferred");
    alarm(150);
    for (unsigned r = 0; r < 200; r++)
        CHECK(churn(r) == 0, "single-threaded churn, round %u", r);
    CHECK(atfork_calls == 0,
          "%d fork-handler registrations in a single-threaded process",
          atfork_calls);
    CHECK(key_calls == 0, "%d pthread keys created in a single-threaded "
                          "process", key_calls);

    pthread_t f;
    CHECK(pthread_create(&f, NULL, quiet_forker, NULL) == 0, "pthread_create");
    unsigned r = 0;
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        int bad = churn(r++);
        CHECK(bad == 0, "churn beside the forks, round %u: %d", r, bad);
        if (bad)
            break;
    }
    pthread_join(f, NULL);
    CHECK(children_ok == FORKS && children_bad == 0,
          "children: %d fine, %d failed or hung (of %d)", children_ok,
          children_bad, FORKS);
    CHECK(atfork_calls == 1,
          "%d fork-handler registrations once a second thread existed",
          atfork_calls);
    CHECK(key_calls == 1, "%d pthread keys created once a second thread "
                          "existed", key_calls);

    /* A fork from the main thread, now that the handlers are in place. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(churn(7));
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "final fork: %#x",
          status);
    return test_report();
}
