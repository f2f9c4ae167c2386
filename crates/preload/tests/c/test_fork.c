/* fork while other threads allocate (after glibc's tst-malloc-fork-deadlock):
 * a non-main thread forks repeatedly while four threads allocate, free
 * locally and free each other's blocks; every child allocates at once
 * (all tiers, a new thread, blocks inherited from the parent) and exits 0.
 * A child that deadlocks is killed by its alarm and counts as a failure. */
#include "common.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#define WORKERS 4
#define FORKS 40
#define SLOTS 256

static volatile int stop;
static void *slots[SLOTS]; /* blocks handed between threads */

static void *worker(void *arg) {
    uint64_t s = (uintptr_t)arg * 0x9E3779B97F4A7C15ULL + 1;
    void *mine[64] = {0};
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        uint64_t r = rng_next(&s);
        size_t n = r % 100 < 80   ? 1 + r % 512
                   : r % 100 < 98 ? 1 + r % 60000
                                  : 100000 + r % 400000;
        int k = (int)((r >> 40) % 64);
        free(mine[k]);
        mine[k] = malloc(n);
        if (mine[k])
            memset(mine[k], (int)k, n < 64 ? n : 64);
        /* Swap a block with the shared slots: whoever takes it frees it. */
        int j = (int)((r >> 20) % SLOTS);
        void *x = malloc(1 + r % 2000);
        void *old = __atomic_exchange_n(&slots[j], x, __ATOMIC_ACQ_REL);
        free(old);
    }
    for (int k = 0; k < 64; k++)
        free(mine[k]);
    return NULL;
}

static void *child_thread(void *arg) {
    void *p = malloc(1000);
    free(arg);
    return p;
}

/* Runs in the child: allocate in every tier at once, start a thread, free
 * blocks the parent's threads allocated. Exit status 0 = fine. */
static int child(void *inherited) {
    alarm(10);
    for (int i = 0; i < 200; i++) {
        size_t n = i % 10 == 0 ? 300000 : i % 3 == 0 ? 20000 : 32;
        void *p = malloc(n);
        if (!p)
            return 3;
        memset(p, 0x33, n);
        void *q = realloc(p, n * 2);
        if (!q)
            return 4;
        void *c = calloc(1, n);
        if (!c || ((unsigned char *)c)[n - 1] != 0)
            return 5;
        free(q);
        free(c);
    }
    void *a = NULL;
    if (posix_memalign(&a, 4096, 10000))
        return 6;
    free(a);
    pthread_t t;
    void *ret = NULL;
    if (pthread_create(&t, NULL, child_thread, malloc(77)) ||
        pthread_join(t, &ret) || !ret)
        return 7;
    free(ret);
    free(inherited); /* allocated by the parent before fork */
    for (int j = 0; j < SLOTS; j++)
        free(__atomic_exchange_n(&slots[j], NULL, __ATOMIC_ACQ_REL));
    return 0;
}

/* The process's RssAnon in KiB, read with open/read into a stack buffer
 * (no stdio, no allocation), or -1. */
static long rss_anon_kib(void) {
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = strstr(buf, "RssAnon:");
    return p ? strtol(p + 8, NULL, 10) : -1;
}

/* A forked child's fork handlers must not write to pages the parent never
 * touched: a fresh page of .bss written in the child is memory of its own
 * (shared copy-on-write pages are counted in the child's RssAnon already,
 * so the growth is exactly the pages first written after the fork). The
 * learning layer's 256 KiB event ring was reset slot by slot in every
 * child, used or not, and cost each forked child 256 KiB. */
static void fork_child_rss(void) {
    long before = rss_anon_kib();
    pid_t pid = fork();
    if (pid == 0) {
        long after = rss_anon_kib();
        if (before < 0 || after < 0)
            _exit(2);
        if (after - before > 64) {
            char line[128];
            int len = snprintf(line, sizeof line,
                               "child RssAnon %ld KiB, parent %ld KiB\n",
                               after, before);
            if (len > 0)
                (void)!write(2, line, (size_t)len);
            _exit(1);
        }
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "a forked child wrote fresh pages in its fork handlers: %#x",
          status);
}

static void *forker(void *arg) {
    (void)arg;
    for (int i = 0; i < FORKS; i++) {
        void *inherited = malloc(500 + (size_t)i * 100);
        pid_t pid = fork();
        if (pid == 0)
            _exit(child(inherited));
        CHECK(pid > 0, "fork #%d failed: %s", i, strerror(errno));
        if (pid < 0)
            continue;
        int status = 0;
        pid_t w = waitpid(pid, &status, 0);
        CHECK(w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "fork #%d: child %s %d", i,
              WIFSIGNALED(status) ? "killed by signal" : "exited with",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        free(inherited);
        usleep(2000); /* let the workers get back into the allocator */
    }
    return NULL;
}

int main(void) {
    require_hakmem("test_fork");
    alarm(150);
    free(malloc(64));
    fork_child_rss();
    pthread_t w[WORKERS], f;
    for (int i = 0; i < WORKERS; i++)
        pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    usleep(20000);
    pthread_create(&f, NULL, forker, NULL);
    pthread_join(f, NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(w[i], NULL);
    /* Take the blocks out of the slots as they are freed: the child forked
     * below frees whatever is left in them. */
    for (int j = 0; j < SLOTS; j++)
        free(__atomic_exchange_n(&slots[j], NULL, __ATOMIC_ACQ_REL));
    /* The parent can fork from main as well, after all that. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(child(malloc(10)));
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "final fork: %#x",
          status);
    return test_report();
}
