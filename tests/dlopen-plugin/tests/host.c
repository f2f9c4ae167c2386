/* A C host that loads allocators late, with dlopen, the way Python loads an
 * extension or a program loads a plugin:
 *
 *   host plugin <libhakmem_plugin.so>   a Rust cdylib whose global allocator
 *                                       is hakmem::HakMem
 *   host library <libhakmem.so>         the C library itself
 *
 * Each mode loads the library with RTLD_NOW | RTLD_LOCAL, runs work on 4
 * threads, hands blocks from one thread to another to free, checks every
 * value, prints "host: <mode> ok" and exits 0; any failure prints one line
 * and exits 1. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define HANDOFF 2000

static void fail(const char *what) {
    printf("host: FAILED: %s\n", what);
    fflush(stdout);
    exit(1);
}

static void *sym(void *h, const char *name) {
    void *p = dlsym(h, name);
    if (!p) {
        printf("host: FAILED: dlsym(%s): %s\n", name, dlerror());
        exit(1);
    }
    return p;
}

/* ---- plugin mode ---- */
static uint64_t (*p_work)(uint64_t, uint32_t);
static uint8_t *(*p_alloc)(size_t, uint8_t);
static int (*p_free)(uint8_t *, size_t, uint8_t);
static int (*p_owns)(const void *);

struct job { uint64_t seed, want, got; };

static void *work_thread(void *arg) {
    struct job *j = arg;
    j->got = p_work(j->seed, 20000);
    return NULL;
}

static uint8_t *handed[HANDOFF];
static void *producer(void *arg) {
    (void)arg;
    for (int i = 0; i < HANDOFF; i++) {
        size_t n = (size_t)(i * 37 % 3000) + 1;
        handed[i] = p_alloc(n, (uint8_t)i);
        if (!p_owns(handed[i])) fail("a plugin block is not hakmem's");
    }
    return NULL;
}
static void *consumer(void *arg) {
    int *bad = arg;
    for (int i = 0; i < HANDOFF; i++) {
        size_t n = (size_t)(i * 37 % 3000) + 1;
        if (!p_free(handed[i], n, (uint8_t)i)) (*bad)++;
    }
    return NULL;
}

/* dlopen, or NULL after a failure line. */
static void *open_lib(const char *path, int flags) {
    void *h = dlopen(path, flags);
    if (!h) printf("host: FAILED: dlopen(%s): %s\n", path, dlerror());
    return h;
}

static int plugin(const char *path) {
    void *h = open_lib(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) return 1;
    p_work = sym(h, "plugin_work");
    p_alloc = sym(h, "plugin_alloc");
    p_free = sym(h, "plugin_free");
    p_owns = sym(h, "plugin_owns");
    struct job jobs[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i].seed = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
        jobs[i].want = p_work(jobs[i].seed, 20000); /* on the main thread */
        if (jobs[i].want == 0) fail("plugin_work found a corrupted block");
    }
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, work_thread, &jobs[i]);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < THREADS; i++)
        if (jobs[i].got != jobs[i].want) fail("a thread's result differs from the main thread's");
    int bad = 0;
    pthread_t a, b;
    pthread_create(&a, NULL, producer, NULL);
    pthread_join(a, NULL);
    pthread_create(&b, NULL, consumer, &bad);
    pthread_join(b, NULL);
    if (bad) fail("a block handed between threads was changed");
    printf("host: plugin ok\n");
    return 0;
}

/* ---- library mode ---- */
static void *(*l_malloc)(size_t);
static void (*l_free)(void *);
static void *(*l_calloc)(size_t, size_t);
static void *(*l_realloc)(void *, size_t);
static size_t (*l_usable)(void *);

static void *lib_thread(void *arg) {
    uintptr_t seed = (uintptr_t)arg;
    void *live[256] = {0};
    size_t sizes[256] = {0};
    uint64_t x = seed | 1;
    for (int i = 0; i < 50000; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        int k = (int)(x % 256);
        if (live[k]) {
            unsigned char *p = live[k];
            for (size_t j = 0; j < sizes[k]; j++)
                if (p[j] != (unsigned char)k) fail("library block changed");
            l_free(p);
            live[k] = NULL;
        } else {
            size_t n = (x >> 16) % 16 == 0 ? 70000 + (x >> 24) % 100000 : 1 + (x >> 24) % 4000;
            unsigned char *p = (x >> 8) % 4 == 0 ? l_calloc(1, n) : l_malloc(n);
            if (!p) fail("library malloc returned NULL");
            if (l_usable(p) < n) fail("malloc_usable_size below the request");
            if ((x >> 8) % 7 == 0) {
                p = l_realloc(p, n * 2);
                if (!p) fail("library realloc returned NULL");
            }
            memset(p, k, n);
            live[k] = p;
            sizes[k] = n;
        }
    }
    for (int k = 0; k < 256; k++) l_free(live[k]);
    return NULL;
}

static void *handed_lib[HANDOFF];
static void *lib_producer(void *arg) {
    (void)arg;
    for (int i = 0; i < HANDOFF; i++) {
        handed_lib[i] = l_malloc((size_t)(i % 500) + 1);
        memset(handed_lib[i], i & 0xff, (size_t)(i % 500) + 1);
    }
    return NULL;
}
static void *lib_consumer(void *arg) {
    (void)arg;
    for (int i = 0; i < HANDOFF; i++) {
        unsigned char *p = handed_lib[i];
        if (p[0] != (unsigned char)(i & 0xff)) fail("handed library block changed");
        l_free(p);
    }
    return NULL;
}

/* Forks while threads allocate through the library: loaded with dlopen,
 * its exports are not what the process calls, so it must register its
 * fork handlers itself (docs/fork.md); a child that inherits a lock held
 * by a thread of the parent hangs and is killed by its alarm. */
static volatile int lib_stop;
static void *lib_churn(void *arg) {
    static const size_t n[] = {300 << 10, 1 << 20, 3 << 20, 100, 5000, 70000};
    unsigned i = (unsigned)(uintptr_t)arg;
    while (!__atomic_load_n(&lib_stop, __ATOMIC_RELAXED)) {
        void *p = l_malloc(n[i++ % 6]);
        if (p) memset(p, 1, 64);
        l_free(p);
    }
    return NULL;
}
/* Forks `count` times; each child allocates spans through the library
 * and exits 0 within its alarm. Returns 0 at the first child that did
 * not (it inherited a held lock). */
static int fork_children(int count, int allocs) {
    for (int i = 0; i < count; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(5);
            for (int k = 0; k < allocs; k++) l_free(l_malloc((size_t)(k + 1) << 18));
            _exit(0);
        }
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
            printf("host: FAILED: fork #%d: child status %#x\n", i, st);
            return 0;
        }
    }
    return 1;
}
static int lib_forks(void) {
    alarm(60); /* a deadlocked fork kills the host instead of hanging the test */
    pthread_t t[3];
    for (uintptr_t i = 0; i < 3; i++) pthread_create(&t[i], NULL, lib_churn, (void *)i);
    int bad = !fork_children(300, 20);
    __atomic_store_n(&lib_stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    alarm(0);
    return !bad;
}

static int library(const char *path) {
    void *h = open_lib(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) return 1;
    l_malloc = sym(h, "malloc");
    l_free = sym(h, "free");
    l_calloc = sym(h, "calloc");
    l_realloc = sym(h, "realloc");
    l_usable = sym(h, "malloc_usable_size");
    if ((void *)l_malloc == dlsym(RTLD_DEFAULT, "malloc"))
        fail("dlsym gave the process's malloc, not the library's");
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, lib_thread, (void *)(i + 7));
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    pthread_t a, b;
    pthread_create(&a, NULL, lib_producer, NULL);
    pthread_join(a, NULL);
    pthread_create(&b, NULL, lib_consumer, NULL);
    pthread_join(b, NULL);
    if (!lib_forks())
        return 1;
    printf("host: library ok\n");
    return 0;
}

/* ---- deepbind mode ----
 * libhakmem.so dlopened with RTLD_DEEPBIND, where its own scope puts its
 * exports first although the host calls libc's: the host registers the
 * common mutex pattern (prepare locks M, parent and child unlock it) with
 * libc's pthread_atfork, a worker allocates from hakmem while holding M,
 * and the host forks. hakmem must have registered at load (older than the
 * host's handlers); registered later, its prepare handler takes every
 * allocator lock while the worker, inside hakmem's malloc, holds M, and
 * the host's prepare then waits for M for ever (docs/fork.md). */
static pthread_mutex_t deep_m = PTHREAD_MUTEX_INITIALIZER;
static void deep_lock(void) { pthread_mutex_lock(&deep_m); }
static void deep_unlock(void) { pthread_mutex_unlock(&deep_m); }
static volatile int deep_stop;
static void *deep_worker(void *arg) {
    static void *keep[256];
    unsigned i = 0;
    while (!__atomic_load_n(&deep_stop, __ATOMIC_RELAXED)) {
        pthread_mutex_lock(&deep_m);
        for (int k = 0; k < 256; k++) {
            size_t n = k % 4 == 0 ? (1u << 20) + (size_t)(k % 9) * 65536 : 16 + ((i * 7 + k) % 512) * 48;
            keep[k] = l_malloc(n);
            if (keep[k]) memset(keep[k], 1, 64);
        }
        for (int k = 0; k < 256; k++) l_free(keep[k]);
        pthread_mutex_unlock(&deep_m);
        i++;
        usleep(100);
    }
    return arg;
}
static int deepbind(const char *path) {
    alarm(60); /* a deadlocked fork kills the host instead of hanging the test */
    void *h = open_lib(path, RTLD_NOW | RTLD_DEEPBIND);
    if (!h) return 1;
    l_malloc = sym(h, "malloc");
    l_free = sym(h, "free");
    pthread_atfork(deep_lock, deep_unlock, deep_unlock);
    pthread_t t;
    pthread_create(&t, NULL, deep_worker, NULL);
    usleep(20000);
    int bad = !fork_children(100, 4);
    __atomic_store_n(&deep_stop, 1, __ATOMIC_RELAXED);
    pthread_join(t, NULL);
    if (bad) return 1;
    printf("host: deepbind ok\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: host plugin|library|deepbind <path.so>\n");
        return 2;
    }
    if (!strcmp(argv[1], "plugin")) return plugin(argv[2]);
    if (!strcmp(argv[1], "library")) return library(argv[2]);
    if (!strcmp(argv[1], "deepbind")) return deepbind(argv[2]);
    fprintf(stderr, "host: unknown mode %s\n", argv[1]);
    return 2;
}
